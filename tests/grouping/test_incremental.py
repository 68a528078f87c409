"""The super-nodes and constraints of an incremental run, and placing its faces."""

from __future__ import annotations

import numpy as np

from photocluster.grouping.incremental import held_nodes, incremental_constraints, place
from photocluster.grouping.whispers import collapse


def test_each_person_held_is_one_fixed_super_node_numbered_by_its_first_face() -> None:
    held = np.array([-1, 7, 3, -1, 7, 3, -1])
    nodes = held_nodes(held)
    # Super-nodes in their first faces' order: 0 (face 0), person 7 (faces 1, 4), person 3
    # (faces 2, 5), face 3, face 6.
    assert nodes.super_of.tolist() == [0, 1, 2, 3, 1, 2, 4]
    assert nodes.fixed.tolist() == [False, True, True, False, False]
    assert nodes.person_of_super == {1: 7, 2: 3}
    # As collapse() numbers the super-nodes of the same groups.
    assert collapse(7, [np.array([1, 4]), np.array([2, 5])]).tolist() == nodes.super_of.tolist()


def test_no_one_held_leaves_every_face_a_node_of_its_own() -> None:
    nodes = held_nodes(np.full(4, -1))
    assert nodes.super_of.tolist() == [0, 1, 2, 3] and not nodes.fixed.any() and nodes.person_of_super == {}


def test_the_same_nodes_serve_each_grouping_of_a_run() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(8, 4)).astype(np.float32)
    face_ids = np.arange(1, 9)
    photo_ids = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    held = np.array([5, 5, -1, -1, 6, -1, -1, -1])
    nodes = held_nodes(held)
    rejections = [(3, 5), (8, 6)]  # face 3 was taken out of person 5, face 8 out of 6
    first = np.zeros(8, dtype=bool)
    first[[2, 3]] = True
    wider = first.copy()
    wider[[5, 7]] = True
    for free in (first, wider):
        cons, fixed = incremental_constraints(face_ids, photo_ids, emb, nodes, free, 0.0, rejections)
        again, _ = incremental_constraints(face_ids, photo_ids, emb, held_nodes(held), free, 0.0, rejections)
        assert cons.super_of is nodes.super_of and fixed is nodes.fixed
        assert [c.tolist() for c in cons.cannot] == [c.tolist() for c in again.cannot]
        assert cons.rejected == again.rejected
    # Placed faces stay apart from the others of their photo and from the persons the user
    # took them out of: face 6 (index 5) from person 6's face 5 in photo 3, face 8 from 6.
    pairs = set(zip(*(c.tolist() for c in cons.cannot), strict=True))
    s = nodes.super_of
    assert (s[2], s[3]) in pairs and (min(s[4], s[5]), max(s[4], s[5])) in pairs
    assert cons.rejected == {2: {5}, 7: {6}}
    labels = np.arange(len(fixed))
    assignment = place(face_ids, labels, cons, wider, min_size=1)
    assert set(assignment.persons) == {3, 4, 6, 8}
