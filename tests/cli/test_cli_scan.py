"""What a scan shows: the summary (no rows of zeros, the duplicates and the photos without a
face, what to do next), `photos --no-faces`, and a real scan of the fixture photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, write_photo
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.core.types import Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def blue_has_no_face(fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake embedder, but a mostly blue photo has no face."""

    def analyse(image: DecodedImage, settings: DetectionSettings) -> list[Face]:
        r, g, b = image.pixels.reshape(-1, 3).mean(axis=0)
        return [] if b > max(r, g) else fake_embedder(image, settings)

    monkeypatch.setattr(faces_module, "analyze_pixels", analyse)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    write_photo(root / "a.jpg", (200, 20, 20))
    shutil.copyfile(root / "a.jpg", root / "a (copy).jpg")
    for k in range(7):
        write_photo(root / f"sky{k}.jpg", (20, 20 + 10 * k, 120 + 15 * k))
    return root


def test_the_summary_lists_duplicates_and_photos_without_a_face(
    library: Path, tmp_path: Path, blue_has_no_face: None
) -> None:
    db = str(tmp_path / "s.db")
    code, out, err = run("scan", str(library), "--db", db, "--workers", "1")
    assert code == 0, err
    labels = [line.split()[0] for line in out.splitlines()[1:] if line.startswith(" ")]
    assert labels[:6] == ["Files", "Analysed", "Duplicates", "Faces", "No", "Time"]
    # Rows of zeros and the settings are left out (shown with -v, and in --json).
    for noise in ("Unchanged", "Moved", "Missing", "Faces lost", "Bad files", "Settings", "Engine", "Face tags"):
        assert noise not in out
    # "a (copy).jpg" comes first in the walk: it was analysed, and a.jpg is said to be its duplicate.
    assert f"  {library / 'a.jpg'}: the same as {library / 'a (copy).jpg'}\n" in out
    assert "No face found in 7 photos" in out
    listed = [line.strip() for line in out.splitlines() if line.startswith(f"  {library / 'sky'}")]
    assert listed == [str(library / f"sky{k}.jpg") for k in range(5)]
    assert "  ... and 2 more: `photocluster photos --no-faces` lists every photo without a face\n" in out
    assert out.endswith("Next: `photocluster clusters` groups the faces by person.\n")

    code, out, _ = run("photos", "--no-faces", "--db", db)
    assert code == 0
    assert out.splitlines() == [str(library / f"sky{k}.jpg") for k in range(7)]
    code, out, _ = run("photos", "--db", db, "--json")
    assert [(Path(r["photo"]).name, r["faces"]) for r in json.loads(out)][:3] == [
        ("a (copy).jpg", 1),
        ("a.jpg", 1),
        ("sky0.jpg", 0),
    ]
    code, out, _ = run("photos", "--db", db)
    assert "9 photos, 2 faces" in out

    code, out, _ = run("scan", str(library), "--db", db, "--json")
    doc = json.loads(out)
    assert (doc["unchanged"], doc["no_faces"], doc["duplicate_of"]) == (9, [], [])


def test_verbose_adds_the_settings_and_a_rescan_says_unchanged(
    library: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    db = str(tmp_path / "s.db")
    assert run("scan", str(library), "--db", db, "--workers", "1", "--json")[0] == 0
    doc = json.loads(run("scan", str(library), "--db", db, "--json")[1])
    assert doc["duplicate_of"] == [] and doc["unchanged"] == 9
    code, out, _ = run("-v", "scan", str(library), "--db", db, "--workers", "1")
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    assert "Unchanged    9" in lines
    assert "Settings     cnn/max1600/up1/v2, 1 worker" in lines and "Engine" in out
    assert "Next:" not in out and "Duplicates" not in out


def test_one_photo_is_not_one_photos(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    write_photo(tmp_path / "lib" / "a.jpg", (200, 20, 20))
    db = str(tmp_path / "s.db")
    run("scan", str(tmp_path / "lib"), "--db", db, "--workers", "1")
    assert "1 photo, 1 face\n" in run("photos", "--db", db)[1]
    code, out, _ = run("clusters", "--db", db, "--min-size", "1")
    assert code == 0 and "1 person, 0 unknown faces" in out


def test_an_empty_library_says_to_scan_first(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    code, out, _ = run("clusters", "--db", db)
    assert (code, out) == (0, "No faces to group yet: run `photocluster scan PATH` first (a folder of photos).\n")
    code, out, _ = run("status", "--db", db)
    assert code == 0 and "None" not in out and "Threshold" not in out


@pytest.mark.models
def test_a_real_scan_shows_its_total_last_and_lists_what_it_found(fixtures: Path, tmp_path: Path) -> None:
    """Two copies of one portrait and a photo of sky, scanned with the real models."""
    root = tmp_path / "lib"
    root.mkdir()
    portrait = fixtures / "face_recognition-examples" / "obama_small.jpg"
    shutil.copyfile(portrait, root / "obama.jpg")
    shutil.copyfile(portrait, root / "obama (copy).jpg")
    write_photo(root / "sky.jpg", (90, 140, 200), size=(640, 480))
    db = str(tmp_path / "real.db")
    code, out, err = run("scan", str(root), "--db", db)
    assert code == 0, err
    assert f"  {root / 'obama.jpg'}: the same as {root / 'obama (copy).jpg'}\n" in out
    assert f"No face found in 1 photo (too small, blurred, turned away?):\n  {root / 'sky.jpg'}\n" in out
    assert " Faces found  2" in out
    assert out.endswith("Next: `photocluster clusters` groups the faces by person.\n")
    assert run("photos", "--no-faces", "--db", db)[1] == f"{root / 'sky.jpg'}\n"
    assert np.isfinite(json.loads(run("scan", str(root), "--db", db, "--json")[1])["seconds"])
