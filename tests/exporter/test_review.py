"""The review page (index.html): faces in doubt, escaping, and a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import ExifTags, Image

from conftest import fake_embedding, make_face, near, write_photo
from photocluster.app.listing import faces_in_doubt
from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.exporter.review import render_page
from photocluster.exporter.run import export
from photocluster.exporter.thumbnails import THUMB_SIZE
from photocluster.grouping.doubt import doubtful_faces
from photocluster.store import Store

SETTINGS = "cnn/max1600/upauto/v1"
HOSTILE = "<script>alert(1)</script> & \"Bob\" 'B'"

# -- faces in doubt ------------------------------------------------------------------


def test_doubtful_faces_ranks_the_misplaced_face_first() -> None:
    a, b = fake_embedding("a"), fake_embedding("b")
    emb = [near(a, 0.2, k) for k in range(4)] + [near(b, 0.2, k) for k in range(4)]
    emb += [near(b, 0.25, "x"), near(a, 0.55, "y")]  # x: Bob's face put with Alice; y: an odd Alice
    face_ids = np.arange(10, 20)
    persons = np.array([1, 1, 1, 1, 2, 2, 2, 2, 1, 1])
    out = doubtful_faces(face_ids, persons, np.stack(emb), threshold=0.6)
    assert [d.face_id for d in out] == [18, 19]
    x, y = out
    assert (x.person_id, x.nearest_person_id) == (1, 2)
    # Leave-one-out: x's distance is to the mean of Alice's other five faces.
    others = np.stack([emb[k] for k in (0, 1, 2, 3, 9)]).mean(axis=0)
    assert x.distance == pytest.approx(float(np.linalg.norm(emb[8] - others)), rel=1e-5)
    bob_centre = np.stack(emb[4:8]).mean(axis=0)
    assert x.nearest_distance == pytest.approx(float(np.linalg.norm(emb[8] - bob_centre)), rel=1e-5)
    assert x.score == pytest.approx(x.distance / x.nearest_distance) and x.score > 2
    assert y.nearest_person_id == 2 and y.score == pytest.approx(y.distance / 0.6)
    assert 0.75 <= y.score < x.score


def test_doubtful_faces_limits_and_edges() -> None:
    a = fake_embedding("a")
    emb = np.stack([near(a, 0.5, k) for k in range(5)])
    ids = np.arange(1, 6)
    # One person: nobody else to be close to; far faces still count.
    out = doubtful_faces(ids, np.ones(5, dtype=np.int64), emb, threshold=0.6, min_score=0.0)
    assert len(out) == 5
    assert all(d.nearest_person_id is None and d.nearest_distance == float("inf") for d in out)
    assert [d.score for d in out] == sorted((d.score for d in out), reverse=True)
    assert len(doubtful_faces(ids, np.ones(5, dtype=np.int64), emb, limit=2, min_score=0.0)) == 2
    # Unknown faces (-1) are never ranked; a person of one face has nothing to be far from.
    assert doubtful_faces(ids, np.full(5, -1), emb) == []
    single = doubtful_faces(ids[:1], np.array([7]), emb[:1], min_score=0.0)
    assert [(d.face_id, d.distance, d.score) for d in single] == [(1, 0.0, 0.0)]
    assert doubtful_faces(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((0, 128))) == []
    with pytest.raises(ValueError, match="one row per face, got 5, 4 and 5"):
        doubtful_faces(ids, np.ones(4), emb)


# -- the page itself -------------------------------------------------------------------


def face(fid: int, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": fid,
        "photo": f"/photos/p{fid}.jpg",
        "file": f"f/p{fid}.jpg",
        "box": [1.0, 2.0, 30.0, 40.0],
        "confidence": 1.0,
        "distance": 0.25,
        "thumbnail": f".thumbs/{fid}_abc.jpg",
        "crop": None,
    }
    doc.update(extra)
    return doc


def index_doc() -> dict[str, object]:
    return {
        "schema_version": 1,
        "tool": {"name": "photocluster", "version": "0"},
        "threshold": 0.6,
        "min_size": 2,
        "persons": [
            {"id": 4, "name": HOSTILE, "folder": "x", "face_count": 2, "photo_count": 2, "faces": [face(1), face(2)]},
        ],
        "unknown": {"folder": "unknown", "faces": [face(3, distance=None, thumbnail=None, photo="/a b/ü&<.jpg")]},
    }


def test_names_and_paths_are_escaped() -> None:
    page = render_page(index_doc(), missing={"f/p3.jpg"})
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Bob&quot; &#x27;B&#x27;" in page
    # A missing entry links to the original, percent-encoded; no thumbnail: a placeholder.
    assert 'href="file:///a%20b/%C3%BC%26%3C.jpg"' in page
    assert '<span class="nothumb"' in page


def test_file_names_that_are_not_utf8_link_byte_exact() -> None:
    doc = index_doc()
    odd = os.fsdecode(b"f/caf\xe9.jpg")
    doc["persons"][0]["faces"][0]["file"] = odd  # type: ignore[index]
    page = render_page(doc)
    assert 'href="f/caf%E9.jpg"' in page
    page.encode("utf-8")  # the page itself is valid UTF-8


# -- in a real browser -------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail(
            "chromium not found: the review page is tested in a real headless browser. "
            "Install it: apt-get install -y chromium (.ci/run does this)"
        )
    return found


def browse(page: Path, tmp_path: Path, *args: str) -> str:
    """Run headless Chromium on ``page`` (a file:// URL: no server, no network)."""
    profile = tmp_path / "chromium-profile"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """What the page shows: person sections in order, face ids per section, texts, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[tuple[str, list[int]]] = []
        self.names: list[str] = []
        self.scripts = 0
        self.images: list[str] = []
        self._in_name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self.sections.append((a.get("id") or "", []))
        if tag == "figure" and a.get("data-face-id"):
            self.sections[-1][1].append(int(a["data-face-id"] or 0))
        if tag == "span" and a.get("class") == "name":
            self._in_name = True
            self.names.append("")
        if tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_name = False

    def handle_data(self, data: str) -> None:
        if self._in_name:
            self.names[-1] += data


def dump_dom(page: Path, tmp_path: Path) -> Dom:
    dom = Dom()
    dom.feed(browse(page, tmp_path, "--dump-dom"))
    return dom


def screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    png = tmp_path / "shot.png"
    browse(page, tmp_path, f"--screenshot={png}", "--window-size=1200,900", "--hide-scrollbars")
    with Image.open(png) as im:
        assert im.size == (1200, 900)
        return np.asarray(im.convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50, f"screenshot has only {len(colours)} colours"
    assert pixels.std() > 20


def has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 16) -> bool:
    return bool((np.abs(pixels.astype(int) - rgb).max(axis=2) <= tol).any())


COLOURS = {
    "alice": (200, 40, 40),
    "bob": (40, 40, 200),
    "carol": (40, 160, 40),
    "stranger": (200, 160, 40),
}


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> Path:
    """Three persons (one with a hostile name), a stranger, and one of Bob's faces put with
    Alice: a wrong one for the page to show first."""
    root = tmp_path / "photos"
    scan_id = store.begin_scan([root], SETTINGS)
    plan = [("alice", 4), ("bob", 3), ("carol", 2), ("stranger", 1)]
    for who, n in plan:
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
    people = {f.photo_path.name: f.person_id for f, _ in store.faces()}
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = ? WHERE id = ?", (HOSTILE, people["bob0.jpg"]))
        conn.execute("UPDATE persons SET name = 'Alice' WHERE id = ?", (people["alice0.jpg"],))
        conn.execute(
            "UPDATE faces SET person_id = ? WHERE photo_id = (SELECT id FROM photos WHERE path = ?)",
            (people["alice0.jpg"], os.fsencode(root / "bob2.jpg")),
        )
    dest = tmp_path / "People"
    report = export(store, dest)
    assert report.warnings == [] and report.thumbnails == 10
    return dest


def test_the_page_in_chromium_lists_persons_faces_and_doubts(store: Store, exported: Path, tmp_path: Path) -> None:
    index = json.loads((exported / "index.json").read_text(encoding="utf-8"))
    dom = dump_dom(exported / "index.html", tmp_path)
    assert dom.scripts == 0  # the hostile name is text, not a script
    sections = dict(dom.sections)
    persons = [s for s, _ in dom.sections if s.startswith("person-")]
    # Every person, largest first, with exactly its faces; then the unknown faces.
    assert persons == [f"person-{p['id']}" for p in index["persons"]]
    assert [len(p["faces"]) for p in index["persons"]] == [5, 2, 2]
    for p in index["persons"]:
        assert sections[f"person-{p['id']}"] == [f["id"] for f in p["faces"]]
    assert sections["unknown"] == [f["id"] for f in index["unknown"]["faces"]]
    assert dom.names == [p["name"] or f"person_{p['id']:04d}" for p in index["persons"]]
    assert {"Alice", HOSTILE} <= set(dom.names)
    # First on the page: the faces in doubt, led by Bob's face among Alice's.
    assert dom.sections[0][0] == "doubt"
    bob_in_alice = next(f["id"] for f in index["persons"][0]["faces"] if f["photo"].endswith("bob2.jpg"))
    assert sections["doubt"][0] == bob_in_alice
    assert faces_in_doubt(store)[0].face_id == bob_in_alice
    # Every thumbnail is a file in the export.
    assert len(dom.images) == 10 + len(sections["doubt"])
    for src in dom.images:
        with Image.open(exported / src) as im:
            assert (im.format, im.size) == ("JPEG", (THUMB_SIZE, THUMB_SIZE))


def test_the_page_in_chromium_shows_the_thumbnails(exported: Path, tmp_path: Path) -> None:
    pixels = screenshot(exported / "index.html", tmp_path)
    assert_not_blank(pixels)
    # The thumbnails loaded from the file system: the photos' colours are on screen.
    for who in ("alice", "bob"):
        assert has_colour(pixels, COLOURS[who]), who


# -- a real-model export -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_export(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    """Two fixture photos and an EXIF-rotated copy of one (stored turned, tagged 6)."""
    tmp = tmp_path_factory.mktemp("real")
    photos = tmp / "photos"
    photos.mkdir()
    train = fixtures / "face_recognition-knn" / "train"
    shutil.copy(train / "obama" / "obama.jpg", photos / "obama.jpg")
    shutil.copy(train / "biden" / "biden.jpg", photos / "biden.jpg")
    with Image.open(photos / "obama.jpg") as im:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6
        im.transpose(Image.Transpose.ROTATE_90).save(photos / "obama_rotated.jpg", quality=95, exif=exif.tobytes())
    with Store(tmp / "real.db") as store:
        report = scan(store, [photos], DetectionSettings(max_size=512), workers=1)
        assert (report.faces_found, report.errors) == (3, [])
        recluster(store, threshold=0.6, min_size=2)
        yield store, tmp


@pytest.mark.models
def test_real_export_in_chromium(real_export: tuple[Store, Path], tmp_path: Path) -> None:
    store, tmp = real_export
    dest = tmp / "People"
    report = export(store, dest, crops=True)
    assert (report.persons, report.unknown_faces, report.thumbnails, report.crops) == (1, 1, 3, 3)
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    [obama] = index["persons"]
    assert sorted(Path(f["photo"]).name for f in obama["faces"]) == ["obama.jpg", "obama_rotated.jpg"]
    dom = dump_dom(dest / "index.html", tmp_path)
    sections = dict(dom.sections)
    assert sections[f"person-{obama['id']}"] == [f["id"] for f in obama["faces"]]
    assert sections["unknown"] == [index["unknown"]["faces"][0]["id"]]
    schema = json.loads((Path(__file__).parents[2] / "schema" / "index.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(index)
    # The rotated copy's thumbnail and chip show the face upright, like the original's.
    by_name = {Path(f["photo"]).name: f for f in obama["faces"]}
    for kind in ("thumbnail", "crop"):
        a, b = (np.asarray(Image.open(dest / by_name[n][kind]), dtype=float) for n in by_name)
        assert np.abs(a - b).mean() < 25, kind
    assert_not_blank(screenshot(dest / "index.html", tmp_path))


def test_suggestions_are_listed_as_questions_with_escaped_names() -> None:
    from photocluster.app.suggest import Suggestion

    doc = index_doc()
    doc["persons"] = [  # type: ignore[index]
        *doc["persons"],  # type: ignore[misc]
        {"id": 9, "name": None, "folder": "y", "face_count": 2, "photo_count": 2, "faces": [face(5), face(6)]},
    ]
    asked = Suggestion(4, 9, 0.512, (HOSTILE, None), (2, 2), (None, None))
    gone = Suggestion(4, 77, 0.5, (HOSTILE, None), (2, 1), (None, None))  # person 77 is not on the page
    page = render_page(doc, suggestions=[asked, gone])
    assert '<section id="suggest"' in page and page.count("<li data-pair=") == 1
    assert 'data-pair="4-9"' in page and "photocluster merge 4 9" in page and "0.51<" in page
    assert "<script" not in page
    assert '<section id="suggest"' not in render_page(index_doc())
