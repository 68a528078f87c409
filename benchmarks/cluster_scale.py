"""Clustering at scale: time, peak memory and quality on synthetic face embeddings.

Embeddings are shaped like dlib's: identities of Zipf-distributed size (up to 5,000 faces),
distances inside an identity ~0.3-0.5, between identities ~0.8-1.1, 30% singletons.

    python benchmarks/cluster_scale.py --faces 1000000
    python benchmarks/cluster_scale.py --faces 20000 --exact --dlib
    python benchmarks/cluster_scale.py --faces 100000 --two-stage

Prints the time and peak memory (the high-water mark of a child process that only loads the
embeddings and clusters them), pairwise and BCubed F against the synthetic truth, the edge
recall (share of the exact 32-nearest edges found, over 2,000 random faces), and optionally
the agreement with clustering on every edge under the threshold (``--exact``) and with
dlib's own ``chinese_whispers_clustering`` (``--dlib``, which compares every pair: keep n
small). ``--two-stage`` also times the default two-stage grouping on the same edges, with and
without the crowding factor (grouping/crowding.py), and gives the ratio. ``--with-db`` times
the real ``photocluster clusters`` command on a library database of N faces instead
(``--runs`` times: the first creates persons, the next, ``--full``, keep them); ``--baseline
T`` also times plain Chinese whispers at T (``--method whispers --threshold T``) on the same
library; ``--add S`` then adds S * N faces in new photos, times ``clusters`` placing them
(incremental) and compares the result with ``clusters --full`` on the same faces (pairwise F),
each ``--repeats`` times (3), alternated, the median reported.

    python benchmarks/cluster_scale.py --faces 1000000 --with-db --runs 1 --baseline 0.6 --add 0.01
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster import grouping as cl
from photocluster.eval.metrics import bcubed, pairwise


def synthetic(n: int, seed: int = 0, chunk: int = 250_000) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (float32) and identities; the noise is drawn ``chunk`` faces at a time, so
    that 10M faces never take 10M x 128 float64 temporaries (10 GB): the same draws."""
    rng = np.random.default_rng(seed)
    singles = int(0.3 * n)
    sizes: list[int] = []
    total = 0
    while total < n - singles:
        size = max(2, int(min(rng.zipf(1.6), 5000)))
        sizes.append(size)
        total += size
    sizes[-1] -= total - (n - singles)
    sizes = [s for s in sizes if s > 0] + [1] * singles
    labels = np.repeat(np.arange(len(sizes)), sizes)
    mean = rng.normal(size=128)
    mean /= np.linalg.norm(mean)
    dirs = rng.normal(size=(len(sizes), 128))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centres = dirs  # mean * 0.2 + dirs * 0.67 (centres ~0.95 apart), in place: 3.3M identities are 3.4 GB
    centres *= 0.67
    centres += mean * 0.2
    spread = rng.uniform(0.21, 0.35, size=len(sizes))  # pairs inside ~0.3-0.5 apart
    emb = np.empty((n, 128), dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        noise = rng.normal(size=(hi - lo, 128))
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        part = labels[lo:hi]
        emb[lo:hi] = centres[part] + noise * spread[part, None]
    return emb, labels


# Peak memory as the kernel counts it for this process alone (VmHWM). ru_maxrss would do
# on macOS, but on Linux a child started with fork+exec inherits the parent's peak in it.
_PEAK = """
def peak_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)
"""

_CHILD = (
    """
import json, sys, time
import numpy as np
from photocluster import grouping as cl
"""
    + _PEAK
    + """
emb = np.load(sys.argv[1])
t = time.perf_counter()
i, j, _ = cl.knn_edges(emb, float(sys.argv[2]))
t_edges = time.perf_counter() - t
labels = cl.chinese_whispers(len(emb), i, j)
t_total = time.perf_counter() - t
np.savez(sys.argv[3], labels=labels, i=i, j=j)
out = {"edges": int(len(i)), "edges_s": t_edges, "total_s": t_total, "peak_rss_mb": peak_mb()}
if len(sys.argv) > 4:  # --two-stage: the default grouping on the same edges, crowding off then on
    from dataclasses import replace
    i, j, d = cl.knn_edges(emb, cl.Policy().graph_radius)
    n = len(emb)
    cons = cl.build_constraints(np.arange(n), np.arange(n), emb, cl.Policy().collage_radius, {}, {}, [])
    for name, policy in (("no_crowding", replace(cl.Policy(), crowding=False)), ("crowding", cl.Policy())):
        t = time.perf_counter()
        cl.group(emb, i, j, d, cons, policy)
        out[f"group_{name}_s"] = time.perf_counter() - t
    from photocluster.grouping.grouper import crowding
    t = time.perf_counter()
    factor = crowding(i, j, d, cons, cl.Policy())
    out["crowding_factor_s"] = time.perf_counter() - t
    out["faces_with_factor_under_1"] = int(np.count_nonzero(factor < 1))
    out["group_ratio"] = out["group_crowding_s"] / out["group_no_crowding_s"]
    out["peak_rss_mb"] = peak_mb()
print(json.dumps(out))
"""
)


def sampled_recall(emb: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float, k: int = 32) -> float:
    """Share of the true edges (each face to its k nearest under the threshold, computed
    exactly) that the index found, over 2,000 random faces."""
    n = len(emb)
    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(n, size=min(2000, n), replace=False))
    sq = np.einsum("ij,ij->i", emb, emb)
    found = set((np.minimum(i, j).astype(np.int64) * n + np.maximum(i, j)).tolist())
    hits = total = 0
    for start in range(0, len(queries), 200):
        q = queries[start : start + 200]
        d2 = sq[q, None] + sq[None, :] - 2.0 * (emb[q] @ emb.T)
        d2[np.arange(len(q)), q] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        rows, slots = np.nonzero(np.take_along_axis(d2, part, axis=1) < threshold * threshold)
        a, b = q[rows], part[rows, slots]
        keys = (np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)).tolist()
        hits += sum(key in found for key in keys)
        total += len(keys)
    return hits / max(total, 1)


@dataclass(frozen=True)
class Library:
    """Synthetic faces shuffled into photos of 1-5 faces (about 1.6 per photo), so the
    same-photo rule is at work as in a real library, and as in a real library no photo
    shows one person twice. Face ids follow the photos: the faces of the photos added
    last have the highest ids, as after a scan."""

    emb: np.ndarray  # by face id - 1
    truth: np.ndarray  # identity by face id - 1
    photo: np.ndarray  # photo id by face id - 1, non-decreasing

    @classmethod
    def of(cls, emb: np.ndarray, truth: np.ndarray, seed: int = 0) -> Library:
        rng = np.random.default_rng(seed)
        per_photo = rng.choice([1, 2, 3, 4, 5], size=len(emb), p=[0.6, 0.2, 0.1, 0.06, 0.04])
        photo_of = np.repeat(np.arange(len(emb)), per_photo)[: len(emb)]
        face_order = rng.permutation(len(emb))
        # A second face of one identity in a photo moves to a photo of its own.
        key = photo_of * (int(truth.max()) + 1) + truth[face_order]
        _, first = np.unique(key, return_index=True)
        repeat = np.ones(len(emb), dtype=bool)
        repeat[first] = False
        photo_of[repeat] = len(emb) + np.arange(np.count_nonzero(repeat))
        # Photos in a random order (the moved faces' photos among the rest), numbered 1...
        _, photo_of = np.unique(photo_of, return_inverse=True)
        photo_of = rng.permutation(int(photo_of.max()) + 1)[photo_of.reshape(-1)]
        by_photo = np.argsort(photo_of, kind="stable")
        faces = face_order[by_photo]
        return cls(emb[faces], truth[faces], photo_of[by_photo] + 1)

    def cut(self, share: float) -> int:
        """The number of faces of the first photos that hold ``share`` of the faces."""
        n = round(share * len(self.emb))
        while 0 < n < len(self.emb) and self.photo[n] == self.photo[n - 1]:
            n += 1
        return n

    def write(self, db: Path, lo: int = 0, hi: int | None = None) -> None:
        """Insert the faces lo..hi (by position) and their photos, as one scan."""
        from photocluster.store import Store

        hi = len(self.emb) if hi is None else hi
        with Store(db) as store, store.transaction() as conn:
            scan = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', '[]', 'synthetic')"
            ).lastrowid
            conn.executemany(
                "INSERT INTO photos(id, path, size, mtime_ns, status, settings, scan_id, width, height, updated_at) "
                "VALUES (?, ?, 1, 1, 'done', 'synthetic', ?, 100, 100, 0)",
                ((int(p), f"/synthetic/{p:07d}.jpg".encode(), scan) for p in np.unique(self.photo[lo:hi])),
            )
            landmarks = np.zeros((5, 2), dtype="<f4").tobytes()
            conn.executemany(
                "INSERT INTO faces(id, photo_id, left, top, right, bottom, confidence, landmarks, embedding) "
                "VALUES (?, ?, 10, 10, 60, 60, 1.0, ?, ?)",
                ((f + 1, int(self.photo[f]), landmarks, self.emb[f].astype("<f4").tobytes()) for f in range(lo, hi)),
            )


def library_db(emb: np.ndarray, truth: np.ndarray, db: Path, seed: int = 0) -> Library:
    """A synthetic library database of the embeddings (see :class:`Library`)."""
    lib = Library.of(emb, truth, seed)
    lib.write(db)
    return lib


def run_clusters(db: Path, *args: str) -> dict[str, object]:
    """One `photocluster clusters --json` in a fresh process: its report, wall time and peak memory."""
    t = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n" + _PEAK + "from photocluster.cli import main\n"
            "try:\n    main()\nfinally:\n"
            "    print(peak_mb(), file=sys.stderr)",
            "clusters",
            "--db",
            str(db),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"clusters failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    peak = float(proc.stderr.strip().splitlines()[-1])
    return {
        "command_s": round(seconds, 1),
        "peak_rss_mb": round(peak, 1),
        "mode": doc.get("mode"),
        "why": doc.get("why"),
        "persons": doc["persons"],
        "unknown": doc["unknown"],
        "kept_ids": doc.get("kept_ids"),
        "faces_moved": doc.get("faces_moved"),
        "faces_new": doc.get("faces_new"),
    }


def stored_persons(db: Path) -> np.ndarray:
    """(face id, person id or -face id) of every face, by face id."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return np.array(conn.execute("SELECT id, coalesce(person_id, -id) FROM faces ORDER BY id").fetchall())


def clusters_command(lib: Library, n: int, runs: int, threshold: float | None = None) -> dict[str, object]:
    """The whole `photocluster clusters` command (SQLite in and out) on the first ``n``
    faces, each run a fresh process: the first finds persons, the next (``--full``) keep
    their ids against the stored ones."""
    method = [] if threshold is None else ["--method", "whispers", "--threshold", str(threshold)]
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        lib.write(db, 0, n)
        for run in range(1, runs + 1):
            result[f"run{run}"] = run_clusters(db, *method, *([] if run == 1 else ["--full"]))
        rows = stored_persons(db)
        truth = lib.truth[rows[:, 0] - 1]
        result["pairwise_f_vs_truth"] = round(pairwise(truth, rows[:, 1]).f1, 4)
        result["bcubed_f_vs_truth"] = round(bcubed(truth, rows[:, 1]).f1, 4)
    return result


def incremental(lib: Library, n: int, repeats: int = 3) -> dict[str, object]:
    """Faces n.. added to the library of the first n, clustered: `clusters` (incremental)
    timed, then compared with `clusters --full` on a copy of the same library.

    Each is run ``repeats`` times, alternated, on fresh copies of the library as the scan
    left it, and the median run reported (every run's seconds beside it): this 2-core
    machine moves one run by a third from one minute to the next. Both place the faces the
    same way each time; the agreement is read from the last pair."""
    with tempfile.TemporaryDirectory() as tmp:
        grown = Path(tmp) / "grown.db"
        lib.write(grown, 0, n)
        run_clusters(grown)
        lib.write(grown, n)
        db, full_db = Path(tmp) / "scale.db", Path(tmp) / "full.db"
        placing: list[dict[str, object]] = []
        fulls: list[dict[str, object]] = []
        for _ in range(max(1, repeats)):
            shutil.copy(grown, db)
            placing.append(run_clusters(db))
            shutil.copy(grown, full_db)
            fulls.append(run_clusters(full_db, "--full"))
        result = dict(_median_run(placing))
        result["runs_s"] = [r["command_s"] for r in placing]
        result["faces_added"] = len(lib.emb) - n
        result["full_command_s"] = _median_run(fulls)["command_s"]
        result["full_runs_s"] = [r["command_s"] for r in fulls]
        placed, everything = stored_persons(db), stored_persons(full_db)
        result["pairwise_f_vs_full"] = round(pairwise(everything[:, 1], placed[:, 1]).f1, 4)
        new = placed[:, 0] > n
        result["pairwise_f_vs_full_new_faces"] = round(pairwise(everything[new, 1], placed[new, 1]).f1, 4)
        truth = lib.truth[placed[:, 0] - 1]
        result["pairwise_f_vs_truth"] = round(pairwise(truth, placed[:, 1]).f1, 4)
        result["full_pairwise_f_vs_truth"] = round(pairwise(truth, everything[:, 1]).f1, 4)
    return result


def _median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """The run of the median wall time (the lower middle one of an even number)."""
    ordered = sorted(runs, key=lambda r: float(r["command_s"]))  # type: ignore[arg-type]
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--exact", action="store_true", help="also cluster on every edge under the threshold")
    ap.add_argument("--dlib", action="store_true", help="also run dlib.chinese_whispers_clustering")
    ap.add_argument(
        "--with-db", action="store_true", help="time `photocluster clusters` itself on a database of N faces"
    )
    ap.add_argument(
        "--two-stage",
        action="store_true",
        help="also time the default two-stage grouping with and without the crowding factor",
    )
    ap.add_argument(
        "--runs", type=int, default=2, help="with --with-db: how many times to run the command (the next with --full)"
    )
    ap.add_argument(
        "--add",
        type=float,
        default=None,
        help="with --with-db: then add this share more faces (new photos) to the clustered library, run "
        "`clusters` (incremental) and compare it with `clusters --full` on the same faces",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="with --add: how many times to run the incremental `clusters` and its full run, alternated "
        "(the median of each reported)",
    )
    ap.add_argument(
        "--baseline",
        type=float,
        default=None,
        help="with --with-db: also run `clusters --method whispers --threshold T` on the same library "
        "(the single-threshold baseline)",
    )
    args = ap.parse_args()
    if args.with_db:
        # With --add, the library of N faces is the first photos of N * (1 + add) faces.
        total = args.faces if args.add is None else round(args.faces * (1 + args.add))
        emb, truth = synthetic(total)
        lib = Library.of(emb, truth)
        n = lib.cut(args.faces / total)
        result: dict[str, object] = {"faces": n, "identities": int(np.unique(lib.truth[:n]).size)}
        result.update(clusters_command(lib, n, args.runs))
        print(json.dumps(result), file=sys.stderr, flush=True)  # the main figures, before the rest
        if args.baseline is not None:
            result["baseline"] = clusters_command(lib, n, 1, args.baseline)
        if args.add is not None:
            result["incremental"] = incremental(lib, n, args.repeats)
        print(json.dumps(result, indent=2))
        return
    emb, truth = synthetic(args.faces)
    result = {"faces": args.faces, "identities": int(truth.max() + 1)}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "emb.npy", emb)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(Path(tmp) / "emb.npy"),
                str(args.threshold),
                str(Path(tmp) / "out.npz"),
                *(["two-stage"] if args.two_stage else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(proc.stdout)
        out = np.load(Path(tmp) / "out.npz")
        labels, found_i, found_j = out["labels"], out["i"], out["j"]
    result.update({k: round(v, 2) if isinstance(v, float) else v for k, v in child.items()})
    print(json.dumps(result), flush=True)  # the expensive part, shown before the comparisons
    result["pairwise_f_vs_truth"] = round(pairwise(truth, labels).f1, 4)
    result["bcubed_f_vs_truth"] = round(bcubed(truth, labels).f1, 4)
    result["edge_recall"] = round(sampled_recall(emb, found_i, found_j, args.threshold), 4)
    result["multi_face_identities"] = int(np.count_nonzero(np.bincount(truth) >= 2))
    result["clusters_of_2_or_more"] = int(np.count_nonzero(np.bincount(labels) >= 2))
    if args.exact:
        t = time.perf_counter()
        i, j, _ = cl.edges(emb, args.threshold)
        exact = cl.chinese_whispers(len(emb), i, j)
        result["exact_s"] = round(time.perf_counter() - t, 1)
        result["exact_edges"] = len(i)
        result["pairwise_f_vs_exact"] = round(pairwise(exact, labels).f1, 4)
        # BCubed weighs every face alike: a split pair of faces counts as much as in a crowd.
        result["bcubed_f_vs_exact"] = round(bcubed(exact, labels).f1, 4)
        result["exact_clusters_of_2_or_more"] = int(np.count_nonzero(np.bincount(exact) >= 2))
        result["exact_pairwise_f_vs_truth"] = round(pairwise(truth, exact).f1, 4)
    if args.dlib:
        import dlib

        vectors = [dlib.vector(row.astype(np.float64).tolist()) for row in emb]
        t = time.perf_counter()
        dlib_labels = np.array(dlib.chinese_whispers_clustering(vectors, args.threshold))
        result["dlib_s"] = round(time.perf_counter() - t, 1)
        result["dlib_pairwise_f_vs_truth"] = round(pairwise(truth, dlib_labels).f1, 4)
        result["pairwise_f_vs_dlib"] = round(pairwise(dlib_labels, labels).f1, 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
