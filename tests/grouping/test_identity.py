"""Collapsed Chinese whispers, persons for labels, and the plan diff (pure)."""

from __future__ import annotations

import numpy as np

from photocluster.grouping.constraints import Constraints
from photocluster.grouping.identity import assign_persons, plan_diff
from photocluster.grouping.whispers import chinese_whispers, collapse, collapsed_whispers


def constraints(
    n: int,
    groups: list[list[int]] | None = None,
    persons: dict[int, int] | None = None,  # face index -> pinned person, one face per group
    rejected: dict[int, set[int]] | None = None,
) -> Constraints:
    super_of = collapse(n, [np.array(g) for g in groups or []])
    person_of_super = {int(super_of[k]): p for k, p in (persons or {}).items()}
    empty = np.zeros(0, dtype=np.int64)
    return Constraints(super_of, person_of_super, (empty, empty), 0, rejected or {})


def chain(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([a for a, _ in pairs], dtype=np.int64), np.array([b for _, b in pairs], dtype=np.int64)


# -- collapse and collapsed whispers ---------------------------------------------------


def test_collapse_numbers_super_nodes_by_their_smallest_member() -> None:
    assert collapse(6, [np.array([4, 1]), np.array([5, 3])]).tolist() == [0, 1, 2, 3, 1, 3]
    assert collapse(6, [np.array([5, 3]), np.array([1, 4])]).tolist() == [0, 1, 2, 3, 1, 3]
    # Overlapping groups merge.
    assert collapse(5, [np.array([0, 2]), np.array([2, 4])]).tolist() == [0, 1, 0, 2, 0]
    assert collapse(3, []).tolist() == [0, 1, 2]
    assert collapse(0, []).tolist() == []


def test_collapsed_whispers_without_groups_is_chinese_whispers() -> None:
    i, j = chain([(0, 1), (1, 2), (3, 4)])
    cannot = (np.array([0]), np.array([2]))
    super_of = collapse(5, [])
    expected = chinese_whispers(5, i, j, cannot=cannot)
    assert collapsed_whispers(i, j, super_of, cannot).tolist() == expected.tolist()


def test_pinned_faces_vote_as_one() -> None:
    # Faces 0-2 are one person by the user's hand (one node); 3 is linked to 0 and 1,
    # 4 to 5 only: 3 joins the pinned node, 4 and 5 stay a pair.
    i, j = chain([(0, 3), (1, 3), (4, 5), (2, 5)])
    super_of = collapse(6, [np.array([0, 1, 2])])
    empty = np.zeros(0, dtype=np.int64)
    labels = collapsed_whispers(i, j, super_of, (empty, empty))
    assert len(labels) == 4  # one label per super-node
    face_labels = labels[super_of]
    assert face_labels[3] == face_labels[0]
    assert face_labels[4] == face_labels[5]


def test_cannot_links_keep_super_nodes_apart() -> None:
    i, j = chain([(0, 2), (1, 2)])
    super_of = collapse(3, [np.array([0, 1])])
    labels = collapsed_whispers(i, j, super_of, (np.array([0]), np.array([1])))
    assert labels[0] != labels[1]


def test_collapsed_whispers_of_nothing() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert collapsed_whispers(empty, empty, collapse(0, []), (empty, empty)).tolist() == []


# -- persons for labels ----------------------------------------------------------------


def test_labels_keep_their_persons_and_new_ones_get_placeholders() -> None:
    face_ids = np.array([10, 11, 12, 13, 14, 15, 16])
    super_labels = np.array([0, 0, 0, 1, 1, 2, 3])
    plan = assign_persons(face_ids, super_labels, constraints(7), {10: 5, 11: 5, 12: 6}, min_size=2)
    # Label 0 continues person 5; label 1 is new; 2 and 3 are too small.
    assert plan.persons == {10: 5, 11: 5, 12: 5, 13: -1, 14: -1, 15: None, 16: None}
    assert plan.new_persons == (-1,)


def test_new_labels_are_numbered_by_label() -> None:
    plan = assign_persons(np.arange(6), np.array([2, 2, 0, 0, 1, 1]), constraints(6), {}, min_size=2)
    assert plan.persons == {0: -3, 1: -3, 2: -1, 3: -1, 4: -2, 5: -2}
    assert plan.new_persons == (-1, -2, -3)


def test_a_pinned_person_keeps_its_label_whatever_its_size() -> None:
    face_ids = np.array([20, 21, 22, 23])
    cons = constraints(4, persons={0: 8})
    # Face 20 is pinned to person 8 and alone; 21-23 were person 8 before the pin
    # moved elsewhere: their label must not take person 8 twice.
    plan = assign_persons(face_ids, np.array([1, 0, 0, 0]), cons, {21: 8, 22: 8, 23: 8}, min_size=2)
    assert plan.persons == {20: 8, 21: -1, 22: -1, 23: -1}


def test_a_face_never_goes_back_to_a_person_it_was_taken_out_of() -> None:
    cons = constraints(3, rejected={2: {4}})
    plan = assign_persons(np.array([1, 2, 3]), np.array([0, 0, 0]), cons, {1: 4, 2: 4, 3: 4}, min_size=1)
    assert plan.persons == {1: 4, 2: 4, 3: None}


def test_a_label_that_continues_no_present_person_takes_back_a_retired_id() -> None:
    # Faces 10-12 were person 5 until a narrow run emptied it; 13-14 were persons 7 then 8
    # (both emptied since); 15-16 are in person 9 now, and were person 6 before a loose run
    # merged 6 into 9; label 3 continues person 9 (more of its faces).
    face_ids = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    previous = {15: 9, 16: 9, 17: 9, 18: 9, 19: 9}
    retired = {10: [5], 11: [5], 12: [5], 13: [8, 7], 14: [7], 15: [6], 16: [6]}
    plan = assign_persons(face_ids, labels, constraints(10), previous, min_size=2, retired=retired)
    assert plan.persons == {10: 5, 11: 5, 12: 5, 13: 7, 14: 7, 15: 6, 16: 6, 17: 9, 18: 9, 19: 9}
    assert plan.revived == (5, 6, 7) and plan.new_persons == ()
    # A retired id given back only where its label is a person: not to unknown faces.
    small = assign_persons(face_ids, labels, constraints(10), previous, min_size=4, retired=retired)
    assert small.revived == () and small.persons[10] is None


def test_min_size_one_keeps_everyone() -> None:
    plan = assign_persons(np.array([5, 6]), np.array([0, 1]), constraints(2), {}, min_size=1)
    assert plan.persons == {5: -1, 6: -2}
    assert None not in plan.persons.values()


def test_assign_persons_of_nothing() -> None:
    plan = assign_persons(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), constraints(0), {3: 4})
    assert plan.persons == {} and plan.new_persons == ()


# -- the plan diff ---------------------------------------------------------------------


def test_plan_diff_in_a_persons_terms() -> None:
    previous = {1: 10, 2: 10, 3: 10, 4: 20, 5: 20, 6: 30, 7: 40, 8: 40, 9: 50}
    assignment: dict[int, int | None] = {
        1: 10,
        2: 10,
        3: -1,  # person 10 splits: face 3 goes to a new person
        4: 30,
        5: 30,  # person 20 merges into 30
        6: 30,
        7: None,
        8: None,  # person 40 is removed
        9: 50,
        11: -1,  # a new face joins the new person
        12: None,  # a new face stays unknown
    }
    diff = plan_diff(assignment, previous, {10: "Ann", 20: None, 40: "Bob", 50: "Eve"})
    assert diff.created == (-1,)
    assert diff.merged == ((20, 30),)
    assert diff.split == (10,)
    assert diff.removed == (40,)
    assert (diff.faces_moved, diff.faces_new) == (5, 1)
    assert diff.names_affected == ("Ann", "Bob")


def test_a_merge_goes_into_the_person_taking_most_faces() -> None:
    previous = {1: 7, 2: 7, 3: 7, 4: 8, 5: 9}
    diff = plan_diff({1: 9, 2: 8, 3: 8, 4: 8, 5: 9}, previous, {})
    assert diff.merged == ((7, 8),)
    # Faces of photos gone (not in the assignment) count for nothing.
    assert plan_diff({1: 7}, {1: 7, 2: 7, 3: 8}, {}).removed == ()


def test_nothing_changed() -> None:
    previous = {1: 3, 2: 3}
    diff = plan_diff({1: 3, 2: 3}, previous, {3: "Ann"})
    assert diff == plan_diff({}, {}, {})
    assert (diff.created, diff.merged, diff.split, diff.removed, diff.names_affected) == ((), (), (), (), ())
