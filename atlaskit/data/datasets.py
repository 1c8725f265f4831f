"""PyTorch datasets over an :class:`~atlaskit.data.store.ArrayStore`, grouped splits, augmentations.

* :class:`CropDataset` reads items of a store through its memory map and returns
  ``(image, label)`` with the image a float32 tensor (C, H, W).
* :func:`protein_disjoint_split` assigns whole proteins to train / val / test (no protein in two
  splits), optionally stratified by a per-protein class (deepGPS: 4:1, stratified by the
  protein's localization). :func:`within_group_split` splits the fields of view *of each protein*
  instead, which is what a protein-identity pretext task needs (cytoself classifies the protein
  id, so its val/test sets contain the same proteins as training; the public cytoself code splits
  each protein's images by field of view, 8:1:1).
* :class:`RandomRot90Flip` (the 8 symmetries of the square: cytoself, DeepYeast),
  :class:`RandomChannelGain` (a random brightness per channel) and :class:`Compose` are
  picklable classes that draw from a ``numpy.random.Generator`` passed in by
  the dataset, so augmentation is reproducible.
* :func:`make_loader` builds a DataLoader with a seeded generator and a ``worker_init_fn`` that
  reseeds numpy, :mod:`random` and the dataset's augmentation generator in every worker, so runs
  with the same seed and worker count give the same batches.
"""
from __future__ import annotations

import os
import random
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError

__all__ = [
    "CropDataset",
    "protein_disjoint_split",
    "within_group_split",
    "split_indices",
    "RandomRot90Flip",
    "RandomChannelGain",
    "Compose",
    "make_loader",
    "seed_worker",
]


# --------------------------------------------------------------------------- augmentations


class RandomRot90Flip:
    """Random element of the dihedral group of the square: 0/90/180/270 degree rotation, then an
    optional horizontal flip, each of the 8 results equally likely.

    cytoself augments by 90-degree rotations and flips; DeepYeast by rotations and flips as well.
    Works on arrays or tensors shaped (..., H, W) with H == W for odd rotations.
    """

    accepts_rng = True

    def __init__(self, p_flip: float = 0.5):
        self.p_flip = float(p_flip)

    def __call__(self, x, rng: np.random.Generator | None = None):
        rng = rng if rng is not None else np.random.default_rng()
        k = int(rng.integers(4))
        flip = bool(rng.random() < self.p_flip)
        if isinstance(x, torch.Tensor):
            x = torch.rot90(x, k, dims=(-2, -1))
            return torch.flip(x, dims=(-1,)) if flip else x
        x = np.rot90(x, k, axes=(-2, -1))
        if flip:
            x = x[..., ::-1]
        return np.ascontiguousarray(x)

    def __repr__(self) -> str:
        return f"RandomRot90Flip(p_flip={self.p_flip})"


class RandomChannelGain:
    """Multiply every channel by its own random gain ``exp(N(0, sd))``, then clip to [0, 1].

    Images of one screen differ in brightness from well to well and from channel to channel
    (exposure, expression level, marker level); a network trained on one brightness per class
    can learn the brightness instead of the pattern. Works on arrays or tensors shaped (C, H, W).

    Parameters
    ----------
    sd : float
        Standard deviation of the log gain (0 leaves the image unchanged).
    """

    accepts_rng = True

    def __init__(self, sd: float):
        sd = float(sd)
        if not np.isfinite(sd) or sd < 0:
            raise ValueError(f"RandomChannelGain: sd must be a finite number >= 0, not {sd!r}")
        self.sd = sd

    def __call__(self, x, rng: np.random.Generator | None = None):
        rng = rng if rng is not None else np.random.default_rng()
        gain = np.exp(rng.normal(0.0, self.sd, size=x.shape[0])).astype(np.float32)  # (C,)
        if isinstance(x, torch.Tensor):
            return (x * torch.from_numpy(gain).to(x.device)[:, None, None]).clamp_(0.0, 1.0)
        return np.clip(x * gain[:, None, None], 0.0, 1.0)

    def __repr__(self) -> str:
        return f"RandomChannelGain(sd={self.sd})"


class Compose:
    """Apply transforms in order; transforms with ``accepts_rng = True`` receive the generator."""

    accepts_rng = True

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, rng: np.random.Generator | None = None):
        for t in self.transforms:
            x = t(x, rng) if getattr(t, "accepts_rng", False) else t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


# --------------------------------------------------------------------------- dataset


class CropDataset(Dataset):
    """Items of an array store as ``(image, label)`` pairs.

    Parameters
    ----------
    store : ArrayStore or path-like
        The store (opened if a path is given). Only its path travels to worker processes.
    indices : sequence of int, optional
        Store items in this dataset (e.g. one split); default all.
    channels : int or sequence of int, optional
        Channels to keep, e.g. ``[0]`` for a no-nucleus ablation; default all.
    transform : callable, optional
        Applied to the float32 array (C, H, W); gets the dataset's generator if it has
        ``accepts_rng = True``.
    label_column : str or sequence of str, optional
        Metadata column(s) returned as the label. One column -> its value (strings mapped to
        integers through ``classes``); several columns -> a dict; ``None`` -> the store index.
    classes : sequence or mapping, optional
        Class names (index = position) or a name -> int mapping for a string label column;
        default: sorted unique values of the column over the whole store (so every split uses
        the same numbering).
    multilabel : int, optional
        The label column holds space-separated class indices (HPA ``Target``); return a float32
        multi-hot tensor of this length instead.
    seed : int
        Seed of the augmentation generator in the main process (workers are reseeded by
        :func:`seed_worker`).

    Returns (from ``__getitem__``)
    -------------------------------
    image : torch.Tensor, float32, shape (C, H, W)
    label : int, float, str, dict, or float32 tensor (multilabel)
    """

    def __init__(
        self,
        store: ArrayStore | str | os.PathLike,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        channels: int | Sequence[int] | None = None,
        transform: Callable | None = None,
        label_column: str | Sequence[str] | None = None,
        classes: Sequence[Any] | Mapping[Any, int] | None = None,
        multilabel: int | None = None,
        seed: int = 0,
    ):
        self.store = store if isinstance(store, ArrayStore) else ArrayStore.open(store)
        n = len(self.store)
        idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"indices out of range for a store of {n} items")
        self.indices = idx
        if channels is None:
            self.channels = None
        else:
            ch = [channels] if np.isscalar(channels) else list(channels)
            n_ch = self.store.shape_per_item[0]
            if any(c < 0 or c >= n_ch for c in ch):
                raise IndexError(f"channels {ch} out of range for items with {n_ch} channels")
            self.channels = ch
        self.transform = transform
        self.multilabel = multilabel
        meta = self.store.metadata
        if label_column is None:
            self.label_columns: list[str] = []
        else:
            self.label_columns = [label_column] if isinstance(label_column, str) else list(label_column)
        missing = [c for c in self.label_columns if c not in meta.columns]
        if missing:
            raise DataError(f"{self.store.path}: metadata has no column(s) {missing}")
        self.class_to_index: dict[Any, int] | None = None
        self._labels: list[np.ndarray] = [meta[c].to_numpy() for c in self.label_columns]
        if len(self.label_columns) == 1 and multilabel is None and meta[self.label_columns[0]].dtype == object:
            if classes is None:
                classes = sorted(pd.unique(meta[self.label_columns[0]]))
            self.class_to_index = (
                dict(classes) if isinstance(classes, Mapping) else {c: i for i, c in enumerate(classes)}
            )
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Reset the augmentation generator (called per worker by :func:`seed_worker`)."""
        self.rng = np.random.default_rng(seed)

    @property
    def classes(self) -> list | None:
        """Class names in index order (string label columns only)."""
        if self.class_to_index is None:
            return None
        return [c for c, _ in sorted(self.class_to_index.items(), key=lambda kv: kv[1])]

    def __len__(self) -> int:
        return int(self.indices.size)

    def _label(self, item: int):
        if not self.label_columns:
            return item
        if self.multilabel is not None:
            raw = self._labels[0][item]
            vec = torch.zeros(self.multilabel, dtype=torch.float32)
            for tok in str(raw).split():
                k = int(tok)
                if not 0 <= k < self.multilabel:
                    raise DataError(f"{self.store.path}: item {item} has class {k} >= {self.multilabel}")
                vec[k] = 1.0
            return vec
        values = [v[item] for v in self._labels]
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if len(values) == 1:
            v = values[0]
            if self.class_to_index is not None:
                try:
                    return self.class_to_index[v]
                except KeyError:
                    raise DataError(f"{self.store.path}: item {item} has unknown class {v!r}") from None
            return v
        return dict(zip(self.label_columns, values))

    def __getitem__(self, i: int):
        item = int(self.indices[i])
        x = np.array(self.store.images[item], dtype=np.float32, copy=True)  # (C, H, W), never a view on the map
        if self.channels is not None:
            x = x[self.channels]
        if self.transform is not None:
            x = self.transform(x, self.rng) if getattr(self.transform, "accepts_rng", False) else self.transform(x)
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return x, self._label(item)


# --------------------------------------------------------------------------- splits


def _default_names(k: int) -> tuple[str, ...]:
    if k == 2:
        return ("train", "test")
    if k == 3:
        return ("train", "val", "test")
    return tuple(f"split{i}" for i in range(k))


def _allocate(weights: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Assign units (in the given order) to splits so that the running share of every split
    follows ``fractions``: each unit goes to the split with the largest deficit."""
    out = np.empty(len(weights), dtype=np.int64)
    assigned = np.zeros(len(fractions))
    total = 0.0
    for j, w in enumerate(weights):
        total += w
        deficit = fractions * total - assigned
        k = int(np.argmax(deficit))
        out[j] = k
        assigned[k] += w
    return out


def _check_fractions(fractions: Sequence[float], names: Sequence[str] | None) -> tuple[np.ndarray, tuple]:
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or len(fr) < 2 or (fr < 0).any() or fr.sum() <= 0:
        raise ValueError(f"fractions must be >= 2 non-negative numbers, got {fractions}")
    fr = fr / fr.sum()
    names = tuple(names) if names is not None else _default_names(len(fr))
    if len(names) != len(fr):
        raise ValueError(f"{len(names)} names for {len(fr)} fractions")
    return fr, names


def protein_disjoint_split(
    metadata: pd.DataFrame,
    *,
    group: str = "protein",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    stratify: str | None = None,
    seed: int = 0,
    names: Sequence[str] | None = None,
    balance: str = "groups",
) -> pd.Series:
    """Assign every row to a split so that no group (protein) is in two splits.

    Groups are shuffled with ``seed`` (within each stratum when ``stratify`` is given, strata
    in sorted order) and dealt to the splits so that the running share of each split follows
    ``fractions``, which keeps every stratum's proportions close to ``fractions`` too.

    Parameters
    ----------
    metadata : DataFrame
        One row per item.
    group : str
        Column whose values must not be shared between splits.
    fractions : sequence of float
        Split proportions, e.g. ``(0.8, 0.1, 0.1)`` (cytoself) or ``(0.8, 0.2)`` (deepGPS 4:1).
    stratify : str, optional
        Column with one class per group (e.g. the protein's localization); each class is
        split separately. A group with several classes raises :class:`DataError`.
    seed : int
    names : sequence of str, optional
        Split names; default ``train/test`` (2), ``train/val/test`` (3).
    balance : {"groups", "items"}
        Whether ``fractions`` apply to the number of groups or of rows.

    Returns
    -------
    pandas.Series of str
        Split name per row, aligned with ``metadata.index`` (name ``"split"``).
    """
    fr, names = _check_fractions(fractions, names)
    if group not in metadata.columns:
        raise DataError(f"metadata has no column {group!r}")
    if balance not in ("groups", "items"):
        raise ValueError(f"balance must be 'groups' or 'items', got {balance!r}")
    keys = metadata[group]
    sizes = keys.value_counts(sort=False)
    groups = np.array(sorted(sizes.index, key=str), dtype=object)
    if stratify is None:
        strata = {None: groups}
    else:
        if stratify not in metadata.columns:
            raise DataError(f"metadata has no column {stratify!r}")
        per_group = metadata.groupby(group, sort=False)[stratify].nunique(dropna=False)
        bad = per_group[per_group > 1]
        if len(bad):
            raise DataError(
                f"column {stratify!r} is not constant within {group!r}: e.g. {list(bad.index[:3])}"
            )
        cls = metadata.drop_duplicates(group).set_index(group)[stratify]
        strata = {}
        for g in groups:
            strata.setdefault(cls[g], []).append(g)
        strata = {k: np.array(v, dtype=object) for k, v in sorted(strata.items(), key=lambda kv: str(kv[0]))}
    rng = np.random.default_rng(seed)
    order = []
    for members in strata.values():
        order.extend(members[rng.permutation(len(members))])
    order = np.array(order, dtype=object)
    weights = np.ones(len(order)) if balance == "groups" else sizes.loc[order].to_numpy(dtype=np.float64)
    assign = _allocate(weights, fr)
    mapping = {g: names[k] for g, k in zip(order, assign)}
    return pd.Series(keys.map(mapping).to_numpy(), index=metadata.index, name="split", dtype=object)


def within_group_split(
    metadata: pd.DataFrame,
    *,
    group: str = "protein",
    unit: str = "fov",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> pd.Series:
    """Split the ``unit`` values (e.g. fields of view) of every ``group`` (protein) separately.

    Every protein appears in every split it has enough fields of view for, but no field of
    view is in two splits (crops from one image are correlated). This is the split a protein-id
    pretext task needs (cytoself). Units are dealt by number of rows.

    Returns
    -------
    pandas.Series of str
        Split name per row, aligned with ``metadata.index``.
    """
    fr, names = _check_fractions(fractions, names)
    for col in (group, unit):
        if col not in metadata.columns:
            raise DataError(f"metadata has no column {col!r}")
    rng = np.random.default_rng(seed)
    out = pd.Series(index=metadata.index, dtype=object, name="split")
    for _, rows in metadata.groupby(group, sort=True):
        counts = rows[unit].value_counts(sort=False)
        units = np.array(sorted(counts.index, key=str), dtype=object)
        units = units[rng.permutation(len(units))]
        assign = _allocate(counts.loc[units].to_numpy(dtype=np.float64), fr)
        mapping = {u: names[k] for u, k in zip(units, assign)}
        out.loc[rows.index] = rows[unit].map(mapping).to_numpy()
    return out


def split_indices(split: pd.Series) -> dict[str, np.ndarray]:
    """Positional row indices of every split, e.g. ``{"train": array([...]), ...}``."""
    values = np.asarray(split.to_numpy(), dtype=object)
    return {name: np.flatnonzero(values == name) for name in pd.unique(values)}


# --------------------------------------------------------------------------- loader


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy, random and the dataset's augmentation generator.

    PyTorch gives every worker ``torch.initial_seed() = base_seed + worker_id`` where
    ``base_seed`` comes from the loader's generator, so this is deterministic for a seeded
    loader and differs between workers and epochs.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    ds = info.dataset if info is not None else None
    while ds is not None:
        if hasattr(ds, "reseed"):
            ds.reseed(seed)
            break
        ds = getattr(ds, "dataset", None)  # torch Subset and similar wrappers


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    **kwargs,
) -> DataLoader:
    """A DataLoader that is reproducible for a given ``seed`` and ``num_workers``.

    The sampler order comes from a ``torch.Generator`` seeded with ``seed``; in the main
    process the dataset's augmentation generator is reseeded with ``seed``; worker processes
    are reseeded by :func:`seed_worker`. Results depend on ``num_workers`` (each worker has its
    own stream) but not on timing.

    Parameters
    ----------
    dataset : Dataset
    batch_size : int
    shuffle : bool
    num_workers : int
        Worker processes (0 = load in the main process).
    seed : int
    drop_last, pin_memory, persistent_workers : bool
        As for :class:`torch.utils.data.DataLoader`.
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader`.
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    ds = dataset
    while ds is not None:
        if hasattr(ds, "reseed"):
            ds.reseed(int(seed))
            break
        ds = getattr(ds, "dataset", None)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        **kwargs,
    )
