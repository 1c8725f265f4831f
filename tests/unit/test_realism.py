"""The real-vs-simulated realism measure: statistics on hand-made images, the discriminator's
AUROC at its two ends, group-disjoint folds, and clear errors on bad input."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from atlaskit.analysis import realism
from atlaskit.errors import AtlaskitError, DataError, ParameterError


def _square_image():
    """16×16, zeros with a centred 8×8 square of value 2 (channel a) and its copy (channel b)."""
    image = np.zeros((1, 2, 16, 16))
    image[0, :, 4:12, 4:12] = 2.0
    return image


def test_image_statistics_of_a_centred_square_by_hand():
    row = realism.image_statistics(_square_image(), ("a", "b")).iloc[0]
    assert row["a_raw_max"] == 2.0 and row["a_raw_mean"] == 0.5  # 64 pixels of 2 in 256
    assert row["a_mean"] == 0.25 and row["a_std"] == pytest.approx(np.sqrt(0.25 * 0.75))
    assert row["a_p50"] == 0.0 and row["a_p99"] == 1.0
    assert row["a_background_fraction"] == 0.75 and row["a_background_level"] == 0.0
    assert row["a_contrast"] == 1.0  # background 0: (1 − 0) / (1 + 0)
    assert row["a_centroid_offset"] == 0.0  # square centred on (7.5, 7.5)
    assert row["a_largest_object"] == 0.25
    assert row["a_n_objects"] == 1.0 and row["a_noise"] < 0.01  # no noise: only the blurred edges leak
    # central differences: 0.5 on the two pixels either side of each of the 4 edges (8 long)
    assert row["a_gradient_energy"] == pytest.approx(4 * 8 * 2 * 0.25 / 256)
    assert row["corr_a_b"] == pytest.approx(1.0)
    assert 0 < row["a_high_freq_power"] < 0.5


def test_image_statistics_of_an_off_centre_constant_and_a_flat_image():
    image = np.zeros((2, 1, 10, 10))
    image[0, 0, 0:2, 0:2] = 1.0  # a corner object: centroid at (0.5, 0.5), 4.5·√2 px from (4.5, 4.5)
    table = realism.image_statistics(image, ("x",), levels=False)
    assert "x_raw_max" not in table.columns
    assert table["x_centroid_offset"].iloc[0] == pytest.approx(4 * np.sqrt(2) / 10)
    flat = table.iloc[1]  # an all-zero image: everything background, no objects
    assert flat["x_mean"] == 0.0 and flat["x_background_fraction"] == 1.0 and flat["x_n_objects"] == 0.0
    assert flat["x_largest_object"] == 0.0


def test_noise_is_the_standard_deviation_of_white_background_noise():
    rng = np.random.default_rng(0)
    image = 0.2 + rng.normal(0, 0.01, size=(1, 1, 64, 64))
    image[0, 0, 16:48, 16:48] = 1.0  # bright object: max 1 (±noise), so scaled noise ≈ 0.01
    image[0, 0, 16:48, 16:48] += rng.normal(0, 0.01, size=(32, 32))
    row = realism.image_statistics(image, ("x",)).iloc[0]
    assert row["x_noise"] == pytest.approx(0.01 / row["x_raw_max"], rel=0.15)
    assert row["x_background_level"] == pytest.approx(0.2 / row["x_raw_max"], abs=0.005)


@pytest.mark.parametrize("images, channels", [
    (np.zeros((0, 2, 16, 16)), ("a", "b")),  # empty set
    (np.zeros((3, 2, 16, 16)), ("a",)),  # channel-count mismatch
    (np.zeros((3, 16, 16)), ("a",)),  # not (N, C, H, W)
    (np.full((1, 1, 16, 16), np.nan), ("a",)),  # non-finite
    (np.full((1, 1, 16, 16), -1.0), ("a",)),  # negative intensities
])
def test_image_statistics_rejects_bad_input(images, channels):
    with pytest.raises(DataError):
        realism.image_statistics(images, channels)


def _tables(shift, n=200, seed=0):
    rng = np.random.default_rng(seed)
    real = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    sim = pd.DataFrame(rng.normal(size=(n, 4)) + np.array([shift, 0, 0, 0]), columns=list("abcd"))
    return real, sim, np.arange(n) % 8, np.arange(n) % 10


def test_identical_distributions_give_auroc_near_one_half():
    real, sim, real_groups, sim_groups = _tables(0.0)
    score = realism.discriminate(real, sim, real_groups, sim_groups, n_estimators=50, n_boot=200, seed=0)
    # 200 + 200 draws of one distribution: the out-of-fold AUROC of a forest scatters ±0.06
    # (measured over 10 seeds at n = 300); 0.1 is the tolerance
    assert abs(score.auroc - 0.5) < 0.1
    assert score.low <= score.auroc <= score.high
    assert score.n_splits == 5 and score.n_real == score.n_sim == 200


def test_separable_distributions_give_auroc_one_and_name_the_statistic():
    real, sim, real_groups, sim_groups = _tables(20.0)
    score = realism.discriminate(real, sim, real_groups, sim_groups, n_estimators=50, n_boot=100, seed=0)
    assert score.auroc == 1.0 and score.low == pytest.approx(1.0)
    assert score.importances["statistic"].iloc[0] == "a"
    table = realism.compare_statistics(real, sim)
    assert table["statistic"].iloc[0] == "a" and table["auroc"].iloc[0] == 1.0  # simulated higher
    assert table["ks_statistic"].iloc[0] == 1.0
    assert table.set_index("statistic").loc["b", "separation"] < 0.6


def test_groups_are_never_split_across_folds():
    real, sim, real_groups, sim_groups = _tables(0.5, n=120)
    real_groups = np.arange(120) % 3  # 3 real groups → 3 folds, each holds one real group out
    score = realism.discriminate(real, sim, real_groups, sim_groups, n_splits=5, n_estimators=20, n_boot=20)
    assert score.n_splits == 3
    groups = np.r_[[f"real{g}" for g in real_groups], [f"sim{g}" for g in sim_groups]]
    folds = pd.Series(score.folds).groupby(groups).nunique()
    assert (folds == 1).all() and set(score.folds) == {0, 1, 2}
    assert set(score.folds[:120]) == {0, 1, 2}  # every fold tests real images
    # a real and a simulated group may share a name without being merged
    same_names = realism.discriminate(real, sim, np.arange(120) % 3, np.arange(120) % 3, n_estimators=20, n_boot=20)
    assert same_names.n_splits == 3


def test_discriminate_rejects_bad_input():
    real, sim, real_groups, sim_groups = _tables(0.0, n=40)
    with pytest.raises(DataError, match="got 0 and 40"):
        realism.discriminate(real.iloc[:0], sim, real_groups[:0], sim_groups)
    with pytest.raises(DataError, match="different columns"):
        realism.discriminate(real, sim.rename(columns={"a": "z"}), real_groups, sim_groups)
    with pytest.raises(DataError, match="at least 2 groups"):
        realism.discriminate(real, sim, np.zeros(40), sim_groups)
    with pytest.raises(DataError, match="one entry per row"):
        realism.discriminate(real, sim, real_groups[:10], sim_groups)
    with pytest.raises(AtlaskitError):
        realism.compare_statistics(real, sim[["a", "b"]])


def test_crop_cells_centres_nuclei_and_skips_windows_off_the_field():
    images = np.zeros((1, 2, 40, 40), np.float32)
    images[0, 0, 18:22, 18:22] = 1.0  # nucleus 1 at the centre (19.5, 19.5)
    images[0, 1] = np.arange(40)[None, :] / 40  # a ramp in x
    nuclei = np.zeros((1, 40, 40), np.int32)
    nuclei[0, 18:22, 18:22] = 1
    nuclei[0, 0:3, 0:3] = 2  # nucleus 2 in the corner: its window leaves the field
    fields = SimpleNamespace(images=images, nucleus_masks=nuclei, channels=("nucleus", "protein"),
                             meta=pd.DataFrame({"protein": ["P1"]}))
    crops, meta = realism.crop_cells(fields, 10, out=10, channels=("protein", "nucleus"))
    assert crops.shape == (1, 2, 10, 10) and meta.to_dict("records") == [{"group": "P1", "field": 0, "cell_id": 1}]
    np.testing.assert_allclose(crops[0, 0, 0], np.arange(15, 25) / 40, atol=1e-6)  # window x = 15..24
    assert crops[0, 1, 3:7, 3:7].min() == 1.0 and crops[0, 1].sum() == 16
    with pytest.raises(DataError, match="not among"):
        realism.crop_cells(fields, 10, channels=("er",))
    with pytest.raises(DataError, match="no nucleus"):
        realism.crop_cells(fields, 41, channels=("nucleus",))


def test_real_sets_of_the_mirror_load_with_their_groups(mirror):
    yeast, yeast_meta = realism.real_yeast_cells()
    assert yeast.shape == (1642, 2, 64, 64) and 0 <= yeast.min() and yeast.max() <= 1
    assert yeast_meta["group"].value_counts().to_dict() == {"AAC3": 416, "AAC1": 366, "AAR2": 349, "AAP1": 308,
                                                            "AAH1": 203}
    hpa, hpa_meta = realism.real_hpa_cells()
    assert hpa.shape == (62, 3, 128, 128)
    assert hpa_meta["group"].value_counts().to_dict() == {"A1CF": 34, "AAAS": 22, "A4GALT": 6}


def _blob_images(n, background, seed):
    """Noisy 24×24 images with one Gaussian blob of random position and width on ``background``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24]
    centres, widths = rng.uniform(8, 16, size=(n, 2)), rng.uniform(2, 5, size=n)
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / (2 * widths[:, None, None] ** 2))
    return (background + blobs + rng.normal(0, 0.02, size=(n, 24, 24))).clip(0, None)[:, None]


def test_end_to_end_same_generator_is_indistinguishable_and_a_background_shift_is_found():
    real = realism.image_statistics(_blob_images(150, 0.1, seed=1), ("x",))
    same = realism.image_statistics(_blob_images(150, 0.1, seed=2), ("x",))
    groups = np.arange(150) % 6
    null = realism.discriminate(real, same, groups, groups, n_estimators=50, n_boot=100)
    # 150 + 150 images of one generator: 0.44–0.46 measured over three seeds of the second set
    assert abs(null.auroc - 0.5) < 0.12
    darker = realism.image_statistics(_blob_images(150, 0.0, seed=2), ("x",))
    shifted = realism.discriminate(real, darker, groups, groups, n_estimators=50, n_boot=100)
    assert shifted.auroc > 0.99
    top = realism.compare_statistics(real, darker)
    assert top["statistic"].iloc[0] in {"x_p05", "x_p25", "x_background_level", "x_contrast"}
    assert top["sim_median"].iloc[0] != pytest.approx(top["real_median"].iloc[0], abs=0.03)


def test_calibrated_yeast_look_is_closer_to_the_real_cells_than_the_original(mirror):
    before = realism.compare_yeast(proteins_per_class=6, n_per_protein=6, n_boot=50, look="original")
    after = realism.compare_yeast(proteins_per_class=6, n_per_protein=6, n_boot=50)
    table = realism.looks_table({"original": before, "calibrated": after}, statistics=("rfp_raw_max", "rfp_p05"))
    assert list(table.columns) == ["real", "simulated, original", "simulated, calibrated"]
    assert list(table.index) == ["AUROC", "rfp_raw_max", "rfp_p05"]
    assert table.loc["AUROC", "real"] == "" and table.loc["AUROC", "simulated, original"].startswith(f"{before.score.auroc:.2f}")
    level = table.loc["rfp_raw_max"].astype(float)
    # the original look saturates the RFP; the calibrated one sits near the real cells' level
    assert abs(level["simulated, calibrated"] - level["real"]) < abs(level["simulated, original"] - level["real"])
    assert before.score.auroc > 0.95 and after.score.auroc < before.score.auroc
    with pytest.raises(DataError, match="unknown statistics"):
        realism.looks_table({"original": before}, statistics=("no_such",))
    with pytest.raises(DataError, match="at least one"):
        realism.looks_table({})


def test_auroc_over_draws_is_each_draws_compare_yeast_and_a_t_interval(mirror):
    spread = realism.yeast_over_draws((0, 3), proteins_per_class=4, n_per_protein=5, n_boot=20)
    assert spread.draws["seed"].tolist() == [0, 3] and spread.look == "calibrated"
    # a draw's AUROC is the number compare_yeast gives for that seed (real statistics computed once)
    single = realism.compare_yeast(proteins_per_class=4, n_per_protein=5, n_boot=20, seed=3)
    assert spread.draws["auroc"].iloc[1] == pytest.approx(single.score.auroc)
    assert spread.draws["auroc"].iloc[0] != spread.draws["auroc"].iloc[1]  # another draw, another number
    a = spread.draws["auroc"].to_numpy()
    # two draws: t(0.975, 1) = 12.706 times the standard error
    half = 12.706 * a.std(ddof=1) / np.sqrt(2)
    assert spread.mean == pytest.approx(a.mean())
    assert (spread.low, spread.high) == pytest.approx((a.mean() - half, a.mean() + half), abs=1e-3)
    with pytest.raises(ParameterError, match="at least two seeds"):
        realism.yeast_over_draws((0,))


def test_draw_spread_summary_states_the_goal_from_the_interval():
    draws = pd.DataFrame({"seed": [0, 1, 2], "auroc": [0.8, 0.82, 0.84], "low": 0.0, "high": 1.0})
    line = realism.DrawSpread("calibrated", draws, 0.82, 0.77, 0.87).summary(goal=0.75)
    assert "mean AUROC 0.82 [0.77, 0.87]; draws 0.80–0.84" in line and line.endswith("not met (the whole interval above it)")
    assert max(len(part) for part in line.splitlines()) <= 72  # fits a book page's output box
    assert realism.DrawSpread("calibrated", draws, 0.7, 0.65, 0.74).summary(goal=0.75).endswith("met (the whole interval at or below it)")
    assert realism.DrawSpread("calibrated", draws, 0.75, 0.70, 0.80).summary(goal=0.75).endswith("undecided (the interval spans it)")
    assert "goal" not in realism.DrawSpread("calibrated", draws, 0.75, 0.70, 0.80).summary()


def test_group_scores_by_hand():
    score = SimpleNamespace(scores=np.array([0.1, 0.2, 0.9, 0.6, 0.8, 0.7, 0.3, 0.95]), n_real=4)
    comparison = SimpleNamespace(score=score,
                                 real_meta=pd.DataFrame({"group": ["A", "A", "B", "B"], "klass": ["m", "m", "c", "c"]}),
                                 sim_meta=pd.DataFrame({"group": ["S1", "S1", "S2", "S2"], "klass": ["m", "m", "c", "c"]}))
    table = realism.group_scores(comparison)
    assert list(table.index) == [("real", "A"), ("real", "B"), ("simulated", "S1"), ("simulated", "S2")]
    assert list(table.columns) == ["klass", "cells", "mean_score", "auroc"]
    assert table["klass"].tolist() == ["m", "c", "m", "c"] and table["cells"].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(table["mean_score"], [0.15, 0.75, 0.75, 0.625])
    # A lies below every simulated score; B's 0.9 is below one of four, its 0.6 below three of four;
    # S1 and S2 are each above six of the eight (simulated, real) pairs
    np.testing.assert_allclose(table["auroc"], [1.0, 0.5, 0.75, 0.75])
    without_class = realism.group_scores(SimpleNamespace(score=score, real_meta=comparison.real_meta[["group"]],
                                                         sim_meta=comparison.sim_meta[["group"]]))
    assert list(without_class.columns) == ["cells", "mean_score", "auroc"]

