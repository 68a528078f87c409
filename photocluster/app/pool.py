"""Where a scan's detection runs: in the scanning process, or in a pool of worker processes
that each load the models once; and the one results loop that a pool and a Dask cluster
(:mod:`photocluster.app.dask_scan`) share.

That loop (:func:`in_window`) is dask/distributed's: a bounded window of futures, refilled
from an ``as_completed`` as each one finishes, so memory does not grow with the library.
Ctrl-C is the scanning process's: worker processes start with it held back
(:func:`sigint_held`) and ignore it, finish the photo they are on and exit.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ImageError
from photocluster.detect import faces as fc

Result = fc.Analysis | ImageError


class HasPath(Protocol):
    @property
    def path(self) -> Path: ...


J = TypeVar("J", bound=HasPath)
F = TypeVar("F")
R = TypeVar("R")


@contextmanager
def sigint_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back for a moment; it is delivered when the block ends.

    Around starting worker processes: a process starts with its parent's signal mask, so a
    worker starts with SIGINT blocked, and a Ctrl-C (which the terminal sends to every
    process of the scan) never becomes a traceback in it, even while it is importing.
    Around importing dlib, whose initialisation would turn a Ctrl-C into an ImportError.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def analyse_safely(path: Path, settings: DetectionSettings, data: bytes | None = None) -> Result:
    """Analyse one file (or its bytes ``data``); any failure becomes an ImageError (returned,
    so one odd file never stops a scan, and no traceback crosses the process boundary)."""
    try:
        return fc.analyze_file(path, settings, data)
    except ImageError as exc:
        return exc
    except MemoryError:
        return ImageError(path, "out of memory while analysing (try a smaller --max-size)")
    except Exception as exc:  # noqa: BLE001 - dlib raises RuntimeError for odd inputs
        text = str(exc).strip().splitlines()
        return ImageError(path, f"analysis failed ({type(exc).__name__}: {text[0][:200] if text else ''})")


# -- the results loop -----------------------------------------------------------


class Completed(Protocol[F]):
    """What :func:`in_window` needs of an ``as_completed``: futures go in with ``add`` and
    come out, done, in the order they finish (dask's ``distributed.as_completed`` is one)."""

    def add(self, future: F) -> None: ...

    def __next__(self) -> F: ...


def in_window(
    jobs: Iterator[J], submit: Callable[[J], F], window: Callable[[], int], completed: Completed[F]
) -> Iterator[tuple[J, F]]:
    """Submit ``jobs`` while fewer than ``window()`` are in flight; yield each with its future
    as it finishes, in any order. ``jobs`` is asked again after it ran out, so that a job put
    back (see :class:`PoolAnalyser`) is still taken."""
    in_flight: dict[int, J] = {}  # by id(future): a Dask future's equality is its key's
    while True:
        limit = window()  # once per refill: with Dask, asking the scheduler is a round trip
        while len(in_flight) < limit:
            job = next(jobs, None)
            if job is None:
                break
            future = submit(job)
            in_flight[id(future)] = job
            completed.add(future)
        if not in_flight:
            return
        done = next(completed)
        yield in_flight.pop(id(done)), done


class LocalCompleted(Generic[R]):
    """``as_completed`` with ``add`` for :mod:`concurrent.futures` (which has none)."""

    def __init__(self) -> None:
        self._pending: set[Future[R]] = set()
        self._done: deque[Future[R]] = deque()

    def add(self, future: Future[R]) -> None:
        self._pending.add(future)

    def __next__(self) -> Future[R]:
        if not self._done:
            if not self._pending:
                raise StopIteration
            done, pending = wait(self._pending, return_when=FIRST_COMPLETED)
            self._pending = set(pending)
            self._done.extend(done)
        return self._done.popleft()


# -- in the scanning process ------------------------------------------------------


class InlineAnalyser:
    """Detection in the scanning process, its models using every core as threads."""

    workers = 1

    def analyse(self, jobs: Iterator[J], settings: DetectionSettings) -> Generator[tuple[J, Result], None, None]:
        fc.set_threads(os.cpu_count() or 1)
        fc.warm_up(settings)
        for job in jobs:
            yield job, analyse_safely(job.path, settings)


# -- in worker processes ----------------------------------------------------------

_worker_settings: DetectionSettings | None = None


def _init_worker(settings: DetectionSettings) -> None:
    global _worker_settings
    # Ctrl-C is the parent's to handle: it stops the scan, and the workers finish the photo
    # they are on and exit. (SIGINT is blocked since the worker started: see sigint_held.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _worker_settings = settings
    fc.set_threads(1)  # one process per core already uses every core
    fc.warm_up(settings)


def _analyse(path: Path) -> Result:
    assert _worker_settings is not None
    return analyse_safely(path, _worker_settings)


class _Pool:
    """A process pool that a dying worker breaks, and that is then started again."""

    def __init__(self, workers: int, settings: DetectionSettings) -> None:
        self._workers, self._settings = workers, settings
        self._executor = self._start()
        self._generation = 0
        self._generation_of: dict[int, int] = {}  # by id(future): the pool it went to

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent runs a progress thread, and fork with threads can deadlock.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._settings,),
        )

    def _restart(self) -> None:
        self._executor.shutdown(wait=False)
        self._executor = self._start()
        self._generation += 1

    def submit(self, job: HasPath) -> Future[Result]:
        with sigint_held():  # submit may start a worker process
            try:
                future = self._executor.submit(_analyse, job.path)
            except BrokenProcessPool:  # it broke since the last result came: its futures fail on their own
                self._restart()
                future = self._executor.submit(_analyse, job.path)
        self._generation_of[id(future)] = self._generation
        return future

    def finished(self, future: Future[Result]) -> Result | None:
        """The future's result; None where its pool broke (and a fresh one took its place)."""
        generation = self._generation_of.pop(id(future))
        try:
            return future.result()
        except BrokenProcessPool:
            if generation == self._generation:  # the other futures of that pool fail too
                self._restart()
            return None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class _PutBack(Generic[J]):
    """``jobs``, after the jobs put back on ``retry`` (the last put back first)."""

    def __init__(self, jobs: Iterator[J]) -> None:
        self.jobs, self.retry = jobs, list[J]()

    def __iter__(self) -> _PutBack[J]:
        return self

    def __next__(self) -> J:
        return self.retry.pop() if self.retry else next(self.jobs)


class PoolAnalyser:
    """Detection in ``workers`` processes, a couple of jobs queued for each: enough to stay
    busy, with bounded memory."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def analyse(self, jobs: Iterator[J], settings: DetectionSettings) -> Generator[tuple[J, Result], None, None]:
        pool = _Pool(self.workers, settings)
        todo = _PutBack(jobs)
        crashed: set[Path] = set()
        try:
            for job, future in in_window(todo, pool.submit, lambda: 2 * self.workers, LocalCompleted[Result]()):
                result = pool.finished(future)
                if result is not None:
                    yield job, result
                elif job.path in crashed:
                    yield job, ImageError(job.path, "the analysing process crashed on this file")
                else:
                    # A worker died (the OOM killer, a crash in native code) and took the pool
                    # with it. Which file did it is unknown: each job in flight gets one more
                    # try in a fresh pool; a file that breaks it twice is recorded.
                    crashed.add(job.path)
                    todo.retry.append(job)
        finally:
            pool.close()
