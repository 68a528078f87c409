"""A face's thumbnail: a small square JPEG of the face box with a margin, as the review
pages show it (cut by the export for its files, and by the review app on request).

Cut from the photo as displayed (EXIF orientation applied), decoded at the smallest size
that serves the face (see :func:`thumbnail_scale` and
:func:`photocluster.detect.images.load_image`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image

from photocluster.core.types import Box
from photocluster.detect.images import DecodedImage, load_image

THUMB_SIZE = 128  # pixels, square; shown at 96 CSS pixels, sharp on 1.33x screens
THUMB_MARGIN = 0.3  # of the face box's longer side, on every side
THUMB_QUALITY = 85
# What a stored thumbnail was cut with (see photocluster.store.thumbs): another value is a recut.
THUMB_PARAMS = f"{THUMB_SIZE}/{THUMB_MARGIN}/{THUMB_QUALITY}"


def thumbnail_side(box: Box) -> float:
    """Side, in photo pixels, of the square a thumbnail shows around ``box``."""
    return max(box.width, box.height) * (1 + 2 * THUMB_MARGIN)


def thumbnail_scale(box: Box) -> float:
    """The decoding scale (decoded pixels per photo pixel, at most 1) a thumbnail of ``box`` needs."""
    return min(1.0, THUMB_SIZE / thumbnail_side(box))


def thumbnail(image: DecodedImage, box: Box) -> bytes:
    """A THUMB_SIZE square JPEG of ``box`` (displayed full-size pixels) with its margin.

    Parts of the square outside the photo are grey.
    """
    cx, cy = box.center
    side = thumbnail_side(box) * image.scale
    half = side / 2
    left, top = round(cx * image.scale - half), round(cy * image.scale - half)
    size = max(1, round(side))
    h, w = image.pixels.shape[:2]
    canvas = Image.new("RGB", (size, size), (128, 128, 128))
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + size, w), min(top + size, h)
    if x1 > x0 and y1 > y0:
        canvas.paste(Image.fromarray(image.pixels[y0:y1, x0:x1]), (x0 - left, y0 - top))
    if size != THUMB_SIZE:
        resample = Image.Resampling.LANCZOS if size > THUMB_SIZE else Image.Resampling.BICUBIC
        canvas = canvas.resize((THUMB_SIZE, THUMB_SIZE), resample)
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def face_thumbnail(path: Path, long_side: int | None, box: Box, data: bytes | None = None) -> bytes:
    """The thumbnail of one face of the photo at ``path`` (``long_side``: its longer side
    as displayed, when known), decoded no larger than the thumbnail needs. ``data``: the
    photo's bytes, read already (``path`` then only names it in errors)."""
    scale = thumbnail_scale(box)
    max_size = math.ceil(long_side * scale) + 1 if long_side else 1 << 20
    return thumbnail(load_image(path, max_size, enlarge=False, data=data), box)
