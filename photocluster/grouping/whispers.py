"""Labelling a face graph by person: Chinese whispers (Biemann 2006, as in dlib's
``chinese_whispers_clustering``) and its canonical numbering.

Every step is deterministic: the same edges and options give the same labels, numbered
by decreasing class size so that label 0 is always the largest person.
"""

from __future__ import annotations

import itertools

import numpy as np

from photocluster.core.config import DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD
from photocluster.grouping.graph import knn_edges

UNKNOWN = -1


def chinese_whispers(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    iterations: int = 100,
    seed: int = 0,
    weights: np.ndarray | None = None,
    cannot: tuple[np.ndarray, np.ndarray] | None = None,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Labels 0..k-1 for ``n`` nodes joined by undirected edges (i, j).

    Each node starts in its own class; in each pass, in a seeded random order, a node
    takes the class with the largest total edge weight among its neighbours (ties: the
    smallest class). Stops once a pass changes nothing. ``cannot`` is a pair of arrays
    (a, b): node a never takes b's class and vice versa (the two stay apart, at every step
    and in the result, see :func:`_undo_clashes`). Nodes in ``fixed`` (one bool per node)
    keep their own class: others may take it, they take no other (an incremental run's
    persons, each a node, never join each other).

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
    movable = np.diff(indptr) > 0
    if fixed is not None:
        movable &= ~np.asarray(fixed, dtype=bool)
    connected = np.flatnonzero(movable)
    rng = np.random.default_rng(seed)
    batches = max(1, min(_BATCHES, len(connected)))
    # A node whose neighbours' (and cannot-partners') labels did not change since it last
    # chose would choose its own label again: only the others are looked at. The passes,
    # their order and the labels are those of looking at every node (a million faces'
    # graph settles in a few passes, then each pass touches a few thousand nodes).
    stale = np.ones(n, dtype=bool)
    for _ in range(iterations):
        changed = 0
        perm = rng.permutation(connected)
        for nodes in np.array_split(perm, batches):
            nodes = nodes[stale[nodes]]
            if len(nodes) == 0:
                continue
            stale[nodes] = False
            moved, undone = _update(nodes, labels, indptr, dst, ww, ca, cb, cptr)
            changed += len(moved)
            # A move undone for a clash may stand next time (the partner then not moving).
            stale[undone] = True
            stale[_gather(moved, indptr, dst)[1]] = True
            if cptr is not None and cb is not None:
                stale[_gather(moved, cptr, cb)[1]] = True
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
) -> tuple[np.ndarray, np.ndarray]:
    """One slice of a pass: every node in ``nodes`` takes its neighbours' heaviest label.
    Returns the nodes whose label changed and those whose move was undone (a clash)."""
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
    none = np.zeros(0, dtype=np.int64)
    if len(o) == 0:
        return none, none
    # Per node: the heaviest label, the smallest label among equals (labels are sorted
    # within a node's run, so the first heaviest one).
    node_start = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    heaviest = np.repeat(np.maximum.reduceat(total, node_start), np.diff(np.r_[node_start, len(o)]))
    best = np.flatnonzero(total == heaviest)
    best = best[np.r_[True, o[best[1:]] != o[best[:-1]]]]
    winners, new = nodes[o[best]], lb[best]
    moved = labels[winners] != new
    winners, new, before = winners[moved], new[moved], labels[winners[moved]]
    labels[winners] = new
    if cb is None or cptr is None:
        return winners, none
    stay = _undo_clashes(winners, before, labels, cb, cptr)
    return stay, np.setdiff1d(winners, stay, assume_unique=True)


def _undo_clashes(
    moved: np.ndarray, before: np.ndarray, labels: np.ndarray, cb: np.ndarray, cptr: np.ndarray
) -> np.ndarray:
    """Put back the moves of a slice that broke a cannot-link; returns the moves that stay.

    Each node of a slice is banned the labels its partners held *before* the slice, so two
    partners updated in one slice can take the same new label. Such a clash is undone: of
    two partners that both moved, the higher index goes back to its label from before the
    slice; a node that met a partner that did not move goes back. Going back never makes
    a new clash (no moved node took a partner's earlier label: it was banned), so the labels
    keep the invariant that no cannot-linked pair ever shares one.
    """
    order = np.argsort(moved)
    moved, before = moved[order], before[order]
    while len(moved):
        owner, partner = _gather(moved, cptr, cb)
        clash = labels[moved[owner]] == labels[partner]
        if not clash.any():
            break
        a, b = moved[owner[clash]], partner[clash]
        at = np.minimum(np.searchsorted(moved, b), len(moved) - 1)
        back = np.unique(np.where(moved[at] == b, np.maximum(a, b), a))
        where = np.searchsorted(moved, back)
        labels[back] = before[where]
        stay = np.ones(len(moved), dtype=bool)
        stay[where] = False
        moved, before = moved[stay], before[stay]
    return moved


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


def cluster(emb: np.ndarray, threshold: float = DEFAULT_THRESHOLD, min_size: int = DEFAULT_MIN_SIZE) -> np.ndarray:
    """Person labels for embeddings: 0..k-1 by decreasing size, ``UNKNOWN`` (-1) for
    faces whose cluster has fewer than ``min_size`` faces."""
    i, j, _ = knn_edges(emb, threshold)
    labels = chinese_whispers(len(emb), i, j)
    counts = np.bincount(labels, minlength=1) if len(labels) else np.zeros(0, dtype=np.int64)
    small = counts[labels] < min_size if len(labels) else np.zeros(0, dtype=bool)
    out = labels.copy()
    out[small] = UNKNOWN
    return out


def collapsed_whispers(
    i: np.ndarray,
    j: np.ndarray,
    super_of: np.ndarray,
    cannot: tuple[np.ndarray, np.ndarray],
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Chinese-whispers labels of the super-nodes of :func:`collapse` (``super_of``: node ->
    super-node), for a graph of nodes joined by edges (i, j).

    Nodes that must stay together vote as one: the links between two super-nodes become
    one edge weighted by their number, so a group of pinned faces pulls as hard as all
    its faces together. ``cannot`` holds super-node pairs kept apart; ``fixed`` (one bool
    per super-node) those that keep their own class (see :func:`chinese_whispers`).
    """
    n = len(super_of)
    n_super = int(super_of.max()) + 1 if n else 0
    if n_super == n:  # nothing collapsed: every node is a super-node of its own
        return chinese_whispers(n, i, j, cannot=cannot, fixed=fixed)
    si, sj = super_of[i], super_of[j]
    keep = si != sj
    si, sj = np.minimum(si[keep], sj[keep]), np.maximum(si[keep], sj[keep])
    pair_key = np.sort(si * n_super + sj)
    starts = np.flatnonzero(np.r_[True, pair_key[1:] != pair_key[:-1]]) if len(pair_key) else np.zeros(0, np.int64)
    weights = np.diff(np.r_[starts, len(pair_key)])
    pair_key = pair_key[starts]
    return chinese_whispers(
        n_super, pair_key // n_super, pair_key % n_super, weights=weights, cannot=cannot, fixed=fixed
    )
