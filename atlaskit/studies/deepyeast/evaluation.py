"""Evaluation: per-cell accuracy with bootstrap intervals, per-protein Dirichlet–multinomial calls,
posterior proportions of proteins spread between two compartments, and the paper's numbers."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError
from atlaskit.metrics import agreement
from atlaskit.studies.deepyeast.data import YeastData
from atlaskit.studies.deepyeast.presets import Preset
from atlaskit.studies.deepyeast.training import predict

__all__ = ["PAPER", "cell_metrics", "evaluate", "protein_level", "protein_accuracy_vs_cells", "prior_sweep",
           "vote_calls", "spread_posteriors", "comparison_table", "one_hot", "forest_vs_network"]

#: The paper's headline numbers (Pärnamaa & Parts 2017).
PAPER = {
    "cell_accuracy": 0.87,           # per cell, test set
    "cell_accuracy_filtered": 0.91,  # per cell, after removing non-cells
    "protein_accuracy": 0.99,        # per protein (Dirichlet–multinomial MAP)
    "protein_accuracy_10": 1.00,     # per protein, proteins with >= 10 cells
    "rf_accuracy": 0.75,             # random forest on CellProfiler features
}


def cell_metrics(y_true, y_pred, classes: Sequence[str], *, n_bootstrap: int, seed: int = 0) -> dict:
    """Accuracy, Cohen's kappa, per-class precision / recall with stratified bootstrap intervals, confusion.

    Returns
    -------
    dict
        ``accuracy``, ``kappa``, ``table`` (:func:`atlaskit.metrics.agreement.stratified_bootstrap`),
        ``confusion`` (DataFrame, rows true, columns predicted), ``n``.
    """
    k = len(classes)
    cm = agreement.confusion(y_true, y_pred, k)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.trace(cm) / cm.sum()),
        "kappa": agreement.cohen_kappa(y_true, y_pred, k),
        "table": agreement.stratified_bootstrap(y_true, y_pred, k, n_resamples=n_bootstrap, seed=seed, class_names=classes),
        "confusion": pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")),
    }


def evaluate(run, data: YeastData, p: Preset, *, seed: int = 0) -> dict:
    """The trained network on the held-out test proteins: predictions and :func:`cell_metrics`.

    Parameters
    ----------
    run : TrainedRun or DeepYeastNet
        From :func:`~atlaskit.studies.deepyeast.training.train` (predicts with its CPU threads).
    data : YeastData
    p : Preset
        ``n_bootstrap`` resamples for the intervals.

    Returns
    -------
    dict
        :func:`cell_metrics`'s keys, and the test crops' ``indices`` (rows of ``data.main``),
        ``y`` (true class indices), ``proteins``, ``probs`` (N, K) and ``pred``.
    """
    test = data.indices("test")
    meta = data.main.metadata
    y = meta["label_idx"].to_numpy()[test]
    proteins = meta["protein"].to_numpy()[test]
    probs = predict(run, data.main, test)
    pred = probs.argmax(1)
    cells = cell_metrics(y, pred, list(data.classes), n_bootstrap=p.n_bootstrap, seed=seed)
    return {**cells, "indices": test, "y": y, "proteins": proteins, "probs": probs, "pred": pred}


def protein_level(proteins, probs: np.ndarray, y_true, classes: Sequence[str], *, alpha=1.0) -> pd.DataFrame:
    """Dirichlet–multinomial MAP call per protein from its cells' predicted classes (ties: summed probabilities)."""
    pred = np.asarray(probs).argmax(1)
    calls = agreement.protein_calls(proteins, pred, len(classes), y_true=y_true, alpha=alpha, probabilities=probs)
    calls["call_name"] = [classes[i] for i in calls["call"]]
    calls["true_name"] = [classes[i] for i in calls["true"]]
    return calls


def protein_accuracy_vs_cells(proteins, probs: np.ndarray, y_true, *, ks: Sequence[int] = (1, 2, 3, 5, 10, 20, 50),
                              n_draws: int = 20, alpha=1.0, seed: int = 0) -> pd.DataFrame:
    """Protein-level accuracy when each protein is called from ``k`` of its cells drawn at random.

    Only proteins with at least ``k`` cells count at ``k``; every protein is drawn ``n_draws``
    times. Returns ``k``, ``n_proteins``, ``accuracy`` (mean over draws), ``low``/``high``
    (2.5 / 97.5 % of the draws' accuracies).
    """
    prot = np.asarray(proteins)
    probs = np.asarray(probs)
    y = np.asarray(y_true)
    names, inverse = np.unique(prot, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        eligible = [m for m in members if m.size >= k]
        if not eligible:
            continue
        accs = []
        for _ in range(n_draws):
            correct = 0
            for m in eligible:
                pick = rng.choice(m, size=k, replace=False)
                pred = probs[pick].argmax(1)
                counts = np.bincount(pred, minlength=probs.shape[1]).astype(float)
                theta = agreement.dirichlet_multinomial_map(counts, alpha)[0] + 1e-9 * probs[pick].sum(0) / k
                correct += int(theta.argmax() == y[m[0]])
            accs.append(correct / len(eligible))
        lo, hi = np.percentile(accs, [2.5, 97.5])
        rows.append({"k": int(k), "n_proteins": len(eligible), "accuracy": float(np.mean(accs)), "low": float(lo),
                     "high": float(hi)})
    return pd.DataFrame(rows)


def prior_sweep(proteins, probs: np.ndarray, y_true, classes: Sequence[str], alphas: Sequence[float]) -> pd.DataFrame:
    """Per-protein calls of :func:`protein_level` under several symmetric Dirichlet priors.

    With one α for every class the MAP proportions ``(n_k + α − 1) / (N + Kα − K)`` share their
    denominator, so α cannot reorder the classes: the calls stay those of the first α, and only
    the MAP proportion of the called class shrinks towards ``1 / K`` as α grows.

    Returns
    -------
    pandas.DataFrame
        ``alpha``, ``accuracy``, ``mean_map`` (mean MAP proportion of the called class over the
        proteins) and ``changed`` (proteins whose call differs from the call under ``alphas[0]``).
    """
    rows, first = [], None
    for a in alphas:
        calls = protein_level(proteins, probs, y_true, classes, alpha=a)
        first = calls["call"].to_numpy() if first is None else first
        rows.append({"alpha": float(a), "accuracy": float(calls["correct"].mean()),
                     "mean_map": float(calls["map_call"].mean()),
                     "changed": int(np.sum(calls["call"].to_numpy() != first))})
    return pd.DataFrame(rows)


def vote_calls(proteins, probs: np.ndarray) -> pd.DataFrame:
    """Two plain ways to call a protein from its cells: a majority vote and averaged probabilities.

    Parameters
    ----------
    proteins : array (N,)
        Protein of every cell.
    probs : array (N, K)
        Per-cell class probabilities; a cell's vote is its most probable class.

    Returns
    -------
    pandas.DataFrame
        One row per protein (sorted by name): ``protein``, ``n_cells``, ``majority`` (the class
        with the most votes, the lowest index among tied ones), ``tied`` (whether several classes
        share the most votes) and ``soft`` (the class of the largest mean probability).
    """
    prot = np.asarray(proteins)
    pr = np.asarray(probs, np.float64)
    if pr.ndim != 2 or pr.shape[0] != prot.size:
        raise DataError(f"probs must be shaped (N, K) with N = len(proteins) = {prot.size}, got {pr.shape}")
    rows = []
    for name in np.unique(prot):
        part = pr[prot == name]
        votes = np.bincount(part.argmax(1), minlength=pr.shape[1])
        rows.append({"protein": name, "n_cells": int(part.shape[0]), "majority": int(votes.argmax()),
                     "tied": bool((votes == votes.max()).sum() > 1), "soft": int(part.mean(0).argmax())})
    return pd.DataFrame(rows)


def spread_posteriors(proteins, probs: np.ndarray, classes: Sequence[str], *, pair=("nucleus", "cytoplasm"),
                      alpha=1.0, ci: float = 0.95, min_fraction: float = 0.0) -> pd.DataFrame:
    """Posterior proportions of two classes for each protein (Dirichlet–multinomial, Beta marginals).

    Parameters
    ----------
    proteins, probs : per-cell protein and class probabilities
    pair : two class names
    min_fraction : keep proteins whose cells are called ≥ this fraction in *each* of the two classes

    Returns
    -------
    pandas.DataFrame
        ``protein``, ``n_cells``, and for each class of the pair ``<class>_count``,
        ``<class>_mean``, ``<class>_low``, ``<class>_high``.
    """
    k = [list(classes).index(c) for c in pair]
    pred = np.asarray(probs).argmax(1)
    prot = np.asarray(proteins)
    rows = []
    for name in np.unique(prot):
        sel = prot == name
        counts = np.bincount(pred[sel], minlength=len(classes))
        frac = counts / counts.sum()
        if min(frac[k[0]], frac[k[1]]) < min_fraction:
            continue
        post = agreement.dirichlet_posterior(counts, alpha, ci=ci, class_names=classes)
        row = {"protein": name, "n_cells": int(counts.sum())}
        for c in pair:
            row[f"{c}_count"] = int(post.loc[c, "count"])
            row[f"{c}_mean"] = float(post.loc[c, "posterior_mean"])
            row[f"{c}_low"] = float(post.loc[c, "low"])
            row[f"{c}_high"] = float(post.loc[c, "high"])
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(ours: Mapping[str, float], *, scale: str, source: str) -> pd.DataFrame:
    """The paper's headline numbers beside ours (keys as in :data:`PAPER`)."""
    labels = {
        "cell_accuracy": "per-cell accuracy (test)",
        "cell_accuracy_filtered": "per-cell accuracy after the cell-quality filter",
        "protein_accuracy": "per-protein accuracy (Dirichlet–multinomial MAP)",
        "protein_accuracy_10": "per-protein accuracy, proteins with ≥ 10 cells",
        "rf_accuracy": "random forest on hand-crafted features",
    }
    rows = [{"measure": labels[k], "paper": PAPER[k], "ours": float(ours[k]) if k in ours else float("nan")}
            for k in PAPER]
    table = pd.DataFrame(rows)
    table["difference"] = table["ours"] - table["paper"]
    table.attrs.update(scale=scale, source=source)
    return table


def one_hot(pred, n_classes: int) -> np.ndarray:
    """Per-cell class predictions (N,) as (N, K) probabilities: 1 for the predicted class."""
    pred = np.asarray(pred)
    if pred.ndim != 1 or not np.issubdtype(pred.dtype, np.integer) or (pred.size and (pred.min() < 0 or pred.max() >= n_classes)):
        raise DataError(f"predictions must be class indices in [0, {n_classes}), got {pred.dtype} shaped {pred.shape}")
    out = np.zeros((pred.size, n_classes))
    out[np.arange(pred.size), pred] = 1.0
    return out


def forest_vs_network(proteins, y_true, network_pred, forest_pred, network_calls: pd.DataFrame,
                      classes: Sequence[str], *, alpha=1.0) -> pd.DataFrame:
    """Per-protein accuracy of the random forest beside the network's (the paper's Fig. S2).

    Parameters
    ----------
    proteins, y_true : arrays (N,)
        Protein and true class index of every test cell.
    network_pred : array (N,)
        The network's class per cell.
    forest_pred : array (N,) of class indices, or (N, K) class probabilities
        The forest's predictions for the same cells; labels are read as one-hot probabilities.
    network_calls : DataFrame
        :func:`protein_level`'s calls of the network (reused, not recomputed).
    classes : the K class names
    alpha : the Dirichlet prior of the forest's calls (the network's were made with theirs)

    Returns
    -------
    pandas.DataFrame
        One row per protein (sorted by name): ``protein``, ``n_cells``, ``true_name``,
        ``network_cells`` / ``forest_cells`` (fraction of the protein's cells each gets right),
        ``network_call`` / ``forest_call`` (class names) and ``network_correct`` /
        ``forest_correct`` (whether the protein-level call is right).
    """
    prot = np.asarray(proteins)
    y = np.asarray(y_true)
    net = np.asarray(network_pred)
    k = len(classes)
    fp = np.asarray(forest_pred)
    forest_probs = one_hot(fp, k) if fp.ndim == 1 else np.asarray(fp, np.float64)
    if not (y.shape == net.shape == prot.shape) or forest_probs.shape != (prot.size, k):
        raise DataError(f"proteins, y_true, network_pred (N,) and forest_pred (N,) or (N, {k}) must describe the "
                        f"same N = {prot.size} cells, got {y.shape}, {net.shape}, {fp.shape}")
    if set(network_calls["protein"]) != set(prot):
        raise DataError("network_calls must be the calls of the same test proteins")
    forest_calls = protein_level(prot, forest_probs, y, classes, alpha=alpha)
    forest_label = forest_probs.argmax(1)
    cells = pd.DataFrame({"protein": prot, "network": net == y, "forest": forest_label == y})
    per = cells.groupby("protein", sort=True).agg(n_cells=("network", "size"), network_cells=("network", "mean"),
                                                  forest_cells=("forest", "mean")).reset_index()
    nc = network_calls.set_index("protein")
    fc = forest_calls.set_index("protein")
    per["true_name"] = per["protein"].map(nc["true_name"])
    per["network_call"] = per["protein"].map(nc["call_name"])
    per["forest_call"] = per["protein"].map(fc["call_name"])
    per["network_correct"] = per["protein"].map(nc["correct"]).astype(bool)
    per["forest_correct"] = per["protein"].map(fc["correct"]).astype(bool)
    return per
