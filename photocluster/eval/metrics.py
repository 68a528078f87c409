"""Accuracy figures: pure numpy functions over labels and distances, no I/O.

Two families:

- Clustering (``pairwise``, ``bcubed``, ``nmi``): ``truth`` and ``pred`` are one label
  per item (any integers or strings); a cluster is the set of items sharing a label.
- Verification (``accuracy``, ``best_threshold``, ``roc_auc``, ``tar_at_far``,
  ``kfold_accuracy``): ``distance`` is one Euclidean distance per pair and ``same`` is
  True for a same-person pair. A pair is predicted "same" when ``distance < threshold``,
  as in clustering. Distances may be ``+inf`` or ``-inf``: such a pair is on the same
  side of every threshold (this is how a pair without a face is made to count as wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def contingency(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Counts ``n[c, k]`` of items in predicted cluster ``c`` and true class ``k`` (int64)."""
    truth, pred = _labels(truth, pred)
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t, p = t.reshape(-1), p.reshape(-1)
    n_t = int(t.max()) + 1 if len(t) else 0
    n_p = int(p.max()) + 1 if len(p) else 0
    counts = np.bincount(p * n_t + t, minlength=n_p * n_t)
    return counts.reshape(n_p, n_t).astype(np.int64)


def _labels(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.ndim != 1 or truth.shape != pred.shape:
        raise ValueError(f"truth and pred must be 1-d of one length, got shapes {truth.shape} and {pred.shape}")
    return truth, pred


def _pairs(counts: np.ndarray) -> int:
    return int(np.sum(counts * (counts - 1) // 2))


def _cells(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The non-empty cells of the contingency table, kept sparse (a million items in a
    million clusters would not fit densely): cell counts, each cell's cluster index and
    class index, then the cluster sizes and the class sizes."""
    truth, pred = _labels(truth, pred)
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t, p = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
    n_t = int(t.max()) + 1 if len(t) else 0
    keys, cell_counts = np.unique(p * max(n_t, 1) + t, return_counts=True)
    cell_p, cell_t = keys // max(n_t, 1), keys % max(n_t, 1)
    return (
        cell_counts.astype(np.int64),
        cell_p,
        cell_t,
        np.bincount(p).astype(np.int64),
        np.bincount(t).astype(np.int64),
    )


def pairwise(truth: np.ndarray, pred: np.ndarray) -> PRF:
    """Pairwise precision, recall and F1 over all pairs of items.

    Precision: of the pairs put in one cluster, the share that are one identity.
    Recall: of the pairs of one identity, the share put in one cluster. With no pair
    claimed (all singletons) precision is 1.0 (no wrong claim); with no true pair
    (every identity seen once) recall is 1.0. Large clusters weigh quadratically.
    """
    cells, _, _, cluster_sizes, class_sizes = _cells(truth, pred)
    together = _pairs(cells)
    claimed = _pairs(cluster_sizes)
    true = _pairs(class_sizes)
    p = together / claimed if claimed else 1.0
    r = together / true if true else 1.0
    return PRF(p, r, f1(p, r))


def bcubed(truth: np.ndarray, pred: np.ndarray) -> PRF:
    """BCubed precision, recall and F1 (Bagga and Baldwin 1998; Amigó et al. 2009).

    For each item: precision is the share of its cluster with its identity (itself
    included), recall the share of its identity in its cluster. Averaged over items,
    so every photo counts once whatever the size of its cluster. 1.0 each for no items.
    """
    truth, pred = _labels(truth, pred)
    if len(truth) == 0:
        return PRF(1.0, 1.0, 1.0)
    cells, cell_p, cell_t, cluster_sizes, class_sizes = _cells(truth, pred)
    sq = cells.astype(np.float64) ** 2
    total = float(len(truth))
    p = float(np.sum(sq / cluster_sizes[cell_p]) / total)
    r = float(np.sum(sq / class_sizes[cell_t]) / total)
    return PRF(p, r, f1(p, r))


def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    q = counts[counts > 0] / total
    return float(-np.sum(q * np.log(q)))


def nmi(truth: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mutual information, ``I(T;P) / ((H(T) + H(P)) / 2)`` (the arithmetic
    normalisation, scikit-learn's default). 1.0 when both labelings are one cluster."""
    truth, pred = _labels(truth, pred)
    if len(truth) == 0:
        return 1.0
    cells, cell_p, cell_t, cluster_sizes, class_sizes = _cells(truth, pred)
    total = float(len(truth))
    h_p = _entropy(cluster_sizes)
    h_t = _entropy(class_sizes)
    if h_p == 0.0 and h_t == 0.0:
        return 1.0
    joint = cells / total
    outer = cluster_sizes[cell_p] * class_sizes[cell_t] / (total * total)
    mi = float(np.sum(joint * np.log(joint / outer)))
    return max(0.0, min(1.0, mi / ((h_p + h_t) / 2.0)))


# -- verification (pairs) ------------------------------------------------------


def _verification(distance: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distance, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    if d.ndim != 1 or d.shape != s.shape:
        raise ValueError(f"distance and same must be 1-d of one length, got shapes {d.shape} and {s.shape}")
    if np.isnan(d).any():
        raise ValueError("distance must not be NaN (use +inf or -inf for a pair that is always wrong)")
    return d, s


def accuracy(distance: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs right when "same" means ``distance < threshold``. NaN for no pairs."""
    d, s = _verification(distance, same)
    if len(d) == 0:
        return float("nan")
    return float(np.mean((d < threshold) == s))


def candidate_thresholds(distance: np.ndarray) -> np.ndarray:
    """Every threshold that gives a different split of the finite distances: the smallest
    distance (nothing accepted), each midpoint between consecutive distinct distances,
    and the next float above the largest (everything accepted)."""
    d = np.asarray(distance, dtype=np.float64)
    u = np.unique(d[np.isfinite(d)])
    if len(u) == 0:
        return np.array([0.0])
    return np.concatenate([u[:1], (u[:-1] + u[1:]) / 2.0, [np.nextafter(u[-1], np.inf)]])


def best_threshold(distance: np.ndarray, same: np.ndarray, prior: float = 0.6) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, and that accuracy.

    Among equally accurate thresholds the one closest to ``prior`` wins, so a clean gap
    between same and different pairs gives its midpoint nearest the usual value, not an
    edge. Returns (nan, nan) for no pairs.
    """
    d, s = _verification(distance, same)
    if len(d) == 0:
        return float("nan"), float("nan")
    t = candidate_thresholds(d)
    pos = np.sort(d[s])
    neg = np.sort(d[~s])
    right = np.searchsorted(pos, t, side="left") + (len(neg) - np.searchsorted(neg, t, side="left"))
    acc = right / len(d)
    best = np.flatnonzero(right == right.max())
    k = best[np.argmin(np.abs(t[best] - prior))]
    return float(t[k]), float(acc[k])


def roc_auc(distance: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve, scoring a pair by ``-distance``: the chance that a random
    same pair is closer than a random different pair (ties count half). NaN when either
    kind of pair is absent. Computed from average ranks (Mann-Whitney U)."""
    d, s = _verification(distance, same)
    n_pos, n_neg = int(s.sum()), int((~s).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # 1-based ranks of the score -d in ascending order (the farthest pair has rank 1);
    # tied scores share their mean rank.
    _, inverse, counts = np.unique(-d, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    starts = np.cumsum(counts) - counts
    avg_rank = starts + (counts + 1) / 2.0
    ranks = avg_rank[inverse]
    u = float(ranks[s].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def tar_at_far(distance: np.ndarray, same: np.ndarray, far: float = 1e-3) -> tuple[float, float]:
    """True accept rate at the loosest threshold whose false accept rate is at most ``far``.

    Returns (TAR, threshold). With ``n`` different pairs at most ``floor(far * n)`` of
    them may be accepted, so with fewer than ``1 / far`` different pairs this is TAR at
    no false accept at all. NaN when either kind of pair is absent.
    """
    d, s = _verification(distance, same)
    pos = np.sort(d[s])
    neg = np.sort(d[~s])
    if len(pos) == 0 or len(neg) == 0:
        return float("nan"), float("nan")
    allowed = int(np.floor(far * len(neg) + 1e-9))
    # Accepting d < neg[allowed] accepts at most `allowed` different pairs.
    threshold = float(neg[allowed]) if allowed < len(neg) else float("inf")
    tar = float(np.searchsorted(pos, threshold, side="left") / len(pos))
    return tar, threshold


def stratified_folds(same: np.ndarray, k: int = 10) -> np.ndarray:
    """Fold numbers 0..k-1 dealt round-robin, same pairs and different pairs separately
    (in their order), so each fold gets its share of both kinds."""
    s = np.asarray(same, dtype=bool)
    folds = np.empty(len(s), dtype=np.int64)
    folds[s] = np.arange(int(s.sum())) % k
    folds[~s] = np.arange(int((~s).sum())) % k
    return folds


@dataclass(frozen=True)
class KFold:
    """Cross-validated accuracy: per fold, the threshold chosen on the other folds and the
    accuracy it gives on this one. ``std`` is the population standard deviation (ddof=0)."""

    mean: float
    std: float
    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]


def kfold_accuracy(distance: np.ndarray, same: np.ndarray, folds: np.ndarray, prior: float = 0.6) -> KFold:
    """The LFW protocol: for each fold, pick the best threshold on all other folds
    (:func:`best_threshold`) and measure accuracy on the held-out fold."""
    d, s = _verification(distance, same)
    f = np.asarray(folds)
    if f.shape != d.shape:
        raise ValueError(f"folds must have shape {d.shape}, got {f.shape}")
    accs: list[float] = []
    thresholds: list[float] = []
    for fold in np.unique(f).tolist():
        test = f == fold
        if test.all():
            continue
        t, _ = best_threshold(d[~test], s[~test], prior)
        thresholds.append(t)
        accs.append(accuracy(d[test], s[test], t))
    if not accs:
        return KFold(float("nan"), float("nan"), (), ())
    arr = np.asarray(accs)
    return KFold(float(arr.mean()), float(arr.std()), tuple(accs), tuple(thresholds))


def _dense(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class index, cluster index and (cluster, class) cell key of each item, int64."""
    truth, pred = _labels(truth, pred)
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t, p = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
    n_t = int(t.max()) + 1 if len(t) else 1
    return t, p, p * n_t + t


def _count_among(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """For each item, how many items of ``among`` (a mask) share its key."""
    present, counts = np.unique(keys[among], return_counts=True)
    if not len(present):
        return np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(present, keys), len(present) - 1)
    out: np.ndarray = np.where(present[at] == keys, counts[at], 0).astype(np.int64)
    return out


def cross_pairwise(truth: np.ndarray, pred: np.ndarray, side: np.ndarray) -> PRF:
    """:func:`pairwise` over the pairs with one item on each side of ``side`` (a bool per
    item: young vs adult, say): of the cross pairs put in one cluster, the share that are
    one identity, and of the cross pairs of one identity, the share put in one cluster."""
    t, p, cell = _dense(truth, pred)
    side = np.asarray(side, dtype=bool)
    a = side

    def cross(keys: np.ndarray) -> int:
        return int(np.sum(_count_among(keys, ~side)[a]))

    together, claimed, true = cross(cell), cross(p), cross(t)
    prec = together / claimed if claimed else 1.0
    rec = together / true if true else 1.0
    return PRF(prec, rec, f1(prec, rec))


def cross_bcubed(truth: np.ndarray, pred: np.ndarray, side: np.ndarray) -> PRF:
    """:func:`bcubed` with each item compared only with the items on the other side of
    ``side``: its precision is the share of its cluster's other-side items that are its
    identity (items whose cluster has none are left out), its recall the share of its
    identity's other-side items in its cluster (items whose identity has none are left
    out). Averaged over the items counted; 1.0 when none is."""
    t, p, cell = _dense(truth, pred)
    side = np.asarray(side, dtype=bool)
    other_cell = np.where(side, _count_among(cell, ~side), _count_among(cell, side))
    other_cluster = np.where(side, _count_among(p, ~side), _count_among(p, side))
    other_class = np.where(side, _count_among(t, ~side), _count_among(t, side))
    has_p, has_r = other_cluster > 0, other_class > 0
    prec = float(np.mean(other_cell[has_p] / other_cluster[has_p])) if has_p.any() else 1.0
    rec = float(np.mean(other_cell[has_r] / other_class[has_r])) if has_r.any() else 1.0
    return PRF(prec, rec, f1(prec, rec))
