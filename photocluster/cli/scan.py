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
    MAX_WORKERS,
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
    plural,
    print_json,
    result_shown,
    verbosity,
    worker_count,
)
from photocluster.cli.progress import ScanProgress
from photocluster.cli.render import safe_text, visible
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
            "at most 4, as memory allows).",
            min=1,
            max=MAX_WORKERS,
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

    \b
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
                store,
                paths,
                settings,
                workers=n_workers,
                retry_errors=retry_errors,
                progress=progress,
                analyser=analyser,
                tags=tags,
            )
    with result_shown():
        if as_json:
            print_json(report.as_dict())
            return
        _print_report(report)


# Files listed after a scan (duplicates, photos without a face), the first few of each.
_LISTED = 5


def _print_report(report: ScanReport) -> None:
    """The summary: the counts that say something (zeros left out; the settings and the
    engine with -v), the duplicates and the photos without a face, what to do next."""
    table = Table(title="Scan", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    moved, metadata, kept, lost = report.moved, report.metadata_only, report.faces_kept, report.faces_lost
    rows: list[tuple[str, str, bool]] = [
        ("Files", f"{report.files:,}", True),
        ("Analysed", f"{report.analysed:,}", True),
        ("Unchanged", f"{report.unchanged:,}", report.unchanged > 0),
        ("Moved or renamed", f"{moved:,} (faces and persons kept)", moved > 0),
        ("Duplicates", f"{report.duplicates:,} (same bytes as another photo: listed below)", report.duplicates > 0),
        ("Metadata only", f"{metadata:,} (same pixels: not analysed again)", metadata > 0),
        ("Missing now", f"{report.missing:,} (gone from disk since the last scan)", report.missing > 0),
        ("Faces found", f"{report.faces_found:,}", True),
        ("Faces kept", f"{report.faces_kept:,} found again in photos analysed again (ids, persons kept)", kept > 0),
        (
            "Faces lost",
            f"{report.faces_lost:,} not found again ({len(report.lost)} had a person or a correction)",
            lost > 0,
        ),
        ("Recognised", f"{plural(report.recognised, 'face')} joined named persons", report.recognised > 0),
        ("No face", f"{plural(len(report.no_faces), 'photo')} (listed below)", bool(report.no_faces)),
        *_tag_rows(report.tags),
        ("Bad files", f"{len(report.errors):,} (listed on stderr)", bool(report.errors)),
        ("Time", f"{report.seconds:.1f} s", True),
    ]
    if verbosity() > 0:
        rows.append(("Settings", f"{report.settings}, {plural(report.workers, 'worker')}", True))
        rows.append(("Engine", f"{report.engine} ({report.dlib})", True))
    for k, v, shown in rows:
        if shown:
            table.add_row(k, safe_text(v))
    out.print(table)
    if report.duplicate_of:
        out.print("Duplicates (the same file as a photo analysed before, whose faces they share):")
        for path, same_as in report.duplicate_of[:_LISTED]:
            out.print(f"  {visible(path)}: the same as {visible(same_as)}")
        if len(report.duplicate_of) > _LISTED:
            out.print(f"  ... and {len(report.duplicate_of) - _LISTED:,} more (see --json)")
    if report.no_faces:
        out.print(f"No face found in {plural(len(report.no_faces), 'photo')} (too small, blurred, turned away?):")
        for path in report.no_faces[:_LISTED]:
            out.print(f"  {visible(path)}")
        more = f"... and {len(report.no_faces) - _LISTED:,} more: " if len(report.no_faces) > _LISTED else ""
        out.print(f"  {more}`photocluster photos --no-faces` lists every photo without a face")
    _print_notes(report)
    if report.faces_found or report.moved or report.missing:
        out.print("Next: `photocluster clusters` groups the faces by person.")
    elif report.files == 0:
        out.print("No photos found there (JPEG, PNG, HEIC, ... files).")


def _print_notes(report: ScanReport) -> None:
    notes = report.tags.get("warnings") if report.tags else None
    for note in notes[:20] if isinstance(notes, list) else []:
        err.print(f"warning: {visible(str(note))}")
    unmatched = report.tags.get("unmatched") if report.tags else None
    for tag in unmatched[:20] if isinstance(unmatched, list) else []:
        err.print(f"no face found where {tag['name']!r} is tagged: {visible(tag['path'])}")
    if report.errors:
        err.print(f"{plural(len(report.errors), 'file')} could not be used:")
        for path, reason in report.errors[:50]:
            err.print(f"  {visible(path)}: {reason}")
        if len(report.errors) > 50:
            err.print(f"  ... and {len(report.errors) - 50} more (see --json)")


def _tag_rows(tags: dict[str, object]) -> list[tuple[str, str, bool]]:
    """The face tags read, when there were any: how many found their face."""
    count = tags.get("tags") if tags else None
    if not isinstance(count, int) or count == 0:
        return []
    unmatched = tags.get("unmatched")
    parts = [f"{tags['matched']} on a face"]
    if tags.get("found_on_second_look"):
        parts[0] += f" ({tags['found_on_second_look']} on a second look)"
    if isinstance(unmatched, list) and unmatched:
        parts.append(f"{len(unmatched)} without one")
    if tags.get("weak"):
        parts.append(f"{tags['weak']} weak")
    return [
        (
            "Face tags",
            f"{count} in {plural(int(tags['tagged_photos']), 'photo')}: {', '.join(parts)} "  # type: ignore[call-overload]
            "(see photocluster tags)",
            True,
        )
    ]


def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database in use, what it holds, and the dlib build.

    \b
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
        if v is not None:  # no threshold set (the defaults), never clustered
            out.print(f"{k.replace('_', ' ').capitalize()}: {v}")
