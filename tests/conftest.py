"""Shared fixtures: a temporary state dir for every test, the real fixture photos, a fake embedder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import ExifTags, Image

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage
from photocluster.store import Store

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


PHOTOS = REPO / "tests" / "photos"
"""The photos shipped with the repository (see its SOURCES.md): every real-model test runs on them."""


def fixtures_dir() -> Path:
    """The larger fixture set, optional: beside the checkout, or where PHOTOCLUSTER_FIXTURES says."""
    return Path(os.environ.get("PHOTOCLUSTER_FIXTURES", REPO.parent / "shared" / "fixtures"))


def shared_fixtures_present() -> bool:
    return (fixtures_dir() / "labels.csv").is_file()


def _photo_count(root: Path) -> int:
    with open(root / "labels.csv", newline="") as fh:
        return sum(1 for _ in fh) - 1


def pytest_report_header(config: pytest.Config) -> str:
    shared = fixtures_dir()
    present = f"present at {shared} ({_photo_count(shared)} photos)" if shared_fixtures_present() else "absent"
    return f"photo sets: shipped (tests/photos, {_photo_count(PHOTOS)} photos); shared fixtures: {present}"


_NEEDS_SHARED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``shared_fixtures`` run only when the larger set is there; without it they
    are deselected (never errored, never skipped silently) and the summary names them."""
    if shared_fixtures_present():
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("shared_fixtures") else keep).append(item)
    if drop:
        _NEEDS_SHARED[:] = [item.nodeid for item in drop]
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist the workers collect: hand their list to the controller's summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["needs_shared"] = list(_NEEDS_SHARED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    for nodeid in getattr(node, "workeroutput", {}).get("needs_shared", []):
        if nodeid not in _NEEDS_SHARED:
            _NEEDS_SHARED.append(nodeid)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    shared = fixtures_dir()
    shipped = f"shipped (tests/photos, {_photo_count(PHOTOS)} photos)"
    if shared_fixtures_present():
        terminalreporter.write_line(f"photo sets: {shipped} and shared fixtures ({shared}): both ran", bold=True)
        return
    terminalreporter.write_line(
        f"photo sets: {shipped} ran; shared fixtures absent at {shared} (set PHOTOCLUSTER_FIXTURES): "
        f"{len(_NEEDS_SHARED)} test(s) that need them were deselected",
        yellow=True,
        bold=True,
    )
    for nodeid in _NEEDS_SHARED:
        terminalreporter.write_line(f"  deselected, needs the shared fixtures: {nodeid}")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test ever touches the user's real database."""
    home = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("PHOTOCLUSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The labelled photos shipped in tests/photos (same layout and labels.csv format as the
    larger set). Missing ones fail: they never skip."""
    if not (PHOTOS / "labels.csv").is_file():
        pytest.fail(f"the shipped test photos are missing at {PHOTOS}")
    return PHOTOS


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The larger fixture set; only for tests marked ``shared_fixtures`` (deselected without it)."""
    root = fixtures_dir()
    if not (root / "labels.csv").is_file():
        pytest.fail(f"shared fixture photos not found at {root}: mark the test shared_fixtures")
    return root


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "test.db") as s:
        yield s


def fake_embedding(seed: int | str, dim: int = 128) -> np.ndarray:
    """A deterministic unit-length vector for ``seed``."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    v = rng.normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def near(base: np.ndarray, distance: float, seed: int | str) -> np.ndarray:
    """A vector at exactly ``distance`` from ``base``, in a direction set by ``seed``."""
    d = fake_embedding(f"dir-{seed}", len(base))
    d = d - d.dot(base) * base / base.dot(base)
    d /= np.linalg.norm(d)
    return (base + distance * d).astype(np.float32)


def make_face(embedding: np.ndarray, box: tuple[float, float, float, float] = (10, 10, 60, 60)) -> Face:
    left, top, right, bottom = box
    pts = np.array(
        [
            [right - 5, top + 15],
            [left + 25, top + 15],
            [left + 5, top + 15],
            [left + 20, top + 15],
            [left + 25, bottom - 10],
        ],
        dtype=np.float32,
    )
    return Face(
        box=Box(*box),
        confidence=1.0,
        landmarks=pts,
        embedding=embedding,
    )


class FakeEmbedder:
    """Stands in for detection + embedding: one face per photo, its embedding taken from
    the photo's mean colour, so photos of one flat colour are "one person". Counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: DecodedImage, settings: DetectionSettings) -> list[Face]:
        self.calls += 1
        mean = image.pixels.reshape(-1, 3).mean(axis=0)
        seed = "-".join(str(int(c) // 32) for c in mean)
        w, h = image.width, image.height
        return [make_face(fake_embedding(seed), (w * 0.25, h * 0.25, w * 0.75, h * 0.75))]


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> FakeEmbedder:
    """Replace the dlib stage (in this process: use workers=1) with :class:`FakeEmbedder`."""
    fake = FakeEmbedder()
    monkeypatch.setattr(faces_module, "analyze_pixels", fake)
    return fake


def rgba_png(src: Path, dest: Path) -> Path:
    """``src`` stored again as a 32-bit RGBA PNG (as face_recognition's ``32bit.png`` is its
    ``obama2.jpg``): a format edge case made from a shipped photo."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im.convert("RGBA").save(dest, "PNG")
    return dest


def write_photo(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 48), **save: object) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, **save)  # type: ignore[arg-type]
    return path


# -- test photos shown turned by their EXIF orientation (XMP regions, face tags) --

RED = (230, 20, 20)
# Stored image -> displayed image, as Pillow's exif_transpose does it; and the way back.
TO_DISPLAYED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
TO_STORED = {**TO_DISPLAYED, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
DISPLAYED = (160, 100)  # every test photo is 160x100 as displayed
FACE = (30.0, 20.0, 70.0, 70.0)  # the red square, in displayed pixels


def rotated_photo(path: Path, orientation: int, face: tuple[float, float, float, float] = FACE) -> Path:
    """A JPEG that *displays* as a grey 160x100 picture with a red square at ``face``,
    stored turned the other way and tagged with EXIF ``orientation``."""
    displayed = Image.new("RGB", DISPLAYED, (120, 120, 120))
    displayed.paste(RED, tuple(round(v) for v in face))  # type: ignore[arg-type]
    stored = displayed.transpose(TO_STORED[orientation]) if orientation != 1 else displayed
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def red_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of the red pixels."""
    mask = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def exiftool_write(*args: str | Path) -> None:
    tool = shutil.which("exiftool")
    if tool is None:
        pytest.fail("exiftool not found: apt-get install -y libimage-exiftool-perl (.ci/run does this)")
    done = subprocess.run([tool, "-q", *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def tag_faces(photo: Path, regions: list[tuple[str, tuple[float, float, float, float]]]) -> Path:
    """Write MWG face regions (name, box in displayed pixels) into ``photo`` with exiftool."""
    from photocluster.detect.images import exif_orientation
    from photocluster.detect.regions import Geometry, stored_area

    with Image.open(photo) as im:
        geo = Geometry(im.size[0], im.size[1], exif_orientation(im.getexif()))
    items = []
    for name, box in regions:
        x, y, w, h = stored_area(Box(*box), geo)
        items.append(f"{{Area={{X={x},Y={y},W={w},H={h},Unit=normalized}},Name={name},Type=Face}}")
    dims = f"AppliedToDimensions={{W={geo.width},H={geo.height},Unit=pixel}}"
    exiftool_write("-overwrite_original", f"-XMP-mwg-rs:RegionInfo={{{dims},RegionList=[{','.join(items)}]}}", photo)
    return photo


# Flat-colour photos, one face each: "who" is told by the colour in a screenshot.
COLOURS = {
    "alice": (200, 40, 40),
    "bob": (40, 40, 200),
    "carol": (40, 160, 40),
    "stranger": (200, 160, 40),
}
COLOUR_PLAN = {"alice": 4, "bob": 3, "carol": 2, "stranger": 1}


def colour_library(store: Store, root: Path, settings: str = "cnn/max1600/upauto/v1") -> None:
    """Photos ``root/<who><k>.jpg`` (96 px, of ``who``'s colour) with one face each, whose
    embeddings lie 0.2 from ``who``'s centre, recorded as a scan would (not clustered)."""
    scan_id = store.begin_scan([root], settings)
    for who, n in COLOUR_PLAN.items():
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
                settings,
                width=96,
                height=96,
                faces=[make_face(emb, (24, 24, 72, 72))],
            )


# -- a real browser ----------------------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium: Playwright cannot download its own browsers here. Missing: fail, never skip."""
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail(
            "chromium not found: the review pages are tested in a real headless browser. "
            "Install it: apt-get install -y chromium (.ci/run does this)"
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, one per test process."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser tab (its own cookies and cache), 1200x900, light colour scheme."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, color_scheme="light")
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def screenshot(page: Any) -> bytes:
    """The page as a PNG. Headless Chromium under load sometimes has no frame to give yet
    ("Unable to capture screenshot"): ask again, a few times, before failing."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            return bytes(page.screenshot())
        except Error as exc:
            if "Unable to capture screenshot" not in str(exc) or attempt == 2:
                raise
            page.wait_for_timeout(500)
    raise AssertionError("unreachable")


def assert_not_blank(png: bytes) -> None:
    """A screenshot that shows something: many colours and real contrast."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        pixels = np.asarray(im.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50, f"screenshot has only {len(colours)} colours"
    assert pixels.std() > 8, f"screenshot pixel deviation {pixels.std():.1f}"


# -- hostile files: FIFOs, devices, huge files ----------------------------------------------

HANG_GUARD_S = 120  # a bound on hanging, not a speed figure


def without_hanging(fn: Callable[[], T], fifos: Iterable[Path] = (), seconds: float = HANG_GUARD_S) -> T:
    """``fn()``, run in a thread as a guard against a hang: if it has not returned after
    ``seconds``, each FIFO in ``fifos`` is opened for writing (which frees a reader stuck on
    it) and the test fails. Its exception, if any, is raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(30)
        pytest.fail(f"still running after {seconds} s: blocked on a FIFO or reading without end")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no room on disk (zeros, written by truncate)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


XMP_NS = (
    'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
    'xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"'
)


def mwg_sidecar(names: list[str], kind: str = "Face", per_row: int = 100) -> bytes:
    """An XMP sidecar with an MWG region per name: ``per_row`` side by side along the top of
    the photo, then the next row (each region 0.8/``per_row`` wide, normalised)."""
    side = 0.8 / per_row
    items = "".join(
        f'<rdf:li rdf:parseType="Resource"><mwg-rs:Name>{name}</mwg-rs:Name><mwg-rs:Type>{kind}</mwg-rs:Type>'
        f'<mwg-rs:Area stArea:x="{(k % per_row + 0.5) / per_row}" stArea:y="{(k // per_row + 0.5) / per_row}" '
        f'stArea:w="{side}" stArea:h="{side}" stArea:unit="normalized"/></rdf:li>'
        for k, name in enumerate(names)
    )
    return (
        f'<x:xmpmeta {XMP_NS}><rdf:RDF><rdf:Description rdf:about=""><mwg-rs:Regions rdf:parseType="Resource">'
        f"<mwg-rs:RegionList><rdf:Bag>{items}</rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
