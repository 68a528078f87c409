"""Persons, and what binds faces to them: clusterings, recognition, pins and rejections."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from photocluster.core.errors import ConcurrentChangeError
from photocluster.store.connection import Database, bump_generation, chunks, marks, path_from_key, read_generation

# How many persons a clustering emptied each face remembers (the latest), see Persons.retired.
RETIRED_PER_FACE = 4


class Persons(Database):
    """The ``persons``, ``pins`` and ``rejections`` tables, and ``faces.person_id``."""

    def person_names(self) -> dict[int, str | None]:
        return {int(i): n for i, n in self.conn.execute("SELECT id, name FROM persons")}

    def person_summaries(self) -> list[tuple[int | None, str | None, int, int, Path | None, bool]]:
        """(person id, name, faces, photos, an example photo, ignored) per person of the
        present photos, largest first, the unknown group (id None) last; one query, so a
        million faces cost no more than their counts (read from the index on person and
        photo; the example is the person's first photo scanned). A person the user named
        or corrected stays listed when none of its faces is present (0 faces, no
        example): a correction never disappears without a trace."""
        with self.snapshot():
            # Most libraries have every photo present: the faces are then counted without
            # looking each one's photo up. A named person without a face present is found
            # through its own faces (the index on person), not by listing every face's
            # person: a million faces with a third of 11,765 persons named, 0.17-0.25 s
            # against 0.61-0.69 s.
            (some_absent,) = self.conn.execute("SELECT EXISTS (SELECT 1 FROM photos WHERE status != 'done')").fetchone()
            present = "WHERE photo_id NOT IN (SELECT id FROM photos WHERE status != 'done')" if some_absent else ""
            rows = self.conn.execute(
                f"""
                SELECT * FROM (
                    SELECT counts.pid, persons.name, counts.n, counts.photos, photos.path,
                           COALESCE(persons.ignored, 0)
                    FROM (
                        SELECT person_id AS pid, COUNT(*) AS n, COUNT(DISTINCT photo_id) AS photos,
                               MIN(photo_id) AS first
                        FROM faces {present}
                        GROUP BY person_id
                    ) AS counts
                    JOIN photos ON photos.id = counts.first
                    LEFT JOIN persons ON persons.id = counts.pid
                    UNION ALL
                    SELECT id, name, 0, 0, NULL, ignored FROM persons
                    WHERE (name IS NOT NULL OR curated = 1) AND NOT EXISTS (
                        SELECT 1 FROM faces JOIN photos ON photos.id = faces.photo_id
                        WHERE faces.person_id = persons.id AND photos.status = 'done'
                    )
                )
                ORDER BY pid IS NULL, n DESC, pid
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

    def names_of(self, person_ids: Iterable[int]) -> dict[int, str | None]:
        """person id -> name, for the given persons that exist."""
        ids = sorted(set(person_ids))
        out: dict[int, str | None] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(f"SELECT id, name FROM persons WHERE id IN ({marks(chunk)})", chunk)
            out.update((int(i), n) for i, n in rows)
        return out

    def corrected_faces(self, face_ids: Iterable[int]) -> set[int]:
        """The faces among ``face_ids`` that the user pinned to a person or took out of one."""
        ids = sorted(set(face_ids))
        out: set[int] = set()
        for chunk in chunks(ids):
            for table in ("pins", "rejections"):
                rows = self.conn.execute(f"SELECT face_id FROM {table} WHERE face_id IN ({marks(chunk)})", chunk)
                out.update(int(f) for (f,) in rows)
        return out

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

    def retired(self) -> dict[int, list[int]]:
        """Face id -> the persons (latest first) that a clustering emptied while the face was
        theirs, and that do not exist now: a later run that finds those faces together again
        gives them back that id (:func:`~photocluster.grouping.identity.assign_persons`)."""
        rows = self.conn.execute(
            "SELECT face_id, person_id FROM retired WHERE person_id NOT IN (SELECT id FROM persons) "
            "ORDER BY face_id, at DESC, person_id"
        )
        out: dict[int, list[int]] = {}
        for f, p in rows:
            out.setdefault(int(f), []).append(int(p))
        return out

    def apply_clustering(
        self,
        assignment: dict[int, int | None],
        new_persons: Sequence[int],
        settings: dict[str, str],
        generation: int | None = None,
        revived: Sequence[int] = (),
    ) -> dict[int, int]:
        """Persist a clustering: ``assignment`` maps face id -> person id or a placeholder.

        Placeholders are the negative numbers in ``new_persons``; each gets a fresh person
        id. ``revived`` are ids of persons an earlier clustering emptied (:meth:`retired`)
        that the assignment gives back to their faces: they exist again. Faces not in
        ``assignment`` keep their person: those of missing photos, and those a scan added
        since the assignment was computed. Persons left without any face are deleted,
        unless the user named, ignored or corrected them; their faces remember them
        (:meth:`retired`). Returns placeholder -> new person id.

        ``generation`` is :meth:`generation` as of the snapshot the assignment was computed
        from: when who is whom changed since (a correction, another clustering, recognition),
        nothing is written and :class:`ConcurrentChangeError` is raised. So it is too when
        the assignment takes a face away from the person it is pinned to (a person named
        meanwhile: naming pins its faces without changing the generation).
        """
        now = time.time()
        with self.transaction() as conn:
            _check_generation(conn, generation, "clustering")
            _check_pins(conn, assignment)
            created = {}
            for placeholder in new_persons:
                cur = conn.execute("INSERT INTO persons(name, created_at) VALUES (NULL, ?)", (now,))
                created[placeholder] = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT OR IGNORE INTO persons(id, name, created_at) VALUES (?, NULL, ?)", [(p, now) for p in revived]
            )
            for chunk in chunks(sorted(revived)):
                conn.execute(f"DELETE FROM retired WHERE person_id IN ({marks(chunk)})", chunk)
            # Only the faces whose person changes are written: a re-run that moves a few
            # faces rewrites a few rows, not the whole table (each row holds an embedding).
            current = _persons_of(conn, assignment)
            conn.executemany(
                "UPDATE faces SET person_id = ? WHERE id = ?",
                (
                    (target, f)
                    for f, p in assignment.items()
                    if f in current and current[f] != (target := None if p is None else created.get(p, p))
                ),
            )
            emptied = {
                int(i)
                for (i,) in conn.execute(
                    # A look-up in the persons' index each: not a pass over a million faces.
                    "SELECT id FROM persons WHERE name IS NULL AND ignored = 0 AND curated = 0 "
                    "AND NOT EXISTS (SELECT 1 FROM faces WHERE faces.person_id = persons.id) "
                    "AND id NOT IN (SELECT person_id FROM pins)"
                )
            }
            if emptied:
                conn.executemany(
                    "INSERT OR REPLACE INTO retired(face_id, person_id, at) VALUES (?, ?, ?)",
                    [(f, p, now) for f, p in current.items() if p in emptied],
                )
                for chunk in chunks(sorted(emptied)):
                    conn.execute(f"DELETE FROM persons WHERE id IN ({marks(chunk)})", chunk)
                # A face remembers the last few persons it lost, not every exploratory run.
                conn.execute(
                    "DELETE FROM retired WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() OVER "
                    "(PARTITION BY face_id ORDER BY at DESC, person_id DESC) AS k FROM retired) WHERE k > ?)",
                    (RETIRED_PER_FACE,),
                )
            self.set_settings(conn, settings)
            bump_generation(conn)
        return created

    def assign_faces(
        self, assignment: Mapping[int, int], settings: dict[str, str], generation: int | None = None
    ) -> None:
        """Put faces (face id -> person id) in existing persons and save ``settings``, in one
        transaction: recognition's watermark moves only with the faces it assigned.

        Only faces still in no person are written (one a correction placed meanwhile stays
        where the user put it). ``generation`` as in :meth:`apply_clustering`."""
        with self.transaction() as conn:
            _check_generation(conn, generation, "recognition")
            conn.executemany(
                "UPDATE faces SET person_id = ? WHERE id = ? AND person_id IS NULL",
                [(p, f) for f, p in assignment.items()],
            )
            self.set_settings(conn, settings)
            if assignment:
                bump_generation(conn)


def _check_pins(conn: sqlite3.Connection, assignment: Mapping[int, int | None]) -> None:
    """Inside the write transaction: refuse an assignment that takes a pinned face (a
    person's anchor) away from its person. A clustering keeps the pins it read; one
    added since (a name given meanwhile) may not be kept, and the grouping runs again."""
    for f, p in conn.execute("SELECT face_id, person_id FROM pins"):
        if f in assignment and assignment[f] != p:
            raise ConcurrentChangeError(
                f"person {p} was named or corrected while the clustering was computed; nothing was written"
            )


def _check_generation(conn: sqlite3.Connection, expected: int | None, what: str) -> None:
    """Inside the write transaction: refuse a result computed before the persons changed."""
    if expected is not None and read_generation(conn) != expected:
        raise ConcurrentChangeError(
            f"the persons changed while the {what} was computed (a correction, or another run); nothing was written"
        )


# Above this many faces an assignment reads every face's person in one pass; below, only
# its own faces' (an incremental run places thousands of faces in a library of millions).
_READ_ALL_ABOVE = 200_000


def _persons_of(conn: sqlite3.Connection, assignment: Mapping[int, object]) -> dict[int, int | None]:
    """Face id -> its stored person id, for the faces of ``assignment`` (and maybe more).

    A person the assignment empties had only faces of the assignment, so these are all
    the faces that can say who they were in it."""
    if len(assignment) > _READ_ALL_ABOVE:
        return dict(conn.execute("SELECT id, person_id FROM faces"))
    current: dict[int, int | None] = {}
    for chunk in chunks(sorted(assignment)):
        current.update(conn.execute(f"SELECT id, person_id FROM faces WHERE id IN ({marks(chunk)})", chunk))
    return current
