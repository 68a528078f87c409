"""A face drawn by the user, on the real models: its descriptor is the one a scan computes
for the same box, and it groups with the person's other faces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from photocluster.app.scan import scan
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

pytestmark = pytest.mark.models


def test_a_drawn_box_is_described_as_the_scan_describes_the_same_box(fixtures: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    source = fixtures / "dlib-johns" / "John_Simm" / "000288_00470387.jpg"
    shutil.copy(source, photos / "simm.jpg")
    db = tmp_path / "j.db"
    with Store(db) as store:
        scan(store, [photos], workers=1, settings=DetectionSettings(engine="onnx"))
        photo, _ = store.photo_by_path(photos / "simm.jpg")  # type: ignore[misc]
        scanned = store.photo_faces(photo.id)[0]
        # As if the detector had missed it: the face goes, the user draws its box.
        store.conn.execute("DELETE FROM faces WHERE id = ?", (scanned.id,))
    box = ",".join(repr(v) for v in (scanned.box.left, scanned.box.top, scanned.box.right, scanned.box.bottom))
    result = CliRunner().invoke(
        app, ["add-face", str(photos / "simm.jpg"), "--box", box, "--engine", "onnx", "--db", str(db), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    added = json.loads(result.stdout)
    with Store(db) as store:
        (face,) = [f for f in store.photo_faces(photo.id) if f.id == added["face"]]
        assert store.added_faces() == {face.id} and face.box == scanned.box
        np.testing.assert_allclose(face.landmarks, scanned.landmarks, atol=1e-3)
        np.testing.assert_allclose(face.embedding, scanned.embedding, atol=1e-5)
