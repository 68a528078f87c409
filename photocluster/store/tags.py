"""Face tags read from the photos, and the names and pins they become.

A matched tag names a person (found by name, or created) and pins its face there, unless
the user's own correction says otherwise: a pin to another person that the tags did not
make, or a rejection of that person. The tag row remembers the person it pinned, so a
later difference is known to be the user's, and a re-scan replaces a photo's tags
without adding pins twice.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photocluster.core.types import Box, Face
from photocluster.store.connection import Database, bump_generation, chunks, marks, path_from_key, path_key
from photocluster.store.faces import insert_faces


@dataclass(frozen=True)
class NewTag:
    """A tag of one photo as the scan settled it (``face_id``: the face it names, if any)."""

    name: str
    source: str
    origin: str
    box: Box | None
    status: str  # matched, unmatched, weak
    face_id: int | None = None


@dataclass(frozen=True)
class StoredTag:
    """A stored tag, with its photo, the person it pinned its face to (``pinned``) and the
    face's person now (``person_id``, ``person_name``)."""

    id: int
    photo_id: int
    photo_path: Path
    name: str
    source: str
    origin: str
    box: Box | None
    status: str
    face_id: int | None
    pinned: int | None
    person_id: int | None
    person_name: str | None

    def same_read(self, other: NewTag) -> bool:
        """Whether ``other`` is this tag read again (same name, source, file and box)."""
        mine = None if self.box is None else self.box.as_list(2)
        theirs = None if other.box is None else other.box.as_list(2)
        return (self.name, self.source, self.origin, mine) == (other.name, other.source, other.origin, theirs)


_SELECT = """
    SELECT tags.id, tags.photo_id, photos.path, tags.name, tags.source, tags.origin, tags.left, tags.top,
           tags.right, tags.bottom, tags.status, tags.face_id, tags.person_id, faces.person_id, persons.name
    FROM tags JOIN photos ON photos.id = tags.photo_id
    LEFT JOIN faces ON faces.id = tags.face_id
    LEFT JOIN persons ON persons.id = faces.person_id
"""


def _tag(row: Any) -> StoredTag:
    tid, pid, path, name, source, origin, left, top, right, bottom, status, face, pinned, person, pname = row
    box = None if left is None else Box(float(left), float(top), float(right), float(bottom))
    return StoredTag(
        id=int(tid),
        photo_id=int(pid),
        photo_path=path_from_key(bytes(path)),
        name=str(name),
        source=str(source),
        origin=os.fsdecode(bytes(origin)),
        box=box,
        status=str(status),
        face_id=None if face is None else int(face),
        pinned=None if pinned is None else int(pinned),
        person_id=None if person is None else int(person),
        person_name=None if pname is None else str(pname),
    )


def _person_named(conn: sqlite3.Connection, name: str) -> int:
    """The person of that name (case-insensitive; the oldest when several), else a new one."""
    row = conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute("INSERT INTO persons(name, created_at, curated) VALUES (?, ?, 1)", (name, time.time()))
    return int(cur.lastrowid or 0)


def _pin(conn: sqlite3.Connection, face_id: int, name: str, before: tuple[int, str] | None) -> int | None:
    """Pin the face to the person ``name``; None when the user's correction says otherwise.
    ``before``: the person and name of this face's tag as last read; the same name read
    again means that person still, even if the user renamed it since."""
    ours_before = None if before is None else before[0]
    exists = "SELECT 1 FROM persons WHERE id = ?"
    if before is not None and before[1].casefold() == name.casefold() and conn.execute(exists, before[:1]).fetchone():
        person = before[0]
    else:
        person = _person_named(conn, name)
    row = conn.execute("SELECT person_id FROM pins WHERE face_id = ?", (face_id,)).fetchone()
    if row is not None and int(row[0]) != person and int(row[0]) != ours_before:
        return None  # the user pinned it elsewhere (merge, move): that wins
    if conn.execute("SELECT 1 FROM rejections WHERE face_id = ? AND person_id = ?", (face_id, person)).fetchone():
        return None  # the user took it out of that person
    conn.execute("INSERT OR REPLACE INTO pins(face_id, person_id) VALUES (?, ?)", (face_id, person))
    conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person, face_id))
    conn.execute("UPDATE persons SET curated = 1 WHERE id = ?", (person,))
    return person


class Tags(Database):
    """The ``tags`` table, and the pins and rejections the tags make."""

    def photo_tags(self, photo_id: int) -> list[StoredTag]:
        return [_tag(r) for r in self.conn.execute(_SELECT + " WHERE tags.photo_id = ? ORDER BY tags.id", (photo_id,))]

    def present_photos(self, paths: Sequence[Path]) -> dict[Path, int]:
        """Path -> photo id of those of ``paths`` that are analysed photos, present (``done``)."""
        out: dict[Path, int] = {}
        keys = {path_key(p): p for p in paths}
        for chunk in chunks(list(keys)):
            rows = self.conn.execute(
                f"SELECT path, id FROM photos WHERE status = 'done' AND path IN ({marks(chunk)})", chunk
            )
            out.update({keys[bytes(k)]: int(i) for k, i in rows})
        return out

    def tag_read_keys(self) -> dict[int, str]:
        """Photo id -> the key of the files its tags were last read from."""
        return {int(p): str(k) for p, k in self.conn.execute("SELECT photo_id, key FROM tag_reads")}

    def save_tag_keys(self, keys: Sequence[tuple[int, str]]) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO tag_reads(photo_id, key) VALUES (?, ?)", keys)

    def tagged_photo_ids(self) -> set[int]:
        return {int(p) for (p,) in self.conn.execute("SELECT DISTINCT photo_id FROM tags")}

    def all_tags(self) -> list[StoredTag]:
        """The tags of the present photos, by photo path."""
        rows = self.conn.execute(_SELECT + " WHERE photos.status = 'done' ORDER BY photos.path, tags.id")
        return [_tag(r) for r in rows]

    def save_tags(self, photo_id: int, tags: Sequence[NewTag]) -> dict[int, int | None]:
        """Replace the photo's tags by ``tags``; pin each matched face to the person its tag
        names (see the module doc); keep faces of different names apart (a rejection each
        way). Pins the old tags made and the new ones do not are taken out. Returns face id
        -> the person it was pinned to (None: the user's correction won)."""
        with self.transaction() as conn:
            old = {
                int(f): (int(p), str(n))
                for f, p, n in conn.execute(
                    "SELECT face_id, person_id, name FROM tags WHERE photo_id = ? AND face_id IS NOT NULL "
                    "AND person_id IS NOT NULL",
                    (photo_id,),
                )
            }
            conn.execute("DELETE FROM tags WHERE photo_id = ?", (photo_id,))
            pinned: dict[int, int | None] = {}
            for tag in tags:
                if tag.status == "matched" and tag.face_id is not None and tag.face_id not in pinned:
                    pinned[tag.face_id] = _pin(conn, tag.face_id, tag.name, old.get(tag.face_id))
            for face, (person, _name) in old.items():
                if pinned.get(face) != person:
                    conn.execute("DELETE FROM pins WHERE face_id = ? AND person_id = ?", (face, person))
            persons = {f: p for f, p in pinned.items() if p is not None}
            conn.executemany(
                "INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)",
                [(f, q) for f, p in persons.items() for q in set(persons.values()) if q != p],
            )
            conn.executemany(
                "INSERT INTO tags(photo_id, name, source, origin, left, top, right, bottom, status, face_id, "
                "person_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        photo_id,
                        t.name,
                        t.source,
                        os.fsencode(t.origin),
                        *((t.box.left, t.box.top, t.box.right, t.box.bottom) if t.box else (None,) * 4),
                        t.status,
                        t.face_id,
                        pinned.get(t.face_id) if t.face_id is not None and t.status == "matched" else None,
                    )
                    for t in tags
                ],
            )
            if pinned or old:
                bump_generation(conn)
        return pinned

    def weak_labels(self) -> list[tuple[int, str, str | None]]:
        """(person, weak name, the person's name) for each weak tag whose face is in a person."""
        rows = self.conn.execute(
            "SELECT faces.person_id, tags.name, persons.name FROM tags JOIN faces ON faces.id = tags.face_id "
            "JOIN persons ON persons.id = faces.person_id WHERE tags.status = 'weak'"
        )
        return [(int(p), str(n), None if pn is None else str(pn)) for p, n, pn in rows]

    def name_persons(self, names: dict[int, str]) -> None:
        """Name persons that have no name (a name given meanwhile is kept)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE persons SET name = ? WHERE id = ? AND name IS NULL", [(n, p) for p, n in names.items()]
            )

    def tag_pinned_faces(self) -> set[int]:
        """Faces a tag pinned (or tried to): their pins and rejections are the tags' word."""
        return {int(f) for (f,) in self.conn.execute("SELECT DISTINCT face_id FROM tags WHERE status = 'matched'")}

    def add_face(self, photo_id: int, face: Face) -> int:
        """A face found on a second look at a tagged region: one more face of the photo."""
        with self.transaction() as conn:
            insert_faces(conn, photo_id, [face])
            return int(conn.execute("SELECT max(id) FROM faces WHERE photo_id = ?", (photo_id,)).fetchone()[0])
