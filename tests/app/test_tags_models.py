"""scan reads face tags, on the real models: the second look finds tagged faces the first
pass missed, and --no-tags reads nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import tag_faces
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

pytestmark = pytest.mark.models

# The two faces of face_recognition's two_people.jpg (1126x661), displayed pixels, drawn
# a little larger than the detector's boxes, as people draw them.
TAGS = [("Left Person", (225.0, 50.0, 400.0, 225.0)), ("Right Person", (780.0, 65.0, 955.0, 240.0))]
# Detected at 320 px without upsampling, the faces (~40 px) are missed: the second look
# (one upsampling step more, in the tagged regions only) finds them.
SMALL = DetectionSettings(max_size=320, upsample=0)


def test_the_second_look_finds_tagged_faces_the_scan_missed(fixtures: Path, store: Store, tmp_path: Path) -> None:
    photo = tmp_path / "photos" / "two_people.jpg"
    photo.parent.mkdir()
    shutil.copyfile(fixtures / "face_recognition-examples" / "two_people.jpg", photo)
    tag_faces(photo, TAGS)
    report = scan(store, [photo.parent], SMALL, tags=False)
    assert (report.faces_found, report.tags, store.all_tags()) == (0, {}, [])
    report = scan(store, [photo.parent], SMALL)
    assert report.faces_found == 0
    assert report.tags["found_on_second_look"] == 2 and report.tags["unmatched"] == []
    tags = store.all_tags()
    assert sorted((t.name, t.status, t.person_name) for t in tags) == [
        ("Left Person", "matched", "Left Person"),
        ("Right Person", "matched", "Right Person"),
    ]
    for tag in tags:
        assert tag.box is not None and tag.face_id is not None
        [face] = [f for f in store.photo_faces(tag.photo_id) if f.id == tag.face_id]
        assert face.box.iou(tag.box) > 0.4
    # Scanned again: nothing read twice, no new face.
    again = scan(store, [photo.parent], SMALL)
    assert again.tags["changed_photos"] == 0 and len(store.photo_faces(tags[0].photo_id)) == 2
