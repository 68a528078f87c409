"""Listing the persons of the library, and the faces whose person is in doubt."""

from __future__ import annotations

import numpy as np

from photocluster.core.config import DEFAULT_THRESHOLD
from photocluster.core.types import Person, PersonFace
from photocluster.grouping.doubt import DoubtfulFace, distances_to_mean, doubtful_faces
from photocluster.store import Store


def persons(store: Store, include_unknown: bool = True, include_ignored: bool = False) -> list[Person]:
    """Persons with their faces (nearest to the person's centre first), largest person first.

    The unknown group (faces in no person) comes last, with id None. Ignored persons
    (strangers) are left out unless ``include_ignored``.
    """
    names = store.person_names()
    ignored = store.ignored_persons()
    rows = store.faces()
    by_person: dict[int | None, list[tuple[int, np.ndarray]]] = {}
    for k, (face, emb) in enumerate(rows):
        by_person.setdefault(face.person_id, []).append((k, emb))
    out: list[Person] = []
    unknown: Person | None = None
    for pid, members in by_person.items():
        if pid is None:
            dist = np.full(len(members), np.nan, dtype=np.float32)
        else:
            dist = distances_to_mean(np.stack([e for _, e in members]))
        faces = []
        for (k, _), d in zip(members, dist.tolist(), strict=True):
            f = rows[k][0]
            faces.append(PersonFace(f.id, f.photo_id, f.photo_path, f.box, f.confidence, float(d)))
        if pid is not None:
            faces.sort(key=lambda pf: (pf.distance, pf.face_id))
            if pid not in ignored or include_ignored:
                out.append(Person(pid, names.get(pid), tuple(faces), ignored=pid in ignored))
        else:
            unknown = Person(None, None, tuple(faces))
    out.sort(key=lambda p: (-len(p.faces), p.id))
    if include_unknown and unknown is not None:
        out.append(unknown)
    return out


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
