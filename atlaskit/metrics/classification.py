"""Classification and image-generation metrics of deepGPS, as functions on numpy arrays.

Labels are integer class indices ``0..K-1``; ``proba`` is an ``(N, K)`` array of class
probabilities (rows summing to 1) or, for two classes, the ``(N,)`` probability of class 1.

Binary conventions (deepGPS single-2: 0 = cytoplasm, 1 = nucleoplasm)
    The *positive* class is ``positive`` (default 1). sensitivity = TP / (TP + FN) (recall of
    the positive class), specificity = TN / (TN + FP), F1 = 2 TP / (2 TP + FP + FN), AUROC and
    AUPRC (average precision, sklearn's step-wise integral) of the positive-class score.
    Accuracy and AUROC do not depend on which class is positive; the other numbers do.
Multi-class conventions (single-4)
    One-vs-rest per class, then the unweighted mean over classes (macro): sensitivity,
    specificity, F1, AUROC, AUPRC. Accuracy is the fraction of correct predictions.
By protein and by image
    The deepGPS classifier reads only the sequence, so every image of a protein gets the same
    prediction; a per-image table weights proteins by their number of images. :func:`by_protein`
    averages the probabilities of a protein's rows into one row.
Intervals
    :func:`wilson_interval` for a proportion (accuracy), :func:`bootstrap_interval` for any
    metric (percentile bootstrap over items, optionally stratified by class).
Images
    :func:`psnr` and :func:`ssim` wrap :mod:`skimage.metrics` on images in ``[0, data_range]``;
    :func:`image_quality` gives one row per image.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics._checks import as_class_indices, as_float64
from atlaskit.metrics.agreement import confusion  # the one implementation, re-exported here

__all__ = [
    "confusion",
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "auroc",
    "auprc",
    "per_class_table",
    "summary",
    "by_protein",
    "wilson_interval",
    "bootstrap_interval",
    "psnr",
    "ssim",
    "image_quality",
]


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------


def _labels(y, name: str = "y_true") -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise DataError(f"{name} is empty")
    indices = as_class_indices(a, name)
    if (a < 0).any():  # on the input: a huge uint64 is not "negative", as before the cast
        raise DataError(f"{name} holds negative class indices")
    return indices


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} items, y_pred {p.size}")
    return t, p


def _n_classes(n_classes: int | None, *arrays: np.ndarray) -> int:
    k = int(max(int(a.max()) for a in arrays)) + 1
    if n_classes is None:
        return max(k, 2)
    if n_classes < k:
        raise DataError(f"labels go up to {k - 1} but n_classes={n_classes}")
    return int(n_classes)


def _proba(proba, n: int) -> np.ndarray:
    """(N, K) probabilities; a 1-D input is P(class 1) of a binary problem."""
    p = as_float64(proba, "proba")
    if p.ndim == 1:
        p = np.stack([1 - p, p], axis=1)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2:
        raise DataError(f"proba must be (N,) or (N, K) with N={n} and K >= 2, got shape {np.shape(proba)}")
    if not np.isfinite(p).all():
        raise DataError("proba contains NaN or inf")
    # values outside [0, 1] are allowed: AUROC/AUPRC and the argmax only use the order of scores
    return p


def _check_positive(positive, k: int):
    """``positive`` must be None, ``"macro"`` or a class index 0..k-1."""
    if positive is None or (isinstance(positive, str) and positive == "macro"):
        return positive
    if isinstance(positive, (bool, np.bool_)) or not isinstance(positive, (int, np.integer)):
        raise ParameterError(f"positive must be a class index, 'macro' or None, got {positive!r}")
    if not 0 <= int(positive) < k:
        raise ParameterError(f"positive={positive} is not a class index (0..{k - 1})")
    return int(positive)


# ---------------------------------------------------------------------------------------------
# label metrics
# ---------------------------------------------------------------------------------------------


def accuracy(y_true, y_pred) -> float:
    """Fraction of items predicted correctly."""
    t, p = _pair(y_true, y_pred)
    return float((t == p).mean())


def _ovr_counts(cm: np.ndarray, c: int) -> tuple[float, float, float, float]:
    tp = cm[c, c]
    fn = cm[c].sum() - tp
    fp = cm[:, c].sum() - tp
    tn = cm.sum() - tp - fn - fp
    return float(tp), float(fp), float(tn), float(fn)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _per_class(y_true, y_pred, n_classes, fn) -> np.ndarray:
    t, p = _pair(y_true, y_pred)  # this module's checks and messages, and its K (at least 2)
    cm = confusion(t, p, _n_classes(n_classes, t, p))
    return np.array([fn(*_ovr_counts(cm, c)) for c in range(cm.shape[0])])


def _binary_or_macro(values: np.ndarray, positive: int | None) -> float:
    if positive is not None:
        if not 0 <= positive < len(values):
            raise ParameterError(f"positive={positive} is not a class index (0..{len(values) - 1})")
        return float(values[positive])
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _default_positive(y_true, y_pred, n_classes, positive):
    """``positive`` for binary problems (default class 1); None (macro) for K > 2."""
    k = _n_classes(n_classes, _labels(y_true), _labels(y_pred, "y_pred"))
    positive = _check_positive(positive, k)
    if positive == "macro":
        return None
    if k == 2:
        return 1 if positive is None else int(positive)
    return None if positive is None else int(positive)


def sensitivity(y_true, y_pred, *, positive: int | str | None = None, n_classes: int | None = None) -> float:
    """Recall: TP / (TP + FN) of the positive class (binary) or the macro mean over classes.

    ``positive=None``: class 1 for two classes, the macro mean for more; an int picks a class;
    ``"macro"`` forces the macro mean. NaN for a class with no true items.
    """
    pos = _default_positive(y_true, y_pred, n_classes, positive)
    return _binary_or_macro(_per_class(y_true, y_pred, n_classes, lambda tp, fp, tn, fn: _ratio(tp, tp + fn)), pos)


def specificity(y_true, y_pred, *, positive: int | str | None = None, n_classes: int | None = None) -> float:
    """TN / (TN + FP) of the positive class (binary) or the macro mean over classes (one-vs-rest)."""
    pos = _default_positive(y_true, y_pred, n_classes, positive)
    return _binary_or_macro(_per_class(y_true, y_pred, n_classes, lambda tp, fp, tn, fn: _ratio(tn, tn + fp)), pos)


def precision(y_true, y_pred, *, positive: int | str | None = None, n_classes: int | None = None) -> float:
    """TP / (TP + FP) of the positive class (binary) or the macro mean (NaN: nothing predicted)."""
    pos = _default_positive(y_true, y_pred, n_classes, positive)
    return _binary_or_macro(_per_class(y_true, y_pred, n_classes, lambda tp, fp, tn, fn: _ratio(tp, tp + fp)), pos)


def f1(y_true, y_pred, *, positive: int | str | None = None, n_classes: int | None = None) -> float:
    """2 TP / (2 TP + FP + FN) of the positive class (binary) or the macro mean over classes."""
    pos = _default_positive(y_true, y_pred, n_classes, positive)
    return _binary_or_macro(_per_class(y_true, y_pred, n_classes, lambda tp, fp, tn, fn: _ratio(2 * tp, 2 * tp + fp + fn)), pos)


def _ovr_scores(y_true, proba, positive, score_fn) -> float:
    t = _labels(y_true)
    p = _proba(proba, t.size)
    k = p.shape[1]
    if t.max() >= k:
        raise DataError(f"y_true has class {t.max()} but proba has {k} columns")
    positive = _check_positive(positive, k)
    if k == 2 and positive != "macro":
        c = 1 if positive is None else int(positive)
        y = (t == c).astype(int)
        if y.min() == y.max():
            return float("nan")
        return float(score_fn(y, p[:, c]))
    values = []
    for c in range(k):
        y = (t == c).astype(int)
        values.append(float(score_fn(y, p[:, c])) if 0 < y.sum() < y.size else float("nan"))
    values = np.array(values)
    if isinstance(positive, int) and not isinstance(positive, bool):
        return float(values[positive])
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic with average ranks for ties: the value of sklearn's
    ``roc_auc_score`` at a fraction of its cost (bootstraps call it thousands of times)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(y_true, proba, *, positive: int | str | None = None) -> float:
    """Area under the ROC curve (equal to sklearn's ``roc_auc_score``; ties count one half).

    Binary: of ``proba[:, positive]`` (class 1 by default; the same value for either class).
    K > 2: one-vs-rest per class, macro mean (classes absent from ``y_true`` are left out).
    NaN when only one class is present.
    """
    return _ovr_scores(y_true, proba, positive, _rank_auc)


def auprc(y_true, proba, *, positive: int | str | None = None) -> float:
    """Area under the precision-recall curve as average precision (sklearn
    ``average_precision_score``); binary: of the positive class, K > 2: macro one-vs-rest."""
    from sklearn.metrics import average_precision_score

    # sklearn sums precision x recall steps, which can land a rounding step above 1
    # (1.0000000000000002 for a perfect ranking); an area in [0, 1] is clipped back (NaN stays)
    return float(np.clip(_ovr_scores(y_true, proba, positive, average_precision_score), 0.0, 1.0))


def per_class_table(y_true, y_pred, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per class (one-vs-rest): support, sensitivity, specificity, precision, F1."""
    t, p = _pair(y_true, y_pred)
    k = _n_classes(len(classes) if classes is not None else None, t, p)
    cm = confusion(t, p, k)
    names = list(classes) if classes is not None else [str(c) for c in range(k)]
    rows = []
    for c in range(k):
        tp, fp, tn, fn = _ovr_counts(cm, c)
        rows.append({"class": names[c], "support": int(tp + fn), "sensitivity": _ratio(tp, tp + fn),
                     "specificity": _ratio(tn, tn + fp), "precision": _ratio(tp, tp + fp),
                     "f1": _ratio(2 * tp, 2 * tp + fp + fn)})
    return pd.DataFrame(rows)


def summary(y_true, proba, *, positive: int | None = None) -> dict[str, float]:
    """The deepGPS Table 1 metrics for class probabilities ``proba``.

    Predictions are the argmax of ``proba``. Returns accuracy, specificity, sensitivity, F1,
    AUROC, AUPRC (binary: of the positive class, default 1; K > 2: macro one-vs-rest) and ``n``.
    """
    t = _labels(y_true)
    p = _proba(proba, t.size)
    k = p.shape[1]
    pred = p.argmax(axis=1)
    kw = {"positive": positive, "n_classes": k}
    return {
        "accuracy": accuracy(t, pred),
        "specificity": specificity(t, pred, **kw),
        "sensitivity": sensitivity(t, pred, **kw),
        "f1": f1(t, pred, **kw),
        "auroc": auroc(t, p, positive=positive),
        "auprc": auprc(t, p, positive=positive),
        "n": int(t.size),
    }


def by_protein(proteins, y_true, proba) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse per-image rows to one row per protein: mean probability, the protein's label.

    Returns
    -------
    proteins : ndarray of object (P,), in first-appearance order
    y_true : ndarray of int (P,)
    proba : ndarray of float (P, K)

    Raises
    ------
    DataError
        A protein with two different labels.
    """
    prot = pd.Series(np.asarray(proteins, dtype=object))
    t = _labels(y_true)
    p = _proba(proba, t.size)
    if len(prot) != t.size:
        raise DataError(f"{len(prot)} protein names for {t.size} labels")
    df = pd.DataFrame(p).assign(_protein=prot.to_numpy(), _label=t)
    if (df.groupby("_protein", sort=False)["_label"].nunique() > 1).any():
        raise DataError("a protein has rows with different labels")
    g = df.groupby("_protein", sort=False)
    return (np.asarray(g.size().index, dtype=object), g["_label"].first().to_numpy(),
            g[list(range(p.shape[1]))].mean().to_numpy())


# ---------------------------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------------------------


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (scipy ``binomtest(...).proportion_ci``)."""
    from scipy.stats import binomtest

    if n <= 0 or not 0 <= k <= n:
        raise ParameterError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_interval(metric: Callable[..., float], *arrays, n_boot: int = 2000, confidence: float = 0.95,
                       seed: int = 0, stratify=None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(*arrays)`` over resampled items.

    Parameters
    ----------
    metric : callable
        E.g. ``lambda y, p: auroc(y, p)``; NaN results (a resample with one class) are dropped.
    *arrays
        Arrays with the same first dimension, resampled together.
    n_boot : int
    confidence : float
    seed : int
    stratify : array, optional
        Resample within each of its values (keeps the class balance of every resample).
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays) or n == 0:
        raise DataError("bootstrap arrays must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if stratify is None else [np.flatnonzero(np.asarray(stratify) == v)
                                                      for v in pd.unique(np.asarray(stratify))]
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        values[b] = metric(*(a[idx] for a in arrays))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


_MIN_SIDE = 3  # the smallest image with an odd SSIM window that leaves a centre pixel


def _image_pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = as_float64(pred, "generated image")
    t = as_float64(target, "target image")
    if p.shape != t.shape:
        raise DataError(f"generated image {p.shape} and target {t.shape} differ in shape")
    if p.ndim == 3 and p.shape[0] == 1:  # (1, H, W) channel-first single channel
        p, t = p[0], t[0]
    if p.ndim != 2:
        raise DataError(f"expected one (H, W) image, got shape {np.shape(pred)}")
    if min(p.shape) < _MIN_SIDE:
        raise DataError(f"images must be at least {_MIN_SIDE}x{_MIN_SIDE} pixels, got {p.shape}")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise DataError("generated or target image contains NaN or inf")
    return p, t


def _data_range(data_range) -> float:
    if isinstance(data_range, bool) or not np.isfinite(float(data_range)) or float(data_range) <= 0:
        raise ParameterError(f"data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def psnr(pred, target, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (``skimage.metrics.peak_signal_noise_ratio``); inf if equal."""
    from skimage.metrics import peak_signal_noise_ratio

    p, t = _image_pair(pred, target)
    data_range = _data_range(data_range)
    if np.array_equal(p, t):
        return float("inf")
    return float(peak_signal_noise_ratio(t, p, data_range=data_range))


def ssim(pred, target, data_range: float = 1.0) -> float:
    """Structural similarity (``skimage.metrics.structural_similarity``, 7×7 window, Gaussian off)."""
    from skimage.metrics import structural_similarity

    p, t = _image_pair(pred, target)
    data_range = _data_range(data_range)
    win = min(7, min(p.shape) - (1 - min(p.shape) % 2))  # odd window that fits small images
    return float(structural_similarity(t, p, data_range=data_range, win_size=win))


def image_quality(preds, targets, data_range: float = 1.0) -> pd.DataFrame:
    """PSNR and SSIM of every generated image against its target.

    Parameters
    ----------
    preds, targets : array (N, H, W) or (N, 1, H, W)

    Returns
    -------
    pandas.DataFrame with columns ``psnr``, ``ssim`` (N rows, input order)
    """
    p = np.asarray(preds)
    t = np.asarray(targets)
    if p.shape != t.shape:
        raise DataError(f"generated images {p.shape} and targets {t.shape} differ in shape")
    if p.ndim == 4:
        if p.shape[1] != 1:
            raise DataError(f"expected single-channel images, got {p.shape[1]} channels")
        p, t = p[:, 0], t[:, 0]
    if p.ndim != 3:
        raise DataError(f"expected (N, H, W) images, got shape {np.shape(preds)}")
    if len(p) == 0:
        raise DataError("no images to compare (N = 0)")
    rows = [{"psnr": psnr(a, b, data_range), "ssim": ssim(a, b, data_range)} for a, b in zip(p, t)]
    return pd.DataFrame(rows, columns=["psnr", "ssim"])
