"""Seeding of the global random number generators, per-epoch seed derivation and the RNG
states stored in checkpoints."""
from __future__ import annotations

import os
import random
from typing import Mapping

import numpy as np
import torch


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
