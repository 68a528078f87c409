"""The schema, as numbered migrations: ``PRAGMA user_version`` holds how many are applied.

A migration is only ever appended, never edited: databases in the wild are at every
earlier version, and each must reach the current one by the same steps.
"""

from __future__ import annotations

import logging
import sqlite3

from photocluster.core.errors import DatabaseError

log = logging.getLogger(__name__)

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
    # 3: ids are never reused. Without AUTOINCREMENT, SQLite gives a new row the id of the
    # highest row deleted, so a face id from an older review page (or in undo's saved rows)
    # could name another face. SQLite cannot alter a primary key: `faces` and `persons`, and
    # `pins` and `rejections` that point at them, are rebuilt. The old tables are renamed
    # first, which points their foreign keys at the renamed tables, so dropping them fires
    # no cascade into the new ones. Also: a key of each photo's pixels (a metadata-only edit
    # needs no new detection), and `curated` persons (the user corrected them: never
    # deleted for having no face).
    """
    ALTER TABLE photos ADD COLUMN pixel_key TEXT;
    ALTER TABLE persons RENAME TO persons_v2;
    ALTER TABLE faces RENAME TO faces_v2;
    ALTER TABLE pins RENAME TO pins_v2;
    ALTER TABLE rejections RENAME TO rejections_v2;
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        created_at REAL NOT NULL,
        ignored INTEGER NOT NULL DEFAULT 0,
        curated INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    CREATE TABLE pins (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE
    );
    CREATE TABLE rejections (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        PRIMARY KEY (face_id, person_id)
    );
    INSERT INTO persons(id, name, created_at, ignored, curated)
        SELECT id, name, created_at, ignored, id IN (SELECT person_id FROM pins_v2) FROM persons_v2 ORDER BY id;
    INSERT INTO faces(id, photo_id, left, top, right, bottom, confidence, landmarks, embedding, person_id)
        SELECT id, photo_id, left, top, right, bottom, confidence, landmarks, embedding, person_id
        FROM faces_v2 ORDER BY id;
    INSERT INTO pins(face_id, person_id) SELECT face_id, person_id FROM pins_v2;
    INSERT INTO rejections(face_id, person_id) SELECT face_id, person_id FROM rejections_v2;
    DROP TABLE pins_v2;
    DROP TABLE rejections_v2;
    DROP TABLE faces_v2;
    DROP TABLE persons_v2;
    CREATE INDEX faces_photo ON faces(photo_id);
    CREATE INDEX faces_person ON faces(person_id);
    CREATE INDEX pins_person ON pins(person_id);
    """,
    # 4: face tags read from the photos (MWG and Microsoft regions, Picasa, Takeout). A
    # box in displayed pixels (none for a Takeout name); the face it was matched to and the
    # person it named and pinned that face to (so a later pin that differs is the user's).
    # `status`: matched, unmatched (no face there, even on a second look) or weak (a
    # Takeout name on a photo of one face: names a person only when its faces agree).
    # `tag_reads`: a key of the files each photo's tags were read from (a re-scan reads a
    # photo's tags again only when one of them changed).
    """
    CREATE TABLE tags (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        origin BLOB NOT NULL,
        left REAL,
        top REAL,
        right REAL,
        bottom REAL,
        status TEXT NOT NULL CHECK (status IN ('matched', 'unmatched', 'weak')),
        face_id INTEGER REFERENCES faces(id) ON DELETE SET NULL,
        person_id INTEGER REFERENCES persons(id) ON DELETE SET NULL
    );
    CREATE INDEX tags_photo ON tags(photo_id);
    CREATE INDEX tags_face ON tags(face_id);
    CREATE TABLE tag_reads (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        key TEXT NOT NULL
    );
    """,
    # 5: face thumbnails, cut where the photo is decoded anyway (a scan), kept for the
    # review pages and app: an export of a million faces then decodes no photo.
    """
    CREATE TABLE face_thumbs (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        params TEXT NOT NULL,
        jpeg BLOB NOT NULL
    );
    """,
    # 6 (born): a person's birth date (YYYY-MM-DD), a fact the user gives: no face in a
    # photo taken before it can be that person's (see photocluster.core.ages).
    """
    ALTER TABLE persons ADD COLUMN born TEXT;
    """,
    # 7 (names): a person's identity follows its faces across any sequence of runs. The
    # faces a person had when the user last named or corrected it are pinned to it (its
    # anchor): until now a corrected person's current faces were bound at each run, and a
    # named one's not at all, so they are pinned here as they are now. `retired`: the faces
    # of the persons a clustering emptied (a narrow `--min-size`, a loose `--threshold`),
    # so that a later run that finds them together again gives them their earlier id.
    """
    INSERT OR IGNORE INTO pins(face_id, person_id)
        SELECT faces.id, faces.person_id FROM faces JOIN persons ON persons.id = faces.person_id
        WHERE persons.name IS NOT NULL OR persons.ignored = 1
           OR persons.id IN (SELECT DISTINCT person_id FROM pins);
    CREATE TABLE retired (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (face_id, person_id)
    );
    CREATE INDEX retired_person ON retired(person_id);
    """,
    # 8 (curation): faces the user drew on a photo the detector missed (`added`: a scan of
    # the photo keeps them, however its detection changes), and each person's cover face as
    # the user chose it (NULL: the best face is chosen for it).
    """
    ALTER TABLE faces ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE persons ADD COLUMN cover_face_id INTEGER REFERENCES faces(id) ON DELETE SET NULL;
    """,
    # 9 (search lists): the inverted file of the last full clustering's neighbour search,
    # kept so that an incremental run searches a few new faces without assigning every
    # face of the library to the k-means centres again. Derived data: dropped, lost or
    # stale, it is rebuilt (a face it does not list is given its lists when searched).
    # The persons' index holds each face's photo too: the summary of a million faces'
    # persons (faces and photos per person) then reads the index alone (1.2 s -> 0.3 s).
    """
    CREATE TABLE search_lists (
        part INTEGER PRIMARY KEY,  -- 0: the k-means centres, 1, 2, ...: runs of faces
        face_ids BLOB,             -- int64, ascending (NULL in part 0)
        data BLOB NOT NULL,        -- part 0: centres (float32), others: each face's lists (int32)
        width INTEGER NOT NULL     -- the length of data's rows
    );
    DROP INDEX faces_person;
    CREATE INDEX faces_person ON faces(person_id, photo_id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def apply_migrations(conn: sqlite3.Connection) -> None:
    """Bring the database from its version to SCHEMA_VERSION; the caller holds the write lock."""
    start = user_version(conn)
    if start < SCHEMA_VERSION:
        log.info("database schema: version %d to %d", start, SCHEMA_VERSION)
    for number in range(start + 1, SCHEMA_VERSION + 1):
        # executescript would commit on its own; run the statements one by one instead.
        for statement in MIGRATIONS[number - 1].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    # Tables rebuilt with their rows must still hold together; if not, the caller's
    # transaction rolls back and the database stays as it was.
    if start < SCHEMA_VERSION and conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise DatabaseError(f"migrating the database from version {start} left broken references; nothing was changed")
