"""Clustering the library: read the faces and the user's corrections, group them
(:mod:`photocluster.grouping`), and store the result as persons."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np

from photocluster.app.tags import name_from_weak_labels
from photocluster.core.config import DEFAULT_MIN_SIZE
from photocluster.core.errors import ConcurrentChangeError
from photocluster.core.progress import Progress, ProgressCallback, report_to
from photocluster.grouping.calibration import impostor_check
from photocluster.grouping.constraints import Constraints, build_constraints
from photocluster.grouping.graph import knn_edges
from photocluster.grouping.grouper import Method, Policy, group
from photocluster.grouping.identity import Assignment, PlanDiff, assign_persons, plan_diff
from photocluster.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterReport:
    """What a clustering run did (or, with ``applied=False``, would do)."""

    threshold: float | None
    min_size: int
    faces: int
    persons: int
    unknown: int
    edges: int
    kept_ids: int
    new_persons: int
    seconds: float
    applied: bool = True
    created: tuple[int, ...] = ()
    merged: tuple[tuple[int, int], ...] = ()
    split: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    faces_moved: int = 0
    faces_new: int = 0
    names_affected: tuple[str, ...] = ()
    same_photo_separations: int = 0
    operating_point: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        d["created"] = list(self.created)
        d["merged"] = [{"person": a, "into": b} for a, b in self.merged]
        d["split"], d["removed"], d["names_affected"] = list(self.split), list(self.removed), list(self.names_affected)
        return d


def recluster(
    store: Store,
    threshold: float | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    apply: bool = True,
    progress: ProgressCallback | None = None,
    method: Method | str = Method.TWO_STAGE,
) -> ClusterReport:
    """Cluster every face of the present photos and store the result as persons.

    ``method="two-stage"`` (the default) clusters in two stages that hold in a library of
    thousands of people (:mod:`photocluster.grouping.grouper`); ``threshold`` is its
    operating point on dlib's pair scale (None: 0.6, the tuned default; lower is stricter,
    higher looser: every threshold of the method moves in proportion).
    ``method="whispers"`` links every pair of faces closer than ``threshold`` (plain
    Chinese whispers). Both are stored, so recognition, ``find``, ``suggest`` and the doubt
    measure later compare at the same operating point.

    The user's corrections bind: faces pinned to a person (merge, move) stay together
    and in that person, faces removed from a person never rejoin it, and two faces of
    one photo are never one person unless the user said so. Persons keep their id (and
    name) when a new cluster is mostly their old faces. With ``apply=False`` nothing is
    written: the report says what applying would change. ``progress`` is told each step
    (a million faces take minutes).
    """
    start = time.perf_counter()
    policy = Policy.at(threshold, method)
    say = report_to(progress)
    log.info("clustering: %s, clusters under %d faces are unknown", policy.as_dict()["method"], min_size)
    for _ in range(WRITE_ATTEMPTS):
        # Read before the snapshot: any correction after it, even one the snapshot saw,
        # makes the write-back below refuse (and this loop group again): never the reverse.
        generation = store.generation()
        plan, n, n_edges, cons, previous = plan_persons(store, policy, min_size, progress)
        diff = plan_diff(plan.persons, previous, store.person_names())
        if not apply:
            break
        say(Progress("Saving persons"))
        try:
            store.apply_clustering(
                plan.persons,
                list(plan.new_persons),
                {
                    "cluster.threshold": "" if threshold is None else repr(threshold),
                    "cluster.method": str(policy.method),
                    "cluster.min_size": str(min_size),
                    "cluster.at": repr(time.time()),
                },
                generation=generation,
            )
            # Takeout names (weak labels) name the persons whose faces now agree on one.
            name_from_weak_labels(store)
            break
        except ConcurrentChangeError:
            log.info("corrections were made while grouping: grouping again")
            say(Progress("Corrections were made meanwhile: grouping again"))
    else:
        raise ConcurrentChangeError(
            f"clustering gave up: the persons were corrected {WRITE_ATTEMPTS} times while it ran; "
            "run `photocluster clusters` again when the corrections are done"
        )
    return _report(policy, min_size, n, n_edges, cons, plan, diff, apply, time.perf_counter() - start)


# How many times the grouping is done again when corrections keep coming while it runs.
WRITE_ATTEMPTS = 3


def plan_persons(
    store: Store,
    policy: Policy,
    min_size: int = DEFAULT_MIN_SIZE,
    progress: ProgressCallback | None = None,
    unbound: Collection[int] = (),
) -> tuple[Assignment, int, int, Constraints, dict[int, int]]:
    """The persons every face would be in (nothing written): the assignment, the number of
    faces and of links, the constraints and the stored face id -> person id. The pins and
    rejections of the faces in ``unbound`` are left out (``eval tags``: the tagged faces
    grouped from their pixels alone)."""
    say = report_to(progress)
    say(Progress("Reading faces"))
    face_ids, emb, confidence, previous, cons = _read(store, policy.collage_radius, unbound)
    n = len(face_ids)
    i, j, d = knn_edges(
        emb, policy.graph_radius, progress=lambda event: say(replace(event, phase=f"Finding neighbours of {n:,} faces"))
    )
    log.info("%d faces, %d links under %.2f", n, len(i), policy.graph_radius)
    say(Progress(f"Grouping {n:,} faces ({len(i):,} links)"))
    super_labels = group(emb, i, j, d, cons, policy, confidence)
    n_edges = len(i)
    del emb, i, j, d  # half a gigabyte at a million faces
    return assign_persons(face_ids, super_labels, cons, previous, min_size), n, n_edges, cons, previous


def _read(
    store: Store, threshold: float, unbound: Collection[int] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int], Constraints]:
    """Face ids, embeddings, detector confidences, face id -> current person, and the constraints."""
    # One snapshot: the faces, their persons and the corrections as of one moment, even
    # while a scan commits photos (its new faces join on the next run).
    with store.snapshot():
        face_ids, photo_ids, person_ids, emb = store.active_faces()
        confidence = store.active_confidences()
        # The current assignment comes with the faces (one read): the constraints and the
        # id matching only ever look at faces of present photos.
        has_person = person_ids >= 0
        previous = dict(zip(face_ids[has_person].tolist(), person_ids[has_person].tolist(), strict=True))
        pins, rejections = store.pins(), store.rejections()
        if unbound:
            free = set(unbound)
            pins = {f: p for f, p in pins.items() if f not in free}
            rejections = [(f, p) for f, p in rejections if f not in free]
            previous = {f: p for f, p in previous.items() if f not in free}
        cons = build_constraints(face_ids, photo_ids, emb, threshold, previous, pins, rejections)
    return face_ids, emb, confidence, previous, cons


def _report(
    policy: Policy,
    min_size: int,
    n_faces: int,
    n_edges: int,
    cons: Constraints,
    plan: Assignment,
    diff: PlanDiff,
    applied: bool,
    seconds: float,
) -> ClusterReport:
    persons_after = {p for p in plan.persons.values() if p is not None}
    return ClusterReport(
        threshold=policy.threshold,
        min_size=min_size,
        faces=n_faces,
        persons=len(persons_after),
        unknown=sum(1 for p in plan.persons.values() if p is None),
        edges=n_edges,
        kept_ids=len([p for p in persons_after if p > 0]),
        new_persons=len(plan.new_persons),
        seconds=seconds,
        applied=applied,
        created=diff.created,
        merged=diff.merged,
        split=diff.split,
        removed=diff.removed,
        faces_moved=diff.faces_moved,
        faces_new=diff.faces_new,
        names_affected=diff.names_affected,
        same_photo_separations=cons.same_photo_separations,
        operating_point={
            **policy.as_dict(),
            "check": impostor_check(cons.same_photo_distances, policy.thresholds).as_dict(),
        },
    )
