"""How real do simulated cells look? Per-image statistics and a real-vs-simulated discriminator.

The realism number is the out-of-fold AUROC of a classifier that tells real images from
simulated ones using simple per-image statistics (:func:`image_statistics`): 0.5 means the two
sets cannot be told apart by these statistics, 1.0 means they never overlap. Cross-validation is
group-disjoint (a real protein, or a simulated protein, is never in training and test at once),
so the classifier cannot win by recognising one protein's look. :func:`compare_statistics` says
*which* statistics differ (medians, Kolmogorov–Smirnov statistic and a per-statistic AUROC).

Chapter 00 applies this to two real sets of the data mirror: single yeast cells of the Chong et
al. (2015) screen beside the simulator's yeast crops (:func:`compare_yeast`), and single Human
Protein Atlas cells beside crops cut around simulated HPA cells (:func:`compare_hpa`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError

#: Per-channel statistics of :func:`image_statistics` (after per-image max scaling, except the
#: two ``raw_`` levels).
CHANNEL_STATISTICS = (
    "raw_mean", "raw_max", "mean", "std", "p05", "p25", "p50", "p75", "p95", "p99",
    "gradient_energy", "background_fraction", "background_level", "contrast", "noise",
    "high_freq_power", "centroid_offset", "n_objects", "largest_object",
)

#: The real Chong et al. yeast cells of the mirror: protein → DeepYeast class (data README;
#: Breker et al. 2013: AAC1, AAC3 mitochondria; AAR2 cytosol; AAH1, AAP1 cytosol under stress).
REAL_YEAST_CLASSES = {"AAC1": "mitochondrion", "AAC3": "mitochondrion", "AAR2": "cytoplasm",
                      "AAH1": "cytoplasm", "AAP1": "cytoplasm"}
YEAST_GROUP = "yeast/chong-wt2-toy"
HPA_GROUP = "hpa/inpainting-cells"
#: Channels of the real HPA single cells: file suffix → channel name (no ER channel).
HPA_CELL_CHANNELS = {"blue": "nucleus", "green": "protein", "red": "microtubules"}


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def check_images(images, channels, what: str) -> np.ndarray:
    """``images`` as float32 (N, C, H, W) with one name in ``channels`` per channel, or a
    :class:`~atlaskit.errors.DataError` that names ``what`` (empty, too small, not finite or
    negative images)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise DataError(f"{what}: images must be (N, C, H, W), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{what}: the image set is empty")
    if len(channels) != x.shape[1]:
        raise DataError(f"{what}: {x.shape[1]} channels in the images but {len(channels)} channel names "
                        f"{tuple(channels)}")
    if min(x.shape[2:]) < 8:
        raise DataError(f"{what}: images of {x.shape[2]}×{x.shape[3]} pixels are too small (≥ 8×8)")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what}: images hold NaN or infinite values")
    if x.min() < 0:
        raise DataError(f"{what}: images hold negative values (min {x.min():.3g}); give intensities ≥ 0, e.g. in [0, 1]")
    return x


def _high_freq_power(x: np.ndarray, cutoff: float) -> np.ndarray:
    """Fraction of each image's (mean-removed) spectral power above ``cutoff`` cycles/pixel."""
    from scipy import fft

    h, w = x.shape[-2:]
    power = np.abs(fft.fft2(x - x.mean(axis=(-2, -1), keepdims=True), workers=1)) ** 2
    radius = np.hypot(*np.meshgrid(fft.fftfreq(h), fft.fftfreq(w), indexing="ij"))
    total = power.sum(axis=(-2, -1))
    return np.where(total > 0, power[..., radius > cutoff].sum(-1) / np.maximum(total, 1e-30), 0.0)


def _residual_gain() -> float:
    """Standard deviation of ``x − gaussian_filter(x, 1)`` for white noise of unit variance."""
    from scipy import ndimage

    delta = np.zeros((15, 15))
    delta[7, 7] = 1.0
    return float(np.sqrt(((delta - ndimage.gaussian_filter(delta, 1.0)) ** 2).sum()))


def _masked_medians(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median of each row of ``values`` (N, P) over the entries where ``mask`` is true (0 if none)."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    count = mask.sum(1)
    rows = np.arange(len(values))
    low, high = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    last = values.shape[1] - 1
    medians = (ordered[rows, np.minimum(low, last)] + ordered[rows, np.minimum(high, last)]) / 2
    return np.where(count > 0, medians, 0.0)


def _foreground_statistics(x: np.ndarray, min_object: int) -> dict[str, np.ndarray]:
    """Foreground/background statistics of max-scaled images (N, H, W), Otsu's threshold per image."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    n, h, w = x.shape
    flat = x.reshape(n, -1)
    constant = flat.max(1) <= flat.min(1)
    thresholds = np.array([np.inf if c else threshold_otsu(image) for c, image in zip(constant, x)])
    fore = x > thresholds[:, None, None]
    back = ~fore
    n_fore, n_back = fore.reshape(n, -1).sum(1), back.reshape(n, -1).sum(1)
    fg = np.where(n_fore > 0, (x * fore).reshape(n, -1).sum(1) / np.maximum(n_fore, 1), 0.0)
    bg = np.where(n_back > 0, (x * back).reshape(n, -1).sum(1) / np.maximum(n_back, 1), 0.0)
    back_flat = back.reshape(n, -1)
    level = _masked_medians(flat, back_flat)
    residual = (x - ndimage.gaussian_filter(x, (0, 1.0, 1.0))).reshape(n, -1)
    deviation = np.abs(residual - _masked_medians(residual, back_flat)[:, None])
    noise = 1.4826 * _masked_medians(deviation, back_flat) / _residual_gain()
    noise = np.where(n_back > 10, noise, 0.0)
    weights = (x * fore).reshape(n, -1)
    total = weights.sum(1)
    yy, xx = np.mgrid[:h, :w]
    cy = np.where(total > 0, weights @ yy.ravel() / np.maximum(total, 1e-30), (h - 1) / 2)
    cx = np.where(total > 0, weights @ xx.ravel() / np.maximum(total, 1e-30), (w - 1) / 2)
    sizes = [np.bincount(ndimage.label(mask)[0].ravel())[1:] for mask in fore]
    objects = np.array([(size >= min_object).sum() for size in sizes])
    largest = np.array([size.max() if size.size else 0 for size in sizes]) / (h * w)
    return {
        "background_fraction": n_back / (h * w),
        "background_level": np.where(constant, flat.min(1), level),
        "contrast": np.where(fg + bg > 0, (fg - bg) / np.maximum(fg + bg, 1e-30), 0.0),
        "noise": noise,
        "centroid_offset": np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) / max(h, w),
        "n_objects": objects.astype(np.float64),
        "largest_object": largest,
    }


def image_statistics(images, channels, *, levels: bool = True, cutoff: float = 0.25,
                     min_object_fraction: float = 0.01) -> pd.DataFrame:
    """Per-image, per-channel statistics that do not depend on the image's content class.

    Each channel of each image is divided by its own maximum first (per-image max scaling), so
    that the statistics describe the *look* (spread, texture, background, framing) rather than
    the exposure; ``raw_mean`` and ``raw_max`` keep the level before scaling (the intensities a
    network is given).

    Parameters
    ----------
    images : array-like
        (N, C, H, W) images, finite values ≥ 0 (e.g. floats in [0, 1]).
    channels : sequence of str
        C channel names; they prefix the column names.
    levels : bool
        Include ``raw_mean`` and ``raw_max``. Leave them out when one of the sets compared was
        max-scaled per crop by its publisher, so that the level says nothing about the look.
    cutoff : float
        Spatial frequency (cycles per pixel) above which spectral power counts as high-frequency.
    min_object_fraction : float
        Foreground components smaller than this fraction of the image are not counted as objects.

    Returns
    -------
    DataFrame
        One row per image; columns ``<channel>_<statistic>`` for every statistic of
        :data:`CHANNEL_STATISTICS` (the ``raw_`` ones only with ``levels``) — ``mean``, ``std``, percentiles ``p05``…``p99``,
        ``gradient_energy`` (mean squared gradient, central differences), ``background_fraction`` (pixels below
        Otsu's threshold), ``background_level`` (their median), ``contrast``
        ((foreground − background)/(foreground + background) means), ``noise`` (standard deviation
        of white noise in the background: the median absolute deviation of the image minus its
        σ = 1 Gaussian blur, scaled to a standard deviation), ``high_freq_power`` (share of the
        power spectrum above ``cutoff``), ``centroid_offset`` (distance of the foreground's
        intensity centroid from the crop centre, in crop sides), ``n_objects`` (foreground
        components) and ``largest_object`` (area of the largest one, as a fraction of the crop: the
        size of a cell, or of a clump of touching cells) — and, for every pair of channels, ``corr_<a>_<b>`` (Pearson correlation of
        their pixels).

    Raises
    ------
    DataError
        Empty set, wrong shape, channel count not matching ``channels``, or non-finite values.
    """
    x = check_images(images, channels, "image_statistics")
    n, c, h, w = x.shape
    min_object = max(1, int(min_object_fraction * h * w))
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(channels):
        raw = x[:, k]
        peak = raw.reshape(n, -1).max(1)
        scaled = raw / np.where(peak > 0, peak, 1.0)[:, None, None]
        flat = scaled.reshape(n, -1)
        if levels:
            columns[f"{name}_raw_mean"] = raw.reshape(n, -1).mean(1)
            columns[f"{name}_raw_max"] = peak
        columns[f"{name}_mean"] = flat.mean(1)
        columns[f"{name}_std"] = flat.std(1)
        for q, value in zip((5, 25, 50, 75, 95, 99), np.percentile(flat, [5, 25, 50, 75, 95, 99], axis=1)):
            columns[f"{name}_p{q:02d}"] = value
        gy, gx = np.gradient(scaled, axis=(1, 2))
        columns[f"{name}_gradient_energy"] = (gy ** 2 + gx ** 2).reshape(n, -1).mean(1)
        otsu = _foreground_statistics(scaled, min_object)
        for stat in ("background_fraction", "background_level", "contrast", "noise"):
            columns[f"{name}_{stat}"] = otsu[stat]
        columns[f"{name}_high_freq_power"] = _high_freq_power(scaled, cutoff)
        for stat in ("centroid_offset", "n_objects", "largest_object"):
            columns[f"{name}_{stat}"] = otsu[stat]
    for a in range(c):
        for b in range(a + 1, c):
            xa, xb = x[:, a].reshape(n, -1), x[:, b].reshape(n, -1)
            xa, xb = xa - xa.mean(1, keepdims=True), xb - xb.mean(1, keepdims=True)
            denominator = np.sqrt((xa ** 2).sum(1) * (xb ** 2).sum(1))
            columns[f"corr_{channels[a]}_{channels[b]}"] = np.where(
                denominator > 0, (xa * xb).sum(1) / np.maximum(denominator, 1e-30), 0.0)
    return pd.DataFrame(columns).astype(np.float64)


def compare_statistics(real: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """Real versus simulated distribution of every statistic, most separating first.

    Returns
    -------
    DataFrame
        One row per statistic: ``statistic``, ``real_median``, ``sim_median``, ``ks_statistic``
        (two-sample Kolmogorov–Smirnov, 0 = same distribution, 1 = disjoint), ``auroc`` (of the
        statistic alone as a score for "simulated": > 0.5 when simulated images have higher
        values) and ``separation`` (max(auroc, 1 − auroc)); sorted by ``separation``.
    """
    from atlaskit.analysis.imagestats import compare_samples

    if len(real) == 0 or len(simulated) == 0:
        raise DataError(f"compare_statistics needs real and simulated rows, got {len(real)} and {len(simulated)}")
    if list(real.columns) != list(simulated.columns):
        raise DataError("compare_statistics: real and simulated tables have different statistics "
                        f"({sorted(set(real.columns) ^ set(simulated.columns))[:5]} …)")
    # medians and the KS statistic as chapter 00's other comparisons compute them
    table = compare_samples(real, simulated, columns=list(real.columns))
    target = np.r_[np.zeros(len(real)), np.ones(len(simulated))]
    auroc = [_auroc(target, np.r_[real[c].to_numpy(float), simulated[c].to_numpy(float)]) for c in table.index]
    out = table[["real_median", "sim_median", "ks_statistic"]].rename_axis("statistic").reset_index()
    out["auroc"] = auroc
    out["separation"] = np.maximum(out["auroc"], 1 - out["auroc"])
    return out.sort_values(["separation", "statistic"], ascending=[False, True], ignore_index=True)


# --------------------------------------------------------------------------------------------
# the discriminator
# --------------------------------------------------------------------------------------------
@dataclass
class RealismScore:
    """Result of :func:`discriminate`: the realism AUROC and what it rests on."""

    auroc: float  # out-of-fold AUROC of real vs simulated (0.5 = indistinguishable)
    low: float  # bootstrap interval: out-of-fold scores resampled within real and within simulated
    # (the forests are not refitted, so the interval leaves out the training variance)
    high: float
    n_real: int
    n_sim: int
    n_splits: int
    scores: np.ndarray  # out-of-fold probability "simulated", real rows first
    folds: np.ndarray  # test fold of each row
    importances: pd.DataFrame  # statistic, importance (forest fitted on all rows), sorted

    def summary(self) -> str:
        """One line: the AUROC, its interval and the sample sizes."""
        return (f"real-vs-simulated AUROC {self.auroc:.2f} [{self.low:.2f}, {self.high:.2f}] "
                f"({self.n_real} real, {self.n_sim} simulated images; {self.n_splits}-fold group-disjoint CV)")


def _auroc(target: np.ndarray, score: np.ndarray) -> float:
    """AUROC of ``score`` for ``target`` = 1 (scikit-learn's); 0.5 if one class is absent (a
    bootstrap resample may hold only one)."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(target)) < 2:
        return 0.5
    return float(roc_auc_score(target, score))


def _as_groups(groups, n: int, what: str) -> np.ndarray:
    groups = np.asarray(groups).astype(str)
    if groups.shape != (n,):
        raise DataError(f"discriminate: {what} groups must have one entry per row ({n}), got shape {groups.shape}")
    return groups


def discriminate(real: pd.DataFrame, simulated: pd.DataFrame, real_groups, sim_groups, *, n_splits: int = 5,
                 n_estimators: int = 100, n_boot: int = 500, seed: int = 0) -> RealismScore:
    """Out-of-fold AUROC of a random forest telling real rows from simulated ones.

    Parameters
    ----------
    real, simulated : DataFrame
        Statistics (e.g. from :func:`image_statistics`), same columns, one row per image.
    real_groups, sim_groups : array-like
        A group per row — the protein of a real cell, the simulated protein (or item) of a
        simulated one. Groups are never split across folds (scikit-learn's
        ``StratifiedGroupKFold``); real and simulated groups are kept apart even if names clash.
    n_splits : int
        Folds; at most the number of real groups and of simulated groups (so that every fold
        holds out real and simulated groups).
    n_estimators : int
        Trees of the forest.
    n_boot : int
        Bootstrap resamples of the out-of-fold scores for the interval.
    seed : int

    Returns
    -------
    RealismScore

    Raises
    ------
    DataError
        An empty set, different columns, mismatched groups, or fewer than 2 groups on a side.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedGroupKFold

    from atlaskit.analysis.effects import bootstrap_interval

    if len(real) == 0 or len(simulated) == 0:
        raise DataError(f"discriminate needs real and simulated images, got {len(real)} and {len(simulated)}")
    if list(real.columns) != list(simulated.columns):
        raise DataError("discriminate: real and simulated statistics have different columns")
    groups = np.r_[np.char.add("real:", _as_groups(real_groups, len(real), "real")),
                   np.char.add("sim:", _as_groups(sim_groups, len(simulated), "simulated"))]
    n_real_groups, n_sim_groups = len(set(groups[:len(real)])), len(set(groups[len(real):]))
    k = min(int(n_splits), n_real_groups, n_sim_groups)
    if k < 2:
        raise DataError(f"discriminate needs at least 2 groups on each side for group-disjoint folds, got "
                        f"{n_real_groups} real and {n_sim_groups} simulated")
    features = np.nan_to_num(pd.concat([real, simulated], ignore_index=True).to_numpy(np.float64))
    target = np.r_[np.zeros(len(real), int), np.ones(len(simulated), int)]
    scores, folds = np.zeros(len(target)), np.full(len(target), -1)

    def forest():
        return RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=2, class_weight="balanced",
                                      random_state=seed, n_jobs=1)

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features, target, groups)):
        model = forest().fit(features[train], target[train])
        scores[test] = model.predict_proba(features[test])[:, 1]
        folds[test] = fold
    auroc, low, high = bootstrap_interval(_auroc, target, scores, n_boot=n_boot, seed=seed, strata=target)
    importances = pd.DataFrame({"statistic": list(real.columns),
                                "importance": forest().fit(features, target).feature_importances_})
    importances = importances.sort_values("importance", ascending=False, ignore_index=True)
    return RealismScore(float(auroc), float(low), float(high), len(real), len(simulated), k, scores, folds, importances)


# --------------------------------------------------------------------------------------------
# real and simulated cells
# --------------------------------------------------------------------------------------------
@dataclass
class RealismComparison:
    """Real and simulated cells of one kind, their statistics, the comparison table and score."""

    kind: str
    channels: tuple
    real_images: np.ndarray  # (N, C, H, W)
    sim_images: np.ndarray
    real_meta: pd.DataFrame  # column "group" = the protein
    sim_meta: pd.DataFrame  # column "group" = the simulated protein
    statistics: pd.DataFrame  # all rows: source, group, then the statistics
    table: pd.DataFrame  # compare_statistics
    score: RealismScore

    def top(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` most separating statistics (``compare_statistics`` rows), rounded for display."""
        return self.table.head(n).round(3)

    def distributions(self, n: int = 4) -> pd.DataFrame:
        """The ``n`` most separating statistics in long form (``source``, ``statistic``, ``value``), for histograms."""
        names = self.table["statistic"].head(n).tolist()
        return self.statistics.melt(id_vars=["source"], value_vars=names, var_name="statistic", value_name="value")


def group_scores(comparison: RealismComparison) -> pd.DataFrame:
    """How well the discriminator tells each protein's crops from the other source's.

    Returns
    -------
    DataFrame
        Indexed by (``source``, ``group``): ``klass`` (where the meta has it), ``cells``,
        ``mean_score`` (out-of-fold probability "simulated") and ``auroc`` of the group's crops
        against all crops of the other source (1: always told apart; 0.5: the group looks like
        the other source; below 0.5: more like the other source than that source itself).
    """
    score, n_real = comparison.score, comparison.score.n_real
    rows = []
    for source, meta, scores, label in (("real", comparison.real_meta, score.scores[:n_real], 0),
                                        ("simulated", comparison.sim_meta, score.scores[n_real:], 1)):
        other = score.scores[n_real:] if label == 0 else score.scores[:n_real]
        groups = meta["group"].astype(str).to_numpy()
        for group in dict.fromkeys(groups):
            mine = scores[groups == group]
            target = np.r_[np.full(len(other), 1 - label), np.full(len(mine), label)]
            row = {"source": source, "group": group, "cells": len(mine), "mean_score": float(mine.mean()),
                   "auroc": _auroc(target, np.r_[other, mine])}
            if "klass" in meta:
                row["klass"] = meta["klass"].to_numpy()[groups == group][0]
            rows.append(row)
    columns = ["source", "group", *(["klass"] if "klass" in rows[0] else []), "cells", "mean_score", "auroc"]
    return pd.DataFrame(rows)[columns].set_index(["source", "group"])


def _compare(kind, channels, real_images, real_meta, sim_images, sim_meta, *, seed: int, n_boot: int,
             levels: bool = True) -> RealismComparison:
    real_stats = image_statistics(real_images, channels, levels=levels)
    sim_stats = image_statistics(sim_images, channels, levels=levels)
    score = discriminate(real_stats, sim_stats, real_meta["group"], sim_meta["group"], n_boot=n_boot, seed=seed)
    statistics = pd.concat([
        pd.concat([pd.DataFrame({"source": "real", "group": real_meta["group"].to_numpy()}), real_stats], axis=1),
        pd.concat([pd.DataFrame({"source": "simulated", "group": sim_meta["group"].to_numpy()}), sim_stats], axis=1),
    ], ignore_index=True)
    return RealismComparison(kind, tuple(channels), real_images, sim_images, real_meta, sim_meta, statistics,
                             compare_statistics(real_stats, sim_stats), score)


def real_yeast_cells() -> tuple[np.ndarray, pd.DataFrame]:
    """The mirror's real Chong et al. yeast cells: (N, 2, 64, 64) GFP, RFP in [0, 1] and their meta.

    Read with :func:`atlaskit.data.readers.read_paired_cells` from the registry group
    ``yeast/chong-wt2-toy`` (the cache, or the mirror when one is configured).

    Returns
    -------
    images : numpy.ndarray
        float32, channels (GFP protein, RFP cytosol), one row per cell.
    meta : DataFrame
        ``group`` (the protein), ``klass`` (:data:`REAL_YEAST_CLASSES`), ``cell`` (file stem).
    """
    from atlaskit.data import registry
    from atlaskit.data.readers import read_paired_cells

    root = Path(registry.fetch_group(YEAST_GROUP, progress=False)) / "images"
    images, meta = read_paired_cells(root, proteins=list(REAL_YEAST_CLASSES))
    meta = pd.DataFrame({"group": meta["protein"], "klass": meta["protein"].map(REAL_YEAST_CLASSES), "cell": meta["cell"]})
    return images, meta


def sim_yeast_cells(classes=("mitochondrion", "cytoplasm"), *, proteins_per_class: int = 20, n_per_protein: int = 20,
                    seed: int = 0, look: str = "calibrated") -> tuple[np.ndarray, pd.DataFrame]:
    """Simulated yeast crops of ``classes`` as chapter 04 trains on them (64×64, ``normalize="paper"``).

    ``proteins_per_class`` proteins of each class are drawn in a seeded order from the simulator's
    YeastGFP proteins; returns images (N, 2, 64, 64) and meta with ``group`` = the protein.
    ``look``: the simulator's :class:`~atlaskit.data.sim.yeast.YeastLook` (``"calibrated"`` on
    the real cells, or ``"original"``, the look before).
    """
    from atlaskit.data import sim

    specs = sim.yeast_specs(None, seed, "main")
    rng = np.random.default_rng([seed, 20])
    chosen = []
    for klass in classes:
        members = [s for s in specs if s.info["klass"] == klass]
        if not members:
            raise DataError(f"sim_yeast_cells: the simulator has no yeast protein of class {klass!r}")
        chosen += [members[i] for i in sorted(rng.permutation(len(members))[:proteins_per_class])]
    batch = sim.yeast_crops(chosen, n_per_protein, seed=seed, look=look)
    meta = batch.meta[["protein", "gene", "klass"]].reset_index(drop=True).assign(group=batch.meta["protein"].to_numpy())
    return batch.images.astype(np.float32), meta


def compare_yeast(*, proteins_per_class: int = 20, n_per_protein: int = 20, seed: int = 0,
                  n_boot: int = 500, look: str = "calibrated") -> RealismComparison:
    """Real Chong et al. yeast cells versus simulated mitochondrial and cytoplasmic yeast crops.

    Same classes as the real proteins, same crop size (64×64) and intensity scale ([0, 1], as
    chapter 04 trains); channels GFP (protein) and RFP (cytosol). ``look``: the simulator's look
    (``"calibrated"``, the default, or ``"original"``, before the calibration on these cells).
    """
    real_images, real_meta = real_yeast_cells()
    sim_images, sim_meta = sim_yeast_cells(sorted(set(REAL_YEAST_CLASSES.values())), proteins_per_class=proteins_per_class,
                                           n_per_protein=n_per_protein, seed=seed, look=look)
    return _compare("yeast", ("gfp", "rfp"), real_images, real_meta, sim_images, sim_meta, seed=seed, n_boot=n_boot)


@dataclass
class DrawSpread:
    """The realism AUROC of one simulator look over several simulated draws (:func:`yeast_over_draws`).

    The bootstrap interval of a :class:`RealismScore` resamples images of one draw; which
    simulated proteins a seed draws moves the AUROC by more than that. This is the spread
    between draws: a t interval over the per-draw AUROCs.
    """

    look: str
    draws: pd.DataFrame  # seed, auroc, low, high (each draw's own bootstrap interval)
    mean: float
    low: float  # 95 % t interval of the mean over draws
    high: float

    def summary(self, goal: float | None = None) -> str:
        """Short lines (they fit a book page): the mean AUROC over draws, its interval, the range
        of draws and, with a ``goal`` (an AUROC to stay at or below), whether the interval says
        it is met."""
        a = self.draws["auroc"]
        lines = [f"{self.look} look, {len(a)} simulated draws (seeds {', '.join(map(str, self.draws['seed']))}):",
                 f"  mean AUROC {self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]; draws {a.min():.2f}–{a.max():.2f}"]
        if goal is not None:
            verdict = ("met (the whole interval at or below it)" if self.high <= goal else
                       "not met (the whole interval above it)" if self.low > goal else "undecided (the interval spans it)")
            lines.append(f"  goal ≤ {goal:.2f}: {verdict}")
        return "\n".join(lines)


def yeast_over_draws(seeds: Sequence[int] = (0, 1, 2, 3, 4), *, look: str = "calibrated",
                     proteins_per_class: int = 20, n_per_protein: int = 20, n_boot: int = 200) -> DrawSpread:
    """:func:`compare_yeast`'s AUROC for several simulated draws (seeds) against the same real cells.

    Each seed draws other simulated proteins and cells; the real cells and their statistics are
    the same for every draw (computed once). Returns the per-draw AUROCs and the t interval of
    their mean.

    Raises
    ------
    ParameterError
        Fewer than two seeds (no spread to measure).
    """
    from scipy import stats

    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ParameterError(f"yeast_over_draws needs at least two seeds to measure a spread, got {seeds}")
    channels = ("gfp", "rfp")
    real_images, real_meta = real_yeast_cells()
    real_stats = image_statistics(real_images, channels)
    rows = []
    for seed in seeds:
        sim_images, sim_meta = sim_yeast_cells(sorted(set(REAL_YEAST_CLASSES.values())),
                                               proteins_per_class=proteins_per_class, n_per_protein=n_per_protein,
                                               seed=seed, look=look)
        score = discriminate(real_stats, image_statistics(sim_images, channels), real_meta["group"],
                             sim_meta["group"], n_boot=n_boot, seed=seed)
        rows.append({"seed": seed, "auroc": score.auroc, "low": score.low, "high": score.high})
    draws = pd.DataFrame(rows)
    a = draws["auroc"].to_numpy()
    mean = float(a.mean())
    half = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return DrawSpread(look, draws, mean, mean - half, mean + half)


def real_hpa_cells() -> tuple[np.ndarray, pd.DataFrame]:
    """The mirror's real HPA single cells: (N, 3, 128, 128) nucleus, protein, microtubules in [0, 1].

    ``meta``: ``group`` (the protein, e.g. ``A1CF``), ``image`` (the HPA image folder), ``cell``.
    """
    import tifffile

    from atlaskit.data import registry

    root = Path(registry.fetch_group(HPA_GROUP, progress=False))
    images, rows = [], []
    for blue in sorted(root.glob("*/*_blue.tif")):
        stem = blue.name.removesuffix("_blue.tif")
        parts = []
        for suffix in HPA_CELL_CHANNELS:
            path = blue.with_name(f"{stem}_{suffix}.tif")
            if not path.is_file():
                raise DataError(f"{blue}: its partner {path.name} is missing")
            parts.append(tifffile.imread(path))
        images.append(np.stack(parts).astype(np.float32))
        rows.append({"group": blue.parent.name.split("_")[0], "image": blue.parent.name, "cell": stem})
    if not images:
        raise DataError(f"{root}: no <cell>_blue.tif files")
    return np.stack(images), pd.DataFrame(rows)


def nucleus_area(nucleus: np.ndarray) -> float:
    """Area (pixels) of the nucleus under the centre of a nucleus-channel crop (Otsu), 0 if none."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    nucleus = np.asarray(nucleus, dtype=np.float64)
    if nucleus.max() <= nucleus.min():
        return 0.0
    labels, _ = ndimage.label(nucleus > threshold_otsu(nucleus))
    centre = labels[nucleus.shape[0] // 2, nucleus.shape[1] // 2]
    return float((labels == centre).sum()) if centre else 0.0


def crop_cells(fields, side: int, *, out: int = 128, channels=("nucleus", "protein", "microtubules")):
    """Crops of ``side`` pixels centred on each simulated nucleus, resized to ``out`` × ``out``.

    Parameters
    ----------
    fields : SimBatch
        HPA fields rendered with ``masks=True`` (:func:`atlaskit.data.sim.hpa_fields`).
    side : int
        Crop side in field pixels; cells whose window leaves the field are skipped.
    out : int
        Output side (the real crops' 128).
    channels : sequence of str
        Channels of ``fields`` to keep, in this order.

    Returns
    -------
    images : numpy.ndarray
        (N, len(channels), out, out) float32.
    meta : DataFrame
        ``group`` (the field's protein), ``field`` (row of ``fields``), ``cell_id``.
    """
    from scipy import ndimage
    from skimage.transform import resize

    if fields.nucleus_masks is None:
        raise DataError("crop_cells needs fields rendered with masks=True")
    missing = [c for c in channels if c not in fields.channels]
    if missing:
        raise DataError(f"crop_cells: channels {missing} are not among {fields.channels}")
    index = [fields.channels.index(c) for c in channels]
    half = side // 2
    images, rows = [], []
    for f in range(len(fields.images)):
        masks = fields.nucleus_masks[f]
        ids = [i for i in np.unique(masks) if i]
        h, w = masks.shape
        for cell_id, (cy, cx) in zip(ids, ndimage.center_of_mass(np.ones_like(masks), masks, ids)):
            y0, x0 = int(round(cy)) - half, int(round(cx)) - half
            if y0 < 0 or x0 < 0 or y0 + side > h or x0 + side > w:
                continue
            window = fields.images[f, index, y0:y0 + side, x0:x0 + side]
            images.append(resize(window, (len(index), out, out), order=1, anti_aliasing=True, preserve_range=True))
            rows.append({"group": str(fields.meta["protein"].iloc[f]), "field": f, "cell_id": int(cell_id)})
    if not images:
        raise DataError(f"crop_cells: no nucleus lies {half} pixels away from every border of the fields")
    return np.stack(images).astype(np.float32), pd.DataFrame(rows)


def compare_hpa(*, n_fields: int = 6, seed: int = 0, n_boot: int = 500) -> RealismComparison:
    """Real HPA single cells versus crops around simulated HPA cells, at matched scale.

    Simulated fields are rendered at the Kaggle scale (512×512); the crop side is chosen so that
    the median area of the centred nucleus of the simulated crops (the simulator's nucleus masks)
    matches that of the real crops (Otsu on the nucleus channel), then resized to 128×128.
    Channels: nucleus, protein, microtubules (the real cells have no ER channel).
    """
    from atlaskit.data import sim

    real_images, real_meta = real_hpa_cells()
    out = real_images.shape[-1]
    real_area = np.median([a for a in map(nucleus_area, real_images[:, 0]) if a > 0])
    fields = sim.hpa_fields(n_fields, 1, seed=seed, size=512, masks=True)
    interior = fields.cells[~fields.cells["border"] & (fields.cells["nucleus_area"] > 0)]
    side = int(round(out * np.sqrt(np.median(interior["nucleus_area"]) / real_area)))
    sim_images, sim_meta = crop_cells(fields, side, out=out)
    sim_meta["crop_side"] = side
    comparison = _compare("hpa", tuple(HPA_CELL_CHANNELS.values()), real_images, real_meta, sim_images, sim_meta,
                          seed=seed, n_boot=n_boot)
    return comparison


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------
def figure(comparison: RealismComparison, n: int = 8, *, seed: int = 0, size: float = 1.25):
    """Real cells (top rows, one per channel) above simulated cells (bottom rows), same scale.

    Cells are drawn at random (seeded), spread over the groups; every panel shows the intensities
    as they are on a fixed 0–1 grey scale (no per-image contrast), so brightness differences show.
    """
    from atlaskit import plots

    rng = np.random.default_rng(seed)

    def pick(meta):
        groups, order = meta["group"].to_numpy(), rng.permutation(len(meta))
        seen: dict = {}
        rank = {}
        for position, i in enumerate(order):  # round-robin over the groups, in a random order
            rank[i] = (seen.get(groups[i], 0), position)
            seen[groups[i]] = rank[i][0] + 1
        return sorted(order, key=rank.get)[:n]

    real, simulated = pick(comparison.real_meta), pick(comparison.sim_meta)
    panels, labels = [], []
    for source, images, chosen, meta in (("real", comparison.real_images, real, comparison.real_meta),
                                         ("simulated", comparison.sim_images, simulated, comparison.sim_meta)):
        for k, channel in enumerate(comparison.channels):
            panels += [plots.to_rgb(np.clip(images[i, k:k + 1], 0, 1), colors=("gray",)) for i in chosen]
            labels.append(f"{source}\n{channel}")
    titles = [str(comparison.real_meta["group"].iloc[i]) for i in real] + [""] * (len(panels) - len(real))
    return plots.image_grid(panels, titles=titles, row_labels=labels, ncols=len(real), size=size)


def distribution_figure(comparison: RealismComparison, n: int = 4, *, nbins: int = 30, title: str | None = None):
    """Plotly histograms (real beside simulated) of the ``n`` statistics that separate the two
    sets most on their own (:meth:`RealismComparison.distributions`)."""
    import plotly.express as px

    from atlaskit import plots

    fig = px.histogram(comparison.distributions(n), x="value", color="source", facet_col="statistic",
                       facet_col_wrap=n, barmode="overlay", histnorm="probability density", nbins=nbins, opacity=0.6,
                       title=plots.wrap_title(title or f"The {n} statistics that separate real from simulated most"))
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))  # "rfp_p05", not "statistic=rfp_p05"
    fig.update_xaxes(matches=None)
    fig.update_layout(height=340, margin={"t": 90})  # room for a two-line title above the facet labels
    return fig


def looks_table(comparisons: dict, statistics: Sequence[str] = ("rfp_raw_max", "rfp_p05", "rfp_contrast", "rfp_noise",
                                                                "rfp_largest_object", "gfp_raw_max", "gfp_noise")) -> pd.DataFrame:
    """Realism of several simulator looks side by side: the AUROC and the medians that moved.

    Parameters
    ----------
    comparisons : dict of name → RealismComparison
        The same real cells compared with simulated cells of each look (e.g. ``"original"`` and
        ``"calibrated"``).
    statistics : sequence of str
        Statistics whose real and simulated medians are shown.

    Returns
    -------
    DataFrame
        One column for the real cells and one per look (``simulated, <name>``); rows: the
        ``AUROC`` (with its interval; blank for the real cells), then the median of each statistic
        (three decimals), so that the table stays narrow however many statistics are shown.
    """
    if not comparisons:
        raise DataError("looks_table needs at least one comparison")
    first = next(iter(comparisons.values()))
    missing = [s for s in statistics if s not in first.statistics.columns]
    if missing:
        raise DataError(f"looks_table: unknown statistics {missing}")
    real = first.statistics[first.statistics["source"] == "real"]
    columns = {"real": ["", *(f"{real[s].median():.3f}" for s in statistics)]}
    for name, comparison in comparisons.items():
        sim = comparison.statistics[comparison.statistics["source"] == "simulated"]
        score = comparison.score
        columns[f"simulated, {name}"] = [f"{score.auroc:.2f} [{score.low:.2f}, {score.high:.2f}]",
                                         *(f"{sim[s].median():.3f}" for s in statistics)]
    return pd.DataFrame(columns, index=pd.Index(["AUROC", *statistics], name="statistic"))
