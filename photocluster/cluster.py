"""Grouping faces by person: pure functions over arrays, no I/O.

Faces closer than a threshold are joined by an edge; Chinese whispers (Biemann 2006,
as in dlib's ``chinese_whispers_clustering``) labels the graph. Every step is
deterministic: the same embeddings and options give the same labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

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


def _top_k_within(
    d2: np.ndarray, k: int, t2: float, row_ids: np.ndarray, col_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a block of squared distances: each row's ``k`` nearest columns below ``t2``."""
    # A face is not its own neighbour.
    d2 = np.where(row_ids[:, None] == col_ids[None, :], np.inf, d2)
    if d2.shape[1] > k:
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(d2, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(d2.shape[1]), d2.shape)
        vals = d2
    rows, slots = np.nonzero(vals < t2)
    return row_ids[rows], col_ids[part[rows, slots]], np.sqrt(np.maximum(vals[rows, slots], 0.0))


def _dedupe(i: np.ndarray, j: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected, unique pairs i < j from directed neighbour lists."""
    a, b = np.minimum(i, j), np.maximum(i, j)
    key = a.astype(np.int64) * (int(max(b.max(initial=0), 0)) + 1) + b
    _, first = np.unique(key, return_index=True)
    return a[first].astype(np.int64), b[first].astype(np.int64), d[first].astype(np.float32)


def knn_edges(
    emb: np.ndarray,
    threshold: float,
    k: int = 32,
    exact_below: int = 10_000,
    n_probe: int = 12,
    seed: int = 0,
    block: int = 2048,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges from each face to its ``k`` nearest faces closer than ``threshold`` (i < j, unique).

    Capping the neighbours keeps the graph at O(n k) edges even when one person has
    100,000 faces, and Chinese whispers needs no more than a few dozen votes per face.
    Up to ``exact_below`` faces every distance is computed (blocked matrix products).
    Beyond that an inverted-file index (k-means lists of ~sqrt(n) faces; each list
    searched against the ``n_probe`` lists nearest its centre) computes only distances
    that can matter: face identities are tight (0.3-0.5 apart inside, ~1.0 between),
    so a face's neighbours sit in lists close to its own.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    t2 = threshold * threshold
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if n < 2:
        return empty
    sq = np.einsum("ij,ij->i", emb, emb)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if n <= exact_below:
        cols = np.arange(n)
        for start in range(0, n, block):
            rows = np.arange(start, min(start + block, n))
            d2 = sq[rows, None] + sq[None, :] - 2.0 * (emb[rows] @ emb.T)
            out.append(_top_k_within(d2, k, t2, rows, cols))
    else:
        centres, home, second = _kmeans(emb, max(16, int(np.sqrt(n))), seed)
        c_sq = np.einsum("ij,ij->i", centres, centres)
        order = np.argsort(home, kind="stable")
        bounds = np.searchsorted(home[order], np.arange(len(centres) + 1))
        members = [order[bounds[c] : bounds[c + 1]] for c in range(len(centres))]
        # As candidates, faces also sit in their second-nearest list: a face near the border
        # of two lists is then found from either side.
        both = np.concatenate([home, second])
        owners = np.concatenate([np.arange(n), np.arange(n)])
        order2 = np.argsort(both, kind="stable")
        bounds2 = np.searchsorted(both[order2], np.arange(len(centres) + 1))
        candidates = [owners[order2[bounds2[c] : bounds2[c + 1]]] for c in range(len(centres))]
        probe = min(n_probe, len(centres))
        cd2 = c_sq[:, None] + c_sq[None, :] - 2.0 * (centres @ centres.T)
        nearest_lists = np.argsort(cd2, axis=1)[:, :probe]
        for c in range(len(centres)):
            rows = members[c]
            if len(rows) == 0:
                continue
            cols = np.unique(np.concatenate([candidates[x] for x in nearest_lists[c]]))
            for start in range(0, len(rows), block):
                r = rows[start : start + block]
                d2 = sq[r, None] + sq[None, cols] - 2.0 * (emb[r] @ emb[cols].T)
                out.append(_top_k_within(d2, k, t2, r, cols))
    if not out:
        return empty
    i = np.concatenate([o[0] for o in out])
    j = np.concatenate([o[1] for o in out])
    d = np.concatenate([o[2] for o in out])
    if len(i) == 0:
        return empty
    return _dedupe(i, j, d)


def _kmeans(
    emb: np.ndarray, n_lists: int, seed: int, iterations: int = 8, sample: int = 100_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse k-means (on a sample) for the inverted file: centres, and each point's
    nearest and second-nearest list."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(emb), size=min(sample, len(emb)), replace=False)
    data = emb[np.sort(pick)]
    centres = data[rng.choice(len(data), size=n_lists, replace=False)].copy()
    for _ in range(iterations):
        assign, _ = _nearest_centres(data, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, data)
        counts = np.bincount(assign, minlength=n_lists)
        nonempty = counts > 0
        centres[nonempty] = sums[nonempty] / counts[nonempty, None]
    home, second = _nearest_centres(emb, centres)
    return centres, home, second


def _nearest_centres(x: np.ndarray, centres: np.ndarray, block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest and second-nearest centre."""
    c_sq = np.einsum("ij,ij->i", centres, centres)
    first = np.empty(len(x), dtype=np.int64)
    second = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), block):
        # |x|^2 is the same for every centre of a row: leave it out of the ranking.
        d = c_sq[None, :] - 2.0 * (x[start : start + block] @ centres.T)
        top = np.argpartition(d, 1, axis=1)[:, :2]
        swap = d[np.arange(len(d)), top[:, 0]] > d[np.arange(len(d)), top[:, 1]]
        top[swap] = top[swap][:, ::-1]
        first[start : start + block] = top[:, 0]
        second[start : start + block] = top[:, 1]
    return first, second


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
    lab = labels[nb]
    # Sum the weight per (node, label): sort by the pair, then reduce runs.
    key_order = np.lexsort((lab, owner))
    owner, lab, wt = owner[key_order], lab[key_order], wt[key_order]
    run_start = np.ones(len(owner), dtype=bool)
    run_start[1:] = (owner[1:] != owner[:-1]) | (lab[1:] != lab[:-1])
    starts = np.flatnonzero(run_start)
    o, lb, total = owner[starts], lab[starts], np.add.reduceat(wt, starts)
    if ca is not None and cb is not None and cptr is not None:
        # Labels held by a node's cannot-partners are off limits for it.
        c_owner, partner = _gather(nodes, cptr, cb)
        if len(c_owner):
            banned = np.unique(c_owner * (labels.max() + 1) + labels[partner])
            allowed = ~np.isin(o * (labels.max() + 1) + lb, banned)
            o, lb, total = o[allowed], lb[allowed], total[allowed]
    if len(o) == 0:
        return 0
    # Per node: the heaviest label, the smallest label among equals.
    best_order = np.lexsort((lb, -total, o))
    o, lb = o[best_order], lb[best_order]
    first = np.ones(len(o), dtype=bool)
    first[1:] = o[1:] != o[:-1]
    winners, new = nodes[o[first]], lb[first]
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
