"""Hand-crafted features of yeast cell crops: the book's stand-in for DeepYeast's CellProfiler set.

DeepYeast compared its network with a random forest on CellProfiler measurements of each
segmented cell (intensity, shape, texture, Zernike moments, radial distribution; the paper: 75 %
against the network's 87 %). CellProfiler is not a dependency here; :func:`yeast_features`
computes the same *families* of measurements with scikit-image and numpy, per crop:

========== ====================================================================================
group      features (GFP = channel 0, the protein; RFP = channel 1, the cytosolic marker)
========== ====================================================================================
shape      the centred cell segmented from the RFP channel (Gaussian σ = 1, Otsu threshold, the
           connected component under the crop centre or nearest to it): area, perimeter,
           eccentricity, solidity, extent, major/minor axis, orientation-free form factor, offset
           of the cell centroid from the crop centre, number of RFP objects, foreground fraction
intensity  GFP inside the cell: mean, standard deviation, quantiles (5 … 99 %), min/max,
           integrated intensity, mean on the cell edge, mass displacement (intensity-weighted vs.
           mask centroid, relative to the cell radius), GFP outside the cell, GFP–RFP correlation
           (Pearson, inside the cell); RFP inside the cell: mean and standard deviation
radial     fraction of the cell's GFP in 4 rings of normalised distance from the cell centroid,
           and the coefficient of variation around each ring (CellProfiler's
           MeasureObjectIntensityDistribution)
texture    Haralick/GLCM properties of the GFP in the cell's bounding box, quantised to
           ``levels`` grey levels over the cell's own 1st–99th percentile range, averaged over 4
           angles: contrast, dissimilarity, homogeneity, energy, correlation at
           ``distances`` pixels
moments    magnitudes of the Zernike moments of the GFP intensity up to ``zernike_degree`` on
           the disc that encloses the cell (rotation invariant; normalised by total intensity),
           and the 7 Hu moments of the GFP in the cell (log-scaled)
puncta     Laplacian-of-Gaussian (σ = 1, 2) response spread, number of local GFP maxima above
           the cell's 90th percentile, focus scores (variance of the Laplacian) of both channels
========== ====================================================================================

Every feature is scale-free where it can be (ratios to the cell's mean), so crops of different
exposure compare. A crop without a cell near its centre (an empty or badly cropped patch) gets a
zero-area mask and finite placeholder values, which is itself informative for the cell-quality
filter.
"""
from __future__ import annotations

from math import factorial
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from atlaskit.errors import DataError, ParameterError

__all__ = ["FEATURE_GROUPS", "cell_masks", "zernike_moments", "yeast_features"]

FEATURE_GROUPS = ("shape", "intensity", "radial", "texture", "moments", "puncta")
_GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")
_QUANTILES = (5, 10, 25, 50, 75, 90, 95, 99)



def _relative_intensity(values: np.ndarray, mean: float) -> dict[str, float]:
    """Coefficient of variation, quantiles, minimum and maximum of ``values``, each over ``mean``."""
    out = {"intensity:cv": float(values.std() / mean)}
    for q, val in zip(_QUANTILES, np.percentile(values, _QUANTILES)):
        out[f"intensity:q{q}_rel"] = float(val / mean)
    out["intensity:min_rel"] = float(values.min() / mean)
    out["intensity:max_rel"] = float(values.max() / mean)
    return out

def _check_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] < 2 or x.shape[2] != x.shape[3]:
        raise DataError(f"yeast crops must be (N, 2, S, S) with GFP then RFP, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("yeast crops contain NaN or infinite values")
    return x


def cell_masks(rfp: np.ndarray, *, sigma: float = 1.0, max_offset: float | None = None,
               min_contrast: float = 4.0, min_area: int = 20) -> np.ndarray:
    """Segment the centred cell of each crop from its cytosolic marker.

    Parameters
    ----------
    rfp : ndarray (N, S, S)
        The RFP (cytosolic marker) channel.
    sigma : float
        Gaussian smoothing before Otsu's threshold.
    max_offset : float, optional
        A component whose nearest pixel lies further than this from the crop centre is not the
        centred cell (default ``S / 4``); such crops get an empty mask.
    min_contrast : float
        The mean of the thresholded foreground must exceed the background mean by this many
        background standard deviations, else the crop has no cell (an empty patch).
    min_area : int
        Components smaller than this (pixels) are debris, not cells.

    Returns
    -------
    ndarray of bool, (N, S, S)
        The centred cell (holes filled), or all False when there is none.
    """
    from skimage.filters import threshold_otsu

    rfp = np.asarray(rfp, dtype=np.float32)
    if rfp.ndim != 3:
        raise DataError(f"cell_masks needs (N, S, S) images, got shape {rfp.shape}")
    n, s, _ = rfp.shape
    max_offset = s / 4 if max_offset is None else float(max_offset)
    yy, xx = np.mgrid[:s, :s]
    dist = np.hypot(yy - (s - 1) / 2, xx - (s - 1) / 2)
    out = np.zeros(rfp.shape, dtype=bool)
    for i in range(n):
        smooth = ndimage.gaussian_filter(rfp[i], sigma)
        if smooth.max() - smooth.min() < 1e-6:
            continue
        fg = smooth > threshold_otsu(smooth)
        # no cell when the "foreground" is not clearly brighter than the background (a patch
        # of noise also has an Otsu threshold)
        bg = smooth[~fg]
        if bg.size < 2 or (smooth[fg].mean() - bg.mean()) < min_contrast * (bg.std() + 1e-9):
            continue
        fg = ndimage.binary_opening(fg, iterations=1)
        labels, k = ndimage.label(fg)
        if k == 0:
            continue
        sizes = ndimage.sum(fg, labels, index=np.arange(1, k + 1))
        labels, k = ndimage.label(np.isin(labels, np.flatnonzero(sizes >= min_area) + 1))
        if k == 0:
            continue
        # distance of each component to the centre: its closest pixel
        closest = ndimage.minimum(dist, labels, index=np.arange(1, k + 1))
        j = int(np.argmin(closest))
        if closest[j] > max_offset:
            continue
        out[i] = ndimage.binary_fill_holes(labels == j + 1)
    return out


def _zernike_indices(degree: int) -> list[tuple[int, int]]:
    return [(n, m) for n in range(degree + 1) for m in range(n + 1) if (n - m) % 2 == 0]


def _radial_coefficients(n: int, m: int) -> list[tuple[float, int]]:
    """(coefficient, power of ρ) terms of the Zernike radial polynomial R_nm."""
    return [
        ((-1) ** k * factorial(n - k) / (factorial(k) * factorial((n + m) // 2 - k) * factorial((n - m) // 2 - k)),
         n - 2 * k)
        for k in range((n - m) // 2 + 1)
    ]


def zernike_moments(image: np.ndarray, centre: tuple[float, float], radius: float, degree: int = 8) -> np.ndarray:
    """Magnitudes |A_nm| of the Zernike moments of ``image`` on a disc (rotation invariant).

    Parameters
    ----------
    image : ndarray (S, S)
        Non-negative intensities.
    centre : (row, col)
    radius : float
        Disc radius in pixels; pixels outside are ignored.
    degree : int
        Highest order n; every (n, m) with 0 ≤ m ≤ n and n − m even is returned (25 for 8).

    Returns
    -------
    ndarray (M,)
        ``|A_nm|`` with ``A_nm = (n + 1)/π Σ f(ρ, θ) V*_nm(ρ, θ)`` for the intensity normalised
        to unit sum on the disc (so the values do not depend on brightness); ``|A_00| = 1/π``.
    """
    if degree < 0:
        raise ParameterError(f"degree must be >= 0, got {degree}")
    img = np.asarray(image, dtype=np.float64)
    idx = _zernike_indices(degree)
    s0, s1 = img.shape
    yy, xx = np.mgrid[:s0, :s1]
    radius = max(float(radius), 1.0)
    dy, dx = (yy - centre[0]) / radius, (xx - centre[1]) / radius
    rho = np.hypot(dy, dx)
    inside = (rho <= 1.0) & (img > 0)
    w = img[inside]
    total = w.sum()
    if total <= 0:
        return np.zeros(len(idx))
    w = w / total
    r, t = rho[inside], np.arctan2(dy[inside], dx[inside])
    powers = r[None, :] ** np.arange(degree + 1)[:, None]  # (degree + 1, P)
    cos_m = np.cos(np.arange(degree + 1)[:, None] * t[None, :])  # (degree + 1, P)
    sin_m = np.sin(np.arange(degree + 1)[:, None] * t[None, :])
    out = np.empty(len(idx))
    for j, (n, m) in enumerate(idx):
        radial = sum(c * powers[p] for c, p in _radial_coefficients(n, m)) * w  # (P,)
        out[j] = (n + 1) / np.pi * np.hypot(radial @ cos_m[m], radial @ sin_m[m])
    return out


def _glcm(patch: np.ndarray, levels: int, distances: Sequence[int]) -> np.ndarray:
    from skimage.feature import graycomatrix, graycoprops

    lo, hi = np.percentile(patch, [1, 99])
    q = np.clip((patch - lo) / max(hi - lo, 1e-9), 0, 1)
    q = np.minimum((q * levels).astype(np.uint8), levels - 1)
    glcm = graycomatrix(q, distances=list(distances), angles=[0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                        levels=levels, symmetric=True, normed=True)
    # (len(distances),) per property, averaged over angles
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.stack([graycoprops(glcm, p).mean(axis=1) for p in _GLCM_PROPS])  # (P, D)
    return np.nan_to_num(vals, nan=0.0).ravel()


def yeast_features(
    images: np.ndarray,
    *,
    levels: int = 32,
    distances: Sequence[int] = (1, 2),
    zernike_degree: int = 8,
    masks: np.ndarray | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Hand-crafted features of yeast crops (see the module docstring for the list).

    Parameters
    ----------
    images : ndarray (N, 2, S, S)
        GFP (protein) then RFP (cytosolic marker), values in any non-negative range.
    levels : int
        Grey levels of the GLCM.
    distances : sequence of int
        GLCM pixel distances.
    zernike_degree : int
        Highest Zernike order.
    masks : ndarray of bool (N, S, S), optional
        Cell masks to use instead of :func:`cell_masks` (e.g. the simulator's truth).
    n_jobs : int
        Worker processes (joblib); every crop is measured on its own, so the result does not
        depend on ``n_jobs``.

    Returns
    -------
    pandas.DataFrame
        (N, F) float64, columns named ``"<group>:<feature>"`` (groups in :data:`FEATURE_GROUPS`),
        every value finite.
    """
    x = _check_images(images)
    if levels < 2 or levels > 256:
        raise ParameterError(f"levels must be in 2..256, got {levels}")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (x.shape[0],) + x.shape[2:]:
            raise DataError(f"masks must be shaped {(x.shape[0],) + x.shape[2:]}, got {masks.shape}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ParameterError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    kw = dict(levels=int(levels), distances=tuple(int(d) for d in distances), zernike_degree=int(zernike_degree))
    if n_jobs == 1 or len(x) < 64:
        table = _features_block(x, masks, **kw)
    else:
        from joblib import Parallel, delayed

        bounds = np.linspace(0, len(x), int(n_jobs) * 4 + 1).astype(int)
        parts = Parallel(n_jobs=int(n_jobs))(
            delayed(_features_block)(x[a:b], None if masks is None else masks[a:b], **kw)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a
        )
        table = pd.concat(parts, ignore_index=True)
    return table


def _features_block(x: np.ndarray, masks: np.ndarray | None, *, levels: int, distances: tuple,
                    zernike_degree: int) -> pd.DataFrame:
    from skimage.measure import moments_central, moments_hu, moments_normalized, regionprops

    n, _, s, _ = x.shape
    gfp, rfp = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    if masks is None:
        masks = cell_masks(x[:, 1])
    yy, xx = np.mgrid[:s, :s]
    centre = ((s - 1) / 2, (s - 1) / 2)
    rows = []
    for i in range(n):
        g, r, mk = gfp[i], rfp[i], masks[i]
        feat: dict[str, float] = {}
        # ---- image-level measures (defined with or without a cell)
        smooth = ndimage.gaussian_filter(r, 1.0)
        fg = smooth > (smooth.mean() + 0.5 * smooth.std())
        feat["shape:n_objects"] = float(ndimage.label(fg)[1])
        feat["shape:foreground_fraction"] = float(fg.mean())
        gmean = g.mean() + 1e-6
        feat["puncta:focus_gfp"] = float(ndimage.laplace(g).var() / gmean**2)
        feat["puncta:focus_rfp"] = float(ndimage.laplace(r).var() / (r.mean() + 1e-6) ** 2)
        area = int(mk.sum())
        feat["shape:area"] = float(area)
        if area >= 5:
            prop = regionprops(mk.astype(np.uint8))[0]
            cy, cx = prop.centroid
            feat["shape:perimeter"] = float(prop.perimeter)
            feat["shape:eccentricity"] = float(prop.eccentricity)
            feat["shape:solidity"] = float(prop.solidity)
            feat["shape:extent"] = float(prop.extent)
            feat["shape:major_axis"] = float(prop.axis_major_length)
            feat["shape:minor_axis"] = float(prop.axis_minor_length)
            feat["shape:form_factor"] = float(4 * np.pi * area / max(prop.perimeter, 1.0) ** 2)
            feat["shape:centre_offset"] = float(np.hypot(cy - centre[0], cx - centre[1]))
            feat["shape:touches_border"] = float(mk[0].any() or mk[-1].any() or mk[:, 0].any() or mk[:, -1].any())
            v = g[mk]
            mean = v.mean() + 1e-6
            feat["intensity:mean"] = float(v.mean())
            feat.update(_relative_intensity(v, mean))
            feat["intensity:integrated"] = float(v.sum())
            edge = mk & ~ndimage.binary_erosion(mk)
            feat["intensity:edge_rel"] = float(g[edge].mean() / mean) if edge.any() else 1.0
            wy, wx = (g * mk * yy).sum() / (v.sum() + 1e-9), (g * mk * xx).sum() / (v.sum() + 1e-9)
            rad = np.sqrt(area / np.pi)
            feat["intensity:mass_displacement"] = float(np.hypot(wy - cy, wx - cx) / rad)
            outside = ~mk
            feat["intensity:outside_rel"] = float(g[outside].mean() / mean) if outside.any() else 0.0
            rv = r[mk]
            feat["intensity:rfp_mean"] = float(rv.mean())
            feat["intensity:rfp_cv"] = float(rv.std() / (rv.mean() + 1e-6))
            feat["intensity:gfp_rfp_corr"] = (
                float(np.corrcoef(v, rv)[0, 1]) if v.std() > 0 and rv.std() > 0 else 0.0
            )
            # radial distribution: normalised distance to the centroid, 0 at the centre, 1 at the edge
            d = np.hypot(yy - cy, xx - cx)
            dmax = max(d[mk].max(), 1.0)
            ring = np.minimum((d / dmax * 4).astype(int), 3)
            for k in range(4):
                sel = mk & (ring == k)
                feat[f"radial:frac_{k}"] = float(g[sel].sum() / (v.sum() + 1e-9)) if sel.any() else 0.0
                feat[f"radial:cv_{k}"] = float(g[sel].std() / (g[sel].mean() + 1e-6)) if sel.sum() > 1 else 0.0
            # texture in the bounding box
            r0, c0, r1, c1 = prop.bbox
            patch = np.where(mk[r0:r1, c0:c1], g[r0:r1, c0:c1], 0.0)
            tex = _glcm(patch, levels, distances)
            # moments
            zern = zernike_moments(g * mk, (cy, cx), dmax + 1.0, zernike_degree)
            mu = moments_central(g * mk, order=3)
            hu = moments_hu(moments_normalized(mu, order=3))
            hu = np.sign(hu) * np.log10(np.abs(hu) + 1e-12)
            # puncta
            log1 = ndimage.gaussian_laplace(g, 1.0)[mk]
            log2 = ndimage.gaussian_laplace(g, 2.0)[mk]
            feat["puncta:log1_spread"] = float(log1.std() / mean)
            feat["puncta:log2_spread"] = float(log2.std() / mean)
            peaks = (g == ndimage.maximum_filter(g, size=3)) & mk & (g > np.percentile(v, 90))
            feat["puncta:n_maxima"] = float(peaks.sum())
        else:
            for name in ("perimeter", "eccentricity", "solidity", "extent", "major_axis", "minor_axis",
                         "form_factor", "touches_border"):
                feat[f"shape:{name}"] = 0.0
            feat["shape:centre_offset"] = float(s)
            mean = gmean
            feat["intensity:mean"] = float(g.mean())
            feat.update(_relative_intensity(g, mean))
            feat["intensity:integrated"] = 0.0
            feat["intensity:edge_rel"] = 1.0
            feat["intensity:mass_displacement"] = 0.0
            feat["intensity:outside_rel"] = 1.0
            feat["intensity:rfp_mean"] = float(r.mean())
            feat["intensity:rfp_cv"] = float(r.std() / (r.mean() + 1e-6))
            feat["intensity:gfp_rfp_corr"] = 0.0
            for k in range(4):
                feat[f"radial:frac_{k}"] = 0.0
                feat[f"radial:cv_{k}"] = 0.0
            tex = _glcm(g, levels, distances)
            zern = zernike_moments(g, centre, s / 2, zernike_degree)
            hu = np.zeros(7)
            feat["puncta:log1_spread"] = float(ndimage.gaussian_laplace(g, 1.0).std() / mean)
            feat["puncta:log2_spread"] = float(ndimage.gaussian_laplace(g, 2.0).std() / mean)
            feat["puncta:n_maxima"] = 0.0
        for j, (p, dist) in enumerate((p, d) for p in _GLCM_PROPS for d in distances):
            feat[f"texture:{p}_d{dist}"] = float(tex[j])
        for (nn_, m), val in zip(_zernike_indices(zernike_degree), zern):
            feat[f"moments:zernike_{nn_}_{m}"] = float(val)
        for k, val in enumerate(hu):
            feat[f"moments:hu_{k + 1}"] = float(val)
        rows.append(feat)
    table = pd.DataFrame(rows)
    order = sorted(table.columns, key=lambda c: (FEATURE_GROUPS.index(c.split(":")[0]), c))
    table = table[order].astype(np.float64)
    # placeholders are finite; guard against a degenerate crop anyway
    return table.replace([np.inf, -np.inf], np.nan).fillna(0.0)
