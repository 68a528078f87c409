"""Lay out the labelled fixtures as LFW does, for ``photocluster eval pairs``.

Writes, under OUT (links to the fixture photos, nothing copied):

- ``deepface/images/<name>/<name>_000N.jpg`` and ``deepface/pairs.txt``: every "Yes"/"No"
  row of deepface-dataset/master.csv whose two photos are in the fixtures (136 pairs;
  names from fixtures/labels.csv, a count header, so folds are dealt by photocluster).
- ``johns/images/...`` and ``johns/pairs.txt``: dlib-johns in LFW's View 2 layout, 10 folds
  of 25 same and 25 different pairs drawn with a fixed seed.

    python benchmarks/lfw_pairs_from_fixtures.py --out /tmp/pc-eval [--fixtures DIR]

README.md, "How accurate is it", gives the commands that use them.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import random
from pathlib import Path


def link_layout(dest: Path, images: dict[str, list[Path]]) -> None:
    for name, paths in images.items():
        (dest / name).mkdir(parents=True, exist_ok=True)
        for k, path in enumerate(paths, start=1):
            link = dest / name / f"{name}_{k:04d}.jpg"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(path.resolve())


def write_pairs(path: Path, header: str, pairs: list[tuple[object, ...]]) -> None:
    path.write_text(header + "\n" + "".join("\t".join(map(str, p)) + "\n" for p in pairs))


def deepface(fixtures: Path, out: Path) -> int:
    folder = fixtures / "deepface-dataset"
    with open(fixtures / "labels.csv", newline="") as fh:
        identity = {r["relative_path"]: r["identity"] for r in csv.DictReader(fh)}
    with open(folder / "master.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (folder / r["file_x"]).is_file() and (folder / r["file_y"]).is_file()]
    files = sorted({r["file_x"] for r in rows} | {r["file_y"] for r in rows}, key=lambda f: int(f[3:-4]))
    by_name: dict[str, list[Path]] = {}
    number: dict[str, tuple[str, int]] = {}
    for f in files:
        name = identity[f"deepface-dataset/{f}"]
        by_name.setdefault(name, []).append(folder / f)
        number[f] = (name, len(by_name[name]))
    link_layout(out / "images", by_name)
    pairs: list[tuple[object, ...]] = []
    for r in rows:
        (a, na), (b, nb) = number[r["file_x"]], number[r["file_y"]]
        if (a == b) != (r["Decision"] == "Yes"):
            raise SystemExit(f"labels.csv and master.csv disagree on {r['file_x']}, {r['file_y']}")
        pairs.append((a, na, nb) if a == b else (a, na, b, nb))
    write_pairs(out / "pairs.txt", str(len(pairs)), pairs)
    return len(pairs)


def johns(fixtures: Path, out: Path, folds: int = 10, per_fold: int = 25) -> int:
    root = fixtures / "dlib-johns"
    people = sorted(p.name for p in root.iterdir() if p.is_dir())
    images = {name: sorted((root / name).iterdir()) for name in people}
    link_layout(out / "images", images)
    same = [(n, a, b) for n in people for a, b in itertools.combinations(range(1, len(images[n]) + 1), 2)]
    diff = [
        (n1, a, n2, b)
        for n1, n2 in itertools.combinations(people, 2)
        for a in range(1, len(images[n1]) + 1)
        for b in range(1, len(images[n2]) + 1)
    ]
    rng = random.Random(0)
    same = rng.sample(same, folds * per_fold)
    diff = rng.sample(diff, folds * per_fold)
    pairs = [
        p
        for f in range(folds)
        for p in same[f * per_fold : (f + 1) * per_fold] + diff[f * per_fold : (f + 1) * per_fold]
    ]
    write_pairs(out / "pairs.txt", f"{folds}\t{per_fold}", pairs)
    return len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_fixtures = os.environ.get(
        "PHOTOCLUSTER_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures")
    )
    parser.add_argument("--fixtures", type=Path, default=Path(default_fixtures))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    n = deepface(args.fixtures, args.out / "deepface")
    print(f"{args.out / 'deepface' / 'pairs.txt'}: {n} pairs")
    n = johns(args.fixtures, args.out / "johns")
    print(f"{args.out / 'johns' / 'pairs.txt'}: {n} pairs")


if __name__ == "__main__":
    main()
