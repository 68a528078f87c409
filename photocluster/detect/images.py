"""Finding photos on disk and decoding them for detection.

Decoding is bounded: JPEGs are decoded in draft mode (DCT scaling) close to the
detection size, so a 12 MP photo never costs 12 MP of RGB memory. EXIF orientation
is applied first, so every coordinate downstream is in the photo as displayed.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import mmap
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from photocluster.core.config import MAX_ENLARGE
from photocluster.core.errors import ImageError
from photocluster.core.files import RefusedFileError, file_kind, file_sha256, open_regular

log = logging.getLogger(__name__)

EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".heic", ".heif", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
# A folder holding this file was written by `photocluster export`; scans skip it.
EXPORT_MARKER = ".photocluster-export"

# EXIF orientations that swap width and height (a quarter turn, with or without a mirror).
TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})

_heif_registered = False


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF (once per process; pillow-heif's opener is a plugin)."""
    global _heif_registered
    if not _heif_registered:
        _heif_registered = True
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            # A dependency, but an install without it still reads every other format; a
            # HEIC file then fails alone with Pillow's "cannot identify image file".
            return
        register_heif_opener()


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def walk(
    roots: Iterable[Path],
    on_error: Callable[[Path, str], None] | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
) -> Iterator[Path]:
    """Yield photo files under ``roots`` in a stable order.

    Follows symlinked folders but never enters a folder twice (so symlink loops
    end), skips hidden files and folders and photocluster export folders. Folders that
    cannot be read are reported through ``on_error`` and skipped. A photo's name on
    something that is not a regular file (a FIFO, a device, a socket, or a symlink to one)
    is reported through ``on_skip`` (default: ``on_error``) and never opened.
    """
    skip = on_skip if on_skip is not None else on_error
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def report(path: Path, reason: str) -> None:
        if on_error is not None:
            on_error(path, reason)

    def visit_file(path: Path, st: os.stat_result) -> Iterator[Path]:
        key = (st.st_dev, st.st_ino)
        # The same file reached twice through a symlink is one photo, not two.
        if key not in seen_files:
            seen_files.add(key)
            yield path

    def visit_dir(path: Path, st: os.stat_result) -> Iterator[Path]:
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report(path, f"cannot read folder: {_os_reason(exc)}")
            return
        if any(e.name == EXPORT_MARKER for e in entries):
            log.info("not scanned: %s is a photocluster export", path)
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files and folders, macOS "._IMG.jpg" resource forks
            child = Path(entry.path)
            try:
                child_st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                if entry.is_symlink():
                    reason = "broken symlink" if exc.errno == errno.ENOENT else _os_reason(exc)
                    if is_photo_name(entry.name):
                        report(child, reason)
                    continue
                report(child, _os_reason(exc))
                continue
            if stat.S_ISDIR(child_st.st_mode):
                yield from visit_dir(child, child_st)
            elif stat.S_ISREG(child_st.st_mode) and is_photo_name(entry.name):
                yield from visit_file(child, child_st)
            elif is_photo_name(entry.name) and skip is not None:
                skip(child, f"not a regular file ({file_kind(child_st.st_mode)}): not read")

    for root in roots:
        try:
            st = root.stat()
        except OSError as exc:
            report(root, _os_reason(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from visit_dir(root, st)
        elif stat.S_ISREG(st.st_mode):
            yield from visit_file(root, st)
        elif skip is not None:
            skip(root, f"not a regular file ({file_kind(st.st_mode)}): not read")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, RefusedFileError):
        return str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "file disappeared"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    return exc.strerror or exc.__class__.__name__


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the identity of a photo across moves and renames."""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ImageError(path, _os_reason(exc)) from None


@dataclass(frozen=True)
class Fingerprint:
    """What a scan knows a file by: ``sha256`` of all its bytes, and ``pixel_key``, a key
    of what decoding it gives (None where photocluster has none for the format)."""

    sha256: str
    pixel_key: str | None


# JPEG segments that hold metadata only: APP1 (EXIF, XMP), APP2 (ICC, MPF), APP3-APP13
# (IPTC, Photoshop, maker data), APP15 and comments. Kept in the key: APP0 (JFIF) and
# APP14 (Adobe), which tell the decoder the colour space and so change the pixels.
_METADATA_MARKERS = frozenset({*range(0xE1, 0xEE), 0xEF, 0xFE})
# Markers without a length field: TEM, RST0-7 (SOI and EOI are handled apart).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_image_spans(data: mmap.mmap) -> list[tuple[int, int]] | None:
    """The byte ranges of a JPEG that decoding reads (tables, frame header, scans up to
    EOI), without its metadata segments; None when it is not a JPEG this parser follows."""
    size = len(data)
    if size < 4 or data[:3] != b"\xff\xd8\xff":
        return None
    spans: list[tuple[int, int]] = []
    pos = 2
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _STANDALONE:
            pos += 2
        elif marker == 0xDA:
            # Start of scan: entropy-coded data (byte stuffing keeps FF D9 out of it), any
            # further scans, and the EOI; whatever trails it (a preview image) is not decoded.
            end = data.find(b"\xff\xd9", pos)
            if end < 0:
                return None
            spans.append((pos, end + 2))
            return spans
        else:
            length = (data[pos + 2] << 8) | data[pos + 3]
            if length < 2:
                return None
            if marker not in _METADATA_MARKERS:
                spans.append((pos, pos + 2 + length))
            pos += 2 + length
    return None


def fingerprint(path: Path) -> Fingerprint:
    """The SHA-256 of ``path`` and, for JPEGs, a key of its pixels as displayed: a hash of
    everything but its metadata segments, plus the EXIF orientation (which turns the
    pixels). A metadata-only edit (keywords, dates, ratings, GPS) keeps the key, so the
    photo needs no new detection. One read of the file, mapped: the key costs little more
    than the SHA-256 (benchmarks/rescan.py, "keys")."""
    try:
        with open_regular(path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return Fingerprint(hashlib.sha256(b"").hexdigest(), None)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                sha = hashlib.sha256(data).hexdigest()
                spans = _jpeg_image_spans(data)
                key = None
                if spans is not None:
                    digest = hashlib.sha256()
                    with memoryview(data) as view:
                        for start, end in spans:
                            digest.update(view[start:end])
                    key = digest.hexdigest()
    except OSError as exc:
        raise ImageError(path, _os_reason(exc)) from None
    orientation = None if key is None else _orientation_of(path)
    return Fingerprint(sha, None if orientation is None else f"jpeg:{key}:o{orientation}")


def _orientation_of(path: Path) -> int | None:
    """The EXIF orientation as decoding applies it (None: the file cannot be parsed)."""
    try:
        with warnings.catch_warnings(), open_regular(path) as fh, Image.open(fh) as im:
            warnings.simplefilter("ignore")
            return exif_orientation(im.getexif())
    except Exception:  # noqa: BLE001 - no key is the safe answer: the photo is analysed
        return None


def taken_at_of(path: Path) -> str | None:
    """The EXIF date a photo was taken (see :func:`_taken_at`), read from its header only."""
    try:
        with warnings.catch_warnings(), open_regular(path) as fh, Image.open(fh) as im:
            warnings.simplefilter("ignore")
            return _taken_at(im.getexif())
    except Exception:  # noqa: BLE001 - a broken header only costs us the date
        return None


@dataclass(frozen=True)
class DecodedImage:
    """RGB pixels ready for detection plus how they map back to the photo.

    ``pixels`` is (h, w, 3) uint8. ``scale`` is detection pixels per displayed
    photo pixel, so a detection coordinate divided by ``scale`` is a photo coordinate.
    """

    pixels: np.ndarray
    width: int
    height: int
    scale: float
    taken_at: str | None


def detection_size(width: int, height: int, max_size: int, enlarge: bool) -> tuple[int, int]:
    """The size photos are detected at: long side at most ``max_size``; small photos
    enlarged (when ``enlarge``) up to ``MAX_ENLARGE`` times, never beyond ``max_size``."""
    long_side = max(width, height)
    target = min(max_size, long_side * MAX_ENLARGE) if enlarge else min(max_size, long_side)
    factor = target / long_side
    return max(1, round(width * factor)), max(1, round(height * factor))


def load_image(path: Path, max_size: int, enlarge: bool = True, data: bytes | None = None) -> DecodedImage:
    """Decode ``path`` for detection. Raises :class:`ImageError` with a one-line reason.

    ``data``: the file's bytes, read elsewhere (a scan on a cluster whose workers do not
    see the client's files); ``path`` then only names the photo in errors."""
    register_heif()
    try:
        with warnings.catch_warnings():
            # Pillow warns on huge images and bad EXIF; the error path below covers what matters.
            warnings.simplefilter("ignore")
            return _load(path, max_size, enlarge, data)
    except ImageError:
        raise
    except RefusedFileError as exc:
        raise ImageError(path, str(exc)) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(path, f"image too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not a readable image (unknown or corrupt format)") from None
    except IsADirectoryError:
        raise ImageError(path, "is a folder, not a file") from None
    except OSError as exc:
        if exc.errno is not None:
            raise ImageError(path, _os_reason(exc)) from None
        raise ImageError(path, f"corrupt or truncated image ({_one_line(exc)})") from None
    except (ValueError, SyntaxError, EOFError, MemoryError, struct_error()) as exc:
        raise ImageError(path, f"corrupt image ({_one_line(exc)})") from None


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__


def _load(path: Path, max_size: int, enlarge: bool, data: bytes | None) -> DecodedImage:
    # Opened only as a regular file: a photo replaced by a FIFO since the walk never blocks.
    with open_regular(path) if data is None else io.BytesIO(data) as fh, Image.open(fh) as im:
        stored_w, stored_h = im.size
        if stored_w < 1 or stored_h < 1:
            raise ImageError(path, "image has no pixels")
        exif = im.getexif()
        orientation = exif_orientation(exif)
        taken_at = _taken_at(exif)
        transposed = orientation in TRANSPOSED_ORIENTATIONS
        width, height = (stored_h, stored_w) if transposed else (stored_w, stored_h)
        target_w, target_h = detection_size(stored_w, stored_h, max_size, enlarge)
        if im.format == "JPEG":
            # DCT scaling decodes at 1/2, 1/4 or 1/8 size directly, never below the target.
            im.draft(None, (target_w, target_h))
        im.load()
        rgb = _to_rgb(ImageOps.exif_transpose(im) if orientation != 1 else im)
    det_w, det_h = detection_size(width, height, max_size, enlarge)
    if rgb.size != (det_w, det_h):
        resample = Image.Resampling.BILINEAR if det_w > rgb.size[0] else Image.Resampling.LANCZOS
        rgb = rgb.resize((det_w, det_h), resample, reducing_gap=3.0 if det_w < rgb.size[0] else None)
    pixels = np.asarray(rgb, dtype=np.uint8)
    return DecodedImage(pixels=pixels, width=width, height=height, scale=det_w / width, taken_at=taken_at)


def exif_orientation(exif: Image.Exif) -> int:
    """The EXIF orientation, 1..8. Values outside 1..8 (0, 9, text: seen in the wild)
    count as 1, upright, as exif_transpose and most viewers treat them."""
    value = exif.get(ExifTags.Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB. Transparency is flattened onto white."""
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif arr.size and (arr.max() > 255 or (mode == "F" and 0 < arr.max() <= 1.0)):
            arr = arr * (255.0 / arr.max())
        gray = np.clip(arr, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        if im.mode == "RGB":
            return im
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def _taken_at(exif: Image.Exif) -> str | None:
    """EXIF DateTimeOriginal (else DateTime) as ISO 8601 without zone, or None."""
    value = None
    try:
        value = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    except Exception:  # noqa: BLE001 - a broken EXIF block only costs us the date
        value = None
    value = value or exif.get(ExifTags.Base.DateTime)
    if not isinstance(value, str):
        return None
    value = value.strip().rstrip("\x00")
    # "YYYY:MM:DD HH:MM:SS" -> "YYYY-MM-DDTHH:MM:SS"
    if len(value) >= 19 and value[4] == ":" and value[7] == ":":
        iso = f"{value[0:4]}-{value[5:7]}-{value[8:10]}T{value[11:19]}"
        if iso[:4].isdigit() and iso[:4] != "0000":
            return iso
    return None
