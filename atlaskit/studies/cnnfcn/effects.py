"""The CNN-vs-FCN paper's headline effects, measured in this run (the chapter's ledger).

Every effect is "FCN minus CNN" on the same test images (a paired bootstrap over images), so
the paper's claim — the FCN is at least as good, and better on images with many labels — is a
positive number.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from atlaskit.analysis.effects import Effect, bootstrap_interval
from atlaskit.metrics import multilabel as ml

__all__ = ["measure_effects"]


def _paired(statistic, cnn, fcn, *, n_boot: int, seed: int):
    """Bootstrap over test images of ``statistic(y, fcn_pred) − statistic(y, cnn_pred)``."""
    rows = np.arange(len(cnn.y_test))

    def gap(ix):
        return statistic(fcn.y_test[ix], fcn.pred[ix]) - statistic(cnn.y_test[ix], cnn.pred[ix])

    return bootstrap_interval(gap, rows, n_boot=n_boot, seed=seed)


def _label_count_gain(y, cnn_pred, fcn_pred, many: int = 3) -> float:
    """(FCN − CNN exact match on images with ≥ ``many`` labels) − (the same on one-label images)."""
    labels = y.sum(axis=1)
    hit_f, hit_c = ml.exact_match(y, fcn_pred), ml.exact_match(y, cnn_pred)
    one, lots = labels == 1, labels >= many
    if not one.any() or not lots.any():
        return np.nan
    return float((hit_f[lots].mean() - hit_c[lots].mean()) - (hit_f[one].mean() - hit_c[one].mean()))


def measure_effects(evals: Mapping, heterogeneity: dict | None, *, n_boot: int = 2000, seed: int = 0,
                    data: str = "sim") -> list[Effect]:
    """The chapter's ledger rows.

    Parameters
    ----------
    evals : mapping
        ``{"cnn": Evaluation, "fcn": Evaluation}`` (:func:`evaluate`), on the same test images.
    heterogeneity : dict or None
        :func:`heterogeneity_verdict`'s result (None when the run has no per-cell truth).
    """
    cnn, fcn = evals["cnn"], evals["fcn"]
    rows = []
    est, low, high = _paired(ml.mean_per_class_accuracy, cnn, fcn, n_boot=n_boot, seed=seed)
    rows.append(Effect.measured(
        "the FCN matches or beats the CNN on mean per-class accuracy",
        "mean per-class accuracy: FCN 0.696, CNN 0.676",
        "mean per-class accuracy(FCN) − (CNN), test images", est, low, high,
        reason="paired bootstrap over test images", data=data))
    est, low, high = _paired(ml.mean_dice, cnn, fcn, n_boot=n_boot, seed=seed)
    rows.append(Effect.measured(
        "the FCN matches or beats the CNN on mean Dice", "mean Dice: FCN 0.707, CNN 0.705",
        "mean Dice(FCN) − (CNN), test images", est, low, high,
        reason="paired bootstrap over test images", data=data))
    y = cnn.y_test.astype(bool)
    n_many = int((y.sum(axis=1) >= 3).sum())
    if n_many == 0:
        rows.append(Effect.not_testable(
            "the FCN's advantage grows with the number of labels (Table 1)",
            "exact match, 1 label: FCN 90 % vs CNN 92 %; 3 labels: 41 % vs 25 %; 4 labels: 29 % vs 0 %",
            "this test set has no image with three or more labels", data=data))
    else:
        rows_ix = np.arange(len(y))
        est, low, high = bootstrap_interval(
            lambda ix: _label_count_gain(y[ix], cnn.pred[ix].astype(bool), fcn.pred[ix].astype(bool)),
            rows_ix, n_boot=n_boot, seed=seed)
        rows.append(Effect.measured(
            "the FCN's advantage grows with the number of labels (Table 1)",
            "exact match, 1 label: FCN 90 % vs CNN 92 %; 3 labels: 41 % vs 25 %; 4 labels: 29 % vs 0 %",
            "(FCN − CNN exact match, ≥ 3 labels) − (FCN − CNN, 1 label)", est, low, high,
            reason=f"paired bootstrap over test images; {n_many} test images have ≥ 3 labels", data=data))
    lines = pd.Series(cnn.meta["cell_line"]).value_counts()
    rows.append(Effect.not_testable(
        "cell lines with few images score lower (Fig. 8)",
        "accuracy is lower for the under-represented cell lines of the HPA set",
        f"the cell lines of this run are nearly balanced ({lines.min()}–{lines.max()} test images each), "
        "so there is no under-represented line to compare", data=data))
    if heterogeneity is None:
        rows.append(Effect.not_testable(
            "the FCN gains most where a class is shown by few cells (the paper's explanation)",
            "the FCN's heat maps find classes present in only some cells of a field",
            "needs per-cell ground truth, which only simulated fields have", data=data))
    else:
        low, high = heterogeneity["ci"]
        rows.append(Effect.measured(
            "the FCN gains most where a class is shown by few cells (the paper's explanation)",
            "the FCN's heat maps find classes present in only some cells of a field",
            "(FCN − CNN recall, < 50 % of cells show the class) − (the same, ≥ 50 %)",
            heterogeneity["change"], low, high,
            reason="bootstrap over fresh simulated fields with known per-cell classes", data="sim"))
    return rows
