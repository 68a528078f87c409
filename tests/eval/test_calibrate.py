"""The threshold sweep (photocluster.eval.calibrate): the recommended threshold."""

from __future__ import annotations

from photocluster.eval.calibrate import CalibrationRow, recommend
from photocluster.eval.metrics import PRF


def row(t: float, pair_f1: float, bcubed_f1: float) -> CalibrationRow:
    return CalibrationRow(t, 3, PRF(1.0, pair_f1, pair_f1), PRF(1.0, bcubed_f1, bcubed_f1))


def test_recommend_best_bcubed_then_pairwise_then_the_middle() -> None:
    rows = [row(0.4, 0.5, 0.7), row(0.5, 0.9, 0.9), row(0.6, 0.9, 0.9), row(0.7, 0.9, 0.9), row(0.8, 0.3, 0.6)]
    assert recommend(rows) == 0.6
    rows[1] = row(0.5, 0.95, 0.9)  # same BCubed, better pairwise
    assert recommend(rows) == 0.5
    assert recommend([row(0.5, 1, 1), row(0.6, 1, 1)]) == 0.5  # even tie: the lower middle
