"""Testing the paper's explanation (chapter 03): recall of both networks against the fraction of
an image's cells that show a class, on fresh simulated fields with per-cell ground truth
(:func:`atlaskit.studies.cnnfcn.data.heterogeneity_data`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError
from atlaskit.metrics import multilabel as ml
from atlaskit.studies.cnnfcn.data import CLASSES, HPAData
from atlaskit.studies.cnnfcn.evaluation import Evaluation
from atlaskit.studies.cnnfcn.training import CnnFcnRun, predict

__all__ = ["heterogeneity_experiment", "HETERO_BINS", "heterogeneity_summary", "heterogeneity_verdict"]


def heterogeneity_experiment(models: Mapping[str, tuple[CnnFcnRun, Evaluation]], hdata: HPAData) -> pd.DataFrame:
    """Recall of every true (image, class) pair against the fraction of the image's cells showing it.

    Parameters
    ----------
    models : {"cnn": (trained, evaluation), "fcn": ...}
        The evaluation supplies the thresholds chosen on the training data.
    hdata : HPAData
        From :func:`heterogeneity_data`.

    Returns
    -------
    DataFrame
        One row per (model, image, true class): ``model, image, class, n_labels, cell_fraction``
        (the simulator's setting), ``cells_fraction`` (the realised fraction of the image's cells
        showing the class), ``score``, ``threshold``, ``found``.
    """
    y = hdata.y
    frac = np.array([[float(v) for v in s.split()] for s in hdata.meta["class_cell_fraction"]])  # (N, 13)
    ds = hdata.dataset(None, maps=False)
    rows = []
    for kind, (trained, ev) in models.items():
        scores = predict(trained, ds)
        pred = ml.apply_thresholds(scores, ev.thresholds)
        img, cls = np.nonzero(y)
        rows.append(pd.DataFrame({
            "model": kind.upper(), "image": img, "class": [CLASSES[c] for c in cls],
            "n_labels": hdata.meta["n_labels"].to_numpy()[img],
            "cell_fraction": hdata.meta["cell_fraction"].to_numpy()[img],
            "cells_fraction": frac[img, cls], "score": scores[img, cls], "threshold": ev.thresholds[cls],
            "found": pred[img, cls],
        }))
    return pd.concat(rows, ignore_index=True)


HETERO_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def heterogeneity_summary(df: pd.DataFrame, bins: Sequence[float] = HETERO_BINS) -> pd.DataFrame:
    """Recall (with a 95 % Wilson interval) per model and bin of the realised cell fraction."""
    d = df.copy()
    labels = [f"{lo:.0%}–{min(hi, 1):.0%}" for lo, hi in zip(bins[:-1], bins[1:])]
    d["bin"] = pd.cut(d["cells_fraction"], list(bins), right=False, labels=labels)
    g = d.groupby(["model", "bin"], observed=True).agg(n=("found", "size"), found=("found", "sum"),
                                                       mean_fraction=("cells_fraction", "mean")).reset_index()
    g["recall"] = g["found"] / g["n"]
    g["low"], g["high"] = ml.wilson_interval(g["found"].to_numpy(), g["n"].to_numpy())
    return g


def heterogeneity_verdict(df: pd.DataFrame, *, split_at: float = 0.5, n_boot: int = 2000, seed: int = 0) -> dict:
    """Does the FCN's recall advantage over the CNN grow when a class is in fewer cells?

    Pairs the two models' outcomes on the same (image, class), and compares the mean
    FCN − CNN recall difference below ``split_at`` (realised fraction of cells) with the one at
    or above it; the 95 % interval of that change comes from a bootstrap over images.

    Returns
    -------
    dict with ``diff_low``, ``diff_high`` (FCN − CNN recall in each group), ``n_low``,
    ``n_high`` (pairs), ``change`` (= diff_low − diff_high), ``ci`` (2-tuple), and ``text``.
    """
    wide = df.pivot_table(index=["image", "class"], columns="model", values="found", aggfunc="first")
    if not {"CNN", "FCN"} <= set(wide.columns):
        raise DataError("the heterogeneity table needs both models")
    frac = df.drop_duplicates(["image", "class"]).set_index(["image", "class"])["cells_fraction"]
    wide = wide.join(frac)
    wide["diff"] = wide["FCN"].astype(float) - wide["CNN"].astype(float)
    low = wide["cells_fraction"] < split_at
    if low.sum() == 0 or (~low).sum() == 0:
        raise DataError(f"no (image, class) pairs on one side of the split at {split_at}")
    d_low, d_high = float(wide.loc[low, "diff"].mean()), float(wide.loc[~low, "diff"].mean())
    images = wide.index.get_level_values("image").to_numpy()
    uniq = np.unique(images)
    by_image = {i: np.flatnonzero(images == i) for i in uniq}
    diff, lowv = wide["diff"].to_numpy(), low.to_numpy()
    rng = np.random.default_rng(seed)
    changes = []
    for _ in range(n_boot):
        idx = np.concatenate([by_image[i] for i in rng.choice(uniq, len(uniq), replace=True)])
        l, h = lowv[idx], ~lowv[idx]
        if l.any() and h.any():
            changes.append(diff[idx][l].mean() - diff[idx][h].mean())
    lo, hi = np.percentile(changes, [2.5, 97.5])
    change = d_low - d_high
    if lo > 0:
        verdict = ("the FCN's advantage is significantly larger when a class is shown by few cells — "
                   "consistent with the paper's explanation")
    elif hi < 0:
        verdict = ("the FCN's advantage is significantly smaller when a class is shown by few cells — "
                   "contrary to the paper's explanation")
    else:
        verdict = ("the 95 % interval of the change includes zero: this run does not show that the FCN gains "
                   "more than the CNN when a class is shown by few cells")
    text = (f"FCN − CNN recall: {d_low:+.3f} when fewer than {split_at:.0%} of the cells show the class "
            f"({int(low.sum())} image-class pairs), {d_high:+.3f} otherwise ({int((~low).sum())} pairs); "
            f"change {change:+.3f} (95 % bootstrap interval {lo:+.3f} to {hi:+.3f}): {verdict}.")
    return {"diff_low": d_low, "diff_high": d_high, "n_low": int(low.sum()), "n_high": int((~low).sum()),
            "change": change, "ci": (float(lo), float(hi)), "text": text}

