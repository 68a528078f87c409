"""A small fake library shared by the use-case tests: photos added straight to the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, make_face, near
from photocluster.app.recluster import recluster
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
    recluster(store, 0.6, 1)
    return faces
