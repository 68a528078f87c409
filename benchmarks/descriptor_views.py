"""Descriptor views (test-time augmentation): verification accuracy and cost (development figures).

Each face of the development pairs (``../shared/lfw-dev/pairs.txt``) is described three ways
from the landmarks a scan stored: one chip (photocluster before), the chip and its mirror
image averaged, and the six views that :func:`photocluster.detect.faces.describe` averages
(the chip and its mirror image, each also moved up and down). For each way: the LFW protocol's
10-fold accuracy (strict: a pair with a missing face counts as wrong) and ROC AUC, and the
CPU time per face; in the same run, the detector's time per photo on the same photos and on
a 12-megapixel photo, so that the cost reads as a share of a scan.

    python benchmarks/descriptor_views.py --db lfw.db             # a library that scanned ../shared/holdout/images
    python benchmarks/descriptor_views.py --db lfw.db --variants  # and the shifts not chosen

Prints one JSON object per way, then one with the detection times.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box
from photocluster.detect import faces as fc
from photocluster.detect.images import DecodedImage, load_image
from photocluster.eval.metrics import kfold_accuracy, roc_auc, stratified_folds

SHARED = Path(__file__).resolve().parents[2] / "shared"


def read_pairs(pairs: Path, labels: Path, known: set[str] | None = None) -> list[tuple[str, str, bool]]:
    """(image, image, same) for each pair, by the images' file names in ``../holdout/images``;
    with ``known`` (a library's file names), a photo whose holdout name is not among them by its
    name in lfw-dev's layout (``Name_0001.jpg``)."""
    with open(labels, newline="") as fh:
        image_of = {row["relative_path"]: row.get("image") for row in csv.DictReader(fh)}

    def rel(name: str, num: str) -> str:
        own = f"{name}_{int(num):04d}.jpg"
        if known is None:
            return str(image_of[f"{name}/{own}"])
        image = image_of.get(f"{name}/{own}")
        return image if image in known else own

    out = []
    for line in pairs.read_text().splitlines()[1:]:
        p = line.split("\t")
        if len(p) == 3:
            out.append((rel(p[0], p[1]), rel(p[0], p[2]), True))
        elif len(p) == 4:
            out.append((rel(p[0], p[1]), rel(p[2], p[3]), False))
    return out


class CentralFace(NamedTuple):
    face_id: int
    path: Path
    box: Box  # in displayed-photo pixels
    points: np.ndarray


def central_faces(db: Path) -> dict[str, CentralFace]:
    """Each photo's face nearest its centre, by the photo's file name."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT f.id, p.path, f.left, f.top, f.right, f.bottom, f.landmarks, "
        "(f.left + f.right - p.width) * (f.left + f.right - p.width) + "
        "(f.top + f.bottom - p.height) * (f.top + f.bottom - p.height) FROM faces f "
        "JOIN photos p ON p.id = f.photo_id WHERE p.status = 'done'"
    ).fetchall()
    conn.close()
    best: dict[str, tuple[float, CentralFace]] = {}
    for fid, path, left, top, right, bottom, landmarks, off_centre in rows:
        name = os.path.basename(os.fsdecode(path))
        if name not in best or off_centre < best[name][0]:
            points = np.frombuffer(landmarks, dtype="<f4").reshape(5, 2)
            best[name] = (off_centre, CentralFace(fid, Path(os.fsdecode(path)), Box(left, top, right, bottom), points))
    return {name: face for name, (_, face) in best.items()}


def one_chip(image: DecodedImage, box: Box, points: np.ndarray) -> np.ndarray:
    return np.asarray(fc.embed(fc.chips(image.pixels, [box], [points]), engine="onnx")[0], dtype=np.float32)


def chip_and_mirror(image: DecodedImage, box: Box, points: np.ndarray) -> np.ndarray:
    chip = fc.chips(image.pixels, [box], [points])[0]
    return np.asarray(
        fc.embed([chip, np.ascontiguousarray(chip[:, ::-1])], engine="onnx").mean(axis=0), dtype=np.float32
    )


def six_views(image: DecodedImage, box: Box, points: np.ndarray) -> np.ndarray:
    return np.asarray(fc.describe(image.pixels, [box], [points], "onnx")[0], dtype=np.float32)


def shifted(dx: int, dy: int) -> Callable[[DecodedImage, Box, np.ndarray], np.ndarray]:
    """The chip and the chip moved by (dx, dy) and (-dx, -dy) chip pixels, each with its mirror image."""

    def views(image: DecodedImage, box: Box, points: np.ndarray) -> np.ndarray:
        m = max(abs(dx), abs(dy))
        big = fc.chips(image.pixels, [box], [points], margin=m)[0]
        crops = [
            big[m + y : m + y + fc.CHIP_SIZE, m + x : m + x + fc.CHIP_SIZE] for x, y in ((0, 0), (dx, dy), (-dx, -dy))
        ]
        chips = [np.ascontiguousarray(c) for crop in crops for c in (crop, crop[:, ::-1])]
        return np.asarray(fc.embed(chips, engine="onnx").mean(axis=0), dtype=np.float32)

    return views


WAYS: dict[str, Callable[[DecodedImage, Box, np.ndarray], np.ndarray]] = {
    "one chip": one_chip,
    "chip + mirror image": chip_and_mirror,
    "six views (the default)": six_views,
}
VARIANTS: dict[str, Callable[[DecodedImage, Box, np.ndarray], np.ndarray]] = {
    "six views, 2 px up and down": shifted(0, 2),
    "six views, 6 px up and down": shifted(0, 6),
    "six views, 4 px left and right": shifted(4, 0),
}


def detection_seconds(images: list[DecodedImage], settings: DetectionSettings) -> float:
    start = time.process_time()
    for image in images:
        fc.detect(image.pixels, settings.detector, settings.upsample or 0, "onnx")
    return (time.process_time() - start) / len(images)


def twelve_megapixels(source: Path, settings: DetectionSettings, tmp: Path) -> DecodedImage:
    """A 4000x3000 photo (a holdout photo enlarged), decoded as a scan decodes it."""
    with Image.open(source) as im:
        im.convert("RGB").resize((4000, 3000)).save(tmp, quality=90)
    return load_image(tmp, settings.max_size, enlarge=settings.upsample is None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a library that scanned the holdout photos")
    ap.add_argument("--images", type=Path, default=SHARED / "holdout" / "images")
    ap.add_argument("--labels", type=Path, default=SHARED / "lfw-dev" / "labels.csv")
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw-dev" / "pairs.txt")
    ap.add_argument("--variants", action="store_true", help="also the shifts not chosen (2 and 6 px, sideways)")
    args = ap.parse_args()
    settings = DetectionSettings(engine="onnx")
    fc.resolve_engine("onnx")
    pairs = read_pairs(args.pairs, args.labels)
    faces = central_faces(args.db)
    names = sorted({n for a, b, _ in pairs for n in (a, b)} & set(faces))
    images = {n: load_image(args.images / n, settings.max_size, enlarge=settings.upsample is None) for n in names}
    same = np.array([s for _, _, s in pairs])
    folds = stratified_folds(same, 10)
    for way, describe in (WAYS | VARIANTS if args.variants else WAYS).items():
        vectors: dict[str, np.ndarray] = {}
        start = time.process_time()
        for n in names:
            scale = images[n].scale
            vectors[n] = describe(images[n], faces[n].box.scaled(scale), faces[n].points * scale)
        per_face = (time.process_time() - start) / len(names)
        missing = 9.0  # a pair with a missing face: farther than any threshold (strict)
        dist = np.array(
            [np.linalg.norm(vectors[a] - vectors[b]) if a in vectors and b in vectors else missing for a, b, _ in pairs]
        )
        kf = kfold_accuracy(dist, same, folds)
        row = {"way": way, "accuracy_10fold": round(kf.mean, 4), "errors": round((1 - kf.mean) * len(pairs))}
        row |= {"roc_auc": round(roc_auc(dist, same), 5), "cpu_s_per_face": round(per_face, 4)}
        print(json.dumps(row), flush=True)
    sample = [images[n] for n in names[:200]]
    big = twelve_megapixels(args.images / names[0], settings, args.db.with_suffix(".12mp.jpg"))
    print(
        json.dumps(
            {
                "detection_cpu_s_per_photo": round(detection_seconds(sample, settings), 4),
                "detection_cpu_s_per_12mp_photo": round(detection_seconds([big] * 3, settings), 3),
                "faces_in_pairs": len(names),
                "pairs": len(pairs),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
