"""Which detections are junk: quality features of true and false face detections.

Scans the fixture photos (and the first ``--lfw-dev`` photos of the LFW development half)
with photocluster's own library API at the default settings, into a temporary database or
``--db``; labels every detection true (a face) or false (not a face); computes quality
features for each; and counts, for simple rules ("confidence < c", "size < s px",
"blur < b", ...) and for pairs of them (or, and), the false detections they catch and the
true faces they flag.

Labels:

- ``dlib-faces/20xx_*.jpg`` (9 PASCAL VOC photos): ``training.xml``/``testing.xml`` list
  every face box in the photo's pixels (these photos have no EXIF orientation: the script
  stops if an XML image size differs from the stored, displayed size). A detection that
  matches a box (IoU >= 0.3, one to one, best IoU first) is true, any other false.
- ``<no_face>`` photos (``dogs.jpg``): every detection is false.
- The other fixture photos show real faces, one per person ``labels.csv`` names (an
  ``<unlabeled>`` part counts as one face; FACE_COUNTS gives the collage and the selfie).
  Detections listed in BY_EYE (checked by eye) take their verdict; the others are true
  when there are no more of them than the photo has faces, else "unverified" (listed
  with their features, left out of the counts).
- LFW (150 px news photos, one labelled face at the centre): the detection whose box holds
  the centre is true; every other detection of the first LFW_CHECKED photos was checked
  by eye (BY_EYE holds the two that are not faces), beyond those they are "unverified".

``--sheet PNG`` draws the aligned chip of every detection but the LFW subjects, captioned
with its label and confidence, to check the labels by eye.

Features, per detection: ``confidence`` (the MMOD score, as stored); ``size`` (the box's
shorter side in full-resolution photo pixels, as stored); ``rel_size`` (size over the
photo's long side); ``blur`` (variance of the Laplacian of the grey 150x150 aligned chip,
the image the descriptor sees: low means blurred, or enlarged from few pixels); ``yaw``
(the nose's distance from the perpendicular bisector of the eyes over the eye distance,
from the 5 landmarks: 0 frontal, 0.5 and more towards profile); ``eye_span`` (eye distance
over box width); ``outside`` (the share of the box outside the photo: a face cut by the
edge).

Prints one JSON object: counts; each feature's distribution over the true faces (min,
percentiles; also per group) and its value for every false detection; every single-feature
rule; the best rules and pairs of rules; and the recommended rule.

    python benchmarks/face_quality.py [--fixtures DIR] [--lfw-dev N] [--db PATH] [--sheet PNG] [--json OUT]

About 10 minutes with the default 2,000 LFW photos on 2 busy cores; with ``--db`` a rerun
only re-scores (30 s).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster import Box, DetectionSettings, Face, Store, scan
from photocluster.detect.faces import face_chip
from photocluster.detect.images import load_image

IOU_MATCH = 0.3
FIXTURE_SETS = (
    "dlib-faces",
    "dlib-johns",
    "face_recognition-knn",
    "face_recognition-examples",
    "face_recognition-tests",
    "deepface-dataset",
)
# Faces in photos whose count labels.csv cannot give: the collage shows 24 faces (dlib finds
# 25 boxes: the 25th is a chin, in BY_EYE), the selfie angelina and 3 unlabelled people.
FACE_COUNTS = {"dlib-faces/bald_guys.jpg": 24, "deepface-dataset/selfie-many-people.jpg": 4}
# Detections no annotation decides, checked by eye on the photos: a point inside the box
# (photo pixels) and the verdict. The detection whose box holds the point (centred nearest
# it, when several do) takes the verdict.
BY_EYE: dict[str, list[tuple[float, float, str]]] = {
    # the chin and collar below Jason Statham's face: the collage's 25th box
    "dlib-faces/bald_guys.jpg": [(426, 1164, "false")],
    # gold beads on the dress, below Marissa Mayer's face
    "deepface-dataset/img23.jpg": [(1622, 1563, "false")],
    # a bronze statue's face beside the man: not a person
    "lfw/1ca5d32e0dc375fa57319c6127359166f8ed0860.jpg": [(131, 74, "false")],
    # the tie and shirt collar below the man's face
    "lfw/173e2bcd2273707b25a83e742de6351c1bfbe02f.jpg": [(73, 151, "false")],
}
# In the first LFW_CHECKED LFW photos, the 205 detections besides the centre faces were
# checked by eye: 203 are people behind or beside the labelled person (cut by the photo's
# edge, turned away, blurred, or in a poster); the other two are in BY_EYE.
LFW_CHECKED = 2000
# Which end of each feature is suspicious; confidence and size are tried at fixed
# thresholds, the others just past each false detection's value (and at BLUR_GRID).
BAD_END = {
    "confidence": "low",
    "size": "low",
    "rel_size": "low",
    "blur": "low",
    "yaw": "high",
    "eye_span": "low",
    "outside": "high",
}
GRIDS = {
    "confidence": [round(0.1 + 0.05 * i, 2) for i in range(11)],  # 0.1 .. 0.6
    "size": [float(s) for s in range(20, 61, 5)],  # 20 .. 60 px
}
BLUR_GRID = [5.0, 10.0, 20.0, 50.0, 100.0]
# Features the database holds (no pixels needed): preferred when rules tie.
STORED_FEATURES = ("confidence", "size", "rel_size", "yaw", "eye_span", "outside")
# Groups of detections: where a true face comes from, for the breakdowns.
GROUPS = ("voc", "fixture", "no_face", "lfw_centre", "lfw_other")


@dataclass
class Detection:
    group: str  # one of GROUPS
    photo: str  # fixture path relative to the fixtures folder, or lfw/<file>
    box: Box
    label: str  # true, false, unverified
    features: dict[str, float]
    chip: np.ndarray


# -- truth -----------------------------------------------------------------------------


def voc_truth(fixtures: Path) -> dict[str, tuple[tuple[int, int], list[Box]]]:
    """``dlib-faces/<file>`` -> ((width, height) of the XML image, face boxes)."""
    out: dict[str, tuple[tuple[int, int], list[Box]]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(fixtures / "dlib-faces" / name).getroot().iter("image"):
            size = (int(image.get("width", 0)), int(image.get("height", 0)))
            boxes = []
            for b in image.iter("box"):
                if b.get("ignore") == "1":
                    continue
                left, top = float(b.get("left", 0)), float(b.get("top", 0))
                boxes.append(Box(left, top, left + float(b.get("width", 0)), top + float(b.get("height", 0))))
            out["dlib-faces/" + image.get("file", "")] = (size, boxes)
    return out


def expected_faces(fixtures: Path) -> dict[str, int]:
    """Photo (relative to ``fixtures``) -> how many faces it shows; 0 for ``<no_face>``."""
    out: dict[str, int] = {}
    with open(fixtures / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            ident = row["identity"]
            out[row["relative_path"]] = 0 if ident == "<no_face>" else len(ident.split(";"))
    out.update(FACE_COUNTS)
    return out


def match(found: list[Box], truth: list[Box]) -> list[bool]:
    """Which detections match a truth box: IoU >= IOU_MATCH, one to one, best IoU first."""
    pairs = sorted(
        ((found[i].iou(truth[j]), i, j) for i in range(len(found)) for j in range(len(truth))),
        reverse=True,
    )
    matched = [False] * len(found)
    used: set[int] = set()
    for iou, i, j in pairs:
        if iou < IOU_MATCH:
            break
        if not matched[i] and j not in used:
            matched[i] = True
            used.add(j)
    return matched


def holding(faces: list[Face], point: tuple[float, float]) -> int | None:
    """The index of the face whose box holds ``point``, centred nearest it; None if none does."""
    x, y = point
    inside = [i for i, f in enumerate(faces) if f.box.left <= x <= f.box.right and f.box.top <= y <= f.box.bottom]
    return min(inside, key=lambda i: math.dist(faces[i].box.center, point), default=None)


def by_eye(faces: list[Face], rel: str, labels: list[str]) -> list[str]:
    """``labels`` with the verdicts of BY_EYE applied."""
    labels = list(labels)
    for x, y, verdict in BY_EYE.get(rel, []):
        i = holding(faces, (x, y))
        if i is None:
            print(f"{rel}: no detection at ({x}, {y}) any more: check BY_EYE", file=sys.stderr)
        else:
            labels[i] = verdict
    return labels


def lfw_sample(fixtures: Path, n: int) -> list[Path]:
    """The first N photos of the LFW development half by file name (the SHA-1 of their
    bytes: a fixed random order, so a smaller N is a subset of a larger one)."""
    labels = fixtures.parent / "lfw-dev" / "labels.csv"
    images = fixtures.parent / "holdout" / "images"
    if n <= 0 or not labels.is_file():
        return []
    with open(labels, newline="") as fh:
        names = sorted(row["image"] for row in csv.DictReader(fh))
    return [images / name for name in names[:n] if (images / name).is_file()]


# -- features --------------------------------------------------------------------------


def laplacian_variance(chip: np.ndarray) -> float:
    grey = chip.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def pose(landmarks: np.ndarray, box: Box) -> tuple[float, float]:
    """(yaw, eye_span) from dlib's 5 points: 0-1 one eye's corners, 2-3 the other's, 4 the
    base of the nose."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    span = float(np.linalg.norm(eye_a - eye_b))
    if span < 1e-6:
        return math.inf, 0.0
    axis = (eye_a - eye_b) / span
    yaw = abs(float(np.dot(nose - (eye_a + eye_b) / 2, axis))) / span
    return yaw, span / box.width


def describe(face: Face, chip: np.ndarray, photo_size: tuple[int, int]) -> dict[str, float]:
    box = face.box
    size = min(box.width, box.height)
    yaw, eye_span = pose(face.landmarks, box)
    width, height = photo_size
    inside = max(0.0, min(box.right, width) - max(box.left, 0)) * max(0.0, min(box.bottom, height) - max(box.top, 0))
    return {
        "confidence": float(face.confidence),
        "size": size,
        "rel_size": size / max(photo_size),
        "blur": laplacian_variance(chip),
        "yaw": yaw,
        "eye_span": eye_span,
        "outside": 1 - inside / (box.width * box.height),
    }


# -- scanning and labelling ------------------------------------------------------------


def collect(store: Store, fixtures: Path, lfw: list[Path], settings: DetectionSettings) -> list[Detection]:
    """Every detection of the scanned photos, labelled, with its features."""
    voc = voc_truth(fixtures)
    expected = expected_faces(fixtures)
    photos = [(p, p.relative_to(fixtures).as_posix()) for s in FIXTURE_SETS for p in sorted((fixtures / s).rglob("*"))]
    photos += [(p, "lfw/" + p.name) for p in lfw]
    checked = set(lfw[:LFW_CHECKED])
    out: list[Detection] = []
    seen: set[str] = set()
    for path, rel in photos:
        found = store.photo_by_path(Path(os.path.abspath(path)))
        if found is None:
            continue  # not a photo (XML, CSV)
        photo = found[0]
        if photo.status != "done" or photo.width is None or photo.height is None:
            print(f"skipped {rel}: {photo.status} {photo.error or ''}", file=sys.stderr)
            continue
        digest = photo.sha256 or rel
        if digest in seen:
            continue  # a byte-identical copy (dlib-johns has one): its faces count once
        seen.add(digest)
        faces = store.photo_faces(photo.id)
        size = (photo.width, photo.height)
        if rel in voc:
            xml_size, truth = voc[rel]
            if xml_size != size:
                raise SystemExit(f"{rel}: XML size {xml_size} != displayed size {size} (EXIF orientation?)")
            labels = ["true" if m else "false" for m in match([f.box for f in faces], truth)]
            groups = ["voc"] * len(faces)
        elif rel.startswith("lfw/"):
            centre = holding(faces, (photo.width / 2, photo.height / 2))
            other = "true" if path in checked else "unverified"
            labels = by_eye(faces, rel, ["true" if i == centre else other for i in range(len(faces))])
            groups = ["lfw_centre" if i == centre else "lfw_other" for i in range(len(faces))]
        elif expected.get(rel) == 0:
            labels = ["false"] * len(faces)
            groups = ["no_face"] * len(faces)
        else:
            labels = by_eye(faces, rel, [""] * len(faces))
            ok = labels.count("") <= expected.get(rel, 1)
            labels = [label or ("true" if ok else "unverified") for label in labels]
            groups = ["fixture"] * len(faces)
        image = load_image(photo.path, settings.max_size, enlarge=settings.upsample is None)
        for face, label, group in zip(faces, labels, groups, strict=True):
            chip = face_chip(image.pixels, face.landmarks * image.scale)
            out.append(Detection(group, rel, face.box, label, describe(face, chip, size), chip))
    return out


# -- rules -----------------------------------------------------------------------------


def percentiles(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    qs = {"min": 0, "p1": 1, "p5": 5, "p25": 25, "p50": 50, "p95": 95, "max": 100}
    return {k: round(float(np.percentile(values, q)), 4) for k, q in qs.items()}


def nudge(value: float, end: str) -> float | None:
    """A round threshold just past ``value`` (2 significant digits): a rule that catches it.
    None for 0 or less (the features are not negative: "> 0" or "< 0" would not be a rule)."""
    if value <= 0 or not math.isfinite(value):
        return None
    step = 10 ** (math.floor(math.log10(value)) - 1)
    units = math.floor(value / step) + 1 if end == "low" else math.ceil(value / step) - 1
    return round(units * step, 10) if units > 0 else None


@dataclass(frozen=True)
class Rule:
    name: str
    features: tuple[str, ...]
    flags: np.ndarray  # over the labelled detections


class Scorer:
    """Counts what a rule catches and flags, over the labelled detections."""

    def __init__(self, labelled: list[Detection]) -> None:
        self.is_false = np.array([d.label == "false" for d in labelled], dtype=bool)
        self.groups = np.array([d.group for d in labelled])
        self.n_false = int(self.is_false.sum())

    def caught(self, rule: Rule) -> int:
        return int((rule.flags & self.is_false).sum())

    def flagged(self, rule: Rule) -> int:
        return int((rule.flags & ~self.is_false).sum())

    def rank(self, rule: Rule) -> tuple[int, int, int, int]:
        """Most false caught, then fewest true flagged, then one feature, then stored ones."""
        needs_pixels = sum(f not in STORED_FEATURES for f in rule.features)
        return (-self.caught(rule), self.flagged(rule), len(rule.features), needs_pixels)

    def show(self, rule: Rule) -> dict[str, object]:
        true = ~self.is_false
        by_group = {g: int((rule.flags & true & (self.groups == g)).sum()) for g in GROUPS if g != "no_face"}
        return {
            "rule": rule.name,
            "false_caught": self.caught(rule),
            "true_flagged": self.flagged(rule),
            "true_flagged_by_group": by_group,
        }

    def best(self, rules: list[Rule], caught: int, top: int = 5) -> list[Rule]:
        return sorted((r for r in rules if self.caught(r) == caught), key=self.rank)[:top]


def single_rules(values: dict[str, np.ndarray], is_false: np.ndarray) -> list[Rule]:
    rules = []
    for feat, end in BAD_END.items():
        v = values[feat]
        thresholds = set(GRIDS.get(feat, []))
        if feat not in GRIDS:
            thresholds |= {t for x in v[is_false] if (t := nudge(float(x), end)) is not None}
        if feat == "blur":
            thresholds |= set(BLUR_GRID)
        for t in sorted(thresholds):
            flags = v < t if end == "low" else v > t
            rules.append(Rule(f"{feat} {'<' if end == 'low' else '>'} {t:g}", (feat,), flags))
    return rules


def pair_rules(singles: list[Rule]) -> list[Rule]:
    """Every "a or b" and "a and b" of rules on two features, except those that flag just
    what a or b alone flags."""
    pairs = []
    for a, b in itertools.combinations(singles, 2):
        if a.features == b.features:
            continue
        for op, flags in (("or", a.flags | b.flags), ("and", a.flags & b.flags)):
            if not (np.array_equal(flags, a.flags) or np.array_equal(flags, b.flags)):
                pairs.append(Rule(f"{a.name} {op} {b.name}", a.features + b.features, flags))
    return pairs


def rounded(features: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in features.items()}


def report(detections: list[Detection], fixtures: Path, scan_summary: dict[str, object]) -> dict[str, object]:
    labelled = [d for d in detections if d.label != "unverified"]
    scorer = Scorer(labelled)
    is_false = scorer.is_false
    values = {f: np.array([d.features[f] for d in labelled]) for f in BAD_END}
    singles = single_rules(values, is_false)
    pairs = pair_rules(singles)
    n_false = scorer.n_false

    def true_in(group: str) -> np.ndarray:
        return np.asarray(~is_false & (scorer.groups == group), dtype=bool)

    counts: dict[str, int] = {
        "detections": len(detections),
        "true": int((~is_false).sum()),
        **{f"true_{g}": int(true_in(g).sum()) for g in GROUPS if g != "no_face"},
        "false": n_false,
        "unverified": len(detections) - len(labelled),
        "voc_truth_boxes": sum(len(b) for _, b in voc_truth(fixtures).values()),
    }
    catch_all = scorer.best(singles, n_false, 1) if n_false else []
    nearly = scorer.best(singles, n_false - 1, 1) if n_false > 1 else []
    pair_all = scorer.best(pairs, n_false, 1) if n_false else []
    return {
        "scan": scan_summary,
        "counts": counts,
        "true_faces": {f: percentiles(v[~is_false]) for f, v in values.items()},
        "true_faces_by_group": {
            g: {f: percentiles(v[true_in(g)]) for f, v in values.items()}
            for g in GROUPS
            if g != "no_face" and true_in(g).any()
        },
        "false_detections": [
            {"photo": d.photo, "box": [round(x, 1) for x in (d.box.left, d.box.top, d.box.right, d.box.bottom)]}
            | rounded(d.features)
            for d in labelled
            if d.label == "false"
        ],
        "unverified": [{"photo": d.photo} | rounded(d.features) for d in detections if d.label == "unverified"],
        "rules": [scorer.show(r) for r in singles],
        "best": {
            f"catch_{k}_of_{n_false}": {
                "single": [scorer.show(r) for r in scorer.best(singles, k)],
                "pair": [scorer.show(r) for r in scorer.best(pairs, k)],
            }
            for k in range(n_false, max(n_false - 2, 0) - 1, -1)
        },
        # One feature is preferred to a pair: there are few false detections to fit a pair to.
        "recommended": scorer.show(catch_all[0]) if catch_all else None,
        "alternatives": {
            "best_single_missing_one": scorer.show(nearly[0]) if nearly else None,
            "best_pair": scorer.show(pair_all[0]) if pair_all else None,
        },
    }


def contact_sheet(detections: list[Detection], out: Path, tile: int = 96) -> None:
    """The aligned chip of every detection but the LFW centre faces (the labelled subjects),
    false and unverified first, lowest confidence first, captioned with label, confidence
    and photo: to check the labels by eye."""
    from PIL import Image, ImageDraw

    order = {"false": 0, "unverified": 1, "true": 2}
    shown = [d for d in detections if d.group != "lfw_centre"]
    ranked = sorted(shown, key=lambda d: (order[d.label], d.features["confidence"]))
    cols = 16
    sheet = Image.new("RGB", (cols * tile, math.ceil(len(ranked) / cols) * (tile + 24)), "white")
    draw = ImageDraw.Draw(sheet)
    colour = {"false": "red", "unverified": "orange", "true": "black"}
    for k, d in enumerate(ranked):
        x, y = (k % cols) * tile, (k // cols) * (tile + 24)
        sheet.paste(Image.fromarray(d.chip).resize((tile, tile)), (x, y))
        draw.text((x + 2, y + tile), f"{d.label[0].upper()} {d.features['confidence']:.3f}", fill=colour[d.label])
        draw.text((x + 2, y + tile + 11), Path(d.photo).stem[:14], fill=colour[d.label])
    sheet.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.environ.get("PHOTOCLUSTER_FIXTURES", "../shared/fixtures"))
    ap.add_argument("--lfw-dev", type=int, default=LFW_CHECKED, help="LFW development photos to add (0: none)")
    ap.add_argument("--db", help="keep the scan in this database (a rerun only re-scores); default: a temporary one")
    ap.add_argument("--sheet", help="write a contact sheet of every detection's chip here (PNG)")
    ap.add_argument("--json", help="also write the JSON object here")
    args = ap.parse_args()
    fixtures = Path(args.fixtures).resolve()
    settings = DetectionSettings()
    lfw = lfw_sample(fixtures, args.lfw_dev)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(args.db or Path(tmp) / "face_quality.db")) as store:
        print(f"scanning {len(FIXTURE_SETS)} fixture sets and {len(lfw)} LFW photos", file=sys.stderr)
        summary = scan(store, [*(fixtures / s for s in FIXTURE_SETS), *lfw], settings).as_dict()
        detections = collect(store, fixtures, lfw, settings)
    keep = ("settings", "engine", "dlib", "files", "analysed", "faces_found", "seconds")
    result = report(detections, fixtures, {k: summary[k] for k in keep})
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.sheet:
        contact_sheet(detections, Path(args.sheet))


if __name__ == "__main__":
    main()
