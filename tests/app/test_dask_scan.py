"""``scan --dask``: the same faces as a local scan, on a real Dask LocalCluster of two worker
processes (one thread each) running the real models (onnx engine, small --max-size); a worker
killed mid-photo; a photo that kills every worker it reaches; the client killed with SIGKILL
and a rerun; an unreachable scheduler; Dask not installed. No test leaves a process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import psutil
import pytest
from distributed import Client, LocalCluster, WorkerPlugin
from typer.testing import CliRunner

from photocluster.app import dask_scan
from photocluster.app.dask_scan import DaskAnalyser, dask_analyser
from photocluster.app.scan import scan
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ImageError
from photocluster.store import Store

pytestmark = pytest.mark.models

SETTINGS = DetectionSettings(max_size=400, engine="onnx")
CLI_SETTINGS = ["--engine", "onnx", "--max-size", "400"]
CRASH = "the analysing process crashed on this file (it stopped several Dask workers)"


def _descendants() -> set[int]:
    """Live child processes, but multiprocessing's resource tracker: one per process that ever
    started a child, it lives as long as its parent (pytest's worker) does. A zombie (a child
    that ended, not yet reaped) has no command line and runs nothing: not counted."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if not any("resource_tracker" in arg for arg in p.cmdline()):
                out.add(p.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return out


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: set[int], seconds: float = 30.0) -> set[int]:
    """The processes of ``pids`` still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _running(pid)}
        time.sleep(0.1)
    return alive


@pytest.fixture(scope="module")
def library(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight photos: six of one face, a photo of two people, one of many faces."""
    lib = tmp_path_factory.mktemp("dask-lib")
    johns = sorted((fixtures / "dlib-johns").rglob("*.jpg"))[::7][:6]
    for k, src in enumerate(johns):
        shutil.copy2(src, lib / f"{k:02d}.jpg")
    shutil.copy2(fixtures / "face_recognition-examples" / "two_people.jpg", lib / "two_people.jpg")
    shutil.copy2(fixtures / "face_recognition-examples" / "obama_small.jpg", lib / "obama_small.jpg")
    return lib


@pytest.fixture(scope="module")
def local_faces(library: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    with Store(tmp_path_factory.mktemp("local") / "local.db") as store:
        scan(store, [library], SETTINGS, workers=1)
        return _faces(store)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    """Two worker processes of one thread; a photo may stop one worker and be tried again,
    not two. One task per thread, so a worker's death counts against its own photo only."""
    before = _descendants()
    config = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with (
        dask.config.set(config),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc,
        Client(lc, set_as_default=False) as client,
    ):
        yield client
    left = _wait_gone(_descendants() - before)
    assert not left, f"Dask processes left behind: {left}"


def _faces(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Photo name -> [(box, embedding, thumbnail JPEG or None)], by position in the photo."""
    rows = store.conn.execute(
        "SELECT photos.path, faces.left, faces.top, faces.right, faces.bottom, faces.embedding, face_thumbs.jpeg "
        "FROM faces JOIN photos ON photos.id = faces.photo_id LEFT JOIN face_thumbs ON face_thumbs.face_id = faces.id "
        "ORDER BY photos.path, faces.top, faces.left"
    ).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for path, *box, blob, jpeg in rows:
        face = (tuple(box), np.frombuffer(blob, "<f4"), jpeg)
        out.setdefault(os.path.basename(os.fsdecode(path)), []).append(face)
    return out


def _assert_same_faces(got: dict[str, list[tuple[Any, ...]]], want: dict[str, list[tuple[Any, ...]]]) -> None:
    """The same boxes, embeddings and thumbnails (each cut where the photo was analysed)."""
    assert sorted(got) == sorted(want)
    for name, faces in want.items():
        assert [box for box, _, _ in got[name]] == [box for box, _, _ in faces], name
        for (_, a, a_jpeg), (_, b, b_jpeg) in zip(got[name], faces, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)
            assert a_jpeg is not None and a_jpeg == b_jpeg, name


@pytest.mark.parametrize("ship_bytes", [False, True], ids=["path", "ship-bytes"])
def test_same_faces_as_a_local_scan(
    cluster: Client, library: Path, local_faces: dict[str, list[tuple[Any, ...]]], tmp_path: Path, ship_bytes: bool
) -> None:
    analyser = DaskAnalyser(cluster, workers=2, ship_bytes=ship_bytes)
    with Store(tmp_path / "dask.db") as store:
        report = scan(store, [library], SETTINGS, analyser=analyser)
        assert (report.analysed, report.errors, report.workers) == (8, [], 2)
        assert len(local_faces["two_people.jpg"]) == 2
        _assert_same_faces(_faces(store), local_faces)
        # A second scan finds every photo as it was: nothing goes to the cluster.
        again = scan(store, [library], SETTINGS, analyser=analyser)
        assert (again.analysed, again.unchanged) == (0, 8)


@dataclass(frozen=True)
class Job:
    path: Path


def test_ship_bytes_a_file_the_client_cannot_read_is_a_bad_file_and_the_rest_go_on(
    cluster: Client, library: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone.jpg"  # listed, then deleted before its bytes were read
    jobs = [Job(library / "00.jpg"), Job(gone), Job(library / "01.jpg")]
    results = dict(DaskAnalyser(cluster, workers=2, ship_bytes=True).analyse(jobs, SETTINGS))
    assert isinstance(results[jobs[1]], ImageError)
    assert results[jobs[1]].reason == "cannot read: No such file or directory"
    assert [len(r.faces) for j, r in results.items() if j != jobs[1]] == [1, 1]  # type: ignore[union-attr]


class KillWorkers(WorkerPlugin):  # type: ignore[misc]
    """Kills the worker process (SIGKILL, as the OOM killer does) as it starts analysing
    ``once`` (the first time only: a marker file records it) or ``always``."""

    def __init__(self, once: str, always: str, marker: str) -> None:
        self.once, self.always, self.marker = once, always, marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing":
            return
        if str(key).startswith(self.always):
            os.kill(os.getpid(), signal.SIGKILL)
        if str(key).startswith(self.once):
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_costs_a_retry_and_a_photo_that_kills_workers_is_a_bad_file(
    cluster: Client, library: Path, local_faces: dict[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    marker = tmp_path / "killed-once"
    once, always = library / "02.jpg", library / "two_people.jpg"
    plugin = KillWorkers(dask_scan.task_key(once), dask_scan.task_key(always), str(marker))
    cluster.register_plugin(plugin, name="kill-workers")
    try:
        with Store(tmp_path / "dask.db") as store:
            report = scan(store, [library], SETTINGS, analyser=DaskAnalyser(cluster, workers=2))
            assert marker.exists()  # a worker did die on 02.jpg
            assert report.errors == [(os.fsdecode(always), CRASH)]
            assert report.analysed == 7
            # Every photo once: the retried one with its faces, the killer as a bad file.
            rows = store.conn.execute("SELECT path, status FROM photos ORDER BY path").fetchall()
            assert [(os.path.basename(os.fsdecode(p)), s) for p, s in rows] == [
                (name, "error" if name == "two_people.jpg" else "done") for name in sorted(local_faces)
            ]
            _assert_same_faces(_faces(store), {k: v for k, v in local_faces.items() if k != "two_people.jpg"})
    finally:
        cluster.unregister_worker_plugin("kill-workers")


def test_client_killed_then_a_rerun_finishes_and_no_worker_is_left(library: Path, tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "photocluster", "scan", str(library), "--db", str(db), "--json"]
    cmd += [*CLI_SETTINGS, "--dask", "local", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    done = 0
    while done == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if db.exists():
            with Store(db) as s:
                done = s.conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'done'").fetchone()[0]
    assert proc.poll() is None, "the scan ended before it could be killed"
    workers = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    assert workers  # the LocalCluster's worker processes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _wait_gone(workers)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived the killed client"
    with Store(db) as s:
        assert 0 < s.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] < 8

    final = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
    assert '"error_count": 0' in final.stdout
    with Store(db) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        paths = [os.fsdecode(p) for (p,) in s.conn.execute("SELECT path FROM photos WHERE status = 'done'")]
        assert sorted(os.path.basename(p) for p in paths) == sorted(p.name for p in library.iterdir())
        statuses = [st for (st,) in s.conn.execute("SELECT status FROM scans ORDER BY id")]
        assert statuses == ["interrupted", "completed"]


runner = CliRunner()


def test_unreachable_scheduler_is_one_line_and_exit_1(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_scan, "CONNECT_TIMEOUT_S", 2)
    before = time.monotonic()
    result = runner.invoke(app, ["scan", str(library), "--db", str(tmp_path / "x.db"), "--dask", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: cannot reach the Dask scheduler at tcp://127.0.0.1:1 (waited 2 s): "
        "is `dask scheduler` running there, and the port open?"
    ]
    assert result.stdout == ""
    assert time.monotonic() - before < 60  # a bound on hanging, not a speed figure


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (
            ["--dask", "scheduler"],
            "--dask 'scheduler': expected a scheduler address like tcp://host:8786, or 'local'",
            2,
        ),
        (["--ship-bytes"], "--ship-bytes sends photos to Dask workers: use it with --dask", 2),
    ],
)
def test_bad_dask_options_are_usage_errors(
    library: Path, tmp_path: Path, args: list[str], message: str, code: int
) -> None:
    result = runner.invoke(app, ["scan", str(library), "--db", str(tmp_path / "x.db"), *args])
    assert (result.exit_code, result.stderr.splitlines()) == (code, [f"Error: {message}"])


def test_without_dask_installed_says_how_to_install_it(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` sees when absent
    result = runner.invoke(app, ["scan", str(library), "--db", str(tmp_path / "x.db"), "--dask", "local"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: --dask needs Dask distributed, which is not installed: pip install 'photocluster[dask]'"
    ]


def test_dask_analyser_local_starts_and_stops_its_cluster(library: Path, tmp_path: Path) -> None:
    before = _descendants()
    with dask_analyser("local", workers=2) as analyser, Store(tmp_path / "d.db") as store:
        assert analyser.workers == 2
        assert len(_descendants() - before) >= 2
        report = scan(store, [library / "00.jpg", library / "01.jpg"], SETTINGS, analyser=analyser)
        assert (report.analysed, report.faces_found) == (2, 2)
    assert not _wait_gone(_descendants() - before)
