"""A scan's detection on a Dask distributed cluster: ``scan --dask ADDRESS``.

The client keeps everything else a scan does: walking, the skip of unchanged files, the
reuse by content, the single SQLite writer and its per-photo commits. Workers only decode,
detect, align and embed: a photo goes out as its path (storage every worker sees under the
same path, the usual case) or as its bytes (``ship_bytes``), and its faces come back.

A bounded number of photos is in flight (the refill window over ``as_completed`` that a
local pool shares: :func:`photocluster.app.pool.in_window`), so memory does not grow with
the library. A worker that dies is Dask's to handle: the scheduler runs
its photos again on another worker, and a photo that keeps killing workers (more than the
scheduler's ``distributed.scheduler.allowed-failures``) comes back as ``KilledWorker``,
which is recorded as a bad file. Dask is an optional dependency: ``photocluster[dask]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Coroutine, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Generic

from photocluster.app.pool import J, analyse_safely, in_window, sigint_held
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ClusterError, ImageError, PhotoclusterError, UsageError
from photocluster.core.files import RefusedFileError, open_regular
from photocluster.detect import faces as fc

INSTALL_HINT = "--dask needs Dask distributed, which is not installed: pip install 'photocluster[dask]'"
# How long the client waits for the scheduler to answer (``timeout`` of dask_analyser,
# ``scan --dask-timeout``), then for a first worker to join.
CONNECT_TIMEOUT_S = 10
WORKERS_TIMEOUT_S = 60
# Photos in flight per worker thread: one running, one queued behind it (its bytes or its
# path already on the worker), so a worker never waits on the client.
IN_FLIGHT_PER_THREAD = 2


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return distributed


def task_key(path: Path) -> str:
    """The prefix of the Dask key of a photo's task (then a unique suffix per submission):
    the photo shows in Dask's dashboard and logs by this hash of its path."""
    return "photocluster-analyse-" + hashlib.sha1(os.fsencode(path)).hexdigest()[:16]


# -- worker side --------------------------------------------------------------

_prepared: DetectionSettings | None = None
_prepare_lock = threading.Lock()
# A network engine (onnx, torch) uses every thread of the worker for one photo; a worker
# with several threads would otherwise run as many photos at once, each with as many threads.
_one_photo_at_a_time = threading.Lock()


def _prepare(settings: DetectionSettings) -> None:
    """Load the models once per worker process, their threads set from the worker's own."""
    global _prepared
    with _prepare_lock:
        if _prepared == settings:
            return
        from distributed import get_worker

        fc.set_threads(get_worker().state.nthreads)
        fc.warm_up(settings)
        _prepared = settings


def analyse_on_worker(path: Path, settings: DetectionSettings, data: bytes | None) -> fc.Analysis | ImageError:
    """The task: one photo, on whichever worker Dask chose. Errors come back as ImageError
    (see analyse_safely); a missing model raises, and Dask retries the task elsewhere."""
    _prepare(settings)
    lock = _one_photo_at_a_time if fc.resolve_engine(settings.engine) in fc.NETWORK_ENGINES else None
    with lock or contextlib.nullcontext():
        return analyse_safely(path, settings, data)


# -- client side --------------------------------------------------------------


@dataclass(frozen=True)
class _Parcel(Generic[J]):
    """A job on its way to a worker: its path, and its bytes where the client ships them."""

    job: J
    data: bytes | None

    @property
    def path(self) -> Path:
        return self.job.path


@dataclass
class DaskAnalyser:
    """Runs the detection of :func:`photocluster.app.scan.scan` (its ``analyser``) on the
    cluster of ``client``. ``retries``: more tries of a task that raised (a worker that
    lost its models or its storage); a worker's death is retried by the scheduler."""

    client: Any
    workers: int
    ship_bytes: bool = False
    retries: int = 2

    def analyse(
        self, jobs: Iterable[J], settings: DetectionSettings
    ) -> Generator[tuple[J, fc.Analysis | ImageError], None, None]:
        dd = _distributed()
        unread: deque[tuple[J, ImageError]] = deque()

        def window() -> int:
            # Asked at each refill: workers may join or leave during a scan.
            return IN_FLIGHT_PER_THREAD * max(1, self._threads())

        def submit(parcel: _Parcel[J]) -> Any:
            return self._submit(parcel, settings)

        finished = dd.as_completed(loop=self.client.loop)
        for parcel, done in in_window(self._parcels(jobs, unread), submit, window, finished):
            yield from _drain(unread)
            result = self._result(done, parcel.path, dd)
            done.release()
            yield parcel.job, result
        yield from _drain(unread)

    def _parcels(self, jobs: Iterable[J], unread: deque[tuple[J, ImageError]]) -> Iterator[_Parcel[J]]:
        """Each job with its bytes (``ship_bytes``); a file that cannot be read goes to ``unread``."""
        for job in jobs:
            data = None
            if self.ship_bytes:
                try:
                    with open_regular(job.path) as fh:  # a FIFO in the photo's place never blocks
                        data = fh.read()
                except RefusedFileError as exc:
                    unread.append((job, ImageError(job.path, str(exc))))
                    continue
                except OSError as exc:
                    unread.append((job, ImageError(job.path, f"cannot read: {exc.strerror or type(exc).__name__}")))
                    continue
            yield _Parcel(job, data)

    def _threads(self) -> int:
        """Threads of the workers now in the cluster (they may come and go during a scan)."""
        try:
            return int(sum(self.client.nthreads().values()))
        except Exception as exc:  # noqa: BLE001 - any failure of the connection
            raise ClusterError(f"lost the Dask scheduler ({_one_line(exc)})") from None

    def _submit(self, parcel: _Parcel[J], settings: DetectionSettings) -> Any:
        return self.client.submit(
            analyse_on_worker,
            parcel.path,
            settings,
            parcel.data,
            key=f"{task_key(parcel.path)}-{uuid.uuid4().hex[:12]}",
            retries=self.retries,
            pure=False,
        )

    def _result(self, future: Any, path: Path, dd: ModuleType) -> fc.Analysis | ImageError:
        try:
            result: fc.Analysis | ImageError = future.result()
        except dd.KilledWorker:
            return ImageError(path, "the analysing process crashed on this file (it stopped several Dask workers)")
        except PhotoclusterError:
            raise  # a worker without the models: the same one-line error as a local scan
        except Exception as exc:  # noqa: BLE001 - the cluster's failures, of many types
            raise ClusterError(
                f"the Dask cluster failed while analysing {path} ({_one_line(exc)}); "
                "the photos done are kept: run the same command to resume"
            ) from None
        return result


def _drain(unread: deque[tuple[J, ImageError]]) -> Iterator[tuple[J, ImageError]]:
    while unread:
        yield unread.popleft()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@contextlib.contextmanager
def dask_analyser(
    address: str,
    workers: int = 1,
    ship_bytes: bool = False,
    allowed_failures: int | None = None,
    timeout: float | None = None,
) -> Iterator[DaskAnalyser]:
    """Connect to the Dask scheduler at ``address`` (``tcp://host:8786``), or with
    ``"local"`` start a LocalCluster of ``workers`` processes on this machine (the cores
    shared among them as threads), and close what was started on the way out.

    ``allowed_failures``: how many workers a photo may stop before it is recorded as bad
    (the LocalCluster's scheduler; a remote scheduler has its own setting). ``timeout``:
    seconds the scheduler has to answer (default ``CONNECT_TIMEOUT_S``); whatever listens
    at ``address`` (nothing, an HTTP server, a scheme Dask lacks) fails within it as one
    :class:`ClusterError`."""
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    if not timeout > 0:
        raise UsageError(f"the Dask connection timeout must be more than 0 seconds, got {timeout}")
    dd = _distributed()
    import dask

    quiet = {"distributed.scheduler.allowed-failures": allowed_failures} if allowed_failures is not None else {}
    with contextlib.ExitStack() as stack, dask.config.set(quiet):
        # A worker's death and a KilledWorker are the scan's to report, once, not Dask's logs.
        stack.enter_context(_logs_quiet())
        if address == "local":
            address = stack.enter_context(_local_cluster(dd, workers)).scheduler_address
        client = stack.enter_context(_connect(dd, address, timeout))
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (TimeoutError, OSError):
            raise ClusterError(
                f"the Dask scheduler at {address} has no workers after {WORKERS_TIMEOUT_S} s: "
                f"start some with `dask worker {address}`"
            ) from None
        yield DaskAnalyser(client, len(client.scheduler_info(n_workers=-1)["workers"]), ship_bytes)


def _local_cluster(dd: ModuleType, workers: int) -> Any:
    n = max(1, workers)
    threads = max(1, (os.cpu_count() or 1) // n)
    # Worker processes start with Ctrl-C blocked (see pool.sigint_held): Ctrl-C is the
    # client's, which stops the scan and closes the cluster.
    with sigint_held():
        return dd.LocalCluster(
            n_workers=n,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=":0",  # any free port: never a clash with another cluster
            silence_logs=logging.CRITICAL,
        )


# scheme://host:port (tcp, tls, ...) or host:port; an IPv6 host in brackets.
_ADDRESS = re.compile(r"^([a-z][a-z0-9+.-]*://)?(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):[0-9]{1,5}$")


def _connect(dd: ModuleType, address: str, timeout: float) -> Any:
    # Checked here: a Client given a malformed address fails only after its timeout, twice.
    if not _ADDRESS.match(address):
        raise UsageError(f"--dask {address!r}: expected a scheduler address like tcp://host:8786, or 'local'")
    _probe(dd, address, timeout)
    # Built in two steps so that a Client whose start fails can still be closed here: left
    # to the garbage collector, it prints a traceback from its __del__ long after the error.
    client = dd.Client.__new__(dd.Client)
    try:
        client.__init__(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - the scheduler went away since the probe, or worse
        _discard(client)
        raise ClusterError(f"cannot connect to the Dask scheduler at {address} ({_one_line(exc)})") from None
    return client


def _discard(client: Any) -> None:
    """Close a Client that failed to start, quietly, so that its __del__ has nothing to do."""
    with contextlib.suppress(Exception):
        client.close(timeout=2)
    with contextlib.suppress(Exception):
        client.status = "closed"
        client._loop_runner.stop()


# What a scheme Dask knows needs when connecting with it fails outright.
_SCHEME_NEEDS = {
    "tls": "tls:// needs the client's certificates in Dask's configuration: distributed.comm.tls",
    "wss": "wss:// needs the client's certificates in Dask's configuration: distributed.comm.tls",
    "ucx": "ucx:// needs UCX support for Dask installed (distributed-ucxx)",
}


def _reachable(address: str, timeout: float, waited: str) -> None:
    """A tcp:// address must accept a connection at all: Dask's own connect retries a
    refused one until its deadline, which would read as a server that never answered."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} (waited {waited}): "
            "is `dask scheduler` running there, and the port open?"
        ) from None


def _probe(dd: ModuleType, address: str, timeout: float) -> None:
    """Ask whatever listens at ``address`` who it is, Dask's way, within ``timeout`` seconds:
    a Client alone waits without end on a server that accepts the connection and never
    answers (an HTTP server), and leaves a traceback for later on a scheme it cannot use."""
    waited = f"{timeout:g} s"
    _reachable(address, timeout, waited)
    try:
        reply = _run_with_deadline(_identity(dd, address, timeout), timeout)
    except TimeoutError:
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {waited}: does something else listen on that port?"
        ) from None
    except OSError:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} (waited {waited}): "
            "is `dask scheduler` running there, and the port open?"
        ) from None
    except Exception as exc:  # noqa: BLE001 - an unknown or unusable scheme, TLS without its settings
        scheme = address.partition("://")[0] if "://" in address else "tcp"
        why = _SCHEME_NEEDS.get(scheme, _one_line(exc))
        raise ClusterError(f"cannot connect to the Dask scheduler at {address} ({why})") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ClusterError(f"{address} answered, but not as a Dask scheduler")


async def _identity(dd: ModuleType, address: str, timeout: float) -> object:
    """The scheduler's answer to ``identity``, over a connection set up as a Client's is
    (Dask's configured security: tls:// with its certificates)."""
    args = dd.Security().get_connection_args("client")
    comm = await dd.comm.connect(address, timeout=timeout, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _run_with_deadline(coro: Coroutine[Any, Any, object], timeout: float) -> object:
    """Run ``coro`` on an event loop of its own (in a thread: the caller may be in one
    already) and return its result; TimeoutError after ``timeout`` seconds."""
    outcome: list[object] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(asyncio.wait_for(coro, timeout)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="photocluster-dask-probe", daemon=True)
    thread.start()
    # wait_for ends the coroutine at the deadline; the margin covers its cancellation.
    thread.join(timeout + 5)
    if thread.is_alive():
        raise TimeoutError
    if failure:
        raise failure[0]
    return outcome[0]


@contextlib.contextmanager
def _logs_quiet() -> Iterator[None]:
    # Dask's logging config gives some of its loggers levels of their own (distributed.client,
    # distributed.scheduler...): each is set, not only their parent.
    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
