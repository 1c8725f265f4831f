"""deepGPS sequence-only cross-validation (protein-disjoint folds, no test fold in any fit, the
2700-residue cut), the paper's metrics with cytoplasm positive, and the classification ledger row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.deepgps import crossval as cv
from atlaskit.studies.deepgps import effects, evaluation


def toy_table(n_cyto: int = 30, n_nuc: int = 20, long_genes: int = 2) -> pd.DataFrame:
    """A protein table as protein_table gives it: single-2 labels, lengths, one split."""
    genes = [f"G{i:03d}" for i in range(n_cyto + n_nuc)]
    label = ["cytoplasmic"] * n_cyto + ["nucleoplasm"] * n_nuc
    length = [300] * len(genes)
    for i in range(long_genes):  # the first proteins of each class are too long
        length[i] = length[n_cyto + i] = 3000
    return pd.DataFrame({"gene": genes, "split": "train", "stratum": [f"single:{c}" for c in label],
                         "single-2": label, "single-4": label, "length": length})


def id_features(table: pd.DataFrame) -> pd.DataFrame:
    """One feature: the row number of the protein, so a fitted model reveals which proteins it saw."""
    return pd.DataFrame({"row": np.arange(len(table), dtype=float)}, index=table["gene"].to_numpy())


class Spy:
    """A classifier that records the rows it was fitted on and predicts the training prior."""

    fitted: list[set] = []

    def fit(self, x, y):
        Spy.fitted.append(set(x[:, 0].astype(int)))
        self.classes_ = np.unique(y)
        self.prior = np.bincount(y, minlength=2)[self.classes_] / len(y)
        return self

    def predict_proba(self, x):
        return np.tile(self.prior, (len(x), 1))


def test_folds_are_protein_disjoint_and_no_test_fold_is_fitted():
    table = toy_table()
    Spy.fitted = []
    res = cv.cross_validate(table, "single-2", id_features(table), model=Spy, name="spy", n_folds=5, seed=3)
    assert len(Spy.fitted) == res.n_folds == 5
    rows_of = dict(zip(table["gene"], range(len(table))))
    for f, seen in enumerate(Spy.fitted):
        test_rows = {rows_of[g] for g in res.genes[res.folds == f]}
        assert test_rows and not (seen & test_rows)  # the test fold is never part of the fit
        assert seen | test_rows == {rows_of[g] for g in res.genes}  # and everything else is
    assert len(set(res.genes)) == len(res.genes)  # every protein is tested exactly once
    assert np.isfinite(res.proba).all() and np.allclose(res.proba.sum(1), 1)
    # stratified: every fold holds 5 or 6 cytoplasmic and 3 or 4 nucleoplasmic proteins (28 / 18)
    for f in range(5):
        counts = np.bincount(res.y_true[res.folds == f], minlength=2)
        assert 5 <= counts[0] <= 6 and 3 <= counts[1] <= 4


def test_long_sequences_are_left_out():
    table = toy_table(long_genes=2)
    kept, long = cv.length_filter(table, cv.MAX_LENGTH)
    assert len(long) == 4 and (long["length"] > 2700).all() and len(kept) == 46
    res = cv.cross_validate(table, "single-2", None, model="majority class", name="majority class")
    assert len(res.genes) == 46 and not set(long["gene"]) & set(res.genes)
    assert len(cv.cross_validate(table, "single-2", None, model="majority class", name="m", max_length=None).genes) == 50
    with pytest.raises(ParameterError):
        cv.length_filter(table, 0)


def test_majority_and_a_separable_feature():
    table = toy_table(long_genes=0)
    maj = cv.cross_validate(table, "single-2", None, model="majority class", name="majority class")
    assert (maj.proba.argmax(1) == 0).all()  # cytoplasm is the majority of every training fold
    x = pd.DataFrame({"basic": (table["single-2"] == "nucleoplasm").to_numpy(float) + 0.01 * np.arange(50)},
                     index=table["gene"].to_numpy())
    for model in ("random forest", "logistic regression"):
        res = cv.cross_validate(table, "single-2", x, model=model, name=model, trees=50)
        assert (res.proba.argmax(1) == res.y_true).mean() == 1.0


def test_bad_input():
    table = toy_table()
    with pytest.raises(DataError, match="lack"):
        cv.cross_validate(table, "single-2", id_features(table).iloc[:10], model="random forest", name="x")
    with pytest.raises(ParameterError):
        cv.cross_validate(table, "all", id_features(table), model="random forest", name="x")
    with pytest.raises(ParameterError, match="model must be"):
        cv.cross_validate(table, "single-2", id_features(table), model="svm", name="x")
    with pytest.raises(DataError, match="per class"):
        cv.cross_validate(toy_table(30, 3, 0), "single-2", None, model="majority class", name="x", n_folds=5)


def multiloc2_like() -> tuple[np.ndarray, np.ndarray]:
    """The paper's MultiLoc2 row: 32 of 40 cytoplasmic and 15 of 23 nucleoplasmic proteins right."""
    y = np.r_[np.zeros(40, int), np.ones(23, int)]
    pred = np.r_[np.zeros(32, int), np.ones(8, int), np.ones(15, int), np.zeros(8, int)]
    return y, np.eye(2)[pred]


def test_paper_metrics_with_cytoplasm_positive():
    y, proba = multiloc2_like()
    m = evaluation.paper_metrics(y, proba)
    assert m["sensitivity"] == pytest.approx(32 / 40) == pytest.approx(0.800)
    assert m["specificity"] == pytest.approx(15 / 23) and round(m["specificity"], 3) == 0.652
    assert m["accuracy"] == pytest.approx(47 / 63) and round(m["accuracy"], 3) == 0.746
    assert m["f1"] == pytest.approx(2 * 32 / (2 * 32 + 8 + 8))  # TP 32, FP 8, FN 8
    assert m["n"] == 63
    # nucleoplasm positive would swap sensitivity and specificity: the paper's row fits only cytoplasm
    other = evaluation.paper_metrics(y, proba, positive=1)
    assert other["sensitivity"] == pytest.approx(15 / 23) and other["specificity"] == pytest.approx(0.8)
    tp, pos, tn, neg = evaluation.PAPER_TABLE1_COUNTS["MultiLoc2"]
    assert round((tp + tn) / (pos + neg), 3) == evaluation.PAPER_TABLE1["MultiLoc2"]


def test_paper_metrics_table_quotes_the_paper_and_measures_ours():
    from atlaskit.studies.deepgps.baselines import BaselineResult

    y, proba = multiloc2_like()
    ours = BaselineResult("mine", np.array([f"g{i}" for i in range(63)]), y, proba, 0)
    tab = evaluation.paper_metrics_table([ours], n_boot=200, seed=0).set_index("method")
    assert tab.loc["mine", "source"] == "ours" and tab.loc["mine", "accuracy"] == pytest.approx(47 / 63)
    assert tab.loc["mine", "accuracy_lo"] < 47 / 63 < tab.loc["mine", "accuracy_hi"]
    assert tab.loc["MultiLoc2", "source"] == "paper"
    assert (tab.loc["MultiLoc2", "sensitivity"], round(tab.loc["MultiLoc2", "specificity"], 3)) == (0.8, 0.652)
    assert tab.loc["deepGPS-single-2", "auroc"] == evaluation.PAPER_AUROC_SINGLE2
    assert np.isnan(tab.loc["DeepLoc 1.0", "sensitivity"])  # not quoted: never filled in
    assert set(evaluation.PAPER_TABLE1) <= set(tab.index)
    shown = evaluation.metrics_display(tab.reset_index())
    lo, hi = tab.loc["mine", "accuracy_lo"], tab.loc["mine", "accuracy_hi"]
    assert shown.loc["mine", "accuracy [95 %]"] == f"{47 / 63:.3f} [{lo:.3f}, {hi:.3f}]"
    assert shown.loc["MultiLoc2", "accuracy [95 %]"] == "0.746" and shown.loc["MultiLoc2", "proteins"] == "63"
    assert shown.loc["DeepLoc 1.0", "sensitivity"] == "" and shown.loc["DeepLoc 1.0", "AUROC [95 %]"] == ""


def test_ledger_row_uses_the_cross_validated_result():
    table = toy_table(long_genes=0)
    x = pd.DataFrame({"basic": (table["single-2"] == "nucleoplasm").to_numpy(float)}, index=table["gene"].to_numpy())
    model = cv.cross_validate(table, "single-2", x, model="logistic regression", name="signals + LR")
    maj = cv.cross_validate(table, "single-2", None, model="majority class", name="majority class")
    row = effects.classifier_vs_majority(model, maj, n_boot=200, seed=0)
    assert row.ours == pytest.approx(1.0 - 30 / 50) and row.data == "real"
    assert row.verdict == "reproduced"
    assert "5-fold protein-disjoint cross-validation" in row.measure and "0.761" in row.measure
