"""Sequence-only baselines of the deepGPS study: classifiers on real sequences and real labels
(composition + logistic regression / random forest, ESM2 + MLP, the majority class)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.deepgps.proteins import variant_classes, variant_table

__all__ = ["BaselineResult", "sequence_baselines", "logistic_baseline", "majority_baseline",
           "expected_embedding_dim"]


@dataclass
class BaselineResult:
    """Test-set output of one sequence-only classifier.

    Attributes
    ----------
    name : str
    genes : ndarray (n_test,) of gene names
    y_true : ndarray (n_test,) int
    proba : ndarray (n_test, K)
    n_train : int
    notes : str
    """

    name: str
    genes: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray
    n_train: int
    notes: str = ""


def _fit_predict(estimator, x_train, y_train, x_test) -> tuple[np.ndarray, str]:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x_train, y_train)
    notes = "did not fully converge" if any(issubclass(w.category, ConvergenceWarning) for w in caught) else ""
    return estimator.predict_proba(x_test), notes


def sequence_baselines(table: pd.DataFrame, variant: str, features: Mapping[str, pd.DataFrame], *, seed: int = 0,
                       rf_trees: int = 300) -> dict[str, BaselineResult]:
    """Train sequence-only classifiers on the variant's training proteins; predict its test proteins.

    Parameters
    ----------
    table : DataFrame
        From :func:`protein_table`.
    variant : {"single-2", "single-4"}
    features : mapping
        ``{"composition": DataFrame, "signals": DataFrame, "ESM2": DataFrame}`` (rows indexed by
        gene); with composition or targeting-signal features: logistic regression (L2, C chosen by 5-fold cross-validation on the
        training proteins) and a random forest; with ESM2 features: an MLP (one hidden layer of
        256, L2 1e-3).
    seed : int
    rf_trees : int

    Returns
    -------
    dict name → BaselineResult
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if variant not in ("single-2", "single-4"):
        raise ParameterError(f"sequence baselines need a classification variant, not {variant!r}")
    vt = variant_table(table, variant)
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    results: dict[str, BaselineResult] = {}
    for kind, x in features.items():
        missing = set(vt["gene"]) - set(x.index)
        if missing:
            raise DataError(f"{kind} features lack {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
        xtr, xte = x.loc[train["gene"]].to_numpy(), x.loc[test["gene"]].to_numpy()
        ytr = train["label_idx"].to_numpy()
        models = {}
        if kind in ("composition", "signals"):
            models[f"{kind} + logistic regression"] = _logistic_pipeline(seed)
            models[f"{kind} + random forest"] = RandomForestClassifier(
                n_estimators=rf_trees, random_state=seed, n_jobs=1, min_samples_leaf=2)
        else:
            models[f"{kind} + MLP"] = make_pipeline(
                StandardScaler(), MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=1000, random_state=seed))
        for name, est in models.items():
            proba, notes = _fit_predict(est, xtr, ytr, xte)
            results[name] = BaselineResult(name, test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba,
                                           len(train), notes)
    return results


def _logistic_pipeline(seed: int):
    """Standardisation + L2 logistic regression, C chosen by stratified 5-fold CV (accuracy)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return make_pipeline(StandardScaler(),
                         LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), cv=cv, max_iter=5000, scoring="accuracy"))


def logistic_baseline(table: pd.DataFrame, variant: str, features: pd.DataFrame, *, name: str,
                      seed: int = 0) -> BaselineResult:
    """The logistic-regression baseline of :func:`sequence_baselines` on any feature table.

    Use it to compare feature sets on the same split, e.g. the 20 amino-acid composition
    columns against all 420 composition features.

    Parameters
    ----------
    table : DataFrame
        From :func:`protein_table`.
    variant : {"single-2", "single-4"}
    features : DataFrame
        Rows indexed by gene (every protein of the variant), one column per feature.
    name : str
        Name of the result (its row in :func:`classification_table`).
    seed : int
        Seed of the cross-validation folds.

    Returns
    -------
    BaselineResult
        Test-protein probabilities; identical to the ``"composition + logistic regression"``
        result of :func:`sequence_baselines` for the same features and seed.

    Raises
    ------
    ParameterError
        For a variant without classes.
    DataError
        When ``features`` lack proteins of the variant.
    """
    if variant not in ("single-2", "single-4"):
        raise ParameterError(f"a logistic baseline needs a classification variant, not {variant!r}")
    vt = variant_table(table, variant)
    missing = set(vt["gene"]) - set(features.index)
    if missing:
        raise DataError(f"{name}: the features lack {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    proba, notes = _fit_predict(_logistic_pipeline(seed), features.loc[train["gene"]].to_numpy(),
                                train["label_idx"].to_numpy(), features.loc[test["gene"]].to_numpy())
    return BaselineResult(name, test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba, len(train), notes)


def expected_embedding_dim(spec: Mapping[str, Any]) -> int:
    """The vector length an embedder must produce, from its :meth:`SequenceEmbedder.spec` alone.

    Composition: 420 (amino acids + dipeptides) or 20 (``dipeptides=False``); targeting
    signals: the length of :data:`~atlaskit.models.sequence_features.SIGNAL_FEATURES`; ESM2: the width
    of the named model in :data:`atlaskit.models.sequence.ESM2_MODELS` (320 for the 8M model,
    1280 for the paper's 650M model). Independent of the embedder's own ``dim``, so it checks it.

    Raises
    ------
    ParameterError
        For an embedder kind or ESM2 model this table does not know.
    """
    from atlaskit.models.sequence import ESM2_MODELS

    kind = spec.get("kind")
    if kind == "composition":
        return 420 if spec.get("dipeptides", True) else 20
    if kind == "signals":
        from atlaskit.models.sequence_features import SIGNAL_FEATURES

        return len(SIGNAL_FEATURES)
    model = spec.get("model") or kind
    if model in ESM2_MODELS:
        return ESM2_MODELS[model][1]
    raise ParameterError(f"unknown embedder {kind!r} (model {model!r}); known: composition, signals, {', '.join(ESM2_MODELS)}")


def majority_baseline(table: pd.DataFrame, variant: str) -> BaselineResult:
    """Always predict the most frequent training class (probability 1): the floor to beat."""
    vt = variant_table(table, variant)
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    k = len(variant_classes(variant))
    top = int(train["label_idx"].value_counts().idxmax())
    proba = np.zeros((len(test), k))
    proba[:, top] = 1.0
    return BaselineResult("majority class", test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba, len(train))
