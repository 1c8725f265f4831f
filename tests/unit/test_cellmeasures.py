"""atlaskit.analysis.cellmeasures: edge profiles and pixel noise, against hand-computed cases."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from atlaskit.analysis import cellmeasures
from atlaskit.errors import DataError, ParameterError


def test_white_noise_ratio_by_hand():
    assert cellmeasures.white_noise_ratio([1.0]) == pytest.approx(1.0)
    # k = [w, 1, w]: k * [1, -1] = [w, 1-w, w-1, -w] and k * [1, -2, 1] = [w, 1-2w, 2w-2, 1-2w, w]
    w = 0.25
    first = 2 * w ** 2 + 2 * (1 - w) ** 2
    second = 2 * w ** 2 + 2 * (1 - 2 * w) ** 2 + (2 * w - 2) ** 2
    # separable: the diagonal's variance is (first / 2)², the axis one's (second / 6) · Σ k²
    squares = 1 + 2 * w ** 2
    assert cellmeasures.white_noise_ratio([w, 1, w]) == pytest.approx(np.sqrt(3 * first ** 2 / (2 * second * squares)))
    # the kernel's scale does not matter; a 2-D kernel given as such agrees with the separable one
    assert cellmeasures.white_noise_ratio([2 * w, 2, 2 * w]) == pytest.approx(cellmeasures.white_noise_ratio([w, 1, w]))
    assert cellmeasures.white_noise_ratio(np.outer([w, 1, w], [w, 1, w])) == pytest.approx(
        cellmeasures.white_noise_ratio([w, 1, w]))
    with pytest.raises(ParameterError, match="kernel"):
        cellmeasures.white_noise_ratio(np.ones((2, 2, 2)))


def _noisy_disk(noise: np.ndarray, level: float = 5.0) -> np.ndarray:
    """A bright disk (radius 60) in a 256-px field plus the given noise."""
    yy, xx = np.mgrid[:256, :256]
    disk = np.hypot(yy - 127.5, xx - 127.5) < 60
    return (1.0 + level * disk + noise).clip(0)


def test_white_and_smoothed_noise_read_as_expected():
    rng = np.random.default_rng(0)
    white = rng.normal(0, 0.1, (2, 256, 256))
    kernel = np.array([0.2, 1.0, 0.2]) / 1.4
    smoothed = ndimage.correlate1d(ndimage.correlate1d(white, kernel, axis=1), kernel, axis=2)
    table = cellmeasures.pixel_noise(_noisy_disk(np.concatenate([white, smoothed])))
    assert list(table.columns) == list(cellmeasures.NOISE_COLUMNS)
    np.testing.assert_allclose(table["background"][:2], 0.1, rtol=0.03)
    np.testing.assert_allclose(table["foreground_to_background"][:2], 1.0, rtol=0.05)  # constant noise
    np.testing.assert_allclose(table["diagonal_to_axis"][:2], 1.0, atol=0.02)
    np.testing.assert_allclose(table["diagonal_to_axis"][2:], cellmeasures.white_noise_ratio(kernel), atol=0.02)
    assert cellmeasures.white_noise_ratio(kernel) < 0.9


def test_shot_like_noise_is_higher_in_the_cell():
    rng = np.random.default_rng(1)
    clean = _noisy_disk(np.zeros((1, 256, 256)))
    noisy = clean + rng.normal(size=clean.shape) * 0.1 * np.sqrt(clean)  # sd ∝ √signal: 1 outside, 6 inside
    ratio = cellmeasures.pixel_noise(noisy)["foreground_to_background"].iloc[0]
    assert ratio == pytest.approx(np.sqrt(6), rel=0.05)


def test_flat_crops_give_nan_and_bad_input_is_refused():
    assert cellmeasures.pixel_noise(np.ones((1, 16, 16))).isna().all(axis=None)
    for bad in (np.ones((2, 1, 16, 16)), np.ones((0, 16, 16)), np.ones((1, 4, 4)), -np.ones((1, 16, 16)),
                np.full((1, 16, 16), np.nan)):
        with pytest.raises(DataError, match="pixel_noise"):
            cellmeasures.pixel_noise(bad)


def test_pixel_noise_table_per_channel_source_and_class():
    rng = np.random.default_rng(2)
    crops = _noisy_disk(rng.normal(0, 0.1, (4, 256, 256)))
    images = np.stack([crops, crops], 1)  # (N, 2, H, W)
    comparison = SimpleNamespace(channels=("gfp", "rfp"), real_images=images[:2], sim_images=images[2:],
                                 real_meta=pd.DataFrame({"klass": ["a", "b"]}), sim_meta=pd.DataFrame({"klass": ["a", "a"]}))
    table = cellmeasures.pixel_noise_table(comparison, channels=["rfp"])
    assert list(table.index) == [("rfp", "real", "a"), ("rfp", "real", "b"), ("rfp", "simulated", "a")]
    assert table["cells"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(table["background"], 0.1, rtol=0.05)
    with pytest.raises(ParameterError, match="no channel 'dapi'"):
        cellmeasures.pixel_noise_table(comparison, channels=["dapi"])


def _disk_crops(signal):
    """One 64×64 crop: a disk of radius 15.5 as the marker (channel 1) and ``signal`` as channel 0."""
    yy, xx = np.mgrid[:64, :64]
    marker = ((yy - 32) ** 2 + (xx - 32) ** 2 <= 15.5 ** 2).astype(np.float32)
    return np.stack([signal(marker), marker])[None]


def test_edge_profile_of_an_even_fill_and_of_a_rim_by_hand():
    from scipy import ndimage

    even = cellmeasures.edge_profile(_disk_crops(lambda cell: cell * 0.5))
    assert list(even.columns) == ["0–2 px", "2–4 px", "4–6 px", "6–9 px", "> 9 px", "area"]
    np.testing.assert_allclose(even.iloc[0, :5].to_numpy(float), 1.0)
    assert even["area"].iloc[0] == (_disk_crops(np.zeros_like)[0, 1] > 0).sum()  # the segmented cell is the disk

    def rim(cell):  # signal only within 2 px of the edge: that band holds all of it
        return ((ndimage.distance_transform_edt(cell) <= 2) & (cell > 0)).astype(np.float32)

    crops = _disk_crops(rim)
    profile = cellmeasures.edge_profile(crops)
    cell = crops[0, 1] > 0
    ring = rim(crops[0, 1]) > 0
    assert profile["0–2 px"].iloc[0] == pytest.approx(cell.sum() / ring.sum())
    np.testing.assert_allclose(profile.iloc[0, 1:5].to_numpy(float), 0.0)


def test_edge_profile_skips_flat_and_small_crops_and_rejects_bad_channels():
    flat = np.zeros((1, 2, 64, 64), np.float32)
    assert cellmeasures.edge_profile(flat).isna().all(axis=None)
    assert cellmeasures.edge_profile(_disk_crops(lambda cell: cell), min_area=10_000).isna().all(axis=None)
    with pytest.raises(ParameterError, match="marker channel 2"):
        cellmeasures.edge_profile(flat, marker=2)
    with pytest.raises(DataError, match="edge_profile"):
        cellmeasures.edge_profile(np.zeros((2, 64, 64)))


def test_edge_profile_table_gives_median_profiles_per_source_and_class():
    even, rim = _disk_crops(lambda cell: cell), _disk_crops(lambda cell: cell * (1 + (np.arange(64) % 2)))
    comparison = SimpleNamespace(real_images=np.concatenate([even, even]), sim_images=np.concatenate([even, rim]),
                                 real_meta=pd.DataFrame({"klass": ["a", "a"]}),
                                 sim_meta=pd.DataFrame({"klass": ["a", "b"]}))
    table = cellmeasures.edge_profile_table(comparison)
    assert list(table.index) == [("real", "a"), ("simulated", "a"), ("simulated", "b")]
    assert table["cells"].tolist() == [2, 1, 1]
    np.testing.assert_allclose(table.loc[("real", "a")].iloc[:5].to_numpy(float), 1.0)
    with pytest.raises(DataError, match="klass"):
        cellmeasures.edge_profile_table(SimpleNamespace(real_images=even, sim_images=even, real_meta=pd.DataFrame(index=[0]),
                                                   sim_meta=pd.DataFrame({"klass": ["a"]})))


def _poisson_cells(rng, gain, inside, beside=0.05, n=12):
    """Crops of a disk (radius 18) at ``inside`` on ``beside``, as Poisson photons of which
    ``1 / gain`` make one unit: the noise variance at level L is gain · L."""
    yy, xx = np.mgrid[:64, :64]
    level = np.where(np.hypot(yy - 31.5, xx - 31.5) < 18, inside, beside)
    return gain * rng.poisson(level / gain, (n, 64, 64)).astype(np.float64)


def test_noise_per_level_recovers_the_photons_behind_a_level():
    rng = np.random.default_rng(0)
    gains, insides = (0.002, 0.001, 0.0005), (0.15, 0.45, 1.65)  # signal 0.1, 0.4, 1.6
    images = np.concatenate([_poisson_cells(rng, g, i) for g, i in zip(gains, insides)])
    groups = np.repeat(["dim", "mid", "bright"], 12)
    table = cellmeasures.noise_per_level(images, groups)
    assert list(table.index) == ["dim", "mid", "bright"] and (table["cells"] == 12).all()
    np.testing.assert_allclose(table["signal"], [0.1, 0.4, 1.6], rtol=0.02)
    np.testing.assert_allclose(table["beside_noise"], np.sqrt(np.array(gains) * 0.05), rtol=0.05)
    np.testing.assert_allclose(table["variance_per_level"], gains, rtol=0.1)
    # the gain halves each time the signal quadruples: a slope of log(1/2) / log(4) = -0.5
    assert cellmeasures.level_slope(table) == pytest.approx(-0.5, abs=0.05)
    # one gain for all (a fixed export): slope 0
    fixed = np.concatenate([_poisson_cells(rng, 0.001, i) for i in insides])
    assert cellmeasures.level_slope(cellmeasures.noise_per_level(fixed, groups)) == pytest.approx(0.0, abs=0.05)


def test_noise_per_level_bad_input():
    images = _poisson_cells(np.random.default_rng(1), 0.001, 0.3, n=3)
    with pytest.raises(DataError, match="2 groups for 3 crops"):
        cellmeasures.noise_per_level(images, ["a", "b"])
    with pytest.raises(DataError, match="pixel_noise"):
        cellmeasures.noise_per_level(images[:, None], ["a"] * 3)
    one = cellmeasures.noise_per_level(images, ["a"] * 3)
    with pytest.raises(DataError, match="at least two groups"):
        cellmeasures.level_slope(one)


def test_noise_per_level_table_per_source():
    rng = np.random.default_rng(2)
    insides = (0.15, 0.45, 1.65)
    real = np.concatenate([_poisson_cells(rng, g, i) for g, i in zip((0.002, 0.001, 0.0005), insides)])
    simulated = np.concatenate([_poisson_cells(rng, 0.001, i) for i in insides])
    groups = pd.DataFrame({"group": np.repeat(["a", "b", "c"], 12)})
    comparison = SimpleNamespace(channels=("gfp", "rfp"), real_images=np.stack([real, real], 1),
                                 sim_images=np.stack([simulated, simulated], 1), real_meta=groups, sim_meta=groups)
    table = cellmeasures.noise_per_level_table(comparison)
    assert list(table.index) == ["real", "simulated"] and (table["groups"] == 3).all()
    assert table.loc["real", "slope"] == pytest.approx(-0.5, abs=0.07)
    assert table.loc["simulated", "slope"] == pytest.approx(0.0, abs=0.07)
    assert table.loc["simulated", "variance_per_level"] == pytest.approx(0.001, rel=0.1)
    with pytest.raises(ParameterError, match="no channel 'dapi'"):
        cellmeasures.noise_per_level_table(comparison, channel="dapi")
