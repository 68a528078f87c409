"""Which face of a re-analysed photo continues which face found in it before.

A photo is analysed again when its pixels or the detection settings change. Its faces are
then found anew, and each new face that is plainly an old one (about the same box, about
the same descriptor) takes over the old face's row: its id, its person, and the user's
pins and rejections. Pure functions over arrays; the caller reads and writes the store.
"""

from __future__ import annotations

import numpy as np

from photocluster.core.types import Face

# Chosen by measurement (benchmarks/rescan.py match, 37 fixture photos over 1024 px and the
# group photos): the same face detected at --max-size 1024 instead of 1600 overlaps its old
# box at IoU 0.59-0.96 (median 0.82) and lies 0.02-0.42 (median 0.06) from its old
# descriptor; after a re-encode (JPEG quality 80), IoU >= 0.82 and distance <= 0.22. Two
# different faces of one photo (403 pairs) overlap at IoU 0.07 at most. The IoU threshold
# sits in that gap; the distance one above the worst same-face figure and below dlib's
# 0.6, so that a face pasted over another (a different person in the same box) is new.
MIN_IOU = 0.4
MAX_DISTANCE = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4),
    boxes as (left, top, right, bottom): an (n, m) array."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def match_faces(
    old_boxes: np.ndarray,
    old_emb: np.ndarray,
    new_boxes: np.ndarray,
    new_emb: np.ndarray,
    min_iou: float = MIN_IOU,
    max_distance: float = MAX_DISTANCE,
) -> np.ndarray:
    """For each new face, the index of the old face it continues, or -1.

    A pair qualifies when its boxes overlap at ``min_iou`` or more and its descriptors are
    within ``max_distance``; pairs are taken one to one, best overlap first (ties: the
    closer descriptors, then the lower indices), so the result does not depend on the
    order faces were detected in.
    """
    n_old, n_new = len(old_boxes), len(new_boxes)
    out = np.full(n_new, -1, dtype=np.int64)
    if n_old == 0 or n_new == 0:
        return out
    iou = box_iou(old_boxes, new_boxes)
    old_e = np.asarray(old_emb, dtype=np.float64).reshape(n_old, -1)
    new_e = np.asarray(new_emb, dtype=np.float64).reshape(n_new, -1)
    dist = np.linalg.norm(old_e[:, None, :] - new_e[None, :, :], axis=2)
    oi, ni = np.nonzero((iou >= min_iou) & (dist <= max_distance))
    taken_old: set[int] = set()
    for k in np.lexsort((ni, oi, dist[oi, ni], -iou[oi, ni])).tolist():
        o, m = int(oi[k]), int(ni[k])
        if o in taken_old or out[m] >= 0:
            continue
        out[m] = o
        taken_old.add(o)
    return out


def carry_over(old: list[Face], faces: list[Face]) -> tuple[list[int | None], list[Face]]:
    """Which of the ``old`` faces of a photo each of ``faces`` continues (its id, or None),
    and the old faces none continues (:func:`match_faces` on their boxes and descriptors)."""
    if not old or not faces:
        return [None] * len(faces), old

    def arrays(fs: list[Face]) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.array([[f.box.left, f.box.top, f.box.right, f.box.bottom] for f in fs], dtype=np.float64)
        return boxes, np.stack([f.embedding for f in fs])

    match = match_faces(*arrays(old), *arrays(faces)).tolist()
    continued = set(match)
    return [None if m < 0 else old[m].id for m in match], [f for k, f in enumerate(old) if k not in continued]
