"""Every face's thumbnail in the store, cut once: the one place that cuts the thumbnails
the store lacks and stores them back, for the export and for the review app.

A scan stores each face's thumbnail while the photo is decoded anyway; some are still
missing (a library scanned before thumbnails were stored, faces found by a tag's second
look, other thumbnail settings). :func:`ensure_thumbnails` cuts those from their photos,
each photo decoded once (:func:`photocluster.exporter.thumbnails.cut_images`), and stores
them for every later export and review. A thumbnail is stored only when cut from the file
the scan analysed, and only for the box it was cut for (a scan running meanwhile may have
moved the face).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

from photocluster.core.progress import Progress, ProgressCallback
from photocluster.core.types import Face
from photocluster.detect.thumbnail import LEGACY_PARAMS, THUMB_PARAMS, reencode_thumbnail
from photocluster.exporter.thumbnails import ImageJob, cut_images, image_workers
from photocluster.store import Store

# Photos read from the store at a time.
_PAGE = 2048
# The phase ensure_thumbnails reports its progress in.
CUTTING = "Thumbnails not stored yet (photos)"
# The phase of the one-time conversion of an earlier version's thumbnails.
CONVERTING = "Thumbnails converted to WebP (faces)"
# Thumbnails converted per transaction: a conversion stopped midway keeps what it did.
_BATCH = 1000

log = logging.getLogger(__name__)


def convert_thumbnails(
    store: Store, on_faces: ProgressCallback | None = None, face_ids: Sequence[int] | None = None
) -> int:
    """Re-encode the thumbnails an earlier version stored (JPEG, :data:`LEGACY_PARAMS`) in
    today's format, once: of every face, or of ``face_ids`` only. In batches of a
    transaction each, so that a conversion stopped midway resumes where it stopped; a
    thumbnail that does not decode is left as it is (it counts as missing, and is cut again
    from its photo). ``on_faces``: told of the faces converted so far (phase
    :data:`CONVERTING`). Returns the thumbnails converted."""
    if face_ids is not None:
        old = store.thumbnails(face_ids, LEGACY_PARAMS)
        return store.replace_thumbnails(_reencoded(old.items()), LEGACY_PARAMS, THUMB_PARAMS)
    total = store.thumbnail_count(LEGACY_PARAMS)
    done = after = 0
    while total and (batch := store.thumbnails_with(LEGACY_PARAMS, after, _BATCH)):
        after = batch[-1][0]
        done += store.replace_thumbnails(_reencoded(batch), LEGACY_PARAMS, THUMB_PARAMS)
        if on_faces is not None:
            on_faces(Progress(CONVERTING, done, total))
    return done


def stored_thumbnail(store: Store, face_id: int) -> bytes | None:
    """The face's stored thumbnail in today's format (one an earlier version stored is
    converted, and stored so); None when it has none."""
    data = store.thumbnail(face_id, THUMB_PARAMS)
    if data is None and convert_thumbnails(store, face_ids=[face_id]):
        data = store.thumbnail(face_id, THUMB_PARAMS)
    return data


def _reencoded(rows: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    for face_id, data in rows:
        try:
            yield face_id, reencode_thumbnail(data)
        except (OSError, ValueError) as exc:
            log.warning("face %d: its stored thumbnail does not decode (%s); it will be cut again", face_id, exc)


def ensure_thumbnails(
    store: Store,
    warnings: list[str] | None = None,
    workers: int | None = None,
    on_photos: ProgressCallback | None = None,
    face_ids: Sequence[int] | None = None,
) -> set[int]:
    """Cut and store the thumbnails the store lacks: of every face of the library's present
    photos, or of ``face_ids`` only. ``workers``: processes that cut them (None: one per
    core for many photos, this process for a few); ``on_photos``: told of the photos cut
    from so far (phase :data:`CUTTING`). Returns the faces left without one (their photo gone or changed since its
    scan: a line each in ``warnings``). Thumbnails an earlier version stored are converted
    first (:func:`convert_thumbnails`)."""
    convert_thumbnails(store, on_photos, face_ids)
    if face_ids is None:
        total = store.missing_thumbnail_photos(THUMB_PARAMS)
        jobs: Iterator[ImageJob] = _missing(store)
    else:
        listed = _jobs_of(store, face_ids)
        total, jobs = len(listed), iter(listed)
    failed: set[int] = set()
    if total == 0:
        return failed
    done = 0
    for cut in cut_images(None, jobs, workers or image_workers(total)):
        store.put_thumbnails(((fid, THUMB_PARAMS, jpeg) for fid, jpeg in cut.thumbs.items()), cut.boxes)
        if warnings is not None:
            warnings.extend(cut.warnings)
        failed.update(cut.failed)
        done += cut.photos
        if on_photos is not None:
            on_photos(Progress(CUTTING, done, total))
    return failed


def _missing(store: Store) -> Iterator[ImageJob]:
    """The photos with a face without a thumbnail, a page at a time (nothing left open
    while the thumbnails of the page before are stored)."""
    after = 0
    while page := store.missing_thumbnails(THUMB_PARAMS, after, _PAGE):
        after = page[-1][0].id
        yield from (ImageJob(photo, faces) for photo, faces in page)


def _jobs_of(store: Store, face_ids: Sequence[int]) -> list[ImageJob]:
    """The given faces without a thumbnail, by photo."""
    have = store.thumbnails(face_ids, THUMB_PARAMS)
    rows = store.face_rows([f for f in face_ids if f not in have])
    jobs: dict[int, ImageJob] = {}
    for row in rows.values():
        jobs.setdefault(row.photo.id, ImageJob(row.photo)).thumbs.append((row.id, row.box))
    return list(jobs.values())


def twin_thumbnails(store: Store, faces: list[Face]) -> list[bytes]:
    """The thumbnails of a copy's faces: its twin's, which the same bytes and the same boxes
    make exactly what a cut would give. All or none: a face of the twin without one (a photo
    whose metadata changed) leaves the copy's faces to the next export, which cuts them."""
    ids = [f.id for f in faces]
    convert_thumbnails(store, face_ids=[i for i in ids if i is not None])
    stored = store.thumbnails([i for i in ids if i is not None], THUMB_PARAMS)
    thumbs = [stored[i] for i in ids if i is not None and i in stored]
    return thumbs if len(thumbs) == len(faces) else []
