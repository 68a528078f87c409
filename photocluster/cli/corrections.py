"""The corrections: ``name``, ``merge``, ``move``, ``remove``, ``ignore``, ``undo`` and ``history``.

Each is kept by later clusterings and scans, and ``undo`` reverts the latest one.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from photocluster.cli.common import (
    DbOption,
    FaceArg,
    JsonOption,
    PersonArg,
    handle_errors,
    id_parser,
    open_store,
    out,
    print_json,
    result_shown,
)


def _correction(result: Any, as_json: bool) -> None:
    with result_shown():
        if as_json:
            print_json(result.as_dict())
        else:
            out.print(f"Done: {result.command} ({result.faces} face(s)). `photocluster undo` reverts it.")


def name(
    person: PersonArg,
    new_name: Annotated[str, typer.Argument(metavar="NAME", help="The name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a person a name. Names survive re-clustering and new scans.

    Example: photocluster name 3 "Aunt Rose"
    """
    from photocluster.app.corrections import name_person

    with handle_errors(), open_store(db) as store:
        _correction(name_person(store, person, new_name), as_json)


def merge(
    person: PersonArg,
    others: Annotated[list[str], typer.Argument(help="Persons to merge into the first.", show_default=False)],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge persons into the first one, for good (later clusterings keep them together).

    Example: photocluster merge 3 7 12
    """
    from photocluster.app.corrections import merge_persons

    with handle_errors(), open_store(db) as store:
        _correction(merge_persons(store, person, others), as_json)


def move(face: FaceArg, person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Move a face to a person, for good; it never rejoins the person it leaves.

    Example: photocluster move 1042 "Aunt Rose"
    """
    from photocluster.app.corrections import move_face

    with handle_errors(), open_store(db) as store:
        _correction(move_face(store, face, person), as_json)


def remove(face: FaceArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Take a face out of its person: it becomes unknown and never rejoins that person.

    Example: photocluster remove 1042
    """
    from photocluster.app.corrections import remove_face

    with handle_errors(), open_store(db) as store:
        _correction(remove_face(store, face), as_json)


def ignore(
    person: PersonArg,
    undo_it: Annotated[bool, typer.Option("--undo", help="Show the person again.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hide a person (strangers in the background) from listings and exports.

    Example: photocluster ignore 15
    """
    from photocluster.app.corrections import ignore_person

    with handle_errors(), open_store(db) as store:
        _correction(ignore_person(store, person, ignored=not undo_it), as_json)


def undo(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Revert the latest correction (name, merge, move, remove, ignore).

    Example: photocluster undo
    """
    from photocluster.app.corrections import undo as run_undo

    with handle_errors(), open_store(db) as store:
        command = run_undo(store)
    with result_shown():
        if as_json:
            print_json({"undone": command})
        else:
            out.print(f"Undone: {command}")


def history(
    db: DbOption = None,
    limit: Annotated[
        int, typer.Option(help="How many corrections to show.", parser=id_parser("a count", 1), metavar="INTEGER")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the corrections made, newest first.

    Example: photocluster history --limit 10
    """
    import datetime as dt

    from photocluster.app.corrections import history as get_history

    with handle_errors(), open_store(db) as store:
        rows = get_history(store, limit)
    if as_json:
        print_json(rows)
        return
    table = Table()
    for col in ("#", "When", "Correction", ""):
        table.add_column(col)
    for r in rows:
        when = dt.datetime.fromtimestamp(float(r["at"])).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[arg-type]
        table.add_row(str(r["id"]), when, str(r["command"]), "undone" if r["undone"] else "")
    out.print(table)
