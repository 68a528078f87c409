"""What lets a re-export skip a person whole: a fingerprint of everything the export writes
of each person, and the cheap checks that its files are still as the last export wrote them.

A person's fingerprint covers its faces and their photos as the store has them (face id,
box, confidence, embedding; the photo's path, size, mtime, content hash, day taken), its
name, birth date, folder and the faces without a thumbnail; the export's options and the
code and templates that render the files are the :func:`context`'s, the numbers in every
page's header (the summary) are compared on their own. The library's fingerprint adds, in
order, every person's, and what the lists of persons and doubts show besides (persons kept
apart, face tags, settings): when it is unchanged, the faces in doubt and the suggestions are
not computed again.

An unchanged person is skipped when its files are still as written (:func:`as_written`):
its folder, whose identity and mtime change with any entry added, removed or replaced
there (its photo entries are symlinks, which cannot change in place), and each of its
regular files (thumbnails, face chips, pages) by one ``lstat``, its size and mtime against
its stamp. Any difference sends the person through the export's usual path, which finds
and reports it as a full export would.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from photocluster.core.readmodel import Card, FaceItem
from photocluster.core.types import Box
from photocluster.exporter.stamps import stat_matches
from photocluster.store import PersonRow, Store
from photocluster.version import __version__

# Bumped when what a fingerprint covers changes.
_FORMAT = "1"
# The code that decides what an export writes: its source is part of the context.
_CODE = ("exporter/pages.py", "exporter/review.py", "exporter/index_json.py", "exporter/render.py", "app/export.py")


def _code_print() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.blake2b(digest_size=16)
    templates = root / "exporter" / "templates"
    for path in [*(root / rel for rel in _CODE), *sorted(templates.iterdir())]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def context(options: Sequence[object]) -> str:
    """The fingerprint of what every person's files depend on besides the person: the
    export's ``options`` (mode, crops, sizes...), this version and the code that renders."""
    digest = hashlib.blake2b(repr((_FORMAT, __version__, _code_print(), *options)).encode(), digest_size=16)
    return digest.hexdigest()


def fingerprints(
    store: Store,
    rows: Sequence[PersonRow],
    folders: Mapping[int | None, str],
    births: Mapping[int, object],
    no_thumb: set[int],
) -> tuple[dict[int | None, str], str]:
    """(person id -> fingerprint, None -> the unknown faces'; the library's fingerprint), in
    one streaming pass over the faces: no object per face is built."""
    wanted = {r.id: r for r in rows}
    prints: dict[int | None, str] = {}
    digest: Any = None
    current: tuple[int | None] | None = None  # the person being summed (None: none yet)
    for pid, fid, text, path, emb in store.face_prints():
        if current is None or pid != current[0]:
            if digest is not None and current is not None:
                prints[current[0]] = digest.hexdigest()
            current, digest = (pid,), None
            person = wanted.get(pid) if pid is not None else None
            if person is not None or pid is None:
                head = (
                    (pid, folders.get(pid), person.name, person.ignored, births.get(person.id)) if person else (None,)
                )
                digest = hashlib.blake2b(repr(head).encode("utf-8", "surrogateescape"), digest_size=16)
        if digest is None:
            continue
        digest.update(text.encode())
        digest.update(path)
        digest.update(emb)
        digest.update(b"!" if fid in no_thumb else b";")
    if digest is not None and current is not None:
        prints[current[0]] = digest.hexdigest()
    library = hashlib.blake2b(digest_size=16)
    for r in rows:
        library.update(f"{r.id}:{prints.get(r.id)};".encode())
    library.update(f"None:{prints.get(None)};".encode())
    for item in store.library_prints():
        library.update(repr(item).encode("utf-8", "surrogateescape"))
    return prints, library.hexdigest()


def card_doc(card: Card) -> list[object]:
    c = card.cover
    cover = (
        None
        if c is None
        else [
            c.id,
            c.photo_id,
            os.fsdecode(c.photo_path),
            [c.box.left, c.box.top, c.box.right, c.box.bottom],
            c.distance,
            c.taken,
        ]
    )
    return [card.id, card.name, card.faces, card.photos, card.ignored, card.born, cover]


def card_of_doc(doc: Sequence[Any]) -> Card:
    pid, name, faces, photos, ignored, born, c = doc
    cover = None if c is None else FaceItem(c[0], pid, c[1], Path(c[2]), Box(*c[3]), c[4], c[5])
    return Card(pid, name, faces, photos, cover, ignored, born)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def folder_stamp(root: str, folder: str) -> list[int] | None:
    """What tells a person's folder unchanged: its inode and mtime (None: not a folder)."""
    st = _stat(os.path.join(root, folder))
    return None if st is None or not stat.S_ISDIR(st.st_mode) else [st.st_ino, st.st_mtime_ns]


def folder_as_written(root: str, folder: str, recorded: object, since: int) -> bool | None:
    """Whether a person's folder is as the last export left it (inode and mtime
    ``recorded``): True, False, or None when it is but changed at or after ``since`` (the
    manifest's own mtime), so that a change in the same clock tick could hide: then each of
    its links is to be looked at."""
    if not isinstance(recorded, list) or folder_stamp(root, folder) != recorded:
        return False
    return None if recorded[1] >= since else True


def as_written(root: str, entries: Mapping[str, Any], files: Mapping[str, Any], links: bool) -> bool:
    """Whether a person's files are as the last export wrote them: each regular file (size
    and mtime against its stamp) and, with ``links``, each photo entry (its link's target)."""
    if links and not _links_as_written(root, entries.items()):
        return False
    for rel, value in files.items():
        st = _stat(os.path.join(root, rel))
        if st is None or not isinstance(value, list) or not isinstance(value[1], str):
            return False
        if not stat_matches(st, value[1]):
            return False
    return True


def _links_as_written(root: str, entries: Iterable[tuple[str, Any]]) -> bool:
    for rel, recorded in entries:
        if not (isinstance(recorded, str) and recorded.startswith("l:")):
            return False
        try:
            if os.readlink(os.path.join(root, rel)) != recorded[2:]:
                return False
        except OSError:
            return False
    return True
