"""Read the weights of a serialised dlib DNN (a ``.dat`` written by ``dlib::serialize(net)``).

dlib writes a network from the loss layer inwards: every wrapper (``add_layer``, tag, skip)
first writes its version int, then its sub-network, and only then its own layer details and
state. So the file holds all wrapper versions outermost-first, then the input layer, then the
layer details innermost-first. Tags and skips carry no id in the file, which is why the
architecture (:data:`Spec`) has to be known here: the file is checked against it.

Encodings (dlib/serialize.h, dlib/cuda/tensor.h):

- integers: one control byte (low nibble: byte count, 0x80: negative) then little-endian bytes;
- scalar floats/doubles: a ``float_details`` pair: int64 mantissa and int16 exponent, both as
  integers above, value ``mantissa * 2**exponent``;
- strings: length (integer) then the bytes; bools: the characters ``'1'``/``'0'``;
- tensors: version 2, then num_samples, k, nr, nc, then raw little-endian float32s. Almost all
  of a model's bytes are these, so they are read with one ``np.frombuffer`` each;
- alias tensors (views into a layer's ``params``): version 1 and the four dimensions only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photocluster.core.errors import ModelError

# float_details marks infinities and NaN with these exponents.
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002


class FormatError(ValueError):
    """The bytes do not follow dlib's serialisation format (or the expected network)."""


class Reader:
    """A cursor over the bytes of a dlib serialisation stream."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise FormatError(f"unexpected end of data at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def int_(self, bits: int = 64) -> int:
        """A signed integer (dlib's ``pack_int`` for signed types)."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > bits // 8:
            raise FormatError(f"bad integer control byte 0x{control:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def uint(self, bits: int = 64) -> int:
        """An unsigned integer; dlib keeps three reserved bits, so only the 0x80 bit is an error."""
        control = self._take(1)[0] & 0x8F
        if control == 0 or control > bits // 8:
            raise FormatError(f"bad unsigned integer control byte at byte {self.pos - 1}")
        return int.from_bytes(self._take(control), "little")

    def float_(self) -> float:
        """A scalar float or double (``float_details``)."""
        if self.data[self.pos] & 0x70:
            # dlib's pre-2013 ASCII float format: no model in face-recognition-models uses it.
            raise FormatError(f"old ASCII float format at byte {self.pos} is not supported")
        mantissa = self.int_(64)
        exponent = self.int_(16)
        if exponent == _IS_INF:
            return math.inf
        if exponent == _IS_NINF:
            return -math.inf
        if exponent == _IS_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def string(self) -> str:
        n = self.uint()
        return bytes(self._take(n)).decode("latin-1")

    def bool_(self) -> bool:
        ch = self._take(1)[0]
        if ch not in (0x30, 0x31):
            raise FormatError(f"bad bool byte 0x{ch:02x} at byte {self.pos - 1}")
        return ch == 0x31

    def tensor(self) -> np.ndarray:
        """A tensor as a float32 array (num_samples, k, nr, nc); a read-only view of the bytes."""
        version = self.int_()
        if version != 2:
            raise FormatError(f"unexpected tensor version {version} at byte {self.pos}")
        shape = tuple(self.int_() for _ in range(4))
        if any(d < 0 for d in shape):
            raise FormatError(f"negative tensor dimension {shape}")
        count = math.prod(shape)
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int_()
        if version != 1:
            raise FormatError(f"unexpected alias_tensor version {version} at byte {self.pos}")
        n, k, nr, nc = (self.int_() for _ in range(4))
        return (n, k, nr, nc)

    def expect_name(self, *names: str) -> str:
        at = self.pos
        name = self.string()
        if name not in names:
            raise FormatError(f"found {name!r} at byte {at}, expected {' or '.join(map(repr, names))}")
        return name


# ---------------------------------------------------------------------------------------------
# The layers, as numpy weights.


@dataclass
class Conv:
    weight: np.ndarray  # (num_filters, k, nr, nc): the same order as ONNX's OIHW
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    relu: bool = False  # con_6 can fuse a relu


@dataclass
class Affine:
    gamma: np.ndarray  # (1, k) in conv mode (per channel), (1, k, nr, nc) in fc mode
    beta: np.ndarray
    conv_mode: bool


@dataclass
class Relu:
    pass


@dataclass
class Pool:
    max: bool
    size: tuple[int, int]  # (0, 0): the whole input ("pool everything")
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass
class Fc:
    weight: np.ndarray  # (num_inputs, num_outputs)
    bias: np.ndarray | None


@dataclass
class Tag:
    id: int


@dataclass
class Skip:
    id: int


@dataclass
class AddPrev:
    id: int


Layer = Conv | Affine | Relu | Pool | Fc | Tag | Skip | AddPrev


def fold_affine(conv: Conv, affine: Affine) -> Conv:
    """conv followed by a per-channel affine is one conv. dlib runs them as two steps, so this
    moves rounding by about one float32 ulp: far below what the comparisons with dlib can see."""
    gamma = affine.gamma.reshape(-1).astype(np.float32)
    beta = affine.beta.reshape(-1).astype(np.float32)
    bias = conv.bias if conv.bias is not None else np.zeros_like(gamma)
    weight = (conv.weight * gamma[:, None, None, None]).astype(np.float32)
    return Conv(weight, (bias * gamma + beta).astype(np.float32), conv.stride, conv.padding, conv.relu)


@dataclass
class PyramidInput:
    mean_rgb: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass
class SizedInput:
    mean_rgb: tuple[float, float, float]
    nr: int
    nc: int


@dataclass
class MmodOptions:
    windows: list[tuple[int, int, str]]  # (width, height, label)
    nms_iou: float
    nms_percent_covered: float
    bbox_regression: bool


@dataclass
class MetricLoss:
    margin: float
    distance_threshold: float


@dataclass
class Network:
    loss: MmodOptions | MetricLoss
    input: PyramidInput | SizedInput
    layers: list[Layer] = field(default_factory=list)  # input side first


# ---------------------------------------------------------------------------------------------
# The architecture: one entry per dlib layer, loss side first, as written in the C++ type.
# ("con", filters, nr, nc, stride) / ("affine",) / ("relu",) / ("max_pool"|"avg_pool", nr, nc,
# stride) / ("fc", outputs, bias) / ("tag", id) / ("skip", id) / ("add_prev", id).

SpecItem = tuple[str | int | bool, ...]
Spec = Sequence[SpecItem]


def _read_scalars(r: Reader, n: int) -> None:
    for _ in range(n):
        r.float_()


def _read_con(r: Reader, item: SpecItem) -> Conv:
    version = r.expect_name("con_4", "con_5", "con_6")
    params = r.tensor().reshape(-1)
    num_filters = r.int_()
    nr, nc = r.int_(), r.int_()
    stride = (r.int_(), r.int_())
    padding = (r.int_(), r.int_())
    shape = r.alias_tensor()
    r.alias_tensor()  # the biases: (1, num_filters), right after the filters in params
    _read_scalars(r, 4)  # learning-rate and weight-decay multipliers
    use_bias = r.bool_() if version in ("con_5", "con_6") else True
    use_relu = r.bool_() if version == "con_6" else False
    _, filters, enr, enc, estride = item
    if (num_filters, nr, nc, stride) != (filters, enr, enc, (estride, estride)) or shape[0] != num_filters:
        raise FormatError(f"convolution is {num_filters}x{nr}x{nc}/{stride}, expected {filters}x{enr}x{enc}/{estride}")
    size = math.prod(shape)
    weight = params[:size].reshape(shape)
    bias = params[size : size + num_filters] if use_bias else None
    if params.size != size + (num_filters if use_bias else 0):
        raise FormatError(f"convolution parameter count {params.size} does not match its filters {shape}")
    return Conv(weight, bias, stride, padding, use_relu)


def _read_affine(r: Reader) -> Affine:
    version = r.expect_name("affine_", "affine_2", "bn_con2", "bn_fc2")
    params = r.tensor().reshape(-1)
    gamma_shape = r.alias_tensor()
    beta_shape = r.alias_tensor()
    n = math.prod(gamma_shape)
    if params.size != n + math.prod(beta_shape):
        raise FormatError("affine parameter count does not match gamma and beta")
    gamma = params[:n].reshape(gamma_shape[:2] if gamma_shape[2:] == (1, 1) else gamma_shape)
    beta = params[n:].reshape(gamma.shape)
    if version.startswith("bn_"):
        # A batch-norm layer loaded as affine_: dlib folds the running statistics in, in float32
        # (affine_'s constructor from bn_).
        r.tensor()  # means
        r.tensor()  # invstds
        running_means = r.tensor().reshape(gamma.shape)
        running_variances = r.tensor().reshape(gamma.shape)
        r.uint()  # num_updates
        r.uint()  # running_stats_window_size
        _read_scalars(r, 4)
        eps = np.float32(r.float_())
        g = gamma / np.sqrt(running_variances + eps)
        return Affine(g.astype(np.float32), (beta - g * running_means).astype(np.float32), version == "bn_con2")
    mode = r.int_()
    if version == "affine_2" and r.bool_():
        raise FormatError("disabled affine layers are not supported")
    return Affine(gamma, beta, mode == 0)  # dlib's layer_mode: CONV_MODE = 0, FC_MODE = 1


def _read_pool(r: Reader, item: SpecItem) -> Pool:
    kind, enr, enc, estride = item
    r.expect_name("max_pool_2" if kind == "max_pool" else "avg_pool_2")
    nr, nc = r.int_(), r.int_()
    stride = (r.int_(), r.int_())
    padding = (r.int_(), r.int_())
    if (nr, nc, stride) != (enr, enc, (estride, estride)):
        raise FormatError(f"{kind} is {nr}x{nc}/{stride}, expected {enr}x{enc}/{estride}")
    return Pool(kind == "max_pool", (nr, nc), stride, padding)


def _read_fc(r: Reader, item: SpecItem) -> Fc:
    version = r.expect_name("fc_2", "fc_3")
    num_outputs = r.uint()
    num_inputs = r.uint()
    params = r.tensor().reshape(-1)
    weights_shape = r.alias_tensor()
    r.alias_tensor()
    bias_mode = r.int_()  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    _read_scalars(r, 4)
    use_bias = r.bool_() if version == "fc_3" else True
    has_bias = bias_mode == 0 and use_bias
    _, outputs, expect_bias = item
    if num_outputs != outputs or bool(expect_bias) != (bias_mode == 0):
        raise FormatError(f"fc layer has {num_outputs} outputs (bias mode {bias_mode}), expected {outputs}")
    n = num_inputs * num_outputs
    if weights_shape[:2] != (num_inputs, num_outputs) or params.size < n:
        raise FormatError("fc parameter count does not match its shape")
    weight = params[:n].reshape(num_inputs, num_outputs)
    bias = params[n : n + num_outputs] if has_bias else None
    return Fc(weight, bias)


def _read_details(r: Reader, item: SpecItem) -> Layer:
    kind = item[0]
    if kind == "con":
        return _read_con(r, item)
    if kind == "affine":
        return _read_affine(r)
    if kind == "relu":
        if r.expect_name("relu_", "relu_2") == "relu_2" and r.bool_():
            raise FormatError("disabled relu layers are not supported")
        return Relu()
    if kind in ("max_pool", "avg_pool"):
        return _read_pool(r, item)
    if kind == "fc":
        return _read_fc(r, item)
    if kind == "add_prev":
        r.expect_name("add_prev_")
        return AddPrev(int(item[1]))
    raise FormatError(f"unknown layer kind {kind!r}")


def _read_mmod_options(r: Reader) -> MmodOptions:
    r.expect_name("loss_mmod_")
    version = r.int_()
    if not 1 <= version <= 4:
        raise FormatError(f"unexpected mmod_options version {version}")
    windows: list[tuple[int, int, str]] = []
    if version == 1:
        windows.append((r.uint(), r.uint(), ""))
    else:
        for _ in range(r.uint()):
            wversion = r.int_()
            width, height = r.uint(), r.uint()
            windows.append((width, height, r.string() if wversion == 2 else ""))
    r.float_()  # loss_per_false_alarm
    r.float_()  # loss_per_missed_target
    r.float_()  # truth_match_iou_threshold
    nms_iou, nms_cover = r.float_(), r.float_()
    r.float_()  # overlaps_ignore
    r.float_()
    bbr = False
    if version >= 3:
        r.uint()  # assume_image_pyramid (a uint8)
    if version >= 4:
        bbr = r.bool_()
        r.float_()
    return MmodOptions(windows, nms_iou, nms_cover, bbr)


def _read_metric_loss(r: Reader) -> MetricLoss:
    if r.expect_name("loss_metric_", "loss_metric_2") == "loss_metric_":
        return MetricLoss(0.1, 0.75)
    return MetricLoss(r.float_(), r.float_())


def _read_input(r: Reader, kind: str) -> PyramidInput | SizedInput:
    if kind == "pyramid":
        version = r.expect_name("input_rgb_image_pyramid", "input_rgb_image_pyramid2")
        mean = (r.float_(), r.float_(), r.float_())
        if version == "input_rgb_image_pyramid2":
            return PyramidInput(mean, r.uint(), r.uint())
        return PyramidInput(mean, 10, 11)
    r.expect_name("input_rgb_image_sized")
    mean = (r.float_(), r.float_(), r.float_())
    return SizedInput(mean, r.uint(), r.uint())


def read_network(data: bytes | memoryview, loss: str, spec: Spec, input_kind: str) -> Network:
    """Parse a whole serialised ``add_loss_layer`` whose layers are ``spec`` (loss side first).

    Raises :class:`FormatError` when the bytes are not that network.
    """
    r = Reader(data)
    if r.int_() != 1:
        raise FormatError("not a dlib network file (bad add_loss_layer version)")
    loss_details = _read_mmod_options(r) if loss == "mmod" else _read_metric_loss(r)
    last = len(spec) - 1
    versions: list[int] = []
    for i, item in enumerate(spec):
        version = r.int_()
        wrapper = item[0] in ("tag", "skip")
        ok = version == 1 if wrapper else (2 <= version <= 3 if i == last else 1 <= version <= 2)
        if not ok or (wrapper and i == last):
            raise FormatError(f"layer {i} ({item[0]}): unexpected version {version}")
        versions.append(version)
    input_layer = _read_input(r, input_kind)
    layers: list[Layer] = []
    for i in range(last, -1, -1):
        item = spec[i]
        if item[0] == "tag":
            layers.append(Tag(int(item[1])))
            continue
        if item[0] == "skip":
            layers.append(Skip(int(item[1])))
            continue
        layers.append(_read_details(r, item))
        for _ in range(3):  # setup called, gradient stale, output/gradient disabled
            r.bool_()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if i == last:
            r.tensor()  # grad_final
            if versions[i] >= 3:
                r.int_()  # sample expansion factor
        elif versions[i] == 2:
            r.tensor()  # params_grad
    if r.pos != len(r.data):
        raise FormatError(f"{len(r.data) - r.pos} bytes left over after the network")
    return Network(loss_details, input_layer, layers)


def load_network(path: Path, loss: str, spec: Spec, input_kind: str) -> Network:
    """:func:`read_network` on a file; any problem becomes a one-line :class:`ModelError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    try:
        return read_network(data, loss, spec, input_kind)
    except FormatError as exc:
        raise ModelError(f"cannot parse dlib model file {path}: {exc}") from None
