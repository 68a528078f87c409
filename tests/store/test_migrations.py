"""Schema 3: ids are never reused, and a version 2 database migrates with all it holds."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, make_face
from photocluster.store import Store
from photocluster.store.migrations import MIGRATIONS, SCHEMA_VERSION

SETTINGS = "cnn/max1600/up1/v1"


def save_faces(store: Store, path: Path, n: int, keep: list[int] | None = None) -> list[int]:
    scan_id = store.begin_scan([path.parent], SETTINGS)
    faces = [make_face(fake_embedding(f"{path.name}{k}"), (10 + 60 * k, 10, 60 + 60 * k, 60)) for k in range(n)]
    pid = store.save_photo(
        path, 1, 1, path.name, scan_id, SETTINGS, width=500, height=100, faces=faces, keep=keep or []
    )
    return [int(f.id) for f in store.photo_faces(pid) if f.id is not None]


def new_person(store: Store, name: str | None = None) -> int:
    with store.transaction() as conn:
        return store.create_person(conn, name)


def test_face_and_person_ids_are_never_reused(store: Store, tmp_path: Path) -> None:
    ids = save_faces(store, tmp_path / "a.jpg", 3)
    people = [new_person(store, "Ann"), new_person(store)]
    # The highest face goes (the photo is analysed again and its third face is not found
    # again), and so does the highest person (no face, no name: a clustering deletes it).
    save_faces(store, tmp_path / "a.jpg", 2, keep=ids[:2])
    assert sorted(f.id for f, _ in store.faces()) == ids[:2]
    store.apply_clustering({}, [], {})
    assert store.person_names() == {people[0]: "Ann"}
    (new_face,) = save_faces(store, tmp_path / "b.jpg", 1)
    assert new_face > max(ids)
    assert new_person(store) > max(people)


def v2_database(path: Path) -> None:
    """A version 2 database as photocluster 0.1 left it: two photos, four faces, a named
    person, an ignored one, a pin, a rejection and a logged correction."""
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.executescript(MIGRATIONS[1])
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO scans(id, started_at, status, roots, settings) VALUES (1, 0, 'completed', '[]', 's')")
    for k in (1, 2):
        conn.execute(
            "INSERT INTO photos(id, path, size, mtime_ns, sha256, width, height, status, settings, scan_id, "
            "seen_scan_id, updated_at) VALUES (?, ?, 10, 20, ?, 64, 48, 'done', 's', 1, 1, 0)",
            (k, os.fsencode(path.parent / f"{k}.jpg"), f"sha{k}"),
        )
    conn.execute("INSERT INTO persons(id, name, created_at, ignored) VALUES (3, 'Ann', 1.5, 0), (8, NULL, 2.5, 1)")
    for face_id, photo, person in ((2, 1, 3), (5, 1, 8), (6, 2, 3), (9, 2, None)):
        conn.execute(
            "INSERT INTO faces(id, photo_id, left, top, right, bottom, confidence, landmarks, embedding, person_id) "
            "VALUES (?, ?, 1, 2, 30, 40, 0.9, ?, ?, ?)",
            (face_id, photo, np.zeros((5, 2), "<f4").tobytes(), fake_embedding(face_id).tobytes(), person),
        )
    conn.execute("INSERT INTO pins(face_id, person_id) VALUES (6, 3)")
    conn.execute("INSERT INTO rejections(face_id, person_id) VALUES (9, 3)")
    before = {
        "person_ids": [3],
        "face_ids": [6],
        "persons": [[3, "Ann", 1.5, 0]],
        "assignments": [[6, None]],
        "pins": [],
        "rejections": [],
    }
    conn.execute("INSERT INTO corrections(id, at, command, before) VALUES (1, 0, 'move 6 3', ?)", (json.dumps(before),))
    conn.commit()
    conn.close()


def test_a_version_2_database_migrates_with_its_rows_indexes_and_keys(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    v2_database(db)
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 9
        assert store.all_tags() == []  # migration 4: the face tags table
        assert store.face_persons() == {2: 3, 5: 8, 6: 3}
        assert (store.person_names(), store.ignored_persons()) == ({3: "Ann", 8: None}, {8})
        # Migration 6: a named or ignored person's faces are its anchor (pinned), as the
        # faces of a person with a pin were bound at each clustering before.
        assert (store.pins(), store.rejections()) == ({2: 3, 5: 8, 6: 3}, [(9, 3)])
        assert [f.embedding.tobytes() for f in store.photo_faces(2)] == [
            fake_embedding(6).tobytes(),
            fake_embedding(9).tobytes(),
        ]
        assert store.photo(1).pixel_key is None
        sql = dict(store.conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
        assert {"faces_photo", "faces_person", "pins_person", "photos_sha256", "photos_status"} <= set(sql)
        assert not {"faces_v2", "persons_v2", "pins_v2", "rejections_v2"} & set(sql)
        assert "AUTOINCREMENT" in sql["faces"] and "AUTOINCREMENT" in sql["persons"]
        keys = {
            (table, row[2], row[3], row[6])
            for table in ("faces", "pins", "rejections")
            for row in store.conn.execute(f"PRAGMA foreign_key_list({table})")
        }
        assert keys == {
            ("faces", "photos", "photo_id", "CASCADE"),
            ("faces", "persons", "person_id", "SET NULL"),
            ("pins", "faces", "face_id", "CASCADE"),
            ("pins", "persons", "person_id", "CASCADE"),
            ("rejections", "faces", "face_id", "CASCADE"),
            ("rejections", "persons", "person_id", "CASCADE"),
        }
        # The person with a pin was corrected: curated, never deleted for having no face.
        assert dict(store.conn.execute("SELECT id, curated FROM persons")) == {3: 1, 8: 0}
        # Migration 7 (curation): no face drawn by the user, no cover chosen yet.
        assert store.added_faces() == set() and store.chosen_covers([3, 8]) == {}
        # Migration 9: no neighbour-search lists kept until a full run keeps them; the
        # persons' index holds each face's photo (the persons' summary reads it alone).
        assert store.search_lists() is None
        columns = [row[2] for row in store.conn.execute("PRAGMA index_info(faces_person)")]
        assert columns == ["person_id", "photo_id"]
        assert [row[:3] for row in store.person_summaries()] == [(3, "Ann", 2), (8, None, 1), (None, None, 1)]
        # The foreign keys act: a photo's faces go with it, and their pins and rejections.
        store.conn.execute("DELETE FROM photos WHERE id = 2")
        assert (store.pins(), store.rejections()) == ({2: 3, 5: 8}, [])
        # A correction logged before the migration still undoes.
        assert store.undo() == "move 6 3"
        # Ids above every id the database held, even those of rows deleted just now.
        (face,) = save_faces(store, tmp_path / "new.jpg", 1)
        assert face == 10
        assert new_person(store) == 9


def test_a_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from photocluster.core.errors import DatabaseError
    from photocluster.store import migrations

    db = tmp_path / "v2.db"
    v2_database(db)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*MIGRATIONS[:2], MIGRATIONS[2] + "; SELECT no_such_function()"])
    with pytest.raises(DatabaseError, match="no such function"):
        Store(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 4
    assert conn.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 1
    conn.close()
