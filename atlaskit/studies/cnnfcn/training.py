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

__all__ = ["CnnFcnRun", "train_config", "train", "predict", "heatmaps", "architecture_table", "network_spec",
           "build_network", "load_model"]


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


# --------------------------------------------------------------------------- saved runs


def network_spec(model: torch.nn.Module) -> dict:
    """What :func:`build_network` needs to rebuild ``model`` (plain JSON types): ``kind`` and the
    CNN/FCN ``config``, or an Inception-V3's ``input_size``, ``num_classes`` and ``aux_logits``."""
    kind = getattr(model, "kind", None)
    if kind in ("cnn", "fcn"):
        return {"kind": kind, "config": model.config.to_dict()}
    if kind == "inception":
        net = model.network
        return {"kind": "inception", "input_size": int(model.input_size), "num_classes": int(net.fc.out_features),
                "aux_logits": net.AuxLogits is not None}
    raise ParameterError(f"not a chapter-03 network: {type(model).__name__}")


def build_network(spec: dict) -> torch.nn.Module:
    """A freshly initialised chapter-03 network of :func:`network_spec`'s ``spec``.

    Raises
    ------
    ParameterError
        An unknown kind or configuration field.
    """
    kind = spec.get("kind")
    if kind in ("cnn", "fcn"):
        return build_model(kind, CnnFcnConfig.from_dict(spec["config"]))
    if kind == "inception":
        from atlaskit.models.inception import HPAInception, InceptionV3

        network = InceptionV3(int(spec["num_classes"]), aux_logits=bool(spec["aux_logits"]), in_channels=4)
        return HPAInception(network, int(spec["input_size"]))
    raise ParameterError(f"chapter-03 network kind must be cnn, fcn or inception, not {kind!r}")


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> tuple[torch.nn.Module, list[str]]:
    """A chapter-03 network from its run folder (``best.pt``, else ``last.pt``) or one of those
    files, verified (:func:`atlaskit.train.load_checkpoint`): ``(model in eval mode on device,
    class names)``.

    Raises
    ------
    DataError
        A missing folder or checkpoint, or a checkpoint that is not a chapter-03 run.
    CheckpointError
        Unreadable, changed or non-finite weights.
    """
    from atlaskit.errors import DataError
    from atlaskit.studies.cnnfcn.data import CLASSES
    from atlaskit.train import load_checkpoint

    path = Path(path)
    if path.is_dir():
        found = next((path / n for n in ("best.pt", "last.pt") if (path / n).is_file()), None)
        if found is None:
            raise DataError(f"{path}: no best.pt or last.pt (not a finished chapter-03 run)")
        path = found
    elif not path.is_file():
        raise DataError(f"{path}: no such chapter-03 run folder or checkpoint")
    ckpt = load_checkpoint(path)
    config = (ckpt.get("config") or {}).get("model") or {}
    kind = config.get("kind")
    state = ckpt["model"]
    if kind in ("cnn", "fcn"):
        spec = {"kind": kind, "config": config.get("model") or {}}
    elif kind == "inception":
        spec = {"kind": kind, "input_size": int(config.get("input_size", 299)),
                "num_classes": int(state["network.fc.weight"].shape[0]) if "network.fc.weight" in state else len(CLASSES),
                "aux_logits": "network.AuxLogits.fc.weight" in state}
    else:
        raise DataError(f"{path}: not a chapter-03 run (its checkpoint names no cnn, fcn or inception model)")
    try:
        model = build_network(spec)
        model.load_state_dict(state)
    except (ParameterError, ValueError, TypeError, RuntimeError) as exc:
        raise DataError(f"{path}: the weights do not fit the stored configuration ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), list(CLASSES)
