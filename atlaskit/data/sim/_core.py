"""Shared plumbing of the simulator: deterministic per-item random streams, the batch container,
argument checks.

Determinism
-----------
Every simulated image owns one :class:`numpy.random.Generator`, seeded from
``SeedSequence([seed, style, *hash(name), index])`` where ``name`` is the protein (gene, ORF or
label-set id) and ``index`` the image's number for that protein. All random numbers an image
uses (cell layout, textures, puncta, camera noise) come from its own generator, in a fixed order,
so an image's pixels depend only on ``(seed, style, name, index)`` — not on the batch it was
rendered in, on the other proteins of the batch, on global numpy state or on thread count.
Per-protein parameters (abundance, puncta size, texture scale …) come from a separate generator
seeded with ``(seed, style, *hash(name), PROTEIN_STREAM)``.
"""
from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError

#: Style codes mixed into every seed, so that a protein name shared by two styles gets
#: independent images in each.
STYLE_CODES = {"opencell": 11, "hpa": 12, "yeast": 13, "yeast_noncell": 14}
#: Index reserved for the per-protein parameter stream (image indices must stay below it).
PROTEIN_STREAM = 2**32 - 1


def name_key(name: str) -> tuple[int, int]:
    """Two 32-bit integers from a stable hash (BLAKE2b) of ``name``; Python's ``hash`` is salted."""
    d = hashlib.blake2b(str(name).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(d[:4], "little"), int.from_bytes(d[4:], "little")


def check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_count(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def item_generator(seed: int, style: str, name: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``name`` in ``style`` (see module docstring)."""
    if not 0 <= int(index) < PROTEIN_STREAM:
        raise ValueError(f"image index must be in [0, 2**32 - 1), got {index!r}")
    ss = np.random.SeedSequence([check_seed(seed), STYLE_CODES[style], *name_key(name), int(index)])
    return np.random.Generator(np.random.PCG64(ss))


def protein_generator(seed: int, style: str, name: str) -> np.random.Generator:
    """The generator of the per-protein parameters of ``name`` in ``style``."""
    ss = np.random.SeedSequence([check_seed(seed), STYLE_CODES[style], *name_key(name), PROTEIN_STREAM])
    return np.random.Generator(np.random.PCG64(ss))


class ItemRNG:
    """A batch of per-image generators that draws stacked arrays, one slice per image.

    ``rng.normal((H, W))`` returns a ``(b, H, W)`` array whose slice ``i`` comes from generator
    ``i``. :meth:`take` selects a subset that shares the same generators (drawing from the subset
    advances them), which is how a compartment present in only some images of a batch draws its
    random numbers without disturbing the others.
    """

    def __init__(self, gens: Sequence[np.random.Generator]):
        self.gens = list(gens)

    def __len__(self) -> int:
        return len(self.gens)

    def take(self, idx) -> "ItemRNG":
        return ItemRNG([self.gens[i] for i in np.asarray(idx).ravel()])

    def normal(self, shape=(), dtype=np.float32) -> np.ndarray:
        shape = tuple(shape)
        if not shape:
            return np.array([g.standard_normal() for g in self.gens], dtype=dtype)
        out = np.empty((len(self.gens), *shape), dtype=dtype)
        for g, o in zip(self.gens, out):
            g.standard_normal(dtype=dtype, out=o)
        return out

    def random(self, shape=(), dtype=np.float32) -> np.ndarray:
        shape = tuple(shape)
        if not shape:
            return np.array([g.random() for g in self.gens], dtype=dtype)
        out = np.empty((len(self.gens), *shape), dtype=dtype)
        for g, o in zip(self.gens, out):
            g.random(dtype=dtype, out=o)
        return out

    def uniform(self, low=0.0, high=1.0, shape=()) -> np.ndarray:
        """float64 uniform draws in [low, high); ``low``/``high`` broadcast against ``shape``."""
        u = self.random(shape, dtype=np.float64)
        return low + (high - low) * u

    def integers(self, low, high, shape=()) -> np.ndarray:
        return np.stack([g.integers(low, high, size=shape) for g in self.gens]) if self.gens else np.zeros((0, *shape), int)


def shot_noise(lam: np.ndarray, rng: ItemRNG, exact_below: float = 12.0) -> np.ndarray:
    """Poisson photon counts for expected counts ``lam`` (b, ...), float32.

    Exact Poisson draws where ``lam < exact_below`` (dim pixels, where the distribution is
    skewed); elsewhere the normal approximation ``lam + sqrt(lam) z`` rounded to integers, which
    is indistinguishable at these counts and four times cheaper than numpy's Poisson sampler.
    """
    out = np.empty(lam.shape, np.float32)
    for g, lo, o in zip(rng.gens, lam, out):
        z = g.standard_normal(lo.shape, dtype=np.float32)
        np.multiply(np.sqrt(lo), z, out=o)
        o += lo
        low = lo < exact_below
        if low.any():
            o[low] = g.poisson(lo[low].astype(np.float64))
    np.rint(out, out=out)
    np.maximum(out, 0, out=out)
    return out


@dataclass
class SimBatch:
    """A batch of simulated images with their ground truth.

    Attributes
    ----------
    images : numpy.ndarray
        ``(N, C, H, W)`` float32, normalised as described by ``meta["normalization"]``.
    meta : pandas.DataFrame
        One row per image (``N`` rows): protein / label / cell-line / field ids and the
        rendering parameters of the image (see the style's function for the columns).
    channels : tuple of str
        Channel names, ``C`` of them, e.g. ``("protein", "nucleus")``.
    cell_masks : numpy.ndarray or None
        ``(N, H, W)`` int32 instance labels of the cells, 0 = background, ids 1..n per image.
    nucleus_masks : numpy.ndarray or None
        ``(N, H, W)`` int32 instance labels of the nuclei, same ids as ``cell_masks``.
    cells : pandas.DataFrame or None
        One row per cell instance (``image`` = row of ``meta``, ``cell_id`` = id in the masks,
        per-cell labels and parameters).
    """

    images: np.ndarray
    meta: pd.DataFrame
    channels: tuple
    cell_masks: np.ndarray | None = None
    nucleus_masks: np.ndarray | None = None
    cells: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        masks = "with masks" if self.cell_masks is not None else "no masks"
        return f"SimBatch({len(self)} images {tuple(self.images.shape[1:])}, channels={self.channels}, {masks})"

    @staticmethod
    def concat(batches: Iterable["SimBatch"]) -> "SimBatch":
        """Concatenate batches of one style (row order kept; ``cells.image`` renumbered)."""
        batches = list(batches)
        if not batches:
            raise ValueError("SimBatch.concat needs at least one batch")
        if len(batches) == 1:
            return batches[0]
        images = np.concatenate([b.images for b in batches])
        meta = pd.concat([b.meta for b in batches], ignore_index=True)
        cm = None if batches[0].cell_masks is None else np.concatenate([b.cell_masks for b in batches])
        nm = None if batches[0].nucleus_masks is None else np.concatenate([b.nucleus_masks for b in batches])
        cells = None
        if batches[0].cells is not None:
            parts, offset = [], 0
            for b in batches:
                c = b.cells.copy()
                c["image"] = c["image"] + offset
                parts.append(c)
                offset += len(b)
            cells = pd.concat(parts, ignore_index=True)
        return SimBatch(images, meta, batches[0].channels, cm, nm, cells)


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> str:
    import difflib

    m = difflib.get_close_matches(str(name), list(choices), n=n)
    return f" (did you mean {', '.join(map(repr, m))}?)" if m else ""


def unknown(kind: str, name, choices: Iterable[str]) -> DataError:
    choices = list(choices)
    return DataError(f"unknown {kind} {name!r}{close_matches(name, choices)}; {len(choices)} are known")


def default_workers() -> int:
    """Threads used to render chunks in parallel: ``ATLASKIT_SIM_WORKERS`` or min(2, CPUs)."""
    import os

    env = os.environ.get("ATLASKIT_SIM_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"ATLASKIT_SIM_WORKERS must be an integer, got {env!r}") from None
        return max(1, n)
    return max(1, min(2, os.cpu_count() or 1))


def map_ordered(fn, jobs, workers: int | None = None):
    """``map(fn, jobs)`` on a few threads, results in order, at most ``workers + 1`` pending.

    numpy, scipy.fft and the random generators release the GIL on large arrays, so chunks
    render in parallel; every image uses only its own generator, so the pixels do not depend
    on ``workers``.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers <= 1:
        for j in jobs:
            yield fn(j)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending = deque()
        for j in jobs:
            pending.append(ex.submit(fn, j))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
