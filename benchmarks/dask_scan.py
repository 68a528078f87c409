"""``scan --dask``: speed with 1 and 2 Dask workers against a local scan, by path and with
``--ship-bytes``, on holdout photos (150 px LFW news photos, default detection settings).

    python benchmarks/dask_scan.py --photos 500
    python benchmarks/dask_scan.py --photos 500 --json /tmp/dask_scan.json

The cluster is started as the README tells users to (``dask scheduler``, ``dask worker
tcp://... --nthreads T``, on this machine), then the installed ``photocluster scan`` runs
against it into a fresh database each time. Printed per configuration: photos/s of the scan
proper (the report's own time, from the first file listed to the last photo recorded), the
wall time of the whole command (start-up, connection, models, scan) and the speed-up over one
worker of one thread, and the CPU-seconds per photo the workers and the client spent (the
machine is shared: on a busy one the CPU time says what a photo costs, the photos/s what the
machine gave). The local scan (no Dask; one process, onnxruntime on every core) is the
reference a single machine gives.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

HOLDOUT = Path(__file__).resolve().parents[2] / "shared" / "holdout" / "images"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU time of these processes and their children, so far."""
    total = 0.0
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def children_cpu() -> float:
    """CPU time of this process's finished children: the `photocluster scan` commands."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cluster(workers: int, threads: int) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and ``workers`` x ``dask worker --nthreads threads``, as a user
    starts them; yields the scheduler's address and the worker processes."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([BIN / "dask", "scheduler", "--port", str(port), "--dashboard-address", ":0"], **quiet)
    procs = []
    try:
        for _ in range(workers):
            cmd = [BIN / "dask", "worker", address, "--nthreads", str(threads), "--dashboard-address", ":0"]
            procs.append(subprocess.Popen(cmd, **quiet))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, procs
    finally:
        for proc in [*procs, scheduler]:
            proc.terminate()
        for proc in [*procs, scheduler]:
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


def measure(photos: Path, db: Path, workers: int, threads: int, extra: list[str]) -> dict[str, float]:
    """One scan; with ``workers``, on a fresh cluster of that many."""
    client_cpu = children_cpu()
    if workers == 0:
        row = run_scan(photos, db, [])
        row["client_cpu_s"] = row["worker_cpu_s"] = children_cpu() - client_cpu
    else:
        with cluster(workers, threads) as (address, procs):
            before = cpu_seconds(procs)  # start-up and imports are not the scan's
            client_cpu = children_cpu()
            row = run_scan(photos, db, ["--dask", address, *extra])
            row["worker_cpu_s"] = cpu_seconds(procs) - before
            row["client_cpu_s"] = children_cpu() - client_cpu
    row["load_average"] = os.getloadavg()[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: list[dict[str, float | str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for src in sorted(HOLDOUT.glob("*.jpg"))[: args.photos]:
            shutil.copy2(src, photos / src.name)
        configs: list[tuple[str, int, int, list[str]]] = [("local scan (no Dask)", 0, 0, [])]
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            name = f"{workers} worker(s) x {threads} thread(s)"
            configs += [
                (f"{name}, by path", workers, threads, []),
                (f"{name}, --ship-bytes", workers, threads, ["--ship-bytes"]),
            ]
        for k, (name, workers, threads, extra) in enumerate(configs):
            row = measure(photos, Path(tmp) / f"run{k}.db", workers, threads, extra)
            results.append({"config": name, **row})
            print(f"{name:45} {row}", file=sys.stderr)
    _print_table(results, args.photos)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _print_table(results: list[dict[str, float | str]], n_photos: int) -> None:
    base = float(next(r for r in results if r["config"] == "1 worker(s) x 1 thread(s), by path")["photos_per_s"])
    print(
        "\n| configuration | photos/s | scan s | command s | speed-up | worker CPU s/photo | client CPU s/photo |",
        end="",
    )
    print(" load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        n, rate = float(r["photos"]), float(r["photos_per_s"])
        r["speedup_vs_1x1"] = round(rate / base, 2)
        print(
            f"| {r['config']} | {rate:.2f} | {float(r['scan_s']):.1f} | {float(r['wall_s']):.1f} | "
            f"{rate / base:.2f}x | {float(r['worker_cpu_s']) / n:.3f} | {float(r['client_cpu_s']) / n:.3f} | "
            f"{float(r['load_average']):.1f} |"
        )
    print(f"\n{n_photos} holdout photos, {os.cpu_count()} CPU cores, default detection settings")


if __name__ == "__main__":
    main()
