"""Evaluation of the CNN and the FCN (chapter 03), as in the paper: per-class Dice-maximising
thresholds chosen on the training split, then the test split's multi-label confusion matrix,
mean per-class accuracy, mean Dice, Table 1 (accuracy by number of labels) and accuracy per cell
line, each beside the paper's number; and the test images the chapter's figures show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from atlaskit.metrics import multilabel as ml
from atlaskit.studies.cnnfcn.data import CLASSES, HPAData
from atlaskit.studies.cnnfcn.training import CnnFcnRun, predict

__all__ = [
    "PAPER", "Evaluation", "evaluate", "threshold_table", "summary_table", "table1", "compare_with_paper",
    "cell_line_table", "confusion_frames", "pick_examples", "pick_heterogeneous",
]

#: The paper's numbers (test set of the Cyto 2017 data).
PAPER: dict[str, Any] = {
    "mean_per_class_accuracy": {"cnn": 0.676, "fcn": 0.696},
    "mean_dice": {"cnn": 0.705, "fcn": 0.707},
    # Table 1: accuracy by the number of labels of an image
    "by_label_count": {"cnn": {1: 0.92, 2: 0.57, 3: 0.25, 4: 0.0}, "fcn": {1: 0.90, 2: 0.59, 3: 0.41, 4: 0.29}},
}


@dataclass
class Evaluation:
    """Thresholds chosen on training data and everything computed on the test split."""

    kind: str
    thresholds: np.ndarray
    train_dice: np.ndarray
    y_test: np.ndarray
    scores: np.ndarray
    pred: np.ndarray
    confusion: ml.MultilabelConfusion
    meta: pd.DataFrame

    @property
    def mean_per_class_accuracy(self) -> float:
        return ml.mean_per_class_accuracy(self.y_test, self.pred)

    @property
    def mean_dice(self) -> float:
        return ml.mean_dice(self.y_test, self.pred)

    @property
    def exact_match(self) -> float:
        return float(ml.exact_match(self.y_test, self.pred).mean())

    def by_label_count(self, max_labels: int = 4) -> pd.DataFrame:
        return ml.accuracy_by_label_count(self.y_test, self.pred, max_labels=max_labels)

    def by_cell_line(self) -> pd.DataFrame:
        return ml.grouped_accuracy(self.y_test, self.pred, self.meta["cell_line"].to_numpy())


def evaluate(trained: CnnFcnRun, data: HPAData, *, step: float = 0.01) -> Evaluation:
    """Per-class Dice-maximising thresholds on the training split, then test-split predictions."""
    train_scores = predict(trained, data.dataset("train", maps=False))
    y = data.y
    thresholds, train_dice = ml.dice_thresholds(y[data.indices("train")], train_scores, step=step)
    test_idx = data.indices("test")
    scores = predict(trained, data.dataset("test", maps=False))
    y_test = y[test_idx]
    pred = ml.apply_thresholds(scores, thresholds)
    return Evaluation(trained.kind, thresholds, train_dice, y_test, scores, pred,
                      ml.multilabel_confusion(y_test, pred, CLASSES), data.meta.iloc[test_idx].reset_index(drop=True))


def threshold_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Per class: each model's threshold (chosen on the training split) and its training Dice."""
    return pd.DataFrame({f"{k.upper()} threshold": ev.thresholds for k, ev in evals.items()}
                        | {f"{k.upper()} train Dice": ev.train_dice for k, ev in evals.items()},
                        index=CLASSES)


def summary_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Paper vs ours: mean per-class accuracy and mean Dice (plus exact match, ours only)."""
    rows = []
    for metric, label in (("mean_per_class_accuracy", "mean per-class accuracy"), ("mean_dice", "mean Dice")):
        row = {"metric": label}
        for kind in ("cnn", "fcn"):
            row[f"{kind.upper()} paper"] = PAPER[metric][kind]
            row[f"{kind.upper()} ours"] = getattr(evals[kind], metric) if kind in evals else np.nan
        rows.append(row)
    row = {"metric": "exact-match accuracy (all images)"}
    for kind in ("cnn", "fcn"):
        row[f"{kind.upper()} paper"] = np.nan
        row[f"{kind.upper()} ours"] = evals[kind].exact_match if kind in evals else np.nan
    rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


def table1(evals: Mapping[str, Evaluation], max_labels: int = 4) -> pd.DataFrame:
    """The paper's Table 1 beside ours: accuracy (exact match) by number of labels per image."""
    any_eval = next(iter(evals.values()))
    base = any_eval.by_label_count(max_labels)
    out = pd.DataFrame({"labels": base["n_labels"], "test images": base["n_images"]})
    for kind in ("cnn", "fcn"):
        if kind not in evals:
            continue
        t = evals[kind].by_label_count(max_labels)
        out[f"{kind.upper()} paper"] = [PAPER["by_label_count"][kind].get(int(c), np.nan) for c in t["n_labels"]]
        out[f"{kind.upper()} ours"] = t["exact_match"].to_numpy()
        out[f"{kind.upper()} ours, all found"] = t["all_found"].to_numpy()
    return out.set_index("labels")


def compare_with_paper(evals: Mapping[str, Evaluation]) -> list[str]:
    """Sentences that say, from this run's numbers, whether each of the paper's comparisons
    (FCN vs CNN) comes out the same way here."""
    cnn, fcn = evals["cnn"], evals["fcn"]

    def lead(a: float, b: float) -> str:
        if not (np.isfinite(a) and np.isfinite(b)):
            return "cannot be compared (no test images)"
        if abs(a - b) < 0.005:
            return "tie"
        return "FCN ahead" if b > a else "CNN ahead"

    out = []
    for metric, label in (("mean_per_class_accuracy", "mean per-class accuracy"), ("mean_dice", "mean Dice")):
        a, b = getattr(cnn, metric), getattr(fcn, metric)
        pa, pb = PAPER[metric]["cnn"], PAPER[metric]["fcn"]
        out.append(f"{label}: CNN {a:.3f}, FCN {b:.3f} ({lead(a, b)}); paper CNN {pa:.3f}, FCN {pb:.3f} "
                   f"({lead(pa, pb)}, by {pb - pa:+.3f})")
    many_c = cnn.y_test.sum(1) >= 3
    n_many = int(many_c.sum())
    if n_many:
        a = int(ml.exact_match(cnn.y_test[many_c], cnn.pred[many_c]).sum())
        b = int(ml.exact_match(fcn.y_test[many_c], fcn.pred[many_c]).sum())
        out.append(f"images with 3 or more labels: exactly right CNN {a} of {n_many}, FCN {b} of {n_many} "
                   f"({lead(a / n_many, b / n_many)}); paper: FCN ahead (3 labels 41 % vs 25 %, 4 labels 29 % vs 0 %)")
    else:
        out.append("no test image has 3 or more labels: the paper's many-label comparison cannot be made here")
    return out


def cell_line_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Exact-match accuracy and mean per-class accuracy per cell line, for both models."""
    parts = []
    for kind, ev in evals.items():
        t = ev.by_cell_line()
        t.insert(0, "model", kind.upper())
        parts.append(t.reset_index().rename(columns={"group": "cell line"}))
    return pd.concat(parts, ignore_index=True)


def confusion_frames(evals: Mapping[str, Evaluation]) -> dict[str, pd.DataFrame]:
    """Row-normalised multi-label confusion matrices (diagonal = per-class accuracy)."""
    return {kind: ev.confusion.to_frame() for kind, ev in evals.items()}


# --------------------------------------------------------------------------- test images for the figures


def pick_examples(evals: Mapping[str, Evaluation], n: int = 2) -> pd.DataFrame:
    """Test images for the successes-and-failures figure: up to ``n`` per outcome
    (both right, only the FCN right, only the CNN right, both wrong; right = exact match),
    preferring images with more labels. Returns ``position`` (in the test split) and ``outcome``."""
    cnn, fcn = evals["cnn"], evals["fcn"]
    ok_c = ml.exact_match(cnn.y_test, cnn.pred)
    ok_f = ml.exact_match(fcn.y_test, fcn.pred)
    n_labels = cnn.y_test.sum(1)
    rows = []
    for name, sel in (("both right", ok_c & ok_f), ("FCN right, CNN wrong", ok_f & ~ok_c),
                      ("CNN right, FCN wrong", ok_c & ~ok_f), ("both wrong", ~ok_c & ~ok_f)):
        idx = np.flatnonzero(sel)
        idx = idx[np.lexsort((idx, -n_labels[idx]))][:n]  # most labels first, then test order
        rows += [{"position": int(i), "outcome": name} for i in idx]
    return pd.DataFrame(rows, columns=["position", "outcome"])


def pick_heterogeneous(data: HPAData, ev: Evaluation, n: int = 3) -> np.ndarray:
    """Test positions of multi-label images, heterogeneous ones first (simulated cell fraction < 1),
    then by number of labels: the images where per-cell heat maps have most to show."""
    meta = ev.meta
    frac = meta["cell_fraction"].fillna(1.0).to_numpy()
    nl = meta["n_labels"].to_numpy()
    cand = np.flatnonzero(nl >= 2)
    if len(cand) < n:
        cand = np.arange(len(meta))
    order = np.lexsort((cand, -nl[cand], frac[cand]))
    return cand[order][:n]

