"""The review app against a hostile local user and a careless one: launch codes, malformed
input (never a 500), photos replaced by symlinks and FIFOs (never served, never a freeze),
the security headers on every response, slow connections (closed in bounded time while
others are answered), all-or-nothing actions, and a bad database refused before serving.
Routes through starlette's TestClient; headers, timeouts and FIFOs over real sockets to a
real uvicorn."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from photocluster.app.corrections import history
from photocluster.cli import app as cli
from photocluster.store import Store
from photocluster.web.app import create_app
from photocluster.web.auth import Gate, cookie_name

from .conftest import person_of, serving, session_cookie
from .test_app import FORM, ORIGIN, TOKEN, new_client, post

BIG = str(1 << 63)
HEADERS = {
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


@pytest.fixture
def client(store: Store, library: dict[str, list[int]]) -> Iterator[TestClient]:
    with new_client(store) as c:
        yield c


def secured(headers: http.client.HTTPMessage | dict[str, str] | object) -> bool:
    get = headers.get  # type: ignore[attr-defined]
    csp = get("content-security-policy") or ""
    return (
        all(get(k) == v for k, v in HEADERS.items())
        and "frame-ancestors 'none'" in csp
        and "default-src 'none'" in csp
        and "img-src 'self' data:" in csp
        and "script-src 'self';" in csp  # the app's own script file only: no inline script, no other site
        and "'unsafe-inline'" not in csp
        and "'unsafe-eval'" not in csp
    )


# -- the launch address ---------------------------------------------------------------------


def test_a_launch_code_is_good_once_and_for_a_while(store: Store, library: dict[str, list[int]]) -> None:
    gate = Gate()
    app = create_app(store.path, gate)
    with TestClient(app, base_url=ORIGIN, follow_redirects=False) as browser:
        code = gate.launch_code()
        assert browser.head("/launch", params={"code": code}).status_code == 405  # a HEAD spends nothing
        response = browser.get("/launch", params={"code": code})
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert browser.cookies[cookie_name(8765)] == gate.token and gate.token not in response.headers["location"]
        assert browser.get("/").status_code == 200
    with TestClient(app, base_url=ORIGIN, follow_redirects=False) as other:
        assert other.get("/launch", params={"code": code}).status_code == 403  # spent
        assert other.get("/launch", params={"code": gate.launch_code(ttl_s=-1)}).status_code == 403  # expired
        for bad in ("", "nope", "\u00e9", "%C3%A9", "\x00", "x" * 10_000):
            assert other.get("/launch", params={"code": bad}).status_code == 403, bad
        assert other.get("/launch?code=%C3%A9&code=%FF").status_code == 403
        assert other.get("/").status_code == 403


# -- malformed input: 4xx, never a 500 ------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/person/\u00b2",
        "/person/%D9%A1",
        f"/person/{BIG}",
        "/person/-1",
        "/person/99999999999999999999999999",
        f"/thumb/{BIG}",
        "/thumb/%C2%B2",
        "/photo/%EF%BC%91",  # a full-width 1
        f"/photo/{BIG}",
    ],
)
def test_ids_in_paths_that_are_no_ids_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.text)


def test_malformed_requests_are_4xx(client: TestClient) -> None:
    assert client.get("/", params={"page": "\u00b2"}).status_code == 200
    assert client.get("/", params={"page": "\u0661"}).status_code == 200
    assert client.get("/", params={"page": BIG}).status_code == 200
    assert client.get("/?token=%C3%A9").status_code == 200  # a stray token: ignored
    assert client.get("/?page=%FF%FE&msg=%C3").status_code == 200
    stranger = TestClient(client.app, base_url=ORIGIN, follow_redirects=False)
    assert stranger.get("/?token=%C3%A9").status_code == 403
    for host in ("[::1", "127.0.0.1:99999999", "127.0.0.1:x", "127.0.0.1.evil", "", "localhost:8765:1", "\u00e9"):
        response = client.get("/", headers={"host": host.encode()})  # type: ignore[dict-item]
        assert response.status_code == 403, host
    # A body that is not UTF-8, a form token that is not ASCII.
    bad_body = client.post(
        "/action/undo",
        content=b"token=\xff\xfe",
        headers={"origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"},
    )
    assert bad_body.status_code == 400
    assert client.post("/action/undo", data={"token": "\u00e9"}, headers={"origin": ORIGIN}).status_code == 403


def test_a_form_from_the_page_is_known_by_the_browsers_fetch_metadata(store: Store, client: TestClient) -> None:
    """With ``Referrer-Policy: no-referrer`` a browser sends a form's Origin as ``null``:
    its ``Sec-Fetch-Site`` (which no page can set) tells the app's own forms from others."""
    pid = store.person_rows(1)[0].id
    form = {"person": pid, "name": "Ann"}
    assert post(client, "rename", form, origin="null", **{"sec-fetch-site": "cross-site"}) == 403
    assert post(client, "rename", form, origin="null", **{"sec-fetch-site": "same-site"}) == 403
    assert store.person_names()[pid] is None
    assert post(client, "rename", form, origin="null", **{"sec-fetch-site": "same-origin"}) == 303
    assert store.person_names()[pid] == "Ann"


# -- one action, one correction, all or nothing ----------------------------------------------


def location(response: object) -> str:
    return urllib.parse.unquote_plus(response.headers["location"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["999999", "\u00b2", "\u0661", BIG, "-3", "1.5"])
@pytest.mark.parametrize("do", ["move", "remove"])
def test_a_multi_face_action_with_one_bad_id_does_nothing(
    store: Store, client: TestClient, library: dict[str, list[int]], bad: str, do: str
) -> None:
    alice, carol = person_of(store, library["alice"][0]), person_of(store, library["carol"][0])
    good = library["alice"][:2]
    data = {"face": [str(good[0]), bad, str(good[1])], "do": do, "person": str(carol)}
    response = client.post("/action/faces", data={"token": FORM, **data}, headers={"origin": ORIGIN})
    assert response.status_code == 303 and "msg=Not+done" in response.headers["location"], location(response)
    assert [person_of(store, f) for f in good] == [alice, alice] and history(store) == []


def test_a_multi_face_move_is_one_correction_and_one_undo(
    store: Store, client: TestClient, library: dict[str, list[int]]
) -> None:
    alice, carol = person_of(store, library["alice"][0]), person_of(store, library["carol"][0])
    moved = library["alice"][:3]
    data = {"face": [str(f) for f in moved], "do": "move", "person": str(carol)}
    response = client.post("/action/faces", data={"token": FORM, **data}, headers={"origin": ORIGIN})
    assert "Done: moved 3 face(s)" in location(response)
    assert [person_of(store, f) for f in moved] == [carol] * 3
    assert [h["command"] for h in history(store)] == [f"move {','.join(map(str, moved))} {carol}"]
    assert post(client, "undo", {}) == 303
    assert [person_of(store, f) for f in moved] == [alice] * 3
    # Removing several: one correction too.
    data = {"face": [str(f) for f in moved], "do": "remove"}
    client.post("/action/faces", data={"token": FORM, **data}, headers={"origin": ORIGIN})
    assert [person_of(store, f) for f in moved] == [None] * 3 and len(history(store)) == 2
    assert post(client, "undo", {}) == 303
    assert [person_of(store, f) for f in moved] == [alice] * 3


def test_a_merge_with_one_bad_id_does_nothing(store: Store, client: TestClient, library: dict[str, list[int]]) -> None:
    alice, bob = person_of(store, library["alice"][0]), person_of(store, library["bob"][0])
    for bad in ("\u00b2", BIG, "999999"):
        data = {"persons": [str(alice), str(bob), bad]}
        response = client.post("/action/merge", data={"token": FORM, **data}, headers={"origin": ORIGIN})
        assert "msg=Not+done" in response.headers["location"], (bad, location(response))
    assert history(store) == [] and person_of(store, library["bob"][0]) == bob


# -- photos: only the regular file scanned ------------------------------------------------------


def test_a_photo_replaced_by_a_symlink_or_another_file_is_not_served(
    store: Store, client: TestClient, library: dict[str, list[int]], tmp_path: Path
) -> None:
    face = library["bob"][0]
    photo = tmp_path / "photos" / "bob0.jpg"
    assert client.get(f"/photo/{face}").content == photo.read_bytes()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0" + b"." * (photo.stat().st_size - 10))
    st = photo.stat()
    os.utime(secret, ns=(st.st_atime_ns, st.st_mtime_ns))  # even of the same size and time
    original = photo.read_bytes()
    photo.unlink()
    photo.symlink_to(secret)
    assert client.get(f"/photo/{face}").status_code == 404
    assert client.get(f"/thumb/{library['bob'][1]}").status_code in (200, 404)  # another photo: unaffected
    photo.unlink()
    photo.symlink_to("/etc/passwd")
    assert client.get(f"/photo/{face}").status_code == 404
    # A regular file again, but not the one scanned (another time): not served either.
    photo.unlink()
    photo.write_bytes(original)
    assert client.get(f"/photo/{face}").status_code == 404
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert client.get(f"/photo/{face}").content == original  # the same file again
    assert client.get(f"/photo/{face}").headers["content-type"] == "image/jpeg"


def test_a_fifo_or_device_never_freezes_the_app(store: Store, library: dict[str, list[int]], tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    fifo_face, dev_face = library["alice"][0], library["alice"][1]  # no stored thumbnails
    (photos / "alice0.jpg").unlink()
    os.mkfifo(photos / "alice0.jpg")
    (photos / "alice1.jpg").unlink()
    (photos / "alice1.jpg").symlink_to("/dev/zero")
    with serving(store.path) as server:
        cookie = session_cookie(server)
        for path in (f"/photo/{fifo_face}", f"/thumb/{fifo_face}", f"/photo/{dev_face}", f"/thumb/{dev_face}"):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()  # a freeze would time out here
            assert response.status == 404, path
            response.read()
            connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/", headers={"Cookie": cookie})
        assert connection.getresponse().status == 200
        connection.close()


# -- headers on every response, over a real socket ------------------------------------------------


def test_every_response_carries_the_security_headers(store: Store, library: dict[str, list[int]]) -> None:
    face = library["alice"][0]
    with serving(store.path) as server:
        cookie = session_cookie(server)
        cases = [
            ("GET", "/", {"Cookie": cookie}, 200),
            ("GET", f"/thumb/{face}", {"Cookie": cookie}, 200),
            ("GET", f"/photo/{face}", {"Cookie": cookie}, 200),
            ("GET", "/person/999999", {"Cookie": cookie}, 404),
            ("GET", "/no/such/route", {"Cookie": cookie}, 404),
            ("GET", "/", {}, 403),
            ("GET", "/launch?code=x", {}, 403),
            ("GET", "/action/undo", {"Cookie": cookie}, 405),
        ]
        for method, path, headers, status in cases:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            assert response.status == status, path
            assert secured(response.headers), (path, dict(response.headers))
        launch = server.launch_url().split(str(server.port), 1)[1]
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", launch)
        response = connection.getresponse()
        assert response.status == 303 and secured(response.headers)
        assert response.getheader("server") is None
        connection.close()


# -- slow and half-open connections ---------------------------------------------------------------


def _closed(sock: socket.socket, within_s: float) -> bool:
    """Whether the server closes ``sock`` within ``within_s`` seconds (reading what it sends)."""
    sock.settimeout(within_s)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_and_silent_connections_are_closed_and_others_answered(
    store: Store, library: dict[str, list[int]]
) -> None:
    with serving(store.path, read_timeout_s=1.0) as server:
        cookie = session_cookie(server)
        address = ("127.0.0.1", server.port)
        silent = [socket.create_connection(address) for _ in range(50)]
        slow = [socket.create_connection(address) for _ in range(150)]
        for sock in slow:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        body = socket.create_connection(address)
        body.sendall(
            b"POST /action/undo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken="
        )
        # A header line every 0.2 s does not keep a connection: the deadline is on the request.
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            for sock in slow:
                with contextlib.suppress(OSError):  # closed by the server already
                    sock.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.2)
        # Meanwhile, and after, the app answers a real request.
        connection = http.client.HTTPConnection(*address, timeout=10)
        connection.request("GET", "/", headers={"Cookie": cookie})
        assert connection.getresponse().status == 200
        connection.close()
        assert all(_closed(sock, 10) for sock in [*silent, *slow, body])
        for sock in [*silent, *slow, body]:
            sock.close()


def test_a_kept_alive_connection_is_closed_when_idle(store: Store, library: dict[str, list[int]]) -> None:
    with serving(store.path, read_timeout_s=1.0) as server:
        cookie = session_cookie(server)
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nCookie: {cookie}\r\n\r\n".encode())
        assert sock.recv(12).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET / HTTP/1.1\r\n")  # a second request begun, never finished
        assert _closed(sock, 20)
        sock.close()


# -- a database that cannot be served: one line, before serving ------------------------------------


def _future(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")


def _broken(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


@pytest.mark.parametrize("spoil", [_future, _broken])
def test_review_refuses_a_bad_database_before_serving(store: Store, spoil: object) -> None:
    path = Path(store.path)
    store.close()
    spoil(path)  # type: ignore[operator]
    result = CliRunner().invoke(cli, ["review", "--no-browser", "--db", str(path)])
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stdout == "" and result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "Serving" not in result.stderr and "http://" not in result.stderr


def _read_only(paths: list[Path], on: bool) -> None:
    """Make ``paths`` read-only for this process, root included: root ignores file modes,
    so as root the files are made immutable (``chattr +i``), which binds root too."""
    if os.geteuid() != 0:
        for p in paths:
            p.chmod((0o555 if p.is_dir() else 0o444) if on else 0o755)
        return
    subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], check=True, capture_output=True)


def test_review_refuses_a_read_only_database(store: Store, tmp_path: Path) -> None:
    path = Path(store.path)
    store.close()
    for leftover in tmp_path.glob(path.name + "-*"):  # no -wal or -shm left to write into
        leftover.unlink()
    _read_only([path, tmp_path], on=True)
    try:
        with pytest.raises(OSError):  # the files are read-only for this very process
            path.open("ab").close()
        result = CliRunner().invoke(cli, ["review", "--no-browser", "--db", str(path)])
    finally:
        _read_only([path, tmp_path], on=False)
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stdout == "" and result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "Serving" not in result.stderr and "http://" not in result.stderr


def test_no_page_holds_the_session_token(client: TestClient, library: dict[str, list[int]]) -> None:
    for path in ("/", "/person/1", "/doubt", "/unknown"):
        page = client.get(path).text
        assert TOKEN not in page and "token=" not in page.replace('name="token"', ""), path
