"""Birth dates (``persons.born``) and the photo dates they are compared with.

A birth date is a fact: no face in a photo taken before it can be the person's (setting
one is a correction: :meth:`photocluster.store.corrections.Corrections.set_birth`). The
dates of photos are :func:`photocluster.core.ages.photo_day` of what the scan stored
(EXIF date, else the file's mtime); the constraints they make are
:func:`photocluster.grouping.constraints.born_rejections`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from photocluster.core.ages import photo_day
from photocluster.store.connection import Database, chunks, marks, path_from_key


class Births(Database):
    """``persons.born``, and the days of the photos faces are in."""

    def births(self) -> dict[int, dt.date]:
        """person id -> birth date, for the persons that have one."""
        rows = self.conn.execute("SELECT id, born FROM persons WHERE born IS NOT NULL")
        return {int(p): dt.date.fromisoformat(b) for p, b in rows}

    def birth_of(self, person_id: int) -> dt.date | None:
        row = self.conn.execute("SELECT born FROM persons WHERE id = ?", (person_id,)).fetchone()
        return None if row is None or row[0] is None else dt.date.fromisoformat(row[0])

    def face_days(self, face_ids: Iterable[int]) -> dict[int, tuple[Path, dt.date]]:
        """face id -> (its photo's path, the day the photo was taken), for the faces that exist."""
        ids = sorted(set(face_ids))
        out: dict[int, tuple[Path, dt.date]] = {}
        for chunk in chunks(ids):
            rows = self.conn.execute(
                "SELECT faces.id, photos.path, photos.taken_at, photos.mtime_ns FROM faces "
                f"JOIN photos ON photos.id = faces.photo_id WHERE faces.id IN ({marks(chunk)})",
                chunk,
            )
            out.update((int(f), (path_from_key(bytes(p)), photo_day(t, m))) for f, p, t, m in rows)
        return out

    def photo_days(self, photo_ids: Sequence[int]) -> dict[int, dt.date]:
        """photo id -> the day it was taken, for the given photos that exist."""
        out: dict[int, dt.date] = {}
        for chunk in chunks(sorted(set(photo_ids))):
            rows = self.conn.execute(f"SELECT id, taken_at, mtime_ns FROM photos WHERE id IN ({marks(chunk)})", chunk)
            out.update((int(i), photo_day(t, m)) for i, t, m in rows)
        return out

    def active_face_days(self) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, day ordinals) of the faces of present photos, by face id: the rows of
        :meth:`~photocluster.store.faces.Faces.active_faces` in the same snapshot. A photo's
        day is worked out once, however many faces it has."""
        rows = self.conn.execute(
            "SELECT faces.id, photos.id, photos.taken_at, photos.mtime_ns FROM faces "
            "JOIN photos ON photos.id = faces.photo_id WHERE photos.status = 'done' ORDER BY faces.id"
        ).fetchall()
        days: dict[int, int] = {}
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        ordinals = np.fromiter(
            (days.get(p) or days.setdefault(p, photo_day(t, m).toordinal()) for _, p, t, m in rows),
            dtype=np.int64,
            count=len(rows),
        )
        return ids, ordinals

    def first_days(self) -> dict[int, dt.date]:
        """person id -> the day of its earliest photo (faces of present photos)."""
        rows = self.conn.execute(
            "SELECT faces.person_id, MIN(photos.taken_at), "
            "MIN(CASE WHEN photos.taken_at IS NULL THEN photos.mtime_ns END) "
            "FROM faces JOIN photos ON photos.id = faces.photo_id "
            "WHERE photos.status = 'done' AND faces.person_id IS NOT NULL GROUP BY faces.person_id"
        )
        out: dict[int, dt.date] = {}
        for pid, taken, mtime in rows:
            days = ([photo_day(taken, 0)] if taken else []) + ([photo_day(None, mtime)] if mtime is not None else [])
            if days:
                out[int(pid)] = min(days)
        return out
