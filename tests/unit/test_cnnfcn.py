"""CNN vs FCN (atlaskit.models.cnnfcn) and the chapter-03 pipeline (atlaskit.studies.cnnfcn)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.cnnfcn import CNN, FCN, CnnFcnConfig, build_model, cnn_step, fcn_step, fcn_targets

SMALL = CnnFcnConfig.scaled(64, 0.125)  # kernels 4 … 64, FC 128, 4 × 4 heat maps


# ----------------------------------------------------------------------------- paper shapes


def test_paper_config():
    cfg = CnnFcnConfig.paper()
    assert cfg.input_shape == (4, 256, 256)
    assert cfg.widths == (32, 64, 128, 256, 512)
    assert cfg.num_classes == 13
    assert cfg.heatmap_size == 16 and cfg.cnn_feature_size == 8


@pytest.fixture(scope="module")
def paper_models():
    torch.manual_seed(0)
    return CNN(CnnFcnConfig.paper()).eval(), FCN(CnnFcnConfig.paper()).eval()


def test_paper_base_is_10_convs_in_blocks_of_two(paper_models):
    for model, pools in zip(paper_models, (5, 4)):
        convs = [m for m in model.base.modules() if isinstance(m, nn.Conv2d)]
        assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256, 512, 512]
        assert all(c.kernel_size == (3, 3) for c in convs)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.base.modules()) == 10
        assert sum(isinstance(m, nn.MaxPool2d) for m in model.base.modules()) == pools  # FCN: last pool removed


def test_paper_heads(paper_models):
    cnn, fcn = paper_models
    linears = [m for m in cnn.head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    assert linears[0].in_features == 512 * 8 * 8 and linears[-1].out_features == 13
    assert fcn.classifier.out_channels == 13 and fcn.classifier.in_channels == 512


def test_paper_output_shapes(paper_models):
    cnn, fcn = paper_models
    x = torch.rand(1, 4, 256, 256)
    with torch.no_grad():
        assert cnn(x).shape == (1, 13)
        assert fcn(x).shape == (1, 13, 16, 16)
        p = fcn.predict_proba(x)
    assert p.shape == (1, 13) and ((p >= 0) & (p <= 1)).all()
    # FCN confidence is the maximum of each sigmoid heat map
    torch.testing.assert_close(p, torch.sigmoid(fcn(x)).amax(dim=(2, 3)))


def test_scaled_config():
    cfg = CnnFcnConfig.scaled(128, 0.25)
    assert cfg.widths == (8, 16, 32, 64, 128) and cfg.fc_hidden == (256, 256)
    assert cfg.heatmap_size == 8
    assert FCN(cfg)(torch.rand(2, 4, 128, 128)).shape == (2, 13, 8, 8)


# ----------------------------------------------------------------------------- gradients and init


@pytest.mark.parametrize("kind", ["cnn", "fcn"])
def test_every_parameter_gets_a_gradient(kind):
    torch.manual_seed(0)
    model = build_model(kind, SMALL)
    x = torch.rand(3, 4, 64, 64)
    y = torch.tensor([[1.0] + [0.0] * 12, [0.0, 1.0] + [0.0] * 11, [1.0] * 13])
    maps = y[:, :, None, None] * (torch.rand(3, 1, 4, 4) > 0.5).float()
    out = (cnn_step if kind == "cnn" else fcn_step)(model, (x, y, maps))
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def _glorot_bound(w: torch.Tensor) -> float:
    fan_in = w.shape[1] * w[0, 0].numel()
    fan_out = w.shape[0] * w[0, 0].numel()
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def test_glorot_initialisation(paper_models):
    cnn, fcn = paper_models
    layers = [m for m in list(cnn.modules()) + list(fcn.modules()) if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        w = layer.weight.detach()
        bound = _glorot_bound(w)
        assert w.abs().max() <= bound + 1e-7
        if w.numel() > 10_000:  # uniform on [-b, b]: std b / sqrt(3); torch's default would be sqrt(3) smaller
            assert w.std().item() == pytest.approx(bound / np.sqrt(3), rel=0.05)
        if layer.bias is not None:
            assert torch.count_nonzero(layer.bias) == 0
    assert all(m.bias is None for m in cnn.base.modules() if isinstance(m, nn.Conv2d))  # BN follows


# ----------------------------------------------------------------------------- FCN targets


def _square_image():
    img = np.zeros((32, 32), np.float32)
    img[8:12, 8:12] = 1.0  # bright square inside heat-map pixel (1, 1) of a 4 × 4 map (blocks of 8)
    img[24:28, 0:4] = 0.2  # dim square: below 0.3 of the maximum after normalisation
    return img


def test_fcn_targets_hand_made_image():
    labels = np.array([1, 0, 1])
    t = fcn_targets(_square_image(), labels, 4, sigma=0, dilation=0)
    expected = np.zeros((4, 4), np.float32)
    expected[1, 1] = 1
    assert t.shape == (3, 4, 4)
    np.testing.assert_array_equal(t[0], expected)
    np.testing.assert_array_equal(t[2], expected)  # the same map for every present class
    np.testing.assert_array_equal(t[1], 0)  # zeros for an absent class


def test_fcn_targets_dilation_and_cover():
    img = _square_image()
    # a disk of radius 1 (a cross) grows the 4 × 4 square by one pixel up, down, left and right:
    # row 7 reaches block (0, 1), column 7 block (1, 0); the corner pixel (7, 7), and so block (0, 0), stays off
    t = fcn_targets(img, np.array([1]), 4, sigma=0, dilation=1)[0]
    expected = np.zeros((4, 4), np.float32)
    expected[0, 1] = expected[1, 0] = expected[1, 1] = 1
    np.testing.assert_array_equal(t, expected)
    # block (1, 1) holds 4 × 4 + 4 + 4 = 24 of its 64 pixels (37.5 %): kept with cover 0.3, not with 0.5
    assert fcn_targets(img, np.array([1]), 4, sigma=0, dilation=1, cover=0.3)[0, 1, 1] == 1
    assert fcn_targets(img, np.array([1]), 4, sigma=0, dilation=1, cover=0.5)[0].sum() == 0


def test_fcn_targets_normalisation_and_gaussian():
    img = _square_image()
    batch = np.stack([img, 5 * img + 3])  # affine intensity changes do not matter (min-max)
    t = fcn_targets(batch, np.ones((2, 1)), 4, sigma=1.0, dilation=0)
    np.testing.assert_array_equal(t[0], t[1])
    assert t[0, 0, 1, 1] == 1 and t[0, 0, 3, 0] == 0  # bright square kept, dim square not
    # a constant image has no foreground
    assert fcn_targets(np.full((32, 32), 0.7), np.array([1]), 4).sum() == 0


def test_fcn_targets_bad_inputs():
    img = _square_image()
    with pytest.raises(DataError):
        fcn_targets(img[None, None], np.array([[1]]), 4)  # 4-D
    with pytest.raises(DataError):
        fcn_targets(np.stack([img, img]), np.array([[1]]), 4)  # 2 images, 1 label row
    with pytest.raises(DataError):
        fcn_targets(img, np.array([2, 0]), 4)  # not multi-hot
    bad = img.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError):
        fcn_targets(bad, np.array([1]), 4)
    with pytest.raises(ParameterError):
        fcn_targets(img, np.array([1]), 64)  # larger than the image
    with pytest.raises(ParameterError):
        fcn_targets(img, np.array([1]), 4, threshold=1.5)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("kw", [
    {"image_size": 100}, {"fcn_kernel_size": 2}, {"base_width": 0}, {"dropout": 1.0}, {"fc_hidden": (0,)},
    {"n_blocks": True},
])
def test_bad_config(kw):
    with pytest.raises(ParameterError):
        CnnFcnConfig(**kw)


def test_bad_model_input():
    model = build_model("fcn", SMALL)
    with pytest.raises(DataError, match="shape"):
        model(torch.rand(2, 3, 64, 64))
    with pytest.raises(DataError, match="floating"):
        model(torch.zeros(2, 4, 64, 64, dtype=torch.uint8))
    with pytest.raises(ParameterError):
        build_model("rnn", SMALL)
    with pytest.raises(DataError, match="differ"):
        fcn_step(model, (torch.rand(1, 4, 64, 64), torch.zeros(1, 13), torch.zeros(1, 13, 8, 8)))


def test_config_round_trip():
    cfg = CnnFcnConfig.scaled(128, 0.5)
    assert CnnFcnConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ParameterError):
        CnnFcnConfig.from_dict({"widths": 3})


# ----------------------------------------------------------------------------- the chapter pipeline


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """A micro run of the whole pipeline: 40 simulated 64 × 64 fields, one epoch per model."""
    from atlaskit.studies import cnnfcn as S

    root = tmp_path_factory.mktemp("cnnfcn")
    p = dataclasses.replace(S.preset("tiny", epochs=1), n_train=24, n_val=8, n_test=8, n_hetero=4)
    data = S.build_sim_data(p, seed=0, root=root / "data")
    models = {k: S.train(k, data, p, seed=0, device="cpu", run_root=root / "runs") for k in ("cnn", "fcn")}
    evals = {k: S.evaluate(m, data) for k, m in models.items()}
    return S, p, data, models, root, evals


def test_pipeline_data(micro):
    S, p, data, _, _, _ = micro
    assert data.store.images.shape == (40, 4, 64, 64) and data.store.images.dtype == np.uint8
    assert sorted(data.meta["split"].value_counts().items()) == [("test", 8), ("train", 24), ("val", 8)]
    assert data.meta.groupby("split")["protein"].nunique().sum() == 40  # protein-disjoint
    x, y, m = data.dataset("train")[0]
    assert x.shape == (4, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (13,) and m.shape == (13, 4, 4)
    assert torch.all(m[y == 0] == 0)  # absent classes: zero maps
    check = S.target_map_check(data)
    assert check.shape == (14, 2) and check.loc["all images"].between(0, 1).all()
    # the store is reused for the same parameters
    again = S.build_sim_data(p, seed=0, root=data.store.path.parent)
    assert again.store.path == data.store.path
    # stored fields are re-simulated exactly, with their per-cell truth
    sb = S.regenerate_fields(data, [0])
    assert sb.cell_masks.shape == (1, 64, 64) and len(sb.cells) > 0


def test_pipeline_trained_runs(micro):
    from atlaskit.studies._scaffold import TrainedRun

    S, p, data, models, root, _ = micro
    for kind, run in models.items():
        assert isinstance(run, S.CnnFcnRun) and isinstance(run, TrainedRun)
        assert (run.kind, run.name, run.config, run.cpu_threads) == (kind, kind, p.model_config(), p.cpu_threads)
        assert run.run_dir == root / "runs" / kind and not run.model.training
        assert run.best_epoch == 1 and len(run.history) == 1
    with pytest.raises(ParameterError):
        S.heatmaps(models["cnn"], data.images("test", [0]))
    with pytest.raises(ParameterError):
        S.train("vgg", data, p, seed=0, device="cpu", run_root=root / "runs")


def test_settings_and_architecture_tables():
    from atlaskit.studies import cnnfcn as S

    p = S.preset("tiny")
    settings = S.settings_table(p, "sim")
    assert settings.loc["input", "this run"] == "64 × 64" and settings.loc["FCN heat maps", "paper"] == "16 × 16"
    assert settings.loc["train / val / test images", "this run"] == "48 / 16 / 24"
    assert S.settings_table(p, "real").loc["train / val / test images", "this run"] == "8 : 1 : 1 split of the folder"
    # the paper's facts: batch 64, up to 100 epochs with early stopping after 20, 14.4k / 1.6k / 4k images
    full = S.settings_table(S.preset("full"), "sim")
    assert str(full.loc["batch", "this run"]) == full.loc["batch", "paper"] == "64"
    assert full.loc["epochs", "this run"] == full.loc["epochs", "paper"] == "up to 100, early stopping after 20"
    assert full.loc["train / val / test images", "this run"] == "14400 / 1600 / 4000"
    assert S.train_config(S.preset("full")).early_stopping_patience == 20
    arch = S.architecture_table(p).set_index(["configuration", "model"])
    assert arch.loc[("paper", "FCN"), "output"] == "(13, 16, 16)" and arch.loc[("paper", "CNN"), "output"] == "(13,)"
    assert arch.loc[("this run (tiny)", "FCN"), "output"] == "(13, 4, 4)"


def test_pipeline_evaluation(micro):
    S, p, data, models, _, evals = micro
    for ev in evals.values():
        assert ev.scores.shape == (8, 13) and ev.thresholds.shape == (13,)
        assert np.all((ev.thresholds >= 0) & (ev.thresholds <= 1))
    summary = S.summary_table(evals, n_boot=200)
    assert summary.loc["mean per-class accuracy", "CNN paper"] == 0.676
    assert list(summary.index) == list(S.SUMMARY_ROWS)
    for kind in ("CNN", "FCN"):  # every estimate lies in its bootstrap interval
        finite = summary[f"{kind} ours"].notna()
        assert (summary.loc[finite, f"{kind} low"] <= summary.loc[finite, f"{kind} ours"] + 1e-12).all()
        assert (summary.loc[finite, f"{kind} ours"] <= summary.loc[finite, f"{kind} high"] + 1e-12).all()
    ev = evals["fcn"]
    assert summary.loc["labels per image", "FCN ours"] == pytest.approx(ev.pred.sum(1).mean())
    assert summary.loc["labels per image", "truth"] == pytest.approx(ev.y_test.sum(1).mean())
    assert summary.loc["exact match", "CNN ours"] == pytest.approx(evals["cnn"].exact_match)
    shown = S.summary_display(summary)
    assert shown.loc["mean per-class accuracy", "CNN paper"] == "0.676"
    assert shown.loc["exact match", "FCN paper"] == "" and shown.loc["mean Dice (= macro-F1)", "truth"] == ""
    e, lo, hi = (summary.loc["exact match", f"FCN {c}"] for c in ("ours", "low", "high"))
    assert shown.loc["exact match", "FCN ours [95 % interval]"] == f"{e:.3f} [{lo:.3f}, {hi:.3f}]"
    calib = S.calibration_table(evals, n_bins=5)
    assert set(calib["model"]) == {"CNN", "FCN"} and (calib.groupby("model")["n"].sum() == 8 * 13).all()
    t1 = S.table1(evals)
    assert list(t1.index) == [1, 2, 3, 4] and t1["test images"].sum() <= 8
    assert set(S.cell_line_table(evals)["model"]) == {"CNN", "FCN"}
    assert len(S.compare_with_paper(evals)) == 4
    thresholds = S.threshold_table(evals)
    assert list(thresholds.index) == list(S.CLASSES)
    assert list(thresholds.columns) == ["CNN threshold", "FCN threshold", "CNN train Dice", "FCN train Dice"]
    np.testing.assert_array_equal(thresholds["FCN threshold"], evals["fcn"].thresholds)
    hm = S.heatmaps(models["fcn"], data.images("test", [0, 1]))
    assert hm.shape == (2, 13, 4, 4)


def test_pipeline_reuses_a_finished_run(micro):
    S, p, data, models, root, _ = micro
    threads = torch.get_num_threads()
    again = S.train("cnn", data, p, seed=0, device="cpu", run_root=root / "runs")
    assert torch.get_num_threads() == threads  # the preset's single CPU thread is restored afterwards
    assert again.reused and again.run_dir == root / "runs" / "cnn" and again.best_epoch == models["cnn"].best_epoch
    assert again.history.to_dict() == models["cnn"].history.to_dict()
    for a, b in zip(again.model.state_dict().values(), models["cnn"].model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_pipeline_heterogeneity(micro):
    S, p, data, models, root, evals = micro
    h = S.heterogeneity_data(p, seed=0, exclude=data.meta["protein"], root=root / "data")
    assert len(h.meta) == 8 and set(h.meta["cell_fraction"]) == {0.25, 1.0}
    assert not set(h.meta["protein"]) & set(data.meta["protein"])
    df = S.heterogeneity_experiment({k: (models[k], evals[k]) for k in models}, h)
    assert set(df["model"]) == {"CNN", "FCN"} and df["cells_fraction"].between(0, 1).all()
    assert (df.loc[df["cell_fraction"] == 1.0, "cells_fraction"] == 1.0).all()
    summary = S.heterogeneity_summary(df)
    assert (summary["low"] <= summary["recall"]).all() and (summary["recall"] <= summary["high"]).all()


def test_pipeline_table1_on_fields_balanced_by_label_count(micro):
    S, p, data, models, root, evals = micro
    q = dataclasses.replace(p, n_per_label_count=2)
    counts = S.label_count_data(q, seed=0, exclude=data.meta["protein"], root=root / "data")
    assert sorted(counts.meta["n_labels"].value_counts().items()) == [(1, 2), (2, 2), (3, 2), (4, 2)]
    assert not set(counts.meta["protein"]) & set(data.meta["protein"])  # label sets not used for training
    fresh = {k: S.evaluate_fresh(models[k], evals[k], counts) for k in models}
    for k, ev in fresh.items():
        np.testing.assert_array_equal(ev.thresholds, evals[k].thresholds)  # the training split's thresholds
        np.testing.assert_array_equal(ev.pred, ev.scores >= ev.thresholds)
    t1 = S.table1(fresh)
    assert t1["test images"].tolist() == [2, 2, 2, 2]
    rows = S.measure_effects(evals, None, by_label_count=fresh, n_boot=50)
    growth = next(r for r in rows if "number of labels" in r.effect)
    assert growth.verdict != "not testable" and "balanced by number of labels" in growth.reason
    with pytest.raises(ParameterError, match="1000 fields with 4 labels asked for"):  # 195 real 4-label sets exist
        S.label_count_data(dataclasses.replace(p, n_per_label_count=1000), seed=0, root=root / "data")


def test_real_folder_path(tmp_path):
    """A Kaggle-layout folder: PNG channels + Id,Target table mapped to the 13 classes."""
    import imageio.v3 as iio

    from atlaskit.studies import cnnfcn as S

    rng = np.random.default_rng(0)
    folder = tmp_path / "hpa"
    folder.mkdir()
    targets = {"a": "0 25", "b": "7", "c": "16", "d": "14 18", "e": "2 3", "f": "23"}  # c: only a dropped class
    for ident in targets:
        for ch in ("green", "blue", "red", "yellow"):
            iio.imwrite(folder / f"{ident}_{ch}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    pd.DataFrame({"Id": list(targets), "Target": list(targets.values())}).to_csv(folder / "train.csv", index=False)
    p = dataclasses.replace(S.preset("tiny"), image_size=32)
    data = S.build_real_data(p, folder, seed=0, root=tmp_path / "store")
    assert len(data.meta) == 5 and "c" not in set(data.meta["id"])
    row = data.meta.set_index("id")
    assert row.loc["a", "labels"] == ("cytosol", "nucleus")  # Nucleoplasm + Cytosol
    assert row.loc["d", "labels"] == ("centrosome", "microtubules")  # MTOC → centrosome
    assert row.loc["e", "label_idx"] == "9"  # both nucleoli classes → one label
    assert set(data.meta["cell_line"]) == {"unknown"}
    assert data.store.images.shape == (5, 4, 32, 32)
    with pytest.raises(DataError, match="no label row"):
        iio.imwrite(folder / "zz_green.png", np.zeros((32, 32), np.uint8) + 5)
        S.build_real_data(p, folder, seed=0, root=tmp_path / "store")


def test_pipeline_bad_parameters():
    from atlaskit.studies import cnnfcn as S

    with pytest.raises(ParameterError):
        S.preset("huge")
    with pytest.raises(ParameterError):
        S.preset("ci", epochs=0)
    with pytest.raises(ParameterError):
        S.build_data(S.preset("tiny"), "real")  # no data_dir
    with pytest.raises(ParameterError):
        S.build_data(S.preset("tiny"), "png")


def _het_table(fcn_low: bool, cnn_low: bool, n: int = 40) -> pd.DataFrame:
    """Synthetic heterogeneity results: n images with a class in 10 % of cells, n with 100 %."""
    rows = []
    for i in range(2 * n):
        low = i < n
        for model, hit_low in (("CNN", cnn_low), ("FCN", fcn_low)):
            rows.append({"model": model, "image": i, "class": "nucleus", "cells_fraction": 0.1 if low else 1.0,
                         "found": hit_low if low else True})
    return pd.DataFrame(rows)


def test_heterogeneity_verdict_directions():
    from atlaskit.studies import cnnfcn as S

    v = S.heterogeneity_verdict(_het_table(fcn_low=True, cnn_low=False))
    assert v["diff_low"] == 1.0 and v["diff_high"] == 0.0 and v["change"] == 1.0
    assert v["ci"][0] > 0 and "consistent with the paper" in v["text"]
    v = S.heterogeneity_verdict(_het_table(fcn_low=False, cnn_low=True))
    assert v["ci"][1] < 0 and "contrary" in v["text"]
    v = S.heterogeneity_verdict(_het_table(fcn_low=True, cnn_low=True))
    assert v["change"] == 0.0 and "includes zero" in v["text"]
    with pytest.raises(DataError):
        S.heterogeneity_verdict(_het_table(True, True).query("cells_fraction > 0.5"))


def test_misaligned_per_cell_truth_is_detected():
    from atlaskit.data.sim import SimBatch
    from atlaskit.studies.cnnfcn.data import _sim_meta

    meta = pd.DataFrame({"protein": ["a", "b"], "field_id": ["f/a", "f/b"], "label_idx": [(10,), (2,)],
                         "n_labels": [1, 1], "cell_line": ["HeLa", "HeLa"], "cell_fraction": [1.0, 1.0]})
    good = pd.DataFrame({"image": [0, 1], "cell_id": [1, 1], "labels": [("nucleus",), ("cytosol",)]})
    batch = SimBatch(np.zeros((2, 4, 8, 8), np.float32), meta, ("protein", "nucleus", "microtubules", "er"), cells=good)
    out = _sim_meta(batch)
    assert out["class_cell_fraction"][0].split()[10] == "1.0000"
    batch.cells = good.assign(image=[1, 0])  # the per-cell rows swapped between the two images
    with pytest.raises(DataError, match="out of step"):
        _sim_meta(batch)


# ----------------------------------------------------------------------------- exercise helpers


def test_threshold_comparison_hand_made():
    from atlaskit.studies import cnnfcn as S

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.4, 0.6], [0.6, 0.8], [0.1, 0.1]])
    t = S.threshold_comparison(y, s, [0.5, 0.5], global_thresholds=(0.3, 0.7))
    assert list(t.index) == ["per class", "global 0.3", "global 0.7"]
    assert t.loc["per class"].tolist() == [1.0, 1.0, 1.0, 1.0]  # perfect at 0.5
    # 0.3: image 1 gets a false class 0 -> Dice (0.8 + 1) / 2, exact match 3 of 4, 5 labels on 4 images
    np.testing.assert_allclose(t.loc["global 0.3"].tolist(), [0.9, 1.0, 0.75, 1.25])
    # 0.7: one of two found per class -> Dice 2/3 each, accuracy 1/2; images 0 and 3 right; 2 labels
    np.testing.assert_allclose(t.loc["global 0.7"].tolist(), [2 / 3, 0.5, 0.5, 0.5])
    with pytest.raises(ParameterError):
        S.threshold_comparison(y, s, [0.5, 0.5], global_thresholds=(1.5,))


def test_pooling_table_repeats_the_evaluation_per_pooling():
    from atlaskit.metrics import multilabel as ml
    from atlaskit.studies import cnnfcn as S

    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(0, 2, (30, 3)), rng.integers(0, 2, (20, 3))
    sharp = {"tr": 0.2 + 0.6 * y_tr, "te": 0.2 + 0.6 * y_te}  # separates the classes perfectly
    noisy = {"tr": rng.random((30, 3)), "te": rng.random((20, 3))}
    t = S.pooling_table(y_tr, {"max": sharp["tr"], "mean": noisy["tr"]},
                        y_te, {"max": sharp["te"], "mean": noisy["te"]})
    assert list(t.index) == ["max", "mean"]
    assert t.loc["max", "mean per-class accuracy"] == 1.0 and t.loc["max", "mean Dice"] == 1.0
    th, _ = ml.dice_thresholds(y_tr, noisy["tr"])
    pred = ml.apply_thresholds(noisy["te"], th)
    assert t.loc["mean", "mean Dice"] == pytest.approx(ml.mean_dice(y_te, pred))
    assert t.loc["mean", "mean threshold"] == pytest.approx(th.mean())
    with pytest.raises(DataError):
        S.pooling_table(y_tr, {"max": sharp["tr"]}, y_te, {"mean": noisy["te"]})


def test_most_missed_hand_made():
    from atlaskit.metrics import multilabel as ml
    from atlaskit.studies import cnnfcn as S

    y = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 0]])
    p = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 1], [1, 0, 0]])
    cm = ml.multilabel_confusion(y, p, ("a", "b", "c"))
    m = S.most_missed(cm, min_support=3)  # b (2 images) does not compete
    assert (m["index"], m["class"], m["support"], m["missed"], m["missed_without_fp"]) == (0, "a", 4, 3, 1)
    assert m["accuracy"] == 0.25
    assert m["confused_with"].to_dict() == {"b": 0.5}  # b predicted falsely in 2 of the 4 images with a
    m = S.most_missed(cm, min_support=1)
    assert m["class"] == "b" and m["accuracy"] == 0.0 and m["confused_with"].to_dict() == {"a": 0.5}
    assert S.most_missed(cm, min_support=10)["class"] == "b"  # none has 10 images: all present classes compete
    assert S.most_missed(ml.multilabel_confusion(y, y), min_support=1)["confused_with"].empty


def test_pipeline_exercise_helpers(micro):
    S, p, data, models, _, evals = micro
    conf = S.heatmap_confidences(models["fcn"], data, "test")
    np.testing.assert_array_equal(conf["max"], evals["fcn"].scores)  # the chapter's confidence, exactly
    assert conf["mean"].shape == (8, 13) and (conf["mean"] <= conf["max"]).all()
    with pytest.raises(ParameterError):
        S.heatmap_confidences(models["cnn"], data, "test")
    with pytest.raises(ParameterError):
        S.heatmap_confidences(models["fcn"], data, "test", ("median",))
    tv = S.target_variants(data, {"chapter": {}, "strict": {"threshold": 0.6}, "plain resize": {"cover": 0.5}})
    maps = data.target_maps("train")
    assert tv.loc["chapter", "empty maps"] == pytest.approx((~maps.any(axis=(1, 2))).mean())
    assert tv.loc["chapter", "map coverage"] == pytest.approx(maps.mean())
    assert tv.loc["strict", "map coverage"] <= tv.loc["chapter", "map coverage"]
    assert tv.loc["plain resize", "empty maps"] == pytest.approx(S.target_map_check(data).iloc[-1, 1])
    with pytest.raises(ParameterError):
        S.target_variants(data, {"bad": {"radius": 3}})


def test_data_sources_name_what_build_data_reads(tmp_path):
    from atlaskit.data import registry
    from atlaskit.studies import cnnfcn as study

    assert study.data_sources("sim") == ([study.KAGGLE_LABELS], [])
    assert study.KAGGLE_LABELS in registry.entries()
    # a real folder without its own label table is labelled by the registered one
    assert study.data_sources("real", tmp_path) == ([study.KAGGLE_LABELS], [tmp_path])
    (tmp_path / "train.csv").write_text("Id,Target\n")
    assert study.data_sources("real", tmp_path) == ([], [tmp_path])
    assert study.data_sources("real", tmp_path / "x", labels_csv=tmp_path / "train.csv")[0] == []
    with pytest.raises(ParameterError, match="data_dir"):
        study.data_sources("real")


def test_cell_line_effect_hand_case():
    from types import SimpleNamespace

    from atlaskit.studies import cnnfcn as S

    y = np.zeros((8, 13), np.uint8)
    y[:, 0] = 1
    pred = y.copy()
    pred[4:, 0] = 0  # the four HeLa fields are all missed, the four U-2 OS fields all right
    meta = pd.DataFrame({"cell_line": ["U-2 OS"] * 4 + ["HeLa"] * 4})
    ev = SimpleNamespace(y_test=y, pred=pred, meta=meta)
    evals = {"cnn": ev, "fcn": ev}
    line_row = lambda rows: next(r for r in rows if "cell lines" in r.effect)  # noqa: E731
    imbalanced = ["U-2 OS"] * 60 + ["A-431"] * 30 + ["HeLa"] * 10
    row = line_row(S.measure_effects(evals, None, train_lines=imbalanced, n_boot=100))
    assert row.verdict == "reproduced" and row.ours == 1.0 and (row.low, row.high) == (1.0, 1.0)
    assert "U-2 OS (60 training images) − HeLa (10)" in row.measure
    balanced = ["U-2 OS"] * 10 + ["A-431"] * 12 + ["HeLa"] * 11
    assert line_row(S.measure_effects(evals, None, train_lines=balanced, n_boot=100)).verdict == "not testable"
    assert line_row(S.measure_effects(evals, None, train_lines=["unknown"] * 9, n_boot=100)).verdict == "not testable"
