"""The clustering users get: the default two-stage policy and the single-threshold one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from photocluster.eval.metrics import pairwise
from photocluster.grouping.constraints import build_constraints
from photocluster.grouping.graph import knn_edges
from photocluster.grouping.grouper import Policy, group
from photocluster.grouping.whispers import collapsed_whispers


def _crowd(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dlib-like descriptors: 40 people seen 10 times (faces ~0.45 apart inside a person, as with dlib),
    and 2,000 strangers seen once, on a sphere of radius 0.6 as dlib's descriptors are."""
    rng = np.random.default_rng(seed)
    people = rng.normal(size=(40, 128))
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    faces = np.repeat(people, 10, axis=0) + rng.normal(scale=0.04, size=(400, 128)) * np.sqrt(128) / 8
    strangers = rng.normal(size=(2000, 128))
    emb = np.concatenate([faces, strangers])
    emb = 0.6 * emb / np.linalg.norm(emb, axis=1, keepdims=True)
    truth = np.concatenate([np.repeat(np.arange(40), 10), 40 + np.arange(2000)])
    return emb.astype(np.float32), truth


def _run(emb: np.ndarray, policy: Policy, photo_ids: np.ndarray | None = None) -> np.ndarray:
    ids = np.arange(len(emb))
    photos = ids if photo_ids is None else photo_ids
    cons = build_constraints(ids, photos, emb, policy.collage_radius, {}, {}, [])
    i, j, d = knn_edges(emb, policy.graph_radius)
    return group(emb, i, j, d, cons, policy)[cons.super_of]


def test_the_default_keeps_people_whole_and_strangers_apart() -> None:
    emb, truth = _crowd()
    labels = _run(emb, Policy())
    assert pairwise(truth, labels).f1 > 0.95
    strangers = labels[400:]
    assert len(np.unique(strangers)) > 1900  # strangers stay (nearly all) alone


def _chain(n: int = 30, step: float = 0.55, seed: int = 0) -> np.ndarray:
    """Strangers each ``step`` from the next and farther from all others: what a large
    library's look-alikes do to one threshold, link by link."""
    rng = np.random.default_rng(seed)
    dirs = np.linalg.qr(rng.normal(size=(128, n)))[0].T  # orthonormal steps
    return np.cumsum(dirs * step, axis=0).astype(np.float32)


def test_a_chain_of_look_alikes_is_one_person_at_a_single_threshold_but_not_by_default() -> None:
    emb = _chain()
    assert len(np.unique(_run(emb, Policy.at(0.6, "whispers")))) == 1
    assert len(np.unique(_run(emb, Policy()))) == len(emb)
    # --threshold 0.6 is the default method's operating point: the chain stays apart.
    assert len(np.unique(_run(emb, Policy.at(0.6)))) == len(emb)


def test_the_operating_point_0_6_is_the_default_exactly() -> None:
    assert replace(Policy.at(0.6), threshold=None) == Policy()
    assert Policy.at(None) == Policy() and Policy.at(None).operating_point == 0.6
    emb, _ = _crowd(seed=3)
    assert np.array_equal(_run(emb, Policy.at(0.6)), _run(emb, Policy()))


def test_every_threshold_of_the_default_method_moves_with_the_operating_point() -> None:
    base, strict, loose = Policy(), Policy.at(0.5), Policy.at(0.7)
    for name in ("link", "merge", "radius", "small_penalty", "attach_margin", "clear_merge", "clear_margin"):
        b, s, lo = getattr(base, name), getattr(strict, name), getattr(loose, name)
        assert s == pytest.approx(b * 0.5 / 0.6) and lo == pytest.approx(b * 0.7 / 0.6), name
    assert strict.min_confidence == base.min_confidence  # a detector score, not a distance
    assert strict.as_dict()["threshold"] == 0.5 and strict.as_dict()["method"] == "two-stage"
    with pytest.raises(TypeError):
        Policy(0.6)  # type: ignore[misc]  # an operating point goes through Policy.at
    with pytest.raises(ValueError):
        Policy.at(0.6, "single")


def test_stricter_operating_points_never_give_fewer_persons_on_a_crowd() -> None:
    emb, _ = _crowd(seed=4)
    counts = [len(np.unique(_run(emb, Policy.at(t)))) for t in (0.45, 0.55, 0.6, 0.65)]
    assert counts == sorted(counts, reverse=True), counts
    assert counts[2] == len(np.unique(_run(emb, Policy())))


def test_a_threshold_given_is_plain_chinese_whispers() -> None:
    emb, _ = _crowd(seed=1)
    policy = Policy.at(0.5, "whispers")
    ids = np.arange(len(emb))
    cons = build_constraints(ids, ids, emb, 0.5, {}, {}, [])
    i, j, d = knn_edges(emb, 0.5)
    expected = collapsed_whispers(i, j, cons.super_of, cons.cannot)
    assert np.array_equal(group(emb, i, j, d, cons, policy), expected)
    assert policy.as_dict()["method"] == "whispers" and policy.thresholds == {"link": 0.5}


def test_faces_of_one_photo_stay_apart_through_the_merge_stage() -> None:
    emb, _truth = _crowd(seed=2)
    # Photos of two faces: one face of person p with one face of person p + 1, so that
    # the same-photo rule never separates one person from themselves, plus a photo with
    # two faces of one person (a mirror) that must be split.
    photo_ids = np.arange(len(emb)) + 10_000
    for p in range(0, 38, 2):
        photo_ids[p * 10] = photo_ids[(p + 1) * 10] = p
    photo_ids[5] = photo_ids[6] = 99  # two faces of person 0 in one photo
    labels = _run(emb, Policy(), photo_ids)
    for photo in np.unique(photo_ids):
        members = np.flatnonzero(photo_ids == photo)
        assert len(np.unique(labels[members])) == len(members)


def test_the_operating_point_says_what_it_is() -> None:
    op = Policy().as_dict()
    assert op["method"] == "two-stage" and op["link"] < op["merge"] < op["radius"]
    assert "why" in op


def _person_with_a_chained_stranger() -> np.ndarray:
    """Ten faces of one person within 0.12 of each other's centre, one of them 0.22 out, and a
    stranger just under the link threshold beyond it: linked to that face, about 0.6 from the
    others. What Chinese whispers chains in a crowd of look-alikes."""
    rng = np.random.default_rng(5)
    angles = rng.uniform(0, 2 * np.pi, 9)
    person = np.c_[0.12 * np.cos(angles), 0.12 * np.sin(angles)]
    flat = np.concatenate([person, [[0.22, 0.0], [0.21 + Policy().link, 0.0]]])
    return np.pad(flat, ((0, 0), (0, 126))).astype(np.float32)


def test_a_stranger_chained_into_a_person_leaves_it_by_default() -> None:
    emb = _person_with_a_chained_stranger()
    assert len(np.unique(_run(emb, Policy(eject=False)))) == 1
    labels = _run(emb, Policy())
    assert len(np.unique(labels[:10])) == 1 and labels[10] != labels[0]
    assert Policy().as_dict()["eject"] is True


def test_a_pinned_face_is_never_ejected() -> None:
    emb = _person_with_a_chained_stranger()
    ids = np.arange(len(emb))
    policy = Policy()
    cons = build_constraints(ids, ids, emb, policy.collage_radius, {10: 7}, {10: 7}, [])
    i, j, d = knn_edges(emb, policy.graph_radius)
    labels = group(emb, i, j, d, cons, policy)[cons.super_of]
    assert labels[10] == labels[0]
