"""An archive end to end: a library of N faces as a scan leaves it, then the real
`photocluster clusters` and `photocluster export DEST --mode hardlink`, each timed with its
peak memory, the database's and the export's size on disk and the inodes they take.

    python benchmarks/archive_scale.py --faces 100000 --work /var/tmp/archive
    python benchmarks/archive_scale.py --faces 10000000 --work /var/tmp/archive --json-out run.json

The library (step ``build``) is written through photocluster.store (its migrations, the real
schema): photos of 1-5 faces (about 1.6) with an archive-like row (size and mtime of the
file, a SHA-256 and a pixel key), faces with a box, landmarks, a dlib-shaped embedding from
``cluster_scale.synthetic`` (Zipf-sized identities, 30% seen once: ``clusters`` finds
persons in them) and the WebP thumbnail the scan stores with each face, taken from a pool of
real thumbnails cut with the scan's own ``photocluster.detect.thumbnail`` from the holdout
photos. Every photo row is a real file: a hard link (no inode of its own) to one of
``--sources`` holdout JPEGs copied into the work folder (enough of them that no file passes
ext4's 65,000 links, counting the links the export adds). No person exists before ``clusters``.

``clusters`` and ``export`` run as child processes of the real CLI; each child's peak is its
own VmHWM, and a watchdog samples the whole process tree's RSS each second (the export starts
a rendering process) and ends the step if it passes ``--mem-cap-gb``, reporting the peak and
the step's last log line (``--verbose``) at which the memory went. Before each step the free
space and inodes it needs are estimated (per face, from the run's own build or from the
constants measured at a million faces below); a step that cannot fit is not run, and the JSON
says which and why. Prints one JSON object (``--json-out`` also writes it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_scale import _PEAK, Library, synthetic

SETTINGS = "cnn/max1600/upauto/v1"
CHUNK = 100_000  # photos per transaction while building
GIB = 1 << 30
# Measured at 1,000,000 faces (this script, 2026-12-07): what a step takes per face on disk
# and in memory, for the checks before a step when the run's own build cannot tell.
PER_FACE = {
    "db_bytes": 3_030.0,  # the library database: ~950 B of rows and indexes + the WebP thumbnail
    "photo_tree_bytes": 25.0,  # the photos' folders (the hard links' directory entries)
    "export_bytes": 5_210.0,  # a 4 kB block a thumbnail file, the folders of entries, pages, manifest
    "export_inodes": 1.03,  # a thumbnail file a face, pages and folders
    "clusters_peak_bytes": 1_740.0,  # peak RSS of `clusters` (1,741 MB at 1M)
}
RESERVE_BYTES = 4 * GIB  # left free on the disk for everyone else
RESERVE_INODES = 500_000
MAX_LINKS = 60_000  # ext4 allows 65,000 links to one inode


def holdout() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared/holdout/images").is_dir():
            return parent / "shared/holdout/images"
    return Path("/work/shared/holdout/images")


def thumbnail_pool(images: list[Path]) -> list[bytes]:
    """The thumbnails a scan stores, cut from real photos (150 px holdout faces, the face in
    the middle) with the scan's ``thumbnail``."""
    from photocluster.core.types import Box
    from photocluster.detect.images import load_image
    from photocluster.detect.thumbnail import thumbnail

    pool = []
    for k, path in enumerate(images):
        image = load_image(path, 1 << 20, enlarge=False)
        dx, dy = k % 7 - 3, k // 7 % 7 - 3
        pool.append(thumbnail(image, Box(45.0 + dx, 40.0 + dy, 105.0 + dx, 110.0 + dy)))
    return pool


def disk() -> dict[str, int]:
    return disk_of(Path("/"))


def disk_of(folder: Path) -> dict[str, int]:
    st = os.statvfs(folder)
    return {
        "free_bytes": st.f_bavail * st.f_frsize,
        "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
        "free_inodes": st.f_favail,
        "used_inodes": st.f_files - st.f_ffree,
    }


def fits(folder: Path, need_bytes: float, need_inodes: float) -> str | None:
    """None when the step fits the file system of ``folder``, else why not."""
    free = disk_of(folder)
    short = []
    if need_bytes + RESERVE_BYTES > free["free_bytes"]:
        short.append(
            f"needs ~{need_bytes / GIB:.1f} GiB of disk (+{RESERVE_BYTES / GIB:.0f} GiB kept free), "
            f"{free['free_bytes'] / GIB:.1f} GiB free"
        )
    if need_inodes + RESERVE_INODES > free["free_inodes"]:
        short.append(f"needs ~{need_inodes:,.0f} inodes (+{RESERVE_INODES:,} kept free), {free['free_inodes']:,} free")
    return "; ".join(short) or None


def du(path: Path) -> dict[str, int]:
    """Bytes on disk (blocks) and inodes under ``path`` (hard links counted once)."""
    blocks = inodes = 0
    seen: set[int] = set()
    stack = [str(path)]
    while stack:
        top = stack.pop()
        with os.scandir(top) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if st.st_nlink > 1:
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                blocks += st.st_blocks
                inodes += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return {"bytes": blocks * 512, "inodes": inodes}


def build(n: int, work: Path, n_sources: int, pool_size: int, seed: int = 0) -> dict[str, object]:
    """The library of ``n`` faces in ``work`` (library.db, photos/, sources/, truth.npy)."""
    from photocluster.detect.thumbnail import THUMB_PARAMS
    from photocluster.store import Store

    t0 = time.perf_counter()
    emb, truth = synthetic(n, seed)
    # The layout of cluster_scale.Library (photos of 1-5 faces, no identity twice in a
    # photo), on face indices: lib.emb holds which synthetic face each position is.
    lib = Library.of(np.arange(n), truth, seed)
    order, photo = lib.emb, lib.photo
    np.save(work / "truth.npy", lib.truth)  # identity by face id - 1
    n_photos = int(photo[-1])
    t_embeddings = time.perf_counter() - t0

    images = sorted(holdout().glob("*.jpg"))
    if len(images) < n_sources:
        raise SystemExit(f"{holdout()}: {len(images)} JPEG files, {n_sources} needed")
    step = len(images) / n_sources
    chosen = [images[int(k * step)] for k in range(n_sources)]
    sources = work / "sources"
    sources.mkdir()
    local = []
    for k, path in enumerate(chosen):
        shutil.copyfile(path, sources / f"{k:05d}.jpg")
        local.append(sources / f"{k:05d}.jpg")
    stats = [os.stat(p) for p in local]
    pool = thumbnail_pool(local[:pool_size])
    t_pool = time.perf_counter() - t0 - t_embeddings

    rng = np.random.default_rng(seed + 1)
    source_of = rng.integers(0, n_sources, size=n_photos + 1)  # by photo id
    thumb_of = rng.integers(0, len(pool), size=n)  # by face position
    photos_dir = work / "photos"
    landmarks = np.zeros((5, 2), dtype="<f4").tobytes()
    t_links = 0.0
    with Store(work / "library.db") as store:
        with store.transaction() as conn:
            scan = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', ?, ?)",
                (json.dumps([str(photos_dir)]), SETTINGS),
            ).lastrowid
        bounds = np.searchsorted(photo, np.arange(1, n_photos + 2, CHUNK))
        bounds = np.append(bounds, n)
        for lo_photo, lo, hi in zip(range(1, n_photos + 1, CHUNK), bounds[:-1], bounds[1:], strict=False):
            hi_photo = min(lo_photo + CHUNK, n_photos + 1)
            t = time.perf_counter()
            paths = {}
            for p in range(lo_photo, hi_photo):
                k = p - 1
                folder = photos_dir / f"{k // 1000 // 100:03d}" / f"{k // 1000 % 100:02d}"
                if k % 1000 == 0:
                    folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"IMG_{k:08d}.JPG"
                os.link(local[source_of[p]], path)
                paths[p] = path
            t_links += time.perf_counter() - t
            with store.transaction() as conn:
                conn.executemany(
                    "INSERT INTO photos(id, path, size, mtime_ns, sha256, pixel_key, status, settings, scan_id, "
                    "seen_scan_id, width, height, taken_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?, ?, 150, 150, '2019-07-14T12:34:56', 0)",
                    (
                        (
                            p,
                            os.fsencode(paths[p]),
                            stats[source_of[p]].st_size,
                            stats[source_of[p]].st_mtime_ns,
                            hashlib.sha256(p.to_bytes(8, "little")).hexdigest(),
                            f"jpeg:{hashlib.sha256(p.to_bytes(8, 'big')).hexdigest()}:o1",
                            SETTINGS,
                            scan,
                            scan,
                        )
                        for p in range(lo_photo, hi_photo)
                    ),
                )
                vectors = emb[order[lo:hi]].astype("<f4")
                conn.executemany(
                    "INSERT INTO faces(id, photo_id, left, top, right, bottom, confidence, landmarks, embedding) "
                    "VALUES (?, ?, 45.0, 40.0, 105.0, 110.0, 1.05, ?, ?)",
                    ((f + 1, int(photo[f]), landmarks, vectors[f - lo].tobytes()) for f in range(lo, hi)),
                )
                conn.executemany(
                    "INSERT INTO face_thumbs(face_id, params, jpeg) VALUES (?, ?, ?)",
                    ((f + 1, THUMB_PARAMS, pool[thumb_of[f]]) for f in range(lo, hi)),
                )
            print(f"  built {hi:,} faces, {hi_photo - 1:,} photos ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "photos": n_photos,
        "identities": int(np.unique(truth).size),
        "sources": n_sources,
        "max_links_per_source": int(np.bincount(source_of[1:]).max()) + 1,
        "thumbnail_pool": len(pool),
        "thumbnail_pool_mean_bytes": round(float(np.mean([len(b) for b in pool])), 0),
        "embeddings_s": round(t_embeddings, 1),
        "thumbnail_pool_s": round(t_pool, 1),
        "links_s": round(t_links, 1),
        "build_s": round(time.perf_counter() - t0, 1),
    }


FLOOR = 1 << 30  # a step is ended when the machine has less memory than this available


def available() -> int:
    """MemAvailable in bytes (others' processes and files in /dev/shm count against it)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


class Watch:
    """A child process's tree: RSS sampled each second (the tree's sum), its stderr lines
    kept with the time and RSS at which they came, the tree ended past ``cap`` bytes or
    when the machine has less than FLOOR available (it is shared: the OOM killer may pick another)."""

    def __init__(self, proc: subprocess.Popen[str], cap: float, log: Path | None) -> None:
        import psutil

        self.proc, self.cap, self.log = proc, cap, log
        self.peak_tree = 0
        self.killed = False
        self.lines: list[tuple[float, int, str]] = []
        self.start = time.perf_counter()
        self.rss = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds, tree RSS MB) every 10 s
        self._root = psutil.Process(proc.pid)
        threading.Thread(target=self._sample, daemon=True).start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _sample(self) -> None:
        import psutil

        while self.proc.poll() is None:
            try:
                tree = [self._root, *self._root.children(recursive=True)]
                rss = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
            except psutil.Error:
                break
            self.rss = rss
            self.peak_tree = max(self.peak_tree, rss)
            now = round(time.perf_counter() - self.start, 1)
            if not self.timeline or now - self.timeline[-1][0] >= 10:
                self.timeline.append((now, round(rss / 2**20)))
                if self.log is not None:
                    with open(self.log, "a") as fh:
                        fh.write(f"{now:8.1f} s {round(rss / 2**20):7d} MB  (sample)\n")
            short = available() < FLOOR
            if (rss > self.cap or short) and not self.killed:
                self.killed = True
                why = "the machine's free memory" if short else "the cap"
                self._note(f"watchdog: {rss / GIB:.2f} GiB, over {why}: ending the step")
                for p in reversed(tree):
                    with contextlib.suppress(psutil.Error):
                        p.kill()
            time.sleep(1.0)

    def _note(self, line: str) -> None:
        entry = (round(time.perf_counter() - self.start, 1), round(self.rss / 2**20), line)
        self.lines.append(entry)
        if self.log is not None:
            with open(self.log, "a") as fh:
                fh.write(f"{entry[0]:8.1f} s {entry[1]:7d} MB  {line}\n")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._note(line.rstrip())

    def wait(self) -> int:
        code = self.proc.wait()
        self._reader.join(timeout=10)
        return code


def run_cli(args: list[str], cap: float, log: Path | None) -> dict[str, object]:
    """`photocluster --verbose ARGS` in a child: its JSON report, seconds, own peak (VmHWM),
    the tree's sampled peak, and the log lines with the RSS at each."""
    code_text = (
        "import sys\n" + _PEAK + "from photocluster.cli import main\n"
        "try:\n    main()\nfinally:\n    print(f'PEAK_MB {peak_mb()}', file=sys.stderr)"
    )
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code_text, "--verbose", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watch = Watch(proc, cap, log)
    stdout = proc.stdout.read() if proc.stdout else ""
    code = watch.wait()
    seconds = time.perf_counter() - t
    peak = next((float(line.split()[1]) for _, _, line in reversed(watch.lines) if line.startswith("PEAK_MB")), None)
    out: dict[str, object] = {
        "command_s": round(seconds, 1),
        "peak_rss_mb": None if peak is None else round(peak),
        "tree_peak_rss_mb": round(watch.peak_tree / 2**20),
        "returncode": code,
    }
    if watch.killed:
        out["stopped"] = f"over the memory cap of {cap / GIB:.1f} GiB or the machine's free memory"
        out["last_lines"] = watch.lines[-6:]
    elif code != 0:
        out["error"] = "\n".join(line for _, _, line in watch.lines[-8:])
    else:
        try:  # its figures, not its lists of ids
            report = json.loads(stdout)
            out["report"] = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
        except json.JSONDecodeError:
            out["stdout_tail"] = stdout[-2000:]
    # Where the memory went: the RSS at each stage the command logged.
    stages = [[s, mb, line[:160]] for s, mb, line in watch.lines if not line.startswith("PEAK_MB")]
    out["stages"] = stages if len(stages) <= 80 else [*stages[:40], ["..."], *stages[-40:]]
    step = max(1, len(watch.timeline) // 60)
    out["rss_timeline_mb"] = watch.timeline[::step]
    return out


class _Stop(Exception):
    """A step did not fit: the later ones are not run."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--work", type=Path, required=True, help="folder for the library and the export (made)")
    ap.add_argument("--sources", type=int, default=0, help="real JPEGs the photos link to (default: enough)")
    ap.add_argument("--pool", type=int, default=400, help="real thumbnails the faces' stored thumbnails come from")
    ap.add_argument("--mem-cap-gb", type=float, default=16.0, help="end a step whose processes pass this many GiB")
    ap.add_argument("--steps", default="build,clusters,export")
    ap.add_argument("--keep", action="store_true", help="keep the library and the export (default: removed)")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--log", type=Path, default=None, help="the steps' log lines with the RSS at each")
    args = ap.parse_args()
    steps = args.steps.split(",")
    n = args.faces
    cap = args.mem_cap_gb * GIB
    work = args.work
    db = work / "library.db"
    dest = work / "export"
    photos_est = round(n / 1.6)
    # Hard links to one source: its photos' and the export's entries (about one a face).
    n_sources = args.sources or max(300, -(-(photos_est + n) // MAX_LINKS) * 2)
    result: dict[str, object] = {"faces": n, "cpus": os.cpu_count(), "mem_cap_gb": args.mem_cap_gb}
    result["disk_before"] = disk_of(work.parent if not work.exists() else work)
    per_face = dict(PER_FACE)
    try:
        if "build" in steps:
            work.mkdir(parents=True, exist_ok=False)
            before = disk_of(work)
            why = fits(work, n * (per_face["db_bytes"] + per_face["photo_tree_bytes"]), photos_est / 1000 + 1000)
            if why:
                result["build"] = {"not_run": f"the library of {n:,} faces does not fit: {why}"}
                raise _Stop
            built = build(n, work, n_sources, args.pool)
            after = disk_of(work)
            db_bytes = sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())
            built.update(
                {
                    "db_bytes": db_bytes,
                    "db_bytes_per_face": round(db_bytes / n),
                    "disk_used_bytes": after["used_bytes"] - before["used_bytes"],
                    "inodes_used": after["used_inodes"] - before["used_inodes"],
                }
            )
            if n <= 1_000_000:
                built["photo_tree"] = du(work / "photos")
            per_face["db_bytes"] = db_bytes / n
            result["build"] = built
            print(json.dumps(result), file=sys.stderr, flush=True)
        faces = n
        if "clusters" in steps:
            # Past the cap the watchdog ends it (and says where the memory went); past the
            # machine's memory it is not started.
            need = faces * per_face["clusters_peak_bytes"]
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            if need > total:
                result["clusters"] = {
                    "not_run": f"estimated peak {need / GIB:.1f} GiB ({per_face['clusters_peak_bytes']:.0f} bytes a "
                    f"face, measured at 1M) passes this machine's {total / GIB:.1f} GiB"
                }
            else:
                result["clusters"] = step = run_cli(["clusters", "--db", str(db), "--json"], cap, args.log)
                if "report" in step and (work / "truth.npy").exists():
                    step.update(quality(db, work / "truth.npy"))
            print(json.dumps(result), file=sys.stderr, flush=True)
        if "export" in steps:
            why = fits(work, faces * per_face["export_bytes"], faces * per_face["export_inodes"])
            clustered = "clusters" not in steps or "report" in result["clusters"]  # type: ignore[operator]
            if not clustered:
                why = "; ".join(filter(None, ["`clusters` did not finish: no persons to export", why]))
            if why:
                result["export"] = {
                    "not_run": f"the export of {faces:,} faces (a thumbnail file a face: a 4 kB ext4 block and "
                    f"an inode each, about {per_face['export_bytes']:.0f} bytes and {per_face['export_inodes']:.2f} "
                    f"inodes a face with the entries and pages) is not run: {why}"
                }
            else:
                before = disk_of(work)
                step = run_cli(["export", str(dest), "--db", str(db), "--mode", "hardlink", "--json"], cap, args.log)
                after = disk_of(work)
                step["disk_used_bytes"] = after["used_bytes"] - before["used_bytes"]
                step["inodes_used"] = after["used_inodes"] - before["used_inodes"]
                if n <= 1_000_000 and dest.exists():
                    step["export_tree"] = du(dest)
                result["export"] = step
    except _Stop:
        pass
    finally:
        result["disk_after"] = disk_of(work if work.exists() else work.parent)
        text = json.dumps(result, indent=2)
        if args.json_out:
            args.json_out.write_text(text + "\n")
        print(text, flush=True)
        if not args.keep and work.exists() and "build" in steps:
            shutil.rmtree(work)


def quality(db: Path, truth_file: Path) -> dict[str, object]:
    """Persons found and pairwise F against the synthetic identities."""
    import sqlite3

    from photocluster.eval.metrics import pairwise

    truth = np.load(truth_file)
    with sqlite3.connect(db) as conn:
        rows = np.array(conn.execute("SELECT id, coalesce(person_id, -id) FROM faces ORDER BY id").fetchall())
        persons = int(conn.execute("SELECT count(*) FROM persons").fetchone()[0])
    return {
        "persons": persons,
        "faces_in_persons": int(np.count_nonzero(rows[:, 1] > 0)),
        "pairwise_f_vs_truth": round(pairwise(truth[rows[:, 0] - 1], rows[:, 1]).f1, 4),
    }


if __name__ == "__main__":
    main()
