"""`clusters --threshold T [--method M]`: the operating point, stored and said."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def test_the_self_check_counts_the_same_photo_pairs_in_crowded_regions(tmp_path: Path) -> None:
    """Children packed as dlib packs them (200 of them, two photos each, ~0.49 apart), 20
    photos of two siblings together: at the plain thresholds most sibling pairs would merge;
    the self-check counts them in the crowded region, against the thresholds as tightened."""
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.normal(size=(n, 128))
        out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    centres = 0.6 * unit(1)[0] + 0.34 * unit(200)
    path = tmp_path / "kids.db"
    with Store(path) as store:
        scan_id = store.begin_scan([tmp_path], "fake")

        def photo(name: str, kids: list[int]) -> None:
            boxes = [(0, 0, 40, 40), (50, 0, 90, 40)][: len(kids)]
            embs = [(centres[k] + 0.08 * unit(1)[0]).astype(np.float32) for k in kids]
            faces = [make_face(e, b) for e, b in zip(embs, boxes, strict=True)]
            store.save_photo(tmp_path / name, 1, 1, name, scan_id, "fake", width=100, height=100, faces=faces)

        for k in range(200):
            photo(f"kid{k}a.jpg", [k])
            photo(f"kid{k}b.jpg", [k])
        for k in range(0, 40, 2):
            photo(f"siblings{k}.jpg", [k, k + 1])
    doc = json.loads(_clusters(path, "--json"))
    check = doc["operating_point"]["check"]
    assert check["same_photo_pairs"] == 20 and doc["persons"] >= 190  # the children stay apart
    assert check["share_closer_than"]["merge"] > 0.5  # at the plain merge threshold, most would be one
    assert check["crowded_pairs"] >= 15 and check["crowded_closer_than"] == {"link": 0, "merge": 0}
    out = " ".join(_clusters(path, "--full").split())  # a run with no new faces would check no pair
    assert f"of them {check['crowded_pairs']} in crowded regions (thresholds tightened for a face)" in out
    assert "0 closer than the link threshold as tightened there, 0 closer than the merge threshold" in out
    whispers = json.loads(_clusters(path, "--method", "whispers", "--json"))["operating_point"]["check"]
    assert whispers["crowded_pairs"] is None
    assert "crowded regions" not in " ".join(_clusters(path, "--method", "whispers").split())
