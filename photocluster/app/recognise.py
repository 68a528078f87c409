"""Recognising known people: new faces joining named persons, `find` and `who`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster.core.config import DEFAULT_THRESHOLD, DetectionSettings
from photocluster.core.errors import ConcurrentChangeError, NotFoundError
from photocluster.core.types import EMBEDDING_DIM, Box
from photocluster.core.vectors import blocked_knn
from photocluster.store import Store

KNN = 5


def _blocked_knn(queries: np.ndarray, base: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` nearest ``base`` rows for every query, nearest first."""
    return blocked_knn(queries, base, k, block)


def _vote(neighbour_persons: np.ndarray, neighbour_dist: np.ndarray, threshold: float) -> tuple[int, float] | None:
    """Majority person among the neighbours closer than ``threshold`` (ties: the closer)."""
    close = neighbour_dist < threshold
    if not close.any():
        return None
    votes: dict[int, list[float]] = {}
    for p, d in zip(neighbour_persons[close].tolist(), neighbour_dist[close].tolist(), strict=True):
        votes.setdefault(int(p), []).append(float(d))
    person, ds = min(votes.items(), key=lambda kv: (-len(kv[1]), float(np.mean(kv[1]))))
    # A clear majority of the near neighbours, not just the single closest face.
    if 2 * len(ds) <= int(close.sum()):
        return None
    return person, float(np.mean(ds))


def assign_new_faces(store: Store, threshold: float | None = None, k: int = KNN) -> int:
    """New faces in no person join a *named* person when most of their k nearest named
    faces within the threshold are that person's. Respects removals, birth dates and the
    same-photo rule. Returns how many faces were assigned.

    "New" means added since the last call (a watermark in the settings), so a scan of a
    few photos in a library of a million faces compares a few faces, not every face that
    is in no person; `clusters` reconsiders everything.

    The faces, persons and corrections are read in one snapshot; when a correction (or a
    clustering) changes the persons before the result is written, it is computed again
    from the new state, up to ``WRITE_ATTEMPTS`` times (then ConcurrentChangeError).
    """
    if threshold is None:
        saved = store.get_setting("cluster.threshold")
        threshold = float(saved) if saved else DEFAULT_THRESHOLD
    for _ in range(WRITE_ATTEMPTS):
        with store.snapshot():
            generation = store.generation()
            after = int(store.get_setting(_WATERMARK) or 0)
            newest = store.max_face_id()
            assignment = _recognise(store, after, threshold, k)
        try:
            store.assign_faces(assignment, {_WATERMARK: str(max(newest, after))}, generation=generation)
        except ConcurrentChangeError:
            continue
        return len(assignment)
    raise ConcurrentChangeError(
        f"recognition gave up: the persons changed {WRITE_ATTEMPTS} times while it ran; "
        "the new faces stay in no person until the next scan or `photocluster clusters`"
    )


# How many times a result is computed again when corrections keep changing the persons.
WRITE_ATTEMPTS = 5


def _recognise(store: Store, after: int, threshold: float, k: int) -> dict[int, int]:
    """face id -> named person, for the loose faces above the watermark ``after``."""
    assignment: dict[int, int] = {}
    loose_ids, loose_photos, loose = store.loose_faces(after)
    base_person, base = (
        store.named_faces()
        if len(loose_ids)
        else (np.zeros(0, dtype=np.int64), np.zeros((0, EMBEDDING_DIM), dtype=np.float32))
    )
    if len(base):
        idx, dist = _blocked_knn(loose, base, k)
        rejected: dict[int, set[int]] = {}
        for fid, pid in store.rejections():
            rejected.setdefault(fid, set()).add(pid)
        taken = store.persons_in_photos(loose_photos.tolist())
        # A face in a photo taken before a person's birth is not theirs, however alike.
        births = store.births()
        days = store.photo_days(loose_photos.tolist()) if births else {}
        for row, (face_id, photo_id) in enumerate(zip(loose_ids.tolist(), loose_photos.tolist(), strict=True)):
            vote = _vote(base_person[idx[row]], dist[row], threshold)
            if vote is None:
                continue
            person = vote[0]
            if person in rejected.get(face_id, ()) or (photo_id, person) in taken:
                continue
            if person in births and days[photo_id] < births[person]:
                continue
            taken.add((photo_id, person))
            assignment[face_id] = person
    return assignment


# The newest face id that assign_new_faces has looked at.
_WATERMARK = "recognition.after_face"


@dataclass(frozen=True)
class Match:
    person_id: int
    name: str | None
    distance: float
    is_match: bool
    photos: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "photos": list(self.photos)}


@dataclass(frozen=True)
class FoundFace:
    box: Box
    matches: tuple[Match, ...]

    def as_dict(self) -> dict[str, object]:
        return {"box": self.box.as_list(), "matches": [m.as_dict() for m in self.matches]}


def find(
    store: Store,
    image: str | os.PathLike[str],
    top: int = 3,
    threshold: float | None = None,
    settings: DetectionSettings | None = None,
    max_photos: int = 5,
) -> list[FoundFace]:
    """For each face in ``image`` (scanned or not), the closest persons: a person's distance
    is that of its nearest face; ``is_match`` when it is below the threshold."""
    from photocluster.detect.faces import analyze_file

    if threshold is None:
        saved = store.get_setting("cluster.threshold")
        threshold = float(saved) if saved else DEFAULT_THRESHOLD
    path = Path(image)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    analysis = analyze_file(path, settings or DetectionSettings())
    rows = [(f, e) for f, e in store.faces() if f.person_id is not None]
    names = store.person_names()
    ignored = store.ignored_persons()
    rows = [(f, e) for f, e in rows if f.person_id not in ignored]
    out = []
    base = np.stack([e for _, e in rows]) if rows else np.zeros((0, 128), dtype=np.float32)
    for face in analysis.faces:
        matches: list[Match] = []
        if len(base):
            d = np.linalg.norm(base - face.embedding[None, :], axis=1)
            best: dict[int, float] = {}
            photos: dict[int, list[tuple[float, str]]] = {}
            for (f, _), dist in zip(rows, d.tolist(), strict=True):
                pid = int(f.person_id)  # type: ignore[arg-type]
                best[pid] = min(best.get(pid, np.inf), dist)
                photos.setdefault(pid, []).append((dist, os.fsdecode(f.photo_path)))
            for pid, dist in sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:top]:
                listed = tuple(dict.fromkeys(p for _, p in sorted(photos[pid])))[:max_photos]
                matches.append(Match(pid, names.get(pid), round(dist, 4), dist < threshold, listed))
        out.append(FoundFace(face.box, tuple(matches)))
    return out


def who(store: Store, photo: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The faces of a scanned photo and whose they are."""
    found = store.photo_by_path(Path(photo))
    if found is None:
        raise NotFoundError(f"{os.fsdecode(photo)}: not scanned yet (run photocluster scan on it)")
    names = store.person_names()
    return [
        {
            "face": f.id,
            "box": f.box.as_list(),
            "person": f.person_id,
            "name": names.get(f.person_id) if f.person_id is not None else None,
        }
        for f in store.photo_faces(found[0].id)
    ]
