"""Measurements of the one cell a crop is centred on: where its signal sits, and its pixel noise.

The whole-crop statistics of :mod:`atlaskit.analysis.realism` describe a crop's look; these two
look inside it, where real and simulated yeast cells still differed after the calibration
(chapter 00):

* :func:`edge_profile` — the signal's mean in bands of distance from the cell's edge (a net
  over the whole cell, a ring under the membrane, a bright centre);
* :func:`pixel_noise` — the noise inside and beside the cell, and whether it is white;
* :func:`noise_per_level` — per group of crops (a protein, imaged in one well), the shot-noise
  variance per displayed level above background: the export's scale over the photons behind a
  level, so lower means more photons per level.

**Pixel noise.** Two differences of neighbouring pixels measure the noise where the image itself is smooth (a
PSF-blurred cell has almost no power at the highest spatial frequencies):

* the **axis difference** ``(x[i, j−1] − 2 x[i, j] + x[i, j+1]) / √6`` (and the same down the
  columns), most sensitive where the spectrum's axes end (half a cycle per pixel on one axis);
  a second difference, so that a smooth gradient (a bright cell's halo) adds nothing;
* the **diagonal difference** ``(x[i, j] − x[i+1, j] − x[i, j+1] + x[i+1, j+1]) / 2``, a
  checkerboard, most sensitive at the spectrum's corner (half a cycle per pixel on both axes).

For white noise of standard deviation σ both have standard deviation σ, so their ratio is 1.
Noise smoothed after it arose (an image resampled onto another pixel grid, e.g. a second
camera's channel registered onto the first) loses most power at the corner, and the ratio
falls below 1: for a separable kernel ``k`` it is
``sqrt(3 (Σ (k ∗ [1, −1])²)² / (2 Σ (k ∗ [1, −2, 1])² · Σ k²))``
(:func:`white_noise_ratio` computes it for any kernel).

Chapter 00 applies :func:`edge_profile_table` and :func:`pixel_noise_table` to the real Chong et
al. yeast cells and to the simulated ones: e.g. the real RFP marker's noise is smoothed, the
real GFP's is white.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from atlaskit.analysis.realism import check_images
from atlaskit.errors import DataError, ParameterError

#: Bands of :func:`edge_profile`: distance from the cell's edge in pixels, (lower, upper].
EDGE_BANDS = ((0, 2), (2, 4), (4, 6), (6, 9), (9, np.inf))


def _foreground(image: np.ndarray, smoothing: float) -> np.ndarray | None:
    """Pixels above Otsu's threshold of the Gaussian-smoothed image (None for a flat image)."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    smooth = ndimage.gaussian_filter(image, smoothing)
    if smooth.max() <= smooth.min():
        return None
    return smooth > threshold_otsu(smooth)


def edge_profile(images, *, signal: int = 0, marker: int = 1, bands=EDGE_BANDS, min_area: int = 200) -> pd.DataFrame:
    """Where in its cell a crop's signal sits: its mean in bands of distance from the cell edge.

    The centre cell is segmented on the ``marker`` channel (a cytosolic marker, e.g. the yeast
    RFP): Gaussian smoothing (σ 1.5 px), Otsu's threshold, the connected object under the crop's
    centre (else the one nearest to it). Its pixels are binned by their Euclidean distance to
    the object's edge; each band's mean ``signal`` is divided by the mean over the whole object,
    so 1 everywhere is an even fill, a falling profile a cortical pattern (e.g. mitochondria
    under the plasma membrane) and a rising one a central one (a nucleus).

    Parameters
    ----------
    images : array (N, C, H, W)
        Intensities ≥ 0.
    signal, marker : int
        Channel indices of the measured signal and of the segmented marker.
    bands : sequence of (low, high)
        Distance bands in pixels, each (low, high].
    min_area : int
        Crops whose centre object is smaller (or whose marker is flat) get a row of NaN.

    Returns
    -------
    DataFrame
        One row per crop: a column per band (``"0–2 px"`` …, ``"> 9 px"`` for an open band)
        and ``area`` (the object's pixels).
    """
    from scipy import ndimage

    x = check_images(images, [str(k) for k in range(np.shape(images)[1])], "edge_profile")
    for name, k in (("signal", signal), ("marker", marker)):
        if not 0 <= k < x.shape[1]:
            raise ParameterError(f"edge_profile: {name} channel {k} is not one of the images' {x.shape[1]} channels")
    names = [f"> {lo:g} px" if np.isinf(hi) else f"{lo:g}–{hi:g} px" for lo, hi in bands]
    h, w = x.shape[2:]
    rows = np.full((len(x), len(bands) + 1), np.nan)
    for i, (values, mark) in enumerate(zip(x[:, signal], x[:, marker])):
        fore = _foreground(mark, 1.5)
        if fore is None:
            continue
        labels, n = ndimage.label(fore)
        centre = labels[h // 2, w // 2]
        if centre == 0 and n:  # the object with a pixel nearest to the centre
            nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)[1][:, h // 2, w // 2]
            centre = labels[tuple(nearest)]
        cell = labels == centre
        if centre == 0 or cell.sum() < min_area or values[cell].mean() <= 0:
            continue
        distance = ndimage.distance_transform_edt(cell)
        mean = values[cell].mean()
        for j, (lo, hi) in enumerate(bands):
            band = cell & (distance > lo) & (distance <= hi)
            rows[i, j] = values[band].mean() / mean if band.any() else np.nan
        rows[i, -1] = cell.sum()
    return pd.DataFrame(rows, columns=[*names, "area"])


def edge_profile_table(comparison: "RealismComparison", *, signal: int = 0, marker: int = 1) -> pd.DataFrame:
    """Median :func:`edge_profile` of a comparison's real and simulated crops, per class.

    Returns
    -------
    DataFrame
        Indexed by (``source``, ``klass``), one column per distance band and ``cells`` (crops
        whose centre cell was found).
    """
    if "klass" not in comparison.real_meta or "klass" not in comparison.sim_meta:
        raise DataError("edge_profile_table needs a 'klass' column in the real and the simulated meta")
    profiles = _per_source(comparison, lambda images: edge_profile(images, signal=signal, marker=marker)
                           .drop(columns="area"), with_class=True)
    table = profiles.groupby(["source", "klass"]).median()
    table["cells"] = profiles.dropna().groupby(["source", "klass"]).size()
    return table


def _sources(comparison):
    """``(source, images, meta)`` of a comparison's real, then simulated crops."""
    yield "real", comparison.real_images, comparison.real_meta
    yield "simulated", comparison.sim_images, comparison.sim_meta


def _per_source(comparison, measure, *, with_class: bool) -> pd.DataFrame:
    """``measure(images)`` of a comparison's real and simulated crops, stacked, with ``source``
    (and ``klass``) columns in front."""
    parts = []
    for source, images, meta in _sources(comparison):
        table = measure(images)
        if with_class:
            table.insert(0, "klass", meta["klass"].to_numpy())
        table.insert(0, "source", source)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


#: Fewest pixels of a region for :func:`pixel_noise` (and :func:`noise_per_level`) to measure its noise.
MIN_NOISE_PIXELS = 50
#: Columns of :func:`pixel_noise`.
NOISE_COLUMNS = ("background", "foreground", "foreground_to_background", "diagonal_to_axis")


def _rms(values: np.ndarray) -> float:
    """Root mean square of pixel differences (their expectation is 0 where the image is smooth).

    Not the median absolute deviation: on 8-bit crops the noise spans a few levels, and a
    median of quantised values jumps between them."""
    return float(np.sqrt(np.mean(np.square(values))))


def white_noise_ratio(kernel) -> float:
    """Diagonal-to-axis ratio that :func:`pixel_noise` finds for white noise smoothed by ``kernel``.

    Parameters
    ----------
    kernel : array (K,) or (K, L)
        A 1-D kernel (applied along both axes, separably) or a 2-D one.

    Returns
    -------
    float
        1 for ``kernel = [1]``; below 1 for any smoothing kernel.
    """
    k = np.asarray(kernel, np.float64)
    if k.ndim == 1:
        k = np.outer(k, k)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        raise ParameterError(f"white_noise_ratio: the kernel must be a finite 1-D or 2-D array, got shape {k.shape}")
    from scipy.signal import convolve2d

    step = np.array([[1.0, -2.0, 1.0]]) / np.sqrt(6)
    across, down = convolve2d(k, step), convolve2d(k, step.T)
    diagonal = convolve2d(k, np.array([[1.0, -1.0], [-1.0, 1.0]]) / 2)
    # the variance of a linear filter of unit white noise is the sum of its squared weights;
    # pixel_noise pools the differences across and down
    axis_variance = ((across ** 2).sum() + (down ** 2).sum()) / 2
    return float(np.sqrt((diagonal ** 2).sum() / axis_variance))


def pixel_noise(images, *, smoothing: float = 1.5, min_pixels: int = MIN_NOISE_PIXELS) -> pd.DataFrame:
    """Noise of each single-channel crop, inside and outside its bright objects.

    The crop is split by Otsu's threshold of its Gaussian-smoothed copy (σ ``smoothing`` px)
    into foreground (the cell) and background; each noise value is the root mean square of a
    pixel difference (see the module's description) over the pixels whose 3 × 3 neighbourhood
    lies wholly in one region.

    Parameters
    ----------
    images : array (N, H, W)
        One channel, intensities ≥ 0.
    smoothing : float
        σ of the smoothing before the threshold, in pixels.
    min_pixels : int
        Fewer such pixels in a region (or a flat crop) give NaN for what needs that region.

    Returns
    -------
    DataFrame
        One row per crop: ``background`` and ``foreground`` (diagonal difference; the noise level
        where the diagonal difference is not suppressed: same units as the images),
        ``foreground_to_background`` (their ratio: about 1 for constant noise such as read noise,
        higher where shot noise grows with the signal) and ``diagonal_to_axis`` (in the
        background: 1 for white noise, below 1 for smoothed noise).

    Raises
    ------
    DataError
        Not (N, H, W), empty, smaller than 8 × 8, non-finite or negative values.
    """
    return _noise_and_levels(images, smoothing, min_pixels)[0]


def _noise_and_levels(images, smoothing: float, min_pixels: int) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`pixel_noise`'s table and, from the same segmentation, the median level beside and
    inside the cell of every crop (N, 2; NaN for a flat crop)."""
    from scipy import ndimage

    if np.ndim(images) != 3:
        raise DataError(f"pixel_noise: images must be (N, H, W), one channel, got shape {np.shape(images)}")
    x = check_images(np.asarray(images)[:, None], ["channel"], "pixel_noise")[:, 0].astype(np.float64)
    rows = np.full((len(x), len(NOISE_COLUMNS)), np.nan)
    levels = np.full((len(x), 2), np.nan)
    block = np.ones((3, 3), bool)
    for i, image in enumerate(x):
        fore = _foreground(image, smoothing)
        if fore is None:
            continue
        levels[i] = np.median(image[~fore]), np.median(image[fore])
        # the pixels whose 3 × 3 neighbourhood lies wholly in one region (no cell edge inside)
        inner = {region: ndimage.binary_erosion(mask, block, border_value=0)[1:-1, 1:-1]
                 for region, mask in (("fore", fore), ("back", ~fore))}
        centre = image[1:-1, 1:-1]
        diagonal = (centre - image[2:, 1:-1] - image[1:-1, 2:] + image[2:, 2:]) / 2
        across = (image[1:-1, :-2] - 2 * centre + image[1:-1, 2:]) / np.sqrt(6)
        down = (image[:-2, 1:-1] - 2 * centre + image[2:, 1:-1]) / np.sqrt(6)
        back, fore_inner = inner["back"], inner["fore"]
        if back.sum() >= min_pixels:
            rows[i, 0] = _rms(diagonal[back])
            axis = _rms(np.r_[across[back], down[back]])
            rows[i, 3] = rows[i, 0] / axis if axis > 0 else np.nan
        if fore_inner.sum() >= min_pixels:
            rows[i, 1] = _rms(diagonal[fore_inner])
        if rows[i, 0] > 0:
            rows[i, 2] = rows[i, 1] / rows[i, 0]
    return pd.DataFrame(rows, columns=list(NOISE_COLUMNS)), levels


def pixel_noise_table(comparison, *, channels=None) -> pd.DataFrame:
    """Median :func:`pixel_noise` of a realism comparison's real and simulated crops.

    Parameters
    ----------
    comparison : RealismComparison
        From :func:`atlaskit.analysis.realism.compare_yeast` (or any object with ``real_images``,
        ``sim_images`` (N, C, H, W), ``channels`` and, optionally, ``klass`` in ``real_meta`` and
        ``sim_meta``).
    channels : sequence of str, optional
        Channels to measure (default all).

    Returns
    -------
    DataFrame
        Indexed by (``channel``, ``source``[, ``klass``]), the columns of :func:`pixel_noise`
        (medians over the crops where they are defined) and ``cells``.
    """
    names = list(comparison.channels)
    wanted = names if channels is None else list(channels)
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ParameterError(f"pixel_noise_table: no channel {missing[0]!r}; the comparison has {names}")
    by_class = "klass" in comparison.real_meta and "klass" in comparison.sim_meta
    noise = pd.concat([_per_source(comparison, lambda images, k=names.index(channel): pixel_noise(np.asarray(images)[:, k]),
                                   with_class=by_class).assign(channel=channel)
                       for channel in wanted], ignore_index=True)
    keys = ["channel", "source", "klass"] if by_class else ["channel", "source"]
    table = noise.groupby(keys).median()
    table["cells"] = noise.groupby(keys).size()
    return table


def noise_per_level(images, groups, *, smoothing: float = 1.5) -> pd.DataFrame:
    """Shot noise per displayed level, group by group (a protein: all its cells from one well).

    Per crop, the median level beside and inside the centre cell (split as in
    :func:`pixel_noise`) and :func:`pixel_noise`'s noise there; per group, their medians and

    * ``signal`` = inside level − beside level,
    * ``variance_per_level`` = (inside noise² − beside noise²) / ``signal``.

    For a camera with Poisson photons and an export that maps ``1 / g`` photons to one unit,
    the noise variance at level ``L`` is ``g · L`` plus the read noise's, so
    ``variance_per_level`` is ``g``: lower means more photons behind each level. A fixed export
    gives every group the same ``g``; :func:`level_slope` measures how ``g`` falls with the
    signal.

    Parameters
    ----------
    images : array (N, H, W)
        One channel, intensities ≥ 0.
    groups : sequence, length N
        The group of each crop.
    smoothing : float
        σ of the smoothing before the threshold, in pixels.

    Returns
    -------
    DataFrame
        Indexed by group (in order of first appearance): ``beside_level``, ``inside_level``,
        ``beside_noise``, ``inside_noise``, ``signal``, ``variance_per_level`` and ``cells``.

    Raises
    ------
    DataError
        Bad images (see :func:`pixel_noise`) or not one group per crop.
    """
    groups = np.asarray(groups)
    if np.ndim(images) >= 1 and groups.shape != (len(images),):
        raise DataError(f"noise_per_level: {groups.shape[0] if groups.ndim else 0} groups for {len(images)} crops")
    noise, levels = _noise_and_levels(images, smoothing, MIN_NOISE_PIXELS)
    crops = pd.DataFrame({"group": groups, "beside_level": levels[:, 0], "inside_level": levels[:, 1],
                          "beside_noise": noise["background"].to_numpy(), "inside_noise": noise["foreground"].to_numpy()})
    by_group = crops.groupby("group", sort=False)
    table = by_group.median()
    table["signal"] = table["inside_level"] - table["beside_level"]
    shot = table["inside_noise"] ** 2 - table["beside_noise"] ** 2
    table["variance_per_level"] = (shot / table["signal"]).where(table["signal"] > 0)
    table["cells"] = by_group.size()
    return table


def level_slope(table: pd.DataFrame) -> float:
    """Slope of log ``variance_per_level`` against log ``signal`` over the groups of a
    :func:`noise_per_level` table (least squares; groups where either is not positive are left
    out): 0 for a fixed export, −1 if every group's export were scaled to its own signal.

    Raises
    ------
    DataError
        Fewer than two usable groups.
    """
    ok = (table["variance_per_level"] > 0) & (table["signal"] > 0)
    if ok.sum() < 2:
        raise DataError(f"level_slope needs at least two groups with a positive signal and shot noise, got {int(ok.sum())}")
    return float(np.polyfit(np.log(table["signal"][ok]), np.log(table["variance_per_level"][ok]), 1)[0])


def noise_per_level_table(comparison, *, channel: str = "gfp") -> pd.DataFrame:
    """:func:`noise_per_level` of a comparison's real and simulated groups, summarised per source.

    Returns
    -------
    DataFrame
        Indexed by ``source``: ``groups``, ``slope`` (:func:`level_slope`) and the medians over
        the groups of ``variance_per_level``, ``beside_noise`` and ``beside_level``.
    """
    names = list(comparison.channels)
    if channel not in names:
        raise ParameterError(f"noise_per_level_table: no channel {channel!r}; the comparison has {names}")
    k = names.index(channel)
    rows = {}
    for source, images, meta in _sources(comparison):
        table = noise_per_level(np.asarray(images)[:, k], meta["group"].astype(str).to_numpy())
        rows[source] = {"groups": len(table), "slope": level_slope(table),
                        **table[["variance_per_level", "beside_noise", "beside_level"]].median().to_dict()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("source")
