"""The cytoself study pipeline (atlaskit.studies.cytoself): presets, data, training runs and their
reuse, embeddings, the ablation table, spectra helpers and bad-input paths."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.data import catalogs
from atlaskit.errors import DataError, ParameterError
from atlaskit.studies import cytoself as study
from atlaskit.studies._scaffold import Preset as BasePreset
from atlaskit.studies._scaffold import TrainedRun

# the "tiny" preset with half its crops: every test below stays well inside the time budget
TINY = dataclasses.replace(study.preset("tiny"), crops_per_protein=10)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """Training runs of this module live in a temporary folder (never in _build/runs)."""
    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("ATLASKIT_RUNS", str(root))
    mp.setenv("ATLASKIT_NO_PROGRESS", "1")
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return tmp_path_factory.mktemp("stores")


@pytest.fixture(scope="module")
def tiny_data(stores):
    return study.build_data(TINY, "sim", seed=0, root=stores)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, runs_root):
    return study.train("full", tiny_data, TINY, seed=0, device="cpu")


# ----------------------------------------------------------------------------------------------
# presets and protein choice
# ----------------------------------------------------------------------------------------------

def test_presets_and_overrides():
    assert study.preset("ci") == study.PRESETS["ci"]
    assert study.preset("ci", epochs=2, repeats=3).epochs == 2 and study.preset("ci", repeats=3).repeats == 3
    full = study.preset("full")
    assert (full.model, full.lr, full.batch_size, full.plateau_factor, full.plateau_patience, full.early_stopping) == (
        "paper", 4e-4, 32, 0.1, 4, 12)
    assert full.n_proteins is None and full.workers == 1 and full.cpu_threads is None
    assert isinstance(full, BasePreset) and study.preset("ci").cpu_threads == 1 and study.SCALES == ("tiny", "ci", "full")
    assert study.preset("ci").to_dict()["cpu_threads"] == 1 and "torch_threads" not in study.preset("ci").to_dict()
    cfg = full.model_config(1311)
    assert (cfg.local_codebook_size, cfg.global_codebook_size, cfg.global_splits, cfg.num_classes) == (2048, 2048, 9, 1311)
    ci = study.preset("ci").model_config(24, split_quantization=False)
    assert ci.local_codebook_size == 128 and ci.classifier_hidden == (128,) and not ci.split_quantization
    with pytest.raises(ParameterError, match="scale must be one of"):
        study.preset("huge")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ParameterError, match="epochs"):
            study.preset("ci", epochs=bad)


def test_select_proteins_is_stratified_and_deterministic():
    a = study.select_proteins(30, complex_members=2, seed=0)
    assert a.equals(study.select_proteins(30, complex_members=2, seed=0))
    assert not a["gene"].equals(study.select_proteins(30, complex_members=2, seed=1)["gene"])
    assert len(a) == 30 and a["gene"].is_unique and list(a["gene"]) == sorted(a["gene"])
    # at least two members of each of the four GO complexes (filling may add more), all twelve
    # families represented
    in_complex = a["complex"].value_counts()
    assert set(in_complex.index) == set(catalogs.GO_COMPLEXES) and (in_complex >= 2).all()
    counts = a["family"].value_counts()
    assert set(counts.index) == set(catalogs.FAMILIES)
    # filling always tops up the smallest family: families that got a protein by filling lead
    # the smallest family by at most one
    forced = study.select_proteins(8, complex_members=2, seed=0)
    forced_counts = forced["family"].value_counts()
    filled = [f for f in catalogs.FAMILIES if counts[f] > forced_counts.get(f, 0)]
    assert max(counts[filled]) - min(counts) <= 1
    # single-localized proteins are preferred when filling
    assert a[~a["gene"].isin(forced["gene"])]["single_localized"].all()
    everything = study.select_proteins(None)
    assert len(everything) == len(catalogs.opencell_proteins())
    some = study.select_proteins(3, complex_members=0, seed=0, available=["ACTB", "LMNB1", "TOMM20", "SEC61B"])
    assert set(some["gene"]) <= {"ACTB", "LMNB1", "TOMM20", "SEC61B"} and len(some) == 3
    for bad in (1, 0, 10_000, 2.5):
        with pytest.raises(ParameterError, match="n_proteins"):
            study.select_proteins(bad)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def test_build_data_shapes_ranges_and_splits(tiny_data, stores, monkeypatch):
    d = tiny_data
    n = TINY.n_proteins * TINY.crops_per_protein
    assert d.store.images.shape == (n, 3, 100, 100) and d.store.images.dtype == np.float16
    x = np.asarray(d.store.images, dtype=np.float32)
    assert x[:, 0].min() >= 0 and x[:, 0].max() <= 1
    assert x[:, 2].min() >= 0 and x[:, 2].max() <= 1
    dist = x[:, 1].reshape(n, -1)
    assert dist.min() >= -1 and dist.max() <= 1
    assert np.allclose(np.abs(dist).max(axis=1), 1.0, atol=1e-3)  # "max_abs" scaling per crop
    assert (dist.max(axis=1) > 0).all() and (dist.min(axis=1) < 0).all()  # nucleus inside, background outside
    # the distance is positive exactly on the segmented nucleus: check one crop against its raw nucleus
    assert d.meta["nucleus_iou"].min() > 0.7 and set(d.meta["nucleus_source"]) <= {"segmented", "simulator"}
    # 8:1:1 within every protein: every protein in every split
    per = d.meta.groupby(["protein", "split"]).size().unstack()
    assert list(per.columns) == ["test", "train", "val"] and (per > 0).all().all()
    assert per["train"].sum() / n == pytest.approx(0.8, abs=0.05)
    assert sorted(d.classes) == d.classes and d.num_classes == TINY.n_proteins
    assert (d.meta["label"] == d.meta["protein"].map({c: i for i, c in enumerate(d.classes)})).all()
    assert d.meta["family"].notna().all()
    # a second call opens the same store without rendering anything
    monkeypatch.setattr(study.data, "_sim_batches", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rendered")))
    again = study.build_data(TINY, "sim", seed=0, root=stores)
    assert again.store.path == d.store.path and again.meta.equals(d.meta)


def test_datasets_follow_the_variants(tiny_data):
    d = tiny_data
    x, y = d.dataset("train", "full")[0]
    assert x.shape == (2, 100, 100) and x.dtype == torch.float32 and isinstance(y, int)
    assert d.dataset("train", "no_nucleus")[0][0].shape == (1, 100, 100)
    raw = d.dataset("val", "no_distance", augment=False)[0][0]
    assert raw[1].min() >= 0  # the raw nucleus in [0, 1], not the signed distance
    assert d.dataset("train").transform is not None and d.dataset("test").transform is None
    rows = d.indices("train")
    expected = np.var(np.asarray(d.store.images[rows][:, [0, 1]], dtype=np.float64))
    assert d.data_variance("full") == pytest.approx(expected, rel=1e-9)
    assert d.data_variance("no_nucleus") == pytest.approx(np.var(np.asarray(d.store.images[rows][:, 0], dtype=np.float64)))
    assert len(d.indices("all")) == len(d.meta)
    with pytest.raises(ParameterError, match="split must be"):
        d.indices("holdout")
    with pytest.raises(ParameterError, match="unknown cytoself variant"):
        d.dataset("train", "no_decoder")


def _write_protein(folder, name, n, seed):
    rng = np.random.default_rng(seed)
    np.save(folder / f"{name}_pro.npy", rng.random((n, 100, 100), dtype=np.float32))
    np.save(folder / f"{name}_nuc.npy", rng.random((n, 100, 100), dtype=np.float32) * 500)
    np.save(folder / f"{name}_nucdist.npy", rng.normal(0, 30, (n, 100, 100)).astype(np.float32))
    labels = np.array([[f"ENSG{seed:011d}", name, "x", f"fov{i // 2}"] for i in range(n)], dtype=object)
    np.save(folder / f"{name}_label.npy", labels, allow_pickle=True)


def test_build_data_reads_a_real_cytoself_folder(tmp_path):
    folder = tmp_path / "opencell"
    folder.mkdir()
    for i, gene in enumerate(["LMNB1", "TOMM20", "SEC61B"]):
        _write_protein(folder, gene, 6, i)
    d = study.build_data(TINY, "real", folder, root=tmp_path / "stores", fov_column="label_3")
    assert d.source == "real" and d.classes == ["LMNB1", "SEC61B", "TOMM20"]
    x = np.asarray(d.store.images, dtype=np.float32)
    nucdist = np.load(folder / "LMNB1_nucdist.npy") * 0.01  # the public loader's scaling
    np.testing.assert_allclose(x[:6, 1], nucdist, atol=2e-2, rtol=1e-3)
    assert x[:, 2].min() >= 0 and x[:, 2].max() <= 1
    # crops of one field of view stay in one split
    assert (d.meta.groupby("fov")["split"].nunique() == 1).all()
    assert d.proteins.set_index("gene")["family"].to_dict() == {
        g: f for g, f in zip(catalogs.opencell_proteins()["gene"], catalogs.opencell_proteins()["family"])
        if g in ("LMNB1", "SEC61B", "TOMM20")}
    with pytest.raises(DataError, match="no column 'fov_id'"):
        study.build_data(TINY, "real", folder, root=tmp_path / "stores2", fov_column="fov_id")


def test_build_data_rejects_bad_parameters(tmp_path):
    with pytest.raises(ParameterError, match="data must be"):
        study.build_data(TINY, "simulated", root=tmp_path)
    with pytest.raises(ParameterError, match="needs data_dir"):
        study.build_data(TINY, "real", None, root=tmp_path)
    with pytest.raises(ParameterError, match="seed"):
        study.build_data(TINY, "sim", seed=-1, root=tmp_path)
    with pytest.raises(ParameterError, match="preset must be"):
        study.build_data("huge", "sim", root=tmp_path)
    with pytest.raises(ParameterError, match="crops_per_protein"):
        study.build_data(dataclasses.replace(TINY, crops_per_protein=2), "sim", root=tmp_path)
    with pytest.raises(DataError, match="not a cytoself"):
        study.build_data(TINY, "real", tmp_path, root=tmp_path / "s")


# ----------------------------------------------------------------------------------------------
# training, reuse, embeddings
# ----------------------------------------------------------------------------------------------

def test_train_runs_and_is_reused(tiny_data, tiny_run):
    run = tiny_run
    assert isinstance(run, TrainedRun) and isinstance(run, study.VariantRun)
    assert (run.name, run.variant, run.repeat, run.seed, run.device) == ("full-r0", "full", 0, 0, "cpu")
    assert run.run_dir.parent.name == study.CHAPTER and run.run_dir.name.startswith("full-r0-")
    assert run.cpu_threads == TINY.cpu_threads == 1 and run.best_epoch == run.history.best_epoch
    assert not run.reused and len(run.history) == TINY.epochs and not run.model.training
    assert run.config.num_classes == tiny_data.num_classes
    assert run.config.data_variance == pytest.approx(tiny_data.data_variance("full"))
    assert float(run.model.data_variance) == pytest.approx(run.config.data_variance)
    assert {"reconstruction", "decoder2", "vq1", "vq2", "classifier1", "classifier2", "metric_perplexity2"} <= set(
        run.history.train[0])
    start = time.perf_counter()
    again = study.train("full", tiny_data, TINY, seed=0, device="cpu")
    assert again.reused and time.perf_counter() - start < 10
    assert again.run_dir == run.run_dir and again.history.to_dict() == run.history.to_dict()
    for a, b in zip(run.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ParameterError, match="unknown cytoself variant"):
        study.train("no_decoder", tiny_data, TINY)
    with pytest.raises(ParameterError, match="repeat"):
        study.train("full", tiny_data, TINY, repeat=-1)


def test_worker_processes_give_the_same_runs(tiny_data, runs_root):
    """Runs trained side by side in worker processes equal runs trained here, one by one."""
    preset = dataclasses.replace(TINY, workers=2)
    runs = study.train_variants(["no_pretext", "no_split"], tiny_data, preset, seed=5, device="cpu")
    assert sorted(runs) == [("no_pretext", 0), ("no_split", 0)]
    assert not any(r.reused for r in runs.values()) and all(r.seconds > 0 for r in runs.values())
    here = study.train("no_split", tiny_data, preset, seed=5, device="cpu", chapter="01_cytoself_check")
    assert not here.reused and here.history.val == runs[("no_split", 0)].history.val
    assert runs[("no_pretext", 0)].model.classifier1 is None
    with pytest.raises(ParameterError, match="workers"):
        study.train_variants(["full"], tiny_data, preset, workers=0)


def test_embed_spectra_orphans_and_zeroing(tiny_data, tiny_run):
    test = tiny_data.dataset("test", "full")
    emb = study.embed(tiny_run.model, test)
    cfg = tiny_run.config
    n = len(test)
    assert emb.global_.shape == (n, cfg.global_channels * cfg.global_size**2)
    assert emb.global_indices.shape == (n, 9, 4, 4) and emb.local_indices.shape == (n, 25, 25)
    assert emb.labels.tolist() == [test[i][1] for i in range(n)] and (emb.rows == test.indices).all()
    assert test.transform is None  # restored
    emb_all = study.embed(tiny_run.model, tiny_data.dataset("all", "full"), batch_size=17)
    genes = tiny_data.meta["protein"].iloc[emb_all.rows]
    family = tiny_data.proteins.set_index("gene")["family"]
    spec = study.feature_spectra(emb_all.local_indices, genes, family, cfg.local_codebook_size, n_clusters=4)
    assert spec.histograms.shape == (tiny_data.num_classes, cfg.local_codebook_size)
    assert np.allclose(spec.histograms.sum(axis=1), 625)  # mean count per image over 25 x 25 positions
    assert 1 <= spec.bicluster.n_clusters <= 4 and set(spec.consensus.index) <= set(catalogs.FAMILIES)
    orphan = study.default_orphan(tiny_data)
    ranking = study.orphan_ranking(spec, orphan)
    assert ranking.is_monotonic_decreasing and len(ranking) >= 1
    # the consensus is recomputed without the orphan: its family is ranked only if other
    # proteins of that family remain
    others = (family.drop(index=orphan) == family[orphan]).any()
    assert (family[orphan] in ranking.index) == others
    with pytest.raises(ParameterError, match="not one of"):
        study.orphan_ranking(spec, "NOTAGENE")
    recon, maps = study.zeroing_maps(tiny_run.model, tiny_data.images([0])[0], spec)
    assert recon.shape == (2, 100, 100) and maps.shape == (spec.bicluster.n_clusters, 2, 100, 100)
    assert (maps >= 0).all()
    # zeroing every cluster of codes the image uses changes the reconstruction somewhere
    assert maps.max() > 0
    # the batched on/off-target score measures the same difference as the maps: Σ|Δ| / Σ|x̂|, protein channel
    every = pd.DataFrame({"cluster": range(1, spec.bicluster.n_clusters + 1)},
                         index=[f"c{k}" for k in range(1, spec.bicluster.n_clusters + 1)])
    gene0 = tiny_data.meta["protein"].iloc[0]
    changes = study.zeroing_changes(tiny_run.model, tiny_data.images([0, 0]), [gene0, gene0], family, spec, every)
    expected = maps[:, 0].sum(axis=(1, 2)) / np.abs(recon[0]).sum()
    assert np.allclose(changes[changes["image"] == 0]["change"], expected, rtol=1e-4, atol=1e-6)
    assert np.allclose(changes[changes["image"] == 1]["change"], expected, rtol=1e-4, atol=1e-6)
    assert len(set(study.example_proteins(tiny_data, 3))) == 3


# ----------------------------------------------------------------------------------------------
# clustering scores and the ablation table
# ----------------------------------------------------------------------------------------------

def test_ablation_table_hand_computed():
    scores = pd.DataFrame({
        "variant": ["full", "full", "no_pretext", "no_pretext", "no_split"],
        "repeat": [0, 1, 0, 1, 0],
        "score": [2.0, 4.0, 0.5, 0.7, 3.5],
    })
    table = study.ablation_table(scores)
    assert list(table.index) == ["full", "no_split", "no_pretext"]  # VARIANTS order
    assert table.loc["full", "mean"] == pytest.approx(3.0)
    assert table.loc["full", "sd"] == pytest.approx(np.sqrt(2.0))  # sample sd of (2, 4)
    assert np.isnan(table.loc["no_split", "sd"]) and table.loc["no_split", "repeats"] == 1
    assert table.loc["no_pretext", "vs_full"] == pytest.approx(0.2)
    assert table["rank"].to_dict() == {"full": 2, "no_split": 1, "no_pretext": 3}
    assert table.loc["no_pretext", "paper"] == study.PAPER_TABLE1_ORDER["no_pretext"]
    with pytest.raises(ParameterError, match="unknown variant"):
        study.ablation_table(scores.assign(variant="no_decoder"))
    with pytest.raises(DataError, match="needs columns"):
        study.ablation_table(scores.drop(columns="score"))


def test_clustering_scores_from_tiny_embeddings(tiny_data, tiny_run):
    # all images (the test split holds one image per protein here: no spread to measure)
    emb = study.embed(tiny_run.model, tiny_data.dataset("all", "full"))
    labels = tiny_data.meta["family"].iloc[emb.rows].to_numpy()
    rng = np.random.default_rng(0)
    codes = pd.factorize(labels)[0]
    separated = np.eye(codes.max() + 1)[codes] * 10 + rng.normal(0, 0.01, (len(codes), codes.max() + 1))
    scores, umaps = study.clustering_scores(
        {("full", 0): emb, ("no_pretext", 0): separated}, labels, n_neighbors=10, seed=0)
    assert list(scores["variant"]) == ["full", "no_pretext"] and (scores["n_images"] == len(labels)).all()
    assert umaps[("full", 0)].shape == (len(labels), 2) and np.isfinite(scores["score"]).all()
    # features that separate the families perfectly score higher than the tiny model's
    assert scores.loc[1, "score"] > scores.loc[0, "score"]
    table = study.ablation_table(scores)
    assert table.loc["no_pretext", "rank"] == 1
    with pytest.raises(DataError, match="feature rows"):
        study.clustering_scores({("full", 0): separated[:-1]}, labels, n_neighbors=4)
    with pytest.raises(ParameterError, match="tuples"):
        study.clustering_scores({"full": separated}, labels, n_neighbors=4)


# ----------------------------------------------------------------------------------------------
# exercise helpers: code usage, per-image code histograms, UMAP seeds
# ----------------------------------------------------------------------------------------------

def test_code_usage_hand_computed():
    from atlaskit.models.vq import perplexity_from_counts

    two = study.code_usage(np.array([[0, 0], [1, 1]]), 4, batch_size=1)
    assert two == {"images": 2, "codes_used": 2, "perplexity": pytest.approx(2.0), "batch_perplexity": pytest.approx(1.0)}
    # three images of 2 sub-vectors; batches of 2 and 1 images: perplexities 4 and 1, weighted 2:1
    q = np.array([[0, 1], [2, 3], [0, 0]])
    usage = study.code_usage(q, 8, batch_size=2)
    assert usage["batch_perplexity"] == pytest.approx((2 * 4 + 1 * 1) / 3)
    p = np.array([3, 1, 1, 1]) / 6  # pooled usage
    assert usage["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert usage["codes_used"] == 4 and "batch_perplexity" not in study.code_usage(q, 8)
    # the same as the quantizer's own perplexity on the pooled counts, for (N, S, H, W) indices
    rng = np.random.default_rng(0)
    big = rng.integers(0, 16, size=(10, 9, 4, 4))
    expected = float(perplexity_from_counts(torch.bincount(torch.from_numpy(big).flatten(), minlength=16)))
    assert study.code_usage(big, 16)["perplexity"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(DataError, match=r"in \[0, 4\)"):
        study.code_usage(np.array([[0, 4]]), 4)
    with pytest.raises(DataError, match="at least one image"):
        study.code_usage(np.zeros((0, 3), dtype=int), 4)
    with pytest.raises(ParameterError, match="batch_size"):
        study.code_usage(q, 8, batch_size=0)


def test_image_code_histograms_give_the_feature_spectra():
    from atlaskit.analysis import spectra as sp

    h = study.image_code_histograms(np.array([[[0, 0], [1, 3]], [[2, 2], [2, 2]]]), 5)
    np.testing.assert_allclose(h, [[0.5, 0.25, 0, 0.25, 0], [0, 0, 1, 0, 0]])
    rng = np.random.default_rng(1)
    q = rng.integers(0, 6, size=(12, 5, 5))
    genes = np.array(list("aabbbcccdddd"))
    h = study.image_code_histograms(q, 6)
    assert h.shape == (12, 6) and np.allclose(h.sum(axis=1), 1)
    per_protein = pd.DataFrame(h * 25).groupby(genes).mean()
    np.testing.assert_allclose(per_protein.to_numpy(), sp.index_histograms(q, genes, 6).to_numpy())
    with pytest.raises(DataError, match="integers"):
        study.image_code_histograms(q + 1, 6)
    with pytest.raises(ParameterError, match="num_embeddings"):
        study.image_code_histograms(q, 0)


def test_umap_seed_scores():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 12)
    x = np.repeat(np.eye(3) * 5, 12, axis=0) + rng.normal(0, 0.3, (36, 3))
    by_seed = study.umap_seed_scores(x, labels, [3, 0], n_neighbors=8)
    assert list(by_seed.index) == [3, 0] and by_seed.index.name == "seed"
    reference, _ = study.clustering_scores({("full", 0): x}, labels, n_neighbors=8, seed=0)
    assert by_seed[0] == pytest.approx(reference["score"].iloc[0], rel=1e-9)  # same seed, same UMAP
    assert (by_seed > 1).all()  # well-separated blobs score far above 1 whatever the seed
    with pytest.raises(ParameterError, match="distinct seeds"):
        study.umap_seed_scores(x, labels, [1, 1])
    with pytest.raises(ParameterError, match="distinct seeds"):
        study.umap_seed_scores(x, labels, [])


# ----------------------------------------------------------------------------------------------
# the chapter's evaluation step, its tables and figures
# ----------------------------------------------------------------------------------------------

def test_evaluate_tables_and_figures(tiny_data, tiny_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {("full", 0): tiny_run}
    evaluation = study.evaluate(runs, tiny_data, split="all", seed=0, n_neighbors=10)
    rows = tiny_data.indices("all")
    assert list(evaluation.labels) == list(tiny_data.meta["family"].to_numpy()[rows])
    emb = study.embed(tiny_run.model, tiny_data.dataset("all", "full"))
    np.testing.assert_array_equal(evaluation.embeddings[("full", 0)].global_, emb.global_)
    scores, umaps = study.clustering_scores({("full", 0): emb}, evaluation.labels, n_neighbors=10, seed=0)
    assert evaluation.score("full", 0) == scores["score"].iloc[0]
    several = study.evaluate(runs, tiny_data, split="all", seed=0, umap_seeds=3, n_neighbors=10)
    per_seed = several.seed_scores[several.seed_scores["variant"] == "full"]
    assert list(per_seed["umap_seed"]) == [0, 1, 2] and per_seed["score"].iloc[0] == evaluation.score("full", 0)
    assert several.score("full", 0) == pytest.approx(per_seed["score"].mean())  # a run's score: the seeds' mean
    np.testing.assert_array_equal(several.umaps[("full", 0)], evaluation.umaps[("full", 0)])  # first seed drawn
    with pytest.raises(ParameterError, match="umap_seeds must be a positive integer, not 0"):
        study.evaluate(runs, tiny_data, split="all", umap_seeds=0)
    np.testing.assert_array_equal(evaluation.umaps[("full", 0)], umaps[("full", 0)])
    with pytest.raises(ParameterError, match="no run"):
        evaluation.score("no_split", 0)

    table = study.runs_table(runs)
    assert table.to_dict("records")[0] == {"variant": "full", "repeat": 0, "epochs": TINY.epochs,
                                           "best epoch": tiny_run.history.best_epoch,
                                           "seconds": round(tiny_run.seconds, 1), "reused": tiny_run.reused,
                                           "device": "cpu"}
    hist = study.history_frame([tiny_run])
    ppl = study.perplexity_history(hist, ["full"])
    assert set(ppl["term"]) == {"metric_perplexity2"} and set(ppl["run"]) == {"full r0"}
    final = study.final_perplexity(ppl)
    last = tiny_run.history.val[-1]["metric_perplexity2"]
    assert final.to_dict() == {"full": pytest.approx(last)}

    described = study.describe_model(tiny_run.config)
    assert described["input"] == "2×100×100" and described["parameters"] == f"{tiny_run.model.num_parameters():,}"

    spec = study.feature_spectra(emb.local_indices, tiny_data.meta["protein"].to_numpy()[emb.rows],
                                 tiny_data.proteins.set_index("gene")["family"],
                                 tiny_run.config.local_codebook_size, n_clusters=3)
    genes = study.example_proteins(tiny_data, 2)
    examples = study.zeroing_examples(tiny_run.model, tiny_data, spec, genes)
    assert [e[0] for e in examples] == genes
    test_rows = tiny_data.indices("test")
    first = int(test_rows[tiny_data.meta["protein"].to_numpy()[test_rows] == genes[0]][0])
    recon, maps = study.zeroing_maps(tiny_run.model, tiny_data.images([first])[0], spec)
    np.testing.assert_array_equal(examples[0][2], recon)
    np.testing.assert_array_equal(examples[0][3], maps)
    with pytest.raises(ParameterError, match="no test image"):
        study.zeroing_examples(tiny_run.model, tiny_data, spec, ["NOTAGENE"])

    obs = study.atlas_obs(tiny_data, emb)
    fig = study.figures.zeroing_figure(examples)
    assert fig._suptitle is not None and len(fig.axes) == 2 * (2 + spec.bicluster.n_clusters)
    for mpl_fig in (study.figures.stored_channels(tiny_data, genes), study.figures.spectrum_heatmap(spec),
                    study.figures.consensus(spec)):
        assert mpl_fig._suptitle is not None
    plt.close("all")
    plotly_figs = [study.figures.loss_terms(hist), study.figures.perplexity_curves(ppl),
                   study.figures.atlas_map(evaluation.umaps[("full", 0)], obs, tiny_data),
                   study.figures.score_strip(scores)]
    assert all(len(f.data) > 0 for f in plotly_figs)
    with pytest.raises(ParameterError, match="at least one example"):
        study.figures.zeroing_figure([])
    atlases = study.figures.variant_atlases(evaluation, repeat=0)
    panels = {a.text for a in atlases.layout.annotations}
    assert any(text.startswith("full (score ") for text in panels) and len(atlases.data) > 0
    with pytest.raises(ParameterError, match="no variant of repeat 7"):
        study.figures.variant_atlases(evaluation, repeat=7)
