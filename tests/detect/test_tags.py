"""Reading the face tags people already have: files written by the real exiftool (every EXIF
orientation; embedded and sidecar; MWG and Microsoft), a .picasa.ini and Takeout JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DISPLAYED, FACE, exiftool_write, red_box, rotated_photo
from photocluster.detect.regions import Geometry, displayed_box, stored_area
from photocluster.detect.tags import Tag, read_tags, rect64_area

Area = tuple[float, float, float, float]


def stored_face(photo: Path) -> Area:
    """The red square's MWG area (centre, size; normalised) in the image *as stored*,
    measured on the stored pixels: independent of photocluster's orientation mapping."""
    with Image.open(photo) as im:
        pixels = np.asarray(im.convert("RGB"))
        w, h = im.size
    left, top, right, bottom = red_box(pixels)
    return ((left + right) / 2 / w, (top + bottom) / 2 / h, (right - left) / w, (bottom - top) / h)


def mwg(name: str, area: Area, size: tuple[int, int]) -> str:
    x, y, w, h = area
    return (
        f"-XMP-mwg-rs:RegionInfo={{AppliedToDimensions={{W={size[0]},H={size[1]},Unit=pixel}},"
        f"RegionList=[{{Area={{X={x},Y={y},W={w},H={h},Unit=normalized}},Name={name},Type=Face}}]}}"
    )


def microsoft(name: str, area: Area) -> str:
    x, y, w, h = area
    rectangle = f"{x - w / 2}|, {y - h / 2}|, {w}|, {h}"  # exiftool: "|," is a comma inside a value
    return f"-XMP-MP:RegionInfoMP={{Regions=[{{PersonDisplayName={name},Rectangle={rectangle}}}]}}"


def only(tags: tuple[Tag, ...]) -> Tag:
    assert len(tags) == 1, tags
    return tags[0]


def assert_on_face(tag: Tag, name: str, source: str) -> None:
    assert (tag.name, tag.source, tag.ours) == (name, source, False)
    assert tag.box is not None
    assert tag.box.as_list() == pytest.approx(list(FACE), abs=0.6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_embedded_mwg_and_microsoft_regions_in_every_orientation(tmp_path: Path, orientation: int) -> None:
    for kind in ("mwg", "mp"):
        photo = rotated_photo(tmp_path / f"{kind}.jpg", orientation)
        area = stored_face(photo)
        with Image.open(photo) as im:
            size = im.size
        exiftool_write(
            "-overwrite_original", mwg("Zoë", area, size) if kind == "mwg" else microsoft("Zoë", area), photo
        )
        read = read_tags(photo)
        assert read.warnings == ()
        assert_on_face(only(read.tags), "Zoë", kind)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("sidecar", ["{name}.xmp", "{stem}.xmp"])
def test_sidecar_regions_darktable_and_lightroom_names(tmp_path: Path, orientation: int, sidecar: str) -> None:
    photo = rotated_photo(tmp_path / "IMG_1.jpg", orientation)
    area = stored_face(photo)
    target = tmp_path / sidecar.format(name=photo.name, stem=photo.stem)
    exiftool_write("-o", target, mwg("Ann Lee", area, (1, 1)), photo)
    assert target.is_file() and "RegionInfo" not in photo.read_bytes().decode("latin-1")  # the photo is untouched
    read = read_tags(photo)
    tag = only(read.tags)
    assert_on_face(tag, "Ann Lee", "mwg")
    assert tag.origin == str(target)


def test_a_region_in_the_photo_and_its_sidecar_and_both_schemas_is_one_tag(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "a.jpg", 6)
    area = stored_face(photo)
    exiftool_write("-overwrite_original", mwg("Bo", area, (100, 160)), microsoft("Bo", area), photo)
    exiftool_write("-o", tmp_path / "a.jpg.xmp", mwg("bo", area, (100, 160)), photo)
    assert_on_face(only(read_tags(photo).tags), "Bo", "mwg")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_png_and_tiff_carry_xmp_too(tmp_path: Path, suffix: str) -> None:
    photo = tmp_path / f"p{suffix}"
    displayed = Image.new("RGB", DISPLAYED, (120, 120, 120))
    displayed.paste((230, 20, 20), tuple(round(v) for v in FACE))  # type: ignore[arg-type]
    displayed.save(photo)
    exiftool_write("-overwrite_original", mwg("Cy", stored_face(photo), DISPLAYED), photo)
    assert_on_face(only(read_tags(photo).tags), "Cy", "mwg")


def test_heic_carries_xmp(tmp_path: Path) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    photo = tmp_path / "p.heic"
    displayed = Image.new("RGB", DISPLAYED, (120, 120, 120))
    displayed.paste((230, 20, 20), tuple(round(v) for v in FACE))  # type: ignore[arg-type]
    displayed.save(photo, quality=95)
    left, top, right, bottom = FACE
    dw, dh = DISPLAYED
    area = ((left + right) / 2 / dw, (top + bottom) / 2 / dh, (right - left) / dw, (bottom - top) / dh)
    exiftool_write("-overwrite_original", mwg("Di", area, DISPLAYED), photo)
    assert_on_face(only(read_tags(photo).tags), "Di", "mwg")


def test_regions_that_name_no_face_are_left_out(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "a.jpg", 1)
    exiftool_write(
        "-overwrite_original",
        "-XMP-mwg-rs:RegionInfo={RegionList=[{Area={X=0.5,Y=0.5,W=0.2,H=0.2,Unit=normalized},Name=Rex,Type=Pet},"
        "{Area={X=0.5,Y=0.5,W=0.2,H=0.2,Unit=normalized},Type=Face},"
        "{Area={X=3,Y=3,W=0.2,H=0.2,Unit=normalized},Name=Outside,Type=Face}]}",
        photo,
    )
    assert read_tags(photo).tags == ()


def test_orientation_mapping_reads_back_what_export_writes() -> None:
    from photocluster.core.types import Box

    box = Box(12.0, 30.0, 52.0, 95.0)
    for o in range(1, 9):
        geo = Geometry(160, 100, o) if o < 5 else Geometry(100, 160, o)
        back = displayed_box(*stored_area(box, geo), geo)
        assert back is not None and back.as_list(3) == pytest.approx(box.as_list(3), abs=1e-3), o


# -- Picasa and Google Takeout -----------------------------------------------------------


def rect64(photo: Path) -> str:
    x, y, w, h = stored_face(photo)
    parts = [round(v * 65535) for v in (x - w / 2, y - h / 2, x + w / 2, y + h / 2)]
    return "".join(f"{p:04x}" for p in parts).lstrip("0")


def test_picasa_ini_with_contacts_from_the_ini_and_contacts_xml(tmp_path: Path) -> None:
    album = tmp_path / "album"
    a = rotated_photo(album / "a.jpg", 6)
    b = rotated_photo(album / "b.jpg", 1)
    (album / ".picasa.ini").write_text(
        "[Contacts2]\n1a2b=Eve Adams;;\n"
        f"[a.jpg]\nfaces=rect64({rect64(a)}),1a2b\n"
        f"[b.jpg]\nfaces=rect64({rect64(b)}),99ff;rect64({rect64(b)}),0000dead\n",
        encoding="utf-8",
    )
    (tmp_path / "contacts.xml").write_text(
        '<contacts><contact id="99ff" name="Finn" modified_time="0" local_contact="1"/></contacts>', encoding="utf-8"
    )
    assert rect64_area("0")[2:] == (0.0, 0.0)
    assert_on_face(only(read_tags(a).tags), "Eve Adams", "picasa")
    read = read_tags(b)
    assert_on_face(only(read.tags), "Finn", "picasa")
    [warning] = read.warnings
    assert ".picasa.ini" in warning and "1 face(s) of b.jpg" in warning


def test_takeout_names_without_boxes(tmp_path: Path) -> None:
    a = rotated_photo(tmp_path / "a.jpg", 1)
    b = rotated_photo(tmp_path / "b.jpg", 1)
    c = rotated_photo(tmp_path / "c.jpg", 1)
    (tmp_path / "a.jpg.json").write_text(json.dumps({"people": [{"name": "Gus"}, {"name": "Hal"}]}), encoding="utf-8")
    (tmp_path / "b.json").write_text(
        json.dumps({"title": "b.jpg", "people": [{"name": " Ivy  Ng "}]}), encoding="utf-8"
    )
    (tmp_path / "c.jpg.supplemental-metadata.json").write_text(json.dumps({"people": []}), encoding="utf-8")
    tags = read_tags(a).tags
    assert [(t.name, t.box, t.source) for t in tags] == [("Gus", None, "takeout"), ("Hal", None, "takeout")]
    assert [t.name for t in read_tags(b).tags] == ["Ivy Ng"]
    assert read_tags(c) == read_tags(c).__class__()


# -- bad input: one warning naming the file, never an exception ---------------------------------


def test_bad_files_give_one_line_warnings(tmp_path: Path) -> None:
    photo = rotated_photo(tmp_path / "a.jpg", 1)
    (tmp_path / "a.jpg.xmp").write_text("<x:xmpmeta <<< not xml", encoding="utf-8")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'>&b;</x:xmpmeta>"
    )
    (tmp_path / "a.xmp").write_text(bomb, encoding="utf-8")
    (tmp_path / "a.jpg.json").write_text("{not json", encoding="utf-8")
    (tmp_path / ".picasa.ini").write_bytes(b"faces=rect64(zz)\n\x00\xff[")
    read = read_tags(photo)
    assert read.tags == ()
    assert len(read.warnings) == 4, read.warnings
    for warning in read.warnings:
        assert "\n" not in warning
    assert any(w.startswith(str(tmp_path / "a.jpg.xmp")) for w in read.warnings)
    assert any(w.startswith(str(tmp_path / "a.xmp")) and "refused" in w for w in read.warnings)
    assert any(w.startswith(str(tmp_path / "a.jpg.json")) for w in read.warnings)
    not_a_photo = tmp_path / "b.jpg"
    not_a_photo.write_bytes(b"GIF89a garbage")
    [warning] = read_tags(not_a_photo).warnings
    assert warning.startswith(str(not_a_photo)) and "face tags" in warning
