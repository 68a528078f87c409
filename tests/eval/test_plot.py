"""The calibration plot (photocluster.eval.plot)."""

from __future__ import annotations

import numpy as np

from photocluster.eval.calibrate import CalibrationResult, CalibrationRow
from photocluster.eval.metrics import PRF
from photocluster.eval.plot import render_calibration


def row(t: float, pair_f1: float, bcubed_f1: float) -> CalibrationRow:
    return CalibrationRow(t, 3, PRF(1.0, pair_f1, pair_f1), PRF(1.0, bcubed_f1, bcubed_f1))


def test_calibration_plot_is_drawn() -> None:
    rows = tuple(row(round(0.3 + 0.05 * k, 2), 1 - abs(k - 5) / 10, 1 - abs(k - 5) / 12) for k in range(11))
    result = CalibrationResult("root", None, 20, 4, rows, 0.55, rows[5], (), (), 0)
    im = render_calibration(result)
    pixels = np.asarray(im)
    assert im.size == (900, 560) and im.mode == "RGB"
    not_white = np.any(pixels < 250, axis=2)
    assert 0.01 < not_white.mean() < 0.5
    # Both curves and the marker are there, in their colours.
    for colour in ((31, 119, 180), (255, 127, 14), (214, 39, 40)):
        assert np.all(np.abs(pixels.astype(int) - colour) < 30, axis=2).sum() > 50, colour
