"""The inverted file of the last full clustering's neighbour search (``search_lists``).

Derived data, kept between runs so that an incremental clustering searches its new faces
among a million without assigning every face to the k-means centres again
(:func:`photocluster.grouping.graph.knn_graph`). Whatever happens to it, nothing is lost:
a face it does not list is given its lists when searched, and the next full run writes it
again.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from photocluster.store.connection import Database

# Faces a part holds: a blob of 20 MB at most (ids and three lists a face).
PART_FACES = 1_000_000


class SearchLists(Database):
    """``search_lists``: the centres (part 0), and runs of faces with their nearest lists."""

    def search_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(centres (lists, d) float32, face ids (ascending int64), each face's nearest lists
        (faces, m) int32, nearest first), or None when no full run kept any."""
        rows = self.conn.execute("SELECT part, face_ids, data, width FROM search_lists ORDER BY part").fetchall()
        if not rows or rows[0][0] != 0:
            return None
        _, _, blob, width = rows[0]
        centres = np.frombuffer(blob, dtype="<f4").reshape(-1, width).copy()
        parts = rows[1:]
        if not parts:
            return None
        m = parts[0][3]
        if any(w != m for *_, w in parts):
            return None  # written by a different version: rebuilt by the next full run
        ids = np.concatenate([np.frombuffer(f, dtype="<i8") for _, f, _, _ in parts]).astype(np.int64)
        lists = np.concatenate([np.frombuffer(d, dtype="<i4") for _, _, d, _ in parts]).reshape(-1, m).astype(np.int32)
        order = np.argsort(ids, kind="stable")  # later parts may list faces above earlier ones' ids
        return centres, ids[order], lists[order]

    def save_search_lists(self, centres: np.ndarray, face_ids: np.ndarray, lists: np.ndarray) -> None:
        """Replace the kept lists: the centres and each face's nearest lists (by face id)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM search_lists")
            conn.execute(
                "INSERT INTO search_lists(part, face_ids, data, width) VALUES (0, NULL, ?, ?)",
                (_blob(centres, "<f4"), int(centres.shape[1])),
            )
            self._insert_parts(conn, face_ids, lists, 1)

    def drop_search_lists(self) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM search_lists")

    def add_search_lists(self, face_ids: np.ndarray, lists: np.ndarray) -> None:
        """Keep the lists of faces added since (an incremental run's), next to the others."""
        if len(face_ids) == 0:
            return
        with self.transaction() as conn:
            row = conn.execute("SELECT max(part), count(*) FROM search_lists").fetchone()
            if row[1] == 0:
                return  # no centres to go with them: nothing kept
            self._insert_parts(conn, face_ids, lists, int(row[0]) + 1)

    @staticmethod
    def _insert_parts(conn: sqlite3.Connection, face_ids: np.ndarray, lists: np.ndarray, first: int) -> None:
        order = np.argsort(face_ids, kind="stable")
        ids, rows = np.asarray(face_ids, dtype=np.int64)[order], np.asarray(lists)[order]
        width = int(rows.shape[1]) if rows.ndim == 2 else 1
        for k, lo in enumerate(range(0, len(ids), PART_FACES)):
            conn.execute(
                "INSERT INTO search_lists(part, face_ids, data, width) VALUES (?, ?, ?, ?)",
                (first + k, _blob(ids[lo : lo + PART_FACES], "<i8"), _blob(rows[lo : lo + PART_FACES], "<i4"), width),
            )


def _blob(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype=dtype).tobytes()
