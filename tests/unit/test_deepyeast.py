"""DeepYeast: the network (atlaskit.models.deepyeast), the chapter pipeline pieces
(atlaskit.studies.deepyeast) and the sim-to-real evaluation (atlaskit.commands.evaluate,
``atlaskit evaluate deepyeast``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from atlaskit.cli import main as cli_main
from atlaskit.commands.evaluate import evaluate_checkpoint
from atlaskit.data.catalogs import DEEPYEAST_CLASSES
from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepyeast import (
    CONV_LAYERS, LAYER_NAMES, DeepYeastConfig, DeepYeastNet, deepyeast_step,
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
    cfg = dy.paper_train_config(epochs=3)
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == ("sgd", 0.1, 0.9, 5e-4, 100)
    assert (cfg.schedule, cfg.step_size, cfg.gamma, cfg.epochs) == ("step", 25, 0.5, 3)
    full = dy.preset("full")
    assert full.model == DeepYeastConfig.paper() and (full.lr, full.batch_size, full.step_size) == (0.1, 100, 25)
    assert full.n_bootstrap == 20_000 and full.transfer_sizes == (1, 3, 5, 10, 25, 50, 100, 250, 500)
    assert dy.preset("ci", epochs=2).epochs == 2
    assert dy.preset("ci", n_bootstrap=200).n_bootstrap == 200
    with pytest.raises(ParameterError):
        dy.preset("huge")
    for bad in (50, 1.5e3):
        with pytest.raises(ParameterError, match="n_bootstrap"):
            dy.preset("ci", n_bootstrap=bad)


def test_models_module_holds_no_training_policy():
    import atlaskit.models.deepyeast as models

    assert not hasattr(models, "paper_train_config")


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



# ----------------------------------------------------------------------------- exercise helpers
def _cells_of_proteins():
    """12 proteins of 3 classes, 6–9 cells each, with noisy per-cell probabilities."""
    rng = np.random.default_rng(3)
    proteins, y, probs = [], [], []
    for i in range(12):
        k, n = i % 3, 6 + i % 4
        logits = rng.normal(0, 1, (n, 12))
        logits[:, k] += rng.choice([0.0, 2.5], n, p=[0.3, 0.7])
        proteins += [f"p{i:02d}"] * n
        y += [k] * n
        probs.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    return np.array(proteins), np.array(y), np.concatenate(probs)


def test_prior_sweep_keeps_calls_and_shrinks_map():
    proteins, y, probs = _cells_of_proteins()
    classes = list(DEEPYEAST_CLASSES)
    sweep = dy.prior_sweep(proteins, probs, y, classes, [1.0, 2.0, 5.0])
    assert list(sweep["alpha"]) == [1.0, 2.0, 5.0] and (sweep["changed"] == 0).all()
    flat = dy.protein_level(proteins, probs, y, classes, alpha=1.0)
    assert sweep["accuracy"].iloc[0] == pytest.approx(flat["correct"].mean())
    assert len(set(sweep["accuracy"])) == 1
    # MAP of the called class: (n + α − 1) / (N + 12(α − 1)), averaged over proteins
    n_called = np.array([c[k] for c, k in zip(flat["counts"], flat["call"])])
    n_total = flat["n_cells"].to_numpy()
    expected = [np.mean((n_called + a - 1) / (n_total + 12 * (a - 1))) for a in (1.0, 2.0, 5.0)]
    assert sweep["mean_map"].to_numpy() == pytest.approx(expected)
    assert np.all(np.diff(sweep["mean_map"]) < 0)


def test_vote_calls_majority_ties_and_soft():
    probs = np.array([
        [0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0],   # "a": two votes for 0, averaged also 0
        [0.5, 0.0, 0.5 + 1e-3], [0.9, 0.1, 0.0],             # "b": one vote each for 2 and 0 -> tied
        [0.4, 0.6, 0.0], [0.4, 0.6, 0.0], [1.0, 0.0, 0.0],   # "c": majority 1, averaged 0 (0.6 vs 0.4)
    ])
    proteins = np.array(["a", "a", "a", "b", "b", "c", "c", "c"])
    votes = dy.vote_calls(proteins, probs).set_index("protein")
    assert votes["n_cells"].to_dict() == {"a": 3, "b": 2, "c": 3}
    assert votes["majority"].to_dict() == {"a": 0, "b": 0, "c": 1}
    assert votes["tied"].to_dict() == {"a": False, "b": True, "c": False}
    assert votes["soft"].to_dict() == {"a": 0, "b": 0, "c": 0}
    # an untied majority vote is the Dirichlet–multinomial MAP call
    calls = dy.agreement.protein_calls(proteins, probs.argmax(1), 3, probabilities=probs).set_index("protein")
    assert calls.loc[["a", "c"], "call"].tolist() == votes.loc[["a", "c"], "majority"].tolist()
    with pytest.raises(DataError, match="probs must be shaped"):
        dy.vote_calls(proteins[:3], probs)


def test_stratified_subset_is_nested_and_stratified():
    y = np.repeat([0, 1, 2], [40, 20, 3])
    quarter, half = dy.stratified_subset(y, 0.25, seed=1), dy.stratified_subset(y, 0.5, seed=1)
    assert np.bincount(y[quarter]).tolist() == [10, 5, 1] and np.bincount(y[half]).tolist() == [20, 10, 2]
    assert set(quarter) <= set(half) and np.all(np.diff(half) > 0)
    assert np.array_equal(dy.stratified_subset(y, 1.0, seed=1), np.arange(y.size))
    assert not np.array_equal(quarter, dy.stratified_subset(y, 0.25, seed=2))
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ParameterError):
            dy.stratified_subset(y, bad)


def test_forest_learning_curve_reproduces_the_baseline_at_one():
    rng = np.random.default_rng(0)
    y_tr, y_te = np.repeat(np.arange(3), 40), np.repeat(np.arange(3), 15)
    x_tr = y_tr[:, None] + rng.normal(0, 1.0, (y_tr.size, 4))
    x_te = y_te[:, None] + rng.normal(0, 1.0, (y_te.size, 4))
    curve = dy.forest_learning_curve(x_tr, y_tr, x_te, y_te, fractions=(0.25, 1.0), trees=15, seed=4)
    assert curve["n_train"].tolist() == [30, 120] and curve["fraction"].tolist() == [0.25, 1.0]
    pred, _ = dy.random_forest_baseline(x_tr, y_tr, x_te, trees=15, seed=4)
    assert curve["accuracy"].iloc[1] == pytest.approx(np.mean(pred == y_te))
    assert 0.5 < curve["accuracy"].iloc[1] < 1.0
    with pytest.raises(DataError, match="differ in length"):
        dy.forest_learning_curve(x_tr, y_tr[:-1], x_te, y_te, trees=5)


def test_thread_counts_are_set_for_the_work_and_restored():
    """A TrainedRun passed in place of a network runs with the run's CPU threads; embeddings and
    hand-crafted features take ``threads=``; the process's settings are back afterwards."""
    from atlaskit.studies._scaffold import TrainedRun

    model = _small(0).eval()
    images = np.random.default_rng(0).random((3, 2, 64, 64), dtype=np.float32)
    seen = []
    real_forward = model.forward

    def spy(x):
        seen.append(torch.get_num_threads())
        return real_forward(x)

    model.forward = spy
    run = TrainedRun(name="t", model=model, trainer=None, history=None, run_dir=None, best_epoch=None, seconds=0.0,
                     reused=True, cpu_threads=1)
    before = torch.get_num_threads()
    probs = dy.predict(run, images)
    assert seen == [1] and torch.get_num_threads() == before
    assert np.allclose(probs, dy.predict(model, images), atol=1e-6)
    feats = dy.layer_features(run, images, layers=["fc1"])
    assert feats["fc1"].shape == (3, 64) and torch.get_num_threads() == before
    x = np.random.default_rng(1).random((20, 5))
    emb = dy.embed_layers({"a": x}, seed=0, max_iter=250, threads=1)
    assert emb["a"].shape == (20, 2) and torch.get_num_threads() == before
    with pytest.raises(ParameterError):
        dy.embed_layers({"a": x}, threads=0)


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
    report = evaluate_checkpoint(path, npz)
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
        evaluate_checkpoint(path, npz)
    msg = str(err.value)
    assert "'actin'" in msg and "'golgi apparatus'" in msg and "cell periphery, cytoplasm" in msg


def test_evaluate_wrong_shapes(checkpoint, tmp_path):
    path, _ = checkpoint
    npz, _ = _npz(tmp_path, ["nucleus", "er"], shape=(3, 64, 64))
    with pytest.raises(DataError, match=r"\(N, 2, 64, 64\).*got \(2, 3, 64, 64\)"):
        evaluate_checkpoint(path, npz)
    npz, _ = _npz(tmp_path, ["nucleus", "er"], shape=(2, 32, 32), name="small.npz")
    with pytest.raises(DataError, match="got"):
        evaluate_checkpoint(path, npz)
    with pytest.raises(DataError, match="not found"):
        evaluate_checkpoint(tmp_path / "missing.pt", npz)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(DataError, match="not a DeepYeast checkpoint"):
        evaluate_checkpoint(other, npz)


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
    report = evaluate_checkpoint(path, folder)
    assert report.n == 3 and report.per_class.loc["mitochondrion", "n"] == 1
    with pytest.raises(DataError, match="split list"):
        evaluate_checkpoint(path, folder, list_file=folder / "none.txt")


def test_cli_evaluate(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    npz, _ = _npz(tmp_path, ["vacuole", "Golgi", "peroxisome"])
    assert cli_main(["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(npz)]) == 0
    out = capsys.readouterr().out
    assert "3 crops" in out and "confusion matrix" in out
    bad, _ = _npz(tmp_path, ["vacuole", "bud neck"], name="bad.npz")
    assert cli_main(["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(bad)]) == 2
    assert "'bud neck'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real-data path
def _deepyeast_folder(root, n_per_split=(2, 1, 1), seed=0):
    """A DeepYeast-format folder: main/ and transfer/ plates of 64×64 RGB PNGs (red = RFP,
    green = GFP), the six split lists and the two class lists."""
    import imageio.v3 as iio

    from atlaskit.data.catalogs import TRANSFER_CLASSES

    rng = np.random.default_rng(seed)
    for task, classes, prefix in (("main", DEEPYEAST_CLASSES, "HOwt_"), ("transfer", TRANSFER_CLASSES, "HOwt_transfer_")):
        (root / task / "plate01").mkdir(parents=True)
        doc = "transfer_doc" if task == "transfer" else "doc"
        (root / f"HOwt_{doc}.txt").write_text("label;label_idx\n" + "".join(f"{c};{i}\n" for i, c in enumerate(classes)))
        for split, n in zip(("train", "val", "test"), n_per_split):
            lines = []
            for k in range(len(classes)):
                for j in range(n):
                    name = f"plate01/{split[:2]}{k:02d}{j:02d}000-0-{k}-{j}.png"
                    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                    rgb[..., 2] = 0
                    iio.imwrite(root / task / name, rgb)
                    lines.append(f"{name} {k}")
            (root / f"{prefix}{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_real_folder_with_its_own_splits_trains_and_predicts(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs"))
    folder = _deepyeast_folder(tmp_path / "deepyeast")
    table = dy.real_splits(folder)
    assert table.groupby("split", observed=True).size().to_dict() == {
        "train": 24, "val": 12, "test": 12, "transfer_train": 8, "transfer_val": 4, "transfer_test": 4}
    p = dy.preset("ci", epochs=1).replace(batch_size=8)
    data = dy.build_data(p, data="real", data_dir=folder)
    assert data.source == "real" and data.dual is None
    assert len(data.indices("train")) == 24 and len(data.indices("test")) == 12
    meta = data.main.metadata
    assert set(meta["label"]) == set(DEEPYEAST_CLASSES) and meta["protein"].str.startswith("plate01/").all()
    net = dy.train(data, p, seed=0, device="cpu")
    probs = dy.predict(net.model, data.main, data.indices("test"))
    assert probs.shape == (12, 12) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert net.cpu_threads == p.cpu_threads and not net.reused
    cells = dy.evaluate(net, data, p.replace(n_bootstrap=100))
    assert np.array_equal(cells["probs"], probs) and cells["n"] == 12 and set(cells["table"].index) >= {"accuracy"}
    assert dy.train(data, p, seed=0, device="cpu").reused  # the finished run, not a second training
    # the same folder and lists reuse the store; changed lists rebuild it
    assert dy.build_data(p, data="real", data_dir=folder).main.path == data.main.path
    lines = (folder / "HOwt_test.txt").read_text().splitlines()
    (folder / "HOwt_test.txt").write_text("\n".join(lines[:-1]) + "\n")
    assert dy.build_data(p, data="real", data_dir=folder).main.path != data.main.path


def test_augmentation_turns_training_crops_only(tmp_path, monkeypatch):
    """``Preset.augment`` gives the training crops (not the validation ones) a random rotation and
    flip, and ``gain_jitter`` a random brightness per channel; both enter the run key, and the
    keys of runs without them stay as they were."""
    from atlaskit.data.datasets import Compose, RandomChannelGain, RandomRot90Flip
    from atlaskit.studies.deepyeast import training

    captured = []
    monkeypatch.setattr(training, "fit_or_reuse", lambda *args, **kw: captured.append(kw))
    data = dy.build_data(dy.preset("ci"), data="real", data_dir=_deepyeast_folder(tmp_path / "deepyeast"))
    p = dy.preset("ci", epochs=1)
    assert p.augment and p.gain_jitter == 0 and not dy.preset("full").augment  # the paper's recipe has none
    dy.train(data, p, device="cpu")
    dy.train(data, p.replace(augment=False), device="cpu")
    dy.train(data, p.replace(gain_jitter=0.3), device="cpu")
    turns, off, jitter = captured
    assert isinstance(turns["train_data"]().transform, RandomRot90Flip)
    assert turns["val_data"]().transform is None and off["train_data"]().transform is None
    assert turns["key"]["recipe"]["augment"] == "rot90-flip" and "augment" not in off["key"]["recipe"]
    # without gain jitter the key is the one runs had before the field existed
    assert "gain_jitter" not in turns["key"]["recipe"] and "gain_jitter" not in off["key"]["recipe"]
    both = jitter["train_data"]().transform
    assert isinstance(both, Compose) and isinstance(both.transforms[0], RandomRot90Flip)
    assert isinstance(both.transforms[1], RandomChannelGain) and both.transforms[1].sd == 0.3
    assert jitter["key"]["recipe"]["gain_jitter"] == 0.3 and jitter["val_data"]().transform is None
    assert "brightness" in dy.describe(p.replace(gain_jitter=0.3))["augmentation"]
    assert "brightness" not in dy.describe(p)["augmentation"]
    crops = turns["train_data"]()
    first = [crops[0][0] for _ in range(16)]  # one crop, drawn 16 times: rotated or flipped copies of it
    assert any(not torch.equal(first[0], x) for x in first[1:])
    assert all(torch.allclose(torch.sort(x.flatten()).values, torch.sort(first[0].flatten()).values) for x in first)


def test_real_folder_errors_are_clear(tmp_path):
    p = dy.preset("ci")
    with pytest.raises(ParameterError, match="needs data_dir"):
        dy.build_data(p, data="real")
    with pytest.raises(DataError, match="is not a folder"):
        dy.build_data(p, data="real", data_dir=tmp_path / "nowhere")
    folder = _deepyeast_folder(tmp_path / "deepyeast")
    first = (folder / "HOwt_train.txt").read_text().split()[0]
    (folder / "main" / first).unlink()
    with pytest.raises(DataError, match="not found"):
        dy.build_data(p, data="real", data_dir=folder)


def test_data_sources_name_what_build_data_reads(tmp_path):
    from atlaskit.data import registry

    files, folders = dy.data_sources("sim")
    assert files == ["yeast/yeastgfp-huh2003.csv"] and folders == []
    files, folders = dy.data_sources("real", tmp_path)  # no own lists: the published ones
    assert folders == [tmp_path] and len(files) == 8
    assert all(name in registry.entries() for name in files)
    (tmp_path / "HOwt_train.txt").write_text("")
    assert dy.data_sources("real", tmp_path) == ([], [tmp_path])
    with pytest.raises(ParameterError, match="data_dir"):
        dy.data_sources("real")
