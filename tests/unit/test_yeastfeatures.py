"""Hand-crafted yeast features (atlaskit.analysis.yeastfeatures)."""
from __future__ import annotations

import numpy as np
import pytest

from atlaskit.analysis.yeastfeatures import FEATURE_GROUPS, cell_masks, yeast_features, zernike_moments
from atlaskit.errors import DataError, ParameterError

S = 64


def _disc(cy, cx, r, size=S):
    yy, xx = np.mgrid[:size, :size]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)


def _crops():
    """Four crops: nuclear GFP, cytoplasmic GFP, punctate GFP (all in a centred cell), and an empty patch."""
    rng = np.random.default_rng(0)
    cell = _disc(31.5, 31.5, 12)
    nucleus = _disc(31.5, 31.5, 5)
    rfp = 0.05 + 0.6 * cell
    puncta = np.zeros((S, S), np.float32)
    for y, x in rng.integers(24, 40, (6, 2)):
        puncta += _disc(y, x, 1.2)
    gfp = [0.02 + 0.8 * nucleus, 0.02 + 0.5 * cell, 0.02 + 0.3 * cell + 0.9 * puncta * cell,
           0.02 + 0.01 * rng.random((S, S), dtype=np.float32)]
    red = [rfp, rfp, rfp, 0.05 + 0.01 * rng.random((S, S), dtype=np.float32)]
    noise = rng.normal(0, 0.005, (4, 2, S, S)).astype(np.float32)
    return np.clip(np.stack([np.stack([g, r]) for g, r in zip(gfp, red)]) + noise, 0, 1)


def test_cell_masks_find_the_centred_cell():
    x = _crops()
    masks = cell_masks(x[:, 1])
    truth = _disc(31.5, 31.5, 12).astype(bool)
    for i in range(3):
        iou = (masks[i] & truth).sum() / (masks[i] | truth).sum()
        assert iou > 0.9
    assert not masks[3].any()  # an empty patch has no cell
    off = np.clip(0.05 + 0.6 * _disc(5, 5, 4)[None], 0, 1)
    assert not cell_masks(off).any()  # a cell far from the centre is not the centred cell


def test_features_shape_names_and_finite():
    x = _crops()
    table = yeast_features(x)
    assert table.shape[0] == 4
    assert {c.split(":")[0] for c in table.columns} == set(FEATURE_GROUPS)
    assert np.isfinite(table.to_numpy()).all()
    assert table["shape:area"].iloc[3] == 0  # the empty patch
    assert table["shape:area"].iloc[0] == pytest.approx(np.pi * 12**2, rel=0.1)


def test_features_separate_patterns():
    t = yeast_features(_crops())
    # nuclear GFP is concentrated in the inner ring, cytoplasmic GFP is spread out
    assert t["radial:frac_0"].iloc[0] > 2 * t["radial:frac_0"].iloc[1]
    # puncta give a larger Laplacian-of-Gaussian response than a smooth cytoplasm
    assert t["puncta:log1_spread"].iloc[2] > 2 * t["puncta:log1_spread"].iloc[1]


def test_relative_features_ignore_exposure():
    x = _crops()[:3]
    brighter = x.copy()
    brighter[:, 0] *= 1.2
    a, b = yeast_features(x), yeast_features(brighter)
    for column in ("intensity:cv", "intensity:q90_rel", "radial:frac_1", "moments:zernike_2_0"):
        assert a[column].to_numpy() == pytest.approx(b[column].to_numpy(), rel=1e-4, abs=1e-6)


def test_zernike_rotation_invariant_and_normalised():
    rng = np.random.default_rng(1)
    img = rng.random((S, S)) * _disc(31.5, 31.5, 20)
    z = zernike_moments(img, (31.5, 31.5), 20.5, degree=6)
    assert z.size == 16  # (n, m) with m <= n, n - m even, n <= 6
    assert z[0] == pytest.approx(1 / np.pi)
    assert zernike_moments(np.rot90(img), (31.5, 31.5), 20.5, degree=6) == pytest.approx(z, abs=1e-10)
    assert zernike_moments(3 * img, (31.5, 31.5), 20.5, degree=6) == pytest.approx(z)
    assert (zernike_moments(np.zeros((S, S)), (31.5, 31.5), 10) == 0).all()


def test_bad_input():
    with pytest.raises(DataError, match="GFP then RFP"):
        yeast_features(np.zeros((2, 1, S, S), np.float32))
    bad = _crops()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        yeast_features(bad)
    with pytest.raises(ParameterError):
        yeast_features(_crops(), n_jobs=0)
    with pytest.raises(DataError, match="masks"):
        yeast_features(_crops(), masks=np.zeros((4, 32, 32), bool))
