"""Clustering the library: read the faces and the user's corrections, group them
(:mod:`photocluster.grouping`), and store the result as persons."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from photocluster.core.config import DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD
from photocluster.grouping.constraints import Constraints, build_constraints
from photocluster.grouping.graph import knn_edges
from photocluster.grouping.identity import Assignment, PlanDiff, assign_persons, plan_diff
from photocluster.grouping.whispers import collapsed_whispers
from photocluster.store import Store


@dataclass(frozen=True)
class ClusterReport:
    """What a clustering run did (or, with ``applied=False``, would do)."""

    threshold: float
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

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        d["created"] = list(self.created)
        d["merged"] = [{"person": a, "into": b} for a, b in self.merged]
        d["split"], d["removed"], d["names_affected"] = list(self.split), list(self.removed), list(self.names_affected)
        return d


def recluster(
    store: Store,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = DEFAULT_MIN_SIZE,
    apply: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ClusterReport:
    """Cluster every face of the present photos and store the result as persons.

    The user's corrections bind: faces pinned to a person (merge, move) stay together
    and in that person, faces removed from a person never rejoin it, and two faces of
    one photo are never one person unless the user said so. Persons keep their id (and
    name) when a new cluster is mostly their old faces. With ``apply=False`` nothing is
    written: the report says what applying would change. ``progress`` receives a line
    saying what is being done (a million faces take minutes).
    """
    start = time.perf_counter()
    say = progress or (lambda _text: None)
    say("Reading faces")
    face_ids, emb, previous, cons = _read(store, threshold)
    n = len(face_ids)
    i, j, _ = knn_edges(emb, threshold, progress=lambda done: say(f"Finding neighbours of {n:,} faces: {done:.0%}"))
    n_edges = len(i)
    say(f"Grouping {n:,} faces ({n_edges:,} links)")
    del emb  # half a gigabyte at a million faces, not needed from here on
    super_labels = collapsed_whispers(i, j, cons.super_of, cons.cannot)
    del i, j
    plan = assign_persons(face_ids, super_labels, cons, previous, min_size)
    diff = plan_diff(plan.persons, previous, store.person_names())
    if apply:
        say("Saving persons")
        store.apply_clustering(
            plan.persons,
            list(plan.new_persons),
            {"cluster.threshold": repr(threshold), "cluster.min_size": str(min_size), "cluster.at": repr(time.time())},
        )
    return _report(threshold, min_size, n, n_edges, cons, plan, diff, apply, time.perf_counter() - start)


def _read(store: Store, threshold: float) -> tuple[np.ndarray, np.ndarray, dict[int, int], Constraints]:
    """Face ids, embeddings, face id -> current person, and the constraints."""
    # One snapshot: the faces, their persons and the corrections as of one moment, even
    # while a scan commits photos (its new faces join on the next run).
    with store.snapshot():
        face_ids, photo_ids, person_ids, emb = store.active_faces()
        # The current assignment comes with the faces (one read): the constraints and the
        # id matching only ever look at faces of present photos.
        has_person = person_ids >= 0
        previous = dict(zip(face_ids[has_person].tolist(), person_ids[has_person].tolist(), strict=True))
        cons = build_constraints(face_ids, photo_ids, emb, threshold, previous, store.pins(), store.rejections())
    return face_ids, emb, previous, cons


def _report(
    threshold: float,
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
        threshold=threshold,
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
    )
