"""Giving freed memory back to the operating system between the stages of a long run."""

from __future__ import annotations

import ctypes
import ctypes.util
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
