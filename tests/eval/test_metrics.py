"""The accuracy figures against small cases computed by hand (exact values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from photocluster.eval import metrics as mt

# Six items, three identities; the clustering joins item 2 (identity a) with b's items.
TRUTH = np.array(["a", "a", "a", "b", "b", "c"])
PRED = np.array([7, 7, 3, 3, 3, 9])


def test_contingency_counts_items_per_cluster_and_identity() -> None:
    # Rows: clusters 3, 7, 9 (sorted); columns: identities a, b, c.
    assert mt.contingency(TRUTH, PRED).tolist() == [[1, 2, 0], [2, 0, 0], [0, 0, 1]]


def test_pairwise_by_hand() -> None:
    # Pairs in one cluster: 1 + 3 + 0 = 4; of one identity: 3 + 1 + 0 = 4; both: 1 (a) + 1 (b) = 2.
    assert mt.pairwise(TRUTH, PRED) == mt.PRF(0.5, 0.5, 0.5)


def test_bcubed_by_hand() -> None:
    # Precision per item: 1, 1, 1/3, 2/3, 2/3, 1 -> 14/3 / 6; recall: 2/3, 2/3, 1/3, 1, 1, 1 -> the same.
    result = mt.bcubed(TRUTH, PRED)
    assert result.precision == pytest.approx(7 / 9, abs=1e-15)
    assert result.recall == pytest.approx(7 / 9, abs=1e-15)
    assert result.f1 == pytest.approx(7 / 9, abs=1e-15)


def test_nmi_by_hand() -> None:
    # I = 1/3 ln 2 + 1/6 ln(2/3) + 1/3 ln 2 + 1/6 ln 6 = ln 2; H(truth) = H(pred) = 2/3 ln 2 + 1/2 ln 3.
    expected = math.log(2) / (2 / 3 * math.log(2) + 0.5 * math.log(3))
    assert mt.nmi(TRUTH, PRED) == pytest.approx(expected, abs=1e-15)


def test_perfect_clustering_scores_one_whatever_the_label_names() -> None:
    truth = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([5, 5, -1, -1, -1, 8])
    assert mt.pairwise(truth, pred) == mt.PRF(1.0, 1.0, 1.0)
    assert mt.bcubed(truth, pred) == mt.PRF(1.0, 1.0, 1.0)
    assert mt.nmi(truth, pred) == pytest.approx(1.0, abs=1e-15)


def test_all_singletons_and_one_big_cluster() -> None:
    truth = np.array([0, 0, 1, 1])
    singletons = np.arange(4)
    # No pair claimed: nothing wrong claimed (precision 1), no true pair found (recall 0).
    assert mt.pairwise(truth, singletons) == mt.PRF(1.0, 0.0, 0.0)
    assert mt.bcubed(truth, singletons) == mt.PRF(1.0, 0.5, 2 * 0.5 / 1.5)
    one = np.zeros(4, dtype=int)
    # 6 pairs claimed, 2 right; every true pair found.
    assert mt.pairwise(truth, one) == mt.PRF(1 / 3, 1.0, 0.5)
    assert mt.bcubed(truth, one) == mt.PRF(0.5, 1.0, 2 / 3)
    assert mt.nmi(truth, one) == 0.0
    assert mt.nmi(one, one) == 1.0


def test_no_items_and_shape_errors() -> None:
    empty = np.array([], dtype=int)
    assert mt.pairwise(empty, empty) == mt.PRF(1.0, 1.0, 1.0)
    assert mt.bcubed(empty, empty) == mt.PRF(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(2,\)"):
        mt.pairwise(np.zeros(3), np.zeros(2))


# Pairs: three same (0.2, 0.5, 0.7) and three different (0.4, 0.8, 0.9).
D = np.array([0.2, 0.5, 0.7, 0.4, 0.8, 0.9])
SAME = np.array([True, True, True, False, False, False])


def test_accuracy_at_a_threshold_is_strictly_below() -> None:
    # d < 0.6 accepts 0.2, 0.5 (right) and 0.4 (wrong); rejects 0.7 (wrong), 0.8, 0.9 (right).
    assert mt.accuracy(D, SAME, 0.6) == 4 / 6
    # At 0.5 the same pair at 0.5 itself is rejected: 0.2 and 0.8, 0.9 right, 0.4, 0.5, 0.7 wrong.
    assert mt.accuracy(D, SAME, 0.5) == 3 / 6
    assert mt.accuracy(D, SAME, 0.75) == 5 / 6
    assert math.isnan(mt.accuracy(np.array([]), np.array([], dtype=bool), 0.6))


def test_candidate_thresholds_are_the_midpoints() -> None:
    t = mt.candidate_thresholds(np.array([0.5, 0.2, 0.5, np.inf, -np.inf, 0.9]))
    assert t.tolist() == [0.2, 0.35, 0.7, np.nextafter(0.9, 1.0)]


def test_best_threshold_by_hand() -> None:
    # Accuracy at each candidate: 0.2: 3/6, 0.3: 4/6, 0.45: 3/6, 0.6: 4/6, 0.75: 5/6, 0.85: 4/6, >0.9: 3/6.
    assert mt.best_threshold(D, SAME) == (0.75, 5 / 6)


def test_best_threshold_ties_go_to_the_one_nearest_the_prior() -> None:
    d = np.array([0.1, 0.3, 0.5, 0.7])
    same = np.array([True, False, True, False])
    # 0.2 and 0.6 both give 3/4.
    assert mt.best_threshold(d, same, prior=0.6) == (0.6, 0.75)
    assert mt.best_threshold(d, same, prior=0.25) == (0.2, 0.75)


def test_roc_auc_by_hand() -> None:
    # Same pair closer than a different pair: 0.2 beats 3, 0.5 beats 2, 0.7 beats 2: 7 of 9.
    assert mt.roc_auc(D, SAME) == pytest.approx(7 / 9, abs=1e-15)
    assert mt.roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert mt.roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == 1.0
    assert math.isnan(mt.roc_auc(np.array([0.1]), np.array([True])))


def test_pairs_that_must_be_wrong_are_wrong_at_every_threshold() -> None:
    d = np.array([np.inf, -np.inf, 0.3, 0.9])
    same = np.array([True, False, True, False])
    for t in (0.0, 0.3, 0.6, 1.5):
        assert mt.accuracy(d, same, t) <= 0.5
    assert mt.best_threshold(d, same) == (0.6, 0.5)
    # Pairs (pos, neg): (inf, -inf) lost, (inf, 0.9) lost, (0.3, -inf) lost, (0.3, 0.9) won.
    assert mt.roc_auc(d, same) == 0.25


def test_tar_at_far_by_hand() -> None:
    # 3 different pairs: FAR 0.001 allows none of them, so the threshold is the closest one (0.4).
    assert mt.tar_at_far(D, SAME, 1e-3) == (1 / 3, 0.4)
    # FAR 1/3 allows one: threshold 0.8 accepts 0.4 only, and all three same pairs.
    assert mt.tar_at_far(D, SAME, 1 / 3) == (1.0, 0.8)
    assert mt.tar_at_far(D, SAME, 1.0) == (1.0, math.inf)


def test_stratified_folds_deal_each_kind_round_robin() -> None:
    same = np.array([True, False, True, False, True])
    assert mt.stratified_folds(same, 2).tolist() == [0, 0, 1, 1, 0]


def test_kfold_accuracy_by_hand() -> None:
    d = np.array([0.3, 0.7, 0.5, 0.65])
    same = np.array([True, False, True, False])
    folds = np.array([0, 0, 1, 1])
    result = mt.kfold_accuracy(d, same, folds)
    # Fold 0: trained on (0.5 same, 0.65 different) -> 0.575; tested on 0.3 / 0.7: both right.
    # Fold 1: trained on (0.3 same, 0.7 different) -> 0.5; tested on 0.5 (wrong) / 0.65 (right).
    assert result.thresholds == (0.575, 0.5)
    assert result.accuracies == (1.0, 0.5)
    assert (result.mean, result.std) == (0.75, 0.25)


def test_verification_input_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        mt.accuracy(np.array([np.nan]), np.array([True]), 0.6)
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(1,\)"):
        mt.roc_auc(np.zeros(2), np.array([True]))
    with pytest.raises(ValueError, match=r"folds must have shape \(2,\)"):
        mt.kfold_accuracy(np.zeros(2), np.array([True, False]), np.zeros(3))


def test_cross_group_pairs_by_hand() -> None:
    """Pairs with one item on each side only: x (side A) with y (side B)."""
    truth = np.array([0, 1, 2, 2, 3, 3])
    pred = np.array([5, 5, 6, 6, 7, 8])
    side = np.array([True, False, True, False, True, False])
    # Cross pairs claimed: (0,1) wrong, (2,3) right; true cross pairs: (2,3), (4,5).
    assert mt.cross_pairwise(truth, pred, side) == mt.PRF(0.5, 0.5, 0.5)
    # Precision over items 0-3 (their clusters hold the other side): 0, 0, 1, 1; recall
    # over items 2-5 (their identity is on both sides): 1, 1, 0, 0.
    assert mt.cross_bcubed(truth, pred, side) == mt.PRF(0.5, 0.5, 0.5)
    nobody = np.ones(6, dtype=bool)
    assert mt.cross_pairwise(truth, pred, nobody) == mt.PRF(1.0, 1.0, 1.0)
    assert mt.cross_bcubed(truth, pred, nobody) == mt.PRF(1.0, 1.0, 1.0)
