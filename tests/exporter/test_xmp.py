"""XMP sidecars with MWG face regions, read back by exiftool (Debian: libimage-exiftool-perl)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import DISPLAYED, FACE, RED, TO_STORED, fake_embedding, make_face, near, red_box, rotated_photo
from photocluster.app.export import EXPORT_MARKER, export
from photocluster.app.recluster import recluster
from photocluster.cli import app
from photocluster.core.errors import UsageError
from photocluster.core.types import Box
from photocluster.detect.images import load_image
from photocluster.exporter.xmp import Geometry, sidecar_path, stored_area
from photocluster.store import Store

SETTINGS = "cnn/max1600/upauto/v1"


def exiftool(*args: str | Path) -> list[dict[str, object]]:
    tool = shutil.which("exiftool")
    if tool is None:
        pytest.fail(
            "exiftool not found: the XMP sidecars are checked with it. "
            "Install it: apt-get install -y libimage-exiftool-perl (.ci/run does this)"
        )
    done = subprocess.run(
        [tool, "-j", "-struct", "-n", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, list)
    return doc


def regions(sidecar: Path) -> dict[str, object]:
    [doc] = exiftool("-XMP-mwg-rs:all", sidecar)
    info = doc["RegionInfo"]
    assert isinstance(info, dict)
    return info


def save(store: Store, scan: int, path: Path, faces: list[tuple[str, tuple[float, float, float, float]]]) -> None:
    st = path.stat()
    w, h = DISPLAYED
    store.save_photo(
        path,
        st.st_size,
        st.st_mtime_ns,
        f"sha-{path.name}",
        scan,
        SETTINGS,
        width=w,
        height=h,
        faces=[
            make_face(near(fake_embedding(who), 0.2, f"{path.name}-{k}"), box) for k, (who, box) in enumerate(faces)
        ],
    )


@pytest.fixture
def library(store: Store, tmp_path: Path) -> Path:
    """Zoë's face in one photo per EXIF orientation; Bob in two photos, one with Zoë."""
    root = tmp_path / "photos"
    scan = store.begin_scan([root], SETTINGS)
    for o in range(1, 9):
        save(store, scan, rotated_photo(root / f"o{o}.jpg", o), [("zoe", FACE)])
    save(store, scan, rotated_photo(root / "bob.jpg", 1, (90, 10, 130, 60)), [("bob", (90, 10, 130, 60))])
    group = rotated_photo(root / "group.jpg", 6)
    save(store, scan, group, [("zoe", FACE), ("bob", (100.0, 30.0, 140.0, 80.0))])
    recluster(store, threshold=0.6, min_size=2, method="whispers")
    with store.transaction() as conn:
        conn.execute(f"UPDATE persons SET name = 'Zoë <Z> & co' WHERE id = {person_of(store, 'o1.jpg')}")
    return root


def person_of(store: Store, photo: str) -> int:
    [pid] = {f.person_id for f, _ in store.faces() if f.photo_path.name == photo}
    assert pid is not None
    return pid


def bob(store: Store) -> str:
    """Bob's person is unnamed: his regions carry the label of his folder."""
    return f"person_{person_of(store, 'bob.jpg'):04d}"


def test_test_photos_display_as_drawn(tmp_path: Path) -> None:
    for o in range(1, 9):
        image = load_image(rotated_photo(tmp_path / f"{o}.jpg", o), 4000, enlarge=False)
        assert (image.width, image.height) == DISPLAYED
        assert red_box(image.pixels) == tuple(round(v) for v in FACE), o


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_area_is_where_the_face_is_stored(orientation: int) -> None:
    # Independent of exiftool: the area lands on the red square in the stored pixels.
    displayed = Image.new("RGB", DISPLAYED, (120, 120, 120))
    displayed.paste(RED, tuple(round(v) for v in FACE))  # type: ignore[arg-type]
    stored = displayed.transpose(TO_STORED[orientation]) if orientation != 1 else displayed
    x, y, w, h = stored_area(Box(*FACE), Geometry(stored.width, stored.height, orientation))
    sw, sh = stored.size
    got = ((x - w / 2) * sw, (y - h / 2) * sh, (x + w / 2) * sw, (y + h / 2) * sh)
    assert got == pytest.approx(red_box(np.asarray(stored)), abs=1e-6)


def test_stored_area_clips_to_the_image() -> None:
    x, y, w, h = stored_area(Box(-20, -10, 40, 30), Geometry(160, 100, 1))
    assert (x, y, w, h) == pytest.approx((20 / 160, 15 / 100, 40 / 160, 30 / 100))


def test_sidecar_names() -> None:
    assert sidecar_path(Path("/p/IMG_0001.JPG")) == Path("/p/IMG_0001.JPG.xmp")


def test_exiftool_reads_names_and_areas_in_every_orientation(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    report = export(store, dest, xmp="dest")
    assert (report.sidecars, report.warnings) == (11, [])  # 8 + bob.jpg + group.jpg in two folders
    folder = dest / "Zoë _Z_ & co"
    sidecars = sorted(folder.glob("*.xmp"))
    assert [p.name for p in sidecars] == ["group.jpg.xmp"] + [f"o{o}.jpg.xmp" for o in range(1, 9)]
    photos = {doc["SourceFile"]: doc for doc in exiftool("-ImageWidth", "-ImageHeight", "-Orientation", library)}
    for sidecar in sidecars:
        photo = library / sidecar.name.removesuffix(".xmp")
        meta = photos[str(photo)]
        info = regions(sidecar)
        # AppliedToDimensions: the stored image, as exiftool measures the photo.
        assert info["AppliedToDimensions"] == {"W": meta["ImageWidth"], "H": meta["ImageHeight"], "Unit": "pixel"}
        region_list = info["RegionList"]
        assert isinstance(region_list, list)
        zoe = [r for r in region_list if r["Name"] == "Zoë <Z> & co"]
        assert len(zoe) == 1 and zoe[0]["Type"] == "Face"
        area = zoe[0]["Area"]
        assert area["Unit"] == "normalized"
        # The area, applied to the stored pixels (as MWG says), covers the red square there.
        with Image.open(photo) as im:
            stored = np.asarray(im.convert("RGB"))
            sw, sh = im.size
        x, y, w, h = area["X"], area["Y"], area["W"], area["H"]
        got = ((x - w / 2) * sw, (y - h / 2) * sh, (x + w / 2) * sw, (y + h / 2) * sh)
        assert got == pytest.approx(red_box(stored), abs=1.5), (sidecar.name, meta["Orientation"])
    group = regions(folder / "group.jpg.xmp")["RegionList"]
    assert sorted(r["Name"] for r in group) == sorted(["Zoë <Z> & co", bob(store)])  # type: ignore[union-attr]
    # The group photo is in Bob's folder too, with the same regions.
    assert regions(dest / bob(store) / "group.jpg.xmp") == regions(folder / "group.jpg.xmp")


def test_dest_sidecars_are_idempotent_and_removed_with_their_option(
    store: Store, library: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    export(store, dest, xmp="dest")
    sidecars = sorted(dest.rglob("*.xmp"))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sidecars}
    assert export(store, dest, xmp="dest").sidecars == 11
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sidecars} == before
    report = export(store, dest)
    assert report.sidecars == 0
    assert list(dest.rglob("*.xmp")) == []
    assert json.loads((dest / EXPORT_MARKER).read_text())["sidecars"] == {}


FOREIGN = """<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/' x:xmptk='Image::ExifTool 12.57'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about=''
  xmlns:dc='http://purl.org/dc/elements/1.1/'
  xmlns:xmp='http://ns.adobe.com/xap/1.0/'>
  <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject>
  <xmp:Rating>4</xmp:Rating>
 </rdf:Description>
 <rdf:Description rdf:about=''
  xmlns:mwg-rs='http://www.metadataworkinggroup.com/schemas/regions/'
  xmlns:stArea='http://ns.adobe.com/xmp/sType/Area#'
  xmlns:stDim='http://ns.adobe.com/xap/1.0/sType/Dimensions#'>
  <mwg-rs:Regions rdf:parseType='Resource'>
   <mwg-rs:AppliedToDimensions stDim:w='100' stDim:h='160' stDim:unit='pixel'/>
   <mwg-rs:RegionList>
    <rdf:Bag>
     <rdf:li>
      <rdf:Description mwg-rs:Name='Tagged in Lightroom' mwg-rs:Type='Face'>
       <mwg-rs:Area stArea:x='0.8' stArea:y='0.2' stArea:w='0.1' stArea:h='0.1' stArea:unit='normalized'/>
      </rdf:Description>
     </rdf:li>
    </rdf:Bag>
   </mwg-rs:RegionList>
  </mwg-rs:Regions>
 </rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end='w'?>
"""


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_originals_sidecars_merge_and_never_clobber(store: Store, library: Path, tmp_path: Path) -> None:
    (library / "group.jpg.xmp").write_text(FOREIGN, encoding="utf-8")
    (library / "o2.jpg.xmp").write_text("<not xmp", encoding="utf-8")
    os.symlink(tmp_path / "elsewhere.xmp", library / "o3.jpg.xmp")
    dest = tmp_path / "out"
    report = export(store, dest, xmp="originals")
    assert report.sidecars == 8  # 10 photos with faces of persons; o2 and o3 are in the way
    assert sorted(w.split(": ")[0] for w in report.warnings) == [str(library / f"o{o}.jpg.xmp") for o in (2, 3)]
    assert (library / "o2.jpg.xmp").read_text() == "<not xmp"
    assert not (tmp_path / "elsewhere.xmp").exists()
    assert not list(dest.rglob("*.xmp"))  # beside the originals only

    [doc] = exiftool("-XMP:all", library / "group.jpg.xmp")
    assert doc["Subject"] == ["holiday"] and doc["Rating"] == 4
    names = sorted(r["Name"] for r in doc["RegionInfo"]["RegionList"])  # type: ignore[index]
    assert names == sorted(["Tagged in Lightroom", "Zoë <Z> & co", bob(store)])
    assert doc["RegionInfo"]["AppliedToDimensions"] == {"W": 100, "H": 160, "Unit": "pixel"}  # type: ignore[index]
    manifest = json.loads((dest / EXPORT_MARKER).read_text())
    assert manifest["sidecars"][str(library / "group.jpg.xmp")] == "merged"
    assert manifest["sidecars"][str(library / "o1.jpg.xmp")] == "created"

    # Unchanged regions: nothing is rewritten.
    before = tree(library)
    stamps = {p: p.stat().st_mtime_ns for p in library.glob("*.xmp") if not p.is_symlink()}
    assert export(store, dest, xmp="originals").sidecars == 8
    assert tree(library) == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # An export without --xmp originals touches nothing outside DEST, and keeps tracking them.
    export(store, dest)
    assert tree(library) == before
    assert json.loads((dest / EXPORT_MARKER).read_text())["sidecars"] == manifest["sidecars"]

    # A new name replaces our region; the foreign one stays.
    with store.transaction() as conn:
        conn.execute(f"UPDATE persons SET name = 'Zoe' WHERE id = {person_of(store, 'o1.jpg')}")
    export(store, dest, xmp="originals")
    [doc] = exiftool("-XMP:all", library / "group.jpg.xmp")
    names = sorted(r["Name"] for r in doc["RegionInfo"]["RegionList"])  # type: ignore[index]
    assert names == sorted(["Tagged in Lightroom", "Zoe", bob(store)])
    assert doc["Subject"] == ["holiday"]

    # Persons gone: our regions leave; files we created go, the foreign one stays as it was meant.
    recluster(store, threshold=0.6, min_size=50, method="whispers")
    report = export(store, dest, xmp="originals")
    assert report.sidecars == 0
    assert sorted(p.name for p in library.glob("*.xmp")) == ["group.jpg.xmp", "o2.jpg.xmp", "o3.jpg.xmp"]
    [doc] = exiftool("-XMP:all", library / "group.jpg.xmp")
    assert [r["Name"] for r in doc["RegionInfo"]["RegionList"]] == ["Tagged in Lightroom"]  # type: ignore[index]
    assert doc["Subject"] == ["holiday"] and doc["Rating"] == 4
    assert json.loads((dest / EXPORT_MARKER).read_text())["sidecars"] == {}


def test_our_regions_leave_a_merged_sidecar_clean(store: Store, library: Path, tmp_path: Path) -> None:
    plain = """<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
<rdf:Description rdf:about='' xmlns:dc='http://purl.org/dc/elements/1.1/'>
<dc:title><rdf:Alt><rdf:li xml:lang='x-default'>Beach</rdf:li></rdf:Alt></dc:title></rdf:Description>
</rdf:RDF></x:xmpmeta>"""
    (library / "o1.jpg.xmp").write_text(plain, encoding="utf-8")
    dest = tmp_path / "out"
    export(store, dest, xmp="originals")
    [doc] = exiftool("-XMP:all", library / "o1.jpg.xmp")
    assert doc["Title"] == "Beach" and doc["RegionInfo"]["RegionList"][0]["Name"] == "Zoë <Z> & co"  # type: ignore[index]
    recluster(store, threshold=0.6, min_size=50, method="whispers")
    export(store, dest, xmp="originals")
    [doc] = exiftool("-XMP:all", library / "o1.jpg.xmp")
    assert doc["Title"] == "Beach"
    assert "RegionInfo" not in doc
    assert "mwg-rs" not in (library / "o1.jpg.xmp").read_text(encoding="utf-8")


def test_a_photo_changed_since_the_scan_gets_no_sidecar(store: Store, library: Path, tmp_path: Path) -> None:
    rotated_photo(library / "o6.jpg", 1)  # same name, new content: not what was scanned
    report = export(store, tmp_path / "out", xmp="originals")
    assert report.sidecars == 9
    [warning] = [w for w in report.warnings if w.startswith(str(library / "o6.jpg.xmp"))]
    assert "changed since it was scanned" in warning
    assert not (library / "o6.jpg.xmp").exists()


def test_an_unknown_xmp_target_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--xmp must be one of dest, originals, got 'beside'"):
        export(store, tmp_path / "out", xmp="beside")
    assert not (tmp_path / "out").exists()


def test_cli_export_xmp(store: Store, library: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "out"), "--db", str(store.path), "--xmp", "dest", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["sidecars"], doc["warnings"]) == (11, [])
    result = CliRunner().invoke(app, ["export", str(tmp_path / "out"), "--db", str(store.path), "--xmp", "nearby"])
    assert result.exit_code == 2
    assert "'nearby' is not one of 'dest', 'originals'" in result.stderr


# -- Microsoft regions beside MWG's, and photocluster's own sidecars read back (issue #15) --


def test_exiftool_reads_microsoft_regions_in_every_orientation(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest, xmp="dest")
    folder = dest / "Zoë _Z_ & co"
    for o in range(1, 9):
        sidecar = folder / f"o{o}.jpg.xmp"
        [doc] = exiftool("-XMP-MP:all", "-XMP-mwg-rs:all", sidecar)
        [mp] = doc["RegionInfoMP"]["Regions"]  # type: ignore[index]
        [mwg] = doc["RegionInfo"]["RegionList"]  # type: ignore[index]
        assert mp["PersonDisplayName"] == mwg["Name"] == "Zoë <Z> & co"
        # Microsoft's rectangle is the MWG area's top-left corner and size.
        left, top, w, h = (float(v) for v in str(mp["Rectangle"]).split(","))
        a = mwg["Area"]
        assert (left + w / 2, top + h / 2, w, h) == pytest.approx((a["X"], a["Y"], a["W"], a["H"]), abs=2e-6)


def test_an_exported_sidecar_is_read_back_by_the_tag_import(store: Store, library: Path, tmp_path: Path) -> None:
    from photocluster.detect.tags import read_tags, regions_in_xmp
    from photocluster.exporter.xmp import geometry

    dest = tmp_path / "out"
    export(store, dest, xmp="dest")
    folder = dest / "Zoë _Z_ & co"
    for o in range(1, 9):
        entry = folder / f"o{o}.jpg"
        read = read_tags(entry)
        assert read.warnings == ()
        [tag] = read.tags  # MWG and Microsoft regions of one face are one tag
        assert (tag.name, tag.source, tag.ours) == ("Zoë <Z> & co", "mwg", True)
        assert tag.box is not None and tag.box.as_list() == pytest.approx(list(FACE), abs=0.5), o
        both = regions_in_xmp(sidecar_path(entry).read_bytes(), geometry(entry), "x")
        assert sorted(t.source for t in both) == ["mp", "mwg"]
        assert both[0].box is not None and both[1].box is not None
        assert both[0].box.as_list() == pytest.approx(both[1].box.as_list(), abs=1e-3)


def test_removing_our_regions_takes_the_microsoft_ones_too(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest, xmp="originals")
    assert "RegionInfoMP" in exiftool("-XMP-MP:all", library / "o1.jpg.xmp")[0]
    recluster(store, threshold=0.6, min_size=50, method="whispers")
    export(store, dest, xmp="originals")
    assert not (library / "o1.jpg.xmp").exists()  # photocluster created it, and nothing else is in it
