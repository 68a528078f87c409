"""The calibration plot, drawn with Pillow (no plotting library): F1 against threshold."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from photocluster.core.errors import ExportError
from photocluster.eval.calibrate import CalibrationResult

WIDTH, HEIGHT = 900, 560
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 40, 84, 70
_PAIRWISE = (31, 119, 180)
_BCUBED = (255, 127, 14)
_MARK = (214, 39, 40)
_GRID = (225, 225, 225)
_INK = (30, 30, 30)


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _dashed_vline(draw: ImageDraw.ImageDraw, x: float, top: float, bottom: float, color: tuple[int, int, int]) -> None:
    y = top
    while y < bottom:
        draw.line([(x, y), (x, min(y + 8, bottom))], fill=color, width=2)
        y += 14


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if span / s <= 10)
    first = round(lo / step + 0.4999) * step
    out = []
    t = first
    while t <= hi + 1e-9:
        out.append(round(t, 4))
        t += step
    return out


def render_calibration(result: CalibrationResult) -> Image.Image:
    """The pairwise-F1 and BCubed-F1 curves over the swept thresholds, the recommended
    threshold marked, on white, as an RGB image."""
    im = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(im)
    small, normal = _font(13), _font(16)
    ts = [r.threshold for r in result.rows]
    lo, hi = min(ts), max(ts)
    if hi == lo:
        lo, hi = lo - 0.05, hi + 0.05
    x0, x1, y0, y1 = _LEFT, WIDTH - _RIGHT, HEIGHT - _BOTTOM, _TOP

    def px(t: float) -> float:
        return x0 + (t - lo) / (hi - lo) * (x1 - x0)

    def py(v: float) -> float:
        return y0 - v * (y0 - y1)

    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        draw.line([(x0, py(v)), (x1, py(v))], fill=_GRID, width=1)
        draw.text((x0 - 8, py(v)), f"{v:.1f}", fill=_INK, font=small, anchor="rm")
    for t in _ticks(lo, hi):
        draw.line([(px(t), y0), (px(t), y0 + 6)], fill=_INK, width=1)
        draw.text((px(t), y0 + 10), f"{t:g}", fill=_INK, font=small, anchor="mt")
    draw.line([(x0, y1), (x0, y0), (x1, y0)], fill=_INK, width=2)
    draw.text(((x0 + x1) / 2, HEIGHT - 22), "threshold (Euclidean distance)", fill=_INK, font=normal, anchor="mm")
    draw.text((22, (y0 + y1) / 2), "F1", fill=_INK, font=normal, anchor="mm")
    draw.text(
        (WIDTH / 2, 24),
        f"Clustering F1 by threshold: {result.images} images, {result.identities} identities",
        fill=_INK,
        font=normal,
        anchor="mm",
    )

    def curve(values: Sequence[float], color: tuple[int, int, int]) -> None:
        points = [(px(t), py(v)) for t, v in zip(ts, values, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=color, width=3, joint="curve")
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)

    curve([r.pairwise.f1 for r in result.rows], _PAIRWISE)
    curve([r.bcubed.f1 for r in result.rows], _BCUBED)
    best = result.best
    xr = px(best.threshold)
    _dashed_vline(draw, xr, y1, y0, _MARK)
    draw.text(
        (xr + 6 if xr < (x0 + x1) / 2 else xr - 6, y0 - 24),
        f"recommended {best.threshold:g} (BCubed F1 {best.bcubed.f1:.3f})",
        fill=_MARK,
        font=small,
        anchor="lm" if xr < (x0 + x1) / 2 else "rm",
    )
    # Legend: in the top margin, so it never hides a curve.
    for k, (label, color) in enumerate((("pairwise F1", _PAIRWISE), ("BCubed F1", _BCUBED))):
        lx, ly = x0 + 180 * k, 54
        draw.line([(lx, ly), (lx + 30, ly)], fill=color, width=3)
        draw.text((lx + 40, ly), label, fill=_INK, font=small, anchor="lm")
    return im


def check_destination(path: str | os.PathLike[str]) -> None:
    """Raise ExportError now if ``path`` cannot be a new file (before minutes of scanning)."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give a file name for the plot")
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ExportError(f"{path}: cannot write the plot (its folder does not exist or is not writable)")


def plot_calibration(result: CalibrationResult, path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_calibration` as a PNG to ``path``. Raises ExportError if it cannot."""
    path = Path(path)
    try:
        render_calibration(result).save(path, format="PNG")
    except OSError as exc:
        raise ExportError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    return path
