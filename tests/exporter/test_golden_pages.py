"""Golden pages: the static export's HTML, byte for byte, and the review app's pages.

Written once from a known library; any change to how pages are rendered (templates, escaping,
URLs) must leave these bytes as they are, or be a deliberate change re-recorded with
``UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from app.test_export import build_library
from starlette.testclient import TestClient

from photocluster.app.export import export
from photocluster.store import Store
from photocluster.version import __version__
from photocluster.web.app import create_app
from photocluster.web.auth import Gate, cookie_name

GOLDEN = Path(__file__).parent.parent / "golden" / "pages"
TOKEN = "golden-token"
ORIGIN = "http://127.0.0.1:8765"


def normalise(text: str, tmp_path: Path) -> str:
    return text.replace(str(tmp_path), "<TMP>").replace(__version__, "<VERSION>")


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden copy"


def named_library(store: Store, root: Path) -> None:
    build_library(store, root)
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Zoë <Z> & \"co\"' WHERE id = 2")


def test_static_export_pages_match_golden(store: Store, tmp_path: Path) -> None:
    named_library(store, tmp_path / "photos")
    dest = tmp_path / "out"
    export(store, dest)
    pages = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.html"))
    assert "index.html" in pages and len(pages) >= 3
    for rel in pages:
        check("static/" + rel.replace("/", "__"), normalise((dest / rel).read_text(encoding="utf-8"), tmp_path))


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("index", "/"),
        ("person-1", "/person/1"),
        ("person-2", "/person/2"),
        ("unknown", "/unknown"),
        ("doubt", "/doubt"),
    ],
)
def test_review_app_pages_match_golden(store: Store, tmp_path: Path, name: str, path: str) -> None:
    named_library(store, tmp_path / "photos")
    with TestClient(create_app(store.path, Gate(TOKEN, TOKEN)), base_url=ORIGIN, follow_redirects=False) as client:
        client.cookies.set(cookie_name(int(ORIGIN.rsplit(":", 1)[1])), TOKEN)
        response = client.get(path)
        assert response.status_code == 200, response.text
        check(f"review/{name}.html", normalise(response.text, tmp_path))
