"""The review app in a real browser (Playwright driving Debian's chromium): rename a
person, merge two, move a face and undo, all from the page; then the database and the
page agree; the pages are styled under the app's Content-Security-Policy. Also `photocluster
review` itself: a launch address first, good once, and no secret on the browser's command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import assert_not_blank, screenshot
from photocluster.app.corrections import history
from photocluster.store import Store
from photocluster.web.server import Server

from .conftest import person_of


def card_ids(page: Any) -> list[int]:
    return [int(x) for x in page.locator("article.card").evaluate_all("els => els.map(e => e.dataset.personId)")]


def faces_on(page: Any) -> list[int]:
    return [int(x) for x in page.locator("figure[data-face-id]").evaluate_all("els => els.map(e => e.dataset.faceId)")]


def test_rename_merge_move_and_undo_from_the_page(
    store: Store, library: dict[str, list[int]], server: Server, page: Any
) -> None:
    alice, bob, carol = (person_of(store, library[w][0]) for w in ("alice", "bob", "carol"))
    assert alice is not None and bob is not None and carol is not None
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    home = f"http://127.0.0.1:{server.port}/"
    page.goto(server.url)  # the launch address: the session cookie, then the plain address
    assert page.url == home
    assert card_ids(page) == [alice, bob, carol]  # largest first
    # The inline style sheet is allowed by its hash: the page is styled, nothing was blocked.
    assert page.evaluate("getComputedStyle(document.body).paddingLeft") == "24px"
    assert blocked == []
    sizes = page.locator("img").evaluate_all("els => els.map(e => [e.complete, e.naturalWidth])")
    assert sizes and all(done and width == 128 for done, width in sizes)
    assert_not_blank(screenshot(page))

    # Rename Bob from his page.
    page.locator(f'article.card[data-person-id="{bob}"] .name').click()
    page.wait_for_url(re.compile(rf"/person/{bob}\b"))
    page.fill("#name", "Robert <B>")
    page.click("#rename")
    assert "Done: name" in page.inner_text("#message")
    assert page.inner_text("h2 .name") == "Robert <B>"
    assert store.person_names()[bob] == "Robert <B>"

    # Move one of Alice's faces to Carol, from Alice's page.
    page.goto(home)
    page.locator(f'article.card[data-person-id="{alice}"] .name').click()
    moved = library["alice"][2]
    page.check(f'figure[data-face-id="{moved}"] input[name="face"]')
    page.fill("#move-to", str(carol))
    page.click("#move")
    assert "moved 1 face" in page.inner_text("#message")
    assert moved not in faces_on(page) and person_of(store, moved) == carol

    # Merge Bob into Alice: select both on the index.
    page.goto(home)
    page.check(f'input[name="persons"][value="{alice}"]')
    page.check(f'input[name="persons"][value="{bob}"]')
    page.click("#merge")
    assert "Done: merge" in page.inner_text("#message")
    assert {person_of(store, f) for f in library["bob"]} == {alice}
    assert bob not in card_ids(page) and alice in card_ids(page)

    # Undo, from the page: the merge goes, the move stays.
    page.click("#undo")
    assert "Undone: merge" in page.inner_text("#message")
    assert {person_of(store, f) for f in library["bob"]} == {bob}
    assert bob in card_ids(page) and person_of(store, moved) == carol
    page.click("#undo")
    assert person_of(store, moved) == alice
    assert [h["undone"] for h in history(store)] == [True, True, False]  # merge, move undone; the name stays
    assert_not_blank(screenshot(page))
    assert blocked == []


def test_the_doubt_and_unknown_pages(store: Store, library: dict[str, list[int]], server: Server, page: Any) -> None:
    page.goto(server.url)
    page.click("#nav-unknown")
    # The click starts the navigation; on a loaded machine the old page can still be read.
    page.wait_for_url("**/unknown")
    page.wait_for_load_state()
    assert faces_on(page) == library["stranger"]
    page.click("#nav-doubt")
    page.wait_for_url("**/doubt*")
    page.wait_for_load_state()
    assert page.locator("section#doubt").count() == 1
    # One script, the app's file: no inline script.
    assert page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src').split('?')[0])") == [
        "/static/curate.js"
    ]


def _browser_recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A BROWSER for Python's webbrowser: a script that writes its command line to a file."""
    argv = tmp_path / "browser-argv.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > {argv}.part && mv {argv}.part {argv}\n')
    script.chmod(0o755)
    return script, argv


def _session(url: str) -> tuple[int, str]:
    """Open a launch address without following the redirect: (status, Set-Cookie)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=20) as response:
            return response.status, response.headers.get("set-cookie", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("set-cookie", "")


def test_the_browser_gets_a_launch_code_never_the_session_token(
    store: Store, library: dict[str, list[int]], tmp_path: Path
) -> None:
    browser, argv_file = _browser_recorder(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BROWSER": str(browser)}
    cmd = [sys.executable, "-m", "photocluster", "review", "--db", str(store.path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        printed = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/launch\?code=[A-Za-z0-9_-]{32}", printed), printed
        deadline = time.monotonic() + 30
        while not argv_file.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the browser was not started"
            time.sleep(0.05)
        argv = argv_file.read_text().splitlines()
        launched = argv[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/launch\?code=[A-Za-z0-9_-]{32}", launched), argv
        assert launched != printed  # a code of its own

        status, cookie = _session(launched)
        assert status == 303 and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        token = cookie.split(";")[0].split("=", 1)[1]
        assert len(token) >= 32
        # The session token is on no command line and in no address; the launch code is dead.
        assert all(token not in arg for arg in argv) and token not in printed
        assert _session(launched)[0] == 403
        # The printed address is good once too, and gives the same session.
        assert _session(printed)[1].split(";")[0].endswith(token)
        assert _session(printed)[0] == 403
        home = printed.split("/launch")[0] + "/"
        request = urllib.request.Request(home, headers={"Cookie": cookie.split(";")[0]})
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.status == 200 and b"Faces by person" in response.read()
        try:
            urllib.request.urlopen(home, timeout=20)
            raise AssertionError("served without the session cookie")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode in (0, 130)
    assert "used a second time" in stderr  # each launch address used twice is reported


def test_the_command_says_how_to_install_the_app(tmp_path: Path, monkeypatch: Any) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from photocluster.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    result = CliRunner().invoke(app, ["review", "--no-browser", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "pip install starlette uvicorn" in result.stderr
