"""Feature zeroing scored on/off target (the paper's Fig. 5) and the nucleus ↔ cytoplasm band of
the atlas (Fig. 3a), on hand-made inputs whose answers are known."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.cytoself import atlas, effects, spectra


# ------------------------------------------------------------------ feature zeroing
def _spectra(consensus: pd.DataFrame, clusters: dict[int, int]) -> spectra.Spectra:
    bic = SimpleNamespace(clusters=pd.Series(clusters))
    return spectra.Spectra(histograms=consensus, bicluster=bic, spectra=consensus, consensus=consensus,
                           family=pd.Series(dtype=object))


def test_family_clusters_pick_the_most_enriched_cluster():
    # indices 0, 1 → cluster 1; 2 → cluster 2; 3 → cluster 3. Shares per cluster (rows sum to 10):
    # A (0.8, 0.1, 0.1), B (0.2, 0.7, 0.1), C (0.5, 0.4, 0.1) = the mean of the three → no cluster.
    consensus = pd.DataFrame([[4, 4, 1, 1], [1, 1, 7, 1], [2.5, 2.5, 4, 1]], index=["A", "B", "C"],
                             columns=[0, 1, 2, 3], dtype=float)
    table = spectra.family_clusters(_spectra(consensus, {0: 1, 1: 1, 2: 2, 3: 3}))
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "cluster"] == 1 and table.loc["A", "enrichment"] == pytest.approx(0.8 / 0.5)
    assert table.loc["B", "cluster"] == 2 and table.loc["B", "enrichment"] == pytest.approx(0.7 / 0.4)
    assert table.loc["B", "share"] == pytest.approx(0.7)


def test_family_clusters_reject_bad_spectra():
    one = pd.DataFrame([[1.0, 2.0]], index=["A"], columns=[0, 1])
    with pytest.raises(DataError, match="two families"):
        spectra.family_clusters(_spectra(one, {0: 1, 1: 2}))
    two = pd.DataFrame([[1.0, 2.0], [2.0, 1.0]], index=["A", "B"], columns=[0, 1])
    with pytest.raises(DataError, match="no index cluster"):
        spectra.family_clusters(_spectra(two, {0: 1}))


class _FakeModel(torch.nn.Module):
    """Channel 0 of the input is the local representation (D = 1), channel 1 its codes; the
    decoder returns the local representation, so zeroing a code erases exactly its pixels."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(local_size=2, global_upsample_mode="nearest", local_codebook_size=3)

    def forward(self, x):
        q1, idx = x[:, :1], x[:, 1:2].long()
        q2 = torch.zeros(x.shape[0], 1, 1, 1)
        return SimpleNamespace(vq1=SimpleNamespace(quantized=q1, indices=idx), vq2=SimpleNamespace(quantized=q2))

    def decoder1(self, z):
        return z[:, -1:]


def _images():
    # image 0: values 1 2 / 3 4, codes 0 0 / 1 2; image 1: values 1 1 / 1 1, codes 2 2 / 2 2
    x = torch.tensor([[[[1, 2], [3, 4]], [[0, 0], [1, 2]]],
                      [[[1, 1], [1, 1]], [[2, 2], [2, 2]]]], dtype=torch.float32)
    return x


def test_zeroing_changes_hand_computed():
    consensus = pd.DataFrame([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], index=["A", "B"], columns=[0, 1, 2])
    spec = _spectra(consensus, {0: 1, 1: 2, 2: 2})  # A → cluster 1 (code 0), B → cluster 2 (codes 1, 2)
    table = spectra.zeroing_changes(_FakeModel(), _images(), ["p1", "p2"], {"p1": "A", "p2": "B"}, spec,
                                    batch_size=1)
    got = {(r.image, r.zeroed): (r.change, r.on_target) for r in table.itertuples()}
    assert got[(0, "A")][0] == pytest.approx(3 / 10) and got[(0, "A")][1]  # pixels 1 + 2 of 10
    assert got[(0, "B")][0] == pytest.approx(7 / 10) and not got[(0, "B")][1]
    assert got[(1, "A")][0] == 0.0 and not got[(1, "A")][1]  # image 1 uses no code of cluster 1
    assert got[(1, "B")][0] == pytest.approx(1.0) and got[(1, "B")][1]
    assert set(table["cluster"]) == {1, 2} and list(table.columns) == spectra.ZEROING_COLUMNS


def test_zeroing_changes_reject_bad_input():
    consensus = pd.DataFrame([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], index=["A", "B"], columns=[0, 1, 2])
    spec = _spectra(consensus, {0: 1, 1: 2, 2: 2})
    with pytest.raises(DataError, match="2 images"):
        spectra.zeroing_changes(_FakeModel(), _images(), ["p1"], {"p1": "A"}, spec)
    with pytest.raises(DataError, match="no family"):
        spectra.zeroing_changes(_FakeModel(), _images(), ["p1", "p3"], {"p1": "A"}, spec)
    with pytest.raises(DataError, match="zero everywhere"):
        spectra.zeroing_changes(_FakeModel(), _images() * torch.tensor([0.0, 1.0])[None, :, None, None],
                                ["p1", "p2"], {"p1": "A", "p2": "B"}, spec)
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        spectra.zeroing_changes(_FakeModel(), _images()[0], ["p1"], {"p1": "A"}, spec)


def _zeroing_table(on: float, off: float, proteins: int = 6) -> pd.DataFrame:
    """Every protein: one on-target row ``on + jitter`` and two off-target rows ``off``."""
    rows = []
    for p in range(proteins):
        jitter = 0.01 * (p % 3)
        rows.append({"protein": f"p{p}", "zeroed": f"f{p % 2}", "cluster": 1 + p % 2, "change": on + jitter,
                     "on_target": True, "repeat": 0})
        rows += [{"protein": f"p{p}", "zeroed": f"f{1 - p % 2}", "cluster": 2 - p % 2, "change": off,
                  "on_target": False, "repeat": r} for r in (0, 1)]
    return pd.DataFrame(rows)


def test_zeroing_contrast_and_effect():
    assert effects.zeroing_contrast([0.3, 0.1, 0.2, 0.0], [True, False, True, False]) == pytest.approx(0.2)
    assert np.isnan(effects.zeroing_contrast([0.3, 0.1], [True, True]))
    with pytest.raises(ParameterError):
        effects.zeroing_contrast([0.3, 0.1], [True])
    row = effects.zeroing_effect(_zeroing_table(0.3, 0.1), n_boot=300)
    # on: 0.30, 0.31, 0.32 twice each → 0.31; off 0.1 everywhere
    assert row.ours == pytest.approx(0.21) and row.verdict == "reproduced" and "6 proteins" in row.reason
    assert effects.zeroing_effect(_zeroing_table(0.05, 0.2), n_boot=300).verdict == "reversed"
    with pytest.raises(ParameterError, match="missing columns"):
        effects.zeroing_effect(_zeroing_table(0.3, 0.1).drop(columns="protein"))


def test_zeroing_by_family_hand_computed():
    table = _zeroing_table(0.3, 0.1)
    out = spectra.zeroing_by_family(table)
    # f0 is zeroed on target for p0, p2, p4 (0.30, 0.32, 0.31) and off target for p1, p3, p5
    assert out.loc["f0", "on"] == pytest.approx(0.31) and out.loc["f0", "off"] == pytest.approx(0.1)
    assert (out.loc["f0", "cluster"], out.loc["f1", "cluster"]) == ("I", "II")
    assert out.loc["all", "on/off"] == pytest.approx(3.1)
    table.loc[0, "cluster"] = 3  # another repeat chose another cluster for f0
    assert spectra.zeroing_by_family(table).loc["f0", "cluster"] == "I/III"
    with pytest.raises(DataError, match="on-target and off-target"):
        spectra.zeroing_by_family(table[table["on_target"]])
    with pytest.raises(DataError, match="missing columns"):
        spectra.zeroing_by_family(table.drop(columns="change"))


# ------------------------------------------------------------------ the nucleus ↔ cytoplasm band
def test_band_group_from_major_localizations():
    assert atlas.band_group(("nucleoplasm",)) == "nucleus"
    assert atlas.band_group(("nuclear_punctae", "nucleoplasm")) == "nucleus"
    assert atlas.band_group(("cytoplasmic",)) == "cytoplasm"
    assert atlas.band_group(("nucleoplasm", "cytoplasmic")) == "both"
    assert atlas.band_group(("nucleoplasm", "er")) is None and atlas.band_group(("er",)) is None
    assert atlas.band_group(()) is None
    with pytest.raises(DataError, match="unknown"):
        atlas.band_group(("nucleus",))


def test_band_groups_read_the_catalog():
    groups = atlas.band_groups(["PSMA3", "SEM1", "RPS16", "TOMM70", "NOT_A_GENE"])
    assert groups.to_dict() == {"PSMA3": "both", "SEM1": "nucleus", "RPS16": "cytoplasm", "TOMM70": None,
                                "NOT_A_GENE": None}


def test_band_positions_hand_computed():
    # nucleus: n1 at (0, 0) twice, n2 at (0, 2) → centroid (0, 1); cytoplasm: c1 at (4, 1);
    # axis (4, 0): b1 at (1, 5) → t = 1·4 / 16 = 0.25; x (no group) is left out
    features = [[0, 0], [0, 0], [0, 2], [4, 1], [1, 5], [9, 9]]
    proteins = ["n1", "n1", "n2", "c1", "b1", "x"]
    groups = {"n1": "nucleus", "n2": "nucleus", "c1": "cytoplasm", "b1": "both", "x": None}
    out = atlas.band_positions(features, proteins, groups)
    assert list(out.index) == ["b1", "c1", "n1", "n2"]
    assert out["position"].to_dict() == pytest.approx({"b1": 0.25, "c1": 1.0, "n1": 0.0, "n2": 0.0})
    assert out.loc["n1", "images"] == 2 and out.loc["b1", "group"] == "both"


def test_band_positions_reject_bad_input():
    groups = {"n1": "nucleus", "c1": "cytoplasm"}
    with pytest.raises(DataError, match="no protein of the cytoplasm"):
        atlas.band_positions([[0, 0], [1, 1]], ["n1", "n2"], {"n1": "nucleus", "n2": "nucleus"})
    with pytest.raises(DataError, match="coincide"):
        atlas.band_positions([[1, 1], [1, 1]], ["n1", "c1"], groups)
    with pytest.raises(DataError, match=r"\(N, D\)"):
        atlas.band_positions([[0, 0], [1, 1]], ["n1"], groups)


def _band_table(both: float) -> pd.DataFrame:
    rows = []
    for r in (0, 1):
        rows += [{"protein": f"n{i}", "repeat": r, "group": "nucleus", "position": 0.1 * (i - 1)} for i in range(3)]
        rows += [{"protein": f"c{i}", "repeat": r, "group": "cytoplasm", "position": 1 + 0.1 * (i - 1)}
                 for i in range(3)]
        rows += [{"protein": f"b{i}", "repeat": r, "group": "both", "position": both + 0.05 * (i - 1)}
                 for i in range(3)]
    return pd.DataFrame(rows)


def test_band_gap_and_effect():
    groups = ["nucleus", "nucleus", "both", "both", "cytoplasm", "cytoplasm"]
    assert effects.band_gap([0, 0, 0.3, 0.5, 1, 1], groups) == pytest.approx(0.4)  # min(0.4, 0.6)
    assert effects.band_gap([0, 0, 1.1, 1.3, 1, 1], groups) == pytest.approx(-0.2)  # beyond the cytoplasm
    assert np.isnan(effects.band_gap([0, 1], ["nucleus", "cytoplasm"]))
    with pytest.raises(ParameterError):
        effects.band_gap([0, 1], ["nucleus"])
    between = effects.band_effect(_band_table(0.4), n_boot=300)
    assert between.ours == pytest.approx(0.4) and between.verdict == "reproduced"
    assert "3 nucleus, 3 both, 3 cytoplasm" in between.reason
    assert effects.band_effect(_band_table(1.5), n_boot=300).verdict == "reversed"
    few = effects.band_effect(_band_table(0.4), minimum=4)
    assert few.verdict == "not testable" and "3 nucleus, 3 both, 3 cytoplasm" in few.reason


def test_measure_effects_takes_the_zeroing_and_band_tables():
    scores = pd.DataFrame([{"variant": v, "repeat": r, "score": s}
                           for v, ss in {"full": [1.0, 1.1], "no_pretext": [0.3, 0.4]}.items()
                           for r, s in enumerate(ss)])
    history = SimpleNamespace(val=[{"metric_perplexity2": 9.0}], epochs=[1], best_epoch=1)
    runs = {(v, r): SimpleNamespace(history=history) for v in ("full", "no_split") for r in range(2)}
    rows = {r.effect: r for r in effects.measure_effects(runs, scores, pd.DataFrame({"rank": [1, 2]}), 2,
                                                          zeroing=_zeroing_table(0.3, 0.1), band=_band_table(0.4))}
    assert rows[effects.ZEROING_EFFECT].verdict == "reproduced"
    assert rows[effects.BAND_EFFECT].ours == pytest.approx(0.4)
    empty = {r.effect: r for r in effects.measure_effects(runs, scores, pd.DataFrame({"rank": [1, 2]}), 2)}
    assert empty[effects.ZEROING_EFFECT].verdict == empty[effects.BAND_EFFECT].verdict == "not testable"
