"""What every study pipeline shares: choosing a preset by scale, and CPU thread control."""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Iterator, Mapping, TypeVar

import numpy as np
import torch

from atlaskit.errors import ParameterError

__all__ = ["select_preset", "torch_threads", "usable_cpus"]

P = TypeVar("P")


def select_preset(presets: Mapping[str, P], scale: str, **counts: Any) -> P:
    """The preset of ``scale`` with the positive-integer fields in ``counts`` replaced.

    ``counts`` left at None keep the preset's value (e.g. ``epochs=None``).

    Raises
    ------
    ParameterError
        ``scale`` is not a key of ``presets``, or a count is not a positive integer.
    """
    if scale not in presets:
        raise ParameterError(f"scale must be one of {', '.join(map(repr, presets))}, not {scale!r}")
    changes: dict[str, int] = {}
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be a positive integer or None, not {value!r}")
        changes[name] = int(value)
    preset = presets[scale]
    return dataclasses.replace(preset, **changes) if changes else preset


@contextlib.contextmanager
def torch_threads(n: int | None, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block with ``n`` torch threads when ``device`` is the CPU; restore afterwards.

    ``n=None`` (or a GPU device) leaves torch's setting alone. Small CPU presets use one thread:
    their convolutions gain nothing from a second one, and one thread makes their numbers
    independent of the machine's core count.
    """
    dev = str(device)
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if n is None or not dev.startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
