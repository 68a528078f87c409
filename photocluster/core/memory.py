"""Giving freed memory back to the operating system between the stages of a long run."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
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
    million faces the process held ~450 MB it no longer used when its peak came. Elsewhere
    than glibc, nothing is done."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


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
