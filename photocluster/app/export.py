"""The export use case: persons out to the file system, a folder per person,
``index.json`` and the review pages (``index.html`` and ``pages/``), written by the
writers of :mod:`photocluster.exporter`.

An export streams the library a person at a time (largest first, the unknown faces last):
it places the person's photo entries, writes its face thumbnails (cut once, by the scan or
by the first export that needs them, and kept in the store), its block of ``index.json``
and its pages, and keeps only a card of it for the index pages. Memory is that of the
largest person plus a few strings per face for the manifest, whatever the library's size.

Exports are idempotent: DEST holds a manifest of what photocluster wrote there (photo
entries, thumbnails, face chips, pages, sidecars), so a second export adds, updates and
removes only its own files. What a run is about to write is appended to a journal first,
so an export killed half-way orphans nothing. Nothing is written outside DEST, except XMP
sidecars beside the originals when asked for (``xmp="originals"``), and those are merged
into, never clobbered. Originals are only read (symlink and hardlink modes do not even
read them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import os
import stat
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photocluster.app import browse, export_skip
from photocluster.app.listing import person_moments
from photocluster.app.suggest import suggest
from photocluster.app.tags import tag_conflicts
from photocluster.app.thumbs import ensure_thumbnails
from photocluster.core.ages import photo_day
from photocluster.core.choices import ExportMode, XmpTarget, choice
from photocluster.core.errors import ExportError
from photocluster.core.files import atomic_write
from photocluster.core.progress import Progress, ProgressCallback, report_to
from photocluster.core.readmodel import Doubt, Summary
from photocluster.core.types import Box, Person, PersonFace, Photo
from photocluster.detect.faces import CHIP_PADDING, CHIP_SIZE
from photocluster.detect.images import EXPORT_MARKER
from photocluster.detect.thumbnail import THUMB_PARAMS, THUMB_SUFFIX
from photocluster.exporter import review
from photocluster.exporter.folders import (
    CROPS_FOLDER,
    IN_THE_WAY,
    INDEX_FILE,
    MODES,
    PAGES_FOLDER,
    REVIEW_PAGE,
    THUMBS_FOLDER,
    Placed,
    Warnings,
    check_inside,
    file_names,
    person_folders,
    place_entry,
    prune_empty,
    remove_entries,
    remove_files,
    safe_folder_name,
    unique_names,
    warn,
)
from photocluster.exporter.index_json import JOURNAL, Journal, Manifest, manifest_lines
from photocluster.exporter.render import CopyJob, PersonJob, Renderer, RendererProcess
from photocluster.exporter.stamps import EDITED, same_size_and_mtime, stamp, stat_matches, still_ours
from photocluster.exporter.thumbnails import CROP_QUALITY, ImageJob, content_key, write_chips
from photocluster.exporter.xmp import (
    XMP_TARGETS,
    Sidecar,
    plan_sidecars,
    region_name,
    sidecar_states,
    sync_sidecars,
)
from photocluster.grouping.doubt import distances_to_mean
from photocluster.store import Store

log = logging.getLogger(__name__)

# The review page asks about this many pairs of persons at most (`suggest` lists more).
SUGGESTIONS_SHOWN = 20
# Faces from which pages and index.json are rendered by a second process (it costs a
# second to start, and wins back about a third of the export's time at a million faces).
_RENDER_PROCESS_FACES = 20_000
# Pages of unknown faces read and written at a time.
_PAGES_PER_CHUNK = 16

# The names callers of the exporter use, whichever module now holds them.
__all__ = ["EXPORT_MARKER", "MODES", "XMP_TARGETS", "ExportReport", "export", "safe_folder_name"]


@dataclass(frozen=True)
class ExportReport:
    """What an export did. ``created`` .. ``skipped`` count photo entries in person folders;
    ``thumbnails``, ``crops`` and ``sidecars`` count what the export holds after the run;
    ``warnings`` are the first ``"path: reason"`` lines for thumbnails, chips, sidecars or
    pages not written; ``warning_count`` counts them all. ``kept``: files of the export the
    user changed since photocluster wrote them (photo entries, thumbnails, chips, pages,
    index.json), left as they are and no longer photocluster's (each with a warning)."""

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
    kept: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _open_dest(dest: Path) -> tuple[Manifest, bool]:
    """Make DEST, refusing a folder photocluster did not write; returns its manifest (with
    what an export killed half-way had claimed: then every person's line is folded in, and
    no person is skipped), and whether DEST was new or empty. DEST is marked as ours before
    anything else is written in it."""
    fresh = False
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest}: exists and is not a folder")
    marker = dest / EXPORT_MARKER
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()) and not marker.exists():
            raise ExportError(
                f"{dest}: folder is not empty and was not written by photocluster; choose an empty or new folder"
            )
        if not marker.exists():
            atomic_write(marker, Manifest().dump())
            fresh = True
        manifest = Manifest.read(marker)
        if (dest / JOURNAL).exists():
            manifest = manifest.flattened()
        return manifest.with_journal(dest / JOURNAL), fresh
    except OSError as exc:
        raise ExportError(f"{dest}: cannot write the export ({exc.strerror})") from None


def export(
    store: Store,
    dest: str | os.PathLike[str],
    mode: ExportMode | str = ExportMode.SYMLINK,
    *,
    crops: bool = False,
    xmp: XmpTarget | str | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> ExportReport:
    """Write a folder per person (and ``unknown/``) with the photos they appear in, plus
    ``index.json`` and the review pages (``index.html``, ``pages/``) with their face thumbnails.

    ``crops``: also write aligned face chips, ``crops/<person folder>/<face id>.jpg``.
    ``on_progress``: told as the photos get the thumbnails the store lacks, as the persons
    are written, and as the pages that list them are.
    ``workers``: processes that cut missing thumbnails (None: one per core for many, this
    process alone for a few).
    ``xmp``: also write XMP sidecars with MWG face regions, ``"dest"`` (beside each photo
    entry in DEST) or ``"originals"`` (beside the originals; merged into existing ones).
    Their regions are gathered for the whole library, so ``xmp`` costs memory per face.
    """
    mode, xmp = _check_options(mode, xmp)
    dest_path = Path(os.path.abspath(dest))
    log.info("exporting to %s: photos as %s, crops %s, XMP sidecars %s", dest_path, mode, crops, xmp or "none")
    prev, fresh = _open_dest(dest_path)
    progress = report_to(on_progress)
    progress(Progress("Listing persons and faces"))
    warnings = Warnings()
    try:
        no_thumb = ensure_thumbnails(store, warnings, workers, progress)
        with store.snapshot():
            run = _Run(store, dest_path, mode, prev, warnings, no_thumb, crops, xmp, fresh)
            try:
                run.persons(progress)
                run.lists(progress)
                run.finish()
            except BaseException:
                run.abort()
                raise
    except OSError as exc:
        raise ExportError(f"{dest_path}: cannot write the export ({exc.strerror}: {exc.filename})") from exc
    return run.report()


def _summary_of(doc: object) -> Summary | None:
    """The numbers of the pages' header as a manifest recorded them (None: not readable)."""
    try:
        return Summary(**doc) if isinstance(doc, dict) else None
    except TypeError:
        return None


def _check_options(mode: str, xmp: str | None) -> tuple[ExportMode, XmpTarget | None]:
    return choice(ExportMode, mode, "--mode"), None if xmp is None else choice(XmpTarget, xmp, "--xmp")


def _listed(
    person_id: int | None, name: str | None, ignored: bool, faces: Iterable[PersonFace], born: str | None = None
) -> Person:
    """A person as the listing gives it: faces nearest its centre first (the unknown faces by id)."""
    ordered = sorted(faces, key=lambda f: (f.distance, f.face_id)) if person_id is not None else list(faces)
    return Person(person_id, name, tuple(ordered), ignored=ignored, born=born)


def _write_file(path: str, data: bytes) -> None:
    # Claimed first: a file cut short is rewritten next time. os.open: no buffer, no tty check.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _Writer:
    """Writes files and places entries on a thread while the export goes on: the system
    calls (a million files, half a million links at a million faces) release the GIL, so
    they overlap the Python work of the next person. Jobs go in batches (a person's), as a
    future per file costs about what writing it does; at most ``limit`` bytes of them wait
    (a slow disk must not hold a library's thumbnails in memory). The first error is raised
    in the export's thread, by :meth:`flush` or :meth:`drain`."""

    def __init__(self, limit: int = 32 << 20) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="export-io")
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._batch: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        self._size = self._waiting = 0
        self._limit = limit

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Queue ``fn(*args)``; bytes and text among ``args`` count against the limit."""
        self._batch.append((fn, args))
        self._size += sum(len(a) for a in args if isinstance(a, bytes | str)) + 256

    def flush(self) -> None:
        """Hand the jobs submitted so far to the thread."""
        if self._batch:
            self._pending.append((self._pool.submit(_run_all, self._batch), self._size))
            self._waiting += self._size
            self._batch, self._size = [], 0
        while self._waiting > self._limit:
            self._wait_oldest()

    def drain(self) -> None:
        self.flush()
        while self._pending:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, size = self._pending.popleft()
        self._waiting -= size
        future.result()

    def close(self) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


def _run_all(jobs: list[tuple[Callable[..., object], tuple[object, ...]]]) -> None:
    for fn, args in jobs:
        fn(*args)


@dataclass
class _Group:
    """What an export wrote of one person (or of the unknown faces), for its manifest line."""

    entries: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    thumbs: int = 0
    chips: int = 0
    clean: bool = True  # no warning, no entry skipped or kept, every page written
    card: list[object] | None = None
    shown: dict[str, list[str | None]] = field(default_factory=dict)  # face id -> (entry, thumbnail)


class _Run:
    """One export, a person at a time: what it placed and wrote, and what it still owes."""

    def __init__(
        self,
        store: Store,
        dest: Path,
        mode: str,
        prev: Manifest,
        warnings: Warnings,
        no_thumb: set[int],
        crops: bool,
        xmp: str | None,
        fresh: bool = False,
    ) -> None:
        self.store, self.dest, self.mode, self.prev = store, dest, mode, prev
        self.root = os.fspath(dest)  # paths joined as strings: a Path per file costs more than the file
        self.fresh = fresh  # DEST was empty: nobody else's file can be in the way of ours
        self.warnings, self.no_thumb, self.crops, self.xmp = warnings, no_thumb, crops, xmp
        self.rows = store.person_rows(-1)
        self.folders = person_folders([Person(r.id, r.name) for r in self.rows])
        self.births = store.births()
        self.placed = Placed()
        self.wanted: set[str] = set()  # photo entries this run asked for
        self.own: set[str] = set()  # ... of which ours and in place
        self.files: dict[str, str] = {}  # thumbnails, chips and pages in place -> content key
        self.thumbnails = self.chips = 0
        self.checked: set[str] = set()  # folders made and checked this run
        self.skipped: set[str] = set()
        self.kept_files: set[str] = set()  # files of ours the user changed since: theirs now
        self.verified: set[str] = set()  # files of ours found as written (size, mtime) and kept
        # For the sidecars (only with xmp): photo -> regions, photo entries -> photo, photos.
        self.regions: dict[int, list[tuple[int, str, Box]]] = defaultdict(list)
        self.entry_photo: dict[str, int] = {}
        self.photos: dict[int, Photo] = {}
        self.planned_sidecars: list[Sidecar] = []
        self.sidecars: dict[str, str] = {}  # sidecars the manifest tracks after the run
        self.groups: dict[int | None, _Group] = {}  # the persons written this run, for the manifest
        self.list_rels: set[str] = set()  # the index and doubt pages
        self.lists_clean = False
        settings = store.get_setting("cluster.threshold"), store.get_setting("cluster.min_size")
        self._plan(settings)
        self.io = _Writer()
        self.journal = Journal(dest)
        if self.write_index:
            self.journal.claim("rewrite", [INDEX_FILE])
        self.unknown_faces = self.summary.unknown
        faces = sum(r.faces for r in self.rows if r.id not in self.skips)
        faces += 0 if None in self.skips else self.unknown_faces
        # A second process renders pages and index.json beside this one's work, once it pays.
        kind = RendererProcess if faces >= _RENDER_PROCESS_FACES else Renderer
        self.render: Renderer | RendererProcess = kind(self.root, self.summary, *settings, self.write_index)

    # -- what did not change since the last export ------------------------------------------

    def _plan(self, settings: tuple[str | None, str | None]) -> None:
        """Decide which persons are skipped whole (see :mod:`photocluster.app.export_skip`);
        fold the last export's lines of the others into ``prev``. Computes the faces in doubt
        and the suggestions' moments only when the library changed."""
        prev, root = self.prev, self.root
        self.context = export_skip.context(
            (
                self.mode,
                self.crops,
                self.xmp,
                review.FACES_PER_PAGE,
                review.CARDS_PER_PAGE,
                browse.DOUBTS_SHOWN,
                SUGGESTIONS_SHOWN,
                THUMB_PARAMS,
                THUMB_SUFFIX,
                CHIP_SIZE,
                CHIP_PADDING,
                CROP_QUALITY,
                *settings,
            )
        )
        self.prints, self.library = export_skip.fingerprints(
            self.store, self.rows, self.folders, self.births, self.no_thumb
        )
        old = prev.context
        # Only symlinks: a copy or a hardlink is checked against its original at every export.
        skippable = (
            bool(prev.persons) and self.mode == "symlink" and not self.xmp and old.get("options") == self.context
        )
        self.prev_lists = dict(prev.files)  # the index and doubt pages, as the last export wrote them
        recorded = _summary_of(old.get("summary"))
        lists_same = (
            skippable
            and recorded is not None
            and old.get("library") == self.library
            and old.get("lists_clean") is True
            and all(self._as_written(rel) for rel in self.prev_lists)
        )
        if lists_same and recorded is not None:
            self.moments = None
            self.summary = recorded
            doubts: list[Doubt] = []
        else:
            # One streaming pass over the embeddings for both the faces in doubt and the suggestions.
            self.moments = person_moments(self.store)
            doubts = browse.doubts(self.store, moments=self.moments)
            self.summary = browse.summary(self.store, len(doubts))
        self.lists_same = lists_same
        self.lists_of = review.Lists(self.summary, doubts)
        self.doubt_ids = {d.face.id for d in doubts}
        doubt_of: dict[int, set[int]] = defaultdict(set)
        for d in doubts:
            if d.face.person_id is not None:
                doubt_of[d.face.person_id].add(d.face.id)
        # index.json: the user's (kept as it is), as the last export wrote it, or neither.
        edited = self._edited(INDEX_FILE)
        index_same = not edited and self._as_written(INDEX_FILE)
        self.write_index = not edited and not (lists_same and index_same)
        summary_same = old.get("summary") == dataclasses.asdict(self.summary)
        can_skip = skippable and summary_same and (index_same or not self.write_index)
        self.skips: dict[int | None, dict[str, Any]] = {}  # person -> its line's meta, where it lies
        self.old_meta: dict[int | None, dict[str, Any]] = {}
        # Where each person's block lies in index.json, as the last export wrote it.
        blocks = old.get("index")
        self.old_blocks: dict[int | None, tuple[int, int]] = {
            b[0]: (b[1], b[2]) for b in (blocks if isinstance(blocks, list) else []) if len(b) == 3
        }
        wanted = {r.id for r in self.rows} | {None}

        def candidate(key: Any, fingerprint: object, meta: Any) -> bool | None:
            """Whether the person may be skipped (None: its links are each to be looked at)."""
            if not (can_skip and key in wanted and isinstance(meta, dict) and fingerprint == self.prints.get(key, "")):
                return False
            if meta.get("clean") is not True or key not in self.old_blocks:
                return False
            if not lists_same and not doubt_of.get(key, set()) <= {int(f) for f in meta.get("shown", {})}:
                return False
            return export_skip.folder_as_written(root, self.folders[key], meta.get("folder"), prev.mtime_ns)

        # A person's lines come together, its fingerprint and meta on the first.
        person: tuple[Any, dict[str, Any], list[tuple[int, int]]] | None = None
        ok: bool | None = False
        end = (-1, 0)
        for where, doc in itertools.chain(prev.person_lines(), [(end, None)]):
            if doc is None and where != end:  # a line damaged by hand: its person is not skipped
                if person is not None and ok is not False:
                    ok = False
                    for earlier in person[2]:
                        prev.merge(prev.line_at(earlier))
                continue
            if doc is not None and doc[1] is None and person is not None and doc[0] == person[0]:
                pass  # the next line of the same person
            else:
                if person is not None:
                    if ok is not False:
                        self.skips[person[0]] = {**person[1], "lines": person[2]}
                    elif person[0] in wanted:
                        self.old_meta[person[0]] = person[1]
                if doc is None:
                    person = None
                    continue
                meta = doc[2] if isinstance(doc[2], dict) else {}
                person, ok = (doc[0], meta, []), candidate(doc[0], doc[1], meta)
            person[2].append(where)
            if ok is not False and not export_skip.as_written(root, doc[3], doc[4], links=ok is None):
                ok = False
                for earlier in person[2][:-1]:  # read again: not skipped after all
                    prev.merge(prev.line_at(earlier))
            if ok is False:
                prev.merge(doc)
        log.info(
            "re-export: %d of %d persons unchanged, lists %s",
            len(self.skips),
            len(wanted),
            "unchanged" if lists_same else "redone",
        )

    def _as_written(self, rel: str) -> bool:
        """Whether the file ``rel`` of ours is as it was written (size and mtime)."""
        recorded = self.prev.stamps.get(rel)
        try:
            return recorded is not None and stat_matches(os.lstat(os.path.join(self.root, rel)), recorded)
        except OSError:
            return False

    def _skip(self, key: int | None) -> None:
        """A person unchanged since the last export, its files as written: counted, its block
        of index.json copied, its card kept for the index pages."""
        meta = self.skips[key]
        entries, thumbs, chips = meta["n"]
        self.placed.unchanged += entries
        self.thumbnails += thumbs
        self.chips += chips
        if self.write_index:
            self.render.person(CopyJob(key, self.old_blocks[key], self.folders[key]))
        if key is not None and not self.lists_same:
            shown = {int(f): v for f, v in meta["shown"].items()}
            card = export_skip.card_of_doc(meta["card"])
            self.lists_of.add(card, {f: t for f, (_, t) in shown.items() if t}, {f: e for f, (e, _) in shown.items()})

    # -- one person ---------------------------------------------------------------------

    def persons(self, progress: ProgressCallback) -> None:
        total = len(self.rows) + 1
        births = self.births
        for k, row in enumerate(self.rows, start=1):
            if row.id in self.skips:
                self._skip(row.id)
                progress(Progress("Persons: entries, thumbnails, pages", k, total))
                continue
            faces, photos, emb = self.store.member_faces(row.id)
            dist = distances_to_mean(emb).tolist()
            born = births.get(row.id)
            # The day of each photo, for the ages: only for a person with a birth date.
            days = {p: photo_day(ph.taken_at, ph.mtime_ns).isoformat() for p, ph in photos.items()} if born else {}
            members = (
                PersonFace(f.id, f.photo_id, f.photo_path, f.box, f.confidence, d, days.get(f.photo_id))
                for f, d in zip(faces, dist, strict=True)
            )
            listed = _listed(row.id, row.name, row.ignored, members, born.isoformat() if born else None)
            self.person(listed, photos)
            progress(Progress("Persons: entries, thumbnails, pages", k, total))
        # The unknown faces (a third of a library, say) a few pages at a time, by id.
        if None in self.skips:
            self._skip(None)
            progress(Progress("Persons: entries, thumbnails, pages", total, total))
            return
        names = unique_names(self.store.unknown_photo_paths())
        chunk = review.FACES_PER_PAGE * _PAGES_PER_CHUNK
        after, first = 0, 1
        while True:
            faces, photos, _ = self.store.member_faces(None, embeddings=False, after=after, limit=chunk)
            if not faces and first > 1:
                break  # the last chunk was full; none (page 1 says so) is a chunk of its own
            members = (PersonFace(f.id, f.photo_id, f.photo_path, f.box, f.confidence, math.nan) for f in faces)
            self.person(_listed(None, None, False, members), photos, names, first, self.unknown_faces)
            if len(faces) < chunk:
                break
            after, first = faces[-1].id, first + _PAGES_PER_CHUNK
        progress(Progress("Persons: entries, thumbnails, pages", total, total))

    def person(
        self,
        person: Person,
        photos: dict[int, Photo],
        names: dict[int, str] | None = None,
        first_page: int = 1,
        unknown: int | None = None,
    ) -> None:
        """Place, write and index one person; or, id None, a chunk of the unknown faces
        (``names``: the unknown folder's file names, ``first_page`` theirs, of ``unknown`` faces)."""
        folder = self.folders[person.id]
        group = self.groups.setdefault(person.id, _Group())
        before = (self.warnings.total, len(self.placed.kept), len(self.placed.skipped))
        names = file_names(person) if names is None else names
        entries = {f.face_id: f"{folder}/{names[f.photo_id]}" for f in person.faces}
        sources = {entries[f.face_id]: f.photo_path for f in person.faces}
        thumbs = {
            f.face_id: self._thumb_file(f, photos[f.photo_id]) for f in person.faces if f.face_id not in self.no_thumb
        }
        chips = {f.face_id: self._chip_file(folder, f, photos[f.photo_id]) for f in person.faces if self.crops}
        page_files = review.person_page_files(person.id, len(person.faces), first_page)
        claimed = self._claim(sources, [rel for rel, _ in [*thumbs.values(), *chips.values()]] + page_files)
        self._folder(folder)
        rewrites: list[str] = []
        for rel, source in sorted(sources.items()):
            if rel in self.wanted:
                continue  # a photo whose unknown faces fall in two chunks: placed with the first
            self.wanted.add(rel)
            ours = self.prev.stamps.get(rel, "") if rel in self.prev.entries else None
            place = place_entry(self.root, rel, source, ours, self.mode, self.placed)
            if place is None:
                self.skipped.add(rel)
                continue
            if place is False:
                continue  # the user changed it: theirs now, left as it is
            self.own.add(rel)
            if callable(place):
                if ours is not None:
                    rewrites.append(rel)
                self.io.submit(place)
        may_write = {rel: self._page_is_ours(rel, claimed) for rel in page_files}
        self.journal.claim(
            "rewrite", rewrites + [rel for rel in page_files if may_write[rel] and rel in self.prev.files]
        )
        in_place = self._write_thumbs(thumbs, claimed)
        chips_in_place = self._write_chips(person, chips, photos, claimed) if chips else {}
        missing = {rel for rel in sources if rel in self.skipped}
        self._folder(PAGES_FOLDER)
        fields = {"entries": entries, "thumbs": in_place, "chips": chips_in_place, "missing": missing}
        job = PersonJob.of(person, folder, **fields, pages=may_write, first_page=first_page, unknown=unknown)
        self.render.person(job)
        self.io.flush()
        group.entries.extend(sources)
        group.files.extend(in_place.values())
        group.files.extend(chips_in_place.values())
        group.files.extend(rel for rel, ok in may_write.items() if ok)
        group.thumbs += len(in_place)
        group.chips += len(chips_in_place)
        after = (self.warnings.total, len(self.placed.kept), len(self.placed.skipped))
        group.clean = group.clean and before == after and all(may_write.values())
        if person.id is not None:
            card = browse.card_of_person(person)
            self.lists_of.add(card, in_place, entries)
            group.card = export_skip.card_doc(card)
            if self.lists_same:  # the faces in doubt were not looked for: as the last export had them
                group.shown = self.old_meta.get(person.id, {}).get("shown", {})
            shown = self.doubt_ids.intersection(entries)
            if card.cover is not None:
                shown.add(card.cover.id)
            group.shown.update((str(f), [entries[f], in_place.get(f)]) for f in sorted(shown))
            if self.xmp:
                self._regions(person, entries, photos)
        elif self.xmp == "dest":
            self.entry_photo.update((entries[f.face_id], f.photo_id) for f in person.faces)

    def _thumb_file(self, face: PersonFace, photo: Photo) -> tuple[str, str]:
        key = content_key("thumb", photo, face.box, THUMB_PARAMS)
        return f"{THUMBS_FOLDER}/{key[:2]}/{face.face_id}_{key}{THUMB_SUFFIX}", key

    def _chip_file(self, folder: str, face: PersonFace, photo: Photo) -> tuple[str, str]:
        return f"{CROPS_FOLDER}/{folder}/{face.face_id}.jpg", content_key(
            "chip", photo, face.box, f"{CHIP_SIZE}/{CHIP_PADDING}/{CROP_QUALITY}"
        )

    def _claim(self, sources: dict[str, Path], files: list[str]) -> set[str]:
        """Journal the entries and files not yet ours that nobody else's file is in the way
        of, before any is written; returns the files claimed."""
        root, fresh = self.root, self.fresh
        new_entries = [
            rel
            for rel in sources
            if rel not in self.prev.entries and (fresh or not os.path.lexists(os.path.join(root, rel)))
        ]
        new_files = [
            rel
            for rel in files
            if rel not in self.prev.files and (fresh or not os.path.lexists(os.path.join(root, rel)))
        ]
        self.journal.claim("entry", new_entries)
        self.journal.claim("file", new_files)
        return set(new_files)

    def _folder(self, rel: str) -> None:
        """Make and check (once a run) a folder of ours, one or two names deep."""
        if rel in self.checked:
            return
        check_inside(self.dest, f"{rel}/_", (2, 3))
        (self.dest / rel).mkdir(parents=True, exist_ok=True)
        self.checked.add(rel)

    def _ours(self, rel: str, key: str, claimed: set[str]) -> bool | None:
        """Whether the file ``rel`` must be written (False: in place already; None: someone
        else's file is in the way, with a warning)."""
        known = self.prev.files.get(rel)
        path = os.path.join(self.dest, rel)
        if known is None and rel not in claimed:
            warn(self.warnings, path, IN_THE_WAY)
            return None
        if known is None:
            return True
        # One lstat for the common case, a file of ours as it was written: no edit to look for.
        try:
            st: os.stat_result | None = os.lstat(path)
        except OSError:
            st = None
        recorded = self.prev.stamps.get(rel)
        if st is not None and recorded is not None and stat_matches(st, recorded):
            if known == key:
                self.verified.add(rel)
                return False
            return True
        if self._edited(rel):
            return None
        return not (known == key and st is not None and stat.S_ISREG(st.st_mode))

    def _write_thumbs(self, thumbs: dict[int, tuple[str, str]], claimed: set[str]) -> dict[int, str]:
        """Write the thumbnails not in place from the store; returns face id -> file in place."""
        in_place: dict[int, str] = {}
        need: dict[int, tuple[str, str]] = {}
        for fid, (rel, key) in thumbs.items():
            todo = self._ours(rel, key, claimed)
            if todo is False:
                in_place[fid] = rel
                self.files[rel] = key
            elif todo:
                need[fid] = (rel, key)
        self.journal.claim("rewrite", [rel for rel, _ in need.values() if rel in self.prev.files])
        if need:
            data = self.store.thumbnails(list(need), THUMB_PARAMS)
            for fid, (rel, key) in need.items():
                jpeg = data.get(fid)
                if jpeg is None:  # a scan replaced the face meanwhile
                    warn(self.warnings, rel, "not written: the face changed during the export")
                    continue
                self._folder(rel.rsplit("/", 1)[0])
                self.io.submit(_write_file, os.path.join(self.root, rel), jpeg)
                in_place[fid] = rel
                self.files[rel] = key
        self.thumbnails += len(in_place)
        return in_place

    def _write_chips(
        self, person: Person, chips: dict[int, tuple[str, str]], photos: dict[int, Photo], claimed: set[str]
    ) -> dict[int, str]:
        """Cut and write the person's face chips not in place; returns face id -> file in place."""
        in_place: dict[int, str] = {}
        jobs: dict[int, ImageJob] = {}
        for f in person.faces:
            rel, key = chips[f.face_id]
            todo = self._ours(rel, key, claimed)
            if todo is False:
                in_place[f.face_id] = rel
                self.files[rel] = key
            elif todo:
                job = jobs.setdefault(f.photo_id, ImageJob(photos[f.photo_id]))
                job.chips.append((f.face_id, f.box, rel))
        self.journal.claim(
            "rewrite", [rel for job in jobs.values() for _, _, rel in job.chips if rel in self.prev.files]
        )
        for job in jobs.values():
            # Chips are aligned by the landmarks, which the store has and the listing does not.
            job.landmarks = {int(f.id or 0): f.landmarks for f in self.store.photo_faces(job.photo.id)}
        written = write_chips(self.dest, list(jobs.values()), self.warnings) if jobs else set()
        for fid, (rel, key) in chips.items():
            if rel in written:
                in_place[fid] = rel
                self.files[rel] = key
        self.chips += len(in_place)
        return in_place

    def _edited(self, rel: str) -> bool:
        """Whether the file ``rel`` of ours was changed by the user since it was written
        (then it is theirs: kept, with a warning, and no longer in the manifest)."""
        if rel in self.kept_files:
            return True
        recorded = self.prev.stamps.get(rel)
        if recorded is None or still_ours(os.path.join(self.root, rel), recorded):
            return False
        self.kept_files.add(rel)
        warn(self.warnings, os.path.join(self.root, rel), EDITED)
        return True

    def _page_is_ours(self, rel: str, claimed: set[str]) -> bool | None:
        """Whether the export may write the page (None: the user changed it, kept)."""
        if rel in self.prev.files and self._edited(rel):
            return None
        return review.page_is_ours(self.dest / rel, rel in self.prev.files or rel in claimed)

    def _page(self, rel: str, html: str, claimed: set[str]) -> None:
        path = self.dest / rel
        ours = self._page_is_ours(rel, claimed)
        if not ours:
            if ours is not None:
                warn(self.warnings, path, IN_THE_WAY)
            return
        if "/" in rel:
            self._folder(rel.rsplit("/", 1)[0])
        self.io.submit(review.write_page, path, html)
        self.files[rel] = "page"

    def _regions(self, person: Person, entries: dict[int, str], photos: dict[int, Photo]) -> None:
        name = region_name(person)
        for f in person.faces:
            self.regions[f.photo_id].append((f.face_id, name, f.box))
            self.photos[f.photo_id] = photos[f.photo_id]
            if self.xmp == "dest":
                self.entry_photo[entries[f.face_id]] = f.photo_id

    # -- the lists, the sidecars, what is left over ---------------------------------------

    def lists(self, progress: ProgressCallback) -> None:
        """The index pages (persons as cards) and the doubt pages."""
        if self.lists_same:  # nothing they show changed, and they are as written: kept
            for rel, key in self.prev_lists.items():
                self.files[rel] = key
                self.verified.add(rel)
            self.list_rels = set(self.prev_lists)
            self.lists_clean = True
            return
        before = self.warnings.total
        lists = self.lists_of
        lists.suggestions = suggest(self.store, SUGGESTIONS_SHOWN, moments=self.moments)
        lists.conflicts = tag_conflicts(self.store)
        rels = lists.files()
        claimed = self._claim({}, rels)
        self.journal.claim("rewrite", [rel for rel in rels if rel in self.prev.files and rel not in self.kept_files])
        for done, (rel, html) in enumerate(lists.render(self.skipped), start=1):
            self._page(rel, html, claimed)
            progress(Progress("Index and doubt pages", done, len(rels)))
        self.list_rels = set(rels)
        self.lists_clean = self.warnings.total == before and all(rel in self.files for rel in rels)

    def finish(self) -> None:
        """Put index.json in place, sync the sidecars, take away what is no longer wanted,
        and record what the export holds."""
        written, warnings, self.blocks = self.render.close()  # index.json in place, the persons' pages written
        self.files.update(dict.fromkeys(written, "page"))
        self.warnings.merge(warnings)
        self.io.drain()
        self.sidecars = self._sidecars()
        remove_entries(self.dest, self.prev.entries - self.wanted, self.placed, self.prev.stamps)
        for rel, why in self.placed.kept:
            warn(self.warnings, os.path.join(self.root, rel), why)
        gone = [rel for rel in self.prev.files if rel not in self.files and rel != INDEX_FILE]
        remove_files(self.dest, [rel for rel in gone if not self._edited(rel)])
        prune_empty(self.dest)
        stamps = self._stamps()
        files = {rel: self.files[rel] for rel in self.list_rels if rel in self.files}
        context = {
            "options": self.context,
            "library": self.library,
            "lists_clean": self.lists_clean,
            "summary": dataclasses.asdict(self.summary),
            # index.json as written this run, or as the last export wrote it (when not written).
            "index": [[key, *where] for key, where in (self.blocks if self.write_index else self.old_blocks).items()],
        }
        kept = {rel: stamps[rel] for rel in [*files, INDEX_FILE] if rel in stamps}
        manifest = Manifest(set(), files, self.sidecars, kept, context)
        atomic_write(self.dest / EXPORT_MARKER, manifest.chunks(self._lines(stamps)))
        self.journal.close(remove=True)
        self.io.close()

    def _lines(self, stamps: dict[str, str]) -> Iterator[str]:
        """The manifest's line of each person (and of the unknown faces): as the last export
        wrote it for a person skipped, else what this run wrote of it."""
        with contextlib.ExitStack() as stack:
            old = stack.enter_context(open(self.prev.path, "rb")) if self.skips and self.prev.path else None
            for key in [*(r.id for r in self.rows), None]:
                if key in self.skips and old is not None:
                    for at, length in self.skips[key]["lines"]:
                        old.seek(at)
                        yield old.read(length).decode("utf-8")
                    continue
                group = self.groups.get(key)
                if group is None:
                    continue
                entries = {rel: stamps.get(rel) for rel in group.entries if rel in self.own}
                files = {rel: [self.files[rel], stamps.get(rel)] for rel in group.files if rel in self.files}
                folder = self.folders[key]
                meta = {
                    "folder": export_skip.folder_stamp(self.root, folder),
                    "clean": group.clean and len(entries) == len(set(group.entries)),
                    "n": [len(entries), group.thumbs, group.chips],
                    "card": group.card,
                    "shown": group.shown,
                }
                yield from manifest_lines(key, self.prints.get(key, ""), meta, entries, files)

    def _stamps(self) -> dict[str, str]:
        """What the export holds now, entry and file by file: the stamps of the entries as
        placed; a file's stamp as before when its size and mtime are, else read anew."""
        stamps = {rel: self.placed.stamps[rel] for rel in self.own if rel in self.placed.stamps}
        index = [] if INDEX_FILE in self.kept_files else [INDEX_FILE]
        for rel in [*self.files, *index]:
            recorded = self.prev.stamps.get(rel)
            if rel in self.verified and recorded is not None:
                stamps[rel] = recorded  # checked by _ours this run, and not written again
                continue
            path = os.path.join(self.root, rel)
            if recorded is not None and same_size_and_mtime(path, recorded):
                stamps[rel] = recorded
            elif (now := stamp(path)) is not None:
                stamps[rel] = now
        return stamps

    def _sidecars(self) -> dict[str, str]:
        if not self.xmp and not self.prev.sidecars:
            return {}
        planned = plan_sidecars(self.xmp, self.dest, self.entry_photo, self.regions, self.photos)
        planned = [sc for sc in planned if sc.entry is None or sc.entry in self.own]
        states = sidecar_states(planned, self.prev.sidecars)
        for sc in planned:
            if sc.key not in self.prev.sidecars:
                self.journal.claim("sidecar", [sc.key], states[sc.key])
        self.planned_sidecars = planned
        return sync_sidecars(
            self.dest, self.xmp, planned, self.regions, self.photos, self.prev.sidecars, states, self.warnings
        )

    def abort(self) -> None:
        self.io.close()
        self.render.abort()
        self.journal.close(remove=False)

    def report(self) -> ExportReport:
        page = self.dest / REVIEW_PAGE
        return ExportReport(
            os.fsdecode(self.dest),
            self.mode,
            len(self.rows),
            self.unknown_faces,
            self.placed.created,
            self.placed.updated,
            self.placed.removed,
            self.placed.unchanged,
            self.placed.skipped,
            thumbnails=self.thumbnails,
            crops=self.chips,
            sidecars=sum(1 for sc in self.planned_sidecars if sc.key in self.sidecars),
            review=os.fsdecode(page) if REVIEW_PAGE in self.files else "",
            warnings=list(self.warnings),
            warning_count=self.warnings.total,
            kept=len(self.placed.kept) + len(self.kept_files),
        )
