"""Giving freed memory back between the stages of a long run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

from photocluster.core import memory

# Run in a fresh interpreter: the heap of a test process that ran other tests before is in
# no known state (its mmap threshold may have risen further, its arenas be fragmented).
_SCENARIO = """
import numpy as np
from photocluster.core.memory import release_freed_memory

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

# As after a run of large arrays: glibc's mmap threshold risen (the chunks below come from
# its heap, not mapped of their own) and no trimming on free (they stay in the heap).
# Set here rather than reached by allocating, which depends on the process's history.
import ctypes
libc = ctypes.CDLL("libc.so.6")
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
keep, chunks = [], []
for _ in range(400):
    chunks.append(np.ones(256 << 10, dtype=np.uint8))
    keep.append(np.ones(8192, dtype=np.uint8))
del chunks
before = rss_kb()
release_freed_memory()
print(before, rss_kb(), len(keep))
"""


def test_freed_chunks_go_back_to_the_system() -> None:
    # The machines photocluster is tested on run Linux with glibc, where it matters.
    assert sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert memory._libc() is not None
    out = subprocess.run([sys.executable, "-c", _SCENARIO], capture_output=True, text=True, check=True).stdout
    before, after, kept = (int(x) for x in out.split())
    assert after < before - 50_000  # most of the ~100 MB freed went back
    assert kept == 400


def test_releasing_with_nothing_freed_is_harmless() -> None:
    memory.release_freed_memory()
    memory.release_freed_memory()


# numpy's switch returns the setting it replaces: asking again tells what it was.
_PAGES = """
import numpy as np
from photocluster.core.memory import prefer_small_pages
prefer_small_pages()
print(np._core.multiarray._set_madvise_hugepage(True))
"""


def _huge_pages_after(env: dict[str, str]) -> str:
    run = subprocess.run([sys.executable, "-c", _PAGES], capture_output=True, text=True, check=True, env=env)
    return run.stdout.strip()


def test_numpy_stops_asking_for_huge_pages() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    assert _huge_pages_after(env) == "False"


def test_the_users_own_setting_of_huge_pages_stays() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    assert _huge_pages_after({**env, "NUMPY_MADVISE_HUGEPAGE": "1"}) == "True"


# Blocks of 64 MB (over glibc's largest adaptive threshold) allocated and freed in turn:
# each mapped afresh by default, faulting its 16,384 pages in again.
_REUSE = """
import resource, sys
from contextlib import nullcontext
import numpy as np
from photocluster.core.memory import freed_blocks_kept, prefer_small_pages, release_freed_memory

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

prefer_small_pages()  # as the command line does: 4 kB pages, counted one fault each
first = np.ones(64 << 20, dtype=np.uint8)
del first
with freed_blocks_kept() if sys.argv[1].startswith("kept") else nullcontext(None) as took:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        block = np.ones(64 << 20, dtype=np.uint8)
        del block
        if sys.argv[1] == "kept, released":  # as the stages of a run ask between them
            release_freed_memory()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    held = rss_kb()
print(took, faults, held, rss_kb())
"""


def _faults(mode: str, env: dict[str, str]) -> tuple[str, int, int, int]:
    run = subprocess.run([sys.executable, "-c", _REUSE, mode], capture_output=True, text=True, check=True, env=env)
    took, faults, held, after = run.stdout.split()
    return took, int(faults), int(held), int(after)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}


def test_freed_blocks_are_reused_without_faulting_their_pages_in_again() -> None:
    took, kept, held, after = _faults("kept", _env())
    _, mapped, _, _ = _faults("default", _env())
    assert took == "True"
    assert mapped > 10 * 16_000  # each block's 16,384 pages, every time
    assert kept < 20_000  # the first block's pages only, once
    assert held > after + 50_000  # the block kept while asked, given back after


def test_while_blocks_are_kept_releasing_waits_for_the_end() -> None:
    took, kept, held, after = _faults("kept, released", _env())
    assert took == "True"
    assert kept < 20_000  # not given back between the blocks, so not faulted in again
    assert held > after + 50_000  # given back at the end


def test_the_users_own_malloc_settings_stay() -> None:
    env = {**_env(), "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    took, faults, _, _ = _faults("kept", env)
    assert took == "False"
    assert faults > 10 * 16_000  # the user's small threshold maps each block
