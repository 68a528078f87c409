"""The connection every table family of the store shares, and how values are stored.

One SQLite file in WAL mode. Paths are stored as the raw bytes the filesystem
gives (so any file name round-trips), embeddings and landmarks as float32 blobs.
Schema changes are numbered migrations (:mod:`photocluster.store.migrations`) applied
on open.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self, TypeVar

import numpy as np

from photocluster.core.errors import BusyError, DatabaseError, SchemaVersionError
from photocluster.store.migrations import SCHEMA_VERSION, apply_migrations, user_version

# Old SQLite builds allow 999 bound parameters per statement; `IN (...)` lists stay below.
CHUNK = 500

T = TypeVar("T")


def path_key(path: Path) -> bytes:
    """A path as stored: absolute, raw filesystem bytes."""
    return os.fsencode(os.path.abspath(path))


def path_from_key(key: bytes) -> Path:
    return Path(os.fsdecode(key))


def f32_blob(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(items: Sequence[object]) -> str:
    """The ``?, ?, ...`` of an ``IN (...)`` list."""
    return ",".join("?" * len(items))


class Database:
    """An open database: the connection, its transactions, its locks and its settings.

    Every table family of :class:`photocluster.store.Store` builds on this one
    connection, so they share its transactions.
    """

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = user_version(self.conn)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(str(self.path), version, SCHEMA_VERSION)
        if version == SCHEMA_VERSION:
            return
        # Migrated under the write lock, which re-reads the version: another process may
        # have migrated meanwhile.
        with self.transaction() as conn:
            apply_migrations(conn)

    @property
    def schema_version(self) -> int:
        return user_version(self.conn)

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

    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_settings(self, conn: sqlite3.Connection, values: dict[str, str]) -> None:
        conn.executemany("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", values.items())
