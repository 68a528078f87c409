"""``photocluster tags``: the face tags read from the photos, and where photocluster disagrees."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from photocluster.cli.common import DbOption, JsonOption, handle_errors, open_store, out, plural, print_json


def tags(
    db: DbOption = None,
    conflicts: Annotated[
        bool,
        typer.Option(
            "--conflicts",
            help="Only the conflicts: tagged faces photocluster puts in, or nearer, a person of another name.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the face tags scan read (MWG and Microsoft regions, Picasa, Google Takeout): the
    face each names and the person that face is in now; then the conflicts.

    \b
    Example: photocluster tags --conflicts
    """
    from photocluster.app.tags import tag_conflicts, tag_listing

    with handle_errors(), open_store(db) as store:
        rows = [] if conflicts else tag_listing(store)
        found = tag_conflicts(store)
    if as_json:
        doc: dict[str, object] = {"conflicts": [c.as_dict() for c in found]}
        print_json(doc if conflicts else {"tags": rows, **doc})
        return
    if not conflicts:
        table = Table(title=plural(len(rows), "face tag"))
        for col in ("Name", "Source", "Status", "Face", "Person now", "Photo"):
            table.add_column(col, overflow="fold")
        for r in rows:
            person = r["person_name"] or ("-" if r["person"] is None else f"person {r['person']}")
            face = "-" if r["face"] is None else str(r["face"])
            table.add_row(str(r["name"]), str(r["source"]), str(r["status"]), face, str(person), str(r["photo"]))
        out.print(table)
    if not found:
        out.print("No conflicts: every tagged face is with the person of its name.")
        return
    out.print(f"{plural(len(found), 'conflict')}:")
    for c in found:
        out.print(f"  {c.describe()}")
