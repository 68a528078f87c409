"""The review pages (index.html, pages/): faces in doubt, escaping, paging, and a real headless Chromium."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import ExifTags, Image

from conftest import COLOURS, assert_not_blank, colour_library, fake_embedding, near, screenshot
from photocluster.app.export import export
from photocluster.app.listing import faces_in_doubt
from photocluster.app.recluster import recluster
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.core.readmodel import Card, FaceItem, Page, Summary
from photocluster.core.types import Box
from photocluster.exporter import pages, review
from photocluster.exporter.review import StaticLinks
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


# -- the pages themselves -------------------------------------------------------------


def item(fid: int, person: int | None = 4, photo: str = "") -> FaceItem:
    return FaceItem(fid, person, fid, Path(photo or f"/photos/p{fid}.jpg"), Box(1, 2, 30, 40), 0.25)


SUMMARY = Summary(persons=2, faces=4, unknown=1, doubts=0, threshold=0.6, min_size=2)


def static_links(missing: set[str] = frozenset(), prefix: str = "") -> StaticLinks:  # type: ignore[assignment]
    thumbs = {1: ".thumbs/ab/1_abc.jpg", 2: ".thumbs/cd/2_cde.jpg"}
    entries = {1: "x/p1.jpg", 2: "x/p2.jpg", 3: "unknown/p3.jpg"}
    return StaticLinks(prefix, thumbs, entries, set(missing))


def test_names_and_paths_are_escaped() -> None:
    card = Card(4, HOSTILE, 2, 2, item(1))
    index = pages.index_page(static_links(), SUMMARY, Page([card], 1, 1, 1))
    person = pages.person_page(static_links(prefix="../"), SUMMARY, card, Page([item(1), item(2)], 1, 1, 2))
    for page in (index, person):
        assert "<script" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Bob&quot; &#x27;B&#x27;" in page
    assert 'href="pages/person-4.html"' in index and 'src=".thumbs/ab/1_abc.jpg"' in index
    assert 'src="../.thumbs/ab/1_abc.jpg"' in person and 'href="../x/p2.jpg"' in person
    # A missing entry links to the original, percent-encoded; no thumbnail: a placeholder.
    odd = item(3, None, "/a b/ü&<.jpg")
    unknown = pages.unknown_page(static_links({"unknown/p3.jpg"}, "../"), SUMMARY, Page([odd], 1, 1, 1))
    assert 'href="file:///a%20b/%C3%BC%26%3C.jpg"' in unknown
    assert '<span class="nothumb"' in unknown
    assert "<form" not in index + person + unknown  # static pages carry no forms


def test_file_names_that_are_not_utf8_link_byte_exact() -> None:
    links = StaticLinks("", {}, {1: os.fsdecode(b"f/caf\xe9.jpg")}, set())
    page = pages.person_page(links, SUMMARY, Card(4, None, 1, 1, item(1)), Page([item(1)], 1, 1, 1))
    assert 'href="f/caf%E9.jpg"' in page
    page.encode("utf-8")  # the page itself is valid UTF-8


def test_pages_link_their_neighbours() -> None:
    cards = [Card(k, None, 1, 1, item(k, k)) for k in range(1, 4)]
    page = pages.index_page(static_links(), SUMMARY, Page(cards, 5, 9, 900))
    assert 'href="pages/index-4.html">‹ previous' in page and 'href="pages/index-6.html">next' in page
    assert 'href="index.html">1</a>' in page and 'href="pages/index-9.html">9</a>' in page
    assert '<span class="current">5</span>' in page
    # The first of one page: no pager at all.
    assert 'class="pager"' not in pages.index_page(static_links(), SUMMARY, Page(cards, 1, 1, 3))


def test_what_a_name_says_is_shown_never_run() -> None:
    # Template syntax in a name is text; a file name that is not UTF-8 shows replacement characters.
    card = Card(4, "{{ 7 * 7 }} {% if 1 %}x{% endif %}", 1, 1, item(1))
    odd = item(1, 4, os.fsdecode(b"/photos/caf\xe9.jpg"))
    page = pages.person_page(static_links(prefix="../"), SUMMARY, card, Page([odd], 1, 1, 1))
    assert "{{ 7 * 7 }} {% if 1 %}x{% endif %}</span>" in page and "49 x" not in page
    assert 'title="/photos/caf\ufffd.jpg  box [1, 2, 30, 40]"' in page
    page.encode("utf-8")


def test_the_templates_are_compiled_once_and_ship_with_the_package() -> None:
    import tomllib

    env = pages._environment()
    assert pages._environment() is env and not env.auto_reload  # no stat() per page of an export
    folder = Path(pages.__file__).with_name("templates")
    names = sorted(p.name for p in folder.iterdir())
    assert {"base.html", "macros.html", "index.html", "person.html", "doubt.html", "unknown.html"} <= set(names)
    for name in names:
        assert env.get_template(name) is env.get_template(name)
    # The wheel takes the templates folder beside whichever package holds the pages.
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    shipped = {p.name for pattern in patterns for p in folder.parent.glob(pattern)}
    assert shipped == set(names)


# -- in a real browser -------------------------------------------------------------------


def faces_on(page: Any) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("figure[data-face-id]", "els => els.map(e => e.dataset.faceId)")]


def assert_thumbnails_loaded(page: Any) -> None:
    """Every <img> on the page loaded from the export folder, at the thumbnails' size."""
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
    assert sizes and all(done and width == THUMB_SIZE for done, width in sizes), sizes


def screenshot_pixels(page: Any) -> np.ndarray:
    png = screenshot(page)
    assert_not_blank(png)
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (1200, 900)
        return np.asarray(im.convert("RGB"))


def has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 16) -> bool:
    return bool((np.abs(pixels.astype(int) - rgb).max(axis=2) <= tol).any())


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> Path:
    """Three persons (one with a hostile name), a stranger, and one of Bob's faces put with
    Alice: a wrong one for the page to show first."""
    root = tmp_path / "photos"
    colour_library(store, root)
    recluster(store, threshold=0.6, min_size=2, method="whispers")
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


def test_the_pages_in_chromium_list_persons_faces_and_doubts(store: Store, exported: Path, page: Any) -> None:
    index = json.loads((exported / "index.json").read_text(encoding="utf-8"))
    page.goto((exported / "index.html").as_uri())
    assert page.locator("script").count() == 0  # the hostile name is text, not a script
    # Every person as a card, largest first, with its name and counts.
    cards = page.locator("article.card")
    assert [int(x) for x in cards.evaluate_all("els => els.map(e => e.dataset.personId)")] == [
        p["id"] for p in index["persons"]
    ]
    assert cards.locator(".name").all_inner_texts() == [p["name"] or f"person_{p['id']:04d}" for p in index["persons"]]
    assert {"Alice", HOSTILE} <= set(cards.locator(".name").all_inner_texts())
    assert [int(x) for x in cards.locator(".n-faces").all_inner_texts()] == [5, 2, 2]
    assert_thumbnails_loaded(page)
    # A person's page, from its card: its faces, most doubtful (farthest from the centre) first.
    alice = index["persons"][0]
    page.locator(f'article.card[data-person-id="{alice["id"]}"] .name').click()
    page.wait_for_url("**/pages/person-*.html")
    assert faces_on(page) == [f["id"] for f in reversed(alice["faces"])]
    bob_in_alice = next(f["id"] for f in alice["faces"] if f["photo"].endswith("bob2.jpg"))
    assert faces_on(page)[0] == bob_in_alice
    assert_thumbnails_loaded(page)
    # The faces in doubt, led by Bob's face among Alice's; then the unknown faces.
    page.locator("#nav-doubt").click()
    assert faces_on(page)[0] == bob_in_alice == faces_in_doubt(store)[0].face_id
    assert_thumbnails_loaded(page)
    page.locator("#nav-unknown").click()
    assert faces_on(page) == [f["id"] for f in index["unknown"]["faces"]]
    assert_thumbnails_loaded(page)


def test_the_pages_in_chromium_show_the_thumbnails(exported: Path, page: Any) -> None:
    page.goto((exported / "index.html").as_uri())
    pixels = screenshot_pixels(page)
    # The thumbnails loaded from the file system: the photos' colours are on screen.
    for who in ("alice", "bob"):
        assert has_colour(pixels, COLOURS[who]), who


def test_big_persons_are_paged(store: Store, exported: Path, page: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review, "CARDS_PER_PAGE", 2)
    monkeypatch.setattr(review, "FACES_PER_PAGE", 2)
    report = export(store, exported)
    assert report.warnings == []
    index = json.loads((exported / "index.json").read_text(encoding="utf-8"))
    alice = index["persons"][0]
    assert sorted(p.name for p in (exported / "pages").iterdir()) == sorted(
        ["index-2.html", "doubt.html", "unknown.html"]
        + [f"person-{alice['id']}{suffix}.html" for suffix in ("", "-2", "-3")]
        + [f"person-{p['id']}.html" for p in index["persons"][1:]]
    )
    page.goto((exported / "index.html").as_uri())
    assert page.locator("article.card").count() == 2
    page.locator('a[rel="next"]').first.click()
    assert page.locator("article.card").count() == 1
    page.goto((exported / "pages" / f"person-{alice['id']}.html").as_uri())
    seen = faces_on(page)
    while page.locator('a[rel="next"]').count():
        page.locator('a[rel="next"]').first.click()
        seen += faces_on(page)
    assert seen == [f["id"] for f in reversed(alice["faces"])]
    # Back to one page each: the extra pages go.
    monkeypatch.undo()
    export(store, exported)
    assert not (exported / "pages" / "index-2.html").exists()
    assert not (exported / "pages" / f"person-{alice['id']}-2.html").exists()


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
        recluster(store, threshold=0.6, min_size=2, method="whispers")
        yield store, tmp


@pytest.mark.models
def test_real_export_in_chromium(real_export: tuple[Store, Path], page: Any) -> None:
    store, tmp = real_export
    dest = tmp / "People"
    report = export(store, dest, crops=True)
    assert (report.persons, report.unknown_faces, report.thumbnails, report.crops) == (1, 1, 3, 3)
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    [obama] = index["persons"]
    assert sorted(Path(f["photo"]).name for f in obama["faces"]) == ["obama.jpg", "obama_rotated.jpg"]
    page.goto((dest / "pages" / f"person-{obama['id']}.html").as_uri())
    assert sorted(faces_on(page)) == sorted(f["id"] for f in obama["faces"])
    assert_thumbnails_loaded(page)
    page.goto((dest / "pages" / "unknown.html").as_uri())
    assert faces_on(page) == [index["unknown"]["faces"][0]["id"]]
    schema = json.loads((Path(__file__).parents[2] / "schema" / "index.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(index)
    # The rotated copy's thumbnail and chip show the face upright, like the original's.
    by_name = {Path(f["photo"]).name: f for f in obama["faces"]}
    for kind in ("thumbnail", "crop"):
        a, b = (np.asarray(Image.open(dest / by_name[n][kind]), dtype=float) for n in by_name)
        assert np.abs(a - b).mean() < 25, kind
    page.goto((dest / "index.html").as_uri())
    screenshot_pixels(page)


def test_suggestions_are_listed_as_questions_with_escaped_names() -> None:
    from photocluster.core.readmodel import Suggestion

    cards = [Card(4, HOSTILE, 2, 2, item(1)), Card(9, None, 2, 2, item(5, 9))]
    labels = {c.id: c.label for c in cards}
    asked = Suggestion(4, 9, 0.512, (HOSTILE, None), (2, 2), (None, None))
    gone = Suggestion(4, 77, 0.5, (HOSTILE, None), (2, 1), (None, None))  # person 77 is not on the page
    page = pages.index_page(static_links(), SUMMARY, Page(cards, 1, 1, 2), [asked, gone], labels)
    assert '<section id="suggest"' in page and page.count("<li data-pair=") == 1
    assert 'data-pair="4-9"' in page and "photocluster merge 4 9" in page and "0.51<" in page
    assert "<script" not in page
    assert '<section id="suggest"' not in pages.index_page(static_links(), SUMMARY, Page(cards, 1, 1, 2))


def test_a_page_of_cards_stays_small_whatever_the_names() -> None:
    cards = [Card(k, "N" * 10_000 + f" {k}", 5000, 4000, item(k, k)) for k in range(1, review.CARDS_PER_PAGE + 1)]
    page = pages.index_page(static_links(), SUMMARY, Page(cards, 1, 9000, 9000 * review.CARDS_PER_PAGE))
    assert len(page.encode("utf-8")) < 100_000
    assert page.count('<article class="card"') == review.CARDS_PER_PAGE
