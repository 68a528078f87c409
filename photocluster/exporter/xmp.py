"""Face regions in XMP sidecars, as the Metadata Working Group (MWG 2.0) defines them.

digiKam, Lightroom, exiftool, Immich and others read ``mwg-rs:Regions``: a list of
regions, each with a ``Type`` (``Face``), a ``Name`` and an ``Area`` given as the
normalised centre ``x``, ``y`` and size ``w``, ``h`` (0..1), plus the
``AppliedToDimensions`` of the image the areas were measured on.

Orientation: MWG 2.0 (section 5.9) applies regions to the image *as stored*; a reader
that shows the photo rotated by its EXIF orientation rotates the regions with it
(digiKam, Immich and exiftool's rotate_regions.config all do). photocluster keeps boxes
in the displayed orientation, so :func:`stored_area` turns them back, and
``AppliedToDimensions`` are the stored pixel dimensions (what exiftool reports as
``ImageWidth`` and ``ImageHeight``).

Sidecars are named ``<photo file name>.xmp`` (``IMG_0001.jpg.xmp``), the name digiKam
and darktable use by default and that exiftool reads when given; it cannot collide
for two photos that differ only by extension. A sidecar that exists already is merged
into: only the regions photocluster wrote (they carry a ``photocluster:FaceId``) are
replaced; other regions and every other property are kept.

An export's sidecars (:func:`sync_sidecars`) are written beside its photo entries or beside
the originals, and the regions of sidecars it no longer wants are taken out again.

The vocabulary (namespaces, element names, RDF structs, numbers, Microsoft's rectangle) is
:mod:`photocluster.detect.xmp_codec`'s, which reading the tags back uses too.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import unicodedata
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from photocluster.core.choices import XmpTarget
from photocluster.core.errors import ExportError
from photocluster.core.files import atomic_write, read_regular
from photocluster.core.types import Box, Person, Photo, person_label
from photocluster.detect.images import exif_orientation, register_heif
from photocluster.detect.regions import Geometry, stored_area
from photocluster.detect.xmp_codec import (
    ABOUT,
    APPLIED_TO,
    AREA,
    ARRAYS,
    BAG,
    DESCRIPTION,
    FACE_ID,
    LI,
    MP_INFO,
    MP_NAME,
    MP_RECTANGLE,
    MP_REGIONS,
    NAME,
    NS,
    PARSE_TYPE,
    RDF,
    REGION_LIST,
    REGIONS,
    TYPE,
    XMPMETA,
    XMPTK,
    format_number,
    mp_rectangle,
    q,
    rdf_struct,
    rdf_value,
)
from photocluster.exporter.folders import check_inside, photo_problem, warn
from photocluster.version import __version__

SIDECAR_SUFFIX = ".xmp"

_XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
_XPACKET_END = '<?xpacket end="w"?>'


class SidecarError(ExportError):
    """A sidecar that exists but cannot be merged into (not XMP, unreadable): left alone."""


@dataclass(frozen=True)
class Region:
    """One face region, ready for a sidecar: normalised centre and size in the stored image."""

    face_id: int
    name: str
    x: float
    y: float
    w: float
    h: float


def sidecar_path(photo: Path) -> Path:
    """Where the sidecar of ``photo`` goes: beside it, ``<file name>.xmp``."""
    return photo.with_name(photo.name + SIDECAR_SUFFIX)


def geometry(path: Path) -> Geometry:
    """Read the stored size and EXIF orientation from the file's header (no decoding).

    Orientation is read as detection reads it (:func:`photocluster.detect.images.exif_orientation`),
    so regions turn back exactly the way the boxes were turned.
    """
    register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                orientation = exif_orientation(im.getexif())
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise SidecarError(f"{os.fsdecode(path)}: cannot read the photo's size ({exc})") from None
    return Geometry(width, height, orientation)


def region(face_id: int, name: str, box: Box, geo: Geometry) -> Region:
    return Region(face_id, name, *stored_area(box, geo))


# -- reading and writing -----------------------------------------------------------


def _is_ours(li: ET.Element) -> bool:
    return any(el.tag == FACE_ID or FACE_ID in el.attrib for el in li.iter())


def _our_region(li: ET.Element) -> tuple[str, ...] | None:
    """A region photocluster wrote, as comparable text (face id, name, x, y, w, h)."""
    node = rdf_struct(li)
    area_el = node.find(AREA)
    if area_el is None:
        return None
    area = rdf_struct(area_el)
    fields = [
        rdf_value(node, FACE_ID),
        rdf_value(node, NAME),
        *(rdf_value(area, q("stArea", k)) for k in ("x", "y", "w", "h")),
    ]
    return tuple(f or "" for f in fields)


def _wanted(r: Region) -> tuple[str, ...]:
    return (str(r.face_id), r.name, format_number(r.x), format_number(r.y), format_number(r.w), format_number(r.h))


def _sub(parent: ET.Element, tag: str, text: str | None = None, resource: bool = False) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if resource:
        el.set(PARSE_TYPE, "Resource")
    if text is not None:
        el.text = text
    return el


def _region_li(bag: ET.Element, r: Region) -> None:
    li = _sub(bag, LI, resource=True)
    area = _sub(li, AREA, resource=True)
    for key, val in (("x", r.x), ("y", r.y), ("w", r.w), ("h", r.h)):
        _sub(area, q("stArea", key), format_number(val))
    _sub(area, q("stArea", "unit"), "normalized")
    _sub(li, NAME, r.name)
    _sub(li, TYPE, "Face")
    _sub(li, FACE_ID, str(r.face_id))


def _set_dims(fields: ET.Element, width: int, height: int) -> None:
    """Replace ``AppliedToDimensions``; it goes first, as exiftool writes it."""
    for old in fields.findall(APPLIED_TO):
        fields.remove(old)
    dims = ET.Element(APPLIED_TO)
    dims.set(PARSE_TYPE, "Resource")
    _sub(dims, q("stDim", "w"), str(width))
    _sub(dims, q("stDim", "h"), str(height))
    _sub(dims, q("stDim", "unit"), "pixel")
    fields.insert(0, dims)


def _dims_of(fields: ET.Element) -> tuple[str, ...] | None:
    el = fields.find(APPLIED_TO)
    if el is None:
        return None
    s = rdf_struct(el)
    return tuple(rdf_value(s, q("stDim", k)) or "" for k in ("w", "h", "unit"))


def _register(prefixes: dict[str, str]) -> None:
    for prefix, uri in {**prefixes, **NS}.items():
        if prefix and not re.fullmatch(r"ns\d+", prefix):
            with contextlib.suppress(ValueError):
                ET.register_namespace(prefix, uri)


def _parse(path: Path) -> ET.Element:
    try:
        data = read_regular(path)  # never blocks on a FIFO, never more than a side file's cap
    except OSError as exc:
        raise SidecarError(
            f"{os.fsdecode(path)}: cannot read the sidecar ({exc.strerror or exc}); left alone"
        ) from None
    try:
        prefixes = {p: u for _, (p, u) in ET.iterparse(io.BytesIO(data), events=("start-ns",))}  # type: ignore[misc]
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SidecarError(f"{os.fsdecode(path)}: existing sidecar is not valid XML ({exc}); left alone") from None
    if root.tag != RDF and root.find(f".//{RDF}") is None:
        raise SidecarError(f"{os.fsdecode(path)}: existing sidecar holds no XMP (rdf:RDF); left alone")
    _register(prefixes)
    return root


def _rdf(root: ET.Element) -> ET.Element:
    found = root if root.tag == RDF else root.find(f".//{RDF}")
    assert found is not None  # checked by _parse
    return found


def _new_document() -> ET.Element:
    _register({})
    root = ET.Element(XMPMETA)
    root.set(XMPTK, f"photocluster {__version__}")
    ET.SubElement(root, RDF)
    return root


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return f"{_XPACKET_BEGIN}\n{body}\n{_XPACKET_END}\n".encode()


def _regions_elements(rdf: ET.Element, tag: str = REGIONS) -> tuple[ET.Element, ET.Element, ET.Element] | None:
    """(the rdf:Description holding mwg-rs:Regions (or ``tag``), that element, the element with its fields)."""
    for desc in rdf.findall(DESCRIPTION):
        regions = desc.find(tag)
        if regions is not None:
            return desc, regions, rdf_struct(regions)
    return None


def _bag(fields: ET.Element, list_tag: str = REGION_LIST) -> ET.Element:
    region_list = fields.find(list_tag)
    if region_list is None:
        region_list = _sub(fields, list_tag)
    for child in region_list:
        if child.tag in ARRAYS:
            return child
    return _sub(region_list, BAG)


def _check_file(path: Path) -> bool:
    """Whether a sidecar exists at ``path``; a link or a folder there is not touched."""
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        raise SidecarError(f"{os.fsdecode(path)}: not a plain file; left alone")
    return path.exists()


def _mp_rectangle(r: Region) -> str:
    """Microsoft's ``Rectangle`` of a region (normalised, the stored image, as MWG's areas)."""
    return mp_rectangle(r.x, r.y, r.w, r.h)


def _our_mp(li: ET.Element) -> tuple[str, ...]:
    node = rdf_struct(li)
    fields = (
        rdf_value(node, FACE_ID),
        rdf_value(node, MP_NAME),
        rdf_value(node, MP_RECTANGLE),
    )
    return tuple(f or "" for f in fields)


def _mp_li(bag: ET.Element, r: Region) -> None:
    li = _sub(bag, LI, resource=True)
    _sub(li, MP_NAME, r.name)
    _sub(li, MP_RECTANGLE, _mp_rectangle(r))
    _sub(li, FACE_ID, str(r.face_id))


def _ours_in(found: tuple[ET.Element, ET.Element, ET.Element] | None, list_tag: str) -> list[ET.Element]:
    return [] if found is None else [li for li in _bag(found[2], list_tag).findall(LI) if _is_ours(li)]


def write_regions(path: Path, regions: Sequence[Region], width: int, height: int) -> str:
    """Put ``regions`` (and the stored image size) in the sidecar at ``path``.

    Returns ``"created"``, ``"updated"`` or ``"unchanged"``. An existing sidecar keeps
    everything but the regions photocluster wrote before; one that cannot be parsed
    raises :class:`SidecarError` and is not touched.
    """
    exists = _check_file(path)
    root = _parse(path) if exists else _new_document()
    rdf = _rdf(root)
    found = _regions_elements(rdf)
    mp = _regions_elements(rdf, MP_INFO)
    dims = (str(width), str(height), "pixel")
    if (
        found is not None
        and mp is not None
        and sorted(filter(None, map(_our_region, _ours_in(found, REGION_LIST)))) == sorted(map(_wanted, regions))
        and sorted(map(_our_mp, _ours_in(mp, MP_REGIONS)))
        == sorted((str(r.face_id), r.name, _mp_rectangle(r)) for r in regions)
        and _dims_of(found[2]) == dims
    ):
        return "unchanged"
    if found is None:
        existing = rdf.find(DESCRIPTION)
        desc = ET.SubElement(rdf, DESCRIPTION)
        desc.set(ABOUT, existing.get(ABOUT, "") if existing is not None else "")
        fields = _sub(desc, REGIONS, resource=True)
    else:
        desc, fields = found[0], found[2]
    mp_fields = _sub(desc, MP_INFO, resource=True) if mp is None else mp[2]
    bag, mp_bag = _bag(fields), _bag(mp_fields, MP_REGIONS)
    for holder in (bag, mp_bag):
        for li in [li for li in holder.findall(LI) if _is_ours(li)]:
            holder.remove(li)
    _set_dims(fields, width, height)
    for r in sorted(regions, key=lambda r: r.face_id):
        _region_li(bag, r)
        _mp_li(mp_bag, r)
    # The sidecar may be the user's (beside an original): it keeps its permissions.
    atomic_write(path, _serialise(root), keep_mode=True)
    return "updated" if exists else "created"


def _empty(desc: ET.Element) -> bool:
    return len(desc) == 0 and not (set(desc.attrib) - {ABOUT}) and not (desc.text or "").strip()


def remove_regions(path: Path, delete_if_empty: bool) -> str:
    """Take photocluster's regions out of the sidecar at ``path``.

    Returns ``"absent"`` (no such file), ``"unchanged"`` (none of ours in it), ``"updated"``
    or ``"deleted"``: the file goes only when ``delete_if_empty`` (photocluster created it)
    and nothing else is left in it.
    """
    if not _check_file(path):
        return "absent"
    root = _parse(path)
    rdf = _rdf(root)
    changed = False
    for tag, list_tag in ((REGIONS, REGION_LIST), (MP_INFO, MP_REGIONS)):
        found = _regions_elements(rdf, tag)
        if found is None or found[2].find(list_tag) is None:
            continue
        desc, regions, fields = found
        bag = _bag(fields, list_tag)
        ours = [li for li in bag.findall(LI) if _is_ours(li)]
        changed = changed or bool(ours)
        for li in ours:
            bag.remove(li)
        if ours and not bag.findall(LI):
            for region_list in fields.findall(list_tag):
                fields.remove(region_list)
            if all(child.tag == APPLIED_TO for child in fields) and not (set(fields.attrib) - {PARSE_TYPE}):
                desc.remove(regions)
                if _empty(desc):
                    rdf.remove(desc)
    if not changed:
        return "unchanged"
    if delete_if_empty and len(rdf) == 0:
        path.unlink()
        return "deleted"
    atomic_write(path, _serialise(root), keep_mode=True)
    return "updated"


# -- an export's sidecars ------------------------------------------------------------

XMP_TARGETS = tuple(t.value for t in XmpTarget)


def region_name(person: Person) -> str:
    """A person's label as an XMP sidecar holds it, read back exactly. XML has no NUL or other
    control characters (a sidecar holding one could never be read back, nor its regions
    updated): they become spaces; and names are read back stripped of outer spaces."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" or ch in "\ufffe\uffff" else ch for ch in person.label)
    return text.strip() or person_label(person.id or 0)


def regions_of(people: list[Person]) -> dict[int, list[tuple[int, str, Box]]]:
    """Photo id -> (face id, name, box) of every face in a person; unknown faces get no region."""
    regions: dict[int, list[tuple[int, str, Box]]] = defaultdict(list)
    for p in people:
        if p.id is not None:
            for f in p.faces:
                regions[f.photo_id].append((f.face_id, region_name(p), f.box))
    return regions


@dataclass(frozen=True)
class Sidecar:
    key: str  # manifest key: relative to DEST, or absolute beside an original
    path: Path
    photo_id: int

    @property
    def entry(self) -> str | None:
        """The photo entry in DEST the sidecar goes with; None beside an original."""
        return None if os.path.isabs(self.key) else self.key[: -len(SIDECAR_SUFFIX)]


def plan_sidecars(
    target: str | None,
    dest: Path,
    entry_photo: dict[str, int],
    regions: dict[int, list[tuple[int, str, Box]]],
    photos: dict[int, Photo],
) -> list[Sidecar]:
    """The sidecars ``target`` asks for: beside each photo entry with regions (``"dest"``),
    beside each original with regions (``"originals"``), or none."""
    if target == "dest":
        return [
            Sidecar(rel + SIDECAR_SUFFIX, dest / (rel + SIDECAR_SUFFIX), pid)
            for rel, pid in sorted(entry_photo.items())
            if pid in regions
        ]
    if target == "originals":
        planned = []
        for pid in sorted(regions):
            path = sidecar_path(photos[pid].path)
            planned.append(Sidecar(os.fsdecode(path), path, pid))
        return planned
    return []


def sidecar_states(planned: list[Sidecar], previous: dict[str, str]) -> dict[str, str]:
    """How the manifest records each planned sidecar: as before, or, the first time,
    ``"merged"`` into a sidecar that exists or ``"created"``."""
    return {sc.key: previous.get(sc.key) or ("merged" if os.path.lexists(sc.path) else "created") for sc in planned}


def _geometry_or_problem(photo: Photo) -> Geometry | str:
    """The photo's geometry, or why regions cannot be measured on it now."""
    problem = photo_problem(photo)
    if problem is not None:
        return problem
    try:
        geo = geometry(photo.path)
    except ExportError as exc:
        return str(exc)
    if photo.width is not None and geo.displayed != (photo.width, photo.height):
        return "the photo's size differs from the scan (run photocluster scan)"
    return geo


def _remove_stale(dest: Path, target: str | None, key: str, state: str, warnings: list[str]) -> bool:
    """Take our regions out of a sidecar no longer planned; False when it is left as it is."""
    if os.path.isabs(key) and target != "originals":
        return False  # nothing outside DEST is touched without --xmp originals
    if not os.path.isabs(key):
        check_inside(dest, key, (2,))
    path = Path(key) if os.path.isabs(key) else dest / key
    try:
        remove_regions(path, delete_if_empty=state == "created")
    except (ExportError, OSError) as exc:
        warn(warnings, path, f"stale regions left in place: {getattr(exc, 'strerror', None) or exc}")
        return False
    return True


def sync_sidecars(
    dest: Path,
    target: str | None,
    planned: list[Sidecar],
    regions: dict[int, list[tuple[int, str, Box]]],
    photos: dict[int, Photo],
    prev: dict[str, str],
    states: dict[str, str],
    warnings: list[str],
) -> dict[str, str]:
    """Write the planned sidecars and take our regions out of stale ones.

    ``states`` is how each planned sidecar was recorded before writing. Returns the
    sidecars the manifest keeps tracking.
    """
    wanted = {s.key for s in planned}
    keep: dict[str, str] = {}
    for key, state in sorted(prev.items()):
        if key not in wanted and not _remove_stale(dest, target, key, state, warnings):
            keep[key] = state
    geometries: dict[int, Geometry | str] = {}
    for sc in planned:
        if sc.photo_id not in geometries:
            geometries[sc.photo_id] = _geometry_or_problem(photos[sc.photo_id])
        geo = geometries[sc.photo_id]
        if isinstance(geo, str):
            warn(warnings, sc.path, f"not written: {geo}")
            if sc.key in prev:
                keep[sc.key] = prev[sc.key]
            continue
        found = [region(fid, name, box, geo) for fid, name, box in regions[sc.photo_id]]
        if not os.path.isabs(sc.key):
            check_inside(dest, sc.key, (2,))
        try:
            write_regions(sc.path, found, geo.width, geo.height)
        except (ExportError, OSError) as exc:
            warn(warnings, sc.path, f"not written: {getattr(exc, 'strerror', None) or exc}")
            if sc.key in prev:
                keep[sc.key] = prev[sc.key]
            continue
        keep[sc.key] = states[sc.key]
    return keep
