"""Curation in a real browser (Playwright driving Debian's chromium) under a strict
Content-Security-Policy: a missed face drawn with the mouse, the confirm queue answered by
keyboard, a split, a cover and a search by keys; then the database and the page agree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_not_blank, fake_embedding, make_face, near, screenshot, write_photo
from photocluster.app.corrections import history, name_person
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage
from photocluster.store import Store
from photocluster.web.app import content_security_policy
from photocluster.web.server import Server

from .conftest import person_of

POLICY = content_security_policy()  # what the app sends with every response


@pytest.fixture
def strict(page: Any) -> Iterator[Any]:
    """The tab; every page of the app must come with the app's own Content-Security-Policy
    (scripts and style sheets from the app's files only, no inline script or handler), and a
    CSP violation or a script error fails the test."""
    problems: list[str] = []
    pages_seen: list[str] = []

    def check(response: Any) -> None:
        if response.request.resource_type != "document" or not response.url.startswith("http://127.0.0.1:"):
            return
        pages_seen.append(response.url)
        if response.headers.get("content-security-policy") != POLICY:
            problems.append(f"{response.url}: not the app's policy")

    page.on("response", check)
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    assert pages_seen and problems == []


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Box]:
    """The models' part of a drawn face faked (the server runs in this process)."""
    boxes: list[Box] = []

    def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
        boxes.append(box)
        face = make_face(near(fake_embedding("alice"), 0.2, "drawn"), (0, 0, 48, 48))
        return Face(box=box, confidence=0.0, landmarks=face.landmarks, embedding=face.embedding)

    monkeypatch.setattr(faces_module, "embed_box", embed_box)
    return boxes


def open_app(page: Any, server: Server, path: str) -> None:
    """A launch address first (the session cookie), then the page at ``path``: no secret in it."""
    page.goto(server.launch_url())
    home = f"http://127.0.0.1:{server.port}"
    assert page.url == f"{home}/"
    page.goto(f"{home}{path}")
    ready(page)


def ready(page: Any, message: str | None = None) -> None:
    """Wait for the page (after a key that loads one: the ``message`` it shows) and its script."""
    if message is not None:
        page.wait_for_selector(f"#message >> text={message}")
    page.wait_for_selector("html[data-keys=ready]", state="attached")


def test_a_missed_face_drawn_with_the_mouse_is_added(
    store: Store, library: dict[str, list[int]], server: Server, strict: Any, drawn: list[Box]
) -> None:
    page = strict
    photo = store.face_rows(library["stranger"])[library["stranger"][0]].photo
    open_app(page, server, f"/photos/{photo.id}")
    page.wait_for_load_state("load")
    # The stranger's face box is placed over the photo by the script.
    stranger = page.locator(f'.canvas .box[data-face-id="{library["stranger"][0]}"]').bounding_box()
    image = page.locator("#photo-img").bounding_box()
    scale = image["width"] / photo.width
    assert stranger["x"] - image["x"] == pytest.approx(24 * scale, abs=1.5)
    assert stranger["width"] == pytest.approx(48 * scale, abs=1.5)
    assert page.locator("#add-face").is_disabled()
    # Draw a box from (4, 4) to (22, 22) in photo pixels.
    page.mouse.move(image["x"] + 4 * scale, image["y"] + 4 * scale)
    page.mouse.down()
    page.mouse.move(image["x"] + 14 * scale, image["y"] + 12 * scale)
    page.mouse.move(image["x"] + 22 * scale, image["y"] + 22 * scale)
    page.mouse.up()
    assert page.input_value("#box") == "4,4,22,22"
    assert page.locator("#drawn").is_visible()
    page.fill("#add-person", "Dora")
    page.locator("#add-face").focus()
    page.keyboard.press("Enter")
    ready(page, "Done: add-face")
    assert page.inner_text("#message").startswith(f"Done: add-face {photo.id} 4,4,22,22 'Dora'")
    (added,) = store.added_faces(photo.id)
    assert drawn == [Box(4, 4, 22, 22)]
    assert page.locator(f'.canvas .box.added[data-face-id="{added}"]').inner_text() == "Dora"
    assert_not_blank(screenshot(page))
    # Esc forgets a box drawn; u undoes the face.
    page.mouse.move(image["x"] + 60 * scale, image["y"] + 60 * scale)
    page.mouse.down()
    page.mouse.move(image["x"] + 90 * scale, image["y"] + 90 * scale)
    page.mouse.up()
    page.keyboard.press("Escape")
    assert page.input_value("#box") == "" and page.locator("#add-face").is_disabled()
    page.keyboard.press("u")
    ready(page, "Undone: add-face")
    assert page.inner_text("#message").startswith("Undone: add-face")
    assert store.added_faces() == set()


def add_unknown(store: Store, root: Path, k: int, distance: float) -> int:
    path = write_photo(root / f"u{k}.jpg", (9, 9, 9), size=(96, 96))
    st = path.stat()
    face = make_face(near(fake_embedding("alice"), distance, f"u{k}"), (24, 24, 72, 72))
    scan_id = store.begin_scan([root], "k")
    photo_id = store.save_photo(
        path, st.st_size, st.st_mtime_ns, f"u{k}", scan_id, "k", width=96, height=96, faces=[face]
    )
    face_id = store.photo_faces(photo_id)[0].id
    assert face_id is not None
    return face_id


def test_the_confirm_queue_by_keyboard(
    store: Store, library: dict[str, list[int]], server: Server, strict: Any, tmp_path: Path
) -> None:
    page = strict
    alice = person_of(store, library["alice"][0])
    assert alice is not None
    unknown = [add_unknown(store, tmp_path / "u", k, 0.15 + 0.1 * k) for k in range(3)]
    open_app(page, server, f"/person/{alice}")
    page.keyboard.press("c")
    page.wait_for_url(re.compile(rf"/person/{alice}/confirm\b"))
    ready(page)
    assert page.inner_text("#remaining") == "3"

    def current() -> int:
        return int(page.locator("figure.candidate.current").get_attribute("data-face-id"))

    first = current()
    page.keyboard.press("y")
    ready(page, "Done: confirm")
    assert page.inner_text("#remaining") == "2" and person_of(store, first) == alice
    second = current()
    page.keyboard.press("n")
    ready(page, "Done: reject")
    assert page.inner_text("#remaining") == "1" and (second, alice) in store.rejections()
    third = current()
    page.keyboard.press("s")
    page.wait_for_selector("#done")
    ready(page)
    assert page.inner_text("#remaining") == "0" and person_of(store, third) is None
    assert sorted([first, second, third]) == sorted(unknown)
    assert [h["command"] for h in history(store)] == [f"reject {second} {alice}", f"confirm {first} {alice}"]


def test_split_and_cover_by_keyboard(store: Store, library: dict[str, list[int]], server: Server, strict: Any) -> None:
    page = strict
    alice = person_of(store, library["alice"][0])
    open_app(page, server, f"/person/{alice}")
    order = [int(x) for x in page.locator("figure[data-face-id]").evaluate_all("e => e.map(f => f.dataset.faceId)")]
    # → to the second face, v: it is the cover.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("v")
    ready(page, "Done: cover")
    assert page.locator("figure.is-cover").get_attribute("data-face-id") == str(order[1])
    assert store.chosen_covers([alice]) == {alice: order[1]}
    # Select the last two faces (→ and space), name the new person, x splits them off.
    for _ in range(len(order) - 1):  # the first → goes to the first face
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.fill("#split-name", "Alicia")
    page.locator("#split-name").press("Escape")
    page.keyboard.press("x")
    ready(page, "Done: split")
    new = person_of(store, order[-1])
    assert new not in (None, alice) and person_of(store, order[-2]) == new
    assert store.person_names()[new] == "Alicia"
    left = page.locator("figure[data-face-id]").evaluate_all("e => e.map(f => Number(f.dataset.faceId))")
    assert sorted(left) == sorted(order[:-2])


def test_search_from_the_header_by_keyboard(
    store: Store, library: dict[str, list[int]], server: Server, strict: Any
) -> None:
    page = strict
    bob = person_of(store, library["bob"][0])
    name_person(store, str(bob), "Émile Zola")
    open_app(page, server, "/unknown")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("emi")
    page.locator("#search-names option").first.wait_for(state="attached")
    assert page.locator("#search-names option").count() == 1
    assert page.locator("#search-names option").get_attribute("value") == "Émile Zola"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/person/{bob}\b"))
    assert page.inner_text("h2 .name") == "Émile Zola"
