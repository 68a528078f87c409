"""Turning clusters into persons in the database, and reading persons back."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from photocluster import cluster as cl
from photocluster.store import Store
from photocluster.types import Person, PersonFace


@dataclass(frozen=True)
class ClusterReport:
    threshold: float
    min_size: int
    faces: int
    persons: int
    unknown: int
    edges: int
    kept_ids: int
    new_persons: int
    seconds: float


def recluster(store: Store, threshold: float = 0.6, min_size: int = 2) -> ClusterReport:
    """Cluster every face of the present photos and store the result as persons.

    Persons keep their id (and name) when a new cluster is mostly their old faces.
    """
    start = time.perf_counter()
    face_ids, _photo_ids, emb = store.active_embeddings()
    i, j, _ = cl.edges(emb, threshold)
    labels = cl.chinese_whispers(len(emb), i, j)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    if len(labels):
        labels = np.where(sizes[labels] >= min_size, labels, cl.UNKNOWN)
    matched = cl.match_to_previous(face_ids, labels, store.face_persons())
    new_labels = sorted({int(x) for x in labels.tolist()} - set(matched) - {cl.UNKNOWN})
    placeholders = {label: -(k + 1) for k, label in enumerate(new_labels)}
    assignment: dict[int, int | None] = {}
    for fid, label in zip(face_ids.tolist(), labels.tolist(), strict=True):
        if label == cl.UNKNOWN:
            assignment[fid] = None
        else:
            assignment[fid] = matched.get(label, placeholders.get(label))
    store.apply_clustering(
        assignment,
        list(placeholders.values()),
        {"cluster.threshold": repr(threshold), "cluster.min_size": str(min_size), "cluster.at": repr(time.time())},
    )
    n_persons = len(set(matched) | set(new_labels))
    return ClusterReport(
        threshold=threshold,
        min_size=min_size,
        faces=len(face_ids),
        persons=n_persons,
        unknown=int(np.sum(labels == cl.UNKNOWN)),
        edges=len(i),
        kept_ids=len(matched),
        new_persons=len(new_labels),
        seconds=time.perf_counter() - start,
    )


def persons(store: Store, include_unknown: bool = True) -> list[Person]:
    """Persons with their faces (nearest to the person's centre first), largest person first.

    The unknown group (faces in no person) comes last, with id None.
    """
    names = store.person_names()
    rows = store.faces()
    by_person: dict[int | None, list[tuple[int, np.ndarray]]] = {}
    for k, (face, _emb) in enumerate(rows):
        by_person.setdefault(face.person_id, []).append((k, _emb))
    out: list[Person] = []
    unknown: Person | None = None
    for pid, members in by_person.items():
        emb = np.stack([e for _, e in members])
        if pid is None:
            dist = np.full(len(members), np.nan, dtype=np.float32)
        else:
            dist = np.linalg.norm(emb - emb.mean(axis=0), axis=1)
        faces = []
        for (k, _), d in zip(members, dist.tolist(), strict=True):
            f = rows[k][0]
            faces.append(PersonFace(f.id, f.photo_id, f.photo_path, f.box, f.confidence, float(d)))
        if pid is not None:
            faces.sort(key=lambda pf: (pf.distance, pf.face_id))
            out.append(Person(pid, names.get(pid), tuple(faces)))
        else:
            unknown = Person(None, None, tuple(faces))
    out.sort(key=lambda p: (-len(p.faces), p.id))
    if include_unknown and unknown is not None:
        out.append(unknown)
    return out
