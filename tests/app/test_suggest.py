"""`suggest`: pairs of persons that may be one; yes merges, no keeps them apart; undo."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import fake_embedding, near
from photocluster.app.corrections import undo
from photocluster.app.recluster import recluster
from photocluster.app.suggest import answer, contact_sheet, suggest
from photocluster.cli import app, pictures
from photocluster.detect.thumbnail import THUMB_PARAMS
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


def _thumb(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def coloured(store: Store, split: Faces) -> Faces:
    """Ann's first part with red thumbnails, her second with blue ones; Bob's never cut."""
    rows = [(f, THUMB_PARAMS, _thumb((220, 0, 0))) for f in split["ann1"]]
    rows += [(f, THUMB_PARAMS, _thumb((0, 0, 220))) for f in split["ann2"]]
    store.put_thumbnails(rows)
    return split


def test_the_contact_sheet_shows_both_persons_side_by_side(store: Store, coloured: Faces) -> None:
    s = suggest(store)[0]
    reds = {_person_of(store, f) for f in coloured["ann1"]}
    with Image.open(io.BytesIO(contact_sheet(store, [(1, s)]))) as sheet:
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    half = pixels.shape[1] // 2
    red = (pixels[..., 0] > 180) & (pixels[..., 2] < 60)
    blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 60)
    left, right = (red, blue) if s.a in reds else (blue, red)
    # Three faces each (all each person has), on its own side only.
    assert left[:, :half].sum() > 3 * 80 * 80 and left[:, half:].sum() == 0
    assert right[:, half:].sum() > 3 * 80 * 80 and right[:, :half].sum() == 0


def test_ask_shows_the_faces_asks_again_and_ends_with_a_summary(
    store: Store, coloured: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(pictures, "open_in_viewer", lambda path: opened.append(path) or True)
    s = suggest(store)[0]
    asked = CliRunner().invoke(app, ["suggest", "--db", str(store.path), "--ask"], input="maybe\ny\n")
    assert asked.exit_code == 0, asked.output
    err = asked.stderr
    assert f"The faces of each pair, numbered as asked: {opened[0]} (opened)" in err
    assert opened[0].read_bytes().startswith(b"\x89PNG")
    # An answer that is not one is asked again (it used to be taken as "skip").
    assert "'maybe'? Answer y (the same person: merge them)" in err
    assert err.count("#1 of 1: the same person?") == 2
    assert asked.stdout.endswith(
        "Merged 1 pair:\n"
        f"  person {s.b} joined person {s.a} (none of them had a name)\n"
        "Kept nothing apart.\n"
        "`photocluster history` lists these answers; `photocluster undo` reverts the latest.\n"
    )
    assert suggest(store) == []


def test_ask_quit_changes_nothing(store: Store, coloured: Faces) -> None:
    asked = CliRunner().invoke(app, ["suggest", "--db", str(store.path), "--ask", "--no-show"], input="q\n")
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.endswith("Nothing changed (1 pair skipped).\n")
    assert "(opened)" not in asked.stderr
    assert len(suggest(store)) == 1
