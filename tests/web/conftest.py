"""A small library of real image files for the review app: three persons and a stranger."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import colour_library
from photocluster.app.recluster import recluster
from photocluster.store import Store
from photocluster.web.server import Server, bind


@pytest.fixture
def library(store: Store, tmp_path: Path) -> dict[str, list[int]]:
    """Face ids by who is in the photo (see ``colour_library``), clustered: three persons
    and a stranger's face in no person."""
    colour_library(store, tmp_path / "photos")
    recluster(store, threshold=0.6, min_size=2, method="whispers")
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
