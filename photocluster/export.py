"""Persons out to the file system: a folder per person and ``index.json``.

Exports are idempotent: DEST holds a manifest of what photocluster wrote there, so
a second export adds, updates and removes only its own entries. Nothing is ever
written outside DEST, and originals are only read (symlink and hardlink modes do not
even read them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from photocluster import __version__
from photocluster.errors import ExportError, UsageError
from photocluster.images import EXPORT_MARKER
from photocluster.persons import persons as list_persons
from photocluster.store import Store
from photocluster.types import Person

INDEX_SCHEMA_VERSION = 1
_MAX_NAME_BYTES = 200
MODES = ("symlink", "hardlink", "copy")
UNKNOWN_FOLDER = "unknown"
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
    UNKNOWN_FOLDER,
    "index.json",
}


@dataclass(frozen=True)
class ExportReport:
    dest: str
    mode: str
    persons: int
    unknown_faces: int
    created: int
    updated: int
    removed: int
    unchanged: int
    skipped: list[str]

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


def _check_inside(dest: Path, rel: str) -> None:
    """Belt and braces: ``rel`` must be folder/file, plain names, and the folder a real
    folder (not a symlink someone put there), so nothing can land outside DEST."""
    parts = rel.split("/")
    folder = dest / parts[0]
    if len(parts) != 2 or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts) or folder.is_symlink():
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


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is for reading
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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


def build_index(store: Store, people: list[Person], folders: dict[int | None, str]) -> dict[str, object]:
    """The ``index.json`` document (see ``schema/index.schema.json``)."""

    def face_doc(person: Person, names: dict[int, str]) -> list[dict[str, object]]:
        return [
            {
                "id": f.face_id,
                "photo": os.fsdecode(f.photo_path),
                "file": f"{folders[person.id]}/{names[f.photo_id]}",
                "box": f.box.as_list(),
                "confidence": round(f.confidence, 4),
                "distance": None if f.distance != f.distance else round(f.distance, 4),
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


def export(store: Store, dest: str | os.PathLike[str], mode: str = "symlink") -> ExportReport:
    """Write a folder per person (and ``unknown/``) with the photos they appear in, plus ``index.json``."""
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
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
        manifest_data = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror})") from None
    except json.JSONDecodeError:
        manifest_data = {}
    previous = set(manifest_data.get("entries", []))

    people = list_persons(store)
    folders = _person_folders(people)
    wanted: dict[str, Path] = {}
    for p in people:
        names = _file_names(p)
        for f in p.faces:
            wanted[f"{folders[p.id]}/{names[f.photo_id]}"] = f.photo_path

    created = updated = removed = unchanged = 0
    skipped: list[str] = []
    try:
        # Never create the manifest after entries: a crash in between must not orphan them.
        _atomic_write(marker, json.dumps({"entries": sorted(previous | set(wanted))}))
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
        for child in dest_path.iterdir():
            if child.is_dir() and not child.is_symlink() and not any(child.iterdir()):
                child.rmdir()
        index = build_index(store, people, folders)
        _atomic_write(dest_path / "index.json", _json_text(index))
        _atomic_write(marker, json.dumps({"entries": sorted(set(wanted) - set(skipped))}))
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror}: {exc.filename})") from None
    n_persons = sum(1 for p in people if p.id is not None)
    unknown_faces = sum(len(p.faces) for p in people if p.id is None)
    return ExportReport(
        os.fsdecode(dest_path), mode, n_persons, unknown_faces, created, updated, removed, unchanged, skipped
    )
