"""Corrections made while `clusters` or recognition computes are never undone, and never
make the write-back fail: real SQLite, the correction through a second connection, made
between the snapshot and the write-back (the compute step is wrapped to make it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import fake_embedding, near
from photocluster.app import recluster as recluster_module
from photocluster.app import recognise as recognise_module
from photocluster.app.corrections import merge_persons, move_face, name_person, remove_face
from photocluster.app.recluster import recluster
from photocluster.app.recognise import assign_new_faces
from photocluster.cli import app
from photocluster.core import errors
from photocluster.store import Store

from .conftest import add_photo


def person(store: Store, face_id: int) -> int | None:
    return store.face_persons().get(face_id)


@pytest.fixture
def during_clusters(store: Store, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[int]]:
    def install(correction: Callable[[Store], None], times: int = 1) -> list[int]:
        return _install(monkeypatch, recluster_module, "assign_persons", store.path, correction, times)

    return install


@pytest.fixture
def during_recognition(store: Store, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[int]]:
    def install(correction: Callable[[Store], None], times: int = 1) -> list[int]:
        return _install(monkeypatch, recognise_module, "_blocked_knn", store.path, correction, times)

    return install


def _install(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    db: Path,
    correction: Callable[[Store], None],
    times: int,
) -> list[int]:
    real = getattr(module, name)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) <= times:
            with Store(db) as other:
                correction(other)
        return result

    monkeypatch.setattr(module, name, wrapped)
    return calls


def test_a_move_made_while_clusters_runs_survives(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    b = person(store, people["B"][0])
    moved = people["A"][0]
    calls = during_clusters(lambda other: move_face(other, moved, str(b)))
    recluster(store, 0.6, 1, method="whispers", full=True)
    assert len(calls) == 2  # grouped again, from the corrected state
    assert person(store, moved) == b
    assert store.pins() == dict.fromkeys([moved, *people["B"]], b)


def test_a_name_given_while_clusters_runs_needs_no_second_grouping(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    a = person(store, people["A"][0])
    calls = during_clusters(lambda other: name_person(other, str(a), "Ann"))
    recluster(store, 0.6, 1, method="whispers", full=True)
    assert len(calls) == 1
    assert store.person_names()[a] == "Ann"


def test_a_name_given_while_a_narrow_run_computes_keeps_its_faces(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    # The plan (min-size 5) leaves A unknown; A is named meanwhile, which pins its faces:
    # the write-back refuses the plan and the grouping runs again, with the pins.
    a = person(store, people["A"][0])
    calls = during_clusters(lambda other: name_person(other, str(a), "Ann"))
    recluster(store, min_size=5)
    assert len(calls) == 2
    assert {person(store, f) for f in people["A"]} == {a} and store.person_names()[a] == "Ann"


def test_a_remove_made_while_clusters_runs_survives(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    a = person(store, people["A"][0])
    removed = people["A"][1]
    during_clusters(lambda other: remove_face(other, removed))
    recluster(store, 0.6, 1, method="whispers", full=True)
    assert person(store, removed) != a
    assert store.rejections() == [(removed, a)]


def test_a_merge_made_while_clusters_runs_holds_and_the_write_does_not_fail(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    b, c = person(store, people["B"][0]), person(store, people["C"][0])
    during_clusters(lambda other: merge_persons(other, str(b), [str(c)]))
    recluster(store, 0.6, 1, method="whispers", full=True)  # before: sqlite3.IntegrityError (person c no longer exists)
    assert {person(store, f) for f in people["B"] + people["C"]} == {b}
    assert c not in store.person_names()


def test_corrections_that_never_stop_end_in_one_clear_error(
    store: Store, people: dict[str, list[int]], during_clusters: Callable[..., list[int]]
) -> None:
    b, c = person(store, people["B"][0]), person(store, people["C"][0])
    targets = iter([b, c] * 50)
    during_clusters(lambda other: move_face(other, people["A"][0], str(next(targets))), times=100)
    before = store.face_persons()
    with pytest.raises(errors.ConcurrentChangeError, match="clustering gave up"):
        recluster(store, 0.6, 1, method="whispers", full=True)
    # Three groupings, three moves (to B, C, B) meanwhile, and nothing written but the moves.
    assert store.face_persons() == {**before, people["A"][0]: b}
    result = CliRunner().invoke(app, ["clusters", "--threshold", "0.6", "--db", str(store.path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: clustering gave up") and len(result.stderr.strip().splitlines()) == 1


def test_a_merge_made_while_recognition_runs_holds_and_the_write_does_not_fail(
    store: Store, people: dict[str, list[int]], tmp_path: Path, during_recognition: Callable[..., list[int]]
) -> None:
    a, b = person(store, people["A"][0]), person(store, people["B"][0])
    name_person(store, str(a), "Ann")
    (new,) = add_photo(store, tmp_path / "later.jpg", [near(fake_embedding("A"), 0.25, "later")])
    during_recognition(lambda other: merge_persons(other, str(b), [str(a)]))
    assert assign_new_faces(store, 0.6) == 1  # before: sqlite3.IntegrityError (person a is gone)
    assert person(store, new) == b and store.person_names()[b] == "Ann"


def test_a_move_made_while_recognition_runs_is_not_written_over(
    store: Store, people: dict[str, list[int]], tmp_path: Path, during_recognition: Callable[..., list[int]]
) -> None:
    a, c = person(store, people["A"][0]), person(store, people["C"][0])
    name_person(store, str(a), "Ann")
    (new,) = add_photo(store, tmp_path / "later.jpg", [near(fake_embedding("A"), 0.25, "later")])
    during_recognition(lambda other: move_face(other, new, str(c)))
    assert assign_new_faces(store, 0.6) == 0
    assert person(store, new) == c


def test_an_sqlite_error_in_any_command_is_one_line(
    store: Store, people: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    # Rows read while iterating a cursor are where the store leaves SQLite's errors as they
    # are: the CLI translates whatever escapes.
    monkeypatch.setattr(Store, "person_names", broken)
    monkeypatch.setattr(Store, "history", broken)
    for args in (["clusters", "--threshold", "0.6"], ["history"]):
        result = CliRunner().invoke(app, [*args, "--db", str(store.path)])
        assert (result.exit_code, result.stdout) == (1, ""), args
        assert result.stderr == "Error: database error (disk I/O error)\n", args


def test_store_statements_raise_database_errors(store: Store) -> None:
    with pytest.raises(errors.DatabaseError, match=r"test\.db: database error \(no such table: nope\)"):
        store.conn.execute("SELECT * FROM nope")
    # Another process holding the write lock past the busy timeout: BusyError, one line.
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        store.conn.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(errors.DatabaseError, match="cannot write to the database"):
            store.check_writable()
        with pytest.raises(errors.BusyError, match="another process kept the database locked"):
            store.conn.execute("INSERT INTO settings(key, value) VALUES ('k', 'v')")
    finally:
        other.execute("ROLLBACK")
        other.close()
