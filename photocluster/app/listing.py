"""Listing the persons of the library, and the faces whose person is in doubt."""

from __future__ import annotations

import datetime as dt

import numpy as np

from photocluster.core.ages import Age, age_at
from photocluster.core.config import DEFAULT_THRESHOLD
from photocluster.core.types import Person, PersonFace
from photocluster.grouping.doubt import DoubtfulFace, distances_to_mean, doubtful_faces
from photocluster.store import Store

# (person ids, face counts, descriptor sums (k, 128), squared-norm sums), see person_moments.
Moments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def person_moments(store: Store) -> Moments:
    """(person ids, face counts, descriptor sums (k, 128), squared-norm sums) of the persons
    not ignored, by id, over the faces of present photos: streamed a person at a time, so
    memory is the persons', not the faces'."""
    persons: list[int] = []
    counts: list[int] = []
    sums: list[np.ndarray] = []
    squares: list[float] = []
    for pid, _ids, emb in store.person_embeddings():
        persons.append(pid)
        counts.append(len(emb))
        sums.append(emb.sum(axis=0, dtype=np.float64))
        squares.append(float(np.einsum("ij,ij->", emb, emb, dtype=np.float64)))
    dim = 128 if not sums else len(sums[0])
    return (
        np.array(persons, dtype=np.int64),
        np.array(counts, dtype=np.float64),
        np.stack(sums) if sums else np.zeros((0, dim)),
        np.array(squares, dtype=np.float64),
    )


def persons(store: Store, include_unknown: bool = True, include_ignored: bool = False) -> list[Person]:
    """Persons with their faces (nearest to the person's centre first), largest person first.

    The unknown group (faces in no person) comes last, with id None. Ignored persons
    (strangers) are left out unless ``include_ignored``.
    """
    out: list[Person] = []
    unknown: Person | None = None
    with store.snapshot():
        names = store.person_names()
        ignored = store.ignored_persons()
        # One person's faces and embeddings at a time: never every embedding at once.
        for pid, rows, emb in store.face_blocks():
            if pid is not None and pid in ignored and not include_ignored:
                continue
            dist = distances_to_mean(emb) if pid is not None else np.full(len(rows), np.nan, dtype=np.float32)
            faces = [
                PersonFace(f.id, f.photo_id, f.photo_path, f.box, f.confidence, float(d))
                for f, d in zip(rows, dist.tolist(), strict=True)
            ]
            if pid is None:
                unknown = Person(None, None, tuple(faces))
                continue
            faces.sort(key=lambda pf: (pf.distance, pf.face_id))
            out.append(Person(pid, names.get(pid), tuple(faces), ignored=pid in ignored))
    out.sort(key=lambda p: (-len(p.faces), p.id))
    if include_unknown and unknown is not None:
        out.append(unknown)
    return out


def face_ages(
    store: Store, person_id: int, face_ids: list[int]
) -> tuple[dt.date | None, dict[int, tuple[dt.date, Age | None]]]:
    """The person's birth date and, when it has one, face id -> (the day its photo was
    taken, the person's age that day)."""
    born = store.birth_of(person_id)
    if born is None:
        return None, {}
    return born, {f: (day, age_at(born, day)) for f, (_, day) in store.face_days(face_ids).items()}


def faces_in_doubt(store: Store, limit: int = 30, min_score: float = 0.75) -> list[DoubtfulFace]:
    """:func:`~photocluster.grouping.doubt.doubtful_faces` for the persons in ``store``, at
    the threshold they were clustered with."""
    rows = store.faces()
    if not rows:
        return []
    ids = np.array([f.id for f, _ in rows], dtype=np.int64)
    pids = np.array([-1 if f.person_id is None else f.person_id for f, _ in rows], dtype=np.int64)
    emb = np.stack([e for _, e in rows])
    setting = store.get_setting("cluster.threshold")
    # Empty: the default two-stage clustering; doubt is then measured against the pair threshold.
    threshold = float(setting) if setting and setting != "None" else DEFAULT_THRESHOLD
    return doubtful_faces(ids, pids, emb, threshold=threshold, limit=limit, min_score=min_score)
