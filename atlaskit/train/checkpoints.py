"""Training history (:class:`History`) and checkpoint files: atomic writes and safe
(``weights_only``) reads."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from atlaskit.errors import AtlaskitError

CHECKPOINT_FORMAT = "atlaskit.train/1"


class CheckpointError(AtlaskitError, RuntimeError):
    """A checkpoint cannot be used: unreadable (truncated, corrupt), unsafe (holds objects other
    than tensors and plain Python types), or written for a different configuration."""


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
