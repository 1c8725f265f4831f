"""Training history (:class:`History`) and checkpoint files: atomic writes and safe
(``weights_only``) reads."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import re
import struct
import tempfile
import warnings
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


#: key of the content checksum inside every checkpoint written by :func:`save_checkpoint`
INTEGRITY_KEY = "integrity"
DIGEST_METHOD = "atlaskit.content-sha256/1"
#: the entries whose floating-point tensors are model weights, checked finite on load
WEIGHT_KEYS = ("model", "state_dict")


class CheckpointWarning(UserWarning):
    """A checkpoint was loaded without being verified (written before checkpoints carried a checksum)."""


class _Undigestible(TypeError):
    pass


def _feed(h, obj) -> None:
    """Feed a canonical byte form of ``obj`` (tensors and plain Python types) to the hash ``h``.

    Type tags and lengths keep different structures apart (``{1: x}`` vs ``{"1": x}``, ``[a, b]``
    vs ``(a, b)``); dict order is insertion order, which pickling preserves.
    """
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.is_sparse or t.is_quantized:
            raise _Undigestible(f"cannot checksum a {t.layout}/{t.dtype} tensor")
        t = t.cpu().contiguous().reshape(-1)
        h.update(b"T%s%s;" % (str(obj.dtype).encode(), repr(tuple(obj.shape)).encode()))
        if t.numel():
            h.update(t.view(torch.uint8).numpy())
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        if a.dtype.hasobject:
            raise _Undigestible("cannot checksum an object array")
        h.update(b"A%s%s;" % (a.dtype.str.encode(), repr(a.shape).encode()))
        h.update(a.reshape(-1).view(np.uint8))
    elif isinstance(obj, Mapping):
        h.update(b"D%d;" % len(obj))
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(b"%s%d;" % (b"L" if isinstance(obj, list) else b"U", len(obj)))
        for v in obj:
            _feed(h, v)
    elif obj is None:
        h.update(b"N")
    elif isinstance(obj, (bool, np.bool_)):
        h.update(b"B1" if obj else b"B0")
    elif isinstance(obj, (int, np.integer)):
        h.update(b"I%d;" % int(obj))
    elif isinstance(obj, (float, np.floating)):
        h.update(b"F" + struct.pack("<d", float(obj)))
    elif isinstance(obj, str):
        b = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d;" % len(b) + b)
    elif isinstance(obj, bytes):
        h.update(b"Y%d;" % len(obj) + obj)
    elif isinstance(obj, (torch.dtype, torch.device, torch.Size)):
        h.update(b"O" + repr(obj).encode() + b";")
    else:
        raise _Undigestible(f"cannot checksum a {type(obj).__name__}")


def checkpoint_digest(obj: Mapping) -> str:
    """sha256 (hex) of a checkpoint's content: every tensor's dtype, shape and bytes and every plain
    value, in a canonical form, the ``integrity`` entry excluded.

    Computed over the content rather than the file's bytes, so the checksum can travel inside the
    file it checks (one atomic write, nothing to keep in step beside it) and is the same wherever
    the tensors were mapped on load.

    Raises
    ------
    TypeError
        ``obj`` holds something other than tensors, arrays and plain Python types.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in obj.items() if k != INTEGRITY_KEY})
    return h.hexdigest()


def save_checkpoint(obj: Mapping, path: str | os.PathLike) -> Path:
    """Write ``obj`` with :func:`torch.save` atomically: to a temporary file in the same folder,
    flushed to disk, then renamed over ``path`` (``os.replace``), so an interruption leaves either
    the old file or the new one, never half of one.

    A mapping gets one more entry, ``"integrity"``: ``{"method", "sha256"}``, the sha256 of its
    content (:func:`checkpoint_digest`), which :func:`verify_checkpoint` checks on load. It is
    embedded rather than written to a sidecar file so that the file stays self-contained (copying
    it copies its check) and the write stays one atomic rename (a sidecar written separately could
    be left out of step by a crash between the two writes and make a good file look corrupt).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, Mapping):
        try:
            digest = checkpoint_digest(obj)
        except _Undigestible:
            digest = None  # torch.load(weights_only=True) refuses such a file anyway
        if digest is not None:
            obj = {**{k: v for k, v in obj.items() if k != INTEGRITY_KEY},
                   INTEGRITY_KEY: {"method": DIGEST_METHOD, "sha256": digest}}
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


def _nonfinite_weights(obj: Mapping) -> list[str]:
    """Names of the floating-point weight tensors (under :data:`WEIGHT_KEYS`) holding NaN or inf."""
    bad = []
    for key in WEIGHT_KEYS:
        weights = obj.get(key)
        if not isinstance(weights, Mapping):
            continue
        for name, t in weights.items():
            if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) \
                    and not bool(torch.isfinite(t).all()):
                bad.append(f"{key}.{name}")
    return bad


def verify_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read any checkpoint written by :func:`save_checkpoint` safely and check it; returns its content.

    Read with ``torch.load(weights_only=True)`` (loading never runs code); the ``integrity``
    checksum is recomputed and compared, and removed from the result; the model weights (the
    ``"model"`` or ``"state_dict"`` entry) must be finite. A file written before checkpoints
    carried a checksum is accepted with a :class:`CheckpointWarning`.

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file, unsafe content, checksum mismatch (the file changed
        after it was written), or NaN/inf weights; the message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
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
    if not isinstance(obj, dict):
        return obj
    stored = obj.pop(INTEGRITY_KEY, None)
    if stored is None:
        warnings.warn(f"{path} carries no checksum (written by an older atlaskit): loaded without "
                      "verifying its content", CheckpointWarning, stacklevel=2)
    else:
        if not isinstance(stored, Mapping) or stored.get("method") != DIGEST_METHOD:
            raise CheckpointError(f"{path}: unknown checksum method "
                                  f"{stored.get('method') if isinstance(stored, Mapping) else stored!r}; "
                                  f"this atlaskit verifies {DIGEST_METHOD!r}")
        try:
            actual = checkpoint_digest(obj)
        except TypeError as exc:
            raise CheckpointError(f"{path}: cannot verify its content ({exc})") from None
        if actual != stored.get("sha256"):
            raise CheckpointError(
                f"{path} failed its integrity check (content sha256 {actual[:12]}…, written as "
                f"{str(stored.get('sha256'))[:12]}…): the file changed after it was written (disk "
                "corruption or an edit). Do not use it: delete it (or its run folder) to train again, "
                "or restore a good copy"
            )
    bad = _nonfinite_weights(obj)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path} holds non-finite (NaN or inf) weights in {shown}: the training that "
                              "wrote it diverged or the file is damaged. Delete it (or its run folder) to "
                              "train again")
    return obj


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a trainer checkpoint with ``torch.load(weights_only=True)``, verified
    (:func:`verify_checkpoint`: checksum, finite weights).

    Raises
    ------
    CheckpointError
        The file is missing, truncated or corrupt, holds objects other than tensors and plain
        Python types (refused: unpickling them could run code), fails its checksum, holds NaN or
        inf weights, or is not an atlaskit checkpoint.
    """
    path = Path(path)
    obj = verify_checkpoint(path, map_location=map_location)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an atlaskit training checkpoint (format {CHECKPOINT_FORMAT!r})")
    return obj


# --------------------------------------------------------------------------- safetensors weights

#: metadata key of the content checksum inside a ``.safetensors`` file written by :func:`save_safetensors`
SAFETENSORS_INTEGRITY_KEY = "atlaskit.integrity"


def _safetensors_digest(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """:func:`checkpoint_digest` of the tensors (sorted by name: the file's order is not the
    state dict's) and of the string metadata, its checksum entry excluded."""
    return checkpoint_digest({
        "tensors": {k: tensors[k] for k in sorted(tensors)},
        "metadata": {k: str(metadata[k]) for k in sorted(metadata) if k != SAFETENSORS_INTEGRITY_KEY},
    })


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write tensors (a model's ``state_dict``) and string ``metadata`` as a ``.safetensors`` file,
    atomically (temporary file, then ``os.replace``).

    A safetensors file holds a JSON header and raw tensor bytes, never code, so any tool reads it
    safely (``safetensors.torch.load_file``). The metadata gets one more entry,
    :data:`SAFETENSORS_INTEGRITY_KEY`: the content sha256 of the tensors and the other metadata
    (as :func:`save_checkpoint` embeds one), which :func:`load_safetensors` checks.
    """
    from safetensors.torch import save as safetensors_bytes

    from atlaskit._atomic import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # own, contiguous CPU copies: safetensors refuses tensors that share memory (views, tied weights)
    plain = {str(k): v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items() if k != SAFETENSORS_INTEGRITY_KEY}
    meta[SAFETENSORS_INTEGRITY_KEY] = f"{DIGEST_METHOD}:{_safetensors_digest(plain, meta)}"
    data = safetensors_bytes(plain, metadata=meta)
    with atomic_write(path) as fh:
        fh.write(data)
    return path


def load_safetensors(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                     ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a :func:`save_safetensors` file, verified: ``(tensors, metadata)``.

    The embedded checksum is recomputed (and removed from the returned metadata) and the
    floating-point tensors must be finite; a file without a checksum (written by another tool) is
    read with a :class:`CheckpointWarning`.

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file, a checksum that does not match (the file changed
        after it was written), or NaN/inf tensors; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # SafetensorError (bad header, truncated), OSError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable .safetensors file (corrupt or truncated?): {first}") from None
    stored = metadata.pop(SAFETENSORS_INTEGRITY_KEY, None)
    if stored is None:
        warnings.warn(f"{path} carries no atlaskit checksum: loaded without verifying its content",
                      CheckpointWarning, stacklevel=2)
    else:
        method, _, digest = stored.rpartition(":")
        if method != DIGEST_METHOD:
            raise CheckpointError(f"{path}: unknown checksum method {method!r}; this atlaskit verifies {DIGEST_METHOD!r}")
        actual = _safetensors_digest(tensors, metadata)
        if actual != digest:
            raise CheckpointError(
                f"{path} failed its integrity check (content sha256 {actual[:12]}…, written as {digest[:12]}…): "
                "the file changed after it was written. Do not use it: export it again (atlaskit export-weights)"
            )
    bad = _nonfinite_weights({"model": tensors})
    if bad:
        shown = ", ".join(b.removeprefix("model.") for b in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path} holds non-finite (NaN or inf) weights in {shown}")
    return {k: v.to(map_location) for k, v in tensors.items()}, metadata
