"""Image statistics on hand-made images with known answers."""
import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, ellipse

from atlaskit.analysis import imagestats
from atlaskit.errors import DataError


def test_nucleus_shapes_of_a_disc_and_an_ellipse():
    labels = np.zeros((120, 120), np.int32)
    labels[disk((30, 30), 15)] = 1
    labels[ellipse(80, 80, 10, 25)] = 2
    labels[5, 100] = 3  # one-pixel debris, dropped
    table = imagestats.nucleus_shapes(labels)
    assert list(table["label"]) == [1, 2]
    disc, oval = table.iloc[0], table.iloc[1]
    assert disc["area"] == pytest.approx(np.pi * 15**2, rel=0.03)
    assert disc["eccentricity"] < 0.1 and disc["major_minor_ratio"] == pytest.approx(1, abs=0.05)
    assert oval["major_minor_ratio"] == pytest.approx(2.5, rel=0.05)
    assert disc["solidity"] > 0.95 and 0.85 < disc["circularity"] <= 1.1


def test_nucleus_shapes_rejects_float_images():
    with pytest.raises(DataError, match="integer label image"):
        imagestats.nucleus_shapes(np.zeros((4, 4)))


def test_intensity_profile_is_gain_invariant():
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 10.0, size=(64, 64))
    a, b = imagestats.intensity_profile(image), imagestats.intensity_profile(7.5 * image)
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-9)
    assert imagestats.intensity_profile(np.ones((8, 8)))["cv"] == 0


def test_texture_separates_smooth_from_noisy():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64]
    smooth = np.sin(xx / 10.0) + np.cos(yy / 12.0)
    noisy = rng.normal(size=(64, 64))
    s, n = imagestats.texture_features(smooth), imagestats.texture_features(noisy)
    assert s["contrast"] < n["contrast"] and s["homogeneity"] > n["homogeneity"] and s["correlation"] > 0.9 > n["correlation"]


def test_compare_samples_identical_and_disjoint():
    a = pd.DataFrame({"x": np.arange(100.0)})
    same = imagestats.compare_samples(a, a)
    assert same.loc["x", "ks_statistic"] == 0 and same.loc["x", "ratio"] == 1
    far = imagestats.compare_samples(a, a + 1000)
    assert far.loc["x", "ks_statistic"] == 1
    with pytest.raises(DataError, match="no values for 'x'"):
        imagestats.compare_samples(a, pd.DataFrame({"x": [np.nan]}))
