"""The corrections: ``name``, ``merge``, ``move``, ``remove``, ``ignore``, ``born``, ``undo`` and ``history``.

Each is kept by later clusterings and scans, and ``undo`` reverts the latest one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from photocluster.cli.common import (
    DbOption,
    JsonOption,
    PersonArg,
    YesOption,
    can_ask,
    err,
    handle_errors,
    open_store,
    out,
    plural,
    print_json,
    when,
)

if TYPE_CHECKING:
    from photocluster.app.corrections import Correction
    from photocluster.core.errors import NameTakenError
    from photocluster.store import Store

FaceArg = Annotated[int, typer.Argument(help="Face id (as listed by `faces` or the review page).", show_default=False)]


def _correction(result: Correction, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    note = f": {result.note}" if result.note else ""
    out.print(
        f"Done: {result.command} ({plural(result.faces, 'face')}){note}. `photocluster undo` reverts it.", markup=False
    )


def name(
    person: PersonArg,
    new_name: Annotated[str, typer.Argument(metavar="NAME", help="The name.")],
    merge_them: Annotated[
        bool,
        typer.Option("--merge", help="When another person has this name already: merge this one into it."),
    ] = False,
    duplicate: Annotated[
        bool,
        typer.Option(
            "--duplicate", help="When another person has this name already: name this one too (two people, one name)."
        ),
    ] = False,
    yes: YesOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a person a name. Names survive re-clustering and new scans.

    A name another person already has is most often the same person, found twice: you are
    asked whether to merge the two (--merge or --yes merges without asking; without a
    terminal to ask on, nothing is changed unless --merge or --duplicate is given).

    \b
    Example: photocluster name 3 "Aunt Rose"
    Example: photocluster name 12 "Aunt Rose" --merge
    """
    from photocluster.app.corrections import name_person
    from photocluster.core.errors import NameTakenError

    with handle_errors(), open_store(db) as store:
        try:
            result = name_person(store, person, new_name, duplicate=duplicate)
        except NameTakenError as taken:
            result = _name_taken(store, taken, merge_them or yes)
        _correction(result, as_json)


def _name_taken(store: Store, taken: NameTakenError, merge_them: bool) -> Correction:
    """Another person has the name already: merge into it when told to, or when the person
    at the terminal says so."""
    from photocluster.app.corrections import merge_persons
    from photocluster.core.errors import UsageError

    holder, pid = taken.holders[0], taken.person_id
    if not merge_them:
        if not can_ask():
            raise UsageError(
                f"{taken}: if it is the same person, `photocluster merge {holder} {pid}` makes them one "
                "(or add --merge); --duplicate names both"
            )
        err.print(f"P{str(taken)[1:]}.", markup=False)
        question = f"Is person {pid} the same person? Merge it into person {holder} ({taken.name})"
        if not typer.confirm(question, default=False, err=True):
            err.print(f"Nothing changed (--duplicate names person {pid} {taken.name!r} too).", markup=False)
            raise typer.Exit(1)
    return merge_persons(store, str(holder), [str(pid)])


def merge(
    person: PersonArg,
    others: Annotated[list[str], typer.Argument(help="Persons to merge into the first.", show_default=False)],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge persons into the first one, for good (later clusterings keep them together).
    The first keeps its id and its name (when it has none, it takes the first name among
    the others); what stays and what goes is said.

    \b
    Example: photocluster merge 3 7 12
    """
    from photocluster.app.corrections import merge_persons

    with handle_errors(), open_store(db) as store:
        _correction(merge_persons(store, person, others), as_json)


def move(face: FaceArg, person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Move a face to a person, for good; it never rejoins the person it leaves.

    \b
    Example: photocluster move 1042 "Aunt Rose"
    """
    from photocluster.app.corrections import move_face

    with handle_errors(), open_store(db) as store:
        _correction(move_face(store, face, person), as_json)


def remove(face: FaceArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Take a face out of its person: it becomes unknown and never rejoins that person.

    \b
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

    \b
    Example: photocluster ignore 15
    """
    from photocluster.app.corrections import ignore_person

    with handle_errors(), open_store(db) as store:
        _correction(ignore_person(store, person, ignored=not undo_it), as_json)


def born(
    person: PersonArg,
    date: Annotated[
        str | None, typer.Argument(metavar="YYYY-MM-DD", help="The birth date.", show_default=False)
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the person's birth date.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a person's birth date: no face in a photo taken before it is theirs (EXIF date, else
    the file's). Clustering, recognition, suggest and move keep it; pages, `faces` and index.json
    show the age at each photo. Faces of the person dated before it leave the person.

    Example: photocluster born "Emma" 2019-05-31
    """
    from photocluster.app.corrections import set_born
    from photocluster.core.errors import UsageError

    with handle_errors(), open_store(db) as store:
        if clear == (date is not None):
            raise UsageError("give a birth date (YYYY-MM-DD) or --clear, not both")
        result = set_born(store, person, None if clear else date)
    if as_json:
        print_json(result.as_dict())
        return
    left = f", {result.faces} face(s) dated before it left the person" if result.faces else ""
    out.print(f"Done: {result.command}{left}. `photocluster undo` reverts it.", markup=False)


def undo(
    correction: Annotated[
        int | None,
        typer.Argument(
            metavar="[ID]", help="The correction to revert (its # in `history`); default: the latest one not undone."
        ),
    ] = None,
    yes: YesOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revert a correction (name, merge, move, remove, ignore, born, a "no" to suggest): the latest
    one not undone yet, or correction ID. Says which one and asks first (--yes does not ask;
    without a terminal to ask on, --yes is needed). A correction that later ones changed the
    same persons or faces after is reverted only once they are undone.

    \b
    Example: photocluster undo
    Example: photocluster undo 12 --yes
    """
    from photocluster.app.corrections import to_undo, undone_since
    from photocluster.app.corrections import undo as run_undo
    from photocluster.core.errors import UsageError

    with handle_errors(), open_store(db) as store:
        found = to_undo(store, correction)
        what = f"#{found.id} {found.command} (made {when(found.at)})"
        if not yes:
            if not can_ask():
                raise UsageError(f"undo would revert {what}: add --yes to revert it without asking")
            skipped = undone_since(store, found) if correction is None else []
            if skipped:
                said = ", ".join(f"#{c.id} {c.command}" for c in skipped)
                err.print(f"Already undone since: {said}.", markup=False)
            if not typer.confirm(f"Undo {what}?", default=False, err=True):
                err.print("Nothing undone.")
                raise typer.Exit(1)
        command = run_undo(store, found.id)
    if as_json:
        print_json({"undone": command, "id": found.id})
    else:
        out.print(f"Undone: #{found.id} {command}", markup=False)


def history(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="How many corrections to show.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the corrections made, newest first, and the one `undo` reverts next.

    \b
    Example: photocluster history --limit 10
    """
    from photocluster.app.corrections import history as get_history

    with handle_errors(), open_store(db) as store:
        rows = get_history(store, limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No corrections yet: name, merge, move, remove, ignore and suggest --ask make them.")
        return
    table = Table()
    for col in ("#", "When", "Correction", ""):
        table.add_column(col)
    next_undo = next((r["id"] for r in rows if not r["undone"]), None)
    for r in rows:
        state = "undone" if r["undone"] else "<- next undo" if r["id"] == next_undo else ""
        table.add_row(str(r["id"]), when(float(r["at"])), Text(str(r["command"])), state)  # type: ignore[arg-type]
    out.print(table)
