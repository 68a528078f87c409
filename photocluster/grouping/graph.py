"""Grouping faces by person: pure functions over arrays, no I/O.

Faces closer than a threshold are joined by an edge; Chinese whispers (Biemann 2006,
as in dlib's ``chinese_whispers_clustering``) labels the graph. Every step is
deterministic: the same embeddings and options give the same labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import numpy as np

UNKNOWN = -1


def edges(emb: np.ndarray, threshold: float, block: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` with Euclidean distance below ``threshold``.

    Computed in row blocks (``block`` x n distances at a time), so memory stays at
    ``block * n * 4`` bytes whatever n is. Returns (i, j, distance) arrays.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    sq = np.einsum("ij,ij->i", emb, emb)
    t2 = threshold * threshold
    out_i, out_j, out_d = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Only columns >= start: the lower triangle was covered by earlier blocks.
        d2 = sq[start:stop, None] + sq[None, start:] - 2.0 * (emb[start:stop] @ emb[start:].T)
        rows, cols = np.nonzero(d2 < t2)
        cols = cols + start
        rows = rows + start
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
        out_i.append(rows)
        out_j.append(cols)
        out_d.append(np.sqrt(np.maximum(d2[rows - start, cols - start], 0.0)))
    if not out_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    return (
        np.concatenate(out_i).astype(np.int64),
        np.concatenate(out_j).astype(np.int64),
        np.concatenate(out_d).astype(np.float32),
    )


def _top_k_within(d2: np.ndarray, k: int, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` smallest entries under the row's ``bound``: (rows, columns).

    Most rows of a photo library have at most ``k`` entries under the bound (strangers,
    people seen a few times): they skip the partial sort, which only the rows of often
    photographed people need.
    """
    under = d2 < bound[:, None]
    count = np.count_nonzero(under, axis=1)
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
    e_cols, sq_cols = emb[cols], sq[cols]
    for start in range(0, len(rows), block):
        r = rows[start : start + block]
        # |r|^2 is the same along a row: it moves the row's bound, not its ranking.
        d2 = emb[r] @ e_cols.T
        d2 *= -2.0
        d2 += sq_cols
        # A face is not its own neighbour.
        pos = np.minimum(np.searchsorted(cols, r), len(cols) - 1)
        own = np.flatnonzero(cols[pos] == r)
        d2[own, pos[own]] = np.inf
        br, bc = _top_k_within(d2, k, t2 - sq[r])
        a, b = r[br].astype(np.int64), cols[bc].astype(np.int64)
        key = np.minimum(a, b)
        key *= n
        key += np.maximum(a, b)
        out.append(key)
    return out


def _pairs(keys: np.ndarray, emb: np.ndarray, chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique undirected pairs i < j (int32) and their distances from pair keys (sorted in place)."""
    n = len(emb)
    keys.sort()
    unique = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=unique[1:])
    keys = keys[unique]
    del unique
    i = (keys // n).astype(np.int32)
    j = (keys % n).astype(np.int32)
    del keys
    d = np.empty(len(i), dtype=np.float32)
    for start in range(0, len(i), chunk):
        diff = emb[i[start : start + chunk]] - emb[j[start : start + chunk]]
        d[start : start + chunk] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return i, j, d


def knn_edges(
    emb: np.ndarray,
    threshold: float,
    k: int = 32,
    exact_below: int = 10_000,
    list_size: int = 1000,
    lists_per_face: int = 3,
    lists_per_lonely_face: int = 12,
    seed: int = 0,
    block: int = 1024,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges from each face to its ``k`` nearest faces closer than ``threshold``: (i, j,
    distance) with i < j, each pair once, indices int32.

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
    every-edge clustering. ``progress`` is called with the share of the work done (0-1).
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    t2 = threshold * threshold
    if n < 2:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    sq = np.einsum("ij,ij->i", emb, emb)
    everyone = np.arange(n)
    if n <= exact_below:
        keys = _concat(_neighbours(emb, sq, everyone, everyone, k, t2, block))
        if progress is not None:
            progress(1.0)
    else:
        centres = _kmeans(emb, max(16, n // list_size), seed)
        near = _nearest_centres(emb, centres, lists_per_face)
        keys = _concat(_search(emb, sq, everyone, near[:, 0], everyone, near, k, t2, block, progress, 0.0, 0.8))
        degree = np.zeros(n, dtype=np.int64)
        for start in range(0, len(keys), 1 << 22):
            part = keys[start : start + (1 << 22)]
            degree += np.bincount(part // n, minlength=n) + np.bincount(part % n, minlength=n)
        sparse = np.flatnonzero(degree < k)
        lonely = degree[sparse] == 0
        del degree
        near = _nearest_centres(emb[sparse], centres, lists_per_lonely_face)
        more = _search(emb, sq, sparse[lonely], near[lonely, 0], sparse, near, k, t2, block, progress, 0.8, 1.0)
        keys = _concat([keys, *more])
    return _pairs(keys, emb)


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
    progress: Callable[[float], None] | None = None,
    done_from: float = 0.0,
    done_to: float = 1.0,
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
    for c in range(n_lists):
        rows = queries[by_list[query_bounds[c] : query_bounds[c + 1]]]
        cols = owner[cand_bounds[c] : cand_bounds[c + 1]]
        if len(rows) and len(cols):
            out += _neighbours(emb, sq, rows, cols, k, t2, block)
        if progress is not None:
            progress(done_from + (done_to - done_from) * (c + 1) / n_lists)
    return out


def _kmeans(emb: np.ndarray, n_lists: int, seed: int, iterations: int = 8, per_list: int = 64) -> np.ndarray:
    """Coarse k-means centres (trained on a sample of ``per_list`` faces per list) for the
    inverted file: its lists need only cover the faces evenly, not be optimal."""
    rng = np.random.default_rng(seed)
    n_lists = min(n_lists, len(emb))
    pick = rng.choice(len(emb), size=min(per_list * n_lists, len(emb)), replace=False)
    data = emb[np.sort(pick)]
    centres = data[rng.choice(len(data), size=n_lists, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest_centres(data, centres, 1)[:, 0]
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, data)
        counts = np.bincount(assign, minlength=n_lists)
        nonempty = counts > 0
        centres[nonempty] = sums[nonempty] / counts[nonempty, None]
    return centres


def _nearest_centres(x: np.ndarray, centres: np.ndarray, m: int, block: int = 16384) -> np.ndarray:
    """Each row's ``m`` nearest centres, (len(x), m) int32: the nearest first, the others
    in no particular order."""
    m = min(m, len(centres))
    c_sq = np.einsum("ij,ij->i", centres, centres)
    out = np.empty((len(x), m), dtype=np.int32)
    for start in range(0, len(x), block):
        # |x|^2 is the same for every centre of a row: leave it out of the ranking.
        d = x[start : start + block] @ centres.T
        d *= -2.0
        d += c_sq
        nearest = np.argmin(d, axis=1)
        if m == 1:
            out[start : start + block, 0] = nearest
            continue
        top = np.argpartition(d, m - 1, axis=1)[:, :m]
        # Put the nearest first (one argpartition with two pivots is several times slower).
        at = np.argmax(top == nearest[:, None], axis=1)
        top[np.arange(len(top)), at] = top[:, 0]
        top[:, 0] = nearest
        out[start : start + block] = top
    return out


def chinese_whispers(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    iterations: int = 100,
    seed: int = 0,
    weights: np.ndarray | None = None,
    cannot: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Labels 0..k-1 for ``n`` nodes joined by undirected edges (i, j).

    Each node starts in its own class; in each pass, in a seeded random order, a node
    takes the class with the largest total edge weight among its neighbours (ties: the
    smallest class). Stops once a pass changes nothing. ``cannot`` is a pair of arrays
    (a, b): node a never takes b's class and vice versa (the two stay apart).

    Vectorised: a pass updates the nodes in ``_BATCHES`` slices of the random order,
    each slice at once from the labels left by the previous slices (sequential Chinese
    whispers is the limit of one node per slice). Labels are then renumbered by
    decreasing class size, ties by smallest member.
    """
    labels = np.arange(n, dtype=np.int64)
    if n == 0 or len(i) == 0:
        return canonical_labels(labels)
    # int32/float32 halve the memory of a million-face graph (tens of millions of edges).
    w = np.ones(len(i), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    src = np.concatenate([i, j]).astype(np.int32)
    order = np.argsort(src, kind="stable")
    indptr = np.searchsorted(src[order], np.arange(n + 1))
    del src
    dst = np.concatenate([j, i]).astype(np.int32)[order]
    ww = np.concatenate([w, w])[order]
    del order
    ca: np.ndarray | None = None
    cb: np.ndarray | None = None
    cptr: np.ndarray | None = None
    if cannot is not None and len(cannot[0]):
        ca = np.concatenate([cannot[0], cannot[1]]).astype(np.int64)
        cb = np.concatenate([cannot[1], cannot[0]]).astype(np.int64)
        corder = np.argsort(ca, kind="stable")
        ca, cb = ca[corder], cb[corder]
        cptr = np.searchsorted(ca, np.arange(n + 1))
    connected = np.flatnonzero(np.diff(indptr) > 0)
    rng = np.random.default_rng(seed)
    batches = max(1, min(_BATCHES, len(connected)))
    for _ in range(iterations):
        changed = 0
        perm = rng.permutation(connected)
        for nodes in np.array_split(perm, batches):
            changed += _update(nodes, labels, indptr, dst, ww, ca, cb, cptr)
        if changed == 0:
            break
    return canonical_labels(labels)


# Slices per pass: enough that each slice sees mostly settled neighbours (close to
# sequential behaviour), few enough that numpy's per-call overhead stays small.
_BATCHES = 32


def _gather(nodes: np.ndarray, indptr: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each node, the slice values[indptr[node]:indptr[node + 1]]: (owner index, value)."""
    counts = indptr[nodes + 1] - indptr[nodes]
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(nodes)), counts)
    starts = np.repeat(indptr[nodes], counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, values[starts + offsets]


def _update(
    nodes: np.ndarray,
    labels: np.ndarray,
    indptr: np.ndarray,
    dst: np.ndarray,
    ww: np.ndarray,
    ca: np.ndarray | None,
    cb: np.ndarray | None,
    cptr: np.ndarray | None,
) -> int:
    """One slice of a pass: every node in ``nodes`` takes its neighbours' heaviest label."""
    owner, nb = _gather(nodes, indptr, dst)
    _, wt = _gather(nodes, indptr, ww)
    # Sum the weight per (node, label): sort one combined key, then reduce its runs.
    key = owner.astype(np.int64) * len(labels) + labels[nb]
    order = np.argsort(key)
    key, wt = key[order], wt[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    key, total = key[starts], np.add.reduceat(wt, starts)
    o, lb = key // len(labels), key % len(labels)
    if ca is not None and cb is not None and cptr is not None:
        # Labels held by a node's cannot-partners are off limits for it.
        c_owner, partner = _gather(nodes, cptr, cb)
        if len(c_owner):
            banned = np.unique(c_owner * len(labels) + labels[partner])
            allowed = ~np.isin(key, banned)
            o, lb, total = o[allowed], lb[allowed], total[allowed]
    if len(o) == 0:
        return 0
    # Per node: the heaviest label, the smallest label among equals (labels are sorted
    # within a node's run, so the first heaviest one).
    node_start = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    heaviest = np.repeat(np.maximum.reduceat(total, node_start), np.diff(np.r_[node_start, len(o)]))
    best = np.flatnonzero(total == heaviest)
    best = best[np.r_[True, o[best[1:]] != o[best[:-1]]]]
    winners, new = nodes[o[best]], lb[best]
    changed = int(np.count_nonzero(labels[winners] != new))
    labels[winners] = new
    return changed


def collapse(n: int, groups: list[np.ndarray]) -> np.ndarray:
    """Node -> super-node index, merging each group of nodes (must-links) into one.

    Nodes in no group keep a super-node of their own. Super-nodes are numbered by their
    smallest member, so the result does not depend on the order of ``groups``.
    """
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for g in groups:
        members = [int(x) for x in np.asarray(g).tolist()]
        for a, b in itertools.pairwise(members):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    root_of = np.arange(n, dtype=np.int64)
    for x in parent:
        root_of[x] = find(x)
    _, inverse = np.unique(root_of, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1: largest class first, ties broken by the smallest member index."""
    if len(labels) == 0:
        return labels.astype(np.int64)
    uniq, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
    rank = np.lexsort((first, -counts))
    new_id = np.empty(len(uniq), dtype=np.int64)
    new_id[rank] = np.arange(len(uniq))
    out: np.ndarray = new_id[inverse.reshape(-1)]
    return out


def cluster(emb: np.ndarray, threshold: float = 0.6, min_size: int = 2) -> np.ndarray:
    """Person labels for embeddings: 0..k-1 by decreasing size, ``UNKNOWN`` (-1) for
    faces whose cluster has fewer than ``min_size`` faces."""
    i, j, _ = knn_edges(emb, threshold)
    labels = chinese_whispers(len(emb), i, j)
    counts = np.bincount(labels, minlength=1) if len(labels) else np.zeros(0, dtype=np.int64)
    small = counts[labels] < min_size if len(labels) else np.zeros(0, dtype=bool)
    out = labels.copy()
    out[small] = UNKNOWN
    return out


def centroid_distances(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance of each face to the mean embedding of its cluster (NaN for UNKNOWN)."""
    out = np.full(len(emb), np.nan, dtype=np.float32)
    for label in np.unique(labels):
        if label == UNKNOWN:
            continue
        members = labels == label
        centre = emb[members].mean(axis=0)
        out[members] = np.linalg.norm(emb[members] - centre, axis=1)
    return out


def match_to_previous(face_ids: np.ndarray, labels: np.ndarray, previous: Mapping[int, int]) -> dict[int, int]:
    """Map new cluster labels to earlier person ids, so ids and names survive re-clustering.

    ``previous`` is face id -> person id from the last run. Pairs (label, person) are
    taken greedily by decreasing shared faces; each label takes at most one person and
    each person goes to at most one label (when a person splits, its id stays with the
    larger part). Returns label -> person id for the matched labels.
    """
    overlap: dict[tuple[int, int], int] = {}
    for fid, label in zip(face_ids.tolist(), labels.tolist(), strict=True):
        if label == UNKNOWN:
            continue
        person = previous.get(fid)
        if person is None:
            continue
        overlap[(label, person)] = overlap.get((label, person), 0) + 1
    result: dict[int, int] = {}
    used: set[int] = set()
    for (label, person), _shared in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if label in result or person in used:
            continue
        result[label] = person
        used.add(person)
    return result
