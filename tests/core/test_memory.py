"""Giving freed memory back between the stages of a long run."""

from __future__ import annotations

import platform
import sys

import numpy as np

from photocluster.core import memory


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_chunks_go_back_to_the_system() -> None:
    # The machines photocluster is tested on run Linux with glibc, where it matters.
    assert sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert memory._libc() is not None
    # Chunks of a few hundred kB, freed with smaller ones kept between them: glibc keeps
    # the freed ones in its heap (under its mmap threshold, once that has risen).
    big = np.ones(16 << 20, dtype=np.uint8)  # a freed mapped chunk raises the threshold
    del big
    keep, chunks = [], []
    for _ in range(400):
        chunks.append(np.ones(256 << 10, dtype=np.uint8))
        keep.append(np.ones(8192, dtype=np.uint8))
    del chunks
    before = _rss_kb()
    memory.release_freed_memory()
    assert _rss_kb() < before - 50_000  # most of the ~100 MB freed
    assert len(keep) == 400


def test_releasing_with_nothing_freed_is_harmless() -> None:
    memory.release_freed_memory()
    memory.release_freed_memory()
