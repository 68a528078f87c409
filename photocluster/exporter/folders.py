"""The export folder's layout: a folder per person holding the photos they appear in.

Folder and file names are made safe and unique here, photo entries are placed (symlink,
hardlink or copy) and taken away, and folders left empty are pruned. Every path written
is checked to stay inside DEST first.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.core.choices import ExportMode
from photocluster.core.errors import ExportError
from photocluster.core.types import Person, Photo, person_label
from photocluster.exporter.stamps import EDITED, UNSTAMPED, copy_hashed, stamp, still_ours

MODES = tuple(m.value for m in ExportMode)
UNKNOWN_FOLDER = "unknown"
CROPS_FOLDER = "crops"
INDEX_FILE = "index.json"
REVIEW_PAGE = "index.html"
PAGES_FOLDER = "pages"  # the review pages after the first: more persons, each person, doubt, unknown
THUMBS_FOLDER = ".thumbs"
_MAX_NAME_BYTES = 200
# Names a person's folder may not take: Windows devices, and what the export itself puts in DEST.
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
    UNKNOWN_FOLDER,
    CROPS_FOLDER,
    INDEX_FILE,
    REVIEW_PAGE,
    PAGES_FOLDER,
}


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


def person_folders(people: list[Person]) -> dict[int | None, str]:
    """Person id -> folder name; the unknown faces (id None) go to ``unknown``. Two persons
    with the same name (case-insensitively: macOS and Windows) get their ids appended."""
    folders: dict[int | None, str] = {None: UNKNOWN_FOLDER}
    used = {UNKNOWN_FOLDER}
    for p in people:
        if p.id is None:
            continue
        base = safe_folder_name(p.name) if p.name else person_label(p.id)
        folder = base
        if folder.lower() in used:
            folder = f"{base} ({p.id})"
        used.add(folder.lower())
        folders[p.id] = folder
    return folders


def file_names(person: Person) -> dict[int, str]:
    """Photo id -> file name in the person's folder: the original name, made unique."""
    return unique_names((f.photo_path, f.photo_id) for f in person.faces)


def unique_names(photos: Iterable[tuple[Path, int]]) -> dict[int, str]:
    """Photo id -> file name in one folder for (path, photo id) pairs: the original name,
    made unique (by path order, case-insensitively) with the photo id."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for path, photo_id in sorted({(os.fsdecode(path), photo_id) for path, photo_id in photos}):
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


def check_inside(dest: Path, rel: str, depths: tuple[int, ...] = (2,)) -> None:
    """Belt and braces: ``rel`` must be ``depths`` plain names deep, and every folder on the
    way a real folder (not a symlink someone put there), so nothing can land outside DEST."""
    parts = rel.split("/")
    if len(parts) not in depths or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
        raise ExportError(f"{dest}: refusing to write {rel!r}, which could end up outside the export folder")
    root = os.fspath(dest)
    for k in range(1, len(parts)):
        if os.path.islink(os.path.join(root, *parts[:k])):
            raise ExportError(f"{dest}: refusing to write {rel!r}, which could end up outside the export folder")


def photo_problem(photo: Photo) -> str | None:
    """Why pixels or geometry of ``photo`` cannot be used now, or None."""
    try:
        st = os.stat(photo.path)
    except OSError:
        return "the photo is gone"
    if (st.st_size, st.st_mtime_ns) != (photo.size, photo.mtime_ns):
        return "the photo changed since it was scanned (run photocluster scan)"
    return None


class Warnings(list[str]):
    """The warnings of an export: the first ``keep`` lines, and how many there were in all
    (a library whose disk is gone has a warning per face: a count says it, not a line each)."""

    def __init__(self, keep: int = 20) -> None:
        super().__init__()
        self.keep = keep
        self.total = 0

    def append(self, line: str) -> None:
        self.total += 1
        if len(self) < self.keep:
            super().append(line)

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(line)

    def merge(self, other: Warnings) -> None:
        """Add the warnings of another part of the export: its lines kept, its count."""
        kept = len(other)
        self.extend(other)
        self.total += other.total - kept


# Why a file of the export was not written over someone else's.
IN_THE_WAY = "not written: a file that photocluster did not write is in the way"


def warn(warnings: list[str], path: str | os.PathLike[str], reason: str) -> None:
    warnings.append(f"{os.fsdecode(path)}: {reason}")


def _same(entry: str, st: os.stat_result, source: Path, mode: str) -> bool:
    """Whether the entry (``st``: its lstat) is ``source`` placed the ``mode`` way."""
    try:
        if mode == "symlink":
            return stat.S_ISLNK(st.st_mode) and os.readlink(entry) == os.fsdecode(source)
        if stat.S_ISLNK(st.st_mode):
            return False
        b = os.stat(source)
        if mode == "hardlink":
            return (st.st_dev, st.st_ino) == (b.st_dev, b.st_ino)
        # A copy carries the original's mtime (copy2): same size and mtime, same photo.
        return st.st_size == b.st_size and st.st_mtime_ns == b.st_mtime_ns
    except OSError:
        return False


def _place(entry: str, source: Path, mode: str) -> str:
    """Place the entry; returns its stamp (:mod:`photocluster.exporter.stamps`)."""
    if mode == "symlink":
        os.symlink(source, entry)
        return "l:" + os.fsdecode(source)
    if mode == "hardlink":
        try:
            os.link(source, entry)
        except OSError as exc:
            raise ExportError(
                f"{entry}: cannot hardlink to {source} ({exc.strerror}); "
                "hardlinks need DEST on the same filesystem: use --mode symlink or copy"
            ) from None
        return stamp(entry, "") or ""  # the original is never read in this mode
    return copy_hashed(source, entry)


@dataclass
class Placed:
    """What :func:`place_entry` and :func:`remove_entries` did, counted in photo entries.
    ``kept``: entries of ours the user changed since, left as they are; ``stamps``: the
    stamp of each entry of ours in place (filled as they are placed)."""

    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (entry, why)
    stamps: dict[str, str] = field(default_factory=dict)


def place_entry(
    dest: str, rel: str, source: Path, ours: str | None, mode: str, done: Placed
) -> Callable[[], None] | bool | None:
    """Decide the photo entry ``rel`` (``folder/file``) of ``source``, counting it in ``done``:
    missing, it is to be added; ours (``ours``: its stamp as an earlier export recorded it,
    "" when that export recorded none) and stale, replaced; ours but changed since it was
    written (the user edited the copy, put another file or link there), kept; someone
    else's file in the way, or the original gone, skipped. Returns what places it (a call
    the caller makes, perhaps on another thread), True when it is in place already, False
    when it is kept as the user's, or None when skipped. ``check_inside`` for ``rel`` is the
    caller's (once per folder)."""
    entry = os.path.join(dest, rel)  # strings: a Path per entry costs more than placing it
    try:
        st: os.stat_result | None = os.lstat(entry)
    except FileNotFoundError:
        st = None
    if st is not None:
        if _same(entry, st, source, mode):
            done.unchanged += 1
            done.stamps[rel] = ours or stamp(entry, "") or ""
            return True
        if ours is None:
            done.skipped.append(rel)
            return None
        why = _not_ours_now(entry, st, ours)
        if why:
            done.kept.append((rel, why))
            return False
        done.updated += 1
        return functools.partial(_replace, entry, source, mode, rel, done.stamps)
    if not os.path.lexists(source):
        done.skipped.append(rel)
        return None
    done.created += 1
    return functools.partial(_placing, entry, source, mode, rel, done.stamps)


def _not_ours_now(entry: str, st: os.stat_result, recorded: str) -> str | None:
    """Why the entry of ours at ``entry`` (``st``: its lstat) is the user's now, or None."""
    if recorded:
        return None if still_ours(entry, recorded) else EDITED
    # An older export recorded no stamp: only a link (no content of anyone's) is taken as ours.
    return None if stat.S_ISLNK(st.st_mode) else UNSTAMPED


def _placing(entry: str, source: Path, mode: str, rel: str, stamps: dict[str, str]) -> None:
    stamps[rel] = _place(entry, source, mode)


def _replace(entry: str, source: Path, mode: str, rel: str, stamps: dict[str, str]) -> None:
    os.unlink(entry)
    _placing(entry, source, mode, rel, stamps)


def remove_entries(dest: Path, rels: Iterable[str], done: Placed, stamps: Mapping[str, str]) -> None:
    """Take out photo entries of ours that are no longer wanted; one the user changed since
    it was written (``stamps``: as written) is the user's: kept, in ``done.kept``."""
    for rel in sorted(rels):
        check_inside(dest, rel)
        entry = dest / rel
        try:
            st = os.lstat(entry)
        except FileNotFoundError:
            continue
        if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
            continue
        why = _not_ours_now(os.fspath(entry), st, stamps.get(rel, ""))
        if why:
            done.kept.append((rel, why))
            continue
        entry.unlink()
        done.removed += 1


def remove_files(dest: Path, rels: Iterable[str]) -> None:
    """Remove files of ours (thumbnails, chips: up to ``crops/folder/file`` deep) no longer wanted."""
    for rel in sorted(rels):
        check_inside(dest, rel, (1, 2, 3))
        entry = dest / rel
        if entry.is_symlink() or entry.is_file():
            entry.unlink()


def prune_empty(dest: Path) -> None:
    """Remove empty folders: person folders, ``crops/*``, the thumbnail folder and its shards."""
    for child in dest.iterdir():
        if not child.is_dir() or child.is_symlink():
            continue
        if child.name in (CROPS_FOLDER, THUMBS_FOLDER):
            for sub in child.iterdir():
                if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
                    sub.rmdir()
        if not any(child.iterdir()):
            child.rmdir()
