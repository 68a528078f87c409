"""The detector's input, built on the torch backend's device, and many photos run at once.

The torch backend's pyramid (``TorchBackend.pyramid``). On a GPU, building dlib's tiled image
pyramid with numpy (``pyramid.build_canvas``: ~4 s of CPU for a 1600x1200 photo upsampled once)
would cost 100 times the network itself. Here the same bilinear resizes run as torch operations
on the device, operation for operation as ``pyramid.resize_float`` and ``resize_rgb`` do them
(the same sampling positions, float32 products and sums in the same order, the same float64
tail columns and truncation to uint8), so the canvas is the numpy one bit for bit (checked by
``benchmarks/gpu_throughput.py``) and a photo travels to the GPU as its uint8 pixels.

Canvases of similar sizes run as one batch: each is zero-padded at the bottom and right to a
multiple of :data:`BUCKET` pixels, and the network zeroes every sample's cells beyond its own
size before each padded convolution (``torch_net.run_ops``' ``sizes``), so each photo gets the
scores it would get alone.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from photocluster.detect.engine.dlib_format import PyramidInput
from photocluster.detect.engine.pyramid import (
    Geometry,
    Rect,
    Scored,
    banded_scores,
    col_axis,
    lround,
    out_len,
    row_axis,
    score_map,
    tiled_pyramid,
)

# Canvas rows and cols are rounded up to a multiple of this for batching (and for cuDNN's
# autotuner, which tunes once per shape).
BUCKET = 128


class DeviceNet(Protocol):
    """What the pyramid needs of ``torch_net.TorchBackend`` (which builds it, so this module
    does not import it): torch, the device, and the network on it."""

    torch: Any
    device: str
    max_pixels: int

    def run(self, x: Any) -> np.ndarray: ...

    def run_tensor(self, x: Any, sizes: list[tuple[int, int]] | None = None) -> Any: ...


class TorchPyramid:
    """dlib's pyramid_up, tiled pyramid and network, on ``backend``'s device."""

    def __init__(self, backend: DeviceNet, inp: PyramidInput, geometry: Geometry) -> None:
        self.backend = backend
        self.torch = backend.torch
        self.input = inp
        self.geometry = geometry
        self.mean = self.torch.tensor(inp.mean_rgb, dtype=self.torch.float32, device=backend.device).view(3, 1, 1)
        self._plans: dict[tuple[int, int, int, int, bool], dict[str, Any]] = {}

    # -- dlib's resize_image ------------------------------------------------------------------

    def _plan(self, h_in: int, w_in: int, h_out: int, w_out: int, double_tail: bool) -> dict[str, Any]:
        """The resize's sampling positions and weights (``pyramid.row_axis``, ``col_axis``), on the
        device (cached per shape)."""
        key = (h_in, w_in, h_out, w_out, double_tail)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        rows = row_axis(h_in, h_out)
        cols, n_simd = col_axis(w_in, w_out)
        f32 = np.float32
        lr = cols.frac[:n_simd].astype(f32)
        t_lr: np.ndarray = cols.frac[n_simd:] if double_tail else cols.frac[n_simd:].astype(f32)
        arrays = {
            "lo": cols.lo[:n_simd],
            "hi": cols.hi[:n_simd],
            "lr": lr,
            "inv_lr": f32(1) - lr,
            "tb": rows.frac.astype(f32),
            "inv_tb": (1.0 - rows.frac).astype(f32),
            "top": rows.lo,
            "bottom": rows.hi,
            "t_lo": cols.lo[n_simd:],
            "t_hi": cols.hi[n_simd:],
            "t_lr": t_lr,
            "t_inv": 1 - t_lr,
            "tb64": rows.frac,
        }
        dev = self.backend.device
        plan = {k: self.torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in arrays.items()}
        plan["n_simd"] = n_simd
        if len(self._plans) > 256:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def resize(self, src: Any, out: Any, double_tail: bool) -> None:
        """``pyramid``'s bilinear resize on device tensors: ``src`` (C, h, w) float32 into ``out`` (C, H, W),
        float32 or uint8 (truncated, as dlib's RGB path does); views are fine."""
        p = self._plan(int(src.shape[1]), int(src.shape[2]), int(out.shape[1]), int(out.shape[2]), double_tail)
        n = p["n_simd"]
        src_lo, src_hi = src.index_select(2, p["lo"]), src.index_select(2, p["hi"])
        top, bottom = p["top"], p["bottom"]
        # Each product rounded to float32, then summed left to right: as numpy does it.
        acc = src_lo.index_select(1, top) * (p["inv_tb"][:, None] * p["inv_lr"])
        acc += src_hi.index_select(1, top) * (p["inv_tb"][:, None] * p["lr"])
        acc += src_lo.index_select(1, bottom) * (p["tb"][:, None] * p["inv_lr"])
        acc += src_hi.index_select(1, bottom) * (p["tb"][:, None] * p["lr"])
        out[:, :, :n] = acc.to(out.dtype)
        if p["t_lo"].numel():
            wide = self.torch.float64 if double_tail else self.torch.float32
            t_lo, t_hi = src.index_select(2, p["t_lo"]).to(wide), src.index_select(2, p["t_hi"]).to(wide)
            upper = p["t_inv"] * t_lo.index_select(1, top) + p["t_lr"] * t_hi.index_select(1, top)
            lower = p["t_inv"] * t_lo.index_select(1, bottom) + p["t_lr"] * t_hi.index_select(1, bottom)
            tb64 = p["tb64"][:, None]
            out[:, :, n:] = ((1 - tb64) * upper.double() + tb64 * lower.double()).to(out.dtype)

    def pyramid_up(self, img: Any) -> Any:
        """``pyramid.pyramid_up`` on a (3, h, w) uint8 device tensor."""
        h, w = int(img.shape[1]), int(img.shape[2])
        right = int(lround((w - 1 + 1.25) * 2))
        bottom = int(lround((h - 1 + 0.75) * 2))
        out = self.torch.empty((3, bottom + 1, right + 1), dtype=self.torch.uint8, device=img.device)
        self.resize(img.to(self.torch.float32), out, double_tail=True)
        return out

    def canvas(self, img: Any) -> tuple[Any, list[Rect]]:
        """``pyramid.build_canvas`` for a (3, h, w) uint8 device tensor: (1, 3, rows, cols) float32."""
        h, w = int(img.shape[1]), int(img.shape[2])
        rects, n_rows, n_cols = tiled_pyramid(h, w, self.input.padding, self.input.outer_padding)
        canvas = self.torch.zeros((1, 3, n_rows, n_cols), dtype=self.torch.float32, device=img.device)
        left, top, right, bottom = rects[0]
        canvas[0, :, top : bottom + 1, left : right + 1] = (img.to(self.torch.float32) - self.mean) / 256.0
        for prev, cur in itertools.pairwise(rects):
            src = canvas[0, :, prev[1] : prev[3] + 1, prev[0] : prev[2] + 1]
            self.resize(src, canvas[0, :, cur[1] : cur[3] + 1, cur[0] : cur[2] + 1], double_tail=False)
        return canvas, rects

    def prepare(self, pixels: np.ndarray, upsample: int) -> tuple[Any, list[Rect]] | None:
        """A photo's canvas on the device, from its (3, h, w) uint8 planes; None when the
        (upsampled) photo is too small for the network (no face fits: dlib raises there)."""
        # The photo goes over as it was decoded, (h, w, 3), and is made planar on the device.
        hwc = np.ascontiguousarray(pixels.transpose(1, 2, 0))
        with warnings.catch_warnings():  # decoded photos are read-only arrays; nothing writes to them
            warnings.simplefilter("ignore", UserWarning)
            img = self.torch.from_numpy(hwc).to(self.backend.device).permute(2, 0, 1).contiguous()
        for _ in range(upsample):
            img = self.pyramid_up(img)
        if img.shape[1] == 0 or img.shape[2] == 0:
            return None
        canvas, rects = self.canvas(img)
        if min(int(canvas.shape[2]), int(canvas.shape[3])) < self.geometry.field:
            return None
        return canvas, rects

    # -- the network, many canvases at once ----------------------------------------------------

    def scores(self, images: Sequence[np.ndarray], upsample: int) -> list[Scored | None]:
        """Each photo's score map and pyramid rectangles (None: too small), for planar uint8
        photos. A canvas too large for one batch runs alone, cut into bands."""
        prepared = [self.prepare(img, upsample) for img in images]
        results: list[Scored | None] = [None] * len(images)
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(prepared):
            if item is None:
                continue
            rows, cols = int(item[0].shape[2]), int(item[0].shape[3])
            if rows * cols > self.backend.max_pixels:
                results[i] = (banded_scores(self._run, item[0], self.geometry, self.backend.max_pixels), item[1])
                continue
            buckets.setdefault((-(-rows // BUCKET) * BUCKET, -(-cols // BUCKET) * BUCKET), []).append(i)
        for (rows, cols), members in buckets.items():
            per_batch = max(1, self.backend.max_pixels // (rows * cols))
            for start in range(0, len(members), per_batch):
                chunk = members[start : start + per_batch]
                maps = self._run_bucket([_canvas(prepared[i]) for i in chunk], rows, cols)
                for i, m in zip(chunk, maps, strict=True):
                    item = prepared[i]
                    assert item is not None
                    results[i] = (m, item[1])
        return results

    def _run(self, canvas: Any) -> np.ndarray:
        return score_map(self.backend.run, canvas)

    def _run_bucket(self, canvases: list[Any], rows: int, cols: int) -> list[np.ndarray]:
        """Canvases zero-padded to ``rows`` x ``cols``, run as one batch; each output cropped
        to its own canvas's cells."""
        torch = self.torch
        batch = torch.zeros((len(canvases), 3, rows, cols), dtype=torch.float32, device=self.backend.device)
        sizes = []
        for k, c in enumerate(canvases):
            r, w = int(c.shape[2]), int(c.shape[3])
            batch[k, :, :r, :w] = c[0]
            sizes.append((r, w))
        out = self.backend.run_tensor(batch, sizes)[:, 0].cpu().numpy()
        geo = self.geometry
        return [
            np.ascontiguousarray(out[k, : out_len(r, geo), : out_len(w, geo)], dtype=np.float32)
            for k, (r, w) in enumerate(sizes)
        ]


def _canvas(item: tuple[Any, list[Rect]] | None) -> Any:
    assert item is not None
    return item[0]
