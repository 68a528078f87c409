"""Face verification results (photocluster.eval.pairs): their JSON form."""

from __future__ import annotations

import json
import math

from photocluster.eval.pairs import PairFigures


def test_json_has_no_nan_or_infinity() -> None:
    figures = PairFigures(
        accuracy=0.5,
        wrong=1,
        cv_accuracy=math.nan,
        cv_std=math.nan,
        cv_thresholds=(),
        roc_auc=0.25,
        tar=0.0,
        tar_threshold=-math.inf,
        best_threshold=0.6,
        best_accuracy=0.5,
        missing_pairs=1,
    )
    doc = figures.as_dict()
    assert (doc["cv_accuracy"], doc["tar_threshold"], doc["roc_auc"]) == (None, None, 0.25)
    json.dumps(doc, allow_nan=False)
