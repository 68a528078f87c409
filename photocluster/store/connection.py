"""The connection every table family of the store shares, and how values are stored.

One SQLite file in WAL mode with ``synchronous = FULL``: a committed transaction is on
disk before the commit returns, so a power cut loses nothing that was committed. Paths
are stored as the raw bytes the filesystem gives (so any file name round-trips),
embeddings and landmarks as float32 blobs. Schema changes are numbered migrations
(:mod:`photocluster.store.migrations`) applied on open. Every ``sqlite3.Error`` leaves
the store as a :class:`~photocluster.core.errors.DatabaseError` (one line a user can act on).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from photocluster.core.errors import BusyError, DatabaseError, SchemaVersionError
from photocluster.store.migrations import SCHEMA_VERSION, apply_migrations, user_version

# Old SQLite builds allow 999 bound parameters per statement; `IN (...)` lists stay below.
CHUNK = 500
# Bumped by every transaction that changes who is whom: corrections and their undo,
# clustering and recognition write-backs, and a re-scan that drops a corrected face.
# A result computed from an earlier snapshot is written only if it has not moved since.
GENERATION_KEY = "persons.generation"

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


def as_database_error(exc: BaseException, path: str | os.PathLike[str] = "") -> DatabaseError | None:
    """``exc`` as the error photocluster reports, when it is SQLite's; else None."""
    if not isinstance(exc, sqlite3.Error):
        return None
    text = " ".join(str(exc).split()) or type(exc).__name__
    where = f"{os.fspath(path)}: " if os.fspath(path) else ""
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return BusyError(f"{where}another process kept the database locked ({text}); try again when it is done")
    if "readonly" in text or "read-only" in text:
        return DatabaseError(f"{where}cannot write to the database ({text})")
    if isinstance(exc, sqlite3.IntegrityError):
        return DatabaseError(f"{where}the database changed while this was being written ({text}); run it again")
    return DatabaseError(f"{where}database error ({text})")


class _Cursor(sqlite3.Cursor):
    """A cursor whose SQLite errors are :class:`DatabaseError`. (Iterating over it row by
    row is left as SQLite's: the CLI translates what escapes, see ``as_database_error``.)"""

    def _error(self, exc: sqlite3.Error) -> DatabaseError:
        return as_database_error(exc, getattr(self.connection, "db_path", "")) or DatabaseError(str(exc))

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None


class _Connection(sqlite3.Connection):
    """A connection whose statements run on :class:`_Cursor`."""

    db_path: str = ""

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)


# The page size of a new database. A face's stored thumbnail (about 1.8 kB of WebP) and
# its row (about 0.9 kB) fill 16 kB pages almost fully, where 4 kB pages hold two
# thumbnails and leave the rest empty: 1,876 bytes a thumbnail against 2,052
# (benchmarks/thumb_format.py --page-size).
PAGE_SIZE = 16384


class Database:
    """An open database: the connection, its transactions, its locks and its settings.

    Every table family of :class:`photocluster.store.Store` builds on this one
    connection, so they share its transactions.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # Connections that see this one's snapshot, while it lasts (snapshot(readers=...)).
        self.readers: list[_Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"{self.path.parent}: cannot create the database folder ({exc.strerror})") from None
        try:
            # Autocommit mode: transactions are explicit (see `transaction`).
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, factory=_Connection)
            assert isinstance(conn, _Connection)
            conn.db_path = os.fspath(self.path)
            self.conn = conn

            def raw(sql: str) -> sqlite3.Cursor:  # untranslated: errors here are "cannot open"
                return sqlite3.Connection.execute(conn, sql)

            raw("PRAGMA foreign_keys = ON")
            raw("PRAGMA busy_timeout = 30000")
            # Before WAL mode, which fixes the page size of a new database (an existing one
            # keeps its own): see PAGE_SIZE.
            raw(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = raw("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DatabaseError(f"{self.path}: cannot switch the database to WAL mode (got {mode})")
            # FULL: in WAL mode, NORMAL may lose the last commits to a power cut (they are in
            # the WAL, not yet synced); FULL syncs the WAL at every commit. A scan commits
            # once per photo: 3.5 ms against 0.3 ms here, nothing next to a photo's
            # detection (benchmarks/rescan.py, "sync").
            raw("PRAGMA synchronous = FULL")
            raw("PRAGMA user_version").fetchone()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise DatabaseError(f"{self.path}: cannot open the database ({exc})") from None
        except DatabaseError:
            self._close_quietly()
            raise
        try:
            self._migrate()
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
            sqlite3.Connection.execute(self.conn, "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot write to the database ({exc})") from None
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                sqlite3.Connection.execute(self.conn, "COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise DatabaseError(f"{self.path}: cannot write to the database ({exc})") from None

    @contextmanager
    def snapshot(self, readers: int = 0) -> Iterator[None]:
        """Several reads that see one state of the database, whatever a scan commits meanwhile.

        ``readers``: as many more connections, for reads on other threads, that see the
        same state (:attr:`readers` while the snapshot lasts). They are had only when no
        other process is writing at that moment, and not in a snapshot already begun,
        whose state could be older than theirs: then there are none, and every read is
        this connection's."""
        if self.conn.in_transaction:
            yield
            return
        self.readers = self._readers_of_one_state(readers) if readers > 0 else []
        if not self.readers:
            self.conn.execute("BEGIN")
        try:
            yield
        finally:
            for reader in self.readers:
                reader.close()
            self.readers = []
            self.conn.execute("COMMIT")

    def _readers_of_one_state(self, count: int) -> list[_Connection]:
        """Begin this connection's snapshot and ``count`` more connections' in the same
        state, or nothing (an empty list, no snapshot begun) when none can be had.

        In WAL mode each connection reads the state of the last commit before its first
        read. Holding the write lock meanwhile, on a connection of its own that writes
        nothing, no commit can land between the first reads: they all see one state."""
        try:
            lock = sqlite3.connect(self.path, isolation_level=None, timeout=0.0)
        except sqlite3.Error:
            return []
        readers: list[_Connection] = []
        try:
            try:
                lock.execute("BEGIN IMMEDIATE")  # no waiting: another process writing, read alone
            except sqlite3.Error:
                return []
            try:
                for _ in range(count):
                    reader = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False, factory=_Connection
                    )
                    assert isinstance(reader, _Connection)
                    reader.db_path = os.fspath(self.path)
                    readers.append(reader)
                for conn in (self.conn, *readers):
                    conn.execute("BEGIN")
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # its state, from here on
            except (sqlite3.Error, DatabaseError):
                for reader in readers:
                    reader.close()
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                return []
            return readers
        finally:
            if lock.in_transaction:
                lock.execute("ROLLBACK")
            lock.close()

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

    def generation(self) -> int:
        """How many times who is whom has changed (see ``GENERATION_KEY``); cheap: one row."""
        return read_generation(self.conn)


def read_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (GENERATION_KEY,)).fetchone()
    return 0 if row is None else int(row[0])


def bump_generation(conn: sqlite3.Connection) -> None:
    """Inside a write transaction: what was computed from an earlier state is stale now."""
    conn.execute(
        "INSERT INTO settings(key, value) VALUES (?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (GENERATION_KEY,),
    )
