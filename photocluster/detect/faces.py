"""Detect, align and embed faces. Every dlib call in photocluster lives here.

dlib objects never leave this module: rectangles and shapes become :class:`Box`
and numpy arrays as soon as dlib returns them. Models load lazily, once per process.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.core.config import ENGINES, DetectionSettings
from photocluster.core.errors import ModelError

# Re-exported (`as`): `photocluster doctor` (cli) lists and checksums the model files through
# this module. Their one home is core.files and detect.models.
from photocluster.core.files import file_sha256 as file_sha256
from photocluster.core.types import Box, Face
from photocluster.detect.images import DecodedImage, load_image
from photocluster.detect.models import model_files as model_files
from photocluster.detect.thumbnail import thumbnail

log = logging.getLogger(__name__)

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Descriptor views move the chip this many pixels up and down (see describe): measured on the
# development half of LFW, 2 and 6 pixels did less (99.43% and 99.37%) than 4 (99.50%).
VIEW_SHIFT = 4


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise ModelError(f"dlib cannot be imported ({exc}): pip install dlib-bin, or build dlib") from None
    return dlib


@dataclass(frozen=True)
class DlibBuild:
    version: str
    cuda: bool
    cuda_devices: int
    avx: bool
    neon: bool
    blas: bool
    lapack: bool

    def describe(self) -> str:
        flags = []
        flags.append(f"CUDA ({self.cuda_devices} device(s))" if self.cuda else "CPU")
        flags.append("AVX" if self.avx else "no AVX")
        if self.neon:
            flags.append("NEON")
        flags.append("BLAS" if self.blas else "no BLAS")
        return f"dlib {self.version} ({', '.join(flags)})"


@functools.cache
def dlib_build() -> DlibBuild:
    """Which dlib this process runs on: dlib-bin's CPU wheel or a source build."""
    dlib = _dlib()
    cuda = bool(getattr(dlib, "DLIB_USE_CUDA", False))
    devices = 0
    if cuda:
        try:
            devices = int(dlib.cuda.get_num_devices())
        except Exception:  # noqa: BLE001 - a CUDA build without a usable driver
            devices = 0
    return DlibBuild(
        version=str(getattr(dlib, "__version__", "unknown")),
        cuda=cuda,
        cuda_devices=devices,
        avx=bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        neon=bool(getattr(dlib, "USE_NEON_INSTRUCTIONS", False)),
        blas=bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        lapack=bool(getattr(dlib, "DLIB_USE_LAPACK", False)),
    )


class _Models:
    """The dlib models, each loaded on first use."""

    @functools.cached_property
    def cnn(self) -> Any:
        log.info("loading dlib's CNN face detector (%s)", model_files().detector_cnn)
        return _dlib().cnn_face_detection_model_v1(str(model_files().detector_cnn))

    @functools.cached_property
    def hog(self) -> Any:
        return _dlib().get_frontal_face_detector()

    @functools.cached_property
    def shape_predictor(self) -> Any:
        log.info("loading dlib's landmark model (%s)", model_files().shape_predictor)
        return _dlib().shape_predictor(str(model_files().shape_predictor))

    @functools.cached_property
    def recognizer(self) -> Any:
        log.info("loading dlib's face descriptor model (%s)", model_files().recognizer)
        return _dlib().face_recognition_model_v1(str(model_files().recognizer))

    @functools.cached_property
    def onnx(self) -> Any:
        from photocluster.detect.engine import OnnxEngine

        log.info("loading dlib's networks on onnxruntime, %d thread(s)", _threads)
        return OnnxEngine(
            threads=_threads, detector_path=model_files().detector_cnn, recognizer_path=model_files().recognizer
        )

    @functools.cached_property
    def torch(self) -> Any:
        from photocluster.detect.engine import OnnxEngine

        log.info("loading dlib's networks on PyTorch")
        return OnnxEngine(
            threads=_threads,
            detector_path=model_files().detector_cnn,
            recognizer_path=model_files().recognizer,
            backend="torch",
        )

    def network(self, engine: str) -> Any:
        """The engine running dlib's networks outside dlib: ``onnx`` or ``torch``."""
        return self.torch if engine == "torch" else self.onnx


# Engines that run dlib's two networks themselves (the landmarks and chips stay dlib's).
NETWORK_ENGINES = ("onnx", "torch")


_models = _Models()
# onnxruntime threads per process: 1 when scan runs one worker process per core.
_threads = 1


def set_threads(n: int) -> None:
    """Threads each model may use in this process (set before the first detection)."""
    global _threads
    _threads = max(1, n)


@functools.cache
def onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def torch_installed() -> bool:
    from photocluster.detect.engine.torch_net import torch_installed

    return torch_installed()


def torch_cuda_visible() -> bool:
    from photocluster.detect.engine.torch_net import cuda_visible

    return cuda_visible()


@functools.cache
def resolve_engine(name: str = "auto") -> str:
    """Which engine runs the CNN detector and the descriptor: ``onnx`` (dlib's weights on
    onnxruntime, same results, many times faster on a CPU), ``torch`` (the same weights on
    PyTorch, for a GPU) or ``dlib`` itself. ``auto`` prefers dlib when it was built with CUDA
    and sees a GPU, then torch when it is installed and sees a CUDA GPU, else onnx when
    installed."""
    if name == "dlib":
        return "dlib"
    if name == "onnx":
        if not onnx_available():
            raise ModelError("--engine onnx needs onnxruntime and onnx: pip install onnxruntime onnx")
        return "onnx"
    if name == "torch":
        if not torch_installed():
            raise ModelError("--engine torch needs PyTorch, which is not installed: pip install 'photocluster[gpu]'")
        return "torch"
    if name != "auto":
        raise ModelError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    build = dlib_build()
    if build.cuda and build.cuda_devices > 0:
        log.info("engine auto: dlib, built with CUDA and seeing %d GPU(s)", build.cuda_devices)
        return "dlib"
    if torch_cuda_visible():
        log.info("engine auto: torch, which sees a CUDA GPU")
        return "torch"
    chosen = "onnx" if onnx_available() else "dlib"
    log.info("engine auto: %s (no GPU in use; onnxruntime %s)", chosen, "installed" if chosen == "onnx" else "missing")
    return chosen


# The smallest side (after upsampling) worth running a detector on: both detectors need
# faces of ~40-80 px, and dlib's CNN fails on inputs under ~29 px.
_MIN_DETECTABLE = 40


@dataclass(frozen=True)
class Detection:
    """A face box in detection-image pixels, before alignment."""

    box: Box
    confidence: float


def detect(pixels: np.ndarray, detector: str = "cnn", upsample: int = 0, engine: str = "dlib") -> list[Detection]:
    """Face boxes in ``pixels`` (h, w, 3 uint8 RGB), in the same pixel coordinates.

    ``cnn`` is dlib's MMOD detector: accurate at any pose, about 10 s per megapixel on
    one CPU core with dlib-bin (far less with ``engine="onnx"``); ``confidence`` is its
    detection score (> 0). ``hog`` is ~20x faster than dlib's CNN but misses faces turned
    away or under ~80 px. Each ``upsample`` doubles the image side before detection
    (4x the work).
    """
    found: list[tuple[tuple[int, int, int, int], float]]
    if min(pixels.shape[:2]) * 2**upsample < _MIN_DETECTABLE:
        # No face fits; and dlib-bin's CNN raises on such inputs, then crashes the process later.
        return []
    if detector == "cnn" and engine in NETWORK_ENGINES:
        found = _models.network(engine).detect(pixels, upsample)
    elif detector == "cnn":
        found = [
            ((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
            for d in _models.cnn(pixels, upsample)
        ]
    else:
        rects, scores, _ = _models.hog.run(pixels, upsample, 0.0)
        found = [((r.left(), r.top(), r.right(), r.bottom()), float(sc)) for r, sc in zip(rects, scores, strict=True)]
    out = []
    for (left, top, right, bottom), score in found:
        if right <= left or bottom <= top:
            continue
        # dlib rectangles are inclusive; ours are half-open, as in numpy slicing.
        out.append(Detection(Box(float(left), float(top), float(right + 1), float(bottom + 1)), score))
    out.sort(key=lambda d: (d.box.top, d.box.left))
    return out


def _rect(box: Box) -> Any:
    return _dlib().rectangle(round(box.left), round(box.top), round(box.right) - 1, round(box.bottom) - 1)


def landmarks(pixels: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 5 points (eye corners and nose) for the face in ``box``: (5, 2) float32."""
    shape = _models.shape_predictor(pixels, _rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _shape(box: Box, points: np.ndarray) -> Any:
    dlib = _dlib()
    return dlib.full_object_detection(_rect(box), [dlib.point(round(x), round(y)) for x, y in points])


def chips(pixels: np.ndarray, boxes: list[Box], points: list[np.ndarray], margin: int = 0) -> list[np.ndarray]:
    """Aligned 150x150 face chips, rotated upright and scaled as the ResNet expects; with
    ``margin``, ``margin`` more pixels on each side at the same scale (for :func:`describe`)."""
    if not boxes:
        return []
    dlib = _dlib()
    shapes = dlib.full_object_detections()
    for box, pts in zip(boxes, points, strict=True):
        shapes.append(_shape(box, pts))
    size = CHIP_SIZE + 2 * margin
    # dlib places the landmark template at (padding + x) / (2 padding + 1) * size: this padding
    # keeps the scale and moves the chip's origin by ``margin`` pixels.
    padding = CHIP_PADDING + margin * (1 + 2 * CHIP_PADDING) / CHIP_SIZE
    return [np.asarray(c) for c in dlib.get_face_chips(pixels, shapes, size=size, padding=padding)]


def describe(pixels: np.ndarray, boxes: list[Box], points: list[np.ndarray], engine: str) -> np.ndarray:
    """The descriptor of each face: the mean of the ResNet's descriptors of several views of its
    aligned chip, the chip and its mirror image, each also moved up and down by
    ``VIEW_SHIFT`` pixels (test-time augmentation). (n, 128) float32.

    On the development half of LFW (README, "How accurate is it") verification went from
    99.13% (one chip) to 99.20% (with its mirror image) and 99.50% (these six views), and the
    default clustering's pairwise F from 0.949 to 0.961 (with its thresholds tuned again). Six
    ResNet passes cost 0.035 CPU-second per face against 0.0075 for one: under 2% of a
    12-megapixel photo's scan (benchmarks/descriptor_views.py), about a third of a 150 px photo's.
    The onnx engine runs the six views in one graph whose first layers run once per chip and
    mirror image, and whose 32-channel blocks run once too except by each view's edges
    (:meth:`OnnxEngine.embed_views`): 23% less CPU, the same descriptors to 1e-7
    (benchmarks/views_cost.py).
    """
    n = len(boxes)
    if n == 0:
        return np.zeros((0, 128), dtype=np.float32)
    m = VIEW_SHIFT
    big_chips = chips(pixels, boxes, points, margin=m)
    per_view: np.ndarray
    if engine in NETWORK_ENGINES:
        # onnx: one graph cuts the views and runs the ResNet's first layers once per chip and mirror
        # (its first blocks too, but for each view's edge rows)
        per_view = _models.network(engine).embed_views(big_chips, m)
    else:
        from photocluster.detect.engine.resnet import view_crops

        per_view = embed(view_crops(big_chips, m), engine=engine).reshape(n, 6, 128)
    mean: np.ndarray = per_view.mean(axis=1, dtype=np.float32)
    return mean


def embed(face_chips: list[np.ndarray], num_jitters: int = 0, engine: str = "dlib") -> np.ndarray:
    """128-d descriptors of aligned chips, batched: (n, 128) float32. One pass per chip:
    :func:`describe` gives the descriptors photocluster stores."""
    if not face_chips:
        return np.zeros((0, 128), dtype=np.float32)
    return _embed(face_chips, num_jitters, engine)


def _embed(face_chips: list[np.ndarray], num_jitters: int, engine: str) -> np.ndarray:
    if engine in NETWORK_ENGINES and num_jitters == 0:
        return np.asarray(_models.network(engine).embed(face_chips), dtype=np.float32).reshape(len(face_chips), 128)
    vectors = _models.recognizer.compute_face_descriptor(face_chips, num_jitters)
    return np.array([np.asarray(v) for v in vectors], dtype=np.float32).reshape(len(face_chips), 128)


def analyze_pixels(image: DecodedImage, settings: DetectionSettings) -> list[Face]:
    """All faces in a decoded image, with boxes and landmarks in displayed-photo pixels."""
    upsample = 0 if settings.upsample is None else settings.upsample
    engine = resolve_engine(settings.engine)
    return _faces(image, detect(image.pixels, settings.detector, upsample, engine), engine)


def _faces(image: DecodedImage, detections: list[Detection], engine: str) -> list[Face]:
    """Landmarks and descriptors of ``detections`` (in ``image``'s detection pixels), as faces in
    displayed-photo pixels."""
    points = [landmarks(image.pixels, d.box) for d in detections]
    vectors = describe(image.pixels, [d.box for d in detections], points, engine)
    inv = 1.0 / image.scale
    return [
        Face(box=d.box.scaled(inv), confidence=d.confidence, landmarks=p * inv, embedding=v)
        for d, p, v in zip(detections, points, vectors, strict=True)
    ]


def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
    """Align and embed a face at a box given, not detected: ``box`` is in displayed-photo
    pixels. For images where the detector found nothing (``photocluster eval``'s fallback).

    The landmarks are dlib's shape predictor run inside ``box``, as for a detection, so the
    box should frame the face much as the detector would. ``confidence`` is 0.0: not detected.
    """
    det_box = box.scaled(image.scale)
    points = landmarks(image.pixels, det_box)
    vector = describe(image.pixels, [det_box], [points], resolve_engine(engine))[0]
    return Face(box=box, confidence=0.0, landmarks=points / image.scale, embedding=vector)


@dataclass(frozen=True)
class Analysis:
    """What the detection stage learned about one file: its faces and, for each, its
    thumbnail (a JPEG, see :mod:`photocluster.detect.thumbnail`), in the same order."""

    width: int
    height: int
    taken_at: str | None
    faces: list[Face]
    thumbnails: list[bytes]
    seconds: float

    def __post_init__(self) -> None:
        if len(self.thumbnails) != len(self.faces):
            raise ValueError(
                f"Analysis needs one thumbnail per face: expected {len(self.faces)}, got {len(self.thumbnails)}"
            )


def analyze_file(path: Path, settings: DetectionSettings, data: bytes | None = None) -> Analysis:
    """Decode ``path`` (or its bytes ``data``, read elsewhere) and find its faces. Raises
    ImageError for a file that is not a usable photo.

    Each face's thumbnail is cut here, from the image already decoded (0.5-3 ms a face, under
    1% of the analysis: benchmarks/scan_thumbnails.py), so that neither the export nor the
    review app decodes a photo again to show its faces."""
    start = time.perf_counter()
    image = load_image(path, settings.max_size, enlarge=settings.upsample is None, data=data)
    faces = analyze_pixels(image, settings)
    thumbs = [thumbnail(image, f.box) for f in faces]
    return Analysis(image.width, image.height, image.taken_at, faces, thumbs, time.perf_counter() - start)


def warm_up(settings: DetectionSettings) -> None:
    """Load the models this process will need (so worker start-up fails early and clearly)."""
    model_files()
    engine = resolve_engine(settings.engine)
    if engine in NETWORK_ENGINES:
        _ = _models.network(engine).detector if settings.detector == "cnn" else _models.hog
        _models.network(engine).embedder.views_session(VIEW_SHIFT)  # what describe runs
    else:
        _ = _models.cnn if settings.detector == "cnn" else _models.hog
        _ = _models.recognizer
    _ = _models.shape_predictor


def face_chip(
    pixels: np.ndarray, points: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> np.ndarray:
    """One aligned face chip (size, size, 3) uint8, cut from ``pixels`` as :func:`chips` cuts
    them for the ResNet: eyes level, scaled by the 5 landmarks ``points`` (in ``pixels`` coordinates)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    left, top = np.floor(pts.min(axis=0))
    right, bottom = np.ceil(pts.max(axis=0)) + 1
    shape = _shape(Box(float(left), float(top), float(right), float(bottom)), pts)
    return np.asarray(_dlib().get_face_chip(np.ascontiguousarray(pixels), shape, size=size, padding=padding))


@dataclass(frozen=True)
class CostProbe:
    """Seconds to analyse one synthetic photo of ``width`` x ``height`` on this machine."""

    width: int
    height: int
    engine: str
    seconds: float
    estimated_default_seconds: float


def measure_cost(settings: DetectionSettings, width: int = 1600, height: int = 1200) -> CostProbe:
    """Time the detection stage on a synthetic photo (noise: the CNN's cost does not depend
    on content) and scale it to a photo at ``settings.max_size`` by pixel count."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = DecodedImage(pixels=pixels, width=width, height=height, scale=1.0, taken_at=None)
    warm_up(settings)
    analyze_pixels(image, settings)  # first call builds sessions and caches
    start = time.perf_counter()
    analyze_pixels(image, settings)
    seconds = time.perf_counter() - start
    default_pixels = settings.max_size * settings.max_size * 0.75
    return CostProbe(
        width, height, resolve_engine(settings.engine), seconds, seconds * default_pixels / (width * height)
    )


def second_look_image(path: Path, settings: DetectionSettings) -> DecodedImage:
    """The photo decoded for :func:`find_in_region` (once for all the regions of a photo)."""
    return load_image(path, settings.max_size, enlarge=settings.upsample is None)


def find_in_region(
    path: Path, region: Box, settings: DetectionSettings, margin: float = 0.5, image: DecodedImage | None = None
) -> Face | None:
    """A second look where a person tagged a face the scan did not find: the tagged region
    (``region``, displayed pixels) and ``margin`` of its size around it, detected one
    upsampling step above ``settings`` (small and blurred faces are what the first pass
    misses). The detection that overlaps the region most, or None. ``image``: the photo as
    :func:`second_look_image` decodes it, when the caller has it already."""
    image = second_look_image(path, settings) if image is None else image
    det = region.scaled(image.scale)
    h, w = image.pixels.shape[:2]
    left, top = max(0, int(det.left - margin * det.width)), max(0, int(det.top - margin * det.height))
    right, bottom = min(w, int(det.right + margin * det.width) + 1), min(h, int(det.bottom + margin * det.height) + 1)
    if right - left < 2 or bottom - top < 2:
        return None
    crop = np.ascontiguousarray(image.pixels[top:bottom, left:right])
    engine = resolve_engine(settings.engine)
    found = detect(crop, settings.detector, (settings.upsample or 0) + 1, engine)
    if not found:
        return None
    shifted = [
        Detection(Box(d.box.left + left, d.box.top + top, d.box.right + left, d.box.bottom + top), d.confidence)
        for d in found
    ]
    best = max(shifted, key=lambda d: d.box.iou(det))
    if best.box.iou(det) <= 0:
        return None
    return _faces(image, [best], engine)[0]
