"""The six descriptor views in int8: speed, verification accuracy and how far descriptors move (development figures).

Not what photocluster runs: its descriptors are dlib's, to about 1e-7, on every engine (a
CUDA-built dlib is a drop-in). This measures the one CPU route that halves the views' cost,
for whoever decides whether descriptors may differ from dlib's: the six-view graph
(``onnx_graph.build_views_model``) quantised by onnxruntime (static, QDQ, int8 weights per
channel, uint8 activations whose ranges come from ``--calibration`` chips of
``--calibrate-from``, by default the photos of ``--db`` outside the pairs), against the same
graph in float32.

For each way, one thread, one chip a run (as a scan runs a photo's face): CPU time per face,
interleaved ``--trials`` times, medians; the development pairs' 10-fold accuracy and ROC AUC
(the faces a library stored, each photo's face nearest its centre); how far each face's int8
descriptor lies from its float32 one; how many pairs change side of the clustering's
thresholds. With ``--clusters``: every face of the library described both ways, then
``clusters`` at the defaults (:func:`photocluster.app.recluster.plan_persons`, a full run, in
a copy of the library) scored against the labels (pairwise and BCubed F of each labelled
photo's face nearest its centre, as benchmarks/lfw_dev.py scores, and the persons that mix
labelled people).

    python benchmarks/views_int8.py --db LIBRARY.db [--clusters]
    python benchmarks/views_int8.py --db AGEGAP.db --labels AGEGAP/labels.csv --calibrate-from LIBRARY.db --clusters

LIBRARY.db: a library that scanned LFW's photos (../shared/holdout/images, or lfw-dev's layout);
AGEGAP.db: one that scanned the age-gap set laid out from ../shared/lag-dev (no pairs: its
persons are scored, with young-young precision from ``age_group``).

Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from descriptor_views import CentralFace, central_faces, read_pairs

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box
from photocluster.detect import faces as fc
from photocluster.detect.engine import resnet
from photocluster.detect.engine.dlib_format import load_network
from photocluster.detect.engine.onnx_graph import build_views_model, make_session
from photocluster.detect.images import load_image
from photocluster.detect.models import model_files
from photocluster.eval.metrics import kfold_accuracy, roc_auc, stratified_folds

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared").is_dir()), ROOT.parent / "shared")
THRESHOLDS = (0.38, 0.52, 0.6)  # the clustering's links and merges, and dlib's own


def big_chip(face: CentralFace, settings: DetectionSettings) -> np.ndarray:
    """The face's chip with the views' margin, cut as a scan cuts it."""
    image = load_image(face.path, settings.max_size, enlarge=settings.upsample is None)
    return fc.chips(image.pixels, [face.box.scaled(image.scale)], [face.points * image.scale], margin=fc.VIEW_SHIFT)[0]


def quantised(model: bytes, calibration: list[np.ndarray]) -> bytes:
    """``model`` with its convolutions and matrix products in int8 (onnxruntime's static
    quantisation: QDQ, weights per channel, activations' ranges from ``calibration``)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Chips(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._runs: Iterator[dict[str, np.ndarray]] = iter(
                {"x": np.stack(calibration[i : i + 10])} for i in range(0, len(calibration), 10)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._runs, None)

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        quantize_static(
            str(source),
            str(target),
            Chips(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        )
        return target.read_bytes()


def describe(s: Any, chip: np.ndarray) -> np.ndarray:
    return np.asarray(s.run(["y"], {"x": chip[None]})[0].mean(axis=0), dtype=np.float32)


def labelled(db: Path, labels: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face id, identity, young) of each labelled photo's face nearest its centre; a photo is
    known by its holdout name or by its own file name (lfw-dev's layout, the age-gap set's);
    young where ``labels`` has an ``age_group`` and it says so."""
    identity, young = {}, {}
    with open(labels, newline="") as fh:
        for row in csv.DictReader(fh):
            for name in {row.get("image"), os.path.basename(row["relative_path"])} - {None}:
                identity[name], young[name] = row["identity"], row.get("age_group") == "young"
    central = central_faces(db)
    names = sorted(set(central) & set(identity))
    ids = np.array([central[n].face_id for n in names])
    return ids, np.array([identity[n] for n in names]), np.array([young[n] for n in names], dtype=bool)


def scored(store: Any, face_ids: np.ndarray, truth: np.ndarray, young: np.ndarray) -> dict[str, object]:
    """``clusters`` at the defaults (a full run), scored as benchmarks/lfw_dev.py scores, with the
    persons that mix labelled people and, where there are young faces, young-young precision."""
    from lfw_dev import predicted

    from photocluster.eval.metrics import bcubed, pairwise
    from photocluster.grouping.grouper import Policy

    plan, pred = predicted(store, Policy(), face_ids)
    _, truth_ids = np.unique(truth, return_inverse=True)
    p, b = pairwise(truth_ids, pred), bcubed(truth_ids, pred)
    people: dict[int, set[int]] = {}
    for who, person in zip(truth_ids.tolist(), pred.tolist(), strict=True):
        people.setdefault(person, set()).add(who)
    out: dict[str, object] = {
        "pairwise": [round(p.precision, 4), round(p.recall, 4), round(p.f1, 4)],
        "bcubed": [round(b.precision, 4), round(b.recall, 4), round(b.f1, 4)],
        "persons": len({x for x in plan.values() if x is not None}),
        "persons_mixing_people": sum(len(w) > 1 for w in people.values()),
    }
    if young.any():
        yy = pairwise(truth_ids[young], pred[young])
        out["young_young_pairwise"] = [round(yy.precision, 4), round(yy.recall, 4)]
    return out


def every_face(db: Path, ways: dict[str, Any], settings: DetectionSettings) -> dict[str, dict[int, bytes]]:
    """Every face of the library described each way: face id -> descriptor as the store keeps it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT p.path, f.id, f.left, f.top, f.right, f.bottom, f.landmarks FROM faces f "
        "JOIN photos p ON p.id = f.photo_id WHERE p.status = 'done' ORDER BY p.id"
    ).fetchall()
    conn.close()
    by_photo: dict[bytes | str, list[tuple[int, Box, np.ndarray]]] = {}
    for path, fid, left, top, right, bottom, landmarks in rows:
        points = np.frombuffer(landmarks, dtype="<f4").reshape(5, 2)
        by_photo.setdefault(path, []).append((fid, Box(left, top, right, bottom), points))
    out: dict[str, dict[int, bytes]] = {k: {} for k in ways}
    for path, found in by_photo.items():
        image = load_image(Path(os.fsdecode(path)), settings.max_size, enlarge=settings.upsample is None)
        boxes = [box.scaled(image.scale) for _, box, _ in found]
        points = [p * image.scale for _, _, p in found]
        chips = fc.chips(image.pixels, boxes, points, margin=fc.VIEW_SHIFT)
        for k, s in ways.items():
            for (fid, _, _), chip in zip(found, chips, strict=True):
                out[k][fid] = describe(s, chip).astype("<f4").tobytes()
    return out


def clusters(db: Path, labels: Path, ways: dict[str, Any], settings: DetectionSettings) -> None:
    """``clusters`` at the defaults on the library with each way's descriptors, scored."""
    from photocluster.store import Store

    face_ids, truth, young = labelled(db, labels)
    described = every_face(db, ways, settings)
    with tempfile.TemporaryDirectory() as tmp:
        for k, vectors in described.items():
            copy = Path(tmp) / f"{k}.db"
            shutil.copy(db, copy)
            with Store(copy):
                pass  # brings an older library's schema up to date before the descriptors are written
            conn = sqlite3.connect(copy)
            with conn:
                conn.executemany("UPDATE faces SET embedding = ? WHERE id = ?", [(v, f) for f, v in vectors.items()])
            conn.close()
            with Store(copy) as store:
                row = {"measure": "clusters", "way": k, "faces": len(vectors), "labelled": len(face_ids)}
                print(json.dumps(row | scored(store, face_ids, truth, young)), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a library that scanned LFW's (or the age-gap set's) photos")
    ap.add_argument("--labels", type=Path, default=SHARED / "lfw-dev" / "labels.csv")
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw-dev" / "pairs.txt")
    ap.add_argument("--calibrate-from", type=Path, help="the library whose faces calibrate (default --db)")
    ap.add_argument("--calibration", type=int, default=200, help="chips of photos outside the pairs")
    ap.add_argument("--timed", type=int, default=100, help="faces timed one at a time")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--clusters", action="store_true", help="also cluster the whole library each way")
    args = ap.parse_args()
    settings = DetectionSettings()
    faces = central_faces(args.db)
    pairs = read_pairs(args.pairs, args.labels, set(faces)) if args.pairs.is_file() else []
    names = sorted({n for a, b, _ in pairs for n in (a, b)} & set(faces))
    pairs = pairs if names else []  # a library without the pairs' photos: no verification
    names = names or sorted(faces)
    if not names:
        sys.exit(f"{args.db}: no face to describe")
    chips = {n: big_chip(faces[n], settings) for n in names}
    source = central_faces(args.calibrate_from) if args.calibrate_from else faces
    outside = sorted(set(source) - set(names)) if source is faces else sorted(source)
    step = max(1, len(outside) // args.calibration)
    calibration = [big_chip(source[n], settings) for n in outside[::step][: args.calibration]]

    net = load_network(model_files().recognizer, "metric", resnet.SPEC, "sized")
    fp32 = build_views_model(net.layers, net.input.mean_rgb, fc.CHIP_SIZE, fc.VIEW_SHIFT, resnet.LABEL)
    ways = {"float32": make_session(fp32, 1), "int8": make_session(quantised(fp32, calibration), 1)}

    timed = [chips[n] for n in names[: args.timed]]
    cost: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.trials):
        for k, s in ways.items():
            start = time.process_time()
            for chip in timed:
                describe(s, chip)
            cost[k].append((time.process_time() - start) / len(timed))
    per_face = {k: statistics.median(v) for k, v in cost.items()}
    row = {"measure": "cost", "faces": len(timed)} | {f"cpu_s_per_face_{k}": round(v, 5) for k, v in per_face.items()}
    print(json.dumps(row | {"int8_over_float32": round(per_face["int8"] / per_face["float32"], 3)}), flush=True)

    vectors = {k: {n: describe(s, chips[n]) for n in names} for k, s in ways.items()}
    moved = np.array([np.linalg.norm(vectors["int8"][n] - vectors["float32"][n]) for n in names])
    drift: dict[str, object] = {"measure": "drift", "faces": len(names)}
    drift |= {"face_moved_median": round(float(np.median(moved)), 4), "face_moved_max": round(float(moved.max()), 4)}
    if pairs:
        same = np.array([s for _, _, s in pairs])
        folds = stratified_folds(same, 10)
        dist = {}
        for k, v in vectors.items():
            missing = 9.0  # a pair with a missing face: farther than any threshold (strict)
            dist[k] = np.array([np.linalg.norm(v[a] - v[b]) if a in v and b in v else missing for a, b, _ in pairs])
            kf = kfold_accuracy(dist[k], same, folds)
            row = {"measure": "accuracy", "way": k, "accuracy_10fold": round(kf.mean, 4)}
            print(json.dumps(row | {"roc_auc": round(roc_auc(dist[k], same), 5), "pairs": len(pairs)}), flush=True)
        change = np.abs(dist["int8"] - dist["float32"])
        drift |= {"pair_distance_change_median": round(float(np.median(change)), 4)}
        drift |= {"pair_distance_change_p99": round(float(np.percentile(change, 99)), 4)}
        for t in THRESHOLDS:
            drift[f"pairs_across_{t}"] = int(np.sum((dist["int8"] < t) != (dist["float32"] < t)))
    print(json.dumps(drift), flush=True)
    if args.clusters:
        clusters(args.db, args.labels, ways, settings)


if __name__ == "__main__":
    main()
