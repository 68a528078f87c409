"""``photocluster clusters``: group the scanned faces by person, or show the plan."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from photocluster.app.recluster import ClusterReport
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
from photocluster.core.config import DEFAULT_MIN_SIZE
from photocluster.core.types import person_label
from photocluster.grouping.grouper import Method

# A terminal table of a large library lists its largest persons (and unknown); --json has all.
_TABLE_ROWS = 60

ThresholdOption = Annotated[
    float | None,
    typer.Option(
        help="The operating point on dlib's pair scale (dlib compares two faces at 0.6, the default): lower "
        "is stricter, higher looser. two-stage: every threshold of the method moves in proportion "
        "(T / 0.6); whispers: the link threshold.",
        min=0.01,
        max=2.0,
        show_default=False,
    ),
]
MethodOption = Annotated[
    Method,
    typer.Option(
        help="two-stage: strict links, then clusters merged by average distance (holds with thousands of "
        "people); whispers: plain Chinese whispers over every link shorter than --threshold.",
    ),
]


def clusters(
    db: DbOption = None,
    threshold: ThresholdOption = None,
    method: MethodOption = Method.TWO_STAGE,
    min_size: Annotated[int, typer.Option(help="Smaller clusters are 'unknown'.", min=1)] = DEFAULT_MIN_SIZE,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would change, without applying it.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Group every face again. Without it, only the faces added since the last run are placed "
            "(unless the settings changed or they are more than 20% of the library).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Group the scanned faces by person and store the persons.

    Your corrections (name, merge, move, remove, ignore) are kept: a person you named or
    corrected keeps the faces it had then, whatever --min-size or --threshold; two faces
    of one photo are never one person. Persons keep their id when most of their faces
    stay together, and get it back after a narrow run.

    After a scan adds photos, only the new faces are placed: they join persons or form
    new ones, and no face already in a person moves (seconds, even in a large library).
    --full groups every face again; so does a change of --threshold, --method or
    --min-size.

    --threshold is the operating point on dlib's pair scale (0.6, the default: dlib's
    threshold for two faces); lower splits more, higher joins more.

    \b
    Example: photocluster clusters --threshold 0.55 --plan
    Example: photocluster clusters --min-size 3 --plan
    Plain Chinese whispers at one threshold: photocluster clusters --method whispers --threshold 0.5
    """
    from photocluster.app.recluster import recluster

    with handle_errors(), open_store(db) as store:
        with err.status("Clustering faces") as status:
            # One line that says what is being done (and how far, where that is known).
            report = recluster(
                store,
                threshold,
                min_size,
                apply=not plan,
                progress=lambda p: status.update(str(p)),
                method=method,
                full=full,
            )
        summaries = [] if plan else [row for row in store.person_summaries() if not row[5]]
    with result_shown():
        _print_result(report, summaries, plan, as_json)


def _print_result(report: ClusterReport, summaries: list[Any], plan: bool, as_json: bool) -> None:
    if report.names_affected:
        err.print(f"Names affected: {', '.join(report.names_affected)}")
    if plan:
        _print_plan(report, as_json)
        return
    rows = [
        {
            "id": pid,
            "name": name,
            "label": "unknown" if pid is None else person_label(pid, name),
            "faces": n_faces,
            "photos": n_photos,
            "example": os.fsdecode(example) if example else "",
        }
        for pid, name, n_faces, n_photos, example, _ in summaries
    ]
    if as_json:
        print_json({**report.as_dict(), "persons_list": rows})
        return
    if report.faces == 0:
        out.print("No faces to group yet: run `photocluster scan PATH` first (a folder of photos).")
        return
    _print_persons(report, rows)


def _changes(report: ClusterReport) -> dict[str, int]:
    return {
        "created": len(report.created),
        "ids given back": len(report.revived),
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
    out.print(f"Plan (nothing applied): {plural(report.persons, 'person')}, {plural(report.unknown, 'unknown face')}")
    out.print(f"  {_mode(report)}", markup=False)
    for k, v in _changes(report).items():
        out.print(f"  {k}: {v}")
    for old, new in report.merged:
        out.print(f"  person {old} would merge into {'a new person' if new < 0 else f'person {new}'}")
    for pid in report.split:
        out.print(f"  person {pid} would be split")


def _mode(report: ClusterReport) -> str:
    """Which run it was and why, in one line."""
    if report.mode == "incremental":
        return f"Incremental run: {report.why} (--full groups every face again)"
    return f"Full run: {report.why}"


def _operating_point(report: ClusterReport) -> str:
    op = report.operating_point
    if op.get("method") == Method.TWO_STAGE:
        return f"two-stage at {op['threshold']:g}: links < {op['link']:.3g}, merged below {op['merge']:.3g} on average"
    return f"whispers: links < {op['threshold']:g}"


def _shares(check: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Threshold name -> (share of the same-photo pairs closer than it, its value)."""
    values = check.get("thresholds", {})
    return {k: (v, values.get(k, float("nan"))) for k, v in check["share_closer_than"].items()}


def _print_persons(report: ClusterReport, rows: list[dict[str, Any]]) -> None:
    table = Table(
        title=f"{plural(report.persons, 'person')}, {plural(report.unknown, 'unknown face')} "
        f"({_operating_point(report)})"
    )
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
        out.print(f"... {plural(len(rows) - len(shown), 'smaller person')} not shown (all are in --json)")
    out.print(", ".join(f"{k}: {v}" for k, v in _changes(report).items()))
    out.print(_mode(report), markup=False)
    check = report.operating_point.get("check")
    if isinstance(check, dict) and check.get("same_photo_pairs"):
        said = ", ".join(f"{v:.2%} closer than the {k} threshold ({t:.3g})" for k, (v, t) in _shares(check).items())
        out.print(
            f"Self-check on {check['same_photo_pairs']:,} pairs of faces sharing a photo (two people each): {said}",
        )
        crowded = check.get("crowded_pairs")
        if crowded is not None:
            under = check.get("crowded_closer_than", {})
            said = ", ".join(f"{n:,} closer than the {k} threshold as tightened there" for k, n in under.items())
            out.print(
                f"  of them {crowded:,} in crowded regions (thresholds tightened for a face)"
                + (f": {said}" if crowded else ""),
                markup=False,
            )
