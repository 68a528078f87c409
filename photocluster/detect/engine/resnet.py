"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) on onnxruntime or PyTorch.

The architecture is the ``anet_type`` of dlib's ``tools/python/src/face_recognition.cpp``
(dlib's ``dnn_face_recognition_ex.cpp``): a 29-conv ResNet with ``affine`` in place of batch
norm, the stride-2 blocks adding an average-pooled shortcut, and a 128-d ``fc_no_bias`` head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.backend import ONNX_BATCH, make_backend
from photocluster.detect.engine.dlib_format import SizedInput, SpecItem, load_network

CHIP_SIZE = 150
# Chips per run of the onnx network (the torch backend's is larger on a GPU: backend.batch).
BATCH = ONNX_BATCH


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
        self.backend = make_backend(
            backend, net.layers, 3, CHIP_SIZE, CHIP_SIZE, "dlib_face_recognition_resnet_model_v1", threads
        )

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


def _check_chip(chip: np.ndarray) -> np.ndarray:
    arr = np.asarray(chip)
    if arr.ndim == 2:  # dlib's binding accepts 8-bit grey chips too, as grey RGB
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape != (CHIP_SIZE, CHIP_SIZE, 3) or arr.dtype != np.uint8:
        raise ValueError(f"face chips must be {CHIP_SIZE}x{CHIP_SIZE}x3 uint8, got {arr.shape} {arr.dtype}")
    return arr
