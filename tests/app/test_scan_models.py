"""scan -> clusters -> export on the real dlib models and the labelled fixture photos."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import rgba_png
from photocluster.app.export import export
from photocluster.app.listing import persons
from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

from .conftest import assert_scan_thumbnails

pytestmark = pytest.mark.models


def labels(fixtures: Path) -> dict[str, str]:
    with open(fixtures / "labels.csv", newline="") as fh:
        return {row["relative_path"]: row["identity"] for row in csv.DictReader(fh)}


def identity_of(fixtures: Path, path: Path, table: dict[str, str]) -> str:
    return table[path.relative_to(fixtures).as_posix()]


@pytest.fixture(scope="module")
def johns(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    db = tmp_path_factory.mktemp("johns") / "johns.db"
    with Store(db) as store:
        report = scan(store, [fixtures / "dlib-johns"], workers=2)
        assert report.errors == []
        assert (report.files, report.analysed) == (55, 55)
        yield store


def test_johns_give_five_pure_persons_of_eleven(johns: Store, fixtures: Path) -> None:
    report = recluster(johns, 0.6, 2, method="whispers")
    assert report.faces == 55
    table = labels(fixtures)
    people = [p for p in persons(johns) if p.id is not None]
    assert len(people) == 5
    for person in people:
        ids = Counter(identity_of(fixtures, f.photo_path, table) for f in person.faces)
        assert len(ids) == 1, f"person {person.id} mixes {dict(ids)}"
        assert len(person.faces) == 11
    assert not [p for p in persons(johns) if p.id is None]


def test_clustering_is_deterministic(johns: Store) -> None:
    recluster(johns, 0.6, 2, method="whispers")
    first = johns.face_persons()
    again = recluster(johns, 0.6, 2, method="whispers")
    assert johns.face_persons() == first
    assert (again.kept_ids, again.new_persons) == (5, 0)


def test_knn_train_gives_one_person_per_folder(fixtures: Path, tmp_path: Path) -> None:
    train = fixtures / "face_recognition-knn" / "train"
    with Store(tmp_path / "knn.db") as store:
        report = scan(store, [train], DetectionSettings(max_size=640), workers=2)
        assert (report.files, report.faces_found, report.errors) == (9, 9, [])
        recluster(store, 0.6, min_size=1, method="whispers")
        folders_of_person: dict[int | None, set[str]] = defaultdict(set)
        for person in persons(store):
            for face in person.faces:
                folders_of_person[person.id].add(face.photo_path.parent.name)
        assert None not in folders_of_person
        assert sorted(sorted(v) for v in folders_of_person.values()) == [
            ["alex_lacamoire"],
            ["biden"],
            ["kit_harington"],
            ["obama"],
            ["rose_leslie"],
        ]


def test_bald_guys_collage_gives_four_persons(fixtures: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "bald.db") as store:
        report = scan(store, [fixtures / "dlib-faces" / "bald_guys.jpg"])  # the defaults
        assert report.faces_found == 25  # SOURCES.md: dlib finds 25 faces in the collage
        recluster(store, min_size=2)
        default = {f.id: p.id for p in persons(store) for f in p.faces}
        people = [p for p in persons(store) if p.id is not None]
        assert len(people) == 4
        assert sum(len(p.faces) for p in people) >= report.faces_found - 1
        # The design's command, `clusters --threshold 0.6`: the default method's operating point.
        recluster(store, 0.6, min_size=2)
        assert {f.id: p.id for p in persons(store) for f in p.faces} == default
        recluster(store, 0.6, min_size=2, method="whispers")
        assert len([p for p in persons(store) if p.id is not None]) == 4


def test_rescan_rename_and_export_on_real_photos(fixtures: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    src = fixtures / "face_recognition-knn" / "train"
    for rel in ("obama/obama.jpg", "obama/obama2.jpg", "biden/biden2.jpg"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, lib / rel)
    rgba_png(src / "obama" / "obama2.jpg", lib / "obama" / "32bit.png")
    settings = DetectionSettings(max_size=512)
    with Store(tmp_path / "lib.db") as store:
        first = scan(store, [lib], settings)
        assert (first.analysed, first.faces_found) == (4, 4)
        thumbs = assert_scan_thumbnails(store, settings)
        second = scan(store, [lib], settings)
        assert (second.analysed, second.unchanged) == (0, 4)
        (lib / "biden" / "biden2.jpg").rename(lib / "joe.jpg")
        third = scan(store, [lib], settings)
        assert (third.analysed, third.moved, third.missing) == (0, 1, 0)
        assert assert_scan_thumbnails(store, settings) == thumbs
        recluster(store, 0.6, 2, method="whispers")
        result = export(store, tmp_path / "out")
        index = json.loads((tmp_path / "out" / "index.json").read_text())
        assert [len(p["faces"]) for p in index["persons"]] == [3]
        assert [Path(f["photo"]).name for f in index["unknown"]["faces"]] == ["joe.jpg"]
        assert result.created == 4
        assert sorted(p.name for p in (tmp_path / "out" / "person_0001").iterdir()) == [
            "32bit.png",
            "obama.jpg",
            "obama2.jpg",
        ]


def test_the_worker_processes_cut_each_faces_thumbnail(johns: Store) -> None:
    assert len(assert_scan_thumbnails(johns, DetectionSettings())) == 55


def test_a_photo_changed_in_place_gets_the_thumbnails_of_its_new_faces(fixtures: Path, tmp_path: Path) -> None:
    photo = tmp_path / "lib" / "people.jpg"
    photo.parent.mkdir()
    shutil.copy2(fixtures / "face_recognition-examples" / "two_people.jpg", photo)
    settings = DetectionSettings(max_size=512)
    with Store(tmp_path / "lib.db") as store:
        assert scan(store, [photo.parent], settings).faces_found == 2
        before = assert_scan_thumbnails(store, settings)
        shutil.copy(fixtures / "face_recognition-knn" / "train" / "biden" / "biden2.jpg", photo)
        again = scan(store, [photo.parent], settings)
        assert (again.analysed, again.faces_found) == (1, 1)
        after = assert_scan_thumbnails(store, settings)
        assert len(after) == 1 and not set(after.values()) & set(before.values())


def test_scan_killed_at_random_moments_resumes_without_loss_or_duplicates(fixtures: Path, tmp_path: Path) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    lib = tmp_path / "lib"
    lib.mkdir()
    photos = sorted((fixtures / "dlib-johns").rglob("*.jpg"))[::3][:16]
    for k, src in enumerate(photos):
        shutil.copy2(src, lib / f"{k:02d}.jpg")
    db = tmp_path / "killed.db"
    # dlib's own engine (~1 s a photo) keeps the scan running long enough to be killed.
    cmd = [sys.executable, "-m", "photocluster", "scan", str(lib), "--db", str(db), "--workers", "1", "--json"]
    cmd += ["--engine", "dlib"]
    rng = random.Random(1234)
    kills = 0

    def scans_started() -> int:
        if not db.exists():
            return 0
        with Store(db) as s:
            return int(s.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])

    for _ in range(5):
        started = scans_started()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill during the scan proper, not while Python is still importing (slow on a busy machine).
        deadline = time.monotonic() + 120
        while scans_started() == started and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3
    final = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert '"error_count": 0' in final.stdout
    with Store(db) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_photo = store.conn.execute(
            "SELECT photos.path, COUNT(faces.id) FROM photos LEFT JOIN faces ON faces.photo_id = photos.id "
            "GROUP BY photos.id"
        ).fetchall()
        assert len(per_photo) == len(photos)
        assert {n for _, n in per_photo} == {1}
        statuses = [s for (s,) in store.conn.execute("SELECT status FROM scans ORDER BY id")]
        assert statuses[-1] == "completed"
        assert statuses.count("interrupted") == kills
