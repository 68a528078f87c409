"""dlib's CNN face detector (``mmod_human_face_detector.dat``) on onnxruntime or PyTorch.

What ``dlib.cnn_face_detection_model_v1(path)(img, upsample)`` does, step by step, and here:

1. build the tiled image pyramid of the (upsampled) image and run the fully convolutional
   network over it: one score per 8x8 cell. The backend brings its own pyramid
   (``backend.pyramid``: numpy on the CPU for onnxruntime, the torch backend's device for
   torch), both built from dlib's numbers in :mod:`.pyramid`;
2. ``loss_mmod_::to_label``: every cell scoring > 0 is an 80x80 window in the canvas, mapped to
   the pyramid level it sits in and up to image coordinates; greedy non-max suppression, best
   first; then back down through the ``pyramid_up`` steps.

The canvas is dlib's to the last bit and the scores differ from dlib's only by the
convolutions' summation order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.backend import make_backend
from photocluster.detect.engine.dlib_format import MmodOptions, PyramidInput, SpecItem, load_network
from photocluster.detect.engine.pyramid import (
    PYRAMID_N,
    Rect,
    banded_scores,
    conv_geometry,
    lround,
    planar_rgb,
    score_map,
)

# loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>
# rcon5 = relu<affine<con<45,5,5,1,1>>>; downsampler = 3 x relu<affine<con<n,5,5,2,2>>> (n = 32, 32, 16).
SPEC: list[SpecItem] = [
    ("con", 1, 9, 9, 1),
    *[item for _ in range(3) for item in (("relu",), ("affine",), ("con", 45, 5, 5, 1))],
    *[item for n in (32, 32, 16) for item in (("relu",), ("affine",), ("con", n, 5, 5, 2))],
]


# ---------------------------------------------------------------------------------------------
# From scores to rectangles (dnn/loss.h: loss_mmod_::tensor_to_dets and to_label).


def _nearest_rect(rects: list[Rect], x: float, y: float) -> int:
    # dlib converts the centre to an integer point first (floor(v + 0.5)).
    px, py = math.floor(x + 0.5), math.floor(y + 0.5)
    best, best_dist = 0, math.inf
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= px <= right and top <= py <= bottom:
            return i
        nx, ny = min(max(px, left), right), min(max(py, top), bottom)
        dist = math.hypot(nx - px, ny - py)
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def _area(r: Rect) -> int:
    return max(0, r[2] - r[0] + 1) * max(0, r[3] - r[1] + 1)


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    """dlib's test_box_overlap: the "union" is the bounding box of both rectangles."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def _level_up(v: float, levels: int) -> float:
    ratio = PYRAMID_N / (PYRAMID_N - 1.0)
    for _ in range(levels):
        v = v * ratio + 0.3
    return v


def _pyr2_down(v: float, levels: int, offset: float) -> float:
    for _ in range(levels):
        v = v / 2.0 - offset
    return v


class Detector:
    """``dlib.cnn_face_detection_model_v1`` with the same weights, on onnxruntime (``backend``
    "onnx") or PyTorch ("torch": the pyramid is built on the GPU and photos run in batches)."""

    def __init__(self, path: Path, threads: int, backend: str = "onnx") -> None:
        net = load_network(path, "mmod", SPEC, "pyramid")
        assert isinstance(net.input, PyramidInput) and isinstance(net.loss, MmodOptions)
        if net.loss.bbox_regression or len(net.loss.windows) != 1:
            raise ModelError(f"{path}: only single-window MMOD models without box regression are supported")
        self.input = net.input
        self.options = net.loss
        self.window = net.loss.windows[0][:2]
        self.geometry = conv_geometry(net.layers)
        self.backend = make_backend(backend, net.layers, 3, None, None, "mmod_human_face_detector", threads)
        self.pyramid = self.backend.pyramid(self.input, self.geometry)

    def scores(self, canvas: Any, max_pixels: int | None = None) -> np.ndarray:
        """The network's output map for a canvas: (rows, cols) float32 (see :func:`banded_scores`)."""
        run = functools.partial(score_map, self.backend.run)
        return banded_scores(run, canvas, self.geometry, max_pixels or self.backend.max_pixels)

    def detect(self, pixels: np.ndarray, upsample: int = 0) -> list[tuple[Rect, float]]:
        return self.detect_batch([pixels], upsample)[0]

    def detect_batch(self, images: Sequence[np.ndarray], upsample: int = 0) -> list[list[tuple[Rect, float]]]:
        """:meth:`detect` for several photos, as the backend's pyramid runs them: with onnx one by
        one; with torch their pyramids are built on its device and canvases of similar sizes run
        as one batch (same results as one by one)."""
        found = self.pyramid.scores([planar_rgb(p) for p in images], upsample)
        return [[] if item is None else self._to_rects(item[0], item[1], upsample) for item in found]

    def _to_rects(self, scores: np.ndarray, rects: list[Rect], upsample: int) -> list[tuple[Rect, float]]:
        rows, cols = np.nonzero(scores > 0)
        values = scores[rows, cols].astype(np.float64)
        # dlib sorts descending with std::sort (not stable); equal float scores in different
        # cells practically never happen.
        order = np.argsort(-values, kind="stable")
        width, height = self.window
        half_w, half_h = (width - 1) / 2, (height - 1) / 2
        geo = self.geometry
        kept: list[tuple[Rect, float]] = []
        for k in order:
            # centered_drect around the cell's canvas point, then tiled_pyramid_to_image.
            px = float(cols[k] * geo.stride + geo.offset)
            py = float(rows[k] * geo.stride + geo.offset)
            left, top, right, bottom = px - half_w, py - half_h, px + half_w, py + half_h
            level = _nearest_rect(rects, (left + right) / 2, (top + bottom) / 2)
            ox, oy = rects[level][0], rects[level][1]
            box = lround(
                np.array(
                    [
                        _level_up(left - ox, level),
                        _level_up(top - oy, level),
                        _level_up(right - ox, level),
                        _level_up(bottom - oy, level),
                    ]
                )
            )
            rect: Rect = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
            if any(_overlaps(r, rect, self.options.nms_iou, self.options.nms_percent_covered) for r, _ in kept):
                continue
            kept.append((rect, float(values[k])))
        if upsample:
            # pyramid_down<2>::rect_down, p / 2 - (1.25, 0.75) per step, then rounded.
            kept = [
                (
                    (
                        int(lround(_pyr2_down(r[0], upsample, 1.25))),
                        int(lround(_pyr2_down(r[1], upsample, 0.75))),
                        int(lround(_pyr2_down(r[2], upsample, 1.25))),
                        int(lround(_pyr2_down(r[3], upsample, 0.75))),
                    ),
                    s,
                )
                for r, s in kept
            ]
        return kept
