"""Scan orchestration with the fake embedder: incremental, moves, missing files, bad files."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from conftest import FakeEmbedder, write_photo
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import DatabaseError, PathNotFoundError
from photocluster.detect.thumbnail import THUMB_PARAMS
from photocluster.store import Store

from .conftest import assert_scan_thumbnails


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    write_photo(root / "a.jpg", (200, 30, 30))
    write_photo(root / "sub" / "b.png", (30, 200, 30), format="PNG")
    write_photo(root / "sub" / "deeper" / "c.jpg", (30, 30, 200))
    return root


def test_first_scan_analyses_every_photo(store: Store, library: Path, fake_embedder: FakeEmbedder) -> None:
    report = scan(store, [library])
    assert (report.files, report.analysed, report.unchanged, report.faces_found) == (3, 3, 0, 3)
    assert fake_embedder.calls == 3
    assert report.errors == []
    assert store.counts()["done"] == 3


def test_second_scan_of_unchanged_tree_decodes_nothing(
    store: Store, library: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan(store, [library])
    decoded = []
    import photocluster.detect.faces as fc

    real_load = fc.load_image
    monkeypatch.setattr(fc, "load_image", lambda *a, **k: decoded.append(a[0]) or real_load(*a, **k))
    report = scan(store, [library])
    assert (report.analysed, report.unchanged) == (0, 3)
    assert fake_embedder.calls == 3
    assert decoded == []
    ids, _, _ = store.active_embeddings()
    assert len(ids) == 3


def test_changed_file_is_analysed_again_and_keeps_one_set_of_faces(
    store: Store, library: Path, fake_embedder: FakeEmbedder
) -> None:
    scan(store, [library])
    write_photo(library / "a.jpg", (10, 10, 10), size=(80, 60))
    os.utime(library / "a.jpg", ns=(1, 1))
    report = scan(store, [library])
    assert (report.analysed, report.unchanged) == (1, 2)
    assert len(store.active_embeddings()[0]) == 3


def test_renamed_file_keeps_its_faces_without_detection(
    store: Store, library: Path, fake_embedder: FakeEmbedder
) -> None:
    scan(store, [library])
    before = {f.id for f, _ in store.faces() if f.photo_path.name == "c.jpg"}
    (library / "sub" / "deeper" / "c.jpg").rename(library / "renamed.jpg")
    report = scan(store, [library])
    assert (report.analysed, report.moved, report.missing) == (0, 1, 0)
    assert fake_embedder.calls == 3
    after = {f.id for f, _ in store.faces() if f.photo_path.name == "renamed.jpg"}
    assert after == before
    assert store.counts() == {"done": 3, "error": 0, "missing": 0, "faces": 3, "persons": 0}


def test_copied_file_reuses_faces(store: Store, library: Path, fake_embedder: FakeEmbedder) -> None:
    scan(store, [library])
    shutil.copy(library / "a.jpg", library / "copy-of-a.jpg")
    report = scan(store, [library])
    assert (report.analysed, report.duplicates) == (0, 1)
    assert store.counts()["faces"] == 4


def test_each_face_gets_its_thumbnail_at_scan_time_and_keeps_it_while_the_photo_is_unchanged(
    store: Store, library: Path, fake_embedder: FakeEmbedder
) -> None:
    settings = DetectionSettings()
    scan(store, [library], settings)
    first = assert_scan_thumbnails(store, settings)
    assert len(first) == 3
    # Unchanged, renamed, copied: no decoding, and the thumbnails are the same bytes.
    scan(store, [library], settings)
    (library / "sub" / "b.png").rename(library / "b-renamed.png")
    shutil.copy2(library / "a.jpg", library / "copy-of-a.jpg")
    report = scan(store, [library], settings)
    assert (report.analysed, report.moved, report.duplicates, fake_embedder.calls) == (0, 1, 1, 3)
    now = assert_scan_thumbnails(store, settings)
    copy = {f.id for f, _ in store.faces() if f.photo_path.name == "copy-of-a.jpg"}
    assert {k: v for k, v in now.items() if k not in copy} == first
    [original] = [f.id for f, _ in store.faces() if f.photo_path.name == "a.jpg"]
    assert [now[f] for f in copy] == [first[original]]
    # A changed photo is analysed again: its face gets the thumbnail of its new pixels.
    write_photo(library / "a.jpg", (10, 10, 10), size=(80, 60))
    report = scan(store, [library], settings)
    assert report.analysed == 1
    changed = assert_scan_thumbnails(store, settings)
    [face] = [f.id for f, _ in store.faces() if f.photo_path.name == "a.jpg"]
    assert changed[face] != first[original]


def test_a_copy_of_a_photo_without_thumbnails_is_left_to_the_export(
    store: Store, library: Path, fake_embedder: FakeEmbedder
) -> None:
    scan(store, [library])
    with store.transaction() as conn:
        conn.execute("DELETE FROM face_thumbs")
    shutil.copy2(library / "a.jpg", library / "copy-of-a.jpg")
    assert scan(store, [library]).duplicates == 1
    assert store.thumbnail_count() == 0
    missing = sorted(p.path.name for p, _ in store.missing_thumbnails(THUMB_PARAMS))
    assert missing == ["a.jpg", "b.png", "c.jpg", "copy-of-a.jpg"]


def test_deleted_file_is_missing_and_leaves_clusters(store: Store, library: Path, fake_embedder: FakeEmbedder) -> None:
    scan(store, [library])
    (library / "a.jpg").unlink()
    report = scan(store, [library])
    assert report.missing == 1
    counts = store.counts()
    assert (counts["done"], counts["missing"], counts["faces"]) == (2, 1, 2)
    # It comes back: same bytes, same faces, no detection.
    write_photo(library / "a.jpg", (200, 30, 30))
    report = scan(store, [library])
    assert store.counts()["missing"] == 0
    assert (report.analysed, fake_embedder.calls) == (0, 3)


def test_scanning_one_folder_does_not_mark_other_roots_missing(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    write_photo(tmp_path / "one" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "two" / "b.jpg", (250, 2, 3))
    scan(store, [tmp_path / "one", tmp_path / "two"])
    report = scan(store, [tmp_path / "one"])
    assert report.missing == 0
    assert store.counts()["done"] == 2


def test_bad_files_are_reported_and_the_scan_goes_on(store: Store, library: Path, fake_embedder: FakeEmbedder) -> None:
    (library / "empty.jpg").write_bytes(b"")
    (library / "text.jpg").write_text("hello, not a photo\n")
    good = (library / "a.jpg").read_bytes()
    (library / "truncated.jpg").write_bytes(good[: len(good) // 3])
    report = scan(store, [library])
    assert report.analysed == 3
    reasons = dict(report.errors)
    assert set(map(os.path.basename, reasons)) == {"empty.jpg", "text.jpg", "truncated.jpg"}
    for _path, reason in report.errors:
        assert "\n" not in reason and reason
    assert store.counts()["error"] == 3
    # Unchanged bad files are not retried, but still reported.
    calls = fake_embedder.calls
    again = scan(store, [library])
    assert len(again.errors) == 3 and fake_embedder.calls == calls
    again = scan(store, [library], retry_errors=True)
    assert len(again.errors) == 3


def test_new_settings_rescan(store: Store, library: Path, fake_embedder: FakeEmbedder) -> None:
    scan(store, [library])
    report = scan(store, [library], DetectionSettings(max_size=800))
    assert report.analysed == 3
    assert len(store.active_embeddings()[0]) == 3


def test_missing_path_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(PathNotFoundError, match="no such file or folder"):
        scan(store, [tmp_path / "nope"])


def test_unwritable_database_fails_before_any_work(tmp_path: Path, library: Path, fake_embedder: FakeEmbedder) -> None:
    db = tmp_path / "ro.db"
    Store(db).close()
    with Store(db) as s:
        s.conn.execute("PRAGMA query_only = ON")
        with pytest.raises(DatabaseError, match="cannot write"):
            scan(s, [library])
    assert fake_embedder.calls == 0


def test_interrupted_scan_resumes_without_redoing_work(
    store: Store, library: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import photocluster.detect.faces as fc
    from photocluster.core.errors import ScanInterrupted

    real = fc.analyze_pixels

    def interrupt_on_third(image, settings):  # type: ignore[no-untyped-def]
        if fake_embedder.calls == 2:
            raise KeyboardInterrupt
        return real(image, settings)

    monkeypatch.setattr(fc, "analyze_pixels", interrupt_on_third)
    with pytest.raises(ScanInterrupted, match="resume"):
        scan(store, [library])
    assert store.counts()["done"] == 2
    status = store.conn.execute("SELECT status FROM scans").fetchall()
    assert status == [("interrupted",)]
    monkeypatch.setattr(fc, "analyze_pixels", real)
    report = scan(store, [library])
    assert (report.analysed, report.unchanged) == (1, 2)
    assert store.counts()["faces"] == 3


def test_worker_processes_give_the_same_result(store: Store, tmp_path: Path) -> None:
    """Real models in 2 spawned workers: tiny photos with no face, so it stays fast."""
    for k in range(4):
        write_photo(tmp_path / "lib" / f"{k}.jpg", (k * 40, 100, 100), size=(60, 40))
    (tmp_path / "lib" / "bad.jpg").write_text("nope")
    report = scan(store, [tmp_path / "lib"], DetectionSettings(max_size=128), workers=2)
    assert (report.files, report.analysed, len(report.errors), report.faces_found) == (5, 4, 1, 0)


def test_named_person_survives_its_photos_going_missing_and_coming_back(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    from photocluster.app.listing import persons
    from photocluster.app.recluster import recluster

    lib = tmp_path / "lib"
    for k in range(3):
        write_photo(lib / f"red{k}.jpg", (200, 20, 40 + 4 * k))
    write_photo(lib / "blue.jpg", (20, 20, 200))
    scan(store, [lib])
    recluster(store, 0.6, 2, method="whispers")
    (person,) = [p for p in persons(store) if p.id is not None]
    store.conn.execute("UPDATE persons SET name = 'Ann' WHERE id = ?", (person.id,))
    hidden = tmp_path / "elsewhere"
    lib.rename(hidden)
    lib.mkdir()
    write_photo(lib / "blue.jpg", (20, 20, 200))
    scan(store, [lib])
    recluster(store, 0.6, 2, method="whispers")
    assert [p.name for p in persons(store) if p.id is not None] == []
    for k in range(3):
        (hidden / f"red{k}.jpg").rename(lib / f"red{k}.jpg")
    scan(store, [lib])
    report = recluster(store, 0.6, 2, method="whispers")
    assert [(p.id, p.name, len(p.faces)) for p in persons(store) if p.id is not None] == [(person.id, "Ann", 3)]
    assert report.kept_ids == 1


def test_a_second_scan_on_the_same_database_is_refused(
    store: Store, library: Path, fake_embedder: FakeEmbedder
) -> None:
    import subprocess
    import sys

    from photocluster.core.errors import BusyError

    with store.exclusive("scan"):
        with pytest.raises(BusyError, match=r"a scan \(pid \d+\) is using this database"):
            scan(store, [library])
        proc = subprocess.run(
            [sys.executable, "-m", "photocluster", "scan", str(library), "--db", str(store.path)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("Error: ") and "is using this database" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert fake_embedder.calls == 0
    assert scan(store, [library]).analysed == 3


def test_progress_comes_in_the_one_shape(
    store: Store, library: Path, fake_embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    from photocluster.app.scan import ScanEvent
    from photocluster.core.progress import Progress

    (library / "bad.jpg").write_text("not a photo")
    told: list[Progress] = []
    with caplog.at_level(logging.DEBUG, logger="photocluster"):
        scan(store, [library], progress=told.append)
    assert all(type(p) is Progress for p in told)
    assert list(dict.fromkeys(p.phase for p in told)) == ["Listing files", "Scanning", "Reading face tags"]
    scanning = [p for p in told if p.phase == "Scanning"]
    assert [p.done for p in scanning] == [0, 1, 2, 3, 4] and {p.total for p in scanning} == {4}
    photos = [p.item for p in scanning if isinstance(p.item, ScanEvent)]
    assert sorted(e.outcome for e in photos) == ["analysed", "analysed", "analysed", "error"]
    assert [p.done for p in told if p.phase == "Reading face tags"] == [0, 1, 2, 3, 4]
    # The library logs (the CLI's --verbose shows it) and never prints or sets up handlers.
    assert any("skipped" in r.getMessage() and "bad.jpg" in r.getMessage() for r in caplog.records)
    assert logging.getLogger("photocluster.app.scan").handlers == []
