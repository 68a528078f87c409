"""Small array helpers the grouping uses in its inner loops."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """``np.unique(x)`` for integer keys, by sorting a copy: numpy 2.3+ finds plain unique
    values through a hash table, 10-40x slower than a sort on the millions of int64 pair
    keys a clustering run makes (measured: 3.7 s against 0.09 s for 5 M keys)."""
    out = np.sort(x, kind="stable" if x.dtype.kind == "b" else None)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    sel: np.ndarray = out[keep]
    return sel


class Positions(Mapping[int, int]):
    """Id -> its position in ``ids`` (sorted, distinct), as a read-only mapping: a binary
    search per look-up instead of a dict of a million Python ints (130 MB at a million
    faces, built in half a second)."""

    def __init__(self, ids: np.ndarray) -> None:
        self._ids = np.asarray(ids, dtype=np.int64)

    def _find(self, key: object) -> int:
        if not isinstance(key, (int, np.integer)) or isinstance(key, bool):
            return -1
        k = int(np.searchsorted(self._ids, key))
        return k if k < len(self._ids) and int(self._ids[k]) == key else -1

    def __getitem__(self, key: int) -> int:
        k = self._find(key)
        if k < 0:
            raise KeyError(key)
        return k

    def __contains__(self, key: object) -> bool:
        return self._find(key) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)


def rows_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The position of each of ``ids`` in ``sorted_ids`` (ascending, distinct), -1 where it
    is absent: :class:`Positions` for many ids at once, by one binary search each."""
    at = np.searchsorted(sorted_ids, ids)
    found = at < len(sorted_ids)
    found[found] = sorted_ids[at[found]] == ids[found]
    out: np.ndarray = np.where(found, at, -1)
    return out


def positions(ids: np.ndarray) -> Mapping[int, int]:
    """Id -> position in ``ids`` (distinct): :class:`Positions` when they are sorted, as
    a clustering run reads them; a dict otherwise."""
    ids = np.asarray(ids)
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return Positions(ids)
    return {int(f): k for k, f in enumerate(ids.tolist())}
