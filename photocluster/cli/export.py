"""``photocluster export``: one folder per person, index.json and the review pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from photocluster.cli.common import (
    DbOption,
    JsonOption,
    err,
    handle_errors,
    open_store,
    out,
    plural,
    print_json,
    result_shown,
)
from photocluster.cli.progress import ProgressBars
from photocluster.core.choices import ExportMode, XmpTarget

if TYPE_CHECKING:
    from photocluster.app.export import ExportReport

_SHOWN = 10  # skipped entries and warnings printed, at most; the rest are counted


def export(
    dest: Annotated[Path, typer.Argument(help="Folder to write (created if needed).")] = Path("photocluster-export"),
    db: DbOption = None,
    mode: Annotated[ExportMode, typer.Option(help="How photos appear in person folders.")] = ExportMode.SYMLINK,
    crops: Annotated[
        bool, typer.Option("--crops", help="Also write aligned face chips: crops/<person folder>/<face id>.jpg.")
    ] = False,
    xmp: Annotated[
        XmpTarget | None,
        typer.Option(
            help="Also write XMP sidecars with MWG face regions (<photo>.xmp): beside the photos in DEST, "
            "or beside the originals (merged into existing sidecars, never overwriting their other content).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write one folder per person (and unknown/) with their photos, plus index.json and the
    review pages: index.html (the persons, largest first) and pages/ (each person's faces,
    the faces most in doubt, the unknown faces), paged and with thumbnails; they open offline.

    \b
    Example: photocluster export ~/People --mode hardlink --xmp dest
    """
    from photocluster.app.export import export as run_export

    with handle_errors(), open_store(db) as store, ProgressBars() as on_progress:
        report = run_export(store, dest, mode, crops=crops, xmp=xmp, on_progress=on_progress)
    with result_shown():
        _print_report(report, crops, xmp, as_json)


def _print_report(report: ExportReport, crops: bool, xmp: XmpTarget | None, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    out.print(
        f"Exported {plural(report.persons, 'person')} and {plural(report.unknown_faces, 'unknown face')} "
        f"to {report.dest} "
        f"({report.created} new, {report.updated} updated, {report.removed} removed, {report.unchanged} unchanged"
        + (f", {report.kept} kept as you changed them)" if report.kept else ")"),
    )
    extras = [plural(report.thumbnails, "thumbnail")]
    if crops:
        extras.append(plural(report.crops, "face chip"))
    if xmp:
        extras.append(f"{plural(report.sidecars, 'XMP sidecar')} ({xmp})")
    review = f"; review page: {report.review}" if report.review else ""
    out.print(", ".join(extras) + review)
    # A count and the first few: a library on a disk that is gone has one per photo.
    for rel in report.skipped[:_SHOWN]:
        err.print(f"  skipped {rel}: a file that photocluster did not write is in the way, or the photo is gone")
    if len(report.skipped) > _SHOWN:
        err.print(f"  ... {len(report.skipped) - _SHOWN} more photo entries skipped")
    for warning in report.warnings[:_SHOWN]:
        err.print(f"  {warning}")
    if report.warning_count > _SHOWN:
        err.print(f"  ... {report.warning_count} warnings in all (the first {_SHOWN} shown)")
