"""Junk detections (a chin, a patterned cloth) never form, join or bridge a person: real
models on the fixture photos where the detector finds them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.core.config import MIN_CONFIDENCE
from photocluster.store import Store

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def junk(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # bald_guys.jpg: a collage of 4 people (24 faces) and a chin and collar the detector
    # takes for a face (0.08); img23.jpg: beads on a dress (0.03) beside a real face.
    photos = [fixtures / "dlib-faces" / "bald_guys.jpg", fixtures / "deepface-dataset" / "img23.jpg"]
    with Store(tmp_path_factory.mktemp("junk") / "junk.db") as store:
        report = scan(store, photos, workers=1)
        assert report.errors == [] and report.analysed == 2
        yield store


def _faces(store: Store) -> list[tuple[int, float, int | None, str]]:
    rows = []
    for face, _emb in store.faces():
        photo = store.photo(face.photo_id)
        rows.append((face.id, face.confidence, face.person_id, photo.path.name))
    return rows


def test_the_detector_finds_the_two_junk_faces(junk: Store) -> None:
    weak = [(conf, name) for _, conf, _, name in _faces(junk) if conf < MIN_CONFIDENCE]
    assert sorted(name for _, name in weak) == ["bald_guys.jpg", "img23.jpg"]


@pytest.mark.parametrize(("threshold", "method"), [(None, "two-stage"), (0.6, "two-stage"), (0.6, "whispers")])
def test_junk_faces_stay_unknown_and_the_collage_gives_four_persons(
    junk: Store, threshold: float | None, method: str
) -> None:
    recluster(junk, threshold, method=method)
    faces = _faces(junk)
    assert all(person is None for _, conf, person, _ in faces if conf < MIN_CONFIDENCE)
    collage = Counter(person for _, conf, person, name in faces if name == "bald_guys.jpg" and conf >= MIN_CONFIDENCE)
    assert None not in collage and len(collage) == 4 and sorted(collage.values()) == [6, 6, 6, 6]
