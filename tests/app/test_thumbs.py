"""Thumbnails an earlier version stored (JPEG, quality 85) are converted to today's format
once, in resumable batches, and no face loses its thumbnail on the way."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from photocluster.app import thumbs
from photocluster.app.export import export
from photocluster.app.thumbs import convert_thumbnails, ensure_thumbnails
from photocluster.detect.images import load_image
from photocluster.detect.thumbnail import LEGACY_PARAMS, THUMB_PARAMS, THUMB_SIZE, thumbnail_pixels
from photocluster.store import Store

from .test_export import all_faces, build_library, index_of


def legacy_library(store: Store, root: Path) -> dict[int, bytes]:
    """The library as the previous version left it: each face's thumbnail a JPEG of
    quality 85 of the same square (what its scan stored), under its parameters."""
    build_library(store, root)
    old: dict[int, bytes] = {}
    for face, _ in store.faces():
        assert face.id is not None
        out = io.BytesIO()
        thumbnail_pixels(load_image(face.photo_path, 1600, enlarge=False), face.box).save(out, "JPEG", quality=85)
        old[face.id] = out.getvalue()
    assert store.put_thumbnails((fid, LEGACY_PARAMS, data) for fid, data in old.items()) == len(old)
    return old


def _same_picture(webp: bytes, jpeg: bytes) -> bool:
    with Image.open(io.BytesIO(webp)) as a, Image.open(io.BytesIO(jpeg)) as b:
        assert (a.format, a.size) == ("WEBP", (THUMB_SIZE, THUMB_SIZE))
        pa, pb = a.convert("RGB").getpixel((64, 64)), b.convert("RGB").getpixel((64, 64))
        return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) < 20  # type: ignore[arg-type]


def test_an_old_library_is_converted_once_by_its_first_export(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    old = legacy_library(store, root)
    for photo in root.rglob("*.*"):
        photo.write_bytes(b"not a photo any more")  # converted from the store, never cut again
    report = export(store, tmp_path / "out")
    assert report.thumbnails == len(old) and not [w for w in report.warnings if "thumbnail" in w]
    assert store.thumbnail_count(LEGACY_PARAMS) == 0 and store.thumbnail_count(THUMB_PARAMS) == len(old)
    new = store.thumbnails(list(old), THUMB_PARAMS)
    assert all(_same_picture(new[fid], old[fid]) for fid in old)
    written = {f["id"]: f["thumbnail"] for f in all_faces(index_of(tmp_path / "out"))}
    assert all(
        rel.endswith(".webp") and (tmp_path / "out" / rel).read_bytes() == new[fid] for fid, rel in written.items()
    )
    assert convert_thumbnails(store) == 0  # once


def test_a_conversion_stopped_midway_resumes_and_loses_no_thumbnail(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = legacy_library(store, tmp_path / "photos")
    monkeypatch.setattr(thumbs, "_BATCH", 3)
    replace = store.replace_thumbnails
    calls = []

    def stop_after_one(*args: object) -> int:
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return replace(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "replace_thumbnails", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        convert_thumbnails(store)
    assert (store.thumbnail_count(THUMB_PARAMS), store.thumbnail_count(LEGACY_PARAMS)) == (3, len(old) - 3)
    monkeypatch.setattr(store, "replace_thumbnails", replace)
    assert convert_thumbnails(store) == len(old) - 3
    assert store.thumbnail_count(THUMB_PARAMS) == len(old) and store.thumbnail_count() == len(old)


def test_a_stored_jpeg_that_does_not_decode_is_cut_again_from_its_photo(store: Store, tmp_path: Path) -> None:
    old = legacy_library(store, tmp_path / "photos")
    broken = min(old)
    store.put_thumbnails([(broken, LEGACY_PARAMS, b"\xff\xd8 truncated")])
    assert ensure_thumbnails(store) == set()
    assert store.thumbnail_count(THUMB_PARAMS) == len(old)
    with Image.open(io.BytesIO(store.thumbnail(broken, THUMB_PARAMS) or b"")) as im:
        assert im.format == "WEBP"
