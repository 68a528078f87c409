"""Recall vs time of the default detection size, on the labelled fixtures.

For each setting, every fixture photo (except the 150 px dlib-johns crops) is decoded and
run through the scan's detection stage, with the default engine (and one thread).
Reported per setting: faces found against the labelled count; recall of the annotated VOC
boxes (IoU >= 0.3, their faces are small); the smallest annotated face found, as a share of
the photo's long side; holdout photos (150 px, one face each) with a face found; seconds.

    python benchmarks/detection_size.py [--fixtures DIR] [--holdout N] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box
from photocluster.detect.faces import analyze_pixels
from photocluster.detect.images import load_image

SETTINGS = [
    ("max 800, upsample 1", DetectionSettings(max_size=800, upsample=1)),
    ("max 1200, upsample 1", DetectionSettings(max_size=1200, upsample=1)),
    ("max 1600, upsample 1 (default)", DetectionSettings(max_size=1600, upsample=1)),
    ("max 1600, upsample 0", DetectionSettings(max_size=1600, upsample=0)),
    ("max 1600, auto (enlarge small photos 2x)", DetectionSettings(max_size=1600, upsample=None)),
]


def voc_boxes(fixtures: Path) -> dict[str, list[Box]]:
    out: dict[str, list[Box]] = {}
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(fixtures / "dlib-faces" / xml).getroot().iter("image"):
            boxes = out.setdefault("dlib-faces/" + image.get("file", ""), [])
            for b in image.iter("box"):
                if b.get("ignore") == "1":
                    continue
                left, top = float(b.get("left", 0)), float(b.get("top", 0))
                w, h = float(b.get("width", 0)), float(b.get("height", 0))
                boxes.append(Box(left, top, left + w, top + h))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.environ.get("PHOTOCLUSTER_FIXTURES", "../shared/fixtures"))
    ap.add_argument("--holdout", type=int, default=100, help="holdout photos to include (0: none)")
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args()
    fixtures = Path(args.fixtures)
    labelled: dict[str, int] = {}
    with open(fixtures / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            path, ident = row["relative_path"], row["identity"]
            if path.startswith("dlib-johns/") or ident.startswith("<"):
                continue
            labelled[path] = len(ident.split(";"))
    labelled["dlib-faces/bald_guys.jpg"] = 25  # SOURCES.md: 25 faces in the collage
    voc = voc_boxes(fixtures)
    holdout_dir = fixtures.parent / "holdout" / "images"
    holdout = sorted(holdout_dir.glob("*.jpg"))[: args.holdout] if holdout_dir.is_dir() else []

    results = []
    for name, settings in SETTINGS:
        t_total = 0.0
        found_labelled = expected_labelled = 0
        voc_found = voc_total = 0
        smallest: float | None = None
        for rel, expected in sorted(labelled.items()):
            image = load_image(fixtures / rel, settings.max_size, enlarge=settings.upsample is None)
            t = time.perf_counter()
            faces = analyze_pixels(image, settings)
            t_total += time.perf_counter() - t
            expected_labelled += expected
            found_labelled += min(len(faces), expected)
        for rel, truth in sorted(voc.items()):
            image = load_image(fixtures / rel, settings.max_size, enlarge=settings.upsample is None)
            t = time.perf_counter()
            faces = analyze_pixels(image, settings)
            t_total += time.perf_counter() - t
            long_side = max(image.width, image.height)
            for gt in truth:
                voc_total += 1
                if any(gt.iou(f.box) >= 0.3 for f in faces):
                    voc_found += 1
                    share = max(gt.width, gt.height) / long_side
                    smallest = share if smallest is None else min(smallest, share)
        holdout_hit = 0
        t_holdout = 0.0
        for path in holdout:
            image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
            t = time.perf_counter()
            holdout_hit += bool(analyze_pixels(image, settings))
            t_holdout += time.perf_counter() - t
        row = {
            "setting": name,
            "labelled_faces_found": found_labelled,
            "labelled_faces": expected_labelled,
            "voc_boxes_found": voc_found,
            "voc_boxes": voc_total,
            "smallest_voc_face_found_share": round(smallest, 4) if smallest else None,
            "fixture_seconds": round(t_total, 1),
            "holdout_with_face": holdout_hit,
            "holdout_photos": len(holdout),
            "holdout_seconds": round(t_holdout, 1),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(
        "| setting | labelled faces found | VOC boxes found | smallest VOC face found "
        "| fixture s | holdout with a face | holdout s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['setting']} | {r['labelled_faces_found']}/{r['labelled_faces']} | "
            f"{r['voc_boxes_found']}/{r['voc_boxes']} | {r['smallest_voc_face_found_share']} | "
            f"{r['fixture_seconds']} | {r['holdout_with_face']}/{r['holdout_photos']} | {r['holdout_seconds']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
