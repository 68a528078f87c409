"""Scan orchestration: walk, skip what is known, detect the rest, record, resume.

The main process owns the database (one writer); detection runs inline, in worker
processes that each load the models once, or on a Dask cluster (:mod:`photocluster.app.pool`,
:mod:`photocluster.app.dask_scan`), and every result comes back through one loop here. Every
photo is committed as soon as its result arrives, so a scan killed at any moment resumes
where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypedDict, Unpack

from photocluster.app.pool import InlineAnalyser, PoolAnalyser, analyse_safely, sigint_held
from photocluster.app.recognise import assign_new_faces
from photocluster.app.scan_report import LostFace, ScanEvent, ScanProgress, ScanReport
from photocluster.app.sizing import default_workers
from photocluster.app.tags import import_tags
from photocluster.app.thumbs import twin_thumbnails
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ConcurrentChangeError, ImageError, PathNotFoundError, ScanInterrupted
from photocluster.core.progress import ProgressCallback
from photocluster.core.types import Face, Photo
from photocluster.detect import faces as fc
from photocluster.detect.images import fingerprint, taken_at_of, walk
from photocluster.detect.thumbnail import THUMB_PARAMS
from photocluster.grouping.rematch import carry_over
from photocluster.store import Store

log = logging.getLogger(__name__)

# Where they were defined before the scan's parts had modules of their own.
__all__ = [
    "Analyser",
    "LostFace",
    "ProgressCallback",
    "ScanEvent",
    "ScanOptions",
    "ScanReport",
    "analyse_safely",
    "default_workers",
    "scan",
]


@dataclass(frozen=True)
class _Job:
    """A file to record: ``before`` is the id of the photo stored at its path, if any."""

    path: Path
    size: int = 0
    mtime_ns: int = 0
    sha256: str | None = None
    pixel_key: str | None = None
    before: int | None = None


class Analyser(Protocol):
    """Detection run elsewhere (photocluster.app.dask_scan: on a Dask cluster): yields each
    job with its result as results arrive, in any order; ``workers`` goes in the report."""

    workers: int

    def analyse(
        self, jobs: Iterator[_Job], settings: DetectionSettings
    ) -> Generator[tuple[_Job, fc.Analysis | ImageError], None, None]: ...


class _Shape(Protocol):
    """What a photo's row takes from an analysis, or from the twin a copy is recorded from."""

    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def taken_at(self) -> str | None: ...


class ScanOptions(TypedDict, total=False):
    """How a scan runs, beside what it scans and with which settings."""

    workers: int  # processes that detect (1: this process)
    retry_errors: bool  # analyse again the files that failed before
    progress: ProgressCallback | None
    analyser: Analyser | None  # who detects: None, the local pool; a DaskAnalyser, a cluster
    tags: bool  # read the face tags in or beside the photos


def scan(
    store: Store,
    roots: Sequence[str | os.PathLike[str]],
    settings: DetectionSettings | None = None,
    **options: Unpack[ScanOptions],
) -> ScanReport:
    """Find, analyse and record every photo under ``roots``. See the module doc. With
    ``tags``, the face tags already in or beside the photos are read (:mod:`photocluster.app.tags`)."""
    settings = settings or DetectionSettings()
    workers = options.get("workers", 1)
    root_paths = [Path(os.path.abspath(r)) for r in roots]
    for root in root_paths:
        if not os.path.lexists(root):
            raise PathNotFoundError(root)
    store.check_writable()
    with store.exclusive("scan"):
        start = time.perf_counter()
        # dlib is imported before the scan is recorded: if it cannot be, no scan is left 'running'.
        with sigint_held():
            engine = fc.resolve_engine(settings.engine)
            dlib = fc.dlib_build().describe()
        log.info("scanning with %s, the %s engine (%s), %d worker(s)", settings.key, engine, dlib, workers)
        report = ScanReport(0, [os.fsdecode(r) for r in root_paths], settings.key, dlib, engine, workers)
        progress = ScanProgress(options.get("progress"))
        run = _ScanRun(store, settings, report, progress, options.get("retry_errors", False))
        run.run(root_paths, options.get("analyser"), options.get("tags", True), start)
        return report


@dataclass
class _ScanRun:
    """One scan under way: what every step of it reads and writes."""

    store: Store
    settings: DetectionSettings
    report: ScanReport
    emit: ScanProgress
    retry_errors: bool

    def run(self, root_paths: list[Path], analyser: Analyser | None, tags: bool, start: float) -> None:
        store, report, emit = self.store, self.report, self.emit
        scan_id = report.scan_id = store.begin_scan(root_paths, self.settings.key)
        unreadable: list[Path] = []

        def walk_skip(path: Path, reason: str) -> None:
            report.errors.append((os.fsdecode(path), reason))
            emit(ScanEvent("error", path=path, reason=reason))

        def walk_error(path: Path, reason: str) -> None:
            unreadable.append(path)  # what is under it is not missing: it could not be seen
            walk_skip(path, reason)

        status = "failed"
        try:
            emit(ScanEvent("listing"))
            files = list(walk(root_paths, on_error=walk_error, on_skip=walk_skip))
            report.files = len(files)
            emit(ScanEvent("listed", total=len(files)))
            self.detect(self.triage(files), analyser)
            if tags:
                read = import_tags(store, files, self.settings, progress=emit.progress)
                report.tags = read.as_dict()
                if report.no_faces and read.second_look:  # a tag's second look found one
                    kept = store.photos_without_faces([Path(p) for p in report.no_faces])
                    report.no_faces = [os.fsdecode(p) for p in kept]
            report.missing = store.mark_missing(scan_id, root_paths, keep_under=unreadable)
            # Corrections that keep coming leave the new faces for the next scan or `clusters`.
            with contextlib.suppress(ConcurrentChangeError):
                report.recognised = assign_new_faces(store)
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise ScanInterrupted(
                f"scan interrupted after {report.analysed} photos; "
                "what was done is kept: run the same command to resume"
            ) from None
        finally:
            report.seconds = time.perf_counter() - start
            store.end_scan(scan_id, status, report.as_dict())

    def detect(self, jobs: Iterator[_Job], analyser: Analyser | None) -> None:
        """The results loop of every way of running detection: each result recorded as it comes."""
        if analyser is None:
            analyser = PoolAnalyser(self.report.workers) if self.report.workers > 1 else InlineAnalyser()
        else:
            self.report.workers = analyser.workers
        # Closed here, not when collected: a pool's workers stop before the scan is ended.
        with contextlib.closing(analyser.analyse(jobs, self.settings)) as results:
            for job, result in results:
                self.record(job, result)

    def triage(self, files: list[Path]) -> Iterator[_Job]:
        """Settle every file that needs no detection; yield the ones that do."""
        store, report, emit = self.store, self.report, self.emit
        seen: list[int] = []
        folder, settled = Path(), dict[bytes, tuple[int, int, int]]()
        for path in files:
            try:
                st = path.stat()
            except OSError as exc:
                gone = isinstance(exc, FileNotFoundError)
                self.error(_Job(path), "file disappeared" if gone else f"cannot read: {exc.strerror}")
                continue
            if path.parent != folder:  # the walk lists a folder's files together: one query each
                folder, settled = path.parent, store.unchanged_in_folder(path.parent, self.settings.key)
            done = settled.get(os.fsencode(path))  # analysed with these settings, as it was: unchanged
            if done is not None and done[1:] == (st.st_size, st.st_mtime_ns):
                seen.append(done[0])
                report.unchanged += 1
                emit(ScanEvent("photo", path=path, outcome="unchanged"))
                if len(seen) >= 500:
                    store.mark_seen(seen, report.scan_id)
                    seen.clear()
                continue
            known = store.photo_by_path(path)
            if known is not None:
                photo = known[0]
                same_file = photo.size == st.st_size and photo.mtime_ns == st.st_mtime_ns
                if same_file and photo.status == "error" and not self.retry_errors:
                    seen.append(photo.id)
                    report.errors.append((os.fsdecode(path), photo.error or "error"))
                    emit(ScanEvent("photo", path=path, outcome="error", reason=photo.error or ""))
                    continue
            try:
                fp = fingerprint(path)
            except ImageError as exc:
                self.error(_Job(path, st.st_size, st.st_mtime_ns), exc.reason)
                continue
            job = _Job(path, st.st_size, st.st_mtime_ns, fp.sha256, fp.pixel_key, known[0].id if known else None)
            if known is not None and self.settle_known(job, known):
                continue
            if self.reuse_by_content(job):
                continue
            yield job
        store.mark_seen(seen, report.scan_id)

    def settle_known(self, job: _Job, known: tuple[Photo, str | None]) -> bool:
        """A file analysed before at this path whose bytes, or only whose metadata, are as they
        were: it keeps its faces without detection. False when it must be analysed again."""
        photo, photo_settings = known
        assert job.sha256 is not None  # a job to settle has been fingerprinted
        usable = photo_settings == self.settings.key and photo.width is not None and photo.status in ("done", "missing")
        scan_id = self.report.scan_id
        if usable and photo.sha256 == job.sha256:
            # Same bytes at the same path (back from missing, or only touched): keep its faces.
            self.store.move_photo(photo.id, job.path, job.size, job.mtime_ns, scan_id)
            self.report.unchanged += 1
            self.emit(ScanEvent("photo", path=job.path, outcome="unchanged"))
            return True
        if usable and job.pixel_key is not None and photo.pixel_key == job.pixel_key:
            # Only metadata changed (keywords, dates, ratings: an exiftool or a photo manager):
            # the pixels, so the faces, their ids, persons and corrections, are as they were.
            taken_at = taken_at_of(job.path)
            self.store.refresh_photo(photo.id, job.size, job.mtime_ns, job.sha256, job.pixel_key, taken_at, scan_id)
            self.report.metadata_only += 1
            self.emit(ScanEvent("photo", path=job.path, outcome="metadata"))
            return True
        return False

    def reuse_by_content(self, job: _Job) -> bool:
        """A file whose bytes were analysed before keeps those faces without re-detection."""
        store, path = self.store, job.path
        assert job.sha256 is not None  # a job to settle has been fingerprinted
        twins = [p for p in store.photos_by_hash(job.sha256, self.settings.key) if p.path != path]
        if not twins:
            return False
        gone = [p for p in twins if not os.path.lexists(p.path)]
        if gone:
            # Moved or renamed: the photo row follows the file, faces and persons included. An
            # earlier photo at this path (a different picture) gives way, and its faces with it.
            lost = self.lost_faces(path, store.photo_faces(job.before) if job.before is not None else [])
            store.move_photo(gone[0].id, path, job.size, job.mtime_ns, self.report.scan_id)
            n_faces = len(store.photo_faces(gone[0].id))
            self.report.moved += 1
            outcome = "moved"
        else:
            faces = store.photo_faces(twins[0].id)
            lost = self.save(job, faces, twins[0], twin_thumbnails(store, faces))
            n_faces = len(faces)
            self.report.duplicates += 1
            self.report.duplicate_of.append((os.fsdecode(path), os.fsdecode(twins[0].path)))
            outcome = "duplicate"
        self.report.faces_found += n_faces
        self.emit(ScanEvent("photo", path=path, outcome=outcome, faces=n_faces, lost=lost))
        return True

    def record(self, job: _Job, result: fc.Analysis | ImageError) -> None:
        if isinstance(result, ImageError):
            self.error(job, result.reason)
            return
        lost = self.save(job, result.faces, result, result.thumbnails)
        self.report.analysed += 1
        self.report.faces_found += len(result.faces)
        if not result.faces:
            self.report.no_faces.append(os.fsdecode(job.path))
        self.report.detect_seconds += result.seconds
        self.emit(ScanEvent("photo", path=job.path, outcome="analysed", faces=len(result.faces), lost=lost))

    def error(self, job: _Job, reason: str) -> None:
        self.store.save_photo(
            job.path, job.size, job.mtime_ns, job.sha256, self.report.scan_id, self.settings.key, error=reason
        )
        self.report.errors.append((os.fsdecode(job.path), reason))
        self.emit(ScanEvent("photo", path=job.path, outcome="error", reason=reason))

    def save(self, job: _Job, faces: list[Face], shape: _Shape, thumbnails: list[bytes]) -> tuple[LostFace, ...]:
        """Store the photo of ``job`` with ``faces`` (and a thumbnail for each, or none), each
        continuing the earlier face of that path it matches; returns the earlier faces that
        found no match (counted in the report)."""
        old = self.store.photo_faces(job.before) if job.before is not None else []
        keep, lost_before = carry_over(old, faces)
        # The faces the user drew stay with the photo (see Store.save_photo): not lost.
        drawn = self.store.added_faces(job.before) if job.before is not None else set()
        lost_before = [f for f in lost_before if f.id not in drawn]
        lost = self.lost_faces(job.path, lost_before)
        self.store.save_photo(
            job.path,
            job.size,
            job.mtime_ns,
            job.sha256,
            self.report.scan_id,
            self.settings.key,
            width=shape.width,
            height=shape.height,
            taken_at=shape.taken_at,
            faces=faces,
            keep=keep,
            pixel_key=job.pixel_key,
            thumbnails=thumbnails,
            thumb_params=THUMB_PARAMS,
        )
        self.report.faces_kept += sum(k is not None for k in keep)
        return lost

    def lost_faces(self, path: Path, faces: list[Face]) -> tuple[LostFace, ...]:
        """Count faces about to be dropped; describe those that had a person or a correction.
        Called before they are deleted, while their corrections can still be read."""
        self.report.faces_lost += len(faces)
        ids = [f.id for f in faces if f.id is not None]
        corrected = self.store.corrected_faces(ids)
        names = self.store.names_of({f.person_id for f in faces if f.person_id is not None})
        lost = tuple(
            LostFace(os.fsdecode(path), f.id, f.person_id, names.get(f.person_id or 0), f.id in corrected)
            for f in faces
            if f.id is not None and (f.person_id is not None or f.id in corrected)
        )
        self.report.lost.extend(lost)
        return lost
