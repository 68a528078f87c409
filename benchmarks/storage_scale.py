"""The SQLite store at archive scale: a synthetic library of N faces (10 million: an archive
of ~6 million photos), its file size, and the store's calls that grow with it.

    python benchmarks/storage_scale.py --faces 10000000 --db /tmp/storage-10M.db
    python benchmarks/storage_scale.py --faces 1000000 --db /tmp/storage-1M.db --json

The database is built as a scan leaves it (the real schema, through photocluster.store's
own migrations): photos of 1-5 faces (1.6 on average), each with an archive-like path, a
SHA-256 and a pixel key, faces with landmarks and a 128-d float32 embedding. An existing
``--db`` is measured as it is (building 10M faces takes a while; see benchmarks/README.md).

Measured, warm page cache (the machine's RAM holds the file): the scan's per-photo lookups
when it resumes or rescans (``photo_by_path`` of a known and of a new file, the content-hash
lookup ``photos_by_hash``), marking every photo seen (as an unchanged rescan does, 500 at a
time) and the end-of-scan ``mark_missing``; ``status``'s counts; and, in a child process for
its own peak memory, what ``clusters`` reads before it clusters: every active face's ids and
embedding (``active_faces``) and detector confidence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from photocluster.store import Store

SETTINGS = "cnn/max1600/upauto/v1"
CHUNK = 200_000  # photos per transaction while building


def photo_path(i: int) -> bytes:
    year, rest = divmod(i, 500_000)
    return f"/archive/{2000 + year}/{rest // 40_000 + 1:02d}/{rest % 40_000 // 400:03d}/IMG_{i:08d}.JPG".encode()


def photo_sha(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "little", signed=True)).hexdigest()


def _photo_row(i: int, scan: int) -> tuple[object, ...]:
    size, mtime_ns = 3_500_000 + i % 100_000, 1_563_000_000_000_000_000 + i
    return (i, photo_path(i), size, mtime_ns, photo_sha(i), f"jpeg:{photo_sha(-i - 1)}:o1", SETTINGS, scan, scan)


def build(db: Path, faces: int, seed: int = 0) -> dict[str, float]:
    """A library database of ``faces`` faces in photos of 1-5 faces."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with Store(db) as store:
        with store.transaction() as conn:
            scan = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', '[\"/archive\"]', ?)",
                (SETTINGS,),
            ).lastrowid
        landmarks = np.zeros((5, 2), dtype="<f4").tobytes()
        made = photo = 0
        while made < faces:
            per_photo = rng.choice([1, 2, 3, 4, 5], size=CHUNK, p=[0.6, 0.2, 0.1, 0.06, 0.04])
            keep = np.cumsum(per_photo) <= faces - made
            keep[0] = True
            per_photo = per_photo[keep]
            per_photo[-1] = min(int(per_photo[-1]), faces - made - int(per_photo[:-1].sum()))
            n_faces = int(per_photo.sum())
            emb = rng.standard_normal((n_faces, 128), dtype=np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True) * 1.6
            boxes = rng.uniform(0, 3000, size=(n_faces, 2))
            ids = range(photo + 1, photo + 1 + len(per_photo))
            with store.transaction() as conn:
                conn.executemany(
                    "INSERT INTO photos(id, path, size, mtime_ns, sha256, pixel_key, status, settings, scan_id, "
                    "seen_scan_id, width, height, taken_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?, ?, 4000, 3000, '2019-07-14T12:34:56', 0)",
                    (_photo_row(i, scan) for i in ids),
                )
                owner = np.repeat(np.arange(photo + 1, photo + 1 + len(per_photo)), per_photo)
                conn.executemany(
                    "INSERT INTO faces(photo_id, left, top, right, bottom, confidence, landmarks, embedding) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (int(owner[k]), x, y, x + 180.0, y + 180.0, 1.05, landmarks, emb[k].tobytes())
                        for k, (x, y) in enumerate(boxes.tolist())
                    ),
                )
            photo += len(per_photo)
            made += n_faces
            print(f"  built {made:,} faces, {photo:,} photos ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"build_s": time.perf_counter() - start}


def _per_call_us(fn: object, args: list[object]) -> float:
    start = time.perf_counter()
    for a in args:
        fn(a)  # type: ignore[operator]
    return (time.perf_counter() - start) / len(args) * 1e6


def lookups(db: Path, samples: int = 20_000) -> dict[str, float]:
    """Microseconds per call of the lookups a scan makes for each file it lists."""
    with Store(db) as store:
        n_photos = int(store.conn.execute("SELECT max(id) FROM photos").fetchone()[0])
        rng = random.Random(1)
        known = [rng.randrange(1, n_photos + 1) for _ in range(samples)]
        out = {
            "photo_by_path_known_us": _per_call_us(store.photo_by_path, [Path(photo_path(i).decode()) for i in known]),
            "photo_by_path_new_us": _per_call_us(
                store.photo_by_path, [Path(f"/new/IMG_{i:08d}.JPG") for i in range(samples)]
            ),
            "photos_by_hash_known_us": _per_call_us(
                lambda sha: store.photos_by_hash(sha, SETTINGS), [photo_sha(i) for i in known]
            ),
            "photos_by_hash_new_us": _per_call_us(
                lambda sha: store.photos_by_hash(sha, SETTINGS), [photo_sha(-i - 10**9) for i in range(samples)]
            ),
            "face_count_us": _per_call_us(
                store.face_count, [Path(photo_path(i).decode()) for i in known[: samples // 4]]
            ),
        }
        # An unchanged rescan marks every photo seen, 500 per transaction (scan._triage).
        scan_id = store.begin_scan([Path("/archive")], SETTINGS)
        start = time.perf_counter()
        for first in range(1, n_photos + 1, 500):
            store.mark_seen(range(first, min(first + 500, n_photos + 1)), scan_id)
        out["mark_seen_all_s"] = time.perf_counter() - start
        start = time.perf_counter()
        out["missing"] = store.mark_missing(scan_id, [Path("/archive")])
        out["mark_missing_s"] = time.perf_counter() - start
        store.end_scan(scan_id, "completed", {})
        start = time.perf_counter()
        store.counts()
        out["status_counts_s"] = time.perf_counter() - start
        out["photos"] = n_photos
    return out


_CHILD = """
import json, sys, time
from photocluster.store import Store
t = time.perf_counter()
with Store(sys.argv[1]) as store:
    ids, photos, persons, emb = store.active_faces()
    t_faces = time.perf_counter() - t
    conf = store.active_confidences()
total = time.perf_counter() - t
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"faces": len(ids), "active_faces_s": t_faces, "read_for_clusters_s": total, "read_peak_rss_mb": peak,
                  "embeddings_mb": emb.nbytes / 2**20}))
"""


def read_for_clusters(db: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(db)], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, required=True, help="built when absent, else measured as it is")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--read-only", action="store_true", help="measure only what clusters reads")
    args = parser.parse_args()
    result: dict[str, float] = {}
    if not args.db.exists():
        result.update(build(args.db, args.faces))
    result["file_mb"] = sum(os.path.getsize(p) for p in (args.db, Path(f"{args.db}-wal")) if p.exists()) / 2**20
    if not args.read_only:
        result.update(lookups(args.db))
    result.update(read_for_clusters(args.db))
    result["bytes_per_face"] = result["file_mb"] * 2**20 / max(result["faces"], 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:28} {value:,.3f}" if isinstance(value, float) else f"{key:28} {value:,}")


if __name__ == "__main__":
    main()
