"""Clustering against identities (:func:`eval_clusters`): the persons ``photocluster
clusters`` would make (:func:`predict`) compared with the labels, pairwise, BCubed and NMI."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from photocluster.app.recluster import plan_persons
from photocluster.core.config import DEFAULT_MIN_SIZE, DetectionSettings
from photocluster.core.progress import ProgressCallback
from photocluster.eval import metrics as mt
from photocluster.eval.datasets import read_labels
from photocluster.eval.embed import labelled_faces, relative, scan_summary
from photocluster.eval.figures import check_threshold, json_number
from photocluster.grouping.grouper import Method, Policy
from photocluster.store import Store

DEFAULT_WORST = 5


@dataclass(frozen=True)
class MixedCluster:
    """A cluster holding more than one identity, for review: its members as
    (relative path, identity), the most common identity first."""

    size: int
    identities: tuple[tuple[str, int], ...]
    files: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "identities": dict(self.identities),
            "files": [{"path": p, "identity": i} for p, i in self.files],
        }


@dataclass(frozen=True)
class ClustersResult:
    root: str
    labels: str | None
    threshold: float | None
    operating_point: dict[str, object]
    images: int
    identities: int
    clusters: int
    singletons: int
    pairwise: mt.PRF
    bcubed: mt.PRF
    nmi: float
    worst: tuple[MixedCluster, ...]
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    skipped_labels: int
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "labels": self.labels,
            "threshold": self.threshold,
            "operating_point": self.operating_point,
            "images": self.images,
            "identities": self.identities,
            "clusters": self.clusters,
            "singletons": self.singletons,
            "pairwise": {k: json_number(v) for k, v in self.pairwise.as_dict().items()},
            "bcubed": {k: json_number(v) for k, v in self.bcubed.as_dict().items()},
            "nmi": json_number(self.nmi),
            "mixed_clusters": [m.as_dict() for m in self.worst],
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "skipped_labels": self.skipped_labels,
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


def predict(
    store: Store, face_ids: np.ndarray, policy: Policy, min_size: int, unbound: Collection[int] = ()
) -> np.ndarray:
    """The person of each image's face as ``photocluster clusters`` would make it (every
    face of the store clustered, constraints and min-size included, nothing written); an
    image without a face, or whose face would be unknown, is a cluster of its own. The
    pins and rejections of ``unbound`` faces are left out (see ``plan_persons``)."""
    plan = plan_persons(store, policy, min_size, unbound=unbound)[0].persons
    person = np.array([plan.get(f) if f >= 0 else None for f in face_ids.tolist()], dtype=object)
    alone = np.array([p is None for p in person], dtype=bool)
    labels = np.zeros(len(face_ids), dtype=np.int64)
    if (~alone).any():
        _, labels[~alone] = np.unique(person[~alone].astype(np.int64), return_inverse=True)
    start = int(labels[~alone].max()) + 1 if (~alone).any() else 0
    labels[alone] = start + np.arange(int(alone.sum()))
    return labels


def eval_clusters(
    store: Store,
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    worst: int = DEFAULT_WORST,
    progress: ProgressCallback | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    method: Method | str = Method.TWO_STAGE,
) -> ClustersResult:
    """Cluster the scanned faces exactly as ``photocluster clusters --threshold T --method M``
    does (``threshold`` None: its default) and compare each labelled image's face with its identity. An image
    without a face, or whose face stays unknown, is a cluster of its own."""
    start = time.perf_counter()
    if threshold is not None:
        check_threshold(threshold)
    data = labelled_faces(store, read_labels(root, labels), settings, workers, progress)
    policy = Policy.at(threshold, method)
    pred = predict(store, data.embedded.face_ids, policy, min_size)
    truth = data.identity_ids
    sizes = np.bincount(pred)
    root_path = data.labelled.root
    mixed: list[MixedCluster] = []
    for label in np.unique(pred).tolist():
        members = np.flatnonzero(pred == label)
        ids = Counter(data.labelled.identities[k] for k in members.tolist())
        if len(ids) < 2:
            continue
        rank = {name: r for r, (name, _) in enumerate(sorted(ids.items(), key=lambda kv: (-kv[1], kv[0])))}
        files = sorted(
            ((relative(data.labelled.paths[k], root_path), data.labelled.identities[k]) for k in members.tolist()),
            key=lambda pi: (rank[pi[1]], pi[0]),
        )
        mixed.append(
            MixedCluster(len(members), tuple(sorted(ids.items(), key=lambda kv: (-kv[1], kv[0]))), tuple(files))
        )
    mixed.sort(key=lambda m: (-m.size, -len(m.identities), m.files[0][0]))
    return ClustersResult(
        root=os.fsdecode(root_path),
        labels=None if labels is None else os.fsdecode(labels),
        threshold=threshold,
        operating_point=policy.as_dict(),
        images=data.n,
        identities=len(np.unique(truth)),
        clusters=len(sizes),
        singletons=int(np.sum(sizes == 1)),
        pairwise=mt.pairwise(truth, pred),
        bcubed=mt.bcubed(truth, pred),
        nmi=mt.nmi(truth, pred),
        worst=tuple(mixed[:worst]),
        no_face=data.no_face(),
        unreadable=data.unreadable(),
        skipped_labels=data.labelled.skipped,
        scan=scan_summary(data.embedded.report),
        seconds=time.perf_counter() - start,
    )
