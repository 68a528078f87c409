"""The grouping's small array helpers."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.grouping.arrays import Positions, positions, rows_of, unique_sorted


def test_unique_sorted_is_numpys_unique() -> None:
    x = np.random.default_rng(0).integers(0, 100, 1000)
    np.testing.assert_array_equal(unique_sorted(x), np.unique(x))
    assert unique_sorted(x[:0]).shape == (0,)


def test_positions_of_sorted_ids_answer_as_the_dict_would() -> None:
    ids = np.array([3, 7, 8, 20, 1000], dtype=np.int64)
    index = positions(ids)
    assert isinstance(index, Positions)
    expected = {3: 0, 7: 1, 8: 2, 20: 3, 1000: 4}
    assert dict(index.items()) == expected and len(index) == 5
    for key in (0, 4, 21, 1001, -1, "7", 7.5, True):
        assert key not in index
        assert index.get(key) is None  # type: ignore[arg-type]
    assert index[20] == 3 and index.get(8) == 2 and np.int64(8) in index
    with pytest.raises(KeyError):
        index[9]


def test_positions_of_unsorted_ids_fall_back_to_a_dict() -> None:
    index = positions(np.array([5, 2, 9]))
    assert not isinstance(index, Positions)
    assert dict(index) == {5: 0, 2: 1, 9: 2}
    assert dict(positions(np.array([], dtype=np.int64))) == {}


def test_rows_of_many_ids_are_the_positions_of_each() -> None:
    ids = np.array([3, 8, 10, 42], dtype=np.int64)
    asked = np.array([42, 3, 4, 100, 10, 0, 8], dtype=np.int64)
    one = positions(ids)
    assert rows_of(ids, asked).tolist() == [one.get(int(x), -1) for x in asked] == [3, 0, -1, -1, 2, -1, 1]
    assert rows_of(ids[:0], asked).tolist() == [-1] * len(asked)
