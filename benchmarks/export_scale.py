"""Export at scale: time, peak memory and page sizes of `photocluster export` on a
synthetic library of N faces whose photos are real image files.

    python benchmarks/export_scale.py --faces 100000
    python benchmarks/export_scale.py --faces 1000000 --gone

``--gone`` makes no photo files: the export then cuts no thumbnail and places no entry
(one warning each, summarised), which measures what grows with the library apart from
the images themselves: listing, ``index.json``, the pages, the manifest.

The library: N faces with dlib-shaped embeddings (``cluster_scale.synthetic``: Zipf-sized
identities, 30% singletons), 1-5 faces per photo (about 1.6), each identity of two faces
or more a person, the singletons unknown faces. Every photo row is its own file (a
symlink) pointing at one of a few hundred real JPEGs (``--real``, taken from
``--photos-from``), so the export decodes a real photo per photo row and cuts a real
thumbnail per face. The export runs in a child process (its own VmHWM), twice: the first
into an empty folder, the second over it with nothing changed.

Prints one JSON object: ``export_s``, ``peak_rss_mb``, ``entry_page_bytes`` (index.html),
``reexport_s``, ``reexport_peak_rss_mb`` (with ``--baseline``, the baseline's export and
re-export too: ``baseline_reexport_s``, ``baseline_reexport_peak_rss_mb``), the largest
page, the pages and thumbnails written, ``index_json_bytes`` and ``build_s`` (making the
library, not part of the export).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_scale import _PEAK, synthetic

_CHILD = (
    """
import json, sys, time
from photocluster.app.export import export
from photocluster.store import Store
"""
    + _PEAK
    + """
import threading
import psutil

renderer_peak = [0]


def sample_children():  # the rendering process's RSS (its ru_maxrss would count the fork)
    me = psutil.Process()
    while True:
        for child in me.children():
            try:
                renderer_peak[0] = max(renderer_peak[0], child.memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.2)


threading.Thread(target=sample_children, daemon=True).start()
t = time.perf_counter()
with Store(sys.argv[1]) as store:
    report = export(store, sys.argv[2])
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"export_s": time.perf_counter() - t, "peak_rss_mb": peak_mb(), "persons": report.persons,
                  "cpu_user_s": usage.ru_utime, "cpu_sys_s": usage.ru_stime,
                  "renderer_peak_rss_mb": renderer_peak[0] / 2**20,
                  "unknown_faces": report.unknown_faces, "thumbnails": report.thumbnails,
                  "created": report.created, "unchanged": report.unchanged, "warnings": report.warning_count}))
"""
)


# An earlier photocluster (``--baseline``): its report has no warning_count.
_BASE_CHILD = _CHILD.replace("report.warning_count", "len(report.warnings)")


def _thumbnails(real: list[Path], source: np.ndarray, photo_of: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """What a scan stores: each face's thumbnail cut from its (real) photo with the real
    ``thumbnail`` (faces of one source image at one offset share it)."""
    from photocluster.core.types import Box
    from photocluster.detect.images import load_image
    from photocluster.detect.thumbnail import thumbnail

    images = [load_image(p, 1 << 20, enlarge=False) for p in real]
    cache: dict[tuple[int, int, int], bytes] = {}
    out = []
    for f in range(len(photo_of)):
        src, dx, dy = int(source[photo_of[f]]), int(offsets[f, 0]), int(offsets[f, 1])
        key = (src, dx, dy)
        if key not in cache:
            cache[key] = thumbnail(images[src], Box(40.0 + dx, 40.0 + dy, 110.0 + dx, 110.0 + dy))
        out.append(cache[key])
    return out


def build_library(
    n: int,
    db: Path,
    photo_dir: Path,
    real: list[Path],
    seed: int = 0,
    gone: bool = False,
    stored_thumbs: bool = True,
) -> dict[str, int]:
    """The synthetic library: photos (symlinks to ``real``), faces and persons, written
    straight into a fresh database (as a scan and a clustering would leave it: with each
    face's thumbnail, unless not ``stored_thumbs``, a library scanned before they were
    stored). ``gone``: no photo file is made (a library on a disk that is not there)."""
    from photocluster.detect.thumbnail import THUMB_PARAMS
    from photocluster.store import Store

    emb, truth = synthetic(n, seed)
    rng = np.random.default_rng(seed)
    per_photo = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.6, 0.2, 0.1, 0.06, 0.04])
    photo_of = np.repeat(np.arange(n), per_photo)[:n]
    n_photos = int(photo_of.max()) + 1
    sizes = np.bincount(truth)
    person_of = np.where(sizes[truth] >= 2, truth + 1, 0)  # 0: unknown
    stats = [os.stat(p) for p in real]
    source = rng.integers(0, len(real), size=n_photos)
    for k in range(0 if gone else n_photos):
        shard = photo_dir / f"{k // 1000:04d}"
        if k % 1000 == 0:
            shard.mkdir(parents=True, exist_ok=True)
        os.symlink(real[source[k]], shard / f"IMG_{k:07d}.jpg")
    landmarks = np.zeros((5, 2), dtype="<f4").tobytes()
    with Store(db) as store, store.transaction() as conn:
        scan = conn.execute(
            "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', '[]', 'synthetic')"
        ).lastrowid
        conn.executemany(
            "INSERT INTO persons(id, name, created_at) VALUES (?, ?, 0)",
            ((int(p), f"Person {p}" if p % 7 == 0 else None) for p in np.unique(person_of[person_of > 0])),
        )
        conn.executemany(
            "INSERT INTO photos(id, path, size, mtime_ns, status, settings, scan_id, width, height, updated_at) "
            "VALUES (?, ?, ?, ?, 'done', 'synthetic', ?, 150, 150, 0)",
            (
                (
                    k + 1,
                    os.fsencode(photo_dir / f"{k // 1000:04d}" / f"IMG_{k:07d}.jpg"),
                    stats[source[k]].st_size,
                    stats[source[k]].st_mtime_ns,
                    scan,
                )
                for k in range(n_photos)
            ),
        )
        offsets = rng.integers(-8, 9, size=(n, 2))
        thumbs = _thumbnails(real, source, photo_of, offsets) if stored_thumbs and not gone else []
        conn.executemany(
            "INSERT INTO faces(id, photo_id, left, top, right, bottom, confidence, landmarks, embedding, person_id) "
            "VALUES (?, ?, ?, ?, ?, ?, 1.0, ?, ?, ?)",
            (
                (
                    f + 1,
                    int(photo_of[f]) + 1,
                    40.0 + offsets[f, 0],
                    40.0 + offsets[f, 1],
                    110.0 + offsets[f, 0],
                    110.0 + offsets[f, 1],
                    landmarks,
                    emb[f].astype("<f4").tobytes(),
                    None if person_of[f] == 0 else int(person_of[f]),
                )
                for f in range(n)
            ),
        )
        conn.executemany(
            "INSERT INTO face_thumbs(face_id, params, jpeg) VALUES (?, ?, ?)",
            ((f + 1, THUMB_PARAMS, jpeg) for f, jpeg in enumerate(thumbs)),
        )
        conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES ('cluster.threshold', '0.6')")
    return {"photos": n_photos, "persons": len(np.unique(person_of[person_of > 0]))}


def fs_floor(folder: Path, sample: int = 20_000, size: int = 4400) -> tuple[float, float]:
    """Seconds per small file written and per symlink made in ``folder``'s file system, one
    thread, in sharded folders as the export makes them: what the disk alone costs."""
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix="fs-floor-"))
    try:
        data = os.urandom(size)
        for k in range(256):
            (scratch / f"{k:02x}").mkdir()
        t = time.perf_counter()
        for k in range(sample):
            with open(scratch / f"{k % 256:02x}" / f"{k}.jpg", "wb") as fh:
                fh.write(data)
        per_file = (time.perf_counter() - t) / sample
        t = time.perf_counter()
        for k in range(sample):
            os.symlink(f"/photos/{k // 1000:04d}/IMG_{k:07d}.jpg", scratch / f"{k % 256:02x}" / f"{k}.lnk")
        per_link = (time.perf_counter() - t) / sample
    finally:
        shutil.rmtree(scratch)
    return per_file, per_link


def run_export(db: Path, dest: Path, source: Path | None = None) -> dict[str, object]:
    """Export in a child process; ``source``: a photocluster source tree to run instead of this one."""
    env = {**os.environ, "PYTHONPATH": str(source)} if source else None
    done = subprocess.run(
        [sys.executable, "-c", _CHILD if source is None else _BASE_CHILD, str(db), str(dest)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=source,
    )
    if done.returncode != 0:
        sys.exit(f"export failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _is_tmpfs(folder: Path) -> bool:
    best, fstype = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, point, kind = line.split()[:3]
        if str(folder.resolve()).startswith(point) and len(point) > len(best):
            best, fstype = point, kind
    return fstype == "tmpfs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--real", type=int, default=300, help="real image files the photos point at")
    ap.add_argument("--photos-from", type=Path, default=Path(__file__).resolve().parents[2] / "shared/holdout/images")
    ap.add_argument(
        "--gone", action="store_true", help="make no photo files: every photo is missing (no thumbnails, no entries)"
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a photocluster source tree (say `git archive` of main) whose export runs on the same library first",
    )
    ap.add_argument(
        "--no-stored-thumbs",
        action="store_true",
        help="a library scanned before thumbnails were stored: the first export cuts every one from its photo",
    )
    ap.add_argument("--once", action="store_true", help="no second export over the first")
    ap.add_argument("--work", type=Path, default=None, help="folder for the library and export (default: a temp dir)")
    ap.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="folder for the export only (say a tmpfs: the export without this machine's disk), default: --work",
    )
    args = ap.parse_args()
    real = sorted(args.photos_from.glob("*.jpg"))[: args.real]
    if not real:
        sys.exit(f"no JPEG files in {args.photos_from}")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp, tempfile.TemporaryDirectory(dir=args.dest) as out_tmp:
        work = Path(tmp)
        export_dir = Path(out_tmp) if args.dest else work
        t = time.perf_counter()
        built = build_library(
            args.faces,
            work / "library.db",
            work / "photos",
            real,
            gone=args.gone,
            stored_thumbs=not args.no_stored_thumbs,
        )
        build_s = time.perf_counter() - t
        base = run_export(work / "library.db", export_dir / "export-base", args.baseline) if args.baseline else None
        base_again = None
        if base is not None:
            if not args.once:  # the baseline's re-export too, for the ratio in the same run
                base_again = run_export(work / "library.db", export_dir / "export-base", args.baseline)
            shutil.rmtree(export_dir / "export-base")
        per_file, per_link = fs_floor(export_dir)
        first = run_export(work / "library.db", export_dir / "export")
        again = first if args.once else run_export(work / "library.db", export_dir / "export")
        page_sizes = [p.stat().st_size for p in (export_dir / "export" / "pages").glob("*.html")]
        out = {
            "faces": args.faces,
            **built,
            "real_images": 0 if args.gone else len(real),
            "export_s": round(float(first["export_s"]), 1),  # type: ignore[arg-type]
            "peak_rss_mb": round(float(first["peak_rss_mb"]), 0),  # type: ignore[arg-type]
            # The rendering process a large export starts (sampled every 0.2 s; 0 when none ran).
            "renderer_peak_rss_mb": round(float(first["renderer_peak_rss_mb"]), 0),  # type: ignore[arg-type]
            "cpu_user_s": round(float(first["cpu_user_s"]), 1),  # type: ignore[arg-type]
            "cpu_sys_s": round(float(first["cpu_sys_s"]), 1),  # type: ignore[arg-type]
            # The disk alone: a file per thumbnail and a link per entry, at this file system's pace.
            "fs_floor_s": round(per_file * int(first["thumbnails"]) + per_link * int(first["created"]), 1),  # type: ignore[call-overload]
            "fs_file_us": round(per_file * 1e6, 1),
            "fs_link_us": round(per_link * 1e6, 1),
            "entry_page_bytes": (export_dir / "export" / "index.html").stat().st_size,
            "largest_page_bytes": max(page_sizes, default=0),
            "pages": len(page_sizes) + 1,
            "index_json_bytes": (export_dir / "export" / "index.json").stat().st_size,
            "thumbnails": first["thumbnails"],
            "stored_thumbs": not (args.no_stored_thumbs or args.gone),
            "warnings": first["warnings"],
            "reexport_s": round(float(again["export_s"]), 1),  # type: ignore[arg-type]
            "reexport_peak_rss_mb": round(float(again["peak_rss_mb"]), 0),  # type: ignore[arg-type]
            "reexport_unchanged": again["unchanged"],
            "build_s": round(build_s, 1),
            **(
                {
                    "baseline_export_s": round(float(base["export_s"]), 1),  # type: ignore[arg-type]
                    "baseline_peak_rss_mb": round(float(base["peak_rss_mb"]), 0),  # type: ignore[arg-type]
                    **(
                        {
                            "baseline_reexport_s": round(float(base_again["export_s"]), 1),  # type: ignore[arg-type]
                            "baseline_reexport_peak_rss_mb": round(float(base_again["peak_rss_mb"]), 0),  # type: ignore[arg-type]
                        }
                        if base_again is not None
                        else {}
                    ),
                }
                if base is not None
                else {}
            ),
            "export_fs": "tmpfs" if args.dest and _is_tmpfs(export_dir) else "work",
            "cpus": os.cpu_count(),
        }
        print(json.dumps(out), flush=True)  # before the temporary folder (a million files) is removed


if __name__ == "__main__":
    main()
