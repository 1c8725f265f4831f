"""Training DeepYeast with the paper's recipe, prediction, and the checkpoint format.

:func:`paper_train_config` is the paper's optimisation (training policy, so it lives with the
study, not with the network in :mod:`atlaskit.models.deepyeast`); :func:`train` runs it through
:func:`atlaskit.studies._scaffold.fit_or_reuse`; :func:`save_model` / :func:`load_model` write and
read the self-contained checkpoint that ``atlaskit evaluate deepyeast`` applies to real crops.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.data.catalogs import DEEPYEAST_CLASSES
from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet, deepyeast_step
from atlaskit.studies._scaffold import TrainedRun, cpu_threads, fit_or_reuse
from atlaskit.studies.deepyeast import CHAPTER
from atlaskit.studies.deepyeast.data import YeastData, training_mean
from atlaskit.studies.deepyeast.presets import Preset

__all__ = ["CHECKPOINT_FORMAT", "paper_train_config", "train", "predict", "layer_table", "save_model", "load_model"]

CHECKPOINT_FORMAT = "atlaskit.deepyeast/1"


def paper_train_config(**overrides):
    """The paper's optimisation as a :class:`atlaskit.train.TrainConfig`.

    SGD, momentum 0.9, learning rate 0.1 halved every 25 epochs (``schedule="step"``,
    ``step_size=25, gamma=0.5``), weight decay 5·10⁻⁴, batch 100; the best epoch is chosen by
    validation accuracy. ``overrides`` change any field (e.g. ``epochs``, ``device``,
    ``checkpoint_dir``).
    """
    from atlaskit.train import TrainConfig

    base = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=100, schedule="step",
                step_size=25, gamma=0.5, monitor="metric_accuracy", mode="max")
    base.update(overrides)
    return TrainConfig(**base)


def train(data: YeastData, p: Preset, *, seed: int = 0, device: str = "auto") -> TrainedRun:
    """Train DeepYeast on the training split (validation picks the best epoch), or reuse the run.

    The run folder is keyed by the preset's recipe, the data store and the seed, so re-executing
    the chapter returns the finished run instead of training again. Training uses the preset's
    ``cpu_threads``; so does everything that later takes the returned run in place of a model
    (:func:`predict`, :func:`~atlaskit.studies.deepyeast.features.layer_features`…).
    """
    from atlaskit.data.datasets import Compose, CropDataset, RandomChannelGain, RandomRot90Flip

    train_idx, val_idx = data.indices("train"), data.indices("val")
    recipe = {k: v for k, v in p.to_dict().items() if k in ("model", "epochs", "batch_size", "lr", "step_size")}
    augmentation = None
    if p.augment:  # only then, so that runs trained before the field existed keep their keys
        recipe["augment"] = "rot90-flip"
        augmentation = RandomRot90Flip()
        if p.gain_jitter > 0:
            recipe["gain_jitter"] = p.gain_jitter
            augmentation = Compose([augmentation, RandomChannelGain(p.gain_jitter)])

    def build_model() -> DeepYeastNet:
        model = DeepYeastNet(p.model)
        model.set_input_mean(training_mean(data.main, train_idx))
        return model

    cfg = paper_train_config(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, step_size=p.step_size, seed=seed,
                             device=device, channels_last=True, num_workers=p.num_workers)
    return fit_or_reuse(
        CHAPTER, "deepyeast", build_model, cfg,
        key={"recipe": recipe, "data": data.main.key, "seed": int(seed)},
        train_data=lambda: CropDataset(data.main, train_idx, label_column="label_idx",
                                       transform=augmentation),
        val_data=lambda: CropDataset(data.main, val_idx, label_column="label_idx"),
        step_fn=deepyeast_step,
        model_config={"model": p.model.to_dict(), "data": data.main.key, "source": data.source},
        threads=p.cpu_threads,
    )


def network(model) -> tuple[DeepYeastNet, int | None]:
    """The network of ``model`` (a DeepYeastNet, or a :class:`TrainedRun` of one) and the CPU
    threads to run it with (the run's; None for a bare network)."""
    if isinstance(model, TrainedRun):
        return model.model, model.cpu_threads
    return model, None


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _iter_arrays(images, indices=None, batch_size: int = 256):
    """Batches (B, 2, 64, 64) float32 from an array or an ArrayStore (optionally rows ``indices``)."""
    src = images.images if isinstance(images, ArrayStore) else images
    n = len(src) if indices is None else len(indices)
    for a in range(0, n, batch_size):
        if indices is None:
            chunk = np.array(src[a:a + batch_size], dtype=np.float32)  # a writable copy, not a view of the map
        else:
            idx = np.asarray(indices[a:a + batch_size])
            order = np.argsort(idx)
            chunk = np.empty((len(idx),) + tuple(src.shape[1:]), np.float32)
            chunk[order] = np.asarray(src[idx[order]], np.float32)  # sorted reads from the memory map
        yield torch.from_numpy(chunk)


@torch.no_grad()
def predict(model, images, indices=None, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) for an array (N, 2, 64, 64) or store rows ``indices`` (eval mode).

    ``model`` is a DeepYeastNet or a :class:`TrainedRun` (then with the run's CPU threads).
    """
    model, threads = network(model)
    model.eval()
    dev = _device_of(model)
    with cpu_threads(threads, dev):
        out = [torch.softmax(model(x.to(dev)).float(), 1).cpu() for x in _iter_arrays(images, indices, batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.n_classes), np.float32)


def layer_table(config: DeepYeastConfig) -> pd.DataFrame:
    """Output shape and parameter count of every layer of a network of ``config``."""
    net = DeepYeastNet(config)
    counts = {name: sum(q.numel() for q in module.parameters()) for name, module in net.layers.named_children()}
    return pd.DataFrame({"output": {k: "×".join(map(str, v)) for k, v in net.layer_shapes().items()},
                         "parameters": counts})


def save_model(model: DeepYeastNet, path: str | Path, *, classes: Sequence[str] = DEEPYEAST_CLASSES,
               info: Mapping[str, Any] | None = None) -> Path:
    """Write a self-contained checkpoint: config, class names, weights and the training mean image.

    Only tensors and plain types, so :func:`load_model` reads it with ``torch.load(weights_only=True)``.
    """
    from atlaskit.train import save_checkpoint

    if len(classes) != model.config.n_classes:
        raise ParameterError(f"{len(classes)} class names for a {model.config.n_classes}-class model")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    obj = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "classes": [str(c) for c in classes],
        "state_dict": state,
        "normalization": "images (N, 2, 64, 64) in [0, 1], GFP then RFP; the network subtracts its "
                         "training mean image (state_dict['input_mean'])",
        "info": json.loads(json.dumps(dict(info or {}), default=str)),
    }
    return save_checkpoint(obj, path)


def load_model(path: str | Path, *, device: str = "cpu") -> tuple[DeepYeastNet, list[str]]:
    """Load a :func:`save_model` checkpoint (``weights_only=True``): the model in eval mode and its classes.

    The file's content checksum and finite weights are verified first
    (:func:`atlaskit.train.checkpoints.verify_checkpoint`).

    Raises
    ------
    DataError
        Missing, unreadable or foreign file, or weights that do not fit the stored config.
    CheckpointError
        The file changed after it was written (checksum) or holds NaN/inf weights.
    """
    from atlaskit.train.checkpoints import CheckpointError, verify_checkpoint

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: checkpoint not found")
    try:
        obj = verify_checkpoint(p, map_location=device)
    except CheckpointError as exc:  # unreadable or unsafe: the file is not a checkpoint of ours
        if "integrity check" in str(exc) or "non-finite" in str(exc):
            raise
        raise DataError(f"{p}: not a readable DeepYeast checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{p}: not a DeepYeast checkpoint (expected format {CHECKPOINT_FORMAT!r}; "
                        "write one with atlaskit.studies.deepyeast.save_model)")
    model = DeepYeastNet(DeepYeastConfig.from_dict(obj["config"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"{p}: the weights do not fit the stored configuration: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return model, list(obj["classes"])
