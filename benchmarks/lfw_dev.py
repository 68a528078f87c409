"""Clustering at library scale on the development half of LFW (development figures).

The library is every LFW photo (``../shared/holdout/images``, 13,230 photos); the labels are
those of half of LFW's people (``../shared/lfw-dev/labels.csv``). Each labelled photo is
represented by its face nearest the centre; the other half's photos are strangers in the
library, clustered but not scored. Every row runs the real ``clusters`` code
(:func:`photocluster.app.recluster.plan_persons`) and scores it; a face left unknown is a
cluster of its own.

    python benchmarks/lfw_dev.py --db lfw.db            # scans first if needed (~45 min on 2 cores)
    python benchmarks/lfw_dev.py --db lfw.db --suggest  # and the top-100 `suggest` figures

Prints one JSON object per row, then the suggestion figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from descriptor_views import central_faces

from photocluster.app.recluster import plan_persons, recluster
from photocluster.app.scan import scan
from photocluster.app.suggest import suggest
from photocluster.eval.metrics import bcubed, pairwise
from photocluster.grouping.grouper import Policy
from photocluster.store import Store

SHARED = Path(__file__).resolve().parents[2] / "shared"
POLICIES = {
    "whispers at 0.60 (old default)": Policy.at(0.6, "whispers"),
    "whispers at 0.45": Policy.at(0.45, "whispers"),
    "whispers at 0.42": Policy.at(0.42, "whispers"),
    "whispers at 0.40": Policy.at(0.40, "whispers"),
    "two-stage, no small-cluster rule, no quality, no clear merges, no ejection": Policy(
        small_penalty=0.0, min_confidence=0.0, clear_merge=None, eject=False
    ),
    "two-stage, no quality, no clear merges, no ejection": Policy(min_confidence=0.0, clear_merge=None, eject=False),
    "two-stage, no clear merges, no ejection": Policy(clear_merge=None, eject=False),
    "two-stage, no ejection": Policy(eject=False),
    "default": Policy(),
}


def labelled_faces(db: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """(face id, identity) of each labelled photo's face nearest its centre."""
    with open(labels, newline="") as fh:
        identity = {row["image"]: row["identity"] for row in csv.DictReader(fh)}
    central = central_faces(db)
    names = sorted(set(central) & set(identity))
    return np.array([central[n].face_id for n in names]), np.array([identity[n] for n in names])


def predicted(store: Store, policy: Policy, face_ids: np.ndarray) -> tuple[dict[int, int | None], np.ndarray]:
    """``clusters`` planned with ``policy`` (a full run): each face's person, and the person of
    each of ``face_ids`` as a cluster label, an unknown face a cluster of its own."""
    plan = plan_persons(store, policy)[0].persons
    persons = [plan.get(int(f)) for f in face_ids]
    # New persons carry negative placeholder ids until saved: unknown faces, each a cluster
    # of its own, are numbered above every person id.
    pred = np.array([p if p is not None else (1 << 40) + k for k, p in enumerate(persons)], dtype=np.int64)
    return plan, pred


def score(store: Store, policy: Policy, face_ids: np.ndarray, truth: np.ndarray) -> dict[str, object]:
    t = time.perf_counter()
    plan, pred = predicted(store, policy, face_ids)
    _, truth_ids = np.unique(truth, return_inverse=True)
    p, b = pairwise(truth_ids, pred), bcubed(truth_ids, pred)
    return {
        "pairwise": [round(p.precision, 4), round(p.recall, 4), round(p.f1, 4)],
        "bcubed": [round(b.precision, 4), round(b.recall, 4), round(b.f1, 4)],
        "persons": len({x for x in plan.values() if x is not None}),
        "unknown": sum(1 for x in plan.values() if x is None),
        "seconds": round(time.perf_counter() - t, 1),
    }


def suggestions(db: Path, face_ids: np.ndarray, truth: np.ndarray, limit: int = 100) -> dict[str, int]:
    """Cluster at the defaults (in a copy), then judge the top suggestions by the labels."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copy(db, copy)
        with Store(copy) as store:
            recluster(store)
            found = suggest(store, limit=limit)
            person = {f.id: f.person_id for f, _ in store.faces()}
    majority: dict[int, Counter[str]] = defaultdict(Counter)
    for fid, who in zip(face_ids.tolist(), truth.tolist(), strict=True):
        if person.get(fid) is not None:
            majority[person[fid]][who] += 1
    right = wrong = unlabelled = 0
    for s in found:
        a, b = majority.get(s.a), majority.get(s.b)
        if not a or not b:
            unlabelled += 1
        elif a.most_common(1)[0][0] == b.most_common(1)[0][0]:
            right += 1
        else:
            wrong += 1
    parts: dict[str, int] = Counter(c.most_common(1)[0][0] for c in majority.values())
    return {
        "suggestions": len(found),
        "repair_a_split": right,
        "two_people": wrong,
        "without_labels": unlabelled,
        "true_splits": sum(n - 1 for n in parts.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="library database (scanned here if empty)")
    ap.add_argument("--images", type=Path, default=SHARED / "holdout" / "images")
    ap.add_argument("--labels", type=Path, default=SHARED / "lfw-dev" / "labels.csv")
    ap.add_argument("--suggest", action="store_true", help="also judge the top 100 suggestions")
    args = ap.parse_args()
    with Store(args.db) as store:
        report = scan(store, [args.images])
        print(json.dumps({"scan": {"analysed": report.analysed, "faces_found": report.faces_found}}), flush=True)
    face_ids, truth = labelled_faces(args.db, args.labels)
    with Store(args.db) as store:
        for name, policy in POLICIES.items():
            print(json.dumps({"clustering": name, **score(store, policy, face_ids, truth)}), flush=True)
    if args.suggest:
        print(json.dumps({"suggest": suggestions(args.db, face_ids, truth)}), flush=True)


if __name__ == "__main__":
    main()
