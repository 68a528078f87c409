"""Corrections outlive re-scans, on the real models, fixture photos and a real exiftool.

What the issue measured: name a person, move a face into it, remove another; then a
metadata-only edit of the moved face's photo (``exiftool -Keywords=family``) and a re-scan
undid the move (the photo was analysed again and its faces inserted again without their
person, pins or rejections), and a re-scan at another ``--max-size`` dropped the name too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photocluster.app.corrections import move_face, name_person, remove_face
from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

pytestmark = pytest.mark.models

SMALL = DetectionSettings(max_size=640)


def exiftool(*args: str | Path) -> None:
    tool = shutil.which("exiftool")
    if tool is None:
        pytest.fail("exiftool not found: apt-get install -y libimage-exiftool-perl (.ci/run does this)")
    subprocess.run([tool, "-q", "-overwrite_original", *map(str, args)], check=True)


def state(store: Store) -> tuple[dict[int, int], dict[int, int], list[tuple[int, int]], dict[int, str | None]]:
    """Who is whom, and every correction: what a re-scan must leave as it was."""
    return store.face_persons(), store.pins(), sorted(store.rejections()), store.person_names()


def test_a_metadata_edit_and_a_new_max_size_keep_name_move_and_remove(fixtures: Path, tmp_path: Path) -> None:
    lib = tmp_path / "train"
    shutil.copytree(fixtures / "face_recognition-knn" / "train", lib)
    db = tmp_path / "knn.db"
    with Store(db) as store:
        first = scan(store, [lib], SMALL)
        assert (first.analysed, first.faces_found, first.errors) == (9, 9, [])
        recluster(store, 0.6, 1, method="whispers")
        face_of = {f"{f.photo_path.parent.name}/{f.photo_path.name}": f.id for f, _ in store.faces()}
        persons = store.face_persons()
        obama = persons[face_of["obama/obama.jpg"]]
        name_person(store, str(obama), "Barack")
        moved = face_of["biden/biden2.jpg"]
        move_face(store, moved, "Barack")
        removed = face_of["obama/obama2.jpg"]
        remove_face(store, removed)
        recluster(store, 0.6, 1, method="whispers")
        before = state(store)
        assert before[0][moved] == obama and before[0].get(removed) != obama
        assert before[1] == {moved: obama} and (removed, obama) in before[2]

        # A keyword added to the moved face's photo: its pixels are the same.
        exiftool("-Keywords=family", lib / "biden" / "biden2.jpg")
        report = scan(store, [lib], SMALL)
        assert state(store) == before
        assert (report.analysed, report.metadata_only, report.faces_lost) == (0, 1, 0)
        recluster(store, 0.6, 1, method="whispers")
        assert state(store) == before

    # Another --max-size: every photo is analysed again, and every face found again.
    result = CliRunner().invoke(app, ["scan", str(lib), "--max-size", "800", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["analysed"], doc["faces_kept"], doc["faces_lost"], doc["lost_faces"]) == (9, 9, 0, [])
    with Store(db) as store:
        assert state(store) == before
        recluster(store, 0.6, 1, method="whispers")
        assert state(store) == before
