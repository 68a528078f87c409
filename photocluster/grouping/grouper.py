"""The clustering users get: from faces, their neighbour graph and the constraints to one
label per super-node. ``photocluster clusters`` and ``photocluster eval`` both call
:func:`group`, so what eval measures is what users get.

Two methods (:class:`Method`):

- ``two-stage``, the default: Chinese whispers over the links shorter than a strict
  threshold, then average-linkage merging of the clusters
  (:mod:`~photocluster.grouping.linkage`). A single threshold right for comparing two
  faces (0.6) chains thousands of people together in a large library; a strict one
  splits people photographed in many conditions. The second stage rejoins the parts by
  their average distance, which a few impostor pairs cannot pull down. Its operating
  point ``threshold`` is on dlib's pair scale: 0.6 (the default) is the tuned thresholds
  as they are, and every threshold of the method moves with it in proportion
  (``T / 0.6``): lower is stricter, higher looser (:meth:`Policy.at`). Where the
  descriptor space is crowded (children's faces), each face's thresholds are further
  multiplied by its crowding factor (:mod:`~photocluster.grouping.crowding`): links,
  ejection, merges (the two clusters' mean factors, the smaller), clear merges and the
  attachment of weak faces all ask more there.
- ``whispers``: plain Chinese whispers over every link shorter than ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from photocluster.core.config import (
    ATTACH_MARGIN,
    CLEAR_MERGE_MARGIN,
    CLEAR_MERGE_THRESHOLD,
    CROWD_FLOOR,
    CROWD_K,
    CROWD_POWER,
    CROWD_SCALE,
    DEFAULT_THRESHOLD,
    LINK_THRESHOLD,
    MERGE_SMALL_PENALTY,
    MERGE_THRESHOLD,
    MIN_CONFIDENCE,
)
from photocluster.core.memory import release_freed_memory
from photocluster.grouping.constraints import Constraints
from photocluster.grouping.crowding import crowding_factor
from photocluster.grouping.linkage import KnownSums, attach, eject_outliers, merge_by_linkage
from photocluster.grouping.whispers import canonical_labels, collapsed_whispers


class Method(StrEnum):
    """How faces are grouped (``clusters --method``)."""

    TWO_STAGE = "two-stage"
    WHISPERS = "whispers"


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How faces are grouped. ``Policy()``: the default two-stage clustering at its tuned
    thresholds; :meth:`Policy.at` gives the policy of an operating point (``clusters
    --threshold T --method M``). ``threshold``: the operating point asked for (None: the
    default), on dlib's pair scale."""

    threshold: float | None = None
    method: Method = Method.TWO_STAGE
    link: float = LINK_THRESHOLD
    merge: float = MERGE_THRESHOLD
    radius: float = DEFAULT_THRESHOLD
    small_penalty: float = MERGE_SMALL_PENALTY
    min_confidence: float = MIN_CONFIDENCE
    attach_margin: float = ATTACH_MARGIN
    clear_merge: float | None = CLEAR_MERGE_THRESHOLD
    clear_margin: float = CLEAR_MERGE_MARGIN
    eject: bool = True
    # Thresholds scaled per face where faces crowd (grouping/crowding.py); two-stage only.
    crowding: bool = True
    crowd_k: int = CROWD_K
    crowd_scale: float = CROWD_SCALE
    crowd_power: float = CROWD_POWER
    crowd_floor: float = CROWD_FLOOR

    @classmethod
    def at(cls, threshold: float | None = None, method: Method | str = Method.TWO_STAGE) -> Policy:
        """The policy of operating point ``threshold`` on dlib's pair scale (None: 0.6).

        ``two-stage``: every distance threshold of the method (link, merge, radius, the
        clear-merge threshold and margin, the small-cluster penalty, the attach margin)
        is multiplied by ``threshold / 0.6``, so 0.6 is exactly the default and 0.5 is
        each of them a sixth stricter. The crowding factor multiplies them on top, as at
        0.6. ``whispers``: ``threshold`` is the link threshold, the same everywhere.
        """
        method = Method(method)
        if threshold is not None and not 0 < threshold <= 2:
            raise ValueError(f"threshold must be in (0, 2], got {threshold}")
        if method is Method.WHISPERS:
            return cls(threshold=DEFAULT_THRESHOLD if threshold is None else threshold, method=method, crowding=False)
        policy = cls(threshold=threshold)
        if threshold is None:
            return policy
        s = threshold / DEFAULT_THRESHOLD
        clear = None if policy.clear_merge is None else policy.clear_merge * s
        return replace(
            policy,
            link=policy.link * s,
            merge=policy.merge * s,
            radius=policy.radius * s,
            small_penalty=policy.small_penalty * s,
            attach_margin=policy.attach_margin * s,
            clear_merge=clear,
            clear_margin=policy.clear_margin * s,
        )

    @property
    def whispers(self) -> bool:
        return self.method is Method.WHISPERS

    @property
    def adapts(self) -> bool:
        """Whether thresholds are scaled per face where faces crowd."""
        return self.crowding and not self.whispers

    @property
    def operating_point(self) -> float:
        """The operating point on dlib's pair scale: what recognition, ``find`` and the
        doubt measure compare one face with a person at."""
        return DEFAULT_THRESHOLD if self.threshold is None else self.threshold

    @property
    def link_threshold(self) -> float:
        """Plain whispers: faces closer than this are linked."""
        return self.operating_point

    @property
    def graph_radius(self) -> float:
        """Neighbours farther than this are never linked nor compared."""
        return self.link_threshold if self.whispers else self.radius

    @property
    def collage_radius(self) -> float:
        """Faces of one photo this close are one person shown several times (a collage)."""
        return self.link_threshold if self.whispers else self.merge

    @property
    def thresholds(self) -> dict[str, float]:
        """The thresholds that decide, by name (for the self-calibration check)."""
        if self.whispers:
            return {"link": self.link_threshold}
        return {"link": self.link, "merge": self.merge}

    def as_dict(self) -> dict[str, object]:
        if self.whispers:
            return {
                "method": str(self.method),
                "threshold": self.link_threshold,
                "min_confidence": self.min_confidence,
                "why": "--method whispers: Chinese whispers over every link shorter than the threshold",
            }
        return {
            "method": str(self.method),
            "threshold": self.operating_point,
            "link": self.link,
            "merge": self.merge,
            "small_penalty": self.small_penalty,
            "radius": self.radius,
            "clear_merge": self.clear_merge,
            "clear_margin": self.clear_margin,
            "attach_margin": self.attach_margin,
            "min_confidence": self.min_confidence,
            "eject": self.eject,
            "crowding": {
                "k": self.crowd_k,
                "scale": self.crowd_scale,
                "power": self.crowd_power,
                "floor": self.crowd_floor,
            }
            if self.adapts
            else None,
            "why": "strict links keep strangers apart, average-linkage merging rejoins a person's parts; "
            "every threshold scaled by threshold / 0.6",
        }


def group(
    emb: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    cons: Constraints,
    policy: Policy,
    low: np.ndarray | None = None,
    factor: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> np.ndarray:
    """One label per super-node of ``cons`` (see :func:`~photocluster.grouping.whispers.collapse`)
    for faces ``emb`` joined by neighbour edges (i, j) of length ``d``, all shorter than
    ``policy.graph_radius``. Cannot-links hold in every stage.

    ``low`` marks the faces whose detector confidence is under ``policy.min_confidence``
    (one bool per face, as the store reads it). Those the user did not pin take part in
    no link and no merge: they only join a person that is clearly nearest
    (:func:`~photocluster.grouping.linkage.attach`), else stay alone.

    ``factor``: each face's crowding factor when already computed (:func:`crowding`, which
    is called here otherwise when the policy adapts; an incremental run computes it for
    the faces it places from the whole library, :func:`crowding_of_new`).

    ``fixed`` (one bool per super-node) marks the super-nodes that stay as they are: each
    keeps a label of its own, none joins another, nor is a face taken out of one; the
    other faces may join them by the same rules as they join each other. That is how an
    incremental run places new faces among the persons it keeps
    (:mod:`~photocluster.grouping.incremental`). ``known``: the sums of the fixed
    super-nodes' faces (:class:`~photocluster.grouping.linkage.KnownSums`), when a run
    groups among the same persons more than once.
    """
    if factor is None:
        factor = crowding(i, j, d, cons, policy)
    weak = _weak_faces(cons, policy, low)
    if weak is None:
        return _cluster(emb, i, j, d, cons, policy, factor, fixed, known)
    keep = ~(weak[i] | weak[j])
    super_labels = _cluster(emb, i[keep], j[keep], d[keep], cons, policy, factor, fixed, known)
    if len(super_labels):
        _attach_weak(emb, super_labels, weak, i[~keep], j[~keep], cons, policy, factor, known)
        super_labels = canonical_labels(super_labels)
    return super_labels


def crowding(
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    cons: Constraints,
    policy: Policy,
    fixed: np.ndarray | None = None,
    around: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    only: np.ndarray | None = None,
) -> np.ndarray | None:
    """Each face's crowding factor in [floor, 1] (:mod:`~photocluster.grouping.crowding`),
    read from the first stage's clusters (Chinese whispers over the links shorter than
    ``policy.link``, every face taking part), or None when the policy does not adapt.
    ``fixed`` super-nodes keep their own class in that first stage (see :func:`group`);
    ``around`` (i, j, d): the edges to count the other clusters over, when not (i, j, d);
    ``only`` (one bool per face): the faces whose factor is read (the others': 1)."""
    if not policy.adapts:
        return None
    n = len(cons.super_of)
    strong = d < policy.link
    stage1 = collapsed_whispers(i[strong], j[strong], cons.super_of, cons.cannot, fixed)
    labels = stage1[cons.super_of] if n else np.zeros(0, dtype=np.int64)
    ai, aj, ad = (i, j, d) if around is None else around
    return crowding_factor(
        n,
        ai,
        aj,
        ad,
        labels,
        policy.graph_radius,
        k=policy.crowd_k,
        scale=policy.crowd_scale,
        power=policy.crowd_power,
        floor=policy.crowd_floor,
        only=only,
    )


def crowding_of_new(
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    cons: Constraints,
    policy: Policy,
    fixed: np.ndarray,
    free: np.ndarray,
    around: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | None:
    """The crowding factors of an incremental run (:mod:`~photocluster.grouping.incremental`).

    For each face it places (``free``, one bool per face), as :func:`crowding` reads it in
    a full run, from the face's neighbours in the whole library: ``around``, the edges to
    each face placed from its nearest faces, whoever they are, more of them than the
    grouping's edges (i, j, d) hold (:func:`~photocluster.grouping.graph.query_neighbourhoods`:
    a full run's graph also links a face to the faces that have it among their nearest).
    The first-stage clusters are the persons kept (``fixed`` super-nodes), each counted
    once, and the clusters the first stage makes of the faces placed (some of which it
    puts in a person); a face in no person and not placed is a cluster of its own.

    Every other face counts 1: a link, merge or attachment is then judged by the factor
    of the faces placed (in a full run, by the smaller of the two sides', and both sides
    are alike: a face and a person it is close to share their neighbourhood). None when
    the policy does not adapt."""
    free = np.asarray(free, dtype=bool)
    factor = crowding(i, j, d, cons, policy, fixed, around, only=free)
    if factor is not None:
        factor[~free] = 1.0
    return factor


def _weak_faces(cons: Constraints, policy: Policy, low: np.ndarray | None) -> np.ndarray | None:
    if low is None or policy.min_confidence <= 0:
        return None
    weak = np.array(low, dtype=bool)
    # A face the user put in a person is trusted whatever the detector thought of it.
    weak &= ~np.isin(cons.super_of, np.fromiter(cons.person_of_super, dtype=np.int64))
    return weak if weak.any() else None


def _cluster(
    emb: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    cons: Constraints,
    policy: Policy,
    factor: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> np.ndarray:
    if policy.whispers:
        keep = d < policy.link_threshold
        return collapsed_whispers(i[keep], j[keep], cons.super_of, cons.cannot, fixed)
    # Where faces crowd, a link must be shorter by the smaller factor of its two faces.
    strong = d < (policy.link if factor is None else policy.link * np.minimum(factor[i], factor[j]))
    super_labels = collapsed_whispers(i[strong], j[strong], cons.super_of, cons.cannot, fixed)
    if len(super_labels) == 0:
        return super_labels
    # The second stage works on faces; a super-node's constraints bind through any one of
    # its faces, since all its faces share its label.
    face_labels = super_labels[cons.super_of]
    rep = _first_faces(cons.super_of)  # each super-node's first face
    fixed_faces = None if fixed is None else np.asarray(fixed, dtype=bool)[cons.super_of]
    if policy.eject:
        threshold = policy.merge if factor is None else policy.merge * factor
        face_labels = _eject(emb, face_labels, cons, threshold, fixed_faces, known)
        release_freed_memory()  # the ejection's sums, before the merges' at the run's peak
    held = None
    if fixed_faces is not None:
        held = np.zeros(int(face_labels.max()) + 1, dtype=bool)
        held[face_labels[fixed_faces]] = True
    cannot = (rep[cons.cannot[0]], rep[cons.cannot[1]])
    merged = merge_by_linkage(
        emb,
        face_labels,
        i,
        j,
        policy.merge,
        cannot=cannot,
        small_penalty=policy.small_penalty,
        clear_threshold=policy.clear_merge,
        clear_margin=policy.clear_margin,
        scale=factor,
        fixed=held,
        known=known,
    )
    return canonical_labels(merged[rep])


def _first_faces(super_of: np.ndarray) -> np.ndarray:
    """Each super-node's first face (``super_of`` numbers them 0..s-1)."""
    first = np.full(int(super_of.max()) + 1 if len(super_of) else 0, len(super_of), dtype=np.int64)
    np.minimum.at(first, super_of.astype(np.intp), np.arange(len(super_of), dtype=np.int64))
    return first


def _eject(
    emb: np.ndarray,
    face_labels: np.ndarray,
    cons: Constraints,
    threshold: float | np.ndarray,
    fixed: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> np.ndarray:
    """:func:`~photocluster.grouping.linkage.eject_outliers` for the faces that may leave: those
    alone in their super-node and not pinned (the user's groups and pins stay whole), nor
    ``fixed`` (one bool per face)."""
    free = np.bincount(cons.super_of)[cons.super_of] == 1
    free &= ~np.isin(cons.super_of, np.fromiter(cons.person_of_super, dtype=np.int64))
    if fixed is not None:
        free &= ~fixed
    return eject_outliers(emb, face_labels, threshold, movable=free, known=known)


def _attach_weak(
    emb: np.ndarray,
    super_labels: np.ndarray,
    weak: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    cons: Constraints,
    policy: Policy,
    factor: np.ndarray | None = None,
    known: KnownSums | None = None,
) -> None:
    """Give each weak face the label of the person it clearly belongs to (in place); (i, j)
    are the edges that touch a weak face."""
    faces = np.flatnonzero(weak)
    labels = super_labels[cons.super_of]
    k = int(labels.max()) + 1
    # Cannot-links bind: a weak face never joins a cluster holding a face it must be apart from.
    ca, cb = cons.cannot
    face_of_super = np.full(len(super_labels), -1, dtype=np.int64)
    face_of_super[cons.super_of[faces]] = faces
    fa, fb = face_of_super[ca], face_of_super[cb]
    forbidden = np.unique(
        np.concatenate([fa[fa >= 0] * k + super_labels[cb[fa >= 0]], fb[fb >= 0] * k + super_labels[ca[fb >= 0]]])
    )
    threshold: float | np.ndarray = policy.link_threshold if policy.whispers else policy.merge
    if factor is not None:
        threshold = threshold * factor[faces]  # the face's own factor
    penalty = 0.0 if policy.whispers else policy.small_penalty
    chosen = attach(emb, labels, faces, i, j, threshold, penalty, policy.attach_margin, forbidden, known)
    joined = chosen >= 0
    super_labels[cons.super_of[faces[joined]]] = chosen[joined]
