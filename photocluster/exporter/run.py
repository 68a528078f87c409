"""Persons out to the file system: a folder per person, ``index.json`` and ``index.html``.

Exports are idempotent: DEST holds a manifest of what photocluster wrote there (photo
entries, thumbnails, face chips, sidecars), so a second export adds, updates and removes
only its own files. Nothing is written outside DEST, except XMP sidecars beside the
originals when asked for (``xmp="originals"``), and those are merged into, never
clobbered. Originals are only read (symlink and hardlink modes do not even read them).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photocluster import __version__
from photocluster.app.recluster import faces_in_doubt
from photocluster.app.recluster import persons as list_persons
from photocluster.core.errors import ExportError, ImageError, UsageError
from photocluster.core.types import Box, Person, PersonFace, Photo
from photocluster.detect.faces import CHIP_PADDING, CHIP_SIZE, face_chip
from photocluster.detect.images import EXPORT_MARKER, load_image
from photocluster.exporter import review as review
from photocluster.exporter import xmp as mwg
from photocluster.store.database import Store

INDEX_SCHEMA_VERSION = 1
_MAX_NAME_BYTES = 200
MODES = ("symlink", "hardlink", "copy")
XMP_TARGETS = ("dest", "originals")
UNKNOWN_FOLDER = "unknown"
CROPS_FOLDER = "crops"
REVIEW_PAGE = "index.html"
CROP_QUALITY = 92
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
    UNKNOWN_FOLDER,
    CROPS_FOLDER,
    "index.json",
    REVIEW_PAGE,
}


@dataclass(frozen=True)
class ExportReport:
    """What an export did. ``created`` .. ``skipped`` count photo entries in person folders;
    ``thumbnails``, ``crops`` and ``sidecars`` count what the export holds after the run;
    ``warnings`` are ``"path: reason"`` lines for thumbnails, chips or sidecars not written."""

    dest: str
    mode: str
    persons: int
    unknown_faces: int
    created: int
    updated: int
    removed: int
    unchanged: int
    skipped: list[str]
    thumbnails: int = 0
    crops: int = 0
    sidecars: int = 0
    review: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def safe_folder_name(name: str, max_len: int = 100) -> str:
    """A person's name as one safe path component: no separators, no control characters,
    not '.' or '..', not a Windows device name, at most ``max_len`` characters."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = re.sub(r'[/\\:*?"<>|]', "_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    text = text[:max_len]
    # File systems count bytes (255 at most): leave room for a " (id)" suffix.
    while len(text.encode("utf-8")) > _MAX_NAME_BYTES:
        text = text[:-1]
    text = text.rstrip(" .")
    if not text or text.lower() in _RESERVED or text.split(".")[0].lower() in _RESERVED:
        text = f"_{text}" if text else "_"
    return text


def _xmp_name(person: Person) -> str:
    """A person's label as an XMP sidecar holds it, read back exactly. XML has no NUL or other
    control characters (a sidecar holding one could never be read back, nor its regions
    updated): they become spaces; and names are read back stripped of outer spaces."""
    text = "".join(" " if unicodedata.category(ch) == "Cc" or ch in "\ufffe\uffff" else ch for ch in person.label)
    return text.strip() or f"person_{person.id or 0:04d}"


def _person_folders(people: list[Person]) -> dict[int | None, str]:
    folders: dict[int | None, str] = {None: UNKNOWN_FOLDER}
    used = {UNKNOWN_FOLDER}
    for p in people:
        if p.id is None:
            continue
        base = safe_folder_name(p.name) if p.name else f"person_{p.id:04d}"
        folder = base
        if folder.lower() in used:
            folder = f"{base} ({p.id})"
        used.add(folder.lower())
        folders[p.id] = folder
    return folders


def _file_names(person: Person) -> dict[int, str]:
    """Photo id -> file name in the person's folder: the original name, made unique."""
    photos = sorted({(os.fsdecode(f.photo_path), f.photo_id) for f in person.faces})
    names: dict[int, str] = {}
    used: set[str] = set()
    for path, photo_id in photos:
        base = os.path.basename(path)
        stem, ext = os.path.splitext(base)
        name = base if base.lower() not in used else f"{stem}_{photo_id}{ext}"
        k = 2
        while name.lower() in used:  # the made-up name may be another photo's real name
            name = f"{stem}_{photo_id}_{k}{ext}"
            k += 1
        used.add(name.lower())
        names[photo_id] = name
    return names


def _check_inside(dest: Path, rel: str, depths: tuple[int, ...] = (2,)) -> None:
    """Belt and braces: ``rel`` must be ``depths`` plain names deep, and every folder on the
    way a real folder (not a symlink someone put there), so nothing can land outside DEST."""
    parts = rel.split("/")
    if len(parts) not in depths or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
        raise ExportError(f"{dest}: refusing to write {rel!r}, which could end up outside the export folder")
    for k in range(1, len(parts)):
        if (dest.joinpath(*parts[:k])).is_symlink():
            raise ExportError(f"{dest}: refusing to write {rel!r}, which could end up outside the export folder")


def _same(entry: Path, source: Path, mode: str) -> bool:
    try:
        if mode == "symlink":
            return entry.is_symlink() and os.readlink(entry) == os.fsdecode(source)
        if entry.is_symlink():
            return False
        a, b = entry.stat(), source.stat()
        if mode == "hardlink":
            return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
    except OSError:
        return False


def _place(entry: Path, source: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(source, entry)
    elif mode == "hardlink":
        try:
            os.link(source, entry)
        except OSError as exc:
            raise ExportError(
                f"{entry}: cannot hardlink to {source} ({exc.strerror}); "
                "hardlinks need DEST on the same filesystem: use --mode symlink or copy"
            ) from None
    else:
        shutil.copy2(source, entry)


def _atomic_write(path: Path, text: str | bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is for reading
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_text(doc: object) -> str:
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name with bytes that are not UTF-8: \u escapes keep it exact and the JSON valid.
        text = json.dumps(doc, indent=2, ensure_ascii=True)
    return text + "\n"


def build_index(
    store: Store,
    people: list[Person],
    folders: dict[int | None, str],
    thumbnails: dict[int, str] | None = None,
    crops: dict[int, str] | None = None,
) -> dict[str, object]:
    """The ``index.json`` document (see ``schema/index.schema.json``).

    ``thumbnails`` and ``crops`` map face ids to files in the export folder; a face
    without one has ``null``.
    """
    thumbnails = thumbnails or {}
    crops = crops or {}

    def face_doc(person: Person, names: dict[int, str]) -> list[dict[str, object]]:
        return [
            {
                "id": f.face_id,
                "photo": os.fsdecode(f.photo_path),
                "file": f"{folders[person.id]}/{names[f.photo_id]}",
                "box": f.box.as_list(),
                "confidence": round(f.confidence, 4),
                "distance": None if f.distance != f.distance else round(f.distance, 4),
                "thumbnail": thumbnails.get(f.face_id),
                "crop": crops.get(f.face_id),
            }
            for f in person.faces
        ]

    threshold = store.get_setting("cluster.threshold")
    min_size = store.get_setting("cluster.min_size")
    doc_persons = []
    unknown: dict[str, object] = {"folder": UNKNOWN_FOLDER, "faces": []}
    for p in people:
        names = _file_names(p)
        if p.id is None:
            unknown["faces"] = face_doc(p, names)
            continue
        doc_persons.append(
            {
                "id": p.id,
                "name": p.name,
                "folder": folders[p.id],
                "face_count": len(p.faces),
                "photo_count": p.photo_count,
                "faces": face_doc(p, names),
            }
        )
    return {
        "schema_version": INDEX_SCHEMA_VERSION,
        "tool": {"name": "photocluster", "version": __version__},
        "threshold": None if threshold is None else float(threshold),
        "min_size": None if min_size is None else int(min_size),
        "persons": doc_persons,
        "unknown": unknown,
    }


@dataclass
class _Manifest:
    """What photocluster wrote in DEST (and, for sidecars, beside the originals).

    ``entries``: photo entries (``folder/file``). ``files``: thumbnails, face chips and the
    review page, each with the key of its content. ``sidecars``: XMP sidecars holding our
    regions, relative to DEST or absolute (beside an original), each ``"created"`` (it may
    be deleted once nothing else is in it) or ``"merged"`` (it existed: only our regions go).
    """

    entries: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    sidecars: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, doc: object) -> _Manifest:
        if not isinstance(doc, dict):
            return cls()

        def mapping(key: str) -> dict[str, str]:
            value = doc.get(key)
            if not isinstance(value, dict):
                return {}
            return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}

        entries = doc.get("entries")
        return cls(
            {e for e in entries if isinstance(e, str)} if isinstance(entries, list) else set(),
            mapping("files"),
            mapping("sidecars"),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "entries": sorted(self.entries),
                "files": dict(sorted(self.files.items())),
                "sidecars": dict(sorted(self.sidecars.items())),
            }
        )


def _content_key(kind: str, photo: Photo, box: Box, params: str) -> str:
    """Names what a thumbnail or chip shows: the photo's bytes, the face box and the settings.
    (A face id alone is not enough: SQLite may reuse the id of a deleted face.)"""
    ident = photo.sha256 or f"{os.fsdecode(photo.path)}|{photo.size}|{photo.mtime_ns}"
    text = f"{kind}|{ident}|{box.as_list(2)}|{params}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _photo_problem(photo: Photo) -> str | None:
    """Why pixels or geometry of ``photo`` cannot be used now, or None."""
    try:
        st = os.stat(photo.path)
    except OSError:
        return "the photo is gone"
    if (st.st_size, st.st_mtime_ns) != (photo.size, photo.mtime_ns):
        return "the photo changed since it was scanned (run photocluster scan)"
    return None


def _warn(warnings: list[str], path: str | os.PathLike[str], reason: str) -> None:
    warnings.append(f"{os.fsdecode(path)}: {reason}")


@dataclass
class _ImageJob:
    """Thumbnails and chips to cut from one photo, decoded once."""

    photo: Photo
    thumbs: list[tuple[PersonFace, str]] = field(default_factory=list)
    chips: list[tuple[PersonFace, str]] = field(default_factory=list)


def _chip_scale(box: Box) -> float:
    return min(1.0, CHIP_SIZE / max(box.width, 1.0))


def _make_images(store: Store, dest: Path, job: _ImageJob, warnings: list[str]) -> set[str]:
    """Write the job's thumbnails and chips; returns the files written."""
    rels = [rel for _, rel in job.thumbs + job.chips]
    problem = _photo_problem(job.photo)
    if problem is None:
        scale = max([review.thumbnail_scale(f.box) for f, _ in job.thumbs] + [_chip_scale(f.box) for f, _ in job.chips])
        long_side = max(job.photo.width or 0, job.photo.height or 0)
        max_size = math.ceil(long_side * scale) + 1 if long_side else 1 << 20
        try:
            image = load_image(job.photo.path, max_size, enlarge=False)
        except ImageError as exc:
            problem = exc.reason
    if problem is not None:
        for rel in rels:
            _warn(warnings, rel, f"not written: {os.fsdecode(job.photo.path)}: {problem}")
        return set()
    written: set[str] = set()
    for face, rel in job.thumbs:
        _check_inside(dest, rel, (2,))
        (dest / rel).parent.mkdir(exist_ok=True)
        _atomic_write(dest / rel, review.thumbnail(image, face.box))
        written.add(rel)
    if job.chips:
        points = {f.id: f.landmarks for f in store.photo_faces(job.photo.id)}
        for face, rel in job.chips:
            _check_inside(dest, rel, (3,))
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            chip = face_chip(image.pixels, points[face.face_id] * np.float32(image.scale))
            out = _jpeg(chip)
            _atomic_write(dest / rel, out)
            written.add(rel)
    return written


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=CROP_QUALITY)
    return buf.getvalue()


def _prune_empty(dest: Path) -> None:
    """Remove empty folders: person folders, ``crops/*`` and the thumbnail folder."""
    for child in dest.iterdir():
        if not child.is_dir() or child.is_symlink():
            continue
        if child.name == CROPS_FOLDER:
            for sub in child.iterdir():
                if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
                    sub.rmdir()
        if not any(child.iterdir()):
            child.rmdir()


@dataclass(frozen=True)
class _Sidecar:
    key: str  # manifest key: relative to DEST, or absolute beside an original
    path: Path
    photo_id: int


def _sync_sidecars(
    dest: Path,
    target: str | None,
    planned: list[_Sidecar],
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
    keep: dict[str, str] = {}
    wanted = {s.key for s in planned}
    for key, state in sorted(prev.items()):
        if key in wanted:
            continue
        if os.path.isabs(key) and target != "originals":
            keep[key] = state  # nothing outside DEST is touched without --xmp originals
            continue
        if not os.path.isabs(key):
            _check_inside(dest, key, (2,))
        path = Path(key) if os.path.isabs(key) else dest / key
        try:
            mwg.remove_regions(path, delete_if_empty=state == "created")
        except (ExportError, OSError) as exc:
            _warn(warnings, path, f"stale regions left in place: {getattr(exc, 'strerror', None) or exc}")
            keep[key] = state
    geometries: dict[int, mwg.Geometry | str] = {}
    for sc in planned:
        if sc.photo_id not in geometries:
            photo = photos[sc.photo_id]
            problem = _photo_problem(photo)
            if problem is None:
                try:
                    geo = mwg.geometry(photo.path)
                except ExportError as exc:
                    problem = str(exc)
                else:
                    if photo.width is not None and geo.displayed != (photo.width, photo.height):
                        problem = "the photo's size differs from the scan (run photocluster scan)"
            geometries[sc.photo_id] = problem if problem is not None else geo
        geo_or_problem = geometries[sc.photo_id]
        if isinstance(geo_or_problem, str):
            _warn(warnings, sc.path, f"not written: {geo_or_problem}")
            if sc.key in prev:
                keep[sc.key] = prev[sc.key]
            continue
        geo = geo_or_problem
        found = [mwg.region(fid, name, box, geo) for fid, name, box in regions[sc.photo_id]]
        if not os.path.isabs(sc.key):
            _check_inside(dest, sc.key, (2,))
        try:
            mwg.write_regions(sc.path, found, geo.width, geo.height)
        except (ExportError, OSError) as exc:
            _warn(warnings, sc.path, f"not written: {getattr(exc, 'strerror', None) or exc}")
            if sc.key in prev:
                keep[sc.key] = prev[sc.key]
            continue
        keep[sc.key] = states[sc.key]
    return keep


def export(
    store: Store,
    dest: str | os.PathLike[str],
    mode: str = "symlink",
    *,
    crops: bool = False,
    xmp: str | None = None,
) -> ExportReport:
    """Write a folder per person (and ``unknown/``) with the photos they appear in, plus
    ``index.json`` and the review page ``index.html`` with its face thumbnails.

    ``crops``: also write aligned face chips, ``crops/<person folder>/<face id>.jpg``.
    ``xmp``: also write XMP sidecars with MWG face regions, ``"dest"`` (beside each photo
    entry in DEST) or ``"originals"`` (beside the originals; merged into existing ones).
    """
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if xmp is not None and xmp not in XMP_TARGETS:
        raise UsageError(f"--xmp must be one of {', '.join(XMP_TARGETS)}, got {xmp!r}")
    dest_path = Path(os.path.abspath(dest))
    if dest_path.exists() and not dest_path.is_dir():
        raise ExportError(f"{dest_path}: exists and is not a folder")
    marker = dest_path / EXPORT_MARKER
    try:
        dest_path.mkdir(parents=True, exist_ok=True)
        if any(dest_path.iterdir()) and not marker.exists():
            raise ExportError(
                f"{dest_path}: folder is not empty and was not written by photocluster; choose an empty or new folder"
            )
        prev = _Manifest.parse(json.loads(marker.read_text(encoding="utf-8"))) if marker.exists() else _Manifest()
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror})") from None
    except json.JSONDecodeError:
        prev = _Manifest()
    previous = prev.entries

    people = list_persons(store)
    folders = _person_folders(people)
    wanted: dict[str, Path] = {}
    entry_photo: dict[str, int] = {}
    for p in people:
        names = _file_names(p)
        for f in p.faces:
            rel = f"{folders[p.id]}/{names[f.photo_id]}"
            wanted[rel] = f.photo_path
            entry_photo[rel] = f.photo_id
    photos = {pid: store.photo(pid) for pid in sorted(set(entry_photo.values()))}

    # Thumbnails for the review page, chips with --crops: content-keyed, so unchanged ones stay.
    thumb_params = f"{review.THUMB_SIZE}/{review.THUMB_MARGIN}/{review.THUMB_QUALITY}"
    chip_params = f"{CHIP_SIZE}/{CHIP_PADDING}/{CROP_QUALITY}"
    files_wanted: dict[str, str] = {REVIEW_PAGE: "page"}
    thumb_of: dict[int, str] = {}
    chip_of: dict[int, str] = {}
    jobs: dict[int, _ImageJob] = {}
    for p in people:
        for f in p.faces:
            photo = photos[f.photo_id]
            key = _content_key("thumb", photo, f.box, thumb_params)
            rel = f"{review.THUMBS_FOLDER}/{f.face_id}_{key}.jpg"
            files_wanted[rel] = key
            thumb_of[f.face_id] = rel
            if crops:
                key = _content_key("chip", photo, f.box, chip_params)
                rel = f"{CROPS_FOLDER}/{folders[p.id]}/{f.face_id}.jpg"
                files_wanted[rel] = key
                chip_of[f.face_id] = rel

    # Sidecars: a region for every face of a person, named as the person (or its folder label).
    regions: dict[int, list[tuple[int, str, Box]]] = defaultdict(list)
    for p in people:
        if p.id is not None:
            for f in p.faces:
                regions[f.photo_id].append((f.face_id, _xmp_name(p), f.box))
    planned: list[_Sidecar] = []
    if xmp == "dest":
        planned = [
            _Sidecar(rel + mwg.SIDECAR_SUFFIX, dest_path / (rel + mwg.SIDECAR_SUFFIX), pid)
            for rel, pid in sorted(entry_photo.items())
            if pid in regions
        ]
    elif xmp == "originals":
        for pid in sorted(regions):
            path = mwg.sidecar_path(photos[pid].path)
            planned.append(_Sidecar(os.fsdecode(path), path, pid))
    states = {
        sc.key: prev.sidecars.get(sc.key) or ("merged" if os.path.lexists(sc.path) else "created") for sc in planned
    }

    created = updated = removed = unchanged = 0
    skipped: list[str] = []
    warnings: list[str] = []
    try:
        # Claim what will be written before writing it: a crash in between must not orphan
        # anything; and claim nothing that someone else's file already occupies.
        claimed = _Manifest(
            previous | {rel for rel in wanted if not os.path.lexists(dest_path / rel)},
            {**prev.files, **{r: k for r, k in files_wanted.items() if not os.path.lexists(dest_path / r)}},
            {**prev.sidecars, **states},
        )
        _atomic_write(marker, claimed.dump())
        for rel in sorted(previous - set(wanted)):
            _check_inside(dest_path, rel)
            entry = dest_path / rel
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
                removed += 1
        for rel, source in sorted(wanted.items()):
            entry = dest_path / rel
            _check_inside(dest_path, rel)
            entry.parent.mkdir(exist_ok=True)
            if entry.is_symlink() or entry.exists():
                if _same(entry, source, mode):
                    unchanged += 1
                    continue
                if rel not in previous:
                    skipped.append(rel)  # someone else's file: leave it
                    continue
                entry.unlink()
                updated += 1
            elif not os.path.lexists(source):
                skipped.append(rel)
                continue
            else:
                created += 1
            _place(entry, source, mode)

        for rel in sorted(set(prev.files) - set(files_wanted) - {EXPORT_MARKER, "index.json"}):
            _check_inside(dest_path, rel, (1, 2, 3))
            entry = dest_path / rel
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
        have: dict[str, str] = {}  # files of ours in place after this run
        for p in people:
            for f in p.faces:
                for maybe, kind in ((thumb_of.get(f.face_id), "thumbs"), (chip_of.get(f.face_id), "chips")):
                    if maybe is None:
                        continue
                    rel = maybe
                    entry = dest_path / rel
                    if prev.files.get(rel) == files_wanted[rel] and entry.is_file() and not entry.is_symlink():
                        have[rel] = files_wanted[rel]
                    elif os.path.lexists(entry) and rel not in prev.files:
                        _warn(warnings, rel, "not written: a file that photocluster did not write is in the way")
                    else:
                        job = jobs.setdefault(f.photo_id, _ImageJob(photos[f.photo_id]))
                        getattr(job, kind).append((f, rel))
        for _pid, job in sorted(jobs.items()):
            for rel in _make_images(store, dest_path, job, warnings):
                have[rel] = files_wanted[rel]

        own_entries = set(wanted) - set(skipped)
        planned = [sc for sc in planned if os.path.isabs(sc.key) or sc.key[: -len(mwg.SIDECAR_SUFFIX)] in own_entries]
        sidecars = _sync_sidecars(dest_path, xmp, planned, regions, photos, prev.sidecars, states, warnings)
        _prune_empty(dest_path)

        thumbnails = {fid: rel for fid, rel in thumb_of.items() if rel in have}
        chips = {fid: rel for fid, rel in chip_of.items() if rel in have}
        index = build_index(store, people, folders, thumbnails, chips)
        _atomic_write(dest_path / "index.json", _json_text(index))
        page = dest_path / REVIEW_PAGE
        if page.is_symlink() or (page.exists() and REVIEW_PAGE not in prev.files):
            _warn(warnings, page, "not written: a file that photocluster did not write is in the way")
        else:
            text = review.render_page(index, faces_in_doubt(store), missing=skipped)
            if not page.exists() or page.read_text(encoding="utf-8", errors="replace") != text:
                _atomic_write(page, text)
            have[REVIEW_PAGE] = "page"
        _atomic_write(marker, _Manifest(own_entries, have, sidecars).dump())
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror}: {exc.filename})") from None
    n_persons = sum(1 for p in people if p.id is not None)
    unknown_faces = sum(len(p.faces) for p in people if p.id is None)
    return ExportReport(
        os.fsdecode(dest_path),
        mode,
        n_persons,
        unknown_faces,
        created,
        updated,
        removed,
        unchanged,
        skipped,
        thumbnails=len(thumbnails),
        crops=len(chips),
        sidecars=sum(1 for sc in planned if sc.key in sidecars),
        review=os.fsdecode(page) if REVIEW_PAGE in have else "",
        warnings=warnings,
    )
