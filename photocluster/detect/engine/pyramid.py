"""dlib's image pyramid for the CNN face detector, and how the network's output cells map onto it.

Used by both backends: the numbers here (sampling positions, the tiled layout, the
convolutions' stride and reach) are dlib's, and :class:`NumpyPyramid` builds the canvas with
them on the CPU; ``torch_pyramid`` builds the same canvas on the torch backend's device from
the same sampling positions.

1. ``pyramid_up`` the image ``upsample`` times (bilinear, about 2x per step);
2. ``input_rgb_image_pyramid<pyramid_down<6>>``: subtract the mean colour, divide by 256, and
   tile the image and all its 5/6 downscales (bilinear, each from the one before) into one
   zero-padded canvas (``compute_tiled_image_pyramid_details``);
3. the network's output, one score per 8x8 cell of the canvas, computed in horizontal bands
   for a canvas too large to run at once (:func:`banded_scores`).

The resizes reproduce dlib's SIMD bilinear code operation for operation (float32 sampling
positions accumulated the same way), so the canvas is dlib's to the last bit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from photocluster.core.errors import ModelError
from photocluster.detect.engine.dlib_format import Conv, Layer, PyramidInput

PYRAMID_N = 6  # pyramid_down<6>: each level is 5/6 of the one before
MIN_LEVEL_HEIGHT = 5  # compute_tiled_image_pyramid_details stops below this

Rect = tuple[int, int, int, int]  # dlib rectangle: left, top, right, bottom, all inclusive
# A photo's network output map and the rectangle of every pyramid level in its canvas.
Scored = tuple[np.ndarray, list[Rect]]


def lround(x: np.ndarray | float) -> np.ndarray:
    """C's lround: halves away from zero (numpy and Python round them to even)."""
    a = np.asarray(x, dtype=np.float64)
    return (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# dlib's bilinear resize (image_transforms/interpolation.h), sampling positions and all.


@dataclass
class Axis:
    """Where each output row or column samples the input, as dlib's resize_image computes it."""

    lo: np.ndarray  # int64 index of the sample before
    hi: np.ndarray  # int64 index of the sample after (clamped)
    frac: np.ndarray  # float64 weight of ``hi``


def row_axis(n_in: int, n_out: int) -> Axis:
    # y starts at -scale and adds scale per row, in double.
    scale = (n_in - 1) / max(n_out - 1, 1)
    steps = np.full(n_out, scale)
    steps[0] = 0.0
    y = np.cumsum(steps)
    lo = np.floor(y).astype(np.int64)
    return Axis(lo, np.minimum(lo + 1, n_in - 1), y - lo)


def col_axis(n_in: int, n_out: int) -> tuple[Axis, int]:
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
    return Axis(lo, np.minimum(lo + 1, n_in - 1), frac), n_simd


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
    rows = row_axis(h_in, h_out)
    cols, n_simd = col_axis(w_in, w_out)
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


def planar_rgb(pixels: np.ndarray) -> np.ndarray:
    """(3, h, w) uint8 (a view where possible) of an (h, w, 3) RGB or (h, w) grey image."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected an 8-bit grey or RGB image, got shape {arr.shape} {arr.dtype}")
    if arr.ndim == 2:
        return np.broadcast_to(arr, (3, *arr.shape))
    return arr.transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------------
# Output cells and canvas rows: the detector's convolutions, and the network run in bands.


@dataclass(frozen=True)
class Geometry:
    """How output cells relate to canvas rows: the stride-2 "valid" convolutions come first,
    then "same" convolutions, which zero-pad their input and so see ``halo`` cells around."""

    stride: int  # canvas pixels per output cell
    offset: int  # output cell (c, r) sits at canvas point (c, r) * stride + offset
    field: int  # canvas rows one row of the downsampled map depends on
    halo: int  # output rows the "same" convolutions reach up and down


def conv_geometry(layers: list[Layer]) -> Geometry:
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
    return Geometry(stride, offset, field, halo)


def out_len(n: int, geometry: Geometry) -> int:
    """Output rows for ``n`` canvas rows (each stride-2 layer: (n - k) // 2 + 1)."""
    return max(0, (n - geometry.field) // geometry.stride + 1)


def banded_scores(run: Callable[[Any], np.ndarray], canvas: Any, geo: Geometry, max_pixels: int) -> np.ndarray:
    """The network's output map for a canvas (a numpy array or a device tensor): (rows, cols) float32.
    ``run`` is the network on one (1, 3, rows, cols) input, returning its (rows, cols) map.

    A large canvas is cut into bands of whole output rows. Each band's input reaches
    ``halo`` output rows further up and down (and starts on a multiple of the stride), so
    every kept row sees the same inputs as in one pass; only the rows next to a band's cut,
    whose zero padding would be wrong, are computed again in the next band."""
    n_rows, n_cols = canvas.shape[2:]
    total = out_len(n_rows, geo)
    if n_rows * n_cols <= max_pixels or total <= 2 * geo.halo + 1:
        return run(canvas)
    band_rows = max(1, (max_pixels // n_cols - geo.field) // geo.stride + 1 - 2 * geo.halo)
    out = np.empty((total, out_len(n_cols, geo)), dtype=np.float32)
    for a in range(0, total, band_rows):
        b = min(total, a + band_rows)
        j0, j1 = max(0, a - geo.halo), min(total, b + geo.halo)
        stop = n_rows if j1 == total else (j1 - 1) * geo.stride + geo.field
        band = run(canvas[:, :, j0 * geo.stride : stop])
        out[a:b] = band[a - j0 : b - j0]
    return out


def score_map(net: Callable[[Any], np.ndarray], canvas: Any) -> np.ndarray:
    """The output map of ``net`` (a backend's ``run``) for one (1, 3, rows, cols) canvas: (rows, cols) float32."""
    out: np.ndarray = np.asarray(net(canvas), dtype=np.float32)[0, 0]
    return out


# ---------------------------------------------------------------------------------------------
# Each backend's pyramid: what the detector calls, whichever backend runs the network.


class Pyramid(Protocol):
    """The detector's input and network for a backend: from photos to their score maps."""

    def scores(self, images: Sequence[np.ndarray], upsample: int) -> list[Scored | None]:
        """Each photo's score map and pyramid rectangles, for planar (3, h, w) uint8 photos,
        in order; None where the (upsampled) photo is too small for the network (no face
        fits: dlib raises there)."""
        ...


class NumpyPyramid:
    """The pyramid built with numpy on the CPU, one photo at a time, and ``net`` (a backend's
    ``run``) on its canvas, in bands of at most ``max_pixels`` canvas pixels."""

    def __init__(self, net: Callable[[Any], np.ndarray], inp: PyramidInput, geometry: Geometry, max_pixels: int):
        self.net = net
        self.input = inp
        self.geometry = geometry
        self.max_pixels = max_pixels

    def prepare(self, img: np.ndarray, upsample: int) -> tuple[np.ndarray, list[Rect]] | None:
        """A photo's canvas and level rectangles, from its (3, h, w) uint8 planes; None when
        the (upsampled) photo is too small for the network."""
        for _ in range(upsample):
            img = pyramid_up(img)
        if img.shape[1] == 0 or img.shape[2] == 0:
            return None
        canvas, rects = build_canvas(img, self.input)
        if min(canvas.shape[2:]) < self.geometry.field:
            # Too small for the strided convolutions (dlib raises here): no face fits anyway.
            return None
        return canvas, rects

    def scores(self, images: Sequence[np.ndarray], upsample: int) -> list[Scored | None]:
        return [self._scores(img, upsample) for img in images]

    def _scores(self, img: np.ndarray, upsample: int) -> Scored | None:
        # One photo's canvas at a time: the upsampled image is gone before the network runs,
        # and the canvas before the next photo's is built.
        prepared = self.prepare(img, upsample)
        if prepared is None:
            return None
        canvas, rects = prepared
        return banded_scores(self._run, canvas, self.geometry, self.max_pixels), rects

    def _run(self, canvas: Any) -> np.ndarray:
        return score_map(self.net, canvas)
