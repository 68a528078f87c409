"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) on onnxruntime or PyTorch.

The architecture is the ``anet_type`` of dlib's ``tools/python/src/face_recognition.cpp``
(dlib's ``dnn_face_recognition_ex.cpp``): a 29-conv ResNet with ``affine`` in place of batch
norm, the stride-2 blocks adding an average-pooled shortcut, and a 128-d ``fc_no_bias`` head.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.backend import ONNX_BATCH, NetBackend, make_backend
from photocluster.detect.engine.dlib_format import SizedInput, SpecItem, load_network
from photocluster.detect.engine.onnx_graph import build_views_model, make_session

CHIP_SIZE = 150
# Chips per run of the onnx network (the torch backend's is larger on a GPU: backend.batch).
BATCH = ONNX_BATCH
# Chips per run of the six-view graph (six views each). The ResNet is bound by arithmetic: on one
# core a view costs about the same at any batch from 6 views up (benchmarks/views_cost.py), so
# this only bounds memory.
VIEWS_BATCH = 8
LABEL = "dlib_face_recognition_resnet_model_v1"


def _block(n: int, stride: int) -> list[SpecItem]:
    return [("affine",), ("con", n, 3, 3, 1), ("relu",), ("affine",), ("con", n, 3, 3, stride)]


def _ares(n: int) -> list[SpecItem]:
    # relu<add_prev1<block<n, 1, tag1<SUBNET>>>>
    return [("relu",), ("add_prev", 1), *_block(n, 1), ("tag", 1)]


def _ares_down(n: int) -> list[SpecItem]:
    # relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<n, 2, tag1<SUBNET>>>>>>>>
    return [("relu",), ("add_prev", 2), ("avg_pool", 2, 2, 2), ("skip", 1), ("tag", 2), *_block(n, 2), ("tag", 1)]


SPEC: list[SpecItem] = [
    ("fc", 128, False),
    ("avg_pool", 0, 0, 1),
    *_ares_down(256),
    *_ares(256),
    *_ares(256),
    *_ares_down(256),
    *_ares(128),
    *_ares(128),
    *_ares_down(128),
    *_ares(64),
    *_ares(64),
    *_ares(64),
    *_ares_down(64),
    *_ares(32),
    *_ares(32),
    *_ares(32),
    ("max_pool", 3, 3, 2),
    ("relu",),
    ("affine",),
    ("con", 32, 7, 7, 2),
]


class Embedder:
    """128-d face descriptors of aligned 150x150 chips, as dlib computes them."""

    def __init__(self, path: Path, threads: int, backend: str = "onnx") -> None:
        net = load_network(path, "metric", SPEC, "sized")
        assert isinstance(net.input, SizedInput)
        if (net.input.nr, net.input.nc) != (CHIP_SIZE, CHIP_SIZE):
            raise ModelError(f"{path}: expected a {CHIP_SIZE}x{CHIP_SIZE} input, found {net.input.nr}x{net.input.nc}")
        self.mean = np.array(net.input.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
        self._net, self._kind, self._threads = net, backend, threads
        self._backend: NetBackend | None = None
        self._views: dict[int, Any] = {}  # by shift: onnxruntime sessions of build_views_model
        self._lock = threading.Lock()
        if backend != "onnx":  # the onnx sessions are built on first use: a scan needs only the views'
            _ = self.backend

    @property
    def backend(self) -> NetBackend:
        """The network on its backend, for chips one by one (:meth:`embed`)."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = make_backend(
                        self._kind, self._net.layers, 3, CHIP_SIZE, CHIP_SIZE, LABEL, self._threads
                    )
        return self._backend

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """Descriptors of any number of chips (several photos' at once is fine: the network runs
        ``backend.batch`` of them at a time): (n, 128) float32."""
        if not chips:
            return np.zeros((0, 128), dtype=np.float32)
        out = []
        step = self.backend.batch
        for start in range(0, len(chips), step):
            batch = np.stack([_check_chip(c) for c in chips[start : start + step]])
            # dlib: (pixel - mean) / 256 in float, channels first (input_rgb_image_sized::to_tensor).
            x = (batch.transpose(0, 3, 1, 2).astype(np.float32) - self.mean) / np.float32(256.0)
            out.append(self.backend.run(x))
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed_views(self, big_chips: list[np.ndarray], shift: int) -> np.ndarray:
        """The descriptors of six views of each chip of ``big_chips`` (150 + 2 ``shift`` pixels
        square, uint8 RGB): its centre 150x150 crop, that crop moved ``shift`` rows up and then
        down, each followed by its mirror image. (n, 6, 128) float32, views in that order: what
        :meth:`embed` gives for the twelve crops, to about 1e-7.

        On onnxruntime the layers before the first residual block run once on a whole chip and
        once on its mirror image, not on six crops, and so do the 32-channel blocks after them
        but for the rows by each view's edges (see :func:`~.onnx_graph.build_views_model`); the
        torch backend embeds the crops.
        """
        n = len(big_chips)
        if n == 0:
            return np.zeros((0, 6, 128), dtype=np.float32)
        side = CHIP_SIZE + 2 * shift
        chips = [_check_chip(c, side) for c in big_chips]
        session = self.views_session(shift)
        if session is None:
            return self.embed(view_crops(chips, shift)).reshape(n, 6, 128)
        out = []
        # VIEWS_BATCH chips (six times as many views) per run: larger batches run no faster.
        for start in range(0, n, VIEWS_BATCH):
            batch = np.stack(chips[start : start + VIEWS_BATCH])
            y: np.ndarray = session.run(["y"], {"x": batch})[0]
            m = len(batch)
            # rows (k * 2 + mirror) * m + face -> (face, k, mirror): the order of the crops above
            out.append(y.reshape(3, 2, m, 128).transpose(2, 0, 1, 3).reshape(m, 6, 128))
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def views_session(self, shift: int) -> Any:
        """The onnxruntime session of the six-view graph for ``shift``, built on first use; None
        on the torch backend, or where the network cannot share its first layers between views
        moved by ``shift`` rows (then :meth:`embed_views` embeds the crops)."""
        if self._kind != "onnx":
            return None
        if shift not in self._views:
            with self._lock:
                if shift not in self._views:
                    layers, mean = self._net.layers, self._net.input.mean_rgb
                    try:
                        model = build_views_model(layers, mean, CHIP_SIZE, shift, LABEL)
                    except ModelError:
                        self._views[shift] = None
                    else:
                        self._views[shift] = make_session(model, self._threads)
        return self._views[shift]


def view_crops(big_chips: list[np.ndarray], shift: int) -> list[np.ndarray]:
    """The six views of each chip of ``big_chips`` ((150 + 2 ``shift``) pixels square), as 150x150
    crops: the centre, moved ``shift`` rows up, moved down, each followed by its mirror image."""
    crops = []
    for big in big_chips:
        for dy in (0, -shift, shift):
            view = big[shift + dy : shift + dy + CHIP_SIZE, shift : shift + CHIP_SIZE]
            crops += [np.ascontiguousarray(view), np.ascontiguousarray(view[:, ::-1])]
    return crops


def _check_chip(chip: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    arr = np.asarray(chip)
    if arr.ndim == 2:  # dlib's binding accepts 8-bit grey chips too, as grey RGB
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape != (size, size, 3) or arr.dtype != np.uint8:
        raise ValueError(f"face chips must be {size}x{size}x3 uint8, got {arr.shape} {arr.dtype}")
    return arr
