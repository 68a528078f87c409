"""``photocluster eval pairs|clusters`` and ``photocluster calibrate``: accuracy you can measure.

Each command: options in, one call to :mod:`photocluster.eval`, a rich table out (or
JSON with ``--json``). Scans go to a temporary database unless ``--db`` is given.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from photocluster.cli.clusters import MethodOption
from photocluster.cli.clusters import ThresholdOption as ClustersThresholdOption
from photocluster.cli.common import (
    DetectorOption,
    EngineOption,
    JsonOption,
    MaxSizeOption,
    UpsampleOption,
    detection_settings,
    err,
    handle_errors,
    out,
    print_json,
    worker_count,
)
from photocluster.cli.progress import ScanProgress
from photocluster.core.choices import Detector, Engine
from photocluster.core.config import DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD, DEFAULT_UPSAMPLE
from photocluster.grouping.grouper import Method

if TYPE_CHECKING:
    # Only for the rendering helpers' annotations: the commands import photocluster.eval when run.
    from photocluster.eval.calibrate import CalibrationResult
    from photocluster.eval.clusters import ClustersResult
    from photocluster.eval.pairs import PairsResult

eval_app = typer.Typer(
    name="eval",
    help="Measure accuracy on labelled images, with the same pipeline and defaults as scan and clusters.\n\n"
    "Example: photocluster eval pairs --root lfw --pairs pairs.txt",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

RootOption = Annotated[Path, typer.Option("--root", help="Folder of the labelled images.", show_default=False)]
LabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="CSV of relative_path,identity (paths relative to --root). Default: one folder per person.",
        show_default=False,
    ),
]
ThresholdOption = Annotated[
    float, typer.Option(help="Faces closer than this are the same person (dlib's model: 0.6).", min=0.0, max=2.0)
]
EvalDbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Keep the scans in this database, so a second run reuses them (default: a temporary database).",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int | None, typer.Option(help="Processes detecting in parallel (default: one per core, at most 4).")
]


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def _print_missing(no_face: tuple[str, ...], unreadable: tuple[tuple[str, str], ...]) -> None:
    if no_face:
        shown = ", ".join(no_face[:10]) + (f", ... ({len(no_face) - 10} more, see --json)" if len(no_face) > 10 else "")
        out.print(f"No face found in {len(no_face)} image(s): {shown}", markup=False)
    for path, reason in unreadable[:10]:
        err.print(f"  could not use {path}: {reason}", markup=False)


@eval_app.command("pairs")
def eval_pairs_command(
    root: RootOption,
    pairs: Annotated[Path, typer.Option("--pairs", help="Pairs file in LFW pairs.txt format.", show_default=False)],
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    db: EvalDbOption = None,
    detector: DetectorOption = Detector.CNN,
    engine: EngineOption = Engine.AUTO,
    upsample: UpsampleOption = str(DEFAULT_UPSAMPLE),
    max_size: MaxSizeOption = DEFAULT_MAX_SIZE,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Face verification on LFW-style pairs: accuracy at the threshold, 10-fold
    cross-validated accuracy, ROC AUC and TAR at FAR 0.001.

    Images are ROOT/<name>/<name>_<nnnn>.jpg; each is represented by the face nearest its
    centre. Every figure comes twice: strict (a pair with an image where no face was found
    counts as wrong) and with a fallback (such an image is embedded from a centred box).

    Example: photocluster eval pairs --root lfw --pairs pairs.txt --db lfw.db
    """
    from photocluster.eval.embed import eval_store
    from photocluster.eval.pairs import eval_pairs

    with handle_errors():
        settings = detection_settings(detector, max_size, upsample, engine)
        n_workers = worker_count(workers, settings)
        with eval_store(db) as store, ScanProgress() as progress:
            result = eval_pairs(store, root, pairs, threshold, settings, n_workers, progress=progress)
    if as_json:
        print_json(result.as_dict())
        return
    _print_pairs(result, pairs, threshold)


@eval_app.command("clusters")
def eval_clusters_command(
    root: RootOption,
    labels: LabelsOption = None,
    threshold: ClustersThresholdOption = None,
    method: MethodOption = Method.TWO_STAGE,
    min_size: Annotated[int, typer.Option(help="As clusters --min-size: smaller clusters are unknown.", min=1)] = (
        DEFAULT_MIN_SIZE
    ),
    worst: Annotated[int, typer.Option(help="How many mixed clusters to list for review.", min=0)] = 5,
    db: EvalDbOption = None,
    detector: DetectorOption = Detector.CNN,
    engine: EngineOption = Engine.AUTO,
    upsample: UpsampleOption = str(DEFAULT_UPSAMPLE),
    max_size: MaxSizeOption = DEFAULT_MAX_SIZE,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cluster every scanned face exactly as 'clusters' does and compare each labelled image's
    face with its identity: pairwise and BCubed precision/recall/F1, NMI, and the largest
    clusters that mix people.

    The face nearest each image's centre is its labelled face; other faces are clustered
    too but not scored. An image without a face, or whose face stays unknown, is a cluster
    of its own.

    Example: photocluster eval clusters --root faces/ --db faces.db
    """
    from photocluster.eval.clusters import eval_clusters
    from photocluster.eval.embed import eval_store

    with handle_errors():
        settings = detection_settings(detector, max_size, upsample, engine)
        n_workers = worker_count(workers, settings)
        with eval_store(db) as store, ScanProgress() as progress:
            result = eval_clusters(
                store,
                root,
                labels,
                threshold,
                settings,
                n_workers,
                worst,
                progress=progress,
                min_size=min_size,
                method=method,
            )
    if as_json:
        print_json(result.as_dict())
        return
    _print_clusters(result)


@eval_app.command("tags")
def eval_tags_command(
    db: Annotated[Path | None, typer.Option("--db", help="The library database (default: as every command).")] = None,
    min_size: Annotated[int, typer.Option(help="As clusters --min-size: smaller clusters are unknown.", min=1)] = (
        DEFAULT_MIN_SIZE
    ),
    as_json: JsonOption = False,
) -> None:
    """Your own face tags as the ground truth: pairwise and BCubed precision/recall/F1 of the
    clustering on the tagged faces (grouped from their pixels, the tags' pins left out), at
    the default clustering and over a threshold sweep.

    Example: photocluster scan ~/Pictures && photocluster eval tags
    """
    from photocluster.cli.common import open_store
    from photocluster.eval.tags import eval_tags

    with handle_errors(), open_store(db) as store:
        result = eval_tags(store, min_size=min_size)
    if as_json:
        print_json(result.as_dict())
        return
    out.print(
        f"{result.calibration.images} tagged faces of {result.calibration.identities} names in {result.photos} "
        f"photos ({result.unmatched} tags without a face, {result.weak} weak labels and {result.ambiguous} faces "
        "with two names not scored)",
        markup=False,
    )
    _print_calibration(result.calibration, None)


def calibrate_command(
    root: RootOption,
    labels: LabelsOption = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the F1 curves to this PNG file.", show_default=False)
    ] = None,
    start: Annotated[float, typer.Option(help="Smallest threshold swept.", min=0.01, max=2.0)] = 0.30,
    stop: Annotated[float, typer.Option(help="Largest threshold swept.", min=0.01, max=2.0)] = 0.80,
    step: Annotated[float, typer.Option(help="Step between thresholds.", min=0.001, max=1.0)] = 0.02,
    method: MethodOption = Method.TWO_STAGE,
    db: EvalDbOption = None,
    detector: DetectorOption = Detector.CNN,
    engine: EngineOption = Engine.AUTO,
    upsample: UpsampleOption = str(DEFAULT_UPSAMPLE),
    max_size: MaxSizeOption = DEFAULT_MAX_SIZE,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sweep the clustering threshold on labelled images: precision, recall and F1
    (pairwise and BCubed) per threshold, and a recommended threshold.

    Example: photocluster calibrate --root faces/ --plot calibration.png
    """
    from photocluster.core.errors import UsageError
    from photocluster.eval.calibrate import calibrate
    from photocluster.eval.embed import eval_store
    from photocluster.eval.plot import check_destination, plot_calibration

    with handle_errors():
        if stop < start:
            raise UsageError(f"--stop ({stop}) must not be below --start ({start})")
        if plot is not None:
            check_destination(plot)
        thresholds = [round(start + step * k, 6) for k in range(math.floor((stop - start) / step + 1e-6) + 1)]
        settings = detection_settings(detector, max_size, upsample, engine)
        n_workers = worker_count(workers, settings)
        with eval_store(db) as store, ScanProgress() as progress:
            result = calibrate(store, root, labels, thresholds, settings, n_workers, progress=progress, method=method)
        if plot is not None:
            plot_calibration(result, plot)
    if as_json:
        print_json({**result.as_dict(), "plot": None if plot is None else os.fsdecode(plot)})
        return
    _print_calibration(result, plot)


def _print_pairs(result: PairsResult, pairs: Path, threshold: float) -> None:
    out.print(
        f"{result.pairs} pairs ({result.same_pairs} same, {result.different_pairs} different) on {result.images} "
        f"images; no face found in {len(result.no_face)}; settings {result.scan.get('settings')}",
        markup=False,
    )
    table = Table(title=f"Verification ({os.fsdecode(pairs)})")
    table.add_column("Figure")
    table.add_column("Strict", justify="right")
    table.add_column("With fallback", justify="right")
    s, f = result.strict, result.fallback
    folds = f"{result.folds}-fold accuracy" + ("" if result.folds_from_file else " (stratified)")
    rows = [
        (f"Accuracy at {threshold:g}", _fmt(s.accuracy), _fmt(f.accuracy)),
        ("Wrong pairs at that threshold", str(s.wrong), str(f.wrong)),
        (folds, f"{_fmt(s.cv_accuracy)} ± {_fmt(s.cv_std)}", f"{_fmt(f.cv_accuracy)} ± {_fmt(f.cv_std)}"),
        ("ROC AUC", _fmt(s.roc_auc), _fmt(f.roc_auc)),
        (f"TAR at FAR {result.far:g}", _fmt(s.tar), _fmt(f.tar)),
        ("Best threshold (all pairs)", _fmt(s.best_threshold, 3), _fmt(f.best_threshold, 3)),
        ("Pairs with a missing face", str(s.missing_pairs), str(f.missing_pairs)),
    ]
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if result.different_pairs * result.far < 1:
        out.print(
            f"Note: with {result.different_pairs} different pairs, TAR at FAR {result.far:g} "
            "is TAR with no false accept at all.",
            markup=False,
        )
    _print_missing(result.no_face, result.unreadable)


def _print_clusters(result: ClustersResult) -> None:
    op = result.operating_point
    title = (
        "the default two-stage clustering"
        if result.threshold is None
        else f"{op['method']} at threshold {result.threshold:g}"
    )
    table = Table(title=f"Clustering ({title})", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    p, b = result.pairwise, result.bcubed
    rows = [
        ("Images", str(result.images)),
        ("Clusters / identities", f"{result.clusters} / {result.identities}"),
        ("Singleton clusters", str(result.singletons)),
        ("Pairwise precision / recall / F1", f"{_fmt(p.precision)} / {_fmt(p.recall)} / {_fmt(p.f1)}"),
        ("BCubed precision / recall / F1", f"{_fmt(b.precision)} / {_fmt(b.recall)} / {_fmt(b.f1)}"),
        ("NMI", _fmt(result.nmi)),
        ("No face found", str(len(result.no_face))),
    ]
    if result.skipped_labels:
        rows.append(("Label rows skipped (not one identity)", str(result.skipped_labels)))
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if result.worst:
        mixed = Table(title="Clusters mixing identities (largest first)")
        for col in ("Size", "Identities", "Files"):
            mixed.add_column(col, overflow="fold")
        for m in result.worst:
            mixed.add_row(
                str(m.size),
                ", ".join(f"{name} ({n})" for name, n in m.identities),
                "\n".join(f"{path} ({identity})" for path, identity in m.files),
            )
        out.print(mixed)
    else:
        out.print("No cluster mixes identities.")
    _print_missing(result.no_face, result.unreadable)


def _print_calibration(result: CalibrationResult, plot: Path | None) -> None:
    table = Table(
        title=f"Threshold sweep: {result.images} images, {result.identities} identities",
        caption="Pair: pairwise precision, recall, F1; B3: BCubed. *: recommended",
    )
    for col in ("Threshold", "Clusters", "Pair P", "Pair R", "Pair F1", "B3 P", "B3 R", "B3 F1"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(
            f"{r.threshold:g}" + (" *" if r.threshold == result.recommended else ""),
            str(r.clusters),
            _fmt(r.pairwise.precision, 3),
            _fmt(r.pairwise.recall, 3),
            _fmt(r.pairwise.f1, 3),
            _fmt(r.bcubed.precision, 3),
            _fmt(r.bcubed.recall, 3),
            _fmt(r.bcubed.f1, 3),
            style="bold" if r.threshold == result.recommended else None,
        )
    out.print(table)
    d = result.default
    out.print(
        f"Default clustering (clusters with no --threshold): {d.clusters} clusters, pairwise P/R/F1 "
        f"{_fmt(d.pairwise.precision, 3)}/{_fmt(d.pairwise.recall, 3)}/{_fmt(d.pairwise.f1, 3)}, BCubed P/R/F1 "
        f"{_fmt(d.bcubed.precision, 3)}/{_fmt(d.bcubed.recall, 3)}/{_fmt(d.bcubed.f1, 3)}",
        markup=False,
    )
    best = result.best
    out.print(
        f"Recommended threshold: {best.threshold:g} (BCubed F1 {best.bcubed.f1:.3f}, pairwise F1 "
        f"{best.pairwise.f1:.3f}): photocluster clusters --threshold {best.threshold:g}"
        + ("" if result.method == Method.TWO_STAGE else f" --method {result.method}"),
        markup=False,
    )
    if plot is not None:
        out.print(f"Plot written to {os.fsdecode(plot)}", markup=False)
    _print_missing(result.no_face, result.unreadable)
