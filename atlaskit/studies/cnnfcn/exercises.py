"""The exercises of chapter 03: one threshold for every class, the pooling of the FCN heat maps,
the parameters of the FCN targets, and the class the FCN misses most often."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import multilabel as ml
from atlaskit.models.cnnfcn import fcn_targets
from atlaskit.studies.cnnfcn.data import HPAData, HPADataset
from atlaskit.studies.cnnfcn.training import CnnFcnRun

__all__ = ["threshold_comparison", "POOLINGS", "heatmap_confidences", "pooling_table", "target_variants",
           "most_missed"]


def threshold_comparison(y_true, y_score, class_thresholds, global_thresholds: Sequence[float] = (0.3, 0.5, 0.7)
                         ) -> pd.DataFrame:
    """Test scores of per-class thresholds beside one global threshold for every class.

    Parameters
    ----------
    y_true : array (N, K) of 0/1
        Test labels.
    y_score : array (N, K) in [0, 1]
        Test confidences.
    class_thresholds : array (K,)
        Per-class thresholds (the chapter's, chosen on the training data).
    global_thresholds : sequence of float
        Thresholds in [0, 1], each applied to every class.

    Returns
    -------
    DataFrame
        One row per rule (``"per class"``, then ``"global 0.3"`` …), with ``mean Dice``,
        ``mean per-class accuracy``, ``exact match`` (fraction of images) and
        ``labels per image`` (mean number of predicted labels).
    """
    y = np.asarray(y_true)
    k = np.shape(y)[1] if np.ndim(y) == 2 else 0
    rules = {"per class": np.asarray(class_thresholds, dtype=np.float64)}
    for t in global_thresholds:
        if isinstance(t, bool) or not 0 <= float(t) <= 1:
            raise ParameterError(f"global thresholds must lie in [0, 1], got {t!r}")
        rules[f"global {float(t):g}"] = np.full(k, float(t))
    rows = {}
    for name, th in rules.items():
        pred = ml.apply_thresholds(y_score, th)
        rows[name] = {"mean Dice": ml.mean_dice(y, pred),
                      "mean per-class accuracy": ml.mean_per_class_accuracy(y, pred),
                      "exact match": float(ml.exact_match(y, pred).mean()),
                      "labels per image": float(pred.sum(1).mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("thresholds")


#: Ways of turning an FCN heat map (..., h, w) into one confidence per class.
POOLINGS = {"max": lambda hm: hm.amax(dim=(-2, -1)), "mean": lambda hm: hm.mean(dim=(-2, -1))}


def heatmap_confidences(trained: CnnFcnRun, data: HPAData, split: str, poolings: Sequence[str] = ("max", "mean"),
                        *, max_images: int | None = None, batch_size: int = 128) -> dict[str, np.ndarray]:
    """FCN confidences (n, 13) of the images of ``split`` under several poolings of its heat maps.

    ``"max"`` is the paper's pooling and gives exactly :func:`predict`'s confidences (the same
    batches and operations); ``"mean"`` averages each sigmoid heat map instead. ``max_images``
    keeps the first that many images of the split (all by default).
    """
    if trained.kind != "fcn":
        raise ParameterError("pooled confidences come from the FCN's heat maps")
    unknown = [q for q in poolings if q not in POOLINGS]
    if unknown or not poolings:
        raise ParameterError(f"poolings must be among {sorted(POOLINGS)}, got {list(poolings)!r}")
    if max_images is not None and (isinstance(max_images, bool) or int(max_images) < 1):
        raise ParameterError(f"max_images must be a positive integer or None, got {max_images!r}")

    def fn(model, batch):
        hm = model.heatmaps(batch[0])  # (b, 13, h, w) sigmoid maps
        return {q: POOLINGS[q](hm) for q in poolings}

    dataset = data.dataset(split, maps=False)
    if max_images is not None:
        dataset = HPADataset(dataset.store, dataset.indices[:max_images], dataset.labels[:max_images])
    out = trained.predict(dataset, fn, batch_size=batch_size)
    return {q: np.clip(out[q].numpy().astype(np.float64), 0.0, 1.0) for q in poolings}


def pooling_table(y_train, train_conf: Mapping[str, np.ndarray], y_test, test_conf: Mapping[str, np.ndarray],
                  *, step: float = 0.01) -> pd.DataFrame:
    """The chapter's evaluation repeated for each pooling of the FCN heat maps.

    For each pooling: per-class Dice-maximising thresholds on the training confidences
    (:func:`atlaskit.metrics.multilabel.dice_thresholds`), applied to the test confidences.

    Parameters
    ----------
    y_train, y_test : arrays (n, K) of 0/1
    train_conf, test_conf : mapping pooling name -> array (n, K) in [0, 1]
        The same pooling names in both (e.g. from :func:`heatmap_confidences`).

    Returns
    -------
    DataFrame
        One row per pooling with ``mean per-class accuracy``, ``mean Dice`` (test) and
        ``mean threshold``.
    """
    if set(train_conf) != set(test_conf) or not train_conf:
        raise DataError(f"train and test confidences must have the same poolings, got {sorted(train_conf)} "
                        f"and {sorted(test_conf)}")
    rows = {}
    for q in train_conf:
        th, _ = ml.dice_thresholds(y_train, train_conf[q], step=step)
        pred = ml.apply_thresholds(test_conf[q], th)
        rows[q] = {"mean per-class accuracy": ml.mean_per_class_accuracy(y_test, pred),
                   "mean Dice": ml.mean_dice(y_test, pred), "mean threshold": float(th.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("pooling")


def target_variants(data: HPAData, variants: Mapping[str, Mapping[str, float]], split: str = "train",
                    max_images: int = 256) -> pd.DataFrame:
    """How FCN target maps change with their parameters, on the first ``max_images`` of ``split``.

    Parameters
    ----------
    data : HPAData
    variants : mapping name -> parameters
        Each overrides some of the preset's target parameters (``sigma``, ``threshold``,
        ``dilation``; also ``cover``, default 0) for :func:`atlaskit.models.cnnfcn.fcn_targets`;
        ``{}`` gives the chapter's maps.
    split : str
    max_images : int

    Returns
    -------
    DataFrame
        One row per variant with its ``sigma``, ``threshold``, ``dilation``, ``cover``,
        ``empty maps`` (fraction of images whose map has no pixel on) and ``map coverage``
        (mean fraction of heat-map pixels on).
    """
    allowed = {"sigma", "threshold", "dilation", "cover"}
    idx = data.indices(split)[:max_images]
    if len(idx) == 0:
        raise DataError(f"split {split!r} has no images")
    protein = np.asarray(data.store.images[idx, 0], dtype=np.float32) / 255.0  # (n, S, S)
    rows = {}
    for name, over in variants.items():
        bad = set(over) - allowed
        if bad:
            raise ParameterError(f"variant {name!r}: unknown target parameters {sorted(bad)}")
        params = {**data.preset.target_params, "cover": 0.0, **over}
        maps = fcn_targets(protein, np.ones((len(idx), 1)), data.preset.heatmap_size, **params)[:, 0] > 0
        rows[name] = {**params, "empty maps": float((~maps.any(axis=(1, 2))).mean()),
                      "map coverage": float(maps.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


def most_missed(confusion: ml.MultilabelConfusion, *, min_support: int = 5, top: int = 3) -> dict[str, Any]:
    """The class found least often and the classes predicted instead when it is missed.

    Parameters
    ----------
    confusion : MultilabelConfusion
        A multi-label confusion matrix (``Evaluation.confusion``).
    min_support : int
        Only classes with at least this many test images compete (all present classes when none
        has that many), so that a class seen once does not win by chance.
    top : int
        How many of the classes predicted instead to return.

    Returns
    -------
    dict
        ``index``, ``class``, ``accuracy`` (per-class accuracy), ``support`` (test images with the
        class), ``missed`` (images in which it was missed), ``missed_without_fp`` (missed with no
        false positive in the image) and ``confused_with``: a Series, class name -> rate
        (false-positive hits per image with the class), the ``top`` largest nonzero entries of its
        row. Ties in accuracy go to the class with more test images, then to the first class.
    """
    support = np.asarray(confusion.support)
    acc = confusion.per_class_accuracy
    present = np.flatnonzero(support > 0)
    if len(present) == 0:
        raise DataError("no class is present in the confusion matrix")
    cand = present[support[present] >= min_support]
    if len(cand) == 0:
        cand = present
    k = int(cand[np.lexsort((cand, -support[cand], acc[cand]))[0]])
    names = list(confusion.classes) if confusion.classes is not None else [str(j) for j in range(len(support))]
    row = confusion.rates[k].copy()
    row[k] = 0.0
    order = [j for j in np.argsort(-row, kind="stable") if row[j] > 0][:top]
    return {"index": k, "class": names[k], "accuracy": float(acc[k]), "support": int(support[k]),
            "missed": int(support[k] - confusion.counts[k, k]),
            "missed_without_fp": int(confusion.missed_without_fp[k]),
            "confused_with": pd.Series({names[j]: float(row[j]) for j in order}, dtype=float, name="rate")}

