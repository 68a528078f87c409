"""``photocluster eval tags``: how accurate photocluster is on the person's own library,
with the face tags they already had (:mod:`photocluster.app.tags`) as the ground truth.

Every face of the library is clustered as ``photocluster clusters`` would (the same
``plan_persons``, through :func:`photocluster.eval.clusters.predict`), except that the
tagged faces' own pins and rejections (the tags') are left out: scoring the tags against
a clustering they bound would measure nothing. The tagged faces are then scored by name:
pairwise and BCubed precision/recall/F1, at the default clustering and over the
threshold sweep of ``calibrate``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photocluster.core.config import DEFAULT_MIN_SIZE
from photocluster.core.errors import UsageError
from photocluster.eval import metrics as mt
from photocluster.eval.calibrate import CalibrationResult, CalibrationRow, default_thresholds, recommend
from photocluster.eval.clusters import predict
from photocluster.grouping.grouper import Method, Policy
from photocluster.store import Store


@dataclass(frozen=True)
class TagsResult:
    """The sweep as :class:`CalibrationResult` (images: tagged faces; identities: names),
    with how many tags could not be used."""

    calibration: CalibrationResult
    photos: int
    unmatched: int
    weak: int
    ambiguous: int

    def as_dict(self) -> dict[str, object]:
        doc = self.calibration.as_dict()
        for key in ("root", "labels", "no_face", "no_face_count", "unreadable", "scan", "images", "identities"):
            doc.pop(key, None)
        return {
            "database": self.calibration.root,
            "tagged_faces": self.calibration.images,
            "names": self.calibration.identities,
            "photos": self.photos,
            "tags_without_face": self.unmatched,
            "weak_labels_not_scored": self.weak,
            "faces_with_two_names": self.ambiguous,
            **doc,
        }


def tagged_faces(store: Store) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Face ids of the faces one matched tag names, their name ids, and counts of the tags
    left out (without a face, weak, on a face given two names)."""
    names: dict[int, set[str]] = {}
    photos: set[int] = set()
    skipped = {"unmatched": 0, "weak": 0, "ambiguous": 0}
    for t in store.all_tags():
        if t.status == "matched" and t.face_id is not None:
            names.setdefault(t.face_id, set()).add(t.name.casefold())
            photos.add(t.photo_id)
        else:
            skipped["weak" if t.status == "weak" else "unmatched"] += 1
    clear = {f: next(iter(n)) for f, n in names.items() if len(n) == 1}
    skipped["ambiguous"] = len(names) - len(clear)
    skipped["photos"] = len(photos)
    faces = np.array(sorted(clear), dtype=np.int64)
    _, ids = np.unique(np.array([clear[int(f)] for f in faces], dtype=object), return_inverse=True)
    return faces, np.asarray(ids, dtype=np.int64).reshape(-1), skipped


def eval_tags(
    store: Store,
    thresholds: Sequence[float] | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    method: Method | str = Method.TWO_STAGE,
) -> TagsResult:
    """Score the clustering on the tagged faces (see the module doc), at each threshold of
    ``method`` and at the default. Raises UsageError
    when the tags name fewer than two people (nothing to tell apart)."""
    start = time.perf_counter()
    faces, truth, skipped = tagged_faces(store)
    if len(np.unique(truth)) < 2:
        raise UsageError(
            f"the face tags name {len(np.unique(truth))} person(s) on {len(faces)} face(s): eval tags needs "
            "tags of two people or more (run photocluster scan on photos with face tags)"
        )
    unbound = store.tag_pinned_faces()
    ts = sorted(set(thresholds if thresholds is not None else default_thresholds()))

    def row(threshold: float | None) -> CalibrationRow:
        policy = Policy() if threshold is None else Policy.at(threshold, method)
        pred = predict(store, faces, policy, min_size, unbound)
        return CalibrationRow(
            threshold=math.nan if threshold is None else threshold,
            clusters=len(np.unique(pred)),
            pairwise=mt.pairwise(truth, pred),
            bcubed=mt.bcubed(truth, pred),
        )

    rows = [row(float(t)) for t in ts]
    calibration = CalibrationResult(
        root=os.fsdecode(store.path),
        labels="face tags",
        images=len(faces),
        identities=len(np.unique(truth)),
        rows=tuple(rows),
        recommended=recommend(rows),
        default=row(None),
        no_face=(),
        unreadable=(),
        skipped_labels=skipped["ambiguous"],
        seconds=time.perf_counter() - start,
    )
    return TagsResult(calibration, skipped["photos"], skipped["unmatched"], skipped["weak"], skipped["ambiguous"])
