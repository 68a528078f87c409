"""The rules a clustering must keep, as links between faces: the user's corrections and
the same-photo rule. Pure functions over arrays; the caller reads the corrections.

Faces that must be one person are collapsed into one super-node (see
:func:`~photocluster.grouping.whispers.collapse`); pairs of super-nodes that must stay
apart become cannot-links for Chinese whispers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from photocluster.core.vectors import pair_distances, take_rows
from photocluster.grouping.arrays import positions
from photocluster.grouping.whispers import collapse


@dataclass(frozen=True)
class Constraints:
    """Must- and cannot-links between the faces of one clustering run (faces by index)."""

    super_of: np.ndarray  # face index -> super-node (faces pinned to one person share one)
    person_of_super: dict[int, int]  # super-node -> pinned person
    cannot: tuple[np.ndarray, np.ndarray]  # super-node pairs that must stay apart
    same_photo_separations: int  # pairs of super-nodes kept apart for sharing a photo
    rejected: dict[int, set[int]]  # face index -> persons it may not join
    # Descriptor distance of each same-photo pair: two different people (self-calibration).
    same_photo_distances: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    # The faces (indices) of each of those pairs, in the same order.
    same_photo_faces: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    )


def keep_apart(labels: np.ndarray, cannot: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``labels`` (one per super-node) with every cannot-link kept: of two partners that
    share a label, the higher one gets a label of its own.

    The grouping keeps the cannot-links itself; this is the guarantee that holds whatever
    grouping ran (two pinned persons never become one, two faces of one photo never one
    person), checked once, vectorised. A node moved to a label of its own shares it with
    nobody, so one pass leaves no clash.
    """
    a, b = cannot
    if len(a) == 0:
        return labels
    clash = labels[a] == labels[b]
    if not clash.any():
        return labels
    out = labels.copy()
    alone = np.unique(np.maximum(a[clash], b[clash]))
    out[alone] = int(labels.max()) + 1 + np.arange(len(alone))
    return out


def is_collage(emb: np.ndarray, threshold: float) -> bool:
    """Whether a photo's faces hold a group of 3+ faces linked under the threshold."""
    if len(emb) < 3:
        return False
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=2)
    adjacency = d < threshold
    seen = np.zeros(len(emb), dtype=bool)
    for start in range(len(emb)):
        if seen[start]:
            continue
        component = {start}
        frontier = [start]
        while frontier:
            node = frontier.pop()
            for nxt in np.flatnonzero(adjacency[node]).tolist():
                if nxt not in component:
                    component.add(nxt)
                    frontier.append(nxt)
        seen[list(component)] = True
        if len(component) >= 3:
            return True
    return False


def same_photo_pairs(photo_ids: np.ndarray, emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of faces (indices) that share a photo, but for collages.

    Vectorised by the number of faces in a photo: a million faces come in a few hundred
    thousand photos, too many for a loop over photos.
    """
    order = np.argsort(photo_ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(photo_ids[order]) != 0])
    sizes = np.diff(np.r_[starts, len(order)])
    out_a, out_b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for size in np.unique(sizes[sizes > 1]).tolist():
        first = starts[sizes == size]
        x, y = np.triu_indices(size, 1)
        a, b = order[first[:, None] + x], order[first[:, None] + y]  # (photos, pairs)
        if size >= 3:
            # A collage needs at least two linked pairs: only such photos are looked at.
            linked = np.concatenate(
                [
                    np.count_nonzero(
                        np.linalg.norm(take_rows(emb, a[s : s + 4096]) - take_rows(emb, b[s : s + 4096]), axis=2)
                        < threshold,
                        1,
                    )
                    for s in range(0, len(a), 4096)
                ]
            )
            maybe = np.flatnonzero(linked >= 2)
            collage = [p for p in maybe.tolist() if is_collage(emb[order[first[p] : first[p] + size]], threshold)]
            keep = np.ones(len(first), dtype=bool)
            keep[collage] = False
            a, b = a[keep], b[keep]
        out_a.append(a.reshape(-1))
        out_b.append(b.reshape(-1))
    return np.concatenate(out_a), np.concatenate(out_b)


def build_constraints(
    face_ids: np.ndarray,
    photo_ids: np.ndarray,
    emb: np.ndarray,
    threshold: float,
    current: Mapping[int, int],
    pins: Mapping[int, int],
    rejections: Iterable[tuple[int, int]],
    facts: Iterable[tuple[int, int]] = (),
) -> Constraints:
    """The user's corrections and the same-photo rule, as must/cannot links between nodes.

    ``current`` is face id -> person id as stored now, ``pins`` face id -> the person the
    user put it in, ``rejections`` (face id, person id) for faces the user took out of a
    person. ``facts`` are (face id, person id) pairs that cannot be, whatever the faces
    look like (:func:`born_rejections`): kept like rejections, but linked to a few anchor
    faces of the person only, since they may be a good part of the library. Faces not in
    ``face_ids`` (photos gone) are ignored.
    """
    index = positions(face_ids)
    pinned = _pinned_faces(index, pins)
    super_of = collapse(len(face_ids), [np.array(v) for v in pinned.values()])
    person_of_super = {int(super_of[v[0]]): p for p, v in pinned.items()}
    # Two faces in one photo are two people, unless the user put them together (mirrors),
    # or the photo is a collage: three or more of its faces within the threshold of each
    # other are one person shown several times, not three look-alikes side by side.
    pa, pb = same_photo_pairs(photo_ids, emb, threshold)
    distances = pair_distances(emb, pa, pb)
    na, nb = super_of[pa], super_of[pb]
    apart = na != nb
    # Faces the user gave to different persons stay apart.
    pairs = list(itertools.combinations(sorted(person_of_super), 2))
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    ra, rb, rejected = _rejection_links(index, super_of, person_of_super, current, rejections)
    if facts:
        fa, fb, impossible = _rejection_links(index, super_of, person_of_super, current, facts, FACT_ANCHORS)
        ra, rb = ra + fa, rb + fb
        for k, persons in impossible.items():
            rejected.setdefault(k, set()).update(persons)
    cannot = (
        np.concatenate([na[apart], np.array(a + ra, dtype=np.int64)]),
        np.concatenate([nb[apart], np.array(b + rb, dtype=np.int64)]),
    )
    return Constraints(super_of, person_of_super, cannot, int(np.count_nonzero(apart)), rejected, distances, (pa, pb))


# Faces of a person that each of its impossible faces (a photo before its birth) is kept
# apart from while grouping; the pinned faces of the person count as one.
FACT_ANCHORS = 16


def born_rejections(face_ids: np.ndarray, days: np.ndarray, births: Mapping[int, int]) -> list[tuple[int, int]]:
    """(face id, person id) for every face in a photo taken (``days``: day ordinals, one per
    face) before the person's birth (``births``: person id -> day ordinal): it cannot be theirs."""
    out: list[tuple[int, int]] = []
    for pid, born in sorted(births.items()):
        out.extend((int(f), pid) for f in face_ids[days < born].tolist())
    return out


def _pinned_faces(index: Mapping[int, int], pins: Mapping[int, int]) -> dict[int, list[int]]:
    """Person -> indices of the faces bound to it: its pins, the faces it had when the user
    last named or corrected it (its anchor). The faces a clustering added since are not
    bound: a loose exploratory run that gave a named person a stranger's faces does not
    keep them there for good; the next run groups them again around the anchor."""
    pinned: dict[int, list[int]] = {}
    for fid, pid in pins.items():
        if fid in index:
            pinned.setdefault(pid, []).append(index[fid])
    return pinned


def _rejection_links(
    index: Mapping[int, int],
    super_of: np.ndarray,
    person_of_super: Mapping[int, int],
    current: Mapping[int, int],
    rejections: Iterable[tuple[int, int]],
    anchors: int | None = None,
) -> tuple[list[int], list[int], dict[int, set[int]]]:
    """The cannot-links (a, b) of the faces taken out of a person, and face index -> the
    persons it was taken out of.

    A face taken out of a person stays apart from that person's faces (as they are now),
    so neither it nor anything pinned with it drags the person along. With ``anchors``,
    from the person's pinned faces and at most that many of its other faces, spread over
    them (the final check in :func:`~photocluster.grouping.identity.assign_persons` keeps
    the face out of the person whatever the grouping did).
    """
    super_of_person = {p: s for s, p in person_of_super.items()}
    a: list[int] = []
    b: list[int] = []
    rejected: dict[int, set[int]] = {}
    members: dict[int, list[int]] | None = None
    for fid, pid in rejections:
        if fid not in index:
            continue
        if members is None:  # most libraries have no rejection: skip the grouping then
            members = {}
            for f, p in current.items():
                if f in index:
                    members.setdefault(p, []).append(index[f])
        rejected.setdefault(index[fid], set()).add(pid)
        node = int(super_of[index[fid]])
        partners = {int(super_of[k]) for k in members.get(pid, [])}
        if anchors is not None and len(partners) > anchors:
            spread = sorted(partners)
            partners = set(spread[:: -(-len(spread) // anchors)])
        if pid in super_of_person:
            partners.add(super_of_person[pid])
        partners.discard(node)
        a.extend([node] * len(partners))
        b.extend(sorted(partners))
    return a, b, rejected
