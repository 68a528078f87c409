"""What every command shares: the consoles, the shared option types, error rendering,
opening the database, JSON output and the scan progress display.

Exit codes: 0 done (a scan with bad files still completed), 1 could not run
(database, export destination, models), 2 bad usage (missing path, bad option),
130 interrupted (work done so far is kept).

Imports no other module of :mod:`photocluster.cli`; every command module imports this one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from photocluster.app.scan import ScanEvent
from photocluster.core.config import DetectionSettings, resolve_db_path
from photocluster.core.errors import PhotoclusterError
from photocluster.store import Store, as_database_error

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Database file (default: $PHOTOCLUSTER_HOME/photocluster.db, else "
        "$XDG_DATA_HOME/photocluster/photocluster.db).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
PersonArg = Annotated[str, typer.Argument(help="Person id (as listed by `clusters`) or name.", show_default=False)]

# The detection options of `scan`, shared with `eval` and `calibrate` (which measure what scan does).
DetectorOption = Annotated[str, typer.Option(help="Face detector: cnn (accurate) or hog (fast, frontal only).")]
EngineOption = Annotated[
    str, typer.Option(help="auto, onnx (dlib's models on onnxruntime, fast on CPUs) or dlib (dlib itself).")
]
UpsampleOption = Annotated[
    str,
    typer.Option(
        help="N: the CNN's pyramid upsampling (1 finds faces from 40 px); auto: enlarge small photos up to 2x "
        "instead (cheaper, faces from 80 px)."
    ),
]
MaxSizeOption = Annotated[int, typer.Option(help="Longest side, in pixels, that photos are detected at.")]


@contextmanager
def handle_errors() -> Iterator[None]:
    """Render library errors once: one line on stderr and a meaningful exit code."""
    try:
        yield
    except PhotoclusterError as exc:
        err.print(f"Error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None
    except Exception as exc:
        # SQLite's own errors, wherever one slipped past the store's translation (a row
        # read while iterating a cursor): one line, exit 1, never a traceback.
        translated = as_database_error(exc)
        if translated is None:
            raise
        err.print(f"Error: {translated}", markup=False)
        raise typer.Exit(translated.exit_code) from None


def open_store(db: Path | None) -> Store:
    """The database ``--db`` names, else the default one."""
    return Store(resolve_db_path(db))


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def detection_settings(detector: str, max_size: int, upsample: str, engine: str) -> DetectionSettings:
    """The detection options as settings (a bad value is a usage error)."""
    return DetectionSettings(detector, max_size, DetectionSettings.parse_upsample(upsample), engine)


def worker_count(workers: int | None, settings: DetectionSettings) -> int:
    """``--workers``, else the default for these settings on this machine."""
    from photocluster.app.scan import default_workers

    return workers if workers is not None else default_workers(settings)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f}/s" if speed else "-/s")


class ScanProgress:
    """A rich progress bar on stderr, shown from the first event on (so a scan that
    cannot start prints only its error)."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("photos, {task.fields[faces]} faces"),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        )
        self.started = False
        self.task: TaskID | None = None
        self.faces = 0

    def __enter__(self) -> Callable[[ScanEvent], None]:
        return self.on_event

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def on_event(self, event: ScanEvent) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if event.kind == "listing":
            self.task = self.progress.add_task("Listing files", total=None, faces=0)
        elif event.kind == "listed":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task("Scanning", total=event.total, faces=0)
        elif event.kind == "tags":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task("Reading face tags", total=event.total, faces=self.faces)
        elif event.kind in ("photo", "tag") and self.task is not None:
            self.faces += event.faces
            self.progress.update(self.task, advance=1, faces=self.faces)
        for lost in event.lost:
            # Printed as it happens: a face that took a person or a correction with it.
            self.progress.console.print(f"{lost.path}: {lost.describe()}", markup=False)
