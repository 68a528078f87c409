"""``photocluster suggest``: pairs of persons that may be one person, to answer yes or no."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from photocluster.cli import pictures
from photocluster.cli.common import DbOption, JsonOption, err, handle_errors, open_store, out, plural, print_json
from photocluster.cli.render import lines, safe_text, visible

if TYPE_CHECKING:
    from photocluster.app.suggest import Suggestion
    from photocluster.store import Store


def _who(person: int, name: str | None) -> str:
    return f"{person}" + (f" ({name})" if name else "")


def suggest(
    limit: Annotated[int, typer.Option(help="How many pairs to list, most likely first.", min=1)] = 20,
    ask: Annotated[
        bool,
        typer.Option("--ask", help="Ask about each pair in turn: y (the same person), n (two people), s (skip), q."),
    ] = False,
    show: Annotated[
        bool,
        typer.Option(
            help="With --ask: show each pair's faces (a contact sheet opened in the image viewer, and inline in "
            "kitty, Ghostty, iTerm2 or WezTerm). --no-show only prints the sheet's path."
        ),
    ] = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List pairs of persons that may be one person, most likely first.

    Never two persons who share a photo or that you kept apart. Answer with `merge A B`
    (the same person), here with --ask, or in the review app (`photocluster review`
    lists the same pairs with their faces). With --ask, the faces of both persons of each
    pair are written to a contact sheet (a PNG) that opens in the image viewer, and drawn
    in terminals that can; "no" records that the two are different people. Both answers
    show in `history`, and `undo` reverts them.

    \b
    Example: photocluster suggest --ask
    """
    from photocluster.app.suggest import suggest as find

    with handle_errors(), open_store(db) as store:
        found = find(store, limit)
        if as_json and not ask:
            print_json([s.as_dict() for s in found])
            return
        _table(found)
        if ask and found:
            _ask(store, found, show)


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
            safe_text(_who(s.a, s.names[0])),
            str(s.faces[0]),
            safe_text(_who(s.b, s.names[1])),
            str(s.faces[1]),
            f"{s.distance:.3f}",
            lines(e or "" for e in s.examples),
        )
    out.print(table)


_ANSWERS = {"y": "y", "yes": "y", "n": "n", "no": "n", "s": "s", "skip": "s", "": "s", "q": "q", "quit": "q"}


def _ask(store: Store, found: list[Suggestion], show: bool) -> None:
    """Each pair in turn: its faces shown, the question asked until it is answered, and
    at the end, what was merged and what was kept apart."""
    from photocluster.app.suggest import answer, contact_sheet

    numbered = list(enumerate(found, start=1))
    sheet = Path(tempfile.mkdtemp(prefix="photocluster-suggest-")) / "pairs.png"
    sheet.write_bytes(contact_sheet(store, numbered))
    opened = show and pictures.open_in_viewer(sheet)
    err.print(
        safe_text(f"The faces of each pair, numbered as asked: {sheet}" + (" (opened)" if opened else ""), style="bold")
    )
    merged: list[str] = []
    apart: list[str] = []
    skipped = 0
    gone: set[int] = set()
    for n, s in numbered:
        if s.a in gone or s.b in gone:
            skipped += 1
            continue  # merged away by an earlier answer
        if show:
            pictures.show_inline(contact_sheet(store, [(n, s)]))
        choice = _answer(f"#{n} of {len(found)}: the same person? {_who(s.a, s.names[0])} and {_who(s.b, s.names[1])}")
        if choice == "q":
            skipped += sum(1 for m, _ in numbered if m >= n)
            break
        if choice == "s":
            skipped += 1
            continue
        result = answer(store, str(s.a), str(s.b), same=choice == "y")
        if choice == "y":
            gone.add(s.b)
            merged.append(result.note or result.command)
        else:
            apart.append(f"person {s.a} and person {s.b}")
        err.print(f"Done: {result.command}.")
    _summary(merged, apart, skipped)


def _answer(question: str) -> str:
    """y, n, s or q: asked again until the answer is one of them (or stdin ends: q)."""
    while True:
        try:
            reply = typer.prompt(visible(f"{question} [y/n/s/q]"), default="s", show_default=False, err=True)
        except typer.Abort:
            err.print()
            return "q"
        choice = _ANSWERS.get(reply.strip().lower())
        if choice is not None:
            return choice
        err.print(
            f"{reply.strip()!r}? Answer y (the same person: merge them), n (two people: keep them apart), "
            "s (skip this pair) or q (stop asking)."
        )


def _summary(merged: list[str], apart: list[str], skipped: int) -> None:
    """What the answers did, after the last question."""
    if not merged and not apart:
        out.print(f"Nothing changed ({plural(skipped, 'pair')} skipped).")
        return
    out.print(f"Merged {plural(len(merged), 'pair')}:" if merged else "Merged nothing.")
    for line in merged:
        out.print(f"  {line}")
    out.print(f"Kept apart {plural(len(apart), 'pair')}:" if apart else "Kept nothing apart.")
    for line in apart:
        out.print(f"  {line}")
    if skipped:
        out.print(f"Skipped {plural(skipped, 'pair')}.")
    out.print("`photocluster history` lists these answers; `photocluster undo` reverts the latest.")
