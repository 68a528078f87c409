"""Face thumbnails: a small image per face (WebP; JPEG before), cut where the photo is decoded anyway (a scan)
or, for a face that has none, by the first export that needs it. The review pages and the
review app show them, so neither decodes a photo per face it shows.

Each thumbnail carries the parameters it was cut with (size, margin, quality: the
caller's string); one cut with other parameters counts as missing. A face re-found with a
new box, or deleted, loses its thumbnail (see :mod:`photocluster.store.photos`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from photocluster.core.types import Box, Photo
from photocluster.store.connection import Database, chunks, marks
from photocluster.store.photos import PHOTO_COLS, photo_of_row

_PHOTO = ", ".join(f"photos.{c.strip()}" for c in PHOTO_COLS.split(","))
# Rows fetched at a time when streaming the faces that lack a thumbnail.
_FETCH = 4096


class Thumbs(Database):
    """The ``face_thumbs`` table."""

    def put_thumbnails(self, rows: Iterable[tuple[int, str, bytes]], boxes: Mapping[int, Box] | None = None) -> int:
        """Store (face id, parameters, JPEG) rows, replacing a face's earlier thumbnail; a face
        deleted meanwhile is skipped, and so, with ``boxes`` (face id -> the box the thumbnail
        was cut for), is a face that a scan has given another box since. Returns the rows stored."""
        stored = 0
        with self.transaction() as conn:
            for face_id, params, jpeg in rows:
                box = boxes.get(face_id) if boxes is not None else None
                args: tuple[float, ...]
                if box is None:
                    where, args = "id = ?", (face_id,)
                else:
                    where = "id = ? AND left = ? AND top = ? AND right = ? AND bottom = ?"
                    args = (face_id, box.left, box.top, box.right, box.bottom)
                cur = conn.execute(
                    "INSERT OR REPLACE INTO face_thumbs(face_id, params, jpeg) "
                    f"SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM faces WHERE {where})",
                    (face_id, params, jpeg, *args),
                )
                stored += cur.rowcount
        return stored

    def thumbnails(self, face_ids: Sequence[int], params: str) -> dict[int, bytes]:
        """Face id -> JPEG, for the given faces that have a thumbnail cut with ``params``."""
        out: dict[int, bytes] = {}
        for chunk in chunks(face_ids):
            rows = self.conn.execute(
                f"SELECT face_id, jpeg FROM face_thumbs WHERE params = ? AND face_id IN ({marks(chunk)})",
                (params, *chunk),
            )
            out.update((int(f), bytes(j)) for f, j in rows)
        return out

    def thumbnail(self, face_id: int, params: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT jpeg FROM face_thumbs WHERE face_id = ? AND params = ?", (face_id, params)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def missing_thumbnails(
        self, params: str, after_photo: int = 0, photos: int = 1024
    ) -> list[tuple[Photo, list[tuple[int, Box]]]]:
        """(photo, [(face id, box)]) for the next ``photos`` present photos after photo id
        ``after_photo`` whose faces have no thumbnail cut with ``params``, by photo id. Page
        on with the last photo's id; an empty list is the end. (A page at a time, so the
        caller may store thumbnails between pages without a statement left open.)"""
        cursor = self.conn.execute(
            f"""
            SELECT faces.id, faces.left, faces.top, faces.right, faces.bottom, {_PHOTO}
            FROM faces JOIN photos ON photos.id = faces.photo_id
            WHERE photos.status = 'done' AND faces.photo_id > ? AND NOT EXISTS (
                SELECT 1 FROM face_thumbs WHERE face_thumbs.face_id = faces.id AND face_thumbs.params = ?)
            ORDER BY faces.photo_id, faces.id
            """,
            (after_photo, params),
        )
        out: list[tuple[Photo, list[tuple[int, Box]]]] = []
        try:
            while rows := cursor.fetchmany(_FETCH):
                for fid, left, top, right, bottom, *photo_row in rows:
                    if not out or out[-1][0].id != photo_row[0]:
                        if len(out) == photos:
                            return out
                        out.append((photo_of_row(photo_row)[0], []))
                    out[-1][1].append((int(fid), Box(left, top, right, bottom)))
        finally:
            cursor.close()
        return out

    def missing_thumbnail_photos(self, params: str) -> int:
        """Present photos with a face that has no thumbnail cut with ``params``."""
        row = self.conn.execute(
            """
            SELECT COUNT(DISTINCT faces.photo_id) FROM faces JOIN photos ON photos.id = faces.photo_id
            WHERE photos.status = 'done' AND NOT EXISTS (
                SELECT 1 FROM face_thumbs WHERE face_thumbs.face_id = faces.id AND face_thumbs.params = ?)
            """,
            (params,),
        ).fetchone()
        return int(row[0])

    def thumbnails_with(self, params: str, after_face: int = 0, limit: int = 1000) -> list[tuple[int, bytes]]:
        """(face id, bytes) of the next ``limit`` thumbnails stored with ``params`` after face
        id ``after_face``, by face id (a format to convert: photocluster.app.thumbs)."""
        rows = self.conn.execute(
            "SELECT face_id, jpeg FROM face_thumbs WHERE params = ? AND face_id > ? ORDER BY face_id LIMIT ?",
            (params, after_face, limit),
        )
        return [(int(f), bytes(j)) for f, j in rows]

    def replace_thumbnails(self, rows: Iterable[tuple[int, bytes]], old: str, new: str) -> int:
        """Store each (face id, bytes) in ``new``'s format in place of the face's thumbnail
        still stored with ``old`` (one stored meanwhile with other parameters is kept), in one
        transaction. Returns the rows replaced."""
        replaced = 0
        with self.transaction() as conn:
            for face_id, data in rows:
                cur = conn.execute(
                    "UPDATE face_thumbs SET params = ?, jpeg = ? WHERE face_id = ? AND params = ?",
                    (new, data, face_id, old),
                )
                replaced += cur.rowcount
        return replaced

    def thumbnail_count(self, params: str | None = None) -> int:
        """Thumbnails stored (cut with ``params``, when given)."""
        if params is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM face_thumbs").fetchone()[0])
        sql = "SELECT COUNT(*) FROM face_thumbs WHERE params = ?"
        return int(self.conn.execute(sql, (params,)).fetchone()[0])
