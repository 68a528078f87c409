"""One shape for progress, shared by every long task.

A task that takes a while (scan, reading face tags, clustering, the neighbour search, export)
takes a ``progress`` callback, a :data:`ProgressCallback`, and calls it with a :class:`Progress`
each time it moves on: the phase it is in, how much of it is done, of how much. The CLI draws
them (a bar per phase, or one status line); a script can log them, or pass None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Where a task stands.

    ``phase`` says what is being done, in words fit to show as they are ("Scanning",
    "Finding neighbours of 12,000 faces"); a new phase starts counting again. ``done`` of
    ``total`` units of it are done (``total`` None: not known, at least not yet). ``item``
    is what was just done, where the task has more to say about it than a count: scan gives
    its :class:`~photocluster.app.scan.ScanEvent` (a photo's outcome, faces, lost faces),
    reading face tags the photo's path.
    """

    phase: str
    done: int = 0
    total: int | None = None
    item: object = None

    def __post_init__(self) -> None:
        if self.done < 0 or (self.total is not None and self.total < 0):
            raise ValueError(f"progress counts are never negative, got {self.done} of {self.total}")

    def __str__(self) -> str:
        """One line: the phase, and how far it is when that is known ("Grouping: 40%")."""
        if not self.total:
            return self.phase
        return f"{self.phase}: {self.done / self.total:.0%}"


ProgressCallback = Callable[[Progress], None]


def ignore_progress(event: Progress) -> None:
    """The callback of a caller that passed None."""


def report_to(progress: ProgressCallback | None) -> ProgressCallback:
    """``progress``, or a callback that ignores what it is told."""
    return progress if progress is not None else ignore_progress
