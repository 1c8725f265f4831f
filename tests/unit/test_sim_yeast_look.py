"""The yeast simulator's looks (calibrated on real cells / original), the abundance → brightness
rule, and the per-field export gain."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from atlaskit.data import sim
from atlaskit.data.sim import yeast as Y
from atlaskit.errors import AtlaskitError


def test_abundance_brightness_hand_computed():
    ref, exponent = Y.ABUNDANCE_REFERENCE, Y.ABUNDANCE_EXPONENT
    out = Y.abundance_brightness([ref, 2 * ref, np.nan, 0.0, 1e12, 1.0])
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx(2 ** exponent)
    # unmeasured (NaN) and non-positive abundances count as UNMEASURED_MOLECULES
    assert out[2] == out[3] == pytest.approx((Y.UNMEASURED_MOLECULES / ref) ** exponent)
    assert out[4] == Y.BRIGHTNESS_RANGE[1] and out[5] == Y.BRIGHTNESS_RANGE[0]  # clipped


def test_catalog_brightness_follows_yeastgfp_abundance():
    from atlaskit.data.catalogs import yeastgfp

    specs = {s.name: s for s in sim.yeast_specs(None, 0, "main")}
    molecules = yeastgfp().set_index("orf")["abundance"]
    measured = [o for o in specs if np.isfinite(molecules.get(o, np.nan))]
    abundance = np.array([specs[o].abundance for o in measured])
    expected = Y.abundance_brightness(molecules.reindex(measured).to_numpy())
    # a per-protein spread of exp(N(0, 0.2)) around the rule, nothing more
    ratio = np.log(abundance / expected)
    assert abs(np.median(ratio)) < 0.05 and np.std(ratio) == pytest.approx(0.2, abs=0.03)
    assert np.corrcoef(np.log(abundance), np.log(expected))[0, 1] > 0.9


def test_looks_differ_and_are_deterministic():
    a = sim.yeast_crops(["YAL005C"], 12, seed=3)  # default look: calibrated
    b = sim.yeast_crops(["YAL005C"], 12, seed=3, look="calibrated")
    c = sim.yeast_crops(["YAL005C"], 12, seed=3, look="original")
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.allclose(a.images, c.images)
    # the original look saturates the RFP channel; the calibrated one stays below 1 as real cells do
    assert np.mean(c.images[:, 1].max((1, 2)) == 1.0) >= 0.4
    assert np.median(a.images[:, 1].max((1, 2))) < 0.8
    # cells are larger in the calibrated look (cell masks, centred cell = id 1)
    big = sim.yeast_crops(["YAL005C"], 4, seed=3, masks=True).cell_masks
    small = sim.yeast_crops(["YAL005C"], 4, seed=3, masks=True, look="original").cell_masks
    assert (big == 1).sum() > 1.5 * (small == 1).sum()


def test_dim_fields_scale_the_whole_export():
    bright = dataclasses.replace(Y.CALIBRATED, dim_field_fraction=0.0)
    dim = dataclasses.replace(Y.CALIBRATED, dim_field_fraction=1.0, dim_field_gain=0.25)
    x = sim.yeast_crops(["YAL005C"], 6, seed=1, look=bright).images
    y = sim.yeast_crops(["YAL005C"], 6, seed=1, look=dim).images
    # the same photons exported 4× dimmer: every level (background included) scales, up to 8-bit
    # rounding, where the bright export did not clip them at 1
    unclipped = x < 1.0
    assert unclipped.mean() > 0.9
    np.testing.assert_allclose(y[unclipped], np.round(x[unclipped] * 255 * 0.25) / 255, atol=1.5 / 255)


def test_wells_move_all_cells_of_a_protein_together():
    flat = dataclasses.replace(Y.CALIBRATED, well_rfp_sd=0.0, well_background_sd=0.0)
    proteins = sim.yeast_specs(None, 0, "main", per_class=2)[:8]
    wells = np.array([p.info["well"] for p in proteins])
    assert wells.shape == (8, 2) and np.unique(wells[:, 0]).size == 8  # one draw per protein
    with_wells = sim.yeast_crops(proteins, 6, seed=2).images
    without = sim.yeast_crops(proteins, 6, seed=2, look=flat).images
    # the RFP signal of a protein's cells (95th minus 5th percentile: above the background, which
    # the well leaves alone) moves with its well draw: exp(0.33 z), z its first number
    def signal(images):
        rfp = images[:, 1].reshape(8, 6, -1)
        return np.median(np.percentile(rfp, 95, axis=-1) - np.percentile(rfp, 5, axis=-1), axis=1)

    expected = np.exp(Y.CALIBRATED.well_rfp_sd * wells[:, 0])
    assert expected.max() / expected.min() > 1.5  # the draws spread enough for the check to mean something
    np.testing.assert_allclose(signal(with_wells) / signal(without), expected, rtol=0.03)
    # the well draws come after every other parameter of a protein: its pattern is unchanged
    assert [c.params for c in proteins[0].components] == [c.params for c in Y.make_yeast_protein(
        proteins[0].name, proteins[0].info["klass"], 0, {k: v for k, v in proteins[0].info.items() if k != "well"}).components]


def test_rfp_camera_smoothing_and_noise_touch_the_rfp_only():
    from atlaskit.analysis.cellmeasures import pixel_noise, white_noise_ratio

    resampled = dataclasses.replace(Y.CALIBRATED, rfp_smoothing=0.3)
    x = sim.yeast_crops(["YAL005C"], 12, seed=4).images
    y = sim.yeast_crops(["YAL005C"], 12, seed=4, look=resampled).images
    np.testing.assert_array_equal(x[:, 0], y[:, 0])  # the GFP is not touched
    white, smoothed = pixel_noise(x[:, 1])["diagonal_to_axis"].median(), pixel_noise(y[:, 1])["diagonal_to_axis"].median()
    assert white == pytest.approx(1.0, abs=0.04)
    assert smoothed == pytest.approx(white_noise_ratio([0.3, 1, 0.3]), abs=0.04) and smoothed < 0.9  # 8-bit rounding adds a little white noise
    # smoothing keeps the levels (a normalised kernel): the cell's mean is unchanged up to 8-bit rounding
    np.testing.assert_allclose(y[:, 1].mean((1, 2)), x[:, 1].mean((1, 2)), atol=2 / 255)
    # the RFP camera's read noise and background raise its background noise and level
    noisy = dataclasses.replace(Y.CALIBRATED, rfp_read_noise=40.0)
    brighter = dataclasses.replace(Y.CALIBRATED, rfp_background=2.0)
    z = sim.yeast_crops(["YAL005C"], 12, seed=4, look=noisy).images
    w = sim.yeast_crops(["YAL005C"], 12, seed=4, look=brighter).images
    assert pixel_noise(z[:, 1])["background"].median() > 1.5 * pixel_noise(x[:, 1])["background"].median()
    assert np.percentile(w[:, 1], 5) > np.percentile(x[:, 1], 5) + 2 / 255
    np.testing.assert_array_equal(z[:, 0], x[:, 0])


def test_gfp_photons_per_level_follow_brightness():
    """``gfp_photon_exponent`` multiplies a protein's GFP photons (signal and background) and its
    export scale by brightness ** exponent: the levels stay, the noise falls for bright proteins
    and rises for dim ones, as shot noise of that many photons plus the unscaled read noise."""
    from atlaskit.analysis.cellmeasures import pixel_noise

    protein = sim.yeast_specs(None, 0, "main", per_class=1)[0]
    fixed = dataclasses.replace(Y.CALIBRATED, gfp_photon_exponent=0.0, dim_field_fraction=0.0)
    following = dataclasses.replace(fixed, gfp_photon_exponent=1.0)
    optics = fixed.optics
    for brightness in (2.5, 0.4):
        spec = dataclasses.replace(protein, abundance=brightness)
        x = sim.yeast_crops([spec], 24, seed=6, look=fixed).images
        y = sim.yeast_crops([spec], 24, seed=6, look=following).images
        # the RFP's levels are not touched (its noise draws may differ: the GFP's Poisson draws come first)
        np.testing.assert_allclose(y[:, 1].mean((1, 2)), x[:, 1].mean((1, 2)), atol=2 / 255)
        # the same levels on average (8-bit export, its rounding and the new noise aside)
        assert np.median(y[:, 0].mean((1, 2))) == pytest.approx(np.median(x[:, 0].mean((1, 2))), rel=0.05)
        # background noise: sqrt(gain² · background · m + read²) / m against m = 1
        background = optics.background * optics.gain ** 2
        expected = np.sqrt(background * brightness + optics.read_noise ** 2) / brightness \
            / np.sqrt(background + optics.read_noise ** 2)
        ratio = pixel_noise(y[:, 0])["background"].median() / pixel_noise(x[:, 0])["background"].median()
        assert ratio == pytest.approx(expected, rel=0.12)
    assert Y.ORIGINAL.gfp_photon_exponent == 0.0 and Y.CALIBRATED.gfp_photon_exponent == 0.4


def test_unknown_look_is_a_clear_error():
    with pytest.raises(AtlaskitError, match="yeast look"):
        sim.yeast_crops(["YAL005C"], 1, look="glossy")
    assert set(sim.YEAST_LOOKS) == {"calibrated", "original"}
