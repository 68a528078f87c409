"""benchmarks/cluster_scale.py's incremental step (the interface issue 26 is accepted by):
each command run on a fresh copy of the grown library, alternated, the median reported."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cluster_scale import Library, _median_run, incremental, synthetic


def test_the_median_run_is_reported() -> None:
    runs: list[dict[str, object]] = [{"command_s": s, "k": k} for k, s in enumerate([9.0, 7.0, 8.0])]
    assert _median_run(runs)["k"] == 2
    assert _median_run(runs[:2])["k"] == 1  # the lower middle of an even number
    assert _median_run(runs[:1])["k"] == 0


def test_the_incremental_step_runs_each_command_on_the_grown_library_each_time() -> None:
    emb, truth = synthetic(3000, seed=5)
    lib = Library.of(emb, truth, seed=5)
    n = lib.cut(0.98)
    result = incremental(lib, n, repeats=2)
    assert result["mode"] == "incremental" and result["faces_added"] == len(emb) - n
    runs, fulls = result["runs_s"], result["full_runs_s"]
    assert isinstance(runs, list) and isinstance(fulls, list) and len(runs) == len(fulls) == 2
    assert result["command_s"] == min(runs) and result["full_command_s"] == min(fulls)
    assert float(result["pairwise_f_vs_full"]) >= 0.99  # type: ignore[arg-type]
    assert float(result["pairwise_f_vs_full_new_faces"]) >= 0.99  # type: ignore[arg-type]
