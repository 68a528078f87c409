"""How crowded each face's neighbourhood is: the factor the default clustering scales its
thresholds by.

dlib's descriptor space is not evenly crowded. Children's faces sit much closer together
than adults' (on the age-gap development set, two different children are under 0.5 apart
several hundred times as often as two different adults), so thresholds that keep adults
apart merge different children. Each face gets a factor ``s`` in [floor, 1] from its own
neighbourhood, without being told any age, and the grouping demands ``s`` times its usual
distance there (:mod:`~photocluster.grouping.grouper`).

The neighbourhood is read in *clusters*, not faces: ``sigma``, the distance from a face to
the ``k``-th nearest **other** first-stage cluster (each counted once, at its face nearest
to this one). A person photographed a thousand times is one or a few such clusters and
stays "sparse" (a family library, where each child has thousands of photos, is not
tightened); a crowd of different children is many clusters close together. Then
``s = clip((sigma / scale) ** power, floor, 1)``: 1 (thresholds as they are) wherever the
k-th other cluster is ``scale`` or farther.

Pure numpy over the neighbour graph's arrays; the cost is a sort of the edges between
clusters, a block of faces at a time.
"""

from __future__ import annotations

import numpy as np

from photocluster.core.config import CROWD_FLOOR, CROWD_K, CROWD_POWER, CROWD_SCALE


def kth_other_cluster(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    labels: np.ndarray,
    k: int,
    radius: float,
    block: int = 1 << 17,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """Each face's distance to the ``k``-th nearest cluster of ``labels`` other than its own,
    over the edges (i, j, d) of the neighbour graph (each pair once), a cluster counted once
    at its face nearest to this one; ``radius`` (the graph's) where fewer than ``k`` other
    clusters lie within the graph.

    ``only`` (one bool per face) asks for those faces' distances alone (the others get
    ``radius``): an incremental run's few thousand faces in a library of a million.

    Faces are taken ``block`` at a time, so the sort never holds more than a block's edges
    (tens of millions of edges at a million faces)."""
    out = np.full(n, radius, dtype=np.float64)
    if n == 0 or len(i) == 0 or k < 1:
        return out
    # int32 labels and a mask: tens of millions of links at a million faces.
    labels = np.asarray(labels, dtype=np.int32)
    between = labels[i] != labels[j]
    ii, jj, dd = i[between], j[between], np.asarray(d, dtype=np.float32)[between]
    del between
    if only is not None:
        # The faces asked for, numbered 0..m-1: one block of a few thousand faces, not a
        # pass over every edge for each block of a million faces.
        asked = np.flatnonzero(np.asarray(only, dtype=bool))
        number = np.full(n, -1, dtype=np.int64)
        number[asked] = np.arange(len(asked))
        out[asked] = _kth_of_block(number[ii], number[jj], jj, ii, labels, dd, len(asked), k, radius)
        return out
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        out[lo:hi] = _kth_of_block(ii - lo, jj - lo, jj, ii, labels, dd, hi - lo, k, radius)
    return out


def _kth_of_block(
    at_i: np.ndarray,
    at_j: np.ndarray,
    jj: np.ndarray,
    ii: np.ndarray,
    labels: np.ndarray,
    dd: np.ndarray,
    size: int,
    k: int,
    radius: float,
) -> np.ndarray:
    """:func:`kth_other_cluster` of the faces numbered 0..size-1 in ``at_i`` and ``at_j``
    (each edge's ends in that numbering, anything else outside the block), from the edges
    (ii, jj, dd)."""
    out = np.full(size, radius, dtype=np.float64)
    # Each edge read from either end in the block: from i to j's cluster, from j to i's.
    from_i = (at_i >= 0) & (at_i < size)
    from_j = (at_j >= 0) & (at_j < size)
    face = np.concatenate([at_i[from_i], at_j[from_j]]).astype(np.int64)
    other = labels[np.concatenate([jj[from_i], ii[from_j]])].astype(np.int64)
    dist = np.concatenate([dd[from_i], dd[from_j]])
    # Per face and other cluster, the distance to its nearest face there: one sort on
    # the pair's key and a minimum over each run (two lexsorts on three keys before:
    # 3x the time). Labels are under 2**31 and faces of a block under 2**32.
    key = face << 31
    key |= other
    del other
    order = np.argsort(key)
    key, dist = key[order], dist[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.intp)
    face = key[starts] >> 31
    dist = np.minimum.reduceat(dist, starts) if len(starts) else dist
    del key
    # Per face, its clusters nearest first: the k-th is at offset k - 1. The distances
    # are under 2, so face * 4 + distance (float64) sorts by face, then distance.
    order = np.argsort(face * 4.0 + dist, kind="stable")
    face, dist = face[order], dist[order]
    start = np.searchsorted(face, np.arange(size + 1))
    has = np.diff(start) >= k
    out[has] = dist[start[:-1][has] + k - 1]
    return out


def factor_from_scale(sigma: np.ndarray, scale: float, power: float, floor: float) -> np.ndarray:
    """``clip((sigma / scale) ** power, floor, 1)``: 1 where the neighbourhood is as sparse as
    ``scale`` or sparser, smaller where it is crowded, never under ``floor``."""
    out: np.ndarray = np.clip((np.maximum(np.asarray(sigma, dtype=np.float64), 1e-6) / scale) ** power, floor, 1.0)
    return out


def crowding_factor(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    stage1_labels: np.ndarray,
    radius: float,
    k: int = CROWD_K,
    scale: float = CROWD_SCALE,
    power: float = CROWD_POWER,
    floor: float = CROWD_FLOOR,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """One factor per face in [``floor``, 1]: ``clip((sigma / scale) ** power, floor, 1)``,
    sigma the distance to the ``k``-th nearest other cluster of ``stage1_labels`` (one label
    per face: the first stage's clusters) within the graph (edges (i, j, d) shorter than
    ``radius``). See the module's docstring for why clusters, not faces, are counted.
    ``only``: the faces whose factor is asked for (:func:`kth_other_cluster`; the
    others' is that of a sparse neighbourhood)."""
    sigma = kth_other_cluster(n, i, j, d, stage1_labels, k, radius, only=only)
    return factor_from_scale(sigma, scale, power, floor)
