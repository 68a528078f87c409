"""Clustering the library: read the faces and the user's corrections, group them
(:mod:`photocluster.grouping`), and store the result as persons."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np

from photocluster.app.weak_names import name_from_weak_labels
from photocluster.core.config import DEFAULT_MIN_SIZE
from photocluster.core.errors import ConcurrentChangeError
from photocluster.core.memory import freed_blocks_kept, release_freed_memory
from photocluster.core.progress import Progress, ProgressCallback, report_to
from photocluster.grouping.arrays import positions, rows_of
from photocluster.grouping.calibration import ImpostorCheck, impostor_check
from photocluster.grouping.constraints import Constraints, born_rejections, build_constraints
from photocluster.grouping.graph import Edges, SearchIndex, knn_graph, query_neighbourhoods, union_edges
from photocluster.grouping.grouper import Method, Policy, crowding, crowding_of_new, group
from photocluster.grouping.identity import Assignment, PlanDiff, assign_persons, plan_diff
from photocluster.grouping.incremental import HeldNodes, held_nodes, incremental_constraints, place
from photocluster.grouping.linkage import KnownSums
from photocluster.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterReport:
    """What a clustering run did (or, with ``applied=False``, would do)."""

    threshold: float | None
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
    revived: tuple[int, ...] = ()  # ids an earlier run emptied, given back to their faces
    merged: tuple[tuple[int, int], ...] = ()
    split: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    faces_moved: int = 0
    faces_new: int = 0
    names_affected: tuple[str, ...] = ()
    same_photo_separations: int = 0
    operating_point: dict[str, object] = field(default_factory=dict)
    mode: str = "full"  # "full": every face grouped again; "incremental": the new faces placed
    why: str = ""  # why that mode
    faces_added: int = 0  # faces added since the last clustering (what an incremental run places)

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        d["created"], d["revived"] = list(self.created), list(self.revived)
        d["merged"] = [{"person": a, "into": b} for a, b in self.merged]
        d["split"], d["removed"], d["names_affected"] = list(self.split), list(self.removed), list(self.names_affected)
        return d


def recluster(
    store: Store,
    threshold: float | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    apply: bool = True,
    progress: ProgressCallback | None = None,
    method: Method | str = Method.TWO_STAGE,
    full: bool = False,
) -> ClusterReport:
    """Cluster the faces of the present photos and store the result as persons.

    ``method="two-stage"`` (the default) clusters in two stages that hold in a library of
    thousands of people (:mod:`photocluster.grouping.grouper`); ``threshold`` is its
    operating point on dlib's pair scale (None: 0.6, the tuned default; lower is stricter,
    higher looser: every threshold of the method moves in proportion).
    ``method="whispers"`` links every pair of faces closer than ``threshold`` (plain
    Chinese whispers). Both are stored, so recognition, ``find``, ``suggest`` and the doubt
    measure later compare at the same operating point.

    Incremental by default: when the library was clustered before with the same settings,
    only the faces added since are placed (:mod:`photocluster.grouping.incremental`),
    joining persons or forming new ones by the same rules (each face placed with the
    crowding factor its neighbours in the whole library give it), and no face already in
    a person moves. A full run groups every face again: asked with ``full=True``, or when
    there is no earlier clustering, when the settings differ from its, when corrections
    were made since, or when the new faces are more than :data:`FULL_ABOVE` of the
    library. The report says which ran and why.

    The user's corrections bind: the faces a person had when the user named or last
    corrected it (name, merge, move, ignore) stay together and in that person, whatever
    ``min_size`` or ``threshold``; faces removed from a person never rejoin it, and two
    faces of one photo are never one person unless the user said so. Other persons keep
    their id when a new cluster is mostly their faces, and take it back when a later run
    finds the faces an exploratory run scattered (see
    :mod:`photocluster.grouping.identity`). With ``apply=False`` nothing is
    written: the report says what applying would change. ``progress`` is told each step
    (a million faces take minutes; the faces of a scan, seconds).
    """
    start = time.perf_counter()
    policy = Policy.at(threshold, method)
    say = report_to(progress)
    log.info("clustering: %s, clusters under %d faces are unknown", policy.as_dict()["method"], min_size)
    for _ in range(WRITE_ATTEMPTS):
        # Read before the snapshot: any correction after it, even one the snapshot saw,
        # makes the write-back below refuse (and this loop group again): never the reverse.
        generation = store.generation()
        say(Progress("Reading faces"))
        # The read's buffers (a few megabytes for each few thousand faces, on two threads)
        # kept for the next, not mapped afresh: 160,000 page faults against 195,000-225,000.
        with freed_blocks_kept():
            lib = _read_library(store, policy)
        mode, why = _choose_mode(lib, policy, min_size, full)
        log.info("clustering %s: %s", mode, why)
        if mode == FULL:
            plan, n_edges, cons, check, lists = _plan_full(lib, policy, min_size, progress)
        else:
            with freed_blocks_kept():  # blocks of a few sizes, allocated and freed thousands of times
                plan, n_edges, cons, check, lists = _plan_incremental(lib, policy, min_size, progress)
        previous = lib.previous if mode == FULL else lib.previous_of(plan.persons)
        diff = plan_diff(plan.persons, previous, lib.names)
        if not apply:
            break
        say(Progress("Saving persons"))
        try:
            store.apply_clustering(
                # An incremental run's faces that stay as they were (most of those it
                # placed stay in no person) are not looked up again in the store.
                plan.persons if mode == FULL else _changes(plan.persons, previous),
                list(plan.new_persons),
                {
                    "cluster.threshold": "" if threshold is None else repr(threshold),
                    "cluster.method": str(policy.method),
                    "cluster.min_size": str(min_size),
                    "cluster.at": repr(time.time()),
                    # The faces this clustering saw: the next run places those above.
                    FACES_UPTO: str(max(lib.faces_upto, int(lib.face_ids.max()) if len(lib.face_ids) else 0)),
                    CORRECTIONS: lib.corrections,
                },
                generation=generation,
                revived=plan.revived,
            )
            # Takeout names (weak labels) name the persons whose faces now agree on one.
            name_from_weak_labels(store)
            _keep_lists(store, lib, lists, replace_all=mode == FULL)
            break
        except ConcurrentChangeError:
            log.info("corrections were made while grouping: grouping again")
            say(Progress("Corrections were made meanwhile: grouping again"))
    else:
        raise ConcurrentChangeError(
            f"clustering gave up: the persons were corrected {WRITE_ATTEMPTS} times while it ran; "
            "run `photocluster clusters` again when the corrections are done"
        )
    seconds = time.perf_counter() - start
    return _report(policy, min_size, lib, n_edges, cons, check, plan, diff, apply, seconds, mode, why)


# How many times the grouping is done again when corrections keep coming while it runs.
WRITE_ATTEMPTS = 3

# The two modes of a run (ClusterReport.mode).
FULL = "full"
INCREMENTAL = "incremental"

# New faces above this share of the library make a run full: an incremental run keeps
# every person as it is, and a library that grew by half deserves its persons redrawn.
FULL_ABOVE = 0.2

# How many nearest faces each face links to in the neighbour graph.
GRAPH_K = 32

# How many nearest faces an incremental run reads a new face's crowding factor from: a
# full run's graph links a face to its 32 nearest and to the faces that have it among
# theirs. With only its own 32, a child photographed twice among children photographed
# twice sees 16 other clusters, not the 20 the factor counts to, and is not tightened.
CROWD_NEIGHBOURS = 64

# How many times at most an incremental run searches the neighbourhoods of the faces in no
# person that its last grouping put with a new face or in a person, and groups again. Each
# round after the first finds a few faces more (the synthetic million with 1% added: 323,
# then 93, 21, 4): on LFW-dev the second found the last; on the synthetic library the third
# and fourth left the agreement with a full run as it was (pairwise F 0.99989).
EXPAND_ROUNDS = 2

# The setting holding the highest face id the last clustering saw.
FACES_UPTO = "cluster.faces_upto"
# The setting holding the corrections the last clustering saw (Store.corrections_mark).
CORRECTIONS = "cluster.corrections"


@dataclass(frozen=True)
class _Library:
    """What a run reads, in one snapshot: the faces of the present photos (by face id),
    who is whom, the corrections and the last clustering's settings."""

    face_ids: np.ndarray
    photo_ids: np.ndarray
    person_ids: np.ndarray  # -1: in no person
    low: np.ndarray  # detector confidence under the policy's least
    emb: np.ndarray
    pins: dict[int, int]
    rejections: list[tuple[int, int]]
    names: dict[int, str | None]
    settings: dict[str, str | None]
    faces_upto: int  # 0: no clustering recorded
    corrections: str  # Store.corrections_mark() as read
    facts: list[tuple[int, int]]  # (face id, person id) that cannot be: photos before a birth
    retired: dict[int, list[int]]  # face id -> the persons an earlier run emptied
    search_lists: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # Store.search_lists() as read

    @property
    def previous(self) -> dict[int, int]:
        """Face id -> person id of the faces in a person."""
        has = self.person_ids >= 0
        return dict(zip(self.face_ids[has].tolist(), self.person_ids[has].tolist(), strict=True))

    def previous_of(self, faces: Collection[int]) -> dict[int, int]:
        """:attr:`previous` for ``faces`` only (an incremental run's, of a million)."""
        ids = np.fromiter(faces, dtype=np.int64, count=len(faces))
        at = self._at(ids)
        ids, at = ids[at >= 0], at[at >= 0]
        has = self.person_ids[at] >= 0
        return dict(zip(ids[has].tolist(), self.person_ids[at[has]].tolist(), strict=True))

    def persons_after(self, persons: dict[int, int | None]) -> np.ndarray:
        """Each face's person after ``persons`` (face id -> person, None: no one) is applied
        over the library's (0: no one), one per face read: arrays, not a million
        dictionary lookups (0.3 s at a million faces)."""
        after = np.where(self.person_ids >= 0, self.person_ids, 0)
        ids = np.fromiter(persons, dtype=np.int64, count=len(persons))
        values = np.fromiter((p or 0 for p in persons.values()), dtype=np.int64, count=len(persons))
        at = self._at(ids)
        after[at[at >= 0]] = values[at >= 0]
        return after

    def _at(self, ids: np.ndarray) -> np.ndarray:
        """The row of each face id (-1: not read): the faces are read by id."""
        return rows_of(self.face_ids, ids)


def _read_library(store: Store, policy: Policy, unbound: Collection[int] = ()) -> _Library:
    # One snapshot: the faces, their persons and the corrections as of one moment, even
    # while a scan commits photos (its new faces join on the next run); the faces read by
    # two connections of that one state.
    with store.snapshot(readers=1):
        face_ids, photo_ids, person_ids, low, emb = store.active_face_rows(policy.min_confidence)
        pins, rejections = store.pins(), store.rejections()
        names = store.person_names()
        keys = ("cluster.threshold", "cluster.method", "cluster.min_size", FACES_UPTO, CORRECTIONS)
        settings: dict[str, str | None] = {key: store.get_setting(key) for key in keys}
        corrections = store.corrections_mark()
        facts, retired = _facts(store), store.retired()
        search_lists = store.search_lists()
    if unbound:
        free = set(unbound)
        pins = {f: p for f, p in pins.items() if f not in free}
        rejections = [(f, p) for f, p in rejections if f not in free]
        facts = [(f, p) for f, p in facts if f not in free]
        person_ids = np.where(np.isin(face_ids, np.fromiter(free, dtype=np.int64)), -1, person_ids)
    upto = settings[FACES_UPTO]
    return _Library(
        face_ids,
        photo_ids,
        person_ids,
        low,
        emb,
        pins,
        rejections,
        names,
        settings,
        int(upto) if upto and upto.isdigit() else 0,
        corrections,
        facts,
        retired,
        search_lists,
    )


def _choose_mode(lib: _Library, policy: Policy, min_size: int, full: bool) -> tuple[str, str]:
    """(mode, why): incremental when the last clustering had these settings and the faces
    added since are at most FULL_ABOVE of the library."""
    if full:
        return FULL, "asked for (--full)"
    if lib.faces_upto == 0:
        return FULL, "no earlier clustering"
    saved = lib.settings
    before = Policy.at(
        float(saved["cluster.threshold"]) if saved["cluster.threshold"] else None,
        saved["cluster.method"] or Method.TWO_STAGE,
    )
    if before.method != policy.method or before.operating_point != policy.operating_point:
        return FULL, (
            f"the settings changed: {before.method} at {before.operating_point:g} before, "
            f"{policy.method} at {policy.operating_point:g} now"
        )
    if saved["cluster.min_size"] != str(min_size):
        return FULL, f"the settings changed: min size {saved['cluster.min_size']} before, {min_size} now"
    if saved[CORRECTIONS] != lib.corrections:
        # Merges, moves, removals and "not the same" answers bind a full run everywhere.
        return FULL, "corrections were made since the last clustering"
    added = int(np.count_nonzero(lib.face_ids > lib.faces_upto))
    if added > FULL_ABOVE * len(lib.face_ids):
        return FULL, f"{added:,} new faces are more than {FULL_ABOVE:.0%} of the library's {len(lib.face_ids):,}"
    return INCREMENTAL, f"{added:,} new faces placed among the persons of the last clustering"


def plan_persons(
    store: Store,
    policy: Policy,
    min_size: int = DEFAULT_MIN_SIZE,
    progress: ProgressCallback | None = None,
    unbound: Collection[int] = (),
) -> tuple[Assignment, int, int, Constraints, dict[int, int], ImpostorCheck]:
    """The persons every face would be in after a full run (nothing written): the
    assignment, the number of faces and of links, the constraints, the stored face id ->
    person id and the self-check of the same-photo pairs against the thresholds (in
    crowded regions, as tightened there). The pins and rejections of the faces in
    ``unbound`` are left out (``eval tags``: the tagged faces grouped from their pixels
    alone)."""
    report_to(progress)(Progress("Reading faces"))
    lib = _read_library(store, policy, unbound)
    plan, n_edges, cons, check, _ = _plan_full(lib, policy, min_size, progress)
    return plan, len(lib.face_ids), n_edges, cons, lib.previous, check


def _plan_full(
    lib: _Library, policy: Policy, min_size: int, progress: ProgressCallback | None
) -> tuple[Assignment, int, Constraints, ImpostorCheck, _Lists | None]:
    say = report_to(progress)
    previous = lib.previous
    cons = build_constraints(
        lib.face_ids, lib.photo_ids, lib.emb, policy.collage_radius, previous, lib.pins, lib.rejections, lib.facts
    )
    n = len(lib.face_ids)
    (i, j, d), index = knn_graph(
        lib.emb,
        policy.graph_radius,
        GRAPH_K,
        progress=lambda event: say(replace(event, phase=f"Finding neighbours of {n:,} faces")),
    )
    log.info("%d faces, %d links under %.2f", n, len(i), policy.graph_radius)
    release_freed_memory()  # the search's blocks, before the grouping's arrays
    say(Progress(f"Grouping {n:,} faces ({len(i):,} links)"))
    factor = crowding(i, j, d, cons, policy)
    release_freed_memory()
    super_labels = group(lib.emb, i, j, d, cons, policy, lib.low, factor)
    n_edges = len(i)
    del i, j, d  # half a gigabyte at a million faces
    release_freed_memory()  # the grouping's, before the persons are drawn and written
    check = _check(cons, policy, factor)
    plan = assign_persons(lib.face_ids, super_labels, cons, previous, min_size, lib.retired)
    return plan, n_edges, cons, check, None if index is None else _Lists(index, np.arange(n))


def _plan_incremental(
    lib: _Library, policy: Policy, min_size: int, progress: ProgressCallback | None
) -> tuple[Assignment, int, Constraints, ImpostorCheck, _Lists | None]:
    """Place the faces added since the last clustering: every face already in a person
    stays there; the new ones (but pinned ones and those recognition put in a named
    person) and the faces in no person they reach are grouped among them, each with its
    crowding factor read from its neighbours in the whole library
    (:func:`~photocluster.grouping.grouper.crowding_of_new`).

    A face in no person that the new faces reach is grouped with its own neighbourhood
    (as a full run's graph links it) when a first grouping, without it, puts it with a
    new face or in a person: the others (most of them, at a million faces) stay alone
    whatever their neighbourhood, and searching it was a third of the run."""
    say = report_to(progress)
    n = len(lib.face_ids)
    pinned = np.isin(lib.face_ids, np.fromiter(lib.pins, dtype=np.int64, count=len(lib.pins)))
    named = np.fromiter((p for p, name in lib.names.items() if name), dtype=np.int64)
    new = (lib.face_ids > lib.faces_upto) & ~pinned & ~np.isin(lib.person_ids, named)
    loose = (lib.person_ids < 0) & ~pinned & ~new
    queries = np.flatnonzero(new)
    say(Progress(f"Finding neighbours of {len(queries):,} new faces"))
    lists = _kept_lists(lib)

    # Who stays where: the persons' faces, the pinned ones with them.
    held = np.where(new, -1, lib.person_ids)
    if lib.pins:
        index = positions(lib.face_ids)
        for fid, pid in lib.pins.items():
            if fid in index:
                held[index[fid]] = pid
    # Where a new face with no neighbour in its own list looks again: a full run's lonely
    # faces look among the faces with fewer links than their nearest count (GRAPH_K), and
    # a face in a larger person has that many in its person alone.
    sizes = np.bincount(held[held >= 0], minlength=1)
    few_links = (held < 0) | (sizes[np.maximum(held, 0)] <= GRAPH_K)

    def neighbourhoods(faces: np.ndarray) -> tuple[Edges, Edges]:
        # The grouping's edges, and for the crowding factor the wider neighbourhoods a
        # full run's graph gives a face (its nearest, and the faces it is among the
        # nearest of).
        return query_neighbourhoods(
            lib.emb,
            faces,
            policy.graph_radius,
            k=GRAPH_K,
            wide=CROWD_NEIGHBOURS if policy.adapts else 0,
            index=None if lists is None else lists.index,
            sparse=few_links,
        )

    # Each kept person's sums are taken once for every grouping below: numbered 0..m-1.
    number = np.cumsum(sizes > 0) - 1
    known = KnownSums(lib.emb, np.where(held >= 0, number[np.maximum(held, 0)], -1))
    nodes = held_nodes(held)  # the same super-nodes for every grouping below
    edges, around = neighbourhoods(queries)
    placed = _place_among(lib, policy, new, loose, nodes, known, edges, around, say)
    searched = np.zeros(n, dtype=bool)
    for _ in range(EXPAND_ROUNDS):
        # The loose faces the last grouping put with a new face or in a person, with
        # their own neighbourhoods, as a full run's graph links them.
        expand = loose & placed.joined & ~searched
        if not expand.any():
            break
        say(Progress(f"Finding neighbours of {int(expand.sum()):,} faces in no person"))
        searched |= expand
        more_edges, more_around = neighbourhoods(np.flatnonzero(expand))
        edges, around = union_edges(edges, more_edges, n), union_edges(around, more_around, n)
        del more_edges, more_around
        placed = _place_among(lib, policy, new, loose, nodes, known, edges, around, say)
    del around
    i = edges[0]
    log.info(
        "%d new faces, %d faces placed, %d links under %.2f",
        len(queries),
        int(placed.free.sum()),
        len(i),
        policy.graph_radius,
    )
    check = _check(placed.cons, policy, placed.factor)
    assignment = place(lib.face_ids, placed.super_labels, placed.cons, placed.free, min_size)
    return assignment, len(i), placed.cons, check, lists


@dataclass(frozen=True)
class _Placed:
    """One grouping of an incremental run: the faces it placed, how, and which of them
    ended in a label with a new face or a person (``joined``, one bool per face)."""

    free: np.ndarray
    cons: Constraints
    factor: np.ndarray | None
    super_labels: np.ndarray
    joined: np.ndarray


def _place_among(
    lib: _Library,
    policy: Policy,
    new: np.ndarray,
    loose: np.ndarray,
    nodes: HeldNodes,
    known: KnownSums,
    edges: Edges,
    around: Edges,
    say: ProgressCallback,
) -> _Placed:
    """Group the ``new`` faces with the ``loose`` ones (in no person, not pinned) the
    ``edges`` reach, the faces held in their persons (``nodes``, one super-node each)
    staying there (``known``: their sums)."""
    i, j, d = edges
    n = len(lib.face_ids)
    free = new.copy()
    reached = np.zeros(n, dtype=bool)
    reached[i] = True
    reached[j] = True
    free |= loose & reached
    # A face placed never joins a person born after its photo: as the user's rejections.
    # (Each grouping round asks; most libraries record no birth, and then nothing is built.)
    placing = set(lib.face_ids[free].tolist()) if lib.facts else set()
    rejections = [*lib.rejections, *((f, p) for f, p in lib.facts if f in placing)]
    cons, fixed = incremental_constraints(
        lib.face_ids, lib.photo_ids, lib.emb, nodes, free, policy.collage_radius, rejections
    )
    say(Progress(f"Placing {int(free.sum()):,} faces ({len(i):,} links)"))
    factor = crowding_of_new(i, j, d, cons, policy, fixed, free, around)
    super_labels = group(lib.emb, i, j, d, cons, policy, lib.low, factor, fixed=fixed, known=known)
    labels = super_labels[cons.super_of]
    wanted = np.zeros(int(super_labels.max()) + 1 if len(super_labels) else 0, dtype=bool)
    wanted[super_labels[np.flatnonzero(fixed)]] = True
    wanted[labels[new]] = True
    return _Placed(free, cons, factor, super_labels, free & wanted[labels])


@dataclass(frozen=True)
class _Lists:
    """The neighbour search's inverted file over the faces of a run (one row per face of
    the library read), and the rows to keep: every row after a full run, the rows of the
    faces an incremental run gave lists to."""

    index: SearchIndex
    rows: np.ndarray


def _kept_lists(lib: _Library) -> _Lists | None:
    """The lists the last full run kept, with a row for each face of ``lib`` (those of the
    faces added since made now), or None when none were kept."""
    if lib.search_lists is None or len(lib.face_ids) == 0:
        return None
    centres, ids, rows = lib.search_lists
    if centres.shape[1] != lib.emb.shape[1] or len(ids) == 0:
        return None
    at = rows_of(ids, lib.face_ids)
    listed = at >= 0
    lists = np.full((len(lib.face_ids), rows.shape[1]), -1, dtype=np.int32)
    lists[listed] = rows[at[listed]]
    if lists.size and (lists.max() >= len(centres)):
        return None  # not this index's lists: rebuilt by the next full run
    return _Lists(SearchIndex(centres, lists).completed(lib.emb), np.flatnonzero(~listed))


def _keep_lists(store: Store, lib: _Library, lists: _Lists | None, replace_all: bool) -> None:
    """Store the inverted file for the next incremental runs: a full run's whole (or none,
    when it computed every distance), an incremental run's rows for the faces it added."""
    if replace_all:
        if lists is None:
            store.drop_search_lists()
        else:
            store.save_search_lists(lists.index.centres, lib.face_ids, lists.index.lists)
    elif lists is not None and len(lists.rows):
        store.add_search_lists(lib.face_ids[lists.rows], lists.index.lists[lists.rows])


def _check(cons: Constraints, policy: Policy, factor: np.ndarray | None) -> ImpostorCheck:
    """The self-check of the same-photo pairs against the thresholds, tightened by the
    pair's smaller crowding factor where the policy adapts."""
    pa, pb = cons.same_photo_faces
    scale = None if factor is None else np.minimum(factor[pa], factor[pb])
    return impostor_check(cons.same_photo_distances, policy.thresholds, scale)


def _facts(store: Store) -> list[tuple[int, int]]:
    """(face id, person id) pairs that cannot be: a face in a photo taken before the
    person's birth (the photos read in the caller's snapshot)."""
    births = store.births()
    if not births:
        return []
    ids, days = store.active_face_days()
    return born_rejections(ids, days, {p: b.toordinal() for p, b in births.items()})


def _report(
    policy: Policy,
    min_size: int,
    lib: _Library,
    n_edges: int,
    cons: Constraints,
    check: ImpostorCheck,
    plan: Assignment,
    diff: PlanDiff,
    applied: bool,
    seconds: float,
    mode: str = FULL,
    why: str = "",
) -> ClusterReport:
    # Who is whom after the run (0: no one): the assignment over what stays (an
    # incremental run's assignment holds the faces it placed only).
    after = lib.persons_after(plan.persons) if mode == INCREMENTAL else None
    if after is None:
        persons_after = {p for p in plan.persons.values() if p is not None}
        unknown = sum(1 for p in plan.persons.values() if p is None)
    else:
        persons_after = set(np.unique(after[after != 0]).tolist())
        unknown = int(np.count_nonzero(after == 0))
    return ClusterReport(
        threshold=policy.threshold,
        min_size=min_size,
        faces=len(lib.face_ids),
        persons=len(persons_after),
        unknown=unknown,
        edges=n_edges,
        kept_ids=len([p for p in persons_after if p > 0]),
        new_persons=len(plan.new_persons),
        seconds=seconds,
        applied=applied,
        created=diff.created,
        revived=plan.revived,
        merged=diff.merged,
        split=diff.split,
        removed=diff.removed,
        faces_moved=diff.faces_moved,
        faces_new=diff.faces_new,
        names_affected=diff.names_affected,
        same_photo_separations=cons.same_photo_separations,
        operating_point={
            **policy.as_dict(),
            "check": check.as_dict(),
        },
        mode=mode,
        why=why,
        faces_added=int(np.count_nonzero(lib.face_ids > lib.faces_upto)) if lib.faces_upto else len(lib.face_ids),
    )


def _changes(persons: dict[int, int | None], previous: dict[int, int]) -> dict[int, int | None]:
    """The faces of ``persons`` whose person is not the one ``previous`` gives them."""
    return {f: p for f, p in persons.items() if previous.get(f) != p}
