"""Scan throughput: photocluster's default scan vs the straightforward dlib-bin loop.

Both run in this process's run, on the same photos, at the same detection settings:

- baseline: for each photo, one after the other, in one process: decode, resize to the
  detection size, ``dlib.cnn_face_detection_model_v1`` at the same upsampling, the 5-point
  shape predictor, ``compute_face_descriptor`` (what a plain face_recognition-style script does);
- photocluster: ``photocluster.app.scan.scan`` with its defaults (engine, workers, decoding)
  into a fresh database.

Photos: ``--holdout N`` of ``../shared/holdout/images`` (150 px news photos) and ``--big N``
fixture photos upscaled to 12 MP JPEGs (4000x3000-ish). Printed: photos/s of each, the
ratio, and the agreement (faces matched by IoU >= 0.9; missed and extra faces; cosine
similarity of the descriptors of matched faces).

    python benchmarks/scan_throughput.py [--holdout 40] [--big 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photocluster.app.scan import default_workers, scan
from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box
from photocluster.detect.faces import dlib_build, model_files, resolve_engine
from photocluster.detect.images import load_image
from photocluster.store import Store

BIG_SOURCES = [
    "face_recognition-knn/test/obama_and_biden.jpg",
    "dlib-faces/bald_guys.jpg",
    "deepface-dataset/img57.jpg",
    "face_recognition-knn/test/kit_with_rose.jpg",
    "deepface-dataset/selfie-many-people.jpg",
    "face_recognition-examples/two_people.jpg",
]


def make_photos(fixtures: Path, out: Path, n_holdout: int, n_big: int) -> list[Path]:
    photos = []
    holdout = sorted((fixtures.parent / "holdout" / "images").glob("*.jpg"))[:n_holdout]
    for src in holdout:
        dst = out / "holdout" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        photos.append(dst)
    for rel in BIG_SOURCES[:n_big]:
        im = Image.open(fixtures / rel).convert("RGB")
        scale = (12e6 / (im.width * im.height)) ** 0.5
        dst = out / "big" / (Path(rel).stem + "_12mp.jpg")
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS).save(dst, quality=92)
        photos.append(dst)
    return photos


def baseline(photos: list[Path], settings: DetectionSettings) -> tuple[float, dict[str, list[tuple[Box, np.ndarray]]]]:
    import dlib

    files = model_files()
    detector = dlib.cnn_face_detection_model_v1(str(files.detector_cnn))
    predictor = dlib.shape_predictor(str(files.shape_predictor))
    recognizer = dlib.face_recognition_model_v1(str(files.recognizer))
    upsample = settings.upsample if settings.upsample is not None else 0
    found: dict[str, list[tuple[Box, np.ndarray]]] = {}
    start = time.perf_counter()
    for path in photos:
        image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
        pixels = image.pixels
        faces = []
        for d in detector(pixels, upsample):
            r = d.rect
            shape = predictor(pixels, r)
            vec = np.asarray(recognizer.compute_face_descriptor(pixels, shape), dtype=np.float32)
            box = Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1).scaled(1 / image.scale)
            faces.append((box, vec))
        found[os.fsdecode(path)] = faces
    return time.perf_counter() - start, found


def ours(photos: list[Path], root: Path, db: Path) -> tuple[float, dict[str, list[tuple[Box, np.ndarray]]], int]:
    workers = default_workers(DetectionSettings())
    with Store(db) as store:
        start = time.perf_counter()
        report = scan(store, [root], DetectionSettings(), workers=workers)
        seconds = time.perf_counter() - start
        assert report.analysed == len(photos), report.as_dict()
        found: dict[str, list[tuple[Box, np.ndarray]]] = {}
        for face, emb in store.faces():
            found.setdefault(os.fsdecode(face.photo_path), []).append((face.box, emb))
    return seconds, found, workers


def agreement(
    a: dict[str, list[tuple[Box, np.ndarray]]], b: dict[str, list[tuple[Box, np.ndarray]]]
) -> dict[str, object]:
    matched = missed = extra = 0
    cosines = []
    ious = []
    for path in sorted(set(a) | set(b)):
        fa, fb = list(a.get(path, [])), list(b.get(path, []))
        used: set[int] = set()
        for box, emb in fa:
            best, best_iou = None, 0.0
            for k, (box2, _) in enumerate(fb):
                if k not in used and box.iou(box2) > best_iou:
                    best, best_iou = k, box.iou(box2)
            if best is None or best_iou < 0.5:
                missed += 1
                continue
            used.add(best)
            matched += 1
            ious.append(best_iou)
            e2 = fb[best][1]
            cosines.append(float(emb @ e2 / (np.linalg.norm(emb) * np.linalg.norm(e2))))
        extra += len(fb) - len(used)
    total = matched + missed
    return {
        "faces_baseline": total,
        "matched": matched,
        "missed": missed,
        "extra": extra,
        "iou_ge_0.9_share": round(float(np.mean(np.array(ious) >= 0.9)), 4) if ious else None,
        "min_cosine": round(min(cosines), 6) if cosines else None,
        "mean_cosine": round(float(np.mean(cosines)), 6) if cosines else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.environ.get("PHOTOCLUSTER_FIXTURES", "../shared/fixtures"))
    ap.add_argument("--holdout", type=int, default=40)
    ap.add_argument("--big", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    settings = DetectionSettings()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        photos = make_photos(Path(args.fixtures), root, args.holdout, args.big)
        t_ours, found_ours, workers = ours(photos, root, Path(tmp) / "bench.db")
        t_base, found_base = baseline(photos, settings)
    result = {
        "machine": f"{os.cpu_count()} cores, {dlib_build().describe()}",
        "settings": settings.key,
        "engine": resolve_engine(settings.engine),
        "workers": workers,
        "photos": len(photos),
        "holdout_photos": args.holdout,
        "big_12mp_photos": args.big,
        "baseline_seconds": round(t_base, 1),
        "photocluster_seconds": round(t_ours, 1),
        "baseline_photos_per_s": round(len(photos) / t_base, 3),
        "photocluster_photos_per_s": round(len(photos) / t_ours, 3),
        "speedup": round(t_base / t_ours, 2),
        "agreement": agreement(found_base, found_ours),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
