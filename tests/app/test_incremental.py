"""Incremental clustering: the faces a scan adds to a clustered library are placed, by the
same rules as a full run, without moving any face already in a person."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import photocluster.app.recluster as recluster_module
from conftest import fake_embedding, near
from photocluster.app.corrections import move_face, name_person
from photocluster.app.recluster import _changes, _read_library, recluster
from photocluster.cli import app
from photocluster.eval.metrics import pairwise
from photocluster.grouping import Policy
from photocluster.store import Store

from .conftest import add_photo

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from cluster_scale import Library, stored_persons, synthetic


def _library(store: Store, tmp_path: Path, people: dict[str, int], tag: str = "") -> dict[str, list[int]]:
    """Photos of one face each: ``people`` name -> how many, 0.2 from the person's centre."""
    faces: dict[str, list[int]] = {}
    for who, count in people.items():
        centre = fake_embedding(who)
        for k in range(count):
            faces.setdefault(who, []).extend(
                add_photo(store, tmp_path / f"{who}{tag}{k}.jpg", [near(centre, 0.2, f"{who}{tag}{k}")])
            )
    return faces


def _person(store: Store, face_id: int) -> int | None:
    return store.face_persons().get(face_id)


def test_new_faces_join_their_persons_and_strangers_form_a_new_one(store: Store, tmp_path: Path) -> None:
    old = _library(store, tmp_path, {"ann": 12, "bob": 10, "cid": 8})
    first = recluster(store)
    assert first.mode == "full" and first.why == "no earlier clustering" and first.persons == 3
    before = store.face_persons()
    new = _library(store, tmp_path, {"ann": 2, "bob": 1, "dee": 3}, tag="new")
    report = recluster(store)
    assert report.mode == "incremental" and report.faces_added == 6
    assert "6 new faces" in report.why
    after = store.face_persons()
    # Nothing already placed moved.
    assert {f: after.get(f) for f in before} == before
    for who in ("ann", "bob"):
        assert {after[f] for f in new[who]} == {before[old[who][0]]}
    dee = {after.get(f) for f in new["dee"]}
    assert len(dee) == 1 and None not in dee and dee.isdisjoint(before.values())
    assert report.persons == 4 and report.new_persons == 1 and report.faces_new == 6


def test_named_and_pinned_faces_never_move(store: Store, tmp_path: Path) -> None:
    old = _library(store, tmp_path, {"ann": 10, "bob": 10})
    recluster(store)
    ann, bob = _person(store, old["ann"][0]), _person(store, old["bob"][0])
    name_person(store, str(ann), "Ann")
    # An Ann face the user put in Bob's person stays there, even with Ann's faces coming in.
    move_face(store, old["ann"][1], str(bob))
    recluster(store)  # corrections since: full, the move binding
    assert _person(store, old["ann"][1]) == bob
    before = store.face_persons()
    new = _library(store, tmp_path, {"ann": 4}, tag="new")
    report = recluster(store)
    assert report.mode == "incremental"
    after = store.face_persons()
    assert {f: after.get(f) for f in before} == before
    assert {after[f] for f in new["ann"]} == {ann}
    assert store.person_names()[ann] == "Ann"


def test_a_new_face_stays_out_of_the_person_in_its_photo(store: Store, tmp_path: Path) -> None:
    old = _library(store, tmp_path, {"ann": 10})
    recluster(store)
    ann = _person(store, old["ann"][0])
    # Two faces of Ann in one new photo: one of them joins Ann, the other cannot.
    centre = fake_embedding("ann")
    pair = add_photo(store, tmp_path / "twice.jpg", [near(centre, 0.2, "t1"), near(centre, 0.2, "t2")])
    assert recluster(store).mode == "incremental"
    persons = [_person(store, f) for f in pair]
    assert persons.count(ann) == 1


def _chain(store: Store, tmp_path: Path) -> tuple[list[int], int]:
    """A library of two persons and a stranger photographed twice (two faces 0.31 apart: a
    cluster too small for ``min_size=3``), clustered; then a new photo of the stranger,
    0.31 from one of the two and 0.62 from the other, beyond the neighbour graph's reach
    (0.6): returns (the two old faces, the new face)."""
    _library(store, tmp_path, {"ann": 12, "bob": 10})
    base = fake_embedding("stranger")
    step = near(base, 0.31, "chain") - base  # one direction, both ways
    old = [*add_photo(store, tmp_path / "s1.jpg", [base - step]), *add_photo(store, tmp_path / "s2.jpg", [base])]
    assert recluster(store, min_size=3).mode == "full"
    assert _person(store, old[0]) is None and _person(store, old[1]) is None
    (new,) = add_photo(store, tmp_path / "s3.jpg", [base + step])
    return old, new


def test_a_face_in_no_person_a_new_face_joins_brings_its_own_neighbours(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new face reaches the nearer old face only; a full run links the chain (new - near
    # - far) and makes the three one person. An incremental run's first grouping puts the
    # nearer face with the new one, so its own neighbours are searched: the far face too.
    old, new = _chain(store, tmp_path)
    searched: list[int] = []
    real = recluster_module.query_neighbourhoods

    def spy(emb: np.ndarray, queries: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        searched.append(len(queries))
        return real(emb, queries, *args, **kwargs)

    monkeypatch.setattr(recluster_module, "query_neighbourhoods", spy)
    report = recluster(store, min_size=3)
    assert report.mode == "incremental" and report.new_persons == 1
    assert _person(store, new) is not None and _person(store, new) == _person(store, old[0]) == _person(store, old[1])
    # The new face, then the face in no person grouped with it, then the far face its
    # neighbourhood brought in: one at a time, never the persons' faces.
    assert searched == [1, 1, 1]


def test_without_the_neighbours_of_the_faces_it_joins_a_new_face_stays_unknown(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case above needs those neighbourhoods: without them the chain is cut.
    old, new = _chain(store, tmp_path)
    monkeypatch.setattr(recluster_module, "EXPAND_ROUNDS", 0)
    assert recluster(store, min_size=3).mode == "incremental"
    assert _person(store, new) is None and _person(store, old[1]) is None
    full = recluster(store, min_size=3, full=True)
    assert full.mode == "full" and _person(store, new) == _person(store, old[1]) is not None


def test_full_is_asked_for_or_follows_a_change_of_settings(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 5, "bob": 5})
    recluster(store)
    assert recluster(store, full=True).why == "asked for (--full)"
    assert recluster(store).mode == "incremental"
    changed = recluster(store, threshold=0.5)
    assert changed.mode == "full" and "settings changed" in changed.why
    assert recluster(store, threshold=0.5, min_size=3).mode == "full"
    assert recluster(store, threshold=0.5, min_size=3, method="whispers").mode == "full"
    assert recluster(store, threshold=0.5, min_size=3, method="whispers").mode == "incremental"


def test_many_new_faces_make_a_full_run(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 5, "bob": 5})
    recluster(store)
    _library(store, tmp_path, {"ann": 2, "cid": 1}, tag="new")  # 3 new faces: over 20% of 13
    report = recluster(store)
    assert report.mode == "full" and "more than 20%" in report.why


def test_the_command_says_which_run_and_full_forces_one(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 5, "bob": 5})
    runner = CliRunner()
    db = str(store.path)
    first = runner.invoke(app, ["clusters", "--db", db])
    assert first.exit_code == 0, first.output
    assert "Full run: no earlier clustering" in first.stdout
    _library(store, tmp_path, {"ann": 1}, tag="new")
    again = runner.invoke(app, ["clusters", "--db", db, "--json"])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert (doc["mode"], doc["faces_added"], doc["faces_new"]) == ("incremental", 1, 1)
    forced = runner.invoke(app, ["clusters", "--db", db, "--full"])
    assert forced.exit_code == 0, forced.output
    assert "Full run: asked for (--full)" in forced.stdout


@pytest.mark.parametrize("method", ["two-stage", "whispers"])
def test_placing_agrees_with_a_full_run_on_a_synthetic_library(tmp_path: Path, method: str) -> None:
    emb, truth = synthetic(6000, seed=3)
    lib = Library.of(emb, truth, seed=3)
    n = lib.cut(0.97)
    db, full_db = tmp_path / "inc.db", tmp_path / "full.db"
    lib.write(db, 0, n)
    with Store(db) as store:
        recluster(store, method=method)
    lib.write(db, n)
    full_db.write_bytes(db.read_bytes())
    with Store(db) as store:
        report = recluster(store, method=method)
    assert report.mode == "incremental" and report.faces_added == len(emb) - n
    with Store(full_db) as store:
        assert recluster(store, method=method, full=True).mode == "full"
    placed, everything = stored_persons(db), stored_persons(full_db)
    assert np.array_equal(placed[:, 0], everything[:, 0])
    assert pairwise(everything[:, 1], placed[:, 1]).f1 >= 0.99
    new = placed[:, 0] > n
    assert pairwise(everything[new, 1], placed[new, 1]).f1 >= 0.99


def test_a_full_run_keeps_its_search_lists_and_the_next_runs_search_with_them(tmp_path: Path) -> None:
    # 12,000 faces: past every-distance search, so the full run uses an inverted file and
    # keeps it; 1,800 new faces (15%) are searched in its lists, and agree with a full run.
    emb, truth = synthetic(13_800, seed=8)
    lib = Library.of(emb, truth, seed=8)
    n = lib.cut(12_000 / 13_800)
    db, full_db = tmp_path / "inc.db", tmp_path / "full.db"
    lib.write(db, 0, n)
    with Store(db) as store:
        recluster(store)
        kept = store.search_lists()
        assert kept is not None
        centres, ids, lists = kept
        assert (
            ids.tolist() == list(range(1, n + 1)) and lists.shape == (n, 3) and len(centres) == 16
        )  # lists of ~1,000 faces, 16 at least
    lib.write(db, n)
    full_db.write_bytes(db.read_bytes())
    with Store(db) as store:
        assert recluster(store).mode == "incremental"
        kept = store.search_lists()
        # The new faces' lists are kept too, from the same centres.
        assert kept is not None and kept[1].tolist() == list(range(1, len(emb) + 1))
        assert np.array_equal(kept[0], centres) and np.array_equal(kept[2][:n], lists)
    with Store(full_db) as store:
        recluster(store, full=True)
    placed, everything = stored_persons(db), stored_persons(full_db)
    assert pairwise(everything[:, 1], placed[:, 1]).f1 >= 0.99
    new = placed[:, 0] > n
    assert pairwise(everything[new, 1], placed[new, 1]).f1 >= 0.99


def test_search_lists_that_do_not_fit_are_rebuilt_by_the_next_full_run(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 6, "bob": 6})
    recluster(store)
    assert store.search_lists() is None  # a dozen faces: every distance, nothing kept
    # Lists of a different index (centres it does not have): an incremental run ignores them.
    store.save_search_lists(np.zeros((2, 128), np.float32), np.array([1, 2]), np.array([[5, 0, 1], [0, 1, 1]]))
    new = _library(store, tmp_path, {"ann": 2}, tag="new")
    assert recluster(store).mode == "incremental"
    assert {_person(store, f) for f in new["ann"]} == {_person(store, 1)}
    recluster(store, full=True)
    assert store.search_lists() is None


def _crowd(rng: np.random.Generator, centres: np.ndarray, per: int) -> np.ndarray:
    """``per`` photos of each child, 0.08 from the child's centre."""
    x = rng.normal(size=(len(centres) * per, 128))
    out: np.ndarray = np.repeat(centres, per, axis=0) + 0.08 * x / np.linalg.norm(x, axis=1, keepdims=True)
    return out.astype(np.float32)


def _children_library() -> tuple[Library, int]:
    """Adults (the synthetic library) and 200 children, two photos each, packed together as
    dlib packs children's faces (two children ~0.44 apart, the closest ~0.35); then 100 more
    children, two photos each, added: 6% of the library."""
    emb, truth = synthetic(2000, seed=4)
    rng = np.random.default_rng(4)
    unit = rng.normal(size=(301, 128))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    centres = 0.6 * unit[0] + 0.31 * unit[1:]
    kids = 100_000 + np.arange(300)
    old = Library.of(np.vstack([emb, _crowd(rng, centres[:200], 2)]), np.r_[truth, np.repeat(kids[:200], 2)], seed=4)
    order = rng.permutation(200)
    new_emb, new_truth = _crowd(rng, centres[200:], 2)[order], np.repeat(kids[200:], 2)[order]
    photos = old.photo.max() + 1 + np.arange(200)
    lib = Library(np.vstack([old.emb, new_emb]), np.r_[old.truth, new_truth], np.r_[old.photo, photos])
    return lib, len(old.emb)


def _children_mixed(truth: np.ndarray, persons: np.ndarray, faces: np.ndarray) -> int:
    """How many persons hold ``faces`` (indices) of two or more different children."""
    kids = {}
    for t, p in zip(truth[faces].tolist(), persons[faces].tolist(), strict=True):
        kids.setdefault(p, set()).add(t)
    return sum(1 for ts in kids.values() if len(ts) > 1)


def test_new_children_placed_in_a_crowd_stay_apart_as_in_a_full_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, n = _children_library()
    old = tmp_path / "old.db"
    lib.write(old, 0, n)
    with Store(old) as store:
        recluster(store)
    full_db = tmp_path / "full.db"
    full_db.write_bytes(old.read_bytes())
    lib.write(full_db, n)
    with Store(full_db) as store:
        assert recluster(store, full=True).mode == "full"
    everything = stored_persons(full_db)
    new = np.flatnonzero(everything[:, 0] > n)
    # The full run keeps every new child apart (the crowding factor at work).
    assert _children_mixed(lib.truth, everything[:, 1], new) == 0

    def placed(tag: str) -> np.ndarray:
        db = tmp_path / f"{tag}.db"
        db.write_bytes(old.read_bytes())
        lib.write(db, n)
        with Store(db) as store:
            assert recluster(store).mode == "incremental"
        return stored_persons(db)[:, 1]

    persons = placed("incremental")
    assert _children_mixed(lib.truth, persons, new) == 0
    assert pairwise(everything[new, 1], persons[new]).f1 >= 0.99
    assert pairwise(everything[:, 1], persons).f1 >= 0.99
    # The case is crowded enough to need the factor: placed without it, children merge.
    monkeypatch.setattr("photocluster.app.recluster.crowding_of_new", lambda *args, **kwargs: None)
    assert _children_mixed(lib.truth, placed("without"), new) > 0


def test_the_report_counts_what_the_store_holds_after_an_incremental_run(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 20, "bob": 12, "cid": 1})
    recluster(store)
    _library(store, tmp_path, {"ann": 2, "dee": 3, "eve": 1}, tag="new")
    report = recluster(store)
    assert report.mode == "incremental"
    stored = store.face_persons()
    faces = store.active_embeddings()[0].tolist()
    assert report.persons == len({stored[f] for f in faces if stored.get(f) is not None})
    assert report.unknown == sum(1 for f in faces if stored.get(f) is None) == 2  # cid and eve alone
    assert report.faces == len(faces)


def test_the_persons_read_for_some_faces_are_those_the_library_holds(store: Store, tmp_path: Path) -> None:
    _library(store, tmp_path, {"ann": 6, "bob": 1})
    recluster(store)
    lib = _read_library(store, Policy())
    previous = lib.previous
    asked = [*lib.face_ids[::2].tolist(), 10_000]  # one face the library does not hold
    assert lib.previous_of(asked) == {f: previous[f] for f in asked if f in previous}
    assert len(lib.previous_of(asked)) == sum(1 for f in asked if f in previous) > 0
    assert lib.previous_of([]) == {}


def test_a_run_writes_the_faces_whose_person_changes() -> None:
    assert _changes({1: 5, 2: None, 3: -1, 4: 7}, {1: 5, 4: 6}) == {3: -1, 4: 7}
