"""``scan --dask``: speed with 1 and 2 Dask workers against a local scan, by path and with
``--ship-bytes``, on holdout photos (150 px LFW news photos, default detection settings).

    python benchmarks/dask_scan.py --photos 500
    python benchmarks/dask_scan.py --photos 500 --json /tmp/dask_scan.json

The cluster is started as the README tells users to (``dask scheduler``, ``dask worker
tcp://... --nthreads T``, on this machine), then the installed ``photocluster scan`` runs
against it into a fresh database each time. Printed per configuration: photos/s of the scan
proper (the report's own time, from the first file listed to the last photo recorded), the
wall time of the whole command (start-up, connection, models, scan) and the speed-up over one
worker of one thread. The local scan (no Dask; one process, onnxruntime on every core) is the
reference a single machine gives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDOUT = Path(__file__).resolve().parents[2] / "shared" / "holdout" / "images"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster(workers: int, threads: int) -> Iterator[str]:
    """``dask scheduler`` and ``workers`` x ``dask worker --nthreads threads``, as a user starts them."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--port", str(port), "--dashboard-address", ":0"], **quiet)]
    try:
        for _ in range(workers):
            cmd = [BIN / "dask", "worker", address, "--nthreads", str(threads), "--dashboard-address", ":0"]
            procs.append(subprocess.Popen(cmd, **quiet))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_scan(photos: Path, db: Path, extra: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [BIN / "photocluster", "scan", str(photos), "--db", str(db), "--json", *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    assert report["error_count"] == 0, report["errors"]
    return {
        "photos": report["analysed"],
        "faces": report["faces_found"],
        "scan_s": report["seconds"],
        "photos_per_s": report["analysed"] / report["seconds"],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for src in sorted(HOLDOUT.glob("*.jpg"))[: args.photos]:
            shutil.copy2(src, photos / src.name)
        configs: list[tuple[str, int, int, list[str]]] = [("local scan (no Dask)", 0, 0, [])]
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            configs.append((f"{workers} worker(s) x {threads} thread(s), by path", workers, threads, []))
            configs.append(
                (f"{workers} worker(s) x {threads} thread(s), --ship-bytes", workers, threads, ["--ship-bytes"])
            )
        for k, (name, workers, threads, extra) in enumerate(configs):
            db = Path(tmp) / f"run{k}.db"
            if workers == 0:
                row = run_scan(photos, db, [])
            else:
                with cluster(workers, threads) as address:
                    row = run_scan(photos, db, ["--dask", address, *extra])
            results.append({"config": name, **row})
            print(
                f"{name:45} {row['photos_per_s']:6.2f} photos/s  scan {row['scan_s']:6.1f} s  "
                f"command {row['wall_s']:6.1f} s  faces {row['faces']}",
                file=sys.stderr,
            )
    base = next(r for r in results if str(r["config"]).startswith("1 worker(s) x 1 thread(s), by path"))
    print(f"\n{'configuration':45} {'photos/s':>9} {'scan s':>7} {'command s':>10} {'speed-up':>9}")
    for r in results:
        speedup = float(r["photos_per_s"]) / float(base["photos_per_s"])  # type: ignore[arg-type]
        r["speedup_vs_1x1"] = round(speedup, 2)
        print(f"{r['config']:45} {r['photos_per_s']:9.2f} {r['scan_s']:7.1f} {r['wall_s']:10.1f} {speedup:8.2f}x")
    print(f"\n{args.photos} holdout photos, {os.cpu_count()} CPU cores, default detection settings")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
