"""The results loop shared by the process pool and Dask (photocluster.app.pool.in_window)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from photocluster.app.pool import LocalCompleted, _PutBack, in_window


@dataclass(frozen=True)
class Job:
    path: Path


def jobs(n: int) -> Iterator[Job]:
    return (Job(Path(f"{k}.jpg")) for k in range(n))


def test_in_window_keeps_at_most_the_window_in_flight_and_yields_every_job() -> None:
    submitted = 0

    def submit(job: Job) -> Future[Path]:
        nonlocal submitted
        submitted += 1
        return pool.submit(Path, job.path)

    with ThreadPoolExecutor(4) as pool:
        in_flight_seen: list[int] = []
        done: list[Path] = []
        for job, future in in_window(jobs(20), submit, lambda: 3, LocalCompleted[Path]()):
            in_flight_seen.append(submitted - len(done))
            assert future.result() == job.path
            done.append(job.path)
    assert sorted(done) == sorted(Path(f"{k}.jpg") for k in range(20))
    assert max(in_flight_seen) <= 3


def test_a_job_put_back_after_the_jobs_ran_out_is_still_taken() -> None:
    todo = _PutBack(jobs(2))
    seen: list[Path] = []
    with ThreadPoolExecutor(1) as pool:
        for job, _future in in_window(todo, lambda j: pool.submit(Path, j.path), lambda: 2, LocalCompleted[Path]()):
            seen.append(job.path)
            if job.path == Path("1.jpg") and seen.count(job.path) == 1:
                todo.retry.append(job)  # as a broken pool's job is
    assert sorted(seen) == [Path("0.jpg"), Path("1.jpg"), Path("1.jpg")]
