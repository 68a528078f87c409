"""The crowding factor: thresholds tightened where faces crowd (children's faces), as they
are elsewhere (adults, and a family's few people photographed thousands of times)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from photocluster.core.config import CROWD_FLOOR, CROWD_POWER, CROWD_SCALE
from photocluster.eval.metrics import pairwise
from photocluster.grouping.constraints import build_constraints
from photocluster.grouping.crowding import crowding_factor, factor_from_scale, kth_other_cluster
from photocluster.grouping.graph import knn_edges
from photocluster.grouping.grouper import Policy, crowding, group
from photocluster.grouping.linkage import attach, eject_outliers, merge_by_linkage


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 128))
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _people(rng: np.random.Generator, centres: np.ndarray, per: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """``per`` faces around each centre, each ``spread`` from it."""
    n = len(centres) * per
    emb = np.repeat(centres, per, axis=0) + spread * _unit(rng, n)
    return emb.astype(np.float32), np.repeat(np.arange(len(centres)), per)


def _children_and_adults() -> tuple[np.ndarray, np.ndarray, int]:
    """200 different children, two photos each, packed together as dlib packs children's
    faces (two photos of one child ~0.11 apart, two children ~0.49, the closest ~0.39), and
    30 adults, five photos each, far apart (~0.35 inside a person, ~0.9 between)."""
    rng = np.random.default_rng(0)
    base = 0.6 * _unit(rng, 1)[0]
    kids, kid_truth = _people(rng, base + 0.34 * _unit(rng, 200), 2, 0.08)
    adults, adult_truth = _people(rng, 0.6 * _unit(rng, 30), 5, 0.25)
    return np.vstack([kids, adults]), np.r_[kid_truth, 1000 + adult_truth], len(kids)


def _run(emb: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray | None]:
    ids = np.arange(len(emb))
    cons = build_constraints(ids, ids, emb, policy.collage_radius, {}, {}, [])
    i, j, d = knn_edges(emb, policy.graph_radius)
    factor = crowding(i, j, d, cons, policy)
    return group(emb, i, j, d, cons, policy)[cons.super_of], factor


def test_a_crowd_of_children_is_tightened_and_kept_apart_while_adults_are_unchanged() -> None:
    emb, truth, n_kids = _children_and_adults()
    labels, factor = _run(emb, Policy())
    assert factor is not None
    kids, adults = slice(0, n_kids), slice(n_kids, None)
    # The crowd's thresholds are tightened; the adults' are not.
    assert np.median(factor[kids]) < 0.7 and factor[kids].min() >= 0.5
    assert np.all(factor[adults] == 1.0)
    # Without the factor, the children are one person; with it, every child is on their own.
    plain, none = _run(emb, replace(Policy(), crowding=False))
    assert none is None
    assert len(np.unique(plain[kids])) == 1
    kid_figures = pairwise(truth[kids], labels[kids])
    assert kid_figures.precision == 1.0 and kid_figures.recall == 1.0
    # The adults are grouped exactly as without the factor (and right).
    assert pairwise(plain[adults], labels[adults]).f1 == 1.0
    assert pairwise(truth[adults], labels[adults]).f1 == 1.0


def test_a_family_library_of_few_people_with_thousands_of_faces_is_not_split() -> None:
    """Four people, 1,500 photos each: a face has hundreds of close neighbours, all of its
    own person; counting clusters, not faces, leaves the thresholds as they are."""
    rng = np.random.default_rng(1)
    emb, truth = _people(rng, 0.6 * _unit(rng, 4), 1500, 0.28)
    labels, factor = _run(emb, Policy())
    assert factor is not None and np.all(factor == 1.0)
    assert pairwise(truth, labels).f1 == 1.0
    assert len(np.unique(labels)) == 4


def test_whispers_does_not_adapt_and_the_policy_says_so() -> None:
    assert Policy.at(0.6, "whispers").adapts is False
    assert Policy.at(0.6, "whispers").as_dict().get("crowding") is None
    assert Policy().adapts and Policy.at(0.5).adapts
    assert Policy().as_dict()["crowding"] == {"k": 20, "scale": 0.55, "power": 3.25, "floor": 0.5}
    emb, _, _ = _children_and_adults()
    _, factor = _run(emb, Policy.at(0.6, "whispers"))
    assert factor is None


def test_the_kth_other_cluster_counts_each_cluster_once_at_its_nearest_face() -> None:
    # Face 0 of cluster 0; clusters 1 (faces 1, 2), 2 (face 3), 3 (face 4).
    i = np.array([0, 0, 0, 0, 1], dtype=np.int32)
    j = np.array([1, 2, 3, 4, 2], dtype=np.int32)
    d = np.array([0.30, 0.20, 0.40, 0.50, 0.10], dtype=np.float32)
    labels = np.array([0, 1, 1, 2, 3])
    sigma = kth_other_cluster(5, i, j, d, labels, 2, radius=0.6, block=2)
    # Face 0: cluster 1 at 0.20 (its nearest face), cluster 2 at 0.40: the 2nd is 0.40.
    assert sigma[0] == pytest.approx(0.40)
    # Faces 1 and 2 see only cluster 0 (their link is inside cluster 1): the radius.
    assert sigma[1] == sigma[2] == 0.6
    assert kth_other_cluster(0, i[:0], j[:0], d[:0], labels[:0], 2, 0.6).shape == (0,)
    f = factor_from_scale(np.array([0.2, 0.5, 0.56, 0.7]), 0.56, 3.0, 0.5)
    assert f.tolist() == pytest.approx([0.5, (0.5 / 0.56) ** 3, 1.0, 1.0])
    assert crowding_factor(5, i, j, d, labels, 0.6, k=1).tolist() == pytest.approx(
        factor_from_scale(np.array([0.2, 0.3, 0.2, 0.4, 0.5]), CROWD_SCALE, CROWD_POWER, CROWD_FLOOR).tolist()
    )


@pytest.mark.parametrize("block", [7, 64, 1 << 17])
def test_the_distances_asked_for_some_faces_are_those_of_all_faces(block: int) -> None:
    rng = np.random.default_rng(3)
    n = 300
    i = rng.integers(0, n, 4000).astype(np.int32)
    j = rng.integers(0, n, 4000).astype(np.int32)
    i, j = i[i != j], j[i != j]
    d = rng.uniform(0.1, 0.6, len(i)).astype(np.float32)
    labels = rng.integers(0, 40, n)
    every = kth_other_cluster(n, i, j, d, labels, 5, 0.6, block=block)
    only = rng.random(n) < 0.1
    some = kth_other_cluster(n, i, j, d, labels, 5, 0.6, block=block, only=only)
    assert np.array_equal(some[only], every[only]) and (every[only] < 0.6).any()
    assert (some[~only] == 0.6).all()
    none = kth_other_cluster(n, i, j, d, labels, 5, 0.6, block=block, only=np.zeros(n, dtype=bool))
    assert (none == 0.6).all()


def test_per_face_and_per_cluster_scales_in_linkage() -> None:
    """A scale of 1 changes nothing; a smaller one asks more of the merge, the ejection and
    the attachment of that face or cluster."""
    a = np.zeros((3, 128), dtype=np.float32)
    a[:, 0] = [0.0, 0.1, 0.2]
    b = a.copy()
    b[:, 1] = 0.45  # cluster b ~0.46 from cluster a on average
    emb = np.vstack([a, b])
    labels = np.repeat([0, 1], 3)
    i, j = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    merged = merge_by_linkage(emb, labels, i, j, 0.52)
    assert len(np.unique(merged)) == 1
    assert np.array_equal(merge_by_linkage(emb, labels, i, j, 0.52, scale=np.ones(6)), merged)
    # One cluster's mean factor 0.8: judged against 0.52 * 0.8 = 0.416, they stay apart.
    assert len(np.unique(merge_by_linkage(emb, labels, i, j, 0.52, scale=np.r_[np.ones(3), 0.8 * np.ones(3)]))) == 2
    # Ejection: a face 0.3 from its two fellows stays at 0.52, leaves at 0.52 * 0.5.
    three = np.zeros((3, 128), dtype=np.float32)
    three[2, 0] = 0.3
    same = np.zeros(3, dtype=np.int64)
    assert len(np.unique(eject_outliers(three, same, 0.52))) == 1
    assert len(np.unique(eject_outliers(three, same, np.array([0.52, 0.52, 0.26])))) == 2
    # Attachment: the face's own threshold decides.
    weak = np.vstack([a, a[:1] + np.eye(128, dtype=np.float32)[5] * 0.3])
    lab = np.r_[np.zeros(3, dtype=np.int64), 1]
    ei, ej = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    assert attach(weak, lab, np.array([3]), ei, ej, 0.52).tolist() == [0]
    assert attach(weak, lab, np.array([3]), ei, ej, np.array([0.2])).tolist() == [-1]
