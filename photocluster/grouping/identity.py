"""Which person each cluster is, and what a new assignment changes against the stored one.

A cluster is, in this order: the person whose anchor it holds (the faces pinned to a
person when the user last named or corrected it: they bind, whatever the cluster's
size), the person whose present faces it mostly continues, or the person an earlier run
emptied whose faces it finds together again (a narrow ``--min-size`` or a loose
``--threshold`` costs no id: the next run gives it back); else a new person.

Pure functions over arrays and dicts; the caller reads and writes the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from photocluster.core.config import DEFAULT_MIN_SIZE
from photocluster.grouping.constraints import Constraints, keep_apart
from photocluster.grouping.whispers import UNKNOWN


@dataclass(frozen=True)
class Assignment:
    """Face id -> person id (None: unknown) after a clustering run.

    Negative ids are persons still to be created, one per entry of ``new_persons``
    (-1, -2, ...): the store gives them their real ids when the plan is applied.
    """

    persons: dict[int, int | None]
    new_persons: tuple[int, ...]
    revived: tuple[int, ...] = ()  # ids of persons an earlier run emptied, given back to their faces


@dataclass(frozen=True)
class PlanDiff:
    """What an assignment changes against the stored one, in a person's terms."""

    created: tuple[int, ...] = ()  # placeholder ids of new persons
    merged: tuple[tuple[int, int], ...] = ()  # (person, the person that took most of its faces)
    split: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    faces_moved: int = 0
    faces_new: int = 0
    names_affected: tuple[str, ...] = ()  # names of the persons merged, split or removed


def match_to_previous(
    face_ids: np.ndarray, labels: np.ndarray, previous: Mapping[int, int | Sequence[int]]
) -> dict[int, int]:
    """Map new cluster labels to earlier person ids, so ids and names survive re-clustering.

    ``previous`` is face id -> person id from the last run (or several candidate ids per
    face). Pairs (label, person) are taken greedily by decreasing shared faces; each label
    takes at most one person and each person goes to at most one label (when a person
    splits, its id stays with the larger part). Returns label -> person id for the
    matched labels.
    """
    overlap: dict[tuple[int, int], int] = {}
    for fid, label in zip(face_ids.tolist(), labels.tolist(), strict=True):
        if label == UNKNOWN:
            continue
        persons = previous.get(fid)
        if persons is None:
            continue
        for person in (persons,) if isinstance(persons, (int, np.integer)) else persons:
            overlap[(label, person)] = overlap.get((label, person), 0) + 1
    result: dict[int, int] = {}
    used: set[int] = set()
    for (label, person), _shared in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if label in result or person in used:
            continue
        result[label] = person
        used.add(person)
    return result


def assign_persons(
    face_ids: np.ndarray,
    super_labels: np.ndarray,
    constraints: Constraints,
    previous: Mapping[int, int],
    min_size: int = DEFAULT_MIN_SIZE,
    retired: Mapping[int, Sequence[int]] | None = None,
) -> Assignment:
    """Person ids for faces labelled by :func:`~photocluster.grouping.whispers.collapsed_whispers`.

    ``super_labels`` holds one label per super-node of ``constraints``; ``previous`` is
    face id -> person id as stored; ``retired`` face id -> persons an earlier run emptied
    (that exist no more). A label with pinned faces is the pinned person, whatever its
    size; other labels under ``min_size`` faces are unknown; the rest keep the id of the
    person they continue (:func:`match_to_previous`), else take back the id of a retired
    person whose faces they hold (listed in ``revived``), else become new persons. A face
    never goes back to a person the user took it out of.
    """
    n = len(face_ids)
    super_labels = keep_apart(super_labels, constraints.cannot)
    labels = super_labels[constraints.super_of] if n else np.zeros(0, dtype=np.int64)
    pinned_label = {int(super_labels[s]): p for s, p in constraints.person_of_super.items()}
    if n:
        sizes = np.bincount(labels)
        small = (sizes[labels] < min_size) & ~np.isin(labels, list(pinned_label))
        labels = np.where(small, UNKNOWN, labels)
    matched = _match_ids(face_ids, labels, pinned_label, previous)
    revived = _match_retired(face_ids, labels, matched, retired or {})
    matched.update(revived)
    new_labels = sorted({int(x) for x in labels.tolist()} - set(matched) - {UNKNOWN})
    placeholders = {label: -(k + 1) for k, label in enumerate(new_labels)}
    persons: dict[int, int | None] = {}
    for k, (fid, label) in enumerate(zip(face_ids.tolist(), labels.tolist(), strict=True)):
        person = None if label == UNKNOWN else matched.get(label, placeholders.get(label))
        if person is not None and person in constraints.rejected.get(k, ()):
            person = None
        persons[fid] = person
    kept = {p for p in persons.values() if p is not None}
    return Assignment(persons, tuple(placeholders.values()), tuple(sorted(p for p in revived.values() if p in kept)))


def _match_ids(
    face_ids: np.ndarray, labels: np.ndarray, pinned_label: Mapping[int, int], previous: Mapping[int, int]
) -> dict[int, int]:
    """Label -> person id: the pinned persons, then earlier ids for the other labels."""
    # Pinned labels are spoken for: they neither take nor give away another person's id.
    unpinned = np.where(np.isin(labels, list(pinned_label)), UNKNOWN, labels)
    claimed = set(pinned_label.values())
    matched = match_to_previous(face_ids, unpinned, {f: p for f, p in previous.items() if p not in claimed})
    matched.update(pinned_label)
    return matched


def _match_retired(
    face_ids: np.ndarray, labels: np.ndarray, matched: Mapping[int, int], retired: Mapping[int, Sequence[int]]
) -> dict[int, int]:
    """Label -> the id of a person an earlier run emptied, for labels that continue no
    present person and hold faces that person had."""
    if not retired:
        return {}
    taken = set(matched.values())
    rest = np.where(np.isin(labels, list(matched)), UNKNOWN, labels)
    return match_to_previous(face_ids, rest, {f: [p for p in ps if p not in taken] for f, ps in retired.items()})


def plan_diff(
    assignment: Mapping[int, int | None], previous: Mapping[int, int], names: Mapping[int, str | None]
) -> PlanDiff:
    """What ``assignment`` changes against ``previous`` (both face id -> person id), in a
    person's terms; ``names`` gives the names of the persons affected."""
    old_faces: dict[int, list[int]] = {}
    for fid, old in previous.items():
        if fid in assignment:
            old_faces.setdefault(old, []).append(fid)
    moved = new = 0
    for fid, now in assignment.items():
        if fid not in previous:
            new += now is not None
        elif previous[fid] != now:
            moved += 1
    merged, split, removed, affected = [], [], [], set()
    survivors = {p for p in assignment.values() if p is not None}
    for pid, fids in sorted(old_faces.items()):
        targets = [t for t in (assignment[f] for f in fids) if t is not None]
        kinds = set(targets)
        if pid not in survivors:
            if targets:
                merged.append((pid, max(sorted(kinds), key=targets.count)))
            else:
                removed.append(pid)
            if names.get(pid):
                affected.add(str(names[pid]))
        elif len(kinds - {pid}) >= 1 and len(kinds) >= 2:
            split.append(pid)
            if names.get(pid):
                affected.add(str(names[pid]))
    created = sorted({p for p in assignment.values() if p is not None and p < 0}, reverse=True)
    return PlanDiff(
        created=tuple(created),
        merged=tuple(merged),
        split=tuple(split),
        removed=tuple(removed),
        faces_moved=moved,
        faces_new=new,
        names_affected=tuple(sorted(affected)),
    )
