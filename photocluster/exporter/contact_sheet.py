"""Contact sheets: the faces of two persons side by side, a row per pair, labelled, as one
PNG; what ``suggest --ask`` shows a person to judge "same person?" by.

Takes the thumbnails the store holds (JPEG bytes, :mod:`photocluster.detect.thumbnail`);
a face without one is drawn as a grey square.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

TILE = 96  # pixels per face on the sheet
_GAP = 8
_LINE = 20  # height of a line of text
_SIDE_GAP = 32  # between the two persons of a pair
_BACKGROUND = (255, 255, 255)
_MISSING = (200, 200, 200)
_TEXT = (20, 20, 20)


@dataclass(frozen=True)
class Side:
    """One person of a pair: its label ("person 3 (Ann), 12 faces") and face thumbnails."""

    label: str
    thumbnails: Sequence[bytes | None]


@dataclass(frozen=True)
class PairRow:
    """A pair of persons, headed by ``title`` ("#1: same person? distance 0.41")."""

    title: str
    left: Side
    right: Side


def pair_sheet(rows: Sequence[PairRow], per_side: int) -> bytes:
    """The PNG of ``rows``: each row its title, then each side's label above up to
    ``per_side`` faces, the two sides apart."""
    if not rows:
        raise ValueError("a contact sheet needs at least one pair")
    side_width = per_side * TILE + (per_side - 1) * _GAP
    width = 2 * _GAP + 2 * side_width + _SIDE_GAP
    row_height = 2 * _LINE + TILE + 2 * _GAP
    sheet = Image.new("RGB", (width, _GAP + len(rows) * row_height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for n, row in enumerate(rows):
        top = _GAP + n * row_height
        draw.text((_GAP, top), row.title, fill=_TEXT, font=font)
        for k, side in enumerate((row.left, row.right)):
            left = _GAP + k * (side_width + _SIDE_GAP)
            draw.text((left, top + _LINE), _fit(draw, side.label, font, side_width), fill=_TEXT, font=font)
            for j, jpeg in enumerate(side.thumbnails[:per_side]):
                box = (left + j * (TILE + _GAP), top + 2 * _LINE)
                sheet.paste(_tile(jpeg), box)
        if n:
            draw.line((_GAP, top - _GAP // 2, width - _GAP, top - _GAP // 2), fill=_MISSING)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue()


def _tile(jpeg: bytes | None) -> Image.Image:
    if jpeg is None:
        return Image.new("RGB", (TILE, TILE), _MISSING)
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    """``text``, cut short with an ellipsis where it is wider than ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
