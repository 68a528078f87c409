"""The one progress shape."""

from __future__ import annotations

import pytest

from photocluster.core.progress import Progress, ignore_progress, report_to


def test_a_line_says_the_phase_and_how_far() -> None:
    assert str(Progress("Reading faces")) == "Reading faces"
    assert str(Progress("Grouping", 2, 5)) == "Grouping: 40%"
    assert str(Progress("Nothing to do", 0, 0)) == "Nothing to do"


def test_counts_are_never_negative() -> None:
    with pytest.raises(ValueError, match="never negative"):
        Progress("Scanning", -1, 3)


def test_none_is_a_callback_that_ignores() -> None:
    told: list[Progress] = []
    assert report_to(None) is ignore_progress
    report_to(told.append)(Progress("x", 1, 2))
    assert told == [Progress("x", 1, 2)]
