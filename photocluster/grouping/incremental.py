"""Placing the faces added to a clustered library, without clustering it again.

After a scan adds a few hundred photos to a library of a million faces, its persons stay
as they are: each is one super-node that keeps its label (``fixed``), and only the new
faces, with the faces in no person they reach, are grouped, by the same rules as a full
run (:func:`~photocluster.grouping.grouper.group`): linked to their neighbours, merged
into a person or with each other by average linkage, weak faces attached. A new face
joins a person when a full run would have put it there; new faces of someone not seen
before form a new person among themselves (with faces in no person until then); no face
already in a person moves.

Pure functions over arrays, like the rest of :mod:`photocluster.grouping`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from photocluster.core.vectors import pair_distances
from photocluster.grouping.arrays import positions
from photocluster.grouping.constraints import Constraints, keep_apart, same_photo_pairs
from photocluster.grouping.identity import Assignment


@dataclass(frozen=True)
class HeldNodes:
    """The super-nodes of an incremental run's faces: one per person held, whose faces
    stay where they are, and one per other face. The same for each grouping of a run
    (:func:`held_nodes`); only the faces to place change."""

    held: np.ndarray  # one person id per face, -1: none
    super_of: np.ndarray  # each face's super-node
    fixed: np.ndarray  # one bool per super-node: a person held
    person_of_super: dict[int, int]  # a fixed super-node's person


def held_nodes(held: np.ndarray) -> HeldNodes:
    """The super-nodes of ``held``: one person id per face (-1: none) for the faces that
    stay where they are (their person's faces, pinned ones included). Each held person
    is one super-node, fixed; every other face is a node of its own."""
    held = np.asarray(held, dtype=np.int64)
    n = len(held)
    in_person = held >= 0
    # One root per person (its first face), every other face its own root; super-nodes
    # numbered by their first face, as collapse() numbers them.
    root = np.arange(n, dtype=np.int64)
    if in_person.any():
        faces = np.flatnonzero(in_person)
        # Each person's first face, by person id (they number at most the faces ever
        # seen): no sort of a million faces by person.
        person = held[faces].astype(np.intp)
        first = np.full(int(person.max()) + 1, n, dtype=np.int64)
        np.minimum.at(first, person, faces)
        root[faces] = first[person]
    # A root is its own first face, and every face's root comes at or before it: the
    # super-nodes numbered in their roots' order without sorting a million faces again.
    is_root = root == np.arange(n)
    roots = np.flatnonzero(is_root)
    super_of = (np.cumsum(is_root) - 1)[root]
    fixed = in_person[roots]
    person_of_super = {int(s): int(held[roots[s]]) for s in np.flatnonzero(fixed).tolist()}
    return HeldNodes(held, super_of, fixed, person_of_super)


def incremental_constraints(
    face_ids: np.ndarray,
    photo_ids: np.ndarray,
    emb: np.ndarray,
    nodes: HeldNodes,
    free: np.ndarray,
    threshold: float,
    rejections: Iterable[tuple[int, int]],
) -> tuple[Constraints, np.ndarray]:
    """The constraints of an incremental run and the fixed super-nodes.

    ``nodes``: the faces held in their persons (:func:`held_nodes`); ``free`` marks the
    faces to place. Faces to place stay apart from the other faces of their photo (but in
    collages, as in :func:`~photocluster.grouping.constraints.build_constraints`) and from
    the persons the user took them out of (``rejections``: face id, person id). Returns
    the constraints (``person_of_super``: each fixed super-node's person) and one bool per
    super-node.
    """
    n = len(face_ids)
    super_of, fixed, person_of_super = nodes.super_of, nodes.fixed, nodes.person_of_super
    # The same-photo rule, for the photos of the faces to place.
    # By a mask over photo ids (they number at most the photos ever scanned): isin of a
    # million ids in a hundred thousand goes through a hash table, 10x the time.
    of_placed = np.zeros(int(photo_ids.max()) + 1 if n else 0, dtype=bool)
    of_placed[photo_ids[free]] = True
    local = np.flatnonzero(of_placed[photo_ids])
    pa, pb = same_photo_pairs(photo_ids[local], emb[local], threshold)
    pa, pb = local[pa], local[pb]
    touching = free[pa] | free[pb]
    pa, pb = pa[touching], pb[touching]
    distances = pair_distances(emb, pa, pb)
    na, nb = super_of[pa], super_of[pb]
    apart = na != nb
    # The persons a face to place was taken out of.
    super_of_person = {p: s for s, p in person_of_super.items()}
    index = positions(face_ids)
    ra: list[int] = []
    rb: list[int] = []
    rejected: dict[int, set[int]] = {}
    for fid, pid in rejections:
        k = index.get(fid)
        if k is None or not free[k]:
            continue
        rejected.setdefault(k, set()).add(pid)
        if pid in super_of_person:
            ra.append(int(super_of[k]))
            rb.append(super_of_person[pid])
    cannot = (
        np.concatenate([na[apart], np.array(ra, dtype=np.int64)]),
        np.concatenate([nb[apart], np.array(rb, dtype=np.int64)]),
    )
    cons = Constraints(super_of, person_of_super, cannot, int(np.count_nonzero(apart)), rejected, distances, (pa, pb))
    return cons, fixed


def place(
    face_ids: np.ndarray,
    super_labels: np.ndarray,
    cons: Constraints,
    free: np.ndarray,
    min_size: int,
) -> Assignment:
    """Face id -> person (a placeholder for a new one, None: unknown) for the ``free``
    faces, from the labels :func:`~photocluster.grouping.grouper.group` gave the super-nodes
    of :func:`incremental_constraints`. A face in the label of a fixed super-node joins its
    person; a label without one is a new person when it holds ``min_size`` faces or more;
    a face never joins a person the user took it out of."""
    super_labels = keep_apart(super_labels, cons.cannot)
    labels = super_labels[cons.super_of]
    person_of_label: Mapping[int, int] = {int(super_labels[s]): p for s, p in cons.person_of_super.items()}
    faces = np.flatnonzero(free)
    own = labels[faces]
    sizes = np.bincount(own) if len(own) else np.zeros(0, dtype=np.int64)
    new_labels = sorted({int(x) for x in own.tolist() if int(x) not in person_of_label and sizes[int(x)] >= min_size})
    placeholders = {label: -(k + 1) for k, label in enumerate(new_labels)}
    persons: dict[int, int | None] = {}
    for k, fid, label in zip(faces.tolist(), face_ids[faces].tolist(), own.tolist(), strict=True):
        person = person_of_label[label] if label in person_of_label else placeholders.get(label)
        persons[fid] = None if person is None or person in cons.rejected.get(k, ()) else person
    return Assignment(persons, tuple(placeholders.values()))
