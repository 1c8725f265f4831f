"""Optimisation settings of a training run (:class:`TrainConfig`) and the configuration
fingerprint that keeps a checkpoint from being resumed under another configuration."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from atlaskit.errors import ParameterError


# --------------------------------------------------------------------------- config

_OPTIMIZERS = ("adam", "adamw", "sgd")
_SCHEDULES = (None, "plateau", "step", "exponential")
# Fields that do not change what one epoch computes: a run may resume with other values (more
# epochs, another device, more workers), so they are left out of the fingerprint. `amp` and
# `device` change rounding only; bit-exact resume is promised for an unchanged device.
_RUNTIME_FIELDS = frozenset(
    {
        "epochs",
        "early_stopping_patience",
        "amp",
        "channels_last",
        "num_workers",
        "device",
        "checkpoint_dir",
        "progress",
        "log_every",
        "deterministic",
        "find_unused_parameters",
        "compile",
        "recompute_activations",
        "fused_optimizer",
    }
)


@dataclass
class TrainConfig:
    """Optimisation settings of one training run.

    Parameters
    ----------
    epochs : int
        Number of epochs (an upper bound with early stopping).
    batch_size : int
        Global batch size (split evenly over the ranks under ``torchrun``).
    optimizer : {"adam", "adamw", "sgd"}
    lr, weight_decay : float
    momentum, nesterov : float, bool
        SGD only (DeepYeast: momentum 0.9).
    betas : (float, float)
        Adam / AdamW.
    schedule : {None, "plateau", "step", "exponential"}
        ``"plateau"``: LR × ``factor`` once ``patience`` epochs in a row bring no improvement of
        the monitored term, then the count restarts (Keras ``ReduceLROnPlateau`` semantics, as in
        cytoself: ×0.1 after 4; CNN/FCN: ×1/3 after 8), never below ``min_lr``.
        ``"step"``: LR × ``gamma`` every ``step_size`` epochs (DeepYeast halves every 25).
        ``"exponential"``: LR × ``gamma`` after every epoch (deepGPS: 0.9).
    factor, patience, min_lr : float, int, float
        Plateau schedule.
    step_size, gamma : int, float
        Step schedule (``gamma`` also for the exponential one).
    early_stopping_patience : int, optional
        Stop after this many epochs in a row without improvement (cytoself: 12).
    monitor : str
        Logged term that decides improvement (best checkpoint, plateau, early stopping): the
        validation value, or the training value when there is no validation set.
    mode : {"min", "max"}
        Whether lower (losses) or higher (``metric_accuracy``) is better.
    min_delta : float
        An improvement must beat the best value by more than this.
    grad_clip : float, optional
        Clip the global gradient norm to this value.
    drop_last : bool
        Drop the last incomplete training batch (useful with batch norm and tiny last batches).
    amp : {"auto", True, False}
        ``"auto"``: bfloat16 autocast on CUDA (when the GPU supports bf16), off elsewhere.
        bf16 keeps float32's exponent range, so no GradScaler is needed.
    channels_last : {"auto", True, False}
        ``"auto"``: channels-last memory format for the model and 4-D float inputs on CUDA.
    num_workers : int
        DataLoader worker processes.
    seed : int
        Seed of the epoch order, augmentation and dropout streams.
    deterministic : bool
        Call ``torch.use_deterministic_algorithms(True, warn_only=True)`` in :meth:`Trainer.fit`.
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    checkpoint_dir : path, optional
        Where ``last.pt`` / ``best.pt`` go; ``None``: no checkpoints (and no resume).
    progress : bool
        tqdm bars on stderr; also off when the environment variable ``ATLASKIT_NO_PROGRESS`` is
        set to anything but ``""``, ``0``, ``false`` or ``no`` (executed notebooks must not get
        tqdm output), when stderr is a Jupyter kernel's output (a notebook, papermill), and on
        ranks other than 0.
    log_every : int
        Steps between refreshes of the running loss in the progress bar (each costs one device
        sync; with progress off there is one sync per epoch).
    find_unused_parameters : bool
        Passed to DistributedDataParallel (set it when ``step_fn`` leaves parameters unused).
    compile : bool
        ``torch.compile`` the training step (model forward + ``step_fn``): batch norm, activations
        and residual additions are fused into generated kernels and their intermediates are
        recomputed in the backward pass instead of stored. Pays on long runs (the first steps
        compile, a minute or more); results agree with eager mode to rounding.
    recompute_activations : bool or {"elementwise", "residual"}
        Activation recomputation in the model's :class:`~atlaskit.models.blocks.ConvBNAct`,
        ``ResidualBlock`` and ``MBConv`` modules (:func:`atlaskit.models.blocks.set_recompute`);
        results are bit-identical at every level. ``True`` or ``"elementwise"``: keep only
        convolution outputs for the backward pass and rerun batch norm, activations and residual
        sums there (about half the activation memory of the cytoself decoders, no convolution run
        twice); ``compile`` already does this on its own, use one of the two. ``"residual"``: each
        residual block keeps only its input and reruns its convolutions too (the least memory,
        about a third more FLOPs in those blocks).
    fused_optimizer : {"auto", True, False}
        ``"auto"``: the optimizer's fused implementation (``fused=True``: one kernel updates
        every parameter) where torch has one for the device, else torch's default; ``True``: the
        fused one, an error where there is none; ``False``: torch's default (a loop over the
        parameters on a CPU). On a CPU the fused Adam step of the
        chapters' small models takes an eighth of the loop's time (12 ms → 1.5 ms per step for
        cytoself's ``ci`` model, ``benchmarks/README.md``); the results agree to rounding (the
        same update, other operation order).
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str | None = None
    factor: float = 0.1
    patience: int = 4
    min_lr: float = 0.0
    step_size: int = 25
    gamma: float = 0.5
    early_stopping_patience: int | None = None
    monitor: str = "loss"
    mode: str = "min"
    min_delta: float = 0.0
    grad_clip: float | None = None
    drop_last: bool = False
    amp: bool | str = "auto"
    channels_last: bool | str = "auto"
    num_workers: int = 0
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    checkpoint_dir: str | os.PathLike | None = None
    progress: bool = True
    log_every: int = 50
    find_unused_parameters: bool = False
    compile: bool = False
    recompute_activations: bool | str = False
    fused_optimizer: bool | str = "auto"

    def __post_init__(self):
        def bad(name, why):
            raise ParameterError(f"TrainConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("epochs", "batch_size", "patience", "step_size", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if name == "epochs" else 1):
                bad(name, "expected a positive integer")
            setattr(self, name, int(v))
        if isinstance(self.optimizer, str):
            self.optimizer = self.optimizer.lower()
        if self.optimizer not in _OPTIMIZERS:
            bad("optimizer", f"expected one of {_OPTIMIZERS}")
        if isinstance(self.schedule, str):
            self.schedule = self.schedule.lower()
            if self.schedule == "none":
                self.schedule = None
        if self.schedule not in _SCHEDULES:
            bad("schedule", f"expected one of {_SCHEDULES}")
        if self.mode not in ("min", "max"):
            bad("mode", "expected 'min' or 'max'")
        for name in ("lr", "weight_decay", "momentum", "min_lr", "factor", "gamma", "min_delta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not v >= 0:
                bad(name, "expected a non-negative number")
            setattr(self, name, float(v))
        if self.lr <= 0:
            bad("lr", "must be > 0")
        if self.schedule in ("plateau", "step", "exponential") and not 0 < (
            self.factor if self.schedule == "plateau" else self.gamma
        ) <= 1:
            bad("factor" if self.schedule == "plateau" else "gamma", "must be in (0, 1]")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            bad("nesterov", "needs optimizer='sgd' and momentum > 0")
        try:
            b1, b2 = (float(b) for b in self.betas)
        except (TypeError, ValueError):
            bad("betas", "expected two numbers")
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            bad("betas", "each must be in [0, 1)")
        self.betas = (b1, b2)
        if self.early_stopping_patience is not None:
            if isinstance(self.early_stopping_patience, bool) or int(self.early_stopping_patience) < 1:
                bad("early_stopping_patience", "expected a positive integer or None")
            self.early_stopping_patience = int(self.early_stopping_patience)
        if self.grad_clip is not None:
            if not float(self.grad_clip) > 0:
                bad("grad_clip", "expected a positive number or None")
            self.grad_clip = float(self.grad_clip)
        for name in ("amp", "channels_last", "fused_optimizer"):
            if getattr(self, name) not in ("auto", True, False):
                bad(name, "expected 'auto', True or False")
        if isinstance(self.num_workers, bool) or int(self.num_workers) < 0:
            bad("num_workers", "expected an integer >= 0")
        self.num_workers = int(self.num_workers)
        self.seed = int(self.seed)
        if not isinstance(self.monitor, str) or not self.monitor:
            bad("monitor", "expected the name of a logged term")
        if not isinstance(self.compile, bool):
            bad("compile", "expected True or False")
        from atlaskit.models.blocks import RECOMPUTE_LEVELS, recompute_level

        if not (isinstance(self.recompute_activations, bool) or self.recompute_activations in RECOMPUTE_LEVELS):
            bad("recompute_activations", "expected True, False, 'elementwise' or 'residual'")
        if self.compile and recompute_level(self.recompute_activations) != "off":
            bad("recompute_activations", "compile=True already recomputes element-wise work; use one of the two")

    def to_dict(self) -> dict:
        """Plain-type dict (paths as strings, betas as a list)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["checkpoint_dir"] = None if self.checkpoint_dir is None else str(self.checkpoint_dir)
        return d

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- fingerprint


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, torch.dtype):
        return str(obj)
    return repr(obj)


def _plain_config(cfg) -> Any:
    if cfg is None:
        return None
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        cfg = dataclasses.asdict(cfg)
    elif hasattr(cfg, "to_dict") and callable(cfg.to_dict):
        cfg = cfg.to_dict()
    if not isinstance(cfg, Mapping):
        raise ParameterError(f"model_config must be a dataclass or a dict, got {type(cfg).__name__}")
    return dict(cfg)


def config_fingerprint(model_config, train_config: TrainConfig) -> tuple[str, dict]:
    """sha256 of the JSON of ``model_config`` plus the computation-relevant TrainConfig fields.

    Returns
    -------
    fingerprint : str
        64 hex digits.
    payload : dict
        ``{"model": ..., "train": ...}`` in plain JSON types, stored in checkpoints so that a
        refusal can name the keys that differ.
    """
    train = {k: v for k, v in train_config.to_dict().items() if k not in _RUNTIME_FIELDS}
    text = json.dumps(
        {"model": _plain_config(model_config), "train": train},
        sort_keys=True,
        separators=(",", ":"),
        default=_json_default,
    )
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


def _flatten(d, prefix="") -> dict:
    out = {}
    if isinstance(d, Mapping):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        if not d and prefix:
            out[prefix[:-1]] = {}
    else:
        out[prefix[:-1]] = d
    return out


def _config_diff(old: Mapping, new: Mapping) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            sa = "absent" if va is missing else repr(va)
            sb = "absent" if vb is missing else repr(vb)
            lines.append(f"{key}: {sa} in the checkpoint, {sb} now")
    return lines

