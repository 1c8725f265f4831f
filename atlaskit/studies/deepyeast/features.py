"""Features for random forests: hand-crafted measurements (the paper's CellProfiler baseline, cached
on disk), the network's layer outputs, and the forests built on them — the baseline, the
cell-quality filter and the transfer-learning curves (Fig. 4C, S6)."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import agreement
from atlaskit.studies._scaffold import cpu_threads
from atlaskit.studies.deepyeast import CHAPTER
from atlaskit.studies.deepyeast.data import YeastData
from atlaskit.studies.deepyeast.training import _device_of, _iter_arrays, network

__all__ = ["hand_features", "random_forest_baseline", "stratified_subset", "forest_learning_curve", "quality_filter",
           "quality_training_set", "layer_features", "transfer_curves", "summarize_transfer"]

FEATURE_VERSION = 1


def hand_features(store: ArrayStore, indices=None, *, n_jobs: int = 1, threads: int | None = None) -> pd.DataFrame:
    """Hand-crafted features (:func:`atlaskit.analysis.yeastfeatures.yeast_features`) of store rows, cached on disk.

    The cache file sits beside the chapter's stores (``features/`` under
    :func:`atlaskit.runs.store_root`), keyed by the store's content key and the rows, so a
    re-execution reads it instead of measuring again. ``threads``: CPU threads while measuring
    (:func:`~atlaskit.studies._scaffold.cpu_threads`; None leaves them alone).
    """
    from atlaskit.analysis.yeastfeatures import yeast_features
    from atlaskit.runs import store_root

    idx = np.arange(len(store)) if indices is None else np.asarray(indices, dtype=np.int64)
    key = hashlib.sha256(f"{store.key}|{FEATURE_VERSION}|".encode() + idx.tobytes()).hexdigest()[:20]
    path = store_root(CHAPTER) / "features" / f"features-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return pd.DataFrame(z["values"], columns=[str(c) for c in z["columns"]])
    order = np.argsort(idx)
    images = np.empty((idx.size, 2, 64, 64), np.float32)
    images[order] = np.asarray(store.images[idx[order]], np.float32)
    with cpu_threads(threads):
        table = yeast_features(images, n_jobs=n_jobs)
    path.parent.mkdir(parents=True, exist_ok=True)
    from atlaskit._atomic import atomic_write

    with atomic_write(path) as fh:  # unique temporary name: concurrent runs never collide
        np.savez(fh, values=table.to_numpy(), columns=np.asarray(table.columns, dtype=str))
    return table


def _forest(trees: int, seed: int, **kw):
    from sklearn.ensemble import RandomForestClassifier

    # n_jobs=-1: every core; the forest does not depend on it (each tree has its own seed)
    return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=kw.pop("n_jobs", -1), **kw)


def random_forest_baseline(train_x, train_y, test_x, *, trees: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Random forest on features (the paper's CellProfiler baseline): test predictions and the forest."""
    rf = _forest(trees, seed).fit(np.asarray(train_x), np.asarray(train_y))
    return rf.predict(np.asarray(test_x)), rf


def stratified_subset(y, fraction: float, *, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a class-stratified random subset holding ``fraction`` of each class.

    Each class keeps ``max(1, round(fraction · n_c))`` of its ``n_c`` rows, chosen from one
    random order per class, so smaller fractions are subsets of larger ones (for one ``seed``),
    and ``fraction=1`` returns every row in the original order.

    Parameters
    ----------
    y : array (N,)
        Class labels.
    fraction : float in (0, 1]
    seed : int

    Returns
    -------
    ndarray of int64, sorted
    """
    y = np.asarray(y)
    if not (isinstance(fraction, (int, float, np.floating)) and 0 < fraction <= 1):
        raise ParameterError(f"fraction must be in (0, 1], not {fraction!r}")
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        order = rng.permutation(rows.size)
        keep.append(rows[order[: max(1, int(round(fraction * rows.size)))]])
    return np.sort(np.concatenate(keep)).astype(np.int64)


def forest_learning_curve(train_x, train_y, test_x, test_y, *, fractions: Sequence[float] = (0.25, 0.5, 1.0),
                          trees: int, seed: int = 0) -> pd.DataFrame:
    """Test accuracy of :func:`random_forest_baseline` refitted on class-stratified fractions of the training rows.

    The subsets come from :func:`stratified_subset` (nested; ``fraction=1`` is the full training
    set in its order, so with the same ``trees`` and ``seed`` it reproduces the baseline's fit).

    Returns
    -------
    pandas.DataFrame
        ``fraction``, ``n_train``, ``accuracy``.
    """
    x_tr, y_tr = np.asarray(train_x), np.asarray(train_y)
    x_te, y_te = np.asarray(test_x), np.asarray(test_y)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataError("features and labels differ in length")
    rows = []
    for f in fractions:
        pick = stratified_subset(y_tr, f, seed=seed)
        pred, _ = random_forest_baseline(x_tr[pick], y_tr[pick], x_te, trees=trees, seed=seed)
        rows.append({"fraction": float(f), "n_train": int(pick.size), "accuracy": float(np.mean(pred == y_te))})
    return pd.DataFrame(rows)


def quality_filter(train_x, train_is_cell, test_x, *, trees: int, seed: int = 0, threshold: float = 0.5) -> dict:
    """Random forest separating cells from non-cells (empty or badly cropped patches).

    Returns
    -------
    dict
        ``keep`` (bool per test crop: P(cell) ≥ threshold), ``p_cell`` and the forest.
    """
    y = np.asarray(train_is_cell).astype(bool)
    if y.all() or not y.any():
        raise DataError("the cell-quality filter needs both cells and non-cells to train on")
    rf = _forest(trees, seed, class_weight="balanced").fit(np.asarray(train_x), y.astype(int))
    p_cell = rf.predict_proba(np.asarray(test_x))[:, list(rf.classes_).index(1)]
    return {"keep": p_cell >= threshold, "p_cell": p_cell, "forest": rf}


def quality_training_set(data: YeastData, train_features: pd.DataFrame, *, seed: int = 0, n_jobs: int = 1
                         ) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Features and cell / non-cell labels to train the cell-quality filter on.

    Simulated data: the training split itself (its non-cells are known). Real data: DeepYeast's
    cell / non-cell annotations are not public, so the real training crops count as cells and
    simulated non-cells (as many as 8 % of them) stand in for the bad crops — a weaker filter,
    said so by the returned description.
    """
    from atlaskit.analysis.yeastfeatures import yeast_features
    from atlaskit.data import sim

    train = data.indices("train")
    if data.source == "sim":
        is_cell = data.main.metadata["is_cell"].to_numpy()[train].astype(bool)
        return train_features, is_cell, "simulated training crops with known cells and non-cells"
    n = max(50, int(0.08 * len(train)))
    nc = sim.yeast_noncells(n, seed)
    nc_features = yeast_features(nc.images, n_jobs=n_jobs)[train_features.columns]
    x = pd.concat([train_features, nc_features], ignore_index=True)
    y = np.r_[np.ones(len(train_features), bool), np.zeros(n, bool)]
    return x, y, (f"real training crops as cells and {n} simulated non-cells (DeepYeast's non-cell "
                  "annotations are not public)")



@torch.no_grad()
def layer_features(model, images, indices=None, layers: Sequence[str] = ("fc1",), *,
                   pool: str = "avgmax", batch_size: int = 256) -> dict[str, np.ndarray]:
    """Outputs of named layers as (N, D) feature matrices.

    ``model`` is a DeepYeastNet or a :class:`~atlaskit.studies._scaffold.TrainedRun` (then with
    the run's CPU threads).

    Convolutional and pooling outputs (B, C, H, W) are summarised per channel: ``pool="avg"``
    (global average, C features), ``"avgmax"`` (average and maximum, 2C) — a spatially
    invariant read-out that keeps the matrices small for random forests; fully connected
    outputs are returned as they are.
    """
    if pool not in ("avg", "avgmax"):
        raise ParameterError(f"pool must be 'avg' or 'avgmax', not {pool!r}")
    model, threads = network(model)
    model.eval()
    dev = _device_of(model)
    parts: dict[str, list] = {name: [] for name in layers}
    with cpu_threads(threads, dev):
        for x in _iter_arrays(images, indices, batch_size):
            feats = model.features(x.to(dev), list(layers))
            for name, t in feats.items():
                t = t.float()
                if t.dim() == 4:
                    t = torch.cat([t.mean((2, 3)), t.amax((2, 3))], 1) if pool == "avgmax" else t.mean((2, 3))
                parts[name].append(t.cpu())
    return {name: torch.cat(v).numpy() for name, v in parts.items()}


def transfer_curves(train: Mapping[str, np.ndarray], y_train, test: Mapping[str, np.ndarray], y_test, *,
                    sizes: Sequence[int], repeats: int, trees: int, n_bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """Random forests on each feature set, trained on ``n`` images per class, scored on the test set.

    For every feature set and size, ``repeats`` random class-balanced training subsets are drawn
    (the same subsets for every feature set); sizes above the smallest class are dropped.

    Returns
    -------
    pandas.DataFrame
        ``features``, ``n_per_class``, ``repeat``, ``accuracy``, and ``boot`` (an array of
        stratified-bootstrap accuracies of that repeat's test predictions, for intervals).
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    classes = np.unique(y_train)
    smallest = min(int((y_train == c).sum()) for c in classes)
    rows = []
    rng = np.random.default_rng(seed)
    for n in [s for s in sizes if s <= smallest]:
        for r in range(repeats):
            pick = np.concatenate([rng.choice(np.flatnonzero(y_train == c), n, replace=False) for c in classes])
            for name in train:
                rf = _forest(trees, seed + r).fit(train[name][pick], y_train[pick])
                pred = rf.predict(test[name])
                cm = agreement.confusion(y_test, pred, len(classes))
                boots = agreement.bootstrap_confusions(cm, n_bootstrap, seed + r)
                rows.append({"features": name, "n_per_class": int(n), "repeat": r, "accuracy": float(np.trace(cm) / cm.sum()),
                             "boot": np.trace(boots, axis1=1, axis2=2) / cm.sum()})
    return pd.DataFrame(rows)


def summarize_transfer(curves: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    """Mean accuracy per feature set and size, with an interval over repeats × bootstrap resamples."""
    rows = []
    for (name, n), part in curves.groupby(["features", "n_per_class"], sort=False):
        pooled = np.concatenate(part["boot"].to_list())
        lo, hi = np.percentile(pooled, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
        rows.append({"features": name, "n_per_class": n, "accuracy": float(part["accuracy"].mean()),
                     "low": float(lo), "high": float(hi), "repeats": len(part)})
    return pd.DataFrame(rows)
