"""What cutting each face's thumbnail at scan time costs the scan, and what it stores.

The scan cuts a face's thumbnail from the image it decoded for detection
(photocluster.detect.faces.analyze_file), so that no export or review page decodes a photo
again. For each photo, in one pass and in this process (the onnx engine on one thread,
models loaded before timing):

- the CPU seconds of decoding and analysing it (``load_image`` + ``analyze_pixels``: what
  ``analyze_file`` did before thumbnails), then of cutting the thumbnail of each face found
  from that decoded image (``thumbnail``; the median of ``--repeat`` cuts, as one cut takes
  about a millisecond);
- the JPEG bytes per face, and what they add to the database file: the photos and their
  faces saved as a scan saves them (``Store.save_photo``) into two fresh databases, with
  and without their thumbnails, file sizes compared (SQLite's page and overflow-page
  overhead included);
- the faces whose thumbnail the scan enlarges from the detection image (the face's square
  spans fewer than THUMB_SIZE decoded pixels) where the photo itself has the pixels;
- for the larger photos, how the scan's cut compares with the export's, which decodes the
  original at the scale the face needs (``face_thumbnail``): the mean
  absolute difference of the two JPEGs' pixels (0-255), and the sharpness of the scan's cut
  against the export's (variance of the Laplacian, ratio).

Photos: ``--holdout N`` LFW portraits of ``../shared/holdout/images`` (150 px, one face
each, mostly) and the ``--big N`` largest fixture photos (1,000-2,500 px, several faces).

    python benchmarks/scan_thumbnails.py [--holdout 40] [--big 12] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Face
from photocluster.detect import faces as fc
from photocluster.detect.images import is_photo_name, load_image
from photocluster.detect.thumbnail import THUMB_PARAMS, THUMB_SIZE, face_thumbnail, thumbnail, thumbnail_side
from photocluster.store import Store

REPO = Path(__file__).resolve().parents[1]
DB_COPIES = 50
SHARED = Path(os.environ.get("PHOTOCLUSTER_FIXTURES", REPO.parent / "shared" / "fixtures")).parent


def _grey(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


def _sharpness(grey: np.ndarray) -> float:
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def db_bytes(photos: list[tuple[Path, list[Face], list[bytes]]], thumbs: bool, where: Path) -> int:
    """Size of a fresh database holding ``photos`` as a scan saves them, each saved
    ``DB_COPIES`` times under other names (so that the file's page granularity is noise)."""
    db = where / f"thumbs-{thumbs}.db"
    with Store(db) as store:
        scan_id = store.begin_scan([where], "bench")
        for copy in range(DB_COPIES):
            for k, (path, faces, jpegs) in enumerate(photos):
                store.save_photo(
                    path.with_name(f"{copy}-{path.name}"), 1, 1, f"{copy}-{k}", scan_id, "bench",
                    width=1, height=1, faces=faces, thumbnails=jpegs if thumbs else [], thumb_params=THUMB_PARAMS,
                )  # fmt: skip
    return db.stat().st_size + sum(p.stat().st_size for p in where.glob(f"{db.name}-*"))


def measure(paths: list[Path], settings: DetectionSettings, repeat: int, compare: bool) -> dict[str, float]:
    detect_s: list[float] = []
    thumbs_s: list[float] = []
    sizes: list[int] = []
    softer = 0
    diffs: list[float] = []
    sharp: list[float] = []
    saved: list[tuple[Path, list[Face], list[bytes]]] = []
    for path in paths:
        start = time.process_time()
        image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
        faces = fc.analyze_pixels(image, settings)
        detect_s.append(time.process_time() - start)
        per_cut = []
        for _ in range(repeat):
            start = time.process_time()
            thumbs = [thumbnail(image, f.box) for f in faces]
            per_cut.append(time.process_time() - start)
        thumbs_s.append(statistics.median(per_cut))
        sizes += [len(t) for t in thumbs]
        saved.append((path, faces, thumbs))
        # Enlarged from the detection image where the photo itself has the pixels: softer than
        # the export's cut (which decodes the original at the scale the face needs).
        softer += sum(thumbnail_side(f.box) * image.scale < THUMB_SIZE <= thumbnail_side(f.box) for f in faces)
        if compare:
            long_side = max(image.width, image.height)
            for face, jpeg in zip(faces, thumbs, strict=True):
                ours, export = _grey(jpeg), _grey(face_thumbnail(path, long_side, face.box))
                diffs.append(float(np.abs(ours - export).mean()))
                sharp.append(_sharpness(ours) / max(_sharpness(export), 1e-9))
    n_faces = len(sizes)
    with tempfile.TemporaryDirectory() as tmp:
        grown = db_bytes(saved, True, Path(tmp)) - db_bytes(saved, False, Path(tmp))
    out: dict[str, float] = {
        "photos": len(paths),
        "faces": n_faces,
        "detect_cpu_s_per_photo": sum(detect_s) / len(paths),
        "thumbs_cpu_s_per_photo": sum(thumbs_s) / len(paths),
        "thumbs_cpu_ms_per_face": 1000 * sum(thumbs_s) / max(n_faces, 1),
        "thumbs_share_of_analysis": sum(thumbs_s) / sum(detect_s),
        "bytes_per_face_mean": statistics.fmean(sizes) if sizes else 0.0,
        "bytes_per_face_median": statistics.median(sizes) if sizes else 0,
        "bytes_per_face_max": max(sizes, default=0),
        "db_bytes_per_face": grown / max(DB_COPIES * n_faces, 1),
        "faces_softer": softer,
    }
    if compare and diffs:
        out["scan_vs_export_mean_abs_diff"] = statistics.fmean(diffs)
        out["scan_vs_export_sharpness_ratio_median"] = statistics.median(sharp)
        out["scan_vs_export_sharpness_ratio_min"] = min(sharp)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=int, default=40, help="LFW holdout portraits")
    parser.add_argument("--big", type=int, default=12, help="the largest fixture photos")
    parser.add_argument("--repeat", type=int, default=5, help="thumbnail cuts per photo (median taken)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    fixtures = SHARED / "fixtures"
    holdout = sorted((SHARED / "holdout" / "images").iterdir())[: args.holdout]
    by_size = []
    for p in fixtures.rglob("*"):
        if p.is_file() and is_photo_name(p.name):
            with Image.open(p) as im:
                by_size.append((max(im.size), p))
    big = [p for _, p in sorted(by_size, key=lambda t: (-t[0], str(t[1])))[: args.big]]

    settings = DetectionSettings(engine="onnx")
    fc.set_threads(1)
    fc.warm_up(settings)
    fc.analyze_pixels(load_image(big[0], settings.max_size, enlarge=False), settings)  # sessions, caches
    results = {
        "holdout": measure(holdout, settings, args.repeat, compare=False),
        "big": measure(big, settings, args.repeat, compare=True),
    }
    for name, r in results.items():
        print(
            f"{name}: {r['photos']} photos, {r['faces']} faces; "
            f"analysis {r['detect_cpu_s_per_photo']:.3f} CPU-s/photo, "
            f"thumbnails {r['thumbs_cpu_s_per_photo'] * 1000:.2f} CPU-ms/photo = "
            f"{r['thumbs_cpu_ms_per_face']:.2f} ms/face ({100 * r['thumbs_share_of_analysis']:.2f}% of the analysis); "
            f"JPEG {r['bytes_per_face_mean']:.0f} B/face mean, {r['bytes_per_face_median']:.0f} median, "
            f"{r['bytes_per_face_max']} max, database file +{r['db_bytes_per_face']:.0f} B/face; "
            f"{r['faces_softer']} faces enlarged from the detection image"
        )
        if "scan_vs_export_mean_abs_diff" in r:
            print(
                f"  scan's cut vs export's: mean |diff| {r['scan_vs_export_mean_abs_diff']:.2f}/255, sharpness "
                f"ratio median {r['scan_vs_export_sharpness_ratio_median']:.2f}, "
                f"min {r['scan_vs_export_sharpness_ratio_min']:.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"settings": settings.key, **results}, indent=2))


if __name__ == "__main__":
    main()
