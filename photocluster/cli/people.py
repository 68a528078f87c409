"""Looking people up: ``faces`` (a person's faces), ``who`` (the people in a scanned photo)
and ``find`` (the closest persons to the faces of any photo)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from photocluster.cli.common import DbOption, JsonOption, PersonArg, err, handle_errors, open_store, out, print_json


def faces(person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List a person's faces, most doubtful (farthest from the person's centre) first.

    Example: photocluster faces "Aunt Rose"
    """
    from photocluster.app.corrections import resolve_person
    from photocluster.app.listing import persons

    with handle_errors(), open_store(db) as store:
        pid = resolve_person(store, person)
        found = [p for p in persons(store, include_unknown=False, include_ignored=True) if p.id == pid]
    rows = [
        {
            "face": f.face_id,
            "photo": os.fsdecode(f.photo_path),
            "distance": round(f.distance, 4),
            "box": f.box.as_list(),
        }
        for p in found
        for f in sorted(p.faces, key=lambda f: (-f.distance, f.face_id))
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"person {pid}: {len(rows)} faces, most doubtful first")
    for col in ("Face", "Distance", "Photo"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["face"]), f"{r['distance']:.3f}", str(r["photo"]))
    out.print(table)


def who(
    photo: Annotated[Path, typer.Argument(help="A scanned photo.")], db: DbOption = None, as_json: JsonOption = False
) -> None:
    """The people in a photo already scanned.

    Example: photocluster who ~/Pictures/2024/beach.jpg
    """
    from photocluster.app.recognise import who as run_who

    with handle_errors(), open_store(db) as store:
        rows = run_who(store, photo)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No faces in this photo.")
    for r in rows:
        label = r["name"] or (f"person {r['person']}" if r["person"] is not None else "unknown")
        out.print(f"face {r['face']} at {r['box']}: {label}")


def find(
    image: Annotated[Path, typer.Argument(help="Any photo, scanned or not.")],
    top: Annotated[int, typer.Option(help="Persons to show per face.", min=1)] = 3,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is this? For each face in IMAGE, the closest persons and their photos.

    Example: photocluster find ~/Downloads/party.jpg --top 5
    """
    from photocluster.app.recognise import find as run_find

    with handle_errors(), open_store(db) as store, err.status("Looking"):
        found = run_find(store, image, top=top)
    if as_json:
        print_json([f.as_dict() for f in found])
        return
    if not found:
        out.print("No face found in this image.")
    for k, f in enumerate(found):
        out.print(f"face {k} at {f.box.as_list(0)}:")
        for m in f.matches:
            who_ = m.name or f"person {m.person_id}"
            verdict = "match" if m.is_match else "no match"
            out.print(f"  {who_}: distance {m.distance:.3f} ({verdict}), e.g. {', '.join(m.photos[:3])}")
