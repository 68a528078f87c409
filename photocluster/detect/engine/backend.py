"""What runs a parsed dlib network: onnxruntime on the CPU, or PyTorch (a GPU where one is seen).

:class:`Detector` and :class:`Embedder` hand their layer list to :func:`make_backend` and then
only call ``run(x)``: (N, C, H, W) float32 in, the last layer's output out, as a numpy array.
Each backend also brings the detector's image pyramid (``pyramid(...)``), which the detector
calls without asking which backend it has: the onnx backend builds it with numpy on the CPU
(:class:`~.pyramid.NumpyPyramid`), the torch backend on its device (``torch_pyramid``), so that
a photo goes to the GPU as its uint8 pixels.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.dlib_format import Layer, PyramidInput
from photocluster.detect.engine.onnx_graph import build_model, make_session
from photocluster.detect.engine.pyramid import Geometry, NumpyPyramid, Pyramid

BACKENDS = ("onnx", "torch")

# Canvases above this many pixels run through the onnx network in horizontal bands:
# onnxruntime needs about 60 bytes per canvas pixel, and a 1600x1200 photo upsampled once
# makes a canvas of about 28 million pixels.
ONNX_MAX_BAND_PIXELS = 6_000_000
# dlib's python binding runs chips through the net 16 at a time; batches change nothing but
# memory, so a larger one is used here.
ONNX_BATCH = 32


class NetBackend(Protocol):
    """One dlib network, ready to run."""

    name: str  # "onnx" or "torch"
    max_pixels: int  # the detector cuts larger canvases into bands
    batch: int  # the embedder runs at most this many chips at once

    def run(self, x: np.ndarray) -> np.ndarray:
        """The network's output for ``x`` (N, C, H, W) float32."""
        ...

    def pyramid(self, inp: PyramidInput, geometry: Geometry) -> Pyramid:
        """The detector's image pyramid and network run, as this backend builds and runs them."""
        ...


class OnnxBackend:
    """The network as an ONNX graph on an onnxruntime CPU session (``threads`` intra-op threads)."""

    name = "onnx"
    max_pixels = ONNX_MAX_BAND_PIXELS
    batch = ONNX_BATCH

    def __init__(
        self, layers: list[Layer], channels: int, rows: int | None, cols: int | None, label: str, threads: int
    ):
        self.session: Any = make_session(build_model(layers, channels, rows, cols, label), threads)

    def run(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(["y"], {"x": x})[0]
        return out

    def pyramid(self, inp: PyramidInput, geometry: Geometry) -> Pyramid:
        """numpy's pyramid, one photo at a time; canvases above :data:`ONNX_MAX_BAND_PIXELS` run in bands."""
        return NumpyPyramid(self.run, inp, geometry, self.max_pixels)


def make_backend(
    kind: str, layers: list[Layer], channels: int, rows: int | None, cols: int | None, label: str, threads: int
) -> NetBackend:
    """The backend ``kind`` (one of :data:`BACKENDS`) for ``layers`` with input (N, channels, rows, cols);
    ``rows``/``cols`` None: any size."""
    if kind == "onnx":
        return OnnxBackend(layers, channels, rows, cols, label, threads)
    if kind == "torch":
        from photocluster.detect.engine.torch_net import TorchBackend

        return TorchBackend(layers, fixed_shape=rows is not None and cols is not None)
    raise ModelError(f"unknown network backend {kind!r}: choose one of {', '.join(BACKENDS)}")
