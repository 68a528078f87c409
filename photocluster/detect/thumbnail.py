"""A face's thumbnail: a small square WebP of the face box with a margin, as the review
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
# The stored format, chosen by benchmarks/thumb_format.py (real faces, bytes a face in the
# database against SSIM): WebP at quality 75 is 0.4x a JPEG of quality 85 in the database
# for an SSIM 0.017 lower, invisible at 128 px; Chromium, Firefox and Safari show it.
THUMB_FORMAT = "WEBP"
THUMB_MEDIA_TYPE = "image/webp"
THUMB_SUFFIX = ".webp"
THUMB_QUALITY = 75
THUMB_METHOD = 6  # libwebp's slowest, smallest: ~3 ms a face, about 2% of a face's analysis
# A thumbnail larger than this (a face with much fine detail) is encoded again at a lower
# quality, down to THUMB_FLOOR: two then fit in one 4 kB page of the database, where one
# of 2.1 kB would take a page (almost) alone.
THUMB_BUDGET = 1990
THUMB_FLOOR = 40
# What a stored thumbnail was cut with (see photocluster.store.thumbs): another value is a recut.
THUMB_PARAMS = f"{THUMB_SIZE}/{THUMB_MARGIN}/webp{THUMB_QUALITY}"
# Stored by earlier versions: a JPEG of quality 85, converted once (photocluster.app.thumbs).
LEGACY_PARAMS = f"{THUMB_SIZE}/{THUMB_MARGIN}/85"


def thumbnail_side(box: Box) -> float:
    """Side, in photo pixels, of the square a thumbnail shows around ``box``."""
    return max(box.width, box.height) * (1 + 2 * THUMB_MARGIN)


def thumbnail_scale(box: Box) -> float:
    """The decoding scale (decoded pixels per photo pixel, at most 1) a thumbnail of ``box`` needs."""
    return min(1.0, THUMB_SIZE / thumbnail_side(box))


def thumbnail(image: DecodedImage, box: Box) -> bytes:
    """A THUMB_SIZE square thumbnail (THUMB_FORMAT) of ``box`` (displayed full-size pixels)
    with its margin. Parts of the square outside the photo are grey."""
    return encode_thumbnail(thumbnail_pixels(image, box))


def thumbnail_pixels(image: DecodedImage, box: Box) -> Image.Image:
    """The thumbnail's square before it is encoded (RGB, THUMB_SIZE pixels a side)."""
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
    return canvas


def encode_thumbnail(pixels: Image.Image) -> bytes:
    """``pixels`` as a stored thumbnail: THUMB_FORMAT at THUMB_QUALITY, or at the highest
    quality (steps of 5, down to THUMB_FLOOR) whose bytes fit THUMB_BUDGET."""
    quality = THUMB_QUALITY
    while True:
        out = io.BytesIO()
        pixels.save(out, THUMB_FORMAT, quality=quality, method=THUMB_METHOD)
        if out.tell() <= THUMB_BUDGET or quality <= THUMB_FLOOR:
            return out.getvalue()
        quality -= 5


def reencode_thumbnail(data: bytes) -> bytes:
    """A thumbnail stored in an earlier format (a JPEG of :data:`LEGACY_PARAMS`) in THUMB_FORMAT.
    Raises OSError (PIL's UnidentifiedImageError among them) when ``data`` is no image."""
    with Image.open(io.BytesIO(data)) as im:
        return encode_thumbnail(im.convert("RGB"))


def face_thumbnail(path: Path, long_side: int | None, box: Box, data: bytes | None = None) -> bytes:
    """The thumbnail of one face of the photo at ``path`` (``long_side``: its longer side
    as displayed, when known), decoded no larger than the thumbnail needs. ``data``: the
    photo's bytes, read already (``path`` then only names it in errors)."""
    scale = thumbnail_scale(box)
    max_size = math.ceil(long_side * scale) + 1 if long_side else 1 << 20
    return thumbnail(load_image(path, max_size, enlarge=False, data=data), box)
