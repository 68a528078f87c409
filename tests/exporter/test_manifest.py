"""The export's manifest on disk: a line at a time since format 2, earlier ones read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photocluster.exporter import index_json
from photocluster.exporter.index_json import Manifest


def _manifest(n: int) -> Manifest:
    return Manifest(
        {f"person_{k % 7:04d}/IMG_{k}.jpg" for k in range(n)} | {'odd "name": [x], {y}.jpg'},
        {f".thumbs/{k % 256:02x}/{k}_abc.webp": "abc" for k in range(n)},
        {"/photos/a.xmp": "created", "person_0001/b.xmp": "merged"},
        {f"person_{k % 7:04d}/IMG_{k}.jpg": f"l:/photos/{k}.jpg" for k in range(n)},
    )


@pytest.mark.parametrize("n", [0, 1, 10_000])
def test_the_manifest_is_read_a_line_at_a_time(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _manifest(n)
    path = tmp_path / "m"
    path.write_text(manifest.dump(), encoding="utf-8")
    assert json.loads(path.read_text())["files"] == manifest.files  # still one JSON document
    whole = Manifest.parse
    monkeypatch.setattr(Manifest, "parse", lambda doc: pytest.fail("read whole"))
    assert Manifest.read(path) == manifest
    monkeypatch.setattr(Manifest, "parse", whole)
    assert max(len(line) for line in path.read_text().splitlines()) < 80 * index_json._SLICE


def test_a_manifest_of_an_earlier_version_is_read_whole(tmp_path: Path) -> None:
    manifest = _manifest(100)
    path = tmp_path / "m"
    doc = json.loads(manifest.dump())
    del doc["format"]
    path.write_text(json.dumps(doc), encoding="utf-8")  # one line, as photocluster wrote it before
    assert Manifest.read(path) == manifest
    path.write_text(json.dumps({"entries": ["a/b.jpg"]}), encoding="utf-8")  # 0.1.0
    assert Manifest.read(path) == Manifest({"a/b.jpg"})


def test_a_damaged_manifest_loses_what_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "m"
    text = _manifest(10_000).dump()
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # cut short
    assert Manifest.read(path) == Manifest()
    path.write_text("not json", encoding="utf-8")
    assert Manifest.read(path) == Manifest()
    doc = json.loads(text)
    doc["files"]["x"] = 3  # edited by hand: valid JSON, other layout
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    read = Manifest.read(path)
    assert "x" not in read.files and read.entries == _manifest(10_000).entries
