"""The two JSON documents of an export: ``index.json``, for readers (see
``schema/index.schema.json``), and the manifest, photocluster's own record of what it wrote
in DEST (and beside the originals), which makes a re-export touch only its own files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from photocluster import __version__
from photocluster.core.types import Person
from photocluster.exporter.folders import UNKNOWN_FOLDER, file_names
from photocluster.store import Store

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


def index_chunks(
    store: Store,
    people: list[Person],
    folders: dict[int | None, str],
    thumbnails: dict[int, str] | None = None,
    crops: dict[int, str] | None = None,
) -> Iterator[str]:
    """The text of the ``index.json`` document (see ``schema/index.schema.json``), a person
    at a time, never held whole: a person's fields on one line, then one line per face.

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
    head = {
        "schema_version": INDEX_SCHEMA_VERSION,
        "tool": {"name": "photocluster", "version": __version__},
        # Empty or "None": the default two-stage clustering, which has no single threshold.
        "threshold": float(threshold) if threshold and threshold != "None" else None,
        "min_size": None if min_size is None else int(min_size),
    }
    yield json_text(head)[:-3] + ',\n  "persons": ['
    unknown: list[dict[str, object]] = []
    first = True
    for p in people:
        names = file_names(p)
        if p.id is None:
            unknown = face_doc(p, names)
            continue
        doc = {
            "id": p.id,
            "name": p.name,
            "folder": folders[p.id],
            "face_count": len(p.faces),
            "photo_count": p.photo_count,
        }
        yield ("\n    " if first else ",\n    ") + _faces_block(doc, face_doc(p, names), "    ")
        first = False
    closing = "]" if first else "\n  ]"
    yield closing + ',\n  "unknown": ' + _faces_block({"folder": UNKNOWN_FOLDER}, unknown, "  ") + "\n}\n"


@dataclass
class Manifest:
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
        )

    def dump(self) -> str:
        return "".join(self.chunks())

    def chunks(self) -> Iterator[str]:
        """The manifest's JSON text (``json.dumps`` of it, keys sorted), a piece at a time:
        at a million faces it is a hundred MB, never held whole."""

        def mapping(values: dict[str, str]) -> Iterator[str]:
            yield "{"
            for k, key in enumerate(sorted(values)):
                yield (", " if k else "") + json.dumps(key) + ": " + json.dumps(values[key])
            yield "}"

        yield '{"entries": ['
        for k, entry in enumerate(sorted(self.entries)):
            yield (", " if k else "") + json.dumps(entry)
        yield '], "files": '
        yield from mapping(self.files)
        yield ', "sidecars": '
        yield from mapping(self.sidecars)
        yield "}"

    def claim(self, dest: Path, entries: Iterable[str], files: dict[str, str], sidecars: dict[str, str]) -> Manifest:
        """This manifest plus what a run is about to write, recorded before writing it: a
        crash in between must not orphan anything. A path someone else's file already
        occupies is not claimed (it will not be written)."""
        root = os.fspath(dest)  # joined as strings: a Path per file costs more than the check
        return Manifest(
            self.entries | {rel for rel in entries if not os.path.lexists(os.path.join(root, rel))},
            {**self.files, **{rel: key for rel, key in files.items() if not os.path.lexists(os.path.join(root, rel))}},
            {**self.sidecars, **sidecars},
        )
