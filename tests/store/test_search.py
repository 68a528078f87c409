"""The kept neighbour-search lists (``search_lists``): written whole by a full run, grown
by incremental runs, read back by face id."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.store import Store, search


def test_no_lists_until_a_full_run_keeps_them(store: Store) -> None:
    assert store.search_lists() is None
    store.add_search_lists(np.array([1, 2]), np.array([[0, 1, 2], [1, 0, 2]]))  # nothing to add them to
    assert store.search_lists() is None


def test_lists_are_replaced_grown_and_read_in_face_order(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 128)).astype(np.float32)
    monkeypatch.setattr(search, "PART_FACES", 2)
    store.save_search_lists(centres, np.array([7, 3, 5]), np.array([[0, 1, 2], [3, 2, 1], [1, 1, 1]]))
    store.add_search_lists(np.array([9, 4]), np.array([[2, 3, 0], [0, 0, 3]]))
    kept = store.search_lists()
    assert kept is not None
    got_centres, ids, lists = kept
    assert np.array_equal(got_centres, centres) and got_centres.dtype == np.float32
    assert ids.tolist() == [3, 4, 5, 7, 9]
    assert lists.tolist() == [[3, 2, 1], [0, 0, 3], [1, 1, 1], [0, 1, 2], [2, 3, 0]]
    assert lists.dtype == np.int32
    # A full run replaces them all.
    store.save_search_lists(centres[:2], np.array([1]), np.array([[1, 0, 1]]))
    kept = store.search_lists()
    assert kept is not None and kept[1].tolist() == [1] and len(kept[0]) == 2
    store.drop_search_lists()
    assert store.search_lists() is None


def test_lists_of_another_width_are_not_read(store: Store) -> None:
    store.save_search_lists(np.zeros((2, 128), np.float32), np.array([1]), np.array([[1, 0, 1]]))
    store.add_search_lists(np.array([2]), np.array([[1, 0]]))
    assert store.search_lists() is None
