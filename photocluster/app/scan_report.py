"""What a scan tells: its progress events (:class:`ScanEvent`) and its report (:class:`ScanReport`),
with the faces a new analysis did not find again (:class:`LostFace`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.core.progress import Progress, ProgressCallback, report_to

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanEvent:
    """What one step of a scan tells: ``kind`` is 'listing' (walk started), 'listed' (``total``
    known), 'photo' (one file settled, ``outcome`` says how) or 'error' (a folder could not be
    read). :class:`ScanProgress` passes them on as :class:`Progress`, a 'photo' or an 'error'
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
    # (file, the file analysed before with the same bytes, whose faces it shares)
    duplicate_of: list[tuple[str, str]] = field(default_factory=list)
    no_faces: list[str] = field(default_factory=list)  # photos analysed now in which no face was found
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
            "duplicate_of": [{"path": p, "same_as": q} for p, q in self.duplicate_of],
            "metadata_only": self.metadata_only,
            "missing": self.missing,
            "faces_found": self.faces_found,
            "no_faces": self.no_faces,
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


LISTING = "Listing files"
SCANNING = "Scanning"


class ScanProgress:
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
