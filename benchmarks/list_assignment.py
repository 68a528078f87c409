"""The neighbour search's list assignment at archive scale: every face against every
k-means centre, against the coarse level that replaces it beyond 2,048 lists.

    python benchmarks/list_assignment.py --faces 1000000 --lists 10000

Ten million faces make 10,000 lists (one per 1,000 faces, ``knn_graph``): assigning every
face to its 3 nearest lists was n x L distances, which grows as the square of the library
(about 45 of the 10M run's neighbour-search minutes). This times both on ``--faces``
synthetic faces (``cluster_scale.synthetic``) and ``--lists`` centres trained as the search
trains them, in one run, on every core.

Prints one JSON object: ``kmeans_s`` (training the centres), ``exact_s``, ``coarse_s``,
``speedup`` (exact / coarse), ``nearest_agree`` (share of faces given the same nearest list)
and ``any_agree`` (share whose exact nearest list is among the 3 the coarse level gives).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_scale import synthetic

from photocluster.grouping import graph


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--lists", type=int, default=10_000)
    args = ap.parse_args()
    emb, _ = synthetic(args.faces)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    out: dict[str, object] = {"faces": args.faces, "lists": args.lists}
    with graph._parallel(graph.default_workers()) as pmap:
        t = time.perf_counter()
        centres = graph._kmeans(emb, args.lists, 0, pmap=pmap)
        out["kmeans_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        exact = graph._exact_nearest(emb, centres, 3, pmap=pmap)
        out["exact_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        coarse = graph._coarse_nearest(emb, centres, 3, pmap)
        out["coarse_s"] = round(time.perf_counter() - t, 1)
    out["speedup"] = round(float(out["exact_s"]) / max(float(out["coarse_s"]), 1e-9), 1)  # type: ignore[arg-type]
    out["nearest_agree"] = round(float(np.mean(coarse[:, 0] == exact[:, 0])), 4)
    out["any_agree"] = round(float(np.mean((coarse == exact[:, :1]).any(axis=1))), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
