"""Turning clusters into persons in the database, and reading persons back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from photocluster.core.types import Person, PersonFace
from photocluster.grouping import graph as cl
from photocluster.store.database import Store


@dataclass(frozen=True)
class ClusterReport:
    """What a clustering run did (or, with ``applied=False``, would do)."""

    threshold: float
    min_size: int
    faces: int
    persons: int
    unknown: int
    edges: int
    kept_ids: int
    new_persons: int
    seconds: float
    applied: bool = True
    created: tuple[int, ...] = ()
    merged: tuple[tuple[int, int], ...] = ()
    split: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    faces_moved: int = 0
    faces_new: int = 0
    names_affected: tuple[str, ...] = ()
    same_photo_separations: int = 0

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        d["created"] = list(self.created)
        d["merged"] = [{"person": a, "into": b} for a, b in self.merged]
        d["split"], d["removed"], d["names_affected"] = list(self.split), list(self.removed), list(self.names_affected)
        return d


@dataclass(frozen=True)
class _Constraints:
    super_of: np.ndarray  # face index -> super-node (faces pinned to one person share one)
    person_of_super: dict[int, int]  # super-node -> pinned person
    cannot: tuple[np.ndarray, np.ndarray]  # super-node pairs that must stay apart
    same_photo_pairs: int
    rejected: dict[int, set[int]]  # face index -> persons it may not join


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


def _constraints(
    store: Store,
    face_ids: np.ndarray,
    photo_ids: np.ndarray,
    emb: np.ndarray,
    threshold: float,
    current: dict[int, int],
) -> _Constraints:
    """The user's corrections and the same-photo rule, as must/cannot links between nodes."""
    index = {int(f): k for k, f in enumerate(face_ids.tolist())}
    pinned: dict[int, list[int]] = {}
    for fid, pid in store.pins().items():
        if fid in index:
            pinned.setdefault(pid, []).append(index[fid])
    # A person the user corrected is curated: its current faces stay with its pinned ones
    # (a face moved in joins the person's faces rather than claiming the person for itself).
    # Its members then change only by the user's hand or by new faces joining.
    for fid, pid in current.items():
        if pid in pinned and fid in index:
            pinned[pid].append(index[fid])
    super_of = cl.collapse(len(face_ids), [np.array(v) for v in pinned.values()])
    person_of_super = {int(super_of[v[0]]): p for p, v in pinned.items()}
    super_of_person = {p: s for s, p in person_of_super.items()}
    a: list[int] = []
    b: list[int] = []
    # Two faces in one photo are two people, unless the user put them together (mirrors),
    # or the photo is a collage: three or more of its faces within the threshold of each
    # other are one person shown several times, not three look-alikes side by side.
    pa, pb = _same_photo_pairs(photo_ids, emb, threshold)
    na, nb = super_of[pa], super_of[pb]
    apart = na != nb
    same_photo = int(np.count_nonzero(apart))
    # Faces the user gave to different persons stay apart.
    supers = sorted(person_of_super)
    for x in range(len(supers)):
        for y in range(x + 1, len(supers)):
            a.append(supers[x])
            b.append(supers[y])
    # A face taken out of a person stays apart from that person's faces (as they are now),
    # so neither it nor anything pinned with it drags the person along.
    rejected: dict[int, set[int]] = {}
    members: dict[int, list[int]] | None = None
    for fid, pid in store.rejections():
        if fid not in index:
            continue
        if members is None:
            members = {}
            for f, p in current.items():
                if f in index:
                    members.setdefault(p, []).append(index[f])
        rejected.setdefault(index[fid], set()).add(pid)
        node = int(super_of[index[fid]])
        partners = {int(super_of[k]) for k in members.get(pid, [])}
        if pid in super_of_person:
            partners.add(super_of_person[pid])
        partners.discard(node)
        a.extend([node] * len(partners))
        b.extend(sorted(partners))
    cannot = (
        np.concatenate([na[apart], np.array(a, dtype=np.int64)]),
        np.concatenate([nb[apart], np.array(b, dtype=np.int64)]),
    )
    return _Constraints(super_of, person_of_super, cannot, same_photo, rejected)


def _same_photo_pairs(photo_ids: np.ndarray, emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
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
                    np.count_nonzero(np.linalg.norm(emb[a[s : s + 4096]] - emb[b[s : s + 4096]], axis=2) < threshold, 1)
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


def recluster(
    store: Store,
    threshold: float = 0.6,
    min_size: int = 2,
    apply: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ClusterReport:
    """Cluster every face of the present photos and store the result as persons.

    The user's corrections bind: faces pinned to a person (merge, move) stay together
    and in that person, faces removed from a person never rejoin it, and two faces of
    one photo are never one person unless the user said so. Persons keep their id (and
    name) when a new cluster is mostly their old faces. With ``apply=False`` nothing is
    written: the report says what applying would change. ``progress`` receives a line
    saying what is being done (a million faces take minutes).
    """
    start = time.perf_counter()
    say = progress or (lambda _text: None)
    say("Reading faces")
    # One snapshot: the faces, their persons and the corrections as of one moment, even
    # while a scan commits photos (its new faces join on the next run).
    with store.snapshot():
        face_ids, photo_ids, person_ids, emb = store.active_faces()
        # The current assignment comes with the faces (one read): the constraints and the
        # id matching only ever look at faces of present photos.
        has_person = person_ids >= 0
        previous = dict(zip(face_ids[has_person].tolist(), person_ids[has_person].tolist(), strict=True))
        del person_ids, has_person
        cons = _constraints(store, face_ids, photo_ids, emb, threshold, previous)
    n = len(face_ids)
    i, j, _ = cl.knn_edges(emb, threshold, progress=lambda done: say(f"Finding neighbours of {n:,} faces: {done:.0%}"))
    n_edges = len(i)
    say(f"Grouping {n:,} faces ({n_edges:,} links)")
    del emb  # half a gigabyte at a million faces, not needed from here on
    n_super = int(cons.super_of.max()) + 1 if n else 0
    if n_super == n:  # no pins: every face is a node of its own
        super_labels = cl.chinese_whispers(n, i, j, cannot=cons.cannot)
    else:
        si, sj = cons.super_of[i], cons.super_of[j]
        keep = si != sj
        si, sj = np.minimum(si[keep], sj[keep]), np.maximum(si[keep], sj[keep])
        pair_key, weights = np.unique(si * max(n_super, 1) + sj, return_counts=True)
        super_labels = cl.chinese_whispers(
            n_super, pair_key // max(n_super, 1), pair_key % max(n_super, 1), weights=weights, cannot=cons.cannot
        )
    del i, j
    labels = super_labels[cons.super_of] if n else np.zeros(0, dtype=np.int64)
    # A label holding pinned faces is that person, whatever its size.
    pinned_label = {int(super_labels[s]): p for s, p in cons.person_of_super.items()}
    sizes = np.bincount(labels) if n else np.zeros(0, dtype=np.int64)
    if n:
        small = (sizes[labels] < min_size) & ~np.isin(labels, list(pinned_label))
        labels = np.where(small, cl.UNKNOWN, labels)
    unpinned = np.where(np.isin(labels, list(pinned_label)), cl.UNKNOWN, labels)
    claimed = set(pinned_label.values())
    matched = {
        label: person
        for label, person in cl.match_to_previous(
            face_ids, unpinned, {f: p for f, p in previous.items() if p not in claimed}
        ).items()
    }
    matched.update(pinned_label)
    new_labels = sorted({int(x) for x in labels.tolist()} - set(matched) - {cl.UNKNOWN})
    placeholders = {label: -(k + 1) for k, label in enumerate(new_labels)}
    assignment: dict[int, int | None] = {}
    for k, (fid, label) in enumerate(zip(face_ids.tolist(), labels.tolist(), strict=True)):
        person = None if label == cl.UNKNOWN else matched.get(label, placeholders.get(label))
        if person is not None and person in cons.rejected.get(k, ()):
            person = None  # the user took this face out of that person
        assignment[fid] = person
    diff = _diff(store, assignment, previous)
    if apply:
        say("Saving persons")
        store.apply_clustering(
            assignment,
            list(placeholders.values()),
            {"cluster.threshold": repr(threshold), "cluster.min_size": str(min_size), "cluster.at": repr(time.time())},
        )
    persons_after = {p for p in assignment.values() if p is not None}
    return ClusterReport(
        threshold=threshold,
        min_size=min_size,
        faces=n,
        persons=len(persons_after),
        unknown=sum(1 for p in assignment.values() if p is None),
        edges=n_edges,
        kept_ids=len([p for p in persons_after if p > 0]),
        new_persons=len(new_labels),
        seconds=time.perf_counter() - start,
        applied=apply,
        same_photo_separations=cons.same_photo_pairs,
        **diff,  # type: ignore[arg-type]
    )


def _diff(store: Store, assignment: dict[int, int | None], previous: dict[int, int]) -> dict[str, object]:
    """What an assignment changes against the stored one, in a person's terms."""
    names = store.person_names()
    old_faces: dict[int, list[int]] = {}
    for fid, old in previous.items():
        if fid in assignment:
            old_faces.setdefault(old, []).append(fid)
    moved = new = 0
    for fid, now in assignment.items():
        if fid not in previous:
            new += now is not None
        elif previous[fid] != now:
            moved += 1
    merged, split, removed, affected = [], [], [], set()
    survivors = {p for p in assignment.values() if p is not None}
    for pid, fids in sorted(old_faces.items()):
        targets = [t for t in (assignment[f] for f in fids) if t is not None]
        kinds = set(targets)
        if pid not in survivors:
            if targets:
                merged.append((pid, max(sorted(kinds), key=targets.count)))
            else:
                removed.append(pid)
            if names.get(pid):
                affected.add(str(names[pid]))
        elif len(kinds - {pid}) >= 1 and len(kinds) >= 2:
            split.append(pid)
            if names.get(pid):
                affected.add(str(names[pid]))
    created = sorted({p for p in assignment.values() if p is not None and p < 0}, reverse=True)
    return {
        "created": tuple(created),
        "merged": tuple(merged),
        "split": tuple(split),
        "removed": tuple(removed),
        "faces_moved": moved,
        "faces_new": new,
        "names_affected": tuple(sorted(affected)),
    }


def persons(store: Store, include_unknown: bool = True, include_ignored: bool = False) -> list[Person]:
    """Persons with their faces (nearest to the person's centre first), largest person first.

    The unknown group (faces in no person) comes last, with id None. Ignored persons
    (strangers) are left out unless ``include_ignored``.
    """
    names = store.person_names()
    ignored = store.ignored_persons()
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
            if pid not in ignored or include_ignored:
                out.append(Person(pid, names.get(pid), tuple(faces), ignored=pid in ignored))
        else:
            unknown = Person(None, None, tuple(faces))
    out.sort(key=lambda p: (-len(p.faces), p.id))
    if include_unknown and unknown is not None:
        out.append(unknown)
    return out


@dataclass(frozen=True)
class DoubtfulFace:
    """A face whose place in its person is worth a look.

    ``distance`` is the face's distance to the mean of the *other* faces of its person
    (leave-one-out: a face does not pull its own centre towards itself; 0 for a person of
    one face). ``nearest_person_id`` and ``nearest_distance`` name the closest centre of
    any other person (None and inf when there is none). ``score`` is the larger of
    ``distance / nearest_distance`` (1: as close to another person as to its own) and
    ``distance / threshold`` (1: as far from its centre as the linking threshold).
    """

    face_id: int
    person_id: int
    distance: float
    nearest_person_id: int | None
    nearest_distance: float
    score: float


def doubtful_faces(
    face_ids: np.ndarray,
    person_ids: np.ndarray,
    embeddings: np.ndarray,
    threshold: float = 0.6,
    limit: int = 30,
    min_score: float = 0.75,
) -> list[DoubtfulFace]:
    """The faces most in doubt, most doubtful first: at most ``limit`` with ``score >= min_score``.

    ``person_ids`` holds -1 for faces in no person; they are not ranked. Pure: numpy in,
    dataclasses out. Distances to other persons' centres are computed in row blocks, so
    memory stays bounded for any number of faces and persons.
    """
    face_ids = np.asarray(face_ids, dtype=np.int64)
    person_ids = np.asarray(person_ids, dtype=np.int64)
    emb = np.asarray(embeddings, dtype=np.float64)
    if not (len(face_ids) == len(person_ids) == len(emb)):
        raise ValueError(
            f"face_ids, person_ids and embeddings must have one row per face, got "
            f"{len(face_ids)}, {len(person_ids)} and {len(emb)}"
        )
    member = person_ids >= 0
    if not member.any():
        return []
    ids, emb, pids = face_ids[member], emb[member], person_ids[member]
    persons_sorted, col = np.unique(pids, return_inverse=True)
    counts = np.bincount(col).astype(np.float64)
    sums = np.zeros((len(persons_sorted), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, col, emb)
    centres = sums / counts[:, None]
    n_own = counts[col]
    with np.errstate(divide="ignore", invalid="ignore"):
        loo_centre = (sums[col] - emb) / (n_own - 1)[:, None]
    own = np.where(n_own > 1, np.linalg.norm(emb - np.nan_to_num(loo_centre), axis=1), 0.0)

    nearest = np.full(len(emb), -1, dtype=np.int64)
    nearest_d = np.full(len(emb), np.inf)
    if len(persons_sorted) > 1:
        c_sq = (centres**2).sum(axis=1)
        block = 4096
        for start in range(0, len(emb), block):
            e = emb[start : start + block]
            d2 = (e**2).sum(axis=1)[:, None] + c_sq[None, :] - 2.0 * e @ centres.T
            d2[np.arange(len(e)), col[start : start + block]] = np.inf
            k = np.argmin(d2, axis=1)
            nearest[start : start + block] = k
            nearest_d[start : start + block] = np.sqrt(np.maximum(d2[np.arange(len(e)), k], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(nearest_d) & (nearest_d > 0), own / nearest_d, 0.0)
    far = own / threshold if threshold > 0 else np.zeros_like(own)
    score = np.maximum(ratio, far)
    # Most doubtful first; ties by the larger distance, then by face id (stable output).
    order = np.lexsort((ids, -own, -score))
    out = []
    for i in order[: max(limit, 0)].tolist():
        if score[i] < min_score:
            break
        out.append(
            DoubtfulFace(
                face_id=int(ids[i]),
                person_id=int(pids[i]),
                distance=float(own[i]),
                nearest_person_id=None if nearest[i] < 0 else int(persons_sorted[nearest[i]]),
                nearest_distance=float(nearest_d[i]),
                score=float(score[i]),
            )
        )
    return out


def faces_in_doubt(store: Store, limit: int = 30, min_score: float = 0.75) -> list[DoubtfulFace]:
    """:func:`doubtful_faces` for the persons in ``store``, at its clustering threshold."""
    rows = store.faces()
    if not rows:
        return []
    ids = np.array([f.id for f, _ in rows], dtype=np.int64)
    pids = np.array([-1 if f.person_id is None else f.person_id for f, _ in rows], dtype=np.int64)
    emb = np.stack([e for _, e in rows])
    setting = store.get_setting("cluster.threshold")
    threshold = float(setting) if setting is not None else 0.6
    return doubtful_faces(ids, pids, emb, threshold=threshold, limit=limit, min_score=min_score)
