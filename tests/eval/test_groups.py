"""Figures per group (photocluster.eval.groups): which columns are groups."""

from __future__ import annotations

import numpy as np

from photocluster.eval.groups import MAX_GROUPS, group_figures, is_grouping


def test_a_column_of_ids_is_not_a_grouping() -> None:
    """LFW-dev's labels.csv has an ``image`` column, one value per row: no groups of it."""
    assert is_grouping(("young", "adult", "young", ""))
    assert not is_grouping(tuple(f"{k}.jpg" for k in range(MAX_GROUPS + 1)))
    assert not is_grouping(("", ""))


def test_within_and_across_two_groups() -> None:
    truth = np.array([0, 0, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1])
    figures = group_figures("age_group", ("young", "young", "young", "young", "adult"), truth, pred)
    by = {f.group: f for f in figures}
    assert list(by) == ["adult", "young", "adult-young"]
    assert (by["young"].persons, by["young"].mixing) == (2, 1)  # {0, 0, 1} mixes, {2 | 2} does not
    across = by["adult-young"]
    assert across.pairwise.precision == 1.0 and (across.persons, across.mixing) == (1, 0)
