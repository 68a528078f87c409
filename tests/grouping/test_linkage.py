"""Average-linkage merging: exact moments, reciprocal pairs, cannot-links, eligibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from photocluster.grouping.graph import edges
from photocluster.grouping.linkage import (
    KnownSums,
    _Moments,
    _Pairs,
    _ranges,
    _reciprocal,
    _run_sums,
    _sums,
    attach,
    eject_outliers,
    merge_by_linkage,
)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean([np.sum((x - y) ** 2) for x, y in itertools.product(a, b)])))


def test_moments_give_the_root_mean_squared_distance_between_clusters() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    labels = rng.integers(0, 4, size=30)
    mom = _Moments.of(emb, labels, 4)
    for a, b in itertools.combinations(range(4), 2):
        got = mom.distance(np.array([a]), np.array([b]))[0]
        assert got == pytest.approx(_rms(emb[labels == a], emb[labels == b]), rel=1e-5)


@pytest.mark.parametrize("longest", [1, 3, 8, 9, 400, 5000])
def test_run_sums_add_each_run_row_after_row(longest: int) -> None:
    # Bit for bit: the sums decide merges at their threshold, and a full run's clusters
    # must not move with how the runs are summed. Descriptors' width, and runs longer
    # than numpy's casting buffer (a person of thousands of faces).
    rng = np.random.default_rng(longest)
    lengths = rng.integers(1, longest + 1, size=300 if longest < 1000 else 12)
    rows = rng.normal(size=(int(lengths.sum()), 128)).astype(np.float32)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    sums = _run_sums(rows, starts)
    for r in rng.choice(len(starts), size=12, replace=False):
        one_by_one = np.zeros(128)
        for row in rows[starts[r] : starts[r] + lengths[r]]:
            one_by_one += row
        assert np.array_equal(sums[r], one_by_one)
    # reduceat, which summed them before, adds in the same order but for its buffered cast
    # of runs of thousands (the last bit of a float64 now and then): the float32 sums the
    # moments keep are the same.
    before = np.add.reduceat(rows, starts, axis=0, dtype=np.float64)
    assert np.array_equal(sums.astype(np.float32), before.astype(np.float32))
    assert np.allclose(sums, before, rtol=1e-15, atol=0)


def test_sums_of_clusters_cut_by_chunks_match_the_faces_summed() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(40_000, 8)).astype(np.float32)
    # One cluster larger than a chunk, many of one face, some of a few.
    labels = np.r_[np.zeros(20_000, dtype=np.int64), 1 + rng.integers(0, 15_000, size=20_000)]
    rng.shuffle(labels)
    faces = np.sort(rng.choice(40_000, 30_000, replace=False))
    k = int(labels.max()) + 1
    for chosen in (None, faces):
        own = labels if chosen is None else labels[chosen]
        rows = emb if chosen is None else emb[chosen]
        s, sq = _sums(emb, own, k, chosen)
        want = np.zeros((k, 8))
        np.add.at(want, own, rows.astype(np.float64))
        assert np.allclose(s, want, atol=1e-3)
        assert np.allclose(sq, np.bincount(own, weights=np.einsum("ij,ij->i", rows, rows), minlength=k))


def _blobs(centres: list[list[float]], per: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = np.concatenate([np.array(c) + rng.normal(scale=spread, size=(per, len(c))) for c in centres])
    return emb.astype(np.float32), np.repeat(np.arange(len(centres)), per)


def test_parts_of_one_person_merge_and_strangers_do_not() -> None:
    # Two tight people 1.0 apart; each split into singletons to begin with.
    emb, truth = _blobs([[0.0, 0.0], [1.0, 0.0]], per=10, spread=0.05)
    i, j, _ = edges(emb, 2.0)
    merged = merge_by_linkage(emb, np.arange(len(emb)), i, j, threshold=0.3)
    assert len(np.unique(merged)) == 2
    assert all(len(np.unique(merged[truth == t])) == 1 for t in (0, 1))


def test_one_close_impostor_pair_does_not_join_two_people() -> None:
    # Two people whose nearest faces are 0.2 apart while their average distance is ~1:
    # single linkage at 0.3 would chain them, average linkage keeps them apart.
    a = np.array([[0.0, 0.0], [-0.1, 0.0], [-0.2, 0.0], [0.4, 0.0]], dtype=np.float32)
    b = np.array([[0.6, 0.0], [1.4, 0.0], [1.5, 0.0], [1.6, 0.0]], dtype=np.float32)
    emb = np.concatenate([a, b])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    i, j, _ = edges(emb, 0.3)
    assert np.any((i == 3) & (j == 4))  # the impostor link exists
    assert len(np.unique(merge_by_linkage(emb, labels, i, j, threshold=0.5))) == 2


def test_cannot_links_bind_merged_clusters() -> None:
    emb, _ = _blobs([[0.0, 0.0]], per=6, spread=0.01)
    i, j, _ = edges(emb, 1.0)
    # Faces 0 and 5 must stay apart: the six faces end in at least two clusters, 0 and 5 apart.
    merged = merge_by_linkage(emb, np.arange(6), i, j, threshold=0.5, cannot=(np.array([0]), np.array([5])))
    assert merged[0] != merged[5]
    assert len(np.unique(merged)) == 2


def test_ineligible_clusters_are_left_alone() -> None:
    emb, _ = _blobs([[0.0, 0.0]], per=4, spread=0.01)
    i, j, _ = edges(emb, 1.0)
    eligible = np.array([True, True, True, False])
    merged = merge_by_linkage(emb, np.arange(4), i, j, threshold=0.5, eligible=eligible)
    assert merged[3] == 3 and len(np.unique(merged[:3])) == 1


def test_the_result_does_not_depend_on_label_numbering() -> None:
    emb, _truth = _blobs([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], per=8, spread=0.08, seed=3)
    i, j, _ = edges(emb, 0.6)
    base = merge_by_linkage(emb, np.arange(len(emb)), i, j, threshold=0.3)
    perm = np.random.default_rng(0).permutation(len(emb))
    other = merge_by_linkage(emb, perm, i, j, threshold=0.3)
    # Same partition, whatever the numbering.
    assert len({(a, b) for a, b in zip(base.tolist(), other.tolist(), strict=True)}) == len(np.unique(base))


def test_nothing_to_merge() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert len(merge_by_linkage(np.zeros((0, 4), np.float32), empty, empty, empty, 0.5)) == 0
    emb = np.zeros((3, 4), dtype=np.float32)
    assert merge_by_linkage(emb, np.arange(3), empty, empty, 0.5).tolist() == [0, 1, 2]


def test_closest_pairs_rank_by_average_distance_and_skip_excluded_pairs() -> None:
    from photocluster.grouping.linkage import closest_pairs

    emb, _ = _blobs([[0.0, 0.0], [0.3, 0.0], [3.0, 0.0], [3.0, 0.5]], per=5, spread=0.02)
    labels = np.repeat(np.arange(4), 5)
    labels[-1] = -1  # a face in no cluster is ignored
    a, b, d = closest_pairs(emb, labels, neighbours=3)
    assert (a[0], b[0]) == (0, 1) and (a[1], b[1]) == (2, 3)
    assert np.all(np.diff(d) >= 0)
    a2, b2, _ = closest_pairs(emb, labels, neighbours=3, exclude=np.array([0 * 4 + 1]))
    assert (0, 1) not in set(zip(a2.tolist(), b2.tolist(), strict=True))


def test_attach_joins_the_clearly_nearest_cluster_only() -> None:
    from photocluster.grouping.linkage import attach

    # Two people of 4 faces each, a doubtful face near the first, one halfway, one far away.
    emb, _ = _blobs([[0.0, 0.0], [1.0, 0.0]], per=4, spread=0.01)
    emb = np.concatenate([emb, np.array([[0.1, 0.0], [0.5, 0.0], [5.0, 5.0]], dtype=np.float32)])
    labels = np.r_[np.zeros(4), np.ones(4), [2, 3, 4]].astype(np.int64)
    i, j, _ = edges(emb, 10.0)
    got = attach(emb, labels, np.array([8, 9, 10]), i, j, threshold=0.7, margin=0.05)
    assert got.tolist() == [0, -1, -1]  # near: joins; halfway: ambiguous; far: too far
    # A cannot-link (forbidden key face * k + label) keeps it out.
    assert attach(emb, labels, np.array([8]), i, j, 0.7, forbidden=np.array([8 * 5 + 0])).tolist() == [-1]
    # Doubtful faces never count as a cluster: two of them together stay alone.
    pair = np.array([[3.0, 3.0], [3.01, 3.0]], dtype=np.float32)
    both = np.concatenate([emb[:8], pair])
    i2, j2, _ = edges(both, 10.0)
    lab2 = np.r_[np.zeros(4), np.ones(4), [2, 3]].astype(np.int64)
    assert attach(both, lab2, np.array([8, 9]), i2, j2, threshold=0.7).tolist() == [-1, -1]


def test_clear_merges_go_further_only_when_no_other_candidate_is_close() -> None:
    # Two parts of one person 0.5 apart on average, alone: merged below the clear threshold.
    emb, _ = _blobs([[0.0, 0.0], [0.5, 0.0]], per=3, spread=0.01)
    labels = np.repeat([0, 1], 3)
    i, j, _ = edges(emb, 2.0)
    assert len(np.unique(merge_by_linkage(emb, labels, i, j, 0.4))) == 2
    assert len(np.unique(merge_by_linkage(emb, labels, i, j, 0.4, clear_threshold=0.6, clear_margin=0.05))) == 1
    # With a third group as close to the first: no clear choice, no merge above 0.4.
    emb3, _ = _blobs([[0.0, 0.0], [0.5, 0.0], [-0.25, 0.43]], per=3, spread=0.01)
    labels3 = np.repeat([0, 1, 2], 3)
    i3, j3, _ = edges(emb3, 2.0)
    merged = merge_by_linkage(emb3, labels3, i3, j3, 0.4, clear_threshold=0.6, clear_margin=0.05)
    assert len(np.unique(merged)) == 3


def test_a_face_far_from_the_rest_of_its_cluster_on_average_is_ejected() -> None:
    # A tight person of 8 faces plus one stranger chained in: 0.5 from one face, 1.0 from the rest.
    emb, _ = _blobs([[0.0, 0.0]], per=8, spread=0.02)
    stranger = np.array([[1.0, 0.0]], dtype=np.float32)
    emb = np.concatenate([emb, stranger])
    labels = np.zeros(len(emb), dtype=np.int64)
    out = eject_outliers(emb, labels, threshold=0.5)
    assert np.array_equal(eject_outliers(emb, labels, threshold=0.5, chunk=2), out)  # chunked alike
    assert len(np.unique(out[:8])) == 1 and out[0] == 0
    assert out[8] not in out[:8]
    # Each face's distance to the rest is the root mean squared distance, exactly.
    rest = _rms(emb[8:9], emb[:8])
    assert eject_outliers(emb, labels, threshold=rest + 1e-3)[8] == 0
    assert eject_outliers(emb, labels, threshold=rest - 1e-3)[8] != 0
    # A face that may not leave stays, and the others are measured with it still there.
    stay = np.r_[np.ones(8, dtype=bool), False]
    assert np.array_equal(eject_outliers(emb, labels, threshold=0.5, movable=stay), labels)


def test_ejection_leaves_pairs_and_spread_people_alone() -> None:
    # A pair: its one distance is the link itself; a spread person: every face within reach.
    pair = np.array([[0.0, 0.0], [0.9, 0.0]], dtype=np.float32)
    assert np.array_equal(eject_outliers(pair, np.zeros(2, dtype=np.int64), 0.5), [0, 0])
    emb, _ = _blobs([[0.0, 0.0]], per=20, spread=0.1, seed=3)
    labels = np.zeros(20, dtype=np.int64)
    assert np.array_equal(eject_outliers(emb, labels, 0.5), labels)


def _merge_judging_every_pair(
    emb: np.ndarray,
    labels: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float,
    cannot: tuple[np.ndarray, np.ndarray],
    small_penalty: float,
    clear_threshold: float,
    clear_margin: float,
    scale: np.ndarray,
    fixed: np.ndarray,
) -> np.ndarray:
    """merge_by_linkage as it was before a round judged only the pairs it changed: every
    pair judged every round, the pairs sorted again, the cannot-links renamed whole."""
    from photocluster.grouping import linkage as lk

    k = int(labels.max()) + 1
    mom = lk._Moments.of(emb, labels, k)
    factor_sum = np.bincount(labels, weights=scale, minlength=k)
    root = np.arange(k)
    held = fixed.copy()
    pairs = lk._edge_pairs(labels, i, j, k)
    pairs = pairs[~(held[pairs // k] & held[pairs % k])]
    forbidden = lk._pair_keys(labels[cannot[0]], labels[cannot[1]], k)
    reach = max(threshold, clear_threshold)
    pa, pb, dist = lk._near(mom, np.setdiff1d(pairs, forbidden, assume_unique=True), k, reach)
    for _ in range(200):  # merge_by_linkage's max_rounds
        if not len(pa):
            break
        penalty = (small_penalty / np.sqrt(mom.n[pa] + mom.n[pb] - 1.0)).astype(np.float32)
        m = np.minimum(factor_sum[pa] / mom.n[pa], factor_sum[pb] / mom.n[pb])
        allowed = dist < threshold * m - penalty
        best1, best2 = lk._two_lowest(pa, pb, dist, k)
        clear = lk._runner_up(pa, pb, dist, mom.n, best1, best2) - dist >= clear_margin
        allowed |= clear & (dist < clear_threshold * m - penalty)
        if not allowed.any():
            break
        chosen = np.flatnonzero(allowed)[lk._reciprocal(pa[allowed], pb[allowed], dist[allowed], k)]
        into, gone = pa[chosen], pb[chosen]
        mom.merge(into, gone)
        factor_sum[into] += factor_sum[gone]
        root[gone] = into
        held[into] |= held[gone]
        forbidden = lk._pair_keys(root[forbidden // k], root[forbidden % k], k)
        changed = np.zeros(k, dtype=bool)
        changed[into] = changed[gone] = True
        touched = changed[pa] | changed[pb]
        fresh = lk._pair_keys(root[pa[touched]], root[pb[touched]], k)
        fresh = fresh[~(held[fresh // k] & held[fresh % k])]
        fa, fb, fd = lk._near(mom, np.setdiff1d(fresh, forbidden, assume_unique=True), k, reach)
        pa, pb, dist = (np.concatenate([x[~touched], y]) for x, y in ((pa, fa), (pb, fb), (dist, fd)))
        order = np.argsort(pa.astype(np.int64) * k + pb, kind="stable")
        pa, pb, dist = pa[order], pb[order], dist[order]
    while not np.array_equal(root[root], root):
        root = root[root]
    out: np.ndarray = root[labels]
    return out


def _merged_both_ways(
    emb: np.ndarray,
    labels: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    cannot: tuple[np.ndarray, np.ndarray],
    small_penalty: float,
    clear_margin: float,
    scale: np.ndarray,
    fixed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """merge_by_linkage's labels and the reference's, merges under 0.55 (clear ones under 0.7)."""
    got = merge_by_linkage(
        emb,
        labels,
        i,
        j,
        0.55,
        cannot=cannot,
        small_penalty=small_penalty,
        clear_threshold=0.7,
        clear_margin=clear_margin,
        scale=scale,
        fixed=fixed,
    )
    want = _merge_judging_every_pair(emb, labels, i, j, 0.55, cannot, small_penalty, 0.7, clear_margin, scale, fixed)
    return got, want


@pytest.mark.parametrize("seed", range(12))
def test_a_round_judges_again_only_what_it_changed_and_merges_as_judging_every_pair(seed: int) -> None:
    # Random people, random starting clusters, crowding factors, cannot-links and fixed
    # clusters: the same merges as judging every pair every round.
    rng = np.random.default_rng(seed)
    people, per = int(rng.integers(10, 40)), int(rng.integers(3, 10))
    centres = rng.normal(size=(people, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = (np.repeat(centres, per, axis=0) + rng.normal(size=(people * per, 32)) * 0.06).astype(np.float32)
    n = len(emb)
    i, j, _ = edges(emb, 0.9)
    # Each person in up to three parts, a few faces in a stranger's.
    labels = np.repeat(np.arange(people), per) * 3 + rng.integers(0, 3, size=n)
    stray = rng.random(n) < 0.1
    labels[stray] = rng.integers(0, 3 * people, size=int(stray.sum()))
    labels = np.unique(labels, return_inverse=True)[1]
    k = int(labels.max()) + 1
    pick = rng.integers(0, n, size=(n // 6, 2))
    cannot = (pick[:, 0], pick[:, 1])
    scale = rng.uniform(0.8, 1.0, size=n)
    fixed = rng.random(k) < 0.15
    got, want = _merged_both_ways(emb, labels, i, j, cannot, 0.05, 0.02, scale, fixed)
    assert len(np.unique(want)) < 0.8 * k  # many merges, over several rounds
    assert np.array_equal(got, want)


def test_ranges_are_the_ranges_one_after_the_other() -> None:
    lo, hi = np.array([5, 0, 9, 3]), np.array([8, 0, 10, 5])
    assert _ranges(lo, hi).tolist() == [5, 6, 7, 9, 3, 4]
    assert _ranges(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_pairs_look_up_the_pairs_of_clusters_before_and_after_a_round() -> None:
    k = 6
    keys = np.array([0 * k + 1, 0 * k + 4, 1 * k + 2, 2 * k + 5, 3 * k + 4])
    pairs = _Pairs((keys // k).astype(np.int32), (keys % k).astype(np.int32), np.arange(5, dtype=np.float32), k)

    def ends(clusters: list[int]) -> list[tuple[int, int]]:
        mask = np.zeros(k, dtype=bool)
        mask[clusters] = True
        idx = pairs.of(mask)
        return [(int(a), int(b)) for a, b in zip(pairs.pa[idx], pairs.pb[idx], strict=True)]

    assert ends([4]) == [(0, 4), (3, 4)]
    assert ends([2, 1]) == [(0, 1), (1, 2), (2, 5)]
    # 1 merged into 0: its pairs end, the renamed ones come after the others (past the
    # arrays' first length) and are found by either end.
    gone = pairs.of(np.isin(np.arange(k), [0, 1]))
    fa, fb = np.array([0, 0], np.int32), np.array([2, 4], np.int32)
    pairs.replace(gone, fa, fb, np.array([0.5, 0.25], np.float32))
    assert pairs.alive_count == 4 and pairs.size == 7
    assert ends([4]) == [(3, 4), (0, 4)]
    assert ends([1]) == []
    assert ends([0, 5]) == [(2, 5), (0, 2), (0, 4)]
    assert sorted(pairs.in_key_order(pairs.every()).tolist()) == sorted(pairs.every().tolist())
    assert [int(pairs.pa[x] * k + pairs.pb[x]) for x in pairs.in_key_order(pairs.every())] == [2, 4, 17, 22]
    assert not pairs.allowed[: pairs.size].any()


def test_tied_reciprocal_pairs_take_each_clusters_first_pair() -> None:
    # Four clusters in a ring, every pair at one distance, in pair-key order: 0-1 is the
    # first pair of both 0 and 1, so it is taken; 2-3 is neither's first (1-2, 0-3), so it
    # waits for the next round. Once, this took none: 1 is a second end in 0-1 and a first
    # end in 1-2, and the ring never merged.
    pa, pb = np.array([0, 0, 1, 2]), np.array([1, 3, 2, 3])
    chosen = _reciprocal(pa, pb, np.full(4, 0.3, dtype=np.float32), 4)
    assert chosen.tolist() == [True, False, False, False]
    # 1-2 closer than the rest: they take each other, and 0 and 3 are each other's nearest.
    chosen = _reciprocal(pa, pb, np.array([0.3, 0.3, 0.2, 0.3], dtype=np.float32), 4)
    assert chosen.tolist() == [False, True, True, False]


@pytest.mark.parametrize("seed", range(6))
def test_equal_distances_merge_as_judging_every_pair(seed: int) -> None:
    # Some faces twice (a photo and its copy), each kept apart from its copy: a cluster
    # then lies at exactly the same distance from both copies, and which pair wins such a
    # tie (the lowest pair key) decides where each copy ends up.
    rng = np.random.default_rng(100 + seed)
    people, per = 12, 4
    centres = rng.normal(size=(people, 16))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    base = (np.repeat(centres, per, axis=0) + rng.normal(size=(people * per, 16)) * 0.05).astype(np.float32)
    m = len(base)
    copied = np.flatnonzero(rng.random(m) < 0.6)
    emb = np.concatenate([base, base[copied]])
    n = len(emb)
    i, j, _ = edges(emb, 0.9)
    labels = np.arange(n)
    cannot = (copied, m + np.arange(len(copied)))
    scale = np.ones(n)
    fixed = np.zeros(n, dtype=bool)
    got, want = _merged_both_ways(emb, labels, i, j, cannot, 0.0, 0.0, scale, fixed)
    assert len(np.unique(want)) <= 2 * people
    assert np.array_equal(got, want)


def _persons_and_loose(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An incremental run's grouping in small: 12 persons of 20-60 faces (kept whole, a
    group each), 150 faces in none near them, and after the first stage each loose face
    either alone or in a person's cluster: (emb, labels, group (-1: none), movable)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 16))
    sizes = rng.integers(20, 60, size=12)
    person = np.repeat(np.arange(12), sizes)
    loose = rng.integers(0, 12, size=150)
    emb = np.concatenate([centres[person], centres[loose]]) + rng.normal(scale=0.35, size=(len(person) + 150, 16))
    group = np.r_[person, np.full(150, -1)]
    joins = rng.random(150) < 0.5
    labels = np.r_[person, np.where(joins, loose, 12 + np.arange(150))]
    return emb.astype(np.float32), labels, group, group < 0


def test_known_sums_give_the_moments_summed_face_by_face() -> None:
    emb, labels, group, _ = _persons_and_loose(21)
    known = KnownSums(emb, group)
    k = int(labels.max()) + 1
    some = np.flatnonzero(np.isin(labels, [0, 3, 4, 20, 40]))
    for faces in (None, some):
        plain, from_known = _Moments.of(emb, labels, k, faces), _Moments.of(emb, labels, k, faces, known)
        assert np.array_equal(plain.n, from_known.n)
        assert np.allclose(plain.s, from_known.s, atol=1e-4) and np.allclose(plain.sq, from_known.sq, rtol=1e-9)
    # Each group summed once: a group's faces changed afterwards (they never do within a
    # run) leave its sums as they were.
    before = known.sums(np.array([0, 5]))
    emb[group == 0] = 0.0
    after = known.sums(np.array([0, 5]))
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))


@pytest.mark.parametrize("seed", [22, 23])
def test_ejection_and_merging_with_known_sums_decide_as_without(seed: int) -> None:
    emb, labels, group, movable = _persons_and_loose(seed)
    known = KnownSums(emb, group)
    kept = eject_outliers(emb, labels, 1.6, movable=movable)
    assert np.count_nonzero(kept != labels) > 0  # some loose faces left a person's cluster
    assert np.array_equal(eject_outliers(emb, labels, 1.6, movable=movable, known=known), kept)
    i, j, _ = edges(emb, 2.0)
    fixed = np.zeros(int(kept.max()) + 1, dtype=bool)
    fixed[:12] = True
    merged = merge_by_linkage(emb, kept, i, j, 1.7, fixed=fixed)
    assert len(np.unique(merged)) < len(np.unique(kept))
    assert np.array_equal(merge_by_linkage(emb, kept, i, j, 1.7, fixed=fixed, known=known), merged)


def test_attaching_with_known_sums_chooses_as_without() -> None:
    emb, labels, group, movable = _persons_and_loose(24)
    weak = np.flatnonzero(movable)[::3]  # some faces in no person, too doubtful to link
    labels = labels.copy()
    labels[weak] = 12 + 150 + np.arange(len(weak))  # each alone, as attach finds them
    i, j, _ = edges(emb, 2.2)
    touching = np.isin(i, weak) | np.isin(j, weak)
    i, j = i[touching], j[touching]
    chosen = attach(emb, labels, weak, i, j, 1.9)
    assert (chosen >= 0).any() and (chosen < 0).any()
    assert np.array_equal(attach(emb, labels, weak, i, j, 1.9, known=KnownSums(emb, group)), chosen)
