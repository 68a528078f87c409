"""benchmarks/views_cost.py: the three ways it times the six views give the same descriptors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from photocluster.detect.engine import OnnxEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from views_cost import stem_graph, views_after, views_before


@pytest.mark.models
def test_crops_the_stem_graph_and_the_current_graph_give_one_descriptor() -> None:
    engine = OnnxEngine(threads=1)
    rng = np.random.default_rng(2)
    chips = [rng.integers(0, 256, (158, 158, 3), dtype=np.uint8) for _ in range(3)]
    crops = views_before(engine, chips)
    stem, now = stem_graph()(engine, chips), views_after(engine, chips)
    assert crops.shape == stem.shape == now.shape == (3, 128)
    assert np.abs(stem - crops).max() < 1e-6 and np.abs(now - crops).max() < 1e-6
    # each face its own descriptor, not one face's repeated
    assert np.abs(crops[0] - crops[1]).max() > 1e-3
