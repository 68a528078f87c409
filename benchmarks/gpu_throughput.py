"""The torch engine (dlib's networks on PyTorch) against the onnx engine: photos/s and agreement.

Runs on a machine with a CUDA GPU (``--device cuda``, the default) or, to check agreement
without one, on the CPU (``--device cpu``). Everything it needs comes from one folder
(``DATA``, see ``benchmarks/gpu_check.sh``):

    DATA/holdout/*.jpg    150x150 LFW news photos (../shared/holdout/images), one face each
    DATA/fixtures/*.jpg   a few labelled fixture photos (several faces, various sizes)
    DATA/models/*.dat     dlib's three model files (else face-recognition-models' are used)

Photos: ``--holdout N`` holdout photos; ``--big N`` 12 MP photos (4000x3000 JPEGs made here by
upscaling the fixture photos, cover and centre crop); ``--native N`` fixture photos as they
are. All run at the default settings (``DetectionSettings()``: long side at most 1600 px,
CNN detector, pyramid upsampled once).

Pipeline (both engines): worker threads decode the photos (JPEG draft mode) ahead of the main
thread, which runs detection on groups of ``--group`` photos (torch: pyramids built on the
GPU, canvases of similar sizes batched); worker threads then find the 5 landmarks and cut the
chips (dlib, CPU) while the next group is detected; descriptors run in batches across photos.

Measured, in this order (the JSON is rewritten after each step, so a stopped run keeps what
it had):

1. the canvas (dlib's tiled pyramid) built on the device against numpy's (``mmod``): bit for bit;
2. the onnx engine (onnxruntime, every core) on a sample (``--onnx-holdout``, ``--onnx-native``,
   ``--onnx-big``): photos/s; the torch engine on the same photos: agreement (faces matched
   by IoU >= 0.9, missed, extra, confidence differences, descriptor cosine >= 0.999). The onnx
   engine agrees with dlib itself to ~1e-6 (``benchmarks/engine_vs_dlib.py``), so this is
   agreement with dlib;
3. the torch engine on all photos, each set twice (the first pass includes cuDNN's autotuning
   of each new shape): photos/s, faces, seconds in detection, alignment and descriptors.

    python benchmarks/gpu_throughput.py DATA [--device cuda|cpu] [--holdout 300] [--big 20]
        [--native 8] [--group 16] [--workers N] [--budget 240] [--json OUT]

Prints one JSON object (also written to ``--json``) with the versions, the GPU's name, every
figure and a ``verdict``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box
from photocluster.detect.images import DecodedImage, load_image

Rect = tuple[int, int, int, int]
Found = list[tuple[Rect, float]]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
BIG_SIZE = (4000, 3000)
MIN_IOU, MIN_COSINE = 0.9, 0.999


# ---------------------------------------------------------------------------------------------
# Inputs.


def big_photo(src: Path, dst: Path, mirror: bool) -> Path:
    """``src`` scaled to cover 4000x3000, centre-cropped, saved as a quality-90 JPEG."""
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    scale = max(BIG_SIZE[0] / im.width, BIG_SIZE[1] / im.height)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BILINEAR)
    left, top = (im.width - BIG_SIZE[0]) // 2, (im.height - BIG_SIZE[1]) // 2
    im = im.crop((left, top, left + BIG_SIZE[0], top + BIG_SIZE[1]))
    if mirror:
        im = ImageOps.mirror(im)
    im.save(dst, quality=90)
    return dst


def make_photos(data: Path, out: Path, args: argparse.Namespace, pool: ThreadPoolExecutor) -> dict[str, list[Path]]:
    """The photo sets: holdout (as they are), native fixtures (as they are), big (12 MP, made here)."""
    holdout = sorted((data / "holdout").glob("*.jpg"))[: args.holdout]
    fixtures = sorted(p for p in (data / "fixtures").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not holdout and not fixtures:
        sys.exit(f"no photos in {data}/holdout or {data}/fixtures: see benchmarks/gpu_check.sh")
    big: list[Future[Path]] = []
    for i in range(args.big if fixtures else 0):
        src = fixtures[i % len(fixtures)]
        mirror = (i // len(fixtures)) % 2 == 1  # a second round of the same sources, mirrored
        big.append(pool.submit(big_photo, src, out / f"big{i:03d}_{src.stem}.jpg", mirror))
    return {"holdout": holdout, "native": fixtures[: args.native], "big": [f.result() for f in big]}


# ---------------------------------------------------------------------------------------------
# The pipeline.


@dataclass
class PhotoResult:
    found: Found  # detection-image rectangles (dlib's inclusive ints) and confidences
    descriptors: np.ndarray  # (faces, 128)


@dataclass
class Stages:
    seconds: float = 0.0
    detect: float = 0.0  # main thread in detect_batch (on a GPU: the pyramid and the network)
    embed: float = 0.0
    wait_decode: float = 0.0
    wait_align: float = 0.0
    faces: int = 0


def ordered(pool: ThreadPoolExecutor, func: Callable[[Path], Any], items: Sequence[Path], ahead: int) -> Iterator[Any]:
    """``func`` over ``items`` in the pool, at most ``ahead`` in flight, results in order."""
    queue: deque[Future[Any]] = deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(func, item))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            queue.append(pool.submit(func, nxt))
        yield result


def chips_for(pixels: np.ndarray, found: Found) -> list[np.ndarray]:
    """Aligned 150x150 chips: dlib's 5 landmarks and get_face_chips when dlib imports, else
    (no dlib on this machine) the box itself resized: the networks are compared all the same."""
    boxes = [Box(float(r[0]), float(r[1]), float(r[2] + 1), float(r[3] + 1)) for r, _ in found]
    if HAVE_DLIB:
        from photocluster.detect import faces as fc

        return fc.chips(pixels, boxes, [fc.landmarks(pixels, b) for b in boxes])
    out = []
    for b in boxes:
        crop = Image.fromarray(pixels).crop((int(b.left), int(b.top), int(b.right), int(b.bottom)))
        out.append(np.asarray(crop.resize((150, 150), Image.Resampling.BILINEAR)))
    return out


def run_pipeline(
    engine: Any, photos: Sequence[Path], settings: DetectionSettings, args: argparse.Namespace
) -> tuple[list[PhotoResult], Stages]:
    """Decode, detect, align and embed ``photos`` with ``engine``; per-photo results in order."""
    upsample = settings.upsample or 0
    st = Stages()
    start = time.perf_counter()

    def decode(path: Path) -> DecodedImage:
        return load_image(path, settings.max_size, enlarge=settings.upsample is None)

    found_all: list[Found] = []
    aligned: list[Future[list[np.ndarray]]] = []
    with ThreadPoolExecutor(args.workers) as pool:
        images = ordered(pool, decode, photos, ahead=args.group + 2 * args.workers)
        while True:
            t0 = time.perf_counter()
            group = [im.pixels for _, im in zip(range(args.group), images, strict=False)]
            st.wait_decode += time.perf_counter() - t0
            if not group:
                break
            t0 = time.perf_counter()
            found = engine.detect_batch(group, upsample)
            st.detect += time.perf_counter() - t0
            found_all.extend(found)
            aligned.extend(pool.submit(chips_for, px, f) for px, f in zip(group, found, strict=True))
        t0 = time.perf_counter()
        chips = [c for f in aligned for c in f.result()]
        st.wait_align += time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors = engine.embed(chips)
    st.embed = time.perf_counter() - t0
    st.seconds = time.perf_counter() - start
    st.faces = len(chips)
    results, k = [], 0
    for found in found_all:
        results.append(PhotoResult(found, vectors[k : k + len(found)]))
        k += len(found)
    return results, st


def torch_pipeline(
    engine: Any, photos: Sequence[Path], settings: DetectionSettings, args: argparse.Namespace, errors: list[str]
) -> tuple[list[PhotoResult], Stages]:
    """:func:`run_pipeline` on the torch engine; on a failure (a cuDNN or memory error, say),
    noted in ``errors``, once more with a quarter of the canvas pixels per batch."""
    try:
        return run_pipeline(engine, photos, settings, args)
    except Exception as exc:  # noqa: BLE001 - recorded, then retried smaller
        errors.append(error_text(exc))
        for backend in (engine.detector.backend, engine.embedder.backend):
            backend.max_pixels = max(6_000_000, backend.max_pixels // 4)
            backend.batch = max(16, backend.batch // 4)
        if backend.cuda:
            backend.torch.cuda.empty_cache()
        return run_pipeline(engine, photos, settings, args)


def error_text(exc: BaseException) -> str:
    """The exception and where it was raised, on one line (for the JSON)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:300]} (at {where})"


def rate(photos: int, st: Stages) -> dict[str, Any]:
    return {
        "photos": photos,
        "faces": st.faces,
        "seconds": round(st.seconds, 3),
        "photos_per_s": round(photos / st.seconds, 3) if st.seconds else None,
        "stage_seconds": {
            "detect": round(st.detect, 3),
            "embed": round(st.embed, 3),
            "wait_decode": round(st.wait_decode, 3),
            "wait_align": round(st.wait_align, 3),
        },
    }


# ---------------------------------------------------------------------------------------------
# Agreement.


def iou(a: Rect, b: Rect) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return iw * ih / (area_a + area_b - iw * ih)


def agreement(ref: list[PhotoResult], got: list[PhotoResult]) -> dict[str, Any]:
    """Faces of ``ref`` (onnx) matched greedily by IoU >= 0.9 to ``got`` (torch)."""
    faces = matched = identical = extra = 0
    ious: list[float] = []
    conf: list[float] = []
    cos: list[float] = []
    for r, g in zip(ref, got, strict=True):
        pairs = sorted(
            ((iou(a[0], b[0]), i, j) for i, a in enumerate(r.found) for j, b in enumerate(g.found)), reverse=True
        )
        used_r: set[int] = set()
        used_g: set[int] = set()
        for value, i, j in pairs:
            if value < MIN_IOU or i in used_r or j in used_g:
                continue
            used_r.add(i)
            used_g.add(j)
            ious.append(value)
            identical += r.found[i][0] == g.found[j][0]
            conf.append(abs(r.found[i][1] - g.found[j][1]))
            u, v = r.descriptors[i].astype(np.float64), g.descriptors[j].astype(np.float64)
            cos.append(float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))))
        faces += len(r.found)
        matched += len(used_r)
        extra += len(g.found) - len(used_g)
    missed = faces - matched
    ok = missed == 0 and extra == 0 and (not cos or min(cos) >= MIN_COSINE)
    return {
        "photos": len(ref),
        "faces_onnx": faces,
        "matched_iou_0.9": matched,
        "identical_boxes": identical,
        "missed": missed,
        "extra": extra,
        "min_iou": round(min(ious), 4) if ious else None,
        "max_confidence_diff": float(max(conf)) if conf else None,
        "min_descriptor_cosine": float(min(cos)) if cos else None,
        "ok": ok,
    }


def canvas_check(engine: Any, photo: Path, settings: DetectionSettings) -> dict[str, Any]:
    """The detector's input built by torch on its device against numpy's, and the two score maps."""
    from photocluster.detect.engine.pyramid import build_canvas, planar_rgb, pyramid_up
    from photocluster.detect.engine.torch_pyramid import TorchPyramid

    det = engine.detector
    pixels = load_image(photo, settings.max_size, enlarge=False).pixels
    img = planar_rgb(pixels)
    for _ in range(settings.upsample or 0):
        img = pyramid_up(img)
    t0 = time.perf_counter()
    canvas, rects = build_canvas(img, det.input)
    numpy_s = time.perf_counter() - t0
    pyramid = det.pyramid
    assert isinstance(pyramid, TorchPyramid)
    prepared = pyramid.prepare(planar_rgb(pixels), settings.upsample or 0)
    assert prepared is not None
    theirs = prepared[0].cpu().numpy()
    return {
        "photo": photo.name,
        "detection_size": list(pixels.shape[:2]),
        "canvas": list(canvas.shape[2:]),
        "bit_exact": bool(theirs.shape == canvas.shape and np.array_equal(theirs, canvas)),
        "rects_equal": prepared[1] == rects,
        "max_abs_diff": float(np.abs(theirs - canvas).max()) if theirs.shape == canvas.shape else None,
        "numpy_canvas_seconds": round(numpy_s, 3),
    }


# ---------------------------------------------------------------------------------------------
# The run.


def environment(device: str) -> dict[str, Any]:
    import onnxruntime

    from photocluster.detect.engine.torch_net import import_torch, torch_info

    torch = import_torch()
    info = torch_info()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})",
        "torch": str(torch.__version__),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": bool(torch.cuda.is_available()),
        "device": info.device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "cpus": os.cpu_count(),
        "dlib": None,
        "chips": "dlib 5-point landmarks + get_face_chips" if HAVE_DLIB else "box crops (dlib not importable)",
    }
    if HAVE_DLIB:
        from photocluster.detect.faces import dlib_build

        env["dlib"] = dlib_build().describe()
    return env


def torch_settings(engine: Any) -> dict[str, Any]:
    """How the torch engine runs: device, float32 precision of convolutions and products, cuDNN autotuning."""
    backend = engine.detector.backend
    torch = backend.torch
    out: dict[str, Any] = {"device": backend.device, "max_pixels_per_batch": backend.max_pixels}
    out["embed_batch"] = engine.embedder.backend.batch
    out["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    conv = getattr(torch.backends.cudnn, "conv", None)
    if not backend.cuda:
        out["fp32"] = "CPU: float32 throughout"
    elif conv is not None and hasattr(conv, "fp32_precision"):
        out["conv_fp32_precision"] = conv.fp32_precision
        out["matmul_fp32_precision"] = torch.backends.cuda.matmul.fp32_precision
    else:
        out["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        out["matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    return out


class Report:
    """The JSON object, rewritten to ``path`` after every step."""

    def __init__(self, path: Path | None, budget: float) -> None:
        self.doc: dict[str, Any] = {"benchmark": "gpu_throughput", "steps_done": []}
        self.path = path
        self.start = time.perf_counter()
        self.budget = budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def step(self, name: str, value: Any) -> None:
        self.doc[name] = value
        self.doc["steps_done"].append(name)
        self.doc["elapsed_s"] = round(time.perf_counter() - self.start, 1)
        self.save()
        print(f"[{self.doc['elapsed_s']:7.1f}s] {name}: {json.dumps(value)[:400]}", file=sys.stderr, flush=True)

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.doc, indent=2) + "\n")


def compare_engines(
    report: Report, engines: dict[str, Any], sets: dict[str, list[Path]], args: argparse.Namespace
) -> None:
    """Step 2: the onnx engine's speed on a sample, and the torch engine's agreement with it."""
    settings = DetectionSettings()
    limits = {"holdout": args.onnx_holdout, "native": args.onnx_native, "big": args.onnx_big}
    onnx_rates: dict[str, Any] = {}
    agree: dict[str, Any] = {}
    errors: list[str] = []
    for name, photos in sets.items():
        sample = photos[: limits[name]]
        if not sample:
            continue
        if report.left() < 60:
            agree[name] = "skipped: time budget"
            continue
        ref, st = run_pipeline(engines["onnx"], sample, settings, args)
        onnx_rates[name] = rate(len(sample), st)
        try:
            got, _ = torch_pipeline(engines["torch"], sample, settings, args, errors)
        except Exception as exc:  # noqa: BLE001 - recorded; the other sets still run
            agree[name] = {"ok": False, "error": error_text(exc)}
            continue
        agree[name] = agreement(ref, got)
    report.step("onnx_cpu", onnx_rates)
    report.step("agreement", agree | ({"torch_errors_retried": errors} if errors else {}))


def time_torch(report: Report, engine: Any, sets: dict[str, list[Path]], args: argparse.Namespace) -> None:
    """Step 3: the torch engine on every set, twice (the first pass tunes cuDNN for new shapes)."""
    settings = DetectionSettings()
    out: dict[str, Any] = {}
    errors: list[str] = []
    named = [(name, photos) for name, photos in sets.items() if photos]
    named.append(("all_sets_together", [p for photos in sets.values() for p in photos]))
    for name, photos in named:
        passes = []
        for _ in range(1 if name == "all_sets_together" else 2):
            if report.left() < 20:
                break
            try:
                _, st = torch_pipeline(engine, photos, settings, args, errors)
            except Exception as exc:  # noqa: BLE001 - recorded; the other sets still run
                errors.append(error_text(exc))
                break
            passes.append(rate(len(photos), st))
        out[name] = {"first_pass": passes[0] if passes else None, "second_pass": passes[1] if len(passes) > 1 else None}
        if errors:
            out["errors"] = errors
        report.step("torch_" + args.device, out)
    if args.device.startswith("cuda"):
        torch = engine.detector.backend.torch
        report.step("gpu_memory_peak_mb", round(torch.cuda.max_memory_allocated() / 2**20, 1))


def summary(doc: dict[str, Any], device: str) -> dict[str, Any]:
    """Per photo set: the torch engine's photos/s (second pass) against the onnx engine's (sample)."""
    torch_rates = doc.get("torch_" + device, {})
    out: dict[str, Any] = {}
    for name, onnx in doc.get("onnx_cpu", {}).items():
        passes = torch_rates.get(name) or {}
        best = passes.get("second_pass") or passes.get("first_pass") if isinstance(passes, dict) else None
        if not best or not onnx.get("photos_per_s"):
            continue
        out[name] = {
            "torch_photos_per_s": best["photos_per_s"],
            "onnx_cpu_photos_per_s": onnx["photos_per_s"],
            "ratio": round(best["photos_per_s"] / onnx["photos_per_s"], 1),
        }
    return out


def verdict(doc: dict[str, Any]) -> dict[str, Any]:
    agree = [v for v in doc.get("agreement", {}).values() if isinstance(v, dict)]
    canvases = [v for v in doc.get("canvas_check", []) if isinstance(v, dict)]
    return {
        "agreement_ok": bool(agree) and all(a.get("ok") is True for a in agree),
        "canvas_bit_exact": bool(canvases) and all(c.get("bit_exact") and c.get("rects_equal") for c in canvases),
        "criteria": f"every onnx face matched by IoU >= {MIN_IOU}, no missed or extra face, "
        f"descriptor cosine >= {MIN_COSINE}",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="folder with holdout/, fixtures/ and models/ (see the module docstring)")
    p.add_argument("--device", default="cuda", help="torch device: cuda (default), cuda:N or cpu")
    p.add_argument("--holdout", type=int, default=300)
    p.add_argument("--big", type=int, default=20, help="12 MP photos made from the fixture photos")
    p.add_argument("--native", type=int, default=8, help="fixture photos as they are")
    p.add_argument("--onnx-holdout", type=int, default=40)
    p.add_argument("--onnx-native", type=int, default=6)
    p.add_argument("--onnx-big", type=int, default=2)
    p.add_argument("--group", type=int, default=16, help="photos per detect_batch call")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="decode/align threads")
    p.add_argument("--budget", type=float, default=240.0, help="seconds; later steps are skipped past it")
    p.add_argument("--skip-timing", action="store_true", help="agreement only (step 3 skipped)")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


HAVE_DLIB = False


def main(argv: Sequence[str] | None = None) -> int:
    global HAVE_DLIB
    args = parse_args(argv)
    os.environ["PHOTOCLUSTER_TORCH_DEVICE"] = args.device
    if (args.data / "models").is_dir():
        os.environ.setdefault("PHOTOCLUSTER_MODELS", str((args.data / "models").resolve()))
    try:
        import dlib  # noqa: F401 - only whether it imports

        HAVE_DLIB = True
    except ImportError:
        HAVE_DLIB = False
    report = Report(args.json, args.budget)
    report.step("environment", environment(args.device))
    report.step("settings", {"detection": str(DetectionSettings()), "group": args.group, "workers": args.workers})
    from photocluster.detect.engine import OnnxEngine

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp, ThreadPoolExecutor(args.workers) as pool:
        t0 = time.perf_counter()
        sets = make_photos(args.data, Path(tmp), args, pool)
        report.step(
            "photos", {k: len(v) for k, v in sets.items()} | {"make_seconds": round(time.perf_counter() - t0, 1)}
        )
        engines = {"onnx": OnnxEngine(threads=os.cpu_count() or 1), "torch": OnnxEngine(backend="torch")}
        t0 = time.perf_counter()
        for engine in engines.values():
            _ = engine.detector, engine.embedder
        report.step("models_loaded_s", round(time.perf_counter() - t0, 1))
        checks = [photos[0] for photos in (sets["holdout"], sets["big"] or sets["native"]) if photos]
        report.step("torch_settings", torch_settings(engines["torch"]))
        try:
            report.step("canvas_check", [canvas_check(engines["torch"], p, DetectionSettings()) for p in checks])
        except Exception as exc:  # noqa: BLE001 - recorded; the measurements still run
            report.step("canvas_check", [{"error": error_text(exc)}])
        compare_engines(report, engines, sets, args)
        if not args.skip_timing:
            time_torch(report, engines["torch"], sets, args)
            report.step("summary", summary(report.doc, args.device))
    report.step("verdict", verdict(report.doc))
    print(json.dumps(report.doc, indent=2))
    return 0 if report.doc["verdict"]["agreement_ok"] and report.doc["verdict"]["canvas_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
