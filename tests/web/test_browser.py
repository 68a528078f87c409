"""The review app in a real browser (Playwright driving Debian's chromium): rename a
person, merge two, move a face and undo, all from the page; then the database and the
page agree. Also `photocluster review` itself: the URL first, the token required."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import assert_not_blank
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
    page.goto(server.url)
    assert card_ids(page) == [alice, bob, carol]  # largest first
    sizes = page.locator("img").evaluate_all("els => els.map(e => [e.complete, e.naturalWidth])")
    assert sizes and all(done and width == 128 for done, width in sizes)
    assert_not_blank(page.screenshot())

    # Rename Bob from his page.
    page.locator(f'article.card[data-person-id="{bob}"] .name').click()
    page.wait_for_url(re.compile(rf"/person/{bob}\b"))
    page.fill("#name", "Robert <B>")
    page.click("#rename")
    assert "Done: name" in page.inner_text("#message")
    assert page.inner_text("h2 .name") == "Robert <B>"
    assert store.person_names()[bob] == "Robert <B>"

    # Move one of Alice's faces to Carol, from Alice's page.
    page.goto(server.url)
    page.locator(f'article.card[data-person-id="{alice}"] .name').click()
    moved = library["alice"][2]
    page.check(f'figure[data-face-id="{moved}"] input[name="face"]')
    page.fill("#move-to", str(carol))
    page.click("#move")
    assert "moved 1 face" in page.inner_text("#message")
    assert moved not in faces_on(page) and person_of(store, moved) == carol

    # Merge Bob into Alice: select both on the index.
    page.goto(server.url)
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
    assert_not_blank(page.screenshot())


def test_the_doubt_and_unknown_pages(store: Store, library: dict[str, list[int]], server: Server, page: Any) -> None:
    page.goto(server.url)
    page.click("#nav-unknown")
    assert faces_on(page) == library["stranger"]
    page.click("#nav-doubt")
    assert page.locator("section#doubt").count() == 1
    assert page.locator("script").count() == 0


def test_the_command_prints_the_url_first_and_wants_the_token(store: Store, library: dict[str, list[int]]) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "photocluster", "review", "--no-browser", "--db", str(store.path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{32}", url), url
        with urllib.request.urlopen(url, timeout=20) as response:
            assert response.status == 200 and b"Faces by person" in response.read()
        bare = url.split("?")[0]
        try:
            urllib.request.urlopen(bare, timeout=20)
            raise AssertionError("served without the token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode in (0, 130)


def test_the_command_says_how_to_install_the_app(tmp_path: Path, monkeypatch: Any) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from photocluster.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    result = CliRunner().invoke(app, ["review", "--no-browser", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "pip install starlette uvicorn" in result.stderr
