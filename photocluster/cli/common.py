"""What every command shares: the consoles, the shared option types, error rendering,
opening the database, JSON output and the log lines of ``--verbose``.

Exit codes: 0 done (a scan with bad files still completed), 1 could not run
(database, export destination, models), 2 bad usage (missing path, bad option),
130 interrupted (work done so far is kept).

Imports no other module of :mod:`photocluster.cli` but :mod:`~photocluster.cli.render`; every
command module imports this one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from photocluster.cli.render import SafeConsole, visible
from photocluster.core.choices import Detector, Engine
from photocluster.core.config import DetectionSettings, resolve_db_path
from photocluster.core.errors import PhotoclusterError
from photocluster.core.ids import parse_id
from photocluster.store import Store, as_database_error

# Every string printed through these is plain text with control characters shown (see render).
out = SafeConsole(soft_wrap=True)
err = SafeConsole(stderr=True, soft_wrap=True)

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


def id_parser(what: str, minimum: int = 0) -> Callable[[str], int]:
    """A typer ``parser`` for an id or a count: :func:`~photocluster.core.ids.parse_id`'s
    ASCII digits within SQLite's integer, at least ``minimum``, else a usage error (exit 2)."""

    def parse(value: str | int) -> int:
        if isinstance(value, int):  # a default
            return value
        try:
            number = parse_id(value, what)
        except PhotoclusterError as exc:
            raise typer.BadParameter(visible(exc)) from None
        if number < minimum:
            raise typer.BadParameter(f"{what} must be {minimum} or more, not {number}")
        return number

    return parse


FaceArg = Annotated[
    int,
    typer.Argument(
        help="Face id (as listed by `faces` or the review page).",
        show_default=False,
        parser=id_parser("a face id"),
    ),
]
PersonArg = Annotated[str, typer.Argument(help="Person id (as listed by `clusters`) or name.", show_default=False)]

# The detection options of `scan`, shared with `eval` and `calibrate` (which measure what scan does).
DetectorOption = Annotated[Detector, typer.Option(help="Face detector: cnn (accurate) or hog (fast, frontal only).")]
EngineOption = Annotated[
    Engine,
    typer.Option(
        help="What runs dlib's networks: onnx (dlib's models on onnxruntime, fast on CPUs), dlib (dlib itself), "
        "torch (dlib's models on PyTorch, for a CUDA GPU: pip install 'photocluster[gpu]') or auto (dlib on "
        "a CUDA GPU, else torch on one, else onnx)."
    ),
]
UpsampleOption = Annotated[
    str,
    typer.Option(
        help="N: the CNN's pyramid upsampling (1 finds faces from 40 px); auto: enlarge small photos up to 2x "
        "instead (cheaper, faces from 80 px)."
    ),
]
# More processes than any machine runs usefully (a bigger number is a typo, or 2**64).
MAX_WORKERS = 1024
MaxSizeOption = Annotated[int, typer.Option(help="Longest side, in pixels, that photos are detected at.")]


@contextmanager
def handle_errors() -> Iterator[None]:
    """Render library errors once: one line on stderr and a meaningful exit code."""
    try:
        yield
    except PhotoclusterError as exc:
        err.print(f"Error: {exc}")
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
        err.print(f"Error: {translated}")
        raise typer.Exit(translated.exit_code) from None


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless it is one: "1 photo", "2 photos", "0 faces"
    (``many`` for a word whose plural is not ``word + "s"``: "person", "persons")."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")]


def can_ask() -> bool:
    """Whether a person is there to answer a question: stdin is a terminal (not a pipe, a
    script or a cron job, where a command that would ask refuses instead)."""
    return sys.stdin.isatty()


def when(at: float) -> str:
    """A timestamp as local date and time, to the second."""
    import datetime as dt

    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


@contextmanager
def result_shown() -> Iterator[None]:
    """Around printing a result that was already applied (a clustering, a correction): a
    failure to print it (a closed pipe, a bug) is one line and exit 1, never a traceback
    that hides that the work was done."""
    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the result is stored; say so in one line
        err.print(f"Error: done and saved, but the result could not be printed ({type(exc).__name__}: {exc})")
        raise typer.Exit(1) from None


def open_store(db: Path | None) -> Store:
    """The database ``--db`` names, else the default one."""
    return Store(resolve_db_path(db))


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def detection_settings(detector: Detector, max_size: int, upsample: str, engine: Engine) -> DetectionSettings:
    """The detection options as settings (a bad value is a usage error)."""
    return DetectionSettings(detector, max_size, DetectionSettings.parse_upsample(upsample), engine)


def worker_count(workers: int | None, settings: DetectionSettings) -> int:
    """``--workers``, else the default for these settings on this machine."""
    from photocluster.app.scan import default_workers

    return workers if workers is not None else default_workers(settings)


class _StderrLines(logging.Handler):
    """Each record as one line on the stderr console, unwrapped (a path stays whole), and printed
    above a progress bar rather than through it, since the bar draws through the same console."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err.print(self.format(record), soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging's own contract: a handler never raises
            self.handleError(record)


# How many -v the root options had: some commands say more with them.
_verbosity = 0


def verbosity() -> int:
    """How many ``-v`` were given (0: none)."""
    return _verbosity


# The handler --verbose put on the library's loggers (replaced when commands run again in one process).
_log_handler: logging.Handler | None = None


def configure_logging(verbose: int) -> None:
    """The library's log lines on stderr: warnings only, -v adds INFO (what each step
    decided), -vv DEBUG (each file). stdout is left to the result and ``--json``."""
    global _log_handler, _verbosity
    _verbosity = verbose
    logger = logging.getLogger("photocluster")
    if _log_handler is not None:
        logger.removeHandler(_log_handler)
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _StderrLines()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    _log_handler = handler
