"""The operating point of the default clustering, ``clusters --threshold T``, swept on a scanned,
labelled library (development figures): for each T, every threshold of the two-stage method
scaled by T / 0.6 (what ``--threshold`` does), and for comparison shifted by T - 0.6, and plain
Chinese whispers at T (``--method whispers``). Nothing is scanned: the faces already in the
database are clustered with the real ``clusters`` code (:func:`photocluster.app.recluster.plan_persons`)
and each photo under ``--root`` is scored by its face nearest the centre, its identity the
name of its folder (LFW's layout); a face left unknown is a cluster of its own.

    python /work/shared/lfw-dev/layout.py /tmp/lfw-dev
    photocluster scan /tmp/lfw-dev --db lfw.db           # or: photocluster eval clusters --root ... --db
    python benchmarks/operating_point.py --db lfw.db --root /tmp/lfw-dev

Prints one JSON object per row.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
from lfw_dev import score

from photocluster.grouping.grouper import Policy
from photocluster.store import Store

SWEEP = (0.50, 0.52, 0.54, 0.56, 0.58, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70)


def shifted(t: float) -> Policy:
    """Every distance threshold of the default moved by ``t - 0.6`` (margins and penalty kept)."""
    p, s = Policy(threshold=t), t - 0.6
    clear = None if p.clear_merge is None else p.clear_merge + s
    return replace(p, link=p.link + s, merge=p.merge + s, radius=p.radius + s, clear_merge=clear)


def labelled_faces(db: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(face id, identity: the photo's folder) of each photo under ``root``: its face nearest the centre."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT f.id, p.path, (f.left + f.right - p.width) * (f.left + f.right - p.width) + "
        "(f.top + f.bottom - p.height) * (f.top + f.bottom - p.height) FROM faces f "
        "JOIN photos p ON p.id = f.photo_id WHERE p.status = 'done'"
    ).fetchall()
    prefix = os.fsdecode(root.resolve()) + os.sep
    best: dict[str, tuple[float, int]] = {}
    for fid, raw, off_centre in rows:
        path = os.fsdecode(raw)
        if path.startswith(prefix) and (path not in best or off_centre < best[path][0]):
            best[path] = (off_centre, fid)
    paths = sorted(best)
    return np.array([best[p][1] for p in paths]), np.array([Path(p).parent.name for p in paths])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a scanned library database (not changed)")
    ap.add_argument("--root", type=Path, required=True, help="the labelled photos: ROOT/<identity>/<photo>")
    ap.add_argument("--thresholds", type=float, nargs="*", default=SWEEP)
    ap.add_argument("--no-compare", action="store_true", help="only the scaled operating points")
    args = ap.parse_args()
    face_ids, truth = labelled_faces(args.db, args.root)
    print(json.dumps({"photos": len(face_ids), "identities": len(set(truth.tolist()))}), flush=True)
    with Store(args.db) as store:
        print(json.dumps({"clustering": "default", **score(store, Policy(), face_ids, truth)}), flush=True)
        for t in args.thresholds:
            rows = {"two-stage (scaled)": Policy.at(t)}
            if not args.no_compare:
                rows |= {"two-stage (shifted)": shifted(t), "whispers": Policy.at(t, "whispers")}
            for name, policy in rows.items():
                print(
                    json.dumps({"clustering": name, "threshold": t, **score(store, policy, face_ids, truth)}),
                    flush=True,
                )


if __name__ == "__main__":
    main()
