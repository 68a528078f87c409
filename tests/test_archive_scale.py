"""benchmarks/archive_scale.py: the library it builds is what a scan leaves (real schema,
stored WebP thumbnails, photos that are hard links to real JPEGs), and a step that cannot
fit is reported, not run."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import archive_scale
from cluster_scale import synthetic

from photocluster.detect.thumbnail import THUMB_PARAMS

# The holdout photos live in ../shared beside the fixtures: without them these tests are
# deselected and named with the others that need the shared set (tests/conftest.py).
needs_holdout = pytest.mark.shared_fixtures


def test_embeddings_made_a_chunk_at_a_time_are_the_same() -> None:
    emb, labels = synthetic(5_000, seed=3)
    chunked, chunked_labels = synthetic(5_000, seed=3, chunk=777)
    assert chunked.dtype == np.float32
    np.testing.assert_array_equal(chunked_labels, labels)
    np.testing.assert_array_equal(chunked, emb)


@needs_holdout
def test_build_is_a_scanned_library_of_hard_links(tmp_path: Path) -> None:
    built = archive_scale.build(2_000, tmp_path, n_sources=20, pool_size=10)
    with sqlite3.connect(tmp_path / "library.db") as conn:
        photos = conn.execute("SELECT id, path, size, mtime_ns, status FROM photos ORDER BY id").fetchall()
        faces = conn.execute("SELECT count(*), count(DISTINCT photo_id), count(person_id) FROM faces").fetchone()
        thumbs = conn.execute("SELECT params, jpeg FROM face_thumbs").fetchall()
    assert len(photos) == built["photos"]
    assert faces == (2_000, len(photos), 0)  # every photo has a face; no person before `clusters`
    sources = {os.stat(p).st_ino for p in (tmp_path / "sources").iterdir()}
    for _, path, size, mtime_ns, status in photos:
        st = os.stat(os.fsdecode(path))
        assert st.st_ino in sources  # a hard link to a real JPEG: no inode of its own
        assert (st.st_size, st.st_mtime_ns, status) == (size, mtime_ns, "done")
    assert len(thumbs) == 2_000
    assert {params for params, _ in thumbs} == {THUMB_PARAMS}
    assert all(jpeg[:4] == b"RIFF" and jpeg[8:12] == b"WEBP" for _, jpeg in thumbs)
    assert np.load(tmp_path / "truth.npy").shape == (2_000,)


@needs_holdout
def test_end_to_end_and_a_step_that_cannot_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = archive_scale.disk_of(tmp_path)["free_bytes"]
    # The export's estimate alone passes the free space: it is said, not run.
    monkeypatch.setitem(archive_scale.PER_FACE, "export_bytes", free / 1_500 * 2)
    out = tmp_path / "run.json"
    argv = ["archive_scale.py", "--faces", "1500", "--work", str(tmp_path / "w"), "--json-out", str(out), "--keep"]
    monkeypatch.setattr(sys, "argv", argv)
    archive_scale.main()
    result = json.loads(out.read_text())
    clusters = result["clusters"]
    assert clusters["returncode"] == 0 and clusters["report"]["faces"] == 1_500
    assert clusters["persons"] > 0 and clusters["pairwise_f_vs_truth"] > 0.5
    assert clusters["peak_rss_mb"] > 0
    assert "not_run" in result["export"] and "GiB of disk" in result["export"]["not_run"]
    assert not (tmp_path / "w" / "export").exists()
    # Then the export itself, over the clustered library.
    monkeypatch.setitem(archive_scale.PER_FACE, "export_bytes", 5_210.0)
    monkeypatch.setattr(sys, "argv", [*argv[:-1], "--steps", "export"])
    archive_scale.main()
    export = json.loads(out.read_text())["export"]
    assert export["returncode"] == 0
    assert export["report"]["thumbnails"] == 1_500 and export["report"]["mode"] == "hardlink"
    assert export["export_tree"]["inodes"] >= 1_500
