"""Chapter 03 pipeline: CNN vs FCN on Human Protein Atlas images (Cyto 2017, 13 classes).

What the chapter calls, in order::

    p = preset(scale, epochs=epochs)                        # sizes, model width, epochs per scale
    data = load_data(p, data="sim", seed=seed)              # cached ArrayStore + splits
    cnn = train("cnn", data, p, seed=seed, device=device)   # reuses a finished run (book.run_dir)
    fcn = train("fcn", data, p, seed=seed, device=device)
    ev = {"cnn": evaluate(cnn, data), "fcn": evaluate(fcn, data)}   # thresholds on train, scores on test
    summary_table(ev); table1(ev); cell_line_table(ev)
    hdata = heterogeneity_data(p, seed=seed, exclude=data.meta["protein"])   # fresh fields, 4 cell fractions
    het = heterogeneity_experiment({"cnn": (cnn, ev["cnn"]), "fcn": (fcn, ev["fcn"])}, hdata)
    heterogeneity_summary(het); heterogeneity_verdict(het)
    # exercises: threshold_comparison, heatmap_confidences + pooling_table, target_variants, most_missed

Data
----
*Simulated* (default): HPA-like 4-channel fields from :mod:`atlaskit.data.sim` whose label sets
are real Kaggle HPA label sets mapped to the 13 Cyto 2017 classes, so class frequencies and
co-occurrences are the real ones. Each simulated protein is one field (one label set), so the
random split of fields is protein-disjoint. Each field draws its per-cell heterogeneity from
``Preset.cell_fractions`` (the probability that a cell shows each of the protein's classes).
Images are cached as uint8 (the simulator's 8-bit values are kept exactly) in an
:class:`~atlaskit.data.store.ArrayStore` keyed by every generating parameter and the simulator's
source, under ``<runs root>/03_cnn_vs_fcn/data``.

*Real*: an HPA image folder (``<id>_<green|blue|red|yellow>.png``) with a Kaggle-style label
table ``Id,Target`` (28 classes) mapped with :func:`atlaskit.data.catalogs.kaggle_to_cyto2017`;
images whose labels all map to dropped classes are left out. An optional cell-line column
(``cell_line``, ``Cell line`` or ``cellline``) enables the per-cell-line table. The Kaggle table
has no protein ids, so the split is by image.

Scales
------
``full`` is the paper: 4 × 256 × 256 input (the whole field of view at the paper's scale), kernels
32 … 512, 16 × 16 heat maps, batch 32. ``ci`` keeps the architecture and the pixel scale but
crops the field (128 × 128 → 8 × 8 heat maps), divides every width by 4, and trains on about a
thousand fields for 10 epochs, so that the chapter runs in minutes on two CPU cores.
``tiny`` is smaller still (tests, teaching).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from atlaskit.data import catalogs
from atlaskit.data.store import ArrayStore, store_path
from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import multilabel as ml
from atlaskit.models.cnnfcn import CnnFcnConfig, build_model, cnn_step, fcn_step, fcn_targets
from atlaskit.studies._presets import select_preset, torch_threads, usable_cpus

__all__ = [
    "CHAPTER",
    "CLASSES",
    "PAPER",
    "Preset",
    "PRESETS",
    "preset",
    "HPAData",
    "HPADataset",
    "load_data",
    "target_map_check",
    "build_sim_data",
    "build_real_data",
    "TrainedModel",
    "train",
    "predict",
    "Evaluation",
    "evaluate",
    "summary_table",
    "table1",
    "cell_line_table",
    "compare_with_paper",
    "confusion_frames",
    "threshold_comparison",
    "POOLINGS",
    "heatmap_confidences",
    "pooling_table",
    "target_variants",
    "most_missed",
    "regenerate_fields",
    "heterogeneity_data",
    "heterogeneity_experiment",
    "heterogeneity_summary",
    "heterogeneity_verdict",
    "heatmaps",
    "pick_examples",
    "pick_heterogeneous",
    "fig_class_distribution",
    "fig_cooccurrence",
    "fig_loss_curves",
    "fig_confusions",
    "fig_table1",
    "fig_cell_lines",
    "fig_heatmap_overlays",
    "fig_examples",
    "fig_heterogeneity",
]

CHAPTER = "03_cnn_vs_fcn"
CLASSES: tuple[str, ...] = catalogs.CYTO2017_CLASSES
N_CLASSES = len(CLASSES)

#: The paper's numbers (test set of the Cyto 2017 data).
PAPER: dict[str, Any] = {
    "mean_per_class_accuracy": {"cnn": 0.676, "fcn": 0.696},
    "mean_dice": {"cnn": 0.705, "fcn": 0.707},
    # Table 1: accuracy by the number of labels of an image
    "by_label_count": {"cnn": {1: 0.92, 2: 0.57, 3: 0.25, 4: 0.0}, "fcn": {1: 0.90, 2: 0.59, 3: 0.41, 4: 0.29}},
}

CELL_LINE_COLUMNS = ("cell_line", "Cell line", "cellline", "CellLine")
#: The registered Kaggle 2018 label table (simulated label sets are drawn from it).
KAGGLE_LABELS = "hpa/kaggle2018-train-labels.csv"


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """Everything a scale decides.

    Attributes
    ----------
    scale : str
    image_size : int
        Input side (paper 256).
    width_multiplier : float
        Kernels and fully connected units relative to the paper's (1.0).
    zoom : float
        Simulated pixels per pixel of a 512 × 512 Kaggle image; 0.5 is the paper's scale (a
        2048 × 2048 HPA image resized to 256 × 256).
    n_train, n_val, n_test : int
        Fields per split (simulated data; real data: at most this many, 0 = all, split 8:1:1).
    epochs : int
    batch_size : int
    cell_fractions : tuple of float
        Per-cell probabilities of showing each class; field ``i`` uses entry ``i mod len``.
    hetero_fractions : tuple of float
        Cell fractions of the heterogeneity experiment.
    n_hetero : int
        Fields per fraction in the heterogeneity experiment.
    target_sigma, target_threshold, target_dilation : float, float, int
        FCN target construction (:func:`atlaskit.models.cnnfcn.fcn_targets`), in input pixels.
    augment : bool
        Random 90° rotations and flips of the training images (and FCN maps); not in the paper.
    num_workers : int
        DataLoader workers.
    cpu_threads : int, optional
        torch threads while training and predicting on a CPU (None: torch's default). The small
        presets use 1: their convolutions are too small to gain from a second thread (on a
        shared 2-core machine two threads ran 2-5 times slower), and one thread makes their
        numbers independent of the machine's core count.
    """

    scale: str
    image_size: int
    width_multiplier: float
    zoom: float
    n_train: int
    n_val: int
    n_test: int
    epochs: int
    batch_size: int = 32
    cell_fractions: tuple[float, ...] = (1.0, 1.0, 0.5, 0.25)
    hetero_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    n_hetero: int = 50
    target_sigma: float = 2.0
    target_threshold: float = 0.3
    target_dilation: int = 2
    augment: bool = False
    num_workers: int = 0
    cpu_threads: int | None = None

    def model_config(self) -> CnnFcnConfig:
        if self.width_multiplier == 1.0 and self.image_size == 256:
            return CnnFcnConfig.paper()
        return CnnFcnConfig.scaled(self.image_size, self.width_multiplier)

    @property
    def heatmap_size(self) -> int:
        return self.model_config().heatmap_size

    @property
    def target_params(self) -> dict[str, float]:
        return {"sigma": self.target_sigma, "threshold": self.target_threshold, "dilation": self.target_dilation}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", image_size=64, width_multiplier=0.125, zoom=0.5, n_train=48, n_val=16, n_test=24,
                   epochs=2, batch_size=16, hetero_fractions=(0.25, 1.0), n_hetero=8, cpu_threads=1),
    # Measured on 2 cores (mean per-class accuracy CNN / FCN, training seconds per model):
    # 512 training fields, 10 epochs 0.42 / 0.43 (~42 s); 20 epochs 0.30 / 0.45 (~84 s);
    # 1024 fields, 10 epochs 0.49 / 0.45 (~82 s).
    "ci": Preset("ci", image_size=128, width_multiplier=0.25, zoom=0.5, n_train=1024, n_val=96, n_test=224,
                 epochs=10, batch_size=32, n_hetero=48, cpu_threads=1),
    "full": Preset("full", image_size=256, width_multiplier=1.0, zoom=0.5, n_train=16000, n_val=2000,
                   n_test=2000, epochs=60, batch_size=32, n_hetero=500, num_workers=4),
}


def preset(scale: str, *, epochs: int | None = None) -> Preset:
    """The preset of ``scale`` ("tiny", "ci", "full"), with ``epochs`` overriding its default."""
    return select_preset(PRESETS, scale, epochs=epochs)


# --------------------------------------------------------------------------- data


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


def _source_hash(folder: Path, pattern: str = "*.py") -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob(pattern)):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _data_root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    from atlaskit.book import runs_root

    return runs_root() / CHAPTER / "data"


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


def build_sim_data(p: Preset, seed: int = 0, *, root: str | os.PathLike | None = None,
                   workers: int | None = None) -> HPAData:
    """Simulate (or reopen) the chapter's data set: ``n_train + n_val + n_test`` fields.

    The label sets are a seeded sample of the real Kaggle table (mapped to Cyto 2017); the cell
    fractions are dealt in the proportions of ``cell_fractions`` and the cell lines uniformly at
    random, both seeded; the split is a seeded permutation.
    """
    from atlaskit.data import sim

    n_total = p.n_train + p.n_val + p.n_test
    params = {
        "kind": "hpa-sim", "seed": int(seed), "size": p.image_size, "zoom": p.zoom, "n": [p.n_train, p.n_val, p.n_test],
        "cell_fractions": list(p.cell_fractions), "sim_source": _source_hash(Path(sim.__file__).parent),
    }
    path = store_path(_data_root(root), f"sim-{p.scale}", params)

    def batches():
        specs = sim.hpa_specs(n_total, seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3003]))
        order = rng.permutation(n_total)
        split = np.empty(n_total, object)
        split[order[:p.n_train]] = "train"
        split[order[p.n_train:p.n_train + p.n_val]] = "val"
        split[order[p.n_train + p.n_val:]] = "test"
        fractions = [p.cell_fractions[k % len(p.cell_fractions)] for k in rng.permutation(n_total)]
        lines = [sim.HPA_CELL_LINES[k] for k in rng.integers(len(sim.HPA_CELL_LINES), size=n_total)]
        yield from _render_groups([s.name for s in specs], specs, fractions, lines, split, p, seed,
                                  workers or (os.cpu_count() if p.scale == "full" else None))

    store = ArrayStore.build(path, batches, shape_per_item=(4, p.image_size, p.image_size), dtype="uint8",
                             params=params, attrs={"classes": list(CLASSES), "channels": ["protein", "nucleus",
                                                                                           "microtubules", "er"]})
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
    path = store_path(_data_root(root), f"real-{p.scale}", params)
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

    store = ArrayStore.build(path, batches, shape_per_item=(4, p.image_size, p.image_size), dtype="uint8",
                             params=params, attrs={"classes": list(CLASSES)})
    meta = _finish_meta(store)
    meta["cell_fraction"] = np.nan
    return HPAData(store, meta, "real", p)


def load_data(p: Preset, data: str = "sim", *, seed: int = 0, data_dir=None, labels_csv=None,
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
    """What :func:`load_data` reads, for :func:`atlaskit.book.provenance`.

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


# --------------------------------------------------------------------------- training


@dataclass
class TrainedModel:
    """A trained (best-validation-loss) model with its trainer and history."""

    kind: str
    model: torch.nn.Module
    trainer: Any
    history: Any
    config: CnnFcnConfig
    run_dir: Path
    best_epoch: int
    cpu_threads: int | None = None


def train(kind: str, data: HPAData, p: Preset | None = None, *, seed: int = 0, device: str = "auto",
          run_root: str | os.PathLike | None = None, resume: bool | str = "auto") -> TrainedModel:
    """Train the CNN or the FCN with the paper's optimiser and schedule, or reuse a finished run.

    Adam (lr 1e-3), binary cross-entropy, learning rate divided by 3 after 8 epochs without a
    lower validation loss; the weights of the best validation epoch are loaded at the end. The
    run folder (``book.run_dir``) is keyed by the model, the data store and the preset, so a
    re-execution of the chapter reuses the run.
    """
    from atlaskit import book
    from atlaskit.train import TrainConfig, Trainer, seed_everything

    p = p or data.preset
    if kind not in ("cnn", "fcn"):
        raise ParameterError(f"model kind must be 'cnn' or 'fcn', not {kind!r}")
    cfg = p.model_config()
    model_config = {"kind": kind, "model": cfg.to_dict(), "data": data.store.key, "targets": p.target_params,
                    "augment": p.augment}
    if run_root is None:
        folder = book.run_dir(CHAPTER, kind, scale=p.scale, seed=seed, epochs=p.epochs, batch=p.batch_size,
                              cpu_threads=p.cpu_threads, **model_config)
    else:
        folder = Path(run_root) / kind
    seed_everything(seed)
    model = build_model(kind, cfg)
    tc = TrainConfig(
        epochs=p.epochs, batch_size=p.batch_size, optimizer="adam", lr=1e-3, schedule="plateau", factor=1 / 3,
        patience=8, monitor="loss", mode="min", seed=seed, device=device, checkpoint_dir=folder,
        channels_last=True, num_workers=min(p.num_workers, usable_cpus()),
    )
    trainer = Trainer(model, tc, step_fn=cnn_step if kind == "cnn" else fcn_step,
                      train_data=data.dataset("train", augment=p.augment), val_data=data.dataset("val"),
                      model_config=model_config)
    with torch_threads(p.cpu_threads, trainer.device):
        history = trainer.fit(resume=resume)
    best = trainer.load_best()
    return TrainedModel(kind, trainer.model, trainer, history, cfg, folder, best, p.cpu_threads)


def predict(trained: TrainedModel, dataset: Dataset, *, batch_size: int = 128) -> np.ndarray:
    """Class confidences (N, 13) in [0, 1]: CNN sigmoid outputs; FCN max of each heat map."""
    with torch_threads(trained.cpu_threads, trained.trainer.device):
        out = trained.trainer.predict(dataset, lambda m, b: m.predict_proba(b[0]), batch_size=batch_size)
    return np.clip(out.numpy().astype(np.float64), 0.0, 1.0)


def heatmaps(trained: TrainedModel, images: np.ndarray) -> np.ndarray:
    """FCN heat maps (N, 13, h, w) for float images (N, 4, S, S) in [0, 1]."""
    if trained.kind != "fcn":
        raise ParameterError("heat maps come from the FCN")
    model = trained.model
    was = model.training
    model.eval()
    try:
        with torch_threads(trained.cpu_threads, trained.trainer.device):
            x = torch.as_tensor(np.asarray(images, np.float32), device=trained.trainer.device)
            return model.heatmaps(x).float().cpu().numpy()
    finally:
        model.train(was)


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Thresholds chosen on training data and everything computed on the test split."""

    kind: str
    thresholds: np.ndarray
    train_dice: np.ndarray
    y_test: np.ndarray
    scores: np.ndarray
    pred: np.ndarray
    confusion: ml.MultilabelConfusion
    meta: pd.DataFrame

    @property
    def mean_per_class_accuracy(self) -> float:
        return ml.mean_per_class_accuracy(self.y_test, self.pred)

    @property
    def mean_dice(self) -> float:
        return ml.mean_dice(self.y_test, self.pred)

    @property
    def exact_match(self) -> float:
        return float(ml.exact_match(self.y_test, self.pred).mean())

    def by_label_count(self, max_labels: int = 4) -> pd.DataFrame:
        return ml.accuracy_by_label_count(self.y_test, self.pred, max_labels=max_labels)

    def by_cell_line(self) -> pd.DataFrame:
        return ml.grouped_accuracy(self.y_test, self.pred, self.meta["cell_line"].to_numpy())


def evaluate(trained: TrainedModel, data: HPAData, *, step: float = 0.01) -> Evaluation:
    """Per-class Dice-maximising thresholds on the training split, then test-split predictions."""
    train_scores = predict(trained, data.dataset("train", maps=False))
    y = data.y
    thresholds, train_dice = ml.dice_thresholds(y[data.indices("train")], train_scores, step=step)
    test_idx = data.indices("test")
    scores = predict(trained, data.dataset("test", maps=False))
    y_test = y[test_idx]
    pred = ml.apply_thresholds(scores, thresholds)
    return Evaluation(trained.kind, thresholds, train_dice, y_test, scores, pred,
                      ml.multilabel_confusion(y_test, pred, CLASSES), data.meta.iloc[test_idx].reset_index(drop=True))


def summary_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Paper vs ours: mean per-class accuracy and mean Dice (plus exact match, ours only)."""
    rows = []
    for metric, label in (("mean_per_class_accuracy", "mean per-class accuracy"), ("mean_dice", "mean Dice")):
        row = {"metric": label}
        for kind in ("cnn", "fcn"):
            row[f"{kind.upper()} paper"] = PAPER[metric][kind]
            row[f"{kind.upper()} ours"] = getattr(evals[kind], metric) if kind in evals else np.nan
        rows.append(row)
    row = {"metric": "exact-match accuracy (all images)"}
    for kind in ("cnn", "fcn"):
        row[f"{kind.upper()} paper"] = np.nan
        row[f"{kind.upper()} ours"] = evals[kind].exact_match if kind in evals else np.nan
    rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


def table1(evals: Mapping[str, Evaluation], max_labels: int = 4) -> pd.DataFrame:
    """The paper's Table 1 beside ours: accuracy (exact match) by number of labels per image."""
    any_eval = next(iter(evals.values()))
    base = any_eval.by_label_count(max_labels)
    out = pd.DataFrame({"labels": base["n_labels"], "test images": base["n_images"]})
    for kind in ("cnn", "fcn"):
        if kind not in evals:
            continue
        t = evals[kind].by_label_count(max_labels)
        out[f"{kind.upper()} paper"] = [PAPER["by_label_count"][kind].get(int(c), np.nan) for c in t["n_labels"]]
        out[f"{kind.upper()} ours"] = t["exact_match"].to_numpy()
        out[f"{kind.upper()} ours, all found"] = t["all_found"].to_numpy()
    return out.set_index("labels")


def compare_with_paper(evals: Mapping[str, Evaluation]) -> list[str]:
    """Sentences that say, from this run's numbers, whether each of the paper's comparisons
    (FCN vs CNN) comes out the same way here."""
    cnn, fcn = evals["cnn"], evals["fcn"]

    def lead(a: float, b: float) -> str:
        if not (np.isfinite(a) and np.isfinite(b)):
            return "cannot be compared (no test images)"
        if abs(a - b) < 0.005:
            return "tie"
        return "FCN ahead" if b > a else "CNN ahead"

    out = []
    for metric, label in (("mean_per_class_accuracy", "mean per-class accuracy"), ("mean_dice", "mean Dice")):
        a, b = getattr(cnn, metric), getattr(fcn, metric)
        pa, pb = PAPER[metric]["cnn"], PAPER[metric]["fcn"]
        out.append(f"{label}: CNN {a:.3f}, FCN {b:.3f} ({lead(a, b)}); paper CNN {pa:.3f}, FCN {pb:.3f} "
                   f"({lead(pa, pb)}, by {pb - pa:+.3f})")
    many_c = cnn.y_test.sum(1) >= 3
    n_many = int(many_c.sum())
    if n_many:
        a = int(ml.exact_match(cnn.y_test[many_c], cnn.pred[many_c]).sum())
        b = int(ml.exact_match(fcn.y_test[many_c], fcn.pred[many_c]).sum())
        out.append(f"images with 3 or more labels: exactly right CNN {a} of {n_many}, FCN {b} of {n_many} "
                   f"({lead(a / n_many, b / n_many)}); paper: FCN ahead (3 labels 41 % vs 25 %, 4 labels 29 % vs 0 %)")
    else:
        out.append("no test image has 3 or more labels: the paper's many-label comparison cannot be made here")
    return out


def cell_line_table(evals: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Exact-match accuracy and mean per-class accuracy per cell line, for both models."""
    parts = []
    for kind, ev in evals.items():
        t = ev.by_cell_line()
        t.insert(0, "model", kind.upper())
        parts.append(t.reset_index().rename(columns={"group": "cell line"}))
    return pd.concat(parts, ignore_index=True)


def confusion_frames(evals: Mapping[str, Evaluation]) -> dict[str, pd.DataFrame]:
    """Row-normalised multi-label confusion matrices (diagonal = per-class accuracy)."""
    return {kind: ev.confusion.to_frame() for kind, ev in evals.items()}


# --------------------------------------------------------------------------- exercises


def threshold_comparison(y_true, y_score, class_thresholds, global_thresholds: Sequence[float] = (0.3, 0.5, 0.7)
                         ) -> pd.DataFrame:
    """Test scores of per-class thresholds beside one global threshold for every class.

    Parameters
    ----------
    y_true : array (N, K) of 0/1
        Test labels.
    y_score : array (N, K) in [0, 1]
        Test confidences.
    class_thresholds : array (K,)
        Per-class thresholds (the chapter's, chosen on the training data).
    global_thresholds : sequence of float
        Thresholds in [0, 1], each applied to every class.

    Returns
    -------
    DataFrame
        One row per rule (``"per class"``, then ``"global 0.3"`` …), with ``mean Dice``,
        ``mean per-class accuracy``, ``exact match`` (fraction of images) and
        ``labels per image`` (mean number of predicted labels).
    """
    y = np.asarray(y_true)
    k = np.shape(y)[1] if np.ndim(y) == 2 else 0
    rules = {"per class": np.asarray(class_thresholds, dtype=np.float64)}
    for t in global_thresholds:
        if isinstance(t, bool) or not 0 <= float(t) <= 1:
            raise ParameterError(f"global thresholds must lie in [0, 1], got {t!r}")
        rules[f"global {float(t):g}"] = np.full(k, float(t))
    rows = {}
    for name, th in rules.items():
        pred = ml.apply_thresholds(y_score, th)
        rows[name] = {"mean Dice": ml.mean_dice(y, pred),
                      "mean per-class accuracy": ml.mean_per_class_accuracy(y, pred),
                      "exact match": float(ml.exact_match(y, pred).mean()),
                      "labels per image": float(pred.sum(1).mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("thresholds")


#: Ways of turning an FCN heat map (..., h, w) into one confidence per class.
POOLINGS = {"max": lambda hm: hm.amax(dim=(-2, -1)), "mean": lambda hm: hm.mean(dim=(-2, -1))}


def heatmap_confidences(trained: TrainedModel, data: HPAData, split: str, poolings: Sequence[str] = ("max", "mean"),
                        *, max_images: int | None = None, batch_size: int = 128) -> dict[str, np.ndarray]:
    """FCN confidences (n, 13) of the images of ``split`` under several poolings of its heat maps.

    ``"max"`` is the paper's pooling and gives exactly :func:`predict`'s confidences (the same
    batches and operations); ``"mean"`` averages each sigmoid heat map instead. ``max_images``
    keeps the first that many images of the split (all by default).
    """
    if trained.kind != "fcn":
        raise ParameterError("pooled confidences come from the FCN's heat maps")
    unknown = [q for q in poolings if q not in POOLINGS]
    if unknown or not poolings:
        raise ParameterError(f"poolings must be among {sorted(POOLINGS)}, got {list(poolings)!r}")
    if max_images is not None and (isinstance(max_images, bool) or int(max_images) < 1):
        raise ParameterError(f"max_images must be a positive integer or None, got {max_images!r}")

    def fn(model, batch):
        hm = model.heatmaps(batch[0])  # (b, 13, h, w) sigmoid maps
        return {q: POOLINGS[q](hm) for q in poolings}

    with torch_threads(trained.cpu_threads, trained.trainer.device):
        dataset = data.dataset(split, maps=False)
        if max_images is not None:
            dataset = HPADataset(dataset.store, dataset.indices[:max_images], dataset.labels[:max_images])
        out = trained.trainer.predict(dataset, fn, batch_size=batch_size)
    return {q: np.clip(out[q].numpy().astype(np.float64), 0.0, 1.0) for q in poolings}


def pooling_table(y_train, train_conf: Mapping[str, np.ndarray], y_test, test_conf: Mapping[str, np.ndarray],
                  *, step: float = 0.01) -> pd.DataFrame:
    """The chapter's evaluation repeated for each pooling of the FCN heat maps.

    For each pooling: per-class Dice-maximising thresholds on the training confidences
    (:func:`atlaskit.metrics.multilabel.dice_thresholds`), applied to the test confidences.

    Parameters
    ----------
    y_train, y_test : arrays (n, K) of 0/1
    train_conf, test_conf : mapping pooling name -> array (n, K) in [0, 1]
        The same pooling names in both (e.g. from :func:`heatmap_confidences`).

    Returns
    -------
    DataFrame
        One row per pooling with ``mean per-class accuracy``, ``mean Dice`` (test) and
        ``mean threshold``.
    """
    if set(train_conf) != set(test_conf) or not train_conf:
        raise DataError(f"train and test confidences must have the same poolings, got {sorted(train_conf)} "
                        f"and {sorted(test_conf)}")
    rows = {}
    for q in train_conf:
        th, _ = ml.dice_thresholds(y_train, train_conf[q], step=step)
        pred = ml.apply_thresholds(test_conf[q], th)
        rows[q] = {"mean per-class accuracy": ml.mean_per_class_accuracy(y_test, pred),
                   "mean Dice": ml.mean_dice(y_test, pred), "mean threshold": float(th.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("pooling")


def target_variants(data: HPAData, variants: Mapping[str, Mapping[str, float]], split: str = "train",
                    max_images: int = 256) -> pd.DataFrame:
    """How FCN target maps change with their parameters, on the first ``max_images`` of ``split``.

    Parameters
    ----------
    data : HPAData
    variants : mapping name -> parameters
        Each overrides some of the preset's target parameters (``sigma``, ``threshold``,
        ``dilation``; also ``cover``, default 0) for :func:`atlaskit.models.cnnfcn.fcn_targets`;
        ``{}`` gives the chapter's maps.
    split : str
    max_images : int

    Returns
    -------
    DataFrame
        One row per variant with its ``sigma``, ``threshold``, ``dilation``, ``cover``,
        ``empty maps`` (fraction of images whose map has no pixel on) and ``map coverage``
        (mean fraction of heat-map pixels on).
    """
    allowed = {"sigma", "threshold", "dilation", "cover"}
    idx = data.indices(split)[:max_images]
    if len(idx) == 0:
        raise DataError(f"split {split!r} has no images")
    protein = np.asarray(data.store.images[idx, 0], dtype=np.float32) / 255.0  # (n, S, S)
    rows = {}
    for name, over in variants.items():
        bad = set(over) - allowed
        if bad:
            raise ParameterError(f"variant {name!r}: unknown target parameters {sorted(bad)}")
        params = {**data.preset.target_params, "cover": 0.0, **over}
        maps = fcn_targets(protein, np.ones((len(idx), 1)), data.preset.heatmap_size, **params)[:, 0] > 0
        rows[name] = {**params, "empty maps": float((~maps.any(axis=(1, 2))).mean()),
                      "map coverage": float(maps.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


def most_missed(confusion: ml.MultilabelConfusion, *, min_support: int = 5, top: int = 3) -> dict[str, Any]:
    """The class found least often and the classes predicted instead when it is missed.

    Parameters
    ----------
    confusion : MultilabelConfusion
        A multi-label confusion matrix (``Evaluation.confusion``).
    min_support : int
        Only classes with at least this many test images compete (all present classes when none
        has that many), so that a class seen once does not win by chance.
    top : int
        How many of the classes predicted instead to return.

    Returns
    -------
    dict
        ``index``, ``class``, ``accuracy`` (per-class accuracy), ``support`` (test images with the
        class), ``missed`` (images in which it was missed), ``missed_without_fp`` (missed with no
        false positive in the image) and ``confused_with``: a Series, class name -> rate
        (false-positive hits per image with the class), the ``top`` largest nonzero entries of its
        row. Ties in accuracy go to the class with more test images, then to the first class.
    """
    support = np.asarray(confusion.support)
    acc = confusion.per_class_accuracy
    present = np.flatnonzero(support > 0)
    if len(present) == 0:
        raise DataError("no class is present in the confusion matrix")
    cand = present[support[present] >= min_support]
    if len(cand) == 0:
        cand = present
    k = int(cand[np.lexsort((cand, -support[cand], acc[cand]))[0]])
    names = list(confusion.classes) if confusion.classes is not None else [str(j) for j in range(len(support))]
    row = confusion.rates[k].copy()
    row[k] = 0.0
    order = [j for j in np.argsort(-row, kind="stable") if row[j] > 0][:top]
    return {"index": k, "class": names[k], "accuracy": float(acc[k]), "support": int(support[k]),
            "missed": int(support[k] - confusion.counts[k, k]),
            "missed_without_fp": int(confusion.missed_without_fp[k]),
            "confused_with": pd.Series({names[j]: float(row[j]) for j in order}, dtype=float, name="rate")}


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
        "fractions": list(p.hetero_fractions), "n": p.n_hetero,
        "exclude": hashlib.sha256("\n".join(sorted(excluded)).encode()).hexdigest(),
        "sim_source": _source_hash(Path(sim.__file__).parent),
    }
    path = store_path(_data_root(root), f"hetero-{p.scale}", params)

    def batches():
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3006]))
        pick = np.sort(rng.choice(candidates, n_total, replace=False))
        chosen = table.iloc[pick]
        specs = sim.hpa_specs(chosen[["id", "labels"]], seed)
        fractions = [p.hetero_fractions[k % len(p.hetero_fractions)] for k in rng.permutation(n_total)]
        lines = [sim.HPA_CELL_LINES[k] for k in rng.integers(len(sim.HPA_CELL_LINES), size=n_total)]
        split = np.full(n_total, "test", object)
        yield from _render_groups(list(chosen["id"]), specs, fractions, lines, split, p, seed,
                                  workers or (os.cpu_count() if p.scale == "full" else None))

    store = ArrayStore.build(path, batches, shape_per_item=(4, p.image_size, p.image_size), dtype="uint8",
                             params=params, attrs={"classes": list(CLASSES)})
    return HPAData(store, _finish_meta(store), "sim", p)


def heterogeneity_experiment(models: Mapping[str, tuple[TrainedModel, Evaluation]], hdata: HPAData) -> pd.DataFrame:
    """Recall of every true (image, class) pair against the fraction of the image's cells showing it.

    Parameters
    ----------
    models : {"cnn": (trained, evaluation), "fcn": ...}
        The evaluation supplies the thresholds chosen on the training data.
    hdata : HPAData
        From :func:`heterogeneity_data`.

    Returns
    -------
    DataFrame
        One row per (model, image, true class): ``model, image, class, n_labels, cell_fraction``
        (the simulator's setting), ``cells_fraction`` (the realised fraction of the image's cells
        showing the class), ``score``, ``threshold``, ``found``.
    """
    y = hdata.y
    frac = np.array([[float(v) for v in s.split()] for s in hdata.meta["class_cell_fraction"]])  # (N, 13)
    ds = hdata.dataset(None, maps=False)
    rows = []
    for kind, (trained, ev) in models.items():
        scores = predict(trained, ds)
        pred = ml.apply_thresholds(scores, ev.thresholds)
        img, cls = np.nonzero(y)
        rows.append(pd.DataFrame({
            "model": kind.upper(), "image": img, "class": [CLASSES[c] for c in cls],
            "n_labels": hdata.meta["n_labels"].to_numpy()[img],
            "cell_fraction": hdata.meta["cell_fraction"].to_numpy()[img],
            "cells_fraction": frac[img, cls], "score": scores[img, cls], "threshold": ev.thresholds[cls],
            "found": pred[img, cls],
        }))
    return pd.concat(rows, ignore_index=True)


HETERO_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def heterogeneity_summary(df: pd.DataFrame, bins: Sequence[float] = HETERO_BINS) -> pd.DataFrame:
    """Recall (with a 95 % Wilson interval) per model and bin of the realised cell fraction."""
    d = df.copy()
    labels = [f"{lo:.0%}–{min(hi, 1):.0%}" for lo, hi in zip(bins[:-1], bins[1:])]
    d["bin"] = pd.cut(d["cells_fraction"], list(bins), right=False, labels=labels)
    g = d.groupby(["model", "bin"], observed=True).agg(n=("found", "size"), found=("found", "sum"),
                                                       mean_fraction=("cells_fraction", "mean")).reset_index()
    g["recall"] = g["found"] / g["n"]
    g["low"], g["high"] = ml.wilson_interval(g["found"].to_numpy(), g["n"].to_numpy())
    return g


def heterogeneity_verdict(df: pd.DataFrame, *, split_at: float = 0.5, n_boot: int = 2000, seed: int = 0) -> dict:
    """Does the FCN's recall advantage over the CNN grow when a class is in fewer cells?

    Pairs the two models' outcomes on the same (image, class), and compares the mean
    FCN − CNN recall difference below ``split_at`` (realised fraction of cells) with the one at
    or above it; the 95 % interval of that change comes from a bootstrap over images.

    Returns
    -------
    dict with ``diff_low``, ``diff_high`` (FCN − CNN recall in each group), ``n_low``,
    ``n_high`` (pairs), ``change`` (= diff_low − diff_high), ``ci`` (2-tuple), and ``text``.
    """
    wide = df.pivot_table(index=["image", "class"], columns="model", values="found", aggfunc="first")
    if not {"CNN", "FCN"} <= set(wide.columns):
        raise DataError("the heterogeneity table needs both models")
    frac = df.drop_duplicates(["image", "class"]).set_index(["image", "class"])["cells_fraction"]
    wide = wide.join(frac)
    wide["diff"] = wide["FCN"].astype(float) - wide["CNN"].astype(float)
    low = wide["cells_fraction"] < split_at
    if low.sum() == 0 or (~low).sum() == 0:
        raise DataError(f"no (image, class) pairs on one side of the split at {split_at}")
    d_low, d_high = float(wide.loc[low, "diff"].mean()), float(wide.loc[~low, "diff"].mean())
    images = wide.index.get_level_values("image").to_numpy()
    uniq = np.unique(images)
    by_image = {i: np.flatnonzero(images == i) for i in uniq}
    diff, lowv = wide["diff"].to_numpy(), low.to_numpy()
    rng = np.random.default_rng(seed)
    changes = []
    for _ in range(n_boot):
        idx = np.concatenate([by_image[i] for i in rng.choice(uniq, len(uniq), replace=True)])
        l, h = lowv[idx], ~lowv[idx]
        if l.any() and h.any():
            changes.append(diff[idx][l].mean() - diff[idx][h].mean())
    lo, hi = np.percentile(changes, [2.5, 97.5])
    change = d_low - d_high
    if lo > 0:
        verdict = ("the FCN's advantage is significantly larger when a class is shown by few cells — "
                   "consistent with the paper's explanation")
    elif hi < 0:
        verdict = ("the FCN's advantage is significantly smaller when a class is shown by few cells — "
                   "contrary to the paper's explanation")
    else:
        verdict = ("the 95 % interval of the change includes zero: this run does not show that the FCN gains "
                   "more than the CNN when a class is shown by few cells")
    text = (f"FCN − CNN recall: {d_low:+.3f} when fewer than {split_at:.0%} of the cells show the class "
            f"({int(low.sum())} image-class pairs), {d_high:+.3f} otherwise ({int((~low).sum())} pairs); "
            f"change {change:+.3f} (95 % bootstrap interval {lo:+.3f} to {hi:+.3f}): {verdict}.")
    return {"diff_low": d_low, "diff_high": d_high, "n_low": int(low.sum()), "n_high": int((~low).sum()),
            "change": change, "ci": (float(lo), float(hi)), "text": text}


# --------------------------------------------------------------------------- examples and figures


def pick_examples(evals: Mapping[str, Evaluation], n: int = 2) -> pd.DataFrame:
    """Test images for the successes-and-failures figure: up to ``n`` per outcome
    (both right, only the FCN right, only the CNN right, both wrong; right = exact match),
    preferring images with more labels. Returns ``position`` (in the test split) and ``outcome``."""
    cnn, fcn = evals["cnn"], evals["fcn"]
    ok_c = ml.exact_match(cnn.y_test, cnn.pred)
    ok_f = ml.exact_match(fcn.y_test, fcn.pred)
    n_labels = cnn.y_test.sum(1)
    rows = []
    for name, sel in (("both right", ok_c & ok_f), ("FCN right, CNN wrong", ok_f & ~ok_c),
                      ("CNN right, FCN wrong", ok_c & ~ok_f), ("both wrong", ~ok_c & ~ok_f)):
        idx = np.flatnonzero(sel)
        idx = idx[np.lexsort((idx, -n_labels[idx]))][:n]  # most labels first, then test order
        rows += [{"position": int(i), "outcome": name} for i in idx]
    return pd.DataFrame(rows, columns=["position", "outcome"])


def pick_heterogeneous(data: HPAData, ev: Evaluation, n: int = 3) -> np.ndarray:
    """Test positions of multi-label images, heterogeneous ones first (simulated cell fraction < 1),
    then by number of labels: the images where per-cell heat maps have most to show."""
    meta = ev.meta
    frac = meta["cell_fraction"].fillna(1.0).to_numpy()
    nl = meta["n_labels"].to_numpy()
    cand = np.flatnonzero(nl >= 2)
    if len(cand) < n:
        cand = np.arange(len(meta))
    order = np.lexsort((cand, -nl[cand], frac[cand]))
    return cand[order][:n]


def fig_class_distribution(data: HPAData):
    """Plotly bars: images per class and split."""
    import plotly.express as px

    rows = data.meta[["split", "labels"]].explode("labels")
    counts = rows.groupby(["labels", "split"]).size().rename("images").reset_index()
    order = rows["labels"].value_counts().index.tolist()
    fig = px.bar(counts, x="labels", y="images", color="split", barmode="stack",
                 category_orders={"labels": order, "split": ["train", "val", "test"]},
                 title=f"Images per class and split ({len(data.meta)} images, {data.source})")
    fig.update_layout(xaxis_title=None, xaxis_tickangle=-35, height=420)
    return fig


def fig_cooccurrence(data: HPAData):
    """Plotly heat map of label co-occurrence (diagonal: images with the class)."""
    import plotly.graph_objects as go

    co = catalogs.label_cooccurrence(data.meta, CLASSES, column="labels")
    z = co.to_numpy()
    fig = go.Figure(go.Heatmap(z=np.log10(z + 1), x=list(CLASSES), y=list(CLASSES), customdata=z,
                               colorscale="Viridis", colorbar={"title": "log₁₀(n + 1)"},
                               hovertemplate="%{y} & %{x}: %{customdata} images<extra></extra>"))
    fig.update_layout(title="Label co-occurrence in this data set (diagonal: images with the class)", height=560,
                      yaxis_autorange="reversed", xaxis_tickangle=-40)
    return fig


def fig_loss_curves(models: Mapping[str, TrainedModel]):
    """Plotly: training and validation loss per epoch, one panel per model, LR on hover."""
    import plotly.express as px

    frames = []
    for kind, tm in models.items():
        f = tm.history.to_frame()
        f = f[f["term"] == "loss"].copy()
        f["model"] = kind.upper()
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    fig = px.line(df, x="epoch", y="value", color="split", facet_col="model", markers=True,
                  title="Binary cross-entropy per epoch (CNN: 13 outputs; FCN: every heat-map pixel)",
                  labels={"value": "loss"})
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(height=380)
    return fig


def fig_confusions(evals: Mapping[str, Evaluation]):
    """Plotly: the two multi-label confusion matrices side by side (rows normalised)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = [k for k in ("cnn", "fcn") if k in evals]
    fig = make_subplots(rows=1, cols=len(kinds), horizontal_spacing=0.16,
                        subplot_titles=[f"{k.upper()}: mean per-class accuracy {evals[k].mean_per_class_accuracy:.3f}"
                                        for k in kinds])
    for j, k in enumerate(kinds):
        cm = evals[k].confusion
        rates = cm.rates
        text = np.where(np.isnan(rates), "", np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(rates)))
        fig.add_trace(go.Heatmap(z=rates, x=list(CLASSES), y=list(CLASSES), zmin=0, zmax=1, colorscale="Blues",
                                 text=text, texttemplate="%{text}", textfont={"size": 8},
                                 customdata=np.broadcast_to(cm.support[:, None], rates.shape),
                                 hovertemplate="true %{y}, predicted %{x}: %{z:.2f} (of %{customdata} images)<extra></extra>",
                                 showscale=j == len(kinds) - 1), 1, j + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=j + 1)
        fig.update_xaxes(tickangle=-45, row=1, col=j + 1)
    fig.update_layout(height=620, title="Multi-label confusion matrices on the test split (rows: true class; "
                                        "diagonal: per-class accuracy; off-diagonal: false positives of missed labels)")
    return fig


def fig_table1(t1: pd.DataFrame):
    """Plotly grouped bars: accuracy by number of labels, ours beside the paper's."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = {"CNN": "#1f77b4", "FCN": "#d62728"}
    for model in ("CNN", "FCN"):
        if f"{model} ours" not in t1:
            continue
        fig.add_bar(x=[f"{i} label{'s' * (i > 1)}" for i in t1.index], y=t1[f"{model} paper"], name=f"{model} paper",
                    marker_color=colors[model], opacity=0.35)
        fig.add_bar(x=[f"{i} label{'s' * (i > 1)}" for i in t1.index], y=t1[f"{model} ours"], name=f"{model} ours",
                    marker_color=colors[model], customdata=t1["test images"],
                    hovertemplate="%{y:.2f} of %{customdata} test images<extra>" + model + " ours</extra>")
    fig.update_layout(barmode="group", yaxis_title="accuracy (exact match)", yaxis_range=[0, 1], height=400,
                      title="Accuracy by number of labels per image: ours (solid) beside the paper's Table 1 (pale)")
    return fig


def fig_cell_lines(table: pd.DataFrame):
    """Plotly bars: exact-match accuracy and mean per-class accuracy per cell line and model."""
    import plotly.express as px

    long = table.melt(id_vars=["model", "cell line", "n_images"], value_vars=["exact_match", "mean_per_class_accuracy"],
                      var_name="measure", value_name="accuracy")
    fig = px.bar(long, x="cell line", y="accuracy", color="model", barmode="group", facet_col="measure",
                 hover_data=["n_images"], range_y=[0, 1], title="Accuracy per cell line (test split)",
                 color_discrete_map={"CNN": "#1f77b4", "FCN": "#d62728"})
    fig.update_layout(height=380)
    return fig


def _overlay_heatmap(ax, rgb, hm, mask=None, title=""):
    from skimage.segmentation import find_boundaries
    from skimage.transform import resize

    big = resize(hm, rgb.shape[:2], order=1, mode="edge")  # bilinear, for display only
    ax.imshow(rgb * 0.55)
    ax.imshow(big, cmap="magma", alpha=0.55, vmin=0, vmax=1)
    if mask is not None and mask.any():
        edge = find_boundaries(mask, mode="inner")
        over = np.zeros(rgb.shape[:2] + (4,), np.float32)
        over[edge] = (0.3, 1.0, 1.0, 1.0)
        ax.imshow(over)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def fig_heatmap_overlays(data: HPAData, fcn: TrainedModel, ev: Evaluation, positions: Sequence[int], seed: int = 0):
    """Matplotlib: per image, the composite and the FCN heat map of each true class, with the
    outlines (cyan) of the cells that show that class (simulated data: the per-cell ground truth)."""
    import matplotlib.pyplot as plt

    from atlaskit.plots import to_rgb

    test_rows = data.indices("test")[np.asarray(positions)]
    images = np.asarray(data.store.images[test_rows], np.float32) / 255.0  # (n, 4, S, S)
    hms = heatmaps(fcn, images)  # (n, 13, h, w)
    truth = regenerate_fields(data, test_rows, seed=seed) if data.source == "sim" else None
    ncols = 1 + max(int(ev.y_test[p].sum()) for p in positions)
    fig, axes = plt.subplots(len(positions), ncols, figsize=(2.1 * ncols, 2.3 * len(positions)), squeeze=False)
    for r, pos in enumerate(positions):
        rgb = to_rgb(images[r])
        axes[r, 0].imshow(rgb)
        meta = ev.meta.iloc[pos]
        frac = "" if pd.isna(meta["cell_fraction"]) else f", cell fraction {meta['cell_fraction']:.2f}"
        axes[r, 0].set_title(f"{meta['cell_line']}{frac}", fontsize=7)
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        classes = np.flatnonzero(ev.y_test[pos])
        for j in range(1, ncols):
            ax = axes[r, j]
            if j - 1 >= len(classes):
                ax.axis("off")
                continue
            k = classes[j - 1]
            mask = None
            if truth is not None:
                cells = truth.cells[truth.cells["image"] == r]
                ids = [cid for cid, labs in zip(cells["cell_id"], cells["labels"]) if CLASSES[k] in labs]
                mask = np.isin(truth.cell_masks[r], ids) if ids else np.zeros(images.shape[2:], bool)
            hit = "found" if ev.pred[pos, k] else "missed"
            _overlay_heatmap(ax, rgb, hms[r, k], mask,
                             f"{CLASSES[k]}\nmax {hms[r, k].max():.2f} vs thr {ev.thresholds[k]:.2f}: {hit}")
    fig.suptitle("FCN heat maps of each true class (magma) over the image; cyan: cells that show the class", fontsize=9)
    fig.tight_layout()
    return fig


def fig_examples(data: HPAData, evals: Mapping[str, Evaluation], picks: pd.DataFrame):
    """Matplotlib: test images with both models' confidences (bars) and thresholds (ticks)."""
    import matplotlib.pyplot as plt

    from atlaskit.plots import to_rgb

    n = len(picks)
    fig, axes = plt.subplots(n, 2, figsize=(8.2, 1.8 * n), squeeze=False, gridspec_kw={"width_ratios": [1, 2.6]})
    test_rows = data.indices("test")
    ypos = np.arange(N_CLASSES)
    for r, (pos, outcome) in enumerate(zip(picks["position"], picks["outcome"])):
        img = np.asarray(data.store.images[test_rows[pos]], np.float32) / 255.0
        axes[r, 0].imshow(to_rgb(img))
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_title(outcome, fontsize=8)
        ax = axes[r, 1]
        truth = evals["cnn"].y_test[pos].astype(bool)
        for off, kind, color, dark in ((-0.2, "cnn", "#1f77b4", "#08306b"), (0.2, "fcn", "#d62728", "#67000d")):
            ev = evals[kind]
            ax.barh(ypos + off, ev.scores[pos], height=0.38, color=color, alpha=0.75, label=kind.upper())
            ax.scatter(ev.thresholds, ypos + off, marker="|", s=70, linewidths=2, color=dark, zorder=3,
                       label=f"{kind.upper()} threshold")
        ax.set_yticks(ypos)
        ax.set_yticklabels([("● " if t else "") + c for c, t in zip(CLASSES, truth)], fontsize=6)
        for tick, t in zip(ax.get_yticklabels(), truth):
            tick.set_fontweight("bold" if t else "normal")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=6)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    axes[-1, 1].set_xlabel("confidence (● bold: true classes; |: the model's threshold, chosen on training data)",
                           fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (1.8 * n)))
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=7, frameon=False)
    return fig


def fig_heterogeneity(summary: pd.DataFrame):
    """Plotly: recall against the fraction of cells showing the class, both models, 95 % intervals."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for model, color in (("CNN", "#1f77b4"), ("FCN", "#d62728")):
        s = summary[summary["model"] == model]
        fig.add_scatter(x=s["mean_fraction"], y=s["recall"], mode="lines+markers", name=model, line_color=color,
                        error_y={"type": "data", "symmetric": False, "array": s["high"] - s["recall"],
                                 "arrayminus": s["recall"] - s["low"]},
                        customdata=np.stack([s["bin"].astype(str), s["n"]], 1),
                        hovertemplate="cells showing the class: %{customdata[0]}<br>recall %{y:.2f} "
                                      "(n = %{customdata[1]})<extra>" + model + "</extra>")
    fig.update_layout(xaxis_title="fraction of the image's cells that show the class (bin mean)",
                      yaxis_title="recall (class found)", yaxis_range=[0, 1.05], xaxis_range=[0, 1.02], height=420,
                      title="Recall against per-cell heterogeneity (fresh simulated fields, thresholds from training)")
    return fig
