"""``photocluster suggest``: pairs of persons that may be one person, to answer yes or no."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from photocluster.cli.common import DbOption, JsonOption, err, handle_errors, open_store, out, print_json
from photocluster.cli.render import lines, visible

if TYPE_CHECKING:
    from photocluster.app.suggest import Suggestion
    from photocluster.store import Store


def _who(person: int, name: str | None) -> str:
    return f"{person}" + (f" ({name})" if name else "")


def suggest(
    limit: Annotated[int, typer.Option(help="How many pairs to list, most likely first.", min=1)] = 20,
    ask: Annotated[bool, typer.Option("--ask", help="Ask about each pair in turn: y (same), n (two people), s, q.")] = (
        False
    ),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List pairs of persons that may be one person, most likely first.

    Never two persons who share a photo or that you kept apart. Answer with `merge A B`
    (the same person) or here with --ask, where "no" records that the two are different
    people; both show in `history` and `undo` reverts them.

    Example: photocluster suggest --ask
    """
    from photocluster.app.suggest import suggest as find

    with handle_errors(), open_store(db) as store:
        found = find(store, limit)
        if as_json and not ask:
            print_json([s.as_dict() for s in found])
            return
        _table(found)
        if ask:
            _ask(store, found)


def _table(found: list[Suggestion]) -> None:
    if not found:
        out.print("No pair of persons looks like one person.")
        return
    table = Table(title="Maybe the same person (most likely first)")
    for col in ("#", "Person", "Faces", "Person", "Faces", "Distance", "Examples"):
        table.add_column(col, overflow="fold")
    for n, s in enumerate(found, start=1):
        table.add_row(
            str(n),
            _who(s.a, s.names[0]),
            str(s.faces[0]),
            _who(s.b, s.names[1]),
            str(s.faces[1]),
            f"{s.distance:.3f}",
            lines(e or "" for e in s.examples),
        )
    out.print(table)


def _ask(store: Store, found: list[Suggestion]) -> None:
    from photocluster.app.suggest import answer

    gone: set[int] = set()
    for s in found:
        if s.a in gone or s.b in gone:
            continue  # merged away by an earlier answer
        reply = typer.prompt(
            visible(f"Same person? {_who(s.a, s.names[0])} and {_who(s.b, s.names[1])} [y/n/s(kip)/q(uit)]"),
            default="s",
            err=True,
        )
        choice = reply.strip().lower()[:1]
        if choice == "q":
            break
        if choice not in ("y", "n"):
            continue
        result = answer(store, str(s.a), str(s.b), same=choice == "y")
        if choice == "y":
            gone.add(s.b)
        err.print(f"Done: {result.command}. `photocluster undo` reverts it.")
