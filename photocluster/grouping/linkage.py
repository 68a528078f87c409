"""Merging clusters by average linkage: the second stage of the default clustering.

Chinese whispers links faces closer than a strict threshold; that keeps strangers apart
in a library of thousands of people (a loose threshold lets a few impostor pairs chain
whole crowds together) but splits a person photographed in many conditions into
several clusters. Those parts are then merged by *average* linkage: two clusters are one
person when the mean squared distance between their faces is small, which one close
impostor pair cannot fake.

The mean squared distance between clusters A and B needs no pairwise distances:
``E|x - y|^2 = S_A / n_A + S_B / n_B - 2 (s_A . s_B) / (n_A n_B)`` with ``n`` the size,
``s`` the sum of the descriptors and ``S`` the sum of their squared norms. So a merge
costs O(128) whatever the sizes, and a million faces fit in memory.

Merging takes reciprocal nearest pairs (A's closest candidate is B and B's is A), all
of them at once in each round. Average linkage is reducible, so this gives the same
hierarchy as merging one closest pair at a time, in a few dozen vectorised rounds.
Candidate pairs are the clusters joined by at least one edge of the neighbour graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photocluster.core.vectors import blocked_knn, take_rows
from photocluster.grouping.arrays import unique_sorted
from photocluster.grouping.graph import default_workers, parallel


@dataclass
class _Moments:
    """Size, descriptor sum and squared-norm sum of each cluster (row = cluster)."""

    n: np.ndarray  # (k,) float64
    s: np.ndarray  # (k, d) float32: half the memory at a million clusters; products in float64
    sq: np.ndarray  # (k,) float64

    @classmethod
    def of(
        cls,
        emb: np.ndarray,
        labels: np.ndarray,
        k: int,
        faces: np.ndarray | None = None,
        known: KnownSums | None = None,
    ) -> _Moments:
        """The moments of the k clusters of ``labels`` (one per face of ``emb``), counting
        only ``faces`` (ascending indices; None: all), whose labels must be in 0..k-1.
        ``known``: the sums of groups of faces that share a label wherever they are (an
        incremental run's persons), taken from there instead of summed again."""
        own = labels if faces is None else labels[faces]
        n = np.bincount(own, minlength=k).astype(np.float64)
        if known is None:
            s, sq = _sums(emb, own, k, faces)
            return cls(n, s, sq)
        group = known.group if faces is None else known.group[faces]
        inside = group >= 0
        rest = np.flatnonzero(~inside)
        s, sq = _sums(emb, own[rest], k, rest if faces is None else faces[rest])
        groups = known.among(group[inside])
        at = labels[known.one_face[groups]]  # a group's label: any one of its faces' (they share it)
        gs, gsq = known.sums(groups)
        np.add.at(s, at, gs)
        np.add.at(sq, at, gsq)
        return cls(n, s, sq)

    def distance(self, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
        """Root mean squared distance between the faces of clusters ``a`` and those of ``b``."""
        out = np.empty(len(a), dtype=np.float64)

        def measure(lo: int) -> None:
            x, y = a[lo : lo + chunk], b[lo : lo + chunk]
            cross = np.einsum("ij,ij->i", take_rows(self.s, x), take_rows(self.s, y), dtype=np.float64) / (
                self.n[x] * self.n[y]
            )
            msd = self.sq[x] / self.n[x] + self.sq[y] / self.n[y] - 2.0 * cross
            out[lo : lo + chunk] = np.sqrt(np.maximum(msd, 0.0))

        # In chunks: the pairs of a million faces' clusters number in the tens of millions;
        # on every core, as numpy's gathers and sums release the GIL (gathering two clusters'
        # sums is most of it: 0.8 s on one core for 1.1 million pairs, 0.45 s on two).
        starts = range(0, len(a), chunk)
        with parallel(min(default_workers(), len(starts))) as pmap:
            for _ in pmap(measure, starts):
                pass
        return out

    def face_distance(self, x: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """Root mean squared distance between each face ``x[i]`` and the faces of ``clusters[i]``
        (the same formula, for a cluster of one face not in the moments)."""
        x = x.astype(np.float64)
        n = self.n[clusters]
        cross = np.einsum("ij,ij->i", x, self.s[clusters], dtype=np.float64) / n
        msd = np.einsum("ij,ij->i", x, x) + self.sq[clusters] / n - 2.0 * cross
        out: np.ndarray = np.sqrt(np.maximum(msd, 0.0))
        return out

    def merge(self, into: np.ndarray, gone: np.ndarray) -> None:
        self.n[into] += self.n[gone]
        self.s[into] += self.s[gone]
        self.sq[into] += self.sq[gone]
        self.n[gone] = 0.0


def _sums(emb: np.ndarray, own: np.ndarray, k: int, faces: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Descriptor sums (k, d) float32 and squared-norm sums (k,) of the faces ``faces``
    (None: all) in the clusters ``own`` (one label each)."""
    s = np.zeros((k, emb.shape[1]), dtype=np.float32)
    # Sorted sums instead of np.add.at (one pass, ~50x faster at a million faces), over
    # a bounded number of faces at a time; a cluster cut by a chunk boundary adds twice.
    order = np.argsort(own, kind="stable")
    sorted_labels = own[order]
    if faces is not None:
        order = faces[order]
    # The squared norms of the faces counted, in the same order: those of an incremental
    # run's few hundred thousand faces, not of the million.
    norms = np.empty(len(order), dtype=np.float32)
    for lo in range(0, len(order), _CHUNK):
        lab = sorted_labels[lo : lo + _CHUNK]
        starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
        rows = take_rows(emb, order[lo : lo + _CHUNK])
        s[lab[starts]] += _run_sums(rows, starts).astype(np.float32)
        # In the descriptors' own float32: asking einsum for float64 would copy them first.
        np.einsum("ij,ij->i", rows, rows, out=norms[lo : lo + _CHUNK])
    # Each cluster's norms summed in the order of its faces, as over the faces unsorted.
    sq = np.bincount(sorted_labels, weights=norms.astype(np.float64), minlength=k)
    return s, sq


_CHUNK = 16384
# Runs up to this long are summed a row position at a time, all of them together.
_SHORT_RUN = 8


def _run_sums(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The float64 sum of each run of ``rows`` (run r: ``rows[starts[r]:starts[r + 1]]``),
    each added row after row, as ``np.add.reduceat`` adds them (but for the last float64
    bit of some runs of thousands, which its buffered cast rounds now and then: the
    float32 sums kept were the same in every test and benchmark). reduceat pays about a
    microsecond a run, and most clusters hold one or two faces (a million faces' runs
    cost it a second), and it casts the long runs' rows to float64 through a buffer, five
    times slower than a reduction of each: the short runs are summed together, one row
    position at a time, and each long one by itself."""
    lengths = np.diff(np.r_[starts, len(rows)])
    out = np.empty((len(starts), rows.shape[1]), dtype=np.float64)
    short = lengths <= _SHORT_RUN
    first = starts[short]
    acc = take_rows(rows, first).astype(np.float64)
    more = lengths[short]
    for p in range(1, int(more.max()) if len(more) else 0):
        still = np.flatnonzero(more > p)
        acc[still] += take_rows(rows, first[still] + p)
    out[short] = acc
    for r in np.flatnonzero(~short).tolist():
        np.add.reduce(rows[starts[r] : starts[r] + lengths[r]], axis=0, dtype=np.float64, out=out[r])
    return out


class KnownSums:
    """The descriptor and squared-norm sums of groups of faces that never part (an
    incremental run's persons: ``group``, one per face, -1 for a face in none), each
    summed once, when first asked for, however many ejection rounds, merges and
    groupings ask: a person of thousands of faces joined by one new face is otherwise
    summed again by each."""

    def __init__(self, emb: np.ndarray, group: np.ndarray) -> None:
        self.emb = emb
        self.group = np.asarray(group, dtype=np.int64)
        m = int(self.group.max()) + 1 if len(self.group) else 0
        inside = np.flatnonzero(self.group >= 0)
        # One face of each group (whichever write lands: its faces share every label).
        self.one_face = np.zeros(m, dtype=np.int64)
        self.one_face[self.group[inside]] = inside
        self._s = np.zeros((m, emb.shape[1]), dtype=np.float32)
        self._sq = np.zeros(m, dtype=np.float64)
        self._done = np.zeros(m, dtype=bool)
        self._faces: np.ndarray | None = None
        self._bounds = np.zeros(0, dtype=np.int64)

    def among(self, groups: np.ndarray) -> np.ndarray:
        """The distinct groups of ``groups`` (ascending), without sorting them."""
        seen = np.zeros(len(self._done), dtype=bool)
        seen[groups] = True
        return np.flatnonzero(seen)

    def sums(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(descriptor sums, squared-norm sums) of ``groups`` (distinct group numbers)."""
        todo = groups[~self._done[groups]]
        if len(todo):
            if self._faces is None:
                # Each group's faces, in face order, found once.
                self._faces = np.argsort(self.group, kind="stable")
                self._bounds = np.searchsorted(self.group[self._faces], np.arange(len(self._done) + 1))
            faces = np.sort(_ranges_of(self._bounds, todo, self._faces))
            s, sq = _sums(self.emb, self.group[faces], len(self._done), faces)
            self._s[todo], self._sq[todo] = s[todo], sq[todo]
            self._done[todo] = True
        return self._s[groups], self._sq[groups]


def _ranges_of(bounds: np.ndarray, groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The entries of ``order`` in the ranges ``bounds[g]:bounds[g + 1]`` of ``groups``."""
    out: np.ndarray = order[_ranges(bounds[groups], bounds[groups + 1])]
    return out


def eject_outliers(
    emb: np.ndarray,
    labels: np.ndarray,
    threshold: float | np.ndarray,
    movable: np.ndarray | None = None,
    rounds: int = 3,
    chunk: int = 1 << 16,
    known: KnownSums | None = None,
) -> np.ndarray:
    """Labels where each face whose root mean squared distance to the other faces of its
    cluster is ``threshold`` or more has a cluster of its own (a new label above the others).

    Chinese whispers chains: in a crowd of look-alikes (dlib's descriptors put many East Asian
    faces close together) a few links under the strict threshold pull strangers into a
    person's cluster. Measured by the merge threshold, the rule of the second stage, such a
    face was never one of them; once out, it merges again where it is close on average. A
    removal changes the others' averages, hence a few ``rounds``. Clusters of two faces are
    left alone: their one distance is the link itself. ``movable`` (one bool per face) limits
    who may leave; the others stay and keep counting in their cluster's averages.
    ``threshold`` may be one per face (the default clustering's, scaled where faces crowd).
    ``known``: sums of groups of faces that stay (see :class:`KnownSums`), none of them
    ``movable``.
    """
    labels = np.array(labels, dtype=np.int64)
    emb = np.asarray(emb)
    limit = np.square(np.broadcast_to(np.asarray(threshold, dtype=np.float64), labels.shape))
    for _ in range(rounds):
        k = int(labels.max()) + 1 if len(labels) else 0
        # Only the clusters of three faces or more with a face that may leave count: an
        # incremental run's few, not the million faces alone in theirs.
        counted = None
        if movable is not None:
            counted = np.zeros(k, dtype=bool)
            counted[labels[movable]] = True
            counted &= np.bincount(labels, minlength=k) >= 3
        mom = _Moments.of(emb, labels, k, _faces_in(labels, counted), known)
        others = mom.n[labels] - 1.0
        far = np.zeros(len(labels), dtype=bool)
        # A chunk of faces at a time: a float64 copy of a million descriptors is a gigabyte.
        candidates = others >= 2
        if movable is not None:
            candidates &= movable
        for lo in range(0, len(labels), chunk):
            idx = lo + np.flatnonzero(candidates[lo : lo + chunk])
            x = take_rows(emb, idx).astype(np.float64)
            own = np.einsum("ij,ij->i", x, x)
            cross = np.einsum("ij,ij->i", x, mom.s[labels[idx]], dtype=np.float64) - own
            msd = own + (mom.sq[labels[idx]] - own - 2.0 * cross) / others[idx]
            far[idx] = msd >= limit[idx]
        if not far.any():
            break
        labels[far] = k + np.arange(int(far.sum()))
    return labels


def _faces_in(labels: np.ndarray, clusters: np.ndarray | None) -> np.ndarray | None:
    """The faces whose label is one of ``clusters`` (one bool per label), or None when
    that is most of them (counting all then costs no more)."""
    if clusters is None:
        return None
    faces = np.flatnonzero(clusters[labels])
    return None if len(faces) > len(labels) // 2 else faces


def _pair_keys(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keep = lo != hi
    return unique_sorted(lo[keep] * k + hi[keep])


def _near(mom: _Moments, pairs: np.ndarray, k: int, reach: float, chunk: int = 1 << 20) -> tuple[np.ndarray, ...]:
    """(a, b, distance) of the pairs closer than ``reach``, in compact types, a chunk at a time.
    Pairs at ``reach`` or farther never come closer: a merged cluster's distance to a third is
    a weighted mean of its parts' distances to it."""
    out_a, out_b, out_d = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)], [np.zeros(0, np.float32)]
    for lo in range(0, len(pairs), chunk):
        keys = pairs[lo : lo + chunk]
        a, b = keys // k, keys % k
        d = mom.distance(a, b)
        near = d < reach
        out_a.append(a[near].astype(np.int32))
        out_b.append(b[near].astype(np.int32))
        out_d.append(d[near].astype(np.float32))
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_d)


def _edge_pairs(labels: np.ndarray, i: np.ndarray, j: np.ndarray, k: int, chunk: int = 1 << 20) -> np.ndarray:
    """The pair keys of the clusters that edges (i, j) join, a chunk of edges at a time: tens of
    millions of edges at a million faces, nearly all inside one cluster, would otherwise
    take three int64 arrays of their length at once."""
    parts = [_pair_keys(labels[i[s : s + chunk]], labels[j[s : s + chunk]], k) for s in range(0, len(i), chunk)]
    return unique_sorted(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _reciprocal(pa: np.ndarray, pb: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """Mask of the pairs that are each endpoint's closest candidate (ties: lowest pair)."""
    best = _lowest(k, (pa, pb), dist)
    mutual = (dist == best[pa]) & (dist == best[pb])
    # Equal distances could give a cluster two reciprocal partners: each keeps its first
    # pair, and a pair is taken when it is the first of both its clusters. (The first
    # occurrence among the pairs' first ends, then their second ends, took none of a tie
    # where a cluster is the second end of one pair and the first end of an earlier one:
    # the round merged nothing there, and the clusters never merged.) The lowest mutual
    # pair is always taken, so a round with a candidate always merges.
    idx = np.flatnonzero(mutual)
    first = np.full(k, len(pa), dtype=np.intp)
    np.minimum.at(first, pa[idx].astype(np.intp), idx)
    np.minimum.at(first, pb[idx].astype(np.intp), idx)
    ok = (first[pa[idx]] == idx) & (first[pb[idx]] == idx)
    out = np.zeros(len(pa), dtype=bool)
    out[idx[ok]] = True
    return out


def _lowest(
    k: int, ends: tuple[np.ndarray, np.ndarray], dist: np.ndarray, dist_b: np.ndarray | None = None
) -> np.ndarray:
    """Per cluster (0..k-1), the smallest distance of the pairs ``(ends[0], ends[1])`` it
    is an end of (inf: none). ``dist_b`` gives the second ends' distances when they differ.
    In the distances' own float32 and with intp indices: numpy's ``ufunc.at`` then takes
    its fast path (20x faster than into float64)."""
    best = np.full(k, np.inf, dtype=np.float32)
    np.minimum.at(best, ends[0].astype(np.intp), dist.astype(np.float32, copy=False))
    other = dist if dist_b is None else dist_b
    np.minimum.at(best, ends[1].astype(np.intp), other.astype(np.float32, copy=False))
    # Exact in float64 (the minimum of float32 values), as the comparisons after it expect.
    return best.astype(np.float64)


def _two_lowest(pa: np.ndarray, pb: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, its two smallest distances among the pairs (the second equal to the
    first when two pairs tie at it), without sorting: millions of pairs at a million
    faces, where a sort of both ends would take gigabytes."""
    best1 = _lowest(k, (pa, pb), dist)
    at_a, at_b = dist <= best1[pa], dist <= best1[pb]
    ties = np.bincount(pa[at_a], minlength=k) + np.bincount(pb[at_b], minlength=k)
    best2 = _lowest(k, (pa[~at_a], pb[~at_b]), dist[~at_a], dist[~at_b])
    return best1, np.where(ties >= 2, best1, best2)


def _runner_up(
    pa: np.ndarray, pb: np.ndarray, dist: np.ndarray, n: np.ndarray, best1: np.ndarray, best2: np.ndarray
) -> np.ndarray:
    """For each pair, the distance from its smaller cluster (either, at equal sizes) to that
    cluster's nearest other candidate (``best1``, ``best2``: :func:`_two_lowest` over all
    pairs). The smaller one is the one choosing where to go: a large cluster with several
    close candidates is a person with several parts left."""
    other_a = np.where(dist <= best1[pa], best2[pa], best1[pa])
    other_b = np.where(dist <= best1[pb], best2[pb], best1[pb])
    na, nb = n[pa], n[pb]
    out: np.ndarray = np.where(na < nb, other_a, np.where(nb < na, other_b, np.minimum(other_a, other_b)))
    return out


def _renamed(forbidden: np.ndarray, changed: np.ndarray, root: np.ndarray, k: int) -> np.ndarray:
    """The cannot-link pair keys after a round's merges (sorted, unique): those of a merged
    cluster renamed to its survivor, the others as they were."""
    lo, hi = forbidden // k, forbidden % k
    hit = changed[lo] | changed[hi]
    if not hit.any():
        return forbidden
    kept = forbidden[~hit]
    fresh = _pair_keys(root[lo[hit]], root[hi[hit]], k)
    at = np.searchsorted(kept, fresh)
    new = (at >= len(kept)) | (kept[np.minimum(at, len(kept) - 1)] != fresh) if len(kept) else np.ones(len(fresh), bool)
    return np.insert(kept, at[new], fresh[new])


class _Pairs:
    """The candidate pairs of a merge (a < b in int32, their distance in float32, whether
    they may merge), judged again only where a round changed them.

    A round's merges end the pairs of the clusters merged and add their renamed pairs after
    the others. The pairs a cluster is an end of are looked up (the first pairs by either
    end, the renamed ones by a pass over them: a few thousand), not found by passes over
    every pair: an incremental run holds a million pairs, and each of its dozens of rounds
    touches a few hundred (finding, removing and inserting them in pair-key order took
    0.5 s of a 1.25 s merge at a million faces). The arrays may be longer than ``size``:
    what lies past it is unused room for the renamed pairs."""

    def __init__(self, pa: np.ndarray, pb: np.ndarray, dist: np.ndarray, k: int) -> None:
        n = len(pa)
        self.k, self.first, self.size, self.alive_count = k, n, n, n
        self.pa, self.pb, self.dist = pa, pb, dist
        self.allowed = np.zeros(n, dtype=bool)
        self.alive = np.ones(n, dtype=bool)
        # In pair-key order the a ends ascend: a cluster's pairs as its a end are a range.
        self.a_start = np.searchsorted(pa, np.arange(k + 1))
        # int32 (a full run's pairs number in the millions, and this is its peak stage)
        self.by_b = np.argsort(pb, kind="stable").astype(np.int32)
        self.b_start = np.searchsorted(pb[self.by_b], np.arange(k + 1))

    def of(self, clusters: np.ndarray) -> np.ndarray:
        """The pairs (ascending indices) still there with an end in ``clusters`` (one bool
        per cluster)."""
        ids = np.flatnonzero(clusters)
        tail = slice(self.first, self.size)
        idx = unique_sorted(
            np.concatenate(
                [
                    _ranges(self.a_start[ids], self.a_start[ids + 1]),
                    self.by_b[_ranges(self.b_start[ids], self.b_start[ids + 1])],
                    self.first + np.flatnonzero(clusters[self.pa[tail]] | clusters[self.pb[tail]]),
                ]
            )
        )
        out: np.ndarray = idx[self.alive[idx]]
        return out

    def every(self) -> np.ndarray:
        """Every pair still there (ascending indices)."""
        return np.flatnonzero(self.alive[: self.size])

    def in_key_order(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` in pair-key order, wherever each pair is kept: ties between equal
        distances go to the lowest pair (:func:`_reciprocal`)."""
        keys = self.pa[idx].astype(np.int64) * self.k + self.pb[idx]
        out: np.ndarray = idx[np.argsort(keys, kind="stable")]
        return out

    def replace(self, gone: np.ndarray, fa: np.ndarray, fb: np.ndarray, fd: np.ndarray) -> None:
        """End the pairs ``gone`` and add (fa, fb, fd), not allowed until judged."""
        self.alive[gone] = False
        self.allowed[gone] = False
        end = self.size + len(fa)
        if end > len(self.pa):
            grown = max(end, len(self.pa) + len(self.pa) // 8 + 1024)
            self.pa, self.pb, self.dist, self.allowed, self.alive = (
                np.resize(x, grown) for x in (self.pa, self.pb, self.dist, self.allowed, self.alive)
            )
        self.pa[self.size : end], self.pb[self.size : end], self.dist[self.size : end] = fa, fb, fd
        self.allowed[self.size : end] = False
        self.alive[self.size : end] = True
        self.size = end
        self.alive_count += len(fa) - len(gone)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The integers of every range [lo[c], hi[c]), one after the other."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = lo - (np.cumsum(counts) - counts)
    out: np.ndarray = np.repeat(shift, counts) + np.arange(total)
    return out


def merge_by_linkage(
    emb: np.ndarray,
    labels: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float,
    cannot: tuple[np.ndarray, np.ndarray] | None = None,
    eligible: np.ndarray | None = None,
    max_rounds: int = 200,
    small_penalty: float = 0.0,
    clear_threshold: float | None = None,
    clear_margin: float = 0.0,
    scale: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> np.ndarray:
    """Cluster labels after merging, by average linkage, the clusters of ``labels`` (one
    per face of ``emb``) whose faces are closer than ``threshold`` (root mean squared
    distance). Only clusters joined by an edge (i, j) between their faces are compared.

    ``small_penalty`` asks more of small clusters: clusters of n and m faces merge only
    below ``threshold - small_penalty / sqrt(n + m - 1)``, as the average over few faces
    is noisy (two single faces are one pair of descriptors, nothing more).

    ``clear_threshold`` (above ``threshold``) also merges pairs closer than it when the
    choice is clear: the smaller cluster's next nearest candidate is at least
    ``clear_margin`` farther. A person among few look-alikes (a family's library) merges where one among
    thousands of strangers (a crowd of news photos) would not.

    ``cannot`` holds pairs of faces that must stay apart: clusters holding them are never
    merged (after a merge, the pair binds the merged cluster). ``eligible`` (one bool per
    cluster label) leaves the other clusters as they are. Returns labels in 0..k-1 where
    a merged cluster takes the smallest of its labels.

    ``scale`` (one factor in (0, 1] per face, :mod:`~photocluster.grouping.crowding`) asks
    more where faces crowd: two clusters are judged against ``threshold`` and
    ``clear_threshold`` times the smaller of their mean factors (kept as a sum per cluster,
    summed on each merge). ``fixed`` (one bool per cluster label) marks clusters that never
    merge with each other (an incremental run's persons); others may merge into them.
    ``known``: the sums of those persons' faces (:class:`KnownSums`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 0
    if k == 0 or len(i) == 0:
        return labels
    # Only clusters joined by an edge are ever compared (merged ones by an edge of either):
    # numbered 0..m-1 in their order, so that the smaller label still survives a merge
    # and each round costs what they number (an incremental run's few thousand), not the
    # library's million.
    joined = np.zeros(k, dtype=bool)
    joined[labels[i]] = True
    joined[labels[j]] = True
    ids = np.flatnonzero(joined)
    compact = np.full(k, -1, dtype=np.int64)
    compact[ids] = np.arange(len(ids))
    own = compact[labels]
    faces = None if len(ids) == k else np.flatnonzero(own >= 0)
    ca: np.ndarray | None = None
    cb: np.ndarray | None = None
    if cannot is not None:
        ca, cb = own[cannot[0]], own[cannot[1]]
        both = (ca >= 0) & (cb >= 0)  # a pair with a cluster never compared binds nothing
        ca, cb = ca[both], cb[both]
    root = _merge_joined(
        emb,
        own,
        faces,
        len(ids),
        i,
        j,
        threshold,
        None if ca is None or cb is None else (ca, cb),
        None if eligible is None else np.asarray(eligible, dtype=bool)[ids],
        max_rounds,
        small_penalty,
        clear_threshold,
        clear_margin,
        scale,
        None if fixed is None else np.asarray(fixed, dtype=bool)[ids],
        known,
    )
    merged = labels.copy()
    at = np.flatnonzero(own >= 0) if faces is None else faces
    merged[at] = ids[root[own[at]]]
    return merged


def _merge_joined(
    emb: np.ndarray,
    labels: np.ndarray,
    faces: np.ndarray | None,
    k: int,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float,
    cannot: tuple[np.ndarray, np.ndarray] | None,
    eligible: np.ndarray | None,
    max_rounds: int,
    small_penalty: float,
    clear_threshold: float | None,
    clear_margin: float,
    scale: np.ndarray | None,
    fixed: np.ndarray | None,
    known: KnownSums | None = None,
) -> np.ndarray:
    """:func:`merge_by_linkage` over clusters 0..k-1 of ``faces`` (``labels`` one per face,
    theirs in 0..k-1; None: every face), ``cannot`` as cluster pairs: each cluster's
    surviving cluster."""
    mom = _Moments.of(np.asarray(emb), labels, k, faces, known)
    factor_sum = None
    if scale is not None:
        weights = np.asarray(scale) if faces is None else np.asarray(scale)[faces]
        factor_sum = np.bincount(labels if faces is None else labels[faces], weights=weights, minlength=k)
    root = np.arange(k, dtype=np.int64)
    keys = _edge_pairs(labels, i, j, k)
    if eligible is not None:
        keys = keys[eligible[keys // k] & eligible[keys % k]]
    held = None if fixed is None else fixed.copy()
    if held is not None:
        keys = keys[~(held[keys // k] & held[keys % k])]
    forbidden = _pair_keys(cannot[0], cannot[1], k) if cannot is not None else np.zeros(0, np.int64)
    reach = max(threshold, clear_threshold or 0.0)
    pa, pb, dist = _near(mom, np.setdiff1d(keys, forbidden, assume_unique=True), k, reach)
    del keys
    # Which pairs may merge, kept between rounds: a round's merges change the pairs of the
    # clusters merged and the two nearest candidates of their partners, nothing else. Only
    # the pairs of those clusters are judged again (a few thousand of a million pairs
    # after the first round; the same judgement as judging every pair each round).
    pairs = _Pairs(pa, pb, dist, k)
    del pa, pb, dist
    best1 = best2 = np.zeros(0)
    dirty: np.ndarray | None = None  # None: every cluster
    for _ in range(max_rounds):
        if not pairs.alive_count:
            break
        idx = pairs.every() if dirty is None else pairs.of(dirty)
        a, b, d = pairs.pa[idx], pairs.pb[idx], pairs.dist[idx]
        size_penalty = (small_penalty / np.sqrt(mom.n[a] + mom.n[b] - 1.0)).astype(np.float32)
        # The crowding factor of the pair: the smaller of the two clusters' means (1: none).
        m = 1.0 if factor_sum is None else np.minimum(factor_sum[a] / mom.n[a], factor_sum[b] / mom.n[b])
        ok = d < threshold * m - size_penalty
        if clear_threshold is not None:
            if dirty is None:
                best1, best2 = _two_lowest(a, b, d, k)
            else:
                sub1, sub2 = _two_lowest(a, b, d, k)  # every pair of a dirty cluster is here
                best1[dirty], best2[dirty] = sub1[dirty], sub2[dirty]
            clear = _runner_up(a, b, d, mom.n, best1, best2) - d >= clear_margin
            ok |= clear & (d < clear_threshold * m - size_penalty)
        pairs.allowed[idx] = ok
        del size_penalty, m, ok, a, b, d, idx
        candidates = pairs.in_key_order(np.flatnonzero(pairs.allowed[: pairs.size]))
        if not len(candidates):
            break
        ca, cb = pairs.pa[candidates], pairs.pb[candidates]
        chosen = _reciprocal(ca, cb, pairs.dist[candidates], k)
        into, gone = ca[chosen].astype(np.int64), cb[chosen].astype(np.int64)  # a < b: the smaller label survives
        mom.merge(into, gone)
        if factor_sum is not None:
            factor_sum[into] += factor_sum[gone]
        root[gone] = into
        if held is not None:
            held[into] |= held[gone]
        changed = np.zeros(k, dtype=bool)
        changed[into] = True
        changed[gone] = True
        # The merged clusters' pairs are renamed and measured again; their partners'
        # candidates change, so their pairs are judged again.
        touched = pairs.of(changed)
        dirty = changed.copy()
        dirty[pairs.pa[touched]] = True
        dirty[pairs.pb[touched]] = True
        forbidden = _renamed(forbidden, changed, root, k)
        fresh = _pair_keys(root[pairs.pa[touched]], root[pairs.pb[touched]], k)
        if held is not None:
            fresh = fresh[~(held[fresh // k] & held[fresh % k])]
        # None of them a pair still there: each has a merged cluster at an end.
        pairs.replace(touched, *_near(mom, np.setdiff1d(fresh, forbidden, assume_unique=True), k, reach))
    # Each round points a gone label at a survivor that may itself be gone later.
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return root


def closest_pairs(
    emb: np.ndarray,
    labels: np.ndarray,
    neighbours: int = 10,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of clusters (a < b) that may be one person, closest first: (a, b, root mean
    squared distance between their faces).

    Each cluster is compared with the ``neighbours`` clusters whose mean descriptor is
    nearest to its own; ``labels`` gives one cluster per face (negative: in none).
    ``exclude`` holds pair keys ``a * k + b`` (k = number of labels) never to suggest.
    """
    labels = np.asarray(labels, dtype=np.int64)
    inside = labels >= 0
    k = int(labels[inside].max()) + 1 if inside.any() else 0
    if k < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    return closest_pairs_of(_Moments.of(np.asarray(emb)[inside], labels[inside], k), neighbours, exclude)


def cluster_moments(n: np.ndarray, s: np.ndarray, sq: np.ndarray) -> _Moments:
    """The moments of clusters summed elsewhere (say, a person at a time from the store):
    sizes, descriptor sums (k, d) and squared-norm sums."""
    return _Moments(n.astype(np.float64), s.astype(np.float32), sq.astype(np.float64))


def closest_pairs_of(
    mom: _Moments, neighbours: int = 10, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`closest_pairs` of clusters given by their moments (see :func:`cluster_moments`)."""
    k = len(mom.n)
    if k < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    present = np.flatnonzero(mom.n > 0)
    means = (mom.s[present] / mom.n[present, None]).astype(np.float32)
    near, _ = blocked_knn(means, means, neighbours + 1)
    a = np.repeat(present, near.shape[1])
    b = present[near.reshape(-1)]
    keys = _pair_keys(a, b, k)
    if exclude is not None and len(exclude):
        keys = np.setdiff1d(keys, exclude, assume_unique=True)
    pa, pb = keys // k, keys % k
    dist = mom.distance(pa, pb)
    order = np.lexsort((pb, pa, dist))
    return pa[order], pb[order], dist[order]


def attach(
    emb: np.ndarray,
    labels: np.ndarray,
    faces: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    threshold: float | np.ndarray,
    small_penalty: float = 0.0,
    margin: float = 0.0,
    forbidden: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> np.ndarray:
    """The cluster each face of ``faces`` (indices) joins, or -1: the cluster of at least two
    other faces, among those its edges (i, j) reach, whose faces are closest to it on
    average, when that distance is under ``threshold - small_penalty / sqrt(n)`` (n: the
    cluster's size) and every other candidate is at least ``margin`` farther.

    The faces of ``faces`` neither count in a cluster nor make one: this is how faces too
    doubtful to be linked (junk detections, strangers in the background) join a person
    only when the person is unambiguous. ``forbidden`` holds keys ``face * k + label``
    (k = number of labels) that must not be chosen (cannot-links). ``threshold`` may be one
    per face of ``faces`` (scaled where faces crowd). ``known``: the sums of groups of faces
    that share a label, none of them in ``faces`` (:class:`KnownSums`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(len(faces), -1, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 0
    if k == 0 or len(faces) == 0 or len(i) == 0:
        return out
    attaching = np.zeros(len(labels), dtype=bool)
    attaching[faces] = True
    kept = ~attaching
    src = np.concatenate([i, j]).astype(np.int64)
    dst = np.concatenate([j, i]).astype(np.int64)
    use = attaching[src] & kept[dst]
    keys = np.unique(src[use] * k + labels[dst[use]])
    if forbidden is not None and len(forbidden):
        keys = np.setdiff1d(keys, forbidden, assume_unique=True)
    face, cluster = keys // k, keys % k
    # The moments of the clusters a face may join only: an incremental run's few, not a
    # million faces' (copied, then summed, at each grouping).
    wanted = np.zeros(k, dtype=bool)
    wanted[cluster] = True
    mom = _Moments.of(np.asarray(emb), labels, k, np.flatnonzero(kept & wanted[labels]), known)
    size = mom.n[cluster]
    dist = mom.face_distance(np.asarray(emb)[face], cluster)
    position = np.full(len(labels), -1, dtype=np.int64)
    position[faces] = np.arange(len(faces))
    limit = np.asarray(threshold, dtype=np.float64)
    if limit.ndim:
        limit = limit[position[face]]
    ok = (size >= 2) & (dist < limit - small_penalty / np.sqrt(size))
    face, cluster, dist = face[ok], cluster[ok], dist[ok]
    order = np.lexsort((dist, face))
    face, cluster, dist = face[order], cluster[order], dist[order]
    first = np.r_[True, face[1:] != face[:-1]] if len(face) else np.zeros(0, dtype=bool)
    has_next = np.r_[face[1:] == face[:-1], False] if len(face) else np.zeros(0, dtype=bool)
    runner_up = np.where(has_next, np.r_[dist[1:], np.inf], np.inf)
    chosen = first & (runner_up - dist >= margin)
    out[position[face[chosen]]] = cluster[chosen]
    return out
