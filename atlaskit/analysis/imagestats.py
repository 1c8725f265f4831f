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
    99.9th percentile (how much of the image is "bright"), and the ratio of the 99th to the 50th
    percentile (contrast) — quantities that do not depend on camera gain or bit depth.
    """
    values = np.asarray(image, dtype=np.float64)
    values = values[mask.astype(bool)] if mask is not None else values.ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise DataError("intensity_profile needs a non-empty image of finite values")
    p50, p99, p999 = np.percentile(values, [50, 99, 99.9])
    spread = values.std()
    return {
        "cv": float(spread / values.mean()) if values.mean() > 0 else float("nan"),
        "skewness": float(stats.skew(values)) if spread > 0 else 0.0,
        "bright_fraction": float(np.mean(values > 0.5 * p999)),
        "p99_over_p50": float(p99 / p50) if p50 > 0 else float("nan"),
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
