"""Data of the CNN-vs-FCN study (chapter 03): simulated or real HPA fields in an image store,
their splits, FCN target maps, and the fresh fields of the heterogeneity test and of Table 1 by
number of labels.

Every store goes through :func:`atlaskit.studies._scaffold.study_store`, keyed by every
generating parameter and the data layer's source (the simulator included), so a store is never
reused after a simulator change.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from atlaskit.data import catalogs
from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError, ParameterError
from atlaskit.models.cnnfcn import fcn_targets
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.cnnfcn import CHAPTER
from atlaskit.studies.cnnfcn.presets import Preset

__all__ = [
    "CLASSES", "N_CLASSES", "KAGGLE_LABELS", "HPADataset", "HPAData", "build_data", "build_sim_data",
    "build_real_data", "data_sources", "target_map_check", "regenerate_fields", "heterogeneity_data",
    "label_count_data",
]

CLASSES: tuple[str, ...] = catalogs.CYTO2017_CLASSES
N_CLASSES = len(CLASSES)

CELL_LINE_COLUMNS = ("cell_line", "Cell line", "cellline", "CellLine")
#: The registered Kaggle 2018 label table (simulated label sets are drawn from it).
KAGGLE_LABELS = "hpa/kaggle2018-train-labels.csv"


def _labels_to_multihot(label_idx: Sequence[str]) -> np.ndarray:
    """Space-separated class indices per image → (N, 13) uint8 multi-hot."""
    y = np.zeros((len(label_idx), N_CLASSES), np.uint8)
    for i, s in enumerate(label_idx):
        for tok in str(s).split():
            k = int(tok)
            if not 0 <= k < N_CLASSES:
                raise DataError(f"image {i}: class index {k} outside 0..{N_CLASSES - 1}")
            y[i, k] = 1
    return y


class HPADataset(Dataset):
    """Items of an HPA store as ``(image, labels, target_maps)`` (or ``(image, labels)``).

    Parameters
    ----------
    store : ArrayStore
        uint8 images (N, 4, S, S) (values × 255).
    indices : array of int
        Store items of this dataset.
    labels : array (n, 13)
        Multi-hot labels of those items.
    maps : array (n, h, w) of bool, optional
        The FCN target map of each item (copied into every present class on access).

    Returns (``__getitem__``)
    -------------------------
    image : float32 tensor (4, S, S) in [0, 1]
    labels : float32 tensor (13,)
    maps : float32 tensor (13, h, w) (only when ``maps`` was given)
    """

    def __init__(self, store: ArrayStore, indices, labels, maps: np.ndarray | None = None, *,
                 augment: bool = False, seed: int = 0):
        self.store = store
        self.augment = bool(augment)
        self.reseed(seed)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.float32)
        if self.labels.shape != (len(self.indices), N_CLASSES):
            raise DataError(f"labels must be ({len(self.indices)}, {N_CLASSES}), got {self.labels.shape}")
        self.maps = None if maps is None else np.asarray(maps, dtype=bool)
        if self.maps is not None and self.maps.shape[0] != len(self.indices):
            raise DataError(f"{self.maps.shape[0]} target maps for {len(self.indices)} items")

    def reseed(self, seed: int) -> None:
        """Reset the augmentation generator (called by the loader, per epoch and worker)."""
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x = torch.from_numpy(np.asarray(self.store.images[self.indices[i]], dtype=np.float32) / 255.0)  # (4, S, S)
        y = torch.from_numpy(self.labels[i])  # (13,)
        m = None if self.maps is None else torch.from_numpy(self.maps[i].astype(np.float32))  # (h, w)
        if self.augment:  # one of the 8 symmetries of the square, the same for the image and its map
            k, flip = int(self.rng.integers(4)), bool(self.rng.random() < 0.5)
            x = torch.rot90(x, k, dims=(-2, -1))
            m = None if m is None else torch.rot90(m, k, dims=(-2, -1))
            if flip:
                x = torch.flip(x, dims=(-1,))
                m = None if m is None else torch.flip(m, dims=(-1,))
            x = x.contiguous()
        if m is None:
            return x, y
        return x, y, y[:, None, None] * m[None]  # (13, h, w): same map for every present class


@dataclass
class HPAData:
    """A built data set: the store, its metadata with a ``split`` column, and helpers.

    Attributes
    ----------
    store : ArrayStore
    meta : DataFrame
        One row per store item: ``id, protein, label_idx, labels (tuple of names), n_labels,
        cell_line, cell_fraction, n_cells, class_cell_fraction, split``.
    source : {"sim", "real"}
    preset : Preset
    """

    store: ArrayStore
    meta: pd.DataFrame
    source: str
    preset: Preset
    _maps: dict = field(default_factory=dict, repr=False)

    @property
    def y(self) -> np.ndarray:
        """(N, 13) uint8 multi-hot labels of every item."""
        return _labels_to_multihot(self.meta["label_idx"])

    def indices(self, split: str | None = None) -> np.ndarray:
        if split is None:
            return np.arange(len(self.meta))
        if split not in set(self.meta["split"]):
            raise ParameterError(f"no split {split!r}; splits: {sorted(set(self.meta['split']))}")
        return np.flatnonzero(self.meta["split"].to_numpy() == split)

    def images(self, split: str | None = None, index=None) -> np.ndarray:
        """float32 images in [0, 1] of a split (or of the given positions within it)."""
        idx = self.indices(split)
        if index is not None:
            idx = idx[np.asarray(index)]
        return np.asarray(self.store.images[idx], dtype=np.float32) / 255.0

    def target_maps(self, split: str | None = None) -> np.ndarray:
        """(n, h, w) bool FCN target map of every item of ``split`` (computed once, in chunks)."""
        key = split or "__all__"
        if key not in self._maps:
            idx = self.indices(split)
            p = self.preset
            out = np.zeros((len(idx), p.heatmap_size, p.heatmap_size), bool)
            for lo in range(0, len(idx), 256):
                chunk = idx[lo:lo + 256]
                protein = np.asarray(self.store.images[chunk, 0], dtype=np.float32) / 255.0  # (b, S, S)
                out[lo:lo + len(chunk)] = fcn_targets(protein, np.ones((len(chunk), 1)), p.heatmap_size,
                                                      **p.target_params)[:, 0] > 0
            self._maps[key] = out
        return self._maps[key]

    def dataset(self, split: str | None = None, *, maps: bool = True, augment: bool = False) -> HPADataset:
        """Items of ``split`` as ``(image, labels, maps)`` (``(image, labels)`` without maps)."""
        idx = self.indices(split)
        return HPADataset(self.store, idx, self.y[idx], self.target_maps(split) if maps else None, augment=augment)


def target_map_check(data: HPAData, split: str = "train", covers: Sequence[float] = (0.0, 0.5),
                     max_images: int = 2000) -> pd.DataFrame:
    """How often the FCN target map of an image is empty, per class, for resize rules ``cover``
    (0: a heat-map pixel is on when any of its input pixels is; 0.5: when most are, i.e. a plain
    resize and round). An empty map tells the FCN that a present class is nowhere. Uses the
    first ``max_images`` images of ``split``."""
    idx = data.indices(split)[:max_images]
    p = data.preset
    y = data.y[idx].astype(bool)
    out = {}
    for c in covers:
        empty = np.zeros(len(idx), bool)
        for lo in range(0, len(idx), 256):
            chunk = idx[lo:lo + 256]
            protein = np.asarray(data.store.images[chunk, 0], dtype=np.float32) / 255.0  # (b, S, S)
            maps = fcn_targets(protein, np.ones((len(chunk), 1)), p.heatmap_size, cover=c, **p.target_params)
            empty[lo:lo + len(chunk)] = maps.reshape(len(chunk), -1).max(1) == 0
        col = f"empty maps, cover > {c:g}"
        out[col] = [float(empty[y[:, k]].mean()) if y[:, k].any() else np.nan for k in range(N_CLASSES)]
        out[col].append(float(empty.mean()))
    return pd.DataFrame(out, index=list(CLASSES) + ["all images"])


def _sim_meta(batch) -> pd.DataFrame:
    """Store metadata of a SimBatch: labels as index strings, realised per-class cell fractions.

    Checks that no cell shows a class its image does not have (the per-cell table must be aligned
    with the images)."""
    meta = batch.meta
    cells = batch.cells
    rows = []
    for j, r in enumerate(meta.itertuples(index=False)):
        c = cells[cells["image"] == j]
        n = len(c)
        frac = np.zeros(N_CLASSES)
        if n:
            for labs in c["labels"]:
                for lab in labs:
                    frac[CLASSES.index(lab)] += 1
            frac /= n
        stray = sorted(set(np.flatnonzero(frac)) - set(int(k) for k in r.label_idx))
        if stray:
            raise DataError(f"simulated field {r.field_id}: its cells show {[CLASSES[k] for k in stray]}, which the "
                            "image is not labelled with (per-cell table out of step with the images)")
        rows.append({
            "id": r.field_id,
            "protein": str(r.protein),
            "label_idx": " ".join(str(k) for k in r.label_idx),
            "n_labels": int(r.n_labels),
            "cell_line": str(r.cell_line),
            "cell_fraction": float(r.cell_fraction),
            "n_cells": int(n),
            "class_cell_fraction": " ".join(f"{v:.4f}" for v in frac),
        })
    return pd.DataFrame(rows)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def _finish_meta(store: ArrayStore) -> pd.DataFrame:
    meta = store.metadata.copy()
    meta["label_idx"] = meta["label_idx"].astype(str)
    meta["labels"] = [tuple(CLASSES[int(k)] for k in s.split()) for s in meta["label_idx"]]
    return meta


def _render_groups(names, specs, fractions, lines, split, p: Preset, seed: int, workers):
    """Simulate fields grouped by (cell fraction, cell line); yields (uint8 images, metadata).

    Each call to the simulator gets a single cell line, which keeps its per-cell table in step
    with the images (with several cell lines in one rendering chunk the simulator's per-cell
    ``image`` column came out permuted)."""
    from atlaskit.data import sim

    pos = {name: i for i, name in enumerate(names)}
    for f in sorted(set(fractions)):
        for line in sim.HPA_CELL_LINES:
            members = [i for i in range(len(names)) if fractions[i] == f and lines[i] == line]
            if not members:
                continue
            for b in sim.iter_hpa_fields([specs[i] for i in members], 1, seed, size=p.image_size, zoom=p.zoom,
                                         cell_lines=(line,), cell_fraction=f, batch_size=64, workers=workers):
                meta = _sim_meta(b)
                meta["split"] = [split[pos[name]] for name in meta["protein"]]
                yield _to_uint8(b.images), meta


def _line_weights(p: Preset) -> list[float]:
    """``p.cell_line_weights`` checked and normalised to sum to one."""
    from atlaskit.data import sim

    w = np.asarray(p.cell_line_weights, dtype=float)
    if w.shape != (len(sim.HPA_CELL_LINES),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError(f"cell_line_weights must be {len(sim.HPA_CELL_LINES)} non-negative numbers "
                             f"(one per line of {sim.HPA_CELL_LINES}) with a positive sum, not {p.cell_line_weights!r}")
    return (w / w.sum()).tolist()


def build_sim_data(p: Preset, seed: int = 0, *, root: str | os.PathLike | None = None,
                   workers: int | None = None) -> HPAData:
    """Simulate (or reopen) the chapter's data set: ``n_train + n_val + n_test`` fields.

    The label sets are a seeded sample of the real Kaggle table (mapped to Cyto 2017); the cell
    fractions are dealt in the proportions of ``cell_fractions`` and the cell lines at random in
    the proportions of ``cell_line_weights``, both seeded; the split is a seeded permutation.
    """
    from atlaskit.data import sim

    n_total = p.n_train + p.n_val + p.n_test
    params = {
        "kind": "hpa-sim", "seed": int(seed), "size": p.image_size, "zoom": p.zoom, "n": [p.n_train, p.n_val, p.n_test],
        "cell_fractions": list(p.cell_fractions), "cell_line_weights": _line_weights(p),
    }

    def batches():
        specs = sim.hpa_specs(n_total, seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3003]))
        order = rng.permutation(n_total)
        split = np.empty(n_total, object)
        split[order[:p.n_train]] = "train"
        split[order[p.n_train:p.n_train + p.n_val]] = "val"
        split[order[p.n_train + p.n_val:]] = "test"
        fractions = [p.cell_fractions[k % len(p.cell_fractions)] for k in rng.permutation(n_total)]
        lines = [sim.HPA_CELL_LINES[k] for k in rng.choice(len(sim.HPA_CELL_LINES), size=n_total, p=_line_weights(p))]
        yield from _render_groups([s.name for s in specs], specs, fractions, lines, split, p, seed,
                                  workers or (os.cpu_count() if p.scale == "full" else None))

    store = study_store(CHAPTER, f"sim-{p.scale}", params, batches, code=__name__, root=root,
                        shape_per_item=(4, p.image_size, p.image_size), dtype="uint8",
                        attrs={"classes": list(CLASSES), "channels": ["protein", "nucleus", "microtubules", "er"]})
    return HPAData(store, _finish_meta(store), "sim", p)


def _cyto2017_targets(targets: Sequence[str]) -> list[str]:
    """Kaggle Target strings (indices 0..27) → Cyto 2017 index strings ('' if nothing maps)."""
    mapping = catalogs.kaggle_to_cyto2017()
    index = {c: i for i, c in enumerate(CLASSES)}
    by_kaggle = [mapping[c] for c in catalogs.KAGGLE_HPA_CLASSES]
    out = []
    for t in targets:
        ks = sorted({index[by_kaggle[int(k)]] for k in str(t).split() if by_kaggle[int(k)] is not None})
        out.append(" ".join(map(str, ks)))
    return out


def build_real_data(p: Preset, data_dir: str | os.PathLike, labels_csv: str | os.PathLike | None = None,
                    seed: int = 0, *, root: str | os.PathLike | None = None, workers: int | None = None,
                    max_images: int | None = None, missing: str = "error") -> HPAData:
    """Read (or reopen) an HPA image folder with a Kaggle-style label table into a cached store.

    Parameters
    ----------
    p : Preset
        ``image_size`` is the size images are resized to; at scales other than ``full`` at most
        ``n_train + n_val + n_test`` images are read (a seeded sample).
    data_dir : path
        Folder of ``<id>_<green|blue|red|yellow>.png``.
    labels_csv : path, optional
        ``Id,Target`` table; default ``<data_dir>/train.csv`` if it exists, else the registered
        Kaggle 2018 training table.
    max_images : int, optional
        Read at most this many images (overrides the preset's cap).
    missing : {"error", "zeros"}
        What to do with a missing channel file (see :func:`atlaskit.data.readers.read_hpa_folder`).
    """
    from atlaskit.data import readers

    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data_dir {str(folder)!r} is not a folder")
    if labels_csv is None:
        local = folder / "train.csv"
        if local.is_file():
            labels_csv = local
        else:
            from atlaskit.data import registry

            labels_csv = registry.fetch(KAGGLE_LABELS, progress=False)
    labels_csv = Path(labels_csv)
    table = readers.read_hpa_labels(labels_csv)
    raw = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    line_col = next((c for c in CELL_LINE_COLUMNS if c in raw.columns), None)
    cell_line = dict(zip(raw["Id"], raw[line_col])) if line_col else {}
    table["label_idx"] = _cyto2017_targets(table["target"])
    ids = readers.hpa_ids(folder)
    if not ids:
        raise DataError(f"{folder}: no <id>_<channel>.png images")
    known = set(table["id"])
    unlabelled = [i for i in ids if i not in known]
    if unlabelled:
        raise DataError(f"{labels_csv}: no label row for image id {unlabelled[0]!r} ({len(unlabelled)} ids)")
    table = table.set_index("id").loc[ids]
    keep = table["label_idx"] != ""
    table = table[keep]
    if table.empty:
        raise DataError(f"{folder}: no image has a label that maps to the 13 Cyto 2017 classes")
    cap = max_images if max_images is not None else (None if p.scale == "full" else p.n_train + p.n_val + p.n_test)
    if cap is not None and len(table) > cap:
        pick = np.sort(np.random.default_rng(np.random.SeedSequence([seed, 3004])).choice(len(table), cap, replace=False))
        table = table.iloc[pick]
    ids = list(table.index)
    n = len(ids)
    if n < 3:
        raise DataError(f"{folder}: {n} usable image(s); at least 3 are needed for train/val/test")
    order = np.random.default_rng(np.random.SeedSequence([seed, 3005])).permutation(n)
    n_val = max(1, n // 10)
    n_test = max(1, n // 10)
    split = np.empty(n, object)
    split[order[: n - n_val - n_test]] = "train"
    split[order[n - n_val - n_test: n - n_test]] = "val"
    split[order[n - n_test:]] = "test"
    params = {
        "kind": "hpa-real", "folder": str(folder.resolve()), "labels": str(labels_csv.resolve()),
        "labels_stat": [labels_csv.stat().st_size, int(labels_csv.stat().st_mtime)], "size": p.image_size,
        "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(), "seed": int(seed), "missing": missing,
    }
    workers = workers or min(8, os.cpu_count() or 1)
    chunks = [ids[lo:lo + 256] for lo in range(0, n, 256)]

    def read(chunk):
        images, meta = next(readers.iter_hpa_folder(folder, labels_csv, size=p.image_size, ids=chunk,
                                                     missing=missing, batch_size=len(chunk)))
        return images, meta

    def batches():
        pos = {ident: i for i, ident in enumerate(ids)}
        with ThreadPoolExecutor(max_workers=workers) as ex:  # PNG decoding releases the GIL
            for images, meta in ex.map(read, chunks):
                rows = [pos[i] for i in meta["id"]]
                out = pd.DataFrame({
                    "id": meta["id"].to_numpy(), "protein": meta["id"].to_numpy(),
                    "label_idx": table["label_idx"].iloc[rows].to_numpy(),
                    "n_labels": [len(s.split()) for s in table["label_idx"].iloc[rows]],
                    "cell_line": [cell_line.get(i, "unknown") or "unknown" for i in meta["id"]],
                    "cell_fraction": -1.0, "n_cells": -1, "class_cell_fraction": "",  # no per-cell truth
                    "split": split[rows],
                })
                yield _to_uint8(images), out

    store = study_store(CHAPTER, f"real-{p.scale}", params, batches, code=__name__, root=root,
                        shape_per_item=(4, p.image_size, p.image_size), dtype="uint8", attrs={"classes": list(CLASSES)})
    meta = _finish_meta(store)
    meta["cell_fraction"] = np.nan
    return HPAData(store, meta, "real", p)


def build_data(p: Preset, data: str = "sim", *, seed: int = 0, data_dir=None, labels_csv=None,
              root=None, missing: str = "error") -> HPAData:
    """The chapter's data set: simulated (``data="sim"``) or read from ``data_dir`` (``"real"``).

    Parameters
    ----------
    missing : {"error", "zeros"}
        ``data="real"`` only: a missing channel file raises a DataError (default) or is read as
        zeros, as the mirror's ``hpa/kaggle2018-sample`` (one channel file per image id) needs.
    """
    if missing not in ("error", "zeros"):
        raise ParameterError(f"missing must be 'error' or 'zeros', not {missing!r}")
    if data == "sim":
        return build_sim_data(p, seed, root=root)
    if data == "real":
        if data_dir is None:
            raise ParameterError("data='real' needs data_dir, the HPA image folder")
        return build_real_data(p, data_dir, labels_csv, seed, root=root, missing=missing)
    raise ParameterError(f"data must be 'sim' or 'real', not {data!r}")


def data_sources(data: str, data_dir=None, labels_csv=None) -> tuple[list[str], list[Path]]:
    """What :func:`build_data` reads, for :func:`atlaskit.chapter.provenance`.

    Returns
    -------
    (list of str, list of Path)
        The registered files (the Kaggle label table: simulated label sets are drawn from it, and a
        real folder without its own ``train.csv`` is labelled by it) and the user's folders.
    """
    if data == "sim":
        return [KAGGLE_LABELS], []
    if data_dir is None:
        raise ParameterError("data='real' needs data_dir, the HPA image folder")
    folder = Path(data_dir)
    registered = labels_csv is None and not (folder / "train.csv").is_file()
    return ([KAGGLE_LABELS] if registered else []), [folder]



# --------------------------------------------------------------------------- simulated ground truth


def regenerate_fields(data: HPAData, rows: Sequence[int], seed: int = 0):
    """Re-simulate store items (positions in ``data.meta``) with cell masks and per-cell labels.

    Returns the :class:`~atlaskit.data.sim.SimBatch`; its images equal the stored ones (the
    simulator is deterministic per protein and index), which is checked.
    """
    from atlaskit.data import sim

    if data.source != "sim":
        raise ParameterError("per-cell ground truth exists only for simulated data")
    p = data.preset
    parts = []
    for r in rows:
        m = data.meta.iloc[int(r)]
        b = sim.hpa_fields([m["protein"]], 1, seed, size=p.image_size, zoom=p.zoom, cell_lines=(m["cell_line"],),
                           cell_fraction=float(m["cell_fraction"]), masks=True, workers=1)
        if not np.array_equal(_to_uint8(b.images[0]), data.store[int(r)]):
            raise DataError(f"re-simulated field {m['id']} differs from the stored one (simulator changed?)")
        parts.append(b)
    from atlaskit.data.sim import SimBatch

    return SimBatch.concat(parts)


def _fresh_test_fields(p: Preset, seed: int, name: str, params: dict, draw, *, root, workers) -> HPAData:
    """Simulate (or reopen) fresh test fields: ``draw()`` returns the chosen label-set rows of
    :func:`~atlaskit.data.catalogs.cyto2017_label_sets`, a cell fraction and a cell line per row."""
    from atlaskit.data import sim

    def batches():
        chosen, fractions, lines = draw()
        specs = sim.hpa_specs(chosen[["id", "labels"]], seed)
        split = np.full(len(chosen), "test", object)
        yield from _render_groups(list(chosen["id"]), specs, fractions, lines, split, p, seed,
                                  workers or (os.cpu_count() if p.scale == "full" else None))

    store = study_store(CHAPTER, f"{name}-{p.scale}", params, batches, code=__name__, root=root,
                        shape_per_item=(4, p.image_size, p.image_size), dtype="uint8", attrs={"classes": list(CLASSES)})
    return HPAData(store, _finish_meta(store), "sim", p)


def _exclude_key(excluded: set) -> str:
    return hashlib.sha256("\n".join(sorted(excluded)).encode()).hexdigest()


def heterogeneity_data(p: Preset, seed: int = 0, *, exclude: Sequence[str] = (), root=None,
                       workers: int | None = None) -> HPAData:
    """Fresh simulated test fields at each of ``p.hetero_fractions`` (``p.n_hetero`` each), with
    label sets not used by the chapter's data set (``exclude``), for the heterogeneity test."""
    from atlaskit.data import sim

    table = catalogs.cyto2017_label_sets()
    excluded = set(map(str, exclude))
    candidates = np.flatnonzero(~table["id"].isin(excluded).to_numpy())
    n_total = p.n_hetero * len(p.hetero_fractions)
    if n_total > len(candidates):
        raise ParameterError(f"{n_total} heterogeneity fields asked for, {len(candidates)} unused label sets left")
    params = {
        "kind": "hpa-sim-heterogeneity", "seed": int(seed), "size": p.image_size, "zoom": p.zoom,
        "fractions": list(p.hetero_fractions), "n": p.n_hetero, "exclude": _exclude_key(excluded),
    }

    def draw():
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3006]))
        chosen = table.iloc[np.sort(rng.choice(candidates, n_total, replace=False))]
        fractions = [p.hetero_fractions[k % len(p.hetero_fractions)] for k in rng.permutation(n_total)]
        lines = [sim.HPA_CELL_LINES[k] for k in rng.integers(len(sim.HPA_CELL_LINES), size=n_total)]
        return chosen, fractions, lines

    return _fresh_test_fields(p, seed, "hetero", params, draw, root=root, workers=workers)


def label_count_data(p: Preset, seed: int = 0, *, exclude: Sequence[str] = (), root=None,
                     workers: int | None = None) -> HPAData:
    """Fresh simulated test fields with 1, 2, …, ``len(p.label_counts)`` labels, ``p.n_per_label_count``
    of each, for Table 1 (accuracy by number of labels).

    Images with 3 or 4 labels are rare (the chapter's test split holds a handful of 3-label ones
    and usually no 4-label one: 8 % and 0.6 % of the real label sets), so Table 1 at a small scale
    needs its own fields to give intervals. The label sets are real Kaggle sets not used by the
    chapter's data set (``exclude``); per-cell heterogeneity is dealt from ``p.cell_fractions``
    as in the chapter's data. The cell lines are dealt in turn within each label count, so every
    line has (nearly) the same fields of each count, whatever its share of the training data:
    accuracy per line (the paper's Fig. 8) then compares like with like.
    """
    from atlaskit.data import sim

    table = catalogs.cyto2017_label_sets()
    excluded = set(map(str, exclude))
    unused = ~table["id"].isin(excluded).to_numpy()
    counts = table["n_labels"].to_numpy()
    per = int(p.n_per_label_count)
    for k in p.label_counts:
        available = int((unused & (counts == k)).sum())
        if available < per:
            raise ParameterError(f"{per} fields with {k} labels asked for, {available} unused label sets have {k}")
    params = {
        "kind": "hpa-sim-label-counts", "seed": int(seed), "size": p.image_size, "zoom": p.zoom,
        "label_counts": list(p.label_counts), "n": per, "cell_fractions": list(p.cell_fractions),
        "cell_lines": "dealt in turn per label count", "exclude": _exclude_key(excluded),
    }

    def draw():
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3009]))
        pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(unused & (counts == k)), per, replace=False)
                                       for k in p.label_counts]))
        chosen = table.iloc[pick]
        fractions = [p.cell_fractions[k % len(p.cell_fractions)] for k in rng.permutation(len(chosen))]
        # every cell line gets (nearly) the same fields of each label count, whatever its share of
        # the training data, so that accuracy per line compares like with like (the paper's Fig. 8)
        rank = chosen.groupby("n_labels").cumcount().to_numpy()
        lines = [sim.HPA_CELL_LINES[r % len(sim.HPA_CELL_LINES)] for r in rank]
        return chosen, fractions, lines

    return _fresh_test_fields(p, seed, "label-counts", params, draw, root=root, workers=workers)
