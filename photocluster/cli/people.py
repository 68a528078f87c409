"""Looking people up: ``faces`` (a person's faces), ``who`` (the people in a scanned photo)
and ``find`` (the closest persons to the faces of any photo)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from photocluster.cli.common import (
    DbOption,
    JsonOption,
    PersonArg,
    err,
    handle_errors,
    open_store,
    out,
    plural,
    print_json,
)


def faces(person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List a person's faces, most doubtful (farthest from the person's centre) first.

    \b
    Example: photocluster faces "Aunt Rose"
    """
    from photocluster.app.corrections import resolve_person
    from photocluster.app.listing import face_ages, persons

    with handle_errors(), open_store(db) as store:
        pid = resolve_person(store, person)
        found = [p for p in persons(store, include_unknown=False, include_ignored=True) if p.id == pid]
        born, ages = face_ages(store, pid, [f.face_id for p in found for f in p.faces])
    rows: list[dict[str, Any]] = [
        {
            "face": f.face_id,
            "photo": os.fsdecode(f.photo_path),
            "distance": round(f.distance, 4),
            "box": f.box.as_list(),
        }
        for p in found
        for f in sorted(p.faces, key=lambda f: (-f.distance, f.face_id))
    ]
    if born is not None:  # the day of each photo and the age in it
        for r in rows:
            day, age = ages[r["face"]]
            r["taken"], r["age"] = day.isoformat(), None if age is None else age.as_dict()
    if as_json:
        print_json(rows)
        return
    name = found[0].name if found else None
    who_ = f"{name} (person {pid})" if name else f"person {pid}"
    born_text = "" if born is None else f", born {born.isoformat()}"
    table = Table(title=f"{who_}: {plural(len(rows), 'face')}{born_text}, most doubtful first")
    for col in ("Face", "Distance", *(("Taken", "Age") if born else ()), "Photo"):
        table.add_column(col, overflow="fold")
    for r in rows:
        dated = (r["taken"], r["age"]["text"] if r["age"] else "") if born else ()
        table.add_row(str(r["face"]), f"{r['distance']:.3f}", *dated, str(r["photo"]))
    out.print(table)


def photos(
    no_faces: Annotated[
        bool, typer.Option("--no-faces", help="Only the photos in which no face was found (one path a line).")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the scanned photos and how many faces each has, by path.

    A photo without a face may be a landscape, or a face too small, blurred, turned away
    or sideways: `photocluster scan` lists the first few of these after each scan.

    \b
    Example: photocluster photos --no-faces
    """
    with handle_errors(), open_store(db) as store:
        rows = [(p, 0) for p in store.photos_without_faces()] if no_faces else store.photo_face_counts()
    if as_json:
        print_json([{"photo": os.fsdecode(p), "faces": n} for p, n in rows])
        return
    if no_faces:
        for path, _ in rows:
            out.print(Text(os.fsdecode(path)))
        return
    table = Table(title=f"{plural(len(rows), 'photo')}, {plural(sum(n for _, n in rows), 'face')}")
    table.add_column("Faces", justify="right")
    table.add_column("Photo", overflow="fold")
    for path, n in rows:
        table.add_row(str(n), Text(os.fsdecode(path)))
    out.print(table)


def who(
    photo: Annotated[Path, typer.Argument(help="A scanned photo.")], db: DbOption = None, as_json: JsonOption = False
) -> None:
    """The people in a photo already scanned.

    \b
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
        out.print(f"face {r['face']} at {r['box']}: {label}", markup=False)


def find(
    image: Annotated[Path, typer.Argument(help="Any photo, scanned or not.")],
    top: Annotated[int, typer.Option(help="Persons to show per face.", min=1)] = 3,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is this? For each face in IMAGE, the closest persons and their photos.

    \b
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
        out.print(f"face {k} at {f.box.as_list(0)}:", markup=False)
        for m in f.matches:
            who_ = m.name or f"person {m.person_id}"
            verdict = "match" if m.is_match else "no match"
            out.print(f"  {who_}: distance {m.distance:.3f} ({verdict}), e.g. {', '.join(m.photos[:3])}", markup=False)
