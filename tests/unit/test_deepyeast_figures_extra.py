"""Chapter 04's Fig. 3C (activation maps), S2 (forest vs network per protein) and S4 (units against
hand-crafted features): computations on hand-checked cases, figure shapes, bad input."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet
from atlaskit.studies import deepyeast as dy

CLASSES = ["a", "b", "c"]


def _small() -> DeepYeastNet:
    torch.manual_seed(0)
    return DeepYeastNet(DeepYeastConfig.small(0.125)).eval()


# ----------------------------------------------------------------------------- Fig. 3C
def test_example_cells_picks_the_most_confident_right_cell_of_distinct_classes():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.6, 0.2, 0.2], [0.9, 0.05, 0.05],   # class 0: cell 1 (0.9)
                      [0.1, 0.8, 0.1], [0.7, 0.2, 0.1],     # class 1: cell 2 (0.8); cell 3 is wrong
                      [0.3, 0.3, 0.4], [0.2, 0.1, 0.7]])    # class 2: cell 5 (0.7)
    assert dy.example_cells(y, probs, n=3).tolist() == [1, 2, 5]
    assert dy.example_cells(y, probs, n=2).tolist() == [1, 2]
    with pytest.raises(DataError):
        dy.example_cells(y, probs, n=4)
    with pytest.raises(DataError):
        dy.example_cells(y[:5], probs)
    with pytest.raises(ParameterError):
        dy.example_cells(y, probs, n=0)


def test_activation_maps_are_channel_means_of_the_features():
    model = _small()
    images = np.random.default_rng(0).random((2, 2, 64, 64), dtype=np.float32)
    maps = dy.activation_maps(model, images, ["conv1_1", "conv2_2", "conv3_4"])
    assert list(maps) == ["conv1_1", "conv2_2", "conv3_4"]
    assert maps["conv1_1"].shape == (2, 64, 64) and maps["conv2_2"].shape == (2, 32, 32)
    assert maps["conv3_4"].shape == (2, 16, 16)
    with torch.no_grad():
        ref = model.features(torch.from_numpy(images), "conv2_2")["conv2_2"].mean(1).numpy()
    np.testing.assert_allclose(maps["conv2_2"], ref, rtol=1e-5, atol=1e-6)
    assert (maps["conv1_1"] >= 0).all()  # post-ReLU
    with pytest.raises(ParameterError):
        dy.activation_maps(model, images, ["fc1"])
    with pytest.raises(ParameterError):
        dy.activation_maps(model, images, ["conv9_9"])
    with pytest.raises(DataError):
        dy.activation_maps(model, images[0], ["conv1_1"])


def test_cell_activations_figure_grid():
    images = np.random.default_rng(1).random((2, 2, 64, 64), dtype=np.float32)
    maps = {"conv1_1": np.ones((2, 64, 64), np.float32), "conv2_1": np.ones((2, 32, 32), np.float32)}
    fig = dy.figures.cell_activations(images, maps, ["a", "b"])
    assert len(fig.axes) == 2 * 3
    assert fig.axes[1].get_title().startswith("conv1_1") and fig.axes[0].get_ylabel() == "a"


# ----------------------------------------------------------------------------- Fig. S2
def _hand_case():
    # protein P (class 0, 4 cells): network right on 3, forest on 1 (forest calls class 1)
    # protein Q (class 2, 2 cells): network right on 0 (calls 1), forest on 2
    proteins = np.array(["P", "P", "P", "P", "Q", "Q"])
    y = np.array([0, 0, 0, 0, 2, 2])
    net = np.array([0, 0, 0, 1, 1, 1])
    forest = np.array([0, 1, 1, 1, 2, 2])
    calls = dy.protein_level(proteins, dy.one_hot(net, 3), y, CLASSES)
    return proteins, y, net, forest, calls


def test_forest_vs_network_on_a_hand_case():
    proteins, y, net, forest, calls = _hand_case()
    per = dy.forest_vs_network(proteins, y, net, forest, calls, CLASSES).set_index("protein")
    assert per.loc["P", "n_cells"] == 4 and per.loc["Q", "n_cells"] == 2
    assert per.loc["P", "network_cells"] == pytest.approx(0.75) and per.loc["P", "forest_cells"] == pytest.approx(0.25)
    assert per.loc["Q", "network_cells"] == 0.0 and per.loc["Q", "forest_cells"] == 1.0
    assert per.loc["P", "network_call"] == "a" and per.loc["P", "forest_call"] == "b"
    assert per.loc["Q", "network_call"] == "b" and per.loc["Q", "forest_call"] == "c"
    assert per["network_correct"].tolist() == [True, False] and per["forest_correct"].tolist() == [False, True]
    assert per.loc["P", "true_name"] == "a"
    # forest probabilities instead of labels give the same calls
    same = dy.forest_vs_network(proteins, y, net, dy.one_hot(forest, 3), calls, CLASSES)
    pd.testing.assert_frame_equal(same, per.reset_index())
    fig = dy.figures.forest_vs_network(per.reset_index())
    assert {t.name for t in fig.data if t.name} == {"protein call: network only", "protein call: forest only"}


def test_forest_vs_network_rejects_mismatched_input():
    proteins, y, net, forest, calls = _hand_case()
    with pytest.raises(DataError):
        dy.forest_vs_network(proteins, y, net, forest[:5], calls, CLASSES)
    with pytest.raises(DataError):
        dy.forest_vs_network(proteins, y, net, np.ones((6, 2)), calls, CLASSES)
    with pytest.raises(DataError):
        dy.forest_vs_network(proteins, y, net, forest, calls[calls["protein"] == "P"], CLASSES)
    with pytest.raises(DataError):
        dy.one_hot(np.array([0, 3]), 3)
    with pytest.raises(DataError):
        dy.one_hot(np.array([0.5, 1.0]), 3)


# ----------------------------------------------------------------------------- Fig. S4
def test_unit_feature_correlation_hand_cases():
    rng = np.random.default_rng(0)
    feats = pd.DataFrame(rng.normal(size=(50, 3)), columns=["f0", "f1", "f2"])
    units = np.column_stack([2 * feats["f1"] + 5,          # perfectly correlated with f1
                             -feats["f2"],                 # perfectly anticorrelated with f2
                             np.zeros(50),                 # a dead unit
                             np.exp(feats["f0"])])         # monotone in f0, not linear
    r = dy.unit_feature_correlation(units, feats)
    assert r.shape == (4, 3) and list(r.columns) == ["f0", "f1", "f2"] and r.index[0] == "unit 0"
    assert r.loc["unit 0", "f1"] == pytest.approx(1.0) and r.loc["unit 1", "f2"] == pytest.approx(-1.0)
    assert r.loc["unit 2"].isna().all()
    np.testing.assert_allclose(r.loc["unit 3", "f0"], np.corrcoef(units[:, 3], feats["f0"])[0, 1])
    assert r.loc["unit 3", "f0"] < 0.99
    s = dy.unit_feature_correlation(units, feats, method="spearman")
    assert s.loc["unit 3", "f0"] == pytest.approx(1.0)
    block = dy.strongest_correlations(r, n_units=2, n_features=2)
    assert list(block.index) == ["unit 0", "unit 1"] and set(block.columns) == {"f1", "f2"}
    fig = dy.figures.unit_feature_heatmap(dy.strongest_correlations(r, n_units=3, n_features=3))
    assert fig.data[0].z.shape == (3, 3)


def test_unit_feature_correlation_rejects_bad_input():
    feats = pd.DataFrame(np.arange(12.0).reshape(4, 3))
    with pytest.raises(DataError):
        dy.unit_feature_correlation(np.ones((5, 2)), feats)
    with pytest.raises(DataError):
        dy.unit_feature_correlation(np.ones((2, 2)), feats.iloc[:2])
    with pytest.raises(DataError):
        dy.unit_feature_correlation(np.full((4, 2), np.nan), feats)
    with pytest.raises(ParameterError):
        dy.unit_feature_correlation(np.ones((4, 2)), feats, method="kendall")
    with pytest.raises(ParameterError):
        dy.strongest_correlations(pd.DataFrame(np.eye(2)), n_units=0)
