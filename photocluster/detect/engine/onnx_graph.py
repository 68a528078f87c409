"""Turn a parsed dlib layer list into an ONNX graph and an onnxruntime session.

The graph is built in memory at first use, straight from the weights in the ``.dat``: nothing
is written to disk and nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.dlib_format import AddPrev, Affine, Conv, Fc, Layer, Pool, Relu, Skip, Tag

OPSET = 17
IR_VERSION = 8  # old enough for any onnxruntime that supports opset 17


@dataclass
class _Value:
    name: str
    shape: tuple[int, int | None, int | None]  # (channels, rows, cols); None: only known at run time


def _fold_affine(conv: Conv, affine: Affine) -> Conv:
    """conv followed by a per-channel affine is one conv. dlib runs them as two steps, so this
    moves rounding by about one float32 ulp: far below what the comparisons with dlib can see."""
    gamma = affine.gamma.reshape(-1).astype(np.float32)
    beta = affine.beta.reshape(-1).astype(np.float32)
    bias = conv.bias if conv.bias is not None else np.zeros_like(gamma)
    weight = (conv.weight * gamma[:, None, None, None]).astype(np.float32)
    return Conv(weight, (bias * gamma + beta).astype(np.float32), conv.stride, conv.padding, conv.relu)


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
            out.append(_fold_affine(layer, nxt))
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


def build_model(layers: list[Layer], channels: int, rows: int | None, cols: int | None, name: str) -> bytes:
    """An ONNX model (serialised) computing ``layers`` on input ``x`` (N, channels, rows, cols).

    Output ``y`` is the last layer's output; ``Fc`` layers flatten to (N, outputs).
    """
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ModelError(f"onnx cannot be imported ({exc}): pip install onnx") from None

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(1 << 30))

    def fresh(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def const(prefix: str, value: np.ndarray) -> str:
        tname = fresh(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), tname))
        return tname

    layers = prepare(layers)
    x = _Value("x", (channels, rows, cols))
    tags: dict[int, _Value] = {}
    flat = False
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Conv) and _single_output(layer):
            x = _single_output_conv(x, layer, nodes, const, fresh, helper)
        elif isinstance(layer, Conv):
            out = fresh("conv")
            inputs = [x.name, const("w", layer.weight)]
            if layer.bias is not None:
                inputs.append(const("b", layer.bias))
            kh, kw = layer.weight.shape[2:]
            (sy, sx), (py, px) = layer.stride, layer.padding
            nodes.append(
                helper.make_node("Conv", inputs, [out], kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
            )
            x = _Value(
                out, (layer.weight.shape[0], _out_size(x.shape[1], kh, sy, py), _out_size(x.shape[2], kw, sx, px))
            )
            if layer.relu:
                nodes.append(helper.make_node("Relu", [x.name], [out + "r"]))
                x = _Value(out + "r", x.shape)
        elif isinstance(layer, Affine):
            out = fresh("affine")
            shape = (1, *layer.gamma.shape[1:]) if not layer.conv_mode else (1, layer.gamma.size, 1, 1)
            scaled = fresh("scaled")
            nodes.append(helper.make_node("Mul", [x.name, const("g", layer.gamma.reshape(shape))], [scaled]))
            nodes.append(helper.make_node("Add", [scaled, const("be", layer.beta.reshape(shape))], [out]))
            x = _Value(out, x.shape)
        elif isinstance(layer, Relu):
            out = fresh("relu")
            nodes.append(helper.make_node("Relu", [x.name], [out]))
            x = _Value(out, x.shape)
        elif isinstance(layer, Pool):
            out = fresh("pool")
            if layer.size == (0, 0):
                nodes.append(helper.make_node("GlobalMaxPool" if layer.max else "GlobalAveragePool", [x.name], [out]))
                x = _Value(out, (x.shape[0], 1, 1))
            else:
                (kh, kw), (sy, sx), (py, px) = layer.size, layer.stride, layer.padding
                if py or px:
                    # dlib leaves padded cells out of the average; ONNX would need
                    # count_include_pad=0 and max pools differ at borders. Neither model uses it.
                    raise ModelError("padded pooling layers are not supported")
                op = "MaxPool" if layer.max else "AveragePool"
                nodes.append(helper.make_node(op, [x.name], [out], kernel_shape=[kh, kw], strides=[sy, sx]))
                x = _Value(out, (x.shape[0], _out_size(x.shape[1], kh, sy, 0), _out_size(x.shape[2], kw, sx, 0)))
        elif isinstance(layer, Fc):
            flat_name = fresh("flat")
            nodes.append(helper.make_node("Flatten", [x.name], [flat_name], axis=1))
            out = fresh("fc")
            if layer.bias is None:
                nodes.append(helper.make_node("MatMul", [flat_name, const("fw", layer.weight)], [out]))
            else:
                nodes.append(
                    helper.make_node("Gemm", [flat_name, const("fw", layer.weight), const("fb", layer.bias)], [out])
                )
            x = _Value(out, (layer.weight.shape[1], 1, 1))
            flat = True
        elif isinstance(layer, Tag):
            tags[layer.id] = x
        elif isinstance(layer, Skip):
            x = tags[layer.id]
        elif isinstance(layer, AddPrev):
            x = _add_padded(x, tags[layer.id], nodes, const, fresh, helper)
        else:  # pragma: no cover - the layer union is closed
            raise ModelError(f"unsupported layer {layer!r}")
        i += 1

    nodes.append(helper.make_node("Identity", [x.name], ["y"]))
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
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="photocluster")
    model.ir_version = IR_VERSION
    return bytes(model.SerializeToString())


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
