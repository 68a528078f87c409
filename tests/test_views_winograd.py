"""benchmarks/views_winograd.py: its Winograd graph computes the convolution it is timed against."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from views_winograd import _session, conv, winograd


@pytest.mark.parametrize(("n", "c", "k", "size"), [(1, 3, 5, 4), (6, 32, 32, 36), (2, 64, 16, 6)])
def test_the_winograd_graph_gives_the_convolution(n: int, c: int, k: int, size: int) -> None:
    rng = np.random.default_rng(size)
    w = rng.normal(size=(k, c, 3, 3)).astype(np.float32)
    x = rng.normal(size=(n, c, size, size)).astype(np.float32)
    direct = _session(conv(n, c, size, w)).run(None, {"x": x})[0]
    tiled = _session(winograd(n, c, size, w)).run(None, {"x": x})[0]
    assert direct.shape == tiled.shape == (n, k, size, size)
    assert np.abs(direct - tiled).max() <= 1e-5 * np.abs(direct).max()
    # And the direct one is a 3x3 convolution padded by one: one output by hand.
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    assert direct[0, 0, 1, 2] == pytest.approx(float(np.sum(padded[:, 1:4, 2:5] * w[0])), rel=1e-4, abs=1e-4)
