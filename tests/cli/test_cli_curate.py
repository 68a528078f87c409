"""`photocluster add-face` in the terminal: what it says, its errors in one line, undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, fake_embedding, make_face, write_photo
from photocluster.cli import app
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> str:
    """Two red photos scanned and clustered (one person); a drawn box gets a red descriptor."""

    def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
        face = make_face(fake_embedding("red"), (0, 0, 48, 48))
        return Face(box=box, confidence=0.0, landmarks=face.landmarks, embedding=face.embedding)

    monkeypatch.setattr(faces_module, "embed_box", embed_box)
    for k in range(2):
        write_photo(tmp_path / "lib" / f"red{k}.jpg", (200, 20, 20), size=(200, 150))
    path = str(tmp_path / "c.db")
    assert run("scan", str(tmp_path / "lib"), "--db", path, "--workers", "1", "--json")[0] == 0
    assert run("clusters", "--db", path, "--json")[0] == 0
    return path


def test_add_face_says_what_it_did_and_undo_takes_it_back(db: str, tmp_path: Path) -> None:
    photo = str(tmp_path / "lib" / "red0.jpg")
    code, out, err = run("add-face", photo, "--box", "0,0,40,40", "--person", "Ruby", "--db", db)
    assert code == 0, err
    assert out.startswith("Done: add-face 1 0,0,40,40 'Ruby' (face 3, in person 2).")
    code, out, _ = run("add-face", photo, "--box", "150, 100, 199, 149", "--db", db, "--json")
    assert code == 0 and json.loads(out)["person"] is None and json.loads(out)["box"] == [150, 100, 199, 149]
    code, out, _ = run("undo", "--yes", "--db", db)
    assert code == 0 and "add-face 1 150,100,199,149" in out
    assert [(f["face"], f["person"]) for f in json.loads(run("who", photo, "--db", db, "--json")[1])] == [
        (1, 1),
        (3, 2),
    ]


@pytest.mark.parametrize(
    ("box", "says"),
    [
        ("1,2,3", "a box is four numbers left,top,right,bottom (photo pixels), got '1,2,3'"),
        ("60,40,150,110", "face 1 is there already"),
        ("195,145,260,200", "leaves under 12 pixels a side inside the photo (200x150)"),
    ],
)
def test_add_face_refuses_a_bad_box_in_one_line(db: str, tmp_path: Path, box: str, says: str) -> None:
    code, out, err = run("add-face", str(tmp_path / "lib" / "red0.jpg"), "--box", box, "--db", db)
    assert code != 0 and out == "" and says in err and len(err.strip().splitlines()) == 1


def test_add_face_on_a_photo_not_scanned_says_so(db: str, tmp_path: Path) -> None:
    other = write_photo(tmp_path / "elsewhere.jpg", (1, 2, 3))
    code, _, err = run("add-face", str(other), "--box", "0,0,30,30", "--db", db)
    assert code == 2 and "not scanned yet" in err
