"""photocluster.detect.engine: dlib's serialisation format, dlib's resizes, and the ONNX models against dlib.

The format and resize tests are exact and quick. The model tests run dlib's own detector on a
few photos of at most 500 px (seconds each on CPU) and compare: same faces, IoU >= 0.9
(in practice identical rectangles), confidences within 1e-4 (in practice ~1e-6), descriptors
with cosine >= 0.999 (in practice > 0.99999).
"""

from __future__ import annotations

import ast
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photocluster.core.errors import ModelError
from photocluster.detect import models
from photocluster.detect.engine import OnnxEngine
from photocluster.detect.engine.dlib_format import FormatError, Reader, load_network
from photocluster.detect.engine.mmod import SPEC as MMOD_SPEC
from photocluster.detect.engine.pyramid import build_canvas, pyramid_up, resize_float, resize_rgb, tiled_pyramid
from photocluster.detect.images import load_image

# ---------------------------------------------------------------------------------------------
# dlib's encodings, written out here from dlib/serialize.h and dlib/float_details.h.


def pack_int(value: int) -> bytes:
    """ser_helper::pack_int: control byte (size | 0x80 if negative), then little-endian bytes."""
    neg = value < 0
    value = abs(value)
    body = bytearray()
    while True:
        body.append(value & 0xFF)
        value >>= 8
        if value == 0:
            break
    return bytes([len(body) | (0x80 if neg else 0)]) + bytes(body)


def pack_float(value: float, digits: int = 24) -> bytes:
    """float_details(value) for a float (24 digits) or a double (53), then both ints."""
    if math.isinf(value):
        return pack_int(0) + pack_int(32000 if value > 0 else 32001)
    if math.isnan(value):
        return pack_int(0) + pack_int(32002)
    frac, exp = math.frexp(value)
    mantissa = int(frac * (1 << digits))
    exponent = exp - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return pack_int(mantissa) + pack_int(exponent)


def pack_str(text: str) -> bytes:
    return pack_int(len(text)) + text.encode()


def pack_tensor(arr: np.ndarray) -> bytes:
    shape = (1,) * (4 - arr.ndim) + arr.shape
    return pack_int(2) + b"".join(pack_int(d) for d in shape) + arr.astype("<f4").tobytes()


def test_integers_are_read_as_dlib_writes_them() -> None:
    for value in (0, 1, 2, 80, 255, 256, 65535, 1 << 40, -1, -5, -300, -(1 << 40)):
        r = Reader(pack_int(value))
        assert r.int_() == value
        assert r.pos == len(pack_int(value))
    assert pack_int(0) == b"\x01\x00" and pack_int(-5) == b"\x81\x05"  # dlib's bytes for these
    assert Reader(b"\x01\x50").uint() == 80
    with pytest.raises(FormatError):
        Reader(b"\x00").int_()
    with pytest.raises(FormatError):
        Reader(b"\x03\x01\x02\x03").int_(bits=16)  # three bytes never hold an int16
    with pytest.raises(FormatError):
        Reader(b"\x02\x01").int_()  # truncated


def test_floats_are_mantissa_exponent_pairs() -> None:
    # Bytes as found in mmod_human_face_detector.dat: 1.0 and 0.5.
    assert Reader(b"\x01\x10\x81\x04").float_() == 1.0
    assert Reader(b"\x01\x10\x81\x05").float_() == 0.5
    rng = np.random.default_rng(7)
    values = [0.0, -0.0, 122.782, 1e-30, -3.5e12, 0.1, *rng.normal(size=50).tolist()]
    for v in values:
        assert Reader(pack_float(v, 53)).float_() == v  # doubles: exact
        f32 = float(np.float32(v))
        assert Reader(pack_float(f32, 24)).float_() == f32  # floats: exact
    assert Reader(pack_float(math.inf)).float_() == math.inf
    assert Reader(pack_float(-math.inf)).float_() == -math.inf
    assert math.isnan(Reader(pack_float(math.nan)).float_())
    with pytest.raises(FormatError):
        Reader(b"1.5 ").float_()  # dlib's pre-2013 text format


def test_strings_bools_and_tensors() -> None:
    arr = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) / 7
    data = pack_str("con_4") + b"10" + pack_tensor(arr) + pack_int(1) + b"".join(pack_int(d) for d in (16, 3, 5, 5))
    r = Reader(data)
    assert r.string() == "con_4"
    assert r.bool_() is True and r.bool_() is False
    out = r.tensor()
    assert out.dtype == np.float32 and out.shape == (2, 3, 4, 5)
    assert np.array_equal(out, arr)  # raw little-endian IEEE floats, bit for bit
    assert r.alias_tensor() == (16, 3, 5, 5)
    assert r.pos == len(data)
    with pytest.raises(FormatError):
        Reader(b"2").bool_()
    with pytest.raises(FormatError):
        Reader(pack_int(1) + pack_int(1) * 4).tensor()  # tensor version 1 does not exist
    with pytest.raises(FormatError):
        Reader(pack_str("relu_")).expect_name("con_4", "con_5")
    assert struct.unpack("<f", arr.astype("<f4").tobytes()[4:8])[0] == pytest.approx(1 / 7)


EMPTY_TENSOR = pack_int(2) + pack_int(0) * 4


def pack_alias(*shape: int) -> bytes:
    dims = (*shape, *(1,) * (4 - len(shape)))
    return pack_int(1) + b"".join(pack_int(d) for d in dims)


def pack_mini_net(con_w: np.ndarray, con_b: np.ndarray, bn: dict[str, np.ndarray], fc_w: np.ndarray) -> bytes:
    """loss_metric<fc_no_bias<relu<bn_con<con<..., input_rgb_image_sized<4>>>>>>, as dlib writes it."""
    k = con_w.shape[0]
    con = (
        pack_str("con_4")
        + pack_tensor(np.concatenate([con_w.ravel(), con_b]))
        + b"".join(pack_int(v) for v in (k, 3, 3, 1, 1, 1, 1))
        + pack_alias(*con_w.shape)
        + pack_alias(1, k)
        + pack_float(1.0) * 3
        + pack_float(0.0)
    )
    bn_con = (
        pack_str("bn_con2")
        + pack_tensor(np.concatenate([bn["gamma"], bn["beta"]]))
        + pack_alias(1, k)
        + pack_alias(1, k)
        + EMPTY_TENSOR * 2  # batch means and invstds: not used at inference
        + pack_tensor(bn["mean"].reshape(1, k, 1, 1))
        + pack_tensor(bn["var"].reshape(1, k, 1, 1))
        + pack_int(1000)
        + pack_int(1000)
        + pack_float(1.0) * 4
        + pack_float(1e-5, 53)
    )
    n_in, n_out = fc_w.shape
    fc = (
        pack_str("fc_2")
        + pack_int(n_out)
        + pack_int(n_in)
        + pack_tensor(fc_w.ravel())
        + pack_alias(n_in, n_out)
        + pack_alias(1, n_out)
        + pack_int(1)  # FC_NO_BIAS
        + pack_float(1.0) * 4
    )
    details = [fc, pack_str("relu_"), bn_con, con]  # loss side first
    out = pack_int(1) + pack_str("loss_metric_2") + pack_float(0.04) + pack_float(0.6)
    out += pack_int(2) * 3 + pack_int(3)  # add_layer versions; the innermost wraps the input
    out += pack_str("input_rgb_image_sized") + pack_float(122.782) + pack_float(117.001) + pack_float(104.298)
    out += pack_int(4) + pack_int(4)
    for i in reversed(range(4)):
        out += details[i] + b"100" + EMPTY_TENSOR * 2  # setup done, gradient flags, x_grad, output
        out += EMPTY_TENSOR + (pack_int(1) if i == 3 else b"")  # params_grad / grad_final (+ factor)
    return out


MINI_SPEC = [("fc", 3, False), ("relu",), ("affine",), ("con", 5, 3, 3, 1)]


def test_a_hand_written_network_parses_and_runs_like_numpy() -> None:
    from photocluster.detect.engine.dlib_format import Affine, Conv, Fc, SizedInput, read_network
    from photocluster.detect.engine.onnx_graph import build_model, make_session

    rng = np.random.default_rng(3)
    con_w = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)
    con_b = rng.normal(size=5).astype(np.float32)
    bn = {
        "gamma": rng.normal(size=5).astype(np.float32),
        "beta": rng.normal(size=5).astype(np.float32),
        "mean": rng.normal(size=5).astype(np.float32),
        "var": rng.uniform(0.5, 2, size=5).astype(np.float32),
    }
    fc_w = rng.normal(size=(5 * 4 * 4, 3)).astype(np.float32)
    net = read_network(pack_mini_net(con_w, con_b, bn, fc_w), "metric", MINI_SPEC, "sized")
    assert isinstance(net.input, SizedInput) and (net.input.nr, net.input.nc) == (4, 4)
    assert net.input.mean_rgb == (float(np.float32(122.782)), float(np.float32(117.001)), float(np.float32(104.298)))
    conv, affine, _, fc = net.layers
    assert isinstance(conv, Conv) and np.array_equal(conv.weight, con_w) and np.array_equal(conv.bias, con_b)
    assert conv.stride == (1, 1) and conv.padding == (1, 1)
    assert isinstance(affine, Affine) and affine.conv_mode
    # dlib's affine_ from bn_: gamma / sqrt(var + eps) and beta - gamma' * mean, in float32.
    g = bn["gamma"] / np.sqrt(bn["var"] + np.float32(1e-5))
    assert np.array_equal(affine.gamma.ravel(), g)
    assert np.array_equal(affine.beta.ravel(), bn["beta"] - g * bn["mean"])
    assert isinstance(fc, Fc) and fc.bias is None and np.array_equal(fc.weight, fc_w)

    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv_out = np.zeros((2, 5, 4, 4), dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            conv_out += np.einsum("nchw,oc->nohw", padded[:, :, dy : dy + 4, dx : dx + 4], con_w[:, :, dy, dx])
    conv_out += con_b[None, :, None, None]
    hidden = np.maximum(conv_out * g[None, :, None, None] + (bn["beta"] - g * bn["mean"])[None, :, None, None], 0)
    expected = hidden.reshape(2, -1) @ fc_w
    session = make_session(build_model(net.layers, 3, 4, 4, "mini"), threads=1)
    got = session.run(["y"], {"x": x})[0]
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4)

    with pytest.raises(FormatError, match="convolution is"):
        read_network(pack_mini_net(con_w, con_b, bn, fc_w), "metric", [*MINI_SPEC[:3], ("con", 5, 5, 5, 1)], "sized")
    with pytest.raises(FormatError):
        read_network(pack_mini_net(con_w, con_b, bn, fc_w)[:-3], "metric", MINI_SPEC, "sized")


def test_unparseable_model_file_is_a_one_line_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_bytes(pack_int(1) + pack_str("loss_mmod_") + b"\x00garbage")
    with pytest.raises(ModelError) as info:
        load_network(bad, "mmod", MMOD_SPEC, "pyramid")
    assert "cannot parse dlib model file" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError):
        OnnxEngine(detector_path=bad).detect(np.zeros((50, 50, 3), dtype=np.uint8))
    with pytest.raises(ModelError, match="cannot read model file"):
        load_network(tmp_path / "missing.dat", "mmod", MMOD_SPEC, "pyramid")


def test_engine_import_is_lazy() -> None:
    engine = OnnxEngine(threads=2)
    assert engine._detector is None and engine._embedder is None


# ---------------------------------------------------------------------------------------------
# The engine's modules: every import counted, those inside functions and TYPE_CHECKING too.

DETECT = Path(__file__).resolve().parents[2] / "photocluster" / "detect"


def _imports_from(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from module import name`` in the file, wherever it sits;
    (module, "") for ``import module``."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_engine_modules_import_each_other_without_a_cycle() -> None:
    package = "photocluster.detect.engine"
    graph = {
        f"{package}.{path.stem}": {
            module for module, _ in _imports_from(path) if module.startswith(f"{package}.") and module != package
        }
        for path in (DETECT / "engine").glob("*.py")
        if path.stem != "__init__"
    }
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        assert module not in stack, f"import cycle: {' -> '.join([*stack[stack.index(module) :], module])}"
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*stack, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    # The detector asks its backend for the pyramid rather than which backend it is.
    assert 'name == "torch"' not in (DETECT / "engine" / "mmod.py").read_text(encoding="utf-8")


def test_no_private_name_is_imported_across_detect_modules() -> None:
    private = [
        f"{path.relative_to(DETECT)}: {module}.{name}"
        for path in sorted(DETECT.rglob("*.py"))
        for module, name in _imports_from(path)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


# ---------------------------------------------------------------------------------------------
# Finding the model files: face_recognition_models is located, never imported.

MODEL_NAMES = {
    "mmod_human_face_detector",
    "shape_predictor_5_face_landmarks",
    "dlib_face_recognition_resnet_model_v1",
}

# Run in a fresh interpreter where `import pkg_resources` fails, as in a Python 3.12+ venv
# with current setuptools: there face_recognition_models cannot be imported at all.
_WITHOUT_PKG_RESOURCES = """
import json, sys
sys.modules["pkg_resources"] = None
from photocluster.detect.models import model_files
files = {name: str(path) for name, path in model_files().all().items()}
imported = "face_recognition_models" in sys.modules
try:
    import face_recognition_models
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({"files": files, "imported": imported, "blocked": blocked}))
"""


def test_model_files_are_found_where_pkg_resources_is_gone() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PKG_RESOURCES], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["blocked"], "the package imported although pkg_resources was blocked: the test proves nothing"
    assert not got["imported"], "the lookup imported face_recognition_models"
    assert set(got["files"]) == MODEL_NAMES
    for name, path in got["files"].items():
        assert Path(path).name == f"{name}.dat" and Path(path).parent.name == "models"
        assert Path(path).is_file() and Path(path).stat().st_size > 10_000


def test_model_files_missing_package_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "PACKAGE", "photocluster_no_such_models_package")
    models.model_files.cache_clear()
    try:
        with pytest.raises(ModelError, match="face-recognition-models package is not installed: pip install"):
            models.model_files()
    finally:
        models.model_files.cache_clear()


def test_model_files_missing_file_is_a_clear_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "photocluster_half_models"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (package / "models" / "mmod_human_face_detector.dat").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(models, "PACKAGE", package.name)
    models.model_files.cache_clear()
    try:
        with pytest.raises(ModelError, match=r"shape_predictor_5_face_landmarks missing at .*: reinstall"):
            models.model_files()
    finally:
        models.model_files.cache_clear()


# ---------------------------------------------------------------------------------------------
# dlib's image operations: the detector's input is built bit for bit as dlib builds it.


@pytest.mark.parametrize(
    ("h", "w", "h2", "w2"), [(100, 60, 83, 50), (37, 41, 30, 34), (7, 9, 5, 7), (120, 80, 241, 162)]
)
def test_resizes_match_dlib_bit_for_bit(h: int, w: int, h2: int, w2: int) -> None:
    import dlib

    rng = np.random.default_rng(h * w)
    grey = (rng.random((h, w), dtype=np.float32) * 2 - 1).astype(np.float32)
    out = np.zeros((1, h2, w2), dtype=np.float32)
    resize_float(grey[None], out)
    assert np.array_equal(out[0], np.asarray(dlib.resize_image(grey, h2, w2)))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ours = resize_rgb(rgb.transpose(2, 0, 1), h2, w2).transpose(1, 2, 0)
    assert np.array_equal(ours, np.asarray(dlib.resize_image(rgb, h2, w2)))


def test_pyramid_up_size_and_tiled_layout() -> None:
    # pyramid_up: the rectangle (0, 0, w-1, h-1) mapped by (p + (1.25, 0.75)) * 2 and rounded.
    # (2.5, 1.5) to (120.5, 199.5), rounded half away from zero: (3, 2) to (121, 200).
    assert pyramid_up(np.zeros((3, 100, 60), dtype=np.uint8)).shape == (3, 201, 122)
    rects, rows, cols = tiled_pyramid(375, 500, 10, 11)
    assert cols == 522 and rects[0] == (11, 11, 510, 385)
    sizes = [(r[2] - r[0] + 1, r[3] - r[1] + 1) for r in rects]
    assert sizes[1] == (416, 312) and all(h >= 5 for _, h in sizes)
    for a in rects:  # levels never overlap and stay inside the canvas
        assert 0 <= a[0] <= a[2] < cols and 0 <= a[1] <= a[3] < rows
        for b in rects:
            if a != b:
                assert max(a[0], b[0]) > min(a[2], b[2]) or max(a[1], b[1]) > min(a[3], b[3])


# ---------------------------------------------------------------------------------------------
# The models against dlib.

DETECT_CASES = [
    ("dlib-faces/2008_002506.jpg", 500, 0),
    ("dlib-faces/2009_004587.jpg", 500, 0),
    ("deepface-dataset/selfie-many-people.jpg", 480, 0),
    ("face_recognition-examples/two_people.jpg", 500, 0),
    ("dlib-johns/John_Simm/000288_00470387.jpg", 150, 1),
]


@pytest.fixture(scope="module")
def engine() -> OnnxEngine:
    return OnnxEngine(threads=1)


@pytest.fixture(scope="module")
def dlib_models() -> dict[str, object]:
    import dlib

    files = models.model_files()
    return {
        "dlib": dlib,
        "cnn": dlib.cnn_face_detection_model_v1(str(files.detector_cnn)),
        "sp": dlib.shape_predictor(str(files.shape_predictor)),
        "rec": dlib.face_recognition_model_v1(str(files.recognizer)),
    }


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(iw, 0) * max(ih, 0)
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


@pytest.mark.models
@pytest.mark.parametrize(("name", "size", "upsample"), DETECT_CASES)
def test_detector_matches_dlib(
    fixtures: Path, engine: OnnxEngine, dlib_models: dict[str, object], name: str, size: int, upsample: int
) -> None:
    pixels = load_image(fixtures / name, size, enlarge=False).pixels
    cnn = dlib_models["cnn"]
    theirs = [
        ((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence)
        for d in cnn(pixels, upsample)  # type: ignore[operator]
    ]
    ours = engine.detect(pixels, upsample)
    assert theirs, f"dlib finds no face in {name}: pick another photo"
    assert len(ours) == len(theirs)
    for (rect, conf), (their_rect, their_conf) in zip(ours, theirs, strict=True):
        assert all(isinstance(v, int) for v in rect)
        assert _iou(rect, their_rect) >= 0.9
        assert conf == pytest.approx(their_conf, abs=1e-4)


@pytest.mark.models
def test_no_faces_and_grey_images(engine: OnnxEngine, dlib_models: dict[str, object]) -> None:
    flat = np.full((120, 160, 3), 128, dtype=np.uint8)
    assert engine.detect(flat) == []
    assert engine.detect(np.zeros((3, 3, 3), dtype=np.uint8), upsample=1) == []
    grey = np.random.default_rng(1).integers(0, 256, (90, 110), dtype=np.uint8)
    assert engine.detect(grey) == []
    with pytest.raises(ValueError, match="8-bit"):
        engine.detect(np.zeros((10, 10, 4), dtype=np.uint8))


@pytest.mark.models
def test_banded_network_run_is_exact(fixtures: Path, engine: OnnxEngine) -> None:
    det = engine.detector
    pixels = load_image(fixtures / "dlib-faces" / "2008_002506.jpg", 400, enlarge=False).pixels
    canvas, _ = build_canvas(pixels.transpose(2, 0, 1), det.input)
    whole = det.scores(canvas, max_pixels=10**9)
    for budget in (60_000, 150_000):
        assert np.array_equal(det.scores(canvas, max_pixels=budget), whole)


@pytest.mark.models
def test_descriptors_match_dlib(fixtures: Path, engine: OnnxEngine, dlib_models: dict[str, object]) -> None:
    dlib, cnn, sp, rec = (dlib_models[k] for k in ("dlib", "cnn", "sp", "rec"))
    pixels = load_image(fixtures / "dlib-faces" / "2008_002506.jpg", 500, enlarge=False).pixels
    shapes = dlib.full_object_detections()  # type: ignore[attr-defined]
    for d in cnn(pixels, 0):  # type: ignore[operator]
        shapes.append(sp(pixels, d.rect))  # type: ignore[operator]
    chips = [np.asarray(c) for c in dlib.get_face_chips(pixels, shapes, size=150, padding=0.25)]  # type: ignore[attr-defined]
    johns = sorted((fixtures / "dlib-johns").rglob("*.jpg"))[:3]
    chips += [load_image(p, 150, enlarge=False).pixels for p in johns]
    theirs = np.array([np.asarray(v) for v in rec.compute_face_descriptor(chips)], dtype=np.float32)  # type: ignore[attr-defined]
    ours = engine.embed(chips)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    cos = (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    assert cos.min() >= 0.999
    assert np.abs(ours - theirs).max() < 1e-4
    assert engine.embed([]).shape == (0, 128)
    with pytest.raises(ValueError, match="150x150x3"):
        engine.embed([np.zeros((100, 100, 3), dtype=np.uint8)])


def _big_chips(fixtures: Path, shift: int) -> list[np.ndarray]:
    """Aligned chips of every face of a few fixture photos, ``shift`` pixels wider on each side."""
    from photocluster.detect import faces as fc

    out = []
    for name in ("deepface-dataset/selfie-many-people.jpg", "face_recognition-examples/two_people.jpg"):
        image = load_image(fixtures / name, 500, enlarge=False)
        boxes = [d.box for d in fc.detect(image.pixels, "cnn", 0, "onnx")]
        points = [fc.landmarks(image.pixels, b) for b in boxes]
        out += fc.chips(image.pixels, boxes, points, margin=shift)
    return out


def _crops(big_chips: list[np.ndarray], shift: int) -> list[np.ndarray]:
    """The six views of each chip cut by hand: centre, up, down, each and its mirror image."""
    size = 150
    views = []
    for big in big_chips:
        for dy in (0, -shift, shift):
            view = big[shift + dy : shift + dy + size, shift : shift + size]
            views += [np.ascontiguousarray(view), np.ascontiguousarray(view[:, ::-1])]
    return views


def test_view_crops_are_cut_as_the_views_are_defined() -> None:
    from photocluster.detect.engine.resnet import view_crops

    rng = np.random.default_rng(5)
    big = [rng.integers(0, 256, (158, 158, 3), dtype=np.uint8) for _ in range(2)]
    got, want = view_crops(big, 4), _crops(big, 4)
    assert len(got) == 12 and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert np.array_equal(got[2], big[0][0:150, 4:154]) and np.array_equal(got[5], big[0][8:158, 4:154][:, ::-1])


@pytest.mark.models
def test_six_views_in_one_graph_are_the_views_embedded_one_by_one(fixtures: Path, engine: OnnxEngine) -> None:
    from photocluster.detect.engine.resnet import VIEWS_BATCH

    big = _big_chips(fixtures, 4)
    big = (big * (VIEWS_BATCH // len(big) + 2))[: VIEWS_BATCH + 3]  # more than one run of the graph
    assert len(big) > VIEWS_BATCH
    by_hand = engine.embed(_crops(big, 4)).reshape(len(big), 6, 128)
    got = engine.embed_views(big, 4)
    assert got.shape == (len(big), 6, 128) and got.dtype == np.float32 and got.flags.c_contiguous
    # The same views, in the same order: only rounding differs (the stem's sums run on a taller input).
    assert np.abs(got - by_hand).max() < 1e-6
    assert engine.embedder.views_session(4) is not None
    assert engine.embed_views([], 4).shape == (0, 6, 128)
    with pytest.raises(ValueError, match="158x158x3"):
        engine.embed_views([np.zeros((150, 150, 3), dtype=np.uint8)], 4)


@pytest.mark.models
def test_views_whose_shift_the_stem_cannot_share_are_embedded_crop_by_crop(fixtures: Path, engine: OnnxEngine) -> None:
    from photocluster.detect.engine.onnx_graph import _same_rows, build_views_model, prepare, stem
    from photocluster.detect.engine.resnet import SPEC

    net = load_network(models.model_files().recognizer, "metric", SPEC, "sized")
    # con 7x7 /2 (+ relu), max_pool 3x3 /2: the ResNet's input side, before its first block.
    assert stem(prepare(net.layers)) == (3, 4)
    # then three 32-channel blocks (tag, conv, relu, conv, add, relu) share their middle rows
    assert _same_rows(prepare(net.layers)[3:]) == 18
    with pytest.raises(ModelError, match="cannot share"):
        build_views_model(net.layers, (0.0, 0.0, 0.0), 150, 2, "resnet")
    assert engine.embedder.views_session(2) is None
    big = _big_chips(fixtures, 2)[:3]
    got = engine.embed_views(big, 2)
    assert np.array_equal(got, engine.embed(_crops(big, 2)).reshape(3, 6, 128))
