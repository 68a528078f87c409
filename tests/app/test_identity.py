"""A person's identity follows its faces across any sequence of `clusters` runs: names never
come off their faces, and ids come back after an exploratory run (real SQLite, fake
embeddings of a few well-separated identities)."""

from __future__ import annotations

import inspect
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fake_embedding, near
from photocluster.app.corrections import merge_persons, move_face, name_person, remove_face
from photocluster.app.recluster import recluster
from photocluster.store import Store

from .conftest import add_photo


def library(store: Store, root: Path, plan: dict[str, int]) -> dict[str, list[int]]:
    """``plan[who]`` photos of one face each, 0.2 from ``who``'s centre: face ids by identity."""
    faces: dict[str, list[int]] = {}
    for who, n in plan.items():
        for k in range(n):
            faces.setdefault(who, []).extend(
                add_photo(store, root / f"{who}{k}.jpg", [near(fake_embedding(who), 0.2, f"{who}{k}")])
            )
    return faces


def loose_run(store: Store) -> None:
    """A plain Chinese-whispers run at 1.9, which links every face to every other. (Once
    `--threshold` scales the default method, plain whispers is `method="whispers"`.)"""
    method = {"method": "whispers"} if "method" in inspect.signature(recluster).parameters else {}
    recluster(store, threshold=1.9, **method)  # type: ignore[arg-type]


def members(store: Store) -> dict[int, set[int]]:
    """Person id -> its faces."""
    out: dict[int, set[int]] = defaultdict(set)
    for f, p in store.face_persons().items():
        out[p].add(f)
    return dict(out)


def test_a_narrow_run_takes_no_face_from_a_named_person(store: Store, tmp_path: Path) -> None:
    # Issue 24: three named persons of 4 faces; `clusters --min-size 5`, then `clusters`.
    faces = library(store, tmp_path, {"A": 4, "B": 4, "C": 4})
    recluster(store)
    before = members(store)
    assert sorted(map(sorted, before.values())) == sorted(map(sorted, faces.values()))
    for k, pid in enumerate(sorted(before)):
        name_person(store, str(pid), f"Name {k}")
    narrow = recluster(store, min_size=5)
    assert members(store) == before and narrow.unknown == 0 and narrow.names_affected == ()
    again = recluster(store)
    assert members(store) == before
    assert (again.created, again.removed, again.merged, again.split) == ((), (), (), ())
    assert [row[:3] for row in store.person_summaries()] == [(p, f"Name {k}", 4) for k, p in enumerate(sorted(before))]


def test_ids_come_back_after_a_narrow_run(store: Store, tmp_path: Path) -> None:
    # Issue 25: unnamed persons keep their ids through `--min-size 5` (which leaves them
    # unknown) and then a default run.
    library(store, tmp_path, {"A": 4, "B": 3, "C": 6})
    recluster(store)
    before = members(store)
    narrow = recluster(store, min_size=5)
    kept = set(members(store))
    assert len(kept) == 1 and narrow.unknown == 7
    again = recluster(store)
    assert members(store) == before
    assert set(again.revived) == set(before) - kept and again.created == ()


def test_ids_come_back_after_a_loose_threshold_run(store: Store, tmp_path: Path) -> None:
    # A loose plain-whispers run puts everyone in one person; the default run gives each
    # group back its own id, not a new one.
    library(store, tmp_path, {"A": 4, "B": 3, "C": 3})
    recluster(store)
    before = members(store)
    loose_run(store)
    assert len(members(store)) == 1
    recluster(store)
    assert members(store) == before
    # Another round trip costs nothing either.
    recluster(store, min_size=4)
    loose_run(store)
    recluster(store)
    assert members(store) == before


def test_a_loose_run_does_not_bind_strangers_to_a_named_person(store: Store, tmp_path: Path) -> None:
    # The anchor is what the person had when named: faces a loose run gave it meanwhile
    # leave again at the next default run.
    faces = library(store, tmp_path, {"A": 4, "B": 3})
    recluster(store)
    a = store.face_persons()[faces["A"][0]]
    name_person(store, str(a), "Ann")
    loose_run(store)
    assert members(store) == {a: set(faces["A"]) | set(faces["B"])}
    recluster(store)
    assert members(store)[a] == set(faces["A"])
    assert set(faces["B"]) in list(members(store).values())


def test_a_named_person_keeps_what_it_had_when_named_not_what_a_run_gave_it(store: Store, tmp_path: Path) -> None:
    # Naming again re-anchors: the faces the person has now.
    faces = library(store, tmp_path, {"A": 4})
    recluster(store)
    a = store.face_persons()[faces["A"][0]]
    name_person(store, str(a), "Ann")
    (later,) = add_photo(store, tmp_path / "A-later.jpg", [near(fake_embedding("A"), 0.2, "later")])
    recluster(store)
    assert store.face_persons()[later] == a and later not in store.pins()
    name_person(store, str(a), "Ann Smith")
    assert store.pins() == dict.fromkeys([*faces["A"], later], a)
    recluster(store, min_size=50)
    assert members(store) == {a: {*faces["A"], later}}


# -- any sequence of runs and corrections ------------------------------------------------

PLAN = {"A": 4, "B": 3, "C": 3, "D": 2}
THRESHOLDS = [None, None, 0.3, 0.45, 0.6, 0.9, 1.9]
STEP = st.one_of(
    st.tuples(st.just("clusters"), st.integers(1, 6), st.sampled_from(THRESHOLDS)),
    st.tuples(st.just("name"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("merge"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("move"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("remove"), st.integers(0, 99), st.integers(0, 99)),
)


def _apply(store: Store, step: tuple[str, int, object], anchors: dict[int, set[int]], all_faces: list[int]) -> None:
    """Run one step; ``anchors`` (person -> the faces it must keep) follows the user's word."""
    kind, a, b = step
    now = members(store)
    persons = sorted(now)
    if kind == "clusters":
        assert isinstance(a, int)
        recluster(store, threshold=b if isinstance(b, float) else None, min_size=a)
        return
    assert isinstance(b, int)
    if kind == "name" and persons:
        pid = persons[a % len(persons)]
        name_person(store, str(pid), f"Name {pid}")
        anchors[pid] = set(now[pid])
    elif kind == "merge" and len(persons) >= 2:
        target, source = persons[a % len(persons)], persons[b % len(persons)]
        if target != source:
            merge_persons(store, str(target), [str(source)])
            anchors[target] = now[target] | now[source]
            anchors.pop(source, None)
    elif kind == "move" and persons:
        face, target = all_faces[a % len(all_faces)], persons[b % len(persons)]
        source = store.face_persons().get(face)
        if source != target:
            move_face(store, face, str(target))
            anchors[target] = now[target] | {face}
            if source in anchors:
                anchors[source].discard(face)
    elif kind == "remove":
        face = all_faces[a % len(all_faces)]
        source = store.face_persons().get(face)
        if source is not None:
            remove_face(store, face)
            if source in anchors:
                anchors[source].discard(face)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_no_sequence_of_runs_and_corrections_takes_a_face_from_a_named_or_corrected_person(
    steps: list[tuple[str, int, object]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "t.db") as store:
        faces = library(store, Path(tmp), PLAN)
        all_faces = sorted(f for fs in faces.values() for f in fs)
        recluster(store)
        anchors: dict[int, set[int]] = {}
        for step in steps:
            _apply(store, step, anchors, all_faces)
            now = members(store)
            names = store.person_names()
            for pid, anchor in anchors.items():
                # The person exists, keeps its name and every face it had when the user last
                # named or corrected it (but those the user moved or removed since).
                assert pid in names, (step, pid)
                assert anchor <= now.get(pid, set()), (step, pid, anchor, now.get(pid))
        # A default run after all of it keeps every anchor, and leaves no named person
        # without faces while its faces are someone else's.
        recluster(store)
        now = members(store)
        for pid, anchor in anchors.items():
            assert anchor <= now.get(pid, set())
