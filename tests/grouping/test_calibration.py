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
        "crowded_pairs": None,
        "crowded_closer_than": {},
    }


def test_a_library_without_group_photos_says_so() -> None:
    check = impostor_check(np.zeros(0), {"link": 0.6})
    assert check.as_dict() == {
        "same_photo_pairs": 0,
        "share_closer_than": {"link": 0.0},
        "closest": None,
        "thresholds": {"link": 0.6},
        "crowded_pairs": None,
        "crowded_closer_than": {},
    }


def test_pairs_in_crowded_regions_are_counted_against_the_thresholds_as_tightened() -> None:
    """Pairs whose smaller factor is under 1 are in a crowded region. 0.3 at factor 0.5 is
    over both tightened thresholds (0.21, 0.30); 0.2 at factor 0.6 is under both (0.252, 0.36)."""
    d = np.array([0.3, 0.2, 0.7, 0.9])
    check = impostor_check(d, {"link": 0.42, "merge": 0.6}, np.array([0.5, 0.6, 1.0, 1.0]))
    assert check.crowded_pairs == 2 and check.crowded_below == {"link": 1, "merge": 1}
    assert check.below == {"link": 0.5, "merge": 0.5}  # the plain shares are as before
    assert impostor_check(np.zeros(0), {"link": 0.6}, np.zeros(0)).as_dict()["crowded_pairs"] == 0
