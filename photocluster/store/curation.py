"""Curation: faces the user drew, persons split in two, covers chosen, "is this X?" answers,
and the reads the review app's curation pages need. Each write is one logged correction
(see :mod:`photocluster.store.corrections`), undone like any other.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from photocluster.core.types import Box, Face, Photo
from photocluster.store.connection import Database, chunks, marks
from photocluster.store.corrections import face_ids_of, logged
from photocluster.store.faces import insert_face
from photocluster.store.photos import PHOTO_COLS, photo_of_row


class Curation(Database):
    """The ``added`` faces, the persons' ``cover_face_id``, splits and confirmations."""

    def add_user_face(
        self,
        photo_id: int,
        face: Face,
        person_id: int | None,
        thumbnail: bytes | None,
        thumb_params: str,
        *,
        new_name: str | None = None,
        command: str,
    ) -> int:
        """One more face of the photo, drawn by the user (kept by every later scan of the
        photo), pinned to ``person_id`` when given, or to a new person named ``new_name``.
        Returns its id; undo deletes it (and the new person)."""
        with self.transaction() as conn:
            persons = [] if person_id is None else [person_id]
            with logged(conn, command, persons, []) as before:
                if person_id is None and new_name is not None:
                    cur = conn.execute("INSERT INTO persons(name, created_at) VALUES (?, ?)", (new_name, time.time()))
                    person_id = int(cur.lastrowid or 0)
                    before["person_ids"].append(person_id)
                face_id = insert_face(conn, photo_id, face)
                conn.execute("UPDATE faces SET added = 1 WHERE id = ?", (face_id,))
                before["face_ids"].append(face_id)
                before["added_faces"] = [face_id]
                if thumbnail is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO face_thumbs(face_id, params, jpeg) VALUES (?, ?, ?)",
                        (face_id, thumb_params, thumbnail),
                    )
                if person_id is not None:
                    conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person_id, face_id))
                    conn.execute("UPDATE persons SET curated = 1 WHERE id = ?", (person_id,))
                    conn.execute("INSERT INTO pins(face_id, person_id) VALUES (?, ?)", (face_id, person_id))
        return face_id

    def photo_and_settings(self, photo_id: int) -> tuple[Photo, str | None] | None:
        """A photo by id and the settings key it was analysed with, or None."""
        row = self.conn.execute(f"SELECT {PHOTO_COLS} FROM photos WHERE id = ?", (photo_id,)).fetchone()
        return None if row is None else photo_of_row(row)

    def added_faces(self, photo_id: int | None = None) -> set[int]:
        """Ids of the faces the user drew (of one photo, when given)."""
        if photo_id is None:
            rows = self.conn.execute("SELECT id FROM faces WHERE added = 1")
        else:
            rows = self.conn.execute("SELECT id FROM faces WHERE added = 1 AND photo_id = ?", (photo_id,))
        return {int(f) for (f,) in rows}

    def split_person(self, person_id: int, face_ids: Sequence[int], name: str | None, *, command: str) -> int:
        """``face_ids`` (faces of ``person_id``) become a new person, pinned there; every face
        of either is never the other's (rejections each way: the cannot-links every later
        clustering keeps until the two are merged again). Returns the new person's id."""
        with self.transaction() as conn:
            faces = face_ids_of(conn, [person_id])
            moving = sorted(set(face_ids))
            staying = [f for f in faces if f not in set(moving)]
            with logged(conn, command, [person_id], faces) as before:
                cur = conn.execute(
                    "INSERT INTO persons(name, created_at, curated) VALUES (?, ?, 1)", (name, time.time())
                )
                new = int(cur.lastrowid or 0)
                before["person_ids"].append(new)
                for chunk in chunks(moving):
                    conn.execute(f"UPDATE faces SET person_id = ? WHERE id IN ({marks(chunk)})", (new, *chunk))
                conn.executemany(
                    "INSERT OR REPLACE INTO pins(face_id, person_id) VALUES (?, ?)", [(f, new) for f in moving]
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)",
                    [(f, person_id) for f in moving] + [(f, new) for f in staying],
                )
                conn.execute(
                    "UPDATE persons SET curated = 1, cover_face_id = CASE WHEN cover_face_id IN "
                    f"({marks(moving)}) THEN NULL ELSE cover_face_id END WHERE id = ?",
                    (*moving, person_id),
                )
        return new

    def set_cover(self, person_id: int, face_id: int | None, *, command: str) -> None:
        """The face a person's card shows (None: the best one, chosen for it)."""
        with self.transaction() as conn, logged(conn, command, [person_id], [], regroups=False):
            conn.execute("UPDATE persons SET cover_face_id = ? WHERE id = ?", (face_id, person_id))

    def chosen_covers(self, person_ids: Iterable[int]) -> dict[int, int]:
        """Person id -> the cover face the user chose, while that face is still the person's."""
        ids = sorted(set(person_ids))
        out: dict[int, int] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(
                "SELECT persons.id, persons.cover_face_id FROM persons JOIN faces ON faces.id = persons.cover_face_id "
                f"AND faces.person_id = persons.id WHERE persons.id IN ({marks(chunk)})",
                chunk,
            )
            out.update((int(p), int(f)) for p, f in rows)
        return out

    def face_geometry(self, face_ids: Iterable[int]) -> dict[int, tuple[Box, float, np.ndarray]]:
        """Face id -> (box, detector confidence, landmarks (5, 2)), for the given faces that exist."""
        ids = sorted(set(face_ids))
        out: dict[int, tuple[Box, float, np.ndarray]] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(
                f"SELECT id, left, top, right, bottom, confidence, landmarks FROM faces WHERE id IN ({marks(chunk)})",
                chunk,
            )
            for fid, left, top, right, bottom, conf, lm in rows:
                points = np.frombuffer(lm, dtype="<f4").reshape(5, 2)
                out[int(fid)] = (Box(left, top, right, bottom), float(conf), points)
        return out

    def reject_face(self, face_id: int, person_id: int, *, command: str) -> None:
        """ "No, not this person": the face is never ``person_id``'s (taken out of it if it was in it)."""
        with self.transaction() as conn, logged(conn, command, [person_id], [face_id]):
            conn.execute("UPDATE faces SET person_id = NULL WHERE id = ? AND person_id = ?", (face_id, person_id))
            conn.execute("DELETE FROM pins WHERE face_id = ? AND person_id = ?", (face_id, person_id))
            conn.execute("INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)", (face_id, person_id))

    def pinned_faces(self, person_id: int) -> set[int]:
        return {int(f) for (f,) in self.conn.execute("SELECT face_id FROM pins WHERE person_id = ?", (person_id,))}

    def rejected_faces(self, person_id: int) -> set[int]:
        return {
            int(f) for (f,) in self.conn.execute("SELECT face_id FROM rejections WHERE person_id = ?", (person_id,))
        }

    def person_photos(self, person_id: int) -> set[int]:
        """Ids of the photos with a face of the person."""
        rows = self.conn.execute("SELECT DISTINCT photo_id FROM faces WHERE person_id = ?", (person_id,))
        return {int(p) for (p,) in rows}

    def named_persons(self) -> list[tuple[int, str]]:
        """(id, name) of every named person, by id."""
        rows = self.conn.execute("SELECT id, name FROM persons WHERE name IS NOT NULL ORDER BY id")
        return [(int(p), str(n)) for p, n in rows]
