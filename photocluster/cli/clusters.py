"""``photocluster clusters``: group the scanned faces by person, or show the plan."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from photocluster.app.recluster import ClusterReport
from photocluster.cli.common import DbOption, JsonOption, err, handle_errors, open_store, out, print_json
from photocluster.core.config import DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD

# A terminal table of a large library lists its largest persons (and unknown); --json has all.
_TABLE_ROWS = 60


def clusters(
    db: DbOption = None,
    threshold: Annotated[
        float, typer.Option(help="Faces closer than this are linked (dlib's model: 0.6).", min=0.0, max=2.0)
    ] = DEFAULT_THRESHOLD,
    min_size: Annotated[int, typer.Option(help="Smaller clusters are 'unknown'.", min=1)] = DEFAULT_MIN_SIZE,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would change, without applying it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Group the scanned faces by person (Chinese whispers) and store the persons.

    Your corrections (name, merge, move, remove, ignore) are kept; two faces of one
    photo are never one person. Persons keep their id and name when most of their faces
    stay together.

    Example: photocluster clusters --threshold 0.55 --min-size 3 --plan
    """
    from photocluster.app.recluster import recluster

    with handle_errors(), open_store(db) as store:
        with err.status("Clustering faces") as status:
            report = recluster(store, threshold, min_size, apply=not plan, progress=status.update)
        summaries = [] if plan else [row for row in store.person_summaries() if not row[5]]
    if report.names_affected:
        err.print(f"Names affected: {', '.join(report.names_affected)}", markup=False)
    if plan:
        _print_plan(report, as_json)
        return
    rows = [
        {
            "id": pid,
            "name": name,
            "label": "unknown" if pid is None else (name or f"person_{pid:04d}"),
            "faces": n_faces,
            "photos": n_photos,
            "example": os.fsdecode(example) if example else "",
        }
        for pid, name, n_faces, n_photos, example, _ in summaries
    ]
    if as_json:
        print_json({**report.as_dict(), "persons_list": rows})
        return
    _print_persons(report, rows, threshold)


def _changes(report: ClusterReport) -> dict[str, int]:
    return {
        "created": len(report.created),
        "merged": len(report.merged),
        "split": len(report.split),
        "removed": len(report.removed),
        "faces moved": report.faces_moved,
        "new faces placed": report.faces_new,
    }


def _print_plan(report: ClusterReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    out.print(f"Plan (nothing applied): {report.persons} persons, {report.unknown} unknown faces")
    for k, v in _changes(report).items():
        out.print(f"  {k}: {v}")
    for old, new in report.merged:
        out.print(f"  person {old} would merge into {'a new person' if new < 0 else f'person {new}'}")
    for pid in report.split:
        out.print(f"  person {pid} would be split")


def _print_persons(report: ClusterReport, rows: list[dict[str, Any]], threshold: float) -> None:
    table = Table(title=f"{report.persons} persons, {report.unknown} unknown faces (threshold {threshold})")
    for col in ("Person", "Name", "Faces", "Photos", "Example"):
        table.add_column(col, overflow="fold")
    shown = rows if len(rows) <= _TABLE_ROWS else [*rows[: _TABLE_ROWS - 1], rows[-1]]
    for r in shown:
        table.add_row(
            "unknown" if r["id"] is None else str(r["id"]),
            str(r["name"] or ""),
            str(r["faces"]),
            str(r["photos"]),
            str(r["example"]),
        )
    out.print(table)
    if len(shown) < len(rows):
        out.print(f"... {len(rows) - len(shown)} smaller persons not shown (all are in --json)")
    out.print(", ".join(f"{k}: {v}" for k, v in _changes(report).items()))
