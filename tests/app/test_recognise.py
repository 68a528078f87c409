"""Recognition and the same-photo rule on the real models and fixture photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, make_face
from photocluster.app.corrections import name_person
from photocluster.app.listing import persons
from photocluster.app.recluster import recluster
from photocluster.app.recognise import _blocked_knn, _vote, find, who
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

SMALL = DetectionSettings(max_size=640)
# Biden is 206 px wide in the 2000 px obama_and_biden.jpg: at 640 px he is 66 px, too small.
MEDIUM = DetectionSettings(max_size=1024)


def test_blocked_knn_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    base, queries = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)
    idx, dist = _blocked_knn(queries, base, 4, block=3)
    full = np.linalg.norm(queries[:, None] - base[None], axis=2)
    assert idx.tolist() == np.argsort(full, axis=1)[:, :4].tolist()
    assert np.allclose(dist, np.sort(full, axis=1)[:, :4], atol=1e-4)


def test_vote_needs_a_majority_of_close_neighbours() -> None:
    assert _vote(np.array([1, 1, 2]), np.array([0.3, 0.4, 0.5]), 0.6) == (1, pytest.approx(0.35))
    assert _vote(np.array([1, 2]), np.array([0.3, 0.4]), 0.6) is None  # a tie is no majority
    assert _vote(np.array([1, 2, 2]), np.array([0.3, 0.7, 0.8]), 0.6) == (1, pytest.approx(0.3))
    assert _vote(np.array([1]), np.array([0.61]), 0.6) is None


def test_who_lists_a_photos_faces(store: Store, tmp_path: Path) -> None:
    scan_id = store.begin_scan([tmp_path], "fake")
    path = tmp_path / "p.jpg"
    store.save_photo(path, 1, 1, "x", scan_id, "fake", width=10, height=10, faces=[make_face(fake_embedding(1))])
    rows = who(store, path)
    assert [(r["person"], r["name"]) for r in rows] == [(None, None)]


@pytest.mark.models
def test_same_photo_rule_on_group_photos(fixtures: Path, tmp_path: Path) -> None:
    photos = [
        fixtures / "face_recognition-knn" / "test" / "kit_with_rose.jpg",
        fixtures / "deepface-dataset" / "selfie-many-people.jpg",
    ]
    with Store(tmp_path / "rule.db") as store:
        scan(store, photos, SMALL, workers=2)
        report = recluster(store, 0.6, 1, method="whispers")
        assert report.same_photo_separations >= 1 + 3
        by_photo: dict[str, list[int | None]] = {}
        for person in persons(store):
            for f in person.faces:
                by_photo.setdefault(f.photo_path.name, []).append(person.id)
        for name, ids in by_photo.items():
            assert None not in ids and len(set(ids)) == len(ids), f"{name}: {ids}"
        assert len(by_photo["kit_with_rose.jpg"]) == 2
        assert len(by_photo["selfie-many-people.jpg"]) >= 3


# The new photos: the three shipped in tests/photos, then all five of the larger set.
SHIPPED_TEST = {
    "johnsnow_test1.jpg": ["kit_harington"],
    "kit_with_rose.jpg": ["kit_harington", "rose_leslie"],
    "obama1.jpg": ["obama"],
}
SHARED_TEST = {**SHIPPED_TEST, "obama_and_biden.jpg": ["biden", "obama"], "alex_lacamoire1.jpg": ["alex_lacamoire"]}


@pytest.mark.models
def test_named_training_persons_are_recognised_in_new_photos(fixtures: Path, tmp_path: Path) -> None:
    _recognise_new_photos(fixtures, tmp_path, SHIPPED_TEST, recognised=4)


@pytest.mark.models
@pytest.mark.shared_fixtures
def test_named_training_persons_are_recognised_in_all_new_photos(shared_fixtures: Path, tmp_path: Path) -> None:
    _recognise_new_photos(shared_fixtures, tmp_path, SHARED_TEST, recognised=7)


def _recognise_new_photos(fixtures: Path, tmp_path: Path, expected: dict[str, list[str]], recognised: int) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(fixtures / "face_recognition-knn" / "train", lib / "train")
    with Store(tmp_path / "knn.db") as store:
        scan(store, [lib / "train"], MEDIUM, workers=2)
        recluster(store, 0.6, 1, method="whispers")
        for person in persons(store, include_unknown=False):
            (folder,) = {f.photo_path.parent.name for f in person.faces}
            name_person(store, str(person.id), folder)
        (lib / "test").mkdir()
        for photo in expected:
            shutil.copy2(fixtures / "face_recognition-knn" / "test" / photo, lib / "test" / photo)
        report = scan(store, [lib], MEDIUM, workers=2)
        assert report.analysed == len(expected) and report.unchanged == 9
        for photo, names in expected.items():
            found = sorted(str(r["name"]) for r in who(store, lib / "test" / photo) if r["name"])
            assert found == names, photo
        assert report.recognised == recognised
        # find: a photo that was never scanned, matched against the named persons.
        matches = find(store, fixtures / "face_recognition-examples" / "obama_small.jpg", top=2, settings=MEDIUM)
        assert len(matches) == 1
        best = matches[0].matches[0]
        assert best.name == "obama" and best.is_match and best.distance < 0.6
        assert not matches[0].matches[1].is_match
