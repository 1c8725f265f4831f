"""deepGPS model (exact paper shapes, gradients, losses, bad input) and the study pipeline
(real labels and split, image store, a tiny training run that is reused)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepgps import DeepGPSConfig, DeepGPSModel

# ------------------------------------------------------------------ model


def test_paper_config_and_shapes():
    cfg = DeepGPSConfig.paper("single-2")
    assert (cfg.image_size, cfg.bottleneck_size, cfg.widths) == (208, 13, (64, 128, 256, 512, 1024))
    assert (cfg.seq_dim, cfg.attention_heads, cfg.classifier_hidden, cfg.num_classes) == (1280, 1, (512, 256), 2)
    torch.manual_seed(0)
    model = DeepGPSModel(cfg).eval()
    seen = {}
    model.attention.register_forward_hook(lambda m, args, out: seen.update(q=args[0].shape, kv=args[1].shape))
    with torch.no_grad():
        out = model(torch.randn(1, 1280), torch.rand(1, 1, 208, 208))
    assert out.image.shape == (1, 1, 208, 208) and out.logits.shape == (1, 2) and out.hidden.shape == (1, 1024)
    assert seen == {"q": (1, 169, 1024), "kv": (1, 1, 1024)}  # 13×13 positions attend to one sequence token
    assert 0 <= float(out.image.min()) and float(out.image.max()) <= 1
    assert DeepGPSConfig.paper("single-4").num_classes == 4 and DeepGPSConfig.paper("all").num_classes == 0
    assert DeepGPSModel(DeepGPSConfig.paper("all")).classifier is None


def test_small_preset_scales_every_width():
    cfg = DeepGPSConfig.small("single-4", 420, image_size=64, width_multiplier=0.125)
    assert cfg.widths == (8, 16, 32, 64, 128) and cfg.bottleneck_size == 4 and cfg.classifier_hidden == (64, 32)
    model = DeepGPSModel(cfg)
    out = model(torch.randn(3, 420), torch.rand(3, 1, 64, 64))
    assert out.image.shape == (3, 1, 64, 64) and out.logits.shape == (3, 4)


def _grads(fusion):
    torch.manual_seed(0)
    m = DeepGPSModel(DeepGPSConfig.small("single-2", 20, image_size=32, width_multiplier=0.0625, fusion=fusion))
    loss = m.compute_losses(torch.randn(4, 20), torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32),
                            torch.tensor([0, 1, 0, 1]))["loss"]
    loss.backward()
    return {n: p.grad for n, p in m.named_parameters()}


def test_every_parameter_receives_a_gradient_with_residual_fusion():
    grads = _grads("residual")
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert [n for n, g in grads.items() if g.abs().max() == 0] == []


def test_replace_fusion_leaves_the_last_encoder_block_untrained():
    """The published fusion: a softmax over one key is constant, so down4 gets ~0 gradient."""
    grads = _grads("replace")
    assert all(g is not None for g in grads.values())
    deepest = {n: float(g.abs().max()) for n, g in grads.items() if n.startswith("down.3.") and n.endswith("weight")}
    others = {n: float(g.abs().max()) for n, g in grads.items() if n.startswith(("inc.", "up.", "outc", "seq_proj"))
              and n.endswith("weight")}
    assert deepest and max(deepest.values()) < 1e-8
    assert min(others.values()) > 1e-6


def test_losses_are_l1_plus_cross_entropy():
    torch.manual_seed(0)
    m = DeepGPSModel(DeepGPSConfig.small("single-2", 8, image_size=32, width_multiplier=0.0625, classification_weight=0.5))
    seq, nuc, tgt, y = torch.randn(2, 8), torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32), torch.tensor([1, 0])
    out = m(seq, nuc)
    losses = m.compute_losses(seq, nuc, tgt, y)
    assert losses["image_l1"].item() == pytest.approx((out.image - tgt).abs().mean().item(), rel=1e-5)
    assert losses["classification"].item() == pytest.approx(F.cross_entropy(out.logits, y).item(), rel=1e-5)
    assert losses["loss"].item() == pytest.approx(losses["image_l1"].item() + 0.5 * losses["classification"].item(), rel=1e-5)
    gen_only = DeepGPSModel(DeepGPSConfig.small("all", 8, image_size=32, width_multiplier=0.0625))
    assert set(gen_only.compute_losses(seq, nuc, tgt, y)) == {"image_l1", "loss"}
    with pytest.raises(ParameterError, match="no classifier"):
        gen_only.classify(seq)


def test_sequence_normalisation_is_stored_in_the_state_dict():
    m = DeepGPSModel(DeepGPSConfig.small("single-2", 3, image_size=16, width_multiplier=0.0625))
    m.set_sequence_normalization([1.0, 2.0, 3.0], [2.0, 0.0, 1.0])
    state = m.state_dict()
    assert state["seq_mean"].tolist() == [1.0, 2.0, 3.0] and state["seq_std"][1] > 0
    h = m.encode_sequence(torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.allclose(h, F.relu(m.seq_proj.bias)[None])  # standardised input is all zeros
    with pytest.raises(DataError):
        m.set_sequence_normalization([0.0], [1.0])


@pytest.mark.parametrize("changes, match", [
    ({"image_size": 100}, "multiple of 16"),
    ({"widths": (8, 16, 32, 64, 100)}, "double"),
    ({"num_classes": 1}, "num_classes"),
    ({"fusion": "concat"}, "fusion"),
    ({"attention_heads": 3}, "divide"),
])
def test_bad_configs_are_refused(changes, match):
    with pytest.raises(ParameterError, match=match):
        DeepGPSConfig(**changes)


def test_bad_inputs_are_refused():
    m = DeepGPSModel(DeepGPSConfig.small("single-2", 8, image_size=32, width_multiplier=0.0625))
    with pytest.raises(DataError, match="sequence vectors"):
        m(torch.randn(2, 9), torch.rand(2, 1, 32, 32))
    with pytest.raises(DataError, match="nucleus images"):
        m(torch.randn(2, 8), torch.rand(2, 1, 48, 48))
    with pytest.raises(DataError, match="2 sequence vectors for 3"):
        m(torch.randn(2, 8), torch.rand(3, 1, 32, 32))


def test_config_round_trip():
    cfg = DeepGPSConfig.small("single-4", 420)
    assert DeepGPSConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ParameterError, match="unknown"):
        DeepGPSConfig.from_dict({"depth": 3})


# ------------------------------------------------------------------ study: labels and split


@pytest.fixture(scope="module")
def table():
    from atlaskit.studies import deepgps

    return deepgps.protein_table(0)


def test_protein_table_labels_and_split(table):
    from atlaskit.studies import deepgps

    assert len(table) == 1309 and table.attrs["no_sequence"] == ["ATP6V1E1"]  # FASTA names matched by case / UniProt
    v2, v4 = deepgps.variant_table(table, "single-2"), deepgps.variant_table(table, "single-4")
    # proteins over 2700 residues are left out, as in the paper (AKAP13; ATM, PRKDC, TRRAP)
    assert v2["label"].value_counts().to_dict() == {"cytoplasmic": 221, "nucleoplasm": 132}
    assert len(v4) == 571 and set(v4["label_idx"]) == {0, 1, 2, 3}
    for vt in (v2, v4):
        for _, grp in vt.groupby("label"):  # class-stratified 4:1
            assert abs((grp["split"] == "test").mean() - 0.2) < 0.02
    test2 = set(v2.query("split == 'test'")["gene"])
    assert test2 <= set(v4.query("split == 'test'")["gene"]) <= set(table.query("split == 'test'")["gene"])
    assert not set(table.query("split == 'train'")["gene"]) & set(table.query("split == 'test'")["gene"])


def test_presets_are_scaffold_presets():
    from atlaskit.studies import _scaffold, deepgps

    p = deepgps.preset("ci", epochs=2, image_size=32)
    assert isinstance(p, _scaffold.Preset) and (p.scale, p.epochs, p.image_size, p.cpu_threads) == ("ci", 2, 32, 1)
    assert p.to_dict()["cpu_threads"] == 1 and p.replace(epochs=3).epochs == 3
    assert deepgps.PRESETS["full"].cpu_threads is None


def test_all_variant_cap_keeps_the_comparison_proteins(table):
    from atlaskit.studies import deepgps

    preset = deepgps.preset("ci")
    allp = deepgps.image_proteins(table, "all", preset)
    per_stratum = allp.query("split == 'train'").groupby("stratum").size()
    assert per_stratum.max() <= preset.all_max_train_per_stratum
    assert set(deepgps.variant_table(table, "single-4").query("split == 'test'")["gene"]) <= set(allp["gene"])
    with pytest.raises(ParameterError):
        deepgps.preset("huge")
    with pytest.raises(ParameterError):
        deepgps.preset("ci", epochs=0)


def test_baselines_run_on_real_labels(table):
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    feats = deepgps.embed_proteins(table, CompositionEmbedder(dipeptides=False), cache=False)
    res = deepgps.sequence_baselines(table, "single-2", {"composition": feats}, seed=0, rf_trees=20)
    lr = res["composition + logistic regression"]
    assert lr.proba.shape == (71, 2) and lr.n_train == 282
    tab = deepgps.classification_table([lr, deepgps.majority_baseline(table, "single-2")], classes=("c", "n"), n_boot=50)
    assert (tab["accuracy_lo"] <= tab["accuracy"]).all() and (tab["accuracy"] <= tab["accuracy_hi"]).all()
    assert tab.loc[1, "accuracy"] == pytest.approx(45 / 71)  # the majority class: 45 cytoplasmic of 71
    comp = deepgps.paper_comparison(tab)
    assert comp.loc[comp["method"] == "deepGPS-single-2", "accuracy"].item() == 0.744
    tie = tab.assign(method=["composition a", "composition b"], accuracy=[0.5, 0.5])
    assert deepgps.best_baseline(tie)["method"] == "composition b"  # the later row on a tie


# ------------------------------------------------------------------ study: images and a tiny training run


def tiny_setup(table, tmp_path, monkeypatch, n_per_class=8):
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs"))
    keep = []
    for variant_col in ("single-4",):
        for (label, split), grp in table[table[variant_col].notna()].groupby([variant_col, "split"]):
            keep += grp["gene"].head(n_per_class // (4 if split == "test" else 1)).tolist()
    small = table[table["gene"].isin(keep)].reset_index(drop=True)
    preset = deepgps.preset("ci", epochs=2).replace(image_size=32, width_multiplier=0.0625, images_per_protein=1,
                                                         batch_size=8)
    embedder = CompositionEmbedder()
    feats = deepgps.embed_proteins(small, embedder, cache=tmp_path / "emb")
    images = deepgps.build_data(small, preset, seed=0, root=tmp_path / "stores")
    return deepgps, small, preset, embedder, feats, images


def test_image_store_and_training_run_is_reused(table, tmp_path, monkeypatch):
    deepgps, small, preset, embedder, feats, images = tiny_setup(table, tmp_path, monkeypatch)
    assert images.store.shape_per_item == (2, 32, 32)
    assert len(images.store) == (small["length"] <= deepgps.MAX_LENGTH).sum() == len(small) - 1  # AKAP13: 2813 aa
    x = np.asarray(images.store.images[:])
    assert x.min() >= 0 and x.max() <= 1 and np.allclose(x.max(axis=(2, 3)), 1)  # both channels min-max scaled
    assert set(images.meta["split"]) == {"train", "test"}
    again = deepgps.build_data(small, preset, seed=0, root=tmp_path / "stores")
    assert again.store.path == images.store.path  # the cached store is reused
    half = deepgps.build_data(small.head(4), preset.replace(store_dtype="float16"), seed=0, root=tmp_path / "stores")
    item = deepgps.DeepGPSDataset(half, np.arange(2), feats)[1]  # the full preset stores float16, reads float32
    assert half.store.dtype == np.float16 and item["nucleus"].dtype == torch.float32 and "label" not in item

    run = deepgps.train("single-2", small, images, feats, preset, embedder=embedder, seed=0, device="cpu")
    assert len(run.history) == 2 and run.classes == ("cytoplasmic", "nucleoplasm")
    assert not set(images.meta["protein"].iloc[run.train_items]) & set(images.meta["protein"].iloc[run.test_items])
    export = json.loads((run.run_dir / deepgps.EXPORT_FILE).read_text())
    assert export["variant"] == "single-2" and export["embedder"]["kind"] == "composition"
    q = deepgps.generation_quality(run, images, run.test_items, feats)
    assert len(q) == len(run.test_items) and np.isfinite(q[["psnr", "ssim"]].to_numpy()).all()
    proba = deepgps.classify_proteins(run, feats, small["gene"].iloc[:3])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(1), 1)
    from atlaskit.studies._scaffold import TrainedRun

    assert isinstance(run, TrainedRun) and run.best_epoch is None and run.variant == "single-2"  # the last weights
    assert run.cpu_threads == preset.cpu_threads == 1

    # the chapter's one-call results
    head = deepgps.classifier_result(run, small, feats, name="deepGPS")
    test2 = deepgps.variant_table(small, "single-2").query("split == 'test'")
    assert head.genes.tolist() == test2["gene"].tolist() and head.n_train == (run.proteins["split"] == "train").sum()
    assert np.allclose(head.proba, deepgps.classify_proteins(run, feats, test2["gene"]))
    quality = deepgps.generation_table({"single-2": run}, images, feats, run.test_items, floor_items=run.train_items)
    assert quality["model"].tolist() == ["deepGPS-single-2", "mean training image"]
    assert (quality["images"] == len(run.test_items)).all()
    assert quality.set_index("model").loc["deepGPS-single-2", "psnr"] == pytest.approx(q["psnr"].mean())
    mats = deepgps.confusions(run, images, feats, small, head)
    assert list(mats) == ["deepGPS-single-2, by protein", "deepGPS-single-2, by image", "deepGPS, by protein"]
    assert mats["deepGPS-single-2, by protein"].sum() == len(test2)
    assert mats["deepGPS-single-2, by image"].sum() == len(run.test_items)
    cross = deepgps.cross_assay_example(run, images, small, feats, per_class=1)
    assert len(cross.genes) == 2 and cross.images.shape == (2, 32, 32) and np.isfinite(cross.ratios).all()
    assert np.allclose(cross.p_nucleoplasm, deepgps.classify_proteins(run, feats, cross.genes)[:, 1])

    rerun = deepgps.train("single-2", small, images, feats, preset, embedder=embedder, seed=0, device="cpu")
    assert rerun.run_dir == run.run_dir and rerun.history.train == run.history.train
    assert rerun.reused and not run.reused  # the finished run is found on disk, not trained again
    for a, b in zip(run.model.state_dict().values(), rerun.model.state_dict().values()):
        assert torch.equal(a, b)

    gen_only = deepgps.train("all", small, images, feats, preset.replace(epochs=1), embedder=embedder,
                                     seed=0, device="cpu")
    assert "classification" not in gen_only.history.train[0]
    cross = deepgps.cross_assay(gen_only, np.asarray(images.store.images[0][0]), small["gene"].iloc[:2], feats)
    assert cross.shape == (2, 32, 32)


def test_real_data_needs_a_folder(table, tmp_path):
    from atlaskit.studies import deepgps

    with pytest.raises(ParameterError, match="data_dir"):
        deepgps.build_data(table.head(3), deepgps.preset("ci"), data="real", root=tmp_path)
    with pytest.raises(ParameterError, match="data must be"):
        deepgps.build_data(table.head(3), deepgps.preset("ci"), data="hpa", root=tmp_path)


def test_real_opencell_folder_is_read(table, tmp_path):
    """data='real': crops in the cytoself/OpenCell format (protein, nucleus), labels from the catalog."""
    from atlaskit.studies import deepgps

    small = table.head(4).reset_index(drop=True)
    folder = tmp_path / "opencell"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for gene in small["gene"][:3]:  # the fourth protein has no files and is left out
        np.save(folder / f"{gene}_pro.npy", rng.random((3, 100, 100), dtype=np.float32))
        np.save(folder / f"{gene}_nuc.npy", rng.random((3, 100, 100), dtype=np.float32))
        np.save(folder / f"{gene}_label.npy", np.array([["ENSG0", gene, "x"]] * 3, dtype=object), allow_pickle=True)
    preset = deepgps.preset("ci").replace(image_size=32, images_per_protein=2)
    images = deepgps.build_data(small, preset, data="real", data_dir=folder, root=tmp_path / "stores")
    assert images.source == "real" and len(images.store) == 6
    assert sorted(images.meta["protein"].unique()) == sorted(small["gene"][:3])
    assert images.meta["split"].tolist() == images.meta["protein"].map(dict(zip(small["gene"], small["split"]))).tolist()


# ------------------------------------------------------------------ study: helpers of the chapter's exercises


def test_logistic_baseline_reproduces_the_chapter_baseline(table):
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    feats = deepgps.embed_proteins(table, CompositionEmbedder(dipeptides=False), cache=False)
    lr = deepgps.logistic_baseline(table, "single-2", feats, name="amino acids", seed=0)
    ref = deepgps.sequence_baselines(table, "single-2", {"composition": feats}, seed=0, rf_trees=5)
    ref_lr = ref["composition + logistic regression"]
    assert lr.name == "amino acids" and lr.n_train == ref_lr.n_train == 282
    assert lr.genes.tolist() == ref_lr.genes.tolist() and np.allclose(lr.proba, ref_lr.proba)
    with pytest.raises(DataError, match="lack 1 proteins"):
        deepgps.logistic_baseline(table, "single-2", feats.drop(index=lr.genes[0]), name="x")
    with pytest.raises(ParameterError, match="classification variant"):
        deepgps.logistic_baseline(table, "all", feats, name="x")


def test_expected_embedding_dim_from_the_spec_alone():
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    assert deepgps.expected_embedding_dim(CompositionEmbedder().spec()) == 420
    assert deepgps.expected_embedding_dim(CompositionEmbedder(dipeptides=False).spec()) == 20
    esm = {"kind": "esm2_t6_8M_UR50D", "dim": 320, "model": "esm2_t6_8M_UR50D", "window": 1022}
    assert deepgps.expected_embedding_dim(esm) == 320
    assert deepgps.expected_embedding_dim({"kind": "esm2_t33_650M_UR50D"}) == 1280  # the paper's model
    with pytest.raises(ParameterError, match="unknown embedder"):
        deepgps.expected_embedding_dim({"kind": "esm2_t48_15B_UR50D"})


def test_blur_calibration_loses_quality_as_the_blur_widens():
    from atlaskit.metrics import classification as cm
    from atlaskit.studies import deepgps

    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32)).astype(np.float32)
    x[:, 8:16, 8:24] = 1.0  # a bright block: structure a blur smears
    calib = deepgps.blur_calibration(x, sigmas=(0.3, 1.0, 3.0))
    assert calib["sigma"].tolist() == [0.3, 1.0, 3.0] and (calib["images"] == 3).all()
    assert (np.diff(calib["psnr"]) < 0).all() and (np.diff(calib["ssim"]) < 0).all()
    assert ((calib["ssim"] > -1) & (calib["ssim"] < 1)).all()
    from scipy.ndimage import gaussian_filter

    one = gaussian_filter(x[0], 1.0, mode="reflect")  # a second route to the PSNR of one image
    assert deepgps.blur_calibration(x[:1], sigmas=(1.0,))["psnr"].item() == pytest.approx(cm.psnr(one, x[0]), rel=1e-6)
    with pytest.raises(ParameterError, match="positive"):
        deepgps.blur_calibration(x, sigmas=(0.0, 1.0))
    with pytest.raises(DataError, match="stack of images"):
        deepgps.blur_calibration(x[0])
