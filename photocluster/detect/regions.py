"""Face regions in normalised coordinates of the stored image, and back to displayed pixels.

MWG 2.0 (section 5.9) applies regions to the image *as stored*; a reader that shows the
photo rotated by its EXIF orientation rotates the regions with it (digiKam, Immich and
exiftool's rotate_regions.config all do). photocluster keeps boxes in the displayed
orientation (the detector's), so reading a region (:func:`displayed_box`) and writing one
(:func:`stored_area`) go through the one mapping here, each the inverse of the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from photocluster.core.types import Box
from photocluster.detect.images import TRANSPOSED_ORIENTATIONS


@dataclass(frozen=True)
class Geometry:
    """A photo file's stored pixel size and EXIF orientation (1..8)."""

    width: int
    height: int
    orientation: int

    @property
    def displayed(self) -> tuple[int, int]:
        """Width and height as displayed (orientation applied)."""
        if self.orientation in TRANSPOSED_ORIENTATIONS:
            return self.height, self.width
        return self.width, self.height


def to_stored(u: float, v: float, orientation: int) -> tuple[float, float]:
    """A normalised point of the displayed image -> the same point in the stored image."""
    if orientation == 2:
        return 1 - u, v
    if orientation == 3:
        return 1 - u, 1 - v
    if orientation == 4:
        return u, 1 - v
    if orientation == 5:
        return v, u
    if orientation == 6:
        return v, 1 - u
    if orientation == 7:
        return 1 - v, 1 - u
    if orientation == 8:
        return 1 - v, u
    return u, v


def to_displayed(x: float, y: float, orientation: int) -> tuple[float, float]:
    """A normalised point of the stored image -> the same point as displayed (the inverse
    of :func:`to_stored`: 6 and 8 are each other's inverse, the others their own)."""
    inverse = {6: 8, 8: 6}.get(orientation, orientation)
    return to_stored(x, y, inverse)


def stored_area(box: Box, geo: Geometry) -> tuple[float, float, float, float]:
    """A box in displayed pixels -> MWG area (centre x, y, w, h; normalised) of the stored image.

    The box is clipped to the image first (detectors may reach past an edge).
    """
    dw, dh = geo.displayed
    left, right = min(max(box.left, 0.0), dw), min(max(box.right, 0.0), dw)
    top, bottom = min(max(box.top, 0.0), dh), min(max(box.bottom, 0.0), dh)
    u, v = (left + right) / 2 / dw, (top + bottom) / 2 / dh
    w, h = (right - left) / dw, (bottom - top) / dh
    x, y = to_stored(u, v, geo.orientation)
    if geo.orientation in TRANSPOSED_ORIENTATIONS:
        w, h = h, w
    return x, y, w, h


def displayed_box(x: float, y: float, w: float, h: float, geo: Geometry) -> Box | None:
    """An MWG area (centre x, y, w, h; normalised, stored image) -> a box in displayed pixels,
    clipped to the image; None when nothing of it is inside the image."""
    u, v = to_displayed(x, y, geo.orientation)
    if geo.orientation in TRANSPOSED_ORIENTATIONS:
        w, h = h, w
    dw, dh = geo.displayed
    left, right = max(u - w / 2, 0.0) * dw, min(u + w / 2, 1.0) * dw
    top, bottom = max(v - h / 2, 0.0) * dh, min(v + h / 2, 1.0) * dh
    if right <= left or bottom <= top:
        return None
    return Box(left, top, right, bottom)
