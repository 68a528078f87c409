"""The review app's curation over HTTP, in-process: a photo's page and image, a face drawn,
split, cover, the confirm queue, search; each one correction, said on the page it returns to."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from starlette.testclient import TestClient

from conftest import fake_embedding, make_face, near, write_photo
from photocluster.app.corrections import history, name_person
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage
from photocluster.store import Store

from .conftest import person_of
from .test_app import FORM, ORIGIN, TOKEN, new_client


@pytest.fixture
def client(store: Store, library: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
        face = make_face(near(fake_embedding("alice"), 0.2, "drawn"), (0, 0, 48, 48))
        return Face(box=box, confidence=0.0, landmarks=face.landmarks, embedding=face.embedding)

    monkeypatch.setattr(faces_module, "embed_box", embed_box)
    with new_client(store) as c:
        yield c


def get(client: TestClient, path: str, **params: object) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    # No secret in any link or address: the session is the cookie, forms carry the form token.
    assert not re.search(r"[?&;]token=", response.text) and TOKEN not in response.text
    assert "token" not in response.url.query.decode()
    return response.text


def post(client: TestClient, action: str, data: dict[str, object], back: str = "/") -> str:
    """The message the app redirects with after ``action``."""
    response = client.post(f"/action/{action}", data={"token": FORM, "back": back, **data}, headers={"origin": ORIGIN})
    assert response.status_code == 303, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["msg"][0]


def photo_id(store: Store, face_id: int) -> int:
    return store.face_rows([face_id])[face_id].photo.id


def test_a_photo_page_shows_its_faces_boxes_and_the_image_as_displayed(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    face = library["alice"][0]
    page = get(client, f"/photos/{photo_id(store, face)}")
    assert f'data-face-id="{face}" data-box="24.0,24.0,72.0,72.0"' in page
    assert 'data-width="96" data-height="96"' in page and 'id="add-face" disabled' in page
    image = client.get(f"/image/{photo_id(store, face)}")
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (96, 96)
    assert client.get("/photos/999").status_code == 404
    assert client.get("/image/999").status_code == 404
    # The session cookie, as everywhere; a token in the address is no way in.
    stranger = TestClient(client.app, base_url=ORIGIN, follow_redirects=False)
    for path in (f"/photos/{photo_id(store, face)}", f"/image/{photo_id(store, face)}"):
        assert stranger.get(path).status_code == 403
        assert stranger.get(path, params={"token": TOKEN}).status_code == 403
    # Every face on a person's page links to its photo's page.
    assert f'href="/photos/{photo_id(store, face)}"' in get(client, f"/person/{person_of(store, face)}")


def test_a_face_drawn_on_the_photo_page_is_added_and_undone(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    photo = photo_id(store, library["stranger"][0])
    back = f"/photos/{photo}"
    said = post(client, "add-face", {"photo": photo, "box": "2,2,40,40", "person": "Alice"}, back)
    assert said.startswith(f"Done: add-face {photo} 2,2,40,40 'Alice' (face ")
    (added,) = store.added_faces(photo)
    page = get(client, f"/photos/{photo}")
    assert 'class="box added"' in page and ">Alice</a>" in page and "· drawn" in page
    assert post(client, "add-face", {"photo": photo, "box": "3,3,41,41"}, back).startswith(
        f"Not done: {store.face_rows([added])[added].photo.path}: face {added} is there already"
    )
    assert post(client, "add-face", {"photo": photo, "box": ""}, back) == "Not done: draw a box around the face first."
    assert post(client, "undo", {}).startswith("Undone: add-face")
    assert store.added_faces() == set()


def test_split_from_a_person_page_makes_a_new_person(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    alice = person_of(store, library["alice"][0])
    chosen = library["alice"][2:]
    said = post(client, "split", {"face": chosen, "new_name": "Alicia"}, f"/person/{alice}")
    new = person_of(store, chosen[0])
    assert (
        said
        == f"Done: split {alice} {chosen[0]} {chosen[1]} 'Alicia': faces {chosen[0]}, {chosen[1]} are person {new} now."
    )
    assert store.person_names()[new] == "Alicia" and person_of(store, library["alice"][0]) == alice
    assert post(client, "split", {}) == "Not done: select the faces of the other person first."
    assert post(client, "split", {"face": library["stranger"]}).startswith("Not done: face")


def test_the_cover_chosen_on_a_person_page_is_its_card(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    bob = person_of(store, library["bob"][0])
    chosen = library["bob"][2]
    assert post(client, "cover", {"cover": chosen}, f"/person/{bob}") == f"Done: cover {bob} {chosen}."
    index = get(client, "/")
    card = re.search(rf'<article class="card" data-person-id="{bob}">.*?</article>', index)
    assert card is not None and f'alt="face {chosen}"' in card.group(0)
    assert f'class="face is-cover" data-face-id="{chosen}"' in get(client, f"/person/{bob}")
    assert history(store)[0]["command"] == f"cover {bob} {chosen}"


def test_the_confirm_queue_counts_down_as_it_is_answered(
    store: Store, client: TestClient, library: dict[str, list[int]], tmp_path: Path
) -> None:
    alice = person_of(store, library["alice"][0])
    assert alice is not None
    scan_id = store.begin_scan([tmp_path / "u"], "k")
    new = []
    for k in range(3):
        path = write_photo(tmp_path / "u" / f"u{k}.jpg", (9, 9, 9), size=(96, 96))
        face = make_face(near(fake_embedding("alice"), 0.15 + 0.05 * k, f"u{k}"), (24, 24, 72, 72))
        st = path.stat()
        store.save_photo(path, st.st_size, st.st_mtime_ns, f"u{k}", scan_id, "k", width=96, height=96, faces=[face])
        new.append(store.photo_faces(store.photo_by_path(path)[0].id)[0].id)  # type: ignore[index]
    page = get(client, f"/person/{alice}/confirm")
    assert '<span id="remaining">3</span> faces to confirm' in page
    first = int(re.findall(r'figure class="face candidate current" data-face-id="(\d+)"', page)[0])
    back = f"/person/{alice}/confirm"
    assert post(client, "confirm", {"person": alice, "face": first, "answer": "yes"}, back) == (
        f"Done: confirm {first} {alice}."
    )
    assert person_of(store, first) == alice
    rest = [f for f in new if f != first]
    post(client, "confirm", {"person": alice, "face": rest[0], "answer": "no"}, back)
    assert (rest[0], alice) in store.rejections()
    page = get(client, f"/person/{alice}/confirm")
    assert '<span id="remaining">1</span> face to confirm' in page
    # Skip: the page without the face, for this visit only.
    skipped = get(client, f"/person/{alice}/confirm", skip=str(rest[1]))
    assert '<span id="remaining">0</span>' in skipped and 'id="done"' in skipped
    one = get(client, f"/person/{alice}/confirm", view="one")
    assert one.count("figure class=") == 1 and 'class="faces queue one"' in one
    assert post(client, "confirm", {"person": alice, "face": rest[1], "answer": "maybe"}, back) == (
        "Not done: answer yes or no."
    )
    assert client.get("/person/999/confirm").status_code == 404


def test_search_finds_a_person_from_any_page(store: Store, client: TestClient, library: dict[str, list[int]]) -> None:
    alice, bob = person_of(store, library["alice"][0]), person_of(store, library["bob"][0])
    name_person(store, str(alice), "Zoé Martin")
    name_person(store, str(bob), "Zoe Brown")
    for page in ("/", "/doubt", "/unknown", f"/person/{alice}"):
        assert 'id="search"' in get(client, page)
    one = client.get("/search", params={"q": "MART"})
    assert one.status_code == 303 and one.headers["location"] == f"/person/{alice}"
    both = get(client, "/search", q="zoe")
    assert both.index("Zoe Brown") < both.index("Zoé Martin")
    suggested = client.get("/search.json", params={"q": "zo"}).json()
    assert [(p["name"], p["url"]) for p in suggested] == [
        ("Zoe Brown", f"/person/{bob}"),
        ("Zoé Martin", f"/person/{alice}"),
    ]
    assert "No person's name starts with" in get(client, "/search", q="nobody")


def test_the_script_and_style_sheet_are_served_and_nothing_else(client: TestClient) -> None:
    script = client.get("/static/curate.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/curate.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/app.py").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404
    # Behind the session cookie like every other address.
    stranger = TestClient(client.app, base_url=ORIGIN, follow_redirects=False)
    assert stranger.get("/static/curate.js").status_code == 403
    assert stranger.get("/search.json", params={"q": "zo"}).status_code == 403
