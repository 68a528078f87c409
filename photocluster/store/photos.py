"""Photos and scans: one row per file ever seen, its status and error, and each scan run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from photocluster.core.errors import DatabaseError
from photocluster.core.types import Face, Photo
from photocluster.store.connection import Database, path_from_key, path_key
from photocluster.store.faces import insert_face, update_face

# A photo's columns as photo_of_row reads them (the views and thumbnails select them too).
PHOTO_COLS = "id, path, size, mtime_ns, sha256, width, height, taken_at, status, error, settings, pixel_key"

_UPSERT_PHOTO = """
    INSERT INTO photos(path, size, mtime_ns, sha256, width, height, taken_at, status,
                       error, settings, scan_id, seen_scan_id, pixel_key, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(path) DO UPDATE SET
        size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256,
        width = excluded.width, height = excluded.height, taken_at = excluded.taken_at,
        status = excluded.status, error = excluded.error, settings = excluded.settings,
        scan_id = excluded.scan_id, seen_scan_id = excluded.seen_scan_id,
        pixel_key = excluded.pixel_key, updated_at = excluded.updated_at
"""


def photo_of_row(row: Any) -> tuple[Photo, str | None]:
    """A row of PHOTO_COLS as a Photo, and the settings it was scanned with."""
    pid, key, size, mtime, sha, w, h, taken, status, error, settings, pixel_key = row
    photo = Photo(
        id=int(pid),
        path=path_from_key(bytes(key)),
        size=int(size),
        mtime_ns=int(mtime),
        sha256=sha,
        width=w,
        height=h,
        taken_at=taken,
        status=str(status),
        error=error,
        pixel_key=pixel_key,
    )
    return photo, settings


def _under(key: bytes, base: bytes) -> bool:
    return key == base or key.startswith(base.rstrip(b"/") + b"/")


class Photos(Database):
    """The ``photos`` and ``scans`` tables."""

    def begin_scan(self, roots: Sequence[Path], settings_key: str) -> int:
        with self.transaction() as conn:
            # A scan still "running" was killed: say so.
            conn.execute("UPDATE scans SET status = 'interrupted' WHERE status = 'running'")
            cur = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (?, 'running', ?, ?)",
                (time.time(), json.dumps([os.fsdecode(path_key(r)) for r in roots]), settings_key),
            )
            return int(cur.lastrowid or 0)

    def end_scan(self, scan_id: int, status: str, summary: dict[str, object]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE scans SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
                (status, time.time(), json.dumps(summary), scan_id),
            )

    def photo_by_path(self, path: Path) -> tuple[Photo, str | None] | None:
        row = self.conn.execute(f"SELECT {PHOTO_COLS} FROM photos WHERE path = ?", (path_key(path),)).fetchone()
        return None if row is None else photo_of_row(row)

    def unchanged_in_folder(self, folder: Path, settings_key: str) -> dict[bytes, tuple[int, int, int]]:
        """Stored path -> (photo id, size, mtime_ns) of the photos analysed with
        ``settings_key`` (status done) directly in ``folder``: one query for a folder's
        files, so that a re-scan settles the unchanged ones by their stat alone."""
        key = path_key(folder).rstrip(b"/") + b"/"
        rows = self.conn.execute(
            "SELECT path, id, size, mtime_ns FROM photos "
            "WHERE path >= ? AND path < ? AND status = 'done' AND settings = ?",
            (key, key[:-1] + b"0", settings_key),  # b"0" is the byte after b"/"
        )
        n = len(key)
        return {bytes(p): (int(i), s, m) for p, i, s, m in rows if b"/" not in bytes(p)[n:]}

    def photos_by_hash(self, sha256: str, settings_key: str) -> list[Photo]:
        """Photos already analysed with these settings whose bytes hash to ``sha256``."""
        rows = self.conn.execute(
            f"SELECT {PHOTO_COLS} FROM photos WHERE sha256 = ? AND settings = ? "
            "AND status IN ('done', 'missing') AND width IS NOT NULL ORDER BY id",
            (sha256, settings_key),
        ).fetchall()
        return [photo_of_row(r)[0] for r in rows]

    def photo(self, photo_id: int) -> Photo:
        row = self.conn.execute(f"SELECT {PHOTO_COLS} FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None:
            raise DatabaseError(f"no photo with id {photo_id}")
        return photo_of_row(row)[0]

    def mark_seen(self, photo_ids: Iterable[int], scan_id: int) -> None:
        ids = [(scan_id, i) for i in photo_ids]
        if ids:
            with self.transaction() as conn:
                conn.executemany("UPDATE photos SET seen_scan_id = ? WHERE id = ?", ids)

    def save_photo(
        self,
        path: Path,
        size: int,
        mtime_ns: int,
        sha256: str | None,
        scan_id: int,
        settings_key: str,
        *,
        width: int | None = None,
        height: int | None = None,
        taken_at: str | None = None,
        faces: Sequence[Face] = (),
        keep: Sequence[int | None] = (),
        error: str | None = None,
        pixel_key: str | None = None,
        thumbnails: Sequence[bytes] = (),
        thumb_params: str = "",
    ) -> int:
        """Record the result for one file, replacing what was known of that path, atomically.

        Either ``faces`` (found in the file) or ``error`` (the file was not usable).
        ``keep`` says, for each of ``faces``, which earlier face of this photo it continues
        (its id; None: a face not seen before): that row takes the new box and descriptor
        and keeps its id, its person, and the user's pins and rejections. The earlier faces
        no new face continues are deleted, but for those the user drew (``added``), which
        stay. An error keeps every earlier face, hidden with the photo until it is analysed
        again (as for a missing photo).
        ``thumbnails``: a JPEG per face, cut with ``thumb_params`` (see
        :mod:`photocluster.store.thumbs`); a face continued without one loses its old one.
        """
        if keep and len(keep) != len(faces):
            raise ValueError(f"keep must have one entry per face ({len(faces)}), got {len(keep)}")
        if thumbnails and len(thumbnails) != len(faces):
            raise ValueError(f"thumbnails must have one entry per face ({len(faces)}), got {len(thumbnails)}")
        key = path_key(path)
        status = "error" if error is not None else "done"
        if error is not None:
            # Reasons may quote file names that are not UTF-8; SQLite text must be.
            error = error.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        row = (key, size, mtime_ns, sha256, width, height, taken_at, status, error, settings_key, scan_id, scan_id)
        with self.transaction() as conn:
            conn.execute(_UPSERT_PHOTO, (*row, pixel_key, time.time()))
            photo_id = int(conn.execute("SELECT id FROM photos WHERE path = ?", (key,)).fetchone()[0])
            if error is not None:
                return photo_id
            rows = conn.execute("SELECT id, added FROM faces WHERE photo_id = ?", (photo_id,)).fetchall()
            earlier = {int(f) for f, _ in rows}
            continued: list[int | None] = []
            for f in keep or [None] * len(faces):
                # An id of another photo's face, or one given twice, is a new face.
                continued.append(f if f in earlier and f not in continued else None)
            # A face the user drew stays, whatever the detector finds now.
            drawn = {int(f) for f, added in rows if added}
            gone = sorted(earlier - drawn - {f for f in continued if f is not None})
            conn.executemany("DELETE FROM faces WHERE id = ?", [(f,) for f in gone])
            for k, (face, face_id) in enumerate(zip(faces, continued, strict=True)):
                if face_id is None:
                    face_id = insert_face(conn, photo_id, face)
                else:
                    update_face(conn, face_id, face)
                if thumbnails:
                    conn.execute(
                        "INSERT OR REPLACE INTO face_thumbs(face_id, params, jpeg) VALUES (?, ?, ?)",
                        (face_id, thumb_params, thumbnails[k]),
                    )
        return photo_id

    def refresh_photo(
        self,
        photo_id: int,
        size: int,
        mtime_ns: int,
        sha256: str,
        pixel_key: str | None,
        taken_at: str | None,
        scan_id: int,
    ) -> None:
        """Only the photo's metadata changed (same pixels): its faces stay as they are.
        Their thumbnails go (an orientation tag may have changed what is displayed); the
        next export cuts them again."""
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM face_thumbs WHERE face_id IN (SELECT id FROM faces WHERE photo_id = ?)", (photo_id,)
            )
            conn.execute(
                "UPDATE photos SET size = ?, mtime_ns = ?, sha256 = ?, pixel_key = ?, taken_at = ?, status = 'done', "
                "error = NULL, seen_scan_id = ?, updated_at = ? WHERE id = ?",
                (size, mtime_ns, sha256, pixel_key, taken_at, scan_id, time.time(), photo_id),
            )

    def move_photo(self, photo_id: int, new_path: Path, size: int, mtime_ns: int, scan_id: int) -> None:
        """The file with these bytes now lives at ``new_path``: keep its faces and their persons."""
        key = path_key(new_path)
        with self.transaction() as conn:
            # A stale row for the destination path (an old, different file) gives way.
            conn.execute("DELETE FROM photos WHERE path = ? AND id != ?", (key, photo_id))
            conn.execute(
                "UPDATE photos SET path = ?, size = ?, mtime_ns = ?, status = 'done', error = NULL, "
                "seen_scan_id = ?, updated_at = ? WHERE id = ?",
                (key, size, mtime_ns, scan_id, time.time(), photo_id),
            )

    def mark_missing(self, scan_id: int, roots: Sequence[Path], keep_under: Sequence[Path] = ()) -> int:
        """Photos under ``roots`` not seen by scan ``scan_id`` are gone: mark them missing.

        Nothing under ``keep_under`` (folders that could not be read) is marked.
        Their faces and person links stay stored, so a file that comes back rejoins its
        person, but every listing and clustering ignores them while missing.
        """
        prefixes = [path_key(r) for r in roots]
        keep = [path_key(k) for k in keep_under]
        gone = []
        rows = self.conn.execute(
            "SELECT id, path FROM photos WHERE status != 'missing' AND (seen_scan_id IS NULL OR seen_scan_id != ?)",
            (scan_id,),
        )
        for pid, key in rows:
            key = bytes(key)
            if any(_under(key, p) for p in prefixes) and not any(_under(key, k) for k in keep):
                gone.append(pid)
        if gone:
            with self.transaction() as conn:
                conn.executemany(
                    "UPDATE photos SET status = 'missing', updated_at = ? WHERE id = ?",
                    [(time.time(), pid) for pid in gone],
                )
        return len(gone)

    def errors(self, scan_id: int | None = None) -> list[tuple[Path, str]]:
        sql = "SELECT path, error FROM photos WHERE status = 'error'"
        args: tuple[int, ...] = ()
        if scan_id is not None:
            sql += " AND seen_scan_id = ?"
            args = (scan_id,)
        return [(path_from_key(bytes(k)), str(e)) for k, e in self.conn.execute(sql + " ORDER BY path", args)]

    def photo_face_counts(self) -> list[tuple[Path, int]]:
        """(path, faces found) of every scanned photo present, by path."""
        rows = self.conn.execute(
            "SELECT path, (SELECT COUNT(*) FROM faces WHERE faces.photo_id = photos.id) FROM photos "
            "WHERE status = 'done' ORDER BY path"
        )
        return [(path_from_key(bytes(k)), int(n)) for k, n in rows]

    def photos_without_faces(self, paths: Sequence[Path] | None = None) -> list[Path]:
        """The scanned photos, present, in which no face was found, by path (of ``paths``
        only, when given)."""
        sql = (
            "SELECT path FROM photos WHERE status = 'done' "
            "AND NOT EXISTS (SELECT 1 FROM faces WHERE faces.photo_id = photos.id)"
        )
        if paths is None:
            return [path_from_key(bytes(k)) for (k,) in self.conn.execute(sql + " ORDER BY path")]
        out: list[Path] = []
        for path in paths:
            row = self.conn.execute(sql + " AND path = ?", (path_key(path),)).fetchone()
            if row is not None:
                out.append(path)
        return out

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "error": 0, "missing": 0}
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM photos GROUP BY status"):
            out[str(status)] = int(n)
        out["faces"] = int(
            self.conn.execute(
                "SELECT COUNT(*) FROM faces JOIN photos ON photos.id = faces.photo_id WHERE photos.status = 'done'"
            ).fetchone()[0]
        )
        out["persons"] = int(
            self.conn.execute(
                "SELECT COUNT(DISTINCT person_id) FROM faces JOIN photos ON photos.id = faces.photo_id "
                "WHERE photos.status = 'done' AND person_id IS NOT NULL"
            ).fetchone()[0]
        )
        return out
