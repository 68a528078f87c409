"""Grouping: neighbour graphs, Chinese whispers, centroid distances and id matching."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import fake_embedding, near
from photocluster.core.vectors import squared_norms
from photocluster.eval.metrics import pairwise
from photocluster.grouping.doubt import centroid_distances
from photocluster.grouping.graph import (
    SearchIndex,
    _pairs,
    _QueryIndex,
    edges,
    knn_edges,
    knn_graph,
    parallel,
    query_edges,
    query_neighbourhoods,
    union_edges,
)
from photocluster.grouping.identity import match_to_previous
from photocluster.grouping.whispers import UNKNOWN, canonical_labels, chinese_whispers, cluster


def brute_force(emb: np.ndarray, threshold: float) -> dict[tuple[int, int], float]:
    e = emb.astype(np.float64)
    d = np.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1))
    n = len(e)
    return {(i, j): float(d[i, j]) for i in range(n) for j in range(i + 1, n)}


def as_pairs(i: np.ndarray, j: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(i.tolist(), j.tolist(), strict=True))


def graph(n: int, pairs: list[tuple[int, int]]) -> tuple[int, np.ndarray, np.ndarray]:
    i = np.array([a for a, _ in pairs], dtype=np.int64)
    j = np.array([b for _, b in pairs], dtype=np.int64)
    return n, i, j


def clique(nodes: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for k, a in enumerate(nodes) for b in nodes[k + 1 :]]


# -- edges ---------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 7, 50, 156, 157, 4096])
def test_edges_match_a_brute_force_reference(block: int) -> None:
    rng = np.random.default_rng(42)
    emb = rng.normal(size=(157, 8)).astype(np.float32)
    threshold = 2.5
    ref = brute_force(emb, threshold)
    i, j, d = edges(emb, threshold, block=block)
    got = dict(zip(as_pairs(i, j), d.tolist(), strict=True))
    margin = 1e-4
    expected = {p for p, dist in ref.items() if dist < threshold - margin}
    allowed = {p for p, dist in ref.items() if dist < threshold + margin}
    assert expected <= set(got) <= allowed
    assert 500 < len(got) < len(ref)  # the data gives a real mix of near and far pairs
    assert all(a < b for a, b in got)
    assert len(got) == len(i)  # no pair twice
    for pair, dist in got.items():
        assert dist == pytest.approx(ref[pair], abs=1e-4)
    assert i.dtype == np.int64 and j.dtype == np.int64 and d.dtype == np.float32


def test_edges_do_not_depend_on_the_block_size() -> None:
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(60, 128)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    i0, j0, d0 = edges(emb, 1.4)
    assert len(i0) > 0
    for block in (1, 2, 13, 59, 60, 61):
        i, j, d = edges(emb, 1.4, block=block)
        assert as_pairs(i, j) == as_pairs(i0, j0)
        np.testing.assert_allclose(d, d0, atol=1e-5)


def test_edges_exact_small_case() -> None:
    emb = np.array([[0, 0], [0.3, 0.4], [3, 4], [0, 0]], dtype=np.float32)
    i, j, d = edges(emb, 0.6)
    assert as_pairs(i, j) == [(0, 1), (0, 3), (1, 3)]
    np.testing.assert_allclose(d, [0.5, 0.0, 0.5], atol=1e-6)
    # Strictly below the threshold: a pair at exactly 0.5 is not joined at 0.5.
    i, j, d = edges(np.array([[0, 0], [0, 0.5]], dtype=np.float32), 0.5)
    assert as_pairs(i, j) == []


@pytest.mark.parametrize("n", [0, 1])
def test_edges_of_tiny_inputs(n: int) -> None:
    i, j, d = edges(np.zeros((n, 128), dtype=np.float32), 0.6)
    assert (len(i), len(j), len(d)) == (0, 0, 0)
    assert i.dtype == np.int64 and d.dtype == np.float32


def library(n_ids: int, per_id: int, singles: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings shaped like dlib's: faces of one identity ~0.3-0.5 apart, identities
    ~0.95 apart, plus lone faces; with the identity of each face."""
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([rng.integers(2, 2 * per_id, size=n_ids), np.ones(singles, dtype=np.int64)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    dirs = rng.normal(size=(len(sizes), 128))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    noise = rng.normal(size=(len(truth), 128))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    spread = rng.uniform(0.21, 0.35, size=len(sizes))
    return (dirs[truth] * 0.67 + noise * spread[truth, None]).astype(np.float32), truth


def directed_top_k(emb: np.ndarray, threshold: float, k: int) -> set[tuple[int, int]]:
    """Reference: each face's k nearest others under the threshold, as undirected pairs."""
    e = emb.astype(np.float64)
    sq = (e * e).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * e @ e.T, 0.0))
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    a, slot = np.nonzero(np.take_along_axis(d, nearest, axis=1) < threshold)
    b = nearest[a, slot]
    return set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))


@pytest.mark.parametrize("k", [1, 3, 500])
def test_knn_edges_exact_below_the_cutoff_match_a_reference(k: int) -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(157, 8)).astype(np.float32)
    i, j, d = knn_edges(emb, 2.5, k=k, block=50)
    assert set(as_pairs(i, j)) == directed_top_k(emb, 2.5, k)
    assert len(set(as_pairs(i, j))) == len(i) and bool(np.all(i < j))
    np.testing.assert_allclose(d, np.linalg.norm(emb[i] - emb[j], axis=1), atol=1e-4)
    assert i.dtype == np.int32 and d.dtype == np.float32
    if k >= len(emb):  # no cap: every edge under the threshold
        assert as_pairs(i, j) == as_pairs(*edges(emb, 2.5)[:2])


def test_knn_edges_join_identical_faces_but_not_a_face_to_itself() -> None:
    base = fake_embedding("twin")
    emb = np.stack([base, fake_embedding("other"), base, near(base, 0.3, "x")])
    i, j, d = knn_edges(emb, 0.6)
    assert as_pairs(i, j) == [(0, 2), (0, 3), (2, 3)]
    np.testing.assert_allclose(d, [0.0, 0.3, 0.3], atol=1e-5)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_knn_edges_of_tiny_inputs(n: int) -> None:
    i, j, d = knn_edges(np.zeros((n, 128), dtype=np.float32) + np.arange(n)[:, None], 0.6)
    assert (len(i), len(j), len(d)) == (0, 0, 0)


def test_the_inverted_file_finds_the_edges_and_the_clusters_of_exact_search() -> None:
    emb, truth = library(n_ids=150, per_id=12, singles=900)
    exact = directed_top_k(emb, 0.6, 32)
    # Small lists force the inverted file on a few thousand faces (CI time).
    i, j, d = knn_edges(emb, 0.6, exact_below=500, list_size=100)
    found = set(as_pairs(i, j))
    assert len(found & exact) >= 0.98 * len(exact)
    assert found <= directed_top_k(emb, 0.6, len(emb))  # nothing over the threshold
    assert bool(np.all(i < j)) and len(found) == len(i)
    np.testing.assert_allclose(d, np.linalg.norm(emb[i] - emb[j], axis=1), atol=1e-4)
    ei, ej = np.array(sorted(exact)).T
    exact_labels = chinese_whispers(len(emb), ei, ej)
    labels = chinese_whispers(len(emb), i, j)
    assert pairwise(exact_labels, labels).f1 >= 0.99
    assert pairwise(truth, labels).f1 >= 0.99


def test_the_inverted_file_caps_the_neighbours_of_a_crowd() -> None:
    # One person photographed 3,000 times: every pair is under the threshold, but each
    # face keeps at most k neighbours, so the graph stays O(n k).
    emb, _ = library(n_ids=1, per_id=2, singles=0)
    rng = np.random.default_rng(1)
    crowd = (emb[0] + 0.02 * rng.normal(size=(3000, 128))).astype(np.float32)
    i, j, _ = knn_edges(crowd, 0.6, k=8, exact_below=1000, list_size=300)
    assert len(i) <= 8 * len(crowd)
    degree = np.bincount(np.concatenate([i, j]), minlength=len(crowd))
    assert degree.min() >= 8
    assert len(np.unique(chinese_whispers(len(crowd), i, j))) == 1


# -- chinese whispers --------------------------------------------------------------


def test_two_separate_cliques_get_two_labels() -> None:
    labels = chinese_whispers(*graph(7, clique([0, 1, 2, 3]) + clique([4, 5, 6])))
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_largest_cluster_gets_label_zero() -> None:
    labels = chinese_whispers(*graph(8, clique([0, 1, 2]) + clique([3, 4, 5, 6, 7])))
    assert labels.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]


def test_isolated_nodes_stay_singletons() -> None:
    labels = chinese_whispers(*graph(6, [(1, 4)]))
    # The pair is largest: 0. Singletons follow by their index.
    assert labels.tolist() == [1, 0, 2, 3, 0, 4]


def test_no_edges_every_node_alone() -> None:
    labels = chinese_whispers(*graph(4, []))
    assert labels.tolist() == [0, 1, 2, 3]


def test_empty_graph() -> None:
    labels = chinese_whispers(*graph(0, []))
    assert labels.tolist() == []
    assert labels.dtype == np.int64


def test_interleaved_cliques() -> None:
    a, b, c = [0, 3, 6, 9], [1, 4, 7], [2, 5, 8, 10, 11]
    labels = chinese_whispers(*graph(12, clique(c) + clique(a) + clique(b)))
    expected = np.empty(12, dtype=np.int64)
    expected[c], expected[a], expected[b] = 0, 1, 2
    assert labels.tolist() == expected.tolist()


def test_chinese_whispers_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(120, 6)).astype(np.float32)
    i, j, _ = edges(emb, 1.2)
    first = chinese_whispers(120, i, j)
    for _ in range(3):
        assert chinese_whispers(120, i, j).tolist() == first.tolist()
    # Same graph with the edge list reversed and flipped: same labels.
    assert chinese_whispers(120, j[::-1].copy(), i[::-1].copy()).tolist() == first.tolist()
    # Labels are canonical: 0..k-1 by decreasing size.
    counts = np.bincount(first)
    assert first.min() == 0
    assert list(counts) == sorted(counts, reverse=True)


def test_clear_clusters_do_not_depend_on_the_seed() -> None:
    pairs = clique([0, 1, 2, 3, 4]) + clique([5, 6, 7]) + [(8, 9)]
    results = {tuple(chinese_whispers(*graph(11, pairs), seed=s).tolist()) for s in range(10)}
    assert results == {(0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3)}


# -- canonical labels ------------------------------------------------------------


def test_canonical_labels_by_size_then_first_member() -> None:
    assert canonical_labels(np.array([7, 7, 3, 3, 3, 9])).tolist() == [1, 1, 0, 0, 0, 2]
    assert canonical_labels(np.array([5, 2, 5, 2])).tolist() == [0, 1, 0, 1]
    assert canonical_labels(np.array([2, 5, 2, 5])).tolist() == [0, 1, 0, 1]
    assert canonical_labels(np.array([4, 1, 1, 0, 4, 4])).tolist() == [0, 1, 1, 2, 0, 0]
    assert canonical_labels(np.array([], dtype=np.int64)).tolist() == []


def test_canonical_labels_is_idempotent() -> None:
    once = canonical_labels(np.array([9, 1, 9, 4, 4, 4, 1, 8]))
    assert once.tolist() == [1, 2, 1, 0, 0, 0, 2, 3]
    assert canonical_labels(once).tolist() == once.tolist()


# -- cluster -----------------------------------------------------------------------


def identities(sizes: list[int], distance: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Faces of len(sizes) people, each face ``distance`` from its person's centre, shuffled."""
    emb, truth = [], []
    for person, size in enumerate(sizes):
        base = fake_embedding(f"person-{person}")
        for k in range(size):
            emb.append(near(base, distance, f"{person}-{k}"))
            truth.append(person)
    order = np.random.default_rng(0).permutation(len(emb))
    return np.stack(emb)[order], np.array(truth)[order]


def test_three_identities_give_three_pure_clusters() -> None:
    emb, truth = identities([6, 4, 3])
    labels = cluster(emb, threshold=0.6, min_size=2)
    # Largest person first; every cluster holds exactly one person's faces.
    assert labels.tolist() == truth.tolist()


def test_min_size_makes_small_clusters_unknown() -> None:
    emb, truth = identities([6, 4, 3])
    labels = cluster(emb, threshold=0.6, min_size=4)
    expected = np.where(truth == 2, UNKNOWN, truth)
    assert labels.tolist() == expected.tolist()
    assert (cluster(emb, threshold=0.6, min_size=7) == UNKNOWN).all()
    assert cluster(emb, threshold=0.6, min_size=1).tolist() == truth.tolist()


def test_a_lone_face_is_unknown() -> None:
    emb, truth = identities([3, 2])
    lone = fake_embedding("stranger")[None, :]
    labels = cluster(np.vstack([emb, lone]), threshold=0.6, min_size=2)
    assert labels.tolist() == [*truth.tolist(), UNKNOWN]
    assert cluster(np.vstack([emb, lone]), threshold=0.6, min_size=1).tolist() == [*truth.tolist(), 2]


def test_a_too_small_threshold_separates_everyone() -> None:
    emb, _ = identities([3, 3])
    assert cluster(emb, threshold=0.1, min_size=1).tolist() == list(range(6))
    assert cluster(emb, threshold=0.1, min_size=2).tolist() == [UNKNOWN] * 6


def test_cluster_of_nothing() -> None:
    assert cluster(np.zeros((0, 128), dtype=np.float32)).tolist() == []


# -- centroid distances ----------------------------------------------------------


def test_centroid_distances_exact() -> None:
    emb = np.array([[0, 0], [3, 0], [0, 3], [5, 5], [10, 10], [7, 7]], dtype=np.float32)
    labels = np.array([0, 0, 0, UNKNOWN, 1, 2])
    out = centroid_distances(emb, labels)
    # Cluster 0: centre (1, 1).
    np.testing.assert_allclose(out[:3], [np.sqrt(2), np.sqrt(5), np.sqrt(5)], rtol=1e-6)
    assert np.isnan(out[3])
    assert out[4] == 0.0 and out[5] == 0.0
    assert out.dtype == np.float32


def test_centroid_distances_of_a_pair_are_half_their_distance() -> None:
    emb = np.array([[1, 2, 2], [-1, -2, -2]], dtype=np.float32)
    np.testing.assert_allclose(centroid_distances(emb, np.array([0, 0])), [3.0, 3.0])


# -- match to previous -------------------------------------------------------------


def test_unchanged_clusters_keep_their_ids() -> None:
    ids = np.array([10, 11, 12, 13, 14])
    labels = np.array([1, 1, 0, 0, 0])
    previous = {10: 7, 11: 7, 12: 3, 13: 3, 14: 3}
    assert match_to_previous(ids, labels, previous) == {0: 3, 1: 7}


def test_a_split_keeps_the_id_on_the_larger_part() -> None:
    ids = np.array([1, 2, 3, 4, 5])
    labels = np.array([1, 0, 0, 1, 0])
    previous = {k: 50 for k in range(1, 6)}
    assert match_to_previous(ids, labels, previous) == {0: 50}


def test_a_merge_takes_the_id_sharing_most_faces() -> None:
    ids = np.array([1, 2, 3, 4, 5])
    labels = np.array([0, 0, 0, 0, 0])
    previous = {1: 20, 2: 30, 3: 30, 4: 20, 5: 30}
    assert match_to_previous(ids, labels, previous) == {0: 30}


def test_each_person_is_used_once_and_each_label_once() -> None:
    ids = np.arange(10)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    # Person 100 had faces now in labels 0 (3), 1 (2) and 2 (1); person 200 has one in
    # label 0 and one in label 1; person 300 two in label 2.
    previous = {0: 100, 1: 100, 2: 100, 4: 100, 5: 100, 7: 100, 3: 200, 6: 200, 8: 300, 9: 300}
    result = match_to_previous(ids, labels, previous)
    assert result == {0: 100, 2: 300, 1: 200}
    assert len(set(result.values())) == len(result)


def test_ties_go_to_the_smallest_label() -> None:
    ids = np.array([1, 2, 3, 4])
    labels = np.array([1, 1, 0, 0])
    assert match_to_previous(ids, labels, {1: 9, 2: 9, 3: 9, 4: 9}) == {0: 9}


def test_unknown_faces_and_new_faces_are_ignored() -> None:
    ids = np.array([1, 2, 3, 4, 5])
    labels = np.array([UNKNOWN, UNKNOWN, UNKNOWN, 0, 0])
    # Person 5 is now all unknown except one face in label 0; faces 4 and 5 partly new.
    assert match_to_previous(ids, labels, {1: 5, 2: 5, 3: 5, 4: 5}) == {0: 5}
    assert match_to_previous(ids, labels, {1: 5, 2: 5, 3: 5}) == {}
    assert match_to_previous(ids, labels, {}) == {}
    assert match_to_previous(np.array([], dtype=np.int64), np.array([], dtype=np.int64), {1: 2}) == {}


@pytest.mark.parametrize("exact_below", [20_000_000, 0])  # every distance, and the inverted file
def test_the_wide_neighbourhood_of_a_query_holds_its_nearest_faces_beyond_the_graphs(exact_below: int) -> None:
    rng = np.random.default_rng(7)
    emb = (rng.normal(size=(3000, 128)) * 0.04).astype(np.float32)  # all within a radius of each other
    queries = np.arange(2900, 3000)
    (i, j, d), (wi, wj, _) = query_neighbourhoods(emb, queries, 2.0, k=8, wide=24, exact_below=exact_below)
    qi, qj, qd = query_edges(emb, queries, 2.0, k=8, exact_below=exact_below)
    assert np.array_equal(i, qi) and np.array_equal(j, qj) and np.array_equal(d, qd)
    assert {*zip(i.tolist(), j.tolist(), strict=True)} <= {*zip(wi.tolist(), wj.tolist(), strict=True)}
    if exact_below:
        # Each query's 24 nearest, exactly: the wide edges from a query are those.
        q = 2950
        nearest = np.argsort(np.linalg.norm(emb - emb[q], axis=1))[1:25]
        mine = np.r_[wj[wi == q], wi[wj == q]]
        assert set(nearest.tolist()) <= set(mine.tolist())


@pytest.mark.parametrize("listed", [False, True])  # every distance, and a full run's inverted file
def test_two_searches_united_are_the_search_of_both_query_sets(listed: bool) -> None:
    # An incremental run searches the new faces, then some faces they reached: the union of
    # the two searches' edges is what one search of both finds, each edge once, measured
    # the same, and an edge inner when either search found it among a query's nearest.
    emb = _people(300, 40, seed=13)
    index = knn_graph(emb, 0.6, list_size=200, exact_below=0)[1] if listed else None
    rng = np.random.default_rng(13)
    first, second = np.split(rng.choice(len(emb), size=300, replace=False), [200])

    def search(queries: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        return query_neighbourhoods(
            emb, np.sort(queries), 0.6, k=8, wide=16, exact_below=0 if listed else 20_000_000, index=index
        )

    (ei, ej, ed), (wi, wj, wd) = search(np.r_[first, second])
    (ai, aj, ad), (awi, awj, awd) = search(first)
    (bi, bj, bd), (bwi, bwj, bwd) = search(second)
    pairs = {*zip(ai.tolist(), aj.tolist(), strict=True)} & {*zip(bi.tolist(), bj.tolist(), strict=True)}
    assert pairs  # some found by both
    for united, whole in (
        (union_edges((ai, aj, ad), (bi, bj, bd), len(emb)), (ei, ej, ed)),
        (union_edges((awi, awj, awd), (bwi, bwj, bwd), len(emb)), (wi, wj, wd)),
    ):
        assert all(np.array_equal(u, w) for u, w in zip(united, whole, strict=True))
        assert united[0].dtype == np.int32 and united[2].dtype == np.float32
    none = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    alone = union_edges((ei, ej, ed), none, len(emb))
    assert all(np.array_equal(u, w) for u, w in zip(alone, (ei, ej, ed), strict=True))


def _people(n_people: int, per: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return (np.repeat(centres, per, axis=0) + rng.normal(size=(n_people * per, 128)) * 0.025).astype(np.float32)


def test_a_full_search_keeps_its_lists_and_only_every_distance_keeps_none() -> None:
    emb = _people(300, 40, seed=5)
    (i, j, _), index = knn_graph(emb, 0.6, list_size=200)
    assert np.array_equal(np.c_[i, j], np.c_[knn_edges(emb, 0.6, list_size=200)[:2]])
    assert index is not None and index.centres.shape == (60, 128) and index.lists.shape == (12_000, 3)
    # Each face's first list is its nearest centre.
    d2 = ((emb[:, None, :] - index.centres[None, :, :]) ** 2).sum(-1)
    assert np.array_equal(index.lists[:, 0], d2.argmin(axis=1))
    assert knn_graph(emb[:500], 0.6)[1] is None  # under exact_below: every distance, no lists


def test_the_kept_lists_search_new_faces_as_the_full_run_found_them() -> None:
    # 12,000 faces indexed by a full run; 600 more come, their lists made from its centres.
    emb = _people(330, 40, seed=6)
    rng = np.random.default_rng(6)
    new = rng.choice(len(emb), size=600, replace=False)
    old = np.setdiff1d(np.arange(len(emb)), new)
    _, index = knn_graph(emb[old], 0.6, list_size=200)
    assert index is not None
    lists = np.full((len(emb), 3), -1, dtype=np.int32)
    lists[old] = index.lists
    kept = SearchIndex(index.centres, lists).completed(emb)
    assert (kept.lists >= 0).all() and np.array_equal(kept.lists[old], index.lists)
    assert np.array_equal(kept.lists[new, 0], ((emb[new, None, :] - index.centres) ** 2).sum(-1).argmin(axis=1))
    assert SearchIndex(index.centres, index.lists).completed(emb[old]).lists is index.lists  # nothing to add
    (i, j, _), _ = query_neighbourhoods(emb, new, 0.6, k=8, exact_below=0, index=kept)
    (ei, ej, _), _ = query_neighbourhoods(emb, new, 0.6, k=8)  # every distance
    found = {*zip(i.tolist(), j.tolist(), strict=True)}
    exact = {*zip(ei.tolist(), ej.tolist(), strict=True)}
    # Nearly every edge of every distance, and none that is not a query's.
    assert len(found & exact) >= 0.97 * len(exact)
    assert all(a in set(new.tolist()) or b in set(new.tolist()) for a, b in found)


def test_lonely_new_faces_look_again_in_their_wider_lists() -> None:
    # People photographed often, and 150 strangers seen twice, the two photos 0.45 apart:
    # far from every crowd, a stranger's photos may fall in different lists, so that one
    # finds nothing in its own and must look again. The second photos come later.
    rng = np.random.default_rng(10)  # not the people's seed: strangers, not people again
    people = _people(200, 40, seed=9)
    unit = rng.normal(size=(150, 128))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    step = rng.normal(size=(150, 128))
    step -= (step * unit).sum(1, keepdims=True) * unit
    step *= 0.45 / np.linalg.norm(step, axis=1, keepdims=True)
    emb = np.vstack([people, unit, unit + step]).astype(np.float32)
    old = np.arange(len(people) + 150)
    new = np.arange(len(people) + 150, len(emb))
    _, index = knn_graph(emb[old], 0.6, list_size=200, exact_below=0)
    assert index is not None
    lists = np.full((len(emb), 3), -1, dtype=np.int32)
    lists[old] = index.lists
    kept = SearchIndex(index.centres, lists).completed(emb)
    strangers = {(len(people) + s, len(people) + 150 + s) for s in range(150)}

    def edges(**options: Any) -> set[tuple[int, int]]:
        (i, j, _), _ = query_neighbourhoods(emb, new, 0.6, k=8, exact_below=0, index=kept, **options)
        return {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist(), strict=True)}

    looked_again = edges()
    assert len(looked_again & strangers) == 150 > len(edges(lists_per_lonely_face=1) & strangers)
    (ei, ej, _), _ = query_neighbourhoods(emb, new, 0.6, k=8)  # every distance
    assert looked_again <= {(min(a, b), max(a, b)) for a, b in zip(ei.tolist(), ej.tolist(), strict=True)}
    # Looking again, only among the faces with few links (``sparse``), as a full run does:
    # the strangers' first photos are; half of them marked otherwise are not found again.
    sparse = np.zeros(len(emb), dtype=bool)
    sparse[len(people) :] = True
    assert edges(sparse=sparse) == looked_again
    sparse[len(people) : len(people) + 75] = False
    among_few = edges(sparse=sparse)
    found_again = looked_again - edges(lists_per_lonely_face=1)
    assert among_few == looked_again - {(a, b) for a, b in found_again if a < len(people) + 75}
    assert len(among_few & strangers) < 150


@pytest.mark.parametrize("exact_below", [0, 20_000_000])
def test_the_searched_edges_are_measured_as_every_edge_is(exact_below: int) -> None:
    # Measured inside the search, while the two faces' descriptors are at hand: to the
    # bit what measuring each edge from the descriptors gives (``_pairs``, the full run's).
    emb = _people(120, 30, seed=12)
    queries = np.arange(0, len(emb), 7)
    (i, j, d), (wi, wj, wd) = query_neighbourhoods(emb, queries, 0.6, k=8, wide=20, exact_below=exact_below)
    assert len(i) > 1000 and len(wi) > len(i) and (i < j).all() and (wi < wj).all()
    for a, b, dist in ((i, j, d), (wi, wj, wd)):
        keys = [a.astype(np.int64) * len(emb) + b]
        again = _pairs(keys, emb)
        assert np.array_equal(again[0], a) and np.array_equal(again[1], b)
        assert np.array_equal(again[2], dist) and dist.dtype == np.float32


def test_lists_sized_for_the_queries_look_again_among_the_sparse_faces_only() -> None:
    # Without a full run's lists (an older library): a lonely query's second look, in the
    # lists made for the queries, is among the ``sparse`` faces only.
    emb = _people(150, 40, seed=14)
    queries = np.arange(0, len(emb), 60)
    sparse = np.zeros(len(emb), dtype=bool)
    sparse[::2] = True
    with parallel(1) as pmap:
        index = _QueryIndex(emb, squared_norms(emb), 8, 0.36, 1024, pmap, 3, 12, 0)
        anyone = index.sized_for(len(queries))(queries, lonely=True)
        among_few = index.sized_for(len(queries), sparse)(queries, lonely=True)
        first_look = index.sized_for(len(queries), sparse)(queries)
    assert len(anyone[1]) and not sparse[anyone[1]].all()
    assert len(among_few[1]) and sparse[among_few[1]].all()
    assert not sparse[first_look[1]].all()  # the first look is among every face of its lists
