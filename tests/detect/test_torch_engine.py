"""The torch engine's edges, without PyTorch (CI has none): engine selection, the error that
says what to install, the model-folder override, and the layer list the interpreter runs.

The torch engine's numbers (agreement with the onnx engine, on the CPU or a GPU) are measured by
``benchmarks/gpu_throughput.py`` (``--device cpu`` where there is no GPU), which needs torch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from photocluster.cli import app
from photocluster.core.config import ENGINES, DetectionSettings
from photocluster.core.errors import ModelError
from photocluster.detect import faces as fc
from photocluster.detect import models
from photocluster.detect.engine import OnnxEngine, torch_net
from photocluster.detect.engine.backend import make_backend
from photocluster.detect.engine.dlib_format import Affine, Conv, Fc, Pool, Relu, load_network
from photocluster.detect.engine.mmod import SPEC as MMOD_SPEC
from photocluster.detect.engine.resnet import SPEC as RESNET_SPEC

REPO = Path(__file__).resolve().parents[2]
INSTALL = "pip install 'photocluster[gpu]'"


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PyTorch absent, as in CI, whether or not this machine has it: ``import torch`` fails
    and ``find_spec("torch")`` finds nothing."""
    monkeypatch.setitem(sys.modules, "torch", None)
    fc.resolve_engine.cache_clear()
    yield
    fc.resolve_engine.cache_clear()


@pytest.fixture
def fresh_resolve() -> Iterator[None]:
    fc.resolve_engine.cache_clear()
    yield
    fc.resolve_engine.cache_clear()


def _cpu_dlib() -> fc.DlibBuild:
    return fc.DlibBuild("20.0.1", cuda=False, cuda_devices=0, avx=True, neon=False, blas=False, lapack=False)


def _cuda_dlib() -> fc.DlibBuild:
    return fc.DlibBuild("20.0.1", cuda=True, cuda_devices=1, avx=True, neon=False, blas=True, lapack=False)


# ---------------------------------------------------------------------------------------------
# Choosing the engine.


def test_torch_is_an_engine_name() -> None:
    assert "torch" in ENGINES
    assert DetectionSettings(engine="torch").engine == "torch"
    # The engine is not part of the settings key: both give the same faces.
    assert DetectionSettings(engine="torch").key == DetectionSettings(engine="onnx").key


def test_auto_without_torch_is_onnx(no_torch: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fc, "dlib_build", _cpu_dlib)
    assert not torch_net.torch_installed()
    assert not torch_net.cuda_visible()
    assert fc.resolve_engine("auto") == "onnx"


def test_engine_torch_without_torch_says_what_to_install(no_torch: None) -> None:
    with pytest.raises(ModelError, match=re.escape(INSTALL)) as info:
        fc.resolve_engine("torch")
    assert "--engine torch" in str(info.value) and "\n" not in str(info.value)
    # The engine itself, built directly, fails the same way on first use (torch loads lazily).
    engine = OnnxEngine(backend="torch")
    with pytest.raises(ModelError, match=re.escape(INSTALL)):
        engine.embed([np.zeros((150, 150, 3), dtype=np.uint8)])


def test_auto_order_cuda_dlib_then_torch_on_a_gpu_then_onnx(
    fresh_resolve: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fc, "dlib_build", _cuda_dlib)
    monkeypatch.setattr(fc, "torch_cuda_visible", lambda: True)
    assert fc.resolve_engine("auto") == "dlib"  # a CUDA-built dlib that sees a GPU comes first
    fc.resolve_engine.cache_clear()
    monkeypatch.setattr(fc, "dlib_build", _cpu_dlib)
    assert fc.resolve_engine("auto") == "torch"
    fc.resolve_engine.cache_clear()
    monkeypatch.setattr(fc, "torch_cuda_visible", lambda: False)  # torch without a GPU: onnx is faster
    assert fc.resolve_engine("auto") == "onnx"


def test_explicit_engines_and_unknown_ones(fresh_resolve: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_net, "torch_installed", lambda: True)
    assert fc.resolve_engine("torch") == "torch"  # installed: chosen even without a GPU (CPU torch)
    assert fc.resolve_engine("onnx") == "onnx"
    with pytest.raises(ModelError, match="unknown engine 'cuda'"):
        fc.resolve_engine("cuda")
    with pytest.raises(ModelError, match="unknown network backend 'tensorrt': choose one of onnx, torch"):
        make_backend("tensorrt", [], 3, None, None, "x", 1)


def test_torch_info_without_torch(no_torch: None) -> None:
    info = torch_net.torch_info()
    assert not info.installed and not info.cuda_available
    assert info.describe() == f"not installed ({INSTALL})"


def test_doctor_shows_torch_and_onnxruntime_providers(no_torch: None) -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-measure", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["torch"] == f"not installed ({INSTALL})"
    assert doc["torch_cuda"] is False and doc["cuda_device"] is None
    assert "CPUExecutionProvider" in doc["onnxruntime"]
    assert doc["engine"] == "onnx"


def test_importing_photocluster_and_the_torch_modules_does_not_import_torch() -> None:
    code = (
        "import sys, photocluster, photocluster.cli.doctor\n"
        "import photocluster.detect.engine.torch_net, photocluster.detect.engine.torch_pyramid\n"
        "from photocluster.detect.engine import OnnxEngine\n"
        "OnnxEngine(backend='torch')\n"
        "print('torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# PHOTOCLUSTER_MODELS: the model files from a folder instead of face-recognition-models.

NAMES = ("mmod_human_face_detector", "shape_predictor_5_face_landmarks", "dlib_face_recognition_resnet_model_v1")


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    models.model_files.cache_clear()
    yield monkeypatch
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    models.model_files.cache_clear()


def test_models_folder_override(tmp_path: Path, models_env: pytest.MonkeyPatch) -> None:
    real = models.model_files().all()
    models.model_files.cache_clear()
    for name in NAMES:
        (tmp_path / f"{name}.dat").symlink_to(real[name])
    models_env.setenv(models.MODELS_ENV, str(tmp_path))
    files = models.model_files()
    assert {name: path.parent for name, path in files.all().items()} == dict.fromkeys(NAMES, tmp_path)
    # The networks load from there.
    engine = OnnxEngine(detector_path=files.detector_cnn, recognizer_path=files.recognizer)
    assert engine.embed([np.full((150, 150, 3), 128, dtype=np.uint8)]).shape == (1, 128)


def test_models_folder_override_missing_file_is_a_clear_error(tmp_path: Path, models_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "mmod_human_face_detector.dat").write_bytes(b"x")
    models_env.setenv(models.MODELS_ENV, str(tmp_path))
    with pytest.raises(ModelError) as info:
        models.model_files()
    message = str(info.value)
    assert "shape_predictor_5_face_landmarks missing at" in message
    assert f"({models.MODELS_ENV})" in message and f"unset {models.MODELS_ENV}" in message


def test_models_folder_override_empty_means_the_package(models_env: pytest.MonkeyPatch) -> None:
    models_env.setenv(models.MODELS_ENV, "  ")
    assert models.model_files().detector_cnn.parent.name == "models"
    assert models.model_files().detector_cnn.is_file()


# ---------------------------------------------------------------------------------------------
# The layer list the interpreter runs (built without torch).


def test_ops_fold_affines_and_keep_dlib_structure() -> None:
    files = models.model_files()
    det = load_network(files.detector_cnn, "mmod", MMOD_SPEC, "pyramid").layers
    ops, weights = torch_net._ops(det)
    # 7 convolutions, each with its affine folded in (but the last), 6 relus.
    assert [op[0] for op in ops] == ["conv", "relu"] * 6 + ["conv"]
    assert sum(isinstance(layer, Affine) for layer in det) == 6
    first = det[0]
    assert isinstance(first, Conv) and isinstance(det[1], Affine)
    folded = weights[ops[0][1]]
    gamma = det[1].gamma.reshape(-1)
    assert np.allclose(folded, first.weight * gamma[:, None, None, None])
    assert ops[0][3:5] == ((2, 2), (0, 0)) and ops[-1][4] == (4, 4)  # strides and paddings kept
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in weights.values())


def test_ops_of_the_resnet_have_tags_skips_and_padded_adds() -> None:
    layers = load_network(models.model_files().recognizer, "metric", RESNET_SPEC, "sized").layers
    ops, weights = torch_net._ops(layers)
    kinds = [op[0] for op in ops]
    # 14 residual blocks (4 of them stride 2, with an average-pooled shortcut: skip), 29 convs,
    # every affine folded into the conv before it.
    assert kinds.count("addprev") == 14 and kinds.count("skip") == 4 and kinds.count("tag") == 18
    assert kinds.count("conv") == sum(isinstance(layer, Conv) for layer in layers) == 29
    assert "affine" not in kinds and sum(isinstance(layer, Affine) for layer in layers) == 29
    assert kinds[-2:] == ["pool", "fc"] and ops[-2][1:3] == (False, (0, 0))  # global average pool, fc
    assert ops[-1][2] is None and weights[ops[-1][1]].shape == (256, 128)  # fc_no_bias: (inputs, outputs)
    pools = [op[1:] for op in ops if op[0] == "pool"]
    assert pools[0] == (True, (3, 3), (2, 2)) and pools.count((False, (2, 2), (2, 2))) == 4
    assert any(isinstance(layer, Fc) for layer in layers) and any(isinstance(layer, Relu) for layer in layers)


def test_padded_pooling_is_refused_as_by_the_onnx_graph() -> None:
    with pytest.raises(ModelError, match="padded pooling layers are not supported"):
        torch_net._ops([Pool(max=True, size=(3, 3), stride=(2, 2), padding=(1, 1))])


def test_conv_output_sizes_follow_dlib() -> None:
    # (n + 2 * pad - k) // stride + 1, as dlib's con_ and the detector's geometry compute them.
    assert torch_net._out(36, 5, 2, 0) == 16 and torch_net._out(16, 5, 1, 2) == 16
    assert torch_net._out(150, 7, 2, 0) == 72 and torch_net._out(72, 3, 2, 0) == 35


# ---------------------------------------------------------------------------------------------
# The GPU check's two scripts carry the same wheels.


def test_gpu_scripts_name_the_same_wheels() -> None:
    wheels = (REPO / "benchmarks" / "gpu_wheels.sh").read_text()
    check = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    pinned = re.findall(r'^[A-Z_]+="([a-z0-9-]+==[0-9a-z.]+)"', wheels, flags=re.M)
    assert pinned, "gpu_wheels.sh pins no wheel"
    for spec in pinned:
        assert spec in check, f"{spec} is downloaded by gpu_wheels.sh but not listed in gpu_check.sh"
