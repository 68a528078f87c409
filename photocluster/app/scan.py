"""Scan orchestration: walk, skip what is known, detect the rest, record, resume.

The main process owns the database (one writer); detection runs inline or in worker
processes that each load the models once. Every photo is committed as soon as its
result arrives, so a scan killed at any moment resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from photocluster.app.recognise import assign_new_faces
from photocluster.app.tags import import_tags
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ConcurrentChangeError, ImageError, PathNotFoundError, ScanInterrupted
from photocluster.core.progress import Progress, ProgressCallback, report_to
from photocluster.core.types import Face, Photo
from photocluster.detect import faces as fc
from photocluster.detect.images import Fingerprint, fingerprint, taken_at_of, walk
from photocluster.detect.thumbnail import THUMB_PARAMS
from photocluster.grouping.rematch import match_faces
from photocluster.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanEvent:
    """What one step of a scan tells: ``kind`` is 'listing' (walk started), 'listed' (``total``
    known), 'photo' (one file settled, ``outcome`` says how) or 'error' (a folder could not be
    read). :class:`_ScanProgress` passes them on as :class:`Progress`, a 'photo' or an 'error'
    as its ``item``. ``lost`` holds the faces found in the photo before that its new analysis
    did not find again, when they had a person or a correction (see :class:`LostFace`)."""

    kind: str
    path: Path | None = None
    total: int = 0
    faces: int = 0
    outcome: str = ""
    reason: str = ""
    lost: tuple[LostFace, ...] = ()


@dataclass(frozen=True)
class LostFace:
    """A face of an earlier analysis that the new one did not find again, with what the
    user or the clustering had made of it: gone with it are its person and corrections."""

    path: str
    face_id: int
    person_id: int | None
    name: str | None
    corrected: bool  # pinned (merge, move) or rejected (remove)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def describe(self) -> str:
        whose = "no person" if self.person_id is None else (self.name or f"person {self.person_id}")
        return f"face {self.face_id} ({whose}{', corrected' if self.corrected else ''}) was not found again"


@dataclass
class ScanReport:
    scan_id: int
    roots: list[str]
    settings: str
    dlib: str
    engine: str
    workers: int
    files: int = 0
    analysed: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: int = 0
    metadata_only: int = 0
    missing: int = 0
    faces_found: int = 0
    faces_kept: int = 0
    faces_lost: int = 0
    recognised: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    lost: list[LostFace] = field(default_factory=list)
    seconds: float = 0.0
    detect_seconds: float = 0.0
    tags: dict[str, object] = field(default_factory=dict)  # app.tags.TagReport; empty with tags=False

    def as_dict(self) -> dict[str, object]:
        return {
            "scan_id": self.scan_id,
            "roots": self.roots,
            "settings": self.settings,
            "dlib": self.dlib,
            "engine": self.engine,
            "workers": self.workers,
            "files": self.files,
            "analysed": self.analysed,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "duplicates": self.duplicates,
            "metadata_only": self.metadata_only,
            "missing": self.missing,
            "faces_found": self.faces_found,
            "faces_kept": self.faces_kept,
            "faces_lost": self.faces_lost,
            "lost_faces": [f.as_dict() for f in self.lost],
            "recognised": self.recognised,
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "error_count": len(self.errors),
            "seconds": round(self.seconds, 2),
            "photos_per_second": round(self.analysed / self.seconds, 3) if self.seconds > 0 else None,
            "tags": self.tags,
        }


# How scan's steps report: each a ScanEvent, which _ScanProgress turns into the one progress shape.
_Emit = Callable[[ScanEvent], None]
LISTING = "Listing files"
SCANNING = "Scanning"


class _ScanProgress:
    """Scan's events as :class:`Progress`: 'listing' starts the phase "Listing files", 'listed'
    the phase "Scanning" of ``total`` files, and each 'photo' is one more of them done; a
    'photo' or an 'error' rides along as the ``item``. Each file's outcome is logged here,
    the one place every one of them passes."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = report_to(progress)
        self.phase, self.done = LISTING, 0
        self.total: int | None = None

    def __call__(self, event: ScanEvent) -> None:
        item: ScanEvent | None = event
        if event.kind == "listing":
            self.phase, self.done, self.total, item = LISTING, 0, None, None
        elif event.kind == "listed":
            self.phase, self.done, self.total, item = SCANNING, 0, event.total, None
            log.info("%d files to scan", event.total)
        elif event.kind == "photo":
            self.done += 1
        if event.reason:
            log.info("skipped %s: %s", event.path, event.reason)
        elif event.kind == "photo":
            log.debug("%s: %s, %d faces", event.path, event.outcome, event.faces)
        self.progress(Progress(self.phase, self.done, self.total, item=item))


def detection_memory_bytes(settings: DetectionSettings) -> int:
    """Rough peak memory of one process detecting at these settings (a 4:3 photo at
    ``max_size``). Measured: dlib-bin's CNN takes ~1 GB per megapixel of (upsampled)
    detection image (0.8 GB at 1024x731, 1.8 GB at 1600x1142, without upsampling); the
    onnx engine ~0.2 GB plus ~0.09 GB per megapixel (0.23 GB at 1024 px, 0.88 GB at 1600 px
    upsampled once), as it runs large inputs in bands."""
    megapixels = settings.max_size * settings.max_size * 0.75 / 1e6
    if settings.upsample:
        megapixels *= 4**settings.upsample
    if fc.resolve_engine(settings.engine) == "onnx":
        return int((0.2 + 0.09 * megapixels) * 2**30)
    return int((0.25 + 0.9 * megapixels) * 2**30)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_workers(settings: DetectionSettings | None = None) -> int:
    """With the onnx engine, one process whose models use every core as threads: about as
    fast as a process per core (24 s against 20 s for four 12 MP photos on 2 cores) for half
    the memory (1.0 GB against 2.0 GB in all). With dlib itself (one thread per model), one
    process per core, at most 4, and no more than the available memory holds. The torch
    engine: one process, which owns the GPU."""
    settings = settings or DetectionSettings()
    # The torch engine too: one process owns the GPU (or uses every core as threads).
    if fc.resolve_engine(settings.engine) in ("onnx", "torch"):
        return 1
    n = max(1, min(4, os.cpu_count() or 1))
    available = _available_memory()
    if available is not None:
        n = min(n, max(1, available // detection_memory_bytes(settings)))
    return n


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back for a moment; it is delivered when the block ends.

    Around starting worker processes: a process starts with its parent's signal mask, so a
    worker starts with SIGINT blocked, and a Ctrl-C (which the terminal sends to every
    process of the scan) never becomes a traceback in it, even while it is importing.
    Around importing dlib, whose initialisation would turn a Ctrl-C into an ImportError.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- worker side --------------------------------------------------------------

_worker_settings: DetectionSettings | None = None


def _init_worker(settings: DetectionSettings) -> None:
    global _worker_settings
    # Ctrl-C is the parent's to handle: it stops the scan, and the workers finish the photo
    # they are on and exit. (SIGINT is blocked since the worker started: see _sigint_held.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _worker_settings = settings
    fc.set_threads(1)  # one process per core already uses every core
    fc.warm_up(settings)


def analyse_safely(path: Path, settings: DetectionSettings, data: bytes | None = None) -> fc.Analysis | ImageError:
    """Analyse one file (or its bytes ``data``); any failure becomes an ImageError (returned,
    so one odd file never stops a scan, and no traceback crosses the process boundary)."""
    try:
        return fc.analyze_file(path, settings, data)
    except ImageError as exc:
        return exc
    except MemoryError:
        return ImageError(path, "out of memory while analysing (try a smaller --max-size)")
    except Exception as exc:  # noqa: BLE001 - dlib raises RuntimeError for odd inputs
        text = str(exc).strip().splitlines()
        return ImageError(path, f"analysis failed ({type(exc).__name__}: {text[0][:200] if text else ''})")


def _analyse(path: Path) -> fc.Analysis | ImageError:
    assert _worker_settings is not None
    return analyse_safely(path, _worker_settings)


# -- main side ----------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    path: Path
    size: int
    mtime_ns: int
    sha256: str
    pixel_key: str | None = None


class Analyser(Protocol):
    """Detection run elsewhere (photocluster.app.dask_scan: on a Dask cluster): yields each
    job with its result as results arrive, in any order; ``workers`` goes in the report."""

    workers: int

    def analyse(
        self, jobs: Iterator[_Job], settings: DetectionSettings
    ) -> Iterator[tuple[_Job, fc.Analysis | ImageError]]: ...


def scan(
    store: Store,
    roots: Sequence[str | os.PathLike[str]],
    settings: DetectionSettings | None = None,
    workers: int = 1,
    retry_errors: bool = False,
    progress: ProgressCallback | None = None,
    analyser: Analyser | None = None,
    tags: bool = True,
) -> ScanReport:
    """Find, analyse and record every photo under ``roots``. See the module doc. With
    ``tags``, the face tags already in or beside the photos are read (:mod:`photocluster.app.tags`)."""
    settings = settings or DetectionSettings()
    root_paths = [Path(os.path.abspath(r)) for r in roots]
    for root in root_paths:
        if not os.path.lexists(root):
            raise PathNotFoundError(root)
    store.check_writable()
    with store.exclusive("scan"):
        return _scan(store, root_paths, settings, workers, retry_errors, progress, analyser, tags)


def _scan(
    store: Store,
    root_paths: list[Path],
    settings: DetectionSettings,
    workers: int,
    retry_errors: bool,
    progress: ProgressCallback | None,
    analyser: Analyser | None = None,
    tags: bool = True,
) -> ScanReport:
    emit = _ScanProgress(progress)
    start = time.perf_counter()
    # dlib is imported before the scan is recorded: if it cannot be, no scan is left 'running'.
    with _sigint_held():
        engine = fc.resolve_engine(settings.engine)
        dlib = fc.dlib_build().describe()
    log.info("scanning with %s, the %s engine (%s), %d worker(s)", settings.key, engine, dlib, workers)
    report = ScanReport(
        scan_id=0,
        roots=[os.fsdecode(r) for r in root_paths],
        settings=settings.key,
        dlib=dlib,
        engine=engine,
        workers=workers,
    )
    scan_id = report.scan_id = store.begin_scan(root_paths, settings.key)
    unreadable: list[Path] = []

    def walk_error(path: Path, reason: str) -> None:
        unreadable.append(path)
        report.errors.append((os.fsdecode(path), reason))
        emit(ScanEvent("error", path=path, reason=reason))

    status = "failed"
    try:
        emit(ScanEvent("listing"))
        files = list(walk(root_paths, on_error=walk_error))
        report.files = len(files)
        emit(ScanEvent("listed", total=len(files)))
        jobs = _triage(store, files, settings, scan_id, retry_errors, report, emit)
        _run_jobs(store, jobs, settings, workers, scan_id, report, emit, analyser)
        if tags:
            read = import_tags(store, files, settings, progress=emit.progress)
            report.tags = read.as_dict()
        report.missing = store.mark_missing(scan_id, root_paths, keep_under=unreadable)
        # Corrections that keep coming leave the new faces for the next scan or `clusters`.
        with contextlib.suppress(ConcurrentChangeError):
            report.recognised = assign_new_faces(store)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise ScanInterrupted(
            f"scan interrupted after {report.analysed} photos; what was done is kept: run the same command to resume"
        ) from None
    finally:
        report.seconds = time.perf_counter() - start
        store.end_scan(scan_id, status, report.as_dict())
    return report


def _triage(
    store: Store,
    files: list[Path],
    settings: DetectionSettings,
    scan_id: int,
    retry_errors: bool,
    report: ScanReport,
    emit: _Emit,
) -> Iterator[_Job]:
    """Settle every file that needs no detection; yield the ones that do."""
    seen: list[int] = []
    for path in files:
        try:
            st = path.stat()
        except OSError as exc:
            _record_error(
                store,
                path,
                0,
                0,
                None,
                scan_id,
                settings,
                "file disappeared" if isinstance(exc, FileNotFoundError) else f"cannot read: {exc.strerror}",
                report,
                emit,
            )
            continue
        known = store.photo_by_path(path)
        if known is not None:
            photo, photo_settings = known
            same_file = photo.size == st.st_size and photo.mtime_ns == st.st_mtime_ns
            if same_file and photo.status == "done" and photo_settings == settings.key:
                seen.append(photo.id)
                report.unchanged += 1
                emit(ScanEvent("photo", path=path, outcome="unchanged"))
                if len(seen) >= 500:
                    store.mark_seen(seen, scan_id)
                    seen.clear()
                continue
            if same_file and photo.status == "error" and not retry_errors:
                seen.append(photo.id)
                report.errors.append((os.fsdecode(path), photo.error or "error"))
                emit(ScanEvent("photo", path=path, outcome="error", reason=photo.error or ""))
                continue
        try:
            fp = fingerprint(path)
        except ImageError as exc:
            _record_error(store, path, st.st_size, st.st_mtime_ns, None, scan_id, settings, exc.reason, report, emit)
            continue
        if known is not None and _settle_known(store, path, st, known, fp, settings, scan_id, report, emit):
            continue
        if _reuse_by_content(store, path, st, fp, settings, scan_id, report, emit):
            continue
        yield _Job(path, st.st_size, st.st_mtime_ns, fp.sha256, fp.pixel_key)
    store.mark_seen(seen, scan_id)


def _settle_known(
    store: Store,
    path: Path,
    st: os.stat_result,
    known: tuple[Photo, str | None],
    fp: Fingerprint,
    settings: DetectionSettings,
    scan_id: int,
    report: ScanReport,
    emit: _Emit,
) -> bool:
    """A file analysed before at this path whose bytes, or only whose metadata, are as they
    were: it keeps its faces without detection. False when it must be analysed again."""
    photo, photo_settings = known
    usable = photo_settings == settings.key and photo.width is not None and photo.status in ("done", "missing")
    if usable and photo.sha256 == fp.sha256:
        # Same bytes at the same path (back from missing, or only touched): keep its faces.
        store.move_photo(photo.id, path, st.st_size, st.st_mtime_ns, scan_id)
        report.unchanged += 1
        emit(ScanEvent("photo", path=path, outcome="unchanged"))
        return True
    if usable and fp.pixel_key is not None and photo.pixel_key == fp.pixel_key:
        # Only metadata changed (keywords, dates, ratings: an exiftool or a photo manager):
        # the pixels, so the faces, their ids, persons and corrections, are as they were.
        store.refresh_photo(photo.id, st.st_size, st.st_mtime_ns, fp.sha256, fp.pixel_key, taken_at_of(path), scan_id)
        report.metadata_only += 1
        emit(ScanEvent("photo", path=path, outcome="metadata"))
        return True
    return False


def _reuse_by_content(
    store: Store,
    path: Path,
    st: os.stat_result,
    fp: Fingerprint,
    settings: DetectionSettings,
    scan_id: int,
    report: ScanReport,
    emit: _Emit,
) -> bool:
    """A file whose bytes were analysed before keeps those faces without re-detection."""
    twins = [p for p in store.photos_by_hash(fp.sha256, settings.key) if p.path != path]
    if not twins:
        return False
    gone = [p for p in twins if not os.path.lexists(p.path)]
    if gone:
        # Moved or renamed: the photo row follows the file, faces and persons included. An
        # earlier photo at this path (a different picture) gives way, and its faces with it.
        known = store.photo_by_path(path)
        lost = _lost_faces(store, path, store.photo_faces(known[0].id) if known else [], report)
        store.move_photo(gone[0].id, path, st.st_size, st.st_mtime_ns, scan_id)
        report.moved += 1
        outcome = "moved"
    else:
        src = twins[0]
        file = _Job(path, st.st_size, st.st_mtime_ns, fp.sha256, fp.pixel_key)
        faces = store.photo_faces(src.id)
        lost = _save_faces(
            store,
            file,
            scan_id,
            settings,
            report,
            faces,
            width=src.width,
            height=src.height,
            taken_at=src.taken_at,
            thumbnails=_twin_thumbnails(store, faces),
        )
        report.duplicates += 1
        outcome = "duplicate"
    n_faces = store.face_count(path)
    report.faces_found += n_faces
    emit(ScanEvent("photo", path=path, outcome=outcome, faces=n_faces, lost=lost))
    return True


def _twin_thumbnails(store: Store, faces: list[Face]) -> list[bytes]:
    """The thumbnails of a copy's faces: its twin's, which the same bytes and the same boxes
    make exactly what a cut would give. All or none: a face of the twin without one (a photo
    whose metadata changed) leaves the copy's faces to the next export, which cuts them."""
    ids = [f.id for f in faces]
    stored = store.thumbnails([i for i in ids if i is not None], THUMB_PARAMS)
    thumbs = [stored[i] for i in ids if i is not None and i in stored]
    return thumbs if len(thumbs) == len(faces) else []


def _save_faces(
    store: Store,
    job: _Job,
    scan_id: int,
    settings: DetectionSettings,
    report: ScanReport,
    faces: list[Face],
    *,
    width: int | None,
    height: int | None,
    taken_at: str | None,
    thumbnails: list[bytes],
) -> tuple[LostFace, ...]:
    """Store the photo of ``job`` with ``faces`` (and a thumbnail for each, or none), each
    continuing the earlier face of that path it matches; returns the earlier faces that
    found no match (counted in ``report``)."""
    keep, lost_before = _carry_over(store, job.path, faces)
    lost = _lost_faces(store, job.path, lost_before, report)
    store.save_photo(
        job.path,
        job.size,
        job.mtime_ns,
        job.sha256,
        scan_id,
        settings.key,
        width=width,
        height=height,
        taken_at=taken_at,
        faces=faces,
        keep=keep,
        pixel_key=job.pixel_key,
        thumbnails=thumbnails,
        thumb_params=THUMB_PARAMS,
    )
    report.faces_kept += sum(k is not None for k in keep)
    return lost


def _carry_over(store: Store, path: Path, faces: list[Face]) -> tuple[list[int | None], list[Face]]:
    """Which earlier face of the photo at ``path`` each of ``faces`` continues (its id, or
    None), and the earlier faces none continues (see photocluster.grouping.rematch)."""
    known = store.photo_by_path(path)
    old = store.photo_faces(known[0].id) if known is not None else []
    if not old or not faces:
        return [None] * len(faces), old

    def arrays(fs: list[Face]) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.array([[f.box.left, f.box.top, f.box.right, f.box.bottom] for f in fs], dtype=np.float64)
        return boxes, np.stack([f.embedding for f in fs])

    match = match_faces(*arrays(old), *arrays(faces)).tolist()
    continued = set(match)
    return [None if m < 0 else old[m].id for m in match], [f for k, f in enumerate(old) if k not in continued]


def _lost_faces(store: Store, path: Path, faces: list[Face], report: ScanReport) -> tuple[LostFace, ...]:
    """Count faces about to be dropped; describe those that had a person or a correction.
    Called before they are deleted, while their corrections can still be read."""
    report.faces_lost += len(faces)
    ids = [f.id for f in faces if f.id is not None]
    corrected = store.corrected_faces(ids)
    names = store.names_of({f.person_id for f in faces if f.person_id is not None})
    lost = tuple(
        LostFace(os.fsdecode(path), f.id, f.person_id, names.get(f.person_id or 0), f.id in corrected)
        for f in faces
        if f.id is not None and (f.person_id is not None or f.id in corrected)
    )
    report.lost.extend(lost)
    return lost


def _record_error(
    store: Store,
    path: Path,
    size: int,
    mtime_ns: int,
    sha: str | None,
    scan_id: int,
    settings: DetectionSettings,
    reason: str,
    report: ScanReport,
    emit: _Emit,
) -> None:
    store.save_photo(path, size, mtime_ns, sha, scan_id, settings.key, error=reason)
    report.errors.append((os.fsdecode(path), reason))
    emit(ScanEvent("photo", path=path, outcome="error", reason=reason))


def _record(
    store: Store,
    job: _Job,
    result: fc.Analysis | ImageError,
    scan_id: int,
    settings: DetectionSettings,
    report: ScanReport,
    emit: _Emit,
) -> None:
    if isinstance(result, ImageError):
        _record_error(
            store, job.path, job.size, job.mtime_ns, job.sha256, scan_id, settings, result.reason, report, emit
        )
        return
    lost = _save_faces(
        store,
        job,
        scan_id,
        settings,
        report,
        result.faces,
        width=result.width,
        height=result.height,
        taken_at=result.taken_at,
        thumbnails=result.thumbnails,
    )
    report.analysed += 1
    report.faces_found += len(result.faces)
    report.detect_seconds += result.seconds
    emit(ScanEvent("photo", path=job.path, outcome="analysed", faces=len(result.faces), lost=lost))


def _run_jobs(
    store: Store,
    jobs: Iterator[_Job],
    settings: DetectionSettings,
    workers: int,
    scan_id: int,
    report: ScanReport,
    emit: _Emit,
    analyser: Analyser | None = None,
) -> None:
    if analyser is not None:
        report.workers = analyser.workers
        for job, result in analyser.analyse(jobs, settings):
            _record(store, job, result, scan_id, settings, report, emit)
        return
    if workers <= 1:
        fc.set_threads(os.cpu_count() or 1)
        fc.warm_up(settings)
        for job in jobs:
            _record(store, job, analyse_safely(job.path, settings), scan_id, settings, report, emit)
        return
    # spawn, not fork: the parent runs a progress thread, and fork with threads can deadlock.
    ctx = multiprocessing.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(settings,))

    pool = new_pool()
    pending: dict[Future[fc.Analysis | ImageError], _Job] = {}
    retry: list[_Job] = []
    crashed: set[Path] = set()
    try:
        exhausted = False
        while True:
            # Keep a couple of jobs queued per worker: enough to stay busy, bounded memory.
            while len(pending) < 2 * workers and (retry or not exhausted):
                next_job = retry.pop() if retry else next(jobs, None)
                if next_job is None:
                    exhausted = True
                    break
                with _sigint_held():  # submit may start a worker process
                    pending[pool.submit(_analyse, next_job.path)] = next_job
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    # A worker died (the OOM killer, a crash in native code) and took the
                    # pool with it. Which file did it is unknown: each job in flight gets
                    # one more try in a fresh pool; a file that breaks it twice is recorded.
                    broken = True
                    if job.path in crashed:
                        _record(
                            store,
                            job,
                            ImageError(job.path, "the analysing process crashed on this file"),
                            scan_id,
                            settings,
                            report,
                            emit,
                        )
                    else:
                        crashed.add(job.path)
                        retry.append(job)
                    continue
                _record(store, job, result, scan_id, settings, report, emit)
            if broken:
                for job in pending.values():
                    crashed.add(job.path)
                    retry.append(job)
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
