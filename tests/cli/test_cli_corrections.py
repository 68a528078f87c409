"""Corrections in the terminal: undo says what it reverts and asks, `undo ID`, history when
empty, a name another person has already, and what a merge does with the names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, write_photo
from photocluster.cli import app
from photocluster.cli import corrections as correction_commands

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path, fake_embedder: FakeEmbedder) -> str:
    """Three persons of three photos each (red, green, blue), clustered."""
    root = tmp_path / "lib"
    for k in range(3):
        write_photo(root / f"red{k}.jpg", (200, 20, 20))
        write_photo(root / f"green{k}.jpg", (20, 200, 20))
        write_photo(root / f"blue{k}.jpg", (20, 20, 200))
    path = str(tmp_path / "c.db")
    assert run("scan", str(root), "--db", path, "--workers", "1", "--json")[0] == 0
    code, out, err = run("clusters", "--db", path, "--json")
    assert code == 0, err
    assert [p["faces"] for p in json.loads(out)["persons_list"]] == [3, 3, 3]
    return path


@pytest.fixture
def at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if stdin were a terminal: the commands ask (CliRunner's input answers)."""
    monkeypatch.setattr(correction_commands, "can_ask", lambda: True)


def test_history_says_when_there_are_no_corrections_yet(tmp_path: Path) -> None:
    code, out, _ = run("history", "--db", str(tmp_path / "empty.db"))
    assert code == 0
    assert out.startswith("No corrections yet")
    assert json.loads(run("history", "--db", str(tmp_path / "empty.db"), "--json")[1]) == []


def test_undo_without_a_terminal_says_what_it_would_revert_and_needs_yes(db: str) -> None:
    assert run("name", "1", "Ann", "--db", db)[0] == 0
    code, out, err = run("undo", "--db", db)
    assert code == 2 and out == ""
    assert err.startswith("Error: undo would revert #1 name 1 'Ann' (made ")
    assert "add --yes" in err and len(err.splitlines()) == 1
    assert run("faces", "Ann", "--db", db)[0] == 0  # nothing was undone
    code, out, _ = run("undo", "--yes", "--db", db)
    assert (code, out) == (0, "Undone: #1 name 1 'Ann'\n")


def test_undo_after_undone_entries_shows_the_older_one_and_asks(db: str, at_a_terminal: None) -> None:
    run("name", "1", "Ann", "--db", db)
    run("name", "2", "Bob", "--db", db)
    assert run("undo", "--yes", "--db", db)[1] == "Undone: #2 name 2 'Bob'\n"
    # The next undo reverts #1, not #2 again: it says so, and a "no" leaves it.
    code, out, err = run("undo", "--db", db, stdin="n\n")
    assert code == 1 and "Undone" not in out  # (CliRunner echoes the answer on stdout)
    assert "Already undone since: #2 name 2 'Bob'." in err
    assert "Undo #1 name 1 'Ann' (made " in err and "Nothing undone." in err
    assert run("faces", "Ann", "--db", db)[0] == 0
    code, out, err = run("undo", "--db", db, stdin="y\n")
    assert code == 0 and out.endswith("Undone: #1 name 1 'Ann'\n"), err
    code, _, err = run("undo", "--yes", "--db", db)
    assert code == 2 and err.startswith("Error: nothing to undo")


def test_undo_id_reverts_that_correction_or_says_why_not(db: str) -> None:
    run("name", "1", "Ann", "--db", db)  # 1
    run("name", "3", "Cy", "--db", db)  # 2
    run("merge", "1", "2", "--db", db)  # 3, changes person 1 after #1
    code, _, err = run("undo", "1", "--yes", "--db", db)
    assert code == 2
    assert err == (
        "Error: correction #1 (name 1 'Ann') cannot be undone while later corrections of the same persons "
        "or faces stand: undo #3 (merge 1 2) first\n"
    )
    # #2 touched person 3 only: it is reverted alone, the later merge stays.
    code, out, err = run("undo", "2", "--yes", "--db", db)
    assert (code, out) == (0, "Undone: #2 name 3 'Cy'\n"), err
    assert run("faces", "Cy", "--db", db)[0] == 2
    assert len(json.loads(run("faces", "Ann", "--db", db, "--json")[1])) == 6
    assert run("undo", "2", "--yes", "--db", db)[2] == "Error: correction #2 (name 3 'Cy') is already undone\n"
    assert run("undo", "99", "--yes", "--db", db)[2] == "Error: no correction #99 (see `photocluster history`)\n"
    assert run("undo", "3", "--yes", "--db", db)[0] == 0
    assert run("undo", "1", "--yes", "--db", db)[0] == 0
    code, out, _ = run("history", "--db", db)
    assert code == 0 and out.count("undone") == 3


def test_history_marks_the_next_undo(db: str) -> None:
    run("name", "1", "Ann", "--db", db)
    run("name", "2", "Bob", "--db", db)
    run("undo", "--yes", "--db", db)
    lines = run("history", "--db", db)[1].splitlines()
    row = {line.split()[1]: line for line in lines if line.split()[1:2] in (["1"], ["2"])}
    assert "undone" in row["2"] and "next undo" in row["1"]


def test_a_name_another_person_has_is_refused_without_a_terminal(db: str) -> None:
    run("name", "1", "Barack Obama", "--db", db)
    code, out, err = run("name", "2", "barack obama", "--db", db)
    assert code == 2 and out == ""
    assert err == (
        "Error: person 1 is already named 'Barack Obama': if it is the same person, "
        "`photocluster merge 1 2` makes them one (or add --merge); --duplicate names both\n"
    )
    # Nothing changed: the name still finds its one person.
    assert len(json.loads(run("faces", "Barack Obama", "--db", db, "--json")[1])) == 3


def test_a_name_another_person_has_offers_the_merge(db: str, at_a_terminal: None) -> None:
    run("name", "1", "Barack Obama", "--db", db)
    run("name", "2", "Obama", "--db", db)
    code, out, err = run("name", "2", "Barack Obama", "--db", db, stdin="n\n")
    assert code == 1 and "Person 1 is already named 'Barack Obama'." in err and "Nothing changed" in err
    code, out, err = run("name", "2", "Barack Obama", "--db", db, stdin="y\n")
    assert code == 0, err
    assert out.endswith(
        "Done: merge 1 2 (6 faces): person 2 joined person 1; the name 'Barack Obama' stays, "
        "'Obama' (person 2) goes. `photocluster undo` reverts it.\n"
    )
    assert len(json.loads(run("faces", "Barack Obama", "--db", db, "--json")[1])) == 6


def test_name_merge_and_duplicate_options(db: str) -> None:
    run("name", "1", "Ann", "--db", db)
    code, out, _ = run("name", "2", "Ann", "--merge", "--db", db, "--json")
    assert code == 0
    assert json.loads(out)["command"] == "merge 1 2"
    code, out, _ = run("name", "3", "Ann", "--duplicate", "--db", db)
    assert code == 0 and out.startswith("Done: name 3 'Ann' (3 faces).")
    code, _, err = run("faces", "Ann", "--db", db)
    assert code == 2 and "2 persons are named 'Ann'" in err


def test_merge_says_which_name_stays_and_which_goes(db: str) -> None:
    run("name", "2", "Bob", "--db", db)
    run("name", "3", "Bobby", "--db", db)
    code, out, _ = run("merge", "1", "2", "3", "--db", db)
    assert code == 0
    assert out == (
        "Done: merge 1 2 3 (9 faces): person 2 and person 3 joined person 1; the name 'Bob' stays "
        "(person 2's), 'Bobby' (person 3) goes. `photocluster undo` reverts it.\n"
    )


def test_faces_is_headed_by_the_name(db: str) -> None:
    run("name", "1", "Barack Obama", "--db", db)
    out = run("faces", "Barack Obama", "--db", db)[1]
    assert out.splitlines()[0].strip() == "Barack Obama (person 1): 3 faces, most doubtful first"
    assert run("faces", "2", "--db", db)[1].splitlines()[0].strip() == "person 2: 3 faces, most doubtful first"
