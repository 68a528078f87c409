"""How well each face sits in its person: distances to the person's centre, and the
faces most likely misplaced (the review page shows them first).

Pure functions over arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photocluster.core.config import DEFAULT_THRESHOLD
from photocluster.core.vectors import sq_distance_blocks
from photocluster.grouping.whispers import UNKNOWN


def centroid_distances(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance of each face to the mean embedding of its cluster (NaN for UNKNOWN)."""
    out = np.full(len(emb), np.nan, dtype=np.float32)
    if len(labels) == 0:
        return out
    # One sort instead of a mask per cluster: a library has thousands of persons. The
    # stable sort keeps a cluster's faces in their order, so the means do not change.
    order = np.argsort(labels, kind="stable")
    grouped = labels[order]
    bounds = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1], True])
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if grouped[start] == UNKNOWN:
            continue
        rows = order[start:stop]
        out[rows] = distances_to_mean(emb[rows])
    return out


def distances_to_mean(members: np.ndarray) -> np.ndarray:
    """Each row's distance to the mean of the rows (one person's faces)."""
    out: np.ndarray = np.linalg.norm(members - members.mean(axis=0), axis=1)
    return out


@dataclass(frozen=True)
class DoubtfulFace:
    """A face whose place in its person is worth a look.

    ``distance`` is the face's distance to the mean of the *other* faces of its person
    (leave-one-out: a face does not pull its own centre towards itself; 0 for a person of
    one face). ``nearest_person_id`` and ``nearest_distance`` name the closest centre of
    any other person (None and inf when there is none). ``score`` is the larger of
    ``distance / nearest_distance`` (1: as close to another person as to its own) and
    ``distance / threshold`` (1: as far from its centre as the linking threshold).
    """

    face_id: int
    person_id: int
    distance: float
    nearest_person_id: int | None
    nearest_distance: float
    score: float


def doubtful_faces(
    face_ids: np.ndarray,
    person_ids: np.ndarray,
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = 30,
    min_score: float = 0.75,
) -> list[DoubtfulFace]:
    """The faces most in doubt, most doubtful first: at most ``limit`` with ``score >= min_score``.

    ``person_ids`` holds -1 for faces in no person; they are not ranked. Pure: numpy in,
    dataclasses out. Distances to other persons' centres are computed in row blocks, so
    memory stays bounded for any number of faces and persons.
    """
    face_ids = np.asarray(face_ids, dtype=np.int64)
    person_ids = np.asarray(person_ids, dtype=np.int64)
    emb = np.asarray(embeddings, dtype=np.float64)
    if not (len(face_ids) == len(person_ids) == len(emb)):
        raise ValueError(
            f"face_ids, person_ids and embeddings must have one row per face, got "
            f"{len(face_ids)}, {len(person_ids)} and {len(emb)}"
        )
    member = person_ids >= 0
    if not member.any():
        return []
    ids, emb, pids = face_ids[member], emb[member], person_ids[member]
    persons_sorted, col = np.unique(pids, return_inverse=True)
    counts = np.bincount(col).astype(np.float64)
    sums = np.zeros((len(persons_sorted), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, col, emb)
    own, nearest, nearest_d, score = doubt_scores(emb, col, sums, counts, threshold)
    # Most doubtful first; ties by the larger distance, then by face id (stable output).
    order = np.lexsort((ids, -own, -score))
    out = []
    for i in order[: max(limit, 0)].tolist():
        if score[i] < min_score:
            break
        out.append(
            DoubtfulFace(
                face_id=int(ids[i]),
                person_id=int(pids[i]),
                distance=float(own[i]),
                nearest_person_id=None if nearest[i] < 0 else int(persons_sorted[nearest[i]]),
                nearest_distance=float(nearest_d[i]),
                score=float(score[i]),
            )
        )
    return out


def _leave_one_out(emb: np.ndarray, sums: np.ndarray, n_own: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        loo_centre = (sums - emb) / (n_own - 1)[:, None]
    out: np.ndarray = np.where(n_own > 1, np.linalg.norm(emb - np.nan_to_num(loo_centre), axis=1), 0.0)
    return out


def leave_one_out_distances(members: np.ndarray) -> np.ndarray:
    """Each of one person's faces' distance to the mean of the person's *other* faces
    (0 for a person of one face): :attr:`DoubtfulFace.distance` for a whole person."""
    emb = np.asarray(members, dtype=np.float64)
    n = np.full(len(emb), float(len(emb)))
    return _leave_one_out(emb, np.broadcast_to(emb.sum(axis=0), emb.shape), n)


def doubt_scores(
    emb: np.ndarray, col: np.ndarray, sums: np.ndarray, counts: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(own distance, nearest other centre's row (-1: none), its distance, score) of each
    face, as :class:`DoubtfulFace` defines them. ``col``: each face's row in ``sums`` (the
    sum of its person's embeddings) and ``counts`` (its person's size). Any subset of the
    faces can be scored against the sums of all: a library is scored a person at a time."""
    emb = np.asarray(emb, dtype=np.float64)
    own = _leave_one_out(emb, sums[col], counts[col])
    nearest, nearest_d = _nearest_other_centre(emb, col, sums / counts[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(nearest_d) & (nearest_d > 0), own / nearest_d, 0.0)
    far = own / threshold if threshold > 0 else np.zeros_like(own)
    return own, nearest, nearest_d, np.maximum(ratio, far)


def _nearest_other_centre(emb: np.ndarray, own: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each face, the nearest of ``centres`` but its own (``own``: its centre's row)
    and the distance to it: -1 and inf when there is no other centre."""
    nearest = np.full(len(emb), -1, dtype=np.int64)
    nearest_d = np.full(len(emb), np.inf)
    if len(centres) < 2:
        return nearest, nearest_d
    # Norms summed as this ranking always summed them (einsum may round differently):
    # the scores, and so the order of equal-looking faces, stay as they were.
    blocks = sq_distance_blocks(emb, centres, 4096, query_sq=(emb**2).sum(axis=1), base_sq=(centres**2).sum(axis=1))
    for start, d2 in blocks:
        rows = np.arange(len(d2))
        d2[rows, own[start : start + len(d2)]] = np.inf
        k = np.argmin(d2, axis=1)
        nearest[start : start + len(d2)] = k
        nearest_d[start : start + len(d2)] = np.sqrt(np.maximum(d2[rows, k], 0.0))
    return nearest, nearest_d
