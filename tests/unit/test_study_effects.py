"""The studies' ledger rows on hand-made inputs whose effects are known."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from atlaskit.studies.cnnfcn import effects as cnnfcn_effects
from atlaskit.studies.cytoself import effects as cytoself_effects
from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.effects import classifier_vs_majority
from atlaskit.studies.deepyeast import effects as deepyeast_effects


# ------------------------------------------------------------------ cytoself
def _scores(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "repeat": r, "score": s} for v, ss in values.items() for r, s in enumerate(ss)])


def test_score_gap_is_a_t_interval_over_paired_repeats():
    # per-repeat gaps 1.0, 1.2, 0.8: mean 1.0, sd 0.2, half-width t(0.975, 2) * 0.2 / sqrt(3) = 0.4968
    scores = _scores({"full": [1.5, 1.6, 1.3], "no_pretext": [0.5, 0.4, 0.5]})
    row = cytoself_effects.score_gap(scores, "no_pretext", effect="e", paper="p")
    assert row.ours == pytest.approx(1.0) and row.high - row.ours == pytest.approx(0.49683, abs=1e-4)
    assert row.verdict == "reproduced" and "3 training repeats" in row.reason


def test_the_full_model_is_compared_with_each_ablation_separately():
    scores = _scores({"full": [1.0, 1.1, 0.9], "no_pretext": [0.3, 0.3, 0.4], "no_split": [1.0, 1.2, 0.8],
                      "no_nucleus": [0.5, 0.6, 0.4], "no_distance": [2.0, 2.1, 1.9]})
    history = SimpleNamespace(val=[{"metric_perplexity2": 90.0}], epochs=[1], best_epoch=1)
    low_ppl = SimpleNamespace(val=[{"metric_perplexity2": 30.0}], epochs=[1], best_epoch=1)
    runs = {(v, r): SimpleNamespace(history=history if v == "full" else low_ppl)
            for v in ("full", "no_split") for r in range(3)}
    loo = pd.DataFrame({"rank": [1, 1, 2, 5]})
    rows = {r.effect: r for r in cytoself_effects.measure_effects(runs, scores, loo, 4)}
    verdicts = {name.split(" (")[0]: row.verdict for name, row in rows.items()}
    split = rows["split quantization keeps more of the global codebook in use (Fig. 1c)"]
    assert (split.ours, split.low, split.verdict) == (60.0, 60.0, "reproduced")  # the same gap in every repeat
    assert verdicts["the full model beats the variant without the nucleus channel"] == "reproduced"
    assert verdicts["the full model beats the variant without split quantization"] == "not significant"
    assert verdicts["the full model beats the variant without the nucleus distance transform"] == "reversed"
    spectra = rows["the feature spectra cluster by localization family (Fig. 4)"]
    assert spectra.ours == pytest.approx(0.5 - 0.25)  # 2 of 4 first, chance 1/4
    assert rows[cytoself_effects.ORPHAN_EFFECT].verdict == "not testable"  # no held-out proteins given
    assert rows["zeroing a family's feature cluster removes its pattern from reconstructions (Fig. 5)"].verdict \
        == "not testable"


# ------------------------------------------------------------------ deepyeast
def test_network_vs_forest_and_the_quality_filter_on_known_predictions():
    proteins = np.repeat(np.arange(20), 5)
    y = np.zeros(100, int)
    network = np.where(np.arange(100) % 10 == 0, 1, 0)  # 90 % right
    forest = np.where(np.arange(100) % 2 == 0, 1, 0)  # 50 % right
    row = deepyeast_effects.network_vs_forest(y, network, forest, proteins, n_boot=300)
    assert row.ours == pytest.approx(0.4) and row.verdict == "reproduced"
    keep = network == 0  # a filter that drops exactly the wrong calls
    gain = deepyeast_effects.quality_filter_gain(y, network, keep, proteins, n_boot=300)
    assert gain.ours == pytest.approx(0.1) and gain.verdict == "reproduced"


def test_protein_calls_beat_cells_weighting_each_protein_once():
    proteins = np.array(["a", "a", "a", "a", "b", "b"])
    y = np.zeros(6, int)
    pred = np.array([0, 0, 0, 1, 0, 1])  # cells: 4 of 6 right
    calls = pd.DataFrame({"protein": ["a", "b"], "correct": [True, False]})  # proteins: 1 of 2 right
    row = deepyeast_effects.protein_vs_cell(y, pred, proteins, calls, n_boot=200)
    assert row.ours == pytest.approx(0.5 - 4 / 6)


def test_transfer_rows_pair_the_training_subsets():
    curves = pd.DataFrame([{"features": f, "n_per_class": n, "repeat": r, "accuracy": acc}
                           for r in range(3) for n in (1, 3, 10)
                           for f, acc in (("net", 0.6 + 0.01 * r), ("hand-crafted", 0.4), ("conv1_1", 0.3),
                                          ("conv3_4", 0.5 + 0.02 * r))])
    small = deepyeast_effects.transfer_small_n(curves, learned="net")
    assert small.ours == pytest.approx(0.21) and "1, 3 images per class" in small.measure
    deep = deepyeast_effects.deep_vs_early_layers(curves)
    assert deep.ours == pytest.approx(0.22) and deep.verdict == "reproduced"


# ------------------------------------------------------------------ deepgps
def test_classifier_vs_majority_pairs_the_same_proteins():
    genes = np.array([f"g{i}" for i in range(40)])
    y = np.r_[np.zeros(30, int), np.ones(10, int)]
    perfect = np.eye(2)[y]
    majority = np.tile([1.0, 0.0], (40, 1))
    model = BaselineResult("model", genes, y, perfect, 100)
    row = classifier_vs_majority(model, BaselineResult("majority class", genes[::-1], y[::-1], majority, 100),
                                 n_boot=300)
    assert row.ours == pytest.approx(0.25) and row.verdict == "reproduced" and row.data == "real"


# ------------------------------------------------------------------ cnnfcn
def test_cnnfcn_rows_are_fcn_minus_cnn_on_the_same_images():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1], [1, 1, 1], [0, 0, 1], [1, 0, 0]] * 5, bool)
    meta = pd.DataFrame({"cell_line": ["A"] * 15 + ["B"] * 15})
    fcn = SimpleNamespace(y_test=y, pred=y.copy(), meta=meta)
    cnn_pred = y.copy()
    cnn_pred[y.sum(1) == 3] = [1, 0, 0]  # the CNN misses the many-label images
    cnn = SimpleNamespace(y_test=y, pred=cnn_pred, meta=meta)
    rows = {r.effect.split(" (")[0]: r for r in cnnfcn_effects.measure_effects({"cnn": cnn, "fcn": fcn}, None,
                                                                               n_boot=200)}
    assert rows["the FCN matches or beats the CNN on mean per-class accuracy"].ours > 0
    grows = rows["the FCN's advantage grows with the number of labels"]
    assert grows.ours == pytest.approx(1.0) and grows.verdict == "reproduced"  # 100 % vs 0 % on 3 labels, tie on 1
    assert rows["cell lines with few training images score lower"].verdict == "not testable"  # no training lines given
    assert rows["the FCN gains most where a class is shown by few cells"].verdict == "not testable"
