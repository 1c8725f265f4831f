"""Batches and training steps: moving batches to the device, the ``step_fn`` contract
(:func:`default_step`, :func:`classification_step`) and its checks, and the evaluation sampler."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Sampler

from atlaskit.errors import AtlaskitError, ParameterError

StepFn = Callable[[nn.Module, Any], Mapping[str, Any]]


class TrainingError(AtlaskitError, RuntimeError):
    """Training cannot go on: ``step_fn`` broke the contract or the loss became NaN/inf."""


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
