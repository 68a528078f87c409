"""Clustering at scale: time, peak memory and quality on synthetic face embeddings.

Embeddings are shaped like dlib's: identities of Zipf-distributed size (up to 5,000 faces),
distances inside an identity ~0.3-0.5, between identities ~0.8-1.1, 30% singletons.

    python benchmarks/cluster_scale.py --faces 1000000
    python benchmarks/cluster_scale.py --faces 20000 --exact --dlib

Prints the time and peak memory (RSS of a child process that only loads the embeddings and
clusters them), pairwise F against the synthetic truth, and optionally pairwise F against
clustering on every edge under the threshold (``--exact``) and dlib's own
``chinese_whispers_clustering`` (``--dlib``, which compares every pair: keep n small).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from photocluster import cluster as cl
from photocluster.metrics import pairwise


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
    centres = mean * 0.2 + dirs * 0.67  # centres ~0.95 apart
    spread = rng.uniform(0.21, 0.35, size=len(sizes))  # pairs inside ~0.3-0.5 apart
    noise = rng.normal(size=(n, 128))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    emb = (centres[labels] + noise * spread[labels, None]).astype(np.float32)
    return emb, labels


_CHILD = """
import json, resource, sys, time
import numpy as np
from photocluster import cluster as cl
emb = np.load(sys.argv[1])
t = time.perf_counter()
i, j, _ = cl.knn_edges(emb, float(sys.argv[2]))
t_edges = time.perf_counter() - t
labels = cl.chinese_whispers(len(emb), i, j)
t_total = time.perf_counter() - t
np.save(sys.argv[3], labels)
print(json.dumps({"edges": int(len(i)), "edges_s": t_edges, "total_s": t_total,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def clusters_command(emb: np.ndarray) -> dict[str, object]:
    """The whole `photocluster clusters` command (SQLite in and out) in a child process."""
    import resource

    from photocluster.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        with Store(db) as store, store.transaction() as conn:
            # A synthetic library: one photo per face (the test data, not the code under test).
            scan = conn.execute(
                "INSERT INTO scans(started_at, status, roots, settings) VALUES (0, 'completed', '[]', 'synthetic')"
            ).lastrowid
            conn.executemany(
                "INSERT INTO photos(id, path, size, mtime_ns, status, settings, scan_id, width, height, updated_at) "
                "VALUES (?, ?, 1, 1, 'done', 'synthetic', ?, 100, 100, 0)",
                ((k + 1, f"/synthetic/{k:07d}.jpg".encode(), scan) for k in range(len(emb))),
            )
            landmarks = np.zeros((5, 2), dtype="<f4").tobytes()
            conn.executemany(
                "INSERT INTO faces(photo_id, left, top, right, bottom, confidence, landmarks, embedding) "
                "VALUES (?, 10, 10, 60, 60, 1.0, ?, ?)",
                ((k + 1, landmarks, emb[k].astype("<f4").tobytes()) for k in range(len(emb))),
            )
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "photocluster", "clusters", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - t
        doc = json.loads(proc.stdout)
    return {
        "command_s": round(seconds, 1),
        "command_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "persons": doc["persons"],
        "unknown": doc["unknown"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--exact", action="store_true", help="also cluster on every edge under the threshold")
    ap.add_argument("--dlib", action="store_true", help="also run dlib.chinese_whispers_clustering")
    ap.add_argument(
        "--with-db", action="store_true", help="time `photocluster clusters` itself on a database of N faces"
    )
    args = ap.parse_args()
    emb, truth = synthetic(args.faces)
    result: dict[str, object] = {"faces": args.faces, "identities": int(truth.max() + 1)}
    if args.with_db:
        result.update(clusters_command(emb))
        print(json.dumps(result, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "emb.npy", emb)
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(Path(tmp) / "emb.npy"), str(args.threshold), str(Path(tmp) / "lab.npy")],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(proc.stdout)
        labels = np.load(Path(tmp) / "lab.npy")
    result.update({k: round(v, 1) if isinstance(v, float) else v for k, v in child.items()})
    print(json.dumps(result), flush=True)  # the expensive part, shown before the comparisons
    result["pairwise_f_vs_truth"] = round(pairwise(truth, labels).f1, 4)
    if args.exact:
        t = time.perf_counter()
        i, j, _ = cl.edges(emb, args.threshold)
        exact = cl.chinese_whispers(len(emb), i, j)
        result["exact_s"] = round(time.perf_counter() - t, 1)
        result["exact_edges"] = len(i)
        result["pairwise_f_vs_exact"] = round(pairwise(exact, labels).f1, 4)
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
