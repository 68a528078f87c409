"""The one progress display: the library's :class:`~photocluster.core.progress.Progress` events
drawn on stderr as rich progress bars, one per phase (stdout stays for the result and ``--json``).

Imports only :mod:`photocluster.cli.common` of the CLI; the commands that run long tasks import it.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars
from rich.text import Text

from photocluster.app.scan import ScanEvent
from photocluster.cli.common import err
from photocluster.cli.render import safe_text
from photocluster.core.progress import Progress, ProgressCallback


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("-/s")
        return Text(f"{speed:.2f}/s" if speed < 100 else f"{speed:,.0f}/s")


class _Field(ProgressColumn):
    """A task's description or one of its fields, as :func:`~photocluster.cli.render.visible` text."""

    def __init__(self, field: str | None = None) -> None:
        super().__init__()
        self.field = field

    def render(self, task: Task) -> Text:
        return safe_text(task.description if self.field is None else task.fields.get(self.field, ""))


class ProgressBars:
    """A bar per phase on stderr, shown from the first event on (so a command that cannot
    start prints only its error). A phase whose size was never known (listing files) goes
    when the next one starts; the others stay, finished, above it.

    ``with ProgressBars() as progress:`` gives the callback to hand the library.
    """

    def __init__(self) -> None:
        self.bars = Bars(
            # A finished phase is ticked (and its line never starts blank, as a message's indent does).
            SpinnerColumn(finished_text="✓"),
            _Field(),
            BarColumn(),
            MofNCompleteColumn(),
            _Field("note"),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        )
        self.started = False
        self.phase: str | None = None
        self.task: TaskID | None = None
        self.sized = False

    def __enter__(self) -> ProgressCallback:
        return self.update

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.bars.stop()

    def update(self, event: Progress) -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        self.seen(event.item)
        if event.phase != self.phase or self.task is None:
            if self.task is not None and not self.sized:
                self.bars.remove_task(self.task)
            self.phase, self.sized = event.phase, False
            self.task = self.bars.add_task(event.phase, total=event.total, note=self.note())
        self.sized = self.sized or event.total is not None
        self.bars.update(self.task, completed=event.done, total=event.total, note=self.note())

    def seen(self, item: object) -> None:
        """What a subclass does with an event's ``item``."""

    def note(self) -> str:
        """The text beside the count."""
        return ""


class ScanProgress(ProgressBars):
    """Scan's bars: the faces found so far beside the count, and each face that took a
    person or a correction with it printed as it happens."""

    def __init__(self) -> None:
        super().__init__()
        self.faces = 0

    def seen(self, item: object) -> None:
        if not isinstance(item, ScanEvent):
            return
        self.faces += item.faces
        for lost in item.lost:
            self.bars.console.print(f"{lost.path}: {lost.describe()}")

    def note(self) -> str:
        return f"photos, {self.faces} faces"
