"""What reading face tags adds to a scan, and how many tags find their face (issue #15).

The library of ``tag_readers.py`` (N holdout LFW photos; MWG regions in 20%, Microsoft in
10%, MWG sidecars beside 10%; every region centred on the photo, where LFW's face is, and
drawn as a person would: 0.4 x 0.5 of the photo). One real ``scan`` (detection and tags),
then the same library scanned again, unchanged, with ``tags=False`` and with tags: the
difference is what reading the tags of every photo costs each scan.

    .venv/bin/python benchmarks/tag_scan.py --photos 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tag_readers import build

from photocluster.app.scan import scan
from photocluster.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tag-scan-") as tmp:
        root = Path(tmp) / "library"
        written = build(root, args.photos)
        with Store(Path(tmp) / "scan.db") as store:
            start = time.perf_counter()
            first = scan(store, [root])
            first_s = time.perf_counter() - start
            timings = {}
            for label, tags in (("rescan_without_tags", False), ("rescan_with_tags", True)):
                start = time.perf_counter()
                scan(store, [root], tags=tags)
                timings[label] = round(time.perf_counter() - start, 2)
        doc = {
            "photos": first.files,
            "regions_written": written,
            "faces_found": first.faces_found,
            "first_scan_seconds": round(first_s, 1),
            "tags": {k: v for k, v in first.tags.items() if k not in ("unmatched", "warnings")},
            "unmatched": len(first.tags["unmatched"]),  # type: ignore[arg-type]
            **timings,
            "tags_ms_per_photo": round(
                1000 * (timings["rescan_with_tags"] - timings["rescan_without_tags"]) / first.files, 3
            ),
        }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
