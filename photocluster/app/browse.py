"""What the review pages show, a page at a time: persons as cards (largest first), a
person's faces (most doubtful first), the unknown faces, and the faces most in doubt.

The static export (:mod:`photocluster.app.export`) and the review app
(:mod:`photocluster.web`) both build their pages from these (the types are
:mod:`photocluster.core.readmodel`'s), and render them with
:mod:`photocluster.exporter.pages`. Every read is bounded: a page of persons, one person's
faces, a page of unknown faces; the faces in doubt are found streaming the library one
person at a time (see :func:`doubts`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np

from photocluster.app.listing import Moments, person_moments
from photocluster.core.ages import photo_day
from photocluster.core.config import DEFAULT_THRESHOLD
from photocluster.core.readmodel import (
    CARDS_PER_PAGE,
    FACES_PER_PAGE,
    Card,
    Doubt,
    FaceItem,
    Page,
    Summary,
    card_of_person,
    clamp_page,
    cover_of,
    page_count,
    slice_page,
)
from photocluster.grouping.doubt import doubt_scores, leave_one_out_distances
from photocluster.grouping.quality import face_quality
from photocluster.store import FaceRow, PersonRow, Store

DOUBTS_SHOWN = 480  # faces in doubt listed at most (the most doubtful ones)
# Faces scored against every other person's centre when looking for doubt: the ones
# farthest from their own person's centre. A face close to its own centre is not in doubt.
_CANDIDATES_PER_DOUBT = 8

# A card's cover is chosen among the person's first faces (by id): a page of the largest
# persons then reads a few thousand faces, not a good part of the library.
_COVER_SAMPLE = 256

# The read model lives in core (the writers render it without importing a use case).
__all__ = [
    "CARDS_PER_PAGE",
    "DOUBTS_SHOWN",
    "FACES_PER_PAGE",
    "Card",
    "Doubt",
    "FaceItem",
    "Page",
    "Summary",
    "card_of",
    "card_of_person",
    "clamp_page",
    "cover",
    "doubts",
    "face_item",
    "page_count",
    "person_cards",
    "person_page",
    "ranked",
    "slice_page",
    "summary",
    "threshold_of",
    "unknown_page",
]


def face_item(row: FaceRow, distance: float = math.nan) -> FaceItem:
    """A face the store read (with its photo) as a page shows it."""
    taken = photo_day(row.photo.taken_at, row.photo.mtime_ns).isoformat()
    return FaceItem(row.id, row.person_id, row.photo.id, row.photo.path, row.box, distance, taken)


def ranked(rows: list[FaceRow], emb: np.ndarray) -> list[FaceItem]:
    """A person's faces, most doubtful (farthest from the mean of its other faces) first."""
    dist = leave_one_out_distances(emb).tolist() if len(rows) else []
    items = [face_item(r, float(d)) for r, d in zip(rows, dist, strict=True)]
    items.sort(key=lambda f: (-f.distance, f.id))
    return items


def card_of(person: PersonRow, faces: list[FaceItem], store: Store | None = None) -> Card:
    """``faces`` ranked by :func:`ranked` (or nearest first). The cover: with ``store``, as
    :func:`cover` chooses it; else the nearest face."""
    front = cover(store, person.id, faces) if store is not None else cover_of(faces)
    return Card(person.id, person.name, person.faces, person.photos, front, person.ignored)


def cover(store: Store, person_id: int, faces: list[FaceItem]) -> FaceItem | None:
    """A person's cover: the face the user chose, while it is still among ``faces``; else the
    best of ``faces`` by :func:`~photocluster.grouping.quality.face_quality` (frontal, large,
    confidently detected), ties going to the face nearest the person's centre."""
    if not faces:
        return None
    chosen = store.chosen_covers([person_id]).get(person_id)
    if chosen is not None:
        for f in faces:
            if f.id == chosen:
                return f
        row = store.face_rows([chosen]).get(chosen)  # not among the faces read for a card
        if row is not None and row.photo.status == "done":
            return face_item(row)
    geometry = store.face_geometry(f.id for f in faces)
    known = [f for f in faces if f.id in geometry]
    if not known:
        return min(faces, key=lambda f: (f.distance, f.id))
    boxes = np.array([geometry[f.id][0].as_list(3) for f in known])
    conf = np.array([geometry[f.id][1] for f in known])
    points = np.stack([geometry[f.id][2] for f in known])
    quality = np.round(face_quality(boxes, conf, points), 6).tolist()
    best = min(range(len(known)), key=lambda k: (-quality[k], known[k].distance, known[k].id))
    return known[best]


def person_cards(store: Store, number: int = 1, per_page: int | None = None) -> Page[Card]:
    """Page ``number`` of the persons (not ignored), largest first (``per_page``: CARDS_PER_PAGE)."""
    per_page = per_page or CARDS_PER_PAGE
    with store.snapshot():
        total = store.person_count()
        number = clamp_page(number, total, per_page)
        rows = store.person_rows(per_page, (number - 1) * per_page)
        cards = [card_of(p, ranked(*store.person_faces(p.id, _COVER_SAMPLE)), store) for p in rows]
    return Page(cards, number, page_count(total, per_page), total)


def person_page(
    store: Store, person_id: int, number: int = 1, per_page: int | None = None
) -> tuple[Card, Page[FaceItem]] | None:
    """A person's card and page ``number`` of its faces, most doubtful first (``per_page``:
    FACES_PER_PAGE); None: no such person."""
    per_page = per_page or FACES_PER_PAGE
    with store.snapshot():
        row = store.person_row(person_id)
        if row is None:
            return None
        faces = ranked(*store.person_faces(person_id))
        born = store.birth_of(person_id)
        card = replace(card_of(row, faces, store), born=None if born is None else born.isoformat())
    return card, slice_page(faces, number, per_page)


def unknown_page(store: Store, number: int = 1, per_page: int | None = None) -> Page[FaceItem]:
    per_page = per_page or FACES_PER_PAGE
    with store.snapshot():
        total = store.unknown_count()
        number = clamp_page(number, total, per_page)
        rows = store.unknown_rows(per_page, (number - 1) * per_page)
    return Page([face_item(r) for r in rows], number, page_count(total, per_page), total)


def summary(store: Store, doubts: int) -> Summary:
    """The persons (not ignored) and faces of the library, counted; ``doubts``: faces in doubt."""
    threshold = store.get_setting("cluster.threshold")
    min_size = store.get_setting("cluster.min_size")
    with store.snapshot():
        persons, faces = store.person_count(), store.faces_in_persons()
        unknown = store.unknown_count()
    return Summary(
        persons=persons,
        faces=faces,
        unknown=unknown,
        doubts=doubts,
        threshold=float(threshold) if threshold and threshold != "None" else None,
        min_size=None if min_size is None else int(min_size),
    )


def threshold_of(store: Store) -> float:
    setting = store.get_setting("cluster.threshold")
    # Empty: the default two-stage clustering; doubt is then measured against the pair threshold.
    return float(setting) if setting and setting != "None" else DEFAULT_THRESHOLD


def doubts(
    store: Store, limit: int = DOUBTS_SHOWN, min_score: float = 0.75, moments: Moments | None = None
) -> list[Doubt]:
    """The faces most in doubt, most doubtful first (as
    :func:`~photocluster.grouping.doubt.doubtful_faces` ranks them), in two streaming passes.

    The first pass sums each person's embeddings (``moments``, when the caller has them
    from the same snapshot: :func:`~photocluster.app.listing.person_moments`); the second
    measures each face against the mean of its person's other faces and keeps the farthest
    few; only those are measured against every other person's centre. Memory: the persons'
    centres plus one person's faces, whatever the library's size.
    """
    with store.snapshot():
        ids_of, counts, sums, _ = moments or person_moments(store)
        if not len(ids_of):
            return []
        persons: list[int] = ids_of.tolist()
        row_of = {p: k for k, p in enumerate(persons)}
        keep = max(limit * _CANDIDATES_PER_DOUBT, 256)
        heap: list[tuple[float, int, int]] = []  # (own distance, face id, person row): the farthest
        for pid, ids, emb in store.person_embeddings():
            own = leave_one_out_distances(emb)
            top = np.argsort(-own, kind="stable")[:keep]
            for k in top.tolist():
                item = (float(own[k]), -int(ids[k]), row_of[pid])
                if len(heap) < keep:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
                else:
                    break
        if not heap:
            return []
        face_ids = [-fid for _, fid, _ in heap]
        col = np.array([row for _, _, row in heap], dtype=np.int64)
        emb_of = _embeddings(store, face_ids)
        rows = store.face_rows(face_ids)
    own, nearest, nearest_d, score = doubt_scores(emb_of, col, sums, counts, threshold_of(store))
    order = np.lexsort((np.array(face_ids), -own, -score))
    out: list[Doubt] = []
    for i in order[:limit].tolist():
        if score[i] < min_score:
            break
        near = None if nearest[i] < 0 else persons[nearest[i]]
        out.append(Doubt(face_item(rows[face_ids[i]], float(own[i])), near, float(nearest_d[i]), float(score[i])))
    return out


def _embeddings(store: Store, face_ids: list[int]) -> np.ndarray:
    found = store.face_embeddings(face_ids)
    return np.stack([found[f] for f in face_ids])
