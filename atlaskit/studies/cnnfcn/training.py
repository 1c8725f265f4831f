"""Training of the CNN and the FCN (chapter 03): the paper's recipe, one run per model through the
scaffold's :func:`~atlaskit.studies._scaffold.fit_or_reuse`, and what the trained FCN computes
(class confidences, heat maps).

The paper's recipe: Adam (learning rate 10⁻³), binary cross-entropy, the learning rate divided
by 3 after 8 epochs without a lower validation loss, and the weights of the best validation
epoch (``weights="best"``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from atlaskit.errors import ParameterError
from atlaskit.models.cnnfcn import CnnFcnConfig, build_model, cnn_step, fcn_step
from atlaskit.studies._scaffold import TrainedRun, cpu_threads, fit_or_reuse, usable_cpus
from atlaskit.studies.cnnfcn import CHAPTER
from atlaskit.studies.cnnfcn.data import HPAData
from atlaskit.studies.cnnfcn.presets import Preset

__all__ = ["CnnFcnRun", "train_config", "train", "predict", "heatmaps", "architecture_table"]


@dataclass(kw_only=True)
class CnnFcnRun(TrainedRun):
    """A trained CNN or FCN (a :class:`~atlaskit.studies._scaffold.TrainedRun`) with the weights of
    its best validation epoch, in eval mode.

    Attributes
    ----------
    kind : {"cnn", "fcn"}
    config : CnnFcnConfig
        The architecture it was built with.
    """

    kind: str
    config: CnnFcnConfig


def train_config(p: Preset, *, seed: int = 0, device: str = "auto"):
    """The paper's training recipe at preset ``p``: Adam 10⁻³, learning rate ÷ 3 after 8 epochs
    without a lower validation loss, early stopping after ``p.early_stopping`` epochs without one
    (the run folder is set by :func:`fit_or_reuse`)."""
    from atlaskit.train import TrainConfig

    return TrainConfig(
        epochs=p.epochs, batch_size=p.batch_size, optimizer="adam", lr=1e-3, schedule="plateau", factor=1 / 3,
        patience=8, early_stopping_patience=p.early_stopping, monitor="loss", mode="min", seed=seed,
        device=device, channels_last=True,
        num_workers=min(p.num_workers, usable_cpus()),
    )


def train(kind: str, data: HPAData, p: Preset | None = None, *, seed: int = 0, device: str = "auto",
          run_root: str | os.PathLike | None = None, resume: bool | str = "auto") -> CnnFcnRun:
    """Train the CNN or the FCN with the paper's optimiser and schedule, or reuse a finished run.

    Adam (lr 1e-3), binary cross-entropy, learning rate divided by 3 after 8 epochs without a
    lower validation loss, early stopping per the preset; the weights of the best validation epoch are loaded at the end. The
    run folder (:func:`atlaskit.runs.run_dir`) is keyed by the model, the data store and the
    preset, so a re-execution of the chapter reuses the run; ``run_root`` puts it in
    ``<run_root>/<kind>`` instead.
    """
    p = p or data.preset
    if kind not in ("cnn", "fcn"):
        raise ParameterError(f"model kind must be 'cnn' or 'fcn', not {kind!r}")
    cfg = p.model_config()
    model_config = {"kind": kind, "model": cfg.to_dict(), "data": data.store.key, "targets": p.target_params,
                    "augment": p.augment}
    key = {"scale": p.scale, "seed": seed, "epochs": p.epochs, "batch": p.batch_size, "cpu_threads": p.cpu_threads,
           "early_stopping": p.early_stopping, **model_config}
    return fit_or_reuse(
        CHAPTER, kind, lambda: build_model(kind, cfg), train_config(p, seed=seed, device=device), key=key,
        train_data=lambda: data.dataset("train", augment=p.augment), val_data=lambda: data.dataset("val"),
        step_fn=cnn_step if kind == "cnn" else fcn_step, model_config=model_config, threads=p.cpu_threads,
        resume=resume, folder=None if run_root is None else Path(run_root) / kind, run_type=CnnFcnRun,
        kind=kind, config=cfg)


def predict(trained: CnnFcnRun, dataset: Dataset, *, batch_size: int = 128) -> np.ndarray:
    """Class confidences (N, 13) in [0, 1]: CNN sigmoid outputs; FCN max of each heat map."""
    out = trained.predict(dataset, lambda m, b: m.predict_proba(b[0]), batch_size=batch_size)
    return np.clip(out.numpy().astype(np.float64), 0.0, 1.0)


def heatmaps(trained: CnnFcnRun, images: np.ndarray) -> np.ndarray:
    """FCN heat maps (N, 13, h, w) for float images (N, 4, S, S) in [0, 1]."""
    if trained.kind != "fcn":
        raise ParameterError("heat maps come from the FCN")
    model = trained.model
    was = model.training
    model.eval()
    try:
        with cpu_threads(trained.cpu_threads, trained.trainer.device):
            x = torch.as_tensor(np.asarray(images, np.float32), device=trained.trainer.device)
            return model.heatmaps(x).float().cpu().numpy()
    finally:
        model.train(was)


def architecture_table(p: Preset) -> pd.DataFrame:
    """The paper's CNN and FCN beside this preset's: input and output shapes and parameter counts
    (each network is built and run once on a zero image)."""
    rows = []
    for name, cfg in (("paper", CnnFcnConfig.paper()), (f"this run ({p.scale})", p.model_config())):
        for kind in ("cnn", "fcn"):
            net = build_model(kind, cfg).eval()
            with torch.no_grad():
                out = net(torch.zeros(1, *cfg.input_shape))
            rows.append({"configuration": name, "model": kind.upper(), "input": str(cfg.input_shape),
                         "output": str(tuple(out.shape[1:])), "parameters": sum(q.numel() for q in net.parameters())})
    return pd.DataFrame(rows)
