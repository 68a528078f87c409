"""Which library reads the face tags of 10,000 photos fastest (issue #15).

A scan reads the tags of every photo, changed or not (a sidecar can change while the
photo does not), so the cost per photo is what matters. The library: N holdout photos
copied to a folder, MWG regions written by exiftool into 20% of them, Microsoft regions
into 10%, MWG sidecars (``photo.jpg.xmp``) beside 10%; the rest have no tags. Each reader
finds every named face region of every photo (embedded and sidecar) and the count is
checked against what was written.

Readers: photocluster's own (Pillow hands over the XMP packet while reading the header,
defusedxml parses it: :func:`photocluster.detect.tags.read_tags`, which also looks for a
``.picasa.ini`` and a Takeout JSON), a persistent exiftool (pyexiftool, ``-stay_open``,
batches of 200), python-xmp-toolkit (Exempi; apt: libexempi8) and pyexiv2 (exiv2).

    .venv/bin/pip install pyexiftool python-xmp-toolkit pyexiv2   # the candidates, not dependencies
    .venv/bin/python benchmarks/tag_readers.py --photos 10000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HOLDOUT = Path("/work/shared/holdout/images")
MWG = (
    "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=150,H=150,Unit=pixel},RegionList=[{Area={X=0.5,Y=0.45,"
    "W=0.4,H=0.5,Unit=normalized},Name=Anna Example,Type=Face}]}"
)
MP = "-XMP-MP:RegionInfoMP={Regions=[{PersonDisplayName=Ben Example,Rectangle=0.3|, 0.2|, 0.4|, 0.5}]}"


def build(root: Path, n: int) -> int:
    """Lay out the library; returns the number of named regions written."""
    photos = sorted(HOLDOUT.iterdir())[:n]
    parts = {"plain": 0.6, "mwg": 0.2, "mp": 0.1, "sidecar": 0.1}
    start = 0
    for part, share in parts.items():
        folder = root / part
        folder.mkdir(parents=True)
        count = round(n * share)
        for src in photos[start : start + count]:
            shutil.copyfile(src, folder / src.name)
        start += count
    run = ["exiftool", "-q", "-overwrite_original"]
    subprocess.run([*run, MWG, str(root / "mwg")], check=True)
    subprocess.run([*run, MP, str(root / "mp")], check=True)
    subprocess.run(["exiftool", "-q", "-o", "%d%f.%e.xmp", MWG, str(root / "sidecar")], check=True)
    return sum(len(list((root / p).glob("*.jpg"))) for p in ("mwg", "mp", "sidecar"))


def read_photocluster(files: list[Path]) -> int:
    from photocluster.detect.tags import read_tags

    return sum(len(read_tags(f).tags) for f in files)


def read_exiftool(files: list[Path]) -> int:
    import exiftool

    tags = ["XMP-mwg-rs:RegionInfo", "XMP-MP:RegionInfoMP", "Orientation", "ImageWidth", "ImageHeight"]
    found = 0
    with exiftool.ExifToolHelper() as et:
        targets = [str(f) for f in files] + [str(s) for f in files for s in _sidecars(f)]
        for k in range(0, len(targets), 200):
            for doc in et.get_tags(targets[k : k + 200], tags, params=["-struct", "-n"]):
                mwg = doc.get("XMP:RegionInfo") or {}
                mp = doc.get("XMP:RegionInfoMP") or {}
                found += sum(1 for r in mwg.get("RegionList", []) if r.get("Name"))
                found += sum(1 for r in mp.get("Regions", []) if r.get("PersonDisplayName"))
    return found


def read_libxmp(files: list[Path]) -> int:
    from libxmp import XMPFiles, XMPMeta

    XMP_NS_MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
    ns_mp, ns_mpri, ns_mpreg = (
        "http://ns.microsoft.com/photo/1.2/",
        "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
        "http://ns.microsoft.com/photo/1.2/t/Region#",
    )

    def count(xmp: XMPMeta | None) -> int:
        if xmp is None:
            return 0
        n = 0
        if xmp.does_property_exist(XMP_NS_MWG_RS, "Regions"):
            XMPMeta.register_namespace(XMP_NS_MWG_RS, "mwg-rs")
            for k in range(1, xmp.count_array_items(XMP_NS_MWG_RS, "Regions/mwg-rs:RegionList") + 1):
                n += bool(xmp.get_property(XMP_NS_MWG_RS, f"Regions/mwg-rs:RegionList[{k}]/mwg-rs:Name"))
        if xmp.does_property_exist(ns_mp, "RegionInfo"):
            for prefix, ns in (("MP", ns_mp), ("MPRI", ns_mpri), ("MPReg", ns_mpreg)):
                XMPMeta.register_namespace(ns, prefix)
            for k in range(1, xmp.count_array_items(ns_mp, "RegionInfo/MPRI:Regions") + 1):
                n += bool(xmp.get_property(ns_mp, f"RegionInfo/MPRI:Regions[{k}]/MPReg:PersonDisplayName"))
        return n

    found = 0
    for f in files:
        _geometry(f)  # Exempi gives no reliable size or orientation: Pillow's header read
        xf = XMPFiles(file_path=str(f))
        found += count(xf.get_xmp())
        xf.close_file()
        for s in _sidecars(f):
            meta = XMPMeta()
            meta.parse_from_str(s.read_text())
            found += count(meta)
    return found


def read_pyexiv2(files: list[Path]) -> int:
    import pyexiv2

    def count(xmp: dict[str, object]) -> int:
        return sum(1 for k in xmp if k.endswith("/mwg-rs:Name") or k.endswith("/MPReg:PersonDisplayName"))

    found = 0
    for f in files:
        for target in (f, *_sidecars(f)):
            with pyexiv2.Image(str(target)) as img:
                if target == f:  # the size and orientation the regions are mapped through
                    img.get_pixel_width(), img.get_pixel_height(), img.read_exif().get("Exif.Image.Orientation")
                found += count(img.read_xmp())
    return found


def _geometry(photo: Path) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(photo) as im:
        return im.size[0], im.size[1], int(im.getexif().get(0x0112, 1))


def _sidecars(photo: Path) -> list[Path]:
    return [p for p in (photo.with_name(photo.name + ".xmp"), photo.with_name(photo.stem + ".xmp")) if p.is_file()]


READERS: dict[str, Callable[[list[Path]], int]] = {
    "photocluster (Pillow + defusedxml)": read_photocluster,
    "exiftool -stay_open (pyexiftool)": read_exiftool,
    "python-xmp-toolkit (Exempi)": read_libxmp,
    "pyexiv2 (exiv2)": read_pyexiv2,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=10000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tag-readers-") as tmp:
        root = Path(tmp)
        written = build(root, args.photos)
        files = sorted(root.rglob("*.jpg"))
        for f in root.rglob("*"):  # every reader starts with the files in the page cache
            if f.is_file():
                f.read_bytes()
        rows = []
        for name, reader in READERS.items():
            start = time.perf_counter()
            try:
                found = reader(files)
            except ImportError as exc:
                print(f"{name}: not installed ({exc})", file=sys.stderr)
                continue
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "reader": name,
                    "photos": len(files),
                    "regions": found,
                    "expected": written,
                    "seconds": round(seconds, 2),
                    "ms_per_photo": round(1000 * seconds / len(files), 3),
                }
            )
            print(
                f"{name:40s} {seconds:7.2f} s  {1000 * seconds / len(files):6.3f} ms/photo  {found}/{written} regions",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
