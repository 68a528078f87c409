"""``scan --dask ADDRESS`` where no Dask scheduler answers: an HTTP server on the port, an
unknown scheme, tls:// without certificates, ucx:// without UCX. Each fails within
--dask-timeout with one line and exit 1, and nothing more is printed later (the CLI runs as
a subprocess, so a traceback from a Client's __del__ at exit would be caught). A real
scheduler (a LocalCluster in this process) passes the same check."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster

from conftest import HANG_GUARD_S
from photocluster.app.dask_scan import dask_analyser
from photocluster.core.errors import ClusterError, UsageError


def scan_with(address: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "photos").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "photocluster", "scan", str(tmp_path / "photos"), "--db", str(tmp_path / "x.db")]
    return subprocess.run(
        [*cmd, "--dask", address, *extra], capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )


@pytest.fixture
def http_port() -> Iterator[int]:
    """An HTTP server on a free local port: it accepts the connection, then waits for a request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_http_server_is_not_a_scheduler_one_line_within_the_timeout(tmp_path: Path, http_port: int) -> None:
    done = scan_with(f"tcp://127.0.0.1:{http_port}", tmp_path, "--dask-timeout", "2")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"Error: no Dask scheduler answered at tcp://127.0.0.1:{http_port} within 2 s: "
        "does something else listen on that port?"
    ]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        (
            "xyz://127.0.0.1:1",
            "ValueError: unknown address scheme 'xyz' (known schemes: ['inproc', 'tcp', 'tls', 'ucx', 'ws', 'wss'])",
        ),
        (
            "tls://127.0.0.1:{port}",
            "tls:// needs the client's certificates in Dask's configuration: distributed.comm.tls",
        ),
        ("ucx://127.0.0.1:{port}", "ucx:// needs UCX support for Dask installed (distributed-ucxx)"),
    ],
)
def test_a_scheme_that_cannot_be_used_is_one_line_and_no_traceback_later(
    tmp_path: Path, http_port: int, address: str, why: str
) -> None:
    address = address.format(port=http_port)
    done = scan_with(address, tmp_path, "--dask-timeout", "5")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [f"Error: cannot connect to the Dask scheduler at {address} ({why})"]


def test_dask_timeout_needs_dask_and_a_positive_number(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    base = [sys.executable, "-m", "photocluster", "scan", str(tmp_path / "photos"), "--db", str(tmp_path / "x.db")]
    done = subprocess.run([*base, "--dask-timeout", "3"], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert (done.returncode, done.stderr.splitlines()) == (
        2,
        ["Error: --dask-timeout is how long a Dask scheduler has to answer: use it with --dask"],
    )
    with pytest.raises(UsageError, match="more than 0 seconds"), dask_analyser("tcp://127.0.0.1:1", timeout=0):
        pass


def test_a_real_scheduler_answers_the_check_and_connects(tmp_path: Path, http_port: int) -> None:
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        with dask_analyser(cluster.scheduler_address, timeout=10) as analyser:
            assert analyser.workers == 1
            assert analyser.client.scheduler_info()["address"] == cluster.scheduler_address
        assert analyser.client.status == "closed"
    with pytest.raises(ClusterError, match="within 1 s"), dask_analyser(f"tcp://127.0.0.1:{http_port}", timeout=1):
        pass
