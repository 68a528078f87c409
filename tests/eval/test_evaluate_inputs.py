"""The parts of photocluster.eval.evaluate that need no model: reading pairs and labels, picking
a face, the fallback box, the recommended threshold, the JSON form and the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, make_face, write_photo
from photocluster.core.errors import UsageError
from photocluster.core.types import Box
from photocluster.eval.evaluate import (
    CalibrationResult,
    CalibrationRow,
    PairFigures,
    fallback_box,
    nearest_centre,
    read_labels,
    read_pairs,
    recommend,
)
from photocluster.eval.metrics import PRF
from photocluster.eval.plot import render_calibration


def test_read_pairs_with_folds_from_the_header(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    # LFW's View 2 layout at small scale: 2 folds of 1 same + 1 different pair, tab separated.
    pairs.write_text("2\t1\nAbel_Pacheco\t1\t4\nAbel_Pacheco\t1\tZico\t3\n\nAnn\t2\t12\nBob\t1\tAnn\t1\n")
    parsed = read_pairs(pairs, tmp_path / "lfw")
    assert parsed.folds == (0, 0, 1, 1)
    first, second = parsed.pairs[0], parsed.pairs[1]
    assert first.same and not second.same
    assert first.a == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert first.b == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    assert second.b == tmp_path / "lfw" / "Zico" / "Zico_0003.jpg"
    assert parsed.pairs[2].b.name == "Ann_0012.jpg"
    assert [p.line for p in parsed.pairs] == [2, 3, 5, 6]


def test_read_pairs_with_a_count_header(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    # pairsDevTrain.txt style: N, then N same and N different pairs; or N pairs in all.
    pairs.write_text("1\nAnn 1 2\nAnn 1 Bob 1\n")
    assert read_pairs(pairs, tmp_path).folds is None
    pairs.write_text("2\nAnn 1 2\nAnn 1 Bob 1\n")
    assert len(read_pairs(pairs, tmp_path).pairs) == 2
    pairs.write_text("1 1\nAnn 1 2\nAnn 1 Bob 1\n")  # one fold: folds are dealt later
    assert read_pairs(pairs, tmp_path).folds is None


def test_read_labels_from_folders(tmp_path: Path) -> None:
    write_photo(tmp_path / "ann" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "ann" / "deeper" / "b.png", (1, 2, 3))
    write_photo(tmp_path / "bob" / "c.jpg", (1, 2, 3))
    (tmp_path / "bob" / "notes.txt").write_text("not a photo")
    labelled = read_labels(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in labelled.paths] == [
        "ann/a.jpg",
        "ann/deeper/b.png",
        "bob/c.jpg",
    ]
    assert labelled.identities == ("ann", "ann", "bob")
    write_photo(tmp_path / "loose.jpg", (1, 2, 3))
    with pytest.raises(UsageError, match=r"loose\.jpg: not in a person folder"):
        read_labels(tmp_path)


def test_read_labels_from_a_csv(tmp_path: Path) -> None:
    write_photo(tmp_path / "x" / "a.jpg", (1, 2, 3))
    write_photo(tmp_path / "b.jpg", (1, 2, 3))
    labels = tmp_path / "labels.csv"
    labels.write_text("x/a.jpg,ann\nb.jpg, bob \nc.jpg,<no_face>\nd.jpg,ann;bob\n")  # no header is fine
    labelled = read_labels(tmp_path, labels)
    assert labelled.identities == ("ann", "bob") and labelled.skipped == 2
    labels.write_text("relative_path,identity\nx/a.jpg,ann\nx/a.jpg,bob\n")
    with pytest.raises(UsageError, match=r"labels\.csv:3: x/a\.jpg is listed twice \(first on line 2\)"):
        read_labels(tmp_path, labels)
    labels.write_text("relative_path,identity\nx/a.jpg,ann\nmissing.jpg,bob\ngone.jpg,bob\n")
    with pytest.raises(UsageError, match=r"missing\.jpg: no such image \(named on line 3 of .*\) \(and 1 more\)"):
        read_labels(tmp_path, labels)


def test_nearest_centre_and_fallback_box() -> None:
    left = make_face(fake_embedding(1), (0, 0, 40, 40))
    centre = make_face(fake_embedding(2), (70, 40, 130, 100))
    assert nearest_centre([left, centre], 200, 140) is centre
    assert nearest_centre([], 200, 140) is None
    # 0.6 of the short side, centred.
    assert fallback_box(200, 100) == Box(70, 20, 130, 80)


def row(t: float, pair_f1: float, bcubed_f1: float) -> CalibrationRow:
    return CalibrationRow(t, 3, PRF(1.0, pair_f1, pair_f1), PRF(1.0, bcubed_f1, bcubed_f1))


def test_recommend_best_bcubed_then_pairwise_then_the_middle() -> None:
    rows = [row(0.4, 0.5, 0.7), row(0.5, 0.9, 0.9), row(0.6, 0.9, 0.9), row(0.7, 0.9, 0.9), row(0.8, 0.3, 0.6)]
    assert recommend(rows) == 0.6
    rows[1] = row(0.5, 0.95, 0.9)  # same BCubed, better pairwise
    assert recommend(rows) == 0.5
    assert recommend([row(0.5, 1, 1), row(0.6, 1, 1)]) == 0.5  # even tie: the lower middle


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


def test_calibration_plot_is_drawn() -> None:
    rows = tuple(row(round(0.3 + 0.05 * k, 2), 1 - abs(k - 5) / 10, 1 - abs(k - 5) / 12) for k in range(11))
    result = CalibrationResult("root", None, 20, 4, rows, 0.55, rows[5], (), (), 0)
    im = render_calibration(result)
    pixels = np.asarray(im)
    assert im.size == (900, 560) and im.mode == "RGB"
    not_white = np.any(pixels < 250, axis=2)
    assert 0.01 < not_white.mean() < 0.5
    # Both curves and the marker are there, in their colours.
    for colour in ((31, 119, 180), (255, 127, 14), (214, 39, 40)):
        assert np.all(np.abs(pixels.astype(int) - colour) < 30, axis=2).sum() > 50, colour


def test_eval_clusters_clusters_as_the_clusters_command_does(tmp_path: Path, fake_embedder: object) -> None:
    """eval scores exactly what `clusters` stores: the same persons for every labelled face,
    with min-size applied (a face alone is unknown, scored as a cluster of its own)."""
    from conftest import write_photo
    from photocluster.app.recluster import recluster
    from photocluster.eval.evaluate import eval_clusters
    from photocluster.store import Store

    root = tmp_path / "people"
    colours = {"ann": (200, 30, 30), "bob": (30, 200, 30), "cy": (30, 30, 200)}
    for name, colour in colours.items():
        for k in range(3 if name != "cy" else 1):
            write_photo(root / name / f"{name}_{k:04d}.jpg", colour)
    with Store(tmp_path / "eval.db") as store:
        result = eval_clusters(store, root, workers=1)
        report = recluster(store)
        persons = {
            f.id: f.person_id for photo_faces in (store.photo_faces(p) for p in range(1, 8)) for f in photo_faces
        }
    assert result.threshold is None and result.operating_point["method"] == "two-stage"
    assert report.persons == 2 and report.unknown == 1
    assert (result.clusters, result.singletons) == (3, 1)
    assert result.pairwise.f1 == 1.0 and result.bcubed.f1 == 1.0
    assert len(set(persons.values()) - {None}) == 2 and list(persons.values()).count(None) == 1
