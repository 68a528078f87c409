"""`clusters --threshold T [--method M]`: the operating point, stored and said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import fake_embedding, make_face, near
from photocluster.app.browse import threshold_of
from photocluster.cli import app
from photocluster.store import Store

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two people, three photos each, and one photo of both (a same-photo pair for the self-check)."""
    path = tmp_path / "lib.db"
    with Store(path) as store:
        scan_id = store.begin_scan([tmp_path], "fake")
        k = 0
        for who in ("ann", "bob"):
            for n in range(3):
                k += 1
                emb = near(fake_embedding(who), 0.2, f"{who}{n}")
                store.save_photo(
                    tmp_path / f"{who}{n}.jpg",
                    1,
                    1,
                    f"sha{k}",
                    scan_id,
                    "fake",
                    width=100,
                    height=100,
                    faces=[make_face(emb)],
                )
        both = [
            make_face(near(fake_embedding(w), 0.2, f"{w}-g"), box)
            for w, box in (("ann", (0, 0, 40, 40)), ("bob", (50, 0, 90, 40)))
        ]
        store.save_photo(tmp_path / "both.jpg", 1, 1, "sha-both", scan_id, "fake", width=100, height=100, faces=both)
    return path


def _clusters(db: Path, *args: str) -> str:
    result = runner.invoke(app, ["clusters", "--db", str(db), *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _stored(db: Path) -> tuple[str | None, str | None, float]:
    with Store(db) as store:
        return store.get_setting("cluster.method"), store.get_setting("cluster.threshold"), threshold_of(store)


def test_the_self_check_names_each_threshold_once_with_its_value(db: Path) -> None:
    out = " ".join(_clusters(db).split())
    assert "two-stage at 0.6" in out and "2 persons" in out
    assert "Self-check on 1 pairs of faces sharing a photo" in out
    assert "closer than the link threshold (0.38)" in out and "closer than the merge threshold (0.52)" in out
    assert "threshold threshold" not in out
    out = " ".join(_clusters(db, "--method", "whispers", "--threshold", "0.5").split())
    assert "whispers: links < 0.5" in out and "closer than the link threshold (0.5)" in out
    assert "threshold threshold" not in out


def test_the_operating_point_is_stored_for_recognition_and_doubts(db: Path) -> None:
    doc = json.loads(_clusters(db, "--json"))
    assert doc["operating_point"]["method"] == "two-stage" and doc["operating_point"]["threshold"] == 0.6
    assert _stored(db) == ("two-stage", "", 0.6)
    doc = json.loads(_clusters(db, "--threshold", "0.6", "--json"))
    assert doc["operating_point"]["link"] == 0.38 and doc["persons"] == 2
    assert _stored(db) == ("two-stage", "0.6", 0.6)
    doc = json.loads(_clusters(db, "--threshold", "0.54", "--json"))
    op = doc["operating_point"]
    assert op["link"] == pytest.approx(0.38 * 0.9) and op["merge"] == pytest.approx(0.52 * 0.9)
    assert _stored(db) == ("two-stage", "0.54", 0.54)
    _clusters(db, "--method", "whispers")
    assert _stored(db) == ("whispers", "", 0.6)


def test_an_unknown_method_is_refused_in_one_line(db: Path) -> None:
    result = runner.invoke(app, ["clusters", "--db", str(db), "--method", "single"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "two-stage" in result.stderr and "whispers" in result.stderr
