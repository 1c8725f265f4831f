"""Statistics that compare simulated images with real ones: nucleus shapes, intensities, texture.

Pure functions on numpy arrays, used by chapter 00 to say how close the simulator comes to real
microscopy, and where it does not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from atlaskit.errors import DataError

SHAPE_COLUMNS = ("area", "eccentricity", "solidity", "circularity", "major_minor_ratio")


def nucleus_shapes(labels: np.ndarray, *, min_area: int = 20) -> pd.DataFrame:
    """Shape of each labelled object (nucleus) in an instance label image.

    Parameters
    ----------
    labels
        (H, W) integer label image, 0 = background.
    min_area
        Objects smaller than this (pixels) are debris and are left out.

    Returns
    -------
    DataFrame
        One row per object: ``label``, ``area`` (pixels), ``eccentricity``, ``solidity``,
        ``circularity`` (4π·area/perimeter², 1 for a disc) and ``major_minor_ratio``.
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"nucleus_shapes needs a 2-D integer label image, got {labels.dtype} {labels.shape}")
    table = pd.DataFrame(
        regionprops_table(
            labels,
            properties=("label", "area", "eccentricity", "solidity", "perimeter", "major_axis_length", "minor_axis_length"),
        )
    )
    table = table[table["area"] >= min_area].copy()
    table["circularity"] = 4 * np.pi * table["area"] / np.maximum(table["perimeter"], 1) ** 2
    table["major_minor_ratio"] = table["major_axis_length"] / np.maximum(table["minor_axis_length"], 1e-6)
    return table[["label", *SHAPE_COLUMNS]].reset_index(drop=True)


def intensity_profile(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Scale-free summary of a channel's intensities (inside ``mask`` when given).

    Returns the coefficient of variation, skewness, the fraction of pixels above half the
    99.9th percentile (how much of the image is "bright"), and the ratio of the 99th percentile to
    the mean (contrast; the median is often 0 in sparse 8-bit images) — quantities that do not depend on camera gain or bit depth.
    """
    values = np.asarray(image, dtype=np.float64)
    values = values[mask.astype(bool)] if mask is not None else values.ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise DataError("intensity_profile needs a non-empty image of finite values")
    p99, p999 = np.percentile(values, [99, 99.9])
    spread, mean = values.std(), values.mean()
    return {
        "cv": float(spread / mean) if mean > 0 else float("nan"),
        "skewness": float(stats.skew(values)) if spread > 0 else 0.0,
        "bright_fraction": float(np.mean(values > 0.5 * p999)),
        "p99_over_mean": float(p99 / mean) if mean > 0 else float("nan"),
    }


def texture_features(image: np.ndarray, *, levels: int = 32, distances=(1, 3)) -> dict[str, float]:
    """Haralick-style texture of one channel: GLCM contrast, homogeneity, energy, correlation.

    The image is rescaled to its 1st–99th percentile range and quantised to ``levels`` grey
    levels first, so that images of different bit depth and exposure are comparable.
    """
    from skimage.feature import graycomatrix, graycoprops

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise DataError(f"texture_features needs a 2-D image, got shape {image.shape}")
    low, high = np.percentile(image, [1, 99])
    scaled = np.clip((image - low) / max(high - low, 1e-12), 0, 1)
    quantised = np.minimum((scaled * levels).astype(np.uint8), levels - 1)
    glcm = graycomatrix(quantised, distances=list(distances), angles=[0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                        levels=levels, symmetric=True, normed=True)
    return {prop: float(graycoprops(glcm, prop).mean()) for prop in ("contrast", "homogeneity", "energy", "correlation")}


def compare_samples(real: pd.DataFrame, simulated: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Side-by-side medians of real and simulated measurements with a two-sample KS statistic.

    Returns
    -------
    DataFrame
        Indexed by measurement: ``real_median``, ``sim_median``, ``ratio`` (sim/real),
        ``ks_statistic`` (0 = same distribution, 1 = disjoint), ``n_real``, ``n_sim``.
    """
    columns = list(columns or [c for c in real.columns if c in simulated.columns and np.issubdtype(real[c].dtype, np.number)])
    rows = {}
    for column in columns:
        a, b = real[column].dropna().to_numpy(), simulated[column].dropna().to_numpy()
        if len(a) == 0 or len(b) == 0:
            raise DataError(f"compare_samples: no values for {column!r} in the real or simulated table")
        rows[column] = {
            "real_median": float(np.median(a)),
            "sim_median": float(np.median(b)),
            "ratio": float(np.median(b) / np.median(a)) if np.median(a) != 0 else float("nan"),
            "ks_statistic": float(stats.ks_2samp(a, b).statistic),
            "n_real": len(a),
            "n_sim": len(b),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def crop_features(protein: np.ndarray, cell_masks: np.ndarray, nucleus_masks: np.ndarray) -> np.ndarray:
    """Fourteen hand-made features of nucleus-centred protein crops, for a linear probe.

    Parameters
    ----------
    protein
        (N, H, W) protein channel of crops centred on a cell.
    cell_masks, nucleus_masks
        (N, H, W) instance masks in which the centred cell has id 1.

    Returns
    -------
    numpy.ndarray
        (N, 14): a radial intensity profile in 8 rings (relative to the mean), the log ratio of
        nuclear to cytoplasmic intensity of the centred cell, the relative spread of a
        Laplacian-of-Gaussian (punctateness), the coefficient of variation, and the 50th, 90th
        and 99th percentiles relative to the mean.
    """
    from scipy import ndimage

    x = np.asarray(protein, dtype=np.float32)
    if x.ndim != 3 or cell_masks.shape != x.shape or nucleus_masks.shape != x.shape:
        raise DataError(f"crop_features needs (N, H, W) crops and masks of the same shape, got {x.shape}, "
                        f"{cell_masks.shape}, {nucleus_masks.shape}")
    n, h, w = x.shape
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    flat = x.reshape(n, -1)
    mean = flat.mean(1)[:, None] + 1e-6
    step = min(h, w) // 16
    rings = np.stack([x[:, (radius >= a) & (radius < a + step)].mean(1) for a in range(0, 8 * step, step)], 1) / mean
    nucleus = nucleus_masks == 1
    cytoplasm = (cell_masks == 1) & ~nucleus
    ratio = np.array([x[i][nucleus[i]].mean() / (x[i][cytoplasm[i]].mean() + 1e-3) if nucleus[i].any() and cytoplasm[i].any()
                      else 1.0 for i in range(n)])[:, None]
    punctate = np.stack([ndimage.gaussian_laplace(xi, 1.0) for xi in x]).reshape(n, -1).std(1)[:, None] / mean
    spread = flat.std(1)[:, None] / mean
    percentiles = np.percentile(flat, [50, 90, 99], axis=1).T / mean
    return np.concatenate([rings, np.log(ratio + 1e-2), punctate, spread, percentiles], 1)


def protein_disjoint_probe(features: np.ndarray, labels, proteins, *, test_fraction: float = 0.375,
                           seed: int = 0) -> dict:
    """Accuracy of a logistic-regression probe tested on proteins it never saw in training.

    For each class, the last ``test_fraction`` of its proteins (in a seeded random order) are held
    out. Returns ``accuracy``, ``chance`` (1 / number of classes), the confusion matrix as a
    DataFrame and the numbers of training and test images.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels, proteins = np.asarray(labels), np.asarray(proteins)
    rng = np.random.default_rng(seed)
    test_proteins = set()
    for label in np.unique(labels):
        members = rng.permutation(np.unique(proteins[labels == label]))
        n_test = int(round(test_fraction * len(members)))
        if n_test < 1 or n_test >= len(members):
            raise DataError(f"class {label!r} has {len(members)} proteins: too few for a protein-disjoint probe")
        test_proteins.update(members[-n_test:])
    test = np.isin(proteins, list(test_proteins))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(features[~test], labels[~test])
    predicted = probe.predict(features[test])
    classes = np.unique(labels)
    return {
        "accuracy": float((predicted == labels[test]).mean()),
        "chance": 1.0 / len(classes),
        "confusion": pd.DataFrame(confusion_matrix(labels[test], predicted, labels=classes), index=classes, columns=classes),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
    }
