"""Giving freed memory back to the operating system between the stages of a long run."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # musl or no libc found: nothing to trim
        return None


def release_freed_memory() -> None:
    """Return the pages freed since the last call to the system (glibc's ``malloc_trim``).

    A stage of clustering allocates and frees hundreds of arrays of a few megabytes (the
    neighbour search's blocks, on two threads); glibc keeps such freed chunks in its heaps
    for reuse, and the next stage's large arrays, mapped afresh, come on top of them: at a
    million faces the process held ~450 MB it no longer used when its peak came. Within
    :func:`freed_blocks_kept` nothing is given back until it ends: the blocks are kept to
    be used again. Elsewhere than glibc, nothing is done."""
    libc = _libc()
    if libc is not None and not _blocks_kept:
        libc.malloc_trim(0)


# Whether freed_blocks_kept() holds: release_freed_memory() then waits for its end.
_blocks_kept = False


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# While blocks are kept: blocks under this come from malloc's heaps, and freed ones stay
# there for the next (the neighbour search's distances, gathers and sorts are up to tens of
# megabytes a block), with up to _KEEP_UP_TO of free memory at a heap's top kept.
_MAP_ABOVE = 256 << 20
_KEEP_UP_TO = 1 << 30
# After: the thresholds glibc's adaptive scheme reaches on its own after large frees.
_MAP_ABOVE_AFTER = 32 << 20
_KEEP_UP_TO_AFTER = 64 << 20
# The user's own settings of malloc, which stay.
_MALLOC_ENV = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "GLIBC_TUNABLES",
)


def _thresholds(map_above: int, keep_up_to: int) -> bool:
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    # Both or neither: either alone turns glibc's adaptive threshold off and costs 4-8x
    # the page faults (measured).
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, map_above)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, keep_up_to))


@contextmanager
def freed_blocks_kept() -> Iterator[bool]:
    """Within: malloc reuses the large blocks this process frees, instead of mapping fresh
    pages for each (True when glibc took the settings). After: the memory freed goes back
    to the system, and malloc keeps no more than its own defaults would have.

    With glibc's defaults a block over 32 MB is mapped on its own and unmapped when freed,
    and the free top of a heap over twice the last such block is given back at once; the
    next block of that size then faults every page in again. An incremental `clusters`
    run of a million faces allocates and frees gigabytes that way: 590,000-660,000 page
    faults, 1.3-1.5 s of system time, against 340,000-430,000 and 0.85-1.05 s with the
    blocks kept. :func:`release_freed_memory` within gives nothing back (the stages of
    a run ask for it between them): 355,000-360,000 faults and 1.3-1.5 s against
    430,000-475,000 and 1.55-1.8 s when it did, for a peak of 1.18 GB against 0.94 GB. A
    full run gains no time from it and would hold more at its peak: it is not asked for
    there. Malloc settings in the environment are the user's choice and stay; elsewhere
    than glibc, nothing is done."""
    if any(name in os.environ for name in _MALLOC_ENV):
        yield False
        return
    global _blocks_kept
    kept = _thresholds(_MAP_ABOVE, _KEEP_UP_TO)
    was, _blocks_kept = _blocks_kept, _blocks_kept or kept
    try:
        yield kept
    finally:
        _blocks_kept = was
        if kept:
            _thresholds(_MAP_ABOVE_AFTER, _KEEP_UP_TO_AFTER)
            release_freed_memory()


def prefer_small_pages() -> None:
    """Stop numpy asking for transparent huge pages for its large arrays (this process on).

    numpy advises the kernel to back every array of 4 MB or more with 2 MB pages. Where
    the kernel then compacts memory to find them (``defrag = madvise``, the default of
    common distributions), each first touch of a fresh array can stall: reading a
    million faces' descriptors took 1.1-1.4 s of system time in a fresh process against
    0.3 s with 4 kB pages, and an incremental `clusters` run of a million faces 9.0-9.6 s
    against 8.5-9.0 s (a full run 65.6 s against 62.8 s). ``NUMPY_MADVISE_HUGEPAGE`` set
    in the environment is the user's choice and stays; where numpy has no such switch,
    nothing is done."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    import numpy as np

    switch = getattr(getattr(np, "_core", None), "multiarray", None)
    set_madvise = getattr(switch, "_set_madvise_hugepage", None)
    if set_madvise is not None:
        set_madvise(False)
