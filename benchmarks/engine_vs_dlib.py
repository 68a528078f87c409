"""dlib-bin vs photocluster.detect.engine (the same weights on onnxruntime): speed and agreement.

Speed (default): for a few large fixture photos, each resized to a long side of 1024 and 1600
px, with upsample 0 and 1, times dlib's CNN detector and the engine's on the same pixels in
the same process, one after the other, and prints seconds per photo and the ratio, with the
box agreement. Then times the descriptor per face on dlib's own chips, and measures the
engine's peak memory (RSS, in a fresh process) on a 1600 px photo with upsample 1.

Agreement (``--agreement``): every fixture photo at most 1024 px (upsample 0; also upsample 1
for photos of 640 px or less) and ``--holdout N`` holdout photos (150 px, upsample 1): faces
found by both, missed, extra, box IoU, confidence differences, and the cosine similarity of
the two descriptors of each face's chip (chips cut by dlib from dlib's boxes and landmarks).

dlib takes ~10 s per megapixel of photo per upsampling level on one core, so the default
speed run (2 photos) takes about 6 minutes; ``--photos 1 --sizes 1024`` takes one.

    python benchmarks/engine_vs_dlib.py [--photos N] [--sizes 1024 1600] [--upsample 0 1]
        [--threads 1] [--agreement] [--holdout N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.detect.engine import OnnxEngine
from photocluster.detect.faces import model_files
from photocluster.detect.images import load_image

# Large photos with several faces (long side >= 1600 px, so both sizes are downscales).
SPEED_PHOTOS = [
    "dlib-faces/bald_guys.jpg",
    "face_recognition-knn/test/obama_and_biden.jpg",
    "deepface-dataset/img57.jpg",
]

Rect = tuple[int, int, int, int]
Found = list[tuple[Rect, float]]


def iou(a: Rect, b: Rect) -> float:
    """Plain intersection over union of inclusive rectangles."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih

    def area(r: Rect) -> int:
        return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)

    return inter / (area(a) + area(b) - inter)


@dataclass
class Agreement:
    faces: int = 0  # found by dlib
    matched: int = 0  # IoU >= 0.9 with one of the engine's
    missed: int = 0
    extra: int = 0
    ious: list[float] = field(default_factory=list)
    conf_diffs: list[float] = field(default_factory=list)
    cosines: list[float] = field(default_factory=list)

    def add(self, theirs: Found, ours: Found) -> list[tuple[int, int]]:
        """Greedy best-IoU matching; returns (dlib index, engine index) pairs with IoU >= 0.9."""
        pairs = sorted(
            ((iou(t[0], o[0]), i, j) for i, t in enumerate(theirs) for j, o in enumerate(ours)), reverse=True
        )
        used_t: set[int] = set()
        used_o: set[int] = set()
        matched = []
        for value, i, j in pairs:
            if value < 0.9 or i in used_t or j in used_o:
                continue
            used_t.add(i)
            used_o.add(j)
            matched.append((i, j))
            self.ious.append(value)
            self.conf_diffs.append(abs(theirs[i][1] - ours[j][1]))
        self.faces += len(theirs)
        self.matched += len(matched)
        self.missed += len(theirs) - len(matched)
        self.extra += len(ours) - len(matched)
        return matched

    def summary(self) -> dict[str, Any]:
        return {
            "faces": self.faces,
            "matched_iou_0.9": self.matched,
            "missed": self.missed,
            "extra": self.extra,
            "min_iou": round(min(self.ious), 4) if self.ious else None,
            "identical_boxes": sum(1 for v in self.ious if v == 1.0),
            "max_conf_diff": float(f"{max(self.conf_diffs):.3g}") if self.conf_diffs else None,
            "min_cosine": round(min(self.cosines), 7) if self.cosines else None,
        }


class Dlib:
    def __init__(self) -> None:
        import dlib

        files = model_files()
        self.dlib = dlib
        self.cnn = dlib.cnn_face_detection_model_v1(str(files.detector_cnn))
        self.sp = dlib.shape_predictor(str(files.shape_predictor))
        self.rec = dlib.face_recognition_model_v1(str(files.recognizer))

    def detect(self, pixels: np.ndarray, upsample: int) -> Found:
        return [
            ((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
            for d in self.cnn(pixels, upsample)
        ]

    def chips(self, pixels: np.ndarray, found: Found) -> list[np.ndarray]:
        if not found:
            return []
        shapes = self.dlib.full_object_detections()
        for (left, top, right, bottom), _ in found:
            shapes.append(self.sp(pixels, self.dlib.rectangle(left, top, right, bottom)))
        return [np.asarray(c) for c in self.dlib.get_face_chips(pixels, shapes, size=150, padding=0.25)]

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        return np.array([np.asarray(v) for v in self.rec.compute_face_descriptor(chips)], dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> list[float]:
    dots = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return [float(d) for d in dots]


@dataclass
class Clock:
    """Wall and CPU seconds. With one thread, CPU seconds are what the call would take on a
    core of its own: the fair per-core figure when other work shares the cores."""

    wall: float = 0.0
    cpu: float = 0.0

    def __iadd__(self, other: Clock) -> Clock:
        self.wall += other.wall
        self.cpu += other.cpu
        return self


def timed(fn: Any, *args: Any) -> tuple[Any, Clock]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, Clock(time.perf_counter() - start, time.process_time() - cpu)


def speed(args: argparse.Namespace, ref: Dlib, engine: OnnxEngine, fixtures: Path) -> dict[str, Any]:
    rows = []
    chips: list[np.ndarray] = []
    photos = SPEED_PHOTOS[: args.photos]
    for size in args.sizes:
        for upsample in args.upsample:
            agree = Agreement()
            t_dlib, t_engine = Clock(), Clock()
            for name in photos:
                pixels = load_image(fixtures / name, size, enlarge=True).pixels
                theirs, td = timed(ref.detect, pixels, upsample)
                ours, te = timed(engine.detect, pixels, upsample)
                agree.add(theirs, ours)
                t_dlib += td
                t_engine += te
                if size == args.sizes[0] and upsample == args.upsample[0]:
                    chips += ref.chips(pixels, theirs)
                print(
                    f"  {name} {pixels.shape[1]}x{pixels.shape[0]} up{upsample}: "
                    f"dlib {td.wall:.2f} s (cpu {td.cpu:.2f}), engine {te.wall:.3f} s (cpu {te.cpu:.3f})"
                )
            n = len(photos)
            row = {
                "size": size,
                "upsample": upsample,
                "photos": n,
                "dlib_s_per_photo": round(t_dlib.wall / n, 3),
                "engine_s_per_photo": round(t_engine.wall / n, 3),
                "ratio_wall": round(t_dlib.wall / t_engine.wall, 1),
                "dlib_cpu_s_per_photo": round(t_dlib.cpu / n, 3),
                "engine_cpu_s_per_photo": round(t_engine.cpu / n, 3),
                "ratio_cpu": round(t_dlib.cpu / t_engine.cpu, 1),
                **agree.summary(),
            }
            rows.append(row)
            print(
                f"detector {size} px, upsample {upsample}: dlib {row['dlib_s_per_photo']} s/photo "
                f"(cpu {row['dlib_cpu_s_per_photo']}), engine {row['engine_s_per_photo']} s/photo "
                f"(cpu {row['engine_cpu_s_per_photo']}): {row['ratio_wall']}x wall, {row['ratio_cpu']}x cpu; "
                f"boxes {agree.summary()}"
            )
    desc: dict[str, Any] = {}
    if chips:
        chips = chips[: args.faces]
        theirs_v, td = timed(ref.embed, chips)
        ours_v, te = timed(engine.embed, chips)
        cos = cosines(theirs_v, ours_v)
        desc = {
            "faces": len(chips),
            "dlib_ms_per_face": round(1000 * td.wall / len(chips), 1),
            "engine_ms_per_face": round(1000 * te.wall / len(chips), 2),
            "ratio_wall": round(td.wall / te.wall, 1),
            "dlib_cpu_ms_per_face": round(1000 * td.cpu / len(chips), 1),
            "engine_cpu_ms_per_face": round(1000 * te.cpu / len(chips), 2),
            "ratio_cpu": round(td.cpu / te.cpu, 1),
            "min_cosine": round(min(cos), 7),
            "max_abs_diff": float(f"{float(np.abs(theirs_v - ours_v).max()):.3g}"),
        }
        print(f"descriptor: {desc}")
    return {"detector": rows, "descriptor": desc}


_MEMORY_PROBE = """
import sys, time
from pathlib import Path
from photocluster.detect.engine import OnnxEngine
from photocluster.detect.images import load_image
path, size, upsample, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pixels = load_image(Path(path), size, enlarge=True).pixels
engine = OnnxEngine(threads)
start, cpu = time.perf_counter(), time.process_time()
found = engine.detect(pixels, upsample)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the parent's peak.
with open("/proc/self/status") as fh:
    rss = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(pixels.shape[1], pixels.shape[0], len(found), round(seconds, 3), round(cpu, 3), rss)
"""


def memory(fixtures: Path, size: int, upsample: int, threads: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that only runs the engine's detector on one photo."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(fixtures / SPEED_PHOTOS[0]), str(size), str(upsample), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    w, h, faces, seconds, cpu, rss_kb = out
    row = {
        "image": f"{w}x{h}",
        "upsample": upsample,
        "faces": int(faces),
        "engine_s": float(seconds),
        "engine_cpu_s": float(cpu),
        "peak_rss_mb": round(int(rss_kb) / 1024),
    }
    print(f"engine alone, fresh process: {row}")
    return row


def agreement(args: argparse.Namespace, ref: Dlib, engine: OnnxEngine, fixtures: Path) -> dict[str, Any]:
    import csv

    with open(fixtures / "labels.csv", newline="") as fh:
        names = [row["relative_path"] for row in csv.DictReader(fh)]
    jobs: list[tuple[Path, int, int]] = []
    for name in names:
        jobs.append((fixtures / name, 1024, 0))
    small = []
    for name in names:
        from PIL import Image

        with Image.open(fixtures / name) as im:
            if max(im.size) <= 640:
                small.append(name)
    jobs += [(fixtures / name, 640, 1) for name in small]
    holdout = sorted((fixtures.parent / "holdout" / "images").glob("*.jpg"))[: args.holdout]
    jobs += [(p, 150, 1) for p in holdout]
    per_setting: dict[str, Agreement] = {}
    times: dict[str, tuple[Clock, Clock]] = {}
    for i, (path, size, upsample) in enumerate(jobs):
        pixels = load_image(path, size, enlarge=False).pixels
        theirs, td = timed(ref.detect, pixels, upsample)
        ours, te = timed(engine.detect, pixels, upsample)
        key = "holdout up1" if "holdout" in str(path) else f"fixtures <= {size} up{upsample}"
        agree = per_setting.setdefault(key, Agreement())
        matched = agree.add(theirs, ours)
        t = times.setdefault(key, (Clock(), Clock()))
        t[0].__iadd__(td)
        t[1].__iadd__(te)
        chips = ref.chips(pixels, [theirs[a] for a, _ in matched])
        if chips:
            agree.cosines += cosines(ref.embed(chips), engine.embed(chips))
        if len(theirs) != len(ours) or len(matched) != len(theirs):
            print(f"  differs: {path.name} up{upsample}: dlib {theirs} engine {ours}")
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(jobs)}")
    out = {}
    for key, agree in per_setting.items():
        out[key] = {
            **agree.summary(),
            "dlib_s": round(times[key][0].wall, 1),
            "engine_s": round(times[key][1].wall, 1),
            "dlib_cpu_s": round(times[key][0].cpu, 1),
            "engine_cpu_s": round(times[key][1].cpu, 1),
            "ratio_cpu": round(times[key][0].cpu / max(times[key][1].cpu, 1e-9), 1),
        }
        print(f"agreement {key}: {out[key]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=os.environ.get("PHOTOCLUSTER_FIXTURES", "../shared/fixtures"))
    ap.add_argument("--photos", type=int, default=2, help="speed photos (1-3)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 1600])
    ap.add_argument("--upsample", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1, help="engine threads (dlib-bin uses its own)")
    ap.add_argument("--faces", type=int, default=40, help="chips for the descriptor timing")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--agreement", action="store_true", help="compare on every fixture photo too")
    ap.add_argument("--holdout", type=int, default=0, help="holdout photos in the agreement run")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    fixtures = Path(args.fixtures)
    ref = Dlib()
    engine = OnnxEngine(args.threads)
    # Load both models before timing anything.
    warm = np.zeros((100, 100, 3), dtype=np.uint8)
    engine.detect(warm)
    engine.embed([np.zeros((150, 150, 3), dtype=np.uint8)])
    ref.detect(warm, 0)
    report: dict[str, Any] = {"threads": args.threads, "cpus": os.cpu_count()}
    if not args.no_speed:
        report["speed"] = speed(args, ref, engine, fixtures)
        report["memory"] = [memory(fixtures, 1600, 1, args.threads)]
    if args.agreement:
        report["agreement"] = agreement(args, ref, engine, fixtures)
    report["peak_rss_mb_this_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
