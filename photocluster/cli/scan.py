"""``photocluster scan`` and ``photocluster status``: fill the database, and show what it holds."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from photocluster.app.scan_report import ScanReport
from photocluster.cli.common import (
    DbOption,
    DetectorOption,
    EngineOption,
    JsonOption,
    MaxSizeOption,
    UpsampleOption,
    detection_settings,
    err,
    handle_errors,
    open_store,
    out,
    print_json,
    worker_count,
)
from photocluster.cli.progress import ScanProgress
from photocluster.core.choices import Detector, Engine
from photocluster.core.config import DEFAULT_MAX_SIZE, DEFAULT_UPSAMPLE


def scan(
    paths: Annotated[list[Path], typer.Argument(help="Folders or files to scan.", show_default=False)],
    db: DbOption = None,
    detector: DetectorOption = Detector.CNN,
    engine: EngineOption = Engine.AUTO,
    upsample: UpsampleOption = str(DEFAULT_UPSAMPLE),
    max_size: MaxSizeOption = DEFAULT_MAX_SIZE,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes detecting in parallel (default: onnx engine: 1, using every core; dlib: one per core, "
            "at most 4, as memory allows)."
        ),
    ] = None,
    retry_errors: Annotated[bool, typer.Option(help="Try again files that failed before, even if unchanged.")] = False,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Detect on a Dask cluster: its scheduler's address (tcp://host:8786), or 'local' for --workers "
            "processes on this machine. Needs pip install 'photocluster[dask]'.",
            show_default=False,
        ),
    ] = None,
    dask_timeout: Annotated[
        float | None,
        typer.Option(
            help="With --dask: seconds the scheduler has to answer before the scan gives up (default: 10).",
            min=0.001,
            metavar="<seconds>",
            show_default=False,
        ),
    ] = None,
    ship_bytes: Annotated[
        bool,
        typer.Option(help="With --dask: send each photo's bytes to the workers (they do not see PATHS)."),
    ] = False,
    tags: Annotated[
        bool,
        typer.Option(
            help="Read the face tags already in or beside the photos (MWG and Microsoft regions, Picasa, "
            "Google Takeout): names and pins. --no-tags skips it."
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Detect, align and embed every face under PATHS. Incremental and resumable.

    Example: photocluster scan ~/Pictures --workers 2
    Example: photocluster scan /nas/photos --dask tcp://nas:8786
    """
    from photocluster.app.scan import scan as run_scan
    from photocluster.core.errors import UsageError

    with handle_errors():
        settings = detection_settings(detector, max_size, upsample, engine)
        n_workers = worker_count(workers, settings)
        if ship_bytes and dask is None:
            raise UsageError("--ship-bytes sends photos to Dask workers: use it with --dask")
        if dask_timeout is not None and dask is None:
            raise UsageError("--dask-timeout is how long a Dask scheduler has to answer: use it with --dask")
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(open_store(db))
            analyser = None
            if dask is not None:
                from photocluster.app.dask_scan import dask_analyser

                analyser = stack.enter_context(dask_analyser(dask, n_workers, ship_bytes, timeout=dask_timeout))
            progress = stack.enter_context(ScanProgress())
            report = run_scan(
                store, paths, settings, n_workers, retry_errors, progress=progress, analyser=analyser, tags=tags
            )
    if as_json:
        print_json(report.as_dict())
        return
    _print_report(report)


def _print_report(report: ScanReport) -> None:
    table = Table(title="Scan", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("Files", report.files),
        ("Analysed", report.analysed),
        ("Unchanged", report.unchanged),
        ("Moved or renamed", report.moved),
        ("Duplicates", report.duplicates),
        ("Metadata only", f"{report.metadata_only} (same pixels: not analysed again)"),
        ("Missing now", report.missing),
        ("Faces found", report.faces_found),
        ("Faces kept", f"{report.faces_kept} found again in photos analysed again (ids, persons kept)"),
        ("Faces lost", f"{report.faces_lost} not found again ({len(report.lost)} had a person or a correction)"),
        ("Recognised", f"{report.recognised} faces joined named persons"),
        *_tag_rows(report.tags),
        ("Bad files", len(report.errors)),
        ("Time", f"{report.seconds:.1f} s"),
        ("Settings", f"{report.settings}, {report.workers} worker(s)"),
        ("Engine", f"{report.engine} ({report.dlib})"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    notes = report.tags.get("warnings") if report.tags else None
    for note in notes[:20] if isinstance(notes, list) else []:
        err.print(f"warning: {_one_line_path(str(note))}", markup=False)
    unmatched = report.tags.get("unmatched") if report.tags else None
    for tag in unmatched[:20] if isinstance(unmatched, list) else []:
        err.print(f"no face found where {tag['name']!r} is tagged: {_one_line_path(tag['path'])}", markup=False)
    if report.errors:
        err.print(f"{len(report.errors)} file(s) could not be used:")
        for path, reason in report.errors[:50]:
            err.print(f"  {_one_line_path(path)}: {reason}", markup=False)
        if len(report.errors) > 50:
            err.print(f"  ... and {len(report.errors) - 50} more (see --json)")


def _tag_rows(tags: dict[str, object]) -> list[tuple[str, object]]:
    if not tags:
        return []
    unmatched = tags.get("unmatched")
    return [
        (
            "Face tags",
            f"{tags['tags']} in {tags['tagged_photos']} photos: {tags['matched']} on a face "
            f"({tags['found_on_second_look']} on a second look), {len(unmatched) if isinstance(unmatched, list) else 0}"
            f" without one, {tags['weak']} weak (see photocluster tags)",
        )
    ]


def _one_line_path(path: str) -> str:
    """A file name as one line of text: control characters (a newline in a name), invisible
    ones and bytes that are not UTF-8 are shown as escapes (``\\n``, ``\\u202e``, ``\\xff``)."""
    out = []
    for ch in path:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a byte os.fsdecode could not decode
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)


def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database in use, what it holds, and the dlib build.

    Example: photocluster status --json
    """
    from photocluster.detect.faces import dlib_build

    with handle_errors(), open_store(db) as store:
        counts = store.counts()
        doc = {
            "database": os.fsdecode(store.path),
            "schema_version": store.schema_version,
            "photos": counts["done"],
            "bad_files": counts["error"],
            "missing_files": counts["missing"],
            "faces": counts["faces"],
            "persons": counts["persons"],
            "threshold": store.get_setting("cluster.threshold") or None,
            "cluster_method": store.get_setting("cluster.method"),
            "dlib": dlib_build().describe(),
        }
    if as_json:
        print_json(doc)
        return
    for k, v in doc.items():
        out.print(f"{k.replace('_', ' ').capitalize()}: {v}", markup=False)
