"""Chapter 04 on real cells: the paired GFP/RFP folder reader, the sim-to-real measurement and
the protein-disjoint probe (atlaskit.studies.deepyeast.realcells), on hand-built cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from atlaskit.data.readers import read_paired_cells
from atlaskit.errors import DataError
from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet
from atlaskit.studies.deepyeast import realcells


def _write_pair(folder, name, gfp, rfp, suffix="tif"):
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / f"{name}_gfp.{suffix}", gfp)
    tifffile.imwrite(folder / f"{name}_rfp.{suffix}", rfp)


# ----------------------------------------------------------------------------- reader
def test_read_paired_cells_layout_order_and_scaling(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((3, 2, 64, 64), dtype=np.float32)
    _write_pair(tmp_path / "PROTB", "b_1", a[0, 0], a[0, 1])
    _write_pair(tmp_path / "PROTA", "a_2", a[1, 0], a[1, 1])
    _write_pair(tmp_path / "PROTA", "a_1", a[2, 0], a[2, 1])
    images, meta = read_paired_cells(tmp_path)
    assert images.shape == (3, 2, 64, 64) and images.dtype == np.float32
    assert meta["protein"].tolist() == ["PROTA", "PROTA", "PROTB"]  # sorted proteins, then files
    assert meta["cell"].tolist() == ["a_1", "a_2", "b_1"]
    np.testing.assert_array_equal(images[0], a[2])
    np.testing.assert_array_equal(images[2], a[0])
    only, m = read_paired_cells(tmp_path, proteins=["PROTB"])
    assert len(only) == 1 and m["protein"].tolist() == ["PROTB"]
    # 16-bit pixels are divided by the dtype's range
    _write_pair(tmp_path / "PROTC", "c", np.full((64, 64), 65535, np.uint16), np.zeros((64, 64), np.uint16))
    c, _ = read_paired_cells(tmp_path, proteins=["PROTC"])
    assert c[0, 0].max() == 1.0 and c[0, 1].max() == 0.0


def test_read_paired_cells_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_paired_cells(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no protein folders"):
        read_paired_cells(tmp_path)
    x = np.zeros((64, 64), np.float32)
    (tmp_path / "P").mkdir()
    tifffile.imwrite(tmp_path / "P" / "c1_gfp.tif", x)
    with pytest.raises(DataError, match="without their RFP partner.*c1_rfp.tif"):
        read_paired_cells(tmp_path)
    tifffile.imwrite(tmp_path / "P" / "c1_rfp.tif", x)
    tifffile.imwrite(tmp_path / "P" / "c2_rfp.tif", x)
    with pytest.raises(DataError, match="without their GFP partner.*c2_rfp.tif"):
        read_paired_cells(tmp_path)
    (tmp_path / "P" / "c2_rfp.tif").unlink()
    with pytest.raises(DataError, match="no such protein folder"):
        read_paired_cells(tmp_path, proteins=["Q"])
    tifffile.imwrite(tmp_path / "P" / "c1_rfp.tif", np.zeros((32, 32), np.float32))
    with pytest.raises(DataError, match="64×64"):
        read_paired_cells(tmp_path)
    tifffile.imwrite(tmp_path / "P" / "c1_rfp.tif", np.full((64, 64), 2.0, np.float32))
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        read_paired_cells(tmp_path)


# ----------------------------------------------------------------------------- sim to real
class _Fixed(torch.nn.Module):
    """A stand-in network whose class probabilities are given per image (by its first pixel)."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.table = torch.tensor(np.log(table), dtype=torch.float32)
        self.weight = torch.nn.Parameter(torch.zeros(1))  # predict() reads the device from a parameter
        self.config = DeepYeastConfig.small(0.125)

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].round().long()]


def test_sim_to_real_on_hand_computed_case():
    classes = ["cytoplasm", "mitochondrion", "nucleus"]
    # image i shows row i of the table
    table = np.array([[0.7, 0.2, 0.1],   # cytoplasm: right
                      [0.2, 0.3, 0.5],   # truth mito, predicted nucleus; two-way: mito (0.3 > 0.2) right
                      [0.6, 0.3, 0.1],   # truth mito, predicted cytoplasm: wrong both ways
                      [0.1, 0.8, 0.1]])  # mito: right
    images = np.zeros((4, 2, 64, 64), np.float32)
    images[:, 0, 0, 0] = np.arange(4)
    meta = pd.DataFrame({"group": ["A", "B", "B", "B"], "klass": ["cytoplasm", "mitochondrion", "mitochondrion", "mitochondrion"]})
    result = realcells.sim_to_real(_Fixed(table), images, meta, classes, n_boot=50)
    assert result.accuracy[0] == pytest.approx(2 / 4)
    assert result.two_way[0] == pytest.approx(3 / 4)
    b = result.proteins.set_index("protein").loc["B"]
    # B's mean probabilities (0.3, 0.433, 0.233) → mitochondrion
    assert b["call"] == "mitochondrion" and b["cells"] == 3 and b["accuracy"] == pytest.approx(1 / 3)
    assert result.shares.loc["B", "nucleus"] == pytest.approx(0.333, abs=1e-3)
    assert "2 of 2 protein calls right" in result.summary()
    with pytest.raises(DataError, match="not among the network's classes"):
        realcells.sim_to_real(_Fixed(table), images, meta.assign(klass="vacuole"), classes)
    with pytest.raises(DataError, match=r"\(N, 2, 64, 64\)"):
        realcells.sim_to_real(_Fixed(table), images[:, :1], meta, classes)


def test_sim_to_real_runs_a_real_network():
    torch.manual_seed(0)
    net = DeepYeastNet(DeepYeastConfig.small(0.125))
    images = np.random.default_rng(1).random((6, 2, 64, 64), dtype=np.float32)
    meta = pd.DataFrame({"group": list("AABBCC"), "klass": ["cytoplasm"] * 2 + ["mitochondrion"] * 4})
    from atlaskit.data.catalogs import DEEPYEAST_CLASSES

    result = realcells.sim_to_real(net, images, meta, DEEPYEAST_CLASSES, n_boot=20)
    assert len(result.cells) == 6 and set(result.proteins["protein"]) == {"A", "B", "C"}
    assert 0 <= result.accuracy[1] <= result.accuracy[0] <= result.accuracy[2] <= 1


# ----------------------------------------------------------------------------- probe
def test_protein_disjoint_probe_separable_and_uninformative_features():
    rng = np.random.default_rng(0)
    groups = np.repeat(["m1", "m2", "c1", "c2", "c3"], 40)
    klass = np.where(np.char.startswith(groups.astype(str), "m"), "mitochondrion", "cytoplasm")
    informative = (klass == "mitochondrion")[:, None] * 5.0 + rng.normal(size=(200, 3))
    noise = rng.normal(size=(200, 3))
    meta = pd.DataFrame({"group": groups, "klass": klass})
    folds = ((("m1", "c1", "c2"), ("m2", "c3")), (("m2", "c3"), ("m1", "c1", "c2")))
    result = realcells.protein_disjoint_probe({"informative": informative, "noise": noise}, meta, folds, trees=50,
                                              n_boot=100, data="toy")
    table = result.table.set_index("features")
    assert table.loc["informative", "accuracy"] == pytest.approx(1.0)
    assert table.loc["informative", "test cells"] == 200
    assert table.loc["noise", "high"] < 0.75  # chance-level features stay near chance
    gap, low, high = result.gap("toy", "informative", "noise", n_boot=200)
    assert gap == pytest.approx(1.0 - table.loc["noise", "accuracy"]) and low <= gap <= high
    with pytest.raises(DataError, match="both sides"):
        realcells.protein_disjoint_probe({"x": noise}, meta, ((("m1", "c1"), ("m1", "c2")),), trees=5)
    with pytest.raises(DataError, match="one class only"):
        realcells.protein_disjoint_probe({"x": noise}, meta, ((("m1", "m2"), ("c1",)),), trees=5)


def test_matched_simulated_proteins_is_seeded_and_checks_counts():
    proteins = [f"p{i}" for i in range(10)]
    klass = ["mitochondrion"] * 4 + ["cytoplasm"] * 6
    a = realcells.matched_simulated_proteins(proteins, klass, {"mitochondrion": 2, "cytoplasm": 3}, seed=1)
    assert a == realcells.matched_simulated_proteins(proteins, klass, {"mitochondrion": 2, "cytoplasm": 3}, seed=1)
    assert len(a) == 5 and set(a[:2]) <= set(proteins[:4]) and set(a[2:]) <= set(proteins[4:])
    with pytest.raises(DataError, match="5 proteins of class 'mitochondrion'"):
        realcells.matched_simulated_proteins(proteins, klass, {"mitochondrion": 5})


# ----------------------------------------------------------------------------- intensity scalings
def test_scale_intensities_each_kind_by_hand():
    from atlaskit.data.readers import INTENSITY_SCALINGS, scale_intensities

    unit = np.full((2, 2, 4, 4), 0.5, np.float32)
    x, how = scale_intensities(unit)
    assert how == INTENSITY_SCALINGS["unit"] and np.array_equal(x, unit)
    x, how = scale_intensities(np.full((1, 2, 4, 4), 51, np.uint8))
    assert how == INTENSITY_SCALINGS["uint8"] and np.allclose(x, 0.2)
    # raw 16-bit counts: one level per channel for the whole set (its 99.9th percentile), never per image
    raw = np.zeros((2, 2, 10, 10), np.uint16)
    raw[0, 0], raw[1, 0] = 1000, 500  # channel 0: two crops at different brightness
    raw[:, 1] = 3000
    x, how = scale_intensities(raw)
    assert how == INTENSITY_SCALINGS["raw"]
    assert x[0, 0].max() == 1.0 and x[1, 0].max() == pytest.approx(round(0.5 * 255) / 255)  # brightness kept
    assert np.allclose(x[:, 1], 1.0)
    _, how = scale_intensities(np.ones((3, 2, 4, 4), np.float32))  # every crop's peak exactly 1
    assert "scaled per image" in how
    with pytest.raises(DataError, match="negative"):
        scale_intensities(np.full((1, 1, 2, 2), -3.0) * np.arange(4).reshape(1, 1, 2, 2))
    with pytest.raises(DataError, match="empty"):
        scale_intensities(np.zeros((1, 1, 2, 2), np.uint16))


def test_evaluate_reads_raw_counts_and_says_which_scaling_ran(tmp_path):
    from atlaskit.commands.evaluate import evaluate_checkpoint
    from atlaskit.studies import deepyeast as dy

    torch.manual_seed(0)
    net = DeepYeastNet(DeepYeastConfig.small(0.125))
    checkpoint = dy.save_model(net, tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    counts = rng.integers(100, 4000, size=(6, 2, 64, 64)).astype(np.uint16)
    np.savez(tmp_path / "raw.npz", images=counts, labels=np.array(["CYTOPLASM"] * 6))
    report = evaluate_checkpoint(checkpoint, tmp_path / "raw.npz")
    assert report.n == 6 and "99.9th percentile" in report.scaling and "intensities: raw" in report.to_text()
    np.savez(tmp_path / "unit.npz", images=(counts / 4000).astype(np.float32), labels=np.array(["CYTOPLASM"] * 6))
    assert "used as they are" in evaluate_checkpoint(checkpoint, tmp_path / "unit.npz").scaling
