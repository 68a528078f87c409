"""The face tags a person already has, brought into the library by ``scan``.

Each photo's tags (:mod:`photocluster.detect.tags`) are matched to its detected faces by
overlap. A matched tag names a person and pins the face there (the store keeps a user's
later correction over it); two names in one photo keep their faces apart. A tagged region
without a detected face gets a second look at a higher upsampling (at most
``MAX_SECOND_LOOKS`` a photo: each costs a detection); if that finds nothing either, or the
photo had its share, the tag is kept and reported. A Takeout name (no box) on a photo of one face is a
weak label: it names the person that face ends up in only when the person's weak labels
agree. Regions photocluster's own export wrote are its clustering, not the person's
word: they are not imported.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photocluster.app.weak_names import name_from_weak_labels
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import ImageError
from photocluster.core.progress import Progress, ProgressCallback, report_to
from photocluster.core.readmodel import Conflict
from photocluster.core.types import Box, Face
from photocluster.detect import faces as fc
from photocluster.detect.images import DecodedImage
from photocluster.detect.tags import Tag, read_tags, sources_key
from photocluster.store import Store
from photocluster.store.tags import NewTag, StoredTag

log = logging.getLogger(__name__)

# The phase :func:`import_tags` reports its progress in, one photo at a time.
READING_TAGS = "Reading face tags"

# A tag and a detected face are one face when their boxes overlap at least this much
# (intersection over union), each face taking at most one tag, best overlaps first.
# Measured (benchmarks/tag_overlap.py) on the crowded VOC fixture photos (43 hand-drawn
# face boxes): a tag drawn up to 1.8x the face's box (and shifted up for hair) keeps an
# overlap of 0.31 or more with its face, while its largest overlap with another face is
# 0.19; at 2x the two meet (0.25 against 0.20). A tag drawn larger still gets its face on
# the second look, which finds it in the tagged region.
MATCH_IOU = 0.3
# A face the second look finds that overlaps an already detected face this much is that face.
SAME_FACE_IOU = 0.5
# Second looks a photo gets at most: each is a detection at a higher upsampling (seconds on a
# large photo), and a sidecar may tag any number of regions.
MAX_SECOND_LOOKS = 8


def match_tags(tags: list[Box], faces: list[Box], min_iou: float = MATCH_IOU) -> list[int]:
    """For each tag box, the index of the face box it names, or -1: pairs taken by
    decreasing overlap, each tag and each face once."""
    pairs = sorted(
        ((t.iou(f), i, j) for i, t in enumerate(tags) for j, f in enumerate(faces)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    match = [-1] * len(tags)
    taken: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if match[i] < 0 and j not in taken:
            match[i] = j
            taken.add(j)
    return match


@dataclass
class TagReport:
    """What reading the tags did in one scan."""

    photos: int = 0
    unchanged: int = 0
    tagged_photos: int = 0
    changed_photos: int = 0
    tags: int = 0
    matched: int = 0
    second_look: int = 0
    weak: int = 0
    user_kept: int = 0
    persons_named: int = 0
    own_regions: int = 0
    unplaced: int = 0  # Takeout names on photos of several faces (or none): which face is unknown
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _said: set[str] = field(default_factory=set, repr=False)

    def warn(self, lines: Iterable[str]) -> None:
        """Add warnings, each once: a folder's file (Picasa's) that cannot be read says so
        once, not once per photo."""
        for line in lines:
            if line not in self._said:
                self._said.add(line)
                self.warnings.append(line)

    def as_dict(self) -> dict[str, object]:
        return {
            "photos_read": self.photos,
            "photos_unchanged": self.unchanged,
            "tagged_photos": self.tagged_photos,
            "changed_photos": self.changed_photos,
            "tags": self.tags,
            "matched": self.matched,
            "found_on_second_look": self.second_look,
            "weak": self.weak,
            "user_corrections_kept": self.user_kept,
            "persons_named_from_weak_labels": self.persons_named,
            "own_regions_skipped": self.own_regions,
            "names_without_a_face": self.unplaced,
            "unmatched": [{"path": p, "name": n} for p, n in self.unmatched],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 2),
        }


def _unchanged(old: list[StoredTag], new: list[Tag]) -> bool:
    """The photo's tags read as before, and every matched one still has its face."""
    if len(old) != len(new) or any(t.status == "matched" and t.face_id is None for t in old):
        return False
    rest = list(old)
    for tag in new:
        same = next((o for o in rest if o.same_read(NewTag(tag.name, tag.source, tag.origin, tag.box, ""))), None)
        if same is None:
            return False
        rest.remove(same)
    return True


@dataclass
class _SecondLooks:
    """The second looks at one photo: the photo decoded once, and how many were taken."""

    path: Path
    settings: DetectionSettings
    taken: int = 0
    image: DecodedImage | None = None

    def find(self, region: Box) -> Face | None:
        self.taken += 1
        if self.image is None:
            self.image = fc.second_look_image(self.path, self.settings)
        return fc.find_in_region(self.path, region, self.settings, image=self.image)


def _second_look(store: Store, looks: _SecondLooks, photo_id: int, tag: Tag, taken: set[int]) -> int | None:
    """The face found in the tagged region on a second look: a face the scan had (its box
    just overlaps the tag too little) when no other tag has it, else a new face, stored."""
    assert tag.box is not None
    face = looks.find(tag.box)
    if face is None:
        return None
    for known in store.photo_faces(photo_id):
        if face.box.iou(known.box) >= SAME_FACE_IOU:
            return None if known.id in taken else known.id
    return store.add_face(photo_id, face)


def _settle(
    store: Store, path: Path, photo_id: int, tags: list[Tag], settings: DetectionSettings, report: TagReport
) -> list[NewTag]:
    faces = store.photo_faces(photo_id)
    boxed = [t for t in tags if t.box is not None]
    match = match_tags([t.box for t in boxed if t.box is not None], [f.box for f in faces])
    settled: list[NewTag] = []
    taken = {faces[k].id for k in match if k >= 0 and faces[k].id is not None}
    looks, not_looked = _SecondLooks(path, settings), 0
    for tag, k in zip(boxed, match, strict=True):
        face_id = faces[k].id if k >= 0 else None
        if face_id is None and looks.taken >= MAX_SECOND_LOOKS:
            not_looked += 1
        elif face_id is None:
            try:
                face_id = _second_look(store, looks, photo_id, tag, {f for f in taken if f is not None})
            except Exception as exc:  # noqa: BLE001 - ImageError, or dlib's RuntimeError: the scan goes on
                text = str(exc) if isinstance(exc, ImageError) else f"{os.fsdecode(path)}: {type(exc).__name__}"
                report.warnings.append(f"{text} (second look at the face tagged {tag.name!r})")
                looks.taken = MAX_SECOND_LOOKS  # the photo cannot be decoded: no more tries
            if face_id is not None:
                report.second_look += 1
                taken.add(face_id)
        settled.append(
            NewTag(tag.name, tag.source, tag.origin, tag.box, "matched" if face_id else "unmatched", face_id)
        )
    if not_looked:
        report.warnings.append(
            f"{os.fsdecode(path)}: {not_looked} tagged region(s) without a detected face had no second look "
            f"(at most {MAX_SECOND_LOOKS} a photo)"
        )
    names = [t for t in tags if t.box is None]
    for tag in names:
        # One name, one face: a weak label (nothing says the face is that person's).
        weak = len(faces) == 1 and len(names) == 1 and not boxed
        settled.append(
            NewTag(
                tag.name, tag.source, tag.origin, None, "weak" if weak else "unmatched", faces[0].id if weak else None
            )
        )
    return settled


def _count(report: TagReport, path: Path, tags: list[StoredTag]) -> None:
    report.tagged_photos += bool(tags)
    for t in tags:
        report.tags += 1
        report.matched += t.status == "matched"
        report.weak += t.status == "weak"
        if t.status == "unmatched" and t.box is None:
            report.unplaced += 1
        elif t.status == "unmatched":
            report.unmatched.append((os.fsdecode(path), t.name))


def _read_photo(
    store: Store, path: Path, photo_id: int, old: list[StoredTag], settings: DetectionSettings, report: TagReport
) -> None:
    """Read the photo's tags; when they differ from ``old`` (as stored), settle and store them."""
    read = read_tags(path)
    report.photos += 1
    report.warn(read.warnings)
    tags = [t for t in read.tags if not t.ours]
    report.own_regions += len(read.tags) - len(tags)
    now = old
    if not _unchanged(old, tags):
        report.changed_photos += 1
        settled = _settle(store, path, photo_id, tags, settings, report)
        pinned = store.save_tags(photo_id, settled)
        report.user_kept += sum(p is None for p in pinned.values())
        now = store.photo_tags(photo_id)
    _count(report, path, now)


def _chunks(paths: Iterable[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_tags(
    store: Store,
    paths: Iterable[Path],
    settings: DetectionSettings,
    progress: ProgressCallback | None = None,
) -> TagReport:
    """Read the tags of each photo in ``paths`` the store knows (analysed, present) and
    bring what changed since the last scan into the library. A photo none of whose tag
    sources changed since it was last read (:func:`sources_key`) is not read again.
    ``progress`` is told of each path (the event's ``item``) as it is read.
    Never raises for a file."""
    start = time.perf_counter()
    report = TagReport()
    say = report_to(progress)
    total = len(paths) if isinstance(paths, Sized) else None
    done = 0
    say(Progress(READING_TAGS, done, total))
    stored, keys = store.tagged_photo_ids(), store.tag_read_keys()
    read_keys: list[tuple[int, str]] = []
    for chunk in _chunks(paths, 500):
        present = store.present_photos(chunk)
        for path in chunk:
            done += 1
            say(Progress(READING_TAGS, done, total, item=path))
            photo_id = present.get(path)
            if photo_id is None:
                continue  # not a photo (an error), or gone
            key = sources_key(path)
            old = store.photo_tags(photo_id) if photo_id in stored else []
            if keys.get(photo_id) == key and not any(t.status == "matched" and t.face_id is None for t in old):
                log.debug("%s: its tag sources are unchanged, not read again", path)
                report.unchanged += 1  # nothing it is read from changed: neither did its tags
                _count(report, path, old)
                continue
            _read_photo(store, path, photo_id, old, settings, report)
            read_keys.append((photo_id, key))
        store.save_tag_keys(read_keys)
        read_keys.clear()
    report.persons_named = name_from_weak_labels(store)
    report.seconds = time.perf_counter() - start
    log.info("face tags: %d photos read, %d unchanged", report.photos, report.unchanged)
    return report


# -- what the tags say against what photocluster thinks ----------------------------------------


def _centroids(store: Store) -> tuple[dict[int, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Face id -> row, the embeddings, each row's person (-1: none), the named persons and
    their sums of embeddings (centroids without one face are sums minus it)."""
    face_ids, _photo_ids, person_ids, emb = store.active_faces()
    row = {int(f): k for k, f in enumerate(face_ids.tolist())}
    names = store.person_names()
    persons = np.array(sorted(p for p, n in names.items() if n), dtype=np.int64)
    sums = np.zeros((len(persons), emb.shape[1] if emb.ndim == 2 else 128), dtype=np.float64)
    counts = np.zeros(len(persons), dtype=np.int64)
    index = {int(p): k for k, p in enumerate(persons.tolist())}
    for k, p in enumerate(person_ids.tolist()):
        if p in index:
            sums[index[p]] += emb[k]
            counts[index[p]] += 1
    return row, emb, person_ids, persons, np.column_stack([sums, counts])


def tag_conflicts(store: Store) -> list[Conflict]:
    """Every matched tag whose face photocluster puts with another person (see :class:`Conflict`),
    and every weak label (Takeout) whose face is in a person of another name."""
    tags = [t for t in store.all_tags() if t.status in ("matched", "weak") and t.face_id is not None]
    if not tags:
        return []
    row, emb, person_ids, persons, stats = _centroids(store)
    names = store.person_names()
    out: list[Conflict] = []
    for t in tags:
        where = os.fsdecode(t.photo_path)
        assert t.face_id is not None
        differs = t.person_name is None or t.person_name.casefold() != t.name.casefold()
        if differs and (t.status == "matched" or t.person_name is not None):
            out.append(
                Conflict(
                    "person" if t.status == "matched" else "weak", where, t.name, t.face_id, t.person_id, t.person_name
                )
            )
            continue
        if t.status == "weak":
            continue
        k = row.get(t.face_id)
        if k is None or not len(persons):
            continue
        sums, counts = stats[:, :-1].copy(), stats[:, -1].copy()
        own = np.flatnonzero(persons == person_ids[k])
        sums[own] -= emb[k]
        counts[own] -= 1
        alive = counts > 0
        if not alive[own].all() or alive.sum() < 2:
            continue
        dist = np.full(len(persons), np.inf)
        dist[alive] = np.linalg.norm(sums[alive] / counts[alive, None] - emb[k], axis=1)
        nearest = int(np.argmin(dist))
        if nearest != int(own[0]) and dist[nearest] < dist[own[0]]:
            p = int(persons[nearest])
            out.append(
                Conflict("model", where, t.name, t.face_id, p, names.get(p), float(dist[nearest]), float(dist[own[0]]))
            )
    return out


def tag_listing(store: Store) -> list[dict[str, object]]:
    """Every stored tag of the present photos, as ``photocluster tags`` lists it."""
    return [
        {
            "photo": os.fsdecode(t.photo_path),
            "name": t.name,
            "source": t.source,
            "file": t.origin,
            "box": None if t.box is None else t.box.as_list(),
            "status": t.status,
            "face": t.face_id,
            "person": t.person_id,
            "person_name": t.person_name,
        }
        for t in store.all_tags()
    ]
