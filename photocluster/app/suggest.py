"""``photocluster suggest``: pairs of persons that may be one, most likely first.

The clustering keeps two groups apart when their faces are not close enough on average;
some of those are one person photographed in two conditions. Comparing each person with
its nearest persons (by average distance between their faces) lists them for a person to
answer: yes merges the two, no records that they are two people. Both are corrections
(``history``, ``undo``). Never suggested: two persons sharing a photo, an ignored person,
two persons the user already kept apart, or a person and one with a face photographed
before its birth (``photocluster born``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from photocluster.app.corrections import Correction, merge_persons, resolve_person
from photocluster.app.listing import Moments, person_moments
from photocluster.app.thumbs import ensure_thumbnails
from photocluster.core.config import SUGGEST_MAX_DISTANCE
from photocluster.core.errors import UsageError
from photocluster.core.readmodel import Suggestion
from photocluster.detect.thumbnail import THUMB_PARAMS
from photocluster.exporter.contact_sheet import PairRow, Side, pair_sheet
from photocluster.grouping.linkage import closest_pairs_of, cluster_moments
from photocluster.store import Store

# Suggestion is the read model's (core), re-exported for the callers of suggest.
__all__ = ["SHEET_FACES", "Suggestion", "answer", "contact_sheet", "suggest"]

# Faces of each person a contact sheet shows.
SHEET_FACES = 5


def suggest(
    store: Store, limit: int = 20, max_distance: float = SUGGEST_MAX_DISTANCE, moments: Moments | None = None
) -> list[Suggestion]:
    """Up to ``limit`` pairs of persons closer than ``max_distance`` on average, closest
    first. ``moments``: :func:`~photocluster.app.listing.person_moments` of the same
    snapshot, when the caller has them."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    with store.snapshot():
        persons, n, sums, sq = moments or person_moments(store)
        photo_ids, person_ids = store.photo_persons()
        apart = store.kept_apart() | _impossible_ages(store)
        summaries = {row[0]: row for row in store.person_summaries() if row[0] is not None}
    k = len(persons)
    # Faces of ignored persons are not in the moments: their rows drop out here.
    labels = np.searchsorted(persons, person_ids)
    inside = np.zeros(len(person_ids), dtype=bool)
    found = labels < k
    inside[found] = persons[labels[found]] == person_ids[found]
    exclude = np.union1d(_sharing_a_photo(photo_ids[inside], labels[inside], k), _keys(apart, persons, k))
    a, b, dist = closest_pairs_of(cluster_moments(n, sums, sq), exclude=exclude)
    keep = dist < max_distance
    out = []
    for x, y, d in zip(a[keep][:limit].tolist(), b[keep][:limit].tolist(), dist[keep][:limit].tolist(), strict=True):
        pa, pb = int(persons[x]), int(persons[y])
        sa, sb = summaries.get(pa), summaries.get(pb)
        out.append(
            Suggestion(
                pa,
                pb,
                float(d),
                (sa[1] if sa else None, sb[1] if sb else None),
                (sa[2] if sa else 0, sb[2] if sb else 0),
                (os.fsdecode(sa[4]) if sa and sa[4] else None, os.fsdecode(sb[4]) if sb and sb[4] else None),
            )
        )
    return out


def _sharing_a_photo(photo_ids: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Pair keys ``a * k + b`` (a < b) of the persons that appear in one photo together."""
    pairs = np.unique(np.stack([photo_ids, labels], axis=1), axis=0)
    _, first, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    keys: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    for start, count in zip(first[counts > 1].tolist(), counts[counts > 1].tolist(), strict=True):
        members = pairs[start : start + count, 1]
        x, y = np.triu_indices(count, 1)
        keys.append(np.minimum(members[x], members[y]) * k + np.maximum(members[x], members[y]))
    return np.unique(np.concatenate(keys))


def _impossible_ages(store: Store) -> set[tuple[int, int]]:
    """Pairs of persons (low id first) that cannot be one: one has a face in a photo taken
    before the other's birth, or both have birth dates and they differ."""
    births = store.births()
    if not births:
        return set()
    first = store.first_days()
    pairs = {(min(p, q), max(p, q)) for p, born in births.items() for q, day in first.items() if day < born and p != q}
    pairs |= {(p, q) for p, a in births.items() for q, b in births.items() if p < q and a != b}
    return pairs


def _keys(pairs: set[tuple[int, int]], persons: np.ndarray, k: int) -> np.ndarray:
    index = {int(p): n for n, p in enumerate(persons.tolist())}
    keys = [min(index[p], index[q]) * k + max(index[p], index[q]) for p, q in pairs if p in index and q in index]
    return np.unique(np.array(keys, dtype=np.int64))


def answer(store: Store, a: str, b: str, same: bool) -> Correction:
    """Yes (``same``): merge ``b`` into ``a``. No: keep the two apart for good."""
    if same:
        return merge_persons(store, a, [b])
    pa, pb = resolve_person(store, a), resolve_person(store, b)
    if pa == pb:
        raise UsageError("a person cannot be kept apart from itself")
    command = f"apart {pa} {pb}"
    faces = store.keep_apart(pa, pb, command=command)
    return Correction(command, pa, faces)


def contact_sheet(store: Store, pairs: Sequence[tuple[int, Suggestion]], faces: int = SHEET_FACES) -> bytes:
    """A PNG of each (number, suggestion) of ``pairs``: its two persons' faces side by side
    (up to ``faces`` each, spread over the person's faces), labelled with the number the
    question asks by. Thumbnails the store lacks are cut first and stored; a face whose
    photo is gone since its scan is a grey square."""
    chosen = {pid: _spread(store.person_face_ids(pid), faces) for _, s in pairs for pid in (s.a, s.b)}
    wanted = [f for ids in chosen.values() for f in ids]
    ensure_thumbnails(store, warnings=[], face_ids=wanted)
    thumbs = store.thumbnails(wanted, THUMB_PARAMS)

    def side(pid: int, name: str | None, count: int) -> Side:
        label = f"person {pid}" + (f" ({name})" if name else "") + f", {count} face{'' if count == 1 else 's'}"
        return Side(label, [thumbs.get(f) for f in chosen[pid]])

    rows = [
        PairRow(
            f"#{n}: the same person? (distance {s.distance:.3f})",
            side(s.a, s.names[0], s.faces[0]),
            side(s.b, s.names[1], s.faces[1]),
        )
        for n, s in pairs
    ]
    return pair_sheet(rows, faces)


def _spread(face_ids: list[int], count: int) -> list[int]:
    """Up to ``count`` of ``face_ids``, evenly spread (photos of several occasions rather
    than one burst)."""
    if len(face_ids) <= count:
        return face_ids
    return [face_ids[round(k * (len(face_ids) - 1) / (count - 1))] for k in range(count)] if count > 1 else face_ids[:1]
