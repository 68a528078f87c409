"""The ``photocluster`` command: options in, one library call, output rendered.

Exit codes: 0 done (a scan with bad files still completed), 1 could not run
(database, export destination, models), 2 bad usage (missing path, bad option),
130 interrupted (work done so far is kept).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from photocluster import __version__
from photocluster.app.scan import ScanEvent
from photocluster.core.config import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
    DEFAULT_THRESHOLD,
    DEFAULT_UPSAMPLE,
    DetectionSettings,
    resolve_db_path,
)
from photocluster.core.errors import PhotoclusterError
from photocluster.store.database import Store

app = typer.Typer(
    name="photocluster",
    help="Find every face in a photo library and group the faces by person.\n\n"
    "Example: photocluster scan ~/Pictures && photocluster clusters && photocluster export ~/People",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Database file (default: $PHOTOCLUSTER_HOME/photocluster.db, else "
        "$XDG_DATA_HOME/photocluster/photocluster.db).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


@contextmanager
def _errors() -> Iterator[None]:
    """Render library errors once: one line on stderr and a meaningful exit code."""
    try:
        yield
    except PhotoclusterError as exc:
        err.print(f"Error: {exc}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None


def _open(db: Path | None) -> Store:
    return Store(resolve_db_path(db))


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def _version(value: bool) -> None:
    if value:
        from photocluster.detect.faces import dlib_build

        try:
            build = dlib_build().describe()
        except PhotoclusterError as exc:
            build = f"dlib unavailable: {exc}"
        out.print(f"photocluster {__version__}, {build}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and dlib build.")
    ] = False,
) -> None:
    pass


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Folders or files to scan.", show_default=False)],
    db: DbOption = None,
    detector: Annotated[str, typer.Option(help="Face detector: cnn (accurate) or hog (fast, frontal only).")] = "cnn",
    engine: Annotated[
        str, typer.Option(help="auto, onnx (dlib's models on onnxruntime, fast on CPUs) or dlib (dlib itself).")
    ] = "auto",
    upsample: Annotated[
        str,
        typer.Option(
            help="N: the CNN's pyramid upsampling (1 finds faces from 40 px); auto: enlarge small photos up to 2x "
            "instead (cheaper, faces from 80 px)."
        ),
    ] = str(DEFAULT_UPSAMPLE),
    max_size: Annotated[
        int, typer.Option(help="Longest side, in pixels, that photos are detected at.")
    ] = DEFAULT_MAX_SIZE,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes detecting in parallel (default: onnx engine: 1, using every core; dlib: one per core, "
            "at most 4, as memory allows)."
        ),
    ] = None,
    retry_errors: Annotated[bool, typer.Option(help="Try again files that failed before, even if unchanged.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Detect, align and embed every face under PATHS. Incremental and resumable.

    Example: photocluster scan ~/Pictures --workers 2
    """
    from photocluster.app.scan import default_workers
    from photocluster.app.scan import scan as run_scan

    with _errors():
        settings = DetectionSettings(detector, max_size, DetectionSettings.parse_upsample(upsample), engine)
        n_workers = workers if workers is not None else default_workers(settings)
        with _open(db) as store, _ScanProgress() as on_event:
            report = run_scan(store, paths, settings, n_workers, retry_errors, progress=on_event)
    if as_json:
        _print_json(report.as_dict())
        return
    table = Table(title="Scan", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("Files", report.files),
        ("Analysed", report.analysed),
        ("Unchanged", report.unchanged),
        ("Moved or renamed", report.moved),
        ("Duplicates", report.duplicates),
        ("Missing now", report.missing),
        ("Faces found", report.faces_found),
        ("Recognised", f"{report.recognised} faces joined named persons"),
        ("Bad files", len(report.errors)),
        ("Time", f"{report.seconds:.1f} s"),
        ("Settings", f"{report.settings}, {report.workers} worker(s)"),
        ("Engine", f"{report.engine} ({report.dlib})"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    if report.errors:
        err.print(f"{len(report.errors)} file(s) could not be used:")
        for path, reason in report.errors[:50]:
            err.print(f"  {_one_line_path(path)}: {reason}", markup=False)
        if len(report.errors) > 50:
            err.print(f"  ... and {len(report.errors) - 50} more (see --json)")


def _one_line_path(path: str) -> str:
    """A file name as one line of text: control characters (a newline in a name), invisible
    ones and bytes that are not UTF-8 are shown as escapes (``\\n``, ``\\u202e``, ``\\xff``)."""
    out = []
    for ch in path:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a byte os.fsdecode could not decode
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f}/s" if speed else "-/s")


class _ScanProgress:
    """A rich progress bar on stderr, shown from the first event on (so a scan that
    cannot start prints only its error)."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("photos, {task.fields[faces]} faces"),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        )
        self.started = False
        self.task: TaskID | None = None
        self.faces = 0

    def __enter__(self) -> Callable[[ScanEvent], None]:
        return self.on_event

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def on_event(self, event: ScanEvent) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if event.kind == "listing":
            self.task = self.progress.add_task("Listing files", total=None, faces=0)
        elif event.kind == "listed":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task("Scanning", total=event.total, faces=0)
        elif event.kind == "photo" and self.task is not None:
            self.faces += event.faces
            self.progress.update(self.task, advance=1, faces=self.faces)


@app.command()
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

    with _errors(), _open(db) as store:
        with err.status("Clustering faces") as status:
            report = recluster(store, threshold, min_size, apply=not plan, progress=status.update)
        summaries = [] if plan else [row for row in store.person_summaries() if not row[5]]
    changes = {
        "created": len(report.created),
        "merged": len(report.merged),
        "split": len(report.split),
        "removed": len(report.removed),
        "faces moved": report.faces_moved,
        "new faces placed": report.faces_new,
    }
    if report.names_affected:
        err.print(f"Names affected: {', '.join(report.names_affected)}", markup=False)
    if plan:
        if as_json:
            _print_json(report.as_dict())
            return
        out.print(f"Plan (nothing applied): {report.persons} persons, {report.unknown} unknown faces")
        for k, v in changes.items():
            out.print(f"  {k}: {v}")
        for old, new in report.merged:
            out.print(f"  person {old} would merge into {'a new person' if new < 0 else f'person {new}'}")
        for pid in report.split:
            out.print(f"  person {pid} would be split")
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
        _print_json({**report.as_dict(), "persons_list": rows})
        return
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
    out.print(", ".join(f"{k}: {v}" for k, v in changes.items()))


# A terminal table of a large library lists its largest persons (and unknown); --json has all.
_TABLE_ROWS = 60


@app.command()
def export(
    dest: Annotated[Path, typer.Argument(help="Folder to write (created if needed).")] = Path("photocluster-export"),
    db: DbOption = None,
    mode: Annotated[
        str, typer.Option(help="How photos appear in person folders: symlink, hardlink or copy.")
    ] = "symlink",
    crops: Annotated[
        bool, typer.Option("--crops", help="Also write aligned face chips: crops/<person folder>/<face id>.jpg.")
    ] = False,
    xmp: Annotated[
        str | None,
        typer.Option(
            metavar="dest|originals",
            help="Also write XMP sidecars with MWG face regions (<photo>.xmp): beside the photos in DEST, "
            "or beside the originals (merged into existing sidecars, never overwriting their other content).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write one folder per person (and unknown/) with their photos, plus index.json and the
    review page index.html (face thumbnails, the faces most in doubt first; opens offline).

    Example: photocluster export ~/People --mode hardlink --xmp dest
    """
    from photocluster.exporter.run import export as run_export

    with _errors(), _open(db) as store, err.status("Exporting"):
        report = run_export(store, dest, mode, crops=crops, xmp=xmp)
    if as_json:
        _print_json(report.as_dict())
        return
    out.print(
        f"Exported {report.persons} persons and {report.unknown_faces} unknown faces to {report.dest} "
        f"({report.created} new, {report.updated} updated, {report.removed} removed, {report.unchanged} unchanged)",
        markup=False,
    )
    extras = [f"{report.thumbnails} thumbnails"]
    if crops:
        extras.append(f"{report.crops} face chips")
    if xmp:
        extras.append(f"{report.sidecars} XMP sidecars ({xmp})")
    review = f"; review page: {report.review}" if report.review else ""
    out.print(", ".join(extras) + review, markup=False)
    for rel in report.skipped:
        err.print(
            f"  skipped {rel}: a file that photocluster did not write is in the way, or the photo is gone", markup=False
        )
    for warning in report.warnings:
        err.print(f"  {warning}", markup=False)


@app.command()
def status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database in use, what it holds, and the dlib build.

    Example: photocluster status --json
    """
    from photocluster.detect.faces import dlib_build

    with _errors(), _open(db) as store:
        counts = store.counts()
        doc = {
            "database": os.fsdecode(store.path),
            "schema_version": store.schema_version,
            "photos": counts["done"],
            "bad_files": counts["error"],
            "missing_files": counts["missing"],
            "faces": counts["faces"],
            "persons": counts["persons"],
            "threshold": store.get_setting("cluster.threshold"),
            "dlib": dlib_build().describe(),
        }
    if as_json:
        _print_json(doc)
        return
    for k, v in doc.items():
        out.print(f"{k.replace('_', ' ').capitalize()}: {v}", markup=False)


PersonArg = Annotated[str, typer.Argument(help="Person id (as listed by `clusters`) or name.", show_default=False)]
FaceArg = Annotated[int, typer.Argument(help="Face id (as listed by `faces` or the review page).", show_default=False)]


def _correction(result: Any, as_json: bool) -> None:
    if as_json:
        _print_json(result.as_dict())
    else:
        out.print(f"Done: {result.command} ({result.faces} face(s)). `photocluster undo` reverts it.", markup=False)


@app.command()
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

    with _errors(), _open(db) as store:
        _correction(name_person(store, person, new_name), as_json)


@app.command()
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

    with _errors(), _open(db) as store:
        _correction(merge_persons(store, person, others), as_json)


@app.command()
def move(face: FaceArg, person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Move a face to a person, for good; it never rejoins the person it leaves.

    Example: photocluster move 1042 "Aunt Rose"
    """
    from photocluster.app.corrections import move_face

    with _errors(), _open(db) as store:
        _correction(move_face(store, face, person), as_json)


@app.command()
def remove(face: FaceArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Take a face out of its person: it becomes unknown and never rejoins that person.

    Example: photocluster remove 1042
    """
    from photocluster.app.corrections import remove_face

    with _errors(), _open(db) as store:
        _correction(remove_face(store, face), as_json)


@app.command()
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

    with _errors(), _open(db) as store:
        _correction(ignore_person(store, person, ignored=not undo_it), as_json)


@app.command()
def undo(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Revert the latest correction (name, merge, move, remove, ignore).

    Example: photocluster undo
    """
    from photocluster.app.corrections import undo as run_undo

    with _errors(), _open(db) as store:
        command = run_undo(store)
    if as_json:
        _print_json({"undone": command})
    else:
        out.print(f"Undone: {command}", markup=False)


@app.command()
def history(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="How many corrections to show.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the corrections made, newest first.

    Example: photocluster history --limit 10
    """
    import datetime as dt

    from photocluster.app.corrections import history as get_history

    with _errors(), _open(db) as store:
        rows = get_history(store, limit)
    if as_json:
        _print_json(rows)
        return
    table = Table()
    for col in ("#", "When", "Correction", ""):
        table.add_column(col)
    for r in rows:
        when = dt.datetime.fromtimestamp(float(r["at"])).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[arg-type]
        table.add_row(str(r["id"]), when, str(r["command"]), "undone" if r["undone"] else "")
    out.print(table)


@app.command()
def faces(person: PersonArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List a person's faces, most doubtful (farthest from the person's centre) first.

    Example: photocluster faces "Aunt Rose"
    """
    from photocluster.app.corrections import resolve_person
    from photocluster.app.recluster import persons

    with _errors(), _open(db) as store:
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
        _print_json(rows)
        return
    table = Table(title=f"person {pid}: {len(rows)} faces, most doubtful first")
    for col in ("Face", "Distance", "Photo"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["face"]), f"{r['distance']:.3f}", str(r["photo"]))
    out.print(table)


@app.command()
def who(
    photo: Annotated[Path, typer.Argument(help="A scanned photo.")], db: DbOption = None, as_json: JsonOption = False
) -> None:
    """The people in a photo already scanned.

    Example: photocluster who ~/Pictures/2024/beach.jpg
    """
    from photocluster.app.recognise import who as run_who

    with _errors(), _open(db) as store:
        rows = run_who(store, photo)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("No faces in this photo.")
    for r in rows:
        label = r["name"] or (f"person {r['person']}" if r["person"] is not None else "unknown")
        out.print(f"face {r['face']} at {r['box']}: {label}", markup=False)


@app.command()
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

    with _errors(), _open(db) as store, err.status("Looking"):
        found = run_find(store, image, top=top)
    if as_json:
        _print_json([f.as_dict() for f in found])
        return
    if not found:
        out.print("No face found in this image.")
    for k, f in enumerate(found):
        out.print(f"face {k} at {f.box.as_list(0)}:", markup=False)
        for m in f.matches:
            who_ = m.name or f"person {m.person_id}"
            verdict = "match" if m.is_match else "no match"
            out.print(f"  {who_}: distance {m.distance:.3f} ({verdict}), e.g. {', '.join(m.photos[:3])}", markup=False)


@app.command()
def doctor(
    engine: Annotated[str, typer.Option(help="Engine to measure: auto, onnx or dlib.")] = "auto",
    measure: Annotated[bool, typer.Option(help="Time one synthetic photo on this machine.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Show the dlib build, the engine in use, the model files and what a photo costs here.

    Example: photocluster doctor --engine dlib
    """
    import platform

    from photocluster.detect import faces as fc

    with _errors():
        settings = DetectionSettings(engine=engine)
        build = fc.dlib_build()
        chosen = fc.resolve_engine(engine)
        doc: dict[str, Any] = {
            "photocluster": __version__,
            "python": platform.python_version(),
            "dlib": build.describe(),
            "dlib_cuda": build.cuda,
            "cuda_devices": build.cuda_devices,
            "avx": build.avx,
            "blas": build.blas,
            "engine": chosen,
            "onnxruntime": None,
            "models": {
                name: {"path": os.fsdecode(path), "bytes": path.stat().st_size, "sha256": fc.file_sha256(path)}
                for name, path in fc.model_files().all().items()
            },
        }
        if fc.onnx_available():
            import onnxruntime

            doc["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
        if measure:
            # dlib-bin needs ~10 s per megapixel: measure it on a smaller photo and scale.
            w, h = (1600, 1200) if chosen == "onnx" or build.cuda else (640, 480)
            with err.status(f"Timing a {w}x{h} photo with the {chosen} engine"):
                probe = fc.measure_cost(settings, w, h)
            doc["measured"] = {
                "photo": f"{w}x{h}",
                "seconds": round(probe.seconds, 3),
                "estimated_seconds_per_photo_at_defaults": round(probe.estimated_default_seconds, 2),
                "threads": fc._threads,
            }
    if as_json:
        _print_json(doc)
        return
    for key, value in doc.items():
        if key == "models":
            out.print("models:")
            for name, info in value.items():
                out.print(
                    f"  {name}: {info['path']} ({info['bytes']} bytes, sha256 {info['sha256'][:16]}...)", markup=False
                )
        elif key == "measured":
            out.print(
                f"measured: {value['seconds']} s for a {value['photo']} photo; about "
                f"{value['estimated_seconds_per_photo_at_defaults']} s per photo at the defaults",
                markup=False,
            )
        else:
            out.print(f"{key}: {value}", markup=False)


def main() -> None:
    app()


from photocluster.cli.eval_commands import register as _register_eval  # noqa: E402

_register_eval(app)
