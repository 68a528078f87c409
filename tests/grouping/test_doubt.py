"""Distances to a person's centre and the faces in doubt, against brute force (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.core.config import DEFAULT_THRESHOLD
from photocluster.grouping.doubt import centroid_distances, distances_to_mean, doubtful_faces
from photocluster.grouping.whispers import UNKNOWN


def test_distances_to_mean() -> None:
    members = np.array([[0, 0], [4, 0], [2, 3]], dtype=np.float32)  # mean (2, 1)
    np.testing.assert_allclose(distances_to_mean(members), [np.sqrt(5), np.sqrt(5), 2.0], rtol=1e-6)
    assert distances_to_mean(members[:1]).tolist() == [0.0]


def test_centroid_distances_of_interleaved_clusters_match_one_mask_per_cluster() -> None:
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    labels = rng.integers(-1, 40, size=500)
    out = centroid_distances(emb, labels)
    for label in np.unique(labels).tolist():
        members = labels == label
        if label == UNKNOWN:
            assert np.isnan(out[members]).all()
            continue
        expected = np.linalg.norm(emb[members] - emb[members].mean(axis=0), axis=1)
        assert out[members].tobytes() == expected.astype(np.float32).tobytes()


def test_centroid_distances_of_nothing() -> None:
    out = centroid_distances(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64))
    assert out.dtype == np.float32 and len(out) == 0


def brute_nearest_other(emb: np.ndarray, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    persons = np.unique(pids)
    centres = np.stack([emb[pids == p].mean(axis=0) for p in persons])
    d = np.linalg.norm(emb[:, None, :] - centres[None, :, :], axis=2)
    d[np.arange(len(emb)), np.searchsorted(persons, pids)] = np.inf
    return persons[d.argmin(axis=1)], d.min(axis=1)


def test_nearest_other_person_across_row_blocks() -> None:
    # More faces than one block of rows (4096), several persons.
    rng = np.random.default_rng(9)
    centres = rng.normal(size=(12, 8)) * 3
    pids = rng.integers(0, 12, size=4200)
    emb = centres[pids] + rng.normal(size=(4200, 8))
    ids = np.arange(4200) + 1000
    out = doubtful_faces(ids, pids + 100, emb, threshold=100.0, limit=5000, min_score=0.0)
    assert len(out) == 4200
    nearest, dist = brute_nearest_other(emb, pids + 100)
    got = {d.face_id: d for d in out}
    for k in range(0, 4200, 7):
        d = got[int(ids[k])]
        assert d.nearest_person_id == int(nearest[k])
        assert d.nearest_distance == pytest.approx(float(dist[k]), rel=1e-9)
        assert d.score == pytest.approx(max(d.distance / d.nearest_distance, d.distance / 100.0))


def test_doubtful_faces_default_threshold_is_the_settings() -> None:
    # A lone person: only distance / threshold scores.
    emb = np.array([[0.0, 0.0], [0.6, 0.0], [0.3, 0.3]])
    out = doubtful_faces(np.arange(3), np.zeros(3, dtype=np.int64), emb, min_score=0.0)
    by_id = {d.face_id: d for d in out}
    assert by_id[2].score == pytest.approx(by_id[2].distance / DEFAULT_THRESHOLD)
