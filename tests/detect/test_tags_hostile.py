"""Hostile or odd files beside a photo (real FIFOs, sockets, links to /dev/zero and
/dev/urandom, a sparse file over the cap, JSON 200,000 deep, XML a million deep, thousands
of regions): each costs one warning line naming it and the reason; the photo's other tags
are still read; nothing blocks, nothing raises."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import XMP_NS, rotated_photo, sparse_file, without_hanging
from conftest import mwg_sidecar as xmp
from photocluster.detect.tags import (
    MAX_NAME_CHARS,
    MAX_REGION_ITEMS,
    MAX_TAGS_PER_PHOTO,
    TagRead,
    read_tags,
)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


# Each makes a hostile file at the path it is given; the reason read_tags gives for it.
HOSTILE: dict[str, tuple[Callable[[Path], object], str]] = {
    "fifo": (fifo, "not a regular file (a FIFO)"),
    "zero": (lambda p: p.symlink_to("/dev/zero"), "not a regular file (a character device)"),
    "urandom": (lambda p: p.symlink_to("/dev/urandom"), "not a regular file (a character device)"),
    "socket": (unix_socket, "not a regular file (a socket)"),
    "folder": (Path.mkdir, "is a folder, not a file"),
    "huge": (lambda p: sparse_file(p, 150 * 1024 * 1024), "too large (150 MB; the limit is {cap})"),
}


def read(photo: Path) -> TagRead:
    fifos = [p for p in photo.parent.iterdir() if p.is_fifo()]
    return without_hanging(lambda: read_tags(photo), fifos)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_sidecar_is_one_warning_and_the_takeout_names_are_still_read(tmp_path: Path, kind: str) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    make, reason = HOSTILE[kind]
    make(tmp_path / "p.jpg.xmp")
    (tmp_path / "p.jpg.json").write_text(json.dumps({"people": [{"name": "Ann"}]}))
    got = read(photo)
    assert got.warnings == (f"{tmp_path}/p.jpg.xmp: face tags skipped: {reason.format(cap='16 MB')}",)
    assert [(t.name, t.source) for t in got.tags] == [("Ann", "takeout")]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_takeout_json_is_one_warning_and_the_sidecar_is_still_read(tmp_path: Path, kind: str) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    make, reason = HOSTILE[kind]
    make(tmp_path / "p.jpg.json")
    (tmp_path / "p.jpg.xmp").write_bytes(xmp(["Bo"]))
    got = read(photo)
    assert got.warnings == (f"{tmp_path}/p.jpg.json: Takeout names skipped: {reason.format(cap='1 MB')}",)
    assert [(t.name, t.source) for t in got.tags] == [("Bo", "mwg")]


def test_takeout_json_nested_200000_deep_is_one_warning_not_a_recursion_error(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    depth = 200_000
    (tmp_path / "p.jpg.json").write_bytes(b'{"people": ' + b"[" * depth + b"]" * depth + b"}")
    (tmp_path / "p.jpg.xmp").write_bytes(xmp(["Bo"]))
    got = read(photo)
    assert got.warnings == (f"{tmp_path}/p.jpg.json: Takeout names skipped: nested more than 64 deep",)
    assert [t.name for t in got.tags] == ["Bo"]
    # Brackets inside names are text, not nesting.
    (tmp_path / "p.jpg.json").write_text(json.dumps({"people": [{"name": "Rose [aunt] " + "[" * 100}]}))
    assert read(photo).warnings == ()


def test_xml_a_million_deep_and_lists_nested_in_lists_cost_linear_work(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    depth = 1_000_000
    deep = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + b"<a>" * depth + b"</a>" * depth + b"</x:xmpmeta>"
    (tmp_path / "p.jpg.xmp").write_bytes(deep)
    assert read(photo) == TagRead((), ())
    # Region lists inside region lists, 20,000 deep: each list is read one level down.
    level = '<mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag><rdf:li rdf:parseType="Resource">'
    close = "</rdf:li></rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>"
    n = 20_000
    body = f'<rdf:Description rdf:about="">{level * n}{close * n}</rdf:Description>'
    (tmp_path / "p.jpg.xmp").write_text(f"<x:xmpmeta {XMP_NS}><rdf:RDF>{body}</rdf:RDF></x:xmpmeta>")
    warning = f"{tmp_path}/p.jpg.xmp: more than {MAX_REGION_ITEMS} regions of a kind: the rest skipped"
    assert read(photo) == TagRead((), (warning,))


def test_tags_past_the_cap_of_a_photo_are_skipped_with_one_warning(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    names = [f"Person {k}" for k in range(MAX_TAGS_PER_PHOTO + 100)]
    (tmp_path / "p.jpg.xmp").write_bytes(xmp(names))
    got = read(photo)
    assert got.warnings == (f"{photo}: 100 face tags skipped (at most {MAX_TAGS_PER_PHOTO} a photo)",)
    assert [t.name for t in got.tags] == names[:MAX_TAGS_PER_PHOTO]


def test_regions_past_the_cap_of_a_packet_are_not_looked_at(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    # Pets are regions, not faces: they count against the regions looked at, not the tags.
    (tmp_path / "p.jpg.xmp").write_bytes(xmp([f"Pet {k}" for k in range(MAX_REGION_ITEMS + 1)], kind="Pet"))
    got = read(photo)
    assert got.warnings == (f"{tmp_path}/p.jpg.xmp: more than {MAX_REGION_ITEMS} regions of a kind: the rest skipped",)
    assert got.tags == ()


def test_a_name_is_cut_to_its_cap(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    (tmp_path / "p.jpg.json").write_text(json.dumps({"people": [{"name": "A" * 100_000}]}))
    assert [t.name for t in read(photo).tags] == ["A" * MAX_NAME_CHARS]


def test_a_hostile_picasa_ini_or_contacts_file_is_one_warning(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "p.jpg", 1)
    os.mkfifo(tmp_path / ".picasa.ini")
    got = read(photo)
    assert got.warnings == (f"{tmp_path}/.picasa.ini: cannot read Picasa's face tags (not a regular file (a FIFO))",)
    (tmp_path / ".picasa.ini").unlink()
    (tmp_path / ".picasa.ini").write_text("[p.jpg]\nfaces=rect64(3f845bcb59418507),8e62398ebda8c1a5\n")
    sparse_file(tmp_path / "contacts.xml", 150 * 1024 * 1024)
    got = read(photo)
    assert got.warnings == (
        f"{tmp_path}/contacts.xml: Picasa's contact names skipped: too large (150 MB; the limit is 16 MB)",
        f"{tmp_path}/.picasa.ini: 1 face(s) of p.jpg name a contact not found",
    )


def test_a_photo_that_is_a_fifo_is_one_warning(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.jpg")
    got = read(tmp_path / "p.jpg")
    assert got == TagRead(
        (), (f"{tmp_path}/p.jpg: cannot read the photo's metadata for face tags (not a regular file (a FIFO))",)
    )
