"""What a re-scan needs to know, measured on the fixture photos.

- ``match``: a re-analysed photo's faces take over the ids of its old faces when their boxes
  overlap (IoU) and their descriptors are close (photocluster.grouping.rematch). Each fixture
  photo larger than 1024 px is analysed at the default settings (--max-size 1600), at
  --max-size 1024, and as a re-encoded copy (JPEG quality 80); the same face's IoU and
  descriptor distance across the analyses are printed, with those of the *different* faces
  of one photo (group photos included), which the thresholds must keep apart.
- ``keys``: the cost per photo of the file's SHA-256 alone, of the SHA-256 plus the pixel key
  (photocluster.detect.images.fingerprint: a hash of the JPEG without its metadata
  segments, plus the EXIF orientation), and of decoding the full pixels (the alternative
  key), in ms per photo over every fixture JPEG.
- ``unchanged``: a re-scan of a library of ``--photos`` small photo files (copies of one
  small JPEG, 1,000 to a folder) none of which changed: the library is
  recorded as a scan leaves it (rows written straight into a fresh database), scanned once
  (the face tags of every photo read once), then scanned again, timed (wall and CPU, peak
  memory of this process); against, in the same run, the floor of walking the folders and
  stat-ing every file (``os.scandir`` + ``stat``), and the real ``walk`` alone.
- ``sync``: the cost of ``PRAGMA synchronous = FULL`` against NORMAL: ms per committed
  photo (what a scan commits per photo, with 3 faces), and a real scan of a few fixture
  photos with each setting.

    python benchmarks/rescan.py match|keys|sync [--fixtures ../shared/fixtures]
    python benchmarks/rescan.py unchanged [--photos 100000] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photocluster.core.config import DetectionSettings
from photocluster.core.files import file_sha256
from photocluster.core.types import Box, Face
from photocluster.detect import faces as fc
from photocluster.detect.images import fingerprint, is_photo_name
from photocluster.grouping.rematch import MAX_DISTANCE, MIN_IOU, box_iou, match_faces

REPO = Path(__file__).resolve().parents[1]


def photos(fixtures: Path) -> list[Path]:
    return sorted(p for p in fixtures.rglob("*") if p.is_file() and is_photo_name(p.name))


def _arrays(faces: list[Face]) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([[f.box.left, f.box.top, f.box.right, f.box.bottom] for f in faces]).reshape(-1, 4)
    emb = np.array([f.embedding for f in faces], dtype=np.float32).reshape(-1, 128)
    return boxes, emb


def _quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    q = np.quantile(values, [0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0])
    return "min {:.3f}  p1 {:.3f}  p5 {:.3f}  median {:.3f}  p95 {:.3f}  p99 {:.3f}  max {:.3f}  (n={})".format(
        *q, len(values)
    )


def bench_match(fixtures: Path) -> None:
    base = DetectionSettings()
    small = DetectionSettings(max_size=1024)
    fc.set_threads(os.cpu_count() or 1)
    same_iou: dict[str, list[float]] = {"max-size 1024": [], "re-encoded q80": []}
    same_dist: dict[str, list[float]] = {"max-size 1024": [], "re-encoded q80": []}
    other_iou: list[float] = []
    other_dist: list[float] = []
    unmatched = {"max-size 1024": 0, "re-encoded q80": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for path in photos(fixtures):
            with Image.open(path) as im:
                large = max(im.size) > 1024
                multi = "dlib-faces" in path.parts or "selfie" in path.name
                if not (large or multi) or im.format != "JPEG":
                    continue
                copy = Path(tmp) / path.name
                im.convert("RGB").save(copy, quality=80, exif=im.getexif().tobytes())
            old = fc.analyze_file(path, base).faces
            old_boxes, old_emb = _arrays(old)
            if len(old) >= 2:
                # Different faces of one photo: what a match must never take for the same face.
                iou = box_iou(old_boxes, old_boxes)
                dist = np.linalg.norm(old_emb[:, None] - old_emb[None], axis=2)
                upper = np.triu_indices(len(old), 1)
                other_iou += iou[upper].tolist()
                other_dist += dist[upper].tolist()
            if not large:
                continue
            for label, new in (
                ("max-size 1024", fc.analyze_file(path, small).faces),
                ("re-encoded q80", fc.analyze_file(copy, base).faces),
            ):
                new_boxes, new_emb = _arrays(new)
                # The same face: the best-overlapping old face, with no threshold on distance.
                loose = match_faces(old_boxes, old_emb, new_boxes, new_emb, min_iou=0.2, max_distance=2.0)
                strict = match_faces(old_boxes, old_emb, new_boxes, new_emb)
                for m, o in enumerate(loose.tolist()):
                    if o < 0:
                        continue
                    same_iou[label].append(float(box_iou(old_boxes[o : o + 1], new_boxes[m : m + 1])[0, 0]))
                    same_dist[label].append(float(np.linalg.norm(old_emb[o] - new_emb[m])))
                unmatched[label] += len(old) - int(np.count_nonzero(strict >= 0))
            print(f"{path.relative_to(fixtures)}: {len(old)} faces", flush=True)
    for label in same_iou:
        print(f"same face, default vs {label}:")
        print(f"  IoU      {_quantiles(same_iou[label])}")
        print(f"  distance {_quantiles(same_dist[label])}")
        print(f"  old faces left unmatched at IoU >= {MIN_IOU}, distance <= {MAX_DISTANCE}: {unmatched[label]}")
    print("different faces of one photo (default settings):")
    print(f"  IoU      {_quantiles(other_iou)}")
    print(f"  distance {_quantiles(other_dist)}")


def bench_keys(fixtures: Path) -> None:
    jpegs = [p for p in photos(fixtures) if p.suffix.lower() in (".jpg", ".jpeg")]
    for p in jpegs:  # warm the page cache: the figures are CPU, not disk
        p.read_bytes()
    rounds = 5

    def per_photo(fn: object) -> float:
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for p in jpegs:
                fn(p)  # type: ignore[operator]
            best = min(best, time.perf_counter() - start)
        return 1000 * best / len(jpegs)

    def decode(p: Path) -> None:
        with Image.open(p) as im:
            im.load()

    def report(label: str) -> None:
        size = statistics.mean(p.stat().st_size for p in jpegs) / 1e6
        pixels = statistics.mean(Image.open(p).size[0] * Image.open(p).size[1] for p in jpegs) / 1e6
        print(f"{label}: {len(jpegs)} JPEGs, mean {size:.2f} MB, {pixels:.2f} MP; best of {rounds} rounds:")
        print(f"  SHA-256 of the file:             {per_photo(file_sha256):7.2f} ms/photo")
        print(f"  SHA-256 + pixel key (one read):  {per_photo(fingerprint):7.2f} ms/photo")
        print(f"  full decode (pixel hash's cost): {per_photo(decode):7.2f} ms/photo")

    report("fixtures")
    # Camera-sized: fixture photos upscaled to 12 MP, quality 92, with their EXIF.
    with tempfile.TemporaryDirectory() as tmp:
        big = []
        for src in [p for p in jpegs if max(Image.open(p).size) > 1024][:8]:
            with Image.open(src) as im:
                scale = (12e6 / (im.width * im.height)) ** 0.5
                dst = Path(tmp) / src.name
                im.convert("RGB").resize((round(im.width * scale), round(im.height * scale))).save(
                    dst, quality=92, exif=im.getexif().tobytes()
                )
                big.append(dst)
        jpegs = big
        for p in jpegs:
            p.read_bytes()
        report("12 MP")


def bench_sync(fixtures: Path) -> None:
    from photocluster.app.scan import scan
    from photocluster.store import Store

    rng = np.random.default_rng(0)
    faces = [
        Face(Box(10, 10, 60, 60), 1.0, rng.random((5, 2), dtype=np.float32) * 50 + 10, rng.random(128, np.float32))
        for _ in range(3)
    ]
    sample = sorted((fixtures / "face_recognition-knn" / "train").rglob("*.jp*g"))[:6]
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        for mode in ("NORMAL", "FULL", "NORMAL", "FULL"):
            db = Path(tmp) / f"{mode}-{time.monotonic_ns()}.db"
            with Store(db) as store:
                store.conn.execute(f"PRAGMA synchronous = {mode}")
                scan_id = store.begin_scan([Path(tmp)], "bench")
                n = 300
                start = time.perf_counter()
                for k in range(n):
                    store.save_photo(
                        Path(tmp) / f"{k}.jpg", 1, 1, f"sha{k}", scan_id, "bench", width=1, height=1, faces=faces
                    )
                commit_ms = 1000 * (time.perf_counter() - start) / n
            db2 = Path(tmp) / f"scan-{mode}-{time.monotonic_ns()}.db"
            with Store(db2) as store:
                store.conn.execute(f"PRAGMA synchronous = {mode}")
                start = time.perf_counter()
                report = scan(store, sample, DetectionSettings(max_size=640))
                scan_s = (time.perf_counter() - start) / len(sample)
            print(
                f"synchronous={mode:6}  {commit_ms:6.2f} ms per committed photo (3 faces);  "
                f"real scan {scan_s:6.3f} s per photo ({report.analysed} photos)",
                flush=True,
            )


def bench_unchanged(fixtures: Path, n: int, work: Path | None) -> None:
    import resource

    from photocluster.app.scan import scan
    from photocluster.detect.images import walk
    from photocluster.store import Store

    class NoAnalyser:
        workers = 1

        def analyse(self, jobs: Iterator[Any], settings: object) -> Iterator[Any]:
            for job in jobs:
                raise AssertionError(f"{job.path}: analysed, though unchanged")
            yield from ()

    settings = DetectionSettings()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp) / "photos"
        one = Path(tmp) / "one.jpg"
        Image.new("RGB", (64, 48), (120, 90, 60)).save(one, "JPEG")
        data = one.read_bytes()
        start = time.perf_counter()
        paths = []
        for k in range(n):
            folder = root / f"{k // 1000:04d}"
            if k % 1000 == 0:
                folder.mkdir(parents=True)
            path = folder / f"IMG_{k:07d}.jpg"
            path.write_bytes(data)
            paths.append(path)
        with Store(Path(tmp) / "lib.db") as store, store.transaction() as conn:
            scan_id = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', '[]', ?)",
                (settings.key,),
            ).lastrowid
            conn.executemany(
                "INSERT INTO photos(path, size, mtime_ns, status, settings, scan_id, width, height, updated_at) "
                "VALUES (?, ?, ?, 'done', ?, ?, 64, 48, 0)",
                ((os.fsencode(p), (st := p.stat()).st_size, st.st_mtime_ns, settings.key, scan_id) for p in paths),
            )
        print(f"{n} photos made and recorded in {time.perf_counter() - start:.1f} s")
        with Store(Path(tmp) / "lib.db") as store:
            start = time.perf_counter()
            first = scan(store, [root], settings, analyser=NoAnalyser())  # type: ignore[arg-type]
            print(f"first scan (tags read once): {time.perf_counter() - start:.1f} s, {first.unchanged} unchanged")
            t0, c0 = time.perf_counter(), time.process_time()
            again = scan(store, [root], settings, analyser=NoAnalyser())  # type: ignore[arg-type]
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert again.unchanged == n and again.analysed == 0 and not again.missing, again
        t0 = time.perf_counter()
        stats = 0
        for folder in sorted(os.scandir(root), key=lambda e: e.name):
            for entry in os.scandir(folder.path):
                entry.stat()
                stats += 1
        floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        walked = sum(1 for _ in walk([root]))
        walk_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"re-scan of {n} unchanged photos: {wall:.2f} s wall, {cpu:.2f} s CPU ({1e6 * wall / n:.0f} us a photo), "
        f"peak {peak:.0f} MB; floor (scandir + stat of {stats} files): {floor:.2f} s, "
        f"walk alone ({walked} files): {walk_s:.2f} s; re-scan / floor {wall / floor:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["match", "keys", "sync", "unchanged"])
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures")
    parser.add_argument("--photos", type=int, default=100_000, help="unchanged: photo files made")
    parser.add_argument("--work", type=Path, help="unchanged: folder for the files (default: a temp dir)")
    args = parser.parse_args()
    if args.what == "unchanged":
        bench_unchanged(args.fixtures, args.photos, args.work)
        return
    {"match": bench_match, "keys": bench_keys, "sync": bench_sync}[args.what](args.fixtures)


if __name__ == "__main__":
    main()
