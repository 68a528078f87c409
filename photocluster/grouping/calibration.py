"""Self-calibration: what this library says about its own operating point.

Two faces of one photo are two people (but for mirrors and collages, which the
same-photo rule already leaves out). Every photo with several faces therefore gives
pairs known to be *different* people, photographed by this user, with this camera, at
this detection size. The share of those pairs closer than a threshold estimates how
often that threshold links two strangers in this library, with no labels at all.
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

    def as_dict(self) -> dict[str, object]:
        return {
            "same_photo_pairs": self.pairs,
            "share_closer_than": {k: round(v, 6) for k, v in self.below.items()},
            "closest": None if self.closest is None else round(self.closest, 4),
            "thresholds": {k: round(v, 6) for k, v in self.thresholds.items()},
        }


def impostor_check(distances: np.ndarray, thresholds: dict[str, float]) -> ImpostorCheck:
    """The share of ``distances`` (same-photo pairs) under each named threshold."""
    d = np.asarray(distances, dtype=np.float64)
    if len(d) == 0:
        return ImpostorCheck(0, {k: 0.0 for k in thresholds}, None, dict(thresholds))
    below = {k: float(np.count_nonzero(d < t)) / len(d) for k, t in thresholds.items()}
    return ImpostorCheck(len(d), below, float(d.min()), dict(thresholds))
