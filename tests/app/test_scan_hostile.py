"""A scan over hostile or odd files (real FIFOs and sockets, links to /dev/zero and
/dev/urandom, a sparse sidecar over the cap, Takeout JSON 200,000 deep, a Picasa file that
is a FIFO, photos that are FIFOs or devices, twenty tagged regions on a photo without a
face): one line for each, every photo still scanned and its data stored, nothing blocks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, mwg_sidecar, sparse_file, without_hanging, write_photo
from photocluster.app import tags as app_tags
from photocluster.app.scan import scan
from photocluster.app.scan_report import ScanReport
from photocluster.cli import app
from photocluster.detect import faces as fc
from photocluster.store import Store


def hostile_library(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Nine photos, each with a hostile file beside it (but one, whose Takeout JSON names
    Ann), and two photo names on a FIFO and a device. Returns the warnings a scan gives and
    its bad files."""
    for k, name in enumerate("abcdefg"):
        write_photo(root / f"{name}.jpg", (20 + 30 * k, 40, 200 - 20 * k))
    for k, name in enumerate("hi"):
        write_photo(root / "picasa" / f"{name}.jpg", (40, 20 + 90 * k, 40))
    os.mkfifo(root / "a.jpg.xmp")
    (root / "b.jpg.xmp").symlink_to("/dev/zero")
    (root / "c.jpg.json").symlink_to("/dev/urandom")
    os.mkfifo(root / "d.jpg.json")
    sparse_file(root / "e.jpg.xmp", 150 * 1024 * 1024)
    (root / "f.jpg.json").write_bytes(b'{"people": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    (root / "g.jpg.json").write_text(json.dumps({"people": [{"name": "Ann"}]}))
    os.mkfifo(root / "picasa" / ".picasa.ini")
    os.mkfifo(root / "fifo.jpg")
    (root / "device.jpg").symlink_to("/dev/urandom")
    warnings = [
        f"{root}/a.jpg.xmp: face tags skipped: not a regular file (a FIFO)",
        f"{root}/b.jpg.xmp: face tags skipped: not a regular file (a character device)",
        f"{root}/c.jpg.json: Takeout names skipped: not a regular file (a character device)",
        f"{root}/d.jpg.json: Takeout names skipped: not a regular file (a FIFO)",
        f"{root}/e.jpg.xmp: face tags skipped: too large (150 MB; the limit is 16 MB)",
        f"{root}/f.jpg.json: Takeout names skipped: nested more than 64 deep",
        # Once for the folder, not once per photo in it.
        f"{root}/picasa/.picasa.ini: cannot read Picasa's face tags (not a regular file (a FIFO))",
    ]
    bad = [
        (f"{root}/device.jpg", "not a regular file (a character device): not read"),
        (f"{root}/fifo.jpg", "not a regular file (a FIFO): not read"),
    ]
    return warnings, bad


def fifos(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_fifo()]


def test_every_hostile_file_is_one_line_and_every_photo_is_scanned(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    root = tmp_path / "lib"
    warnings, bad = hostile_library(root)
    db = tmp_path / "x.db"

    def run() -> ScanReport:
        with Store(db) as store:
            return scan(store, [root])

    report = without_hanging(run, fifos(root))
    assert report.tags["warnings"] == warnings
    assert report.errors == bad
    assert (report.files, report.analysed, report.faces_found) == (9, 9, 9)
    with Store(db) as store:
        assert store.counts()["done"] == 9
        assert [(t.name, t.status, os.path.basename(t.photo_path)) for t in store.all_tags()] == [
            ("Ann", "weak", "g.jpg")
        ]
    # Again: nothing changed, nothing is lost, nothing blocks.
    again = without_hanging(run, fifos(root))
    assert (again.unchanged, again.errors, again.faces_found) == (9, bad, 0)
    with Store(db) as store:
        assert store.counts()["done"] == 9 and len(store.all_tags()) == 1
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_cli_prints_one_line_per_hostile_file_and_exits_0(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    root = tmp_path / "lib"
    warnings, bad = hostile_library(root)
    result = without_hanging(
        lambda: CliRunner().invoke(app, ["scan", str(root), "--db", str(tmp_path / "x.db"), "--workers", "1"]),
        fifos(root),
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("✓ ")]  # progress
    assert lines == [
        *(f"warning: {w}" for w in warnings),
        "2 files could not be used:",
        *(f"  {path}: {reason}" for path, reason in bad),
    ]


def test_second_looks_are_capped_per_photo_and_the_rest_reported(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake embedder finds one face in the middle; twenty regions are tagged along the top.
    photo = write_photo(tmp_path / "lib" / "p.jpg", (90, 90, 90), size=(160, 100))
    names = [f"Person {k}" for k in range(20)]
    (tmp_path / "lib" / "p.jpg.xmp").write_bytes(mwg_sidecar(names, per_row=20))
    looks: list[Any] = []
    decodes: list[Path] = []
    real_decode = fc.second_look_image
    monkeypatch.setattr(fc, "find_in_region", lambda path, region, settings, **kw: looks.append(region))
    monkeypatch.setattr(
        fc, "second_look_image", lambda path, settings: decodes.append(path) or real_decode(path, settings)
    )
    with Store(tmp_path / "x.db") as store:
        report = scan(store, [tmp_path / "lib"])
        assert len(looks) == app_tags.MAX_SECOND_LOOKS == 8
        assert decodes == [photo]  # decoded once for all its second looks
        assert report.tags["warnings"] == [
            f"{photo}: 12 tagged region(s) without a detected face had no second look (at most 8 a photo)"
        ]
        # Every tag is kept, and each is reported without its face.
        assert sorted((t.name, t.status) for t in store.all_tags()) == sorted((n, "unmatched") for n in names)
        unmatched = report.tags["unmatched"]
        assert isinstance(unmatched, list)
        assert sorted(u["name"] for u in unmatched) == sorted(names)
        # A scan of the unchanged photo looks no more.
        scan(store, [tmp_path / "lib"])
        assert len(looks) == 8
