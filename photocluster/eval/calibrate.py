"""The clustering figures over a sweep of thresholds (:func:`calibrate`), and the threshold
they recommend."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from photocluster.core.config import DEFAULT_MIN_SIZE, DetectionSettings
from photocluster.core.errors import UsageError
from photocluster.core.progress import ProgressCallback
from photocluster.eval import metrics as mt
from photocluster.eval.clusters import predict
from photocluster.eval.datasets import read_labels
from photocluster.eval.embed import labelled_faces, scan_summary
from photocluster.eval.figures import check_threshold, json_number
from photocluster.grouping.grouper import Method, Policy
from photocluster.store import Store


def default_thresholds() -> tuple[float, ...]:
    """0.30 to 0.80 in steps of 0.02: dlib's same-person distances are mostly 0.3-0.6."""
    return tuple(round(0.30 + 0.02 * k, 2) for k in range(26))


@dataclass(frozen=True)
class CalibrationRow:
    threshold: float  # NaN: the default two-stage clustering
    clusters: int
    pairwise: mt.PRF
    bcubed: mt.PRF

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": None if math.isnan(self.threshold) else self.threshold,
            "clusters": self.clusters,
            "pairwise": {k: json_number(v) for k, v in self.pairwise.as_dict().items()},
            "bcubed": {k: json_number(v) for k, v in self.bcubed.as_dict().items()},
        }


@dataclass(frozen=True)
class CalibrationResult:
    """The clustering figures per threshold. ``recommended`` has the best BCubed F1 (every
    photo weighs the same), ties broken by pairwise F1, then the median of the tied thresholds."""

    root: str
    labels: str | None
    images: int
    identities: int
    rows: tuple[CalibrationRow, ...]
    recommended: float
    default: CalibrationRow  # the default two-stage clustering, what `clusters` does with no option
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    skipped_labels: int
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    method: str = Method.TWO_STAGE  # the method swept (the default row is always the default)

    @property
    def best(self) -> CalibrationRow:
        return next(r for r in self.rows if r.threshold == self.recommended)

    def as_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "labels": self.labels,
            "images": self.images,
            "identities": self.identities,
            "recommended": self.recommended,
            "method": str(self.method),
            "rows": [r.as_dict() for r in self.rows],
            "default": self.default.as_dict(),
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "skipped_labels": self.skipped_labels,
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


def recommend(rows: Sequence[CalibrationRow]) -> float:
    """Best BCubed F1, then best pairwise F1; among rows still tied, their median threshold
    (the lower of two middles): the farthest from both over- and under-merging."""
    if not rows:
        raise UsageError("no thresholds to choose from")
    score = np.array([(round(r.bcubed.f1, 9), round(r.pairwise.f1, 9)) for r in rows])
    best_b = score[:, 0].max()
    tied = score[:, 0] == best_b
    best_p = score[tied, 1].max()
    tied &= score[:, 1] == best_p
    ts = np.sort(np.array([r.threshold for r in rows])[tied])
    return float(ts[(len(ts) - 1) // 2])


def calibrate(
    store: Store,
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    thresholds: Sequence[float] | None = None,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    method: Method | str = Method.TWO_STAGE,
) -> CalibrationResult:
    """Pairwise and BCubed precision/recall of ``clusters --threshold T --method M`` for each
    threshold T, and of the default clustering, each through the code ``clusters`` runs."""
    start = time.perf_counter()
    ts = sorted(set(thresholds if thresholds is not None else default_thresholds()))
    if not ts:
        raise UsageError("no thresholds to sweep")
    for t in ts:
        check_threshold(t)
    data = labelled_faces(store, read_labels(root, labels), settings, workers, progress)

    def row(threshold: float | None) -> CalibrationRow:
        policy = Policy() if threshold is None else Policy.at(threshold, method)
        pred = predict(store, data.embedded.face_ids, policy, min_size)
        return CalibrationRow(
            threshold=math.nan if threshold is None else threshold,
            clusters=len(np.unique(pred)),
            pairwise=mt.pairwise(data.identity_ids, pred),
            bcubed=mt.bcubed(data.identity_ids, pred),
        )

    rows = [row(float(t)) for t in ts]
    return CalibrationResult(
        root=os.fsdecode(data.labelled.root),
        labels=None if labels is None else os.fsdecode(labels),
        images=data.n,
        identities=len(np.unique(data.identity_ids)),
        rows=tuple(rows),
        recommended=recommend(rows),
        default=row(None),
        no_face=data.no_face(),
        unreadable=data.unreadable(),
        skipped_labels=data.labelled.skipped,
        scan=scan_summary(data.embedded.report),
        seconds=time.perf_counter() - start,
        method=str(Method(method)),
    )
