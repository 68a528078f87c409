"""Birth dates as constraints (pure): the faces dated before a birth, kept apart from the
person's anchor faces while grouping and out of the person after it."""

from __future__ import annotations

import numpy as np

from conftest import fake_embedding, near
from photocluster.grouping.constraints import FACT_ANCHORS, born_rejections, build_constraints
from photocluster.grouping.identity import assign_persons


def test_born_rejections_are_the_faces_dated_before_each_birth() -> None:
    ids = np.array([10, 11, 12, 13])
    days = np.array([700, 800, 900, 1000])
    assert born_rejections(ids, days, {}) == []
    assert born_rejections(ids, days, {5: 900, 2: 701}) == [(10, 2), (10, 5), (11, 5)]
    assert born_rejections(ids, days, {5: 700}) == []  # born the day of the photo: it may be them


def test_facts_link_to_a_few_anchors_only_and_bind_the_assignment() -> None:
    # Person 1: 60 faces now, unpinned; 40 faces dated before its birth, all very like it.
    base = fake_embedding("kid")
    n_person, n_early = 60, 40
    emb = np.stack([near(base, 0.1, k) for k in range(n_person + n_early)])
    ids = np.arange(1, n_person + n_early + 1)
    photos = ids.copy()  # one face a photo
    current = {int(f): 1 for f in ids[:n_person]}
    facts = [(int(f), 1) for f in ids[n_person:]]
    plain = build_constraints(ids, photos, emb, 0.5, current, {}, [])
    cons = build_constraints(ids, photos, emb, 0.5, current, {}, [], facts)
    links = len(cons.cannot[0]) - len(plain.cannot[0])
    assert 0 < links <= n_early * FACT_ANCHORS < n_early * n_person  # bounded by the anchors, not the person
    assert all(cons.rejected[k] == {1} for k in range(n_person, n_person + n_early))
    # Whatever the grouping did (here: everyone in one cluster), no early face stays in person 1.
    labels = np.zeros(len(np.unique(cons.super_of)), dtype=np.int64)
    plan = assign_persons(ids, labels, cons, current, min_size=1)
    assert 1 not in {plan.persons[int(f)] for f in ids[n_person:]}
    assert {plan.persons[int(f)] for f in ids[:n_person]} == {1}


def test_a_pinned_person_is_one_anchor() -> None:
    base = fake_embedding("kid")
    emb = np.stack([near(base, 0.1, k) for k in range(6)])
    ids = np.arange(1, 7)
    current = {1: 1, 2: 1, 3: 1, 4: 1}
    cons = build_constraints(ids, ids.copy(), emb, 0.5, current, {1: 1}, [], [(5, 1), (6, 1)])
    pinned = next(s for s, p in cons.person_of_super.items() if p == 1)
    early = {int(cons.super_of[4]), int(cons.super_of[5])}
    got = {(int(a), int(b)) for a, b in zip(*cons.cannot, strict=True)}
    assert got == {(e, pinned) for e in early}
