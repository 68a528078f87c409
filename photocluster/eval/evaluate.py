"""Accuracy on labelled images, measured through the pipeline users run.

Every image goes through :func:`photocluster.app.scan.scan` with the same settings as
``photocluster scan`` (so a database given with ``--db`` is reused: a second run only reads
it), and grouping uses the same edges and Chinese whispers as ``photocluster clusters``.
One face stands for each image: the face nearest the image centre (labelled face sets
are crops around one person; other faces in them are bystanders).

- :func:`eval_pairs`: face verification on an LFW ``pairs.txt``.
- :func:`eval_clusters`: clustering against identities (folders or a CSV).
- :func:`calibrate`: the clustering figures over a sweep of thresholds.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photocluster.app.recluster import plan_persons
from photocluster.app.scan import ProgressCallback, ScanReport, scan
from photocluster.core.config import DEFAULT_MIN_SIZE, DEFAULT_THRESHOLD, DetectionSettings
from photocluster.core.errors import ImageError, PathNotFoundError, UsageError
from photocluster.core.types import EMBEDDING_DIM, Box, Face
from photocluster.detect.images import load_image, walk
from photocluster.eval import metrics as mt
from photocluster.grouping.grouper import Method, Policy
from photocluster.store import Store

DEFAULT_FAR = 1e-3
DEFAULT_FOLDS = 10
DEFAULT_WORST = 5
# The fallback box for an image where no face was found: a centred square whose side is
# this share of the image's short side. The shape predictor places its 5 points relative
# to the box, so the box must frame the face about as dlib's detector would. Measured on
# the fixtures (distance between the embedding from the fallback box and from the detected
# face, mean / worst): on 250 px LFW-like crops where the face box is 0.45 of the side,
# 0.6 gives 0.03 / 0.07 (0.8 gives 0.09 / 0.30); on crops with looser framing (face 0.35),
# 0.6 gives 0.08 / 0.34 (0.8: unusable); on the 150 px dlib-johns crops (face 0.81),
# 0.6 gives 0.06 / 0.17 (0.8: 0.03 / 0.07). 0.6 is the best compromise, and best where
# labelled sets usually are (faces of 60-110 px in 150-250 px portraits).
FALLBACK_BOX = 0.6


# -- database --------------------------------------------------------------------


@contextmanager
def eval_store(db: str | os.PathLike[str] | None) -> Iterator[Store]:
    """The database ``db``, or a temporary one (deleted on exit) when ``db`` is None."""
    if db is not None:
        with Store(Path(db).expanduser()) as store:
            yield store
        return
    with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as tmp, Store(Path(tmp) / "eval.db") as store:
        yield store


# -- reading pairs and labels ----------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """Two images and whether they show one person; ``line`` is where the pairs file says so."""

    a: Path
    b: Path
    same: bool
    line: int


@dataclass(frozen=True)
class PairsFile:
    """The pairs of an LFW-format file. ``folds`` holds a fold number per pair when the
    header defines folds (``10 300``: 10 blocks of 300 same then 300 different pairs)."""

    path: Path
    pairs: tuple[Pair, ...]
    folds: tuple[int, ...] | None


def _read_text(path: Path, what: str) -> str:
    if not os.path.lexists(path):
        raise PathNotFoundError(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: the {what} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def _lfw_image(root: Path, name: str, number: str, where: str) -> Path:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UsageError(f"{where}: {name!r} is not a usable person name (a folder name under the root)")
    if not number.isdigit() or int(number) < 1:
        raise UsageError(f"{where}: image number must be a positive integer, got {number!r}")
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> PairsFile:
    """Parse an LFW ``pairs.txt``: a header (``folds pairs_per_fold``, or one count),
    then ``name n1 n2`` (same person) and ``name1 n1 name2 n2`` (different people).
    Images are ``root/<name>/<name>_<nnnn>.jpg``. Raises UsageError naming file and line."""
    path, root = Path(path), Path(root)
    text = _read_text(path, "pairs file")
    header: list[int] | None = None
    header_line = 0
    pairs: list[Pair] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        where = f"{path}:{lineno}"
        if header is None:
            if len(tokens) not in (1, 2) or not all(t.isdigit() and int(t) > 0 for t in tokens):
                raise UsageError(
                    f"{where}: expected a header with the number of folds and pairs per fold "
                    f"(e.g. '10 300') or a number of pairs, got {raw.strip()!r}"
                )
            header, header_line = [int(t) for t in tokens], lineno
            continue
        if len(tokens) == 3:
            name, n1, n2 = tokens
            pairs.append(Pair(_lfw_image(root, name, n1, where), _lfw_image(root, name, n2, where), True, lineno))
        elif len(tokens) == 4:
            name1, n1, name2, n2 = tokens
            pairs.append(Pair(_lfw_image(root, name1, n1, where), _lfw_image(root, name2, n2, where), False, lineno))
        else:
            raise UsageError(
                f"{where}: expected 'name n1 n2' (same person) or 'name1 n1 name2 n2' "
                f"(different people), got {raw.strip()!r}"
            )
    if header is None or not pairs:
        raise UsageError(f"{path}: no pairs in the file (expected a header line, then one pair per line)")
    n = len(pairs)
    folds: tuple[int, ...] | None = None
    if len(header) == 2:
        n_folds, per_fold = header
        if n != n_folds * 2 * per_fold:
            raise UsageError(
                f"{path}:{header_line}: the header announces {n_folds} fold(s) of {per_fold} same and "
                f"{per_fold} different pairs ({n_folds * 2 * per_fold} pairs), but the file has {n}"
            )
        if n_folds >= 2:
            folds = tuple(k // (2 * per_fold) for k in range(n))
    elif n not in (header[0], 2 * header[0]):
        raise UsageError(
            f"{path}:{header_line}: the header announces {header[0]} pairs (or {header[0]} same and "
            f"{header[0]} different), but the file has {n}"
        )
    return PairsFile(path, tuple(pairs), folds)


@dataclass(frozen=True)
class LabelledImages:
    """Images with one identity each. ``skipped`` counts CSV rows that do not name exactly
    one person (``<unlabeled>``, ``<no_face>``, ``a;b``)."""

    root: Path
    paths: tuple[Path, ...]
    identities: tuple[str, ...]
    skipped: int = 0


def read_labels(root: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None) -> LabelledImages:
    """Identities from ``labels`` (a CSV of ``relative_path,identity``, paths relative to
    ``root``, an optional header row) or else from folder names: every image under
    ``root/<identity>/``. Raises UsageError for a malformed row or a missing image."""
    root = Path(root)
    if not os.path.isdir(root):
        raise PathNotFoundError(root) if not os.path.lexists(root) else UsageError(f"{root}: not a folder")
    if labels is None:
        return _labels_from_folders(root)
    return _labels_from_csv(root, Path(labels))


def _labels_from_folders(root: Path) -> LabelledImages:
    paths: list[Path] = []
    identities: list[str] = []
    for path in walk([root]):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            raise UsageError(
                f"{path}: not in a person folder; put each person's images in a folder named after them "
                f"under {root}, or give --labels"
            )
        paths.append(path)
        identities.append(rel.parts[0])
    if not paths:
        raise UsageError(f"{root}: no images found in person folders")
    return LabelledImages(root, tuple(paths), tuple(identities))


def _one_identity(identity: str) -> bool:
    """False for the labels that are not one person: empty, "<unlabeled>", "<no_face>" (any
    "<...>"), and "a;b" for several people (the conventions of the fixtures' labels.csv)."""
    return bool(identity) and not identity.startswith("<") and ";" not in identity


def _labels_from_csv(root: Path, labels: Path) -> LabelledImages:
    text = _read_text(labels, "labels file")
    paths: list[Path] = []
    identities: list[str] = []
    seen: dict[Path, int] = {}
    skipped = 0
    missing: list[tuple[Path, int]] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise UsageError(f"{labels}:{lineno}: expected 'relative_path,identity', got {','.join(row)!r}")
        rel, identity = row[0].strip(), row[1].strip()
        if lineno == 1 and (rel.lower(), identity.lower()) == ("relative_path", "identity"):
            continue
        if not rel:
            raise UsageError(f"{labels}:{lineno}: empty path")
        if not _one_identity(identity):
            skipped += 1
            continue
        path = root / rel
        if path in seen:
            raise UsageError(f"{labels}:{lineno}: {rel} is listed twice (first on line {seen[path]})")
        seen[path] = lineno
        if not path.is_file():
            missing.append((path, lineno))
        paths.append(path)
        identities.append(identity)
    if missing:
        first, line = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"{first}: no such image (named on line {line} of {labels}){more}")
    if not paths:
        raise UsageError(f"{labels}: no row names an image with one identity")
    return LabelledImages(root, tuple(paths), tuple(identities), skipped)


# -- scanning and picking one face per image ------------------------------------


def nearest_centre(faces: Sequence[Face], width: float, height: float) -> Face | None:
    """The face whose box centre is nearest the image centre (the first of equals)."""
    if not faces:
        return None
    cx, cy = width / 2.0, height / 2.0
    dist = [(f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2 for f in faces]
    return faces[int(np.argmin(dist))]


def fallback_box(width: float, height: float) -> Box:
    """A centred square of side ``FALLBACK_BOX`` times the short side (see its comment)."""
    side = FALLBACK_BOX * min(width, height)
    return Box((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)


def fallback_face(path: Path, settings: DetectionSettings) -> Face:
    """Align and embed the centred :func:`fallback_box` of a photo, decoded as for detection."""
    from photocluster.detect import faces as fc

    image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
    return fc.embed_box(image, fallback_box(image.width, image.height), settings.engine)


@dataclass(frozen=True)
class Embedded:
    """One embedding per image: ``found[k]`` is False where no face was found (that row is
    zeros), ``unreadable`` maps an image index to why the scan could not use it."""

    vectors: np.ndarray
    found: np.ndarray
    unreadable: dict[int, str]
    report: ScanReport
    face_ids: np.ndarray  # the stored id of each image's face, -1 where none was found


def embed_images(
    store: Store,
    paths: Sequence[Path],
    settings: DetectionSettings,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> Embedded:
    """Scan ``paths`` into ``store`` (skipping what it holds already) and take from each
    image the face nearest its centre."""
    # The scan visits one name per file: two names of one file (links) share its result.
    first_name: dict[tuple[int, int], Path] = {}
    scanned_as: list[Path] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            raise PathNotFoundError(path) from None
        scanned_as.append(first_name.setdefault((st.st_dev, st.st_ino), path))
    # The labels are the truth here: face tags in the images must not pin faces to persons.
    report = scan(store, list(first_name.values()), settings, workers, progress=progress, tags=False)
    vectors = np.zeros((len(paths), EMBEDDING_DIM), dtype=np.float32)
    found = np.zeros(len(paths), dtype=bool)
    face_ids = np.full(len(paths), -1, dtype=np.int64)
    unreadable: dict[int, str] = {}
    for k, name in enumerate(scanned_as):
        known = store.photo_by_path(name)
        if known is None or known[0].status != "done" or known[0].width is None or known[0].height is None:
            unreadable[k] = (known[0].error if known else None) or "not scanned"
            continue
        photo = known[0]
        face = nearest_centre(store.photo_faces(photo.id), photo.width or 0, photo.height or 0)
        if face is not None:
            vectors[k] = face.embedding
            found[k] = True
            face_ids[k] = face.id if face.id is not None else -1
    return Embedded(vectors, found, unreadable, report, face_ids)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fsdecode(path)


def _num(value: float, ndigits: int = 6) -> float | None:
    """A float for JSON: rounded, and None for NaN or infinity (JSON has neither)."""
    return round(float(value), ndigits) if np.isfinite(value) else None


def _check_threshold(threshold: float) -> None:
    if not (np.isfinite(threshold) and 0.0 < threshold <= 2.0):
        raise UsageError(f"--threshold must be above 0 and at most 2, got {threshold}")


def _scan_summary(report: ScanReport) -> dict[str, object]:
    return {
        "analysed": report.analysed,
        "reused": report.unchanged + report.moved + report.duplicates,
        "seconds": round(report.seconds, 2),
        "settings": report.settings,
        "dlib": report.dlib,
    }


# -- pairs ------------------------------------------------------------------------


@dataclass(frozen=True)
class PairFigures:
    """Verification figures for one way of treating images without a face."""

    accuracy: float
    wrong: int
    cv_accuracy: float
    cv_std: float
    cv_thresholds: tuple[float, ...]
    roc_auc: float
    tar: float
    tar_threshold: float
    best_threshold: float
    best_accuracy: float
    missing_pairs: int

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": _num(self.accuracy),
            "wrong": self.wrong,
            "cv_accuracy": _num(self.cv_accuracy),
            "cv_std": _num(self.cv_std),
            "cv_thresholds": [_num(t, 4) for t in self.cv_thresholds],
            "roc_auc": _num(self.roc_auc),
            "tar": _num(self.tar),
            "tar_threshold": _num(self.tar_threshold, 4),
            "best_threshold": _num(self.best_threshold, 4),
            "best_accuracy": _num(self.best_accuracy),
            "missing_pairs": self.missing_pairs,
        }


@dataclass(frozen=True)
class PairsResult:
    """``strict``: a pair with an image without a face counts as wrong at every threshold.
    ``fallback``: such an image is embedded from a centred box (:func:`fallback_box`)."""

    pairs_file: str
    root: str
    threshold: float
    far: float
    pairs: int
    same_pairs: int
    different_pairs: int
    folds: int
    folds_from_file: bool
    images: int
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    strict: PairFigures
    fallback: PairFigures
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "pairs_file": self.pairs_file,
            "root": self.root,
            "threshold": self.threshold,
            "far": self.far,
            "pairs": self.pairs,
            "same_pairs": self.same_pairs,
            "different_pairs": self.different_pairs,
            "folds": self.folds,
            "folds_from_file": self.folds_from_file,
            "images": self.images,
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "strict": self.strict.as_dict(),
            "fallback": self.fallback.as_dict(),
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


def pair_figures(
    distance: np.ndarray, same: np.ndarray, folds: np.ndarray, threshold: float, far: float, missing: np.ndarray
) -> PairFigures:
    """All verification figures for pair distances; ``missing`` pairs are made wrong at
    every threshold (+inf for a same pair, -inf for a different one)."""
    d = np.where(missing, np.where(same, np.inf, -np.inf), distance)
    kfold = mt.kfold_accuracy(d, same, folds, prior=threshold)
    tar, tar_t = mt.tar_at_far(d, same, far)
    best_t, best_acc = mt.best_threshold(d, same, prior=threshold)
    acc = mt.accuracy(d, same, threshold)
    return PairFigures(
        accuracy=acc,
        wrong=int(np.sum((d < threshold) != same)),
        cv_accuracy=kfold.mean,
        cv_std=kfold.std,
        cv_thresholds=kfold.thresholds,
        roc_auc=mt.roc_auc(d, same),
        tar=tar,
        tar_threshold=tar_t,
        best_threshold=best_t,
        best_accuracy=best_acc,
        missing_pairs=int(missing.sum()),
    )


def eval_pairs(
    store: Store,
    root: str | os.PathLike[str],
    pairs_file: str | os.PathLike[str],
    threshold: float = DEFAULT_THRESHOLD,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    far: float = DEFAULT_FAR,
    progress: ProgressCallback | None = None,
) -> PairsResult:
    """Face verification on the LFW protocol (see :func:`read_pairs` for the file).

    Accuracy at ``threshold``; accuracy cross-validated over the file's folds (else 10
    stratified folds), the threshold chosen on the other folds; ROC AUC; TAR at ``far``.
    """
    start = time.perf_counter()
    _check_threshold(threshold)
    settings = settings or DetectionSettings()
    root = Path(root)
    if not os.path.isdir(root):
        raise PathNotFoundError(root) if not os.path.lexists(root) else UsageError(f"{root}: not a folder")
    parsed = read_pairs(pairs_file, root)
    index: dict[Path, int] = {}
    first_line: dict[Path, int] = {}
    for pair in parsed.pairs:
        for p in (pair.a, pair.b):
            index.setdefault(p, len(index))
            first_line.setdefault(p, pair.line)
    absent = [p for p in index if not p.is_file()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise UsageError(f"{absent[0]}: no such image (named on line {first_line[absent[0]]} of {parsed.path}){more}")
    images = list(index)
    emb = embed_images(store, images, settings, workers, progress)

    ia = np.array([index[p.a] for p in parsed.pairs], dtype=np.int64)
    ib = np.array([index[p.b] for p in parsed.pairs], dtype=np.int64)
    same = np.array([p.same for p in parsed.pairs], dtype=bool)
    if parsed.folds is not None:
        folds = np.asarray(parsed.folds, dtype=np.int64)
    else:
        # Ten folds, fewer when there are fewer than ten pairs of a kind (every fold then
        # still tests at least one pair of the rarer kind).
        rarer = min(int(same.sum()), int((~same).sum()))
        folds = mt.stratified_folds(same, min(DEFAULT_FOLDS, max(2, rarer)))

    def figures(vectors: np.ndarray, found: np.ndarray) -> PairFigures:
        distance = np.linalg.norm(vectors[ia].astype(np.float64) - vectors[ib], axis=1)
        return pair_figures(distance, same, folds, threshold, far, ~(found[ia] & found[ib]))

    strict = figures(emb.vectors, emb.found)
    vectors, found = emb.vectors.copy(), emb.found.copy()
    no_face = [k for k in range(len(images)) if not emb.found[k] and k not in emb.unreadable]
    for k in no_face:
        try:
            vectors[k] = fallback_face(images[k], settings).embedding
            found[k] = True
        except (ImageError, RuntimeError, ValueError):
            pass  # changed since the scan, or dlib refused it: stays missing
    fallback = figures(vectors, found)
    return PairsResult(
        pairs_file=os.fsdecode(parsed.path),
        root=os.fsdecode(root),
        threshold=threshold,
        far=far,
        pairs=len(same),
        same_pairs=int(same.sum()),
        different_pairs=int((~same).sum()),
        folds=len(np.unique(folds)),
        folds_from_file=parsed.folds is not None,
        images=len(images),
        no_face=tuple(sorted(_rel(images[k], root) for k in no_face)),
        unreadable=tuple(sorted((_rel(images[k], root), r) for k, r in emb.unreadable.items())),
        strict=strict,
        fallback=fallback,
        scan=_scan_summary(emb.report),
        seconds=time.perf_counter() - start,
    )


# -- clusters ---------------------------------------------------------------------


@dataclass(frozen=True)
class MixedCluster:
    """A cluster holding more than one identity, for review: its members as
    (relative path, identity), the most common identity first."""

    size: int
    identities: tuple[tuple[str, int], ...]
    files: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "identities": dict(self.identities),
            "files": [{"path": p, "identity": i} for p, i in self.files],
        }


@dataclass(frozen=True)
class ClustersResult:
    root: str
    labels: str | None
    threshold: float | None
    operating_point: dict[str, object]
    images: int
    identities: int
    clusters: int
    singletons: int
    pairwise: mt.PRF
    bcubed: mt.PRF
    nmi: float
    worst: tuple[MixedCluster, ...]
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    skipped_labels: int
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "labels": self.labels,
            "threshold": self.threshold,
            "operating_point": self.operating_point,
            "images": self.images,
            "identities": self.identities,
            "clusters": self.clusters,
            "singletons": self.singletons,
            "pairwise": {k: _num(v) for k, v in self.pairwise.as_dict().items()},
            "bcubed": {k: _num(v) for k, v in self.bcubed.as_dict().items()},
            "nmi": _num(self.nmi),
            "mixed_clusters": [m.as_dict() for m in self.worst],
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "skipped_labels": self.skipped_labels,
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class _LabelledFaces:
    labelled: LabelledImages
    embedded: Embedded
    identity_ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.labelled.paths)


def _labelled_faces(
    store: Store,
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None,
    settings: DetectionSettings | None,
    workers: int,
    progress: ProgressCallback | None,
) -> _LabelledFaces:
    labelled = read_labels(root, labels)
    embedded = embed_images(store, labelled.paths, settings or DetectionSettings(), workers, progress)
    _, identity_ids = np.unique(np.asarray(labelled.identities), return_inverse=True)
    return _LabelledFaces(labelled, embedded, identity_ids.reshape(-1).astype(np.int64))


def predict(
    store: Store, face_ids: np.ndarray, policy: Policy, min_size: int, unbound: Collection[int] = ()
) -> np.ndarray:
    """The person of each image's face as ``photocluster clusters`` would make it (every
    face of the store clustered, constraints and min-size included, nothing written); an
    image without a face, or whose face would be unknown, is a cluster of its own. The
    pins and rejections of ``unbound`` faces are left out (see ``plan_persons``)."""
    plan = plan_persons(store, policy, min_size, unbound=unbound)[0].persons
    person = np.array([plan.get(f) if f >= 0 else None for f in face_ids.tolist()], dtype=object)
    alone = np.array([p is None for p in person], dtype=bool)
    labels = np.zeros(len(face_ids), dtype=np.int64)
    if (~alone).any():
        _, labels[~alone] = np.unique(person[~alone].astype(np.int64), return_inverse=True)
    start = int(labels[~alone].max()) + 1 if (~alone).any() else 0
    labels[alone] = start + np.arange(int(alone.sum()))
    return labels


def eval_clusters(
    store: Store,
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    worst: int = DEFAULT_WORST,
    progress: ProgressCallback | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    method: Method | str = Method.TWO_STAGE,
) -> ClustersResult:
    """Cluster the scanned faces exactly as ``photocluster clusters --threshold T --method M``
    does (``threshold`` None: its default) and compare each labelled image's face with its identity. An image
    without a face, or whose face stays unknown, is a cluster of its own."""
    start = time.perf_counter()
    if threshold is not None:
        _check_threshold(threshold)
    data = _labelled_faces(store, root, labels, settings, workers, progress)
    policy = Policy.at(threshold, method)
    pred = predict(store, data.embedded.face_ids, policy, min_size)
    truth = data.identity_ids
    sizes = np.bincount(pred)
    root_path = data.labelled.root
    mixed: list[MixedCluster] = []
    for label in np.unique(pred).tolist():
        members = np.flatnonzero(pred == label)
        ids = Counter(data.labelled.identities[k] for k in members.tolist())
        if len(ids) < 2:
            continue
        rank = {name: r for r, (name, _) in enumerate(sorted(ids.items(), key=lambda kv: (-kv[1], kv[0])))}
        files = sorted(
            ((_rel(data.labelled.paths[k], root_path), data.labelled.identities[k]) for k in members.tolist()),
            key=lambda pi: (rank[pi[1]], pi[0]),
        )
        mixed.append(
            MixedCluster(len(members), tuple(sorted(ids.items(), key=lambda kv: (-kv[1], kv[0]))), tuple(files))
        )
    mixed.sort(key=lambda m: (-m.size, -len(m.identities), m.files[0][0]))
    return ClustersResult(
        root=os.fsdecode(root_path),
        labels=None if labels is None else os.fsdecode(labels),
        threshold=threshold,
        operating_point=policy.as_dict(),
        images=data.n,
        identities=len(np.unique(truth)),
        clusters=len(sizes),
        singletons=int(np.sum(sizes == 1)),
        pairwise=mt.pairwise(truth, pred),
        bcubed=mt.bcubed(truth, pred),
        nmi=mt.nmi(truth, pred),
        worst=tuple(mixed[:worst]),
        no_face=_no_face(data),
        unreadable=_unreadable(data),
        skipped_labels=data.labelled.skipped,
        scan=_scan_summary(data.embedded.report),
        seconds=time.perf_counter() - start,
    )


def _no_face(data: _LabelledFaces) -> tuple[str, ...]:
    e = data.embedded
    return tuple(
        sorted(
            _rel(data.labelled.paths[k], data.labelled.root)
            for k in range(data.n)
            if not e.found[k] and k not in e.unreadable
        )
    )


def _unreadable(data: _LabelledFaces) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((_rel(data.labelled.paths[k], data.labelled.root), r) for k, r in data.embedded.unreadable.items())
    )


# -- calibrate --------------------------------------------------------------------


def default_thresholds() -> tuple[float, ...]:
    """0.30 to 0.80 in steps of 0.02: dlib's same-person distances are mostly 0.3-0.6."""
    return tuple(round(0.30 + 0.02 * k, 2) for k in range(26))


@dataclass(frozen=True)
class CalibrationRow:
    threshold: float  # NaN: the default two-stage clustering
    clusters: int
    pairwise: mt.PRF
    bcubed: mt.PRF

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": None if math.isnan(self.threshold) else self.threshold,
            "clusters": self.clusters,
            "pairwise": {k: _num(v) for k, v in self.pairwise.as_dict().items()},
            "bcubed": {k: _num(v) for k, v in self.bcubed.as_dict().items()},
        }


@dataclass(frozen=True)
class CalibrationResult:
    """The clustering figures per threshold. ``recommended`` has the best BCubed F1 (every
    photo weighs the same), ties broken by pairwise F1, then the median of the tied thresholds."""

    root: str
    labels: str | None
    images: int
    identities: int
    rows: tuple[CalibrationRow, ...]
    recommended: float
    default: CalibrationRow  # the default two-stage clustering, what `clusters` does with no option
    no_face: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]
    skipped_labels: int
    scan: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    method: str = Method.TWO_STAGE  # the method swept (the default row is always the default)

    @property
    def best(self) -> CalibrationRow:
        return next(r for r in self.rows if r.threshold == self.recommended)

    def as_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "labels": self.labels,
            "images": self.images,
            "identities": self.identities,
            "recommended": self.recommended,
            "method": str(self.method),
            "rows": [r.as_dict() for r in self.rows],
            "default": self.default.as_dict(),
            "no_face_count": len(self.no_face),
            "no_face": list(self.no_face),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "skipped_labels": self.skipped_labels,
            "scan": self.scan,
            "seconds": round(self.seconds, 2),
        }


def recommend(rows: Sequence[CalibrationRow]) -> float:
    """Best BCubed F1, then best pairwise F1; among rows still tied, their median threshold
    (the lower of two middles): the farthest from both over- and under-merging."""
    if not rows:
        raise UsageError("no thresholds to choose from")
    score = np.array([(round(r.bcubed.f1, 9), round(r.pairwise.f1, 9)) for r in rows])
    best_b = score[:, 0].max()
    tied = score[:, 0] == best_b
    best_p = score[tied, 1].max()
    tied &= score[:, 1] == best_p
    ts = np.sort(np.array([r.threshold for r in rows])[tied])
    return float(ts[(len(ts) - 1) // 2])


def calibrate(
    store: Store,
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    thresholds: Sequence[float] | None = None,
    settings: DetectionSettings | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    method: Method | str = Method.TWO_STAGE,
) -> CalibrationResult:
    """Pairwise and BCubed precision/recall of ``clusters --threshold T --method M`` for each
    threshold T, and of the default clustering, each through the code ``clusters`` runs."""
    start = time.perf_counter()
    ts = sorted(set(thresholds if thresholds is not None else default_thresholds()))
    if not ts:
        raise UsageError("no thresholds to sweep")
    for t in ts:
        _check_threshold(t)
    data = _labelled_faces(store, root, labels, settings, workers, progress)

    def row(threshold: float | None) -> CalibrationRow:
        policy = Policy() if threshold is None else Policy.at(threshold, method)
        pred = predict(store, data.embedded.face_ids, policy, min_size)
        return CalibrationRow(
            threshold=math.nan if threshold is None else threshold,
            clusters=len(np.unique(pred)),
            pairwise=mt.pairwise(data.identity_ids, pred),
            bcubed=mt.bcubed(data.identity_ids, pred),
        )

    rows = [row(float(t)) for t in ts]
    return CalibrationResult(
        root=os.fsdecode(data.labelled.root),
        labels=None if labels is None else os.fsdecode(labels),
        images=data.n,
        identities=len(np.unique(data.identity_ids)),
        rows=tuple(rows),
        recommended=recommend(rows),
        default=row(None),
        no_face=_no_face(data),
        unreadable=_unreadable(data),
        skipped_labels=data.labelled.skipped,
        scan=_scan_summary(data.embedded.report),
        seconds=time.perf_counter() - start,
        method=str(Method(method)),
    )
