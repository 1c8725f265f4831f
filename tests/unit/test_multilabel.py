"""Multi-label metrics of the CNN-vs-FCN study (atlaskit.metrics.multilabel), on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import multilabel as ml

# 5 images, 4 classes, written out so every number below can be checked by hand.
Y_TRUE = np.array([
    [1, 0, 0, 0],  # 1 label
    [1, 1, 0, 0],  # 2 labels
    [0, 1, 1, 0],  # 2 labels
    [1, 1, 1, 0],  # 3 labels
    [0, 0, 0, 1],  # 1 label
])
Y_PRED = np.array([
    [1, 0, 0, 0],  # exact
    [1, 0, 1, 1],  # class 1 missed; false positives 2 and 3
    [0, 1, 1, 0],  # exact
    [1, 0, 0, 0],  # classes 1 and 2 missed; no false positive
    [1, 0, 0, 0],  # class 3 missed; false positive 0
])


# ----------------------------------------------------------------------------- thresholds


def test_threshold_grid_is_exact_hundredths():
    g = ml.threshold_grid(0.01)
    assert len(g) == 101 and g[0] == 0.0 and g[-1] == 1.0
    assert g[29] == 0.29 and g[30] == 0.3  # rounded, no 0.29000000000000004
    assert len(ml.threshold_grid(0.25)) == 5


def test_dice_thresholds_hand_case():
    # class 0: positives score 0.8 and 0.6, negatives 0.7 and 0.1
    #   t in (0.1, 0.6]: preds {0.8, 0.7, 0.6} → TP 2, FP 1 → Dice 4/5 = 0.8
    #   t in (0.6, 0.7]: preds {0.8, 0.7}      → TP 1, FP 1, FN 1 → 0.5
    #   t in (0.7, 0.8]: preds {0.8}           → TP 1, FN 1 → 2/3
    #   best 0.8 first reached at t = 0.11 (ties → lowest threshold)
    # class 1: perfectly separable: positives 0.9, 0.95; negatives 0.2, 0.3 → Dice 1 from t = 0.31
    y = np.array([[1, 1], [1, 1], [0, 0], [0, 0]])
    s = np.array([[0.8, 0.9], [0.6, 0.95], [0.7, 0.2], [0.1, 0.3]])
    th, best = ml.dice_thresholds(y, s, step=0.01)
    np.testing.assert_allclose(th, [0.11, 0.31])
    np.testing.assert_allclose(best, [0.8, 1.0])
    # applying them reproduces the Dice on the same data
    pred = ml.apply_thresholds(s, th)
    np.testing.assert_allclose(ml.dice_per_class(y, pred), [0.8, 1.0])


def test_dice_threshold_of_an_absent_class_predicts_nothing():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    s = np.array([[0.9, 0.42], [0.2, 0.3], [0.8, 0.1]])
    th, best = ml.dice_thresholds(y, s)
    assert th[1] == pytest.approx(0.43) and best[1] == 1.0  # lowest threshold above every score
    assert not ml.apply_thresholds(s, th)[:, 1].any()


def test_dice_threshold_is_inclusive():
    y = np.array([[1], [0]])
    s = np.array([[0.5], [0.49]])
    th, _ = ml.dice_thresholds(y, s)
    assert th[0] == 0.5  # score >= 0.5 predicts the positive and not the negative


# ----------------------------------------------------------------------------- Dice


def test_dice_per_class_hand_case():
    # class 0: TP 2 (img 0,1,3 true; pred 0,1,3,4) → TP 3, FP 1 (img 4), FN 0 → 6/7
    # class 1: true 1,2,3; pred 2 → TP 1, FN 2 → 2/4
    # class 2: true 2,3; pred 1,2 → TP 1, FP 1, FN 1 → 2/4
    # class 3: true 4; pred 1 → TP 0, FP 1, FN 1 → 0
    np.testing.assert_allclose(ml.dice_per_class(Y_TRUE, Y_PRED), [6 / 7, 0.5, 0.5, 0.0])
    assert ml.mean_dice(Y_TRUE, Y_PRED) == pytest.approx((6 / 7 + 0.5 + 0.5 + 0) / 4)


def test_dice_undefined_for_a_class_never_present_nor_predicted():
    y = np.array([[1, 0], [0, 0]])
    d = ml.dice_per_class(y, y)
    assert d[0] == 1.0 and np.isnan(d[1])
    assert ml.mean_dice(y, y) == 1.0  # the undefined class is left out of the mean


# ----------------------------------------------------------------------------- confusion matrix


def test_multilabel_confusion_hand_case():
    cm = ml.multilabel_confusion(Y_TRUE, Y_PRED, classes=["a", "b", "c", "d"])
    expected = np.array([
        # found on the diagonal; a missed true label gets one hit per false positive
        [3, 0, 0, 0],  # class 0 found in images 0, 1, 3
        [0, 1, 1, 1],  # class 1 found in 2; missed in 1 (FPs 2, 3) and in 3 (no FP)
        [0, 0, 1, 0],  # class 2 found in 2; missed in 3 (no FP)
        [1, 0, 0, 0],  # class 3 missed in 4 (FP 0)
    ])
    np.testing.assert_array_equal(cm.counts, expected)
    np.testing.assert_array_equal(cm.support, [3, 3, 2, 1])
    np.testing.assert_array_equal(cm.missed_without_fp, [0, 1, 1, 0])
    np.testing.assert_allclose(cm.per_class_accuracy, [1.0, 1 / 3, 1 / 2, 0.0])
    np.testing.assert_allclose(cm.rates[1], [0, 1 / 3, 1 / 3, 1 / 3])
    frame = cm.to_frame()
    assert list(frame.index) == ["a", "b", "c", "d"] and frame.loc["b", "c"] == pytest.approx(1 / 3)
    assert ml.mean_per_class_accuracy(Y_TRUE, Y_PRED) == pytest.approx((1 + 1 / 3 + 1 / 2 + 0) / 4)


def test_confusion_of_perfect_predictions_is_diagonal():
    cm = ml.multilabel_confusion(Y_TRUE, Y_TRUE)
    np.testing.assert_array_equal(cm.counts, np.diag(Y_TRUE.sum(0)))
    np.testing.assert_allclose(cm.per_class_accuracy, 1.0)


def test_absent_class_has_nan_accuracy_and_is_left_out_of_the_mean():
    y = np.array([[1, 0], [1, 0]])
    p = np.array([[1, 0], [0, 1]])
    acc = ml.per_class_accuracy(y, p)
    assert acc[0] == 0.5 and np.isnan(acc[1])
    assert ml.mean_per_class_accuracy(y, p) == 0.5


# ----------------------------------------------------------------------------- accuracy by label count


def test_accuracy_by_label_count_hand_case():
    t = ml.accuracy_by_label_count(Y_TRUE, Y_PRED, max_labels=4)
    assert list(t["n_labels"]) == [1, 2, 3, 4]
    assert list(t["n_images"]) == [2, 2, 1, 0]
    # 1 label: image 0 exact, image 4 wrong → 1/2; 2 labels: image 2 exact, image 1 not → 1/2
    np.testing.assert_allclose(t["exact_match"][:3], [0.5, 0.5, 0.0])
    # all found: images 0 (yes), 4 (no); 1 (no), 2 (yes); 3 (no)
    np.testing.assert_allclose(t["all_found"][:3], [0.5, 0.5, 0.0])
    # label recall: 1 of 2; 3 of 4 (img 1: 1 of 2, img 2: 2 of 2); 1 of 3
    np.testing.assert_allclose(t["label_recall"][:3], [0.5, 0.75, 1 / 3])
    assert t.loc[3, ["exact_match", "all_found", "label_recall"]].isna().all()


def test_exact_match_and_all_found_differ_on_false_positives():
    y = np.array([[1, 0, 0]])
    p = np.array([[1, 1, 0]])
    assert not ml.exact_match(y, p)[0] and ml.all_found(y, p)[0]


def test_grouped_accuracy_per_cell_line():
    groups = ["HeLa", "HeLa", "U-2 OS", "U-2 OS", "U-2 OS"]
    t = ml.grouped_accuracy(Y_TRUE, Y_PRED, groups)
    assert list(t.index) == ["HeLa", "U-2 OS"]
    assert t.loc["HeLa", "n_images"] == 2 and t.loc["HeLa", "exact_match"] == 0.5
    assert t.loc["U-2 OS", "exact_match"] == pytest.approx(1 / 3)
    # U-2 OS: 6 true labels (img 2: b, c; img 3: a, b, c; img 4: d), found 2 + 1 + 0 → 3 / 6
    assert t.loc["U-2 OS", "label_recall"] == pytest.approx(3 / 6)


def test_wilson_interval_known_value():
    lo, hi = ml.wilson_interval(np.array([5, 0]), np.array([10, 0]))
    assert lo[0] == pytest.approx(0.2366, abs=1e-4) and hi[0] == pytest.approx(0.7634, abs=1e-4)
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    lo, hi = ml.wilson_interval(np.array([7, 0]), np.array([7, 7]))  # the interval holds the estimate exactly
    assert hi[0] == 1.0 and lo[0] < 1.0 and lo[1] == 0.0 and hi[1] > 0.0


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("bad", [np.array([0, 1, 1]), np.array([[0, 2]]), np.zeros((0, 3)), np.array([["a", "b"]])])
def test_bad_label_arrays_are_refused(bad):
    with pytest.raises(DataError):
        ml.multilabel_confusion(bad, np.zeros_like(bad, dtype=int) if bad.dtype.kind in "iu" else bad)


def test_shape_mismatch_is_refused():
    with pytest.raises(DataError, match="same shape"):
        ml.dice_per_class(Y_TRUE, Y_PRED[:, :3])
    with pytest.raises(DataError, match="one value per class"):
        ml.apply_thresholds(np.full((2, 3), 0.5), [0.5, 0.5])
    with pytest.raises(DataError, match="one entry per image"):
        ml.grouped_accuracy(Y_TRUE, Y_PRED, ["a"])


@pytest.mark.parametrize("scores", [np.array([[0.5, np.nan]]), np.array([[1.2, 0.1]]), np.array([[-0.1, 0.2]])])
def test_bad_scores_are_refused(scores):
    with pytest.raises(DataError):
        ml.dice_thresholds(np.array([[1, 0]]), scores)


@pytest.mark.parametrize("step", [0, -0.1, 1.5, True])
def test_bad_step_is_refused(step):
    with pytest.raises(ParameterError):
        ml.threshold_grid(step)


def test_bad_max_labels_is_refused():
    with pytest.raises(ParameterError):
        ml.accuracy_by_label_count(Y_TRUE, Y_PRED, max_labels=0)


def test_results_are_plain_types():
    assert isinstance(ml.accuracy_by_label_count(Y_TRUE, Y_PRED), pd.DataFrame)
    assert isinstance(ml.mean_dice(Y_TRUE, Y_PRED), float)


def test_labels_per_image_counts_rows():
    np.testing.assert_array_equal(ml.labels_per_image([[1, 0, 1], [0, 0, 0], [1, 1, 1]]), [2, 0, 3])


def test_reliability_hand_case():
    # six pairs: confidences 0.05, 0.15, 0.15, 0.95, 0.95, 1.0 with truths 0, 0, 1, 1, 1, 0
    y = np.array([[0, 0], [1, 1], [1, 0]])
    s = np.array([[0.05, 0.15], [0.15, 0.95], [0.95, 1.0]])
    # pairs in row-major order: (0.05, 0), (0.15, 0), (0.15, 1), (0.95, 1), (0.95, 1), (1.0, 0)
    t = ml.reliability(y, s, n_bins=10)
    assert len(t) == 10 and t["n"].sum() == 6
    assert t.loc[0, "n"] == 1 and t.loc[0, "observed"] == 0.0 and t.loc[0, "confidence"] == pytest.approx(0.05)
    assert t.loc[1, "n"] == 2 and t.loc[1, "observed"] == 0.5 and t.loc[1, "confidence"] == pytest.approx(0.15)
    assert t.loc[9, "n"] == 3 and t.loc[9, "observed"] == pytest.approx(2 / 3)  # 1.0 falls in the last bin
    assert np.isnan(t.loc[5, "observed"]) and t.loc[5, "n"] == 0
    # ECE = 1/6·|0 − 0.05| + 2/6·|0.5 − 0.15| + 3/6·|2/3 − 0.9667|
    expected = (abs(0 - 0.05) + 2 * abs(0.5 - 0.15) + 3 * abs(2 / 3 - (0.95 + 0.95 + 1.0) / 3)) / 6
    assert ml.expected_calibration_error(y, s, n_bins=10) == pytest.approx(expected)


def test_perfectly_calibrated_scores_have_zero_ece():
    y = np.array([[1, 0], [0, 1]])
    assert ml.expected_calibration_error(y, y.astype(float), n_bins=5) == 0.0


@pytest.mark.parametrize("n_bins", [0, 2.5, True, "10"])
def test_reliability_refuses_bad_bin_counts(n_bins):
    with pytest.raises(ParameterError):
        ml.reliability([[1, 0]], [[0.9, 0.1]], n_bins=n_bins)


def test_reliability_refuses_scores_outside_unit_interval():
    with pytest.raises(DataError):
        ml.reliability([[1, 0]], [[1.5, 0.1]])
