"""deepGPS metrics on hand-computed cases (atlaskit.metrics.classification)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import classification as cm

# Binary case: TP = 2 (items 2, 3), FN = 1 (item 4), FP = 1 (item 1), TN = 1 (item 0).
Y = np.array([0, 0, 1, 1, 1])
P = np.array([0, 1, 1, 1, 0])


def test_confusion_rows_are_true_classes():
    assert cm.confusion(Y, P).tolist() == [[1, 1], [1, 2]]
    assert cm.confusion([0, 2], [2, 2], n_classes=4).tolist() == [[0, 0, 1, 0], [0] * 4, [0, 0, 1, 0], [0] * 4]


def test_binary_metrics_by_hand():
    assert cm.accuracy(Y, P) == pytest.approx(3 / 5)
    assert cm.sensitivity(Y, P) == pytest.approx(2 / 3)  # TP / (TP + FN), positive class 1
    assert cm.specificity(Y, P) == pytest.approx(1 / 2)  # TN / (TN + FP)
    assert cm.precision(Y, P) == pytest.approx(2 / 3)
    assert cm.f1(Y, P) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # positive class 0: sensitivity of class 0 = 1/2, its specificity = 2/3
    assert cm.sensitivity(Y, P, positive=0) == pytest.approx(1 / 2)
    assert cm.specificity(Y, P, positive=0) == pytest.approx(2 / 3)


def test_multiclass_metrics_are_macro_one_vs_rest():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    # recalls: class 0 1/2, class 1 2/2, class 2 1/2 → macro 2/3
    assert cm.sensitivity(y, p) == pytest.approx((0.5 + 1 + 0.5) / 3)
    # specificities: class 0: TN 3 of 4 negatives (one 2 predicted 0) → 3/4; class 1: 3/4; class 2: 4/4
    assert cm.specificity(y, p) == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    table = cm.per_class_table(y, p, ["a", "b", "c"])
    assert table["support"].tolist() == [2, 2, 2]
    assert table.loc[1, "precision"] == pytest.approx(2 / 3)


def test_auroc_and_auprc_by_hand():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # pairs (pos, neg): (0.35>0.1), (0.35<0.4), (0.8>0.1), (0.8>0.4) → 3/4
    assert cm.auroc(y, s) == pytest.approx(0.75)
    # ranking 0.8(+), 0.4(-), 0.35(+), 0.1(-): AP = 1/2 * 1 + 1/2 * 2/3
    assert cm.auprc(y, s) == pytest.approx(0.5 + 1 / 3)
    # (N, 2) probabilities give the same; AUROC does not depend on the positive class
    proba = np.stack([1 - s, s], 1)
    assert cm.auroc(y, proba) == pytest.approx(0.75)
    assert cm.auroc(y, proba, positive=0) == pytest.approx(0.75)
    assert math.isnan(cm.auroc([1, 1], [0.2, 0.3]))


def test_auprc_of_a_perfect_ranking_is_exactly_one():
    # found by hypothesis: sklearn's average precision gives 1.0000000000000002 here (its
    # precision x recall steps add up a rounding step above 1); an area stays in [0, 1]
    y = np.array([1] * 8 + [0] + [1] * 10)
    s = np.array([0.8, 0.8, 0.4, 2 / 3, 0.75, 0.25, 0.2, 1 / 6, 1 / 7, 0.5, 0.5, 0.6, 0.5, 0.5, 0.5,
                  2 / 3, 1 / 3, 2 / 3, 0.75])
    assert cm.auprc(y, s) == 1.0 and cm.auroc(y, s) == 1.0


def test_auroc_matches_sklearn_with_ties_and_multiclass():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60), 1)  # many ties
    assert cm.auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    y3 = rng.integers(0, 3, 90)
    p3 = rng.dirichlet(np.ones(3), 90)
    assert cm.auroc(y3, p3) == pytest.approx(roc_auc_score(y3, p3, multi_class="ovr", average="macro"))


def test_summary_uses_argmax_and_reports_n():
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    s = cm.summary(Y, proba)
    assert s["n"] == 5
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["sensitivity"] == pytest.approx(2 / 3)


def test_by_protein_averages_rows():
    prot, y, p = cm.by_protein(["a", "a", "b"], [1, 1, 0], np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]]))
    assert prot.tolist() == ["a", "b"] and y.tolist() == [1, 0]
    assert p[0].tolist() == pytest.approx([0.3, 0.7])
    with pytest.raises(DataError, match="different labels"):
        cm.by_protein(["a", "a"], [0, 1], np.array([[1.0, 0.0], [0.0, 1.0]]))


def test_wilson_interval_by_hand():
    lo, hi = cm.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    with pytest.raises(ParameterError):
        cm.wilson_interval(3, 2)


def test_bootstrap_interval_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    s = y * 0.5 + rng.random(100)
    a = cm.bootstrap_interval(lambda yy, ss: cm.auroc(yy, ss), y, s, n_boot=300, seed=1, stratify=y)
    b = cm.bootstrap_interval(lambda yy, ss: cm.auroc(yy, ss), y, s, n_boot=300, seed=1, stratify=y)
    assert a == b
    assert a[0] < cm.auroc(y, s) < a[1]


def test_psnr_and_ssim_by_hand():
    target = np.zeros((16, 16))
    pred = target + 0.1  # MSE 0.01, data range 1 → 20 dB
    assert cm.psnr(pred, target) == pytest.approx(20.0)
    assert cm.psnr(target, target) == math.inf
    img = np.random.default_rng(0).random((16, 16))
    assert cm.ssim(img, img) == pytest.approx(1.0)
    q = cm.image_quality(np.stack([pred, img])[:, None], np.stack([target, img])[:, None])
    assert q["psnr"].iloc[0] == pytest.approx(20.0) and q["ssim"].iloc[1] == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DataError, match="items"):
        cm.accuracy([0, 1], [0])
    with pytest.raises(DataError, match="integer"):
        cm.accuracy([0.5, 1], [0, 1])
    with pytest.raises(DataError, match="empty"):
        cm.accuracy([], [])
    with pytest.raises(DataError, match="shape"):
        cm.psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(DataError, match="proba"):
        cm.auroc([0, 1], np.zeros((3, 2)))
