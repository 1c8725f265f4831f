"""Multi-label evaluation of the CNN-vs-FCN study (HPA, 13 Cyto 2017 classes).

All functions take numpy-compatible arrays with one row per image and one column per class:
``y_true`` multi-hot (0/1), ``y_score`` confidences in [0, 1] (CNN: the sigmoid outputs; FCN: the
maximum of each heat map), ``y_pred`` multi-hot predictions.

* :func:`dice_thresholds` — per class, the threshold on a grid (step 0.01) that maximises the
  Dice coefficient on the data given (the paper chose them on the training data).
* :func:`apply_thresholds`, :func:`dice_per_class`, :func:`mean_dice`.
* :func:`multilabel_confusion` — the paper's multi-label confusion matrix: a true label that is
  found counts on the diagonal; a true label that is *not* found gets one hit in the column of
  every false positive predicted for that image. Rows are divided by the number of images with
  the true label, so the diagonal is the per-class accuracy (the fraction of that class's images
  in which it was found). :func:`mean_per_class_accuracy` averages that diagonal.
* :func:`accuracy_by_label_count` — the paper's Table 1: accuracy of the images with 1, 2, 3, 4 …
  labels.
* :func:`grouped_accuracy` — the same summaries per group (e.g. per cell line).
* :func:`wilson_interval` — binomial confidence interval for the small counts of a chapter.
* :func:`labels_per_image` — how many labels each image is given (a threshold artefact shows
  here first: mean per-class accuracy is a per-class recall and rewards over-prediction).
* :func:`reliability` and :func:`expected_calibration_error` — do the confidences mean what
  they say (of the (image, class) pairs given confidence ≈ 0.3, are about 30 % true)?

Definitions (written out because the paper does not spell all of them out)
---------------------------------------------------------------------------
Dice of class k = 2 TP / (2 TP + FP + FN) over the images; NaN when the class is neither present
nor predicted (0 / 0). A prediction is ``score >= threshold``. An image is **correct** ("exact
match") when its predicted label set equals its true set; "all found" relaxes this to every true
label being predicted (false positives allowed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics._checks import as_float64, is_numeric

__all__ = [
    "threshold_grid",
    "dice_thresholds",
    "apply_thresholds",
    "dice_per_class",
    "mean_dice",
    "MultilabelConfusion",
    "multilabel_confusion",
    "per_class_accuracy",
    "mean_per_class_accuracy",
    "exact_match",
    "all_found",
    "accuracy_by_label_count",
    "grouped_accuracy",
    "wilson_interval",
    "labels_per_image",
    "reliability",
    "expected_calibration_error",
]


# --------------------------------------------------------------------------- checks


def _as_multihot(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 2:
        raise DataError(f"{name} must be 2-D (images, classes), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {a.shape})")
    if a.dtype == bool:
        return a
    if not np.issubdtype(a.dtype, np.number) or not np.isin(a, (0, 1)).all():
        raise DataError(f"{name} must be multi-hot (only 0 and 1)")
    return a.astype(bool)


def _as_scores(s, name: str = "y_score") -> np.ndarray:
    a = as_float64(s, name)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (images, classes), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{name} contains NaN or inf")
    if a.min() < 0 or a.max() > 1:
        raise DataError(f"{name} must lie in [0, 1] (sigmoid confidences), got [{a.min():.3g}, {a.max():.3g}]")
    return a


def _same_shape(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise DataError(f"{na} {a.shape} and {nb} {b.shape} must have the same shape")


# --------------------------------------------------------------------------- thresholds and Dice


def threshold_grid(step: float = 0.01) -> np.ndarray:
    """Thresholds ``0, step, 2 step, …, 1`` (rounded, so 0.29 is 0.29 and not 0.29000000000000004)."""
    if isinstance(step, bool) or not 0 < float(step) <= 1:
        raise ParameterError(f"step must be in (0, 1], got {step!r}")
    n = int(np.floor(1.0 / step + 1e-9))
    return np.round(np.arange(n + 1) * float(step), 10)


def _counts(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN per class (last axis) from boolean arrays (..., N, K)."""
    tp = (t & p).sum(axis=-2)
    fp = (~t & p).sum(axis=-2)
    fn = (t & ~p).sum(axis=-2)
    return tp, fp, fn


def dice_per_class(y_true, y_pred) -> np.ndarray:
    """Dice coefficient of every class over the images: 2 TP / (2 TP + FP + FN); NaN for a class
    that is neither present nor predicted.

    Returns
    -------
    ndarray of float, shape (K,)
    """
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    tp, fp, fn = _counts(t, p)
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def mean_dice(y_true, y_pred) -> float:
    """Mean of :func:`dice_per_class` over the classes where it is defined."""
    d = dice_per_class(y_true, y_pred)
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def dice_thresholds(y_true, y_score, step: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Per-class thresholds that maximise the Dice coefficient on ``(y_true, y_score)``.

    Every threshold ``t`` of :func:`threshold_grid` (``step`` 0.01: 0.00 … 1.00) predicts
    ``score >= t``; the class's Dice is computed for each and the best is kept. Ties go to the
    **lowest** threshold (among equally good ones it finds the most labels on the data it was
    chosen on). A class absent from the data scores 1 for "predict nothing" (a correct empty
    prediction), so its threshold is the lowest one that predicts no image, or 1.0 if none does.

    Parameters
    ----------
    y_true : array (N, K) of 0/1
    y_score : array (N, K) in [0, 1]
    step : float

    Returns
    -------
    thresholds : ndarray (K,)
    best_dice : ndarray (K,)
        Dice at the chosen threshold on the given data.
    """
    t = _as_multihot(y_true, "y_true")
    s = _as_scores(y_score)
    _same_shape(t, s, "y_true", "y_score")
    grid = threshold_grid(step)  # (T,)
    thresholds = np.empty(t.shape[1])
    best = np.empty(t.shape[1])
    for k in range(t.shape[1]):
        pred = s[None, :, k] >= grid[:, None]  # (T, N)
        tk = t[:, k][None]  # (1, N)
        tp = (pred & tk).sum(1)
        fp = (pred & ~tk).sum(1)
        fn = (~pred & tk).sum(1)
        den = 2 * tp + fp + fn
        dice = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 1.0)  # (T,) empty-vs-empty = 1
        i = int(np.argmax(dice))  # first maximum = lowest threshold
        thresholds[k], best[k] = grid[i], dice[i]
    return thresholds, best


def apply_thresholds(y_score, thresholds) -> np.ndarray:
    """Boolean predictions ``y_score >= thresholds`` (thresholds broadcast over the images)."""
    s = _as_scores(y_score)
    th = as_float64(thresholds, "thresholds")
    if th.shape != (s.shape[1],):
        raise DataError(f"thresholds must have one value per class ({s.shape[1]}), got shape {th.shape}")
    if not np.isfinite(th).all():
        raise DataError("thresholds contain NaN or inf")
    return s >= th[None]


# --------------------------------------------------------------------------- confusion and accuracies


@dataclass(frozen=True)
class MultilabelConfusion:
    """The paper's multi-label confusion matrix.

    Attributes
    ----------
    counts : ndarray (K, K) of int
        ``counts[k, k]``: images in which true label k was found. ``counts[k, j]`` (j ≠ k): over
        the images in which true label k was *missed*, the number of times j was predicted
        falsely (one hit per false positive; an image with two false positives adds two hits).
    missed_without_fp : ndarray (K,) of int
        Images in which label k was missed and nothing was predicted falsely (no column to hit).
    support : ndarray (K,) of int
        Images with true label k.
    classes : tuple of str, optional
    """

    counts: np.ndarray
    missed_without_fp: np.ndarray
    support: np.ndarray
    classes: tuple[str, ...] | None = None

    @property
    def rates(self) -> np.ndarray:
        """``counts`` divided by ``support`` per row (NaN rows for absent classes); diagonal =
        per-class accuracy. Off-diagonal rows may sum to more than the miss rate (several false
        positives per missed label)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.support[:, None] > 0, self.counts / np.maximum(self.support[:, None], 1), np.nan)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Diagonal of :attr:`rates`: fraction of the images with class k in which k was found."""
        return np.diag(self.rates).copy()

    def to_frame(self, normalize: bool = True) -> pd.DataFrame:
        """Rows = true class, columns = predicted class (rates, or counts with ``normalize=False``)."""
        names = list(self.classes) if self.classes is not None else list(range(len(self.support)))
        data = self.rates if normalize else self.counts
        return pd.DataFrame(data, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def multilabel_confusion(y_true, y_pred, classes: Sequence[str] | None = None) -> MultilabelConfusion:
    """The paper's multi-label confusion matrix (see :class:`MultilabelConfusion`).

    Parameters
    ----------
    y_true, y_pred : arrays (N, K) of 0/1
    classes : sequence of str, optional
        Class names (length K), kept for :meth:`MultilabelConfusion.to_frame`.
    """
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    k = t.shape[1]
    if classes is not None and len(classes) != k:
        raise DataError(f"{len(classes)} class names for {k} classes")
    found = t & p  # (N, K)
    missed = t & ~p  # (N, K)
    false_pos = ~t & p  # (N, K)
    counts = missed.T.astype(np.int64) @ false_pos.astype(np.int64)  # (K, K): missed k × false positive j
    counts[np.diag_indices(k)] = found.sum(0)  # the diagonal of the product is 0 (k cannot be both)
    no_fp = ~false_pos.any(1)  # (N,)
    return MultilabelConfusion(
        counts=counts,
        missed_without_fp=(missed & no_fp[:, None]).sum(0).astype(np.int64),
        support=t.sum(0).astype(np.int64),
        classes=None if classes is None else tuple(classes),
    )


def per_class_accuracy(y_true, y_pred) -> np.ndarray:
    """Fraction of the images with class k in which k was predicted (NaN for absent classes)."""
    return multilabel_confusion(y_true, y_pred).per_class_accuracy


def mean_per_class_accuracy(y_true, y_pred) -> float:
    """Mean of :func:`per_class_accuracy` over the classes present in ``y_true``."""
    acc = per_class_accuracy(y_true, y_pred)
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def exact_match(y_true, y_pred) -> np.ndarray:
    """Per image: is the predicted label set exactly the true one? (bool, shape (N,))"""
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    return (t == p).all(1)


def all_found(y_true, y_pred) -> np.ndarray:
    """Per image: was every true label predicted (false positives allowed)? (bool, shape (N,))"""
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    return (p | ~t).all(1)


def accuracy_by_label_count(y_true, y_pred, max_labels: int | None = None) -> pd.DataFrame:
    """The paper's Table 1: accuracy of the images grouped by their number of true labels.

    Parameters
    ----------
    y_true, y_pred : arrays (N, K) of 0/1
    max_labels : int, optional
        Rows for 1 … ``max_labels`` labels, including empty groups (NaN accuracy); default the
        largest count present. Images with more labels are left out.

    Returns
    -------
    DataFrame
        ``n_labels``, ``n_images``, ``exact_match`` (predicted set = true set),
        ``all_found`` (every true label predicted), ``label_recall`` (fraction of the group's
        true labels that were predicted).
    """
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    n = t.sum(1)
    if max_labels is None:
        if n.max() == 0:
            raise DataError("no image has a true label: nothing to group by label count")
        max_labels = int(n.max())
    if isinstance(max_labels, bool) or int(max_labels) < 1:
        raise ParameterError(f"max_labels must be a positive integer, got {max_labels!r}")
    em, af = exact_match(t, p), all_found(t, p)
    rows = []
    for c in range(1, int(max_labels) + 1):
        sel = n == c
        m = int(sel.sum())
        rows.append({
            "n_labels": c,
            "n_images": m,
            "exact_match": float(em[sel].mean()) if m else np.nan,
            "all_found": float(af[sel].mean()) if m else np.nan,
            "label_recall": float((t[sel] & p[sel]).sum() / t[sel].sum()) if m else np.nan,
        })
    return pd.DataFrame(rows)


def grouped_accuracy(y_true, y_pred, groups) -> pd.DataFrame:
    """Accuracy summaries per group of images (e.g. per cell line).

    Returns
    -------
    DataFrame indexed by group (sorted), with ``n_images``, ``exact_match``, ``all_found``,
    ``label_recall`` and ``mean_per_class_accuracy`` (over the classes present in the group).
    """
    t = _as_multihot(y_true, "y_true")
    p = _as_multihot(y_pred, "y_pred")
    _same_shape(t, p, "y_true", "y_pred")
    g = np.asarray(groups, dtype=object)
    if g.shape != (t.shape[0],):
        raise DataError(f"groups must have one entry per image ({t.shape[0]}), got shape {g.shape}")
    em, af = exact_match(t, p), all_found(t, p)
    rows = []
    for name in sorted(pd.unique(g), key=str):
        sel = g == name
        rows.append({
            "group": name,
            "n_images": int(sel.sum()),
            "exact_match": float(em[sel].mean()),
            "all_found": float(af[sel].mean()),
            "label_recall": float((t[sel] & p[sel]).sum() / max(t[sel].sum(), 1)),
            "mean_per_class_accuracy": mean_per_class_accuracy(t[sel], p[sel]),
        })
    return pd.DataFrame(rows).set_index("group")


def wilson_interval(successes, trials, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (95 % for z = 1.96); NaN where trials = 0."""
    k = np.asarray(successes)
    n = np.asarray(trials)
    if not (is_numeric(k) and is_numeric(n)):
        raise DataError(f"successes and trials must be numbers, got {k.dtype} and {n.dtype}")
    k, n = k.astype(np.float64), n.astype(np.float64)
    if not (np.isfinite(k).all() and np.isfinite(n).all()):
        raise DataError("successes and trials must be finite (no NaN or inf)")
    if (k < 0).any() or (k > n).any():
        raise DataError("successes must lie between 0 and trials")
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        den = 1 + z ** 2 / n
        centre = (phat + z ** 2 / (2 * n)) / den
        half = z * np.sqrt(phat * (1 - phat) / n + z ** 2 / (4 * n ** 2)) / den
        # clip rounding (phat = 1 gives centre + half = 1 only up to rounding)
        lo = np.where(n > 0, np.clip(np.minimum(centre - half, phat), 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(np.maximum(centre + half, phat), 0, 1), np.nan)
    return lo, hi


def labels_per_image(y) -> np.ndarray:
    """Number of labels of each image (``y`` multi-hot (N, K), true or predicted) → (N,) int."""
    return _as_multihot(y, "y").sum(1).astype(np.int64)


def reliability(y_true, y_score, n_bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram table over every (image, class) pair.

    Confidences are binned into ``n_bins`` equal bins of [0, 1] (the last bin includes 1.0);
    per bin: the number of pairs, their mean confidence and the fraction that are true labels.
    A calibrated model has ``observed ≈ confidence`` in every bin.

    Returns
    -------
    DataFrame with columns ``bin_low``, ``bin_high``, ``n``, ``confidence``, ``observed``
    (NaN for empty bins), one row per bin.
    """
    t = _as_multihot(y_true, "y_true")
    s = _as_scores(y_score)
    _same_shape(t, s, "y_true", "y_score")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ParameterError(f"n_bins must be a positive integer, not {n_bins!r}")
    n_bins = int(n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(s.ravel(), edges[1:-1], right=False), 0, n_bins - 1)
    truth = t.ravel().astype(np.float64)
    n = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=s.ravel(), minlength=n_bins) / n
        observed = np.bincount(which, weights=truth, minlength=n_bins) / n
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "n": n, "confidence": conf,
                         "observed": observed})


def expected_calibration_error(y_true, y_score, n_bins: int = 10) -> float:
    """Expected calibration error: Σ_bins (n_bin / N) · |observed − confidence| of :func:`reliability`."""
    table = reliability(y_true, y_score, n_bins)
    filled = table[table["n"] > 0]
    weights = filled["n"] / filled["n"].sum()
    return float((weights * (filled["observed"] - filled["confidence"]).abs()).sum())
