"""Agreement metrics of the DeepYeast chapter: Cohen's kappa, stratified bootstrap intervals,
and protein-level calls from a Dirichlet–multinomial model.

Pure functions on numpy arrays; class labels are integers ``0 … K-1``.

Stratified bootstrap, done exactly and fast
-------------------------------------------
DeepYeast reports per-class precision and recall with 95 % intervals from 20,000 bootstrap
resamples of the test set, stratified by the true class. Resampling the ``n_c`` test cells of
true class ``c`` with replacement and counting their predicted labels is the same as drawing row
``c`` of the confusion matrix from ``Multinomial(n_c, cm[c] / n_c)``; :func:`bootstrap_confusions`
draws those rows directly, so 20,000 resamples of 12,500 cells take milliseconds and give the
same distribution as resampling the cells one by one.

Protein-level calls
-------------------
The cells of one protein are treated as multinomial draws from the protein's class proportions
θ, with a Dirichlet(α) prior. The posterior is Dirichlet(α + n), with ``n`` the protein's count
of cells called in each class; its mode (the MAP estimate) is
``θ_k = (n_k + α_k − 1) / (N + Σα − K)`` for α ≥ 1, and the protein's call is the class of the
largest θ_k. Each marginal θ_k is Beta(α_k + n_k, Σα + N − α_k − n_k), which gives credible
intervals of the proportions (for proteins spread over two compartments, e.g. nucleus and
cytoplasm).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics._checks import as_class_indices, as_float64, is_numeric

__all__ = [
    "confusion",
    "cohen_kappa",
    "precision_recall",
    "bootstrap_confusions",
    "stratified_bootstrap",
    "dirichlet_multinomial_map",
    "dirichlet_posterior",
    "protein_calls",
    "accuracy_by_min_cells",
]


def _labels(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of class indices, got shape {a.shape}")
    if a.size == 0:  # an empty input of any dtype is refused later, with the other input in view
        return a.astype(np.int64)
    return as_class_indices(a, name)


def _pair(y_true, y_pred, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise DataError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size == 0:
        raise DataError("no labels to compare (empty arrays)")
    k = int(max(t.max(), p.max()) + 1) if n_classes is None else _n_classes(n_classes)
    if t.min() < 0 or p.min() < 0 or t.max() >= k or p.max() >= k:
        given = "" if n_classes is None else f" (n_classes={k})"
        raise DataError(f"class indices must lie in 0..{k - 1}{given}")
    return t, p, k


def _n_classes(n_classes) -> int:
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ParameterError(f"n_classes must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def confusion(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Confusion matrix (K, K) of counts: rows are true classes, columns predicted classes.

    ``C[i, j]`` = number of items of true class ``i`` predicted ``j``; ``K`` is ``n_classes``,
    or the largest label + 1. Also :func:`atlaskit.metrics.classification.confusion` (one
    implementation, re-exported there).

    Returns
    -------
    numpy.ndarray of int64, shape (K, K)
    """
    t, p, k = _pair(y_true, y_pred, n_classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def cohen_kappa(y_true, y_pred, n_classes: int | None = None) -> float:
    """Cohen's kappa: agreement beyond chance, ``(p_o − p_e) / (1 − p_e)``.

    ``p_o`` is the observed agreement (accuracy) and ``p_e = Σ_k (row_k / N)(col_k / N)`` the
    agreement expected from the two marginals alone. Equals
    :func:`sklearn.metrics.cohen_kappa_score`; NaN when ``p_e = 1`` (both raters use one class
    only), where kappa is undefined.
    """
    cm = confusion(y_true, y_pred, n_classes).astype(np.float64)
    n = cm.sum()
    po = np.trace(cm) / n
    pe = float(cm.sum(1) @ cm.sum(0)) / n**2
    if np.isclose(pe, 1.0):
        return float("nan")
    return float((po - pe) / (1 - pe))


def precision_recall(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (column-wise) and recall (row-wise) of confusion matrices.

    Parameters
    ----------
    cm : ndarray (..., K, K)
        One or a stack of confusion matrices (rows true, columns predicted).

    Returns
    -------
    precision, recall : ndarray (..., K)
        NaN where a class was never predicted (precision) or never present (recall).
    """
    cm = as_float64(cm, "confusion matrices", "hold numbers")
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2] or cm.shape[-1] == 0:
        raise DataError(f"confusion matrices must be (..., K, K) with K >= 1, got shape {cm.shape}")
    if not np.isfinite(cm).all() or (cm < 0).any():
        raise DataError("confusion matrices must hold finite, non-negative counts")
    diag = np.diagonal(cm, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = diag / cm.sum(-2)
        recall = diag / cm.sum(-1)
    return precision, recall


def bootstrap_confusions(cm: np.ndarray, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Confusion matrices of stratified bootstrap resamples of a test set.

    Every row (true class ``c`` with ``n_c`` items) is redrawn as ``Multinomial(n_c, cm[c] / n_c)``:
    exactly the predicted-label counts of ``n_c`` items drawn with replacement from class ``c``.

    Returns
    -------
    ndarray of int64, (n_resamples, K, K)
    """
    cm = np.asarray(cm)
    if not is_numeric(cm) or cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.size == 0:
        raise DataError(f"cm must be a (K, K) matrix of non-negative counts, got {cm.dtype} shape {cm.shape}")
    # counts: a NaN or fractional entry would be truncated silently by the multinomial draw
    if not np.isfinite(cm).all() or (cm < 0).any() or (cm != np.round(cm)).any():
        raise DataError("cm must hold finite, non-negative whole counts")
    if isinstance(n_resamples, bool) or int(n_resamples) < 1:
        raise ParameterError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    rng = np.random.default_rng(seed)
    k = cm.shape[0]
    out = np.zeros((int(n_resamples), k, k), dtype=np.int64)
    for c in range(k):
        n_c = int(cm[c].sum())
        if n_c:
            out[:, c, :] = rng.multinomial(n_c, cm[c] / n_c, size=int(n_resamples))
    return out


def stratified_bootstrap(
    y_true,
    y_pred,
    n_classes: int | None = None,
    *,
    n_resamples: int = 20_000,
    ci: float = 0.95,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class precision and recall with stratified-bootstrap percentile intervals.

    Parameters
    ----------
    y_true, y_pred : array of int (N,)
    n_classes : int, optional
    n_resamples : int
        Bootstrap resamples (DeepYeast: 20,000).
    ci : float
        Interval coverage (0.95: the 2.5th and 97.5th percentiles).
    seed : int
    class_names : sequence of str, optional
        Index of the table (default ``0 … K-1``).

    Returns
    -------
    pandas.DataFrame
        One row per class and a last row ``"accuracy"`` (overall, in the precision columns
        and recall columns alike): ``n`` (true items), ``precision``, ``precision_low``,
        ``precision_high``, ``recall``, ``recall_low``, ``recall_high``. ``attrs`` records
        ``n_resamples`` and ``ci``.
    """
    if not 0 < ci < 1:
        raise ParameterError(f"ci must be in (0, 1), got {ci}")
    cm = confusion(y_true, y_pred, n_classes)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else list(range(k))
    if len(names) != k:
        raise ParameterError(f"{len(names)} class names for {k} classes")
    boots = bootstrap_confusions(cm, n_resamples, seed)
    prec, rec = precision_recall(cm)
    bprec, brec = precision_recall(boots)
    lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: class never predicted
            p_lo, p_hi = np.nanpercentile(bprec, [lo, hi], axis=0)
            r_lo, r_hi = np.nanpercentile(brec, [lo, hi], axis=0)
    acc = np.trace(cm) / cm.sum()
    bacc = np.trace(boots, axis1=1, axis2=2) / cm.sum()
    a_lo, a_hi = np.percentile(bacc, [lo, hi])
    table = pd.DataFrame(
        {
            "n": cm.sum(1),
            "precision": prec, "precision_low": p_lo, "precision_high": p_hi,
            "recall": rec, "recall_low": r_lo, "recall_high": r_hi,
        },
        index=pd.Index(names, name="class"),
    )
    table.loc["accuracy"] = [cm.sum(), acc, a_lo, a_hi, acc, a_lo, a_hi]
    table["n"] = table["n"].astype(np.int64)
    table.attrs.update(n_resamples=int(n_resamples), ci=float(ci))
    return table


def _alpha(alpha, k: int) -> np.ndarray:
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (k,)).copy() if np.ndim(alpha) == 0 else np.asarray(alpha, np.float64)
    if a.shape != (k,):
        raise ParameterError(f"alpha must be a number or a vector of {k} values, got shape {np.shape(alpha)}")
    if not np.all(np.isfinite(a)) or (a < 1).any():
        raise ParameterError("alpha must be >= 1 for the closed-form MAP (the posterior mode lies inside the simplex)")
    return a


def _counts(counts) -> np.ndarray:
    c = as_float64(counts, "counts", "be numbers")
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[1] == 0 or (c < 0).any() or not np.isfinite(c).all():
        raise DataError(f"counts must be a (P, K) array of non-negative numbers, got shape {np.shape(counts)}")
    return c


def dirichlet_multinomial_map(counts, alpha=1.0) -> np.ndarray:
    """MAP class proportions under a Dirichlet(α) prior and multinomial cell counts.

    Parameters
    ----------
    counts : array (P, K) or (K,)
        Cells of each protein called in each class (may be fractional: summed probabilities).
    alpha : float or array (K,)
        Dirichlet concentration, every value ≥ 1 (1 = flat prior; then the MAP is ``n / N``).

    Returns
    -------
    ndarray (P, K)
        ``(n_k + α_k − 1) / (N + Σα − K)``; rows sum to 1 (a protein with no cells and a flat
        prior gets the uniform vector).
    """
    c = _counts(counts)
    a = _alpha(alpha, c.shape[1])
    num = c + a - 1.0
    den = num.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0 / c.shape[1])
    return out


def dirichlet_posterior(counts, alpha=1.0, *, ci: float = 0.95, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Posterior of one protein's class proportions: mean, MAP and Beta credible interval per class.

    Parameters
    ----------
    counts : array (K,)
        The protein's cells per called class.
    alpha : float or array (K,)
    ci : float
        Coverage of the equal-tailed credible interval.
    class_names : sequence of str, optional

    Returns
    -------
    pandas.DataFrame
        Index: classes; columns ``count``, ``posterior_mean`` ((α+n)/(Σα+N)), ``map``,
        ``low``, ``high``.
    """
    from scipy.stats import beta

    c = _counts(counts)
    if c.shape[0] != 1:
        raise DataError("dirichlet_posterior takes the counts of one protein, a (K,) vector")
    c = c[0]
    k = c.size
    a = _alpha(alpha, k)
    post = a + c
    total = post.sum()
    lo, hi = beta.ppf([(1 - ci) / 2, (1 + ci) / 2], post[:, None], (total - post)[:, None]).T
    names = list(class_names) if class_names is not None else list(range(k))
    return pd.DataFrame(
        {"count": c, "posterior_mean": post / total, "map": dirichlet_multinomial_map(c, a)[0], "low": lo, "high": hi},
        index=pd.Index(names, name="class"),
    )


def protein_calls(
    proteins,
    y_pred,
    n_classes: int,
    *,
    y_true=None,
    alpha=1.0,
    probabilities: np.ndarray | None = None,
) -> pd.DataFrame:
    """Protein-level calls: the MAP class of a Dirichlet–multinomial over each protein's cells.

    Parameters
    ----------
    proteins : array (N,)
        Protein of every cell.
    y_pred : array of int (N,)
        Per-cell predicted class.
    n_classes : int
    y_true : array of int (N,), optional
        Per-cell true class (constant within a protein); adds ``true`` and ``correct``.
    alpha : float or array (K,)
        Dirichlet prior (≥ 1).
    probabilities : array (N, K), optional
        Per-cell class probabilities; only used to break ties between classes with equal MAP
        proportions (by the summed probabilities), which a hard count alone cannot order.

    Returns
    -------
    pandas.DataFrame
        One row per protein (sorted by name): ``protein``, ``n_cells``, ``call``, ``map_call``
        (the MAP proportion of the called class), ``true`` and ``correct`` if ``y_true``
        was given, and ``counts`` (a (K,) array per protein).
    """
    prot = np.asarray(proteins)
    pred = _labels(y_pred, "y_pred")
    n_classes = _n_classes(n_classes)
    if prot.shape != pred.shape:
        raise DataError(f"proteins and y_pred differ in length: {prot.size} vs {pred.size}")
    if pred.size == 0:
        raise DataError("no cells")
    if pred.min() < 0 or pred.max() >= n_classes:
        raise DataError(f"y_pred must lie in 0..{n_classes - 1}")
    names, inverse = np.unique(prot, return_inverse=True)
    counts = np.zeros((len(names), n_classes))
    np.add.at(counts, (inverse, pred), 1.0)
    theta = dirichlet_multinomial_map(counts, alpha)
    score = theta.copy()
    if probabilities is not None:
        pr = np.asarray(probabilities, dtype=np.float64)
        if pr.shape != (pred.size, n_classes):
            raise DataError(f"probabilities must be shaped ({pred.size}, {n_classes}), got {pr.shape}")
        summed = np.zeros_like(counts)
        np.add.at(summed, inverse, pr)
        # a tie-breaker far below any difference of MAP proportions
        score = theta + 1e-9 * summed / np.maximum(summed.sum(1, keepdims=True), 1e-12)
    call = score.argmax(1)
    table = pd.DataFrame({
        "protein": names,
        "n_cells": counts.sum(1).astype(np.int64),
        "call": call,
        "map_call": theta[np.arange(len(names)), call],
    })
    if y_true is not None:
        true = _labels(y_true, "y_true")
        if true.shape != pred.shape:
            raise DataError("y_true and y_pred differ in length")
        first = np.zeros(len(names), dtype=np.int64)
        first[inverse[::-1]] = true[::-1]  # the label of each protein's first cell
        if np.any(true != first[inverse]):
            bad = names[np.unique(inverse[true != first[inverse]])[0]]
            raise DataError(f"protein {bad!r} has cells of different true classes")
        table["true"] = first
        table["correct"] = table["call"] == table["true"]
    table["counts"] = list(counts)
    return table


def accuracy_by_min_cells(calls: pd.DataFrame, thresholds: Sequence[int] | None = None) -> pd.DataFrame:
    """Protein-level accuracy over the proteins with at least ``m`` cells, for each threshold ``m``.

    Parameters
    ----------
    calls : DataFrame
        From :func:`protein_calls` with ``y_true`` (columns ``n_cells`` and ``correct``).
    thresholds : sequence of int, optional
        Default: 1, 2, 3, 5, 10, 20, 50 and 100 (those with at least one protein).

    Returns
    -------
    pandas.DataFrame
        ``min_cells``, ``n_proteins``, ``accuracy``.
    """
    if "correct" not in calls.columns:
        raise DataError("calls has no 'correct' column: pass y_true to protein_calls")
    ths = list(thresholds) if thresholds is not None else [1, 2, 3, 5, 10, 20, 50, 100]
    rows = []
    for m in ths:
        sel = calls[calls["n_cells"] >= m]
        if len(sel) == 0:
            continue
        rows.append({"min_cells": int(m), "n_proteins": int(len(sel)), "accuracy": float(sel["correct"].mean())})
    return pd.DataFrame(rows, columns=["min_cells", "n_proteins", "accuracy"])
