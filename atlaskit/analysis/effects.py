"""The effects ledger: each headline effect of a paper, measured in this run with a 95 % interval.

A study declares what its paper found as :class:`Effect` rows — the paper's statement, the
quantity measured here (oriented so that the paper's claim says *positive*, e.g.
``score(full) − score(no_pretext)``), its interval and a verdict that follows from the numbers,
never chosen by hand:

==================  ===========================================================================
``reproduced``      the interval lies entirely on the paper's side of "no effect"
``not significant`` the interval includes "no effect" (the sign of the estimate is shown beside it)
``reversed``        the interval lies entirely on the other side: the data contradict the paper
``not testable``    this run cannot measure it (the reason is given, e.g. "needs real complexes")
==================  ===========================================================================

Intervals come from :func:`bootstrap_interval` (resampling test items, or groups of them such as
proteins) or :func:`repeat_interval` (a t interval over training repeats or seeds, when the
randomness is in training). Every row says which data it ran on: a result on simulated images
tests the method, it is never a biological finding.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import ParameterError

__all__ = ["VERDICTS", "Effect", "verdict", "format_interval", "bootstrap_interval", "repeat_interval",
           "hierarchical_bootstrap_interval",
           "ledger_table", "ledger_display", "write_ledger", "read_ledgers", "verdict_counts"]

VERDICTS = ("reproduced", "not significant", "reversed", "not testable")
COLUMNS = ["effect", "paper", "measure", "ours", "low", "high", "verdict", "reason", "data", "scale", "seed",
           "chapter"]


def verdict(estimate: float, low: float, high: float, *, null: float = 0.0) -> str:
    """The verdict that an estimate and its interval imply for a claim "the effect is > ``null``".

    Parameters
    ----------
    estimate, low, high : float
        The measured effect and its interval, oriented so that the paper's claim is positive.
    null : float
        The value of "no effect" (0 for a difference, 1 for a ratio…).

    Raises
    ------
    ParameterError
        A value is not finite, or ``low > high``.
    """
    numbers = all(isinstance(v, (int, float, np.number)) for v in (estimate, low, high, null))
    if not numbers or not (math.isfinite(estimate) and math.isfinite(null)) or math.isnan(low) or math.isnan(high):
        raise ParameterError(f"verdict needs a finite estimate and an interval, got estimate={estimate!r}, "
                             f"low={low!r}, high={high!r}")
    if low > high:  # (a percentile bootstrap interval need not hold its estimate: not checked)
        raise ParameterError(f"the interval's low end {low!r} is above its high end {high!r}")
    if low > null:
        return "reproduced"
    if high < null:
        return "reversed"
    return "not significant"  # the interval includes no effect, on whichever side the estimate lies


@dataclass(frozen=True)
class Effect:
    """One row of a chapter's ledger.

    Attributes
    ----------
    effect : str
        Short name, e.g. ``"the pretext task organises the atlas (Table 1)"``.
    paper : str
        The paper's statement with its number(s), quoted (never put in ``ours``).
    measure : str
        What ``ours`` is, e.g. ``"score(full) − score(no_pretext)"``; positive means the paper's direction.
    ours, low, high : float or None
        The estimate and its 95 % interval (None when not testable).
    verdict : str
        One of :data:`VERDICTS`, computed by :meth:`measured` or set by :meth:`not_testable`.
    reason : str
        Why a row is not testable, or what limits it (the interval's source, the data).
    data : str
        ``"sim"`` or ``"real"`` (the images, or ``"real"`` where inputs and labels are real).
    """

    effect: str
    paper: str
    measure: str
    ours: float | None
    low: float | None
    high: float | None
    verdict: str
    reason: str = ""
    data: str = "sim"

    @classmethod
    def measured(cls, effect: str, paper: str, measure: str, estimate: float, low: float, high: float, *,
                 null: float = 0.0, reason: str = "", data: str = "sim") -> "Effect":
        """A measured row; its verdict follows from the numbers (:func:`verdict`)."""
        return cls(effect, paper, measure, float(estimate), float(low), float(high),
                   verdict(estimate, low, high, null=null), reason, data)

    @property
    def interval(self) -> str:
        """``ours [low, high]`` with three significant digits (``—`` when not testable)."""
        return format_interval(self.ours, self.low, self.high)

    def summary(self) -> str:
        """One line: the effect, its verdict, and the estimate with its interval (or the reason)."""
        return f"{self.effect}: {self.verdict} ({self.reason if self.ours is None else self.interval})"

    @classmethod
    def not_testable(cls, effect: str, paper: str, reason: str, *, measure: str = "", data: str = "sim") -> "Effect":
        """A row this run cannot measure; ``reason`` says why (and what would make it testable)."""
        if not reason:
            raise ParameterError(f"{effect!r}: a row that is not testable needs its reason")
        return cls(effect, paper, measure, None, None, None, "not testable", reason, data)


def format_interval(ours, low, high) -> str:
    """``"0.123 [0.045, 0.2]"``; missing bounds (an unbounded interval read back from JSON) as ±∞."""
    def number(value, missing: str) -> str:
        return missing if value is None or value != value or abs(value) == math.inf else f"{value:.3g}"

    if ours is None or ours != ours:
        return "—"
    return f"{number(ours, '—')} [{number(low, '−∞')}, {number(high, '∞')}]"


def _blocks(labels_of_rows, n: int, what: str, unit: str = "rows") -> list[np.ndarray]:
    """Row indices of each label (labels in sorted order); ``what`` and ``unit`` name the labels
    and the rows in errors."""
    labels = pd.Series(np.asarray(labels_of_rows))
    if len(labels) != n:
        raise ParameterError(f"{what} has {len(labels)} labels for {n} {unit}")
    return [np.asarray(ix) for ix in labels.groupby(labels, sort=True).indices.values()]


def bootstrap_interval(statistic: Callable[..., float], *arrays: Sequence, n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95, groups: Sequence | None = None,
                       strata: Sequence | None = None) -> tuple[float, float, float]:
    """Estimate and percentile bootstrap interval of ``statistic(*arrays)``.

    Parameters
    ----------
    statistic : callable
        Takes the arrays (rows resampled together) and returns a float.
    *arrays : array-like
        Same length n along axis 0.
    n_boot : int
        Resamples.
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval.
    groups : array-like, optional
        A group label per row (e.g. the protein): whole groups are resampled, so rows of one
        protein never count as independent evidence.
    strata : array-like, optional
        A stratum label per row (e.g. the layer a unit belongs to): rows are resampled within
        each stratum, so every resample keeps the strata's sizes. Not together with ``groups``.

    Returns
    -------
    (estimate, low, high) : floats
        ``estimate`` is the statistic on the data as given.
    """
    if not arrays:
        raise ParameterError("bootstrap_interval needs at least one array")
    data = [np.asarray(a) for a in arrays]
    n = len(data[0])
    if n == 0 or any(len(a) != n for a in data):
        raise ParameterError(f"bootstrap_interval needs arrays of one non-zero length, got {[len(a) for a in data]}")
    if n_boot < 1 or not 0 < level < 1:
        raise ParameterError(f"n_boot must be ≥ 1 and level in (0, 1), got {n_boot!r}, {level!r}")
    if groups is not None and strata is not None:
        raise ParameterError("bootstrap_interval takes groups or strata, not both")
    rng = np.random.default_rng(seed)

    members = _blocks(groups, n, "groups") if groups is not None else [np.array([i]) for i in range(n)]
    layers = _blocks(strata, n, "strata") if strata is not None else None
    estimate = float(statistic(*data))
    values = np.empty(n_boot)
    for b in range(n_boot):
        if layers is not None:
            pick = np.concatenate([rows[rng.integers(0, rows.size, rows.size)] for rows in layers])
        else:
            pick = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        values[b] = statistic(*(a[pick] for a in data))
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ParameterError("the statistic was not finite on any bootstrap resample")
    tail = (1 - level) / 2
    return estimate, float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def hierarchical_bootstrap_interval(values, groups: Sequence, *, n_boot: int = 2000, seed: int = 0,
                                    level: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile interval of per-item values measured once per training repeat.

    A two-level (hierarchical) bootstrap (Saravanan et al. 2020, *Neurons, Behavior, Data
    analysis and Theory*): every resample draws the repeats with replacement, then whole groups
    (the test proteins) with replacement, and averages the drawn values. The interval so
    carries both sources of uncertainty: which network the training happened to produce, and
    which test proteins were drawn. With one repeat it is :func:`bootstrap_interval` of the mean
    with ``groups`` (same seed, same numbers): the training's spread is then not measured.

    Parameters
    ----------
    values : array-like, shape (R, N)
        Value of test item n under training repeat r (e.g. the per-image PSNR difference of two
        generators, each trained R times); the same N items for every repeat.
    groups : array-like, shape (N,)
        A group per item (its protein).
    n_boot, seed, level
        As :func:`bootstrap_interval`.

    Returns
    -------
    (estimate, low, high) : floats
        ``estimate`` is the mean over repeats and items.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.size == 0:
        raise ParameterError(f"hierarchical_bootstrap_interval needs values of shape (repeats, items), got {x.shape}")
    if not np.isfinite(x).all():
        raise ParameterError("hierarchical_bootstrap_interval needs finite values")
    if x.shape[0] == 1:
        return bootstrap_interval(np.mean, x[0], n_boot=n_boot, seed=seed, level=level, groups=groups)
    if n_boot < 1 or not 0 < level < 1:
        raise ParameterError(f"n_boot must be ≥ 1 and level in (0, 1), got {n_boot!r}, {level!r}")
    members = _blocks(groups, x.shape[1], "groups", "items")
    rng = np.random.default_rng(seed)
    n_repeats = x.shape[0]
    draws = np.empty(n_boot)
    for b in range(n_boot):
        picked_repeats = x[rng.integers(0, n_repeats, n_repeats)]  # (R, N)
        items = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        draws[b] = picked_repeats[:, items].mean()
    tail = (1 - level) / 2
    return float(x.mean()), float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def repeat_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t interval over independent repeats (training runs, seeds).

    With one repeat the interval is unbounded (``-inf, inf``): one training run says nothing
    about the spread between runs, and the verdict is then at most "not significant".
    """
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        raise ParameterError(f"repeat_interval needs finite values, got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def ledger_display(table: pd.DataFrame) -> pd.DataFrame:
    """The ledger as a reader sees it: the effect, ours with its interval in one column and the
    verdict first (what a reader looks for), then the paper's statement, the measure and the reason."""
    shown = table.assign(**{"ours [95 % interval]": [format_interval(o, lo, hi) for o, lo, hi in
                                                     zip(table["ours"], table["low"], table["high"])]})
    columns = ["effect", "ours [95 % interval]", "verdict", "paper", "measure", "reason", "data"]
    extra = [c for c in ("chapter", "scale") if c in shown.columns]
    return shown[extra + columns].fillna("")


def ledger_table(effects: Iterable[Effect], **context: Any) -> pd.DataFrame:
    """The ledger as a table (one row per effect), with ``context`` (scale, seed, chapter…) as columns."""
    rows = [{**asdict(e), **context} for e in effects]
    for row in rows:
        if row["verdict"] not in VERDICTS:
            raise ParameterError(f"{row['effect']!r}: unknown verdict {row['verdict']!r}")
    frame = pd.DataFrame(rows)
    return frame[[c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]]


def write_ledger(path: str | os.PathLike, effects: Iterable[Effect], **context: Any) -> Path:
    """Write the ledger as JSON (a list of rows; infinities as null) atomically; returns the path."""
    from atlaskit._atomic import atomic_write

    table = ledger_table(effects, **context)
    rows = json.loads(table.to_json(orient="records"))  # NaN / inf → null
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(rows, fh, indent=1, ensure_ascii=False)
    return path


def read_ledgers(folder: str | os.PathLike) -> pd.DataFrame:
    """Every chapter's rows from ``folder/*.json`` (as :func:`write_ledger` wrote them), in file order."""
    frames = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ParameterError(f"{path}: not a ledger file ({error})") from None
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Rows per chapter and verdict (every verdict a column, zeros included), with a total row."""
    counts = pd.crosstab(table["chapter"], pd.Categorical(table["verdict"], categories=VERDICTS), dropna=False)
    counts.columns = list(VERDICTS)
    counts.loc["all chapters"] = counts.sum()
    return counts
