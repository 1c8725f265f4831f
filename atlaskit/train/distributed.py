"""Process rank / world size under ``torchrun``, process-group set-up and device resolution."""
from __future__ import annotations

import atexit
import contextlib
import os

import torch
import torch.distributed as dist

from atlaskit.errors import ParameterError


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

