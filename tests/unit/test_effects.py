"""The effects ledger: verdicts from numbers, intervals on hand-computed cases, the JSON round trip."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from atlaskit.analysis import effects as fx
from atlaskit.errors import ParameterError


@pytest.mark.parametrize("estimate, low, high, null, expected", [
    (0.10, 0.02, 0.18, 0.0, "reproduced"),
    (0.10, -0.02, 0.18, 0.0, "not significant"),
    (-0.05, -0.09, -0.01, 0.0, "reversed"),
    (-0.05, -0.09, 0.03, 0.0, "not significant"),  # the wrong side, but not clear of zero
    (0.0, -0.1, 0.1, 0.0, "not significant"),
    (1.30, 1.05, 1.6, 1.0, "reproduced"),  # a ratio: no effect is 1
    (1.30, 0.95, 1.6, 1.0, "not significant"),
    (0.2, -math.inf, math.inf, 0.0, "not significant"),  # one repeat: nothing is significant
    (-0.2, -math.inf, math.inf, 0.0, "not significant"),
])
def test_verdict_follows_from_the_numbers(estimate, low, high, null, expected):
    assert fx.verdict(estimate, low, high, null=null) == expected


@pytest.mark.parametrize("estimate, low, high", [(math.nan, 0, 1), (math.inf, 0, 1), (0.1, math.nan, 1), ("0.1", 0, 1)])
def test_verdict_needs_a_finite_estimate(estimate, low, high):
    with pytest.raises(ParameterError, match="finite estimate"):
        fx.verdict(estimate, low, high)


def test_verdict_rejects_a_disordered_interval():
    with pytest.raises(ParameterError, match="low end 0.3 is above its high end 0.1"):
        fx.verdict(0.2, 0.3, 0.1)


def test_measured_and_not_testable_rows():
    row = fx.Effect.measured("network beats forest", "87 % vs 75 %", "acc(net) − acc(forest)", 0.05, 0.01, 0.09)
    assert row.verdict == "reproduced" and row.data == "sim"
    assert row.summary() == "network beats forest: reproduced (0.05 [0.01, 0.09])"
    assert fx.format_interval(0.2, -math.inf, None) == "0.2 [−∞, ∞]"
    gap = fx.Effect.not_testable("complexes cluster", "Fig. 3", "needs real protein complexes")
    assert (gap.verdict, gap.ours, gap.low) == ("not testable", None, None)
    assert gap.summary() == "complexes cluster: not testable (needs real protein complexes)"
    with pytest.raises(ParameterError, match="needs its reason"):
        fx.Effect.not_testable("x", "y", "")


def test_bootstrap_interval_of_a_constant_is_the_constant():
    est, low, high = fx.bootstrap_interval(np.mean, np.full(20, 3.0), n_boot=50)
    assert (est, low, high) == (3.0, 3.0, 3.0)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.normal(0.5, 1.0, 40)
    large = rng.normal(0.5, 1.0, 4000)
    e1, l1, h1 = fx.bootstrap_interval(np.mean, small, n_boot=500, seed=0)
    e2, l2, h2 = fx.bootstrap_interval(np.mean, large, n_boot=500, seed=0)
    assert l1 < e1 < h1 and l2 < 0.5 < h2
    assert (h2 - l2) < (h1 - l1) / 5  # ~ 1/sqrt(100) narrower
    # the standard error of a mean of 4000 N(0, 1) values is 0.0158: a 95 % interval is ~0.062 wide
    assert 0.05 < h2 - l2 < 0.075


def test_bootstrap_by_group_resamples_whole_groups():
    """Two proteins, each with many identical rows: resampling rows would give a tight interval,
    resampling proteins only ever sees the two protein means (0 and 1)."""
    values = np.r_[np.zeros(50), np.ones(50)]
    groups = np.r_[["a"] * 50, ["b"] * 50]
    _, low, high = fx.bootstrap_interval(np.mean, values, groups=groups, n_boot=400, seed=0)
    assert (low, high) == (0.0, 1.0)
    _, low_rows, high_rows = fx.bootstrap_interval(np.mean, values, n_boot=400, seed=0)
    assert 0.3 < low_rows < high_rows < 0.7


def test_bootstrap_by_stratum_keeps_the_strata_sizes():
    """Two layers of different sizes: every resample keeps 3 'a' rows and 5 'b' rows, so a
    statistic that needs both strata is always defined."""
    values = np.r_[[1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0]]
    layer = np.r_[["a"] * 3, ["b"] * 5]
    seen = []

    def gap(v, lab):
        seen.append(((lab == "a").sum(), (lab == "b").sum()))
        return float(np.median(v[lab == "b"]) - np.median(v[lab == "a"]))

    assert fx.bootstrap_interval(gap, values, layer, strata=layer, n_boot=50) == (2.0, 2.0, 2.0)
    assert set(seen) == {(3, 5)}
    with pytest.raises(ParameterError, match="groups or strata, not both"):
        fx.bootstrap_interval(gap, values, layer, strata=layer, groups=layer)


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ParameterError, match="one non-zero length"):
        fx.bootstrap_interval(np.mean, np.ones(3), np.ones(4))
    with pytest.raises(ParameterError, match="groups has 2 labels for 3 rows"):
        fx.bootstrap_interval(np.mean, np.ones(3), groups=["a", "b"])


def test_repeat_interval_is_the_t_interval():
    # mean 2, sd 1 over 3 repeats: half-width t(0.975, 2) * 1 / sqrt(3) = 4.3027 / 1.7321 = 2.4841
    mean, low, high = fx.repeat_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(2.48414, abs=1e-4) and mean - low == pytest.approx(2.48414, abs=1e-4)
    assert fx.repeat_interval([0.7]) == (0.7, -math.inf, math.inf)


def test_ledger_json_round_trip_and_counts(tmp_path):
    rows = [
        fx.Effect.measured("a", "p", "m", 0.1, 0.05, 0.2),
        fx.Effect.measured("b", "p", "m", -0.1, -0.2, -0.05),
        fx.Effect.not_testable("c", "p", "needs real images"),
    ]
    fx.write_ledger(tmp_path / "01_x.json", rows, chapter="01_x", scale="ci", seed=0)
    fx.write_ledger(tmp_path / "02_y.json", rows[:1], chapter="02_y", scale="ci", seed=0)
    saved = json.loads((tmp_path / "01_x.json").read_text())
    assert [r["verdict"] for r in saved] == ["reproduced", "reversed", "not testable"]
    assert saved[2]["ours"] is None and saved[0]["chapter"] == "01_x" and saved[0]["scale"] == "ci"
    table = fx.read_ledgers(tmp_path)
    counts = fx.verdict_counts(table)
    assert counts.loc["01_x"].tolist() == [1, 0, 1, 1]
    assert counts.loc["all chapters"].tolist() == [2, 0, 1, 1]


def test_read_ledgers_names_a_broken_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ParameterError, match="bad.json: not a ledger file"):
        fx.read_ledgers(tmp_path)


def test_chapter_ledger_writes_json_and_the_book_page_gathers_it(tmp_path, monkeypatch):
    from atlaskit import book, chapter

    monkeypatch.setenv("ATLASKIT_EFFECTS", str(tmp_path / "effects"))
    run = chapter.ChapterRun("07_demo", "ci", "sim", None, 3, "cpu", {})
    rows = [fx.Effect.measured("a | b", "paper says 0.9", "x − y", 0.1, 0.05, 0.2),
            fx.Effect.not_testable("c", "Fig. 2", "needs real images")]
    shown = chapter.ledger(run, rows).data
    assert "needs real images" in chapter.ledger(run, rows).to_html()  # whole statements, not cut
    assert list(shown.index) == ["a | b", "c"] and shown.loc["c", "verdict"] == "not testable"
    saved = json.loads((tmp_path / "effects" / "07_demo.json").read_text())
    assert {r["seed"] for r in saved} == {3} and {r["chapter"] for r in saved} == {"07_demo"}
    page = book.write_ledger_table(tmp_path / "page.md").read_text()
    assert "| 07_demo" in page and "0.1 [0.05, 0.2]" in page and "a \\| b" in page  # pipes escaped
    assert shown.loc["a | b", "ours [95 % interval]"] == "0.1 [0.05, 0.2]" and shown.loc["c", "ours [95 % interval]"] == "—"
    assert "needs real images" in page
    empty = book.write_ledger_table(tmp_path / "empty.md", effects=tmp_path / "none").read_text()
    assert "No chapter has written its ledger yet" in empty


def test_hierarchical_bootstrap_with_one_repeat_is_the_group_bootstrap():
    values = np.array([[0.5, 1.0, 2.0, 4.0, 3.0, 0.0]])
    groups = ["a", "a", "b", "c", "c", "d"]
    assert fx.hierarchical_bootstrap_interval(values, groups, n_boot=300, seed=3) == fx.bootstrap_interval(
        np.mean, values[0], n_boot=300, seed=3, groups=groups)


def test_hierarchical_bootstrap_carries_the_spread_between_repeats():
    # every item of repeat r has value r (0, 1, 2): only the repeats vary. The resampled mean is
    # the mean of 3 draws from {0, 1, 2}: P(sum = 0) = 1/27 < 5 % < P(sum ≤ 1) = 4/27, so the
    # 5 % quantile (90 % interval) is 1/3 and, by symmetry, the 95 % quantile 5/3
    values = np.repeat(np.arange(3.0)[:, None], 8, axis=1)
    est, low, high = fx.hierarchical_bootstrap_interval(values, np.arange(8) // 2, n_boot=4000, seed=0, level=0.9)
    assert est == 1.0 and low == pytest.approx(1 / 3) and high == pytest.approx(5 / 3)
    # identical repeats: only the test items vary, so the interval is the one-repeat interval's
    same = np.repeat(np.array([[1.0, 2.0, 3.0, 4.0]]), 3, axis=0)
    e1, l1, h1 = fx.hierarchical_bootstrap_interval(same, [0, 0, 1, 1], n_boot=2000, seed=1)
    assert e1 == 2.5 and l1 == pytest.approx(1.5) and h1 == pytest.approx(3.5)


@pytest.mark.parametrize("values, groups, match", [
    (np.zeros(4), [0, 1, 2, 3], "shape"),
    (np.zeros((2, 0)), [], "shape"),
    (np.array([[1.0, np.nan], [1.0, 2.0]]), [0, 1], "finite"),
    (np.zeros((2, 3)), [0, 1], "3 items"),
])
def test_hierarchical_bootstrap_refuses_bad_input(values, groups, match):
    with pytest.raises(ParameterError, match=match):
        fx.hierarchical_bootstrap_interval(values, groups)
