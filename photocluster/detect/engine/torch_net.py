"""A parsed dlib network run by PyTorch: on a CUDA GPU when one is seen, else on the CPU.

:class:`TorchBackend` interprets the layer list of :mod:`dlib_format` with the same math as
:mod:`onnx_graph` (convolutions with their affine folded in, relu, max/avg pooling including
global pooling, fc, and dlib's tag/skip/add_prev with its padded add), in float32: TF32 is
turned off for convolutions and matrix products, so the results agree with onnxruntime's to
float32 rounding (~1e-6), not TF32's ~1e-3.

torch is imported only here, and only when a torch backend is built: ``import photocluster``
never imports it, and without it ``--engine torch`` is a :class:`ModelError` that says what
to install. ``PHOTOCLUSTER_TORCH_DEVICE`` (``cuda``, ``cuda:1``, ``cpu``) overrides the device.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.dlib_format import (
    AddPrev,
    Affine,
    Conv,
    Fc,
    Layer,
    Pool,
    PyramidInput,
    Relu,
    Skip,
    Tag,
    fold_affine,
)
from photocluster.detect.engine.pyramid import Geometry
from photocluster.detect.engine.torch_pyramid import TorchPyramid

DEVICE_ENV = "PHOTOCLUSTER_TORCH_DEVICE"
INSTALL_HINT = "pip install 'photocluster[gpu]'"
# The embedder's largest batch on a GPU; batches are padded to a power of two so that cuDNN's
# autotuner (cudnn.benchmark) sees a handful of shapes.
GPU_BATCH = 256
CPU_BATCH = 32
# Canvas pixels the detector runs at once (in one batch, or one band of a larger canvas): about
# 100 bytes of GPU memory per canvas pixel at the widest layers; on the CPU, as for onnxruntime.
# 128M keeps the first layer's output (32 channels at a quarter of the pixels) at 1G values,
# half of what cuDNN indexes with 32-bit integers. Four 12 MP photos (upsampled once) per batch.
CPU_MAX_PIXELS = 6_000_000
GPU_MAX_PIXELS = 128_000_000
GPU_BYTES_PER_PIXEL = 200


def torch_installed() -> bool:
    """Whether ``import torch`` can work, found without importing it (which takes seconds)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def import_torch() -> Any:
    """The ``torch`` module, or a :class:`ModelError` naming the extra to install."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ModelError(f"the torch engine needs PyTorch, which cannot be imported ({exc}): {INSTALL_HINT}") from None


@dataclass(frozen=True)
class TorchInfo:
    """What ``photocluster doctor`` says about PyTorch here."""

    installed: bool
    version: str | None = None
    cuda_version: str | None = None  # the CUDA that torch was built with; None: a CPU build
    cuda_available: bool = False
    device: str | None = None  # the device the torch engine would use
    device_name: str | None = None  # e.g. "NVIDIA H200"
    error: str | None = None

    def describe(self) -> str:
        if not self.installed:
            return f"not installed ({INSTALL_HINT})"
        if self.error:
            return f"cannot be used: {self.error}"
        build = f"CUDA {self.cuda_version}" if self.cuda_version else "CPU build"
        return f"{self.version} ({build}); device {self.device} ({self.device_name})"


def torch_info() -> TorchInfo:
    """PyTorch's version, build and the device the torch engine would run on (imports torch)."""
    if not torch_installed():
        return TorchInfo(installed=False)
    try:
        torch = import_torch()
        device = pick_device(torch)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
        return TorchInfo(
            True, str(torch.__version__), torch.version.cuda, bool(torch.cuda.is_available()), device, str(name)
        )
    except Exception as exc:  # noqa: BLE001 - a broken install or driver: report it, do not crash doctor
        return TorchInfo(True, error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def cuda_visible() -> bool:
    """torch is installed and sees a CUDA device (what ``--engine auto`` looks for)."""
    if not torch_installed():
        return False
    try:
        return bool(import_torch().cuda.is_available())
    except Exception:  # noqa: BLE001 - a torch that fails to import or to find a driver: no GPU
        return False


def pick_device(torch: Any) -> str:
    """``$PHOTOCLUSTER_TORCH_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    wanted = os.environ.get(DEVICE_ENV, "").strip()
    if wanted:
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"{DEVICE_ENV}={wanted}, but torch sees no CUDA device")
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def _configure_cuda(torch: Any) -> None:
    """float32 convolutions and matrix products (no TF32), and cuDNN's autotuner for the
    fixed or bucketed shapes the engine runs. Process-wide: torch has no per-call switch."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    try:
        if conv is None or not hasattr(conv, "fp32_precision"):
            raise AttributeError("no fp32_precision")
        conv.fp32_precision = "ieee"  # torch >= 2.9: only the new API (mixing both is an error there)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    except (AttributeError, RuntimeError):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True


# ---------------------------------------------------------------------------------------------
# The interpreter.

Op = tuple[Any, ...]


def _ops(layers: list[Layer]) -> tuple[list[Op], dict[str, np.ndarray]]:
    """The layers as a list of ops naming their weights, and the weights by name. Each conv's
    following conv-mode affine is folded into it, as onnx_graph does."""
    ops: list[Op] = []
    weights: dict[str, np.ndarray] = {}

    def keep(value: np.ndarray | None) -> str | None:
        if value is None:
            return None
        name = f"w{len(weights)}"
        weights[name] = np.ascontiguousarray(value, dtype=np.float32)
        return name

    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Conv) and isinstance(nxt, Affine) and nxt.conv_mode:
            layer = fold_affine(layer, nxt)
            i += 1
        i += 1
        if isinstance(layer, Conv):
            ops.append(("conv", keep(layer.weight), keep(layer.bias), layer.stride, layer.padding, layer.relu))
        elif isinstance(layer, Affine):
            shape = (1, layer.gamma.size, 1, 1) if layer.conv_mode else (1, *layer.gamma.shape[1:])
            ops.append(("affine", keep(layer.gamma.reshape(shape)), keep(layer.beta.reshape(shape))))
        elif isinstance(layer, Relu):
            ops.append(("relu",))
        elif isinstance(layer, Pool):
            if layer.size != (0, 0) and any(layer.padding):
                # As in onnx_graph: dlib leaves padded cells out of averages; neither model pads.
                raise ModelError("padded pooling layers are not supported")
            ops.append(("pool", layer.max, layer.size, layer.stride))
        elif isinstance(layer, Fc):
            ops.append(("fc", keep(layer.weight), keep(layer.bias)))
        elif isinstance(layer, Tag | Skip | AddPrev):
            ops.append((type(layer).__name__.lower(), layer.id))
        else:  # pragma: no cover - the layer union is closed
            raise ModelError(f"unsupported layer {layer!r}")
    return ops, weights


Sizes = list[tuple[int, int]] | None  # per sample: the rows and cols that hold its real values


def _out(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


def _mask(torch: Any, x: Any, sizes: Sizes) -> Any:
    """``x`` with every sample's values outside its own size set to zero: what the zero padding
    of a convolution sees when the sample runs alone, at its own size."""
    rows, cols = int(x.shape[2]), int(x.shape[3])
    if sizes is None or all(r >= rows and c >= cols for r, c in sizes):
        return x
    r = torch.tensor([s[0] for s in sizes], device=x.device).view(-1, 1, 1, 1)
    c = torch.tensor([s[1] for s in sizes], device=x.device).view(-1, 1, 1, 1)
    inside = (torch.arange(rows, device=x.device).view(1, 1, -1, 1) < r) & (
        torch.arange(cols, device=x.device).view(1, 1, 1, -1) < c
    )
    return x.masked_fill(~inside, 0.0)


def _add_padded(torch: Any, a: Any, b: Any) -> Any:
    """dlib's add_prev: where the shapes differ, both are zero-padded at the end (channels,
    rows, cols) to the larger of each, then added (see onnx_graph._add_padded)."""
    if tuple(a.shape) == tuple(b.shape):
        return a + b
    target = [max(int(p), int(q)) for p, q in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: Any) -> Any:
        c, h, w = (int(d) for d in t.shape[1:])
        return torch.nn.functional.pad(t, (0, target[2] - w, 0, target[1] - h, 0, target[0] - c))

    return pad(a) + pad(b)


def _run_op(torch: Any, op: Op, w: Any, x: Any, sizes: Sizes) -> tuple[Any, Sizes]:
    """One computing op on ``x``; returns the output and each sample's size after it."""
    func = torch.nn.functional
    kind = op[0]
    if kind == "conv":
        _, wname, bname, stride, padding, relu = op
        if any(padding):
            x = _mask(torch, x, sizes)
        weight = w(wname)
        x = func.conv2d(x, weight, w(bname) if bname else None, stride=stride, padding=padding)
        if relu:
            x = func.relu(x)
        kh, kw = int(weight.shape[2]), int(weight.shape[3])
        if sizes is not None:
            sizes = [(_out(r, kh, stride[0], padding[0]), _out(c, kw, stride[1], padding[1])) for r, c in sizes]
        return x, sizes
    if kind == "affine":
        gamma, beta = w(op[1]), w(op[2])
        return x * gamma.view(1, *gamma.shape[1:], *(1,) * (x.dim() - gamma.dim())) + beta.view(
            1, *beta.shape[1:], *(1,) * (x.dim() - beta.dim())
        ), sizes
    if kind == "relu":
        return func.relu(x), sizes
    if kind == "pool":
        _, is_max, size, stride = op
        if size == (0, 0):
            if sizes is not None and any((r, c) != tuple(x.shape[2:]) for r, c in sizes):
                raise ModelError("global pooling over samples of different sizes is not supported")
            return (x.amax(dim=(2, 3), keepdim=True) if is_max else x.mean(dim=(2, 3), keepdim=True)), None
        pool = func.max_pool2d if is_max else func.avg_pool2d
        x = pool(x, kernel_size=size, stride=stride)
        if sizes is not None:
            sizes = [(_out(r, size[0], stride[0], 0), _out(c, size[1], stride[1], 0)) for r, c in sizes]
        return x, sizes
    if kind == "fc":
        flat = x.reshape(x.shape[0], -1)
        y = flat @ w(op[1])
        return (y + w(op[2]) if op[2] else y), None
    raise ModelError(f"unsupported op {kind!r}")  # pragma: no cover - _ops makes only these


def run_ops(torch: Any, ops: list[Op], w: Any, x: Any, sizes: Sizes = None) -> Any:
    """The network on ``x`` (N, C, H, W). ``sizes``: each sample's real (rows, cols) when the
    batch holds samples of different sizes zero-padded at the bottom and right; every sample
    then gets what it would get alone, in the cells its own size has."""
    tags: dict[int, tuple[Any, Sizes]] = {}
    for op in ops:
        kind = op[0]
        if kind == "tag":
            tags[op[1]] = (x, sizes)
        elif kind == "skip":
            x, sizes = tags[op[1]]
        elif kind == "addprev":
            other, other_sizes = tags[op[1]]
            x = _add_padded(torch, x, other)
            if sizes is not None and other_sizes is not None:
                sizes = [(max(a[0], b[0]), max(a[1], b[1])) for a, b in zip(sizes, other_sizes, strict=True)]
        else:
            x, sizes = _run_op(torch, op, w, x, sizes)
    return x


@functools.cache
def _module_class() -> Any:
    """``DlibNet``, a ``torch.nn.Module`` (defined on first use: torch is imported lazily)."""
    torch = import_torch()

    class DlibNet(torch.nn.Module):  # type: ignore[misc, name-defined]
        """The layer list as a module: the weights are buffers, ``forward`` interprets the ops."""

        def __init__(self, layers: list[Layer]) -> None:
            super().__init__()
            self.ops, weights = _ops(layers)
            for name, value in weights.items():
                self.register_buffer(name, torch.from_numpy(value.copy()))

        def weight(self, name: str) -> Any:
            return getattr(self, name)

        def forward(self, x: Any, sizes: Sizes = None) -> Any:
            return run_ops(torch, self.ops, self.weight, x, sizes)

    return DlibNet


def build_module(layers: list[Layer]) -> Any:
    """A ``torch.nn.Module`` computing ``layers`` (on the CPU; ``.to(device)`` moves it)."""
    return _module_class()(layers).eval()


class TorchBackend:
    """A dlib network on PyTorch, on :func:`pick_device`'s device. ``fixed_shape``: every input
    has the same rows and cols (the embedder), so batches are padded to a power of two."""

    name = "torch"

    def __init__(self, layers: list[Layer], fixed_shape: bool = False) -> None:
        self.torch = torch = import_torch()
        self.device = pick_device(torch)
        self.cuda = self.device.startswith("cuda")
        if self.cuda:
            _configure_cuda(torch)
            total = int(torch.cuda.get_device_properties(self.device).total_memory)
            self.max_pixels = min(GPU_MAX_PIXELS, total // GPU_BYTES_PER_PIXEL)
            self.batch = GPU_BATCH
        else:
            self.max_pixels = CPU_MAX_PIXELS
            self.batch = CPU_BATCH
        self.fixed_shape = fixed_shape
        self.module = build_module(layers).to(self.device)

    def tensor(self, x: np.ndarray | Any) -> Any:
        """``x`` as a float32 tensor on the device (a tensor already there is used as is)."""
        if isinstance(x, np.ndarray):
            return self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        return x

    def run_tensor(self, x: Any, sizes: Sizes = None) -> Any:
        """The network on a device tensor; the output stays on the device."""
        with self.torch.inference_mode():
            return self.module(x, sizes)

    def run(self, x: np.ndarray | Any) -> np.ndarray:
        """The network on ``x`` (a numpy array, or a tensor on the device), as a numpy array."""
        t = self.tensor(x)
        n = int(t.shape[0])
        padded = n
        if self.fixed_shape and self.cuda and 0 < n < self.batch:
            padded = min(self.batch, 1 << (n - 1).bit_length())
        if padded != n:
            t = self.torch.cat([t, t.new_zeros((padded - n, *t.shape[1:]))])
        out: np.ndarray = self.run_tensor(t)[:n].float().cpu().numpy()
        return out

    def pyramid(self, inp: PyramidInput, geometry: Geometry) -> TorchPyramid:
        """The pyramid built on this backend's device, and photos' canvases run in batches."""
        return TorchPyramid(self, inp, geometry)
