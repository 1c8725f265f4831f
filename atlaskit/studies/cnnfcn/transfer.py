"""Transfer learning in the CNN-vs-FCN study (chapter 03): the analogue of the paper's fine-tuned,
ImageNet-pretrained Inception-V3, and the code path for a user's Inception-V3 checkpoint.

No ImageNet weights can be reached offline, so the chapter's CNN is **pretrained on another,
larger image task of this book** and then fine-tuned on the chapter's training split:

* **Pretraining task**: 13-class labelling of ``p.n_pretrain`` simulated HPA-style crops of
  ``p.pretrain_size`` pixels (half the chapter's side at ``ci``: more, smaller images), of
  **other proteins** — label sets of the Kaggle table that no field of the chapter's data set uses,
  so no test protein (nor any training protein) is seen — in a different simulation seed, the
  three cell lines dealt evenly, every cell showing its protein's classes. ``p.n_pretrain_val``
  more crops are its validation set.
* **Transfer**: the convolutional base (every convolution and batch norm) is copied into a CNN of
  the chapter's input size; the fully connected head is initialised afresh (as ImageNet's
  1000-class head is replaced by a 13-class one); all layers are then fine-tuned with the paper's
  recipe (Adam 10⁻³, binary cross-entropy) on the chapter's training split.
* **Epochs**: both stages keep the weights of their epoch with the lowest *validation* loss
  (pretraining: its own validation crops; fine-tuning: the chapter's validation split); the
  upper bounds ``p.pretrain_epochs`` and ``p.finetune_epochs`` are a time budget. No test score
  chooses anything.

The same network trained from scratch is the chapter's CNN (20 epochs at ``ci``).

A user with a torchvision-style Inception-V3 checkpoint (:mod:`atlaskit.models.inception`) can
fine-tune it here too (:func:`train_inception`): loaded with ``weights_only=True``, its first
convolution adapted to the 4 channels, its 1000-class heads replaced by 13-output ones.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import ParameterError
from atlaskit.models.cnnfcn import CNN, CnnFcnConfig, cnn_step
from atlaskit.studies._scaffold import fit_or_reuse, study_store
from atlaskit.studies.cnnfcn import CHAPTER
from atlaskit.studies.cnnfcn.data import CLASSES, HPAData, _exclude_key, _finish_meta, _render_groups
from atlaskit.studies.cnnfcn.evaluation import SUMMARY_ROWS, Evaluation
from atlaskit.studies.cnnfcn.presets import Preset
from atlaskit.studies.cnnfcn.training import CnnFcnRun, train_config

__all__ = ["pretraining_data", "pretrain", "transferred_cnn", "finetune", "train_inception", "transfer_table", "transfer_display",
           "PAPER_TRANSFER"]

#: What the paper reports for its fine-tuned ImageNet Inception-V3. Its numbers could not be
#: found in the sources available to this book, so none is quoted (a blank "paper" cell).
PAPER_TRANSFER = {"model": "Inception-V3, ImageNet-pretrained, fine-tuned on the 13 classes",
                  "numbers": None}


def pretraining_data(p: Preset, seed: int = 0, *, exclude: Sequence[str] = (), root=None,
                     workers: int | None = None) -> HPAData:
    """Simulate (or reopen) the pretraining crops: ``p.n_pretrain`` training and ``p.n_pretrain_val``
    validation crops of ``p.pretrain_size`` pixels, from label sets not in ``exclude`` (the
    chapter's proteins), simulation seed ``seed + 1000``, cell lines dealt evenly, cell fraction 1.

    Returns an :class:`HPAData` whose preset has ``image_size = p.pretrain_size``.
    """
    from atlaskit.data import catalogs, sim

    pre = p.replace(image_size=p.pretrain_size)
    table = catalogs.cyto2017_label_sets()
    excluded = set(map(str, exclude))
    candidates = np.flatnonzero(~table["id"].isin(excluded).to_numpy())
    n_total = p.n_pretrain + p.n_pretrain_val
    if n_total > len(candidates):
        raise ParameterError(f"{n_total} pretraining crops asked for, {len(candidates)} unused label sets left")
    sim_seed = int(seed) + 1000
    params = {"kind": "hpa-sim-pretraining", "seed": sim_seed, "size": p.pretrain_size, "zoom": p.zoom,
              "n": [p.n_pretrain, p.n_pretrain_val],
              "exclude": _exclude_key(excluded)}

    def batches():
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3010]))
        chosen = table.iloc[np.sort(rng.choice(candidates, n_total, replace=False))]
        split = np.full(n_total, "train", object)
        split[rng.permutation(n_total)[:p.n_pretrain_val]] = "val"
        lines = [sim.HPA_CELL_LINES[k % len(sim.HPA_CELL_LINES)] for k in rng.permutation(n_total)]
        specs = sim.hpa_specs(chosen[["id", "labels"]], sim_seed)
        yield from _render_groups(list(chosen["id"]), specs, [1.0] * n_total, lines, split, pre, sim_seed,
                                  workers or (os.cpu_count() if p.scale == "full" else None))

    store = study_store(CHAPTER, f"pretrain-{p.scale}", params, batches, code=__name__, root=root,
                        shape_per_item=(4, p.pretrain_size, p.pretrain_size), dtype="uint8",
                        attrs={"classes": list(CLASSES)})
    return HPAData(store, _finish_meta(store), "sim", pre)


def pretrain(data: HPAData, p: Preset, *, seed: int = 0, device: str = "auto",
             run_root: str | os.PathLike | None = None) -> CnnFcnRun:
    """Train the chapter's CNN (its widths, at ``p.pretrain_size``) on the pretraining crops for up
    to ``p.pretrain_epochs`` epochs; the weights of the lowest validation loss are kept."""
    cfg = CnnFcnConfig.scaled(p.pretrain_size, p.width_multiplier)
    recipe = train_config(p.replace(epochs=p.pretrain_epochs, early_stopping=None), seed=seed, device=device)
    model_config = {"kind": "cnn", "model": cfg.to_dict(), "data": data.store.key, "stage": "pretraining"}
    key = {"scale": p.scale, "seed": seed, "epochs": p.pretrain_epochs, "batch": p.batch_size,
           "cpu_threads": p.cpu_threads, **model_config}
    return fit_or_reuse(
        CHAPTER, "cnn-pretraining", lambda: CNN(cfg), recipe, key=key,
        train_data=lambda: data.dataset("train", maps=False), val_data=lambda: data.dataset("val", maps=False),
        step_fn=cnn_step, model_config=model_config, threads=p.cpu_threads,
        folder=None if run_root is None else Path(run_root) / "cnn-pretraining", run_type=CnnFcnRun,
        kind="cnn", config=cfg)


def transferred_cnn(pretrained: CnnFcnRun, config: CnnFcnConfig) -> CNN:
    """A CNN of ``config`` whose convolutional base holds ``pretrained``'s weights (the head stays
    freshly initialised). The two bases must have the same widths (only the input size may differ)."""
    model = CNN(config)
    base = pretrained.model.base.state_dict()
    mine = model.base.state_dict()
    for key, tensor in mine.items():
        if key not in base or base[key].shape != tensor.shape:
            raise ParameterError(f"the pretrained base does not fit this CNN at {key!r} "
                                 f"({tuple(base[key].shape) if key in base else 'missing'} vs {tuple(tensor.shape)})")
    model.base.load_state_dict(base)
    return model


def finetune(pretrained: CnnFcnRun, data: HPAData, p: Preset | None = None, *, seed: int = 0, device: str = "auto",
             run_root: str | os.PathLike | None = None) -> CnnFcnRun:
    """Fine-tune all layers of the transferred CNN (:func:`transferred_cnn`) on the chapter's
    training split for up to ``p.finetune_epochs`` epochs, keeping the lowest validation loss."""
    p = p or data.preset
    cfg = p.model_config()
    recipe = train_config(p.replace(epochs=p.finetune_epochs, early_stopping=None), seed=seed, device=device)
    model_config = {"kind": "cnn", "model": cfg.to_dict(), "data": data.store.key, "stage": "fine-tuning",
                    "pretrained": pretrained.run_dir.name, "pretrained_best_epoch": pretrained.best_epoch}
    key = {"scale": p.scale, "seed": seed, "epochs": p.finetune_epochs, "batch": p.batch_size,
           "cpu_threads": p.cpu_threads, **model_config}
    return fit_or_reuse(
        CHAPTER, "cnn-finetuned", lambda: transferred_cnn(pretrained, cfg), recipe, key=key,
        train_data=lambda: data.dataset("train", maps=False), val_data=lambda: data.dataset("val", maps=False),
        step_fn=cnn_step, model_config=model_config, threads=p.cpu_threads,
        folder=None if run_root is None else Path(run_root) / "cnn-finetuned", run_type=CnnFcnRun,
        kind="cnn", config=cfg)


def train_inception(checkpoint: str | os.PathLike, data: HPAData, p: Preset | None = None, *, seed: int = 0,
                    device: str = "auto", input_size: int = 299, epochs: int | None = None,
                    run_root: str | os.PathLike | None = None) -> CnnFcnRun:
    """Fine-tune a user's torchvision-style Inception-V3 checkpoint on the chapter's training split.

    The checkpoint is read by :func:`atlaskit.models.inception.load_inception_checkpoint`
    (``weights_only=True``; a mismatching file is refused naming the file and the first bad key),
    adapted by :func:`~atlaskit.models.inception.adapt_to_hpa` (4-channel first convolution from the
    RGB weights, 13-output heads) and trained with the paper's recipe and an auxiliary loss of
    weight 0.4 for up to ``epochs`` (default ``p.finetune_epochs``) epochs, keeping the lowest
    validation loss. Images are resized to ``input_size`` (Inception-V3's 299; at least 75).
    On a CPU this is slow: use a GPU (``device``).
    """
    from atlaskit.models.inception import HPAInception, adapt_to_hpa, inception_step, load_inception_checkpoint

    p = p or data.preset
    checkpoint = Path(checkpoint).expanduser()
    network = load_inception_checkpoint(checkpoint)  # fails early, before any training
    n_epochs = int(epochs if epochs is not None else p.finetune_epochs)
    stat = checkpoint.stat()
    model_config = {"kind": "inception", "checkpoint": str(checkpoint.resolve()),
                    "checkpoint_stat": [stat.st_size, int(stat.st_mtime)], "input_size": int(input_size),
                    "data": data.store.key}
    key = {"scale": p.scale, "seed": seed, "epochs": n_epochs, "batch": p.batch_size, "cpu_threads": p.cpu_threads,
           **model_config}
    recipe = train_config(p.replace(epochs=n_epochs, early_stopping=None), seed=seed, device=device)
    return fit_or_reuse(
        CHAPTER, "inception", lambda: HPAInception(adapt_to_hpa(network, len(CLASSES), seed=seed), input_size),
        recipe, key=key, train_data=lambda: data.dataset("train", maps=False),
        val_data=lambda: data.dataset("val", maps=False), step_fn=inception_step, model_config=model_config,
        threads=p.cpu_threads, folder=None if run_root is None else Path(run_root) / "inception",
        run_type=CnnFcnRun, kind="inception", config=p.model_config())


# --------------------------------------------------------------------------- tables

_TRANSFER_ROWS = ("mean per-class accuracy", "mean Dice (= macro-F1)", "exact match", "labels per image")


def transfer_table(evals: Mapping[str, Evaluation], *, baseline: str = "from scratch", n_boot: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Each model's test scores with 95 % bootstrap intervals over test images, and each model's
    paired difference from ``baseline`` (same bootstrap resamples of the same test images).

    Parameters
    ----------
    evals : mapping
        Model name → :class:`Evaluation` on the same test images (e.g. ``{"from scratch": …,
        "pretrained + fine-tuned": …}``).

    Returns
    -------
    DataFrame
        One row per (model, metric): ``model, metric, ours, low, high, minus baseline, low, high``
        (the difference columns are NaN for the baseline itself).
    """
    from atlaskit.analysis.effects import bootstrap_interval

    if baseline not in evals:
        raise ParameterError(f"baseline {baseline!r} is not among the models {list(evals)}")
    ref = evals[baseline]
    for name, ev in evals.items():
        if not np.array_equal(ev.y_test, ref.y_test):
            raise ParameterError(f"{name!r} was evaluated on other test images than {baseline!r}")
    rows_ix = np.arange(len(ref.y_test))
    out = []
    for name, ev in evals.items():
        for metric in _TRANSFER_ROWS:
            stat = SUMMARY_ROWS[metric]
            est, low, high = bootstrap_interval(lambda ix: stat(ev.y_test[ix], ev.pred[ix]), rows_ix,
                                                n_boot=n_boot, seed=seed)
            d = (np.nan,) * 3
            if name != baseline:
                d = bootstrap_interval(lambda ix: stat(ev.y_test[ix], ev.pred[ix]) - stat(ref.y_test[ix], ref.pred[ix]),
                                       rows_ix, n_boot=n_boot, seed=seed)
            out.append({"model": name, "metric": metric, "ours": est, "low": low, "high": high,
                        "minus baseline": d[0], "diff low": d[1], "diff high": d[2]})
    return pd.DataFrame(out)


def transfer_display(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`transfer_table` for reading: one row per metric, one column per model
    (``estimate [low, high]``), the differences from the baseline, and the paper's column
    (blank: its Inception-V3 numbers are not available here, :data:`PAPER_TRANSFER`)."""
    def fmt(e, lo, hi, sign=False):
        f = f"{{:+.{digits}f}}" if sign else f"{{:.{digits}f}}"
        return "" if pd.isna(e) else f"{f.format(e)} [{f.format(lo)}, {f.format(hi)}]"

    out = pd.DataFrame(index=pd.Index(list(_TRANSFER_ROWS), name="metric"))
    for name, part in table.groupby("model", sort=False):
        part = part.set_index("metric").loc[list(_TRANSFER_ROWS)]
        out[f"{name} [95 % interval]"] = [fmt(*v) for v in part[["ours", "low", "high"]].to_numpy()]
        if part["minus baseline"].notna().any():
            out[f"{name} − baseline"] = [fmt(*v, sign=True)
                                         for v in part[["minus baseline", "diff low", "diff high"]].to_numpy()]
    out["paper (Inception-V3, ImageNet)"] = ""
    return out
