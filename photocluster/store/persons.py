"""Persons, and what binds faces to them: clusterings, recognition, pins and rejections."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from photocluster.store.connection import Database, path_from_key


class Persons(Database):
    """The ``persons``, ``pins`` and ``rejections`` tables, and ``faces.person_id``."""

    def person_names(self) -> dict[int, str | None]:
        return {int(i): n for i, n in self.conn.execute("SELECT id, name FROM persons")}

    def person_summaries(self) -> list[tuple[int | None, str | None, int, int, Path | None, bool]]:
        """(person id, name, faces, photos, an example photo, ignored) per person of the
        present photos, largest first, the unknown group (id None) last; one query, so a
        million faces cost no more than their counts."""
        rows = self.conn.execute(
            """
            SELECT faces.person_id, persons.name, COUNT(*), COUNT(DISTINCT faces.photo_id),
                   MIN(photos.path), COALESCE(persons.ignored, 0)
            FROM faces JOIN photos ON photos.id = faces.photo_id
            LEFT JOIN persons ON persons.id = faces.person_id
            WHERE photos.status = 'done'
            GROUP BY faces.person_id
            ORDER BY faces.person_id IS NULL, COUNT(*) DESC, faces.person_id
            """
        ).fetchall()
        return [
            (
                None if pid is None else int(pid),
                name,
                int(nf),
                int(np_),
                None if ex is None else path_from_key(bytes(ex)),
                bool(ig),
            )
            for pid, name, nf, np_, ex, ig in rows
        ]

    def ignored_persons(self) -> set[int]:
        return {int(i) for (i,) in self.conn.execute("SELECT id FROM persons WHERE ignored = 1")}

    def pins(self) -> dict[int, int]:
        """face id -> person id the user put it in."""
        return {int(f): int(p) for f, p in self.conn.execute("SELECT face_id, person_id FROM pins")}

    def rejections(self) -> list[tuple[int, int]]:
        """(face id, person id) pairs the user separated."""
        return [(int(f), int(p)) for f, p in self.conn.execute("SELECT face_id, person_id FROM rejections")]

    def person_exists(self, person_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is not None

    def persons_named(self, name: str) -> list[int]:
        rows = self.conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE ORDER BY id", (name,))
        return [int(i) for (i,) in rows]

    def person_face_ids(self, person_id: int) -> list[int]:
        rows = self.conn.execute("SELECT id FROM faces WHERE person_id = ? ORDER BY id", (person_id,))
        return [int(i) for (i,) in rows]

    def create_person(self, conn: sqlite3.Connection, name: str | None = None) -> int:
        cur = conn.execute("INSERT INTO persons(name, created_at) VALUES (?, ?)", (name, time.time()))
        return int(cur.lastrowid or 0)

    def apply_clustering(
        self, assignment: dict[int, int | None], new_persons: Sequence[int], settings: dict[str, str]
    ) -> dict[int, int]:
        """Persist a clustering: ``assignment`` maps face id -> person id or a placeholder.

        Placeholders are the negative numbers in ``new_persons``; each gets a fresh person
        id. Faces not in ``assignment`` keep their person: those of missing photos, and
        those a scan added since the assignment was computed. Unnamed persons left without any
        face are deleted; named ones are kept. Returns placeholder -> new person id.
        """
        now = time.time()
        with self.transaction() as conn:
            created = {}
            for placeholder in new_persons:
                cur = conn.execute("INSERT INTO persons(name, created_at) VALUES (NULL, ?)", (now,))
                created[placeholder] = int(cur.lastrowid or 0)
            # Only the faces whose person changes are written: a re-run that moves a few
            # faces rewrites a few rows, not the whole table (each row holds an embedding).
            current = dict(conn.execute("SELECT id, person_id FROM faces"))
            conn.executemany(
                "UPDATE faces SET person_id = ? WHERE id = ?",
                (
                    (target, f)
                    for f, p in assignment.items()
                    if f in current and current[f] != (target := None if p is None else created.get(p, p))
                ),
            )
            conn.execute(
                "DELETE FROM persons WHERE name IS NULL AND ignored = 0 "
                "AND id NOT IN (SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL) "
                "AND id NOT IN (SELECT person_id FROM pins)"
            )
            self.set_settings(conn, settings)
        return created

    def assign_faces(self, assignment: Mapping[int, int], settings: dict[str, str]) -> None:
        """Put faces (face id -> person id) in existing persons and save ``settings``, in one
        transaction: recognition's watermark moves only with the faces it assigned."""
        with self.transaction() as conn:
            conn.executemany("UPDATE faces SET person_id = ? WHERE id = ?", [(p, f) for f, p in assignment.items()])
            self.set_settings(conn, settings)
