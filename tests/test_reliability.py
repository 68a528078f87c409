"""Reliability: bad input, Ctrl-C, two processes on one database, originals, hostile names,
old and new databases.

The bad-input corpus is generated here (nothing large is committed); every case but the
crowded photo runs on the fake embedder. The Ctrl-C tests run the real models on small
photos in a subprocess; the concurrency tests run a subprocess whose detection is the fake
embedder, slowed down, so that the scan is reliably still running while the others act.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import FakeEmbedder, fake_embedding, make_face, near, write_photo
from photocluster.app import scan as pipeline
from photocluster.app.export import export, safe_folder_name
from photocluster.app.listing import persons
from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.detect import faces as fc
from photocluster.detect import images as images
from photocluster.detect.images import DecodedImage
from photocluster.store import Store
from photocluster.store.migrations import MIGRATIONS, SCHEMA_VERSION

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

NOT_AN_IMAGE = "not a readable image (unknown or corrupt format)"
# How many bytes the JPEG decoder had left is libjpeg's business: reasons() writes it as N.
TRUNCATED = "corrupt or truncated image (image file is truncated (N bytes not processed))"
BOMB = (
    "image too large to decode safely (Image size (900000000 pixels) exceeds limit of 178956970 pixels, "
    "could be decompression bomb DOS attack.)"
)


# -- the bad-input corpus --------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (signature + IHDR with a correct CRC) claiming ``width`` x ``height``
    RGB pixels, followed by a tiny IDAT and IEND: a few dozen bytes, nothing allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def truncated_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def jpeg_with_orientation(
    path: Path, orientation: int, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)
) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return write_photo(path, color, size=size, exif=exif.tobytes())


def animated(path: Path, fmt: str) -> Path:
    frames = [Image.new("RGB", (64, 48), c) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


@dataclass
class Corpus:
    root: Path
    good: dict[Path, tuple[int, int]] = field(default_factory=dict)  # path -> (width, height) as displayed
    # Files the scan lists and records as errors, and what it says about them.
    bad_files: dict[Path, str] = field(default_factory=dict)
    # Paths the walk itself cannot use (reported, never listed).
    bad_walk: dict[Path, str] = field(default_factory=dict)
    vanish_after_listing: Path = Path()
    vanish_after_hashing: Path = Path()
    unreadable_file: Path = Path()
    unreadable_folder: Path = Path()

    @property
    def errors(self) -> dict[str, str]:
        return {os.fsdecode(p): r for p, r in {**self.bad_files, **self.bad_walk}.items()}


def build_corpus(root: Path) -> Corpus:
    """Every kind of odd file a photo library holds. Good ones must be analysed, bad ones
    must each cost one line in the report and nothing else."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    c = Corpus(root)
    root.mkdir(parents=True)

    def good(name: str, size: tuple[int, int] = (64, 48)) -> Path:
        path = root / name
        c.good[path] = size
        return path

    # Good, if unusual.
    write_photo(good("no-exif.jpg"), (120, 60, 30))
    write_photo(good("panorama.png", (30000, 200)), (10, 120, 200), size=(30000, 200))
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(good("cmyk.jpg"))
    Image.new("I;16", (64, 48), 40000).save(good("16bit.png"))
    Image.new("L", (64, 48), 90).save(good("gray.jpg"))
    pal = Image.new("P", (64, 48), 1)
    pal.putpalette([255, 255, 255, 200, 30, 30] + [0] * 762)
    pal.paste(0, (0, 0, 32, 48))
    pal.save(good("palette-transparent.png"), transparency=0)
    animated(good("animated.gif"), "GIF")
    animated(good("animated.webp"), "WEBP")
    Image.new("RGB", (64, 48), (30, 160, 60)).save(good("photo.heic"), format="HEIF")
    jpeg_with_orientation(good("orientation-0.jpg"), 0, (60, 60, 160))
    jpeg_with_orientation(good("orientation-9.jpg"), 9, (160, 60, 160))
    for k, name in enumerate(["with  spaces .jpg", "Zoë 照片 😀.jpg", "new\nline.jpg", os.fsdecode(b"bad\xff.jpg")]):
        write_photo(good(name), (40 * k, 200, 100))
    (root / "x.jpg").mkdir()  # a folder with a photo's name is a folder
    write_photo(good("x.jpg/inside.jpg"), (250, 250, 0))
    os.symlink(".", root / "loop")  # a symlink loop: followed once, nothing seen twice

    # Bad: each one line, and the scan goes on.
    def bad(name: str, reason: str) -> Path:
        path = root / name
        c.bad_files[path] = reason
        return path

    bad("empty.jpg", NOT_AN_IMAGE).write_bytes(b"")
    bad("text.jpg", NOT_AN_IMAGE).write_text("these are my holiday notes\nnot a photo\n")
    bad(os.fsdecode(b"broken\nname\xff.jpg"), NOT_AN_IMAGE).write_text("not a photo either")
    truncated_jpeg(bad("truncated.jpg", TRUNCATED))
    bad("bomb.png", BOMB).write_bytes(png_claiming(30000, 30000))
    c.vanish_after_listing = bad("vanish-after-listing.jpg", "file disappeared")
    c.vanish_after_hashing = bad("vanish-after-hashing.jpg", "file disappeared")
    c.unreadable_file = bad("unreadable.jpg", "permission denied")
    for path in (c.vanish_after_listing, c.vanish_after_hashing, c.unreadable_file):
        write_photo(path, (1, 2, 3))
    os.symlink("self-loop.jpg", root / "self-loop.jpg")
    c.bad_walk[root / "self-loop.jpg"] = "too many levels of symbolic links"
    os.symlink("nowhere.jpg", root / "dangling.jpg")
    c.bad_walk[root / "dangling.jpg"] = "broken symlink"
    c.unreadable_folder = root / "locked"
    write_photo(c.unreadable_folder / "kept.jpg", (90, 10, 10))
    c.bad_walk[c.unreadable_folder] = "cannot read folder: permission denied"
    return c


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return build_corpus(tmp_path / "corpus")


def simulate_trouble(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission denied (tests run as root, where chmod denies nothing) and files that go
    away while the scan runs, at the calls the scan makes."""
    real_open, real_scandir = builtins.open, os.scandir
    real_walk, real_fingerprint = images.walk, images.fingerprint

    def denied(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))  # type: ignore[arg-type]

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | bytes | os.PathLike) and os.fsdecode(file) == str(corpus.unreadable_file):
            raise denied(file)
        return real_open(file, *args, **kwargs)

    def guarded_scandir(path: Any = ".") -> Any:
        if isinstance(path, str | bytes | os.PathLike) and os.fsdecode(path) == str(corpus.unreadable_folder):
            raise denied(path)
        return real_scandir(path)

    def walk_then_vanish(*args: Any, **kwargs: Any) -> Iterator[Path]:
        yield from real_walk(*args, **kwargs)
        corpus.vanish_after_listing.unlink()  # listed, then gone before the scan reads it

    def hash_then_vanish(path: Path) -> images.Fingerprint:
        fingerprint = real_fingerprint(path)
        if path == corpus.vanish_after_hashing:
            path.unlink()  # hashed, then gone before it is decoded
        return fingerprint

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "scandir", guarded_scandir)
    monkeypatch.setattr(pipeline, "walk", walk_then_vanish)
    monkeypatch.setattr(pipeline, "fingerprint", hash_then_vanish)


def reasons(errors: list[tuple[str, str]] | list[tuple[Path, str]]) -> dict[str, str]:
    return {os.fsdecode(p): re.sub(r"\(\d+ bytes not processed\)", "(N bytes not processed)", r) for p, r in errors}


def done_photos(store: Store) -> dict[Path, tuple[int, int]]:
    rows = store.conn.execute("SELECT path, width, height FROM photos WHERE status = 'done'").fetchall()
    return {Path(os.fsdecode(bytes(k))): (w, h) for k, w, h in rows}


def test_bad_input_costs_one_line_each_and_nothing_else(
    store: Store, corpus: Corpus, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database already holds other photos, and the photo in the folder that will be unreadable.
    other = [write_photo(tmp_path / "other" / f"{k}.jpg", (k * 50, 20, 20)) for k in range(3)]
    first = scan(store, [tmp_path / "other", corpus.unreadable_folder])
    assert (first.analysed, first.errors) == (4, [])
    kept = corpus.unreadable_folder / "kept.jpg"
    before = {f.id: f.photo_path for f, _ in store.faces()}
    assert sorted(before.values()) == sorted([*other, kept])

    simulate_trouble(corpus, monkeypatch)
    report = scan(store, [corpus.root])

    assert reasons(report.errors) == corpus.errors
    assert len(report.errors) == len(corpus.errors)  # each once
    for _path, reason in report.errors:
        assert reason and "\n" not in reason
    # Every good file was analysed (once: the symlink loop shows nothing twice), at its displayed size.
    assert (report.files, report.analysed, report.faces_found) == (
        len(corpus.good) + len(corpus.bad_files),
        len(corpus.good),
        len(corpus.good),
    )
    assert fake_embedder.calls == 4 + len(corpus.good)
    assert done_photos(store) == {**corpus.good, **{p: (64, 48) for p in [*other, kept]}}
    # The files the scan read are in the database with their reason; the walk's are in the report only.
    assert reasons(store.errors(report.scan_id)) == {os.fsdecode(p): r for p, r in corpus.bad_files.items()}
    # The scan completed, and what the database held before is still there: nothing missing,
    # the unreadable folder's photo included.
    status, summary = store.conn.execute("SELECT status, summary FROM scans WHERE id = ?", (report.scan_id,)).fetchone()
    assert (status, json.loads(summary)["error_count"]) == ("completed", len(corpus.errors))
    assert report.missing == 0
    assert {f.id: f.photo_path for f, _ in store.faces() if f.photo_path in before.values()} == before
    assert store.counts() == {
        "done": len(corpus.good) + 4,
        "error": len(corpus.bad_files),
        "missing": 0,
        "faces": len(corpus.good) + 4,
        "persons": 0,
    }


def test_the_cli_lists_each_bad_file_on_one_line(
    corpus: Corpus, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate_trouble(corpus, monkeypatch)
    result = CliRunner().invoke(app, ["scan", str(corpus.root), "--db", str(tmp_path / "c.db"), "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    start = lines.index(f"{len(corpus.errors)} file(s) could not be used:")
    # A newline and a byte that is not UTF-8, in a file name, are shown escaped.
    shown = {path: path.replace("\n", "\\n").replace("\udcff", "\\xff") for path in corpus.errors}
    assert shown[os.fsdecode(corpus.root / os.fsdecode(b"broken\nname\xff.jpg"))] == (
        f"{corpus.root}/broken\\nname\\xff.jpg"
    )
    listed = [re.sub(r"\(\d+ bytes not processed\)", "(N bytes not processed)", line) for line in lines[start + 1 :]]
    assert sorted(listed) == sorted(f"  {shown[path]}: {reason}" for path, reason in corpus.errors.items())
    assert "Traceback" not in result.stderr


def test_a_failed_file_is_retried_only_when_it_changed_or_when_asked(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "lib"
    write_photo(lib / "good.jpg", (200, 30, 30))
    (lib / "empty.jpg").write_bytes(b"")
    (lib / "text.jpg").write_text("not a photo")
    truncated_jpeg(lib / "truncated.jpg")
    (lib / "bomb.png").write_bytes(png_claiming(30000, 30000))
    first = scan(store, [lib])
    expected = {
        str(lib / "empty.jpg"): NOT_AN_IMAGE,
        str(lib / "text.jpg"): NOT_AN_IMAGE,
        str(lib / "truncated.jpg"): TRUNCATED,
        str(lib / "bomb.png"): BOMB,
    }
    assert (first.analysed, reasons(first.errors)) == (1, expected)

    decoded: list[Path] = []

    def load_image(path: Path, *args: Any, **kwargs: Any) -> DecodedImage:
        decoded.append(path)
        return images.load_image(path, *args, **kwargs)

    monkeypatch.setattr(fc, "load_image", load_image)
    # Unchanged: not read again, still reported.
    again = scan(store, [lib])
    assert (decoded, again.analysed, reasons(again.errors)) == ([], 0, expected)
    # Changed (the complete file arrived; a file only touched counts as changed too): read again.
    write_photo(lib / "truncated.jpg", (30, 200, 30))
    os.utime(lib / "text.jpg", ns=(1, 1))
    changed = scan(store, [lib])
    assert sorted(decoded) == [lib / "text.jpg", lib / "truncated.jpg"]
    del expected[str(lib / "truncated.jpg")]
    assert (changed.analysed, reasons(changed.errors)) == (1, expected)
    # --retry-errors: every failed file is read again.
    decoded.clear()
    result = CliRunner().invoke(
        app, ["scan", str(lib), "--db", str(store.path), "--workers", "1", "--retry-errors", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(decoded) == [lib / "bomb.png", lib / "empty.jpg", lib / "text.jpg"]
    doc = json.loads(result.stdout)
    assert (doc["analysed"], doc["unchanged"], reasons([(e["path"], e["reason"]) for e in doc["errors"]])) == (
        0,
        2,
        expected,
    )
    assert fake_embedder.calls == 2


@pytest.mark.models
def test_a_photo_of_56_faces_gives_at_least_50(store: Store, fixtures: Path, tmp_path: Path) -> None:
    """One detection run on an 8 x 7 grid of real 150 px face photos (1200 x 1050)."""
    sources = sorted((fixtures / "dlib-johns").glob("*/*.jpg"))
    assert len(sources) >= 50
    crowd = Image.new("RGB", (8 * 150, 7 * 150))
    for k in range(56):
        with Image.open(sources[k % len(sources)]) as im:
            crowd.paste(im.convert("RGB").resize((150, 150)), ((k % 8) * 150, (k // 8) * 150))
    (tmp_path / "lib").mkdir()
    crowd.save(tmp_path / "lib" / "crowd.jpg", quality=92)
    report = scan(store, [tmp_path / "lib"], DetectionSettings(max_size=1200))
    assert (report.analysed, report.errors) == (1, [])
    boxes = [f.box for f, _ in store.faces()]
    assert report.faces_found == len(boxes) >= 50
    # Every face is a different one: a box of its own, centred in a cell of its own.
    assert len({tuple(b.as_list(0)) for b in boxes}) == len(boxes)
    cells = {(int((b.left + b.right) / 2 // 150), int((b.top + b.bottom) / 2 // 150)) for b in boxes}
    assert len(cells) == len(boxes)
    assert cells <= {(x, y) for x in range(8) for y in range(7)}


# -- Ctrl-C ------------------------------------------------------------------------------


def johns_library(fixtures: Path, root: Path, n: int = 12) -> list[Path]:
    root.mkdir(parents=True)
    out = []
    for k, src in enumerate(sorted((fixtures / "dlib-johns").glob("*/*.jpg"))[::4][:n]):
        out.append(root / f"{k:02d}.jpg")
        out[-1].write_bytes(src.read_bytes())
    return out


def progress(db: Path) -> tuple[str | None, int]:
    """The latest scan's status and the photos done, as another process sees them now."""
    if not db.exists():
        return None, 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            row = conn.execute("SELECT status FROM scans ORDER BY id DESC LIMIT 1").fetchone()
            done = conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return None, 0
    return (None if row is None else str(row[0])), int(done)


def _default_sigint() -> None:
    """The scan gets Ctrl-C as from a terminal, even when this test run itself was started in
    the background (a shell starts background jobs with SIGINT ignored, and children inherit it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the scan ended (exit {proc.returncode}) before it got there:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the scan did not get there in time")
        time.sleep(0.05)


INTERRUPTED = re.compile(
    r"Error: scan interrupted after (\d+) photos; what was done is kept: run the same command to resume"
)


@pytest.mark.models
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_scan_cleanly_and_a_rerun_does_only_the_rest(
    fixtures: Path, tmp_path: Path, workers: int
) -> None:
    photos = johns_library(fixtures, tmp_path / "lib")
    db = tmp_path / "scan.db"
    # dlib's own engine: ~1 s a photo, slow enough for the Ctrl-C to land mid-scan.
    cmd = [sys.executable, "-m", "photocluster", "scan", str(tmp_path / "lib"), "--db", str(db), "--engine", "dlib"]
    # A session of its own, so that the Ctrl-C reaches the scan and its worker processes
    # alike, as a terminal's does.
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    wait_until(proc, lambda: progress(db)[0] == "running" and progress(db)[1] >= 2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    (line,) = [line for line in err.splitlines() if "resume" in line]
    match = INTERRUPTED.fullmatch(line)
    assert match, line
    assert out == ""
    with Store(db) as store:
        kept = {f.photo_path: f.id for f, _ in store.faces()}
        assert [s for (s,) in store.conn.execute("SELECT status FROM scans")] == ["interrupted"]
        assert store.counts()["done"] == len(kept)
    assert 2 <= len(kept) < len(photos)
    assert int(match.group(1)) == len(kept)

    rerun = subprocess.run([*cmd, "--workers", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    n = len(kept)
    assert (doc["files"], doc["analysed"], doc["unchanged"], doc["error_count"]) == (len(photos), len(photos) - n, n, 0)
    with Store(db) as store:
        after = {f.photo_path: f.id for f, _ in store.faces()}
        assert sorted(after) == photos  # one face each, none twice
        assert {p: after[p] for p in kept} == kept  # what was done was kept, not redone
        assert [s for (s,) in store.conn.execute("SELECT status FROM scans ORDER BY id")] == [
            "interrupted",
            "completed",
        ]
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.models
def test_ctrl_c_while_the_worker_processes_start_prints_no_traceback(fixtures: Path, tmp_path: Path) -> None:
    """The workers are importing and loading models for the first seconds: a Ctrl-C then
    reaches them too, and must not become their tracebacks."""
    photos = johns_library(fixtures, tmp_path / "lib")
    db = tmp_path / "scan.db"
    cmd = [
        sys.executable,
        "-m",
        "photocluster",
        "scan",
        str(tmp_path / "lib"),
        "--db",
        str(db),
        "--workers",
        "2",
        "--engine",
        "dlib",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    wait_until(proc, lambda: progress(db)[0] == "running")
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    (line,) = [line for line in err.splitlines() if "resume" in line]
    match = INTERRUPTED.fullmatch(line)
    assert match, line
    with Store(db) as store:
        assert [s for (s,) in store.conn.execute("SELECT status FROM scans")] == ["interrupted"]
        assert int(match.group(1)) == store.counts()["done"] < len(photos)


# -- two processes on one database ---------------------------------------------------------

# `photocluster ...` with the fake embedder, which holds the scan after `hold_after` photos
# until the file `gate` exists, then goes on at `pace` seconds a photo.
GATED_CLI = """
import os, sys, time
tests, gate, hold_after, pace = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
del sys.argv[1:5]
sys.path.insert(0, tests)
from conftest import FakeEmbedder
from photocluster.detect import faces as faces
fake = FakeEmbedder()
def gated(image, settings):
    while fake.calls >= hold_after and not os.path.exists(gate):
        time.sleep(0.02)
    time.sleep(pace)
    return fake(image, settings)
faces.analyze_pixels = gated
faces.warm_up = lambda settings: None
from photocluster.cli import main
sys.argv[0] = "photocluster"
main()
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photocluster", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_second_scan_is_refused_and_clusters_works_during_a_scan(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    # Three "persons" for the fake embedder (one colour each; every file's bytes differ).
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for k in range(30):
        write_photo(lib / f"{k:02d}.jpg", colours[k % 3], size=(64 + k, 48))
    db, gate = tmp_path / "shared.db", tmp_path / "gate"
    gated = [sys.executable, "-c", GATED_CLI, str(TESTS), str(gate), "3", "0.1"]
    first = subprocess.Popen(
        [*gated, "scan", str(lib), "--db", str(db), "--workers", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(first, lambda: progress(db) == ("running", 3))
        second = cli("scan", str(lib), "--db", str(db), "--workers", "1")
        held = cli("clusters", "--db", str(db), "--json")
        assert first.poll() is None
        gate.touch()
        while_writing = cli("clusters", "--db", str(db), "--json")
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()

    assert second.returncode == 1
    assert second.stderr == (
        f"Error: {db}: a scan (pid {first.pid}) is using this database; wait for it to finish, or use another --db\n"
    )
    assert second.stdout == ""
    # clusters while the scan is held: exactly the 3 faces committed so far, one person each (min size 2).
    assert held.returncode == 0, held.stderr
    assert {k: json.loads(held.stdout)[k] for k in ("faces", "persons", "unknown")} == {
        "faces": 3,
        "persons": 0,
        "unknown": 3,
    }
    # clusters while the scan writes: a consistent part of the library.
    assert while_writing.returncode == 0, while_writing.stderr
    doc = json.loads(while_writing.stdout)
    assert 3 <= doc["faces"] <= 30 and doc["faces"] == doc["unknown"] + sum(
        p["faces"] for p in doc["persons_list"] if p["id"] is not None
    )
    assert first.returncode == 0, err
    assert (json.loads(out)["analysed"], json.loads(out)["error_count"]) == (30, 0)
    with Store(db) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # The refused scan left no trace in the scans table.
        assert store.conn.execute("SELECT id, status FROM scans").fetchall() == [(1, "completed")]
        assert (store.counts()["done"], store.counts()["faces"]) == (30, 30)
    final = cli("clusters", "--db", str(db), "--json")
    assert final.returncode == 0, final.stderr
    doc = json.loads(final.stdout)
    assert (doc["faces"], doc["persons"], doc["unknown"]) == (30, 3, 0)
    assert sorted(p["faces"] for p in doc["persons_list"]) == [10, 10, 10]


# -- originals are never changed ------------------------------------------------------------


def fingerprint(root: Path) -> dict[str, tuple[object, ...]]:
    """Every file and folder under ``root``: kind, mode, size, modification time and, for
    files, the SHA-256 of the bytes."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest() if name in filenames else ""
            key = os.fsdecode(os.path.relpath(path, os.fsencode(root)))
            out[key] = (st.st_mode, st.st_size if name in filenames else 0, st.st_mtime_ns, digest)
    return out


def test_originals_are_unchanged_by_scan_clusters_and_every_export(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    lib = tmp_path / "Pictures"
    for k in range(3):
        jpeg_with_orientation(lib / "2021" / f"IMG_{k}.jpg", 6, (200, 30, 30), size=(64 + k, 48))
        write_photo(lib / "2022" / f"beach {k}.png", (30, 30, 200), size=(64 + k, 48), format="PNG")
    write_photo(lib / os.fsdecode(b"caf\xe9.jpg"), (30, 200, 30))
    (lib / "2022" / "beach 0.png.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'>mine</x:xmpmeta>")
    (lib / "notes.txt").write_text("not a photo")
    before = fingerprint(lib)
    db = str(tmp_path / "p.db")
    runner = CliRunner()

    def run(*args: str) -> dict[str, Any]:
        result = runner.invoke(app, [*args, "--db", db, "--json"])
        assert result.exit_code == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    assert run("scan", str(lib), "--workers", "1")["analysed"] == 7
    assert (run("clusters")["persons"], run("status")["faces"]) == (2, 7)
    for mode in ("copy", "hardlink", "symlink"):
        for _ in range(2):  # and again, updating in place
            doc = run("export", str(tmp_path / f"People-{mode}"), "--mode", mode, "--crops", "--xmp", "dest")
            assert (doc["persons"], doc["crops"], doc["sidecars"], doc["warnings"]) == (2, 7, 6, [])
    assert fingerprint(lib) == before
    assert run("scan", str(lib), "--workers", "1")["unchanged"] == 7


# -- hostile person names ------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "../../escape",
    "..",
    ".",
    "/",
    "a/../../b",
    "..\\..\\windows",
    "\x00",
    "line\nbreak\r",
    "\u202eevil.jpg",
    "CON",
    "crops",
    ".thumbs",
    ".photocluster-export",
    "index.html",
    "~",
    "$HOME",
    "%2e%2e%2f",
    "x" * 300,
    "😀" * 300,
]


def test_hostile_names_stay_text_and_inside_dest_with_every_option(store: Store, tmp_path: Path) -> None:
    lib = tmp_path / "photos"
    scan_id = store.begin_scan([lib], "fake")
    for k in range(3):
        path = write_photo(lib / f"p{k}.jpg", (200, 30, 30))
        st = path.stat()
        face = make_face(near(fake_embedding("ann"), 0.2, k))
        store.save_photo(
            path, st.st_size, st.st_mtime_ns, f"sha{k}", scan_id, "fake", width=64, height=48, faces=[face]
        )
    recluster(store, 0.6, 2, method="whispers")
    ((person_id, _),) = store.person_names().items()
    parent = tmp_path / "exports"
    dest = parent / "People"
    dest.mkdir(parents=True)

    def outside() -> dict[str, tuple[object, ...]]:
        """Everything beside DEST, up to the test's folder (but the database)."""
        return {
            k: v
            for k, v in fingerprint(tmp_path).items()
            if not k.startswith(("exports/People/", "test.db")) and k != "exports/People"
        }

    for name in HOSTILE:
        with store.transaction() as conn:
            conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, person_id))
        before = outside()
        report = export(store, dest, "copy", crops=True, xmp="dest")
        assert (report.created + report.unchanged + report.updated, report.skipped, report.warnings) == (3, [], [])
        assert outside() == before
        assert sorted(p.name for p in parent.iterdir()) == ["People"]
        folder = dest / safe_folder_name(name)
        assert folder.parent == dest and folder.is_dir() and not folder.is_symlink()
        assert sorted(p.name for p in folder.iterdir()) == [f"p{k}.jpg{x}" for k in range(3) for x in ("", ".xmp")]
        # index.json holds the name as it is; index.html shows it as text.
        index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
        assert [p["name"] for p in index["persons"]] == [name]
        page = (dest / "index.html").read_text(encoding="utf-8")
        page += (dest / "pages" / f"person-{person_id}.html").read_text(encoding="utf-8")
        assert "<script" not in page.lower()
        if name.startswith("<script>"):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        # The sidecars are XML that reads back (control characters became spaces), and a
        # second export leaves them alone.
        written = {}
        for sidecar in sorted(folder.glob("*.xmp")):
            regions = [e.text for e in ET.parse(sidecar).iter() if e.tag.endswith("}Name")]
            assert regions == [{"\x00": f"person_{person_id:04d}", "line\nbreak\r": "line break"}.get(name, name)]
            written[sidecar] = sidecar.stat().st_mtime_ns
        again = export(store, dest, "copy", crops=True, xmp="dest")
        assert (again.unchanged, again.warnings) == (3, [])
        assert {p: p.stat().st_mtime_ns for p in written} == written, name
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == sorted(
        ["crops", ".thumbs", "pages", safe_folder_name(HOSTILE[-1])]
    )


# -- database versions ---------------------------------------------------------------------


def test_a_version_1_database_is_migrated_and_usable(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO scans(id, started_at, status, roots, settings) VALUES (1, 0, 'completed', '[]', 's')")
    vectors = [near(fake_embedding("ann"), 0.2, k) for k in range(3)] + [fake_embedding("bob")]
    for k, vector in enumerate(vectors):
        conn.execute(
            "INSERT INTO photos(id, path, size, mtime_ns, sha256, width, height, status, settings, scan_id, "
            "seen_scan_id, updated_at) VALUES (?, ?, 10, 20, ?, 64, 48, 'done', 's', 1, 1, 0)",
            (k + 1, os.fsencode(tmp_path / f"{k}.jpg"), f"sha{k}"),
        )
        conn.execute(
            "INSERT INTO faces(photo_id, left, top, right, bottom, confidence, landmarks, embedding) "
            "VALUES (?, 1, 2, 30, 40, 0.9, ?, ?)",
            (k + 1, np.zeros((5, 2), "<f4").tobytes(), vector.astype("<f4").tobytes()),
        )
    conn.execute("INSERT INTO persons(id, name, created_at) VALUES (7, 'Ann', 0)")
    conn.execute("UPDATE faces SET person_id = 7 WHERE photo_id <= 2")
    conn.commit()
    conn.close()

    with Store(db) as store:
        assert store.schema_version == store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # Data intact.
        assert store.counts() == {"done": 4, "error": 0, "missing": 0, "faces": 4, "persons": 1}
        ids, photo_ids, emb = store.active_embeddings()
        assert (ids.tolist(), photo_ids.tolist()) == ([1, 2, 3, 4], [1, 2, 3, 4])
        assert np.array_equal(emb, np.stack(vectors).astype(np.float32))
        assert store.photo(1).path == tmp_path / "0.jpg"
        # New in version 2, with its defaults.
        assert (store.person_names(), store.ignored_persons(), store.pins()) == ({7: "Ann"}, set(), {})
        assert store.history() == []
        # Usable: clustering keeps Ann's id and name and gives her the third photo of her.
        report = recluster(store, 0.6, 2, method="whispers")
        assert (report.persons, report.unknown) == (1, 1)
        assert [(p.id, p.name, sorted(f.face_id for f in p.faces)) for p in persons(store)] == [
            (7, "Ann", [1, 2, 3]),
            (None, None, [4]),
        ]


def test_a_database_from_a_newer_version_is_refused_in_one_line(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    db = tmp_path / "new.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    write_photo(tmp_path / "lib" / "a.jpg", (200, 30, 30))
    message = (
        f"Error: {db}: database schema version {SCHEMA_VERSION + 1} is newer than this photocluster "
        f"supports ({SCHEMA_VERSION}); upgrade photocluster to open it\n"
    )
    for args in (["status"], ["clusters"], ["scan", str(tmp_path / "lib"), "--workers", "1"]):
        result = CliRunner().invoke(app, [*args, "--db", str(db)])
        assert (result.exit_code, result.stderr, result.stdout) == (1, message, ""), args
    assert fake_embedder.calls == 0
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 0
    conn.close()
