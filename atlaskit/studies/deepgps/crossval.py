"""Sequence-only classification of the deepGPS study by protein-disjoint cross-validation.

One 4:1 test split of single-2 holds about 70 proteins, so an accuracy measured on it carries a
±0.11 interval. Here every protein of a variant is a test protein exactly once: stratified
K-fold cross-validation over proteins (each protein is one row, so the folds are protein-
disjoint), out-of-fold class probabilities for every protein, and intervals from a bootstrap
over proteins. Every model is fitted on the training folds only; its scaling and its
hyper-parameters too (standardisation inside the pipeline, the logistic regression's C by an
inner cross-validation on the training folds, the random forest at fixed settings). Proteins
longer than :data:`MAX_LENGTH` residues are left out, as in the paper.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.proteins import MAX_LENGTH, variant_table

__all__ = ["MAX_LENGTH", "CV_MODELS", "CrossValResult", "length_filter", "cv_folds", "make_model", "cross_validate"]

#: Model names :func:`make_model` knows.
CV_MODELS = ("random forest", "logistic regression", "majority class")


@dataclass
class CrossValResult(BaselineResult):
    """Out-of-fold output of one classifier over every protein of a variant.

    Adds to :class:`BaselineResult` (whose ``genes``, ``y_true``, ``proba`` then cover every
    protein, and ``n_train`` is the mean training-fold size): ``folds`` (the fold of every
    protein) and ``n_folds``.
    """

    folds: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    n_folds: int = 0


def length_filter(table: pd.DataFrame, max_length: int | None = MAX_LENGTH) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``table`` (with a ``length`` column) into the proteins kept and those longer than ``max_length``.

    ``max_length=None`` keeps everything.
    """
    if "length" not in table.columns:
        raise DataError("the protein table has no 'length' column")
    if max_length is None:
        return table, table.iloc[:0]
    if int(max_length) < 1:
        raise ParameterError(f"max_length must be a positive number of residues, got {max_length!r}")
    long = table["length"] > int(max_length)
    return table[~long], table[long]


def cv_folds(y: np.ndarray, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index (0..n_folds-1) of every row: stratified by ``y``, shuffled with ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    if n_folds < 2:
        raise ParameterError(f"n_folds must be at least 2, got {n_folds}")
    if np.bincount(y).min(initial=len(y)) < n_folds:
        raise DataError(f"{n_folds} folds need at least {n_folds} proteins per class, got counts {np.bincount(y).tolist()}")
    folds = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
        folds[test] = k
    return folds


def make_model(name: str, *, seed: int = 0, trees: int = 500):
    """A fresh, unfitted classifier.

    ``"random forest"``: ``trees`` trees, at least 2 proteins per leaf, fixed settings (no
    tuning). ``"logistic regression"``: standardisation + L2 logistic regression whose C is
    chosen by a stratified 5-fold cross-validation on the data it is fitted on (log-loss).
    ``"majority class"``: the most frequent class of the data it is fitted on, probability 1.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "random forest":
        return RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
    if name == "logistic regression":
        inner = StratifiedKFold(5, shuffle=True, random_state=seed)
        return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), cv=inner, max_iter=5000,
                                                                    scoring="neg_log_loss"))
    if name == "majority class":
        return DummyClassifier(strategy="most_frequent")
    raise ParameterError(f"model must be one of {', '.join(CV_MODELS)}, not {name!r}")


def cross_validate(table: pd.DataFrame, variant: str, features: pd.DataFrame | None, *, model: str | Callable[[], object],
                   name: str, n_folds: int = 5, seed: int = 0, max_length: int | None = MAX_LENGTH,
                   trees: int = 500) -> CrossValResult:
    """Out-of-fold class probabilities of one classifier for every protein of a variant.

    Parameters
    ----------
    table : DataFrame
        From :func:`~atlaskit.studies.deepgps.proteins.protein_table`.
    variant : {"single-2", "single-4"}
    features : DataFrame or None
        Rows indexed by gene (every protein of the variant); None only for the majority class.
    model : str or callable
        A name of :data:`CV_MODELS` (see :func:`make_model`) or a function returning a fresh
        scikit-learn classifier (one per fold).
    name : str
        Name of the result.
    n_folds, seed : int
        Stratified folds over proteins and their shuffling seed (the same seed gives the same
        folds for every model, so their results are paired).
    max_length : int or None
        Proteins longer than this are left out (:data:`MAX_LENGTH`, as in the paper).
    trees : int
        Trees of the random forest.

    Returns
    -------
    CrossValResult

    Raises
    ------
    ParameterError
        For a variant without classes or an unknown model.
    DataError
        When ``features`` lack proteins, or a class has fewer proteins than folds.
    """
    from sklearn.exceptions import ConvergenceWarning

    if variant not in ("single-2", "single-4"):
        raise ParameterError(f"cross-validation needs a classification variant, not {variant!r}")
    kept, _ = length_filter(table, max_length)
    vt = variant_table(kept, variant, max_length=None)  # ``max_length`` above decides
    if vt["gene"].duplicated().any():
        raise DataError("a protein appears twice in the variant table; folds would not be protein-disjoint")
    genes, y = vt["gene"].to_numpy(), vt["label_idx"].to_numpy()
    if features is None:
        x = np.zeros((len(vt), 1))
    else:
        missing = set(genes) - set(features.index)
        if missing:
            raise DataError(f"{name}: the features lack {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
        x = features.loc[genes].to_numpy(dtype=np.float64)
    folds = cv_folds(y, n_folds, seed)
    k = int(y.max()) + 1
    proba = np.full((len(y), k), np.nan)
    notes, sizes = set(), []
    for f in range(n_folds):
        train, test = folds != f, folds == f
        est = model() if callable(model) else make_model(model, seed=seed, trees=trees)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(x[train], y[train])
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            notes.add("did not fully converge in some folds")
        p = np.zeros((int(test.sum()), k))
        p[:, np.asarray(est.classes_, dtype=int)] = est.predict_proba(x[test])
        proba[test] = p
        sizes.append(int(train.sum()))
    return CrossValResult(name, genes, y, proba, int(round(float(np.mean(sizes)))), "; ".join(sorted(notes)),
                          folds=folds, n_folds=n_folds)
