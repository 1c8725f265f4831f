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
    "PAPER", "Evaluation", "evaluate", "evaluate_fresh", "threshold_table", "summary_table",
    "summary_display", "SUMMARY_ROWS",
    "calibration_table",
    "table1", "compare_with_paper",
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


def evaluate_fresh(trained: CnnFcnRun, ev: Evaluation, fresh: HPAData) -> Evaluation:
    """Score every field of ``fresh`` (e.g. :func:`label_count_data`) with the thresholds ``ev``
    chose on the training split: the same model and decision rule, new test images."""
    scores = predict(trained, fresh.dataset(None, maps=False))
    y = fresh.y
    pred = ml.apply_thresholds(scores, ev.thresholds)
    return Evaluation(trained.kind, ev.thresholds, ev.train_dice, y, scores, pred,
                      ml.multilabel_confusion(y, pred, CLASSES), fresh.meta.reset_index(drop=True))


def threshold_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Per class: each model's threshold (chosen on the training split) and its training Dice."""
    return pd.DataFrame({f"{k.upper()} threshold": ev.thresholds for k, ev in evals.items()}
                        | {f"{k.upper()} train Dice": ev.train_dice for k, ev in evals.items()},
                        index=CLASSES)


#: The rows of :func:`summary_table`: label → statistic of (y_true, y_pred) over test images.
SUMMARY_ROWS = {
    "mean per-class accuracy": ml.mean_per_class_accuracy,
    "mean Dice (= macro-F1)": ml.mean_dice,
    "exact match": lambda y, p: float(ml.exact_match(y, p).mean()),
    "labels per image": lambda y, p: float(ml.labels_per_image(p).mean()),
}
_PAPER_ROWS = {"mean per-class accuracy": "mean_per_class_accuracy", "mean Dice (= macro-F1)": "mean_dice"}


def summary_table(evals: Mapping[str, Evaluation], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paper vs ours, each of ours with a 95 % bootstrap interval over test images.

    Rows: mean per-class accuracy and mean Dice (the paper's two numbers; mean Dice over classes
    is the macro-F1), exact match (not reported by the paper) and the mean number of labels
    predicted per image, beside the true number (column ``truth``): mean per-class accuracy is a
    per-class recall, so a model that predicts more labels than images carry gains on it — the
    labels per image show whether that is happening.
    """
    from atlaskit.analysis.effects import bootstrap_interval

    kinds = [k for k in ("cnn", "fcn") if k in evals]
    y_true = evals[kinds[0]].y_test
    rows = np.arange(len(y_true))
    table = {}
    for label, statistic in SUMMARY_ROWS.items():
        row = {}
        for kind in ("cnn", "fcn"):
            paper_key = _PAPER_ROWS.get(label)
            row[f"{kind.upper()} paper"] = PAPER[paper_key][kind] if paper_key else np.nan
            if kind not in evals:
                row.update({f"{kind.upper()} ours": np.nan, f"{kind.upper()} low": np.nan, f"{kind.upper()} high": np.nan})
                continue
            ev = evals[kind]
            est, low, high = bootstrap_interval(lambda ix: statistic(ev.y_test[ix], ev.pred[ix]), rows,
                                                n_boot=n_boot, seed=seed)
            row.update({f"{kind.upper()} ours": est, f"{kind.upper()} low": low, f"{kind.upper()} high": high})
        row["truth"] = float(ml.labels_per_image(y_true).mean()) if label == "labels per image" else np.nan
        table[label] = row
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "metric"
    return out


def summary_display(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`summary_table` for reading: each of ours as ``estimate [low, high]``, the paper's
    numbers beside them, and a blank where a number does not exist (the paper reports no exact
    match; the truth has a labels-per-image only)."""
    def num(v) -> str:
        return "" if pd.isna(v) else f"{v:.{digits}f}"

    out = pd.DataFrame(index=summary.index)
    for kind in ("CNN", "FCN"):
        out[f"{kind} paper"] = summary[f"{kind} paper"].map(num)
        out[f"{kind} ours [95 % interval]"] = [
            "" if pd.isna(e) else f"{num(e)} [{num(lo)}, {num(hi)}]"
            for e, lo, hi in zip(summary[f"{kind} ours"], summary[f"{kind} low"], summary[f"{kind} high"])]
    out["truth"] = summary["truth"].map(num)
    return out


def calibration_table(evals: Mapping[str, Evaluation], n_bins: int = 10) -> pd.DataFrame:
    """Reliability of each model's confidences on the test split (every image-class pair), one
    row per model and confidence bin, with the expected calibration error per model."""
    parts = []
    for kind, ev in evals.items():
        t = ml.reliability(ev.y_test, ev.scores, n_bins)
        t.insert(0, "model", kind.upper())
        t["ece"] = ml.expected_calibration_error(ev.y_test, ev.scores, n_bins)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


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
    truth = float(cnn.y_test.sum(1).mean())
    lpi = {k: float(ev.pred.sum(1).mean()) for k, ev in (("CNN", cnn), ("FCN", fcn))}
    more = max(lpi, key=lpi.get)
    out.append(f"labels per image: CNN {lpi['CNN']:.2f}, FCN {lpi['FCN']:.2f}, truth {truth:.2f}"
               + (f" — the {more} predicts {lpi[more] / truth:.1f}× the true number, which raises its mean per-class "
                  "accuracy (a per-class recall) without making it more right; Dice and exact match penalise it"
                  if lpi[more] > 1.25 * truth else ""))
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


def cell_line_table(evals: Mapping[str, Evaluation], train_lines=None) -> pd.DataFrame:
    """Exact-match accuracy and mean per-class accuracy per cell line, for both models; with
    ``train_lines`` (the line of every training image) also each line's number of training images."""
    parts = []
    for kind, ev in evals.items():
        t = ev.by_cell_line()
        t.insert(0, "model", kind.upper())
        parts.append(t.reset_index().rename(columns={"group": "cell line"}))
    out = pd.concat(parts, ignore_index=True)
    if train_lines is not None:
        counts = pd.Series(train_lines).value_counts()
        out.insert(2, "training images", out["cell line"].map(counts).fillna(0).astype(int))
    return out


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

