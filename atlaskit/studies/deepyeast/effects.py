"""DeepYeast's headline effects, measured in this run (the chapter's ledger).

Each function returns one :class:`atlaskit.analysis.effects.Effect`, oriented so that the
paper's claim is a positive number; :func:`effects` assembles the chapter's rows. Per-cell
effects resample whole test proteins (cells of one protein are not independent evidence);
transfer effects use the random training subsets (their randomness is in the training).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.analysis.effects import Effect, bootstrap_interval, repeat_interval

__all__ = ["network_vs_forest", "protein_vs_cell", "quality_filter_gain", "transfer_small_n",
           "deep_vs_early_layers", "information_rises", "learned_vs_crafted_real", "measure_effects"]


def network_vs_forest(y, network_pred, forest_pred, proteins, *, n_boot: int, seed: int = 0,
                      data: str = "sim") -> Effect:
    """Per-cell accuracy of the network minus the random forest's on hand-crafted features."""
    y, a, b = (np.asarray(v) for v in (y, network_pred, forest_pred))
    est, low, high = bootstrap_interval(lambda t, p, q: np.mean(p == t) - np.mean(q == t), y, a, b,
                                        groups=proteins, n_boot=n_boot, seed=seed)
    return Effect.measured(
        "the network beats a random forest on hand-crafted features",
        "per-cell test accuracy 87 % (network) vs 75 % (random forest on CellProfiler features)",
        "accuracy(network) − accuracy(forest), test cells", est, low, high,
        reason="bootstrap over test proteins", data=data)


def protein_vs_cell(y, cell_pred, proteins, calls: pd.DataFrame, *, n_boot: int, seed: int = 0,
                    data: str = "sim") -> Effect:
    """Per-protein accuracy (the chapter's calls) minus per-cell accuracy on the same proteins.

    ``calls`` is :func:`protein_level`'s table (columns ``protein`` and ``correct``).
    """
    proteins = np.asarray(proteins).astype(str)
    by_protein = pd.Series(calls["correct"].astype(float).to_numpy(), index=calls["protein"].astype(str))
    protein_correct = by_protein.reindex(proteins).to_numpy()
    cell_correct = (np.asarray(cell_pred) == np.asarray(y)).astype(float)
    weight = 1.0 / pd.Series(proteins).map(pd.Series(proteins).value_counts()).to_numpy()

    def gap(pc, cc, w):  # proteins weighted once each, cells each once
        return float(np.sum(w * pc) / np.sum(w) - np.mean(cc))

    est, low, high = bootstrap_interval(gap, protein_correct, cell_correct, weight, groups=proteins,
                                        n_boot=n_boot, seed=seed)
    return Effect.measured(
        "calling a protein from all its cells beats calling single cells",
        "per-protein accuracy 99 % vs per-cell 87 %",
        "accuracy(protein calls) − accuracy(cells), test proteins", est, low, high,
        reason="bootstrap over test proteins", data=data)


def quality_filter_gain(y, pred, keep, proteins, *, n_boot: int, seed: int = 0, data: str = "sim") -> Effect:
    """Per-cell accuracy on the crops the quality filter keeps minus on all crops."""
    y, pred, keep = np.asarray(y), np.asarray(pred), np.asarray(keep, dtype=bool)

    def gain(t, p, k):
        return float(np.mean(p[k] == t[k]) - np.mean(p == t)) if k.any() else np.nan

    est, low, high = bootstrap_interval(gain, y, pred, keep, groups=proteins, n_boot=n_boot, seed=seed)
    return Effect.measured(
        "the cell-quality filter raises accuracy", "per-cell accuracy 87 % → 91 % after the filter",
        "accuracy(kept crops) − accuracy(all crops), test crops", est, low, high,
        reason="bootstrap over test proteins", data=data)


def _per_repeat_gap(curves: pd.DataFrame, better: str, worse: str, sizes: Sequence[int] | None = None) -> np.ndarray:
    """Per training subset (repeat): mean accuracy of ``better`` minus ``worse`` over ``sizes``."""
    part = curves if sizes is None else curves[curves["n_per_class"].isin(list(sizes))]
    table = part.pivot_table(index=["repeat", "n_per_class"], columns="features", values="accuracy")
    return (table[better] - table[worse]).groupby(level="repeat").mean().to_numpy()


def transfer_small_n(curves: pd.DataFrame, *, learned: str, crafted: str = "hand-crafted", max_n: int = 5,
                     data: str = "sim") -> Effect:
    """Transfer accuracy of the network's features minus hand-crafted ones, at ≤ ``max_n`` images per class."""
    sizes = sorted(n for n in curves["n_per_class"].unique() if n <= max_n)
    gaps = _per_repeat_gap(curves, learned, crafted, sizes)
    est, low, high = repeat_interval(gaps)
    return Effect.measured(
        "learned features transfer better than hand-crafted ones with few examples",
        "on four new compartments, network features reach higher accuracy than CellProfiler "
        "features from a few images per class (Fig. 5)",
        f"accuracy({learned}) − accuracy({crafted}), mean over {', '.join(map(str, sizes))} images per class",
        est, low, high,
        reason=f"t interval over {gaps.size} random training subsets (test-set sampling not included)", data=data)


def deep_vs_early_layers(curves: pd.DataFrame, *, deep: str = "conv3_4", early: str = "conv1_1",
                         data: str = "sim") -> Effect:
    """Transfer accuracy from a deep convolutional layer minus from the first one (Fig. S6)."""
    gaps = _per_repeat_gap(curves, deep, early)
    est, low, high = repeat_interval(gaps)
    n = ", ".join(map(str, sorted(curves["n_per_class"].unique())))
    return Effect.measured(
        "deeper convolutional layers transfer better than early ones",
        "transfer accuracy rises with the depth of the layer the features come from (Fig. S6)",
        f"accuracy({deep}) − accuracy({early}), {n} images per class", est, low, high,
        reason=f"t interval over {gaps.size} random training subsets (test-set sampling not included)", data=data)


def information_rises(information: pd.DataFrame, *, deep: str = "conv3_4", early: str = "conv1_1",
                      n_boot: int, seed: int = 0, data: str = "sim") -> Effect:
    """Median mutual information (bits) of a deep layer's units minus the first layer's (Fig. 3D)."""
    part = information[information["layer"].isin([deep, early])]
    bits, layer = part["bits"].to_numpy(), part["layer"].to_numpy()

    def gap(b, lab):
        return float(np.median(b[lab == deep]) - np.median(b[lab == early]))

    est, low, high = bootstrap_interval(gap, bits, layer, strata=layer, n_boot=n_boot, seed=seed)
    return Effect.measured(
        "units of deeper layers carry more information about the class",
        "mutual information between unit activation and class rises with depth (Fig. 3D)",
        f"median bits({deep}) − median bits({early}), probe cells", est, low, high,
        reason="bootstrap over units within each layer (probe cells fixed)", data=data)


def learned_vs_crafted_real(probe, *, learned: str = "fc1 (network)", crafted: str = "hand-crafted",
                            n_boot: int, seed: int = 0) -> Effect:
    """On real cells: a forest on the (simulated-trained) network's features minus one on hand-crafted
    features, trained on some real proteins and tested on the others
    (:func:`~atlaskit.studies.deepyeast.realcells.real_and_simulated_probe`)."""
    est, low, high = probe.gap("real", learned, crafted, n_boot=n_boot, seed=seed)
    cells = int(probe.correct[("real", learned)].size)
    return Effect.measured(
        "learned features beat hand-crafted ones on real cells",
        "network features separate real localizations better than CellProfiler features (87 % vs 75 %, "
        "network trained on real cells)",
        f"accuracy({learned}) − accuracy({crafted}), real cells of held-out proteins (mitochondrion vs cytoplasm)",
        est, low, high,
        reason=f"paired bootstrap over {cells} real test cells of 5 proteins (2 protein-disjoint folds); the network "
               "was trained on simulated cells only, so the row measures learned features across the sim-to-real gap",
        data="real cells (Chong et al. 2015, 5 proteins)")


def measure_effects(*, y, pred, forest_pred, proteins, calls, keep, transfer_curves: pd.DataFrame, learned: str,
            sweep_curves: pd.DataFrame, information: pd.DataFrame, n_boot: int, seed: int = 0,
            data: str = "sim", real_probe=None) -> list[Effect]:
    """The chapter's ledger rows, in the order of the paper's claims (with ``real_probe``, a
    :class:`~atlaskit.studies.deepyeast.realcells.ProbeResult`, one more row on real cells)."""
    n_boot = int(min(n_boot, 2000))
    rows = [
        network_vs_forest(y, pred, forest_pred, proteins, n_boot=n_boot, seed=seed, data=data),
        protein_vs_cell(y, pred, proteins, calls, n_boot=n_boot, seed=seed, data=data),
        quality_filter_gain(y, pred, keep, proteins, n_boot=n_boot, seed=seed, data=data),
        transfer_small_n(transfer_curves, learned=learned, data=data),
        deep_vs_early_layers(sweep_curves, data=data),
        information_rises(information, n_boot=n_boot, seed=seed, data=data),
    ]
    if real_probe is not None:
        rows.append(learned_vs_crafted_real(real_probe, n_boot=n_boot, seed=seed))
    return rows
