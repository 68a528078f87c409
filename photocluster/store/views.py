"""Paged reads for the review pages and the review app: persons by size, one person's
faces, the unknown faces, one face. Each call returns at most one page of rows (or one
person's faces), so a view costs the same in a library of a thousand faces or a million.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.types import EMBEDDING_DIM, Box, Photo, person_label
from photocluster.store.connection import Database, chunks, marks, path_from_key
from photocluster.store.faces import StoredFace
from photocluster.store.photos import PHOTO_COLS, photo_of_row

# Rows fetched at a time when streaming every face.
_FETCH = 8192

_PHOTO = ", ".join(f"photos.{c.strip()}" for c in PHOTO_COLS.split(","))
_FACE_COLS = f"faces.id, faces.person_id, faces.left, faces.top, faces.right, faces.bottom, faces.confidence, {_PHOTO}"
_PRESENT = "FROM faces JOIN photos ON photos.id = faces.photo_id WHERE photos.status = 'done'"


@dataclass(frozen=True)
class PersonRow:
    """A person as the index lists it: counts over the faces of present photos."""

    id: int
    name: str | None
    faces: int
    photos: int
    ignored: bool

    @property
    def label(self) -> str:
        return person_label(self.id, self.name)


@dataclass(frozen=True)
class FaceRow:
    """A face with its photo (what a thumbnail and a photo entry need)."""

    id: int
    person_id: int | None
    box: Box
    confidence: float
    photo: Photo


def _face_row(row: Any) -> FaceRow:
    fid, person, left, top, right, bottom, conf = row[:7]
    photo = photo_of_row(row[7:])[0]
    return FaceRow(int(fid), None if person is None else int(person), Box(left, top, right, bottom), float(conf), photo)


def _person_filter(include_ignored: bool) -> str:
    return "" if include_ignored else "AND faces.person_id NOT IN (SELECT id FROM persons WHERE ignored = 1)"


class Views(Database):
    """Paged, read-only views over ``faces``, ``photos`` and ``persons``."""

    def person_count(self, include_ignored: bool = False) -> int:
        """Persons with at least one face in a present photo."""
        row = self.conn.execute(
            f"SELECT COUNT(DISTINCT faces.person_id) {_PRESENT} AND faces.person_id IS NOT NULL "
            + _person_filter(include_ignored)
        ).fetchone()
        return int(row[0])

    def faces_in_persons(self, include_ignored: bool = False) -> int:
        """Faces of present photos that are in a person."""
        row = self.conn.execute(
            f"SELECT COUNT(*) {_PRESENT} AND faces.person_id IS NOT NULL " + _person_filter(include_ignored)
        ).fetchone()
        return int(row[0])

    def person_rows(self, limit: int, offset: int = 0, include_ignored: bool = False) -> list[PersonRow]:
        """Persons with faces in present photos, largest first (ties by id), one page."""
        rows = self.conn.execute(
            f"""
            SELECT faces.person_id, persons.name, COUNT(*) AS n, COUNT(DISTINCT faces.photo_id), persons.ignored
            FROM faces JOIN photos ON photos.id = faces.photo_id JOIN persons ON persons.id = faces.person_id
            WHERE photos.status = 'done' {_person_filter(include_ignored)}
            GROUP BY faces.person_id ORDER BY n DESC, faces.person_id LIMIT ? OFFSET ?
            """,
            (limit, offset),
        ).fetchall()
        return [PersonRow(int(p), name, int(n), int(k), bool(ig)) for p, name, n, k, ig in rows]

    def person_row(self, person_id: int) -> PersonRow | None:
        """One person with its counts (0 when none of its faces is present), or None."""
        row = self.conn.execute(
            f"""
            SELECT persons.id, persons.name, COUNT(faces.id), COUNT(DISTINCT faces.photo_id), persons.ignored
            FROM persons LEFT JOIN (SELECT faces.id, faces.photo_id, faces.person_id {_PRESENT}) AS faces
                ON faces.person_id = persons.id
            WHERE persons.id = ? GROUP BY persons.id
            """,
            (person_id,),
        ).fetchone()
        return None if row is None else PersonRow(int(row[0]), row[1], int(row[2]), int(row[3]), bool(row[4]))

    def person_faces(self, person_id: int, limit: int = -1) -> tuple[list[FaceRow], np.ndarray]:
        """A person's faces in present photos, by face id, with their embeddings (n, 128);
        the first ``limit`` only, when given."""
        faces, photos, emb = self.member_faces(person_id, limit=limit)
        return [FaceRow(f.id, person_id, f.box, f.confidence, photos[f.photo_id]) for f in faces], emb

    def member_faces(
        self, person_id: int | None, embeddings: bool = True, after: int = 0, limit: int = -1
    ) -> tuple[list[StoredFace], dict[int, Photo], np.ndarray]:
        """A person's faces in present photos (``None``: the faces in no person), by face id,
        with their photos (one object per photo) and, when asked, their embeddings (n, 128).
        ``after``, ``limit``: the first ``limit`` faces with an id above ``after`` (a page)."""
        which = "faces.person_id IS NULL" if person_id is None else "faces.person_id = ?"
        emb_col = ", faces.embedding" if embeddings else ""
        cursor = self.conn.execute(
            f"SELECT faces.id, faces.left, faces.top, faces.right, faces.bottom, faces.confidence, {_PHOTO}"
            f"{emb_col} {_PRESENT} AND {which} AND faces.id > ? ORDER BY faces.id LIMIT ?",
            (after, limit) if person_id is None else (person_id, after, limit),
        )
        faces: list[StoredFace] = []
        photos: dict[int, Photo] = {}
        blobs: list[bytes] = []
        width = 6 + len(PHOTO_COLS.split(","))
        while rows := cursor.fetchmany(_FETCH):
            for row in rows:
                photo = photos.get(row[6])
                if photo is None:
                    photo = photos[row[6]] = photo_of_row(row[6:width])[0]
                fid, left, top, right, bottom, conf = row[:6]
                faces.append(StoredFace(int(fid), photo.id, photo.path, Box(left, top, right, bottom), conf, person_id))
                if embeddings:
                    blobs.append(row[width])
        emb = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), EMBEDDING_DIM).astype(np.float32)
        return faces, photos, emb

    def unknown_photo_paths(self) -> list[tuple[Path, int]]:
        """(path, photo id) of the present photos with a face in no person."""
        rows = self.conn.execute(
            f"SELECT DISTINCT photos.path, photos.id {_PRESENT} AND faces.person_id IS NULL"
        ).fetchall()
        return [(path_from_key(bytes(key)), int(pid)) for key, pid in rows]

    def unknown_count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) {_PRESENT} AND faces.person_id IS NULL").fetchone()[0])

    def unknown_rows(self, limit: int, offset: int = 0) -> list[FaceRow]:
        """Faces in no person, by face id, one page."""
        rows = self.conn.execute(
            f"SELECT {_FACE_COLS} {_PRESENT} AND faces.person_id IS NULL ORDER BY faces.id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [_face_row(r) for r in rows]

    def face_rows(self, face_ids: Iterable[int]) -> dict[int, FaceRow]:
        """Face id -> the face with its photo, for the given faces (any photo status)."""
        ids = sorted(set(face_ids))
        out: dict[int, FaceRow] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(
                f"SELECT {_FACE_COLS} FROM faces JOIN photos ON photos.id = faces.photo_id "
                f"WHERE faces.id IN ({marks(chunk)})",
                chunk,
            )
            out.update((r[0], _face_row(r)) for r in rows)
        return out

    def face_embeddings(self, face_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Face id -> embedding (128 float32), for the given faces that exist."""
        ids = sorted(set(face_ids))
        out: dict[int, np.ndarray] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(f"SELECT id, embedding FROM faces WHERE id IN ({marks(chunk)})", chunk)
            out.update((int(f), np.frombuffer(e, dtype="<f4").astype(np.float32)) for f, e in rows)
        return out

    def photos_by_id(self, photo_ids: Sequence[int]) -> dict[int, Photo]:
        """Photo id -> photo, for the given photos that exist (a query per 500 photos)."""
        out: dict[int, Photo] = {}
        for chunk in chunks(photo_ids):
            rows = self.conn.execute(f"SELECT {PHOTO_COLS} FROM photos WHERE id IN ({marks(chunk)})", chunk)
            out.update((int(r[0]), photo_of_row(r)[0]) for r in rows)
        return out

    def person_embeddings(self, include_ignored: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(person id, face ids, embeddings) per person, by person id: every face of a
        present photo in a person streamed once, one person in memory at a time."""
        sql = (
            f"SELECT faces.person_id, faces.id, faces.embedding {_PRESENT} AND faces.person_id IS NOT NULL "
            f"{_person_filter(include_ignored)} ORDER BY faces.person_id, faces.id"
        )
        for pid, rows in self._blocks(sql):
            emb = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), EMBEDDING_DIM)
            yield int(pid or 0), np.array([r[1] for r in rows], dtype=np.int64), emb

    def face_prints(self) -> Iterator[tuple[int | None, int, str, bytes, bytes]]:
        """(person id, face id, the face's and its photo's fields as one text, the photo's path
        key, the embedding) of every face of a present photo, by person (None first) then face
        id: what an export writes of a face, streamed for a fingerprint per person (the
        text is SQLite's, so no object per face is built here)."""
        cursor = self.conn.execute(
            "SELECT faces.person_id, faces.id, faces.photo_id || ' ' || faces.left || ' ' || faces.top || ' ' || "
            "faces.right || ' ' || faces.bottom || ' ' || faces.confidence || ' ' || IFNULL(photos.sha256, '') || ' ' "
            "|| photos.size || ' ' || photos.mtime_ns || ' ' || IFNULL(photos.taken_at, ''), photos.path, "
            f"faces.embedding {_PRESENT} ORDER BY faces.person_id, faces.id"
        )
        while rows := cursor.fetchmany(_FETCH):
            yield from rows

    def library_prints(self) -> Iterator[tuple[object, ...]]:
        """The rows besides the faces that the lists of an export show (names, birth dates,
        persons kept apart, face tags, settings), in a fixed order, for a fingerprint."""
        for sql in (
            "SELECT id, name, ignored, born, curated FROM persons ORDER BY id",
            "SELECT face_id, person_id FROM rejections ORDER BY face_id, person_id",
            "SELECT * FROM tags ORDER BY id",
            "SELECT key, value FROM settings ORDER BY key",
        ):
            yield (sql,)
            cursor = self.conn.execute(sql)
            while rows := cursor.fetchmany(_FETCH):
                yield from rows

    def face_blocks(self) -> Iterator[tuple[int | None, list[StoredFace], np.ndarray]]:
        """(person id, faces, embeddings) per person (None: the faces in no person, last),
        by face id within a person: every face of a present photo, one person at a time.
        Faces of one photo share one ``Path`` object."""
        sql = (
            "SELECT faces.person_id, faces.id, faces.photo_id, photos.path, faces.left, faces.top, faces.right, "
            f"faces.bottom, faces.confidence, faces.embedding {_PRESENT} "
            "ORDER BY faces.person_id IS NULL, faces.person_id, faces.id"
        )
        paths: dict[int, Path] = {}
        for pid, rows in self._blocks(sql):
            faces = []
            for _, fid, photo_id, key, left, top, right, bottom, conf, _ in rows:
                path = paths.get(photo_id)
                if path is None:
                    path = paths[photo_id] = path_from_key(bytes(key))
                person = None if pid is None else int(pid)
                faces.append(
                    StoredFace(int(fid), int(photo_id), path, Box(left, top, right, bottom), float(conf), person)
                )
            emb = np.frombuffer(b"".join(r[-1] for r in rows), dtype="<f4").reshape(len(rows), EMBEDDING_DIM)
            yield (None if pid is None else int(pid)), faces, emb

    def _blocks(self, sql: str) -> Iterator[tuple[Any, list[Any]]]:
        """The rows of ``sql`` (ordered by its first column) grouped by that column."""
        cursor = self.conn.execute(sql)
        current: Any = None
        block: list[Any] = []
        while rows := cursor.fetchmany(_FETCH):
            for row in rows:
                if row[0] != current and block:
                    yield current, block
                    block = []
                current = row[0]
                block.append(row)
        if block:
            yield current, block
