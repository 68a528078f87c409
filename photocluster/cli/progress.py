"""The one progress display: the library's :class:`~photocluster.core.progress.Progress` events
drawn on stderr as rich progress bars, one per phase (stdout stays for the result and ``--json``).

Imports only :mod:`photocluster.cli.common` of the CLI; the commands that run long tasks import it.
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bars
from rich.table import Column
from rich.text import Text

from photocluster.app.scan_report import SCANNING, ScanEvent
from photocluster.cli.common import err
from photocluster.cli.render import safe_text
from photocluster.core.progress import Progress, ProgressCallback


class _RateColumn(ProgressColumn):
    """Units per second: the phase's own figure (``rate`` among its fields, None: not known
    yet) where it gives one, else rich's estimate."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("rate", task.finished_speed or task.speed)
        if not speed:
            return Text("-/s")
        return Text(f"{speed:.2f}/s" if speed < 100 else f"{speed:,.0f}/s")


class _EtaColumn(ProgressColumn):
    """The time left: the phase's own estimate (``eta`` among its fields, seconds, None:
    not known yet) where it gives one, else rich's; nothing once the phase is done."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("")
        left = task.fields.get("eta", task.time_remaining)
        if left is None:
            return Text("ETA -:--:--")
        minutes, seconds = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        return safe_text(f"ETA {hours}:{minutes:02d}:{seconds:02d}")


class _Field(ProgressColumn):
    """A task's description or one of its fields, as :func:`~photocluster.cli.render.visible` text."""

    def __init__(self, field: str | None = None) -> None:
        # One line per bar, however narrow the terminal: a long phase name is cut, not wrapped.
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))
        self.field = field

    def render(self, task: Task) -> Text:
        return safe_text(task.description if self.field is None else task.fields.get(self.field, ""))


class ProgressBars:
    """A bar per phase on stderr, shown from the first event on (so a command that cannot
    start prints only its error). A phase whose size was never known (listing files) goes
    when the next one starts; the others stay, finished, above it. With ``main``, the
    task's own phase, the other phases go when the task ends: the last line left on screen
    is the task's total, not a sub-phase.

    ``with ProgressBars() as progress:`` gives the callback to hand the library.
    """

    def __init__(self, main: str | None = None) -> None:
        self.bars = Bars(
            # A finished phase is ticked (and its line never starts blank, as a message's indent does).
            SpinnerColumn(finished_text="✓"),
            _Field(),
            BarColumn(),
            MofNCompleteColumn(),
            _Field("note"),
            _RateColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            console=err,
        )
        self.main = main
        self.started = False
        self.phase: str | None = None
        self.task: TaskID | None = None
        self.sized = False

    def __enter__(self) -> ProgressCallback:
        return self.update

    def __exit__(self, *exc: object) -> None:
        if not self.started:
            return
        if self.main is not None and any(t.description == self.main for t in self.bars.tasks):
            for task in list(self.bars.tasks):
                if task.description != self.main:
                    self.bars.remove_task(task.id)
        self.bars.stop()

    def update(self, event: Progress) -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        self.seen(event.item)
        fields = self.fields(event)
        if event.phase != self.phase or self.task is None:
            if self.task is not None and not self.sized:
                self.bars.remove_task(self.task)
            self.phase, self.sized = event.phase, False
            self.task = self.bars.add_task(event.phase, total=event.total, **fields)
        self.sized = self.sized or event.total is not None
        self.bars.update(self.task, completed=event.done, total=event.total, **fields)

    def seen(self, item: object) -> None:
        """What a subclass does with an event's ``item``."""

    def fields(self, event: Progress) -> dict[str, Any]:
        """The fields of the phase's bar: ``note`` (the text beside the count), and where a
        subclass knows better than rich, ``rate`` and ``eta`` (see the columns)."""
        return {"note": self.note()}

    def note(self) -> str:
        """The text beside the count."""
        return ""


class ScanProgress(ProgressBars):
    """Scan's bars: the faces found so far beside the count, and each face that took a
    person or a correction with it printed as it happens. The scanning phase stays last on
    screen; its rate and time left count the photos analysed only (an unchanged file takes
    no time: a rescan that skips hundreds of them first would promise an end far too soon),
    and the time left assumes that each file still to come needs analysing."""

    def __init__(self) -> None:
        super().__init__(main=SCANNING)
        self.faces = 0
        self.analysed = 0
        self.since: float | None = None  # when the scanning phase started
        self.clock = time.monotonic

    def seen(self, item: object) -> None:
        if not isinstance(item, ScanEvent):
            return
        self.faces += item.faces
        self.analysed += item.outcome == "analysed"
        for lost in item.lost:
            self.bars.console.print(f"{lost.path}: {lost.describe()}")

    def fields(self, event: Progress) -> dict[str, Any]:
        fields = super().fields(event)
        if event.phase != SCANNING:
            return fields
        now = self.clock()
        if self.since is None:
            self.since = now
        rate = self.analysed / (now - self.since) if self.analysed and now > self.since else None
        left = None if rate is None or event.total is None else (event.total - event.done) / rate
        return {**fields, "rate": rate, "eta": left}

    def note(self) -> str:
        return f"photos, {self.faces} faces"
