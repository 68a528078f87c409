"""``add-face``: a face the detector missed, drawn as a box (the review app draws it with the mouse)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from photocluster.cli.common import DbOption, EngineOption, JsonOption, handle_errors, open_store, out, print_json
from photocluster.core.choices import Engine


def add_face(
    photo: Annotated[Path, typer.Argument(help="A scanned photo.", show_default=False)],
    box: Annotated[
        str,
        typer.Option(
            "--box", metavar="L,T,R,B", help="The face: left,top,right,bottom in the photo's pixels, as displayed."
        ),
    ],
    person: Annotated[
        str | None,
        typer.Option("--person", help="Put the face in this person (id or name; a new name makes a new person)."),
    ] = None,
    engine: EngineOption = Engine.AUTO,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a face the detector missed: aligned by dlib's landmarks inside the box and described
    as a scan describes faces, it is grouped like any other and kept by later scans of the
    photo. One correction: `photocluster undo` deletes it.

    \b
    Example: photocluster add-face ~/Pictures/party.jpg --box 410,220,530,360
    Example: photocluster add-face ~/Pictures/party.jpg --box 410,220,530,360 --person "Aunt Rose"
    """
    from photocluster.app.curate import add_face as run_add_face
    from photocluster.app.curate import parse_box

    with handle_errors(), open_store(db) as store:
        added = run_add_face(store, photo, parse_box(box), person, engine=str(engine))
        if as_json:
            print_json(added.as_dict())
            return
        where = "in no person" if added.person_id is None else f"in person {added.person_id}"
        out.print(
            f"Done: {added.command} (face {added.face_id}, {where}). `photocluster undo` reverts it.", markup=False
        )
