"""Self-calibration: what this library says about its own operating point.

Two faces of one photo are two people (but for mirrors and collages, which the
same-photo rule already leaves out). Every photo with several faces therefore gives
pairs known to be *different* people, photographed by this user, with this camera, at
this detection size. The share of those pairs closer than a threshold estimates how
often that threshold links two strangers in this library, with no labels at all.

Where the default clustering tightens its thresholds (crowded regions of the descriptor
space: children's faces, :mod:`~photocluster.grouping.crowding`), the pairs with a face
there are also counted against the thresholds *as tightened*: siblings photographed
together are the best evidence of how close two different children get in this library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImpostorCheck:
    """Distances of same-photo pairs (different people) against the operating point."""

    pairs: int
    below: dict[str, float]  # threshold name -> share of the pairs closer than it
    closest: float | None  # the smallest distance between two people of one photo
    thresholds: dict[str, float] = field(default_factory=dict)  # the thresholds, by name
    # Pairs with a face whose thresholds are tightened (crowding factor < 1), and how many of
    # them are closer than each threshold as tightened for the pair (None: no crowding rule).
    crowded_pairs: int | None = None
    crowded_below: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "same_photo_pairs": self.pairs,
            "share_closer_than": {k: round(v, 6) for k, v in self.below.items()},
            "closest": None if self.closest is None else round(self.closest, 4),
            "thresholds": {k: round(v, 6) for k, v in self.thresholds.items()},
            "crowded_pairs": self.crowded_pairs,
            "crowded_closer_than": dict(self.crowded_below),
        }


def impostor_check(
    distances: np.ndarray, thresholds: dict[str, float], pair_factor: np.ndarray | None = None
) -> ImpostorCheck:
    """The share of ``distances`` (same-photo pairs) under each named threshold; with
    ``pair_factor`` (per pair, the smaller crowding factor of its two faces), also the pairs
    in crowded regions (factor < 1) and how many fall under each threshold times the factor."""
    d = np.asarray(distances, dtype=np.float64)
    crowded_pairs: int | None = None
    crowded_below: dict[str, int] = {}
    if pair_factor is not None:
        f = np.asarray(pair_factor, dtype=np.float64)
        crowded = f < 1.0
        crowded_pairs = int(np.count_nonzero(crowded))
        crowded_below = {k: int(np.count_nonzero(d[crowded] < t * f[crowded])) for k, t in thresholds.items()}
    if len(d) == 0:
        return ImpostorCheck(0, {k: 0.0 for k in thresholds}, None, dict(thresholds), crowded_pairs, crowded_below)
    below = {k: float(np.count_nonzero(d < t)) / len(d) for k, t in thresholds.items()}
    return ImpostorCheck(len(d), below, float(d.min()), dict(thresholds), crowded_pairs, crowded_below)
