"""deepGPS generation effects: the nucleus/outside ratio and the scored cross-assay, equal-count
subsampling of the variants, and the paper's 2700-residue cut (hand-computed cases, bad input)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies import deepgps

# ------------------------------------------------------------------ nucleus / outside ratio


def _square_nucleus(size=8, lo=2, hi=6):
    nucleus = np.zeros((size, size), np.float32)
    nucleus[lo:hi, lo:hi] = 1.0  # a 4×4 nucleus; Otsu puts the threshold between 0 and 1
    return nucleus


def test_nucleus_mask_is_the_bright_square():
    mask = deepgps.nucleus_mask(_square_nucleus())
    assert mask.sum() == 16 and mask[2:6, 2:6].all()


def test_nuclear_ratio_hand_computed():
    nucleus = _square_nucleus()
    image = np.full((8, 8), 1.0)
    image[2:6, 2:6] = 3.0
    assert deepgps.nuclear_ratio(image, nucleus) == pytest.approx(3.0)
    image[2:6, 2:6] = np.tile([2.0, 4.0], 8).reshape(4, 4)  # inside mean 3
    image[~deepgps.nucleus_mask(nucleus)] = 0.5  # outside mean 0.5
    assert deepgps.nuclear_ratio(image, nucleus) == pytest.approx(6.0)
    around = np.where(deepgps.nucleus_mask(nucleus), 0.2, 0.8)  # a cytoplasmic pattern
    assert deepgps.nuclear_ratio(around, nucleus) == pytest.approx(0.25)
    black = np.where(deepgps.nucleus_mask(nucleus), 0.5, 0.0)  # black surround: a large finite ratio
    assert deepgps.nuclear_ratio(black, nucleus) == pytest.approx(0.5 / 1e-6)


@pytest.mark.parametrize("image, nucleus, match", [
    (np.ones((8, 8)), np.ones((8, 8)), "constant"),
    (np.ones((8, 8)), np.ones((2, 8, 8)), "2-D"),
    (np.ones((8, 8)), np.full((8, 8), np.nan), "finite"),
    (np.ones((6, 6)), _square_nucleus(), "shape"),
    (-np.ones((8, 8)), _square_nucleus(), "non-negative"),
    (np.full((8, 8), np.inf), _square_nucleus(), "finite"),
])
def test_nuclear_ratio_refuses_bad_input(image, nucleus, match):
    with pytest.raises(DataError, match=match):
        deepgps.nuclear_ratio(image, nucleus)


# ------------------------------------------------------------------ agreement of the scored cross-assay


def _scores():
    # cytoplasmic: 3 of 4 agree; nucleoplasm: 1 of 2; the ground truth agrees everywhere but once
    return pd.DataFrame({
        "gene": list("abcdef"),
        "label": ["cytoplasmic"] * 4 + ["nucleoplasm"] * 2,
        "agrees": [True, True, True, False, True, False],
        "truth_agrees": [True, True, True, True, True, False],
    })


def test_agreement_table_hand_computed():
    tab = deepgps.agreement_table(_scores(), n_boot=200, seed=0).set_index("class")
    assert tab.loc["cytoplasmic", ["proteins", "agree"]].tolist() == [4, 3]
    assert tab.loc["cytoplasmic", "rate"] == pytest.approx(0.75)
    assert tab.loc["nucleoplasm", "rate"] == pytest.approx(0.5)
    assert tab.loc["all proteins", "rate"] == pytest.approx(4 / 6)
    assert tab.loc["all proteins", "truth rate"] == pytest.approx(5 / 6)
    assert (tab["low"] <= tab["rate"]).all() and (tab["rate"] <= tab["high"]).all()
    with pytest.raises(DataError):
        deepgps.agreement_table(_scores().iloc[:0])


def test_cross_assay_effect_is_the_balanced_agreement():
    from atlaskit.studies.deepgps.effects import cross_assay_agreement

    row = cross_assay_agreement(_scores(), n_boot=200, seed=0)
    assert row.ours == pytest.approx((0.75 + 0.5) / 2)  # a sequence-blind generator scores 0.5
    assert row.low <= row.ours <= row.high and "0.667" in row.measure
    perfect = _scores().assign(agrees=True)
    assert cross_assay_agreement(perfect, n_boot=50, seed=0).verdict == "reproduced"
    blind = _scores().assign(agrees=[True] * 4 + [False] * 2)  # always "outside": 0.5 whatever the shares
    assert cross_assay_agreement(blind, n_boot=50, seed=0).ours == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="both classes"):
        cross_assay_agreement(_scores().iloc[:4], n_boot=50)


# ------------------------------------------------------------------ equal-count subsampling


def _proteins():
    return pd.DataFrame({"gene": [f"g{i:02d}" for i in range(20)],
                         "label": ["a"] * 10 + ["b"] * 6 + ["c"] * 4})


def test_equal_count_sample_counts_by_largest_remainder():
    p = _proteins()
    pick = deepgps.equal_count_sample(p, 10, by="label", seed=0)
    assert p.set_index("gene").loc[pick, "label"].value_counts().to_dict() == {"a": 5, "b": 3, "c": 2}
    # 7 of 20: shares 3.5 / 2.1 / 1.4 → floors 3 / 2 / 1, the one left over to the largest remainder (a)
    pick = deepgps.equal_count_sample(p, 7, by="label", seed=0)
    assert p.set_index("gene").loc[pick, "label"].value_counts().to_dict() == {"a": 4, "b": 2, "c": 1}
    assert pick == sorted(pick) and len(set(pick)) == 7
    assert deepgps.equal_count_sample(p, 20, by="label", seed=3) == p["gene"].tolist()


def test_equal_count_sample_is_seeded_and_order_free():
    p = _proteins()
    first = deepgps.equal_count_sample(p, 8, by="label", seed=0)
    assert deepgps.equal_count_sample(p, 8, by="label", seed=0) == first
    assert deepgps.equal_count_sample(p.iloc[::-1], 8, by="label", seed=0) == first  # row order does not matter
    assert deepgps.equal_count_sample(p, 8, by="label", seed=1) != first


@pytest.mark.parametrize("n", [0, 21, 2.5, True, -1])
def test_equal_count_sample_refuses_bad_sizes(n):
    with pytest.raises(ParameterError, match="whole number"):
        deepgps.equal_count_sample(_proteins(), n, by="label")


def test_equal_count_sample_refuses_bad_tables():
    with pytest.raises(ParameterError, match="'stratum'"):
        deepgps.equal_count_sample(_proteins(), 3, by="stratum")
    twice = pd.concat([_proteins(), _proteins().head(1)])
    with pytest.raises(DataError, match="twice"):
        deepgps.equal_count_sample(twice, 3, by="label")


# ------------------------------------------------------------------ the 2700-residue cut


def test_variant_table_leaves_out_long_sequences():
    table = pd.DataFrame({"gene": ["A", "B", "C", "D"], "split": ["train", "train", "test", "test"],
                          "stratum": ["s"] * 4, "single-2": ["cytoplasmic", "nucleoplasm", "cytoplasmic", None],
                          "single-4": ["cytoplasmic", "nucleoplasm", "cytoplasmic", None],
                          "length": [2700, 2701, 100, 5000]})
    assert deepgps.variant_table(table, "single-2")["gene"].tolist() == ["A", "C"]  # 2700 kept, 2701 out
    assert deepgps.variant_table(table, "all")["gene"].tolist() == ["A", "C"]
    assert deepgps.variant_table(table, "single-2", max_length=None)["gene"].tolist() == ["A", "B", "C"]
    assert len(deepgps.variant_table(table.drop(columns="length"), "all")) == 4  # no lengths: nothing to cut
    with pytest.raises(ParameterError, match="max_length"):
        deepgps.variant_table(table, "single-2", max_length=0)


@pytest.fixture(scope="module")
def table():
    return deepgps.protein_table(0)


def test_real_variants_exclude_long_proteins_and_all_matches_single2(table):
    v2 = deepgps.variant_table(table, "single-2")
    assert len(v2) == 353 and v2["gene"].isin(["AKAP13", "ATM", "PRKDC", "TRRAP"]).sum() == 0
    assert len(deepgps.variant_table(table, "single-2", max_length=None)) == 357
    n2 = int((v2["split"] == "train").sum())
    allp = deepgps.image_proteins(table, "all", deepgps.preset("ci"))
    train = allp.query("split == 'train'")
    assert len(train) == n2 == 282 and (table.set_index("gene").loc[allp["gene"], "length"] <= 2700).all()
    assert train.groupby("stratum").size().max() <= deepgps.preset("ci").all_max_train_per_stratum
    assert set(deepgps.variant_table(table, "single-4").query("split == 'test'")["gene"]) <= set(allp["gene"])


# ------------------------------------------------------------------ equal-count runs and the scored cross-assay


def test_equal_count_runs_and_cross_assay_scores(table, tmp_path, monkeypatch):
    from atlaskit.models.sequence import CompositionEmbedder

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs"))
    keep = []
    for variant, per_class in (("single-2", 6), ("single-4", 6)):
        for (_, split), grp in deepgps.variant_table(table, variant).groupby(["label", "split"]):
            keep += grp["gene"].head(per_class if split == "train" else 2).tolist()
    small = table[table["gene"].isin(keep)].reset_index(drop=True)
    preset = deepgps.preset("ci", epochs=1).replace(image_size=32, width_multiplier=0.0625, images_per_protein=1,
                                                    batch_size=8)
    embedder = CompositionEmbedder(dipeptides=False)
    feats = deepgps.embed_proteins(small, embedder, cache=tmp_path / "emb")
    images = deepgps.build_data(small, preset, seed=0, root=tmp_path / "stores")
    runs = {v: deepgps.train(v, small, images, feats, preset, embedder=embedder, seed=0, device="cpu")
            for v in ("single-2", "single-4")}
    n2, n4 = (deepgps.training_proteins(runs[v]) for v in ("single-2", "single-4"))
    assert n2 == 12 and n4 == 24
    equal = deepgps.equal_count_runs(runs, small, images, feats, preset, embedder=embedder, seed=0, device="cpu")
    assert equal.n == 12 and equal.runs["single-2"] is runs["single-2"] and list(equal.extra) == ["single-4 (12 proteins)"]
    again = equal.runs["single-4"]
    trained = again.proteins.query("split == 'train'")
    assert len(trained) == 12 and trained["label"].value_counts().tolist() == [3, 3, 3, 3]  # stratified by class
    assert again.run_dir != runs["single-4"].run_dir and len(again.train_items) == 12
    assert set(again.proteins.query("split == 'test'")["gene"]) == set(runs["single-4"].proteins.query("split == 'test'")["gene"])
    assert equal.counts["equal count"].tolist() == [12, 12] and equal.counts["trained again"].tolist() == [False, True]
    with pytest.raises(ParameterError, match="n_train_proteins"):
        deepgps.train("single-2", small, images, feats, preset, embedder=embedder, seed=0, n_train_proteins=13)

    # training repeats: the same proteins, another training seed, a folder `atlaskit predict` skips
    twice = deepgps.equal_count_runs(runs, small, images, feats, preset, embedder=embedder, seed=0, device="cpu",
                                     repeats=2)
    assert len(twice.repeats) == 2 and twice.repeats[0]["single-4"].run_dir == again.run_dir
    for v in ("single-2", "single-4"):
        first, second = twice.repeat_runs(v)
        assert second.run_dir != first.run_dir and second.run_dir.name.startswith(f"deepgps-repeat1-{v}")
        assert set(second.proteins["gene"]) == set(first.proteins["gene"])
        assert np.array_equal(second.train_items, first.train_items)
        w1, w2 = (torch.load(r.run_dir / "last.pt", weights_only=True)["model"] for r in (first, second))
        assert any(not torch.equal(w1[k], w2[k]) for k in w1)  # another initialisation
    from atlaskit.commands.predict import latest_export

    assert not latest_export("single-2", tmp_path / "runs").name.startswith("deepgps-repeat")
    items = runs["single-2"].test_items
    rows = deepgps.effects.variants_at_equal_counts(twice, images, feats, items, n_boot=50)
    assert len(rows) == 1 and "two-level bootstrap over 2 training repeats" in rows[0].reason
    assert "mean over 2 training repeats" in rows[0].measure
    single = deepgps.effects.variants_at_equal_counts(equal, images, feats, items, n_boot=50)
    assert "one training run" in single[0].reason
    floor = deepgps.effects.generation_vs_floor(twice.repeat_runs("single-2"), images, feats, items,
                                                runs["single-2"].train_items, n_boot=50)
    assert "2 training repeats" in floor.reason
    spread = deepgps.repeat_spread(twice, images, feats, items)
    table2 = deepgps.generation_table(twice.repeats[1], images, feats, items, runs["single-2"].train_items)
    assert spread["variant"].tolist() == ["single-2", "single-4"] and spread["repeats"].tolist() == [2, 2]
    np.testing.assert_allclose(spread["repeat 1"], table2["psnr"].iloc[:2])
    np.testing.assert_allclose(spread["range"], (spread["repeat 0"] - spread["repeat 1"]).abs())
    np.testing.assert_allclose(spread["mean"], (spread["repeat 0"] + spread["repeat 1"]) / 2)
    with pytest.raises(ParameterError, match="repeats"):
        deepgps.equal_count_runs(runs, small, images, feats, preset, embedder=embedder, seed=0, repeats=0)
    with pytest.raises(ParameterError, match="repeat"):
        deepgps.train("single-2", small, images, feats, preset, embedder=embedder, seed=0, repeat=-1)

    scores = deepgps.cross_assay_scores(runs["single-2"], images, small, feats, n_nuclei=2, seed=0)
    assert scores["gene"].tolist() == sorted(deepgps.variant_table(small, "single-2").query("split == 'test'")["gene"])
    expected = np.where(scores["label"] == "nucleoplasm", "nucleus", "outside")
    assert (scores["agrees"] == (scores["call"] == expected)).all()
    assert ((scores["ratio"] > 1) == (scores["call"] == "nucleus")).all() and np.isfinite(scores["truth_ratio"]).all()
    with pytest.raises(ParameterError, match="n_nuclei"):
        deepgps.cross_assay_scores(runs["single-2"], images, small, feats, n_nuclei=0)
    with pytest.raises(ParameterError, match="'er' class"):  # single-2 has no ER class
        deepgps.cross_assay_scores(runs["single-2"], images, small, feats, nuclear_class="er")
