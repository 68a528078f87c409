"""The SQLite store: schema, photos, faces, persons."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, make_face
from photocluster.core.errors import ConcurrentChangeError, DatabaseError, SchemaVersionError
from photocluster.core.types import Box, Face
from photocluster.store import Store, path_from_key, path_key
from photocluster.store.connection import PAGE_SIZE
from photocluster.store.migrations import MIGRATIONS, SCHEMA_VERSION
from photocluster.store.persons import RETIRED_PER_FACE

SETTINGS = "cnn/max1600/upauto/v1"


def random_face(seed: int, box: tuple[float, float, float, float] = (10.5, 20.25, 60.125, 90.0)) -> Face:
    """A face whose arrays use all of float32's precision, to check nothing is rounded."""
    rng = np.random.default_rng(seed)
    return Face(
        box=Box(*box),
        confidence=float(rng.random()),
        landmarks=rng.normal(size=(5, 2)).astype(np.float32) * 100,
        embedding=rng.normal(size=128).astype(np.float32),
    )


def save(store: Store, path: Path, scan_id: int = 1, **kwargs: object) -> int:
    kwargs.setdefault("width", 640)
    kwargs.setdefault("height", 480)
    sha = kwargs.pop("sha256", f"sha-{path.name}")
    ensure_scan(store, scan_id)
    return store.save_photo(path, 100, 123456789, sha, scan_id, SETTINGS, **kwargs)  # type: ignore[arg-type]


def ensure_scan(store: Store, scan_id: int) -> None:
    """photos.scan_id references scans(id): start scans up to ``scan_id``."""
    while (store.conn.execute("SELECT MAX(id) FROM scans").fetchone()[0] or 0) < scan_id:
        store.begin_scan([Path("/photos")], SETTINGS)


def table_names(store: Store) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- schema and opening --------------------------------------------------------


def test_fresh_database_is_at_the_current_schema_version(tmp_path: Path) -> None:
    with Store(tmp_path / "new" / "sub" / "x.db") as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert table_names(store) >= {"photos", "faces", "persons", "scans", "settings"}
    assert (tmp_path / "new" / "sub" / "x.db").is_file()


def test_database_is_in_wal_mode_with_foreign_keys(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_new_database_has_the_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    with Store(tmp_path / "new.db") as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    # A library made before: 4 kB pages, already in WAL mode (its page size is fixed).
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with Store(old) as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        pid = save(store, tmp_path / "a.jpg", faces=[random_face(1)])
        assert len(store.photo_faces(pid)) == 1


def test_reopening_keeps_data_and_version(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    with Store(db) as store:
        pid = save(store, tmp_path / "a.jpg", faces=[random_face(1)])
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert len(store.photo_faces(pid)) == 1
        assert store.photo(pid).path == tmp_path / "a.jpg"


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(SchemaVersionError) as info:
        Store(db)
    assert info.value.found == SCHEMA_VERSION + 5
    assert info.value.supported == SCHEMA_VERSION
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 5}" in message
    assert f"supports ({SCHEMA_VERSION})" in message
    assert message.startswith(str(db))
    assert "\n" not in message
    # Nothing was changed.
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    conn.close()


def test_database_under_a_regular_file_raises_database_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatabaseError) as info:
        Store(tmp_path / "file.txt" / "db.sqlite")
    assert str(info.value).startswith(f"{tmp_path / 'file.txt'}: cannot create the database folder")
    assert "\n" not in str(info.value)


def test_database_path_that_is_a_folder_raises_database_error(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    with pytest.raises(DatabaseError) as info:
        Store(tmp_path / "db")
    assert str(info.value).startswith(f"{tmp_path / 'db'}: cannot open the database")


def test_a_file_that_is_not_a_database_raises_database_error(tmp_path: Path) -> None:
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseError) as info:
        Store(db)
    assert str(info.value).startswith(f"{db}: cannot open the database")


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO settings(key, value) VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert store.get_setting("k") is None
    with store.transaction() as conn:
        store.set_settings(conn, {"k": "v", "k2": "w"})
    assert (store.get_setting("k"), store.get_setting("k2")) == ("v", "w")


def test_check_writable_records_last_opened(store: Store) -> None:
    store.check_writable()
    assert float(store.get_setting("last_opened") or "0") > 0


# -- paths ---------------------------------------------------------------------


def test_path_key_is_absolute_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert path_key(Path("a/b.jpg")) == os.fsencode(tmp_path / "a" / "b.jpg")
    assert path_from_key(path_key(tmp_path / "x.jpg")) == tmp_path / "x.jpg"


def test_paths_with_invalid_utf8_round_trip(store: Store, tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff\xfe.jpg"
    path = Path(os.fsdecode(raw))
    pid = save(store, path, faces=[random_face(3)], sha256="abc")
    photo, settings = store.photo_by_path(path)  # type: ignore[misc]
    assert photo.id == pid
    assert settings == SETTINGS
    assert os.fsencode(photo.path) == raw
    assert store.conn.execute("SELECT path FROM photos WHERE id = ?", (pid,)).fetchone()[0] == raw
    (face, _emb) = store.faces()[0]
    assert os.fsencode(face.photo_path) == raw
    assert store.face_count(path) == 1
    save(store, path, error="not a readable image", sha256="abc")
    assert [(os.fsencode(p), r) for p, r in store.errors()] == [(raw, "not a readable image")]


# -- photos and faces ----------------------------------------------------------


def test_save_photo_round_trips_faces_exactly(store: Store, tmp_path: Path) -> None:
    faces = [random_face(1), random_face(2, box=(100, 100, 180.75, 190.5))]
    pid = save(store, tmp_path / "a.jpg", faces=faces, taken_at="2021-07-04T15:30:09")
    photo = store.photo(pid)
    assert (photo.size, photo.mtime_ns, photo.sha256) == (100, 123456789, "sha-a.jpg")
    assert (photo.width, photo.height, photo.taken_at, photo.status, photo.error) == (
        640,
        480,
        "2021-07-04T15:30:09",
        "done",
        None,
    )
    stored = store.photo_faces(pid)
    assert len(stored) == 2
    for original, back in zip(faces, stored, strict=True):
        assert back.photo_id == pid
        assert back.person_id is None
        assert back.box == original.box
        assert back.confidence == original.confidence
        assert back.landmarks.dtype == np.float32
        assert back.embedding.dtype == np.float32
        assert back.landmarks.tobytes() == original.landmarks.tobytes()
        assert back.embedding.tobytes() == original.embedding.tobytes()
    assert stored[0].id is not None and stored[1].id is not None
    assert stored[0].id < stored[1].id


def test_saving_again_replaces_the_faces(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    pid = save(store, path, faces=[random_face(1), random_face(2)])
    again = save(store, path, faces=[random_face(3)], width=320, height=240)
    assert again == pid
    stored = store.photo_faces(pid)
    assert len(stored) == 1
    assert stored[0].embedding.tobytes() == random_face(3).embedding.tobytes()
    assert store.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 1
    assert store.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 1
    assert (store.photo(pid).width, store.photo(pid).height) == (320, 240)
    assert store.face_count(path) == 1


def test_error_rows_hide_their_faces_and_are_listed(store: Store, tmp_path: Path) -> None:
    good = save(store, tmp_path / "good.jpg", faces=[random_face(1)])
    bad = save(store, tmp_path / "bad.jpg", faces=[random_face(2)])
    (kept,) = store.photo_faces(bad)
    save(store, tmp_path / "bad.jpg", scan_id=2, error="corrupt image (x)", width=None, height=None)
    photo = store.photo(bad)
    assert (photo.status, photo.error, photo.width) == ("error", "corrupt image (x)", None)
    # Kept, as for a missing photo, so that the face (and what the user made of it) comes
    # back when the file is fixed; hidden from everything meanwhile.
    assert [f.id for f in store.photo_faces(bad)] == [kept.id]
    assert store.active_faces()[0].tolist() == [f.id for f in store.photo_faces(good)]
    assert store.errors() == [(tmp_path / "bad.jpg", "corrupt image (x)")]
    assert store.errors(scan_id=2) == [(tmp_path / "bad.jpg", "corrupt image (x)")]
    assert store.errors(scan_id=1) == []
    assert store.counts() == {"done": 1, "error": 1, "missing": 0, "faces": 1, "persons": 0}
    # A fixed file becomes a normal photo again.
    save(store, tmp_path / "bad.jpg", scan_id=3, faces=[random_face(3)])
    assert store.errors() == []
    assert store.photo(bad).status == "done"
    assert store.photo(good).status == "done"


def test_face_count_of_unknown_path_is_zero(store: Store, tmp_path: Path) -> None:
    assert store.face_count(tmp_path / "nope.jpg") == 0
    assert store.photo_by_path(tmp_path / "nope.jpg") is None


def test_photo_with_unknown_id_raises(store: Store) -> None:
    with pytest.raises(DatabaseError, match="no photo with id 42"):
        store.photo(42)


def test_faces_continued_by_a_new_analysis_keep_their_rows(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    pid = save(store, path, faces=[random_face(1), random_face(2), random_face(3)])
    first, second, third = (f.id for f in store.photo_faces(pid))
    assert first is not None and second is not None and third is not None
    with store.transaction() as conn:
        person = store.create_person(conn, "Ann")
    store.move_face(second, person, None, command="move")
    store.remove_face(first, person, command="remove")
    # The second face is found again, the first is not, and one face is new.
    save(store, path, faces=[random_face(12), random_face(4)], keep=[second, None])
    faces = {f.id: f for f in store.photo_faces(pid)}
    assert sorted(faces) == [second, third + 1] and faces[second].person_id == person
    assert faces[second].embedding.tobytes() == random_face(12).embedding.tobytes()
    assert store.pins() == {second: person} and store.rejections() == []
    # A stale id (not a face of this photo) is a new face, never another photo's row.
    other = save(store, tmp_path / "b.jpg", faces=[random_face(5)])
    (foreign,) = store.photo_faces(other)
    save(store, path, faces=[random_face(6)], keep=[foreign.id])
    assert [f.id for f in store.photo_faces(other)] == [foreign.id]
    assert [f.id for f in store.photo_faces(pid)] == [third + 3]
    with pytest.raises(ValueError, match="one entry per face"):
        save(store, path, faces=[random_face(6)], keep=[None, None])


def test_photos_by_hash_needs_same_settings_and_a_result(store: Store, tmp_path: Path) -> None:
    a = save(store, tmp_path / "a.jpg", sha256="h")
    store.save_photo(tmp_path / "b.jpg", 1, 1, "h", 1, "hog/max1600/upauto/v1", width=1, height=1)
    save(store, tmp_path / "c.jpg", sha256="h", error="bad")
    d = save(store, tmp_path / "d.jpg", sha256="h")
    assert [p.id for p in store.photos_by_hash("h", SETTINGS)] == [a, d]
    assert store.photos_by_hash("other", SETTINGS) == []


def test_move_photo_keeps_face_and_person_ids(store: Store, tmp_path: Path) -> None:
    pid = save(store, tmp_path / "old" / "a.jpg", faces=[random_face(1), random_face(2)])
    face_ids = [f.id for f in store.photo_faces(pid)]
    created = store.apply_clustering({face_ids[0]: -1, face_ids[1]: -1}, [-1], {})
    person = created[-1]
    store.move_photo(pid, tmp_path / "new" / "b.jpg", 200, 999, scan_id=2)
    assert store.photo_by_path(tmp_path / "old" / "a.jpg") is None
    photo, _ = store.photo_by_path(tmp_path / "new" / "b.jpg")  # type: ignore[misc]
    assert (photo.id, photo.size, photo.mtime_ns, photo.status) == (pid, 200, 999, "done")
    moved = store.photo_faces(pid)
    assert [f.id for f in moved] == face_ids
    assert [f.person_id for f in moved] == [person, person]
    assert store.face_persons() == {face_ids[0]: person, face_ids[1]: person}


def test_move_photo_replaces_a_stale_row_at_the_destination(store: Store, tmp_path: Path) -> None:
    moving = save(store, tmp_path / "a.jpg", faces=[random_face(1)])
    stale = save(store, tmp_path / "b.jpg", faces=[random_face(2)])
    store.move_photo(moving, tmp_path / "b.jpg", 1, 1, scan_id=2)
    assert store.photo_by_path(tmp_path / "b.jpg")[0].id == moving  # type: ignore[index]
    with pytest.raises(DatabaseError):
        store.photo(stale)
    # The stale photo's faces went with it (ON DELETE CASCADE).
    assert store.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 1


def test_mark_missing_only_under_the_scanned_roots(store: Store, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    ids = {
        name: save(store, lib.parent / name, scan_id=1, faces=[make_face(fake_embedding(name))])
        for name in ["lib/seen.jpg", "lib/gone.jpg", "lib/sub/gone2.jpg", "lib2/other.jpg", "elsewhere/x.jpg"]
    }
    store.mark_seen([ids["lib/seen.jpg"]], scan_id=2)
    assert store.mark_missing(2, [lib]) == 2
    status = {name: store.photo(pid).status for name, pid in ids.items()}
    assert status == {
        "lib/seen.jpg": "done",
        "lib/gone.jpg": "missing",
        "lib/sub/gone2.jpg": "missing",
        "lib2/other.jpg": "done",  # "lib2" starts with "lib" but is not under it
        "elsewhere/x.jpg": "done",
    }
    # Already missing: not counted again.
    assert store.mark_missing(2, [lib]) == 0


def test_mark_missing_keeps_unreadable_folders(store: Store, tmp_path: Path) -> None:
    a = save(store, tmp_path / "lib" / "a.jpg")
    b = save(store, tmp_path / "lib" / "locked" / "b.jpg")
    c = save(store, tmp_path / "lib" / "locked2" / "c.jpg")
    assert store.mark_missing(2, [tmp_path / "lib"], keep_under=[tmp_path / "lib" / "locked"]) == 2
    assert [store.photo(i).status for i in (a, b, c)] == ["missing", "done", "missing"]


def test_mark_missing_of_a_single_file_root(store: Store, tmp_path: Path) -> None:
    a = save(store, tmp_path / "a.jpg")
    b = save(store, tmp_path / "a.jpg2" / "b.jpg")
    assert store.mark_missing(2, [tmp_path / "a.jpg"]) == 1
    assert [store.photo(i).status for i in (a, b)] == ["missing", "done"]


def test_missing_photos_leave_the_clusters_but_keep_their_faces(store: Store, tmp_path: Path) -> None:
    a = save(store, tmp_path / "a.jpg", faces=[make_face(fake_embedding("a"))])
    b = save(store, tmp_path / "b.jpg", faces=[make_face(fake_embedding("b")), make_face(fake_embedding("c"))])
    fa = store.photo_faces(a)[0].id
    fb = [f.id for f in store.photo_faces(b)]
    created = store.apply_clustering({fa: -1, fb[0]: -1, fb[1]: None}, [-1], {})
    store.mark_seen([a], scan_id=2)
    assert store.mark_missing(2, [tmp_path]) == 1

    ids, photo_ids, emb = store.active_embeddings()
    assert ids.tolist() == [fa]
    assert photo_ids.tolist() == [a]
    assert emb.shape == (1, 128)
    assert emb.dtype == np.float32
    assert emb[0].tobytes() == fake_embedding("a").tobytes()
    assert store.photo(b).status == "missing"
    assert len(store.photo_faces(b)) == 2  # kept for when the file comes back
    # The missing face keeps its person link, so it rejoins that person if the file returns.
    assert store.face_persons() == {fa: created[-1], fb[0]: created[-1]}
    assert [f.id for f, _ in store.faces()] == [fa]
    assert store.counts() == {"done": 1, "error": 0, "missing": 1, "faces": 1, "persons": 1}


def test_active_embeddings_of_an_empty_store(store: Store) -> None:
    ids, photo_ids, emb = store.active_embeddings()
    assert ids.shape == (0,)
    assert photo_ids.shape == (0,)
    assert emb.shape == (0, 128)
    assert emb.dtype == np.float32


def _packed_library(store: Store, tmp_path: Path) -> None:
    """Photos of faces with full-precision descriptors (a zero one among them: bytes of
    zero inside the blobs), ids with gaps, a missing photo, some faces in persons."""
    zero = Face(
        box=Box(1, 2, 3, 4),
        confidence=0.35,
        landmarks=np.zeros((5, 2), np.float32),
        embedding=np.zeros(128, np.float32),
    )
    ids = []
    for p in range(12):
        faces = [random_face(10 * p + f) for f in range(1 + p % 3)] + ([zero] if p == 5 else [])
        ids.append(save(store, tmp_path / f"{p}.jpg", faces=faces))
    save(store, tmp_path / "9.jpg", faces=[random_face(999)])  # faces replaced: ids skipped
    faces = store.conn.execute("SELECT id FROM faces ORDER BY id").fetchall()
    store.apply_clustering({f: -1 for (f,) in faces[::3]}, [-1], {})
    store.mark_seen([i for i in ids if i != ids[4]], scan_id=2)
    assert store.mark_missing(2, [tmp_path]) == 1


def test_the_whole_table_read_gives_the_rows_read_one_at_a_time(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import photocluster.store.faces as faces_module

    _packed_library(store, tmp_path)
    monkeypatch.setattr(faces_module, "_PACK", 4)  # many queries, one face per photo and more
    ids, photo_ids, person_ids, low, emb = store.active_face_rows(0.5)
    ref_ids, ref_photos, ref_persons, _, ref_emb = store._face_rows("1")
    assert ids.tolist() == ref_ids.tolist() and len(ids) > 12
    assert photo_ids.tolist() == ref_photos.tolist()
    assert person_ids.tolist() == ref_persons.tolist() and (person_ids >= 0).any() and (person_ids < 0).any()
    assert emb.tobytes() == ref_emb.tobytes()
    assert not np.any(emb, axis=1).all()  # the zero descriptor came through
    stored = dict(store.conn.execute("SELECT id, confidence FROM faces").fetchall())
    assert low.tolist() == [stored[f] < 0.5 for f in ids.tolist()] and low.any() and not low.all()
    assert store.active_face_rows(0.0)[3].sum() == 0
    assert [a.tolist() for a in store.active_faces()] == [a.tolist() for a in (ids, photo_ids, person_ids, emb)]


@pytest.mark.parametrize("pack", [4, 1000])
def test_two_readers_of_one_snapshot_read_the_table_as_one(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pack: int
) -> None:
    import photocluster.store.faces as faces_module

    _packed_library(store, tmp_path)
    alone = store.active_face_rows(0.5)
    monkeypatch.setattr(faces_module, "_PACK", pack)
    monkeypatch.setattr(faces_module, "_SPLIT_FROM", 1)
    halves = []
    original = faces_module._read_packed

    def spy(conn: sqlite3.Connection, *args: object) -> None:
        halves.append(conn)
        original(conn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(faces_module, "_read_packed", spy)
    with store.snapshot(readers=1):
        assert len(store.readers) == 1
        together = store.active_face_rows(0.5)
    assert store.readers == [] and len(set(map(id, halves))) == 2
    assert [a.tobytes() for a in together] == [a.tobytes() for a in alone]


def test_a_snapshots_readers_see_its_state_whatever_commits_after(store: Store, tmp_path: Path) -> None:
    _packed_library(store, tmp_path)
    other = sqlite3.connect(store.path, isolation_level=None)
    count = "SELECT count(*) FROM faces"
    with store.snapshot(readers=1):
        (reader,) = store.readers
        before = store.conn.execute(count).fetchone()
        other.execute("DELETE FROM faces WHERE id IN (SELECT id FROM faces LIMIT 3)")  # committed
        assert store.conn.execute(count).fetchone() == reader.execute(count).fetchone() == before
    assert store.conn.execute(count).fetchone()[0] == before[0] - 3
    other.close()


def test_no_reader_is_had_while_another_process_writes(store: Store, tmp_path: Path) -> None:
    _packed_library(store, tmp_path)
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with store.snapshot(readers=1):
            # Read alone, at once: no waiting for the writer, no state it could not vouch for.
            assert store.readers == []
            assert len(store.active_face_rows(0.5)[0]) > 12
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with store.snapshot(), store.snapshot(readers=1):
        assert store.readers == []  # a snapshot begun earlier may be older than any new reader's


def test_a_database_in_utf16_is_read_row_by_row_alike(tmp_path: Path) -> None:
    db = tmp_path / "utf16.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.execute("CREATE TABLE first_page(a)")  # the encoding is fixed when the file is first written
    conn.execute("DROP TABLE first_page")
    conn.close()
    with Store(db) as store:
        assert store.conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
        _packed_library(store, tmp_path)
        ids, photo_ids, person_ids, low, emb = store.active_face_rows(0.5)
        ref = store._face_rows("1")
        assert [a.tolist() for a in (ids, photo_ids, person_ids, emb)] == [ref[c].tolist() for c in (0, 1, 2, 4)]
        assert low.tolist() == (ref[3] < 0.5).tolist() and low.any()


def test_a_damaged_descriptor_is_named_not_misread(store: Store, tmp_path: Path) -> None:
    _packed_library(store, tmp_path)
    (face,) = store.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 1 OFFSET 3").fetchone()
    store.conn.execute("UPDATE faces SET embedding = zeroblob(100) WHERE id = ?", (face,))
    with pytest.raises(DatabaseError, match="damaged descriptor"):
        store.active_face_rows(0.5)


# -- persons ---------------------------------------------------------------------


def test_person_summaries_count_the_present_photos_faces_only(store: Store, tmp_path: Path) -> None:
    photos = [save(store, tmp_path / f"{p}.jpg", faces=[random_face(10 * p + f) for f in range(2)]) for p in range(4)]
    faces = [f.id for p in photos for f in store.photo_faces(p)]
    store.apply_clustering({faces[0]: -1, faces[1]: -2, faces[2]: -1, faces[6]: -2}, [-1, -2], {})
    of = store.face_persons()
    ann, bob = of[faces[0]], of[faces[1]]
    store.rename_person(bob, "Bob", command="test")
    every = store.person_summaries()
    assert [row[:4] for row in every] == [
        (ann, None, 2, 2),
        (bob, "Bob", 2, 2),
        (None, None, 4, 3),
    ]
    assert every[0][4] == tmp_path / "0.jpg" and every[-1][4] == tmp_path / "1.jpg"
    # Photos 0 and 3 gone: their faces leave the counts; Bob, named, stays listed with none.
    store.mark_seen(photos[1:3], scan_id=2)
    assert store.mark_missing(2, [tmp_path]) == 2
    assert [row[:4] for row in store.person_summaries()] == [
        (ann, None, 1, 1),
        (bob, "Bob", 0, 0),
        (None, None, 3, 2),
    ]


def test_apply_clustering_creates_and_deletes_persons(store: Store, tmp_path: Path) -> None:
    pid = save(store, tmp_path / "a.jpg", faces=[random_face(k) for k in range(4)])
    f = [face.id for face in store.photo_faces(pid)]
    assert all(i is not None for i in f)
    created = store.apply_clustering({f[0]: -1, f[1]: -1, f[2]: -2, f[3]: None}, [-1, -2], {"cluster.threshold": "0.6"})
    assert sorted(created) == [-2, -1]
    p1, p2 = created[-1], created[-2]
    assert p1 != p2
    assert store.face_persons() == {f[0]: p1, f[1]: p1, f[2]: p2}
    assert store.person_names() == {p1: None, p2: None}
    assert store.get_setting("cluster.threshold") == "0.6"
    assert store.counts()["persons"] == 2

    # Second run: p1 keeps f[0], p2 loses its only face, one new person for f[1], f[3].
    created = store.apply_clustering({f[0]: p1, f[1]: -1, f[2]: None, f[3]: -1}, [-1], {"cluster.threshold": "0.5"})
    p3 = created[-1]
    assert p3 not in (p1, p2)
    assert store.face_persons() == {f[0]: p1, f[1]: p3, f[3]: p3}
    assert store.person_names() == {p1: None, p3: None}
    assert store.get_setting("cluster.threshold") == "0.5"


def test_faces_are_ordered_by_person_then_id_unknown_last(store: Store, tmp_path: Path) -> None:
    pid = save(store, tmp_path / "a.jpg", faces=[random_face(k) for k in range(4)])
    f = [face.id for face in store.photo_faces(pid)]
    created = store.apply_clustering({f[0]: None, f[1]: -2, f[2]: -1, f[3]: -2}, [-1, -2], {})
    rows = store.faces()
    assert [(face.id, face.person_id) for face, _ in rows] == [
        (f[2], created[-1]),
        (f[1], created[-2]),
        (f[3], created[-2]),
        (f[0], None),
    ]
    face, emb = rows[0]
    assert face.photo_id == pid
    assert face.photo_path == tmp_path / "a.jpg"
    assert face.box == Box(10.5, 20.25, 60.125, 90.0)
    assert emb.tobytes() == random_face(2).embedding.tobytes()


def test_deleting_a_photo_row_releases_its_faces(store: Store, tmp_path: Path) -> None:
    pid = save(store, tmp_path / "a.jpg", faces=[random_face(1)])
    with store.transaction() as conn:
        conn.execute("DELETE FROM photos WHERE id = ?", (pid,))
    assert store.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 0


# -- scans -----------------------------------------------------------------------


def test_scans_are_recorded_and_stale_ones_marked_interrupted(store: Store, tmp_path: Path) -> None:
    first = store.begin_scan([tmp_path / "lib"], SETTINGS)
    second = store.begin_scan([tmp_path / "lib"], SETTINGS)
    store.end_scan(second, "completed", {"photos": 3})
    rows = store.conn.execute("SELECT id, status, roots, settings, summary FROM scans ORDER BY id").fetchall()
    assert rows == [
        (first, "interrupted", f'["{tmp_path / "lib"}"]', SETTINGS, None),
        (second, "completed", f'["{tmp_path / "lib"}"]', SETTINGS, '{"photos": 3}'),
    ]


def test_assign_faces_writes_persons_and_settings_in_one_go(store: Store, tmp_path: Path) -> None:
    pid = save(store, tmp_path / "a.jpg", faces=[random_face(k) for k in range(3)])
    f = [int(face.id) for face in store.photo_faces(pid)]  # type: ignore[arg-type]
    created = store.apply_clustering({f[0]: -1, f[1]: None, f[2]: None}, [-1], {})
    store.assign_faces({f[1]: created[-1]}, {"recognition.after_face": str(f[2])})
    assert store.face_persons() == {f[0]: created[-1], f[1]: created[-1]}
    assert store.get_setting("recognition.after_face") == str(f[2])


# -- corrections -----------------------------------------------------------------


def three_persons(store: Store, tmp_path: Path) -> tuple[list[int], list[int]]:
    """Faces 0-1, 2-3 and 4-5 of one photo in three unnamed persons: (face ids, person ids)."""
    pid = save(store, tmp_path / "a.jpg", faces=[random_face(k) for k in range(6)])
    f = [int(face.id) for face in store.photo_faces(pid)]  # type: ignore[arg-type]
    created = store.apply_clustering({face: -1 - k // 2 for k, face in enumerate(f)}, [-1, -2, -3], {})
    return f, [created[-1], created[-2], created[-3]]


def state(store: Store) -> tuple[object, ...]:
    """Everything a correction may change."""
    return store.face_persons(), store.person_names(), store.pins(), sorted(store.rejections()), store.ignored_persons()


def test_rename_person_is_logged_and_undone(store: Store, tmp_path: Path) -> None:
    f, p = three_persons(store, tmp_path)
    before = state(store)
    store.rename_person(p[0], "Ann", command="name Ann")
    assert store.person_names()[p[0]] == "Ann"
    assert store.pins() == {f[0]: p[0], f[1]: p[0]}  # its faces when named: its anchor
    assert [(c, u) for _, _, c, u in store.history()] == [("name Ann", False)]
    assert store.undo() == "name Ann"
    assert state(store) == before
    assert [(c, u) for _, _, c, u in store.history()] == [("name Ann", True)]
    assert store.undo() is None


def test_merge_persons_pins_every_face_and_inherits_a_name(store: Store, tmp_path: Path) -> None:
    f, p = three_persons(store, tmp_path)
    store.rename_person(p[2], "Cy", command="name")
    before = state(store)
    assert store.merge_persons(p[0], [p[1], p[2]], command="merge") == 6
    assert store.face_persons() == dict.fromkeys(f, p[0])
    assert store.pins() == dict.fromkeys(f, p[0])
    assert store.person_names() == {p[0]: "Cy"}
    assert store.undo() == "merge"
    assert state(store) == before


def test_merge_into_a_named_person_keeps_its_name(store: Store, tmp_path: Path) -> None:
    _, p = three_persons(store, tmp_path)
    store.rename_person(p[0], "Ann", command="name")
    store.rename_person(p[1], "Bo", command="name")
    assert store.merge_persons(p[0], [p[1]], command="merge") == 4
    assert store.person_names() == {p[0]: "Ann", p[2]: None}


def test_move_and_remove_face_pin_and_reject(store: Store, tmp_path: Path) -> None:
    f, p = three_persons(store, tmp_path)
    before = state(store)
    store.move_face(f[0], p[1], p[0], command="move")
    assert store.face_persons()[f[0]] == p[1]
    # The person it joins is corrected: its faces as they are now are its anchor.
    assert store.pins() == {f[0]: p[1], f[2]: p[1], f[3]: p[1]}
    assert store.rejections() == [(f[0], p[0])]
    store.remove_face(f[0], p[1], command="remove")
    assert f[0] not in store.face_persons()
    assert store.pins() == {f[2]: p[1], f[3]: p[1]}
    assert sorted(store.rejections()) == sorted([(f[0], p[0]), (f[0], p[1])])
    # Moving a face back where it was rejected lifts that rejection.
    store.move_face(f[0], p[0], None, command="move back")
    assert store.rejections() == [(f[0], p[1])]
    assert [store.undo() for _ in range(3)] == ["move back", "remove", "move"]
    assert state(store) == before


def test_set_person_ignored_pins_its_faces(store: Store, tmp_path: Path) -> None:
    f, p = three_persons(store, tmp_path)
    before = state(store)
    assert store.set_person_ignored(p[2], True, command="ignore") == 2
    assert store.ignored_persons() == {p[2]}
    assert store.pins() == {f[4]: p[2], f[5]: p[2]}
    assert store.set_person_ignored(p[2], False, command="unignore") == 2
    assert store.ignored_persons() == set()
    assert [store.undo() for _ in range(2)] == ["unignore", "ignore"]
    assert state(store) == before


def test_a_failed_correction_changes_and_logs_nothing(store: Store, tmp_path: Path) -> None:
    _, p = three_persons(store, tmp_path)
    before = state(store)
    with pytest.raises(RuntimeError), store.correction("name", [p[0]], []) as conn:
        conn.execute("UPDATE persons SET name = 'Ann' WHERE id = ?", (p[0],))
        raise RuntimeError("boom")
    assert state(store) == before
    assert store.history() == []


def test_a_result_computed_before_a_correction_is_not_written(store: Store, tmp_path: Path) -> None:
    from photocluster.core.errors import ConcurrentChangeError

    pid = save(store, tmp_path / "a.jpg", faces=[random_face(1), random_face(2)])
    first, second = (f.id for f in store.photo_faces(pid))
    assert first is not None and second is not None
    with store.transaction() as conn:
        person = store.create_person(conn)
    generation = store.generation()
    store.rename_person(person, "Ann", command="name")  # binds no face: no new generation
    assert store.generation() == generation
    store.move_face(first, person, None, command="move")
    assert store.generation() == generation + 1
    with pytest.raises(ConcurrentChangeError, match="nothing was written"):
        store.apply_clustering({first: None, second: -1}, [-1], {"k": "v"}, generation=generation)
    with pytest.raises(ConcurrentChangeError):
        store.assign_faces({second: person}, {"k": "v"}, generation=generation)
    assert store.face_persons() == {first: person} and store.get_setting("k") is None
    store.undo()
    assert store.generation() == generation + 2
    store.apply_clustering({first: None}, [], {}, generation=generation + 2)
    assert store.generation() == generation + 3


@pytest.mark.parametrize("read_all", [False, True], ids=["reads-its-faces", "reads-every-face"])
def test_a_person_a_clustering_empties_is_remembered_by_its_faces_and_can_come_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_all: bool
) -> None:
    # A large assignment reads every face's person at once, a small one only its own.
    if read_all:
        monkeypatch.setattr("photocluster.store.persons._READ_ALL_ABOVE", 0)
    f, p = three_persons(store, tmp_path)
    store.rename_person(p[2], "Cy", command="name")
    # A run leaves p[0] and p[1] without faces: they go, their faces remember them; the
    # named p[2] is never emptied, so never remembered.
    store.apply_clustering(dict.fromkeys(f[:4]), [], {})
    assert set(store.person_names()) == {p[2]}
    assert store.retired() == {f[0]: [p[0]], f[1]: [p[0]], f[2]: [p[1]], f[3]: [p[1]]}
    # A later run gives p[0] back: it exists again, and is no longer remembered.
    store.apply_clustering({f[0]: p[0], f[1]: p[0]}, [], {}, revived=[p[0]])
    assert store.face_persons() == {f[0]: p[0], f[1]: p[0], f[4]: p[2], f[5]: p[2]}
    assert store.retired() == {f[2]: [p[1]], f[3]: [p[1]]}
    # A face remembers the last few persons it lost, the latest first.
    lost = []
    for _ in range(RETIRED_PER_FACE + 2):
        (new,) = store.apply_clustering({f[2]: -1}, [-1], {}).values()
        store.apply_clustering({f[2]: None}, [], {})
        lost.append(new)
    assert store.retired()[f[2]] == lost[::-1][:RETIRED_PER_FACE]


def test_a_clustering_that_takes_a_pinned_face_from_its_person_is_refused(store: Store, tmp_path: Path) -> None:
    f, p = three_persons(store, tmp_path)
    store.rename_person(p[0], "Ann", command="name")
    before = state(store)
    with pytest.raises(ConcurrentChangeError, match=f"person {p[0]} was named or corrected"):
        store.apply_clustering({f[0]: None, f[2]: None}, [], {})
    assert state(store) == before
