"""The :class:`Trainer`: optimizer and schedule set-up, epochs, evaluation, prediction,
checkpointing and resume (see :mod:`atlaskit.train` for the contract)."""
from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from atlaskit.data.datasets import make_loader
from atlaskit._progress import report
from atlaskit.errors import ParameterError
from atlaskit.train.checkpoints import CHECKPOINT_FORMAT, CheckpointError, History, load_checkpoint, save_checkpoint
from atlaskit.train.config import TrainConfig, _config_diff, config_fingerprint
from atlaskit.train.distributed import _init_distributed, get_rank, get_world_size, resolve_device
from atlaskit.train.schedules import _Plateau
from atlaskit.train.seeding import _derive_seed, _rng_state, _set_rng_state, seed_everything
from atlaskit.train.steps import (
    StepFn,
    TrainingError,
    _as_losses,
    _batch_len,
    _ShardSampler,
    _StepModule,
    default_step,
    move_to_device,
)


def _no_progress_env() -> bool:
    v = os.environ.get("ATLASKIT_NO_PROGRESS")
    return v is not None and v.strip().lower() not in ("", "0", "false", "no")


def _stderr_is_notebook_output() -> bool:
    """Whether stderr is a Jupyter kernel's output stream: its text is stored in the notebook (a
    papermill run keeps every carriage-return refresh of a bar), so no tqdm bar is drawn there."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


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
        impl = _optimizer_implementation(cfg.fused_optimizer, params)
        if cfg.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl)
        elif cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl)
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay, **impl
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
        return (bool(self.config.progress) and not _no_progress_env() and self.is_main
                and not _stderr_is_notebook_output())

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
                if self.is_main:
                    report(self._epoch_line(epoch, train_logs, val_logs, elapsed))
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

    def _epoch_line(self, epoch: int, train_logs: Mapping, val_logs: Mapping, seconds: float) -> str:
        """One line per epoch for the terminal of `atlaskit run` (:func:`atlaskit._progress.report`)."""
        where = f"{self.checkpoint_dir.parent.name}/{self.checkpoint_dir.name} " if self.checkpoint_dir else ""
        parts = [f"{where}epoch {epoch + 1}/{self.config.epochs}", f"loss {train_logs.get('loss', float('nan')):.4g}"]
        if "loss" in val_logs:
            parts.append(f"val loss {val_logs['loss']:.4g}")
        monitor = self.config.monitor
        if monitor != "loss" and monitor in val_logs:
            parts.append(f"val {monitor} {val_logs[monitor]:.4g}")
        parts.append(f"{seconds:.1f} s" + (" (best)" if self.history.best_epoch == epoch + 1 else ""))
        return " · ".join(parts)

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


def _optimizer_implementation(choice: bool | str, params: Sequence[torch.Tensor]) -> dict:
    """``{"fused": True}`` where the fused optimizer step can run (TrainConfig.fused_optimizer).

    torch's fused Adam/AdamW/SGD kernels need every parameter to be a floating-point tensor on one
    of its supported device types; otherwise ``"auto"`` keeps torch's default implementation.
    """
    if choice is False:
        return {}
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = {p.device.type for p in params}
    supported = set(_get_fused_kernels_supported_devices())
    usable = devices <= supported and all(torch.is_floating_point(p) for p in params)
    if not usable and choice is True:
        raise ParameterError(
            f"fused_optimizer=True, but torch has no fused optimizer step for parameters on {sorted(devices)}; "
            "use fused_optimizer='auto' or False"
        )
    return {"fused": True} if usable else {}


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
