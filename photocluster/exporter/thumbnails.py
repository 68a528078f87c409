"""The images cut from the photos: face thumbnails (:func:`cut_images` without a DEST: the
ones the store lacks, which :func:`photocluster.app.thumbs.ensure_thumbnails` stores) and,
when an export asks for them, aligned face chips (``crops/<person folder>/<face id>.jpg``).

A scan stores each face's thumbnail (a small WebP of the face box with a margin, cut from
the photo as displayed) while the photo is decoded anyway; the ones still missing are cut
here, each photo decoded once for all its faces, at the smallest size that serves them (JPEG
draft mode, see :func:`photocluster.detect.images.load_image`), by one worker process per
core when there are many. The export writes a thumbnail as
``.thumbs/<shard>/<face id>_<key>.webp`` (256 shards by key: a million faces make folders of
about 4,000 files), named by a key of what it shows, so a re-export rewrites only the
images whose photo, box or settings changed.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photocluster.core.errors import ImageError
from photocluster.core.files import atomic_write
from photocluster.core.types import Box, Photo
from photocluster.detect.faces import CHIP_SIZE, face_chip
from photocluster.detect.images import load_image
from photocluster.detect.thumbnail import THUMB_SIZE, thumbnail, thumbnail_scale
from photocluster.exporter.folders import check_inside, photo_problem

CROP_QUALITY = 92

__all__ = ["CROP_QUALITY", "THUMB_SIZE", "Cut", "ImageJob", "content_key", "cut_images", "image_workers", "write_chips"]


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
class ImageJob:
    """Thumbnails and chips to cut from one photo, decoded once: (face id, box) and, for a
    chip, (face id, box, file) with the face's landmarks. Plain data, so a worker process
    can take it."""

    photo: Photo
    thumbs: list[tuple[int, Box]] = field(default_factory=list)
    chips: list[tuple[int, Box, str]] = field(default_factory=list)
    landmarks: dict[int, np.ndarray] = field(default_factory=dict)  # face id -> 5 points, for the chips


@dataclass
class Cut:
    """What a batch of jobs gave: chips written, thumbnails cut (face id -> JPEG), the faces
    left without, warnings, photos."""

    written: set[str] = field(default_factory=set)
    thumbs: dict[int, bytes] = field(default_factory=dict)
    boxes: dict[int, Box] = field(default_factory=dict)  # face id -> the box its thumbnail shows
    failed: list[int] = field(default_factory=list)  # faces whose photo could not be used
    warnings: list[str] = field(default_factory=list)
    photos: int = 0


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


def write_chips(dest: Path, jobs: list[ImageJob], warnings: list[str]) -> set[str]:
    """Cut and write the chips of ``jobs`` (one person's, here in this process); returns the
    files written."""
    written: set[str] = set()
    for cut in cut_images(dest, iter(jobs), 1):
        written |= cut.written
        warnings.extend(cut.warnings)
    return written


def _batches(jobs: Iterator[ImageJob]) -> Iterator[list[ImageJob]]:
    while batch := list(itertools.islice(jobs, _BATCH)):
        yield batch


def cut_images(dest: Path | None, jobs: Iterator[ImageJob], workers: int) -> Iterator[Cut]:
    """What each batch of jobs gave, cut here or by ``workers`` processes with a bounded
    number of batches in flight (jobs are read as they are needed). Chips are written under
    ``dest``; thumbnails come back in the cuts."""
    batches = _batches(jobs)
    if workers <= 1:
        for batch in batches:
            yield _cut_batch(dest, batch)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        running: set[Future[Cut]] = set()
        for batch in itertools.islice(batches, 2 * workers):
            running.add(pool.submit(_cut_batch, dest, batch))
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                for batch in itertools.islice(batches, 1):
                    running.add(pool.submit(_cut_batch, dest, batch))


def _cut_batch(dest: Path | None, jobs: list[ImageJob]) -> Cut:
    cut = Cut(photos=len(jobs))
    for job in jobs:
        _make_images(dest, job, cut)
    return cut


def _make_images(dest: Path | None, job: ImageJob, cut: Cut) -> None:
    """Cut the job's thumbnails (into ``cut.thumbs``) and write its chips (under ``dest``)."""
    problem = photo_problem(job.photo)
    if problem is None:
        scale = max([thumbnail_scale(b) for _, b in job.thumbs] + [_chip_scale(b) for _, b, _ in job.chips])
        long_side = max(job.photo.width or 0, job.photo.height or 0)
        max_size = math.ceil(long_side * scale) + 1 if long_side else 1 << 20
        try:
            image = load_image(job.photo.path, max_size, enlarge=False)
        except ImageError as exc:
            problem = exc.reason
    if problem is not None:
        where = f"{os.fsdecode(job.photo.path)}: {problem}"
        cut.failed += [fid for fid, _ in job.thumbs]
        cut.warnings += [f"thumbnail of face {fid}: not written: {where}" for fid, _ in job.thumbs]
        cut.warnings += [f"{rel}: not written: {where}" for _, _, rel in job.chips]
        return
    for fid, box in job.thumbs:
        cut.thumbs[fid] = thumbnail(image, box)
        cut.boxes[fid] = box
    for face_id, _, rel in job.chips:
        assert dest is not None
        check_inside(dest, rel, (3,))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        chip = face_chip(image.pixels, job.landmarks[face_id] * np.float32(image.scale))
        atomic_write(dest / rel, _jpeg(chip))
        cut.written.add(rel)
