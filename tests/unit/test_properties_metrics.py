"""Property-based tests (hypothesis) of every public metric: ranges, symmetries, invariance to the
order of the samples, the value of a perfect prediction, agreement with scikit-learn where both
implement the same number, and bad input ending in an atlaskit error (issue #10, part 3).

Example-based, hand-computed cases live in test_classification_metrics.py, test_multilabel.py and
test_agreement.py; this file checks the same functions on many generated inputs.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from atlaskit.errors import AtlaskitError, DataError, ParameterError
from atlaskit.metrics import agreement as ag
from atlaskit.metrics import classification as cm
from atlaskit.metrics import multilabel as ml

FAST = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")


# --------------------------------------------------------------------------- strategies


@st.composite
def label_pairs(draw, min_k=2, max_k=5, min_n=1, max_n=40):
    """(y_true, y_pred, k): integer labels 0..k-1 of equal length."""
    k = draw(st.integers(min_k, max_k))
    n = draw(st.integers(min_n, max_n))
    lab = hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))
    return draw(lab), draw(lab), k


@st.composite
def labels_and_proba(draw, min_k=2, max_k=4, min_n=2, max_n=40, all_classes=False):
    """(y_true, proba (N, K) rows summing to 1, k)."""
    k = draw(st.integers(min_k, max_k))
    n = draw(st.integers(max(min_n, k if all_classes else 1), max_n))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    if all_classes:
        y[:k] = np.arange(k)  # every class present (sklearn's multi-class AUC needs it)
        y = y[draw(st.permutations(list(range(n))))]
    # scores on a coarse grid, so that ties (the hard case for rank statistics) are common
    raw = draw(hnp.arrays(np.float64, (n, k), elements=st.integers(1, 8).map(float)))
    return y, raw / raw.sum(1, keepdims=True), k


@st.composite
def multihot_pairs(draw, max_n=25, max_k=5):
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(2, max_k))  # sklearn reads a single column as a binary problem
    arr = hnp.arrays(np.int64, (n, k), elements=st.integers(0, 1))
    return draw(arr), draw(arr)


def _nan_equal(a: float, b: float, tol: float = 1e-9) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def _in_unit(x: float) -> bool:
    return math.isnan(x) or 0.0 <= x <= 1.0


# --------------------------------------------------------------------------- classification: ranges, symmetry


@FAST
@given(label_pairs())
def test_label_metrics_lie_in_unit_interval(pair):
    t, p, k = pair
    assert 0.0 <= cm.accuracy(t, p) <= 1.0
    for fn in (cm.sensitivity, cm.specificity, cm.precision, cm.f1):
        assert _in_unit(fn(t, p, n_classes=k))
        assert _in_unit(fn(t, p, n_classes=k, positive="macro"))
    c = cm.confusion(t, p, k)
    assert c.shape == (k, k) and c.sum() == t.size and (c >= 0).all()
    np.testing.assert_array_equal(c.sum(1), np.bincount(t, minlength=k))


@FAST
@given(label_pairs(), st.randoms(use_true_random=False))
def test_label_metrics_do_not_depend_on_sample_order(pair, rnd):
    t, p, k = pair
    order = np.array(rnd.sample(range(t.size), t.size))
    for fn in (cm.accuracy, lambda a, b: cm.f1(a, b, n_classes=k), lambda a, b: cm.specificity(a, b, n_classes=k),
               lambda a, b: ag.cohen_kappa(a, b, k)):
        assert _nan_equal(fn(t, p), fn(t[order], p[order]))
    np.testing.assert_array_equal(cm.confusion(t, p, k), cm.confusion(t[order], p[order], k))


@FAST
@given(label_pairs())
def test_swapping_truth_and_prediction(pair):
    """Accuracy, F1 (binary and macro) and kappa are symmetric; the confusion matrix transposes;
    sensitivity and precision trade places."""
    t, p, k = pair
    assert cm.accuracy(t, p) == cm.accuracy(p, t)
    assert _nan_equal(cm.f1(t, p, n_classes=k), cm.f1(p, t, n_classes=k))
    assert _nan_equal(ag.cohen_kappa(t, p, k), ag.cohen_kappa(p, t, k))
    np.testing.assert_array_equal(cm.confusion(t, p, k), cm.confusion(p, t, k).T)
    np.testing.assert_array_equal(ag.confusion(t, p, k), cm.confusion(t, p, k))
    for c in range(k):
        assert _nan_equal(cm.sensitivity(t, p, positive=c, n_classes=k), cm.precision(p, t, positive=c, n_classes=k))


@FAST
@given(label_pairs(min_n=2))
def test_perfect_prediction_scores_the_maximum(pair):
    t, _, k = pair
    assert cm.accuracy(t, t) == 1.0
    assert cm.f1(t, t, n_classes=k, positive="macro") == 1.0
    assert cm.sensitivity(t, t, n_classes=k, positive="macro") == 1.0
    kappa = ag.cohen_kappa(t, t, k)
    assert kappa == pytest.approx(1.0) if len(np.unique(t)) > 1 else math.isnan(kappa)
    onehot = np.eye(k)[t]
    auc = cm.auroc(t, onehot)
    assert auc == 1.0 if len(np.unique(t)) > 1 else math.isnan(auc)


@FAST
@given(label_pairs(), st.permutations(list(range(5))))
def test_accuracy_and_kappa_do_not_depend_on_class_names(pair, perm):
    t, p, k = pair
    relabel = np.array([x for x in perm if x < k])  # a permutation of 0..k-1
    assert cm.accuracy(t, p) == cm.accuracy(relabel[t], relabel[p])
    assert _nan_equal(ag.cohen_kappa(t, p, k), ag.cohen_kappa(relabel[t], relabel[p], k))


# --------------------------------------------------------------------------- classification: scikit-learn


@FAST
@given(label_pairs())
def test_label_metrics_agree_with_sklearn(pair):
    t, p, k = pair
    labels = list(range(k))
    assert cm.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    np.testing.assert_array_equal(cm.confusion(t, p, k), skm.confusion_matrix(t, p, labels=labels))
    # balanced accuracy = macro recall over the classes present in y_true
    assert cm.sensitivity(t, p, n_classes=k, positive="macro") == pytest.approx(skm.balanced_accuracy_score(t, p))
    # macro F1/precision/recall: classes where the ratio is 0/0 are left out of the mean
    present = sorted(set(t) | set(p))
    for ours, theirs in ((cm.f1, skm.f1_score), (cm.precision, skm.precision_score), (cm.sensitivity, skm.recall_score)):
        want = theirs(t, p, labels=present, average="macro", zero_division=np.nan)
        assert _nan_equal(ours(t, p, n_classes=k, positive="macro"), float(want))
        for c in labels:  # one-vs-rest per class
            want = theirs(t, p, labels=[c], average="macro", zero_division=np.nan)
            assert _nan_equal(ours(t, p, n_classes=k, positive=c), float(want))
    kappa = ag.cohen_kappa(t, p, k)
    if not math.isnan(kappa):
        assert kappa == pytest.approx(skm.cohen_kappa_score(t, p, labels=labels), abs=1e-9)


@FAST
@given(labels_and_proba(min_k=2, max_k=2))
def test_binary_auroc_and_auprc_agree_with_sklearn(data):
    y, proba, _ = data
    for positive in (0, 1):
        yb = (y == positive).astype(int)
        if yb.min() == yb.max():
            assert math.isnan(cm.auroc(y, proba, positive=positive))
            continue
        assert cm.auroc(y, proba, positive=positive) == pytest.approx(skm.roc_auc_score(yb, proba[:, positive]))
        assert cm.auprc(y, proba, positive=positive) == pytest.approx(
            skm.average_precision_score(yb, proba[:, positive]))
    assert _nan_equal(cm.auroc(y, proba[:, 1]), cm.auroc(y, proba))  # the (N,) form is P(class 1)


@FAST
@given(labels_and_proba(min_k=3, max_k=4, all_classes=True))
def test_multiclass_auroc_and_auprc_agree_with_sklearn(data):
    y, proba, k = data
    assert cm.auroc(y, proba) == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    onehot = np.eye(k)[y]
    assert cm.auprc(y, proba) == pytest.approx(skm.average_precision_score(onehot, proba, average="macro"))
    assert 0.0 <= cm.auroc(y, proba) <= 1.0 and 0.0 <= cm.auprc(y, proba) <= 1.0


@FEW
@given(labels_and_proba(max_k=3))
def test_summary_matches_its_parts(data):
    y, proba, k = data
    s = cm.summary(y, proba)
    pred = proba.argmax(1)
    assert s["n"] == y.size and s["accuracy"] == cm.accuracy(y, pred)
    assert _nan_equal(s["f1"], cm.f1(y, pred, n_classes=k))
    assert all(_in_unit(v) for key, v in s.items() if key != "n")


@FEW
@given(st.integers(0, 50), st.integers(1, 50), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_the_two_wilson_intervals_agree_and_contain_the_estimate(k, n, conf):
    assume(k <= n)
    lo, hi = cm.wilson_interval(k, n, conf)
    z = float(__import__("scipy.stats", fromlist=["norm"]).norm.ppf((1 + conf) / 2))
    lo2, hi2 = ml.wilson_interval(k, n, z)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert lo == pytest.approx(float(lo2), abs=1e-9) and hi == pytest.approx(float(hi2), abs=1e-9)


@FEW
@given(labels_and_proba(max_k=2, min_n=4, max_n=30), st.integers(0, 3))
def test_bootstrap_interval_is_ordered_and_seeded(data, seed):
    y, proba, _ = data
    a = cm.bootstrap_interval(cm.accuracy, y, proba.argmax(1), n_boot=50, seed=seed)
    assert a == cm.bootstrap_interval(cm.accuracy, y, proba.argmax(1), n_boot=50, seed=seed)
    assert 0.0 <= a[0] <= a[1] <= 1.0


# --------------------------------------------------------------------------- image metrics


images = hnp.arrays(np.float64, st.tuples(st.integers(3, 12), st.integers(3, 12)),
                    elements=st.floats(0, 1, allow_nan=False, width=32))


@FEW
@given(images, st.data())
def test_psnr_and_ssim_properties(a, data):
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(0, 1, allow_nan=False, width=32)))
    assert cm.psnr(a, a) == math.inf and cm.ssim(a, a) == pytest.approx(1.0)
    assert cm.psnr(a, b) == pytest.approx(cm.psnr(b, a))  # symmetric for a fixed data range
    s = cm.ssim(a, b)
    assert -1.0 - 1e-9 <= s <= 1.0 + 1e-9 and s == pytest.approx(cm.ssim(b, a), abs=1e-9)
    if not np.array_equal(a, b):
        assert cm.psnr(a, b) == pytest.approx(skm_psnr(a, b))
    q = cm.image_quality(np.stack([a, b]), np.stack([b, b]))
    assert len(q) == 2 and q["psnr"].iloc[1] == math.inf


def skm_psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return 10 * math.log10(1.0 / mse)


# --------------------------------------------------------------------------- multi-label


@FAST
@given(multihot_pairs())
def test_dice_is_f1_per_class_symmetric_and_in_range(pair):
    t, p = pair
    d = ml.dice_per_class(t, p)
    np.testing.assert_allclose(d, ml.dice_per_class(p, t), equal_nan=True)
    assert all(_in_unit(float(x)) for x in d)
    want = skm.f1_score(t, p, average=None, zero_division=np.nan)
    np.testing.assert_allclose(d, want, equal_nan=True)
    np.testing.assert_allclose(ml.dice_per_class(t, t)[t.any(0)], 1.0)


@FAST
@given(multihot_pairs(), st.randoms(use_true_random=False))
def test_multilabel_accuracies_agree_with_sklearn_and_ignore_order(pair, rnd):
    t, p = pair
    assert ml.exact_match(t, p).mean() == pytest.approx(skm.accuracy_score(t, p))  # subset accuracy
    np.testing.assert_allclose(ml.per_class_accuracy(t, p), skm.recall_score(t, p, average=None, zero_division=np.nan),
                               equal_nan=True)
    order = np.array(rnd.sample(range(len(t)), len(t)))
    conf, conf2 = ml.multilabel_confusion(t, p), ml.multilabel_confusion(t[order], p[order])
    np.testing.assert_array_equal(conf.counts, conf2.counts)
    assert (conf.counts >= 0).all() and (np.diag(conf.counts) <= conf.support).all()
    assert (ml.all_found(t, p) >= ml.exact_match(t, p)).all()  # exact match implies all found
    perfect = ml.multilabel_confusion(t, t)
    np.testing.assert_array_equal(np.diag(perfect.counts), perfect.support)


@FAST
@given(st.integers(1, 20), st.integers(1, 4), st.data())
def test_dice_thresholds_are_on_the_grid_and_optimal(n, k, data):
    t = data.draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, 1)))
    s = data.draw(hnp.arrays(np.float64, (n, k), elements=st.integers(0, 20).map(lambda v: v / 20)))
    th, best = ml.dice_thresholds(t, s, step=0.05)
    grid = ml.threshold_grid(0.05)
    assert np.isin(th, grid).all() and ((0 <= best) & (best <= 1)).all()
    pred = ml.apply_thresholds(s, th)
    for c in range(k):  # no other grid threshold does better on the same data
        for g in grid:
            d = ml.dice_per_class(t[:, c:c + 1], (s[:, c:c + 1] >= g).astype(int))[0]
            assert (1.0 if math.isnan(d) else d) <= best[c] + 1e-12
        d = ml.dice_per_class(t[:, c:c + 1], pred[:, c:c + 1])[0]
        assert (1.0 if math.isnan(d) else d) == pytest.approx(best[c])


# --------------------------------------------------------------------------- agreement


@FAST
@given(label_pairs(max_n=30))
def test_kappa_range_and_precision_recall(pair):
    t, p, k = pair
    kappa = ag.cohen_kappa(t, p, k)
    assert math.isnan(kappa) or -1.0 - 1e-9 <= kappa <= 1.0 + 1e-9
    prec, rec = ag.precision_recall(ag.confusion(t, p, k))
    want_p = skm.precision_score(t, p, labels=list(range(k)), average=None, zero_division=np.nan)
    want_r = skm.recall_score(t, p, labels=list(range(k)), average=None, zero_division=np.nan)
    np.testing.assert_allclose(prec, want_p, equal_nan=True)
    np.testing.assert_allclose(rec, want_r, equal_nan=True)


@FAST
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=st.integers(0, 30)),
       st.floats(1, 5))
def test_dirichlet_map_is_a_distribution(counts, alpha):
    theta = ag.dirichlet_multinomial_map(counts, alpha)
    assert theta.shape == counts.shape and (theta >= 0).all()
    np.testing.assert_allclose(theta.sum(1), 1.0)
    # the MAP keeps the order of the counts (a larger count never gets a smaller proportion)
    for row, th in zip(counts, theta):
        order = np.argsort(row, kind="stable")
        assert (np.diff(th[order]) >= -1e-12).all()


@FEW
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=st.integers(0, 20)),
       st.integers(1, 20))
def test_bootstrap_confusions_keep_the_row_totals(c, n):
    c = np.pad(c, ((0, max(0, c.shape[1] - c.shape[0])), (0, max(0, c.shape[0] - c.shape[1]))))
    boots = ag.bootstrap_confusions(c, n, seed=1)
    assert boots.shape == (n, *c.shape)
    np.testing.assert_array_equal(boots.sum(2), np.broadcast_to(c.sum(1), (n, c.shape[0])))


# --------------------------------------------------------------------------- bad input: an atlaskit error, never a numpy one


def _raises_atlaskit(fn, *args, **kwargs):
    with pytest.raises(AtlaskitError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args, **kwargs)
    return info.value


bad_floats = st.sampled_from([np.nan, np.inf, -np.inf])


@FAST
@given(label_pairs(min_n=2), bad_floats, st.data())
def test_nan_or_inf_labels_and_scores_are_refused(pair, bad, data):
    t, p, k = pair
    i = data.draw(st.integers(0, t.size - 1))
    tf = t.astype(float)
    tf[i] = bad
    for fn in (cm.accuracy, cm.confusion, cm.f1, ag.cohen_kappa, ag.confusion):
        err = _raises_atlaskit(fn, tf, p)
        assert "NaN or inf" in str(err)
    proba = np.full((t.size, k), 1.0 / k)
    proba[i, 0] = bad
    for fn in (cm.auroc, cm.auprc, cm.summary):
        assert "NaN or inf" in str(_raises_atlaskit(fn, t, proba))
    img = np.zeros((4, 4))
    img[1, 1] = bad
    for fn in (cm.psnr, cm.ssim):
        assert "NaN or inf" in str(_raises_atlaskit(fn, img, np.zeros((4, 4))))


@FAST
@given(label_pairs(min_n=2), st.integers(1, 3))
def test_mismatched_lengths_are_refused(pair, cut):
    t, p, k = pair
    short = p[: max(0, p.size - cut)]
    for fn in (cm.accuracy, cm.confusion, cm.f1, cm.sensitivity, cm.per_class_table, ag.cohen_kappa, ag.confusion):
        _raises_atlaskit(fn, t, short)
    _raises_atlaskit(cm.auroc, t, np.full((short.size, k), 1.0 / k))
    _raises_atlaskit(cm.by_protein, ["x"] * short.size, t, np.full((t.size, k), 1.0 / k))


@FAST
@given(label_pairs(), st.integers(1, 5))
def test_labels_outside_the_class_list_are_refused(pair, extra):
    t, p, k = pair
    t = t.copy()
    t[0] = k - 1 + extra
    assert "n_classes" in str(_raises_atlaskit(cm.confusion, t, p, n_classes=k))
    assert f"0..{k - 1}" in str(_raises_atlaskit(ag.cohen_kappa, t, p, n_classes=k))
    _raises_atlaskit(cm.per_class_table, t, p, classes=[str(c) for c in range(k)])
    _raises_atlaskit(cm.auroc, t, np.full((t.size, k), 1.0 / k))
    _raises_atlaskit(ag.protein_calls, ["a"] * t.size, t, k)
    neg = p.copy()
    neg[0] = -extra
    _raises_atlaskit(cm.accuracy, t, neg)
    _raises_atlaskit(ag.confusion, p, neg)


@pytest.mark.parametrize("fn, args", [
    (cm.accuracy, ([], [])), (cm.confusion, ([], [])), (cm.f1, ([], [])), (cm.auroc, ([], np.zeros((0, 2)))),
    (cm.summary, ([], np.zeros((0, 2)))), (cm.by_protein, ([], [], np.zeros((0, 2)))),
    (cm.bootstrap_interval, (cm.accuracy, [], [])), (cm.image_quality, (np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))),
    (cm.psnr, (np.zeros((0, 4)), np.zeros((0, 4)))), (cm.ssim, (np.zeros((2, 2)), np.ones((2, 2)))),
    (ag.cohen_kappa, ([], [])), (ag.stratified_bootstrap, ([], [])), (ag.protein_calls, ([], [], 3)),
    (ag.dirichlet_posterior, ([],)), (ag.precision_recall, (np.zeros((0, 0)),)),
    (ag.bootstrap_confusions, (np.zeros((0, 0)), 5)),
    (ml.dice_per_class, (np.zeros((0, 3)), np.zeros((0, 3)))), (ml.dice_thresholds, (np.zeros((0, 3)), np.zeros((0, 3)))),
    (ml.multilabel_confusion, (np.zeros((2, 0)), np.zeros((2, 0)))),
    (ml.accuracy_by_label_count, (np.zeros((2, 3)), np.zeros((2, 3)))),
])
def test_empty_input_is_refused(fn, args):
    _raises_atlaskit(fn, *args)


@pytest.mark.parametrize("fn, args", [
    (cm.accuracy, (np.array(["a", "b"]), [0, 1])), (cm.accuracy, (np.array([0, 1j]), [0, 1])),
    (cm.accuracy, (np.array([0, None], dtype=object), [0, 1])), (cm.accuracy, ([0.5, 1], [0, 1])),
    (cm.accuracy, ([True, False], [0, 1])), (cm.auroc, ([0, 1], ["a", "b"])), (cm.summary, ([0, 1], [[1j, 0], [0, 1]])),
    (cm.psnr, (np.array([["a"] * 4] * 4), np.zeros((4, 4)))), (cm.psnr, (np.zeros((4, 4)), np.zeros((4, 4)), 0)),
    (ag.cohen_kappa, ([0.5], [0])), (ag.cohen_kappa, ([0], [0], 0)), (ag.cohen_kappa, ([0], [0], 1.5)),
    (ag.bootstrap_confusions, (np.array([[1.5, 0], [0, 1]]), 3)), (ag.bootstrap_confusions, (np.array([[np.nan, 0], [0, 1]]), 3)),
    (ag.precision_recall, (np.array([[np.nan, 0], [0, 1]]),)), (ag.precision_recall, (np.array([["a"]]),)),
    (ag.dirichlet_multinomial_map, ([["a", "b"]],)),
    (ml.dice_thresholds, ([[0, 1]], [["a", "b"]])), (ml.apply_thresholds, ([[0.1]], ["x"])),
    (ml.dice_per_class, ([[0, 2]], [[0, 1]])), (ml.dice_thresholds, ([[0, 1]], [[0.5, 1.5]])),
    (ml.wilson_interval, (np.nan, 3)), (ml.wilson_interval, ("a", 3)), (ml.wilson_interval, (4, 3)),
])
def test_wrong_dtypes_and_values_are_refused(fn, args):
    _raises_atlaskit(fn, *args)


def test_unknown_positive_class_is_refused():
    for positive in ("x", True, 2, -1, 0.5):
        for fn in (cm.f1, cm.sensitivity, cm.specificity, cm.precision):
            assert isinstance(_raises_atlaskit(fn, [0, 1], [0, 1], positive=positive), ParameterError)
        assert isinstance(_raises_atlaskit(cm.auroc, [0, 1], [0.2, 0.8], positive=positive), ParameterError)
    assert isinstance(_raises_atlaskit(cm.auprc, [0, 1, 2], np.eye(3), positive=5), ParameterError)


@FEW
@given(st.sampled_from([np.complex128, np.bool_, object, "U3"]), label_pairs())
def test_non_numeric_proba_is_refused(dtype, pair):
    t, _, k = pair
    proba = np.full((t.size, k), 1.0 / k).astype(dtype) if dtype is not object else \
        np.full((t.size, k), None, dtype=object)
    if dtype is np.bool_:
        return  # booleans are 0/1 scores: accepted
    err = _raises_atlaskit(cm.auroc, t, proba)
    assert isinstance(err, DataError)


def test_parameter_errors_are_parameter_errors():
    assert isinstance(_raises_atlaskit(cm.f1, [0, 1], [0, 1], positive="x"), ParameterError)
    assert isinstance(_raises_atlaskit(ag.cohen_kappa, [0], [0], 0), ParameterError)
    assert isinstance(_raises_atlaskit(cm.ssim, np.zeros((4, 4)), np.zeros((4, 4)), -1), ParameterError)
