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
import math
import os
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
    """Thumbnails and chips to cut from one photo, decoded once."""

    photo: Photo
    thumbs: list[tuple[PersonFace, str]] = field(default_factory=list)
    chips: list[tuple[PersonFace, str]] = field(default_factory=list)


def write_images(
    store: Store, dest: Path, plan: ImagePlan, previous: dict[str, str], photos: dict[int, Photo], warnings: list[str]
) -> dict[str, str]:
    """Write the planned images that are not in place already. ``previous``: the files of
    an earlier export (file -> content key). Returns the images in place after the run
    (file -> content key); the ones that could not be written have a warning."""
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
            getattr(job, kind).append((f, rel))
    for _pid, job in sorted(jobs.items()):
        for rel in _make_images(store, dest, job, warnings):
            have[rel] = plan.files[rel]
    return have


def _make_images(store: Store, dest: Path, job: _ImageJob, warnings: list[str]) -> set[str]:
    """Write the job's thumbnails and chips; returns the files written."""
    rels = [rel for _, rel in job.thumbs + job.chips]
    problem = photo_problem(job.photo)
    if problem is None:
        scale = max([thumbnail_scale(f.box) for f, _ in job.thumbs] + [_chip_scale(f.box) for f, _ in job.chips])
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
    for face, rel in job.thumbs:
        check_inside(dest, rel, (3,))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest / rel, thumbnail(image, face.box))
        written.add(rel)
    if job.chips:
        # Chips are aligned by the landmarks, which the store has and the listing does not.
        points = {f.id: f.landmarks for f in store.photo_faces(job.photo.id)}
        for face, rel in job.chips:
            check_inside(dest, rel, (3,))
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            chip = face_chip(image.pixels, points[face.face_id] * np.float32(image.scale))
            atomic_write(dest / rel, _jpeg(chip))
            written.add(rel)
    return written
