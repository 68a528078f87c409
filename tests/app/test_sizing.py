"""How many detection processes a scan runs (photocluster.app.sizing)."""

from __future__ import annotations

import pytest

from photocluster.app import sizing
from photocluster.core.config import DetectionSettings


@pytest.mark.parametrize(("engine", "one_process"), [("onnx", True), ("torch", True), ("dlib", False)])
def test_one_scanning_process_for_engines_that_use_every_core_or_the_gpu(
    monkeypatch: pytest.MonkeyPatch, engine: str, one_process: bool
) -> None:
    monkeypatch.setattr(sizing.fc, "resolve_engine", lambda _name: engine)
    monkeypatch.setattr(sizing.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(sizing, "_available_memory", lambda: 64 << 30)
    workers = sizing.default_workers(DetectionSettings(engine=engine))
    assert (workers == 1) == one_process
