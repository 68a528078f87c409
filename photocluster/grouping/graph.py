"""Neighbour graphs over face descriptors: which faces are close enough to be linked.

:func:`edges` joins every pair under the threshold; :func:`knn_edges` keeps each face's
``k`` nearest, exactly for small libraries and through an inverted file for large ones.
Pure functions over arrays: the same embeddings and options give the same edges.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from photocluster.core.memory import release_freed_memory
from photocluster.core.progress import Progress, ProgressCallback
from photocluster.core.vectors import sq_distance_blocks, squared_norms, take_rows

# The phase :func:`knn_edges` reports its progress in.
NEIGHBOURS = "Finding neighbours"


def edges(emb: np.ndarray, threshold: float, block: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` with Euclidean distance below ``threshold``.

    Computed in row blocks (``block`` x n distances at a time), so memory stays at
    ``block * n * 4`` bytes whatever n is. Returns (i, j, distance) arrays.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    t2 = threshold * threshold
    out_i, out_j, out_d = [], [], []
    for start, d2 in sq_distance_blocks(emb, emb, block, upper=True):
        rows, cols = np.nonzero(d2 < t2)
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
        out_i.append(rows + start)
        out_j.append(cols + start)
        out_d.append(np.sqrt(np.maximum(d2[rows, cols], 0.0)))
    if not out_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    return (
        np.concatenate(out_i).astype(np.int64),
        np.concatenate(out_j).astype(np.int64),
        np.concatenate(out_d).astype(np.float32),
    )


_T = TypeVar("_T")
_R = TypeVar("_R")


def default_workers() -> int:
    """The threads the neighbour search uses: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextmanager
def parallel(workers: int) -> Iterator[Callable[[Callable[[_T], _R], Sequence[_T]], Iterator[_R]]]:
    """A ``map`` over ``workers`` threads (one: no pool), results in order, with BLAS at one
    thread each; the neighbour search's and the linkage's distances run on it.

    The search is matrix products and numpy passes that release the GIL: threads over
    the inverted file's lists use every core for all of it, where BLAS's own threads
    would share only the products (and spin on a busy machine: 2-7x the CPU time
    measured on 2 loaded cores)."""
    with threadpool_limits(limits=1, user_api="blas"):
        if workers <= 1:
            yield lambda fn, items: map(fn, items)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="knn") as pool:
            yield lambda fn, items: pool.map(fn, items)


def _top_k_within(d2: np.ndarray, k: int, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` smallest entries under the row's ``bound``: (rows, columns).

    Most rows of a photo library have at most ``k`` entries under the bound (strangers,
    people seen a few times): they skip the partial sort, which only the rows of often
    photographed people need.
    """
    under = d2 < bound[:, None]
    # Summed as bytes: count_nonzero along an axis sums a copy in int64, twice the time.
    count = under.view(np.uint8).sum(axis=1, dtype=np.int32)
    # Rows with nothing under the bound (most of them) are not looked at again.
    some = np.flatnonzero((count > 0) & (count <= k))
    rows, cols = np.nonzero(under[some])
    rows = some[rows]
    heavy = np.flatnonzero(count > k)
    if len(heavy) == 0:
        return rows, cols
    part = np.argpartition(d2[heavy], k - 1, axis=1)[:, :k]
    return np.concatenate([rows, np.repeat(heavy, k)]), np.concatenate([cols, part.reshape(-1)])


def _neighbours(
    emb: np.ndarray, sq: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int, t2: float, block: int
) -> list[np.ndarray]:
    """Edges from each of ``rows`` to its ``k`` nearest of ``cols`` (sorted) under the
    squared threshold ``t2``, as pair keys ``min * n + max`` (int64: 8 bytes an edge)."""
    out = []
    n = len(emb)
    # Not measured here: the full run's tens of millions of edges are measured once each
    # is held once (:func:`_pairs`).
    for a, b, _, _ in _neighbour_pairs(emb, sq, rows, cols, k, t2, block, measure=False):
        key = np.minimum(a, b)
        key *= n
        key += np.maximum(a, b)
        out.append(key)
    return out


def _neighbour_pairs(
    emb: np.ndarray,
    sq: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    k: int,
    t2: float,
    block: int,
    measure: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(row, neighbour) face indices (int64) of each of ``rows``' ``k`` nearest of ``cols``
    (sorted) under the squared threshold ``t2``, with their squared distances as the
    search computed them (float32, from one matrix product: what ranked them) and their
    distances measured as :func:`_pairs` measures an edge (float32, the same values to
    the bit; empty unless ``measure``), a block of rows at a time."""
    # Fewer rows a block against many candidates (a list holding someone photographed
    # thousands of times): the block's distances and the partial sort's int64 indices
    # stay a few tens of megabytes a thread, whatever the list.
    block = max(16, min(block, _BLOCK_ENTRIES // max(1, len(cols))))
    queries, base = take_rows(emb, rows), take_rows(emb, cols)
    # |r|^2 is the same along a row: it moves the row's bound, not its ranking.
    for start, d2 in sq_distance_blocks(queries, base, block, base_sq=sq[cols], ranking=True):
        r = rows[start : start + len(d2)]
        # A face is not its own neighbour.
        pos = np.minimum(np.searchsorted(cols, r), len(cols) - 1)
        own = np.flatnonzero(cols[pos] == r)
        d2[own, pos[own]] = np.inf
        br, bc = _top_k_within(d2, k, t2 - sq[r])
        # Measured while both faces' descriptors are at hand: gathered again afterwards,
        # a million pairs' cost most of the ranking and measuring of a few thousand
        # faces' neighbourhoods among a million.
        measured = (
            np.sqrt(squared_norms(take_rows(queries, start + br) - take_rows(base, bc)))
            if measure
            else np.zeros(0, np.float32)
        )
        yield r[br].astype(np.int64), cols[bc].astype(np.int64), d2[br, bc] + sq[r[br]], measured


# Distances a block of the neighbour search holds at most (rows x candidates): 8 MB of
# float32, 16 MB of argpartition's indices. Without a cap, 1,024 rows against a list of
# 20,000 candidates took 350 MB a thread, the peak of a million-face run.
_BLOCK_ENTRIES = 1 << 21


def _pairs(held: list[np.ndarray], emb: np.ndarray, chunk: int = 1 << 13) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique undirected pairs i < j (int32) and their distances from the pair keys in
    ``held`` (one array, taken out of the list: its tens of millions of keys go as soon as
    the pairs are read from them)."""
    n = len(emb)
    keys = held.pop()
    keys.sort()
    unique = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=unique[1:])
    # A chunk of keys at a time into int32: no int64 copy of the unique keys, nor of i and j.
    i = np.empty(int(np.count_nonzero(unique)), dtype=np.int32)
    j = np.empty(len(i), dtype=np.int32)
    at = 0
    for start in range(0, len(keys), 1 << 20):
        part = keys[start : start + (1 << 20)][unique[start : start + (1 << 20)]]
        i[at : at + len(part)] = part // n
        j[at : at + len(part)] = part % n
        at += len(part)
    del unique, keys
    d = np.empty(len(i), dtype=np.float32)
    for start in range(0, len(i), chunk):
        diff = take_rows(emb, i[start : start + chunk]) - take_rows(emb, j[start : start + chunk])
        d[start : start + chunk] = np.sqrt(squared_norms(diff))
    return i, j, d


@dataclass(frozen=True)
class SearchIndex:
    """The inverted file of a full run's neighbour search (:func:`knn_graph`), kept for
    the incremental runs after it: the k-means centres (float32 rows) and each face's
    nearest lists (one int32 row per face, the nearest first; the faces it holds a list
    of are the lists' candidates, each face looks among the candidates of its nearest)."""

    centres: np.ndarray
    lists: np.ndarray

    @cached_property
    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """Each list's faces (list c's: ``faces[bounds[c]:bounds[c + 1]]``, in increasing
        order) as (faces, bounds): found once for every search of a run."""
        flat = self.lists.reshape(-1)
        if len(self.centres) <= np.iinfo(np.int16).max:
            flat = flat.astype(np.int16)  # a radix sort: 6x faster on a million faces' lists
        registered = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[registered], np.arange(len(self.centres) + 1))
        return registered // self.lists.shape[1], bounds

    def completed(self, emb: np.ndarray, workers: int | None = None) -> SearchIndex:
        """The index with their lists given to the faces of ``emb`` it holds none for
        (rows of -1: faces added since it was made)."""
        missing = np.flatnonzero(self.lists[:, 0] < 0)
        if len(missing) == 0:
            return self
        lists = self.lists.copy()
        with parallel(default_workers() if workers is None else workers) as pmap:
            lists[missing] = _nearest_centres(
                np.ascontiguousarray(emb[missing], dtype=np.float32), self.centres, lists.shape[1], pmap=pmap
            )
        return SearchIndex(self.centres, lists)


def knn_edges(
    emb: np.ndarray,
    threshold: float,
    k: int = 32,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`knn_graph`'s edges."""
    return knn_graph(emb, threshold, k, **options)[0]


def knn_graph(
    emb: np.ndarray,
    threshold: float,
    k: int = 32,
    exact_below: int = 10_000,
    list_size: int = 1000,
    lists_per_face: int = 3,
    lists_per_lonely_face: int = 12,
    seed: int = 0,
    block: int = 1024,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], SearchIndex | None]:
    """Edges from each face to its ``k`` nearest faces closer than ``threshold``: (i, j,
    distance) with i < j, each pair once, indices int32; and the inverted file that found
    them (None: every distance computed), for :func:`query_neighbourhoods` to search new
    faces with later.

    Capping the neighbours keeps the graph at O(n k) edges even when one person has
    100,000 faces, and Chinese whispers needs no more than a few dozen votes per face.
    Up to ``exact_below`` faces every distance is computed (blocked matrix products).

    Beyond that an inverted file (k-means lists of ~``list_size`` faces) computes only
    the distances that can matter: each face is a candidate in the ``lists_per_face``
    lists nearest to it and looks for its neighbours among the candidates of its nearest
    list, so the work per face stays ``lists_per_face * list_size`` distances whatever
    the library's size. That finds nearly every neighbour of a face in a crowd (the lists
    follow the people photographed most). A face far from every list, someone seen two or
    three times, gets a second look: faces left without any neighbour search again among
    the sparsely linked faces registered in their ``lists_per_lonely_face`` nearest lists.
    ``benchmarks/cluster_scale.py`` measures the recall and the agreement with
    every-edge clustering. ``progress`` is told the percent of the work done (phase
    :data:`NEIGHBOURS`, ``total`` 100). The work runs on ``workers`` threads (None: one
    per core, :func:`default_workers`); the edges do not depend on how many.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    t2 = threshold * threshold
    if n < 2:
        return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)), None
    sq = squared_norms(emb)
    everyone = np.arange(n)
    with parallel(default_workers() if workers is None else workers) as pmap:
        if n <= exact_below:
            chunks = np.array_split(everyone, max(1, n // block))
            parts = pmap(lambda rows: _concat(_neighbours(emb, sq, rows, everyone, k, t2, block)), chunks)
            keys = _concat(list(parts))
            if progress is not None:
                progress(Progress(NEIGHBOURS, 100, 100))
            return _pairs([keys], emb), None
        centres = _kmeans(emb, max(16, n // list_size), seed, pmap=pmap)
        near = _nearest_centres(emb, centres, lists_per_face, pmap=pmap)
        index = SearchIndex(centres, near)
        keys = _concat(_search(emb, sq, everyone, near[:, 0], everyone, near, k, t2, block, pmap, progress, 0, 80))
        degree = np.zeros(n, dtype=np.int64)
        for start in range(0, len(keys), 1 << 22):
            part = keys[start : start + (1 << 22)]
            degree += np.bincount(part // n, minlength=n) + np.bincount(part % n, minlength=n)
        sparse = np.flatnonzero(degree < k)
        lonely = degree[sparse] == 0
        del degree
        wide = _nearest_centres(emb[sparse], centres, lists_per_lonely_face, pmap=pmap)
        more = _search(emb, sq, sparse[lonely], wide[lonely, 0], sparse, wide, k, t2, block, pmap, progress, 80, 100)
        del wide
        held = [_concat([keys, *more])]
        del keys
    # The search threads' freed blocks stay in their heaps: given back before the pairs'
    # arrays come on top of them (at a million faces, 1.4 GB at the peak instead of ~1.0).
    release_freed_memory()
    return _pairs(held, emb), index


_Map = Callable[[Callable[[_T], _R], Sequence[_T]], Iterator[_R]]


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    parts.clear()  # the caller's list: its arrays go as soon as they are copied
    return out


def _search(
    emb: np.ndarray,
    sq: np.ndarray,
    queries: np.ndarray,
    query_list: np.ndarray,
    candidates: np.ndarray,
    candidate_lists: np.ndarray,
    k: int,
    t2: float,
    block: int,
    pmap: _Map[tuple[np.ndarray, np.ndarray], np.ndarray],
    progress: ProgressCallback | None = None,
    done_from: int = 0,
    done_to: int = 100,
) -> list[np.ndarray]:
    """Each query's neighbours (pair keys, see :func:`_neighbours`) among the candidates registered in the query's list.

    ``queries`` and ``candidates`` are sorted face indices; ``query_list`` holds each
    query's list, ``candidate_lists`` (one row per candidate) the lists it is registered in.
    """
    out: list[np.ndarray] = []
    if len(queries) == 0 or len(candidates) == 0:
        return out
    n_lists = int(max(query_list.max(), candidate_lists.max())) + 1
    by_list = np.argsort(query_list, kind="stable")
    query_bounds = np.searchsorted(query_list[by_list], np.arange(n_lists + 1))
    # A stable sort keeps each list's candidates in increasing face order.
    flat = candidate_lists.reshape(-1)
    registered = np.argsort(flat, kind="stable")
    cand_bounds = np.searchsorted(flat[registered], np.arange(n_lists + 1))
    owner = candidates[registered // candidate_lists.shape[1]]
    del flat, registered
    tasks = [
        (queries[by_list[query_bounds[c] : query_bounds[c + 1]]], owner[cand_bounds[c] : cand_bounds[c + 1]])
        for c in range(n_lists)
    ]
    # Each list's edges on a thread of the pool, taken in list order as they come.
    found = pmap(
        lambda task: (
            _concat(_neighbours(emb, sq, *task, k, t2, block)) if len(task[0]) and len(task[1]) else _concat([])
        ),
        tasks,
    )
    for c, keys in enumerate(found):
        out.append(keys)
        if progress is not None:
            progress(Progress(NEIGHBOURS, done_from + (done_to - done_from) * (c + 1) // n_lists, 100))
    return out


def _kmeans(
    emb: np.ndarray,
    n_lists: int,
    seed: int,
    iterations: int = 8,
    per_list: int = 64,
    pmap: _Map[slice, np.ndarray] | None = None,
) -> np.ndarray:
    """Coarse k-means centres (trained on a sample of ``per_list`` faces per list) for the
    inverted file: its lists need only cover the faces evenly, not be optimal."""
    rng = np.random.default_rng(seed)
    n_lists = min(n_lists, len(emb))
    pick = rng.choice(len(emb), size=min(per_list * n_lists, len(emb)), replace=False)
    data = emb[np.sort(pick)]
    centres = data[rng.choice(len(data), size=n_lists, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest_centres(data, centres, 1, pmap=pmap)[:, 0]
        sums = np.zeros_like(centres)
        np.add.at(sums, assign.astype(np.intp), data)
        counts = np.bincount(assign, minlength=n_lists)
        nonempty = counts > 0
        centres[nonempty] = sums[nonempty] / counts[nonempty, None]
    return centres


def _nearest_centres(
    x: np.ndarray, centres: np.ndarray, m: int, block: int = 16384, pmap: _Map[slice, np.ndarray] | None = None
) -> np.ndarray:
    """Each row's ``m`` nearest centres, (len(x), m) int32: the nearest first, the others
    in no particular order."""
    m = min(m, len(centres))
    centres_sq = squared_norms(centres)

    def nearest(rows: slice) -> np.ndarray:
        # |x|^2 is the same for every centre of a row: leave it out of the ranking.
        _, d = next(sq_distance_blocks(x[rows], centres, len(x), base_sq=centres_sq, ranking=True))
        nearest = np.argmin(d, axis=1).astype(np.int32)
        if m == 1:
            out: np.ndarray = nearest[:, None]
            return out
        top = np.argpartition(d, m - 1, axis=1)[:, :m].astype(np.int32)
        # Put the nearest first (one argpartition with two pivots is several times slower).
        at = np.argmax(top == nearest[:, None], axis=1)
        top[np.arange(len(top)), at] = top[:, 0]
        top[:, 0] = nearest
        return top

    # Rows x centres bounded like the neighbour search's blocks: at ten million faces the
    # lists number 10,000, and 16,384 rows against them took 2 GB a thread.
    block = max(64, min(block, _BLOCK_ENTRIES // max(1, len(centres))))
    blocks = [slice(start, start + block) for start in range(0, len(x), block)]
    parts = list((pmap or map)(nearest, blocks))
    return np.concatenate(parts) if parts else np.empty((0, m), dtype=np.int32)


def query_edges(
    emb: np.ndarray,
    queries: np.ndarray,
    threshold: float,
    k: int = 32,
    lists_per_face: int = 3,
    lists_per_lonely_face: int = 12,
    exact_below: int = 20_000_000,
    seed: int = 0,
    block: int = 1024,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges from each face of ``queries`` (sorted indices) to its ``k`` nearest faces of
    ``emb`` closer than ``threshold``: (i, j, distance) with i < j, each pair once, indices
    int32, as :func:`knn_edges` finds them for those faces.

    For the faces added to a clustered library: a few thousand faces searched among a
    million. Up to ``exact_below`` distances every one is computed; beyond that the faces
    are put in the list of their nearest k-means centre, with about ``sqrt(lists_per_face *
    len(queries))`` lists (assigning every face and searching the queries then cost about
    the same), and each query looks in its ``lists_per_face`` nearest lists, or its
    ``lists_per_lonely_face`` nearest when those hold no neighbour.
    """
    edges, _ = query_neighbourhoods(
        emb,
        queries,
        threshold,
        k,
        0,
        lists_per_face=lists_per_face,
        lists_per_lonely_face=lists_per_lonely_face,
        exact_below=exact_below,
        seed=seed,
        block=block,
        workers=workers,
    )
    return edges


# Edges (i < j, int32) and their lengths (float32).
Edges = tuple[np.ndarray, np.ndarray, np.ndarray]


def query_neighbourhoods(
    emb: np.ndarray,
    queries: np.ndarray,
    threshold: float,
    k: int = 32,
    wide: int = 0,
    lists_per_face: int = 3,
    lists_per_lonely_face: int = 12,
    exact_below: int = 20_000_000,
    seed: int = 0,
    block: int = 1024,
    workers: int | None = None,
    index: SearchIndex | None = None,
    sparse: np.ndarray | None = None,
) -> tuple[Edges, Edges]:
    """:func:`query_edges` (the edges to each searched face's ``k`` nearest) and, in the
    same search, the edges to each searched face's ``wide`` nearest (0: none, empty arrays;
    at most ``k``: the first edges again).

    The wide neighbourhood is what a full run's graph shows of a face beyond its own
    ``k`` nearest: there, the faces that have it among *their* ``k`` nearest link to it too,
    and the crowding factor (:mod:`~photocluster.grouping.crowding`) counts the clusters
    over all of its links. Which faces are searched again (the lonely ones) depends on the
    ``k`` nearest only, so the first edges are those of :func:`query_edges`.

    ``index``: the inverted file of the last full run (:func:`knn_graph`, a row of lists
    for every face, :meth:`SearchIndex.completed`): the faces are searched as that run
    searched them, in their nearest list, without the library assigned to new centres.

    ``sparse`` (one bool per face): the faces a lonely query looks among in its wider lists,
    as a full run's lonely faces look among the faces with few links only (None: all).
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    queries = np.asarray(queries, dtype=np.int64)
    t2 = threshold * threshold
    none = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    if n < 2 or len(queries) == 0:
        return none, none
    reach = max(k, wide)
    sq = squared_norms(emb)
    with parallel(default_workers() if workers is None else workers) as pmap:
        exact = len(queries) * n <= exact_below
        ivf = _QueryIndex(emb, sq, reach, t2, block, pmap, lists_per_face, lists_per_lonely_face, seed)
        if exact:
            search = _exact_search(emb, sq, reach, t2, block, pmap)
        elif index is not None:
            search = _listed_search(emb, sq, index, reach, t2, block, pmap, lists_per_lonely_face, sparse)
        else:
            search = ivf.sized_for(len(queries), sparse)

        first = search(queries)
        found = np.zeros(n, dtype=bool)
        found[first[0]] = True
        lonely = queries[~found[queries]] if not exact else queries[:0]
        parts = [first]
        del first
        if len(lonely):
            # Several lists each: a face registered in two of them is found twice.
            parts.append(_distinct(search(lonely, lonely=True), n))
        a, b, d2, d = (np.concatenate([part[c] for part in parts]) for c in range(4))
        del parts
        release_freed_memory()
        order, a, rank = _ranked(a, b, d2)
        b, d = b[order], d[order]
        del d2, order
        if wide <= k:
            near = rank < k
            edges, _ = _nested_edges(n, a[near], b[near], d[near], np.ones(int(near.sum()), dtype=bool))
            return edges, none if wide <= 0 else edges
        within = rank < wide
        return _nested_edges(n, a[within], b[within], d[within], rank[within] < k)


def union_edges(first: Edges, second: Edges, n: int) -> Edges:
    """The edges (i < j, int32, with their lengths) of two searches among ``n`` faces, each
    once, by pair: a pair both found was measured the same by both
    (:func:`_neighbour_pairs`)."""
    i = np.concatenate([first[0], second[0]]).astype(np.int64)
    j = np.concatenate([first[1], second[1]]).astype(np.int64)
    d = np.concatenate([first[2], second[2]])
    keys = i * n + j
    order = np.argsort(keys)
    keys = keys[order]
    once = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=once[1:])
    keys = keys[once]
    return (keys // n).astype(np.int32), (keys % n).astype(np.int32), d[order[once]]


def _nested_edges(n: int, a: np.ndarray, b: np.ndarray, d: np.ndarray, inner: np.ndarray) -> tuple[Edges, Edges]:
    """The edges (i < j, int32; their measured lengths ``d``) of the (query, neighbour)
    pairs (a, b) of ``n`` faces, each once, and those of the ``inner`` pairs among them:
    an edge is inner when either of its two directions is. Its two directions measured
    it the same (:func:`_neighbour_pairs`)."""
    # The pair key with a last bit that sorts an inner direction first: one sort gives
    # each edge once and whether it is inner.
    keys = np.minimum(a, b) * n + np.maximum(a, b)
    keys *= 2
    keys += ~np.asarray(inner, dtype=bool)
    order = np.argsort(keys)
    keys = keys[order]
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:] >> 1, keys[:-1] >> 1, out=first[1:])
    keys, d = keys[first], np.asarray(d, dtype=np.float32)[order[first]]
    near = (keys & 1) == 0
    keys >>= 1
    i, j = (keys // n).astype(np.int32), (keys % n).astype(np.int32)
    return (i[near], j[near], d[near]), (i, j, d)


# What a search finds: (query, neighbour) face indices, the squared distance that ranked
# them, the distance measured.
_Found = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_Search = Callable[..., _Found]


def _exact_search(emb: np.ndarray, sq: np.ndarray, reach: int, t2: float, block: int, pmap: _Map[Any, Any]) -> _Search:
    """Each query's ``reach`` nearest among every face: (query, neighbour) pairs."""
    everyone = np.arange(len(emb))

    def search(q: np.ndarray, lonely: bool = False) -> _Found:
        chunks = np.array_split(q, max(1, len(q) // block))
        return _gather_pairs(pmap(lambda rows: _pair_list(emb, sq, rows, everyone, reach, t2, block), chunks))

    return search


@dataclass
class _QueryIndex:
    """Inverted files for searching some faces among all: each face in the list of its
    nearest k-means centre, with about ``sqrt(lists_per_face * queries)`` lists (assigning
    every face and searching the queries then cost about the same)."""

    emb: np.ndarray
    sq: np.ndarray
    reach: int
    t2: float
    block: int
    pmap: _Map[Any, Any]
    lists_per_face: int
    lists_per_lonely_face: int
    seed: int

    def sized_for(self, queries: int, sparse: np.ndarray | None = None) -> _Search:
        emb, pmap = self.emb, self.pmap
        n = len(emb)
        n_lists = int(np.clip(np.sqrt(self.lists_per_face * queries), 16, max(16, n // 64)))
        centres = _kmeans(emb, n_lists, self.seed, pmap=pmap)
        home = _nearest_centres(emb, centres, 1, pmap=pmap)[:, 0]
        members = np.argsort(home, kind="stable")  # each list's faces in increasing order
        bounds = np.searchsorted(home[members], np.arange(len(centres) + 1))
        few = _only(members, bounds, sparse)

        def search(q: np.ndarray, lonely: bool = False) -> _Found:
            m = self.lists_per_lonely_face if lonely else self.lists_per_face
            owner, lists = _probes(q, _nearest_centres(emb[q], centres, m, pmap=pmap))
            among, at = few if lonely else (members, bounds)
            return _probe(emb, self.sq, owner, lists, among, at, self.reach, self.t2, self.block, pmap)

        return search


def _listed_search(
    emb: np.ndarray,
    sq: np.ndarray,
    index: SearchIndex,
    reach: int,
    t2: float,
    block: int,
    pmap: _Map[Any, Any],
    lists_per_lonely_face: int,
    sparse: np.ndarray | None = None,
) -> _Search:
    """Each query's ``reach`` nearest among the faces ``index`` registers in the query's
    nearest list, as :func:`knn_graph` searched every face (no face assigned to the
    centres again: a million faces' assignment is most of a few new faces' search); a
    lonely query among the ``sparse`` faces (None: all) of its ``lists_per_lonely_face``
    nearest lists."""
    members, bounds = index.members
    few = _only(members, bounds, sparse)

    def search(q: np.ndarray, lonely: bool = False) -> _Found:
        if lonely:
            near = _nearest_centres(emb[q], index.centres, lists_per_lonely_face, pmap=pmap)
            owner, lists = _probes(q, near)
            # Not its nearest list again: it found nothing there.
            again = lists != np.repeat(index.lists[q, 0], near.shape[1])
            owner, lists = owner[again], lists[again]
            return _probe(emb, sq, owner, lists, *few, reach, t2, block, pmap)
        owner, lists = _probes(q, index.lists[q, :1])
        return _probe(emb, sq, owner, lists, members, bounds, reach, t2, block, pmap)

    return search


def _only(members: np.ndarray, bounds: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The lists' ``members`` (list c's: ``members[bounds[c]:bounds[c + 1]]``) that ``keep``
    marks (None: all), with their bounds."""
    if keep is None:
        return members, bounds
    kept = keep[members]
    before = np.r_[0, np.cumsum(kept)]
    return members[kept], before[bounds]


def _probes(q: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, list) of each probe: each of the queries ``q`` in each list of its row of ``near``."""
    return np.repeat(np.asarray(q, dtype=np.int64), near.shape[1]), near.reshape(-1)


def _probe(
    emb: np.ndarray,
    sq: np.ndarray,
    owner: np.ndarray,
    lists: np.ndarray,
    members: np.ndarray,
    bounds: np.ndarray,
    reach: int,
    t2: float,
    block: int,
    pmap: _Map[Any, Any],
) -> _Found:
    """(query, neighbour, squared distance, distance) of each probe, query ``owner[p]``'s ``reach``
    nearest among the faces of list ``lists[p]`` (list c's faces: ``members[bounds[c]:bounds[c + 1]]``);
    each list's faces are gathered once for all the queries probing it."""
    by_list = np.argsort(lists, kind="stable")
    qb = np.searchsorted(lists[by_list], np.arange(len(bounds)))
    owner = owner[by_list]
    tasks = [(owner[qb[c] : qb[c + 1]], members[bounds[c] : bounds[c + 1]]) for c in range(len(bounds) - 1)]
    return _gather_pairs(
        pmap(
            lambda t: _pair_list(emb, sq, t[0], t[1], reach, t2, block) if len(t[0]) and len(t[1]) else [],
            tasks,
        )
    )


def _pair_list(
    emb: np.ndarray, sq: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int, t2: float, block: int
) -> list[_Found]:
    return list(_neighbour_pairs(emb, sq, rows, cols, k, t2, block))


def _gather_pairs(parts: Iterator[list[_Found]]) -> _Found:
    found = [p for part in parts for p in part]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    return tuple(np.concatenate([p[c] for p in found]) for c in range(4))  # type: ignore[return-value]


def _distinct(found: _Found, n: int) -> _Found:
    """The (query, neighbour, ...) of a search with each pair once."""
    a, b = found[0], found[1]
    order = np.argsort(a * n + b, kind="stable")
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first], found[2][order][first], found[3][order][first]


def _ranked(a: np.ndarray, b: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (query, neighbour) pairs' order, each query's nearest first by the
    squared distances the search ranked them by, and each pair's rank among its query's in
    that order (0: the nearest): ``order``, ``a[order]``, ``rank``."""
    # One sort on (query, distance) in one float64 key: squared distances are under 4
    # (+ rounding), so a query's keys never reach the next query's, and at ten million
    # faces the key still tells distances 2e-8 apart. Three times faster than a lexsort.
    key = a * 8.0
    key += np.maximum(d2, 0.0)
    order = np.argsort(key, kind="stable")
    del key
    a = a[order]
    # Each pair's offset from its query's first pair: a run's start repeated along it.
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]]) if len(a) else np.zeros(0, dtype=np.intp)
    rank = np.arange(len(a)) - np.repeat(starts, np.diff(np.r_[starts, len(a)]))
    return order, a, rank
