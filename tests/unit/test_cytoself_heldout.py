"""Truly held-out orphan proteins of the cytoself study (atlaskit.studies.cytoself.heldout): the
selection rule, the ranking on hand-built spectra, the per-family table and the ledger row."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies import cytoself as study
from atlaskit.studies.cytoself.effects import ORPHAN_EFFECT, heldout_find_family, measure_effects


# ----------------------------------------------------------------------------------------------
# the selection rule
# ----------------------------------------------------------------------------------------------

def test_select_heldout_is_disjoint_stratified_and_deterministic():
    training = study.select_proteins(24, complex_members=2, seed=0)
    families = sorted(set(training["family"]))
    held = study.select_heldout(training["gene"], families, per_family=3, seed=0)
    assert set(held["gene"]).isdisjoint(training["gene"])
    assert held["gene"].is_unique
    counts = held["family"].value_counts()
    assert set(counts.index) == set(families) and (counts == 3).all()  # every family has > 3 candidates
    # the catalog's family of every chosen protein, and single-localized ones first (each family has
    # at least 3 single-localized candidates outside these 24)
    catalog = study.select_proteins(None).set_index("gene")
    assert (catalog.loc[held["gene"], "family"].to_numpy() == held["family"].to_numpy()).all()
    assert held["single_localized"].all()
    # deterministic for a seed, another seed another draw; the family order of the call is irrelevant
    again = study.select_heldout(list(training["gene"]), families[::-1], per_family=3, seed=0)
    pd.testing.assert_frame_equal(held, again)
    assert set(study.select_heldout(training["gene"], families, per_family=3, seed=1)["gene"]) != set(held["gene"])
    # a family with fewer candidates than asked gives what it has: mitochondria has 11 in the catalog
    mito = study.select_heldout(training["gene"], ["mitochondria"], per_family=50, seed=0)
    n_mito = int((catalog["family"] == "mitochondria").sum()) - int((training["family"] == "mitochondria").sum())
    assert len(mito) == n_mito and set(mito["family"]) == {"mitochondria"}
    # every catalog protein in training: nothing left to hold out
    assert study.select_heldout(catalog.index, per_family=2).empty


def test_select_heldout_rejects_bad_input():
    with pytest.raises(ParameterError, match="per_family"):
        study.select_heldout([], per_family=0)
    with pytest.raises(ParameterError, match="per_family"):
        study.select_heldout([], per_family=True)
    with pytest.raises(ParameterError, match="unknown families"):
        study.select_heldout([], ["not a family"])


# ----------------------------------------------------------------------------------------------
# the ranking, on spectra whose answer is known
# ----------------------------------------------------------------------------------------------

def _images(*patterns):
    """(N, 10) VQ1 indices: one image per pattern, a pattern being {code: positions}."""
    return np.array([sum(([code] * n for code, n in p.items()), []) for p in patterns])


@pytest.fixture()
def hand_spectra():
    """Six training proteins, two per family: A uses codes 0/1, B codes 2/3, C codes 4/5."""
    images = np.concatenate([
        _images({0: 6, 1: 4}, {0: 6, 1: 4}), _images({0: 5, 1: 5}, {0: 5, 1: 5}),  # a1, a2
        _images({2: 6, 3: 4}, {2: 6, 3: 4}), _images({2: 5, 3: 5}, {2: 5, 3: 5}),  # b1, b2
        _images({4: 6, 5: 4}, {4: 6, 5: 4}), _images({4: 5, 5: 5}, {4: 5, 5: 5}),  # c1, c2
    ])
    genes = np.repeat(["a1", "a2", "b1", "b2", "c1", "c2"], 2)
    family = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C"}
    return study.feature_spectra(images, genes, family, 6, n_clusters=3)


def test_heldout_ranking_hand_built(hand_spectra):
    held = np.concatenate([_images({2: 7, 3: 3}, {2: 7, 3: 3}),   # x: B's codes, annotated B
                           _images({4: 8, 5: 2}),                 # y: C's codes, annotated A
                           _images({0: 5, 1: 3, 2: 2})])          # z: mostly A's codes, annotated A
    table = study.heldout_ranking(hand_spectra, held, ["x", "x", "y", "z"], {"x": "B", "y": "A", "z": "A"})
    assert list(table.index) == ["x", "y", "z"]
    assert table.loc["x", "best"] == "B" and table.loc["x", "rank"] == 1
    assert table.loc["y", "best"] == "C" and table.loc["y", "rank"] > 1
    assert table.loc["z", "best"] == "A" and table.loc["z", "rank"] == 1
    assert (table["families"] == 3).all() and table["images"].tolist() == [2, 1, 1]
    # r of x with B by hand: x = (0, 0, .7, .3, 0, 0), consensus B = mean of (.6, .4) and (.5, .5) on codes 2, 3
    x = np.array([0, 0, 0.7, 0.3, 0, 0])
    b = np.array([0, 0, 0.55, 0.45, 0, 0])
    dx, db = x - x.mean(), b - b.mean()
    assert table.loc["x", "r_best"] == pytest.approx(float(dx @ db / np.sqrt((dx @ dx) * (db @ db))))
    # a family without a consensus cannot be ranked
    assert np.isnan(study.heldout_ranking(hand_spectra, _images({0: 10}), ["w"], {"w": "D"}).loc["w", "rank"])


def test_heldout_ranking_refuses_a_training_protein(hand_spectra):
    with pytest.raises(DataError, match="not held out"):
        study.heldout_ranking(hand_spectra, _images({2: 10}), ["b1"], {"b1": "B"})


def test_heldout_by_family_and_ledger_row():
    table = pd.DataFrame({
        "protein": ["p", "p", "q", "q", "s", "s"], "repeat": [0, 1] * 3,
        "family": ["A", "A", "A", "A", "B", "B"], "best": ["A", "B", "C", "C", "B", "B"],
        "r_best": 0.5, "rank": [1, 2, 4, 3, 1, 1], "families": 4, "images": 16,
    })
    by_family = study.heldout_by_family(table)
    assert by_family.loc["A"].tolist() == [2, 4, 0.25, 0.75]
    assert by_family.loc["B"].tolist() == [1, 2, 1.0, 1.0]
    assert by_family.loc["all"].tolist() == [3, 6, 0.5, pytest.approx(5 / 6)]
    row = heldout_find_family(table, n_boot=500, seed=0)
    assert row.effect == ORPHAN_EFFECT and row.ours == pytest.approx(0.5 - 0.25)
    assert row.low <= row.ours <= row.high and "3 proteins × 2 training repeats" in row.measure
    assert "top-3 rate 0.83 (chance 0.75)" in row.reason
    # resampling whole proteins: the interval can only take values of 3 proteins' mean hit rates
    per_protein = table.assign(hit=table["rank"] == 1).groupby("protein")["hit"].mean().to_numpy()
    grid = {round(float(np.mean(per_protein[list(c)])) - 0.25, 9)
            for c in np.ndindex(3, 3, 3)}
    assert round(row.low, 9) in grid and round(row.high, 9) in grid
    assert study.heldout_by_family(table.iloc[:0]).empty


def _fake_runs(perplexities):
    history = lambda p: SimpleNamespace(val=[{"metric_perplexity2": p}], epochs=[1], best_epoch=1)  # noqa: E731
    return {(v, r): SimpleNamespace(history=history(p)) for (v, r), p in perplexities.items()}


def test_measure_effects_orphan_row():
    runs = _fake_runs({("full", 0): 30.0, ("no_split", 0): 10.0, ("full", 1): 28.0, ("no_split", 1): 12.0})
    scores = pd.DataFrame({"variant": ["full", "no_pretext"] * 2, "repeat": [0, 0, 1, 1], "score": [2.0, 1.0, 2.2, 0.9]})
    loo = pd.DataFrame({"rank": [1, 1, 2, 1]})
    # no held-out proteins (real images, scale full): the row is there, not testable, with its reason
    rows = measure_effects(runs, scores, loo, 4, heldout=None, data="real")
    orphan = [r for r in rows if r.effect == ORPHAN_EFFECT]
    assert len(orphan) == 1 and orphan[0].verdict == "not testable" and "retraining" in orphan[0].reason
    clustering = [r for r in rows if r.effect.startswith("the feature spectra cluster")]
    assert len(clustering) == 1 and clustering[0].ours == pytest.approx(0.75 - 0.25)
    # with held-out proteins: measured, after the clustering row; rows whose family had no consensus are dropped
    held = pd.DataFrame({"protein": ["p", "q", "s"], "repeat": 0, "family": ["A", "A", "D"], "best": "A",
                         "r_best": 0.5, "rank": [1, 1, np.nan], "families": 4, "images": 16})
    rows = measure_effects(runs, scores, loo, 4, heldout=held)
    names = [r.effect for r in rows]
    i = names.index(ORPHAN_EFFECT)
    assert names[i - 1].startswith("the feature spectra cluster") and rows[i].ours == pytest.approx(1 - 0.25)
    assert "2 proteins × 1 training repeats" in rows[i].measure


# ----------------------------------------------------------------------------------------------
# end to end on tiny data, with an untrained model (the plumbing, not the quality)
# ----------------------------------------------------------------------------------------------

def test_build_heldout_and_heldout_orphans_tiny(tmp_path):
    from atlaskit.models.cytoself import CytoselfModel

    tiny = dataclasses.replace(study.preset("tiny"), crops_per_protein=5)
    data = study.build_data(tiny, "sim", seed=0, root=tmp_path)
    held = study.build_heldout(data, per_family=1, crops=3, root=tmp_path)
    genes = list(held.proteins["gene"])
    assert set(genes).isdisjoint(data.classes)
    assert set(held.proteins["family"]) == set(data.proteins["family"].dropna())
    assert len(held.meta) == 3 * len(genes) and held.store.images.shape[1:] == (3, 100, 100)
    assert (held.meta.groupby("protein").size() == 3).all() and held.meta["family"].notna().all()
    # same transform as the training store: protein in [0, 1], distance in [-1, 1], raw nucleus in [0, 1]
    x = np.asarray(held.store.images[:], dtype=np.float32)
    assert x[:, 0].min() >= 0 and x[:, 0].max() <= 1 and np.abs(x[:, 1]).max() <= 1 and x[:, 2].min() >= 0
    again = study.build_heldout(data, per_family=1, crops=3, root=tmp_path)  # the store is reused
    assert again.store.key == held.store.key
    torch.manual_seed(0)
    model = CytoselfModel(tiny.model_config(data.num_classes))
    runs = {("full", 0): SimpleNamespace(model=model), ("no_pretext", 0): SimpleNamespace(model=None)}
    # an untrained model puts (nearly) every position on one code, too few for training spectra of
    # its own: give the training side random spectra over the same codebook
    k = model.config.local_codebook_size
    rng = np.random.default_rng(0)
    training = study.feature_spectra(rng.integers(0, k, (len(data.classes) * 4, 25, 25)), np.repeat(data.classes, 4),
                                     data.proteins.set_index("gene")["family"], k)
    table = study.heldout_orphans(runs, data, held, spectra={0: training})
    assert list(table.columns) == ["protein", "repeat", "family", "best", "r_best", "rank", "families", "images"]
    assert sorted(table["protein"]) == sorted(genes) and (table["repeat"] == 0).all() and (table["images"] == 3).all()
    assert table["rank"].between(1, table["families"]).all()
    assert study.heldout_orphans(runs, data, None).empty
    with pytest.raises(ParameterError, match="no run"):
        study.heldout_orphans(runs, data, held, variant="no_split")
    with pytest.raises(ParameterError, match="crops"):
        study.build_heldout(data, crops=0, root=tmp_path)
    assert study.build_heldout(dataclasses.replace(data, source="real"), root=tmp_path) is None
