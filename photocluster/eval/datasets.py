"""Labelled image sets read for the evaluations: LFW ``pairs.txt`` files (:func:`read_pairs`)
and images with one identity each, from person folders or a CSV (:func:`read_labels`)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.core.errors import PathNotFoundError, UsageError
from photocluster.core.files import read_regular
from photocluster.detect.images import walk

# A pairs or labels file is read whole: LFW's pairs.txt is 100 KB, a label CSV of a million
# images some 100 MB.
TEXT_FILE_MAX_BYTES = 256 * 1024 * 1024


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
        # A FIFO or a device named as the file is refused, not waited on or read without end.
        return read_regular(path, TEXT_FILE_MAX_BYTES).decode("utf-8-sig")
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
    one person (``<unlabeled>``, ``<no_face>``, ``a;b``). ``groups``: the CSV's extra columns
    (``age_group``: young / adult, say), column name -> one value per image."""

    root: Path
    paths: tuple[Path, ...]
    identities: tuple[str, ...]
    skipped: int = 0
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


def read_labels(root: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None) -> LabelledImages:
    """Identities from ``labels`` (a CSV of ``relative_path,identity``, paths relative to
    ``root``, an optional header row; further columns, such as ``age_group``, are groups the
    figures are also given for, named by the header, else ``group``, ``group2``...) or else
    from folder names: every image under ``root/<identity>/``. Raises UsageError for a
    malformed row or a missing image."""
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
    group_values: list[list[str]] = []
    group_names: list[str] | None = None
    width = 0
    seen: dict[Path, int] = {}
    skipped = 0
    missing: list[tuple[Path, int]] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if group_names is None:
            # The first row sets the columns: relative_path, identity, then any groups.
            if len(cells) < 2:
                raise UsageError(f"{labels}:{lineno}: expected 'relative_path,identity', got {','.join(row)!r}")
            width = len(cells)
            if (cells[0].lower(), cells[1].lower()) == ("relative_path", "identity"):
                group_names = _group_names(labels, lineno, cells[2:])
                continue
            group_names = [f"group{k + 1}" if k else "group" for k in range(width - 2)]
        if len(cells) != width:
            expected = "relative_path,identity" + "".join(f",{g}" for g in group_names)
            raise UsageError(f"{labels}:{lineno}: expected '{expected}' like the first row, got {','.join(row)!r}")
        rel, identity = cells[0], cells[1]
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
        group_values.append(cells[2:])
    if missing:
        first, line = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"{first}: no such image (named on line {line} of {labels}){more}")
    if not paths:
        raise UsageError(f"{labels}: no row names an image with one identity")
    groups = {name: tuple(v[k] for v in group_values) for k, name in enumerate(group_names or [])}
    return LabelledImages(root, tuple(paths), tuple(identities), skipped, groups)


def _group_names(labels: Path, lineno: int, names: list[str]) -> list[str]:
    for name in names:
        if not name:
            raise UsageError(f"{labels}:{lineno}: a column of the header has no name")
    if len(set(names)) < len(names):
        raise UsageError(f"{labels}:{lineno}: a column name is used twice in the header")
    return names
