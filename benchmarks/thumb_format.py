"""Which format the stored face thumbnails take: bytes a face in the database against the
visual loss, on real faces, with today's format (JPEG q85) as the baseline in the same run.

For each face (LFW portraits of ``../shared/holdout/images``, 150 px, the face at their
centre; and the faces dlib's HOG detector finds in the fixture photos, 300-2,500 px) the
uncompressed 128 px square the review pages show is cut once (``thumbnail_pixels``, as the
scan cuts it), then encoded in each candidate format and quality. Per candidate:

- bytes a face: the blob's mean, and what a face adds to the database file: every
  thumbnail stored into a fresh SQLite database with the store's ``face_thumbs`` table
  (pages of the store's size, 16 kB; and of 4 kB, the size of libraries created before
  16 kB pages), ``--copies`` times over, file size against the same table
  empty, divided by the rows (page and overflow-page overhead included: a blob that spills
  out of its page costs a whole overflow page);
- the loss against the uncompressed square: SSIM (luma, 7x7 box window, the mean over
  faces, and the worst face) and PSNR (RGB, dB, mean);
- CPU milliseconds to encode one thumbnail, and to decode it (the review app and
  the export only copy the bytes; a conversion of an old library decodes the JPEG once).

    python benchmarks/thumb_format.py [--holdout 200] [--fixtures 60] [--copies 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, features

from photocluster.core.types import Box
from photocluster.detect.images import is_photo_name, load_image
from photocluster.detect.thumbnail import THUMB_BUDGET, THUMB_SIZE, encode_thumbnail, thumbnail_pixels
from photocluster.store.connection import PAGE_SIZE

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHOTOCLUSTER_FIXTURES", REPO.parent / "shared" / "fixtures")).parent

# (format, quality, extra save options); the first is the baseline (the format until now);
# "budget": the store's encoder (quality lowered for a thumbnail over the budget).
CANDIDATES: list[tuple[str, int, dict[str, object]]] = [
    ("JPEG", 85, {}),
    ("JPEG", 75, {}),
    ("JPEG", 60, {}),
    ("WEBP", 70, {"method": 6}),
    ("WEBP", 75, {"method": 6}),
    ("WEBP", 80, {"method": 6}),
    ("WEBP", 75, {"method": 4}),
    ("WEBP", 75, {"method": 6, "budget": THUMB_BUDGET}),
    ("AVIF", 50, {}),
    ("AVIF", 60, {}),
]


def _ssim(a: np.ndarray, b: np.ndarray, win: int = 7) -> float:
    """Mean SSIM of two greyscale images (0-255), box window of ``win`` pixels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def box(x: np.ndarray) -> np.ndarray:
        s = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), 0), 1)
        return (s[win:, win:] - s[:-win, win:] - s[win:, :-win] + s[:-win, :-win]) / (win * win)

    mu_a, mu_b = box(a), box(b)
    var_a = box(a * a) - mu_a**2
    var_b = box(b * b) - mu_b**2
    cov = box(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def _luma(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float64)


def faces(holdout: int, fixtures: int) -> list[Image.Image]:
    """The uncompressed squares of real faces, as the scan cuts them."""
    import dlib  # the HOG detector: no model file, boxes good enough for a crop

    squares: list[Image.Image] = []
    for path in sorted((SHARED / "holdout" / "images").iterdir())[:holdout]:
        image = load_image(path, 1024, enlarge=False)
        h, w = image.pixels.shape[:2]
        squares.append(thumbnail_pixels(image, Box(w * 0.3, h * 0.28, w * 0.7, h * 0.72)))
    detector = dlib.get_frontal_face_detector()
    paths = sorted(p for p in (SHARED / "fixtures").rglob("*") if p.is_file() and is_photo_name(p.name))
    used = 0
    for path in paths:
        if used >= fixtures:
            break
        image = load_image(path, 1600, enlarge=False)
        found = detector(image.pixels, 0)
        if not len(found):
            continue
        used += 1
        for r in found:
            s = 1 / image.scale
            box = Box(r.left() * s, r.top() * s, r.right() * s, r.bottom() * s)
            squares.append(thumbnail_pixels(image, box))
    return squares


def db_bytes_per_face(blobs: list[bytes], copies: int, where: Path, name: str, page_size: int = PAGE_SIZE) -> float:
    """What a thumbnail adds to a database file with the store's ``face_thumbs`` table
    (pages of ``page_size`` bytes: the store's by default)."""

    def size(rows: list[bytes]) -> int:
        db = where / f"{name}-{page_size}-{len(rows)}.db"
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("CREATE TABLE face_thumbs (face_id INTEGER PRIMARY KEY, params TEXT NOT NULL, jpeg BLOB NOT NULL)")
        with conn:
            conn.executemany(
                "INSERT INTO face_thumbs VALUES (?, ?, ?)", ((k, "128/0.3/webp75", b) for k, b in enumerate(rows))
            )
        conn.close()
        return db.stat().st_size

    rows = blobs * copies
    return (size(rows) - size([])) / len(rows)


def measure(squares: list[Image.Image], copies: int) -> list[dict[str, object]]:
    refs = [(_luma(s), np.asarray(s, dtype=np.float64)) for s in squares]
    table: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, quality, options in CANDIDATES:
            if fmt != "JPEG" and not features.check(fmt.lower()):
                continue
            blobs: list[bytes] = []
            encode_s = decode_s = 0.0
            ssims: list[float] = []
            psnrs: list[float] = []
            for square, (ref_l, ref_rgb) in zip(squares, refs, strict=True):
                start = time.process_time()
                out = io.BytesIO()
                if "budget" in options:  # what the store keeps: photocluster.detect.thumbnail
                    data = encode_thumbnail(square)
                else:
                    square.save(out, fmt, quality=quality, **options)
                    data = out.getvalue()
                encode_s += time.process_time() - start
                blobs.append(data)
                start = time.process_time()
                with Image.open(io.BytesIO(data)) as im:
                    back = im.convert("RGB")
                decode_s += time.process_time() - start
                ssims.append(_ssim(ref_l, _luma(back)))
                psnrs.append(_psnr(ref_rgb, np.asarray(back, dtype=np.float64)))
            sizes = [len(b) for b in blobs]
            opts = ",".join(f"{k}={v}" for k, v in options.items())
            table.append(
                {
                    "format": fmt + (f" ({opts})" if opts else ""),
                    "quality": quality,
                    "bytes_mean": statistics.fmean(sizes),
                    "bytes_max": max(sizes),
                    "db_bytes_per_face": db_bytes_per_face(blobs, copies, Path(tmp), f"{fmt}{quality}{opts}"),
                    "db_bytes_per_face_4k": db_bytes_per_face(blobs, copies, Path(tmp), f"{fmt}{quality}{opts}", 4096),
                    "ssim_mean": statistics.fmean(ssims),
                    "ssim_min": min(ssims),
                    "psnr_mean": statistics.fmean(psnrs),
                    "encode_ms": 1000 * encode_s / len(squares),
                    "decode_ms": 1000 * decode_s / len(squares),
                }
            )
    base = table[0]["db_bytes_per_face"]
    assert isinstance(base, float)
    for row in table:
        db = row["db_bytes_per_face"]
        assert isinstance(db, float)
        row["db_vs_jpeg85"] = db / base
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=int, default=200, help="LFW holdout portraits")
    parser.add_argument("--fixtures", type=int, default=60, help="fixture photos with a face found")
    parser.add_argument("--copies", type=int, default=20, help="each thumbnail stored this many times")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    squares = faces(args.holdout, args.fixtures)
    table = measure(squares, args.copies)
    print(f"{len(squares)} faces, {THUMB_SIZE} px squares; baseline JPEG q85 (the format until now)")
    print(
        f"| format | quality | bytes (mean / max) | DB bytes a face ({PAGE_SIZE // 1024} kB pages; 4 kB) "
        "| vs JPEG q85 | SSIM mean / min | PSNR dB | encode / decode ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['format']} | {r['quality']} | {r['bytes_mean']:.0f} / {r['bytes_max']} | "
            f"{r['db_bytes_per_face']:.0f}; {r['db_bytes_per_face_4k']:.0f} | {r['db_vs_jpeg85']:.2f} | "
            f"{r['ssim_mean']:.4f} / {r['ssim_min']:.4f} | "
            f"{r['psnr_mean']:.1f} | {r['encode_ms']:.2f} / {r['decode_ms']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"faces": len(squares), "table": table}, indent=2))


if __name__ == "__main__":
    main()
