"""A small fake library shared by the use-case tests: photos added straight to the store;
the check that a scan stored each face's thumbnail."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import fake_embedding, make_face, near
from photocluster.app.recluster import recluster
from photocluster.core.config import DetectionSettings
from photocluster.detect.images import load_image
from photocluster.detect.thumbnail import THUMB_PARAMS, THUMB_SIZE, thumbnail
from photocluster.store import Store

IDENTITIES = {"A": 4, "B": 3, "C": 2}


def add_photo(store: Store, path: Path, embeddings: list[np.ndarray]) -> list[int]:
    """A photo with one face per embedding, side by side; returns their face ids."""
    scan_id = store.begin_scan([path.parent], "fake")
    pid = store.save_photo(
        path,
        1,
        1,
        path.name,
        scan_id,
        "fake",
        width=100,
        height=100,
        faces=[make_face(e, (10 + 30 * k, 10, 35 + 30 * k, 35)) for k, e in enumerate(embeddings)],
    )
    return [int(f.id) for f in store.photo_faces(pid) if f.id is not None]


@pytest.fixture
def people(store: Store, tmp_path: Path) -> dict[str, list[int]]:
    """Three identities, one face per photo, intra-distance 0.3, far apart."""
    faces: dict[str, list[int]] = {}
    for ident, count in IDENTITIES.items():
        centre = fake_embedding(ident)
        for k in range(count):
            faces.setdefault(ident, []).extend(
                add_photo(store, tmp_path / f"{ident}{k}.jpg", [near(centre, 0.2, f"{ident}{k}")])
            )
    recluster(store, 0.6, 1, method="whispers")
    return faces


def assert_scan_thumbnails(store: Store, settings: DetectionSettings) -> dict[int, bytes]:
    """Every face of the present photos has its thumbnail stored, a THUMB_SIZE square WebP
    that is exactly what :func:`thumbnail` cuts from the photo decoded as the scan decodes
    it (with ``settings``). Returns them by face id."""
    faces = [face for face, _ in store.faces()]
    stored = store.thumbnails([f.id for f in faces], THUMB_PARAMS)
    assert sorted(stored) == sorted(f.id for f in faces), "a face has no thumbnail"
    images = {}
    for face in faces:
        if face.photo_path not in images:
            images[face.photo_path] = load_image(face.photo_path, settings.max_size, enlarge=settings.upsample is None)
        with Image.open(io.BytesIO(stored[face.id])) as im:
            assert (im.format, im.size) == ("WEBP", (THUMB_SIZE, THUMB_SIZE))
        assert stored[face.id] == thumbnail(images[face.photo_path], face.box), face.photo_path
    return stored
