"""Persons out to the file system: a folder per person, ``index.json`` and the review
pages (``index.html`` and ``pages/``).

Exports are idempotent: DEST holds a manifest of what photocluster wrote there (photo
entries, thumbnails, face chips, sidecars), so a second export adds, updates and removes
only its own files. Nothing is written outside DEST, except XMP sidecars beside the
originals when asked for (``xmp="originals"``), and those are merged into, never
clobbered. Originals are only read (symlink and hardlink modes do not even read them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.app import browse
from photocluster.app.browse import Summary
from photocluster.app.listing import persons as list_persons
from photocluster.app.suggest import suggest
from photocluster.app.tags import tag_conflicts
from photocluster.core.errors import ExportError, UsageError
from photocluster.core.files import atomic_write
from photocluster.core.types import Person
from photocluster.detect.images import EXPORT_MARKER
from photocluster.exporter import review
from photocluster.exporter.folders import (
    INDEX_FILE,
    MODES,
    REVIEW_PAGE,
    Warnings,
    person_folders,
    place_entries,
    plan_entries,
    prune_empty,
    remove_files,
    safe_folder_name,
)
from photocluster.exporter.index_json import Manifest, index_chunks
from photocluster.exporter.thumbnails import plan_images, write_images
from photocluster.exporter.xmp import XMP_TARGETS, plan_sidecars, regions_of, sidecar_states, sync_sidecars
from photocluster.store import Store

# The review page asks about this many pairs of persons at most (`suggest` lists more).
SUGGESTIONS_SHOWN = 20

# The names callers of the exporter use, whichever module now holds them.
__all__ = ["EXPORT_MARKER", "MODES", "XMP_TARGETS", "ExportReport", "export", "safe_folder_name"]


@dataclass(frozen=True)
class ExportReport:
    """What an export did. ``created`` .. ``skipped`` count photo entries in person folders;
    ``thumbnails``, ``crops`` and ``sidecars`` count what the export holds after the run;
    ``warnings`` are the first ``"path: reason"`` lines for thumbnails, chips, sidecars or
    pages not written; ``warning_count`` counts them all."""

    dest: str
    mode: str
    persons: int
    unknown_faces: int
    created: int
    updated: int
    removed: int
    unchanged: int
    skipped: list[str]
    thumbnails: int = 0
    crops: int = 0
    sidecars: int = 0
    review: str = ""
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _open_dest(dest: Path) -> Manifest:
    """Make DEST, refusing a folder photocluster did not write; returns its manifest."""
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest}: exists and is not a folder")
    marker = dest / EXPORT_MARKER
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()) and not marker.exists():
            raise ExportError(
                f"{dest}: folder is not empty and was not written by photocluster; choose an empty or new folder"
            )
        return Manifest.parse(json.loads(marker.read_text(encoding="utf-8"))) if marker.exists() else Manifest()
    except OSError as exc:
        raise ExportError(f"{dest}: cannot write the export ({exc.strerror})") from None
    except json.JSONDecodeError:
        return Manifest()


def export(
    store: Store,
    dest: str | os.PathLike[str],
    mode: str = "symlink",
    *,
    crops: bool = False,
    xmp: str | None = None,
    workers: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ExportReport:
    """Write a folder per person (and ``unknown/``) with the photos they appear in, plus
    ``index.json`` and the review pages (``index.html``, ``pages/``) with their face thumbnails.

    ``crops``: also write aligned face chips, ``crops/<person folder>/<face id>.jpg``.
    ``on_progress(step, done, total)``: called as ``"photos"`` get their thumbnails and
    ``"pages"`` are written.
    ``workers``: processes that cut thumbnails and chips (None: one per core for a large
    export, this process alone for a small one).
    ``xmp``: also write XMP sidecars with MWG face regions, ``"dest"`` (beside each photo
    entry in DEST) or ``"originals"`` (beside the originals; merged into existing ones).
    """
    _check_options(mode, xmp)
    dest_path = Path(os.path.abspath(dest))
    prev = _open_dest(dest_path)
    marker = dest_path / EXPORT_MARKER

    people = list_persons(store)
    folders = person_folders(people)
    wanted, entry_photo = plan_entries(people, folders)
    photos = store.photos_by_id(sorted(set(entry_photo.values())))
    images = plan_images(people, folders, photos, crops)
    doubts = browse.doubts(store)
    site_files = review.page_files(people, len(doubts))
    # In place, not copied: at a million faces each copy of these is a hundred MB.
    files_wanted = images.files
    files_wanted.update(dict.fromkeys(site_files, "page"))
    regions = regions_of(people) if xmp else {}
    planned = plan_sidecars(xmp, dest_path, entry_photo, regions, photos)
    states = sidecar_states(planned, prev.sidecars)
    del entry_photo
    warnings = Warnings()
    progress = on_progress or (lambda step, done, total: None)
    try:
        atomic_write(marker, prev.claim(dest_path, wanted.keys(), files_wanted, states).chunks())
        placed = place_entries(dest_path, wanted, prev.entries, mode)
        remove_files(dest_path, {rel for rel in prev.files if rel not in files_wanted} - {EXPORT_MARKER, INDEX_FILE})
        have = write_images(
            store, dest_path, images, prev.files, photos, warnings, workers, lambda n, of: progress("photos", n, of)
        )

        own_entries = set(wanted) - set(placed.skipped)
        del wanted
        planned = [sc for sc in planned if sc.entry is None or sc.entry in own_entries]
        sidecars = sync_sidecars(dest_path, xmp, planned, regions, photos, prev.sidecars, states, warnings)
        thumbnails = _kept(images.thumb_of, have)
        chips = _kept(images.chip_of, have)
        del images, photos, regions
        atomic_write(dest_path / INDEX_FILE, index_chunks(store, people, folders, thumbnails, chips))
        site = review.Site(dest_path, people, folders, thumbnails, set(placed.skipped), doubts)
        written = _write_pages(store, site, prev.files, warnings, lambda n: progress("pages", n, len(site_files)))
        have.update(dict.fromkeys(written, "page"))
        prune_empty(dest_path)
        atomic_write(marker, Manifest(own_entries, have, sidecars).chunks())
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror}: {exc.filename})") from None
    page = dest_path / REVIEW_PAGE
    return ExportReport(
        os.fsdecode(dest_path),
        mode,
        sum(1 for p in people if p.id is not None),
        sum(len(p.faces) for p in people if p.id is None),
        placed.created,
        placed.updated,
        placed.removed,
        placed.unchanged,
        placed.skipped,
        thumbnails=len(thumbnails),
        crops=len(chips),
        sidecars=sum(1 for sc in planned if sc.key in sidecars),
        review=os.fsdecode(page) if REVIEW_PAGE in have else "",
        warnings=list(warnings),
        warning_count=warnings.total,
    )


def _check_options(mode: str, xmp: str | None) -> None:
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if xmp is not None and xmp not in XMP_TARGETS:
        raise UsageError(f"--xmp must be one of {', '.join(XMP_TARGETS)}, got {xmp!r}")


def _write_pages(
    store: Store, site: review.Site, previous: dict[str, str], warnings: list[str], on_page: Callable[[int], None]
) -> set[str]:
    """The review pages of ``site``, with the suggestions, the face tags in conflict and the
    counts of the library."""
    site.suggestions = suggest(store, SUGGESTIONS_SHOWN)
    site.conflicts = tag_conflicts(store)
    site.summary = _summary(store, site.people, len(site.doubts))
    return review.write_site(site, previous, warnings, on_page)


def _kept(planned: dict[int, str], have: dict[str, str]) -> dict[int, str]:
    """``planned`` (face id -> file), in place, less the files not in ``have``."""
    for fid in [fid for fid, rel in planned.items() if rel not in have]:
        del planned[fid]
    return planned


def _summary(store: Store, people: list[Person], doubts: int) -> Summary:
    threshold = store.get_setting("cluster.threshold")
    min_size = store.get_setting("cluster.min_size")
    return Summary(
        persons=sum(1 for p in people if p.id is not None),
        faces=sum(len(p.faces) for p in people if p.id is not None),
        unknown=sum(len(p.faces) for p in people if p.id is None),
        doubts=doubts,
        threshold=float(threshold) if threshold and threshold != "None" else None,
        min_size=None if min_size is None else int(min_size),
    )
