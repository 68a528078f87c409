"""Face verification on an LFW ``pairs.txt`` (:func:`eval_pairs`): accuracy at a threshold,
cross-validated accuracy, ROC AUC and TAR at a FAR, without and with a fallback face for
images where none was found."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photocluster.core.config import DEFAULT_THRESHOLD, DetectionSettings
from photocluster.core.errors import ImageError, PathNotFoundError, UsageError
from photocluster.core.progress import ProgressCallback
from photocluster.eval import metrics as mt
from photocluster.eval.datasets import read_pairs
from photocluster.eval.embed import embed_images, fallback_face, relative, scan_summary
from photocluster.eval.figures import check_threshold, json_number
from photocluster.store import Store

DEFAULT_FAR = 1e-3
DEFAULT_FOLDS = 10


@dataclass(frozen=True)
class PairFigures:
    """Verification figures for one way of treating images without a face."""

    accuracy: float
    wrong: int
    cv_accuracy: float
    cv_std: float
    cv_thresholds: tuple[float, ...]
    roc_auc: float
    tar: float
    tar_threshold: float
    best_threshold: float
    best_accuracy: float
    missing_pairs: int

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": json_number(self.accuracy),
            "wrong": self.wrong,
            "cv_accuracy": json_number(self.cv_accuracy),
            "cv_std": json_number(self.cv_std),
            "cv_thresholds": [json_number(t, 4) for t in self.cv_thresholds],
            "roc_auc": json_number(self.roc_auc),
            "tar": json_number(self.tar),
            "tar_threshold": json_number(self.tar_threshold, 4),
            "best_threshold": json_number(self.best_threshold, 4),
            "best_accuracy": json_number(self.best_accuracy),
            "missing_pairs": self.missing_pairs,
        }


@dataclass(frozen=True)
class PairsResult:
    """``strict``: a pair with an image without a face counts as wrong at every threshold.
    ``fallback``: such an image is embedded from a centred box (:func:`fallback_box`)."""

    pairs_file: str
    root: str
    threshold: float
    far: float
    pairs: int
    same_pairs: int
    different_pairs: int
    folds: int
    folds_from_file: bool
    images: int
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    strict: PairFigures
    fallback: PairFigures
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "pairs_file": self.pairs_file,
            "root": self.root,
            "threshold": self.threshold,
            "far": self.far,
            "pairs": self.pairs,
            "same_pairs": self.same_pairs,
            "different_pairs": self.different_pairs,
            "folds": self.folds,
            "folds_from_file": self.folds_from_file,
            "images": self.images,
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "strict": self.strict.as_dict(),
            "fallback": self.fallback.as_dict(),
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


def pair_figures(
    distance: np.ndarray, same: np.ndarray, folds: np.ndarray, threshold: float, far: float, missing: np.ndarray
) -> PairFigures:
    """All verification figures for pair distances; ``missing`` pairs are made wrong at
    every threshold (+inf for a same pair, -inf for a different one)."""
    d = np.where(missing, np.where(same, np.inf, -np.inf), distance)
    kfold = mt.kfold_accuracy(d, same, folds, prior=threshold)
    tar, tar_t = mt.tar_at_far(d, same, far)
    best_t, best_acc = mt.best_threshold(d, same, prior=threshold)
    acc = mt.accuracy(d, same, threshold)
    return PairFigures(
        accuracy=acc,
        wrong=int(np.sum((d < threshold) != same)),
        cv_accuracy=kfold.mean,
        cv_std=kfold.std,
        cv_thresholds=kfold.thresholds,
        roc_auc=mt.roc_auc(d, same),
        tar=tar,
        tar_threshold=tar_t,
        best_threshold=best_t,
        best_accuracy=best_acc,
        missing_pairs=int(missing.sum()),
    )


def eval_pairs(
    store: Store,
    root: str | os.PathLike[str],
    pairs_file: str | os.PathLike[str],
    threshold: float = DEFAULT_THRESHOLD,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    far: float = DEFAULT_FAR,
    progress: ProgressCallback | None = None,
) -> PairsResult:
    """Face verification on the LFW protocol (see :func:`read_pairs` for the file).

    Accuracy at ``threshold``; accuracy cross-validated over the file's folds (else 10
    stratified folds), the threshold chosen on the other folds; ROC AUC; TAR at ``far``.
    """
    start = time.perf_counter()
    check_threshold(threshold)
    settings = settings or DetectionSettings()
    root = Path(root)
    if not os.path.isdir(root):
        raise PathNotFoundError(root) if not os.path.lexists(root) else UsageError(f"{root}: not a folder")
    parsed = read_pairs(pairs_file, root)
    index: dict[Path, int] = {}
    first_line: dict[Path, int] = {}
    for pair in parsed.pairs:
        for p in (pair.a, pair.b):
            index.setdefault(p, len(index))
            first_line.setdefault(p, pair.line)
    absent = [p for p in index if not p.is_file()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise UsageError(f"{absent[0]}: no such image (named on line {first_line[absent[0]]} of {parsed.path}){more}")
    images = list(index)
    emb = embed_images(store, images, settings, workers, progress)

    ia = np.array([index[p.a] for p in parsed.pairs], dtype=np.int64)
    ib = np.array([index[p.b] for p in parsed.pairs], dtype=np.int64)
    same = np.array([p.same for p in parsed.pairs], dtype=bool)
    if parsed.folds is not None:
        folds = np.asarray(parsed.folds, dtype=np.int64)
    else:
        # Ten folds, fewer when there are fewer than ten pairs of a kind (every fold then
        # still tests at least one pair of the rarer kind).
        rarer = min(int(same.sum()), int((~same).sum()))
        folds = mt.stratified_folds(same, min(DEFAULT_FOLDS, max(2, rarer)))

    def figures(vectors: np.ndarray, found: np.ndarray) -> PairFigures:
        distance = np.linalg.norm(vectors[ia].astype(np.float64) - vectors[ib], axis=1)
        return pair_figures(distance, same, folds, threshold, far, ~(found[ia] & found[ib]))

    strict = figures(emb.vectors, emb.found)
    vectors, found = emb.vectors.copy(), emb.found.copy()
    no_face = [k for k in range(len(images)) if not emb.found[k] and k not in emb.unreadable]
    for k in no_face:
        try:
            vectors[k] = fallback_face(images[k], settings).embedding
            found[k] = True
        except (ImageError, RuntimeError, ValueError):
            pass  # changed since the scan, or dlib refused it: stays missing
    fallback = figures(vectors, found)
    return PairsResult(
        pairs_file=os.fsdecode(parsed.path),
        root=os.fsdecode(root),
        threshold=threshold,
        far=far,
        pairs=len(same),
        same_pairs=int(same.sum()),
        different_pairs=int((~same).sum()),
        folds=len(np.unique(folds)),
        folds_from_file=parsed.folds is not None,
        images=len(images),
        no_face=tuple(sorted(relative(images[k], root) for k in no_face)),
        unreadable=tuple(sorted((relative(images[k], root), r) for k, r in emb.unreadable.items())),
        strict=strict,
        fallback=fallback,
        scan=scan_summary(emb.report),
        seconds=time.perf_counter() - start,
    )
