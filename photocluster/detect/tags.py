"""Read the face tags a person already has: names, and where the faces are.

- XMP face regions, embedded in the photo (JPEG, PNG, TIFF, WebP, HEIC: the packet Pillow
  and pillow-heif hand over while reading the header) or in a sidecar (``photo.jpg.xmp``,
  darktable's and digiKam's name, and Lightroom's ``photo.xmp``): MWG ``mwg-rs:Regions``
  (Lightroom, digiKam, Picasa 3.9+, exiftool, Apple Photos through osxphotos) and
  Microsoft ``MP:RegionInfo`` (Windows Photo Gallery, digiKam). XML is parsed with
  defusedxml (a photo's metadata is untrusted input: no entity expansion).
- Picasa's ``.picasa.ini`` (``faces=rect64(...),contactid``), with names from its
  ``[Contacts2]`` section or from a ``contacts.xml`` in the folder or one above it.
- Google Takeout's JSON beside a photo (``people[].name``): names without boxes.

The XMP vocabulary is :mod:`photocluster.detect.xmp_codec`'s, shared with the writer of
sidecars. Boxes come out in displayed pixels (:mod:`photocluster.detect.regions`). Nothing is ever
written. A file that cannot be read or parsed gives a one-line warning naming it, never
an exception: one odd sidecar must not stop a scan.

Anything beside a photo is untrusted and read with bounds
(:func:`photocluster.core.files.read_regular`): only a regular file, of at most
``SIDE_FILE_MAX_BYTES`` (``TAKEOUT_MAX_BYTES`` for a Takeout JSON; a FIFO never blocks the
scan, a link to /dev/zero is never read), JSON nested at most ``MAX_JSON_DEPTH`` deep, at
most ``MAX_TAGS_PER_PHOTO`` tags kept per photo, names cut at ``MAX_NAME_CHARS``.
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import itertools
import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from PIL import Image

from photocluster.core.files import SIDE_FILE_MAX_BYTES, open_regular, read_regular
from photocluster.core.types import Box
from photocluster.detect.images import exif_orientation, register_heif
from photocluster.detect.regions import Geometry, displayed_box
from photocluster.detect.xmp_codec import (
    AREA,
    FACE_ID,
    MP_INFO,
    MP_NAME,
    MP_RECTANGLE,
    MP_REGIONS,
    NAME,
    REGION_LIST,
    REGION_URIS,
    REGIONS,
    TYPE,
    mp_area,
    number,
    q,
    rdf_items,
    rdf_struct,
    rdf_value,
)

SOURCES = ("mwg", "mp", "picasa", "takeout")
# Two tags of one name whose boxes overlap this much are one tag written twice (digiKam
# writes MWG and Microsoft regions of each face; a sidecar may repeat the embedded ones).
SAME_TAG_IOU = 0.5
# Bounds on what one photo's tags may cost (see the module doc): a real Takeout JSON is
# nested 4 deep; a crowded group photo has a few dozen tagged faces, not hundreds.
MAX_JSON_DEPTH = 64
# A Takeout JSON is a few KB: a smaller cap than other side files keeps its depth check short.
TAKEOUT_MAX_BYTES = 1024 * 1024
MAX_TAGS_PER_PHOTO = 500
# Regions of a kind (MWG, Microsoft) looked at in one XMP packet, named faces or not.
MAX_REGION_ITEMS = 4 * MAX_TAGS_PER_PHOTO
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Tag:
    """A name a person gave a face. ``box`` is in displayed pixels of the photo, None for a
    name without a place (Takeout). ``origin`` is the file it was read from; ``ours`` marks
    a region photocluster's own export wrote (its clustering, not the person's work)."""

    name: str
    box: Box | None
    source: str
    origin: str
    ours: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"tag source must be one of {SOURCES}, got {self.source!r}")
        if not self.name:
            raise ValueError("a tag needs a name")


@dataclass(frozen=True)
class TagRead:
    """What :func:`read_tags` found for one photo, and the one-line warnings on the way."""

    tags: tuple[Tag, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


# -- XMP regions (the vocabulary is photocluster.detect.xmp_codec's) ---------------------


def _clean(name: str | None) -> str:
    """A name on one line, spaces collapsed, at most ``MAX_NAME_CHARS`` long; lone surrogates
    (JSON allows ``\\udcff``) become U+FFFD, as names are stored as text."""
    text = " ".join((name or "")[: MAX_NAME_CHARS * 4].split())[:MAX_NAME_CHARS].strip()
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def _items(root: ET.Element, holder: str, list_name: str) -> Iterator[ET.Element]:
    """The structs of every ``list_name`` array in a ``holder`` (``mwg-rs:Regions``, ``MP:RegionInfo``)."""
    for found in root.iter(holder):
        yield from rdf_items(rdf_struct(found), list_name)


def _mwg(items: Iterable[ET.Element], geo: Geometry, origin: str) -> Iterator[Tag]:
    for li in items:
        kind = rdf_value(li, TYPE)
        name = _clean(rdf_value(li, NAME))
        area_el = li.find(AREA)
        if (kind or "Face") != "Face" or not name or area_el is None:
            continue
        area = rdf_struct(area_el)
        x, y, w, h = (number(rdf_value(area, q("stArea", k))) for k in ("x", "y", "w", "h"))
        if x is None or y is None or w is None or h is None or w <= 0 or h <= 0:
            continue
        box = displayed_box(x, y, w, h, geo)
        if box is not None:
            yield Tag(name, box, "mwg", origin, ours=rdf_value(li, FACE_ID) is not None)


def _mp(items: Iterable[ET.Element], geo: Geometry, origin: str) -> Iterator[Tag]:
    for region in items:
        name = _clean(rdf_value(region, MP_NAME))
        area = mp_area(rdf_value(region, MP_RECTANGLE))
        if not name or area is None:
            continue
        x, y, w, h = area
        if w <= 0 or h <= 0:
            continue
        box = displayed_box(x, y, w, h, geo)
        if box is not None:
            yield Tag(name, box, "mp", origin, ours=rdf_value(region, FACE_ID) is not None)


def regions_in_xmp(data: bytes, geo: Geometry, origin: str) -> list[Tag]:
    """The named face regions (MWG and Microsoft) of one XMP packet, from its first
    ``MAX_REGION_ITEMS`` regions of each kind. Raises ValueError with a one-line reason
    when it is not XML."""
    return _regions(data, geo, origin)[0]


def _regions(data: bytes, geo: Geometry, origin: str) -> tuple[list[Tag], bool]:
    """:func:`regions_in_xmp`, and whether regions past ``MAX_REGION_ITEMS`` were left
    unread. Bounded work: lists nested in lists are walked again by each list above them."""
    try:
        root = SafeET.fromstring(data.rstrip(b"\x00 \r\n\t"))
    except DefusedXmlException as exc:
        raise ValueError(f"XMP refused: it declares entities or a DTD ({type(exc).__name__})") from None
    except (ET.ParseError, ValueError) as exc:
        raise ValueError(f"not valid XMP ({_one_line(exc)})") from None
    tags: list[Tag] = []
    cut = False
    for holder, list_name, read in ((REGIONS, REGION_LIST, _mwg), (MP_INFO, MP_REGIONS, _mp)):
        items = list(itertools.islice(_items(root, holder, list_name), MAX_REGION_ITEMS + 1))
        cut = cut or len(items) > MAX_REGION_ITEMS
        tags.extend(read(items[:MAX_REGION_ITEMS], geo, origin))
    return tags, cut


def _xmp_tags(data: bytes, geo: Geometry, origin: str, found: list[Tag], notes: list[str]) -> None:
    tags, cut = _regions(data, geo, origin)
    found.extend(tags)
    if cut:
        notes.append(f"{origin}: more than {MAX_REGION_ITEMS} regions of a kind: the rest skipped")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# -- the photo and what lies beside it ------------------------------------------------------


def photo_xmp(path: Path) -> tuple[Geometry, bytes | None]:
    """The photo's stored size, EXIF orientation and embedded XMP packet, from its header."""
    register_heif()
    with warnings.catch_warnings(), open_regular(path) as fh:
        warnings.simplefilter("ignore")
        with Image.open(fh) as im:
            geo = Geometry(im.size[0], im.size[1], exif_orientation(im.getexif()))
            xmp = im.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode()
    return geo, xmp if isinstance(xmp, bytes) and xmp.strip() else None


@functools.lru_cache(maxsize=16)
def _listing(folder: Path, _stamp: tuple[int, int]) -> frozenset[str]:
    # One listing per folder (again only when the folder changes) instead of a stat per
    # candidate per photo: the sidecar, Picasa and Takeout names are looked up in it.
    try:
        return frozenset(os.listdir(folder))
    except OSError:
        return frozenset()


def _names_beside(path: Path) -> frozenset[str]:
    stamp = _stamp(path.parent)
    return frozenset() if stamp is None else _listing(path.parent, stamp)


def sidecars(path: Path, names: frozenset[str] | None = None) -> list[Path]:
    """The XMP sidecars of ``path`` that exist: ``photo.jpg.xmp`` and Lightroom's ``photo.xmp``
    (``names``: the folder's listing, when the caller has it)."""
    names = _names_beside(path) if names is None else names
    found = []
    for base in dict.fromkeys((path.name, path.stem)):
        for name in (base + ".xmp", base + ".XMP"):
            if name in names:
                found.append(path.with_name(name))
                break
    return found


def takeout_json(path: Path, names: frozenset[str] | None = None) -> Path | None:
    """Google Takeout's metadata file of ``path``: ``photo.jpg.json``,
    ``photo.jpg.supplemental-metadata.json`` (Takeouts since 2024) or ``photo.json``."""
    names = _names_beside(path) if names is None else names
    for name in (f"{path.name}.json", f"{path.name}.supplemental-metadata.json", f"{path.stem}.json"):
        if name in names:
            return path.with_name(name)
    return None


def _json_depth(data: bytes) -> int:
    """How deep the arrays and objects of JSON text nest (strings skipped), without parsing
    it: a check in linear time before :func:`json.loads`, which recurses."""
    bare = np.frombuffer(_JSON_STRING.sub(b"", data), dtype=np.uint8)
    steps = ((bare == ord("[")) | (bare == ord("{"))).astype(np.int32)
    steps -= (bare == ord("]")) | (bare == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


# A JSON string, written so that the regex engine runs through it without backtracking.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _takeout(json_path: Path) -> list[Tag]:
    data = read_regular(json_path, TAKEOUT_MAX_BYTES)
    if _json_depth(data) > MAX_JSON_DEPTH:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep")
    try:
        doc = json.loads(data)
    except RecursionError:  # not reached below MAX_JSON_DEPTH; a guard all the same
        raise ValueError("nested too deep") from None
    people = doc.get("people") if isinstance(doc, dict) else None
    if not isinstance(people, list):
        return []
    names = (_clean(p.get("name")) for p in people if isinstance(p, dict) and isinstance(p.get("name"), str))
    return [Tag(n, None, "takeout", os.fsdecode(json_path)) for n in dict.fromkeys(names) if n]


# -- Picasa ---------------------------------------------------------------------------------

PICASA_INI = (".picasa.ini", "Picasa.ini", "picasa.ini")
_RECT64 = re.compile(r"rect64\(([0-9a-fA-F]{1,16})\)")


@dataclass(frozen=True)
class PicasaFolder:
    """A ``.picasa.ini``: file name -> [(rect64 hex, contact id)], and contact id -> name."""

    path: Path
    faces: dict[str, list[tuple[str, str]]]
    contacts: dict[str, str]
    notes: tuple[str, ...] = ()


def _stamp(path: Path) -> tuple[int, int] | None:
    """What changes when a file or folder does (a cache key)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _picasa_folder(ini: Path, _stamp: tuple[int, int]) -> PicasaFolder:
    # Read once per folder (and again only when the file changes): a scan asks per photo.
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(read_regular(ini).decode("utf-8", errors="replace"))
    faces: dict[str, list[tuple[str, str]]] = {}
    contacts: dict[str, str] = {}
    for section in parser.sections():
        if section == "Contacts2":
            for cid, value in parser.items(section):
                # "Anna Smith;;" (name; e-mail; ...)
                contacts[cid] = _clean(value.split(";")[0])
            continue
        value = parser.get(section, "faces", fallback="")
        found = []
        for item in value.split(";"):
            rect, _, cid = item.partition(",")
            m = _RECT64.fullmatch(rect.strip())
            if m and cid.strip():
                found.append((m.group(1), cid.strip()))
        if found:
            faces[section] = found
    names, notes = _contacts_xml(ini.parent)
    return PicasaFolder(ini, faces, {**names, **contacts}, notes)


def _contacts_file(folder: Path) -> Path | None:
    """Picasa's ``contacts.xml`` in ``folder`` or one above it."""
    for parent in (folder, *folder.parents):
        candidate = parent / "contacts.xml"
        if candidate.is_file():
            return candidate
    return None


def _contacts_xml(folder: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """The names in Picasa's ``contacts.xml`` (``<contact id=".." name=".."/>``), if any, and
    a warning when it cannot be read (it only costs the names)."""
    candidate = _contacts_file(folder)
    if candidate is None:
        return {}, ()
    try:
        root = SafeET.fromstring(read_regular(candidate))
    except Exception as exc:  # noqa: BLE001 - a broken contacts file only costs the names
        return {}, (f"{os.fsdecode(candidate)}: Picasa's contact names skipped: {_one_line(exc)}",)
    return {
        c.get("id", ""): _clean(c.get("name") or c.get("display"))
        for c in root.iter("contact")
        if c.get("id") and _clean(c.get("name") or c.get("display"))
    }, ()


def rect64_area(hex_text: str) -> tuple[float, float, float, float]:
    """Picasa's ``rect64``: left, top, right, bottom as 16-bit fractions of the stored
    image (leading zeros dropped) -> MWG area (centre x, y, w, h)."""
    value = int(hex_text, 16)
    left, top, right, bottom = (((value >> shift) & 0xFFFF) / 65535 for shift in (48, 32, 16, 0))
    return (left + right) / 2, (top + bottom) / 2, right - left, bottom - top


def _picasa(path: Path, geo: Geometry) -> tuple[list[Tag], list[str]]:
    names = _names_beside(path)
    ini = next((path.parent / n for n in PICASA_INI if n in names), None)
    stamp = None if ini is None else _stamp(ini)
    if ini is None or stamp is None:
        return [], []
    try:
        folder = _picasa_folder(ini, stamp)
    except (OSError, ValueError, configparser.Error) as exc:
        return [], [f"{os.fsdecode(ini)}: cannot read Picasa's face tags ({_one_line(exc)})"]
    tags, unnamed = [], 0
    for rect, cid in folder.faces.get(path.name, []):
        name = folder.contacts.get(cid)
        x, y, w, h = rect64_area(rect)
        box = displayed_box(x, y, w, h, geo) if w > 0 and h > 0 else None
        if name and box is not None:
            tags.append(Tag(name, box, "picasa", os.fsdecode(ini)))
        elif not name:
            unnamed += 1
    notes = list(folder.notes)
    if unnamed:
        notes.append(f"{os.fsdecode(ini)}: {unnamed} face(s) of {path.name} name a contact not found")
    return tags, notes


# -- everything together ----------------------------------------------------------------------

# Bumped when reading changes, so that a new photocluster reads every photo's tags again.
READER_VERSION = 1


def sources_key(path: Path) -> str:
    """What the tags of ``path`` are read from, as it is now: the photo and the sidecars,
    Picasa and Takeout files beside it (size and modification time of each). The same key
    means the same tags: a re-scan need not read them again. One folder listing (cached)
    and a stat per such file that exists."""
    names = _names_beside(path)
    parts = [f"v{READER_VERSION}"]
    picasa = [path.parent / n for n in PICASA_INI if n in names]
    candidates = [path, *sidecars(path, names), takeout_json(path, names), *picasa]
    for extra in candidates:
        if extra is not None:
            stamp = _stamp(extra)
            parts.append(f"{extra.name}={stamp[0]}:{stamp[1]}" if stamp else f"{extra.name}=?")
    contacts = _contacts_file(path.parent) if picasa else None
    if contacts is not None:
        parts.append(f"contacts={_stamp(contacts)}")
    # Hashed: file names need not be UTF-8, and the key is stored as text.
    return hashlib.sha256("|".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _same(a: Tag, b: Tag) -> bool:
    if a.name.casefold() != b.name.casefold():
        return False
    if a.box is None or b.box is None:
        return a.box is None  # a name without a box adds nothing to a boxed tag of that name
    return a.box.iou(b.box) >= SAME_TAG_IOU


def _dedupe(tags: list[Tag]) -> tuple[Tag, ...]:
    kept: list[Tag] = []
    # Boxed tags first, so that a Takeout name repeating one of them is dropped.
    for tag in sorted(tags, key=lambda t: t.box is None):
        if not any(_same(tag, k) for k in kept):
            kept.append(tag)
    return tuple(kept)


def read_tags(path: Path) -> TagRead:
    """Every face tag of the photo at ``path``, from all the places above; never raises."""
    try:
        return _read_tags(path)
    except Exception as exc:  # noqa: BLE001 - a failure not foreseen below costs this photo's tags only
        return TagRead((), (f"{os.fsdecode(path)}: face tags skipped ({type(exc).__name__}: {_one_line(exc)})",))


def _read_tags(path: Path) -> TagRead:
    found: list[Tag] = []
    notes: list[str] = []
    where = os.fsdecode(path)
    try:
        geo, embedded = photo_xmp(path)
    except Exception as exc:  # noqa: BLE001 - the scan reports unreadable photos itself
        return TagRead((), (f"{where}: cannot read the photo's metadata for face tags ({_one_line(exc)})",))
    # Most photos carry XMP without regions: parse only a packet naming a region schema.
    if embedded is not None and len(embedded) > SIDE_FILE_MAX_BYTES:
        notes.append(f"{where}: embedded face tags skipped: the XMP packet is over {SIDE_FILE_MAX_BYTES} bytes")
    elif embedded is not None and any(uri in embedded for uri in REGION_URIS):
        try:
            _xmp_tags(embedded, geo, where, found, notes)
        except ValueError as exc:
            notes.append(f"{where}: embedded face tags skipped: {exc}")
    for sidecar in sidecars(path):
        try:
            _xmp_tags(read_regular(sidecar), geo, os.fsdecode(sidecar), found, notes)
        except (OSError, ValueError) as exc:
            notes.append(f"{os.fsdecode(sidecar)}: face tags skipped: {_one_line(exc)}")
    picasa, picasa_notes = _picasa(path, geo)
    found.extend(picasa)
    notes.extend(picasa_notes)
    json_path = takeout_json(path)
    if json_path is not None:
        try:
            found.extend(_takeout(json_path))
        except (OSError, ValueError, AttributeError) as exc:
            notes.append(f"{os.fsdecode(json_path)}: Takeout names skipped: {_one_line(exc)}")
    if len(found) > MAX_TAGS_PER_PHOTO:
        notes.append(
            f"{where}: {len(found) - MAX_TAGS_PER_PHOTO} face tags skipped (at most {MAX_TAGS_PER_PHOTO} a photo)"
        )
        found = found[:MAX_TAGS_PER_PHOTO]
    return TagRead(_dedupe(found), tuple(notes))
