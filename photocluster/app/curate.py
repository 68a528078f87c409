"""Curating a library: add a face the detector missed, confirm a person's likely faces
("is this Emma?"), split a person that mixes two people, choose a person's cover face, and
find persons by name.

Each change is one correction (``photocluster history``, ``photocluster undo``) and binds
later runs as the other corrections do: a face drawn by the user is kept by every later scan
of its photo (:meth:`~photocluster.store.Store.save_photo`); a "yes" pins the face to the
person, a "no" is a rejection; a split keeps the two persons apart (rejections each way,
cannot-links for every later clustering) until they are merged again; a chosen cover is the
person's row's, kept across clusterings while the face stays in the person.
"""

from __future__ import annotations

import dataclasses
import os
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster.app.browse import face_item, threshold_of
from photocluster.app.corrections import Correction, resolve_person
from photocluster.core.config import LINK_THRESHOLD, DetectionSettings
from photocluster.core.errors import NameTakenError, NotFoundError, UsageError
from photocluster.core.readmodel import Candidate, PhotoFace, PhotoView
from photocluster.core.types import Box, Photo, person_label
from photocluster.core.vectors import blocked_knn
from photocluster.grouping.doubt import leave_one_out_distances
from photocluster.store import Store

# The detector's confidence given to a face the user drew: the user vouches for it, so
# clustering links it like a clear detection (not as a weak one, see grouping.grouper).
ADDED_CONFIDENCE = 1.0
# A drawn box smaller than this (photo pixels) is no face the descriptor can tell.
MIN_BOX = 12
# A drawn box overlapping a face of the photo this much is that face.
SAME_FACE_IOU = 0.5
# Candidates of the confirm queue: faces within this distance of the person's centre (the
# mean of its faces: same person is usually under 0.45 from it, another over 0.6).
QUEUE_RADIUS = 0.6
# Members of a person this far from the mean of its other faces are asked about.
MEMBER_DOUBT = 0.4
QUEUE_MAX = 500
# The long side of a photo as its page shows it (pixels).
PREVIEW_SIZE = 1600


@dataclass(frozen=True)
class AddedFace:
    """A face the user drew: its id, photo, box (photo pixels) and person (None: unknown)."""

    face_id: int
    photo: Path
    box: Box
    person_id: int | None
    command: str

    def as_dict(self) -> dict[str, object]:
        return {
            "face": self.face_id,
            "photo": os.fsdecode(self.photo),
            "box": self.box.as_list(),
            "person": self.person_id,
            "command": self.command,
        }


def settings_of(key: str | None) -> DetectionSettings:
    """The detection settings a photo was analysed with, from their :attr:`~DetectionSettings.key`
    (``cnn/max1600/up1/v2``); the defaults for a key that does not parse."""
    try:
        detector, size, up, *_ = (key or "").split("/")
        upsample = DetectionSettings.parse_upsample(up.removeprefix("up"))
        return DetectionSettings(detector=detector, max_size=int(size.removeprefix("max")), upsample=upsample)
    except (ValueError, UsageError):
        return DetectionSettings()


def find_photo(store: Store, photo: str | os.PathLike[str] | int) -> tuple[Photo, str | None]:
    """A scanned photo, by id or path, and the settings key it was analysed with."""
    if isinstance(photo, int):
        found = store.photo_and_settings(photo)
        if found is None:
            raise NotFoundError(f"no photo with id {photo}")
    else:
        path = Path(photo).expanduser()
        found = store.photo_by_path(path.resolve()) or store.photo_by_path(path.absolute())
        if found is None:
            raise NotFoundError(f"{os.fsdecode(photo)}: not scanned yet (run photocluster scan on it)")
    if found[0].status != "done":
        raise UsageError(f"{os.fsdecode(found[0].path)}: {found[0].status} ({found[0].error or 'not readable'})")
    return found


def parse_box(text: str) -> Box:
    """``left,top,right,bottom`` in photo pixels."""
    parts = text.replace(" ", "").split(",")
    try:
        left, top, right, bottom = (float(p) for p in parts)
        return Box(left, top, right, bottom)
    except ValueError:
        raise UsageError(f"a box is four numbers left,top,right,bottom (photo pixels), got {text!r}") from None


def add_face(
    store: Store,
    photo: str | os.PathLike[str] | int,
    box: Box,
    person: str | None = None,
    engine: str = "auto",
) -> AddedFace:
    """Add the face the detector missed in ``box`` (displayed-photo pixels) of a scanned
    photo: aligned by dlib's shape predictor inside the box and described with the same six
    views as a scan (the photo decoded as its scan decoded it), so that it groups like any
    face. ``person`` (an id or a name; a name no one has yet makes a new person) pins it there.
    One correction: undo deletes the face."""
    from photocluster.detect.faces import embed_box
    from photocluster.detect.images import load_image
    from photocluster.detect.thumbnail import THUMB_PARAMS, thumbnail

    found, key = find_photo(store, photo)
    width, height = found.width or 0, found.height or 0
    clipped = Box(max(0.0, box.left), max(0.0, box.top), min(float(width), box.right), min(float(height), box.bottom))
    if clipped.width < MIN_BOX or clipped.height < MIN_BOX:
        raise UsageError(
            f"{os.fsdecode(found.path)}: the box {box.as_list()} leaves under {MIN_BOX} pixels a side "
            f"inside the photo ({width}x{height})"
        )
    for known in store.photo_faces(found.id):
        if known.box.iou(clipped) >= SAME_FACE_IOU:
            raise UsageError(f"{os.fsdecode(found.path)}: face {known.id} is there already")
    pid, new_name = _person_or_new_name(store, person)
    settings = settings_of(key)
    image = load_image(found.path, settings.max_size, enlarge=settings.upsample is None)
    face = dataclasses.replace(embed_box(image, clipped, engine), confidence=ADDED_CONFIDENCE)
    box_text = ",".join(f"{v:g}" for v in clipped.as_list(0))
    command = f"add-face {found.id} {box_text}" + (
        f" {pid}" if pid is not None else f" {new_name!r}" if new_name else ""
    )
    face_id = store.add_user_face(
        found.id, face, pid, thumbnail(image, clipped), THUMB_PARAMS, new_name=new_name, command=command
    )
    row = store.face_row(face_id)
    return AddedFace(face_id, found.path, clipped, None if row is None else row[1], command)


def _person_or_new_name(store: Store, person: str | None) -> tuple[int | None, str | None]:
    """(the person ``person`` names, None), or (None, the name) for a name no one has."""
    if person is None or not person.strip():
        return None, None
    try:
        return resolve_person(store, person), None
    except NotFoundError:
        clean = " ".join(person.split())
        if clean.removeprefix("person_").isdigit():
            raise
        return None, clean


def split_person(store: Store, person: str, face_ids: Collection[int], name: str | None = None) -> Correction:
    """``face_ids`` (some of the person's faces) become a new person (named ``name``), kept
    apart from the person they leave by every later run until the two are merged again."""
    pid = resolve_person(store, person)
    chosen = sorted(set(face_ids))
    mine = set(store.person_face_ids(pid))
    if not chosen:
        raise UsageError("select the faces to make a new person of")
    strangers = [f for f in chosen if f not in mine]
    if strangers:
        raise UsageError(f"face {strangers[0]} is not in person {pid}")
    if len(chosen) == len(mine):
        raise UsageError(f"those are all the faces of person {pid}: select only the ones of the other person")
    clean = " ".join((name or "").split()) or None
    if clean is not None:
        holders = store.persons_named(clean)
        if holders:
            raise NameTakenError(pid, clean, holders)
    command = f"split {pid} {' '.join(map(str, chosen))}" + (f" {clean!r}" if clean else "")
    new = store.split_person(pid, chosen, clean, command=command)
    return Correction(command, new, len(chosen), f"faces {', '.join(map(str, chosen))} are person {new} now")


def choose_cover(store: Store, person: str, face_id: int | None) -> Correction:
    """The face ``person``'s card shows; None: the best face again (see :func:`~photocluster.app.browse.cover`)."""
    pid = resolve_person(store, person)
    if face_id is not None and face_id not in set(store.person_face_ids(pid)):
        raise UsageError(f"face {face_id} is not in person {pid}")
    command = f"cover {pid} {face_id if face_id is not None else 'auto'}"
    store.set_cover(pid, face_id, command=command)
    return Correction(command, pid, 0 if face_id is None else 1)


# -- the confirm queue ------------------------------------------------------------------


def confirm_queue(store: Store, person_id: int, skipped: Collection[int] = ()) -> list[Candidate]:
    """The faces most likely the person's that no one confirmed yet, the answers that change
    the most first.

    Candidates: faces in no person within :data:`QUEUE_RADIUS` of the person's centre (not
    rejected from it, not in a photo where the person already is), and the person's own
    faces not pinned and over :data:`MEMBER_DOUBT` from the centre of its other faces. An
    answer changes something when it is a "yes" for a face in no person and a "no" for a
    member: each candidate's chance of that (from its distance) times the faces it likely
    carries along (1 + the other candidates within the link threshold of it, which a pinned
    face draws in at the next clustering) is its priority.
    """
    with store.snapshot():
        rows, emb = store.person_faces(person_id)
        if not rows:
            return []
        pinned = store.pinned_faces(person_id)
        rejected = store.rejected_faces(person_id)
        photos = store.person_photos(person_id)
        loose_ids, loose_photos, loose = store.loose_faces()
        radius = max(QUEUE_RADIUS, threshold_of(store))
        centre = emb.astype(np.float64).mean(axis=0)
        d_loose = np.linalg.norm(loose.astype(np.float64) - centre, axis=1) if len(loose) else np.zeros(0)
        keep = [
            k
            for k in np.argsort(d_loose, kind="stable").tolist()
            if d_loose[k] < radius
            and int(loose_ids[k]) not in rejected
            and int(loose_photos[k]) not in photos
            and int(loose_ids[k]) not in skipped
        ][:QUEUE_MAX]
        own = leave_one_out_distances(emb) if len(emb) > 1 else np.zeros(len(emb))
        members = [
            k
            for k in np.argsort(-own, kind="stable").tolist()
            if own[k] > MEMBER_DOUBT and rows[k].id not in pinned and rows[k].id not in skipped
        ][:QUEUE_MAX]
        loose_rows = store.face_rows(int(loose_ids[k]) for k in keep)
    items = [(face_item(loose_rows[int(loose_ids[k])]), False, float(d_loose[k])) for k in keep]
    items += [(face_item(rows[k], float(own[k])), True, float(own[k])) for k in members]
    if not items:
        return []
    vectors = np.concatenate([loose[keep], emb[members]]).astype(np.float32)
    _, near = blocked_knn(vectors, vectors, min(len(vectors), 16))
    affected = (near < LINK_THRESHOLD).sum(axis=1).tolist()  # itself included (distance 0)
    out = []
    for (face, member, dist), n in zip(items, affected, strict=True):
        likely = min(1.0, max(0.0, 1.0 - dist / radius))
        change = (1.0 - likely) if member else likely
        out.append(Candidate(face, member, dist, int(n), round(change * n, 6)))
    out.sort(key=lambda c: (-c.priority, c.distance, c.face.id))
    return out


def confirm(store: Store, person: str, face_id: int, yes: bool) -> Correction:
    """The answer to "is this face the person's?": yes pins it there (moving it in when it is
    elsewhere); no takes it out if it is in, and keeps it out for good (a rejection)."""
    pid = resolve_person(store, person)
    row = store.face_row(face_id)
    if row is None:
        raise NotFoundError(f"no face with id {face_id}")
    current = row[1]
    if yes:
        command = f"confirm {face_id} {pid}"
        store.move_face(face_id, pid, current if current not in (None, pid) else None, command=command)
    else:
        command = f"reject {face_id} {pid}"
        store.reject_face(face_id, pid, command=command)
    return Correction(command, pid, 1)


# -- search -----------------------------------------------------------------------------


def folded(text: str) -> str:
    """``text`` for comparing names: accents dropped (NFKD, then no combining marks) and
    case folded, so that "zoé", "ZOE" and "Zoe" are one."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_persons(store: Store, query: str, limit: int = 20) -> list[tuple[int, str]]:
    """(id, name) of the persons whose name, or a word of it, starts with ``query`` (case
    and accents ignored): whole-name matches first, then by name."""
    q = " ".join(folded(query).split())
    if not q:
        return []
    hits = []
    for pid, name in store.named_persons():
        f = " ".join(folded(name).split())
        if f.startswith(q):
            hits.append((0, f, pid, name))
        elif any(word.startswith(q) for word in f.split()[1:]):
            hits.append((1, f, pid, name))
    hits.sort()
    return [(pid, name) for _, _, pid, name in hits[:limit]]


# -- a photo's page ---------------------------------------------------------------------


def photo_view(store: Store, photo_id: int) -> PhotoView:
    """A scanned photo and its faces (by position, left to right), for its page."""
    found, _ = find_photo(store, photo_id)
    faces = store.photo_faces(photo_id)
    rows = store.face_rows(f.id for f in faces if f.id is not None)
    drawn = store.added_faces(photo_id)
    names = store.names_of({f.person_id for f in faces if f.person_id is not None})
    items = []
    for f in sorted(faces, key=lambda f: (f.box.left, f.box.top, f.id or 0)):
        if f.id is None or f.id not in rows:
            continue
        label = None if f.person_id is None else person_label(f.person_id, names.get(f.person_id))
        items.append(PhotoFace(face_item(rows[f.id]), f.person_id, label, f.id in drawn))
    return PhotoView(found.id, found.path, found.width or 0, found.height or 0, items)


def photo_preview(store: Store, photo_id: int, long_side: int = PREVIEW_SIZE) -> bytes:
    """The photo as displayed (EXIF orientation applied, as its face boxes are), a JPEG of
    ``long_side`` pixels at most: what its page shows, whatever the file's format."""
    import io

    from PIL import Image

    from photocluster.detect.images import load_image

    found, _ = find_photo(store, photo_id)
    image = load_image(found.path, long_side, enlarge=False)
    out = io.BytesIO()
    Image.fromarray(image.pixels).save(out, "JPEG", quality=85)
    return out.getvalue()
