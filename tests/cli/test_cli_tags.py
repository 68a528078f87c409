"""``scan`` reading face tags (and ``--no-tags``), ``photocluster tags`` and ``eval tags``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import FakeEmbedder, tag_faces, write_photo
from photocluster.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def library(root: Path) -> Path:
    """Two people, two photos each (one colour per person: FakeEmbedder's identity), tagged
    around FakeEmbedder's face (the middle half of the photo), and one broken sidecar."""
    for who, colour in (("Ann", (200, 20, 40)), ("Ben", (20, 20, 200))):
        for k in range(2):
            tag_faces(write_photo(root / f"{who}{k}.jpg", colour), [(who, (14.0, 8.0, 50.0, 40.0))])
    (root / "Ann0.jpg.xmp").write_text("<not xml", encoding="utf-8")
    return root


def test_scan_reads_tags_and_no_tags_skips_them(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    root = library(tmp_path / "lib")
    code, out, err = run("scan", str(root), "--db", str(tmp_path / "a.db"), "--workers", "1", "--no-tags", "--json")
    assert code == 0, err
    assert json.loads(out)["tags"] == {}
    code, out, err = run("scan", str(root), "--db", str(tmp_path / "a.db"), "--workers", "1", "--json")
    assert code == 0, err
    tags = json.loads(out)["tags"]
    assert (tags["tags"], tags["matched"], tags["unmatched"]) == (4, 4, [])
    [warning] = tags["warnings"]
    assert warning.startswith(str(root / "Ann0.jpg.xmp"))
    code, out, err = run("scan", str(root), "--db", str(tmp_path / "b.db"), "--workers", "1")
    assert code == 0, err
    assert "Face tags" in out and "4 in 4 photos: 4 on a face" in out
    assert "warning: " + str(root / "Ann0.jpg.xmp") in err
    # Scanned again, nothing changed: the tags are not read again (nor their warnings).
    code, out, err = run("scan", str(root), "--db", str(tmp_path / "b.db"), "--workers", "1", "--json")
    tags = json.loads(out)["tags"]
    assert (tags["photos_read"], tags["photos_unchanged"], tags["tags"], tags["warnings"]) == (0, 4, 4, [])


def test_tags_and_eval_tags(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    db = str(tmp_path / "a.db")
    code, _, err = run("eval", "tags", "--db", db)
    assert code == 2 and "eval tags needs tags of two people" in err and "Traceback" not in err
    root = library(tmp_path / "lib")
    assert run("scan", str(root), "--db", db, "--workers", "1")[0] == 0
    assert run("clusters", "--db", db)[0] == 0
    code, out, err = run("tags", "--db", db, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted((t["name"], t["status"], t["person_name"]) for t in doc["tags"]) == [
        ("Ann", "matched", "Ann"),
        ("Ann", "matched", "Ann"),
        ("Ben", "matched", "Ben"),
        ("Ben", "matched", "Ben"),
    ]
    assert doc["conflicts"] == []
    code, out, _ = run("tags", "--db", db, "--conflicts")
    assert code == 0 and "No conflicts" in out
    code, out, err = run("eval", "tags", "--db", db, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["tagged_faces"], result["names"], result["photos"]) == (4, 2, 4)
    assert result["default"]["bcubed"]["f1"] == 1.0 and len(result["rows"]) == 26
    code, out, _ = run("eval", "tags", "--db", db)
    assert code == 0 and "4 tagged faces of 2 names" in out and "Recommended threshold" in out
