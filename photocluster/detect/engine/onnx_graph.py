"""Turn a parsed dlib layer list into an ONNX graph and an onnxruntime session.

The graph is built in memory at first use, straight from the weights in the ``.dat``: nothing
is written to disk and nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.dlib_format import AddPrev, Affine, Conv, Fc, Layer, Pool, Relu, Skip, Tag, fold_affine

OPSET = 17
IR_VERSION = 8  # old enough for any onnxruntime that supports opset 17


@dataclass
class _Value:
    name: str
    shape: tuple[int, int | None, int | None]  # (channels, rows, cols); None: only known at run time


# onnxruntime's fast convolutions (NCHWc) work on blocks of 8 channels (16 with AVX-512);
# other channel counts take a slower im2col path.
CHANNEL_BLOCK = 16


def _pad_conv(conv: Conv, outputs: int | None = None, inputs: int | None = None) -> Conv:
    """``conv`` with extra all-zero filters (outputs) or zero weights for extra input channels.
    Padded outputs are exactly zero and padded inputs are multiplied by zero weights, so the
    real channels compute the same sums."""
    o, i, kh, kw = conv.weight.shape
    o2, i2 = outputs or o, inputs or i
    weight = np.zeros((o2, i2, kh, kw), dtype=np.float32)
    weight[:o, :i] = conv.weight
    bias = None
    if conv.bias is not None:
        bias = np.zeros(o2, dtype=np.float32)
        bias[:o] = conv.bias
    return Conv(weight, bias, conv.stride, conv.padding, conv.relu)


def prepare(layers: list[Layer]) -> list[Layer]:
    """Fold each conv's affine into it; pad conv -> relu -> conv channel counts to whole blocks."""
    out: list[Layer] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Conv) and isinstance(nxt, Affine) and nxt.conv_mode:
            out.append(fold_affine(layer, nxt))
            i += 2
        else:
            out.append(layer)
            i += 1
    for i, layer in enumerate(out):
        if not isinstance(layer, Conv):
            continue
        channels = layer.weight.shape[0]
        if channels <= 1 or channels % CHANNEL_BLOCK == 0:
            continue
        j = i + 1
        while j < len(out) and isinstance(out[j], Relu):
            j += 1
        consumer = out[j] if j < len(out) else None
        if isinstance(consumer, Conv):
            padded = -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK
            out[i] = _pad_conv(layer, outputs=padded)
            out[j] = _pad_conv(consumer, inputs=padded)
    return out


def _out_size(n: int | None, k: int, stride: int, pad: int) -> int | None:
    return None if n is None else (n + 2 * pad - k) // stride + 1


class _Emitter:
    """Collects the nodes and initialisers of one graph, with fresh tensor names."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper = helper
        self._numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._counter = iter(range(1 << 30))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        tname = self.fresh(prefix)
        self.inits.append(self._numpy_helper.from_array(np.ascontiguousarray(value), tname))
        return tname

    def ints(self, *values: int) -> str:
        return self.const("i", np.array(values, dtype=np.int64))

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = self.fresh(prefix)
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        return out


def build_model(layers: list[Layer], channels: int, rows: int | None, cols: int | None, name: str) -> bytes:
    """An ONNX model (serialised) computing ``layers`` on input ``x`` (N, channels, rows, cols).

    Output ``y`` is the last layer's output; ``Fc`` layers flatten to (N, outputs).
    """
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ModelError(f"onnx cannot be imported ({exc}): pip install onnx") from None

    g = _Emitter(helper, numpy_helper)
    x = _emit(g, _Value("x", (channels, rows, cols)), prepare(layers))
    flat = any(isinstance(layer, Fc) for layer in layers)
    g.nodes.append(helper.make_node("Identity", [x.name], ["y"]))
    in_shape: list[int | str] = [
        "n",
        channels,
        rows if rows is not None else "rows",
        cols if cols is not None else "cols",
    ]
    out_shape: list[int | str] = ["n", x.shape[0]]
    if not flat:
        out_shape += [x.shape[1] or "out_rows", x.shape[2] or "out_cols"]
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="photocluster")
    model.ir_version = IR_VERSION
    return bytes(model.SerializeToString())


def _emit(g: _Emitter, x: _Value, layers: list[Layer]) -> _Value:
    """The nodes of ``layers`` (prepared) applied to ``x``; their output."""
    tags: dict[int, _Value] = {}
    for layer in layers:
        if isinstance(layer, Tag):
            tags[layer.id] = x
        elif isinstance(layer, Skip):
            x = tags[layer.id]
        elif isinstance(layer, AddPrev):
            x = _add_padded(x, tags[layer.id], g.nodes, g.const, g.fresh, g.helper)
        else:
            x = _layer(g, x, layer)
    return x


def stem(layers: list[Layer]) -> tuple[int, int] | None:
    """How many of the (prepared) ``layers`` come before the first residual block (the first
    tag), and their stride, when none of them pads: a shift of the input by a multiple of that
    stride then only shifts their output, to the last bit. None where one of them pads."""
    stride = 1
    for i, layer in enumerate(layers):
        if isinstance(layer, Tag):
            return i, stride
        if isinstance(layer, Conv | Pool):
            if any(layer.padding) or layer.stride[0] != layer.stride[1]:
                return None
            stride *= layer.stride[0]
        elif not isinstance(layer, Affine | Relu):
            return None
    return None


def build_views_model(
    layers: list[Layer], mean_rgb: tuple[float, float, float], size: int, shift: int, name: str, blocks: bool = True
) -> bytes:
    """An ONNX model computing the network on six views of each of ``n`` chips ``x`` (n, size +
    2 shift, size + 2 shift, 3) uint8 (RGB, as dlib's chips come): the centre ``size`` x ``size``
    crop, the crops moved ``shift`` rows up and down, and the mirror image of each.

    The same outputs as :func:`build_model` run on the six crops (pixels normalised as dlib's
    ``input_rgb_image_sized`` does), with less work: the layers before the first residual block
    (:func:`stem`) run once on the whole height of a chip and of its mirror image, and their
    output is cut into the three crops, which is exact when ``shift`` is a multiple of their stride.
    The blocks after them that keep each row in place (:func:`_same_rows`: the ResNet's three
    32-channel blocks) also run once on the whole height, and each view only on the rows by its
    edges that its own padding reaches (:func:`_emit_views`); ``blocks=False`` shares only the
    stem (benchmarks/views_cost.py measures both).
    Output ``y`` (6n, outputs): rows ``(k * 2 + mirror) * n + face``, k = 0, 1, 2 for the shifts
    0, -shift, +shift.
    """
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ModelError(f"onnx cannot be imported ({exc}): pip install onnx") from None
    prepared = prepare(layers)
    found = stem(prepared)
    if found is None or shift % found[1] != 0:
        raise ModelError(f"{name}: views moved by {shift} pixels cannot share the layers before its first block")
    n_stem, stride = found

    g = _Emitter(helper, numpy_helper)
    ints = g.ints
    side = size + 2 * shift
    pixels = g.node("Cast", ["x"], "float", to=TensorProto.FLOAT)
    nchw = g.node("Transpose", [pixels], "nchw", perm=[0, 3, 1, 2])
    # the columns of the crops; the whole height
    chip = g.node("Slice", [nchw, ints(shift), ints(shift + size), ints(3)], "cols")
    mirror = g.node("Slice", [chip, ints(-1), ints(-(2**62)), ints(3), ints(-1)], "mirror")
    both = g.node("Concat", [chip, mirror], "both", axis=0)
    mean = g.const("mean", np.array(mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1))
    # (pixel - mean) / 256: a multiplication by 1/256 is exact, so the same floats as dlib's division.
    centred = g.node("Sub", [both, mean], "centred")
    x = _Value(
        g.node("Mul", [centred, g.const("scale", np.array(1 / 256, dtype=np.float32))], "scaled"), (3, side, size)
    )
    x = _emit(g, x, prepared[:n_stem])
    crop_rows = _rows_out(prepared[:n_stem], size)
    offsets = [offset // stride for offset in (shift, 0, 2 * shift)]
    same = prepared[n_stem : n_stem + _same_rows(prepared[n_stem:])] if blocks else []
    if 2 * sum(layer.padding[0] for layer in same if isinstance(layer, Conv)) >= crop_rows:
        same = []  # the rows each view computes by its edges would meet: nothing to share
    views = _emit_views(g, x, same, offsets, crop_rows)
    x = _Value(g.node("Concat", [view.name for view in views], "views", axis=0), views[0].shape)
    x = _emit(g, x, prepared[n_stem + len(same) :])
    g.nodes.append(helper.make_node("Identity", [x.name], ["y"]))
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", side, side, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["views", x.shape[0]])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="photocluster")
    model.ir_version = IR_VERSION
    return bytes(model.SerializeToString())


def _same_rows(layers: list[Layer]) -> int:
    """How many of the first ``layers`` keep each row where it is: stride-1 convs padded by half
    their size, element-wise layers, and residual adds of tags set among them. 0 where a layer
    after them reads a tag set among them."""
    n = 0
    for layer in layers:
        if isinstance(layer, Conv):
            kh, kw = layer.weight.shape[2:]
            if layer.stride != (1, 1) or kh % 2 == 0 or layer.padding != (kh // 2, kw // 2):
                break
        elif isinstance(layer, Affine):
            if not layer.conv_mode:  # an affine per position would need the rows it was cut from
                break
        elif not isinstance(layer, Relu | Tag | AddPrev):
            break
        n += 1
    while n and isinstance(layers[n - 1], Tag):
        n -= 1  # the tag is set on the views, by the layers after these
    pending = {layer.id for layer in layers[:n] if isinstance(layer, Tag)}
    for layer in layers[n:]:
        if isinstance(layer, Tag):
            pending.discard(layer.id)
        elif isinstance(layer, Skip | AddPrev) and layer.id in pending:
            return 0
    return n


@dataclass
class _Banded:
    """One value of :func:`_emit_views`: ``whole``, on the whole height of each chip and mirror
    image, and the ``depth`` rows by each view's top and bottom edge that differ from it, where
    the view's own zero padding has reached: ``top`` for the views that do not start at the
    chip's first row, ``bottom`` for those that do not end at its last, each stacked on the
    batch axis (None while ``depth`` is 0)."""

    whole: _Value
    top: str | None = None
    bottom: str | None = None
    depth: int = 0


def _emit_views(g: _Emitter, x: _Value, layers: list[Layer], offsets: list[int], rows: int) -> list[_Value]:
    """The views of ``x`` (its rows ``offset`` to ``offset + rows``, one value each) after
    ``layers`` (:func:`_same_rows`), computed once on the whole height and, for each view, only
    on the rows by its edges where its own padding makes it differ. A conv padded by ``p`` rows
    moves that difference ``p`` rows in; every other row of a view is the whole height's, which
    onnxruntime computes with the same products (the views agree with their crops to ~1e-7)."""
    height = x.shape[1]
    assert height is not None
    tops = [o for o in offsets if o > 0]
    bottoms = [o for o in offsets if o + rows < height]

    def cut(value: str, start: int, stop: int) -> str:
        return g.node("Slice", [value, g.ints(start), g.ints(stop), g.ints(2)], "rows")

    def joined(parts: list[str], axis: int) -> str:
        return parts[0] if len(parts) == 1 else g.node("Concat", parts, "join", axis=axis)

    def deepen(v: _Banded, depth: int) -> _Banded:
        """``v`` with ``depth`` rows by the edges: the next rows come from the whole height."""
        if depth <= v.depth:
            return v
        top = bottom = None
        if tops:
            more = joined([cut(v.whole.name, o + v.depth, o + depth) for o in tops], 0)
            top = joined([v.top, more], 2) if v.top else more
        if bottoms:
            more = joined([cut(v.whole.name, o + rows - depth, o + rows - v.depth) for o in bottoms], 0)
            bottom = joined([more, v.bottom], 2) if v.bottom else more
        return _Banded(v.whole, top, bottom, depth)

    def edge(name: str | None, v: _Banded, layer: Layer, pads: list[int] | None = None) -> str | None:
        """``layer`` on the edge rows ``name`` of ``v`` (a conv padded by ``pads``)."""
        if name is None:
            return None
        band = _Value(name, (v.whole.shape[0], v.depth, v.whole.shape[2]))
        return (_conv(g, band, layer, pads) if isinstance(layer, Conv) else _layer(g, band, layer)).name

    def add(a: _Banded, b: _Banded, name_a: str | None, name_b: str | None) -> str | None:
        """dlib's add_prev of the edge rows of ``a`` and ``b`` (channel counts may differ)."""
        if name_a is None or name_b is None:
            return None
        band_a = _Value(name_a, (a.whole.shape[0], a.depth, a.whole.shape[2]))
        band_b = _Value(name_b, (b.whole.shape[0], b.depth, b.whole.shape[2]))
        return _add_padded(band_a, band_b, g.nodes, g.const, g.fresh, g.helper).name

    tags: dict[int, _Banded] = {}
    v = _Banded(x)
    for layer in layers:
        if isinstance(layer, Tag):
            tags[layer.id] = v
        elif isinstance(layer, AddPrev):
            depth = max(v.depth, tags[layer.id].depth)
            a, b = deepen(v, depth), deepen(tags[layer.id], depth)
            whole = _add_padded(a.whole, b.whole, g.nodes, g.const, g.fresh, g.helper)
            v = _Banded(whole, add(a, b, a.top, b.top), add(a, b, a.bottom, b.bottom), depth)
        elif isinstance(layer, Conv):
            py, px = layer.padding
            src = deepen(v, v.depth + 2 * py)  # rows 0..depth + p - 1 need p more below them
            top = edge(src.top, src, layer, [py, px, 0, px])
            bottom = edge(src.bottom, src, layer, [0, px, py, px])
            v = _Banded(_conv(g, v.whole, layer), top, bottom, v.depth + py)
        else:
            v = _Banded(_layer(g, v.whole, layer), edge(v.top, v, layer), edge(v.bottom, v, layer), v.depth)

    def split(name: str | None, count: int) -> list[str]:
        if name is None or count < 2:
            return [] if name is None else [name]
        parts = [g.fresh("part") for _ in range(count)]
        g.nodes.append(g.helper.make_node("Split", [name], parts, axis=0))
        return parts

    top_of = dict(zip(tops, split(v.top, len(tops)), strict=False))
    bottom_of = dict(zip(bottoms, split(v.bottom, len(bottoms)), strict=False))
    views = []
    for o in offsets:
        first = o + v.depth if o in top_of else o
        last = o + rows - v.depth if o in bottom_of else o + rows
        parts = [top_of[o]] if o in top_of else []
        parts.append(cut(v.whole.name, first, last))
        parts += [bottom_of[o]] if o in bottom_of else []
        views.append(_Value(joined(parts, 2), (v.whole.shape[0], rows, v.whole.shape[2])))
    return views


def _rows_out(layers: list[Layer], rows: int) -> int:
    """Output rows of unpadded ``layers`` on ``rows`` input rows."""
    for layer in layers:
        if isinstance(layer, Conv):
            rows = (rows - layer.weight.shape[2]) // layer.stride[0] + 1
        elif isinstance(layer, Pool):
            rows = (rows - layer.size[0]) // layer.stride[0] + 1
    return rows


def _layer(g: _Emitter, x: _Value, layer: Layer) -> _Value:
    """The nodes of one computing layer (not the tag/skip/add_prev bookkeeping) applied to ``x``."""
    if isinstance(layer, Conv) and _single_output(layer):
        return _single_output_conv(x, layer, g.nodes, g.const, g.fresh, g.helper)
    if isinstance(layer, Conv):
        return _conv(g, x, layer)
    if isinstance(layer, Affine):
        shape = (1, *layer.gamma.shape[1:]) if not layer.conv_mode else (1, layer.gamma.size, 1, 1)
        scaled = g.node("Mul", [x.name, g.const("g", layer.gamma.reshape(shape))], "scaled")
        return _Value(g.node("Add", [scaled, g.const("be", layer.beta.reshape(shape))], "affine"), x.shape)
    if isinstance(layer, Relu):
        return _Value(g.node("Relu", [x.name], "relu"), x.shape)
    if isinstance(layer, Pool):
        return _pool(g, x, layer)
    if isinstance(layer, Fc):
        flat_name = g.node("Flatten", [x.name], "flat", axis=1)
        if layer.bias is None:
            out = g.node("MatMul", [flat_name, g.const("fw", layer.weight)], "fc")
        else:
            out = g.node("Gemm", [flat_name, g.const("fw", layer.weight), g.const("fb", layer.bias)], "fc")
        return _Value(out, (layer.weight.shape[1], 1, 1))
    raise ModelError(f"unsupported layer {layer!r}")  # pragma: no cover - the layer union is closed


def _conv(g: _Emitter, x: _Value, layer: Conv, pads: list[int] | None = None) -> _Value:
    """``layer`` on ``x``; ``pads`` (top, left, bottom, right) in place of the layer's own."""
    inputs = [x.name, g.const("w", layer.weight)]
    if layer.bias is not None:
        inputs.append(g.const("b", layer.bias))
    kh, kw = layer.weight.shape[2:]
    (sy, sx), (py, px) = layer.stride, layer.padding
    pads = pads or [py, px, py, px]
    out = g.node("Conv", inputs, "conv", kernel_shape=[kh, kw], strides=[sy, sx], pads=pads)
    rows = None if x.shape[1] is None else (x.shape[1] + pads[0] + pads[2] - kh) // sy + 1
    y = _Value(out, (layer.weight.shape[0], rows, _out_size(x.shape[2], kw, sx, px)))
    if layer.relu:
        y = _Value(g.node("Relu", [y.name], "relu"), y.shape)
    return y


def _pool(g: _Emitter, x: _Value, layer: Pool) -> _Value:
    if layer.size == (0, 0):
        out = g.node("GlobalMaxPool" if layer.max else "GlobalAveragePool", [x.name], "pool")
        return _Value(out, (x.shape[0], 1, 1))
    (kh, kw), (sy, sx), (py, px) = layer.size, layer.stride, layer.padding
    if py or px:
        # dlib leaves padded cells out of the average; ONNX would need
        # count_include_pad=0 and max pools differ at borders. Neither model uses it.
        raise ModelError("padded pooling layers are not supported")
    op = "MaxPool" if layer.max else "AveragePool"
    out = g.node(op, [x.name], "pool", kernel_shape=[kh, kw], strides=[sy, sx])
    return _Value(out, (x.shape[0], _out_size(x.shape[1], kh, sy, 0), _out_size(x.shape[2], kw, sx, 0)))


def _single_output(conv: Conv) -> bool:
    o, i, kh, kw = conv.weight.shape
    return o == 1 and i >= 8 and kh * kw >= 9 and not conv.relu


def _single_output_conv(x: _Value, conv: Conv, nodes: list[Any], const: Any, fresh: Any, helper: Any) -> _Value:
    """A conv with one filter (the detector's 9x9 scoring layer) as a depthwise conv and a
    1x1 sum over channels: same products, 5-8x faster in onnxruntime than one conv whose
    matrix product has a single row."""
    _, channels, kh, kw = conv.weight.shape
    (sy, sx), (py, px) = conv.stride, conv.padding
    per_channel = fresh("dw")
    nodes.append(
        helper.make_node(
            "Conv",
            [x.name, const("w", conv.weight.reshape(channels, 1, kh, kw))],
            [per_channel],
            kernel_shape=[kh, kw],
            strides=[sy, sx],
            pads=[py, px, py, px],
            group=channels,
        )
    )
    out = fresh("conv")
    inputs = [per_channel, const("w", np.ones((1, channels, 1, 1), dtype=np.float32))]
    if conv.bias is not None:
        inputs.append(const("b", conv.bias))
    nodes.append(helper.make_node("Conv", inputs, [out], kernel_shape=[1, 1]))
    return _Value(out, (1, _out_size(x.shape[1], kh, sy, py), _out_size(x.shape[2], kw, sx, px)))


def _add_padded(a: _Value, b: _Value, nodes: list[Any], const: Any, fresh: Any, helper: Any) -> _Value:
    """dlib's add_prev: tensors of different sizes are added where they overlap (top-left
    aligned) and the rest of the larger shape keeps the one value present (zeros elsewhere).
    The ResNet needs this where a stride-2 block and its pooled shortcut differ by a row."""
    if None in a.shape[1:] or None in b.shape[1:]:
        if a.shape[0] != b.shape[0]:
            raise ModelError("add_prev of tensors with unknown sizes is not supported")
        out = fresh("add")
        nodes.append(helper.make_node("Add", [a.name, b.name], [out]))
        return _Value(out, a.shape)
    shape_a = [int(d or 0) for d in a.shape]
    shape_b = [int(d or 0) for d in b.shape]
    target = [max(p, q) for p, q in zip(shape_a, shape_b, strict=True)]
    names = []
    for v, shape in ((a, shape_a), (b, shape_b)):
        pads = [t - s for t, s in zip(target, shape, strict=True)]
        if any(pads):
            padded = fresh("pad")
            pad_values = np.array([0, 0, 0, 0, 0, *pads], dtype=np.int64)
            nodes.append(helper.make_node("Pad", [v.name, const("pads", pad_values)], [padded]))
            names.append(padded)
        else:
            names.append(v.name)
    out = fresh("add")
    nodes.append(helper.make_node("Add", names, [out]))
    return _Value(out, (target[0], target[1], target[2]))


def make_session(model: bytes, threads: int) -> Any:
    """An onnxruntime session for ``model``: ``threads`` intra-op threads, run sequentially."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"onnxruntime cannot be imported ({exc}): pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"onnxruntime cannot load the converted model: {first_line}") from None
