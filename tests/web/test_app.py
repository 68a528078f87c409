"""The review app over HTTP, in-process: the token, the same-origin check, escaping,
paging, thumbnails by face id, and the corrections shared with the CLI."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from conftest import write_photo
from photocluster.app import browse
from photocluster.app.corrections import history
from photocluster.detect.thumbnail import LEGACY_PARAMS, THUMB_PARAMS, THUMB_SIZE
from photocluster.store import Store
from photocluster.web.app import create_app
from photocluster.web.auth import Gate, cookie_name

from .conftest import person_of

TOKEN = "test-session-0123456789"
FORM = "test-form-0123456789"
ORIGIN = "http://127.0.0.1:8765"
HOSTILE = "<script>alert(1)</script> & \"Bob\" 'B'"


def new_client(store: Store) -> TestClient:
    """A client of the app with this run's session cookie, as a launch address gives it."""
    client = TestClient(create_app(store.path, Gate(TOKEN, FORM)), base_url=ORIGIN, follow_redirects=False)
    client.cookies.set(cookie_name(8765), TOKEN)
    return client


@pytest.fixture
def client(store: Store, library: dict[str, list[int]]) -> Iterator[TestClient]:
    with new_client(store) as c:
        yield c


def get(client: TestClient, path: str, **params: object) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.text


def post(client: TestClient, action: str, data: dict[str, object], **headers: str) -> int:
    headers = {"origin": ORIGIN, **headers}
    response = client.post(f"/action/{action}", data={"token": FORM, **data}, headers=headers)
    return response.status_code


@pytest.mark.parametrize("path", ["/", "/person/1", "/doubt", "/unknown", "/thumb/1", "/photo/1"])
def test_every_request_needs_the_session_cookie(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
    # Not in the address (the token of earlier versions is no way in), not another value.
    stranger = TestClient(client.app, base_url=ORIGIN, follow_redirects=False)
    assert stranger.get(path).status_code == 403
    assert stranger.get(path, params={"token": TOKEN}).status_code == 403
    for wrong in ("wrong", "\u00e9", "%C3%A9", TOKEN + "x", TOKEN[:-1], "\x00"):
        cookie = f"{cookie_name(8765)}={wrong}".encode()
        assert stranger.get(path, headers={"cookie": cookie}).status_code == 403, wrong  # type: ignore[dict-item]
    # The cookie of the app on another port is not this app's.
    other = TestClient(client.app, base_url="http://127.0.0.1:9999", follow_redirects=False)
    other.cookies.set(cookie_name(8765), TOKEN)
    assert other.get(path).status_code == 403


def test_only_the_local_host_name_is_answered(client: TestClient) -> None:
    # A page of evil.example whose name was made to point at 127.0.0.1 (DNS rebinding).
    response = client.get("/", params={"token": TOKEN}, headers={"host": "evil.example:8765"})
    assert response.status_code == 403


def test_changes_need_the_token_and_the_apps_own_origin(store: Store, client: TestClient) -> None:
    pid = store.person_rows(1)[0].id
    form = {"person": pid, "name": "Mallory"}
    assert post(client, "rename", form, origin="http://evil.example") == 403
    assert post(client, "rename", form, origin="null") == 403
    # Neither Origin nor Referer: refused; a Referer of another site: refused.
    no_origin = client.post("/action/rename", data={"token": FORM, **form})
    assert no_origin.status_code == 403
    assert (
        client.post("/action/rename", data={"token": FORM, **form}, headers={"referer": "http://evil/"}).status_code
        == 403
    )
    bad_token = client.post("/action/rename", data={"token": "x", **form}, headers={"origin": ORIGIN})
    assert bad_token.status_code == 403
    assert client.get("/action/rename", params={"token": TOKEN, **form}).status_code == 405
    assert store.person_names()[pid] is None and history(store) == []
    # The same form from the app's own page is done, recorded, and undoable from the CLI.
    assert post(client, "rename", form, referer=f"{ORIGIN}/person/{pid}") == 303
    assert store.person_names()[pid] == "Mallory"
    assert [h["command"] for h in history(store)] == [f"name {pid} 'Mallory'"]


def test_names_are_escaped_on_every_page(store: Store, client: TestClient, library: dict[str, list[int]]) -> None:
    pid = person_of(store, library["bob"][0])
    assert post(client, "rename", {"person": pid, "name": HOSTILE}) == 303
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Bob&quot; &#x27;B&#x27;"
    photo = store.face_rows([library["bob"][0]])[library["bob"][0]].photo.id
    shown = [get(client, p) for p in ("/", f"/person/{pid}", "/doubt", f"/photos/{photo}", f"/person/{pid}/confirm")]
    for page in [*shown, get(client, "/search", q='<script>"nobody')]:
        # The app's own script, from its file: nothing else.
        assert page.count("<script") == 1 and '<script src="/static/curate.js" defer>' in page
    assert all(escaped in page for page in shown[:2] + shown[3:])


def test_persons_and_faces_are_paged(
    store: Store, client: TestClient, library: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "CARDS_PER_PAGE", 2)
    monkeypatch.setattr(browse, "FACES_PER_PAGE", 3)
    first, second = get(client, "/"), get(client, "/", page=2)
    assert first.count('<article class="card"') == 2 and second.count('<article class="card"') == 1
    assert 'data-pages="2"' in first and "page=2" in first
    alice = person_of(store, library["alice"][0])
    assert alice is not None
    one, two = get(client, f"/person/{alice}"), get(client, f"/person/{alice}", page=2)
    shown = [int(x.split('"')[0]) for x in (one + two).split('data-face-id="')[1:]]
    assert sorted(shown) == sorted(library["alice"]) and one.count("<figure") == 3
    assert get(client, "/", page="999").count('<article class="card"') == 1  # past the end: the last page
    assert get(client, "/", page="x").count('<article class="card"') == 2


def test_thumbnails_are_cut_from_the_photo_the_database_names(
    client: TestClient, library: dict[str, list[int]], tmp_path: Path
) -> None:
    face = library["alice"][0]
    response = client.get(f"/thumb/{face}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as im:
        assert im.size == (THUMB_SIZE, THUMB_SIZE)
        r, g, b = im.convert("RGB").getpixel((THUMB_SIZE // 2, THUMB_SIZE // 2))  # type: ignore[misc]
        assert r > 150 and g < 90 and b < 90  # Alice's photo is red
    photo = client.get(f"/photo/{face}")
    assert photo.status_code == 200 and photo.content == (tmp_path / "photos" / "alice0.jpg").read_bytes()
    # Addressed by face id only: a path in the request opens nothing.
    for path in ("/thumb/999999", "/thumb/..%2F..%2Fetc%2Fpasswd", "/photo/abc", "/static/../../etc/passwd"):
        assert client.get(path).status_code == 404, path


def test_a_stored_thumbnail_is_served_as_it_is(store: Store, client: TestClient, library: dict[str, list[int]]) -> None:
    face = library["bob"][0]
    assert store.put_thumbnails([(face, THUMB_PARAMS, b"the scan's own bytes")]) == 1
    response = client.get(f"/thumb/{face}")
    assert response.status_code == 200 and response.content == b"the scan's own bytes"
    assert response.headers["content-type"] == "image/webp"
    # Cut with other parameters: not this app's thumbnail; one is cut from the photo.
    other = library["bob"][1]
    store.put_thumbnails([(other, "64/0.3/85", b"old size")])
    response = client.get(f"/thumb/{other}")
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WEBP"
    assert response.headers["content-type"] == "image/webp"


def test_a_thumbnail_an_earlier_version_stored_is_converted_once(
    store: Store, client: TestClient, library: dict[str, list[int]], tmp_path: Path
) -> None:
    face = library["bob"][0]
    old = io.BytesIO()
    Image.new("RGB", (THUMB_SIZE, THUMB_SIZE), (200, 40, 40)).save(old, "JPEG", quality=85)
    store.put_thumbnails([(face, LEGACY_PARAMS, old.getvalue())])
    for photo in tmp_path.rglob("*.jpg"):
        photo.write_bytes(b"gone")  # converted from the stored JPEG, not cut from the photo
    response = client.get(f"/thumb/{face}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as im:
        assert (im.format, im.size) == ("WEBP", (THUMB_SIZE, THUMB_SIZE))
        r, g, b = im.convert("RGB").getpixel((64, 64))  # type: ignore[misc]
        assert abs(r - 200) + abs(g - 40) + abs(b - 40) < 16
    assert store.thumbnail(face, THUMB_PARAMS) == response.content
    assert store.thumbnail_count(LEGACY_PARAMS) == 0


def test_a_thumbnail_cut_on_request_is_stored_for_the_next_one(
    store: Store, client: TestClient, library: dict[str, list[int]], tmp_path: Path
) -> None:
    face = library["carol"][0]
    assert store.thumbnail(face, THUMB_PARAMS) is None  # recorded without one
    cut = client.get(f"/thumb/{face}").content
    assert store.thumbnail(face, THUMB_PARAMS) == cut
    photo = tmp_path / "photos" / "carol0.jpg"
    photo.unlink()  # served from the store now: the photo is not read again
    assert client.get(f"/thumb/{face}").content == cut
    # A photo changed since its scan is not the file scanned: no thumbnail is cut from it
    # (its faces were found in other pixels; the next scan cuts the right one).
    changed = library["carol"][1]
    write_photo(tmp_path / "photos" / "carol1.jpg", (10, 10, 10), size=(96, 96))
    response = client.get(f"/thumb/{changed}")
    assert response.status_code == 404 and store.thumbnail(changed, THUMB_PARAMS) is None


def test_remove_ignore_answer_and_undo_through_the_corrections(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    alice, bob, carol = (person_of(store, library[w][0]) for w in ("alice", "bob", "carol"))
    face = library["alice"][1]
    assert post(client, "faces", {"face": face, "do": "remove", "back": f"/person/{alice}"}) == 303
    assert person_of(store, face) is None
    assert post(client, "ignore", {"person": carol}) == 303
    assert carol in store.ignored_persons()
    assert f'data-person-id="{carol}"' not in get(client, "/")
    assert post(client, "answer", {"a": alice, "b": bob, "same": "no"}) == 303
    assert (min(alice, bob), max(alice, bob)) in store.kept_apart()  # type: ignore[type-var]
    assert [h["command"] for h in history(store)][:3] == [f"apart {alice} {bob}", f"ignore {carol}", f"remove {face}"]
    for _ in range(3):
        assert post(client, "undo", {}) == 303
    assert person_of(store, face) == alice and carol not in store.ignored_persons() and not store.kept_apart()
    # Nothing left to undo: said on the page, not an error page.
    response = client.post("/action/undo", data={"token": FORM}, headers={"origin": ORIGIN})
    assert response.status_code == 303 and "nothing+to+undo" in response.headers["location"]
    assert "nothing to undo" in get(client, "/", msg="Not done: nothing to undo")


def test_a_redirect_never_leaves_the_app(client: TestClient) -> None:
    for back in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post("/action/undo", data={"token": FORM, "back": back}, headers={"origin": ORIGIN})
        assert response.headers["location"].startswith("/?"), back


def test_error_pages_are_whole_pages_with_the_message_escaped(client: TestClient) -> None:
    response = client.get("/person/999999")
    assert response.status_code == 404
    assert response.text == (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>photocluster review</title></head>'
        '<body><p id="error">No such person (merged away, or undone?).</p></body></html>'
    )
    response = client.post("/action/%3Cb%3E%22x", data={"token": FORM}, headers={"origin": ORIGIN})
    assert response.status_code == 404
    assert '<p id="error">No action &#x27;&lt;b&gt;&quot;x&#x27;.</p>' in response.text and "<b>" not in response.text
