"""The only module that speaks SQL.

One SQLite file in WAL mode. Paths are stored as the raw bytes the filesystem
gives (so any file name round-trips), embeddings and landmarks as float32 blobs.
Schema changes are numbered migrations applied on open; ``PRAGMA user_version``
holds the version.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.errors import BusyError, DatabaseError, SchemaVersionError
from photocluster.core.types import EMBEDDING_DIM, Box, Face, Photo

MIGRATIONS: list[str] = [
    # 1: photos, faces, persons, scans, settings
    """
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT,
        width INTEGER,
        height INTEGER,
        taken_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('done', 'error', 'missing')),
        error TEXT,
        settings TEXT,
        scan_id INTEGER REFERENCES scans(id),
        seen_scan_id INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE INDEX photos_sha256 ON photos(sha256);
    CREATE INDEX photos_status ON photos(status);
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY,
        name TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        left REAL NOT NULL,
        top REAL NOT NULL,
        right REAL NOT NULL,
        bottom REAL NOT NULL,
        confidence REAL NOT NULL,
        landmarks BLOB NOT NULL,
        embedding BLOB NOT NULL,
        person_id INTEGER REFERENCES persons(id) ON DELETE SET NULL
    );
    CREATE INDEX faces_photo ON faces(photo_id);
    CREATE INDEX faces_person ON faces(person_id);
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'interrupted', 'failed')),
        roots TEXT NOT NULL,
        settings TEXT NOT NULL,
        summary TEXT
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: corrections. A pin says "this face is this person" (merge, move); a rejection
    # says "this face is never this person" (remove, move away). Both bind every later
    # clustering. `corrections` keeps each command with the rows it changed, for undo.
    """
    ALTER TABLE persons ADD COLUMN ignored INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE pins (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE
    );
    CREATE INDEX pins_person ON pins(person_id);
    CREATE TABLE rejections (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        PRIMARY KEY (face_id, person_id)
    );
    CREATE TABLE corrections (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        command TEXT NOT NULL,
        before TEXT NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def path_key(path: Path) -> bytes:
    """A path as stored: absolute, raw filesystem bytes."""
    return os.fsencode(os.path.abspath(path))


def path_from_key(key: bytes) -> Path:
    return Path(os.fsdecode(key))


def _f32(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


@dataclass(frozen=True)
class StoredFace:
    """A face row with what clustering and export need of its photo."""

    id: int
    photo_id: int
    photo_path: Path
    box: Box
    confidence: float
    person_id: int | None


class Store:
    """A photocluster database. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"{self.path.parent}: cannot create the database folder ({exc.strerror})") from None
        try:
            # Autocommit mode: transactions are explicit (see `transaction`).
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA busy_timeout = 30000")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DatabaseError(f"{self.path}: cannot switch the database to WAL mode (got {mode})")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise DatabaseError(f"{self.path}: cannot open the database ({exc})") from None
        except DatabaseError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(str(self.path), version, SCHEMA_VERSION)
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            # Read again under the write lock: another process may have migrated meanwhile.
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version + 1, SCHEMA_VERSION + 1):
                # executescript would commit on its own; run the statements one by one instead.
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, all or nothing."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise DatabaseError(f"{self.path}: cannot write to the database ({exc})") from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self.conn.execute("ROLLBACK")
                raise DatabaseError(f"{self.path}: cannot write to the database ({exc})") from None

    @contextmanager
    def exclusive(self, what: str = "scan") -> Iterator[None]:
        """Hold the database's lock file for a long job, so two scans never interleave.

        SQLite alone would keep the file consistent, but two scans of one library would
        race on the same photos; the second one is refused with a clear message instead.
        """
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fh = open(lock_path, "a+")  # noqa: SIM115 - held across the yield below
        except OSError as exc:
            raise DatabaseError(f"{lock_path}: cannot create the lock file ({exc.strerror})") from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise BusyError(
                    f"{self.path}: {holder} is using this database; wait for it to finish, or use another --db"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"a {what} (pid {os.getpid()})")
            fh.flush()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh, fcntl.LOCK_UN)

    def check_writable(self) -> None:
        """Raise DatabaseError now, rather than after an hour of detection."""
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES ('last_opened', ?)", (str(time.time()),))

    # -- settings ------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_settings(self, conn: sqlite3.Connection, values: dict[str, str]) -> None:
        conn.executemany("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", values.items())

    # -- scans ---------------------------------------------------------------

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

    # -- photos --------------------------------------------------------------

    _PHOTO_COLS = "id, path, size, mtime_ns, sha256, width, height, taken_at, status, error, settings"

    @staticmethod
    def _photo(row: Any) -> tuple[Photo, str | None]:
        pid, key, size, mtime, sha, w, h, taken, status, error, settings = row
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
        )
        return photo, settings

    def photo_by_path(self, path: Path) -> tuple[Photo, str | None] | None:
        row = self.conn.execute(f"SELECT {self._PHOTO_COLS} FROM photos WHERE path = ?", (path_key(path),)).fetchone()
        return None if row is None else self._photo(row)

    def photos_by_hash(self, sha256: str, settings_key: str) -> list[Photo]:
        """Photos already analysed with these settings whose bytes hash to ``sha256``."""
        rows = self.conn.execute(
            f"SELECT {self._PHOTO_COLS} FROM photos WHERE sha256 = ? AND settings = ? "
            "AND status IN ('done', 'missing') AND width IS NOT NULL ORDER BY id",
            (sha256, settings_key),
        ).fetchall()
        return [self._photo(r)[0] for r in rows]

    def photo(self, photo_id: int) -> Photo:
        row = self.conn.execute(f"SELECT {self._PHOTO_COLS} FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None:
            raise DatabaseError(f"no photo with id {photo_id}")
        return self._photo(row)[0]

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
        error: str | None = None,
        copy_faces_from: int | None = None,
    ) -> int:
        """Record the result for one file, replacing what was known of that path, atomically.

        Either ``faces`` (freshly detected), ``copy_faces_from`` (a photo with the same
        bytes), or ``error`` (the file was not usable; earlier faces of it are dropped).
        """
        key = path_key(path)
        status = "error" if error is not None else "done"
        if error is not None:
            # Reasons may quote file names that are not UTF-8; SQLite text must be.
            error = error.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                """
                INSERT INTO photos(path, size, mtime_ns, sha256, width, height, taken_at, status,
                                   error, settings, scan_id, seen_scan_id, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256,
                    width = excluded.width, height = excluded.height, taken_at = excluded.taken_at,
                    status = excluded.status, error = excluded.error, settings = excluded.settings,
                    scan_id = excluded.scan_id, seen_scan_id = excluded.seen_scan_id,
                    updated_at = excluded.updated_at
                """,
                (
                    key,
                    size,
                    mtime_ns,
                    sha256,
                    width,
                    height,
                    taken_at,
                    status,
                    error,
                    settings_key,
                    scan_id,
                    scan_id,
                    now,
                ),
            )
            photo_id = int(conn.execute("SELECT id FROM photos WHERE path = ?", (key,)).fetchone()[0])
            conn.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
            if copy_faces_from is not None:
                conn.execute(
                    """
                    INSERT INTO faces(photo_id, left, top, right, bottom, confidence, landmarks, embedding)
                    SELECT ?, left, top, right, bottom, confidence, landmarks, embedding
                    FROM faces WHERE photo_id = ? ORDER BY id
                    """,
                    (photo_id, copy_faces_from),
                )
            else:
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
                            _f32(f.landmarks),
                            _f32(f.embedding),
                        )
                        for f in faces
                    ],
                )
        return photo_id

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

        def under(key: bytes, base: bytes) -> bool:
            return key == base or key.startswith(base.rstrip(b"/") + b"/")

        gone = []
        rows = self.conn.execute(
            "SELECT id, path FROM photos WHERE status != 'missing' AND (seen_scan_id IS NULL OR seen_scan_id != ?)",
            (scan_id,),
        )
        for pid, key in rows:
            key = bytes(key)
            if any(under(key, p) for p in prefixes) and not any(under(key, k) for k in keep):
                gone.append(pid)
        if gone:
            with self.transaction() as conn:
                conn.executemany(
                    "UPDATE photos SET status = 'missing', updated_at = ? WHERE id = ?",
                    [(time.time(), pid) for pid in gone],
                )
        return len(gone)

    def face_count(self, path: Path) -> int:
        row = self.conn.execute(
            "SELECT COUNT(faces.id) FROM photos LEFT JOIN faces ON faces.photo_id = photos.id WHERE photos.path = ?",
            (path_key(path),),
        ).fetchone()
        return int(row[0])

    def errors(self, scan_id: int | None = None) -> list[tuple[Path, str]]:
        sql = "SELECT path, error FROM photos WHERE status = 'error'"
        args: tuple[int, ...] = ()
        if scan_id is not None:
            sql += " AND seen_scan_id = ?"
            args = (scan_id,)
        return [(path_from_key(bytes(k)), str(e)) for k, e in self.conn.execute(sql + " ORDER BY path", args)]

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

    # -- faces and persons ---------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one state of the database, whatever a scan commits meanwhile."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _face_arrays(self, where: str, params: Sequence[Any] = ()) -> tuple[np.ndarray, ...]:
        """(face ids, photo ids, person ids (-1: none), embeddings (n, 128) float32) of the
        faces of present photos that match ``where``, by face id, in one snapshot."""
        sql = f"FROM faces JOIN photos ON photos.id = faces.photo_id WHERE photos.status = 'done' AND ({where})"
        with self.snapshot():
            (count,) = self.conn.execute(f"SELECT count(*) {sql}", params).fetchone()
            # Filled in place, a chunk of rows at a time: a million faces never exist as a
            # million Python objects, and the embeddings are held once (512 MB at 1M).
            ids = np.empty(count, dtype=np.int64)
            photo_ids = np.empty(count, dtype=np.int64)
            person_ids = np.empty(count, dtype=np.int64)
            emb = np.empty((count, EMBEDDING_DIM), dtype=np.float32)
            cursor = self.conn.execute(
                f"SELECT faces.id, faces.photo_id, coalesce(faces.person_id, -1), faces.embedding {sql} "
                "ORDER BY faces.id",
                params,
            )
            k = 0
            while rows := cursor.fetchmany(16384):
                m = len(rows)
                ids[k : k + m] = [r[0] for r in rows]
                photo_ids[k : k + m] = [r[1] for r in rows]
                person_ids[k : k + m] = [r[2] for r in rows]
                emb[k : k + m] = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(m, EMBEDDING_DIM)
                k += m
        return ids, photo_ids, person_ids, emb

    def active_faces(self) -> tuple[np.ndarray, ...]:
        """(face ids, photo ids, person ids (-1: none), embeddings (n, 128) float32) of
        faces in present photos, by face id."""
        return self._face_arrays("1")

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

    def persons_in_photos(self, photo_ids: Iterable[int]) -> set[tuple[int, int]]:
        """(photo id, person id) for every face with a person in the given photos."""
        ids = sorted(set(photo_ids))
        out: set[tuple[int, int]] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out |= set(
                self.conn.execute(
                    f"SELECT photo_id, person_id FROM faces WHERE person_id IS NOT NULL "
                    f"AND photo_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return out

    def face_persons(self) -> dict[int, int]:
        """Current face id -> person id, for faces that have a person."""
        return {
            int(f): int(p) for f, p in self.conn.execute("SELECT id, person_id FROM faces WHERE person_id IS NOT NULL")
        }

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

    def face_row(self, face_id: int) -> tuple[int, int | None] | None:
        """(photo id, person id) of a face, or None when there is no such face."""
        row = self.conn.execute("SELECT photo_id, person_id FROM faces WHERE id = ?", (face_id,)).fetchone()
        return None if row is None else (int(row[0]), None if row[1] is None else int(row[1]))

    def person_face_ids(self, person_id: int) -> list[int]:
        rows = self.conn.execute("SELECT id FROM faces WHERE person_id = ? ORDER BY id", (person_id,))
        return [int(i) for (i,) in rows]

    def create_person(self, conn: sqlite3.Connection, name: str | None = None) -> int:
        cur = conn.execute("INSERT INTO persons(name, created_at) VALUES (?, ?)", (name, time.time()))
        return int(cur.lastrowid or 0)

    # -- corrections ---------------------------------------------------------

    def _snapshot(self, conn: sqlite3.Connection, person_ids: Iterable[int], face_ids: Iterable[int]) -> dict[str, Any]:
        pids = sorted(set(person_ids))
        fids = sorted(set(face_ids))

        def rows(sql: str, ids: list[int]) -> list[list[Any]]:
            out: list[list[Any]] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out.extend(list(r) for r in conn.execute(sql.format(marks=marks), chunk))
            return out

        return {
            "person_ids": pids,
            "face_ids": fids,
            "persons": rows("SELECT id, name, created_at, ignored FROM persons WHERE id IN ({marks})", pids),
            "assignments": rows("SELECT id, person_id FROM faces WHERE id IN ({marks})", fids),
            "pins": rows("SELECT face_id, person_id FROM pins WHERE face_id IN ({marks})", fids)
            + rows("SELECT face_id, person_id FROM pins WHERE person_id IN ({marks})", pids),
            "rejections": rows("SELECT face_id, person_id FROM rejections WHERE face_id IN ({marks})", fids),
        }

    @contextmanager
    def correction(
        self, command: str, person_ids: Iterable[int], face_ids: Iterable[int]
    ) -> Iterator[sqlite3.Connection]:
        """One user correction, atomically, remembering the rows it may change so that
        :meth:`undo` can put them back. ``person_ids``/``face_ids`` must cover every row touched."""
        with self.transaction() as conn:
            before = self._snapshot(conn, person_ids, face_ids)
            yield conn
            conn.execute(
                "INSERT INTO corrections(at, command, before) VALUES (?, ?, ?)",
                (time.time(), command, json.dumps(before)),
            )

    def undo(self) -> str | None:
        """Revert the latest correction not yet undone; returns its command, or None."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, command, before FROM corrections WHERE undone = 0 ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            cid, command, before_json = row
            before = json.loads(before_json)
            pids, fids = before["person_ids"], before["face_ids"]
            for start in range(0, max(len(fids), 1), 500):
                chunk = fids[start : start + 500]
                if chunk:
                    marks = ",".join("?" * len(chunk))
                    conn.execute(f"DELETE FROM pins WHERE face_id IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM rejections WHERE face_id IN ({marks})", chunk)
            for start in range(0, max(len(pids), 1), 500):
                chunk = pids[start : start + 500]
                if chunk:
                    marks = ",".join("?" * len(chunk))
                    conn.execute(f"DELETE FROM pins WHERE person_id IN ({marks})", chunk)
            existing = {p for p in pids if conn.execute("SELECT 1 FROM persons WHERE id = ?", (p,)).fetchone()}
            for pid, name, created, ignored in before["persons"]:
                if pid in existing:
                    conn.execute("UPDATE persons SET name = ?, ignored = ? WHERE id = ?", (name, ignored, pid))
                else:
                    conn.execute(
                        "INSERT INTO persons(id, name, created_at, ignored) VALUES (?, ?, ?, ?)",
                        (pid, name, created, ignored),
                    )
            # Persons the correction created did not exist before it: they go.
            snap_ids = {p[0] for p in before["persons"]}
            for pid in pids:
                if pid not in snap_ids:
                    conn.execute("UPDATE faces SET person_id = NULL WHERE person_id = ?", (pid,))
                    conn.execute("DELETE FROM persons WHERE id = ?", (pid,))
            conn.executemany("UPDATE faces SET person_id = ? WHERE id = ?", [(p, f) for f, p in before["assignments"]])
            conn.executemany("INSERT OR REPLACE INTO pins(face_id, person_id) VALUES (?, ?)", before["pins"])
            conn.executemany("INSERT OR IGNORE INTO rejections(face_id, person_id) VALUES (?, ?)", before["rejections"])
            conn.execute("UPDATE corrections SET undone = 1 WHERE id = ?", (cid,))
            return str(command)

    def history(self, limit: int = 50) -> list[tuple[int, float, str, bool]]:
        rows = self.conn.execute(
            "SELECT id, at, command, undone FROM corrections ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(int(i), float(at), str(c), bool(u)) for i, at, c, u in rows]

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
