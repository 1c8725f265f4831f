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


_LINE_EFFECT = "cell lines with few training images score lower (Fig. 8)"
_LINE_PAPER = "accuracy is lower for the cell lines with few images in the HPA set"


def _cell_line_effect(evals: Mapping, train_lines, where: str, *, n_boot: int, seed: int, data: str) -> Effect:
    """Exact match of the line with the most training images minus the line with the fewest, both
    models pooled (paired over the same test fields)."""
    counts = pd.Series(train_lines).value_counts() if train_lines is not None else pd.Series(dtype=int)
    counts = counts.drop("unknown", errors="ignore")
    if len(counts) < 2:
        return Effect.not_testable(_LINE_EFFECT, _LINE_PAPER, "the images of this run carry no cell lines", data=data)
    common, rare = counts.idxmax(), counts.idxmin()
    if counts[common] < 2 * counts[rare]:
        return Effect.not_testable(
            _LINE_EFFECT, _LINE_PAPER, f"the cell lines of this run are nearly balanced in training "
            f"({counts.min()}–{counts.max()} images each), so there is no under-represented line", data=data)
    cnn, fcn = evals["cnn"], evals["fcn"]
    line = cnn.meta["cell_line"].to_numpy()
    keep = np.isin(line, [common, rare])
    if not (line == common).any() or not (line == rare).any():
        return Effect.not_testable(_LINE_EFFECT, _LINE_PAPER, f"no {where} of {common} or {rare}", data=data)
    hits = (ml.exact_match(cnn.y_test, cnn.pred).astype(float) + ml.exact_match(fcn.y_test, fcn.pred)) / 2
    is_common = line[keep] == common

    def gap(h, c):
        return float(h[c].mean() - h[~c].mean()) if c.any() and (~c).any() else np.nan

    est, low, high = bootstrap_interval(gap, hits[keep], is_common, n_boot=n_boot, seed=seed, strata=is_common)
    return Effect.measured(
        _LINE_EFFECT, _LINE_PAPER,
        f"exact match, {common} ({counts[common]} training images) − {rare} ({counts[rare]}), CNN and FCN pooled",
        est, low, high, reason=f"bootstrap over {int(keep.sum())} {where} of the two lines, within each line; "
        "the lines also differ in morphology, so a line's difficulty and its share of training images are confounded, "
        "as in the paper's data",
        data=data)


def measure_effects(evals: Mapping, heterogeneity: dict | None, *, by_label_count: Mapping | None = None,
                    train_lines=None, n_boot: int = 2000, seed: int = 0, data: str = "sim",
                    transfer: Mapping | None = None) -> list[Effect]:
    """The chapter's ledger rows.

    Parameters
    ----------
    evals : mapping
        ``{"cnn": Evaluation, "fcn": Evaluation}`` (:func:`evaluate`), on the same test images.
    heterogeneity : dict or None
        :func:`heterogeneity_verdict`'s result (None when the run has no per-cell truth).
    by_label_count : mapping, optional
        ``{"cnn": Evaluation, "fcn": Evaluation}`` on fields balanced by number of labels
        (:func:`label_count_data`, :func:`evaluate_fresh`); Table 1's row uses them when given,
        else the test split.
    train_lines : sequence of str, optional
        The cell line of every training image: the row for the paper's Fig. 8 compares the line
        with the most training images and the one with the fewest (not testable without lines,
        or when they are balanced within a factor of two).
    transfer : mapping, optional
        ``{"scratch": Evaluation, "pretrained": Evaluation}`` on the same test images: the CNN
        trained from scratch and the CNN pretrained on another task and fine-tuned
        (:mod:`~atlaskit.studies.cnnfcn.transfer`); adds the row "pretraining helps" (mean Dice,
        pretrained minus scratch, paired bootstrap over test images).
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
    table1_evals = by_label_count or evals
    t_cnn, t_fcn = table1_evals["cnn"], table1_evals["fcn"]
    where = "fields balanced by number of labels" if by_label_count else "test images"
    y = t_cnn.y_test.astype(bool)
    n_many = int((y.sum(axis=1) >= 3).sum())
    if n_many == 0:
        rows.append(Effect.not_testable(
            "the FCN's advantage grows with the number of labels (Table 1)",
            "exact match, 1 label: FCN 90 % vs CNN 92 %; 3 labels: 41 % vs 25 %; 4 labels: 29 % vs 0 %",
            "this test set has no image with three or more labels", data=data))
    else:
        rows_ix = np.arange(len(y))
        est, low, high = bootstrap_interval(
            lambda ix: _label_count_gain(y[ix], t_cnn.pred[ix].astype(bool), t_fcn.pred[ix].astype(bool)),
            rows_ix, n_boot=n_boot, seed=seed)
        rows.append(Effect.measured(
            "the FCN's advantage grows with the number of labels (Table 1)",
            "exact match, 1 label: FCN 90 % vs CNN 92 %; 3 labels: 41 % vs 25 %; 4 labels: 29 % vs 0 %",
            "(FCN − CNN exact match, ≥ 3 labels) − (FCN − CNN, 1 label)", est, low, high,
            reason=f"paired bootstrap over {len(y)} {where}; {n_many} have ≥ 3 labels", data=data))
    rows.append(_cell_line_effect(table1_evals, train_lines, where, n_boot=n_boot, seed=seed, data=data))
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
    if transfer is not None:
        rows.append(_transfer_effect(transfer["scratch"], transfer["pretrained"], n_boot=n_boot, seed=seed, data=data))
    return rows


def _transfer_effect(scratch, pretrained, *, n_boot: int, seed: int, data: str) -> Effect:
    """Mean Dice of the pretrained-and-fine-tuned CNN minus the CNN trained from scratch."""
    if not np.array_equal(scratch.y_test, pretrained.y_test):
        raise ValueError("the scratch and the pretrained CNN were evaluated on different test images")
    est, low, high = _paired(ml.mean_dice, scratch, pretrained, n_boot=n_boot, seed=seed)
    return Effect.measured(
        "pretraining on a larger image task helps (the paper's fine-tuned Inception-V3)",
        "the paper fine-tuned an ImageNet-pretrained Inception-V3 on the 13 classes; its scores are not "
        "available to this book, so only the direction (pretraining helps) is tested",
        "mean Dice(CNN pretrained on other simulated proteins, fine-tuned) − (CNN from scratch), test images",
        est, low, high, reason="paired bootstrap over test images; deviation: no ImageNet weights offline, so the "
        "pretraining task is 13-class labelling of simulated crops of other proteins", data=data)
