"""A small library of real image files for the review app: three persons and a stranger."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import fake_embedding, make_face, near, write_photo
from photocluster.app.recluster import recluster
from photocluster.store import Store
from photocluster.web.server import Server, bind

SETTINGS = "cnn/max1600/upauto/v1"
COLOURS = {
    "alice": (200, 40, 40),
    "bob": (40, 40, 200),
    "carol": (40, 160, 40),
    "stranger": (200, 160, 40),
}
PLAN = {"alice": 4, "bob": 3, "carol": 2, "stranger": 1}


@pytest.fixture
def library(store: Store, tmp_path: Path) -> dict[str, list[int]]:
    """Face ids by who is in the photo; photos of one flat colour each, clustered."""
    root = tmp_path / "photos"
    scan_id = store.begin_scan([root], SETTINGS)
    for who, n in PLAN.items():
        for k in range(n):
            path = write_photo(root / f"{who}{k}.jpg", COLOURS[who], size=(96, 96))
            st = path.stat()
            emb = near(fake_embedding(who), 0.2, f"{who}{k}")
            store.save_photo(
                path,
                st.st_size,
                st.st_mtime_ns,
                f"sha-{who}{k}",
                scan_id,
                SETTINGS,
                width=96,
                height=96,
                faces=[make_face(emb, (24, 24, 72, 72))],
            )
    recluster(store, threshold=0.6, min_size=2)
    faces: dict[str, list[int]] = {}
    for face, _ in store.faces():
        faces.setdefault(re.sub(r"\d+\.jpg$", "", face.photo_path.name), []).append(face.id)
    return faces


def person_of(store: Store, face_id: int) -> int | None:
    row = store.face_row(face_id)
    assert row is not None
    return row[1]


@pytest.fixture
def server(store: Store, library: dict[str, list[int]]) -> Iterator[Server]:
    """The review app on a free port of 127.0.0.1, served from a thread of this process."""
    running = bind(store.path, 0)
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the review app did not start"
        time.sleep(0.02)
    yield running
    running.stop()
    thread.join(timeout=20)
