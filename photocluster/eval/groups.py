"""The clustering figures per group of images (:func:`group_figures`), for a labels CSV with
a group column such as ``age_group`` (young / adult): a clustering that is right for
adults can still merge children, and one figure over the whole set hides it.

For each value of the column, the pairs *within* it (young-young, adult-adult: pairwise
and BCubed over those images alone), and for each two values the pairs *across* them
(young-adult: :func:`~photocluster.eval.metrics.cross_pairwise`,
:func:`~photocluster.eval.metrics.cross_bcubed`); with the persons (clusters of two or more
labelled images) holding the group's images and how many of them mix people. Across two
values, a person mixes people when it joins an image of one with an image of the other of
a different identity (a child with an unrelated adult).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photocluster.eval import metrics as mt
from photocluster.eval.figures import json_number

# A column with more values than this is not a grouping (an image id, a file name): skipped.
MAX_GROUPS = 12


def is_grouping(values: tuple[str, ...]) -> bool:
    """Whether a column's values form groups worth figures of their own: at most
    :data:`MAX_GROUPS` distinct non-empty values (their pairs are reported too)."""
    return 0 < len({v for v in values if v}) <= MAX_GROUPS


@dataclass(frozen=True)
class GroupFigures:
    """The figures of one group (``"young"``) or of the pairs across two (``"young-adult"``)."""

    column: str
    group: str
    images: int
    pairwise: mt.PRF
    bcubed: mt.PRF
    persons: int  # persons of 2+ labelled images holding the group's images (across: both groups')
    mixing: int  # of them, those mixing people (across: joining the two groups' images of different people)

    def as_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "group": self.group,
            "images": self.images,
            "pairwise": {k: json_number(v) for k, v in self.pairwise.as_dict().items()},
            "bcubed": {k: json_number(v) for k, v in self.bcubed.as_dict().items()},
            "persons": self.persons,
            "persons_mixing": self.mixing,
        }


def _persons(truth: np.ndarray, pred: np.ndarray, hold: list[np.ndarray], among: np.ndarray) -> tuple[int, int]:
    """(persons holding an item of each mask of ``hold``, those of them whose items in
    ``among`` are of two or more identities); a person is a predicted cluster of 2+ items."""
    big = np.bincount(pred)[pred] >= 2
    persons = np.unique(pred[big])
    for mask in hold:
        persons = np.intersect1d(persons, pred[mask & big], assume_unique=False)
    span = int(truth.max()) + 1 if len(truth) else 1
    cells = np.unique(pred[among] * span + truth[among])
    identities = np.bincount(cells // span, minlength=int(pred.max()) + 1 if len(pred) else 0)
    return len(persons), int(np.count_nonzero(identities[persons] >= 2))


def group_figures(column: str, values: tuple[str, ...], truth: np.ndarray, pred: np.ndarray) -> list[GroupFigures]:
    """The figures of each value of ``column`` (``values``: one per image, empty for none)
    and of each two values, for identities ``truth`` and predicted persons ``pred``
    (integers, one per image)."""
    truth, pred = np.asarray(truth, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    value = np.asarray(values, dtype=object)
    names = sorted({v for v in values if v})
    out: list[GroupFigures] = []
    everyone = np.ones(len(truth), dtype=bool)
    for name in names:
        g = value == name
        persons, mixing = _persons(truth, pred, [g], everyone)
        within = (mt.pairwise(truth[g], pred[g]), mt.bcubed(truth[g], pred[g]))
        out.append(GroupFigures(column, name, int(g.sum()), *within, persons, mixing))
    for k, a in enumerate(names):
        for b in names[k + 1 :]:
            ga, gb = value == a, value == b
            both = ga | gb
            side = ga[both]
            persons, mixing = _persons(truth, pred, [ga, gb], both)
            out.append(
                GroupFigures(
                    column,
                    f"{a}-{b}",
                    int(both.sum()),
                    mt.cross_pairwise(truth[both], pred[both], side),
                    mt.cross_bcubed(truth[both], pred[both], side),
                    persons,
                    mixing,
                )
            )
    return out
