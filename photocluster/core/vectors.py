"""Euclidean distances between many vectors, a block of rows at a time.

A million faces make a distance matrix of 4 TB: every caller walks it in row blocks
instead, ``block * len(base)`` numbers at a time. Each block is one matrix product,
``|q|^2 + |b|^2 - 2 q.b``, rounded the same way for every caller, so the neighbour
graph, recognition and the review agree on which faces are under a threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def take_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[idx]`` for an array of row indices (of any shape). ``np.take`` moves each row as one block;
    indexing goes element by element through numpy's general iterator: 2-2.5x slower for
    rows of 128 float32, and the neighbour search gathers several million of them a run."""
    out: np.ndarray = np.take(x, idx, axis=0)
    return out


def squared_norms(x: np.ndarray) -> np.ndarray:
    """``|x_i|^2`` for every row."""
    out: np.ndarray = np.einsum("ij,ij->i", x, x)
    return out


def pair_distances(emb: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``|emb[a[k]] - emb[b[k]]|`` for each pair k (float32 for float32 rows), ``chunk``
    pairs at a time: the same-photo pairs of a million faces are ~600,000, and their rows
    copied at once took 900 MB, the peak of a whole clustering run."""
    out = np.empty(len(a), dtype=np.result_type(emb.dtype, np.float32))
    for lo in range(0, len(a), chunk):
        out[lo : lo + chunk] = np.linalg.norm(
            take_rows(emb, a[lo : lo + chunk]) - take_rows(emb, b[lo : lo + chunk]), axis=1
        )
    return out


def sq_distance_blocks(
    queries: np.ndarray,
    base: np.ndarray,
    block: int = 1024,
    *,
    query_sq: np.ndarray | None = None,
    base_sq: np.ndarray | None = None,
    ranking: bool = False,
    upper: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Squared distances from ``queries`` to ``base``: yields ``(start, d2)`` where
    ``d2[r, c]`` is ``|queries[start + r] - base[c]|^2`` for up to ``block`` rows.

    ``query_sq`` and ``base_sq`` are the rows' squared norms when the caller has them
    already (they are computed otherwise). ``ranking`` leaves ``|q|^2`` out: a row's
    order and its nearest columns stay the same, at one pass less over the block.
    ``upper`` is for ``queries`` that are ``base`` itself: each block then holds only the
    columns from its first row on (``d2[r, c]`` is the distance to ``base[start + c]``),
    so that every pair is seen once. Values can be slightly negative for near-identical
    rows (rounding): clip before a square root. Each ``d2`` is a new array the caller
    may change.
    """
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    if base_sq is None:
        base_sq = squared_norms(base)
    if query_sq is None and not ranking:
        query_sq = base_sq if queries is base else squared_norms(queries)
    for start in range(0, len(queries), block):
        first = start if upper else 0
        d2 = queries[start : start + block] @ base[first:].T
        if ranking:
            d2 *= -2.0
            d2 += base_sq[first:]
        else:
            assert query_sq is not None
            # (|q|^2 + |b|^2) - 2 q.b, summed in the order every caller has always used: a
            # pair right at a threshold stays on the side it was on.
            d2 *= 2.0
            d2 = np.subtract(query_sq[start : start + block, None] + base_sq[None, first:], d2, out=d2)
        yield start, d2


def blocked_knn(queries: np.ndarray, base: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64) and distances (float32) of the ``k`` nearest ``base`` rows for every
    query, nearest first. ``k`` is capped at ``len(base)``."""
    k = min(k, len(base))
    idx = np.zeros((len(queries), k), dtype=np.int64)
    dist = np.zeros((len(queries), k), dtype=np.float32)
    if k == 0:
        return idx, dist
    for start, d2 in sq_distance_blocks(queries, base, block):
        rows = slice(start, start + len(d2))
        part = (
            np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(base) else np.tile(np.arange(len(base)), (len(d2), 1))
        )
        part_d = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")
        idx[rows] = np.take_along_axis(part, order, axis=1)
        dist[rows] = np.sqrt(np.maximum(np.take_along_axis(part_d, order, axis=1), 0))
    return idx, dist
