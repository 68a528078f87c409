"""The two JSON documents of an export: ``index.json``, for readers (see
``schema/index.schema.json``), and the manifest, photocluster's own record of what it wrote
in DEST (and beside the originals), which makes a re-export touch only its own files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern

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
    never sees half of it."""

    def __init__(self, path: Path, threshold: str | None, min_size: str | None) -> None:
        self.path = path
        self._tmp = path.with_name(f".tmp-{path.name}")  # see remove_partial
        self._fh = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._first = True  # no person written yet
        self._unknown = 0  # unknown faces written
        head = {
            "schema_version": INDEX_SCHEMA_VERSION,
            "tool": {"name": "photocluster", "version": __version__},
            # Empty or "None": the default two-stage clustering, which has no single threshold.
            "threshold": float(threshold) if threshold and threshold != "None" else None,
            "min_size": None if min_size is None else int(min_size),
        }
        self._fh.write(json_text(head)[:-3] + ',\n  "persons": [')

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
            self._fh.write(("\n    " if self._first else ",\n    ") + _faces_block(doc, faces, "    "))
            self._first = False
            return
        if not faces:
            return
        if self._unknown == 0:
            closing = "]" if self._first else "\n  ]"
            self._fh.write(closing + ',\n  "unknown": ' + _line({"folder": folder})[:-1] + ', "faces": [')
        self._fh.write(
            "".join(("\n    " if k + self._unknown == 0 else ",\n    ") + _line(f) for k, f in enumerate(faces))
        )
        self._unknown += len(faces)

    def close(self) -> None:
        """Finish the document and put it in place."""
        if self._unknown == 0:
            closing = "]" if self._first else "\n  ]"
            self._fh.write(closing + ',\n  "unknown": ' + _faces_block({"folder": UNKNOWN_FOLDER}, [], "  ") + "\n}\n")
        else:
            self._fh.write("\n  ]}\n}\n")
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        self.remove_partial(self.path)

    @staticmethod
    def remove_partial(path: Path) -> None:
        """Remove what an unfinished writer of ``path`` left."""
        with contextlib.suppress(OSError):
            os.unlink(path.with_name(f".tmp-{path.name}"))


JOURNAL = ".photocluster-export.journal"
# Manifest keys encoded at a time (a line of the manifest).
_SLICE = 4096
# The manifest's first line since the layout read a line at a time (format 2).
_HEAD = '{"format": 2,'


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
    """

    entries: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    sidecars: dict[str, str] = field(default_factory=dict)
    stamps: dict[str, str] = field(default_factory=dict)

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
        return cls(
            {e for e in entries if isinstance(e, str)} if isinstance(entries, list) else set(),
            mapping("files"),
            mapping("sidecars"),
            mapping("stamps"),
        )

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``, a line at a time when it has this version's layout (at a
        million faces its text is a quarter of a GB, never held whole); one of an earlier
        version (a single line) is parsed whole, once: the export writes it back in this layout.
        Text that is not JSON reads as an empty manifest."""
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
            if first.rstrip("\n") == _HEAD:
                manifest = cls._read_lines(fh)
                if manifest is not None:
                    return manifest
            fh.seek(0)
            try:
                return cls.parse(json.loads(fh.read()))
            except json.JSONDecodeError:
                return cls()

    @classmethod
    def _read_lines(cls, lines: Iterable[str]) -> Manifest | None:
        """The sections of :meth:`chunks`'s layout; None for text not in it (read it whole)."""
        manifest = cls()
        maps = {"files": manifest.files, "sidecars": manifest.sidecars, "stamps": manifest.stamps}
        section: str | None = None
        try:
            for line in lines:
                text = line.rstrip("\n")
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
                body = text[:-1] if text.endswith(",") else text
                # A path is a key of two sections (its entry or file, its stamp): interned, it is
                # held once (a tenth of the manifest's memory at a million faces).
                if section == "entries":
                    manifest.entries.update(intern(e) for e in json.loads("[" + body + "]") if isinstance(e, str))
                elif section in maps:
                    part = json.loads("{" + body + "}")
                    maps[section].update((intern(k), v) for k, v in part.items() if isinstance(v, str))
        except (ValueError, TypeError, StopIteration):
            return None
        return None  # cut short

    def dump(self) -> str:
        return "".join(self.chunks())

    def chunks(self) -> Iterator[str]:
        """The manifest's JSON text (keys sorted), a piece at a time: at a million faces it
        is a quarter of a GB, never held whole. Its layout, which :meth:`read` reads a line
        at a time: a head line, then each section's name, its items a slice per line, and
        its closing bracket on lines of their own."""

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
        yield "}\n}\n"

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
