"""The self-check: same-photo pairs (two people each) against the operating point."""

from __future__ import annotations

import numpy as np

from photocluster.grouping.calibration import impostor_check


def test_shares_under_each_threshold() -> None:
    check = impostor_check(np.array([0.3, 0.5, 0.7, 0.9]), {"link": 0.42, "merge": 0.6})
    assert check.pairs == 4 and check.below == {"link": 0.25, "merge": 0.5} and check.closest == 0.3
    doc = check.as_dict()
    assert doc == {
        "same_photo_pairs": 4,
        "share_closer_than": {"link": 0.25, "merge": 0.5},
        "closest": 0.3,
        "thresholds": {"link": 0.42, "merge": 0.6},
    }


def test_a_library_without_group_photos_says_so() -> None:
    check = impostor_check(np.zeros(0), {"link": 0.6})
    assert check.as_dict() == {
        "same_photo_pairs": 0,
        "share_closer_than": {"link": 0.0},
        "closest": None,
        "thresholds": {"link": 0.6},
    }
