"""cytoself's headline effects, measured in this run (the chapter's ledger).

Comparisons between variants are paired by training repeat (repeat ``r`` of every variant shares
its seed and its data), and their interval is a t interval over the repeats: the randomness that
matters is the training's. With few repeats that interval is wide, and the verdict says so.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from atlaskit.analysis.effects import Effect, bootstrap_interval, repeat_interval
from atlaskit.errors import ParameterError

__all__ = ["perplexity_gain", "score_gap", "spectra_find_family", "heldout_find_family", "zeroing_contrast",
           "zeroing_effect", "band_gap", "band_effect", "measure_effects"]

#: The ledger's wording of the paper's feature-zeroing claim (Fig. 5).
ZEROING_EFFECT = "zeroing a family's feature cluster removes its pattern from reconstructions (Fig. 5)"
ZEROING_PAPER = "decoding with one index cluster zeroed erases that cluster's structures (Fig. 5)"

#: The ledger's wording of the grey band of the paper's atlas (Fig. 3a).
BAND_EFFECT = "proteins in both nucleus and cytoplasm lie between the two on the atlas (Fig. 3a)"
BAND_PAPER = "nucleus-and-cytoplasm proteins form a band between the nuclear and cytoplasmic clusters (Fig. 3a)"

#: Proteins needed in each group of the nucleus ↔ cytoplasm axis for the band's ledger row.
BAND_MIN_PROTEINS = 3

#: The ledger's wording of the paper's orphan claim (Fig. 4c–e).
ORPHAN_EFFECT = "a protein never seen in training is placed with its localization family (Fig. 4c–e)"
ORPHAN_PAPER = "an orphan protein's feature spectrum correlates best with its family's consensus (Fig. 4c–e)"

#: What each ablation removes, for the ledger's wording (the paper's Table 1 rows).
ABLATED = {"no_pretext": "the protein-ID pretext task", "no_split": "split quantization",
           "no_nucleus": "the nucleus channel", "no_distance": "the nucleus distance transform"}


def _best_epoch_value(run, key: str) -> float:
    history = run.history
    return float(history.val[history.epochs.index(history.best_epoch)][key])


def perplexity_gain(runs: Mapping, *, data: str = "sim") -> Effect:
    """VQ2 validation perplexity (best epoch) of ``full`` minus ``no_split``, paired by repeat."""
    repeats = sorted(r for v, r in runs if v == "full" and ("no_split", r) in runs)
    gaps = [_best_epoch_value(runs[("full", r)], "metric_perplexity2")
            - _best_epoch_value(runs[("no_split", r)], "metric_perplexity2") for r in repeats]
    est, low, high = repeat_interval(gaps)
    return Effect.measured(
        "split quantization keeps more of the global codebook in use (Fig. 1c)",
        "VQ2 perplexity is much higher with split quantization than without",
        "VQ2 perplexity(full) − perplexity(no_split), validation images, best epoch", est, low, high,
        reason=f"t interval over {len(gaps)} training repeats", data=data)


def _scores_by_repeat(scores: pd.DataFrame) -> pd.DataFrame:
    """``repeat × variant`` table of clustering scores."""
    return scores.pivot_table(index="repeat", columns="variant", values="score")


def score_gap(scores: pd.DataFrame, other: str, *, effect: str, paper: str, data: str = "sim") -> Effect:
    """Clustering score of ``full`` minus ``other``, paired by repeat."""
    wide = _scores_by_repeat(scores).dropna(subset=["full", other])
    est, low, high = repeat_interval((wide["full"] - wide[other]).to_numpy())
    return Effect.measured(effect, paper, f"clustering score(full) − score({other}), test images", est, low, high,
                           reason=f"t interval over {len(wide)} training repeats", data=data)


def spectra_find_family(loo: pd.DataFrame, families: int, *, n_boot: int = 2000, seed: int = 0,
                        data: str = "sim") -> Effect:
    """Leave-one-out top-1 rate of the feature spectra (:func:`orphan_accuracy`) minus chance.

    Every protein here was in training (its own ID class): this measures how the training
    proteins' spectra cluster by family, not the placement of an unseen protein
    (:func:`heldout_find_family`).
    """
    hits = (loo["rank"] == 1).to_numpy(dtype=float)
    chance = 1.0 / families
    est, low, high = bootstrap_interval(lambda h: float(h.mean() - chance), hits, n_boot=n_boot, seed=seed)
    return Effect.measured(
        "the feature spectra cluster by localization family (Fig. 4)",
        "the proteins' feature spectra group by localization family (Fig. 4a–b)",
        f"fraction of training proteins whose family ranks first − chance (1/{families}), leave-one-out",
        est, low, high,
        reason=f"bootstrap over {len(hits)} proteins; each left-out protein was still in training "
               "(its own ID class), so this measures clustering of the spectra, not an unseen protein",
        data=data)


def heldout_find_family(table: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, data: str = "sim") -> Effect:
    """Top-1 rate of truly held-out proteins minus chance, bootstrap grouped by protein.

    ``table`` is :func:`~atlaskit.studies.cytoself.heldout.heldout_orphans`' (one row per protein ×
    repeat); chance is 1 / the number of families ranked. Resampling whole proteins keeps the
    repeats of one protein from counting as independent evidence.
    """
    families = int(table["families"].max())
    chance = 1.0 / families
    hits = (table["rank"] == 1).to_numpy(dtype=float)
    top3 = float((table["rank"] <= 3).mean())
    est, low, high = bootstrap_interval(lambda h: float(h.mean() - chance), hits, groups=table["protein"].to_numpy(),
                                        n_boot=n_boot, seed=seed)
    proteins, repeats = table["protein"].nunique(), table["repeat"].nunique()
    return Effect.measured(
        ORPHAN_EFFECT, ORPHAN_PAPER,
        f"fraction of held-out proteins whose family ranks first − chance (1/{families}), "
        f"{proteins} proteins × {repeats} training repeats",
        est, low, high,
        reason=f"bootstrap over {proteins} proteins never in training (no ID class, no image), rendered like the "
               f"training data; top-3 rate {top3:.2f} (chance {min(3, families) / families:.2f})",
        data=data)


def zeroing_contrast(change, on_target) -> float:
    """Mean change of the on-target rows minus mean change of the off-target rows (NaN when one
    side has no row): the feature-zeroing statistic of :func:`zeroing_effect`."""
    change = np.asarray(change, dtype=float)
    on = np.asarray(on_target, dtype=bool)
    if change.shape != on.shape or change.ndim != 1:
        raise ParameterError(f"zeroing_contrast needs two (N,) arrays, got {change.shape} and {on.shape}")
    if not on.any() or on.all():
        return float("nan")
    return float(change[on].mean() - change[~on].mean())


def zeroing_effect(table: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, data: str = "sim") -> Effect:
    """On-target minus off-target change of the reconstruction when a family's index cluster is
    zeroed (:func:`~atlaskit.studies.cytoself.spectra.zeroing_scores`), bootstrap grouped by protein.

    Resampling whole proteins (with all their images, zeroed clusters and repeats) keeps one
    protein's rows from counting as independent evidence.
    """
    missing = [c for c in ("protein", "change", "on_target", "repeat") if c not in table.columns]
    if missing:
        raise ParameterError(f"zeroing_effect: missing columns {missing}")
    est, low, high = bootstrap_interval(zeroing_contrast, table["change"].to_numpy(float),
                                        table["on_target"].to_numpy(bool), groups=table["protein"].to_numpy(),
                                        n_boot=n_boot, seed=seed)
    on = table.loc[table["on_target"], "change"].mean()
    off = table.loc[~table["on_target"], "change"].mean()
    return Effect.measured(
        ZEROING_EFFECT, ZEROING_PAPER,
        "relative change of the protein channel's reconstruction when a family's index cluster is zeroed: "
        "mean on its own images − mean on other families' images",
        est, low, high,
        reason=f"bootstrap over {table['protein'].nunique()} proteins, {table['repeat'].nunique()} training repeats; "
               f"on {on:.3f}, off {off:.3f} ({on / off:.2f} ×)",
        data=data)


def band_gap(position, group) -> float:
    """How far the ``"both"`` group's mean position lies inside the nucleus–cytoplasm interval:
    min(mean(both) − mean(nucleus), mean(cytoplasm) − mean(both)); positive when strictly between,
    NaN when a group has no row."""
    position = np.asarray(position, dtype=float)
    group = np.asarray(group, dtype=object)
    if position.shape != group.shape or position.ndim != 1:
        raise ParameterError(f"band_gap needs two (N,) arrays, got {position.shape} and {group.shape}")
    means = {}
    for g in ("nucleus", "both", "cytoplasm"):
        rows = group == g
        if not rows.any():
            return float("nan")
        means[g] = position[rows].mean()
    return float(min(means["both"] - means["nucleus"], means["cytoplasm"] - means["both"]))


def band_effect(table: pd.DataFrame, *, minimum: int = BAND_MIN_PROTEINS, n_boot: int = 2000, seed: int = 0,
                data: str = "sim") -> Effect:
    """The grey band: :func:`band_gap` of the positions on the nucleus ↔ cytoplasm axis
    (:func:`~atlaskit.studies.cytoself.atlas.band_scores`, one row per protein × repeat),
    bootstrap grouped by protein; not testable with fewer than ``minimum`` proteins in a group."""
    counts = {g: int(table.loc[table["group"] == g, "protein"].nunique()) if len(table) else 0
              for g in ("nucleus", "both", "cytoplasm")}
    described = ", ".join(f"{n} {g}" for g, n in counts.items())
    if min(counts.values()) < minimum:
        return Effect.not_testable(BAND_EFFECT, BAND_PAPER,
                                   f"too few proteins on the nucleus ↔ cytoplasm axis here ({described}; "
                                   f"{minimum} per group needed)", data=data)
    est, low, high = bootstrap_interval(band_gap, table["position"].to_numpy(float), table["group"].to_numpy(object),
                                        groups=table["protein"].to_numpy(), n_boot=n_boot, seed=seed)
    both = table.loc[table["group"] == "both", "position"].mean()
    return Effect.measured(
        BAND_EFFECT, BAND_PAPER,
        "position on the axis between the nuclear (0) and cytoplasmic (1) centroids of the global representation: "
        "min(both − nucleus, cytoplasm − both)",
        est, low, high,
        reason=f"bootstrap over proteins ({described}), {table['repeat'].nunique()} training repeats; "
               f"mean position of the 'both' proteins {both:.2f}",
        data=data)


def measure_effects(runs: Mapping, scores: pd.DataFrame, loo: pd.DataFrame, families: int, *, seed: int = 0,
                    data: str = "sim", heldout: pd.DataFrame | None = None, zeroing: pd.DataFrame | None = None,
                    band: pd.DataFrame | None = None) -> list[Effect]:
    """The chapter's ledger rows, in the order of the paper's figures and table.

    ``heldout`` is the table of :func:`~atlaskit.studies.cytoself.heldout.heldout_orphans` (None
    or empty: the orphan row is not testable), ``zeroing`` that of
    :func:`~atlaskit.studies.cytoself.spectra.zeroing_scores` and ``band`` that of
    :func:`~atlaskit.studies.cytoself.atlas.band_scores` (None or empty: not testable).
    """
    rows = [perplexity_gain(runs, data=data)]
    if band is not None and len(band):
        rows.append(band_effect(band, seed=seed, data=data))
    else:
        rows.append(Effect.not_testable(BAND_EFFECT, BAND_PAPER, "no protein of the nucleus or of the cytoplasm "
                                        "group in this data set", data=data))
    rows.append(score_gap(scores, "no_pretext", data=data,
                          effect="without the protein-ID pretext the atlas loses its organisation (Table 1)",
                          paper="Table 1: the clustering score collapses without the pretext task"))
    # "The full model scores highest" is one comparison per ablation, each paired by repeat: a
    # single "full minus the best other" margin would pit full against the maximum of four noisy
    # scores and be biased against it.
    for variant in ("no_split", "no_nucleus", "no_distance"):
        if variant in set(scores["variant"]):
            rows.append(score_gap(scores, variant, data=data,
                                  effect=f"the full model beats the variant without {ABLATED[variant]} (Table 1)",
                                  paper=f"Table 1: the full model scores higher than {variant}"))
    if len(loo):
        rows.append(spectra_find_family(loo, families, seed=seed, data=data))
    else:
        rows.append(Effect.not_testable(
            "the feature spectra cluster by localization family (Fig. 4)",
            "the proteins' feature spectra group by localization family (Fig. 4a–b)",
            "no family has two proteins in this data set", data=data))
    if heldout is not None and len(heldout) and heldout["rank"].notna().any():
        rows.append(heldout_find_family(heldout.dropna(subset=["rank"]), seed=seed, data=data))
    else:
        rows.append(Effect.not_testable(
            ORPHAN_EFFECT, ORPHAN_PAPER,
            "no protein is held out of training here (real images, or every catalog protein trained on at "
            "scale full); holding proteins out needs retraining", data=data))
    if zeroing is not None and len(zeroing) and zeroing["on_target"].any() and not zeroing["on_target"].all():
        rows.append(zeroing_effect(zeroing, seed=seed, data=data))
    else:
        rows.append(Effect.not_testable(ZEROING_EFFECT, ZEROING_PAPER,
                                        "no family has an index cluster of its own with images of other families "
                                        "to compare", data=data))
    return rows
