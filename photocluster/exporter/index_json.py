"""The two JSON documents of an export: ``index.json``, for readers (see
``schema/index.schema.json``), and the manifest, photocluster's own record of what it wrote
in DEST (and beside the originals), which makes a re-export touch only its own files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern
from typing import Any, BinaryIO

from photocluster.core.ages import age_at
from photocluster.core.types import Person
from photocluster.exporter.folders import UNKNOWN_FOLDER
from photocluster.exporter.stamps import CLAIMED
from photocluster.version import __version__

INDEX_SCHEMA_VERSION = 1


def json_text(doc: object) -> str:
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name with bytes that are not UTF-8: \u escapes keep it exact and the JSON valid.
        text = json.dumps(doc, indent=2, ensure_ascii=True)
    return text + "\n"


def _line(doc: object) -> str:
    """``doc`` on one line (json's C encoder: a million faces in seconds, where ``indent``
    takes json's pure-Python path)."""
    text = json.dumps(doc, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name with bytes that are not UTF-8: \u escapes keep it exact and the JSON valid.
        text = json.dumps(doc, ensure_ascii=True)
    return text


def _faces_block(head: Mapping[str, object], faces: list[dict[str, object]], indent: str) -> str:
    """A person (or the unknown group): its fields on one line, then a face per line."""
    fields = _line(head)[:-1]
    if not faces:
        return fields + ', "faces": []}'
    rows = f",\n{indent}  ".join(_line(f) for f in faces)
    return f'{fields}, "faces": [\n{indent}  {rows}\n{indent}]}}'


def _face_docs(
    person: Person, entries: Mapping[int, str], thumbnails: Mapping[int, str], crops: Mapping[int, str]
) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = [
        {
            "id": f.face_id,
            "photo": os.fsdecode(f.photo_path),
            "file": entries[f.face_id],
            "box": f.box.as_list(),
            "confidence": round(f.confidence, 4),
            "distance": None if f.distance != f.distance else round(f.distance, 4),
            "thumbnail": thumbnails.get(f.face_id),
            "crop": crops.get(f.face_id),
        }
        for f in person.faces
    ]
    if person.born:
        # The day of each photo and the age in it: only for a person with a birth date.
        born = dt.date.fromisoformat(person.born)
        for doc, f in zip(docs, person.faces, strict=True):
            age = age_at(born, dt.date.fromisoformat(f.taken)) if f.taken else None
            doc["taken"] = f.taken
            doc["age"] = None if age is None else age.as_dict()
    return docs


class IndexWriter:
    """Writes the ``index.json`` document (see ``schema/index.schema.json``) a person at a
    time, never held whole: a person's fields on one line, then one line per face. The
    document is written beside ``path`` and takes its place at :meth:`close`, so a reader
    never sees half of it. ``blocks``: where each person's block (and, key None, the unknown
    faces' lines) lies in the document, so that the next export can copy the block of a
    person that did not change (:meth:`copy`) instead of writing it anew."""

    def __init__(self, path: Path, threshold: str | None, min_size: str | None) -> None:
        self.path = path
        self._tmp = path.with_name(f".tmp-{path.name}")  # see remove_partial
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        self._old: BinaryIO | None = None  # the document being replaced, for copy()
        self._first = True  # no person written yet
        self._unknown = 0  # unknown faces written
        self._unknown_at = 0
        self.blocks: dict[int | None, tuple[int, int]] = {}
        head = {
            "schema_version": INDEX_SCHEMA_VERSION,
            "tool": {"name": "photocluster", "version": __version__},
            # Empty or "None": the default two-stage clustering, which has no single threshold.
            "threshold": float(threshold) if threshold and threshold != "None" else None,
            "min_size": None if min_size is None else int(min_size),
        }
        self._write(json_text(head)[:-3] + ',\n  "persons": [')

    def _write(self, text: str) -> None:
        self._fh.write(text.encode("utf-8"))

    def person(
        self,
        person: Person,
        folder: str,
        entries: Mapping[int, str],
        thumbnails: Mapping[int, str],
        crops: Mapping[int, str],
    ) -> None:
        """A person's block (its faces as ``person.faces`` lists them); for the unknown faces
        (id None), the next of their faces, a chunk at a time, after every person."""
        faces = _face_docs(person, entries, thumbnails, crops)
        if person.id is not None:
            assert self._unknown == 0, "persons come before the unknown faces"
            doc = {"id": person.id, "name": person.name, "folder": folder, "face_count": len(person.faces)}
            doc["photo_count"] = person.photo_count
            if person.born:
                doc["born"] = person.born
            self._block(person.id, _faces_block(doc, faces, "    ").encode("utf-8"))
            return
        if not faces:
            return
        self._unknown_head(folder)
        self._write(
            "".join(("\n    " if k + self._unknown == 0 else ",\n    ") + _line(f) for k, f in enumerate(faces))
        )
        self._unknown += len(faces)

    def _block(self, key: int, data: bytes) -> None:
        self._write("\n    " if self._first else ",\n    ")
        self.blocks[key] = (self._fh.tell(), len(data))
        self._fh.write(data)
        self._first = False

    def _unknown_head(self, folder: str) -> None:
        if self._unknown == 0:
            closing = "]" if self._first else "\n  ]"
            self._write(closing + ',\n  "unknown": ' + _line({"folder": folder})[:-1] + ', "faces": [')
            self._unknown_at = self._fh.tell()

    def copy(self, key: int | None, where: Sequence[int], folder: str = UNKNOWN_FOLDER) -> None:
        """Write again, as it is, the block of person ``key`` (None: the unknown faces' lines)
        that lies at ``where`` (offset, length) in the document this one replaces."""
        if self._old is None:
            self._old = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._old.seek(where[0])
        data = self._old.read(where[1])
        if len(data) != where[1]:
            raise OSError(f"{self.path}: shorter than its manifest says")
        if key is not None:
            self._block(key, data)
            return
        if data:
            self._unknown_head(folder)
            self._fh.write(data)
            self._unknown += 1

    def close(self) -> None:
        """Finish the document and put it in place."""
        if self._unknown == 0:
            closing = "]" if self._first else "\n  ]"
            self._write(closing + ',\n  "unknown": ' + _faces_block({"folder": UNKNOWN_FOLDER}, [], "  ") + "\n}\n")
        else:
            self.blocks[None] = (self._unknown_at, self._fh.tell() - self._unknown_at)
            self._write("\n  ]}\n}\n")
        self._fh.close()
        self._close_old()
        os.replace(self._tmp, self.path)

    def _close_old(self) -> None:
        if self._old is not None:
            self._old.close()
            self._old = None

    def abort(self) -> None:
        self._fh.close()
        self._close_old()
        self.remove_partial(self.path)

    @staticmethod
    def remove_partial(path: Path) -> None:
        """Remove what an unfinished writer of ``path`` left."""
        with contextlib.suppress(OSError):
            os.unlink(path.with_name(f".tmp-{path.name}"))


JOURNAL = ".photocluster-export.journal"
# Manifest keys encoded at a time (a line of the manifest).
_SLICE = 4096
# The manifest's first line since the layout read a line at a time (format 2), and since
# it holds a line per person (format 3).
_HEAD_2 = '{"format": 2,'
_HEAD = '{"format": 3,'


def manifest_lines(
    key: int | None,
    fingerprint: str,
    meta: Mapping[str, object],
    entries: Mapping[str, str | None],
    files: Mapping[str, list[str | None]],
) -> Iterator[str]:
    """One person's lines of the manifest (``key`` None: the unknown faces): its fingerprint,
    what the export keeps of it (``meta``), its photo entries (entry -> stamp) and its files
    (thumbnail, chip or page -> [content key, stamp]); ASCII, a line each. A person of many
    faces takes several lines, the next ones with neither fingerprint nor meta (null), so
    that reading one line never costs more than a few thousand faces."""
    rels, paths = list(entries), list(files)
    for lo in range(0, max(len(rels), len(paths), 1), _SLICE):
        head = [key, fingerprint, meta] if lo == 0 else [key, None, None]
        part = (
            {rel: entries[rel] for rel in rels[lo : lo + _SLICE]},
            {rel: files[rel] for rel in paths[lo : lo + _SLICE]},
        )
        yield json.dumps([*head, *part])


class Journal:
    """What a running export is about to write, appended (and flushed) before it writes it:
    an export killed half-way leaves no file that the next one does not know as its own.
    The next export folds the journal into the manifest (:meth:`Manifest.with_journal`)."""

    def __init__(self, dest: Path) -> None:
        self.path = dest / JOURNAL
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def claim(self, kind: str, items: Iterable[str], state: str = "") -> None:
        """``kind``: "entry" (photo entries), "file" (thumbnails, chips, pages), "sidecar"
        (with ``state``) or "rewrite" (entries and files of ours about to be written again:
        their stamps no longer hold). One line per call, flushed before any of them is written: a line
        cut short by a kill claims files none of which was written yet."""
        rels = list(items)
        if rels:
            self._fh.write(json.dumps([kind, state, rels]) + "\n")
            self._fh.flush()

    def close(self, remove: bool) -> None:
        self._fh.close()
        if remove:
            os.unlink(self.path)


@dataclass
class Manifest:
    """What photocluster wrote in DEST (and, for sidecars, beside the originals).

    ``entries``: photo entries (``folder/file``). ``files``: thumbnails, face chips and the
    review page, each with the key of its content. ``sidecars``: XMP sidecars holding our
    regions, relative to DEST or absolute (beside an original), each ``"created"`` (it may
    be deleted once nothing else is in it) or ``"merged"`` (it existed: only our regions go).
    ``stamps``: entry or file -> what was written there (:mod:`photocluster.exporter.stamps`),
    so that one the user changed since is kept; a manifest of an older version has none.

    Since format 3 what belongs to one person (or to the unknown faces) is a line of its own
    (:func:`person_line`), with the fingerprint of what the person writes, so that an export
    over an unchanged person skips it whole: ``persons`` holds where each line lies in the
    file (byte offset, length), read by :meth:`person_doc` only when wanted, and ``context``
    what the lines were written under. :meth:`merge` folds a line into the maps above.
    """

    entries: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    sidecars: dict[str, str] = field(default_factory=dict)
    stamps: dict[str, str] = field(default_factory=dict)
    context: dict[str, object] = field(default_factory=dict)
    persons: list[tuple[int, int]] = field(default_factory=list)
    path: Path | None = field(default=None, compare=False)
    mtime_ns: int = field(default=0, compare=False)  # the manifest file's, when read

    @classmethod
    def parse(cls, doc: object) -> Manifest:
        """Read leniently: a manifest damaged by hand loses what cannot be read, no more."""
        if not isinstance(doc, dict):
            return cls()

        def mapping(key: str) -> dict[str, str]:
            value = doc.get(key)
            if not isinstance(value, dict):
                return {}
            return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}

        entries = doc.get("entries")
        manifest = cls(
            {e for e in entries if isinstance(e, str)} if isinstance(entries, list) else set(),
            mapping("files"),
            mapping("sidecars"),
            mapping("stamps"),
        )
        persons = doc.get("persons")
        for doc_line in persons if isinstance(persons, list) else []:
            manifest.merge(doc_line)
        return manifest

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``, a line at a time when it has this version's layout (at a
        million faces its text is a quarter of a GB, never held whole: the persons' lines are
        only located); one of an earlier version (a single line) is parsed whole, once: the
        export writes it back in this layout. Text that is not JSON reads as an empty manifest."""
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").rstrip("\n")
            if first in (_HEAD, _HEAD_2):
                manifest = cls._read_lines(fh, len(first) + 1)
                if manifest is not None:
                    manifest.path = path
                    manifest.mtime_ns = os.fstat(fh.fileno()).st_mtime_ns
                    return manifest
            fh.seek(0)
            try:
                return cls.parse(json.loads(fh.read()))
            except (json.JSONDecodeError, UnicodeDecodeError):
                return cls()

    @classmethod
    def _read_lines(cls, lines: Iterable[bytes], offset: int) -> Manifest | None:
        """The sections of :meth:`chunks`'s layout; None for text not in it (read it whole)."""
        manifest = cls()
        maps = {"files": manifest.files, "sidecars": manifest.sidecars, "stamps": manifest.stamps}
        section: str | None = None
        try:
            for raw in lines:
                at, offset = offset, offset + len(raw)
                if section == "persons" and raw not in (b"]\n", b"],\n"):
                    body = raw.rstrip(b"\n")
                    manifest.persons.append((at, len(body) - 1 if body.endswith(b",") else len(body)))
                    continue
                text = raw.decode("utf-8").rstrip("\n")
                if section is None:
                    if text == "}":
                        return manifest
                    name, opening = text.rsplit(":", 1)
                    section = json.loads(name)
                    if opening.strip() not in ("[", "{") or not isinstance(section, str):
                        return None
                    continue
                if text in ("]", "],", "}", "},"):
                    section = None
                    continue
                item = text[:-1] if text.endswith(",") else text
                # A path is a key of two sections (its entry or file, its stamp): interned, it is
                # held once (a tenth of the manifest's memory at a million faces).
                if section == "entries":
                    manifest.entries.update(intern(e) for e in json.loads("[" + item + "]") if isinstance(e, str))
                elif section in maps:
                    part = json.loads("{" + item + "}")
                    maps[section].update((intern(k), v) for k, v in part.items() if isinstance(v, str))
                elif section == "context":
                    manifest.context.update(json.loads("{" + item + "}"))
        except (ValueError, TypeError, StopIteration):
            return None
        return None  # cut short

    def person_lines(self) -> Iterator[tuple[tuple[int, int], list[Any] | None]]:
        """Each person's line, where it lies and parsed (None: unreadable), in file order."""
        if self.path is None or not self.persons:
            return
        with open(self.path, "rb") as fh:
            for at, length in self.persons:
                fh.seek(at)
                try:
                    doc = json.loads(fh.read(length))
                except ValueError:
                    doc = None
                yield (at, length), doc if isinstance(doc, list) and len(doc) == 5 else None

    def line_at(self, where: tuple[int, int]) -> list[Any] | None:
        """The person's line at ``where`` (one of :attr:`persons`), parsed again."""
        if self.path is None:
            return None
        try:
            with open(self.path, "rb") as fh:
                fh.seek(where[0])
                doc = json.loads(fh.read(where[1]))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, list) and len(doc) == 5 else None

    def flattened(self) -> Manifest:
        """This manifest with every person's line folded in (then none is skipped)."""
        for _, doc in self.person_lines():
            self.merge(doc)
        self.persons = []
        return self

    def merge(self, doc: object) -> None:
        """Fold a person's line (see :func:`person_line`) into the entries, files and stamps."""
        if not (isinstance(doc, list) and len(doc) == 5 and isinstance(doc[3], dict) and isinstance(doc[4], dict)):
            return
        for rel, st in doc[3].items():
            if isinstance(rel, str):
                rel = intern(rel)
                self.entries.add(rel)
                if isinstance(st, str):
                    self.stamps[rel] = st
        for rel, value in doc[4].items():
            if isinstance(rel, str) and isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                rel = intern(rel)
                self.files[rel] = value[0]
                if isinstance(value[1], str):
                    self.stamps[rel] = value[1]

    def dump(self) -> str:
        return "".join(self.chunks())

    def chunks(self, persons: Iterable[str] = ()) -> Iterator[str]:
        """The manifest's JSON text (keys sorted), a piece at a time: at a million faces it
        is a quarter of a GB, never held whole. Its layout, which :meth:`read` reads a line
        at a time: a head line, then each section's name, its items a slice per line, and
        its closing bracket on lines of their own; then ``context`` on one line and
        ``persons``, a line each (``persons``: those lines, each one line of JSON)."""

        def mapping(values: dict[str, str]) -> Iterator[str]:
            # json's C encoder a slice at a time: a million keys one by one take seconds.
            keys = sorted(values)
            for lo in range(0, len(keys), _SLICE):
                part = json.dumps({key: values[key] for key in keys[lo : lo + _SLICE]})
                yield part[1:-1] + (",\n" if lo + _SLICE < len(keys) else "\n")

        entries = sorted(self.entries)
        yield _HEAD + '\n"entries": [\n'
        for lo in range(0, len(entries), _SLICE):
            part = json.dumps(entries[lo : lo + _SLICE])[1:-1]
            yield part + (",\n" if lo + _SLICE < len(entries) else "\n")
        for name, values in (("files", self.files), ("sidecars", self.sidecars), ("stamps", self.stamps)):
            yield f'],\n"{name}": {{\n' if name == "files" else f'}},\n"{name}": {{\n'
            yield from mapping(values)
        yield '},\n"context": {\n' + json.dumps(self.context, sort_keys=True)[1:-1] + '\n},\n"persons": [\n'
        first = True
        for line in persons:
            yield ("" if first else ",\n") + line
            first = False
        yield ("" if first else "\n") + "]\n}\n"

    def with_journal(self, path: Path) -> Manifest:
        """This manifest plus what the journal of an export that did not finish claimed: its
        files with an unknown content (rewritten next time), its entries and sidecars."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return self
        for line in lines:
            try:
                kind, state, rels = json.loads(line)
            except (ValueError, TypeError):
                continue  # the last line of a killed export may be cut short
            for rel in rels if isinstance(rels, list) else []:
                if not isinstance(rel, str):
                    continue
                if kind == "entry":
                    self.entries.add(rel)
                    self.stamps.setdefault(rel, CLAIMED)
                elif kind == "file":
                    self.files.setdefault(rel, "")
                elif kind == "sidecar":
                    self.sidecars.setdefault(rel, state)
                elif kind == "rewrite":
                    self.stamps[rel] = CLAIMED
        return self
