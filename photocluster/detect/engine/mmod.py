"""dlib's CNN face detector (``mmod_human_face_detector.dat``) on onnxruntime.

What ``dlib.cnn_face_detection_model_v1(path)(img, upsample)`` does, step by step, and here:

1. ``pyramid_up`` the image ``upsample`` times (bilinear, about 2x per step);
2. ``input_rgb_image_pyramid<pyramid_down<6>>``: subtract the mean colour, divide by 256, and
   tile the image and all its 5/6 downscales (bilinear, each from the one before) into one
   zero-padded canvas (``compute_tiled_image_pyramid_details``);
3. run the fully convolutional network over the canvas: one score per 8x8 cell;
4. ``loss_mmod_::to_label``: every cell scoring > 0 is an 80x80 window in the canvas, mapped to
   the pyramid level it sits in and up to image coordinates; greedy non-max suppression, best
   first; then back down through the ``pyramid_up`` steps.

The resizes reproduce dlib's SIMD bilinear code operation for operation (float32 sampling
positions accumulated the same way), so the canvas is dlib's to the last bit and the scores
differ from dlib's only by the convolutions' summation order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.backend import ONNX_MAX_BAND_PIXELS, make_backend
from photocluster.detect.engine.dlib_format import Conv, Layer, MmodOptions, PyramidInput, SpecItem, load_network

if TYPE_CHECKING:
    from photocluster.detect.engine.torch_pyramid import TorchPyramid

# loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>
# rcon5 = relu<affine<con<45,5,5,1,1>>>; downsampler = 3 x relu<affine<con<n,5,5,2,2>>> (n = 32, 32, 16).
SPEC: list[SpecItem] = [
    ("con", 1, 9, 9, 1),
    *[item for _ in range(3) for item in (("relu",), ("affine",), ("con", 45, 5, 5, 1))],
    *[item for n in (32, 32, 16) for item in (("relu",), ("affine",), ("con", n, 5, 5, 2))],
]
PYRAMID_N = 6  # pyramid_down<6>: each level is 5/6 of the one before
MIN_LEVEL_HEIGHT = 5  # compute_tiled_image_pyramid_details stops below this

Rect = tuple[int, int, int, int]  # dlib rectangle: left, top, right, bottom, all inclusive


def lround(x: np.ndarray | float) -> np.ndarray:
    """C's lround: halves away from zero (numpy and Python round them to even)."""
    a = np.asarray(x, dtype=np.float64)
    return (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# dlib's bilinear resize (image_transforms/interpolation.h), sampling positions and all.


@dataclass
class _Axis:
    """Where each output row or column samples the input, as dlib's resize_image computes it."""

    lo: np.ndarray  # int64 index of the sample before
    hi: np.ndarray  # int64 index of the sample after (clamped)
    frac: np.ndarray  # float64 weight of ``hi``


def _rows(n_in: int, n_out: int) -> _Axis:
    # y starts at -scale and adds scale per row, in double.
    scale = (n_in - 1) / max(n_out - 1, 1)
    steps = np.full(n_out, scale)
    steps[0] = 0.0
    y = np.cumsum(steps)
    lo = np.floor(y).astype(np.int64)
    return _Axis(lo, np.minimum(lo + 1, n_in - 1), y - lo)


def _cols(n_in: int, n_out: int) -> tuple[_Axis, int]:
    """Columns and how many of them (a multiple of 4) dlib's SIMD loop computes.

    The SIMD loop keeps four float32 positions, starting at float(-4s + j*s) and adding
    float(4s) per step, and stops at the first group whose last column's right neighbour would
    fall outside the input; the remaining columns go through a scalar loop in double."""
    scale = (n_in - 1) / max(n_out - 1, 1)
    groups = n_out // 4 + 2
    acc = np.empty((groups + 1, 4), dtype=np.float32)
    x0 = -4 * scale
    acc[0] = np.array([x0, x0 + scale, x0 + 2 * scale, x0 + 3 * scale], dtype=np.float64).astype(np.float32)
    acc[1:] = np.float32(4 * scale)
    xs = np.cumsum(acc, axis=0, dtype=np.float32)[1:]
    left = xs.astype(np.int32)  # _mm_cvttps_epi32: truncation
    stop = np.nonzero(left[:, 3] + 1 >= n_in)[0]
    n_simd = min(int(stop[0]) * 4 if stop.size else groups * 4, n_out)
    # Scalar tail: x = -scale + c0*scale, then += scale per column, in double.
    n_tail = n_out - n_simd
    steps = np.full(n_tail + 1, scale)
    steps[0] = -scale + n_simd * scale
    tail_x = np.cumsum(steps)[1:]
    simd_x = xs.reshape(-1)[:n_simd]
    simd_lo = left.reshape(-1)[:n_simd].astype(np.int64)
    tail_lo = np.floor(tail_x).astype(np.int64)
    lo = np.concatenate([simd_lo, tail_lo])
    # SIMD: float32 x minus its truncation, in float32. Tail: double.
    frac = np.concatenate(
        [(simd_x - simd_lo.astype(np.float32)).astype(np.float64), tail_x - tail_lo.astype(np.float64)]
    )
    return _Axis(lo, np.minimum(lo + 1, n_in - 1), frac), n_simd


# Rows per block in the resize: about 32K output values per channel, so the gathered rows,
# weights and sums of a block stay in the L2 cache (2-3x faster than whole-image passes).
_BLOCK_VALUES = 1 << 15


def _resize(src: np.ndarray, out: np.ndarray, double_tail: bool) -> None:
    """dlib's bilinear resize_image, channel by channel: ``src`` (C, h, w) float32 into ``out``
    (C, H, W); views are fine. Values written into an integer ``out`` are truncated, as dlib's
    RGB path does.

    The SIMD columns compute ``tlf*tl + trf*tr + blf*bl + brf*br`` in float32 with the weights
    multiplied out first (``tlf = (1-tb)*(1-lr)``). The scalar tail columns compute
    ``(1-tb)*((1-lr)*tl + lr*tr) + tb*(...)``: for float images with ``lr`` in float32 and the
    inner sums in float32; for RGB images (``double_tail``) everything in double."""
    channels, h_in, w_in = src.shape
    _, h_out, w_out = out.shape
    rows = _rows(h_in, h_out)
    cols, n_simd = _cols(w_in, w_out)
    f32 = np.float32
    lr = cols.frac[:n_simd].astype(f32)
    inv_lr = f32(1) - lr
    tb = rows.frac.astype(f32)
    inv_tb = (1.0 - rows.frac).astype(f32)
    lo, hi = cols.lo[:n_simd], cols.hi[:n_simd]
    t_lo, t_hi = cols.lo[n_simd:], cols.hi[n_simd:]
    t_lr: np.ndarray = cols.frac[n_simd:] if double_tail else cols.frac[n_simd:].astype(f32)
    t_inv = 1 - t_lr
    # Gather the needed columns of every input row once (the input has ~1.2x the output's
    # rows); each block then only picks whole rows.
    src_lo, src_hi = np.take(src, lo, axis=2), np.take(src, hi, axis=2)
    tail_type = np.float64 if double_tail else f32
    tail_lo, tail_hi = np.take(src, t_lo, axis=2).astype(tail_type), np.take(src, t_hi, axis=2).astype(tail_type)
    block = max(1, _BLOCK_VALUES // max(w_out, 1))
    gathered = np.empty((channels, block, n_simd), dtype=f32)
    acc = np.empty((channels, block, n_simd), dtype=f32)
    weight = np.empty((block, n_simd), dtype=f32)
    for r0 in range(0, h_out, block):
        r1 = min(h_out, r0 + block)
        n = r1 - r0
        top, bottom = rows.lo[r0:r1], rows.hi[r0:r1]
        g, a, w = gathered[:, :n], acc[:, :n], weight[:n]
        np.multiply(inv_tb[r0:r1, None], inv_lr, out=w)
        np.take(src_lo, top, axis=1, out=g, mode="clip")
        np.multiply(g, w, out=a)
        for row_w, col_w, plane, idx in (
            (inv_tb, lr, src_hi, top),
            (tb, inv_lr, src_lo, bottom),
            (tb, lr, src_hi, bottom),
        ):
            np.multiply(row_w[r0:r1, None], col_w, out=w)
            np.take(plane, idx, axis=1, out=g, mode="clip")
            g *= w
            a += g
        out[:, r0:r1, :n_simd] = a
        if t_lo.size:
            upper = t_inv * tail_lo[:, top] + t_lr * tail_hi[:, top]
            lower = t_inv * tail_lo[:, bottom] + t_lr * tail_hi[:, bottom]
            tb64 = rows.frac[r0:r1, None]
            out[:, r0:r1, n_simd:] = (1 - tb64) * upper + tb64 * lower


def resize_float(src: np.ndarray, out: np.ndarray) -> None:
    """dlib's resize_image for float32 grey images, per channel: (C, h, w) into (C, H, W)."""
    _resize(src, out, double_tail=False)


def resize_rgb(src: np.ndarray, h_out: int, w_out: int) -> np.ndarray:
    """dlib's resize_image for RGB images, on planar uint8 (3, h, w): returns (3, H, W).
    Results are truncated to integers, as dlib does, not rounded."""
    out = np.empty((src.shape[0], h_out, w_out), dtype=np.uint8)
    _resize(src.astype(np.float32), out, double_tail=True)
    return out


def pyramid_up(img: np.ndarray) -> np.ndarray:
    """dlib's pyramid_up with pyramid_down<2> on a planar (3, h, w) uint8 image: the image's
    rectangle mapped up by ``(p + (1.25, 0.75)) * 2`` and rounded gives the new size, then a
    bilinear resize."""
    h, w = img.shape[1:]
    right = int(lround((w - 1 + 1.25) * 2))
    bottom = int(lround((h - 1 + 0.75) * 2))
    return resize_rgb(img, bottom + 1, right + 1)


# ---------------------------------------------------------------------------------------------
# The tiled pyramid (image_transforms/image_pyramid.h: compute_tiled_image_pyramid_details).


def tiled_pyramid(rows: int, cols: int, padding: int, outer_padding: int) -> tuple[list[Rect], int, int]:
    """The rectangle of every pyramid level in the canvas, and the canvas's rows and cols."""
    sizes = [(cols, rows)]
    nr, nc = rows, cols
    rate = (PYRAMID_N - 1.0) / PYRAMID_N
    while True:
        nr, nc = math.floor(rate * nr), math.floor(rate * nc)
        if nr * nc == 0 or nr < MIN_LEVEL_HEIGHT:
            break
        sizes.append((nc, nr))
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    width0, height0 = sizes[0]
    height = 0
    prev_width = 0
    for w, h in sizes:
        # The first column goes down until the next level fits beside the one before it.
        if w <= width0 - prev_width - padding and (height - height0) * 2 >= total_height - height0:
            break
        height += h + padding
        prev_width = w
    height -= padding
    rects: list[Rect] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        w, h = sizes[i]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    first = rects[0]
    while i < len(sizes):
        # The second column climbs back up along the right edge.
        w, h = sizes[i]
        rect = (outer_padding + width0 - w, y - h, outer_padding + width0 - 1, y - 1)
        if _intersects(rect, first):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    return rects, height + 2 * outer_padding, width0 + 2 * outer_padding


def _intersects(a: Rect, b: Rect) -> bool:
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


def build_canvas(img: np.ndarray, inp: PyramidInput) -> tuple[np.ndarray, list[Rect]]:
    """The input tensor dlib builds for a planar (3, h, w) uint8 image: (1, 3, rows, cols) float32."""
    h, w = img.shape[1:]
    rects, n_rows, n_cols = tiled_pyramid(h, w, inp.padding, inp.outer_padding)
    canvas = np.zeros((1, 3, n_rows, n_cols), dtype=np.float32)
    left, top, right, bottom = rects[0]
    level = canvas[0, :, top : bottom + 1, left : right + 1]
    for ch in range(3):
        np.subtract(img[ch], np.float32(inp.mean_rgb[ch]), out=level[ch], dtype=np.float32)
    level /= np.float32(256.0)
    for prev, cur in itertools.pairwise(rects):
        src = canvas[0, :, prev[1] : prev[3] + 1, prev[0] : prev[2] + 1]
        resize_float(src, canvas[0, :, cur[1] : cur[3] + 1, cur[0] : cur[2] + 1])
    return canvas, rects


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


@dataclass(frozen=True)
class _Geometry:
    """How output cells relate to canvas rows: the stride-2 "valid" convolutions come first,
    then "same" convolutions, which zero-pad their input and so see ``halo`` cells around."""

    stride: int  # canvas pixels per output cell
    offset: int  # output cell (c, r) sits at canvas point (c, r) * stride + offset
    field: int  # canvas rows one row of the downsampled map depends on
    halo: int  # output rows the "same" convolutions reach up and down


def _geometry(layers: list[Layer]) -> _Geometry:
    stride, offset, field, halo = 1, 0, 1, 0
    for layer in layers:
        if not isinstance(layer, Conv):
            continue
        size = layer.weight.shape[2]
        if layer.weight.shape[3] != size or layer.stride[0] != layer.stride[1] or layer.padding[0] != layer.padding[1]:
            raise ModelError("the detector's convolutions must be square")
        s, pad = layer.stride[0], layer.padding[0]
        if pad == 0 and halo == 0:
            field += (size - 1) * stride
        elif s == 1 and pad == size // 2:
            halo += pad
        else:
            raise ModelError("unexpected convolution layout in the detector")
        # dlib's con_::map_output_to_input: p * stride - padding + size / 2, innermost last.
        offset += (size // 2 - pad) * stride
        stride *= s
    return _Geometry(stride, offset, field, halo)


def _out_len(n: int, geometry: _Geometry) -> int:
    """Output rows for ``n`` canvas rows (each stride-2 layer: (n - k) // 2 + 1)."""
    return max(0, (n - geometry.field) // geometry.stride + 1)


# Canvases above this many pixels run through the onnx network in horizontal bands (the
# torch backend sets its own limit, from the GPU's memory).
MAX_BAND_PIXELS = ONNX_MAX_BAND_PIXELS


def banded_scores(
    run: Callable[[Any], np.ndarray], canvas: Any, geo: _Geometry, max_pixels: int = MAX_BAND_PIXELS
) -> np.ndarray:
    """The network's output map for a canvas (a numpy array or a device tensor): (rows, cols) float32.
    ``run`` is the network on one (1, 3, rows, cols) input, returning its (rows, cols) map.

    A large canvas is cut into bands of whole output rows. Each band's input reaches
    ``halo`` output rows further up and down (and starts on a multiple of the stride), so
    every kept row sees the same inputs as in one pass; only the rows next to a band's cut,
    whose zero padding would be wrong, are computed again in the next band."""
    n_rows, n_cols = canvas.shape[2:]
    total = _out_len(n_rows, geo)
    if n_rows * n_cols <= max_pixels or total <= 2 * geo.halo + 1:
        return run(canvas)
    band_rows = max(1, (max_pixels // n_cols - geo.field) // geo.stride + 1 - 2 * geo.halo)
    out = np.empty((total, _out_len(n_cols, geo)), dtype=np.float32)
    for a in range(0, total, band_rows):
        b = min(total, a + band_rows)
        j0, j1 = max(0, a - geo.halo), min(total, b + geo.halo)
        stop = n_rows if j1 == total else (j1 - 1) * geo.stride + geo.field
        band = run(canvas[:, :, j0 * geo.stride : stop])
        out[a:b] = band[a - j0 : b - j0]
    return out


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
        self.geometry = _geometry(net.layers)
        self.backend = make_backend(backend, net.layers, 3, None, None, "mmod_human_face_detector", threads)
        self._pyramid: TorchPyramid | None = None

    def _run(self, x: Any) -> np.ndarray:
        out: np.ndarray = np.asarray(self.backend.run(x), dtype=np.float32)[0, 0]
        return out

    def scores(self, canvas: Any, max_pixels: int | None = None) -> np.ndarray:
        """The network's output map for a canvas: (rows, cols) float32 (see :func:`banded_scores`)."""
        return banded_scores(self._run, canvas, self.geometry, max_pixels or self.backend.max_pixels)

    def detect(self, pixels: np.ndarray, upsample: int = 0) -> list[tuple[Rect, float]]:
        if self.backend.name == "torch":
            return self.detect_batch([pixels], upsample)[0]
        img = _planar_rgb(pixels)
        for _ in range(upsample):
            img = pyramid_up(img)
        if img.shape[1] == 0 or img.shape[2] == 0:
            return []
        canvas, rects = build_canvas(img, self.input)
        del img
        if min(canvas.shape[2:]) < self.geometry.field:
            # Too small for the strided convolutions (dlib raises here): no face fits anyway.
            return []
        scores = self.scores(canvas)
        del canvas
        return self._to_rects(scores, rects, upsample)

    def detect_batch(self, images: Sequence[np.ndarray], upsample: int = 0) -> list[list[tuple[Rect, float]]]:
        """:meth:`detect` for several photos. With the torch backend their pyramids are built on
        its device and canvases of similar sizes run as one batch (same results as one by one);
        with onnx, one by one."""
        if self.backend.name != "torch":
            return [self.detect(p, upsample) for p in images]
        if self._pyramid is None:
            from photocluster.detect.engine.torch_net import TorchBackend
            from photocluster.detect.engine.torch_pyramid import TorchPyramid

            assert isinstance(self.backend, TorchBackend)
            self._pyramid = TorchPyramid(self.backend, self.input, self.geometry)
        found = self._pyramid.scores([_planar_rgb(p) for p in images], upsample, self._run)
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


def _planar_rgb(pixels: np.ndarray) -> np.ndarray:
    """(3, h, w) uint8 (a view where possible) of an (h, w, 3) RGB or (h, w) grey image."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected an 8-bit grey or RGB image, got shape {arr.shape} {arr.dtype}")
    if arr.ndim == 2:
        return np.broadcast_to(arr, (3, *arr.shape))
    return arr.transpose(2, 0, 1)
