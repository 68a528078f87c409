"""The user's corrections: each one a transaction logged with the rows it may change, so
that undo can put them back.

Pins (this face is this person) and rejections (this face is never this person) are
what make a correction outlive re-clustering; see :mod:`photocluster.app.recluster`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from photocluster.core.ages import photo_day
from photocluster.store.connection import Database, bump_generation, chunks, marks


def _rows(conn: sqlite3.Connection, sql: str, ids: Sequence[int]) -> list[list[Any]]:
    """The rows of ``sql`` (with an ``IN ({marks})``) for every id, a chunk of ids at a time."""
    out: list[list[Any]] = []
    for chunk in chunks(ids):
        out.extend(list(r) for r in conn.execute(sql.format(marks=marks(chunk)), chunk))
    return out


def _before(conn: sqlite3.Connection, person_ids: Iterable[int], face_ids: Iterable[int]) -> dict[str, Any]:
    pids = sorted(set(person_ids))
    fids = sorted(set(face_ids))
    return {
        "person_ids": pids,
        "face_ids": fids,
        "persons": _rows(
            conn,
            "SELECT id, name, created_at, ignored, curated, born, cover_face_id FROM persons WHERE id IN ({marks})",
            pids,
        ),
        "assignments": _rows(conn, "SELECT id, person_id FROM faces WHERE id IN ({marks})", fids),
        "pins": _rows(conn, "SELECT face_id, person_id FROM pins WHERE face_id IN ({marks})", fids)
        + _rows(conn, "SELECT face_id, person_id FROM pins WHERE person_id IN ({marks})", pids),
        "rejections": _rows(conn, "SELECT face_id, person_id FROM rejections WHERE face_id IN ({marks})", fids),
    }


@contextmanager
def _logged(
    conn: sqlite3.Connection, command: str, person_ids: Iterable[int], face_ids: Iterable[int], *, regroups: bool = True
) -> Iterator[dict[str, Any]]:
    """Inside a transaction: the body's changes, logged with the rows as they were before.
    When they change who is whom (``regroups``: all but a rename), the generation is
    bumped, so that a clustering or recognition computed meanwhile is not written over them.

    The body gets the record to log: rows it creates (a person: append its id to
    ``person_ids``; a face: to ``face_ids`` and ``added_faces``) are gone again after undo."""
    before = _before(conn, person_ids, face_ids)
    yield before
    conn.execute(
        "INSERT INTO corrections(at, command, before) VALUES (?, ?, ?)",
        (time.time(), command, json.dumps(before)),
    )
    if regroups:
        bump_generation(conn)


def _face_ids_of(conn: sqlite3.Connection, person_ids: Sequence[int]) -> list[int]:
    """The faces of each person in turn, by face id."""
    return [
        int(f)
        for p in person_ids
        for (f,) in conn.execute("SELECT id FROM faces WHERE person_id = ? ORDER BY id", (p,))
    ]


def _restore(conn: sqlite3.Connection, before: dict[str, Any]) -> None:
    """Put back the rows a correction logged, dropping what it added since."""
    pids, fids = before["person_ids"], before["face_ids"]
    # Faces the correction added (drawn by the user) did not exist before it: they go.
    conn.executemany("DELETE FROM faces WHERE id = ?", [(f,) for f in before.get("added_faces", [])])
    for chunk in chunks(fids):
        conn.execute(f"DELETE FROM pins WHERE face_id IN ({marks(chunk)})", chunk)
        conn.execute(f"DELETE FROM rejections WHERE face_id IN ({marks(chunk)})", chunk)
    for chunk in chunks(pids):
        conn.execute(f"DELETE FROM pins WHERE person_id IN ({marks(chunk)})", chunk)
    existing = {p for p in pids if conn.execute("SELECT 1 FROM persons WHERE id = ?", (p,)).fetchone()}
    for pid, name, created, ignored, *rest in before["persons"]:
        # Logged before schema 3, a row has no `curated`: the person stays as curated as it is.
        curated = rest[0] if rest else None
        if pid in existing:
            conn.execute(
                "UPDATE persons SET name = ?, ignored = ?, curated = coalesce(?, curated) WHERE id = ?",
                (name, ignored, curated, pid),
            )
        else:
            conn.execute(
                "INSERT INTO persons(id, name, created_at, ignored, curated) VALUES (?, ?, ?, ?, ?)",
                (pid, name, created, ignored, curated or 0),
            )
        # Logged before schema 6, a row has no `born`: the birth date stays as it is.
        if len(rest) > 1:
            conn.execute("UPDATE persons SET born = ? WHERE id = ?", (rest[1], pid))
        # Logged before schema 7 (curation), no cover chosen by the user: the cover stays as it is.
        if len(rest) > 2:
            conn.execute(
                "UPDATE persons SET cover_face_id = (SELECT id FROM faces WHERE id = ?) WHERE id = ?", (rest[2], pid)
            )
    # Persons the correction created did not exist before it: they go.
    snap_ids = {p[0] for p in before["persons"]}
    for pid in pids:
        if pid not in snap_ids:
            conn.execute("UPDATE faces SET person_id = NULL WHERE person_id = ?", (pid,))
            conn.execute("DELETE FROM persons WHERE id = ?", (pid,))
    # A face a re-scan lost since (or a person gone for good) has nothing left to restore:
    # the rows that still exist are put back, and the undo does not fail on the others.
    conn.executemany(
        "UPDATE faces SET person_id = ?1 WHERE id = ?2 AND (?1 IS NULL OR ?1 IN (SELECT id FROM persons))",
        [(p, f) for f, p in before["assignments"]],
    )
    for table, verb in (("pins", "INSERT OR REPLACE"), ("rejections", "INSERT OR IGNORE")):
        conn.executemany(
            f"{verb} INTO {table}(face_id, person_id) SELECT ?1, ?2 "
            "WHERE ?1 IN (SELECT id FROM faces) AND ?2 IN (SELECT id FROM persons)",
            before[table],
        )


def _blockers(conn: sqlite3.Connection, correction_id: int) -> list[tuple[int, str]]:
    row = conn.execute("SELECT before FROM corrections WHERE id = ?", (correction_id,)).fetchone()
    if row is None:
        return []
    mine = json.loads(row[0])
    persons, faces = set(mine["person_ids"]), set(mine["face_ids"])
    later = conn.execute(
        "SELECT id, command, before FROM corrections WHERE id > ? AND undone = 0 ORDER BY id", (correction_id,)
    )
    out = []
    for cid, command, before in later:
        theirs = json.loads(before)
        if persons.intersection(theirs["person_ids"]) or faces.intersection(theirs["face_ids"]):
            out.append((int(cid), str(command)))
    return out


def _anchor(conn: sqlite3.Connection, person_id: int, faces: Sequence[int]) -> None:
    """Pin ``faces`` to the person (its anchor): every later clustering keeps them in it."""
    pinned = [(f, person_id) for f in faces]
    conn.executemany("INSERT OR REPLACE INTO pins(face_id, person_id) VALUES (?, ?)", pinned)
    conn.executemany("DELETE FROM rejections WHERE face_id = ? AND person_id = ?", pinned)


# For the other families of corrections (store.curation): a correction logged for undo, and
# the faces of persons read under the write lock.
logged = _logged
face_ids_of = _face_ids_of


class Corrections(Database):
    """The ``corrections`` log, and the corrections themselves. Each named correction
    takes ``command``, the text that ``history`` shows and ``undo`` returns."""

    @contextmanager
    def correction(
        self, command: str, person_ids: Iterable[int], face_ids: Iterable[int], *, regroups: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """One user correction, atomically, remembering the rows it may change so that
        :meth:`undo` can put them back. ``person_ids``/``face_ids`` must cover every row touched."""
        with self.transaction() as conn, _logged(conn, command, person_ids, face_ids, regroups=regroups):
            yield conn

    def rename_person(self, person_id: int, name: str, *, command: str) -> None:
        """Name the person, and pin its faces to it: the faces it has when named are its
        anchor, which no later clustering takes from it (a narrow ``--min-size``, a loose
        ``--threshold``); only the user's move or remove does.

        The generation stays: a clustering computed meanwhile is written unless it takes
        one of these faces away (then it groups again, see ``apply_clustering``), so naming
        persons during a long `clusters` usually costs nothing."""
        with self.transaction() as conn:
            faces = _face_ids_of(conn, [person_id])
            with _logged(conn, command, [person_id], faces, regroups=False):
                conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, person_id))
                _anchor(conn, person_id, faces)

    def merge_persons(self, target: int, sources: Sequence[int], *, command: str) -> int:
        """Every face of ``target`` and ``sources`` becomes ``target``'s, pinned there; the
        sources go. An unnamed target takes the first name among the sources. Returns the
        number of faces pinned."""
        everyone = [target, *sources]
        with self.transaction() as conn:
            # Read under the write lock: a clustering committed meanwhile cannot slip a
            # face out of the merge, or out of what undo puts back.
            faces = _face_ids_of(conn, everyone)
            with _logged(conn, command, everyone, faces):
                names = {
                    int(i): n for i, n in _rows(conn, "SELECT id, name FROM persons WHERE id IN ({marks})", everyone)
                }
                if not names.get(target):
                    inherited = next((names[s] for s in sources if names.get(s)), None)
                    conn.execute("UPDATE persons SET name = ? WHERE id = ?", (inherited, target))
                for chunk in chunks(sources):
                    conn.execute(
                        f"UPDATE faces SET person_id = ? WHERE person_id IN ({marks(chunk)})", (target, *chunk)
                    )
                conn.execute("UPDATE persons SET curated = 1 WHERE id = ?", (target,))
                # A birth date is the person's, whichever part of the merge it was given to.
                conn.execute(
                    f"UPDATE persons SET born = (SELECT born FROM persons WHERE id IN ({marks(everyone)}) "
                    "AND born IS NOT NULL ORDER BY id = ? DESC LIMIT 1) WHERE id = ?",
                    (*everyone, target, target),
                )
                pinned = [(f, target) for f in faces]
                conn.executemany("INSERT OR REPLACE INTO pins(face_id, person_id) VALUES (?, ?)", pinned)
                conn.executemany("DELETE FROM rejections WHERE face_id = ? AND person_id = ?", pinned)
                for chunk in chunks(sources):
                    conn.execute(f"DELETE FROM persons WHERE id IN ({marks(chunk)})", chunk)
        return len(faces)

    def move_face(self, face_id: int, person_id: int, from_person: int | None, *, command: str) -> None:
        """The face is ``person_id``'s for good, and never again ``from_person``'s."""
        self.move_faces({face_id: from_person}, person_id, command=command)

    def move_faces(self, moves: Mapping[int, int | None], person_id: int, *, command: str) -> None:
        """Each face (of ``moves``: face id -> the person it leaves, or None) is ``person_id``'s
        for good, and never again the person it leaves: one correction, one transaction. The
        person they join is corrected: its faces as they are now, the moved ones included,
        are its anchor (pinned), so the faces join them rather than claiming the person."""
        persons = {person_id, *(p for p in moves.values() if p is not None)}
        with self.transaction() as conn:
            faces = _face_ids_of(conn, [person_id])
            with _logged(conn, command, persons, [*moves, *faces]):
                conn.execute("UPDATE persons SET curated = 1 WHERE id = ?", (person_id,))
                for face_id in moves:
                    conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person_id, face_id))
                _anchor(conn, person_id, [*faces, *moves])
                left = [(f, p) for f, p in moves.items() if p is not None]
                conn.executemany("INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)", left)

    def remove_face(self, face_id: int, from_person: int, *, command: str) -> None:
        """The face is in no person, and never again ``from_person``'s."""
        self.remove_faces({face_id: from_person}, command=command)

    def remove_faces(self, removals: Mapping[int, int], *, command: str) -> None:
        """Each face (of ``removals``: face id -> its person) is in no person, and never again
        that person's: one correction, one transaction."""
        with self.correction(command, set(removals.values()), removals) as conn:
            for face_id, from_person in removals.items():
                conn.execute("UPDATE faces SET person_id = NULL WHERE id = ?", (face_id,))
                conn.execute("DELETE FROM pins WHERE face_id = ?", (face_id,))
                conn.execute(
                    "INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)", (face_id, from_person)
                )

    def set_person_ignored(self, person_id: int, ignored: bool, *, command: str) -> int:
        """Flag a person (not) ignored and pin its faces to it; returns how many faces it has."""
        with self.transaction() as conn:
            faces = _face_ids_of(conn, [person_id])
            with _logged(conn, command, [person_id], faces):
                conn.execute("UPDATE persons SET ignored = ?, curated = 1 WHERE id = ?", (int(ignored), person_id))
                # Pinned, the strangers stay together, so the person (and its flag) survives
                # re-clustering.
                conn.executemany(
                    "INSERT OR IGNORE INTO pins(face_id, person_id) VALUES (?, ?)", [(f, person_id) for f in faces]
                )
        return len(faces)

    def set_birth(self, person_id: int, born: dt.date | None, *, command: str) -> list[int]:
        """Give the person a birth date (None: none). Its faces in photos taken before the
        birth leave it (and lose their pin to it), in the same correction: undo puts them
        back with the date as it was. Returns the faces taken out."""
        with self.transaction() as conn:
            early: list[int] = []
            if born is not None:
                rows = conn.execute(
                    "SELECT faces.id, photos.taken_at, photos.mtime_ns FROM faces "
                    "JOIN photos ON photos.id = faces.photo_id WHERE faces.person_id = ? ORDER BY faces.id",
                    (person_id,),
                )
                early = [int(f) for f, taken, mtime in rows if photo_day(taken, mtime) < born]
            with _logged(conn, command, [person_id], early):
                day = None if born is None else born.isoformat()
                conn.execute("UPDATE persons SET born = ?, curated = 1 WHERE id = ?", (day, person_id))
                for chunk in chunks(early):
                    conn.execute(f"UPDATE faces SET person_id = NULL WHERE id IN ({marks(chunk)})", chunk)
                    conn.execute(
                        f"DELETE FROM pins WHERE person_id = ? AND face_id IN ({marks(chunk)})", (person_id, *chunk)
                    )
        return early

    def keep_apart(self, a: int, b: int, *, command: str) -> int:
        """Persons ``a`` and ``b`` are two people: each face of one is never the other's (a
        rejection each way, which every later clustering keeps as cannot-links), and both
        are kept even if clustering empties them. Returns the number of faces concerned."""
        with self.transaction() as conn:
            faces_a = _face_ids_of(conn, [a])
            faces_b = _face_ids_of(conn, [b])
            with _logged(conn, command, [a, b], faces_a + faces_b):
                conn.executemany(
                    "INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)",
                    [(f, b) for f in faces_a] + [(f, a) for f in faces_b],
                )
                conn.execute("UPDATE persons SET curated = 1 WHERE id IN (?, ?)", (a, b))
        return len(faces_a) + len(faces_b)

    def kept_apart(self) -> set[tuple[int, int]]:
        """Pairs of persons (low id first) the user said are different: a face now in one was
        taken out of, or kept apart from, the other."""
        rows = self.conn.execute(
            "SELECT DISTINCT faces.person_id, rejections.person_id FROM rejections "
            "JOIN faces ON faces.id = rejections.face_id WHERE faces.person_id IS NOT NULL"
        )
        return {(min(p, q), max(p, q)) for p, q in rows if p != q}

    def undo(self, correction_id: int | None = None) -> str | None:
        """Revert correction ``correction_id`` (None: the latest one not yet undone); returns
        its command, or None when there is none to revert. A correction that is already
        undone, or that a later one (not undone) changed the same persons or faces after,
        is left as it is: :meth:`undo_blockers` says which."""
        args: tuple[int, ...]
        with self.transaction() as conn:
            if correction_id is None:
                sql, args = "SELECT id, command, before FROM corrections WHERE undone = 0 ORDER BY id DESC LIMIT 1", ()
            else:
                sql, args = "SELECT id, command, before FROM corrections WHERE undone = 0 AND id = ?", (correction_id,)
            row = conn.execute(sql, args).fetchone()
            if row is None or (correction_id is not None and _blockers(conn, correction_id)):
                return None
            cid, command, before = row
            _restore(conn, json.loads(before))
            conn.execute("UPDATE corrections SET undone = 1 WHERE id = ?", (cid,))
            bump_generation(conn)
            return str(command)

    def correction_entry(self, correction_id: int | None = None) -> tuple[int, float, str, bool] | None:
        """(id, at, command, undone) of correction ``correction_id``, or (None) of the one
        :meth:`undo` reverts next; None when there is no such correction."""
        args: tuple[int, ...]
        if correction_id is None:
            sql, args = "SELECT id, at, command, undone FROM corrections WHERE undone = 0 ORDER BY id DESC LIMIT 1", ()
        else:
            sql, args = "SELECT id, at, command, undone FROM corrections WHERE id = ?", (correction_id,)
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else (int(row[0]), float(row[1]), str(row[2]), bool(row[3]))

    def undo_blockers(self, correction_id: int) -> list[tuple[int, str]]:
        """(id, command) of the later corrections, not undone, that changed persons or faces
        that correction ``correction_id`` changed: undoing it first would put back rows
        they rely on."""
        return _blockers(self.conn, correction_id)

    def history_after(self, correction_id: int) -> list[tuple[int, float, str, bool]]:
        """(id, at, command, undone) of the corrections made after ``correction_id``, newest first."""
        rows = self.conn.execute(
            "SELECT id, at, command, undone FROM corrections WHERE id > ? ORDER BY id DESC", (correction_id,)
        ).fetchall()
        return [(int(i), float(at), str(c), bool(u)) for i, at, c, u in rows]

    def corrections_mark(self) -> str:
        """A mark that changes with every correction that changes who is whom (all but a
        rename), made or undone: a clustering stores it to tell when it is out of date."""
        count, last, undone = self.conn.execute(
            "SELECT count(*), coalesce(max(id), 0), coalesce(sum(undone), 0) FROM corrections "
            "WHERE command NOT LIKE 'name %'"
        ).fetchone()
        return f"{count}:{last}:{undone}"

    def history(self, limit: int = 50) -> list[tuple[int, float, str, bool]]:
        rows = self.conn.execute(
            "SELECT id, at, command, undone FROM corrections ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(int(i), float(at), str(c), bool(u)) for i, at, c, u in rows]
