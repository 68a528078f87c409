"""The six descriptor views' share of a scan of small photos, before and after (development figures).

Three measurements, in one run, on onnxruntime with one thread (as each worker of a
``--workers 2`` scan runs it):

1. ``batch``: CPU time of one ResNet pass per chip, at batches of 1, 6, 12, 24 and 96 chips,
   and per view of the six-view graph at 1 to 16 chips a run (random chips: the cost does not
   depend on what they show);
2. ``views``: CPU time of the six views per face, on the faces of ``--faces-from`` holdout
   photos: as photocluster cut them before (``before``: six 150x150 crops through ``embed``),
   with the first graph (``stem``: the ResNet's stem run once per chip and mirror image) and as
   it does now (``after``, ``OnnxEngine.embed_views``: the 32-channel blocks too run once on the
   whole height, each view only on its edge rows), interleaved ``--trials`` times, medians; the
   largest difference between the descriptors of a face;
3. ``scan``: ``photocluster scan --workers 2`` of ``--photos`` holdout photos copied to a temp
   folder, by each checkout (``--before``, default ../main, and this one), alternated
   ``--trials`` times: photos/s, CPU-s per photo (the scan and its workers), the faces found,
   the largest difference between the descriptors the two stored, and the views' share of the
   scan's CPU time (faces x views CPU-s per face / scan CPU-s). Then ``shares``: the views'
   share with each way of computing them, the rest of the scan taken from this checkout's scan
   (its CPU less its views'), so that only the views differ.

    python benchmarks/views_cost.py [--photos 1000] [--before ../main] [--trials 2]

Prints one JSON object per measurement, then the ratios (after / before).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from photocluster.core.config import DetectionSettings
from photocluster.detect import faces as fc
from photocluster.detect.engine import OnnxEngine, resnet
from photocluster.detect.engine.dlib_format import load_network
from photocluster.detect.engine.onnx_graph import build_views_model, make_session
from photocluster.detect.images import load_image
from photocluster.detect.models import model_files

ROOT = Path(__file__).resolve().parents[1]


def beside(name: str) -> Path:
    """``name`` beside this checkout, or beside a folder above it (a worktree's main checkout)."""
    for folder in ROOT.parents:
        if (folder / name).is_dir():
            return folder / name
    return ROOT.parent / name


SHARED = beside("shared")


def cpu() -> float:
    return time.process_time()


def batch_costs(engine: OnnxEngine, trials: int) -> dict[str, float]:
    """ms of CPU per chip of one ResNet pass, by batch size."""
    rng = np.random.default_rng(0)
    chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(96)]
    costs: dict[int, list[float]] = {b: [] for b in (1, 6, 12, 24, 96)}
    for b in costs:
        engine.embed(chips[:b])
    for _ in range(trials):
        for b in costs:
            reps = max(1, 96 // b)
            start = cpu()
            for _ in range(reps):
                engine.embed(chips[:b])
            costs[b].append((cpu() - start) / reps / b * 1000)
    out = {f"batch_{b}_ms_per_view": round(statistics.median(v), 3) for b, v in costs.items()}
    # The six-view graph, by chips per run (six views each; VIEWS_BATCH is its cap in a scan).
    m = fc.VIEW_SHIFT
    big = [rng.integers(0, 256, (150 + 2 * m, 150 + 2 * m, 3), dtype=np.uint8) for _ in range(16)]
    graph: dict[int, list[float]] = {b: [] for b in (1, 2, 4, 8, 16)}
    for b in graph:
        engine.embedder.embed_views(big[:b], m)
    for _ in range(trials):
        for b in graph:
            reps = max(1, 16 // b)
            start = cpu()
            for _ in range(reps):
                engine.embedder.embed_views(big[:b], m)
            graph[b].append((cpu() - start) / reps / (6 * b) * 1000)
    return out | {f"views_graph_{b}_chips_ms_per_view": round(statistics.median(v), 3) for b, v in graph.items()}


def big_chips(photos: list[Path]) -> list[np.ndarray]:
    """The faces of ``photos`` as a scan finds them, as the chips (158 px) the views are cut from."""
    settings = DetectionSettings()
    out = []
    for path in photos:
        image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
        boxes = [d.box for d in fc.detect(image.pixels, settings.detector, settings.upsample or 0, "onnx")]
        points = [fc.landmarks(image.pixels, b) for b in boxes]
        out.append(fc.chips(image.pixels, boxes, points, margin=fc.VIEW_SHIFT))
    return [c for chips in out for c in chips]


def views_before(engine: OnnxEngine, chips: list[np.ndarray]) -> np.ndarray:
    """photocluster's describe before: six crops per face through ``embed``, one photo's at a time."""
    m, size = fc.VIEW_SHIFT, fc.CHIP_SIZE
    views = []
    for big in chips:
        for dy in (0, -m, m):
            view = big[m + dy : m + dy + size, m : m + size]
            views += [np.ascontiguousarray(view), np.ascontiguousarray(view[:, ::-1])]
    return engine.embed(views).reshape(len(chips), 6, 128).mean(axis=1, dtype=np.float32)


def views_after(engine: OnnxEngine, chips: list[np.ndarray]) -> np.ndarray:
    return engine.embed_views(chips, fc.VIEW_SHIFT).mean(axis=1, dtype=np.float32)


def stem_graph() -> Callable[[OnnxEngine, list[np.ndarray]], np.ndarray]:
    """The six views as the first graph ran them: only the stem shared between views."""
    net = load_network(model_files().recognizer, "metric", resnet.SPEC, "sized")
    model = build_views_model(net.layers, net.input.mean_rgb, fc.CHIP_SIZE, fc.VIEW_SHIFT, resnet.LABEL, blocks=False)
    session = make_session(model, 1)

    def views_stem(engine: OnnxEngine, chips: list[np.ndarray]) -> np.ndarray:
        y: np.ndarray = session.run(["y"], {"x": np.stack(chips)})[0]
        return y.reshape(6, len(chips), 128).mean(axis=0, dtype=np.float32)

    return views_stem


def view_costs(engine: OnnxEngine, chips: list[np.ndarray], trials: int) -> dict[str, float]:
    """CPU-s per face of the six views, each face on its own (a photo of LFW has about one)."""
    ways = {"before": views_before, "stem": stem_graph(), "after": views_after}
    diff = max(float(np.abs(views_before(engine, [c]) - fn(engine, [c])).max()) for c in chips for fn in ways.values())
    costs: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(trials):
        for name, fn in ways.items():
            start = cpu()
            for c in chips:
                fn(engine, [c])
            costs[name].append((cpu() - start) / len(chips))
    out = {f"views_cpu_s_per_face_{k}": round(statistics.median(v), 5) for k, v in costs.items()}
    return out | {"faces": len(chips), "max_abs_diff": diff}


def run_scan(checkout: Path, photos: Path, db: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the scan and its workers) of ``photocluster scan``."""
    env = os.environ | {"PYTHONPATH": str(checkout), "PHOTOCLUSTER_HOME": str(db.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "photocluster", "scan", str(photos), "--db", str(db), "--workers", str(workers)]
    done = subprocess.run(cmd, cwd=checkout, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} in {checkout} failed: {done.stderr.strip()[-500:]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def stored(db: Path) -> dict[tuple[str, int, int], np.ndarray]:
    """The descriptors a scan stored, by (photo's file name, rounded box left, top)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT p.path, f.left, f.top, f.embedding FROM faces f JOIN photos p ON p.id = f.photo_id"
    ).fetchall()
    conn.close()
    return {
        (os.path.basename(os.fsdecode(path)), round(left), round(top)): np.frombuffer(blob, dtype="<f4")
        for path, left, top, blob in rows
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=1000, help="holdout photos the scans scan")
    ap.add_argument("--faces-from", type=int, default=200, help="holdout photos whose faces the views are timed on")
    ap.add_argument("--images", type=Path, default=SHARED / "holdout" / "images")
    ap.add_argument("--before", type=Path, default=beside("main"), help="the checkout measured as before")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--skip-scan", action="store_true", help="only the in-process measurements")
    args = ap.parse_args()

    fc.set_threads(1)
    engine = OnnxEngine(threads=1)
    print(json.dumps({"measure": "batch"} | batch_costs(engine, args.trials + 1)), flush=True)
    photos = sorted(args.images.glob("*.jpg"))
    views = view_costs(engine, big_chips(photos[: args.faces_from]), args.trials + 1)
    print(json.dumps({"measure": "views"} | views), flush=True)
    per_face = {name: views[f"views_cpu_s_per_face_{name}"] for name in ("before", "stem", "after")}
    ratio = {"views_cpu_per_face": per_face["after"] / per_face["before"]}
    ratio["views_cpu_per_face_after_over_stem"] = per_face["after"] / per_face["stem"]
    if not args.skip_scan:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "photos"
            folder.mkdir()
            for p in photos[: args.photos]:
                shutil.copyfile(p, folder / p.name)
            runs: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
            for trial in range(args.trials):
                for name, checkout in (("before", args.before.resolve()), ("after", ROOT)):
                    db = Path(tmp) / name / f"{trial}.db"
                    db.parent.mkdir(exist_ok=True)
                    runs[name].append(run_scan(checkout, folder, db, args.workers))
            faces = {name: stored(Path(tmp) / name / "0.db") for name in runs}
            shared = faces["before"].keys() & faces["after"].keys()
            diff = max((float(np.abs(faces["before"][k] - faces["after"][k]).max()) for k in shared), default=0.0)
            share = {}
            for name, results in runs.items():
                wall = statistics.median(r[0] for r in results)
                cpu_s = statistics.median(r[1] for r in results)
                views_cpu = len(faces[name]) * views[f"views_cpu_s_per_face_{name}"]
                share[name] = views_cpu / cpu_s
                row = {"measure": "scan", "checkout": name, "photos": args.photos, "workers": args.workers}
                row |= {"faces": len(faces[name]), "photos_per_s": round(args.photos / wall, 2)}
                row |= {"cpu_s_per_photo": round(cpu_s / args.photos, 4), "views_share": round(share[name], 3)}
                print(json.dumps(row), flush=True)
            print(json.dumps({"measure": "agreement", "faces_matched": len(shared), "max_abs_diff": diff}), flush=True)
            walls = {n: statistics.median(r[0] for r in rs) for n, rs in runs.items()}
            ratio |= {"views_share": share["after"] / share["before"], "photos_per_s": walls["before"] / walls["after"]}
            # the same rest of a scan (this checkout's), the views computed each way
            cpu_after = statistics.median(r[1] for r in runs["after"])
            rest = cpu_after - len(faces["after"]) * per_face["after"]
            same_rest = {k: len(faces["after"]) * v / (rest + len(faces["after"]) * v) for k, v in per_face.items()}
            row = {"measure": "shares", "rest_cpu_s_per_photo": round(rest / args.photos, 4)}
            print(json.dumps(row | {f"views_share_{k}": round(v, 3) for k, v in same_rest.items()}), flush=True)
            ratio["views_share_same_rest"] = same_rest["after"] / same_rest["before"]
    print(json.dumps({"ratio_after_over_before": {k: round(v, 3) for k, v in ratio.items()}}), flush=True)


if __name__ == "__main__":
    main()
