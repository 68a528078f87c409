"""`suggest`: pairs of persons that may be one; yes merges, no keeps them apart; undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import fake_embedding, near
from photocluster.app.corrections import undo
from photocluster.app.recluster import recluster
from photocluster.app.suggest import answer, suggest
from photocluster.cli import app
from photocluster.store import Store

from .conftest import add_photo

Faces = dict[str, list[int]]


def _person_of(store: Store, face_id: int) -> int | None:
    row = store.face_row(face_id)
    assert row is not None
    return row[1]


@pytest.fixture
def split(store: Store, tmp_path: Path) -> dict[str, list[int]]:
    """Ann seen twice in two ways (two persons a clustering at 0.3 keeps apart), Bob far away."""
    ann, bob = fake_embedding("ann"), fake_embedding("bob")
    faces = {
        "ann1": [f for k in range(3) for f in add_photo(store, tmp_path / f"a{k}.jpg", [near(ann, 0.1, f"a{k}")])],
        "ann2": [
            f
            for k in range(3)
            for f in add_photo(store, tmp_path / f"b{k}.jpg", [near(near(ann, 0.3, "side"), 0.1, f"b{k}")])
        ],
        "bob": [f for k in range(3) for f in add_photo(store, tmp_path / f"c{k}.jpg", [near(bob, 0.1, f"c{k}")])],
    }
    recluster(store, 0.25, 2, method="whispers")
    persons = {name: {_person_of(store, f) for f in ids} for name, ids in faces.items()}
    assert all(len(p) == 1 and None not in p for p in persons.values())
    assert len({next(iter(p)) for p in persons.values()}) == 3
    return faces


def test_the_two_parts_of_one_person_come_first_and_strangers_not_at_all(store: Store, split: Faces) -> None:
    found = suggest(store)
    a, b = _person_of(store, split["ann1"][0]), _person_of(store, split["ann2"][0])
    assert [(s.a, s.b) for s in found] == [(min(a, b), max(a, b))]  # type: ignore[type-var]
    assert 0.2 < found[0].distance < 0.6 and found[0].faces == (3, 3)


def test_yes_merges_and_undo_splits_again(store: Store, split: Faces) -> None:
    s = suggest(store)[0]
    answer(store, str(s.a), str(s.b), same=True)
    assert {_person_of(store, f) for f in split["ann1"] + split["ann2"]} == {s.a}
    recluster(store, 0.25, 2, method="whispers")  # the merge binds later clusterings
    assert {_person_of(store, f) for f in split["ann1"] + split["ann2"]} == {s.a}
    assert suggest(store) == []
    undo(store)
    assert len({_person_of(store, f) for f in split["ann1"] + split["ann2"]}) == 2


def test_no_keeps_them_apart_even_at_a_loose_threshold_and_is_never_asked_again(store: Store, split: Faces) -> None:
    s = suggest(store)[0]
    answer(store, str(s.a), str(s.b), same=False)
    assert suggest(store) == []
    recluster(store, 0.9, 2, method="whispers")  # loose enough to join Ann's two parts, but for the "no"
    assert _person_of(store, split["ann1"][0]) != _person_of(store, split["ann2"][0])
    assert None not in {_person_of(store, f) for f in split["ann1"] + split["ann2"]}
    undo(store)
    recluster(store, 0.9, 2, method="whispers")
    assert _person_of(store, split["ann1"][0]) == _person_of(store, split["ann2"][0])


def test_persons_sharing_a_photo_are_never_suggested(store: Store, tmp_path: Path) -> None:
    ann = fake_embedding("ann")
    for k in range(3):
        add_photo(store, tmp_path / f"p{k}.jpg", [near(ann, 0.1, f"x{k}"), near(near(ann, 0.3, "twin"), 0.1, f"y{k}")])
    recluster(store, 0.25, 2, method="whispers")
    assert len({f.person_id for p in range(1, 4) for f in store.photo_faces(p)}) == 2
    assert suggest(store) == []


def test_the_command_lists_and_asks(store: Store, split: Faces, tmp_path: Path) -> None:
    db = str(store.path)
    runner = CliRunner()
    listed = runner.invoke(app, ["suggest", "--db", db, "--json"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 1
    asked = runner.invoke(app, ["suggest", "--db", db, "--ask"], input="n\n")
    assert asked.exit_code == 0, asked.output
    assert "apart" in asked.stderr
    history = runner.invoke(app, ["history", "--db", db, "--json"])
    assert "apart" in history.stdout
    assert json.loads(runner.invoke(app, ["suggest", "--db", db, "--json"]).stdout) == []
