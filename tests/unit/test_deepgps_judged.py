"""Generated images judged by the cytoself atlas (atlaskit.studies.deepgps.judged): the family
hit rate on hand-made embeddings with a known answer, chance levels, intervals, shapes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.deepgps import judged as J


def _reference():
    """Three families on the axes of a 3-D space, two proteins of two images each per family."""
    rows, genes, fams = [], [], []
    for k, fam in enumerate(["A", "B", "C"]):
        for p in range(2):
            for _ in range(2):
                v = np.zeros(3)
                v[k] = 10.0 + p  # protein centroids 10 and 11 → family centroid 10.5 on axis k
                rows.append(v)
                genes.append(f"{fam}{p}")
                fams.append(fam)
    return np.array(rows), genes, fams


def test_family_centroids_weight_proteins_equally():
    x, genes, fams = _reference()
    # a third image of A0 must not pull family A towards A0
    x = np.vstack([x, [[10.0, 0, 0]] * 4])
    genes, fams = genes + ["A0"] * 4, fams + ["A"] * 4
    c = J.family_centroids(x, genes, fams)
    assert list(c.index) == ["A", "B", "C"]
    assert c.shape == (3, 3)
    np.testing.assert_allclose(c.loc["A"].to_numpy(), [10.5, 0, 0])
    np.testing.assert_allclose(c.loc["C"].to_numpy(), [0, 0, 10.5])


def test_family_hits_known_answer():
    x, genes, fams = _reference()
    c = J.family_centroids(x, genes, fams)
    # p1 (family A) lands on A; p2 (family B) lands on C; p3 (family C) has two images whose mean is on C
    q = np.array([[9.0, 1, 0], [0, 0, 12.0], [0, 2.0, 10.0], [0, -2.0, 10.0]])
    h = J.family_hits(q, ["p1", "p2", "p3", "p3"], ["A", "B", "C", "C"], c)
    assert list(h["gene"]) == ["p1", "p2", "p3"]
    assert list(h["nearest"]) == ["A", "C", "C"]
    assert list(h["hit"]) == [True, False, True]
    # p3's mean embedding is (0, 0, 10): 0.5 from C
    assert h.loc[2, "distance_own"] == pytest.approx(0.5)
    assert h.loc[1, "distance_own"] == pytest.approx(np.linalg.norm([0, -10.5, 12.0]))
    assert (h["distance_nearest"] <= h["distance_own"] + 1e-12).all()


def test_family_hits_unknown_family_is_a_miss():
    x, genes, fams = _reference()
    c = J.family_centroids(x, genes, fams)
    h = J.family_hits(np.array([[10.0, 0, 0]]), ["z"], ["Z"], c)
    assert not h["hit"].iloc[0] and np.isnan(h["distance_own"].iloc[0])


def test_family_hits_rejects_bad_shapes():
    x, genes, fams = _reference()
    c = J.family_centroids(x, genes, fams)
    with pytest.raises(DataError, match="not the same encoder"):
        J.family_hits(np.zeros((1, 4)), ["a"], ["A"], c)
    with pytest.raises(DataError):
        J.family_hits(np.zeros((2, 3)), ["a"], ["A"], c)
    with pytest.raises(DataError, match="NaN"):
        J.family_hits(np.full((1, 3), np.nan), ["a"], ["A"], c)
    with pytest.raises(DataError):
        J.family_centroids(np.zeros((0, 3)), [], [])


def test_hit_rates_overall_and_per_family_with_intervals():
    hits = pd.DataFrame({"gene": [f"g{i}" for i in range(40)],
                         "family": ["A"] * 20 + ["B"] * 20,
                         "hit": [True] * 20 + [True] * 5 + [False] * 15})
    r = J.hit_rates(hits, n_boot=500, seed=1).set_index("family")
    assert list(r.index) == ["all", "A", "B"]
    assert r.loc["all", "rate"] == pytest.approx(25 / 40)
    assert r.loc["A", "rate"] == 1.0 and r.loc["A", "low"] == 1.0 and r.loc["A", "high"] == 1.0
    assert r.loc["B", "rate"] == pytest.approx(0.25)
    assert r.loc["B", "low"] < 0.25 < r.loc["B", "high"]
    assert 0.0 <= r.loc["B", "low"] and r.loc["B", "high"] <= 1.0
    assert list(r["proteins"]) == [40, 20, 20]
    # wider with fewer proteins
    assert r.loc["B", "high"] - r.loc["B", "low"] > r.loc["all", "high"] - r.loc["all", "low"] - 0.2


def test_hit_rates_by_source():
    hits = pd.DataFrame({"source": ["generated"] * 4 + ["ground truth"] * 4, "gene": list("abcd") * 2,
                         "family": list("AABB") * 2, "hit": [1, 0, 0, 0, 1, 1, 1, 1]})
    r = J.hit_rates(hits, n_boot=200)
    assert list(r["source"]) == ["generated"] * 3 + ["ground truth"] * 3
    assert r.query("source == 'ground truth' and family == 'all'")["rate"].item() == 1.0
    assert r.query("source == 'generated' and family == 'A'")["rate"].item() == 0.5


def test_chance_levels():
    hits = pd.DataFrame({"gene": list("abcde"), "family": list("AAABC"), "hit": [True] * 5})
    c = J.chance_levels(hits, 4)
    assert c["random"] == 0.25
    assert c["commonest"] == pytest.approx(0.6)
    with pytest.raises(ParameterError):
        J.chance_levels(hits, 0)


def test_judge_inputs_shapes_and_ranges():
    rng = np.random.default_rng(0)
    n, s = 3, 32
    yy, xx = np.mgrid[:s, :s]
    nucleus = np.stack([np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 40.0)] * n).astype(np.float32)
    protein = rng.normal(0.5, 0.6, (n, s, s)).astype(np.float32)  # outside [0, 1]: clipped, then min-max
    x, nuc = J.judge_inputs(protein, nucleus, (0, 1), size=100)
    assert x.shape == (n, 2, 100, 100) and nuc.shape == (n, 1, 100, 100)
    assert x.dtype == np.float32
    assert x[:, 0].min() == pytest.approx(0.0) and x[:, 0].max() == pytest.approx(1.0)
    # the distance channel: positive at the nucleus centre, negative in the corner, in [-1, 1]
    assert x[0, 1, 50, 50] > 0 > x[0, 1, 0, 0]
    assert np.abs(x[:, 1]).max() <= 1.0 + 1e-6
    # the nucleus part is reused as given
    x2, nuc2 = J.judge_inputs(protein[:, ::-1].copy(), None, (0, 1), size=100, nucleus_channels=nuc)
    np.testing.assert_array_equal(x2[:, 1], x[:, 1])
    x3, _ = J.judge_inputs(protein, nucleus, (0, 2), size=100)
    assert 0.0 <= x3[:, 1].min() and x3[:, 1].max() <= 1.0
    x4, nuc4 = J.judge_inputs(protein, None, (0,), size=64)
    assert x4.shape == (n, 1, 64, 64) and nuc4.shape == (n, 0, 64, 64)


def test_judge_inputs_rejects_bad_input():
    with pytest.raises(ParameterError):
        J.judge_inputs(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), (1, 0))
    with pytest.raises(DataError):
        J.judge_inputs(np.zeros((8, 8)), np.zeros((8, 8)), (0, 1))
    with pytest.raises(DataError, match="differ in shape"):
        J.judge_inputs(np.zeros((1, 8, 8)), np.zeros((1, 9, 9)), (0, 1))
    with pytest.raises(DataError, match="NaN"):
        J.judge_inputs(np.full((1, 8, 8), np.nan), np.zeros((1, 8, 8)), (0, 1))


def test_judge_embeds_with_a_cytoself_model():
    import torch

    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.models.cytoself_config import CytoselfConfig

    torch.manual_seed(0)
    model = CytoselfModel(CytoselfConfig.tiny(4)).eval()
    judge = J.Judge(model=model, channels=(0, 1), size=100)
    rng = np.random.default_rng(0)
    e = judge.embed(rng.random((3, 2, 100, 100)).astype(np.float32), batch_size=2)
    assert e.shape[0] == 3 and e.ndim == 2 and np.isfinite(e).all()


@pytest.fixture(scope="module")
def tiny_chapter(tmp_path_factory, tiny_deepgps_trainer):
    """A tiny deepGPS-single-2 run with its images and features (two images per protein), in its own folders."""
    root = tmp_path_factory.mktemp("judged")
    mp = pytest.MonkeyPatch()
    mp.setenv("ATLASKIT_RUNS", str(root / "runs"))
    yield tiny_deepgps_trainer(root, images_per_protein=2)
    mp.undo()


def test_judge_generation_end_to_end(tiny_chapter):
    import torch

    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.models.cytoself_config import CytoselfConfig
    from atlaskit.studies.deepgps import figures

    table, images, feats, run = tiny_chapter
    test_genes = sorted(set(images.meta["protein"].iloc[run.test_items]))
    torch.manual_seed(0)
    judge = J.Judge(model=CytoselfModel(CytoselfConfig.tiny(4)).eval(), channels=(0, 1), size=100,
                    proteins=(test_genes[0], "NOT_A_TEST_PROTEIN"))
    families = table.set_index("gene")["family"]
    judged = J.judge_generation(run, images, feats, judge, families=families, n_boot=200, seed=0)
    assert judged.excluded == [test_genes[0]]
    judged_genes = set(test_genes[1:]) & set(families.dropna().index)
    assert set(judged.hits["gene"]) == judged_genes
    assert list(judged.hits["source"].drop_duplicates()) == list(J.JUDGE_SOURCES)
    assert len(judged.hits) == len(J.JUDGE_SOURCES) * len(judged_genes)
    summary = judged.summary()
    assert list(summary["source"]) == list(J.JUDGE_SOURCES)
    assert ((summary["low"] <= summary["rate"]) & (summary["rate"] <= summary["high"])).all()
    assert (summary["proteins"] == len(judged_genes)).all()
    assert judged.chance["random"] == pytest.approx(1 / len(judged.families))
    ref_genes = set(images.meta["protein"].iloc[run.train_items]) & set(families.dropna().index)
    assert judged.n_reference == len(ref_genes)
    effect = J.judged_effect(judged, n_boot=200)
    assert effect.low <= effect.high and "ours" in effect.effect
    fig = figures.judged_rates(judged)
    assert len(fig.data) == 4
    assert list(fig.data[0].x)[0].startswith("all (")


def test_size_round_trip_judges_the_same_crops_twice(tiny_chapter):
    import torch

    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.models.cytoself_config import CytoselfConfig
    from atlaskit.studies import deepgps

    table, _, _, _ = tiny_chapter
    preset = deepgps.preset("ci").replace(image_size=32, images_per_protein=1)
    torch.manual_seed(0)
    judge = J.Judge(model=CytoselfModel(CytoselfConfig.tiny(4)).eval(), channels=(0, 1), size=100)
    out = J.size_round_trip(judge, table, preset, variant="single-2", n_boot=100)
    assert list(out["images"]) == ["100 px", "32 px → 100 px"]
    assert out["same_call"].iloc[0] == 1.0 and 0.0 <= out["same_call"].iloc[1] <= 1.0
    n_test = table.query("split == 'test'")["family"].notna().sum()
    assert (out["proteins"] == n_test).all()
    assert ((out["low"] <= out["rate"]) & (out["rate"] <= out["high"])).all()
    np.testing.assert_allclose(out["rate"], out["hits"] / out["proteins"])
