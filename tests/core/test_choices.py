"""The fixed choices: one StrEnum each, equal to their strings, a bad value one usage error."""

from __future__ import annotations

import pytest

from photocluster.core.choices import Detector, Engine, ExportMode, XmpTarget, choice
from photocluster.core.config import DETECTORS, ENGINES, DetectionSettings
from photocluster.core.errors import UsageError


def test_a_member_is_its_string() -> None:
    assert Engine.TORCH == "torch" and f"{Engine.TORCH}" == "torch" and str(Detector.HOG) == "hog"
    assert [m.value for m in ExportMode] == ["symlink", "hardlink", "copy"]
    assert [m.value for m in XmpTarget] == ["dest", "originals"]
    assert ENGINES == ("auto", "onnx", "dlib", "torch") and DETECTORS == ("cnn", "hog")


def test_choice_takes_the_member_or_its_string() -> None:
    assert choice(Engine, "onnx", "--engine") is Engine.ONNX
    assert choice(Engine, Engine.DLIB, "--engine") is Engine.DLIB


def test_a_bad_choice_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        choice(ExportMode, "teleport", "--mode")
    assert str(caught.value) == "--mode must be one of symlink, hardlink, copy, got 'teleport'"


def test_settings_take_strings_and_keep_members() -> None:
    settings = DetectionSettings("hog", engine="torch")
    assert settings.detector is Detector.HOG and settings.engine is Engine.TORCH
    assert settings == DetectionSettings(Detector.HOG, engine=Engine.TORCH)
    assert settings.key == "hog/max1600/up1/v2"
    with pytest.raises(UsageError, match="--engine must be one of auto, onnx, dlib, torch, got 'cuda'"):
        DetectionSettings(engine="cuda")
    with pytest.raises(UsageError, match="--detector must be one of cnn, hog, got 'CNN'"):
        DetectionSettings("CNN")
