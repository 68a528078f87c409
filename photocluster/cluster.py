"""Grouping faces by person: pure functions over arrays, no I/O.

Faces closer than a threshold are joined by an edge; Chinese whispers (Biemann 2006,
as in dlib's ``chinese_whispers_clustering``) labels the graph. Every step is
deterministic: the same embeddings and options give the same labels.
"""

from __future__ import annotations

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


def chinese_whispers(n: int, i: np.ndarray, j: np.ndarray, iterations: int = 100, seed: int = 0) -> np.ndarray:
    """Labels 0..k-1 for ``n`` nodes joined by undirected edges (i, j).

    Each node starts in its own class; in each pass, in a seeded random order, a node
    takes the class most common among its neighbours (ties: the smallest class).
    Stops early once a pass changes nothing. Labels are then renumbered by decreasing
    class size, ties by smallest member, so they do not depend on internal numbering.
    """
    labels = np.arange(n, dtype=np.int64)
    if n == 0:
        return labels
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    indptr = np.searchsorted(src, np.arange(n + 1))
    neighbours = [dst[indptr[k] : indptr[k + 1]].tolist() for k in range(n)]
    lab = labels.tolist()
    rng = np.random.default_rng(seed)
    connected = [k for k in range(n) if neighbours[k]]
    for _ in range(iterations):
        changed = False
        for k in rng.permutation(connected).tolist():
            counts: dict[int, int] = {}
            for m in neighbours[k]:
                c = lab[m]
                counts[c] = counts.get(c, 0) + 1
            best = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if best != lab[k]:
                lab[k] = best
                changed = True
        if not changed:
            break
    return canonical_labels(np.asarray(lab, dtype=np.int64))


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
    i, j, _ = edges(emb, threshold)
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
