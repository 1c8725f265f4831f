"""DeepYeast: the network (atlaskit.models.deepyeast), the chapter pipeline pieces and the
sim-to-real evaluation (atlaskit.studies.deepyeast, ``atlaskit evaluate deepyeast``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from atlaskit.cli import main as cli_main
from atlaskit.data.catalogs import DEEPYEAST_CLASSES
from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepyeast import (
    CONV_LAYERS, LAYER_NAMES, DeepYeastConfig, DeepYeastNet, deepyeast_step, paper_train_config,
)
from atlaskit.studies import deepyeast as dy

PAPER_SHAPES = {
    "conv1_1": (64, 64, 64), "conv1_2": (64, 64, 64), "pool1": (64, 32, 32),
    "conv2_1": (128, 32, 32), "conv2_2": (128, 32, 32), "pool2": (128, 16, 16),
    "conv3_1": (256, 16, 16), "conv3_2": (256, 16, 16), "conv3_3": (256, 16, 16), "conv3_4": (256, 16, 16),
    "pool3": (256, 8, 8), "fc1": (512,), "fc2": (512,), "logits": (12,),
}


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return DeepYeastNet(DeepYeastConfig.paper())


def _small(seed: int = 0) -> DeepYeastNet:
    torch.manual_seed(seed)
    return DeepYeastNet(DeepYeastConfig.small(0.125))


# ----------------------------------------------------------------------------- the network
def test_paper_layers_and_shapes(paper_model):
    assert LAYER_NAMES == tuple(PAPER_SHAPES)
    assert paper_model.layer_shapes() == PAPER_SHAPES
    # 8 conv + fc1 + fc2 + output = 11 weight layers, batch norm before every ReLU
    convs = [m for m in paper_model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in paper_model.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert [(m.in_features, m.out_features) for m in linears] == [(256 * 8 * 8, 512), (512, 512), (512, 12)]
    for name in CONV_LAYERS:
        kinds = [type(m) for m in getattr(paper_model.layers, name)]
        assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    for name in ("fc1", "fc2"):
        kinds = [type(m) for m in getattr(paper_model.layers, name).modules()]
        assert kinds.index(nn.Linear) < kinds.index(nn.BatchNorm1d) < kinds.index(nn.ReLU)
    drops = [m.p for m in paper_model.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.5, 0.5]
    pools = [m for m in paper_model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)


def test_paper_parameter_count(paper_model):
    widths = [2, 64, 64, 128, 128, 256, 256, 256, 256]
    conv = sum(9 * a * b + 2 * b for a, b in zip(widths[:-1], widths[1:]))  # no conv bias; BN γ, β
    fc = (256 * 64 * 512 + 2 * 512) + (512 * 512 + 2 * 512) + (512 * 12 + 12)
    assert sum(p.numel() for p in paper_model.parameters()) == conv + fc
    assert paper_model.config.is_paper and not DeepYeastConfig.small().is_paper


def test_small_preset_keeps_topology():
    cfg = DeepYeastConfig.small(0.125, dropout=0.0)
    assert cfg.conv_channels == (8, 8, 16, 16, 32, 32, 32, 32) and cfg.fc_units == (64, 64)
    shapes = DeepYeastNet(cfg).layer_shapes()
    assert list(shapes) == list(PAPER_SHAPES)
    assert [s[1:] for s in shapes.values() if len(s) == 3] == [s[1:] for s in PAPER_SHAPES.values() if len(s) == 3]
    with pytest.raises(ParameterError):
        DeepYeastConfig(conv_channels=(8, 8, 8))
    with pytest.raises(ParameterError):
        DeepYeastConfig.small(0.0)


def test_glorot_normal_init(paper_model):
    w = paper_model.layers.conv3_2[0].weight  # fan_in = fan_out = 256 * 9
    std = math.sqrt(2.0 / (2 * 256 * 9))
    assert w.std().item() == pytest.approx(std, rel=0.03)
    assert w.abs().max().item() <= 2 * std / 0.87962566 + 1e-6  # truncated at two standard deviations
    assert (paper_model.layers.logits[1].bias == 0).all()


def test_every_parameter_gets_a_gradient():
    model = _small()
    model.train()
    x, y = torch.rand(4, 2, 64, 64), torch.tensor([0, 3, 5, 11])
    out = deepyeast_step(model, (x, y))
    assert set(out) == {"loss", "metric_accuracy"}
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_input_mean_is_subtracted_and_saved():
    model = _small().eval()
    mean = torch.rand(2, 64, 64)
    x = torch.rand(3, 2, 64, 64)
    model.set_input_mean(mean)
    shifted = _small().eval()
    assert torch.allclose(model(x), shifted(x - mean), atol=1e-5)
    assert torch.equal(model.state_dict()["input_mean"], mean)
    with pytest.raises(ParameterError, match="mean image"):
        model.set_input_mean(torch.zeros(2, 32, 32))


def test_feature_extractor_names():
    model = _small().eval()
    x = torch.rand(2, 2, 64, 64)
    feats = model.features(x, ["fc1", "conv2_2", "logits"])
    assert list(feats) == ["fc1", "conv2_2", "logits"]
    assert feats["conv2_2"].shape == (2, 16, 32, 32) and feats["fc1"].shape == (2, 64)
    assert torch.allclose(feats["logits"], model(x), atol=1e-6)
    flat = model.features(x, "pool3", flatten=True)["pool3"]
    assert flat.shape == (2, 32 * 8 * 8)
    with pytest.raises(ParameterError, match="fc1, fc2"):
        model.features(x, "fc3")
    with pytest.raises(ParameterError, match=r"\(B, 2, 64, 64\)"):
        model(torch.rand(2, 3, 64, 64))


def test_paper_train_config():
    cfg = paper_train_config(epochs=3)
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == ("sgd", 0.1, 0.9, 5e-4, 100)
    assert (cfg.schedule, cfg.step_size, cfg.gamma, cfg.epochs) == ("step", 25, 0.5, 3)
    full = dy.preset("full")
    assert full.model == DeepYeastConfig.paper() and (full.lr, full.batch_size, full.step_size) == (0.1, 100, 25)
    assert full.n_bootstrap == 20_000 and full.transfer_sizes == (1, 3, 5, 10, 25, 50, 100, 250, 500)
    assert dy.preset("ci", epochs=2).epochs == 2
    with pytest.raises(ParameterError):
        dy.preset("huge")


# ----------------------------------------------------------------------------- pipeline pieces
def test_protein_key():
    assert dy.protein_key("plate01/007013000-2-626-38.png") == "plate01/007013000"
    assert dy.protein_key("plate10/015005000-6-15188-94.png") == "plate10/015005000"


def test_unit_class_information():
    y = np.repeat(np.arange(4), 25)
    acts = np.stack([y + 0.0, np.zeros(100), np.random.default_rng(0).random(100)], 1)
    mi = dy.unit_class_information(acts, y, bins=4)
    assert mi[0] == pytest.approx(2.0)  # a unit that encodes the class carries H(class) = 2 bits
    assert mi[1] == pytest.approx(0.0)  # a constant unit carries nothing
    assert 0 < mi[2] < 1.0


def test_receptive_fields():
    rf = dy.receptive_fields()
    assert rf["conv1_1"] == (3, 1, 0.5)
    assert rf["pool1"] == (6, 2, 1.0)
    assert rf["conv3_4"] == (48, 4, 2.0)
    assert rf["pool3"] == (52, 8, 4.0)


def test_max_activating_patches_shapes():
    model = _small().eval()
    images = np.random.default_rng(0).random((6, 2, 64, 64), dtype=np.float32)
    patches = dy.max_activating_patches(model, images, "conv2_2", [0, 3], top=3)
    assert len(patches) == 2 and all(len(p) == 3 for p in patches)
    assert patches[0][0].shape == (2, 14, 14)
    whole = dy.max_activating_patches(model, images, "fc1", [1], top=2)
    assert whole[0][0].shape == (2, 64, 64)


def test_transfer_curves_on_separable_features():
    rng = np.random.default_rng(0)
    y_tr, y_te = np.repeat(np.arange(4), 30), np.repeat(np.arange(4), 10)
    good = lambda y: y[:, None] * 3.0 + rng.normal(0, 0.1, (len(y), 5))  # noqa: E731
    bad = lambda y: rng.normal(0, 1, (len(y), 5))  # noqa: E731
    curves = dy.transfer_curves({"good": good(y_tr), "noise": bad(y_tr)}, y_tr, {"good": good(y_te), "noise": bad(y_te)},
                                y_te, sizes=(1, 5, 50), repeats=2, trees=20, n_bootstrap=50)
    assert sorted(curves["n_per_class"].unique()) == [1, 5]  # 50 > the 30 images per class
    summary = dy.summarize_transfer(curves)
    best = summary[(summary["features"] == "good") & (summary["n_per_class"] == 5)].iloc[0]
    assert best["accuracy"] == 1.0 and best["low"] <= best["accuracy"] <= best["high"]
    assert summary[summary["features"] == "noise"]["accuracy"].max() < 0.8


# ----------------------------------------------------------------------------- checkpoint and evaluation
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = _small(1).eval()
    model.set_input_mean(torch.full((2, 64, 64), 0.1))
    path = tmp_path_factory.mktemp("ckpt") / "deepyeast.pt"
    dy.save_model(model, path, info={"scale": "test"})
    return path, model


def test_checkpoint_loads_with_weights_only(checkpoint):
    path, model = checkpoint
    raw = torch.load(path, weights_only=True)
    assert raw["classes"] == list(DEEPYEAST_CLASSES)
    assert torch.equal(raw["state_dict"]["input_mean"], torch.full((2, 64, 64), 0.1))
    loaded, classes = dy.load_model(path)
    x = torch.rand(2, 2, 64, 64)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert not loaded.training


def _npz(tmp_path, labels, shape=(2, 64, 64), name="crops.npz"):
    rng = np.random.default_rng(0)
    images = rng.random((len(labels),) + shape, dtype=np.float32)
    path = tmp_path / name
    np.savez(path, images=images, labels=np.asarray(labels))
    return path, images


def test_evaluate_npz_with_label_normalisation(checkpoint, tmp_path):
    path, model = checkpoint
    labels = ["Cell_Periphery", "cell periphery", "NUCLEUS", "nuclear_periphery", "spindle  pole", "ER"]
    npz, images = _npz(tmp_path, labels)
    report = dy.evaluate_checkpoint(path, npz)
    expected_y = [0, 0, 8, 6, 10, 3]
    pred = model(torch.from_numpy(images)).argmax(1).numpy()
    assert report.n == 6
    assert report.accuracy == pytest.approx(np.mean(pred == expected_y))
    assert report.confusion.to_numpy().sum() == 6
    assert report.confusion.loc["cell periphery"].sum() == 2
    text = report.to_text()
    assert "accuracy" in text and "confusion matrix" in text and "recall" in text


def test_evaluate_bad_labels_name_them(checkpoint, tmp_path):
    path, _ = checkpoint
    npz, _ = _npz(tmp_path, ["nucleus", "golgi apparatus", "actin"])
    with pytest.raises(DataError) as err:
        dy.evaluate_checkpoint(path, npz)
    msg = str(err.value)
    assert "'actin'" in msg and "'golgi apparatus'" in msg and "cell periphery, cytoplasm" in msg


def test_evaluate_wrong_shapes(checkpoint, tmp_path):
    path, _ = checkpoint
    npz, _ = _npz(tmp_path, ["nucleus", "er"], shape=(3, 64, 64))
    with pytest.raises(DataError, match=r"\(N, 2, 64, 64\).*got \(2, 3, 64, 64\)"):
        dy.evaluate_checkpoint(path, npz)
    npz, _ = _npz(tmp_path, ["nucleus", "er"], shape=(2, 32, 32), name="small.npz")
    with pytest.raises(DataError, match="got"):
        dy.evaluate_checkpoint(path, npz)
    with pytest.raises(DataError, match="not found"):
        dy.evaluate_checkpoint(tmp_path / "missing.pt", npz)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(DataError, match="not a DeepYeast checkpoint"):
        dy.evaluate_checkpoint(other, npz)


def test_evaluate_deepyeast_folder(checkpoint, tmp_path):
    import imageio.v3 as iio

    path, model = checkpoint
    folder = tmp_path / "real"
    (folder / "plate01").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i, k in enumerate([8, 1, 5]):
        rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        iio.imwrite(folder / "plate01" / f"00100{i}000-0-1-{i}.png", rgb)
        lines.append(f"plate01/00100{i}000-0-1-{i}.png {k}")
    (folder / "HOwt_test.txt").write_text("\n".join(lines) + "\n")
    report = dy.evaluate_checkpoint(path, folder)
    assert report.n == 3 and report.per_class.loc["mitochondrion", "n"] == 1
    with pytest.raises(DataError, match="split list"):
        dy.evaluate_checkpoint(path, folder, list_file=folder / "none.txt")


def test_cli_evaluate(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    npz, _ = _npz(tmp_path, ["vacuole", "Golgi", "peroxisome"])
    assert cli_main(["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(npz)]) == 0
    out = capsys.readouterr().out
    assert "3 crops" in out and "confusion matrix" in out
    bad, _ = _npz(tmp_path, ["vacuole", "bud neck"], name="bad.npz")
    assert cli_main(["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(bad)]) == 2
    assert "'bud neck'" in capsys.readouterr().err
