"""DeepYeast agreement metrics (atlaskit.metrics.agreement) on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta
from sklearn.metrics import cohen_kappa_score

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import agreement as ag


# ----------------------------------------------------------------------------- confusion, kappa
def test_confusion_rows_are_true_classes():
    cm = ag.confusion([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_kappa_hand_computed():
    # 2x2 table [[20, 5], [10, 15]]: p_o = 35/50 = 0.7, p_e = (25*30 + 25*20)/2500 = 0.5 → κ = 0.4
    y_true = [0] * 25 + [1] * 25
    y_pred = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    assert ag.cohen_kappa(y_true, y_pred) == pytest.approx(0.4)
    assert ag.cohen_kappa(y_true, y_true) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 6, 300))
    assert ag.cohen_kappa(y, p, 6) == pytest.approx(cohen_kappa_score(y, p), abs=1e-12)


def test_kappa_chance_level_and_degenerate():
    # predictions independent of the truth with the same marginals: κ = 0 exactly
    y = [0, 0, 1, 1]
    p = [0, 1, 0, 1]
    assert ag.cohen_kappa(y, p) == pytest.approx(0.0)
    assert np.isnan(ag.cohen_kappa([1, 1, 1], [1, 1, 1], 3))


def test_bad_labels_are_refused():
    with pytest.raises(DataError, match="differ in length"):
        ag.confusion([0, 1], [0])
    with pytest.raises(DataError, match="0..1"):
        ag.confusion([0, 2], [0, 1], 2)
    with pytest.raises(DataError, match="integer"):
        ag.confusion([0.5, 1], [0, 1])


# ----------------------------------------------------------------------------- precision / recall, bootstrap
def test_precision_recall_hand_computed():
    cm = np.array([[3, 1], [2, 4]])
    prec, rec = ag.precision_recall(cm)
    assert prec.tolist() == pytest.approx([3 / 5, 4 / 5])
    assert rec.tolist() == pytest.approx([3 / 4, 4 / 6])
    prec, _ = ag.precision_recall(np.array([[2, 0], [1, 0]]))
    assert np.isnan(prec[1])  # class 1 never predicted


def test_bootstrap_keeps_class_sizes_and_is_seeded():
    cm = np.array([[8, 2, 0], [1, 5, 4], [0, 0, 3]])
    boots = ag.bootstrap_confusions(cm, 500, seed=1)
    assert boots.shape == (500, 3, 3)
    assert (boots.sum(2) == cm.sum(1)).all()  # stratified: every resample has the same class sizes
    assert (boots[:, 2, :2] == 0).all()  # a class predicted perfectly stays perfect
    assert np.array_equal(boots, ag.bootstrap_confusions(cm, 500, seed=1))
    # the expected resampled matrix is the observed one
    assert boots.mean(0) == pytest.approx(cm, abs=0.35)


def test_bootstrap_equals_resampling_cells():
    """The multinomial rows have the same distribution as resampling cells with replacement."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [40, 60])
    p = np.where(rng.random(100) < 0.7, y, 1 - y)
    cm = ag.confusion(y, p, 2)
    fast = ag.precision_recall(ag.bootstrap_confusions(cm, 4000, seed=2))[1][:, 0]
    slow = []
    for _ in range(4000):
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in (0, 1)])
        slow.append(np.mean(p[idx][y[idx] == 0] == 0))
    assert fast.mean() == pytest.approx(np.mean(slow), abs=0.01)
    assert fast.std() == pytest.approx(np.std(slow), rel=0.1)


def test_stratified_bootstrap_table():
    y = np.repeat([0, 1, 2], 50)
    table = ag.stratified_bootstrap(y, y, 3, n_resamples=200, seed=0, class_names=["a", "b", "c"])
    assert list(table.index) == ["a", "b", "c", "accuracy"]
    assert table.loc["accuracy", "precision"] == 1.0
    assert (table[["precision_low", "precision_high", "recall_low", "recall_high"]] == 1.0).all().all()
    assert table.attrs == {"n_resamples": 200, "ci": 0.95}
    rng = np.random.default_rng(3)
    p = np.where(rng.random(150) < 0.7, y, rng.integers(0, 3, 150))
    t = ag.stratified_bootstrap(y, p, 3, n_resamples=2000, seed=0)
    assert (t["recall_low"] <= t["recall"]).all() and (t["recall"] <= t["recall_high"]).all()
    assert (t["precision_low"] <= t["precision"]).all() and (t["precision"] <= t["precision_high"]).all()
    with pytest.raises(ParameterError):
        ag.stratified_bootstrap(y, p, 3, ci=1.5)


# ----------------------------------------------------------------------------- Dirichlet–multinomial
def test_dirichlet_map_hand_computed():
    # counts (6, 3, 1), α = 2: θ = (n + 1) / (10 + 6 - 3) = (7, 4, 2) / 13
    theta = ag.dirichlet_multinomial_map([6, 3, 1], alpha=2.0)
    assert theta[0] == pytest.approx(np.array([7, 4, 2]) / 13)
    # a flat prior gives the observed proportions
    assert ag.dirichlet_multinomial_map([[6, 3, 1]], alpha=1.0)[0] == pytest.approx([0.6, 0.3, 0.1])
    # a per-class prior can decide a tie
    assert ag.dirichlet_multinomial_map([2, 2, 0], alpha=[1.0, 3.0, 1.0]).argmax() == 1
    with pytest.raises(ParameterError, match=">= 1"):
        ag.dirichlet_multinomial_map([1, 2], alpha=0.5)


def test_dirichlet_posterior_beta_marginals():
    post = ag.dirichlet_posterior([7, 3, 0], alpha=1.0, class_names=["nucleus", "cytoplasm", "er"])
    # marginal of θ_nucleus: Beta(1 + 7, 13 - 8) = Beta(8, 5)
    assert post.loc["nucleus", "posterior_mean"] == pytest.approx(8 / 13)
    assert post.loc["nucleus", "low"] == pytest.approx(beta.ppf(0.025, 8, 5))
    assert post.loc["nucleus", "high"] == pytest.approx(beta.ppf(0.975, 8, 5))
    assert post.loc["cytoplasm", "map"] == pytest.approx(0.3)
    assert post["posterior_mean"].sum() == pytest.approx(1.0)


def test_protein_calls_and_min_cells():
    proteins = ["A"] * 5 + ["B"] * 3 + ["C"]
    pred = [0, 0, 1, 0, 2, 1, 1, 0, 2]
    true = [0] * 5 + [0] * 3 + [2]
    calls = ag.protein_calls(proteins, pred, 3, y_true=true)
    assert calls["protein"].tolist() == ["A", "B", "C"]
    assert calls["call"].tolist() == [0, 1, 2]
    assert calls["correct"].tolist() == [True, False, True]
    assert calls["n_cells"].tolist() == [5, 3, 1]
    assert calls["map_call"].tolist() == pytest.approx([0.6, 2 / 3, 1.0])
    by = ag.accuracy_by_min_cells(calls, [1, 3, 5, 10])
    assert by["min_cells"].tolist() == [1, 3, 5]
    assert by["n_proteins"].tolist() == [3, 2, 1]
    assert by["accuracy"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])


def test_protein_call_ties_broken_by_probabilities():
    probs = np.array([[0.6, 0.4], [0.1, 0.9]])
    calls = ag.protein_calls(["A", "A"], [0, 1], 2, probabilities=probs)
    assert calls["call"].tolist() == [1]  # one vote each; the summed probabilities favour class 1


def test_protein_calls_refuse_mixed_truth():
    with pytest.raises(DataError, match="different true classes"):
        ag.protein_calls(["A", "A"], [0, 0], 2, y_true=[0, 1])
