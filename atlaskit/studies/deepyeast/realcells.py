"""Chapter 04 on real yeast cells: the simulated-trained network measured on them, and a
protein-disjoint probe trained on real cells beside the same probe on simulated ones.

The real cells are the mirror's Toronto WT2 cells (Chong et al. 2015, the screen DeepYeast's
images come from; :func:`atlaskit.analysis.realism.real_yeast_cells`): five GFP-tagged proteins,
two mitochondrial (AAC1, AAC3) and three cytosolic (AAR2, AAH1, AAP1). Labels are per protein
(Breker et al. 2013), so every number here is conditional on these five proteins: cells of one
protein are not independent evidence about other proteins, and the intervals (over cells)
say how precisely *these* proteins were measured, not how another protein would fare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError

__all__ = ["PROTEIN_FOLDS", "SimToReal", "ProbeResult", "sim_to_real", "protein_disjoint_probe", "matched_simulated_proteins",
           "simulated_counterpart", "real_and_simulated_probe"]

#: Two protein-disjoint folds over the five real proteins; each fold trains on one side and tests
#: on the other, and both sides hold both classes (the issue's example split and its mirror image).
PROTEIN_FOLDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("AAC1", "AAR2", "AAH1"), ("AAC3", "AAP1")),
    (("AAC3", "AAP1"), ("AAC1", "AAR2", "AAH1")),
)


@dataclass
class SimToReal:
    """The chapter's network on real cells (see :func:`sim_to_real`)."""

    cells: pd.DataFrame  # one row per cell: protein, klass, predicted, correct, p_true
    accuracy: tuple[float, float, float]  # per-cell accuracy over all the network's classes (estimate, low, high)
    two_way: tuple[float, float, float]  # the same, choosing only between the real cells' classes
    proteins: pd.DataFrame  # per protein: klass, cells, accuracy, two_way, call (mean probabilities), top predictions
    shares: pd.DataFrame  # protein × predicted class: share of the protein's cells

    def summary(self) -> str:
        """Three lines: the protein calls, then both accuracies with their intervals."""
        a, t = self.accuracy, self.two_way
        right = int((self.proteins["call"] == self.proteins["klass"]).sum())
        return (f"{len(self.cells)} real cells of {len(self.proteins)} proteins; {right} of {len(self.proteins)} protein calls right\n"
                f"per-cell accuracy over all classes {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]\n"
                f"per-cell accuracy between {' and '.join(sorted(self.proteins['klass'].unique()))} "
                f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]")


def _class_indices(labels: Sequence[str], classes: Sequence[str], what: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(f"{what}: classes {unknown} are not among the network's classes {list(classes)}")
    return np.array([index[c] for c in labels], dtype=np.int64)


def _accuracy_interval(correct: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    from atlaskit.analysis.effects import bootstrap_interval

    return bootstrap_interval(lambda c: float(np.mean(c)), np.asarray(correct, float), n_boot=n_boot, seed=seed)


def sim_to_real(model, images: np.ndarray, meta: pd.DataFrame, classes: Sequence[str], *, n_boot: int = 1000,
                seed: int = 0) -> SimToReal:
    """Measure a (simulated-trained) DeepYeast network on real cells with per-protein labels.

    Parameters
    ----------
    model : DeepYeastNet or TrainedRun
        The network; it normalises its input itself (training mean image).
    images : ndarray, shape (N, 2, 64, 64)
        Real crops in [0, 1], GFP then RFP.
    meta : DataFrame
        ``group`` (the protein) and ``klass`` (its class, one of ``classes``) per cell.
    classes : sequence of str
        The network's classes, in output order.
    n_boot, seed : int
        Bootstrap resamples (over cells) for the accuracy intervals.

    Returns
    -------
    SimToReal
    """
    from atlaskit.studies.deepyeast.training import predict

    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (2, 64, 64):
        raise DataError(f"sim_to_real: images must be (N, 2, 64, 64), got {images.shape}")
    if len(meta) != len(images) or not {"group", "klass"} <= set(meta.columns):
        raise DataError("sim_to_real: meta needs one row per image with columns 'group' and 'klass'")
    classes = list(classes)
    truth = _class_indices(meta["klass"].tolist(), classes, "sim_to_real")
    probs = predict(model, images)  # (N, K)
    if probs.shape != (len(images), len(classes)):
        raise DataError(f"sim_to_real: the network gives {probs.shape[1]} outputs for {len(classes)} classes")
    predicted = probs.argmax(1)
    present = np.unique(truth)  # the classes the real cells have
    two_way = present[probs[:, present].argmax(1)]
    cells = pd.DataFrame({"protein": meta["group"].to_numpy(), "klass": meta["klass"].to_numpy(),
                          "predicted": np.asarray(classes, dtype=object)[predicted], "correct": predicted == truth,
                          "correct_two_way": two_way == truth, "p_true": probs[np.arange(len(truth)), truth]})
    rows = []
    for protein, part in cells.groupby("protein", sort=False):
        mean = probs[part.index].mean(0)
        top = part["predicted"].value_counts(normalize=True)
        rows.append({"protein": protein, "klass": part["klass"].iloc[0], "cells": len(part),
                     "accuracy": float(part["correct"].mean()), "two_way": float(part["correct_two_way"].mean()),
                     "call": classes[int(mean.argmax())],
                     "top predictions": ", ".join(f"{c} {s:.0%}" for c, s in top.head(3).items())})
    shares = pd.crosstab(cells["protein"], cells["predicted"], normalize="index").round(3)
    return SimToReal(cells, _accuracy_interval(cells["correct"], n_boot, seed),
                     _accuracy_interval(cells["correct_two_way"], n_boot, seed + 1), pd.DataFrame(rows), shares)


def matched_simulated_proteins(proteins: Sequence[str], klass: Sequence[str], counts_by_class: dict[str, int], *,
                               seed: int = 0) -> list[str]:
    """Pick simulated proteins to mirror a real design: ``counts_by_class[c]`` proteins of class ``c``.

    ``proteins`` and ``klass`` list the candidates (one row per protein); a seeded draw within
    each class, returned in class order then candidate order.
    """
    table = pd.DataFrame({"protein": list(proteins), "klass": list(klass)}).drop_duplicates("protein")
    rng = np.random.default_rng([seed, 4])
    chosen = []
    for c, n in counts_by_class.items():
        members = table.loc[table["klass"] == c, "protein"].tolist()
        if len(members) < n:
            raise DataError(f"matched_simulated_proteins: {n} proteins of class {c!r} wanted, {len(members)} available")
        chosen += [members[i] for i in sorted(rng.permutation(len(members))[:n])]
    return chosen


@dataclass
class ProbeResult:
    """Protein-disjoint probe results: the table and each feature set's per-cell correctness."""

    table: pd.DataFrame  # one row per (data,) feature set: accuracy, low, high, test cells, folds
    correct: dict  # (data, features) → bool array over the test cells (folds in order)

    def gap(self, data: str, better: str, worse: str, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
        """Accuracy of ``better`` minus ``worse`` on the same test cells, with a paired bootstrap over cells."""
        from atlaskit.analysis.effects import bootstrap_interval

        a, b = self.correct[(data, better)], self.correct[(data, worse)]
        return bootstrap_interval(lambda x, y: float(np.mean(x) - np.mean(y)), a.astype(float), b.astype(float),
                                  n_boot=n_boot, seed=seed)


def protein_disjoint_probe(features: dict[str, np.ndarray], meta: pd.DataFrame, folds, *, trees: int = 200,
                           n_boot: int = 1000, seed: int = 0, data: str = "") -> ProbeResult:
    """Random forests on each feature set, trained on some proteins and tested on the others.

    Parameters
    ----------
    features : dict of name → ndarray (N, D)
        Feature matrices of the same N cells (e.g. a network layer, hand-crafted features).
    meta : DataFrame
        ``group`` (protein) and ``klass`` per cell.
    folds : sequence of (train proteins, test proteins)
        Protein-disjoint folds; every cell of a test protein is predicted by the forest of its fold.
    trees, n_boot, seed : int
    data : str
        A name for the cells (the table's ``data`` column and the key of ``correct``).

    Returns
    -------
    ProbeResult
        ``table``: one row per feature set — ``data``, ``features``, ``accuracy`` (pooled over the
        folds' test cells), ``low``, ``high`` (bootstrap over test cells), ``test cells``, ``folds``.
    """
    from sklearn.ensemble import RandomForestClassifier

    if isinstance(trees, bool) or not isinstance(trees, int) or trees < 1:
        raise ParameterError(f"trees must be a positive integer, not {trees!r}")
    groups = meta["group"].to_numpy().astype(str)
    labels = meta["klass"].to_numpy().astype(str)
    rows, correct_by = [], {}
    for name, x in features.items():
        x = np.asarray(x, np.float64)
        if len(x) != len(meta):
            raise DataError(f"protein_disjoint_probe: {name} has {len(x)} rows for {len(meta)} cells")
        correct = []
        for train_proteins, test_proteins in folds:
            train = np.isin(groups, list(train_proteins))
            test = np.isin(groups, list(test_proteins))
            if set(train_proteins) & set(test_proteins):
                raise DataError(f"protein_disjoint_probe: proteins {sorted(set(train_proteins) & set(test_proteins))} "
                                "are on both sides of a fold")
            if not train.any() or not test.any() or len(set(labels[train])) < 2:
                raise DataError(f"protein_disjoint_probe: fold {train_proteins} → {test_proteins} has no training or "
                                "test cells, or one class only in training")
            forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
            forest.fit(x[train], labels[train])
            correct.append(forest.predict(x[test]) == labels[test])
        correct = np.concatenate(correct)
        correct_by[(data, name)] = correct
        estimate, low, high = _accuracy_interval(correct, n_boot, seed)
        rows.append({"data": data, "features": name, "accuracy": estimate, "low": low, "high": high,
                     "test cells": int(correct.size), "folds": len(folds)})
    return ProbeResult(pd.DataFrame(rows), correct_by)


def simulated_counterpart(data, real_meta: pd.DataFrame, *, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Simulated cells that mirror the real design: as many proteins per class, as many cells per protein.

    The proteins are drawn (seeded) from the chapter's simulated *test* proteins, so the network
    never trained on them, as it never saw the real ones; their crops are rendered afresh (image
    indices beyond those of the chapter's sets) with the chapter's simulator.

    Parameters
    ----------
    data : YeastData
        The chapter's simulated sets (``data.source == "sim"``).
    real_meta : DataFrame
        ``group`` and ``klass`` of the real cells.

    Returns
    -------
    images : ndarray (M, 2, 64, 64)
    meta : DataFrame
        ``group`` (simulated protein), ``klass``, ``stands_for`` (the real protein it mirrors).
    mapping : dict
        Real protein → simulated protein.
    """
    from atlaskit.data import sim

    if data.source != "sim":
        raise DataError("simulated_counterpart needs the chapter's simulated data (data='sim')")
    real = real_meta.groupby("group", sort=False).agg(klass=("klass", "first"), cells=("klass", "size"))
    meta = data.main.metadata
    test = meta[(meta["split"] == "test") & meta["label"].isin(real["klass"].unique())]
    wanted = real["klass"].value_counts(sort=False).to_dict()
    chosen = matched_simulated_proteins(test["protein"], test["label"], wanted, seed=seed)
    by_class = {c: [p for p in chosen if test.loc[test["protein"] == p, "label"].iloc[0] == c] for c in wanted}
    mapping = {}
    for protein, row in real.iterrows():
        mapping[protein] = by_class[row["klass"]].pop(0)
    n_max = int(real["cells"].max())
    # fresh images: indices from 1,000,000 on never coincide with the chapter's crops
    batch = sim.yeast_crops(list(mapping.values()), n_max, seed=seed, start=1_000_000)
    keep, rows = [], []
    for protein, row in real.iterrows():
        idx = np.flatnonzero(batch.meta["protein"].to_numpy() == mapping[protein])[: int(row["cells"])]
        keep.append(idx)
        rows += [{"group": mapping[protein], "klass": row["klass"], "stands_for": protein}] * len(idx)
    keep = np.concatenate(keep)
    return batch.images[keep].astype(np.float32), pd.DataFrame(rows), mapping


def real_and_simulated_probe(model, data, real_images: np.ndarray, real_meta: pd.DataFrame, *, layer: str = "fc1",
                             trees: int = 200, n_boot: int = 1000, feature_jobs: int = 1, seed: int = 0) -> ProbeResult:
    """The protein-disjoint probe on real cells and on their simulated counterpart.

    For each data set, two feature sets — the network's ``layer`` (a simulated-trained network
    used as a frozen feature calculator, as in the chapter's transfer section) and the
    hand-crafted features (:func:`atlaskit.analysis.yeastfeatures.yeast_features`) — each read by
    a random forest trained on some proteins and tested on the others (:data:`PROTEIN_FOLDS`,
    the simulated proteins standing in for the real ones of the same class and cell count).

    Returns
    -------
    ProbeResult
        ``table`` with ``data`` (real / simulated), ``features``, ``accuracy``, ``low``, ``high``,
        ``test cells``, ``folds``; ``correct`` per (data, features) for paired differences.
    """
    from atlaskit.analysis.yeastfeatures import yeast_features
    from atlaskit.studies.deepyeast.features import layer_features

    sim_images, sim_meta, mapping = simulated_counterpart(data, real_meta, seed=seed)
    sim_folds = tuple((tuple(mapping[p] for p in train), tuple(mapping[p] for p in test)) for train, test in PROTEIN_FOLDS)
    tables, correct = [], {}
    for name, images, meta, folds in (("real", real_images, real_meta, PROTEIN_FOLDS),
                                       ("simulated", sim_images, sim_meta, sim_folds)):
        features = {f"{layer} (network)": layer_features(model, images, layers=(layer,))[layer],
                    "hand-crafted": yeast_features(images, n_jobs=feature_jobs).to_numpy()}
        result = protein_disjoint_probe(features, meta, folds, trees=trees, n_boot=n_boot, seed=seed, data=name)
        tables.append(result.table)
        correct.update(result.correct)
    return ProbeResult(pd.concat(tables, ignore_index=True), correct)
