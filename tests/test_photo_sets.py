"""The photos the suite runs on ship with the repository; the larger set adds tests when present."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import PHOTOS, REPO

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def test_every_shipped_photo_is_labelled_and_its_source_listed() -> None:
    images = sorted(p.relative_to(PHOTOS).as_posix() for p in PHOTOS.rglob("*") if p.suffix in IMAGE_SUFFIXES)
    with open(PHOTOS / "labels.csv", newline="") as fh:
        labelled = sorted(r["relative_path"] for r in csv.DictReader(fh))
    assert images == labelled
    sources = (PHOTOS / "SOURCES.md").read_text()
    for top in {path.split("/")[0] for path in images}:
        assert f"`{top}/" in sources, f"{top} has no row in SOURCES.md"
    for repo in ("davisking/dlib", "ageitgey/face_recognition", "serengil/deepface"):
        assert repo in sources
    size = sum(p.stat().st_size for p in PHOTOS.rglob("*") if p.is_file())
    assert size < 5_200_000, f"the shipped photos grew to {size / 1e6:.1f} MB"


def test_tests_that_need_the_larger_set_are_deselected_and_named_without_it(tmp_path: Path) -> None:
    env = {**os.environ, "PHOTOCLUSTER_FIXTURES": str(tmp_path / "absent")}
    test = "tests/eval/test_evaluate.py::test_deepface_master_pairs_in_lfw_format"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", test],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 5, out  # no test ran: it was deselected, not errored or skipped
    assert "photo sets: shipped (tests/photos, 76 photos); shared fixtures: absent" in out
    assert f"deselected, needs the shared fixtures: {test}" in out
    assert "1 deselected" in out and "error" not in out.lower()


def test_the_review_app_comes_with_the_default_install() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("[")[0] for dep in project["dependencies"]}
    assert {"starlette", "uvicorn"} <= names
    assert project["optional-dependencies"]["review"] == []  # kept as an alias for old commands
