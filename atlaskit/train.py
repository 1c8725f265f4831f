"""The one trainer that every chapter uses.

A chapter builds a model, a :class:`TrainConfig` with the study's optimisation settings and two
torch Datasets, and calls :meth:`Trainer.fit`::

    seed_everything(seed)                       # before building the model: its init is seeded
    model = DeepYeastNet()
    cfg = TrainConfig(epochs=epochs, batch_size=100, optimizer="sgd", lr=0.1, momentum=0.9,
                      weight_decay=5e-4, schedule="step", step_size=25, gamma=0.5,
                      seed=seed, device=device, checkpoint_dir=run_dir)
    trainer = Trainer(model, cfg, step_fn=classification_step, train_data=train_ds,
                      val_data=val_ds, model_config=model.config)
    history = trainer.fit()                     # resumes from run_dir/last.pt when it exists
    history.to_frame()                          # tidy: epoch, split, term, value

The model contract
------------------
``step_fn(model, batch) -> dict[str, Tensor]`` returns named scalar loss terms with the total
under ``"loss"``. Only ``"loss"`` is backpropagated; every other term is logged (per-epoch mean,
weighted by batch size). Keys starting with ``metric_`` are plain metrics (accuracy, ...): logged,
never part of a loss. Without a ``step_fn`` the trainer calls ``model.compute_losses(*batch)``
(``**batch`` for dict batches). :func:`classification_step` covers ``(image, label)`` batches and
a model returning logits.

Reproducibility and resume
--------------------------
The order of epoch ``e`` depends only on ``(seed, e)``: every epoch builds its loader with a
:class:`~torch.utils.data.DistributedSampler` (one replica when not distributed) and
``set_epoch(e)``, and torch / numpy / :mod:`random` plus the dataset's augmentation generator are
re-seeded from ``(seed, e, rank)`` when the epoch starts. So resuming from the checkpoint of
epoch ``e - 1`` gives bit-identical weights on CPU without depending on RNG-state restore (the
states are still stored and restored). Checkpoints (``checkpoint_dir/last.pt`` every epoch,
``best.pt`` on improvement) are written atomically and hold only tensors and plain Python
types; they are read with ``torch.load(weights_only=True)`` so loading never runs code.

Distributed
-----------
Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE > 1``) the trainer initialises the process
group (nccl on CUDA, gloo on CPU), wraps the model in DistributedDataParallel and shards every
epoch with a DistributedSampler. ``TrainConfig.batch_size`` is the **global** batch (each rank
takes ``batch_size // world_size``), so a paper's settings mean the same thing on any number of
processes. Logged terms are averaged over all ranks; only rank 0 writes checkpoints and shows
progress.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pickle
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from atlaskit.data.datasets import make_loader
from atlaskit.errors import AtlaskitError, ParameterError

__all__ = [
    "TrainConfig",
    "Trainer",
    "History",
    "CheckpointError",
    "TrainingError",
    "classification_step",
    "default_step",
    "seed_everything",
    "is_main_process",
    "get_rank",
    "get_world_size",
    "resolve_device",
    "move_to_device",
    "save_checkpoint",
    "load_checkpoint",
    "config_fingerprint",
]

CHECKPOINT_FORMAT = "atlaskit.train/1"
StepFn = Callable[[nn.Module, Any], Mapping[str, Any]]


class CheckpointError(AtlaskitError, RuntimeError):
    """A checkpoint cannot be used: unreadable (truncated, corrupt), unsafe (holds objects other
    than tensors and plain Python types), or written for a different configuration."""


class TrainingError(AtlaskitError, RuntimeError):
    """Training cannot go on: ``step_fn`` broke the contract or the loss became NaN/inf."""


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
        tqdm output), and on ranks other than 0.
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
        for name in ("amp", "channels_last"):
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


# --------------------------------------------------------------------------- distributed


def get_rank() -> int:
    """Rank of this process (0 when not distributed; read from ``RANK`` before initialisation)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True on rank 0 (and always when not distributed): the process that writes and prints."""
    return get_rank() == 0


def _init_distributed(device: torch.device) -> bool:
    """Initialise the default process group when launched by torchrun and not yet done."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)  # env:// — torchrun sets MASTER_ADDR/PORT, RANK, WORLD_SIZE
    atexit.register(_destroy_process_group)  # we created it, so we tear it down
    return dist.get_world_size() > 1


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; under torchrun ``"auto"``/``"cuda"`` mean
    ``cuda:LOCAL_RANK``. Raises :class:`ParameterError` for an unknown or unavailable device."""
    s = str(spec).strip().lower()
    if s == "auto":
        s = "cuda" if torch.cuda.is_available() else "cpu"
    if s == "cuda" and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0") or 0) if get_world_size() > 1 else torch.cuda.current_device()
        s = f"cuda:{local}"
    try:
        device = torch.device(s)
    except (RuntimeError, ValueError):
        raise ParameterError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {spec!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ParameterError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(device)
    return device


# --------------------------------------------------------------------------- seeding


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed :mod:`random`, numpy's global generator and torch (CPU and all CUDA devices).

    Parameters
    ----------
    seed : int
    deterministic : bool
        Also ask torch for deterministic kernels (``use_deterministic_algorithms(True,
        warn_only=True)``: ops without a deterministic version warn instead of failing) and
        turn off cuDNN autotuning.

    Returns
    -------
    int
        The seed, for logging.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seed


def _derive_seed(*parts: int) -> int:
    """A well-mixed 32-bit seed from integers (seed, epoch, rank, stream)."""
    return int(np.random.SeedSequence([int(p) % 2**32 for p in parts]).generate_state(1)[0])


def _rng_state() -> dict:
    """Global RNG states as tensors and plain types (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [int(version), [int(x) for x in internal], gauss],
    }


def _set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# --------------------------------------------------------------------------- batches and steps


def move_to_device(batch, device: torch.device, *, channels_last: bool = False, non_blocking: bool = True):
    """Move tensors in a (nested) tuple / list / dict batch to ``device``.

    4-D floating tensors become channels-last when ``channels_last`` is set; other leaves
    (strings, ints) are returned unchanged.
    """
    if isinstance(batch, torch.Tensor):
        t = batch.to(device, non_blocking=non_blocking)
        if channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    kw = dict(channels_last=channels_last, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device, **kw) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, **kw) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, **kw) for v in batch)
    return batch


def _batch_len(batch) -> int | None:
    """Number of samples in a batch: the leading size of its first tensor (no device sync)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for v in values:
        n = _batch_len(v)
        if n is not None:
            return n
    return None


def default_step(model: nn.Module, batch) -> Mapping[str, torch.Tensor]:
    """Call ``model.compute_losses(*batch)`` (``**batch`` for a dict batch)."""
    fn = getattr(model, "compute_losses", None)
    if fn is None:
        raise ParameterError(
            f"{type(model).__name__} has no compute_losses(); pass step_fn=... to the Trainer "
            "(e.g. atlaskit.train.classification_step for (image, label) batches)"
        )
    if isinstance(batch, Mapping):
        return fn(**batch)
    if isinstance(batch, (list, tuple)):
        return fn(*batch)
    return fn(batch)


def classification_step(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """``(x, y)`` batch, ``model(x)`` → logits: cross-entropy loss and ``metric_accuracy``."""
    x, y = batch[0], batch[1]
    logits = model(x)
    loss = F.cross_entropy(logits.float(), y)  # float: stable softmax under bf16 autocast
    acc = (logits.detach().argmax(dim=1) == y).float().mean()
    return {"loss": loss, "metric_accuracy": acc}


class _StepModule(nn.Module):
    """Runs ``step_fn`` inside ``forward`` so that DistributedDataParallel sees every training
    forward pass; calling ``model.compute_losses`` behind DDP's back would skip the bookkeeping
    that its gradient all-reduce relies on."""

    def __init__(self, model: nn.Module, step_fn: StepFn):
        super().__init__()
        self.model = model
        self.step_fn = step_fn

    def forward(self, batch):
        return self.step_fn(self.model, batch)


def _as_losses(out, device: torch.device, *, training: bool) -> dict[str, torch.Tensor]:
    if not isinstance(out, Mapping) or "loss" not in out:
        got = sorted(out) if isinstance(out, Mapping) else type(out).__name__
        raise TrainingError(f"step_fn must return a dict of scalar tensors with the total under 'loss'; got {got}")
    losses = {}
    for k, v in out.items():
        if not isinstance(v, torch.Tensor):
            try:
                v = torch.as_tensor(v, dtype=torch.float32, device=device)
            except (TypeError, ValueError, RuntimeError):
                raise TrainingError(f"step_fn term {k!r} is not a number or tensor: {type(v).__name__}") from None
        if v.numel() != 1:
            raise TrainingError(f"step_fn term {k!r} must be a scalar, got shape {tuple(v.shape)}")
        losses[str(k)] = v.reshape(())
    if training and not losses["loss"].requires_grad:
        raise TrainingError("step_fn's 'loss' does not depend on any trainable parameter (no gradient)")
    return losses


class _ShardSampler(Sampler):
    """``range(n)[rank::world]`` without padding: every validation item is counted once, so the
    all-reduced mean is exact (DistributedSampler would repeat items to even out the shards)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """Per-epoch record of a run.

    Attributes
    ----------
    epochs : list of int
        1-based epoch numbers.
    train, val : list of dict
        Mean of every logged term per epoch (``val`` entries are empty without validation data).
    lr : list of float
        Learning rate used during the epoch (first parameter group).
    epoch_time : list of float
        Seconds for training plus validation.
    images_per_s : list of float
        Training samples per second (all ranks together).
    best_epoch : int or None
        Epoch with the best monitored value.
    stopped_early : bool
    """

    epochs: list[int] = field(default_factory=list)
    train: list[dict[str, float]] = field(default_factory=list)
    val: list[dict[str, float]] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    images_per_s: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def __len__(self) -> int:
        return len(self.epochs)

    def terms(self, split: str = "train") -> list[str]:
        """Names of the terms logged for ``split`` ("train" or "val")."""
        rows = self._split(split)
        return sorted({k for r in rows for k in r})

    def _split(self, split: str) -> list[dict[str, float]]:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return self.train if split == "train" else self.val

    def series(self, term: str, split: str = "val") -> np.ndarray:
        """One term over the epochs (NaN where absent); ``term="lr"`` gives the learning rate."""
        if term == "lr":
            return np.asarray(self.lr, dtype=float)
        return np.asarray([r.get(term, np.nan) for r in self._split(split)], dtype=float)

    def to_frame(self):
        """Tidy :class:`pandas.DataFrame` with columns ``epoch, split, term, value``.

        Loss terms and metrics appear under their split; ``lr``, ``epoch_time_s`` and
        ``images_per_s`` under ``split="train"``.
        """
        import pandas as pd

        rows = []
        for i, ep in enumerate(self.epochs):
            for split, recs in (("train", self.train), ("val", self.val)):
                for term, value in recs[i].items():
                    rows.append((ep, split, term, value))
            rows.append((ep, "train", "lr", self.lr[i]))
            rows.append((ep, "train", "epoch_time_s", self.epoch_time[i]))
            rows.append((ep, "train", "images_per_s", self.images_per_s[i]))
        return pd.DataFrame(rows, columns=["epoch", "split", "term", "value"])

    def to_dict(self) -> dict:
        return {
            "epochs": list(self.epochs),
            "train": [dict(r) for r in self.train],
            "val": [dict(r) for r in self.val],
            "lr": list(self.lr),
            "epoch_time": list(self.epoch_time),
            "images_per_s": list(self.images_per_s),
            "best_epoch": self.best_epoch,
            "stopped_early": bool(self.stopped_early),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "History":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


# --------------------------------------------------------------------------- checkpoint files


def save_checkpoint(obj: Mapping, path: str | os.PathLike) -> Path:
    """Write ``obj`` with :func:`torch.save` atomically: to a temporary file in the same folder,
    flushed to disk, then renamed over ``path`` (``os.replace``), so an interruption leaves either
    the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a trainer checkpoint with ``torch.load(weights_only=True)``.

    Raises
    ------
    CheckpointError
        The file is missing, truncated or corrupt, holds objects other than tensors and plain
        Python types (refused: unpickling them could run code), or is not an atlaskit checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if m:
            raise CheckpointError(
                f"{path} holds a Python object ({m.group(1)}) rather than only tensors and plain types; "
                "it is refused because unpickling it could run arbitrary code (torch.load weights_only=True)"
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?)") from exc
    except Exception as exc:  # zip reader errors, EOFError on an empty file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): {first}") from exc
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an atlaskit training checkpoint (format {CHECKPOINT_FORMAT!r})")
    return obj


class _Plateau:
    """Keras-style ReduceLROnPlateau: LR × ``factor`` once ``patience`` epochs in a row bring no
    improvement, then the count restarts. Improvement is decided by the trainer so that the best
    checkpoint, this schedule and early stopping agree. (torch's ReduceLROnPlateau waits for
    ``patience + 1`` bad epochs; the papers used Keras.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float, patience: int, min_lr: float):
        self.optimizer, self.factor, self.patience, self.min_lr = optimizer, factor, patience, min_lr
        self.wait = 0

    def step(self, improved: bool) -> None:
        if improved:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"wait": self.wait}

    def load_state_dict(self, state: Mapping) -> None:
        self.wait = int(state["wait"])


def _no_progress_env() -> bool:
    v = os.environ.get("ATLASKIT_NO_PROGRESS")
    return v is not None and v.strip().lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Train ``model`` with ``step_fn`` on ``train_data``; validate on ``val_data`` every epoch.

    Parameters
    ----------
    model : nn.Module
        Moved to the configured device (and channels-last when enabled) in place.
    config : TrainConfig, optional
    step_fn : callable, optional
        ``step_fn(model, batch) -> {"loss": total, other terms...}``; default
        :func:`default_step` (``model.compute_losses``).
    train_data, val_data : torch Dataset
        The trainer makes the loaders (seeded, per-epoch order; see the module docstring).
    model_config : dataclass or dict, optional
        Everything that defines the model (and, if the chapter wishes, the data: scale, split
        seed); fingerprinted with the TrainConfig so a checkpoint of another configuration is
        refused on resume.

    Attributes
    ----------
    model, optimizer, scheduler, history, device, amp_dtype, channels_last, distributed, rank,
    world_size, fingerprint
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        step_fn: StepFn | None = None,
        train_data: Dataset,
        val_data: Dataset | None = None,
        model_config: Any = None,
    ):
        cfg = config if config is not None else TrainConfig()
        if not isinstance(cfg, TrainConfig):
            raise ParameterError(f"config must be a TrainConfig, got {type(cfg).__name__}")
        self.config = cfg
        if step_fn is None:
            if not callable(getattr(model, "compute_losses", None)):
                default_step(model, ())  # raises the ParameterError that explains what to pass
            step_fn = default_step
        self.step_fn = step_fn
        if train_data is None or len(train_data) == 0:
            raise ParameterError("train_data is empty")
        self.train_data, self.val_data = train_data, val_data

        self.device = resolve_device(cfg.device)
        self.distributed = _init_distributed(self.device)
        self.rank = get_rank() if self.distributed else 0
        self.world_size = get_world_size() if self.distributed else 1
        if cfg.batch_size % self.world_size:
            raise ParameterError(
                f"batch_size {cfg.batch_size} is the global batch and must be divisible by the "
                f"{self.world_size} processes"
            )
        self.local_batch_size = cfg.batch_size // self.world_size
        cuda = self.device.type == "cuda"
        if cfg.amp == "auto":
            self.amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
        else:
            self.amp_dtype = torch.bfloat16 if cfg.amp else None
        self.channels_last = cuda if cfg.channels_last == "auto" else bool(cfg.channels_last)

        self.model = model.to(self.device)
        from atlaskit.models.blocks import recompute_level, set_recompute

        if recompute_level(cfg.recompute_activations) != "off":
            if not set_recompute(self.model, cfg.recompute_activations):
                raise ParameterError(
                    f"recompute_activations={cfg.recompute_activations!r}, but the model has no ConvBNAct, "
                    "ResidualBlock or MBConv modules (atlaskit.models.blocks) whose activations could be "
                    "recomputed"
                )
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # only 4-D weights change
        self._step_module = _StepModule(self.model, self.step_fn)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self._train_module: nn.Module = DistributedDataParallel(
                self._step_module,
                device_ids=[self.device.index] if cuda else None,
                find_unused_parameters=cfg.find_unused_parameters,
            )
        else:
            self._train_module = self._step_module
        if cfg.compile:
            self._train_module = torch.compile(self._train_module)

        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ParameterError("the model has no trainable parameters")
        if cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
            )
        if cfg.schedule == "plateau":
            self.scheduler = _Plateau(self.optimizer, cfg.factor, cfg.patience, cfg.min_lr)
        elif cfg.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, cfg.step_size, cfg.gamma)
        elif cfg.schedule == "exponential":
            self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, cfg.gamma)
        else:
            self.scheduler = None

        self.fingerprint, self._fingerprint_payload = config_fingerprint(model_config, cfg)
        self.checkpoint_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None else None
        self.history = History()
        self.epochs_done = 0
        self.best_metric: float | None = None
        self.bad_epochs = 0

    # ------------------------------------------------------------------ helpers

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def last_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"

    @property
    def best_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "best.pt"

    def _progress(self) -> bool:
        return bool(self.config.progress) and not _no_progress_env() and self.is_main

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _acc_dtype(self) -> torch.dtype:
        return torch.float32 if self.device.type == "mps" else torch.float64

    def _loader(self, dataset: Dataset, sampler: Sampler, seed: int, *, batch_size: int, drop_last: bool = False):
        # make_loader seeds the worker base seed and the dataset's augmentation generator; a new
        # loader per epoch keeps both a function of (seed, epoch) alone.
        return make_loader(
            dataset,
            batch_size,
            sampler=sampler,
            num_workers=self.config.num_workers,
            seed=seed,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def _reduce(self, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> tuple[dict[str, float], int]:
        """Means of the accumulated terms over all ranks, with one device sync."""
        keys = sorted(sums)
        if self.distributed:
            gathered: list = [None] * self.world_size
            dist.all_gather_object(gathered, keys)  # ranks with no batch have no keys
            keys = sorted({k for ks in gathered for k in ks})
        zero = torch.zeros((), dtype=self._acc_dtype(), device=self.device)
        vec = torch.stack([sums.get(k, zero) for k in keys] + [zero])
        cnt = torch.tensor([counts.get(k, 0) for k in keys] + [0], dtype=self._acc_dtype(), device=self.device)
        if self.distributed:
            both = torch.cat([vec, cnt])
            dist.all_reduce(both)
            dist.broadcast(both, src=0)  # every rank takes the same decisions from the same bits
            vec, cnt = both[: len(vec)], both[len(vec):]
        values, n = vec.tolist(), cnt.tolist()
        means = {k: (v / c if c else float("nan")) for k, v, c in zip(keys, values, n)}
        total = int(round(n[keys.index("loss")])) if "loss" in keys else 0
        return means, total

    def _accumulate(self, sums, counts, losses: Mapping[str, torch.Tensor], n: int) -> None:
        # Detached device tensors: no .item() (and no host sync) per step.
        for k, v in losses.items():
            v = v.detach().to(self._acc_dtype()) * n
            sums[k] = sums[k] + v if k in sums else v
            counts[k] = counts.get(k, 0) + n

    # ------------------------------------------------------------------ epochs

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], int]:
        cfg = self.config
        s = _derive_seed(cfg.seed, epoch, self.rank, 1)
        torch.manual_seed(s)  # dropout etc.: a function of (seed, epoch, rank), so resume is exact
        np.random.seed(s)
        random.seed(s)
        sampler = DistributedSampler(
            self.train_data, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=cfg.seed
        )
        sampler.set_epoch(epoch)
        loader = self._loader(
            self.train_data,
            sampler,
            _derive_seed(cfg.seed, epoch, self.rank, 2),
            batch_size=self.local_batch_size,
            drop_last=cfg.drop_last,
        )
        self._train_module.train()
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        show = self._progress()
        it = loader
        bar = None
        if show:
            from tqdm import tqdm

            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False, file=sys.stderr)
            it = bar
        try:
            for step, batch in enumerate(it):
                batch = move_to_device(batch, self.device, channels_last=self.channels_last)
                with self._autocast():
                    out = self._train_module(batch)
                losses = _as_losses(out, self.device, training=True)
                self.optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                n = _batch_len(batch) or 1
                self._accumulate(sums, counts, losses, n)
                if bar is not None and (step + 1) % cfg.log_every == 0:
                    bar.set_postfix(loss=f"{float(sums['loss']) / counts['loss']:.4g}")  # one sync per interval
        finally:
            if bar is not None:
                bar.close()
        return self._reduce(sums, counts)

    def _evaluate(self, dataset: Dataset, step_fn: StepFn, batch_size: int) -> tuple[dict[str, float], int]:
        sampler = _ShardSampler(len(dataset), self.rank, self.world_size)
        loader = self._loader(dataset, sampler, _derive_seed(self.config.seed, 0, self.rank, 3), batch_size=batch_size)
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        try:
            with torch.no_grad():
                for batch in loader:
                    batch = move_to_device(batch, self.device, channels_last=self.channels_last)
                    with self._autocast():
                        out = step_fn(self.model, batch)
                    self._accumulate(sums, counts, _as_losses(out, self.device, training=False), _batch_len(batch) or 1)
        finally:
            self.model.train(was_training)
        return self._reduce(sums, counts)

    def evaluate(self, dataset: Dataset, *, step_fn: StepFn | None = None, batch_size: int | None = None) -> dict[str, float]:
        """Mean of every term of ``step_fn`` over ``dataset`` (eval mode, no gradients).

        Under ``torchrun`` the dataset is sharded over the ranks and the means are exact global
        means on every rank; this uses collectives, so call it on **every** rank (not only
        inside ``if is_main_process():``).
        """
        means, _ = self._evaluate(dataset, step_fn or self.step_fn, batch_size or self.local_batch_size)
        return means

    def predict(self, dataset: Dataset, fn: Callable | None = None, *, batch_size: int | None = None):
        """Run ``fn(model, batch)`` over ``dataset`` in order and concatenate the outputs on CPU.

        ``fn`` returns a tensor, or a tuple / dict of tensors (concatenated along dim 0 each);
        default ``model(batch[0])`` for tuple batches, else ``model(batch)``. bfloat16 outputs
        are returned as float32. Not sharded under ``torchrun``: every rank predicts everything.
        """
        if fn is None:
            def fn(model, batch):
                return model(batch[0]) if isinstance(batch, (list, tuple)) else model(batch)

        loader = self._loader(dataset, _ShardSampler(len(dataset), 0, 1), 0, batch_size=batch_size or self.local_batch_size)
        was_training = self.model.training
        self.model.eval()
        outs = []
        try:
            with torch.no_grad():
                for batch in loader:
                    batch = move_to_device(batch, self.device, channels_last=self.channels_last)
                    with self._autocast():
                        outs.append(_to_cpu(fn(self.model, batch)))
        finally:
            self.model.train(was_training)
        return _concat(outs)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """Everything a resume needs, in tensors and plain Python types."""
        import atlaskit

        return {
            "format": CHECKPOINT_FORMAT,
            "epochs_done": self.epochs_done,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "best_metric": self.best_metric,
            "bad_epochs": self.bad_epochs,
            "history": self.history.to_dict(),
            "rng": _rng_state(),
            "fingerprint": self.fingerprint,
            "config": self._fingerprint_payload,
            "train_config": self.config.to_dict(),
            "versions": {"torch": str(torch.__version__), "atlaskit": str(atlaskit.__version__)},
        }

    def _check_compatible(self, ckpt: Mapping, path: Path) -> None:
        if ckpt.get("fingerprint") == self.fingerprint:
            return
        diff = _config_diff(ckpt.get("config") or {}, self._fingerprint_payload)
        detail = "; ".join(diff) if diff else "no key differs (the fingerprint method changed)"
        raise CheckpointError(
            f"{path} was written for a different configuration (checkpoint fingerprint "
            f"{str(ckpt.get('fingerprint'))[:12]}, current {self.fingerprint[:12]}): {detail}. "
            "Use another checkpoint_dir, or fit(resume=False) to start over and overwrite it."
        )

    def load_state_dict(self, ckpt: Mapping, *, path: Path | str = "<checkpoint>") -> None:
        """Restore model, optimizer, scheduler, counters, history and RNG states."""
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: the model weights do not fit this model (was model_config left out?): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimizer/scheduler state does not fit: {exc}") from None
        self.epochs_done = int(ckpt["epochs_done"])
        self.best_metric = ckpt.get("best_metric")
        self.bad_epochs = int(ckpt.get("bad_epochs", 0))
        self.history = History.from_dict(ckpt["history"])
        if ckpt.get("rng") is not None:
            _set_rng_state(ckpt["rng"])

    def _resume(self, required: bool) -> bool:
        path = self.last_path
        if path is None:
            if required:
                raise ParameterError("fit(resume=True) needs TrainConfig.checkpoint_dir")
            return False
        if not path.exists():
            if required:
                raise CheckpointError(f"fit(resume=True) but there is no checkpoint at {path}")
            return False
        try:
            ckpt = load_checkpoint(path, map_location=self.device)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}. Delete it, or call fit(resume=False) to start over and overwrite it.") from None
        self._check_compatible(ckpt, path)
        self.load_state_dict(ckpt, path=path)
        return True

    def _save(self, improved: bool) -> None:
        if self.checkpoint_dir is None or not self.is_main:
            return
        state = self.state_dict()
        if improved:
            # best first: an interruption between the two writes leaves last.pt one epoch back,
            # and redoing that epoch rewrites the same best.pt.
            best = {k: state[k] for k in ("format", "epochs_done", "model", "best_metric", "fingerprint", "config", "versions")}
            best["monitor"] = self.config.monitor
            save_checkpoint(best, self.best_path)
        save_checkpoint(state, self.last_path)

    def load_best(self) -> int:
        """Load the weights of ``best.pt`` into the model; returns that checkpoint's epoch."""
        if self.best_path is None:
            raise ParameterError("load_best() needs TrainConfig.checkpoint_dir")
        ckpt = load_checkpoint(self.best_path, map_location=self.device)
        self._check_compatible(ckpt, self.best_path)
        self.model.load_state_dict(ckpt["model"])
        return int(ckpt["epochs_done"])

    # ------------------------------------------------------------------ fit

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        d = self.config.min_delta
        return value < self.best_metric - d if self.config.mode == "min" else value > self.best_metric + d

    def fit(self, resume: bool | str = "auto", *, callback: Callable | None = None) -> History:
        """Train until ``config.epochs`` or early stopping; returns :attr:`history`.

        Parameters
        ----------
        resume : {"auto", True, False}
            ``"auto"``: continue from ``checkpoint_dir/last.pt`` when it exists (a checkpoint of
            another configuration, or an unreadable one, raises :class:`CheckpointError` rather
            than being overwritten). ``True``: a checkpoint must exist. ``False``: ignore and
            overwrite checkpoints on disk.
        callback : callable, optional
            ``callback(trainer, epoch, logs)`` after every epoch's checkpoint, with ``logs`` =
            ``{"train": {...}, "val": {...}, "lr": float}``; returning True stops training.

        Notes
        -----
        An exception or KeyboardInterrupt during an epoch leaves the checkpoint of the last
        complete epoch intact; the message says how to resume. A run that already finished (or
        stopped early) returns its stored history at once.
        """
        cfg = self.config
        if resume not in ("auto", True, False):
            raise ParameterError(f"resume must be 'auto', True or False, got {resume!r}")
        if resume is not False:
            self._resume(required=resume is True)
        if cfg.deterministic:
            seed_everything(cfg.seed, deterministic=True)
        epoch = self.epochs_done
        ebar = None
        if self._progress() and not self.history.stopped_early and self.epochs_done < cfg.epochs:
            from tqdm import tqdm

            ebar = tqdm(total=cfg.epochs, initial=self.epochs_done, desc="training", unit="epoch", file=sys.stderr)
        try:
            for epoch in range(self.epochs_done, cfg.epochs):
                if self.history.stopped_early:
                    break
                lr = float(self.optimizer.param_groups[0]["lr"])
                t0 = time.perf_counter()
                train_logs, n_seen = self._train_epoch(epoch)
                t_train = time.perf_counter() - t0
                val_logs: dict[str, float] = {}
                if self.val_data is not None and len(self.val_data):
                    val_logs, _ = self._evaluate(self.val_data, self.step_fn, self.local_batch_size)
                elapsed = time.perf_counter() - t0
                if not math.isfinite(train_logs.get("loss", float("nan"))):
                    raise TrainingError(
                        f"the training loss is {train_logs.get('loss')} in epoch {epoch + 1}; lower the "
                        "learning rate or set grad_clip"
                    )
                watched = val_logs or train_logs
                if cfg.monitor not in watched:
                    raise ParameterError(
                        f"monitor {cfg.monitor!r} is not a logged term; logged: {sorted(watched)}"
                    )
                improved = self._improved(watched[cfg.monitor])
                if improved:
                    self.best_metric, self.bad_epochs = float(watched[cfg.monitor]), 0
                    self.history.best_epoch = epoch + 1
                else:
                    self.bad_epochs += 1
                h = self.history
                h.epochs.append(epoch + 1)
                h.train.append(train_logs)
                h.val.append(val_logs)
                h.lr.append(lr)
                h.epoch_time.append(elapsed)
                h.images_per_s.append(n_seen / t_train if t_train > 0 else float("nan"))
                if isinstance(self.scheduler, _Plateau):
                    self.scheduler.step(improved)
                elif self.scheduler is not None:
                    self.scheduler.step()
                if cfg.early_stopping_patience is not None and self.bad_epochs >= cfg.early_stopping_patience:
                    h.stopped_early = True
                self.epochs_done = epoch + 1
                self._save(improved)
                if ebar is not None:
                    post = {"loss": f"{train_logs['loss']:.4g}"}
                    if "loss" in val_logs:
                        post["val_loss"] = f"{val_logs['loss']:.4g}"
                    ebar.set_postfix(post, refresh=False)
                    ebar.update(1)
                if callback is not None and callback(self, epoch + 1, {"train": train_logs, "val": val_logs, "lr": lr}):
                    break
        except BaseException as exc:
            self._explain_interruption(exc, epoch)
            raise
        finally:
            if ebar is not None:
                ebar.close()
        return self.history

    def _explain_interruption(self, exc: BaseException, epoch: int) -> None:
        if self.last_path is not None and self.epochs_done > 0:
            msg = (
                f"Training stopped during epoch {epoch + 1}; {self.last_path} holds the complete epoch "
                f"{self.epochs_done}. Call fit() again with the same configuration (resume='auto') to "
                f"continue from epoch {self.epochs_done + 1}."
            )
        elif self.last_path is not None:
            msg = f"Training stopped during epoch {epoch + 1}, before any epoch completed; nothing to resume from."
        else:
            msg = (
                f"Training stopped during epoch {epoch + 1}; no checkpoint_dir was set, so nothing was saved "
                "(set TrainConfig.checkpoint_dir to be able to resume)."
            )
        if hasattr(exc, "add_note"):
            exc.add_note(msg)
        if isinstance(exc, KeyboardInterrupt) and self.is_main:
            print(msg, file=sys.stderr)


def _to_cpu(out):
    if isinstance(out, torch.Tensor):
        t = out.detach().to("cpu")
        return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
    if isinstance(out, Mapping):
        return {k: _to_cpu(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_to_cpu(v) for v in out)
    return out


def _concat(outs: Sequence):
    if not outs:
        return None
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat([o.reshape(1) if o.dim() == 0 else o for o in outs])
    if isinstance(first, Mapping):
        return {k: _concat([o[k] for o in outs]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_concat([o[i] for o in outs]) for i in range(len(first)))
    return list(outs)
