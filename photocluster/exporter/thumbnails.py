"""The images an export cuts from the photos: face thumbnails for the review pages
(``.thumbs/<shard>/<face id>_<key>.jpg``, 256 shards by key: a million faces make folders
of about 4,000 files) and, when asked for, aligned face chips
(``crops/<person folder>/<face id>.jpg``).

Thumbnails are small JPEG crops of the face box with a margin, cut from the photo as
displayed (EXIF orientation applied). Each photo is decoded once for all its faces, at the
smallest size that serves them (JPEG draft mode, see
:func:`photocluster.detect.images.load_image`). Every file is named by a key of what it
shows, so a re-export rewrites only the images whose photo, box or settings changed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photocluster.core.errors import ImageError
from photocluster.core.files import atomic_write
from photocluster.core.types import Box, Person, PersonFace, Photo
from photocluster.detect.faces import CHIP_PADDING, CHIP_SIZE, face_chip
from photocluster.detect.images import load_image
from photocluster.detect.thumbnail import THUMB_MARGIN, THUMB_QUALITY, THUMB_SIZE, thumbnail, thumbnail_scale
from photocluster.exporter.folders import CROPS_FOLDER, THUMBS_FOLDER, check_inside, photo_problem, warn
from photocluster.store import Store

CROP_QUALITY = 92


def _chip_scale(box: Box) -> float:
    return min(1.0, CHIP_SIZE / max(box.width, 1.0))


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=CROP_QUALITY)
    return buf.getvalue()


def content_key(kind: str, photo: Photo, box: Box, params: str) -> str:
    """Names what a thumbnail or chip shows: the photo's bytes, the face box and the settings.
    (A face id alone is not enough: SQLite may reuse the id of a deleted face.)"""
    ident = photo.sha256 or f"{os.fsdecode(photo.path)}|{photo.size}|{photo.mtime_ns}"
    text = f"{kind}|{ident}|{box.as_list(2)}|{params}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


@dataclass
class ImagePlan:
    """The thumbnails and chips an export should hold.

    ``files``: file (relative to DEST) -> content key. ``thumb_of``, ``chip_of``: face id ->
    file. ``faces``: (face, file, ``"thumbs"`` or ``"chips"``) in page order.
    """

    files: dict[str, str] = field(default_factory=dict)
    thumb_of: dict[int, str] = field(default_factory=dict)
    chip_of: dict[int, str] = field(default_factory=dict)
    faces: list[tuple[PersonFace, str, str]] = field(default_factory=list)


def plan_images(
    people: list[Person], folders: dict[int | None, str], photos: dict[int, Photo], crops: bool
) -> ImagePlan:
    """A thumbnail for every face, and a chip with ``crops``."""
    thumb_params = f"{THUMB_SIZE}/{THUMB_MARGIN}/{THUMB_QUALITY}"
    chip_params = f"{CHIP_SIZE}/{CHIP_PADDING}/{CROP_QUALITY}"
    plan = ImagePlan()
    for p in people:
        for f in p.faces:
            photo = photos[f.photo_id]
            key = content_key("thumb", photo, f.box, thumb_params)
            rel = f"{THUMBS_FOLDER}/{key[:2]}/{f.face_id}_{key}.jpg"
            plan.files[rel] = key
            plan.thumb_of[f.face_id] = rel
            plan.faces.append((f, rel, "thumbs"))
            if crops:
                key = content_key("chip", photo, f.box, chip_params)
                rel = f"{CROPS_FOLDER}/{folders[p.id]}/{f.face_id}.jpg"
                plan.files[rel] = key
                plan.chip_of[f.face_id] = rel
                plan.faces.append((f, rel, "chips"))
    return plan


@dataclass
class _ImageJob:
    """Thumbnails and chips to cut from one photo, decoded once: (box, file) and, for a
    chip, (landmarks, file). Plain data, so a worker process can take it."""

    photo: Photo
    thumbs: list[tuple[Box, str]] = field(default_factory=list)
    chips: list[tuple[int, Box, str]] = field(default_factory=list)  # (face id, box, file)
    landmarks: dict[int, np.ndarray] = field(default_factory=dict)  # face id -> 5 points, for the chips


# Photos to cut from before worker processes pay off (each costs a second to start), and
# photos handed to a worker at a time.
_POOL_MIN_PHOTOS = 2000
_BATCH = 64


def image_workers(photos: int) -> int:
    """Processes that cut the images of ``photos`` photos: one per core (at most 4) for a
    large export, none (this process) for a small one."""
    if photos < _POOL_MIN_PHOTOS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def write_images(
    store: Store,
    dest: Path,
    plan: ImagePlan,
    previous: dict[str, str],
    photos: dict[int, Photo],
    warnings: list[str],
    workers: int | None = None,
    on_photos: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Write the planned images that are not in place already. ``previous``: the files of
    an earlier export (file -> content key). Returns the images in place after the run
    (file -> content key); the ones that could not be written have a warning.
    ``workers``: processes that cut them (None: :func:`image_workers`). ``on_photos(done,
    total)``: called as photos are done."""
    have: dict[str, str] = {}
    jobs: dict[int, _ImageJob] = {}
    for f, rel, kind in plan.faces:
        entry = dest / rel
        if previous.get(rel) == plan.files[rel] and entry.is_file() and not entry.is_symlink():
            have[rel] = plan.files[rel]
        elif os.path.lexists(entry) and rel not in previous:
            warn(warnings, rel, "not written: a file that photocluster did not write is in the way")
        else:
            job = jobs.setdefault(f.photo_id, _ImageJob(photos[f.photo_id]))
            if kind == "thumbs":
                job.thumbs.append((f.box, rel))
            else:
                job.chips.append((f.face_id, f.box, rel))
    ordered = [job for _, job in sorted(jobs.items())]
    for job in ordered:
        if job.chips:
            # Chips are aligned by the landmarks, which the store has and the listing does not.
            job.landmarks = {int(f.id or 0): f.landmarks for f in store.photo_faces(job.photo.id)}
    done = 0
    for written, lines, photos_done in _cut_all(dest, ordered, workers or image_workers(len(ordered))):
        done += photos_done
        if on_photos is not None:
            on_photos(done, len(ordered))
        for rel in written:
            have[rel] = plan.files[rel]
        for line in lines:
            warnings.append(line)
    return have


def _cut_all(dest: Path, jobs: list[_ImageJob], workers: int) -> Iterator[tuple[set[str], list[str], int]]:
    """(files written, warnings, photos) of each batch of jobs, cut here or by ``workers``
    processes with a bounded number of batches in flight."""
    batches = [jobs[k : k + _BATCH] for k in range(0, len(jobs), _BATCH)]
    if workers <= 1 or len(batches) < 2:
        for batch in batches:
            yield _cut_batch(dest, batch)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = iter(batches)
        running: set[Future[tuple[set[str], list[str], int]]] = set()
        for batch in itertools.islice(pending, 2 * workers):
            running.add(pool.submit(_cut_batch, dest, batch))
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                for batch in itertools.islice(pending, 1):
                    running.add(pool.submit(_cut_batch, dest, batch))


def _cut_batch(dest: Path, jobs: list[_ImageJob]) -> tuple[set[str], list[str], int]:
    warnings: list[str] = []
    written: set[str] = set()
    for job in jobs:
        written |= _make_images(dest, job, warnings)
    return written, warnings, len(jobs)


def _make_images(dest: Path, job: _ImageJob, warnings: list[str]) -> set[str]:
    """Write the job's thumbnails and chips; returns the files written."""
    rels = [rel for _, rel in job.thumbs] + [rel for _, _, rel in job.chips]
    problem = photo_problem(job.photo)
    if problem is None:
        scale = max([thumbnail_scale(b) for b, _ in job.thumbs] + [_chip_scale(b) for _, b, _ in job.chips])
        long_side = max(job.photo.width or 0, job.photo.height or 0)
        max_size = math.ceil(long_side * scale) + 1 if long_side else 1 << 20
        try:
            image = load_image(job.photo.path, max_size, enlarge=False)
        except ImageError as exc:
            problem = exc.reason
    if problem is not None:
        for rel in rels:
            warn(warnings, rel, f"not written: {os.fsdecode(job.photo.path)}: {problem}")
        return set()
    written: set[str] = set()
    for box, rel in job.thumbs:
        check_inside(dest, rel, (3,))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest / rel, thumbnail(image, box))
        written.add(rel)
    for face_id, _, rel in job.chips:
        check_inside(dest, rel, (3,))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        chip = face_chip(image.pixels, job.landmarks[face_id] * np.float32(image.scale))
        atomic_write(dest / rel, _jpeg(chip))
        written.add(rel)
    return written
