"""Faces: boxes, landmarks and embeddings of every photo, and which person each is in."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.errors import DatabaseError
from photocluster.core.types import EMBEDDING_DIM, Box, Face
from photocluster.store.connection import Database, chunks, f32_blob, marks, path_from_key, path_key

# Rows fetched at a time when filling the face arrays.
_FETCH = 16384

# The whole faces table is read a few thousand rows per query, each column of them as one
# value: the ids as text, the descriptors' blobs concatenated (taken as text, whose bytes
# SQLite copies as they are in a UTF-8 database). A row at a time, Python builds five
# objects a face and numpy copies them out again: 1.6-1.9 s at a million faces against
# 0.8-1.1 s (the same arrays), for a read every `clusters` run makes.
_PACK = 8192
_PACKED = (
    "SELECT count(*), max(id), group_concat(id), group_concat(photo_id), group_concat(coalesce(person_id, -1)), "
    "group_concat(confidence < ?, ''), CAST(group_concat(embedding, '') AS BLOB) "
    "FROM (SELECT id, photo_id, person_id, confidence, embedding FROM faces "
    "WHERE id >= ? AND id < ? ORDER BY id LIMIT ?)"
)


def _integers(text: str, count: int) -> np.ndarray:
    """The ``count`` comma-separated integers of ``text`` (int64)."""
    out = np.fromstring(text, dtype=np.int64, sep=",")
    if len(out) != count:
        raise DatabaseError(f"expected {count} integers, read {len(out)}")
    return out


def _in_present_photos(absent: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """``columns`` (one row per face; the faces' photo ids second) without the rows of the
    faces in ``absent`` photos."""
    present = ~np.isin(columns[1], absent)
    return columns if present.all() else tuple(column[present] for column in columns)


# Face ids below and above any there is (SQLite's integers are signed 64-bit).
_NO_ID = -(1 << 63)
_PAST_IDS = (1 << 63) - 1
# Faces from which a snapshot's second reader takes half of the read (a hundred thousand
# faces take a tenth of a second).
_SPLIT_FROM = 200_000


def _read_packed(
    conn: sqlite3.Connection,
    low_below: float,
    columns: tuple[np.ndarray, ...],
    k: int,
    end: int,
    start: int,
    stop: int,
) -> None:
    """Fill rows ``k:end`` of ``columns`` (ids, photo ids, person ids, low, embeddings)
    with the faces of ids ``start`` up to ``stop`` (excluded), :data:`_PACK` at a time."""
    ids, photo_ids, person_ids, low, emb = columns
    while k < end:
        m, last, *texts, flags, blob = conn.execute(_PACKED, (low_below, start, stop, _PACK)).fetchone()
        if m == 0 or k + m > end:
            raise DatabaseError(f"the faces table changed while it was read ({k + m} rows of {end})")
        at = slice(k, k + m)
        for out, text in zip((ids, photo_ids, person_ids), texts, strict=True):
            out[at] = _integers(text, m)
        low[at] = np.frombuffer(flags.encode("ascii"), dtype=np.uint8) == ord("1")
        if len(blob) != m * EMBEDDING_DIM * 4:
            raise DatabaseError(
                f"a face between ids {start} and {last} has a damaged descriptor "
                f"({len(blob)} bytes for {m} faces of {EMBEDDING_DIM * 4})"
            )
        emb[at] = np.frombuffer(blob, dtype="<f4").reshape(m, EMBEDDING_DIM)
        if np.any(ids[at][1:] <= ids[at][:-1]):
            # SQLite concatenates in the order the subquery gives its rows (by id);
            # should it ever not, the columns still agree row for row.
            order = k + np.argsort(ids[at], kind="stable")
            for column in columns:
                column[at] = column[order]
        k, start = k + m, int(last) + 1


@dataclass(frozen=True)
class StoredFace:
    """A face row with what clustering and export need of its photo."""

    id: int
    photo_id: int
    photo_path: Path
    box: Box
    confidence: float
    person_id: int | None


def insert_faces(conn: sqlite3.Connection, photo_id: int, faces: Sequence[Face]) -> None:
    conn.executemany(
        """
        INSERT INTO faces(photo_id, left, top, right, bottom, confidence, landmarks, embedding)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            (
                photo_id,
                f.box.left,
                f.box.top,
                f.box.right,
                f.box.bottom,
                f.confidence,
                f32_blob(f.landmarks),
                f32_blob(f.embedding),
            )
            for f in faces
        ],
    )


def insert_face(conn: sqlite3.Connection, photo_id: int, face: Face) -> int:
    """:func:`insert_faces` of one face; returns its id."""
    insert_faces(conn, photo_id, [face])
    return int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])


def update_face(conn: sqlite3.Connection, face_id: int, face: Face) -> None:
    """A face found again: new box, landmarks and descriptor; same id, person, pins,
    rejections. Its thumbnail showed the old box: it goes."""
    conn.execute("DELETE FROM face_thumbs WHERE face_id = ?", (face_id,))
    conn.execute(
        "UPDATE faces SET left = ?, top = ?, right = ?, bottom = ?, confidence = ?, landmarks = ?, embedding = ? "
        "WHERE id = ?",
        (
            face.box.left,
            face.box.top,
            face.box.right,
            face.box.bottom,
            face.confidence,
            f32_blob(face.landmarks),
            f32_blob(face.embedding),
            face_id,
        ),
    )


class Faces(Database):
    """The ``faces`` table, read one face at a time or as arrays for clustering."""

    def _face_arrays(self, where: str, params: Sequence[Any] = ()) -> tuple[np.ndarray, ...]:
        """(face ids, photo ids, person ids (-1: none), embeddings (n, 128) float32) of the
        faces of present photos that match ``where``, by face id, in one snapshot."""
        ids, photo_ids, person_ids, _, emb = self._face_rows(where, params)
        return ids, photo_ids, person_ids, emb

    def _face_rows(self, where: str, params: Sequence[Any] = ()) -> tuple[np.ndarray, ...]:
        """:meth:`_face_arrays` with the detector confidences (float32) before the embeddings."""
        with self.snapshot():
            # The faces in their table's order, the absent photos on the side (most
            # libraries have few): a join looks each face's photo up and sorts the rows
            # again (4x the time at 1M faces).
            absent = self._absent_photos()
            (count,) = self.conn.execute(f"SELECT count(*) FROM faces WHERE ({where})", params).fetchone()
            # Filled in place, a chunk of rows at a time: a million faces never exist as a
            # million Python objects, and the embeddings are held once (512 MB at 1M).
            ids = np.empty(count, dtype=np.int64)
            photo_ids = np.empty(count, dtype=np.int64)
            person_ids = np.empty(count, dtype=np.int64)
            confidence = np.empty(count, dtype=np.float32)
            emb = np.empty((count, EMBEDDING_DIM), dtype=np.float32)
            cursor = self.conn.execute(
                "SELECT id, photo_id, coalesce(person_id, -1), confidence, embedding FROM faces "
                f"WHERE ({where}) ORDER BY id",
                params,
            )
            k = 0
            # A column at a time through itemgetter and fromiter: transposing the rows with
            # zip and assigning tuples took three times the read itself (3.0 s against 1.2 s
            # at a million faces).
            column = [itemgetter(c) for c in range(5)]
            while rows := cursor.fetchmany(_FETCH):
                m = len(rows)
                ids[k : k + m] = np.fromiter(map(column[0], rows), dtype=np.int64, count=m)
                photo_ids[k : k + m] = np.fromiter(map(column[1], rows), dtype=np.int64, count=m)
                person_ids[k : k + m] = np.fromiter(map(column[2], rows), dtype=np.int64, count=m)
                confidence[k : k + m] = np.fromiter(map(column[3], rows), dtype=np.float32, count=m)
                blob = b"".join(map(column[4], rows))
                emb[k : k + m] = np.frombuffer(blob, dtype="<f4").reshape(m, EMBEDDING_DIM)
                k += m
        return _in_present_photos(absent, ids, photo_ids, person_ids, confidence, emb)

    def active_faces(self) -> tuple[np.ndarray, ...]:
        """(face ids, photo ids, person ids (-1: none), embeddings (n, 128) float32) of
        faces in present photos, by face id."""
        ids, photo_ids, person_ids, _, emb = self.active_face_rows(0.0)
        return ids, photo_ids, person_ids, emb

    def active_face_rows(self, low_below: float) -> tuple[np.ndarray, ...]:
        """(face ids, photo ids, person ids (-1: none), low, embeddings (n, 128) float32)
        of faces in present photos, by face id, in one read; ``low`` (bool) marks the faces
        whose detector confidence is under ``low_below``. In a snapshot with a reader of
        the same state (``snapshot(readers=1)``), a large library's upper half of face ids
        is read on a second thread by that reader."""
        with self.snapshot():
            (encoding,) = self.conn.execute("PRAGMA encoding").fetchone()
            if encoding != "UTF-8":  # the packed read below takes the blobs' bytes as text
                ids, photo_ids, person_ids, confidence, emb = self._face_rows("1")
                return ids, photo_ids, person_ids, confidence.astype(np.float64) < low_below, emb
            absent = self._absent_photos()
            (count,) = self.conn.execute("SELECT count(*) FROM faces").fetchone()
            columns = (
                np.empty(count, dtype=np.int64),  # ids
                np.empty(count, dtype=np.int64),  # photo ids
                np.empty(count, dtype=np.int64),  # person ids
                np.empty(count, dtype=bool),  # low
                np.empty((count, EMBEDDING_DIM), dtype=np.float32),
            )
            if count < _SPLIT_FROM or not self.readers:
                _read_packed(self.conn, low_below, columns, 0, count, _NO_ID, _PAST_IDS)
            else:
                # SQLite reads the rows with Python's lock released: the two halves read
                # on two threads take 0.77 s at a million faces, against 1.05 s one after
                # the other (medians of six).
                lo, hi = self.conn.execute("SELECT min(id), max(id) FROM faces").fetchone()
                middle = int(lo) + (int(hi) - int(lo)) // 2 + 1
                (below,) = self.conn.execute("SELECT count(*) FROM faces WHERE id < ?", (middle,)).fetchone()
                with ThreadPoolExecutor(1) as pool:
                    upper = pool.submit(
                        _read_packed, self.readers[0], low_below, columns, below, count, middle, _PAST_IDS
                    )
                    _read_packed(self.conn, low_below, columns, 0, below, _NO_ID, middle)
                    upper.result()
        return _in_present_photos(absent, *columns)

    def _absent_photos(self) -> np.ndarray:
        rows = self.conn.execute("SELECT id FROM photos WHERE status != 'done' ORDER BY id")
        return np.array([r for (r,) in rows], dtype=np.int64)

    def active_confidences(self) -> np.ndarray:
        """Detector confidence (float32) of each face of present photos, by face id: the same
        rows, in the same order, as :meth:`active_faces` in the same snapshot."""
        rows = self.conn.execute(
            "SELECT faces.confidence FROM faces JOIN photos ON photos.id = faces.photo_id "
            "WHERE photos.status = 'done' ORDER BY faces.id"
        )
        return np.fromiter((r[0] for r in rows), dtype=np.float32)

    def active_embeddings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, photo ids, embeddings (n, 128) float32) of faces in present photos, by face id."""
        ids, photo_ids, _, emb = self.active_faces()
        return ids, photo_ids, emb

    def named_faces(self) -> tuple[np.ndarray, np.ndarray]:
        """(person ids, embeddings) of the faces of named persons that are not ignored."""
        _, _, person_ids, emb = self._face_arrays(
            "faces.person_id IN (SELECT id FROM persons WHERE name IS NOT NULL AND ignored = 0)"
        )
        return person_ids, emb

    def loose_faces(self, after_face: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, photo ids, embeddings) of faces in no person with an id above ``after_face``."""
        ids, photo_ids, _, emb = self._face_arrays("faces.person_id IS NULL AND faces.id > ?", (after_face,))
        return ids, photo_ids, emb

    def max_face_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0])

    def face_count(self, path: Path) -> int:
        row = self.conn.execute(
            "SELECT COUNT(faces.id) FROM photos LEFT JOIN faces ON faces.photo_id = photos.id WHERE photos.path = ?",
            (path_key(path),),
        ).fetchone()
        return int(row[0])

    def photo_persons(self) -> tuple[np.ndarray, np.ndarray]:
        """(photo ids, person ids) of every face of a present photo that is in a person, by
        photo: which persons appear together (no embeddings read)."""
        rows = self.conn.execute(
            "SELECT faces.photo_id, faces.person_id FROM faces JOIN photos ON photos.id = faces.photo_id "
            "WHERE photos.status = 'done' AND faces.person_id IS NOT NULL ORDER BY faces.photo_id"
        )
        pairs = np.fromiter((v for row in rows for v in row), dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def persons_in_photos(self, photo_ids: Iterable[int]) -> set[tuple[int, int]]:
        """(photo id, person id) for every face with a person in the given photos."""
        out: set[tuple[int, int]] = set()
        for chunk in chunks(sorted(set(photo_ids))):
            out |= set(
                self.conn.execute(
                    "SELECT photo_id, person_id FROM faces "
                    f"WHERE person_id IS NOT NULL AND photo_id IN ({marks(chunk)})",
                    chunk,
                )
            )
        return out

    def face_persons(self) -> dict[int, int]:
        """Current face id -> person id, for faces that have a person."""
        return {
            int(f): int(p) for f, p in self.conn.execute("SELECT id, person_id FROM faces WHERE person_id IS NOT NULL")
        }

    def face_row(self, face_id: int) -> tuple[int, int | None] | None:
        """(photo id, person id) of a face, or None when there is no such face."""
        row = self.conn.execute("SELECT photo_id, person_id FROM faces WHERE id = ?", (face_id,)).fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else int(row[1]))

    def faces(self) -> list[tuple[StoredFace, np.ndarray]]:
        """Every face of present photos with its embedding, ordered by person then face id."""
        rows = self.conn.execute(
            """
            SELECT faces.id, faces.photo_id, photos.path, faces.left, faces.top, faces.right,
                   faces.bottom, faces.confidence, faces.person_id, faces.embedding
            FROM faces JOIN photos ON photos.id = faces.photo_id
            WHERE photos.status = 'done'
            ORDER BY faces.person_id IS NULL, faces.person_id, faces.id
            """
        ).fetchall()
        out = []
        for fid, pid, key, left, top, right, bottom, conf, person, emb in rows:
            face = StoredFace(
                id=int(fid),
                photo_id=int(pid),
                photo_path=path_from_key(bytes(key)),
                box=Box(left, top, right, bottom),
                confidence=float(conf),
                person_id=None if person is None else int(person),
            )
            out.append((face, np.frombuffer(emb, dtype="<f4").astype(np.float32)))
        return out

    def photo_faces(self, photo_id: int) -> list[Face]:
        rows = self.conn.execute(
            "SELECT id, left, top, right, bottom, confidence, landmarks, embedding, person_id "
            "FROM faces WHERE photo_id = ? ORDER BY id",
            (photo_id,),
        ).fetchall()
        return [
            Face(
                box=Box(left, top, right, bottom),
                confidence=conf,
                landmarks=np.frombuffer(lm, dtype="<f4").reshape(5, 2),
                embedding=np.frombuffer(emb, dtype="<f4"),
                id=fid,
                photo_id=photo_id,
                person_id=person,
            )
            for fid, left, top, right, bottom, conf, lm, emb, person in rows
        ]
