"""Chapter 04 pipeline — DeepYeast (Pärnamaa & Parts 2017, *G3* 7:1385).

What the chapter calls, in order:

1. :func:`preset` — sizes per scale (``"ci"``: a narrow network and a few thousand simulated
   crops for 2 CPU cores; ``"full"``: the paper's network and data sizes).
2. :func:`load_data` — the 12-class set (train / val / test), the 4-class transfer set and, on
   simulated data, proteins spread between nucleus and cytoplasm; simulated (default, with
   non-cell crops mixed in as in a real screen) or the real DeepYeast images in their public
   layout. Each set is an :class:`~atlaskit.data.store.ArrayStore`, built once and reused.
3. :func:`train_network` — :class:`~atlaskit.models.deepyeast.DeepYeastNet` with the paper's SGD
   recipe through :class:`atlaskit.train.Trainer` (checkpoints in a :func:`atlaskit.book.run_dir`).
4. Evaluation: :func:`predict`, :func:`cell_metrics` (accuracy, kappa, precision / recall with
   stratified bootstrap intervals, confusion), :func:`quality_filter` (random forest cells vs
   non-cells), :func:`protein_level` and :func:`protein_accuracy_vs_cells` (Dirichlet–multinomial
   calls), :func:`spread_posteriors` (nucleus / cytoplasm proportions).
5. Baseline and transfer: :func:`hand_features` (cached), :func:`random_forest_baseline`,
   :func:`layer_features` and :func:`transfer_curves` (Fig. 4C and S6).
6. Interpretation: :func:`embed_layers` (t-SNE, Fig. 3B), :func:`unit_class_information`
   (mutual information, Fig. 3D), :func:`max_activating_patches` (Fig. 3A).
7. Sim-to-real check: :func:`save_model` / :func:`load_model` and :func:`evaluate_checkpoint`
   (also ``atlaskit evaluate deepyeast --checkpoint PATH --images FILE.npz``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.data.catalogs import DEEPYEAST_CLASSES, TRANSFER_CLASSES
from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import agreement
from atlaskit.models.deepyeast import LAYER_NAMES, DeepYeastConfig, DeepYeastNet, deepyeast_step, paper_train_config
from atlaskit.studies._presets import select_preset

__all__ = [
    "PAPER", "Preset", "PRESETS", "preset", "YeastData", "load_data", "real_splits", "protein_key", "TrainedNetwork",
    "train_network", "predict", "cell_metrics", "hand_features", "random_forest_baseline", "quality_filter",
    "quality_training_set", "training_mean", "dual_specs",
    "protein_level", "protein_accuracy_vs_cells", "spread_posteriors", "layer_features", "transfer_curves",
    "summarize_transfer", "embed_layers", "unit_class_information", "receptive_fields", "max_activating_patches",
    "save_model", "load_model", "EvaluationReport", "evaluate_checkpoint", "normalize_label",
    "comparison_table", "limit_cpu_threads", "prior_sweep", "vote_calls", "stratified_subset",
    "forest_learning_curve",
]

CHAPTER = "04_deepyeast"
CHECKPOINT_FORMAT = "atlaskit.deepyeast/1"

#: The paper's headline numbers (Pärnamaa & Parts 2017).
PAPER = {
    "cell_accuracy": 0.87,           # per cell, test set
    "cell_accuracy_filtered": 0.91,  # per cell, after removing non-cells
    "protein_accuracy": 0.99,        # per protein (Dirichlet–multinomial MAP)
    "protein_accuracy_10": 1.00,     # per protein, proteins with >= 10 cells
    "rf_accuracy": 0.75,             # random forest on CellProfiler features
}


# =============================================================================================
# presets
# =============================================================================================
@dataclass(frozen=True)
class Preset:
    """Every size of one chapter run.

    Attributes
    ----------
    scale : {"tiny", "ci", "full"}
    model : DeepYeastConfig
    epochs, batch_size, lr, step_size : training (step schedule: LR × 0.5 every ``step_size`` epochs)
    proteins_per_class : int or None
        Simulated main set: proteins drawn per class from the YeastGFP catalog (None: all).
    split : (train, val, test) fractions of proteins (protein-disjoint, stratified by class)
    cells_per_class : (train, val, test)
        Simulated main set: cells per class in each split, shared between the split's proteins
        of the class (many proteins with few cells each for training, fewer proteins with more
        cells each for the protein-level test).
    max_cells_per_protein : int
    noncell_fraction : float
        Simulated non-cell crops added to every split, as a fraction of its cells; they carry
        the class of a protein of their split, as badly segmented crops in a screen do.
    transfer_proteins_per_class, transfer_cells_per_class : int or None, int
    transfer_sizes : training images per class for the transfer curves (capped at the data)
    transfer_repeats : random training subsets per size
    transfer_trees : trees of each transfer-learning random forest
    layer_sweep_size : training images per class for the every-layer comparison (Fig. S6)
    n_bootstrap : bootstrap resamples (paper: 20,000)
    rf_trees : trees of every random forest
    embed_cells, embed_layers : t-SNE
    mi_bins : quantile bins per unit for the mutual information
    dual_proteins, dual_cells : simulated nucleus + cytoplasm proteins
    feature_jobs : processes for the hand-crafted features
    num_workers : DataLoader workers for training
    cpu_threads : int or None
        CPU threads for torch and the OpenMP pools (t-SNE) when the chapter runs, through
        :func:`limit_cpu_threads`; None leaves the libraries' defaults. The small presets use 1:
        their layers are too small to gain from a second thread, and on a busy 2-core machine
        two threads per process ran several times slower (a training batch 1.1 s vs 0.15 s).
    """

    scale: str
    model: DeepYeastConfig
    epochs: int
    batch_size: int
    lr: float
    step_size: int
    proteins_per_class: int | None
    split: tuple[float, float, float]
    cells_per_class: tuple[int, int, int]
    max_cells_per_protein: int
    noncell_fraction: float
    transfer_proteins_per_class: int | None
    transfer_cells_per_class: int
    transfer_sizes: tuple[int, ...]
    transfer_repeats: int
    transfer_trees: int
    layer_sweep_size: int
    n_bootstrap: int
    rf_trees: int
    embed_cells: int
    embed_layers: tuple[str, ...]
    mi_bins: int
    dual_proteins: int
    dual_cells: int
    feature_jobs: int
    num_workers: int
    cpu_threads: int | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return json.loads(json.dumps(d))  # tuples → lists

    def replace(self, **changes) -> "Preset":
        return dataclasses.replace(self, **changes)


TRANSFER_SIZES = (1, 3, 5, 10, 25, 50, 100, 250, 500)

PRESETS: dict[str, Preset] = {
    # 2 CPU cores, minutes: a network 1/8 as wide (same 11 layers), no dropout (a few epochs are
    # too short for dropout 0.5 to pay off), batch 32 with a proportionally smaller learning
    # rate, 10 epochs, ~9,000 simulated crops, 1,000 bootstrap resamples. Measured on 2 cores
    # (test accuracy, training seconds): 200 training cells per class and 8 epochs 0.48 (34 s);
    # 16 epochs 0.62 (68 s); width 1/4, 12 epochs 0.66 (109 s); 600 cells per class and
    # 10 epochs 0.83 (109 s): more cells help most. Those runs used two threads; with the
    # one thread used now the same preset reached 0.77 — the spread of an unconverged network.
    # Learner mode (live teaching, under two minutes): fewer proteins and cells, 4 epochs, the
    # transfer curve up to 10 images per class, 200 bootstrap resamples. Numbers are rougher;
    # every analysis still runs. One CPU thread: on a shared or busy 2-core machine, two torch or
    # OpenMP threads spin against each other (measured: a training batch 0.15 s with one thread,
    # 1.1 s with two; the t-SNE 4 s against 30 s).
    "tiny": Preset(
        scale="tiny", model=DeepYeastConfig.small(0.125, dropout=0.0), epochs=4, batch_size=32, lr=0.05, step_size=2,
        proteins_per_class=16, split=(0.6, 0.15, 0.25), cells_per_class=(150, 12, 48), max_cells_per_protein=30,
        noncell_fraction=0.08, transfer_proteins_per_class=6, transfer_cells_per_class=40,
        transfer_sizes=(1, 3, 5, 10), transfer_repeats=2, transfer_trees=50, layer_sweep_size=10, n_bootstrap=200,
        rf_trees=60, embed_cells=240, embed_layers=("conv2_2", "fc1"), mi_bins=6, dual_proteins=4, dual_cells=12,
        feature_jobs=1, num_workers=0, cpu_threads=1,
    ),
    "ci": Preset(
        scale="ci", model=DeepYeastConfig.small(0.125, dropout=0.0), epochs=10, batch_size=32, lr=0.05, step_size=4,
        proteins_per_class=40, split=(0.7, 0.1, 0.2), cells_per_class=(600, 24, 96), max_cells_per_protein=40,
        noncell_fraction=0.08, transfer_proteins_per_class=8, transfer_cells_per_class=104,
        transfer_sizes=TRANSFER_SIZES, transfer_repeats=3, transfer_trees=100, layer_sweep_size=25, n_bootstrap=1000, rf_trees=150,
        embed_cells=480, embed_layers=("conv2_2", "conv3_4", "fc1", "fc2"), mi_bins=8, dual_proteins=8, dual_cells=20,
        feature_jobs=1, num_workers=0, cpu_threads=1,
    ),
    # The paper: its network and recipe (SGD 0.1, momentum 0.9, halved every 25 epochs, weight
    # decay 5e-4, batch 100), 65,000 / 12,500 / 12,500 cells (real split, or ~90,000 simulated),
    # 20,000 bootstrap resamples, transfer sizes up to 500 per class.
    "full": Preset(
        scale="full", model=DeepYeastConfig.paper(), epochs=100, batch_size=100, lr=0.1, step_size=25,
        proteins_per_class=None, split=(0.72, 0.14, 0.14), cells_per_class=(5_417, 1_042, 1_042),
        max_cells_per_protein=400,
        noncell_fraction=0.08, transfer_proteins_per_class=None, transfer_cells_per_class=2_500,
        transfer_sizes=TRANSFER_SIZES, transfer_repeats=10, transfer_trees=500, layer_sweep_size=100, n_bootstrap=20_000, rf_trees=500,
        embed_cells=3_000, embed_layers=("conv1_2", "conv2_2", "conv3_2", "conv3_4", "fc1", "fc2"), mi_bins=16,
        dual_proteins=60, dual_cells=60, feature_jobs=8, num_workers=6,
    ),
}


def preset(scale: str, *, epochs: int | None = None) -> Preset:
    """The preset of ``scale`` (``"tiny"``, ``"ci"`` or ``"full"``), optionally with another number of epochs."""
    return select_preset(PRESETS, scale, epochs=epochs)


def limit_cpu_threads(n: int | None) -> None:
    """Use ``n`` CPU threads in this process from now on: torch's and the OpenMP / BLAS pools (t-SNE, PCA).

    ``None`` changes nothing. Meant for the chapter's kernel (``Preset.cpu_threads``), not for
    library code, which leaves thread counts alone.
    """
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n must be a positive integer or None, not {n!r}")
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(n))
    threadpool_limits(int(n))  # called, not entered: the limit stays until the process ends


# =============================================================================================
# data
# =============================================================================================
@dataclass
class YeastData:
    """The chapter's image sets.

    Attributes
    ----------
    main : ArrayStore
        12-class crops; metadata ``protein, label, label_idx, split (train/val/test), is_cell``
        (``is_cell`` is known for simulated crops only; real crops read as True).
    transfer : ArrayStore
        4-class crops; metadata ``protein, label, label_idx, split``.
    dual : ArrayStore or None
        Simulated proteins spread between nucleus and cytoplasm (``nucleus_weight``).
    source : {"sim", "real"}
    """

    main: ArrayStore
    transfer: ArrayStore
    dual: ArrayStore | None
    source: str
    classes: tuple[str, ...] = DEEPYEAST_CLASSES
    transfer_classes: tuple[str, ...] = TRANSFER_CLASSES

    def indices(self, split: str, store: str = "main") -> np.ndarray:
        meta = getattr(self, store).metadata
        return np.flatnonzero(meta["split"].to_numpy() == split)

    def summary(self) -> pd.DataFrame:
        """Crops and proteins per split (and non-cells for simulated data)."""
        rows = []
        for name in ("main", "transfer"):
            meta = getattr(self, name).metadata
            for split, part in meta.groupby("split", sort=False):
                rows.append({"set": name, "split": split, "crops": len(part), "proteins": part["protein"].nunique(),
                             "classes": part["label"].nunique(),
                             "non-cells": int((~part["is_cell"].astype(bool)).sum()) if "is_cell" in part else 0})
        if self.dual is not None:
            meta = self.dual.metadata
            rows.append({"set": "dual", "split": "test", "crops": len(meta), "proteins": meta["protein"].nunique(),
                         "classes": 2, "non-cells": 0})
        return pd.DataFrame(rows)


def _data_root() -> Path:
    from atlaskit.book import runs_root

    return runs_root() / CHAPTER / "data"


def protein_key(path: str) -> str:
    """Protein (well) of a DeepYeast image path: ``plate01/007013000-2-626-38.png`` → ``plate01/007013000``.

    The Chong et al. screen images one strain (one GFP-tagged protein) per well; the first
    dash-separated token of the file name is the well. In the published split files no well is
    shared between train, val and test, and every well has one class.
    """
    plate, _, name = str(path).replace("\\", "/").rpartition("/")
    return f"{plate}/{name.split('-')[0]}" if plate else name.split("-")[0]


def _split_proteins(table: pd.DataFrame, fractions, seed: int) -> dict[str, str]:
    """Protein → split, protein-disjoint and stratified by class (at least one test protein per class)."""
    from atlaskit.data.datasets import protein_disjoint_split

    split = protein_disjoint_split(table, group="protein", fractions=fractions, stratify="label", seed=seed,
                                   names=("train", "val", "test"))
    return dict(zip(table["protein"], split))


def _sim_main_batches(p: Preset, seed: int):
    from atlaskit.data import sim

    specs = sim.yeast_specs(None, seed, task="main")
    rng = np.random.default_rng([seed, 4])
    by_class: dict[str, list] = {c: [] for c in DEEPYEAST_CLASSES}
    for s in specs:
        by_class[s.info["klass"]].append(s)
    chosen = {}
    for c in DEEPYEAST_CLASSES:
        group = by_class[c]
        order = rng.permutation(len(group))
        if p.proteins_per_class is not None:
            order = order[: p.proteins_per_class]
        chosen[c] = [group[i] for i in sorted(order)]
    table = pd.DataFrame([(s.name, c) for c in DEEPYEAST_CLASSES for s in chosen[c]], columns=["protein", "label"])
    split_of = _split_proteins(table, p.split, seed)
    label_idx = {c: i for i, c in enumerate(DEEPYEAST_CLASSES)}
    counts = {"train": 0, "val": 0, "test": 0}

    def rows(meta: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "protein": meta["protein"].astype(str), "gene": meta["gene"].fillna("").astype(str),
            "label": meta["klass"].astype(str), "label_idx": meta["klass"].map(label_idx).astype(np.int64),
            "split": meta["protein"].map(split_of).astype(str), "is_cell": True, "kind": "cell",
        })

    for c in DEEPYEAST_CLASSES:
        for split, target in zip(("train", "val", "test"), p.cells_per_class):
            group = [s for s in chosen[c] if split_of[s.name] == split]
            if not group:
                continue
            n = int(min(p.max_cells_per_protein, math.ceil(target / len(group))))
            for batch in sim.iter_yeast_crops(group, n, seed, batch_size=512):
                counts[split] += len(batch)
                yield batch.images, rows(batch.meta)
    # non-cells: each joins a random protein of its split and carries that protein's class
    n_noncell = {s: int(round(p.noncell_fraction * n)) for s, n in counts.items()}
    total = sum(n_noncell.values())
    if total:
        nc = sim.yeast_noncells(total, seed)
        assign = []
        for s, n in n_noncell.items():
            prots = table[table["protein"].map(split_of) == s].reset_index(drop=True)
            pick = rng.integers(0, len(prots), n)
            assign += [(prots["protein"][i], prots["label"][i], s) for i in pick]
        meta = pd.DataFrame({
            "protein": [a[0] for a in assign], "gene": "", "label": [a[1] for a in assign],
            "label_idx": [label_idx[a[1]] for a in assign], "split": [a[2] for a in assign], "is_cell": False,
            "kind": nc.meta["kind"].astype(str).to_numpy(),
        })
        yield nc.images, meta


def _sim_transfer_batches(p: Preset, seed: int):
    from atlaskit.data import sim

    specs = sim.yeast_specs(None, seed, task="transfer")
    rng = np.random.default_rng([seed, 5])
    label_idx = {c: i for i, c in enumerate(TRANSFER_CLASSES)}
    chosen, per_protein = {}, {}
    for c in TRANSFER_CLASSES:
        group = [s for s in specs if s.info["klass"] == c]
        order = rng.permutation(len(group))
        if p.transfer_proteins_per_class is not None:
            order = order[: p.transfer_proteins_per_class]
        chosen[c] = [group[i] for i in sorted(order)]
        per_protein[c] = int(math.ceil(p.transfer_cells_per_class / len(chosen[c])))
    table = pd.DataFrame([(s.name, c) for c in TRANSFER_CLASSES for s in chosen[c]], columns=["protein", "label"])
    # the paper's transfer split is 1,000 / 500 / 1,000 per class: 40 / 20 / 40 %
    split_of = _split_proteins(table, (0.4, 0.2, 0.4), seed + 1)
    for c in TRANSFER_CLASSES:
        for batch in sim.iter_yeast_crops(chosen[c], per_protein[c], seed, task="transfer", batch_size=512):
            m = batch.meta
            yield batch.images, pd.DataFrame({
                "protein": m["protein"].astype(str), "label": m["klass"].astype(str),
                "label_idx": m["klass"].map(label_idx).astype(np.int64), "split": m["protein"].map(split_of).astype(str),
            })


def dual_specs(n: int, seed: int = 0) -> list:
    """Simulated proteins between nucleus and cytoplasm, named after real YeastGFP proteins seen in both.

    Each is a mixture of the simulator's yeast nucleus and cytoplasm patterns with a nucleus
    weight drawn uniformly from [0.1, 0.9] (``info["nucleus_weight"]``).
    """
    from atlaskit.data import catalogs
    from atlaskit.data.sim import Component, ProteinSpec, draw_params, protein_generator

    gfp = catalogs.yeastgfp()
    both = gfp[gfp["localizations"].map(lambda loc: set(loc) == {"nucleus", "cytoplasm"}) & ~gfp["ambiguous"]]
    rng = np.random.default_rng([seed, 6])
    pick = np.sort(rng.permutation(len(both))[:n])
    out = []
    for row in both.iloc[pick].itertuples(index=False):
        g = protein_generator(seed, "yeast", f"dual/{row.orf}")
        w = float(g.uniform(0.1, 0.9))
        comps = (Component("y_nucleus", w, draw_params("y_nucleus", g)),
                 Component("y_cytoplasm", 1 - w, draw_params("y_cytoplasm", g)))
        abundance = float(np.exp(g.uniform(np.log(0.3), np.log(3.0))))
        out.append(ProteinSpec(row.orf, comps, abundance, {"nucleus": 3, "cytoplasm": 3},
                               {"klass": "nucleus", "task": "main", "label_idx": DEEPYEAST_CLASSES.index("nucleus"),
                                "gene": row.gene, "nucleus_weight": w}))
    return out


def _sim_dual_batches(p: Preset, seed: int):
    from atlaskit.data import sim

    specs = dual_specs(p.dual_proteins, seed)
    weight = {s.name: s.info["nucleus_weight"] for s in specs}
    for batch in sim.iter_yeast_crops(specs, p.dual_cells, seed, batch_size=512):
        m = batch.meta
        yield batch.images, pd.DataFrame({
            "protein": m["protein"].astype(str), "gene": m["gene"].fillna("").astype(str),
            "nucleus_weight": m["protein"].map(weight).astype(float), "split": "test",
        })


def real_splits(data_dir: str | Path) -> pd.DataFrame:
    """The split table of a real DeepYeast folder (one row per image; see
    :func:`atlaskit.data.catalogs.deepyeast_splits`).

    When ``data_dir`` holds its own split files (``HOwt_train.txt`` … ``HOwt_transfer_test.txt``
    and the class lists ``HOwt_doc.txt`` / ``HOwt_transfer_doc.txt``), those are used, at any
    size: your own images, or a subset of the published ones. Otherwise the published splits
    (65,000 / 12,500 / 12,500 and 4,000 / 2,000 / 4,000 images) are read from the registry.
    """
    from atlaskit.data import catalogs

    root = Path(data_dir)
    if (root / "HOwt_train.txt").is_file():
        return catalogs.deepyeast_splits(root, check_sizes=False)
    return catalogs.deepyeast_splits()


def data_sources(data: str, data_dir: str | Path | None = None) -> tuple[list[str], list[Path]]:
    """What :func:`load_data` reads, for :func:`atlaskit.book.provenance`.

    Returns
    -------
    (list of str, list of Path)
        The registered files (the YeastGFP catalog for simulated cells; the published split
        lists for a real folder without its own ``HOwt_*.txt``) and the user's folders.
    """
    from atlaskit.data import catalogs

    if data == "sim":
        return ["yeast/yeastgfp-huh2003.csv"], []
    if data_dir is None:
        raise ParameterError("data='real' needs data_dir, the DeepYeast image folder")
    folder = Path(data_dir)
    if (folder / "HOwt_train.txt").is_file():
        return [], [folder]
    return catalogs.deepyeast_split_files(), [folder]


def _real_batches(data_dir: Path, table: pd.DataFrame, splits: Sequence[str], classes: Sequence[str]):
    import tempfile

    from atlaskit.data.readers import iter_deepyeast_list

    for split in splits:
        part = table[table["split"] == split]
        root = data_dir / ("transfer" if split.startswith("transfer") else "main")
        root = root if root.is_dir() else data_dir
        missing = [p for p in part["path"].head(3) if not (root / p).is_file()]
        if missing:
            raise DataError(
                f"{root / missing[0]}: not found. data_dir must hold the DeepYeast images in their public layout "
                "(main/plateNN/*.png and transfer/plateNN/*.png, or plateNN/*.png directly)"
            )
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            for path, idx in zip(part["path"], part["label_idx"]):
                fh.write(f"{path} {idx}\n")
            list_file = fh.name
        try:
            for images, meta in iter_deepyeast_list(list_file, root, classes=list(classes), check_empty=False):
                out = pd.DataFrame({
                    "protein": meta["path"].map(protein_key), "path": meta["path"].astype(str),
                    "label": meta["label"].astype(str), "label_idx": meta["label_idx"].astype(np.int64),
                    "split": split.replace("transfer_", ""),
                })
                if not split.startswith("transfer"):
                    out["is_cell"] = True
                yield images, out
        finally:
            Path(list_file).unlink(missing_ok=True)


def _store(name: str, batches, params: dict) -> ArrayStore:
    from atlaskit.data.store import store_path

    path = store_path(_data_root(), name, params)
    return ArrayStore.build(path, batches, shape_per_item=(2, 64, 64), dtype=np.float32, params=params)


def load_data(p: Preset, *, data: str = "sim", data_dir: str | Path | None = None, seed: int = 0) -> YeastData:
    """Build (or reuse) the chapter's image stores.

    Parameters
    ----------
    p : Preset
    data : {"sim", "real"}
        ``"real"`` reads the DeepYeast images listed in the split files (see
        :func:`real_splits`: the folder's own ``HOwt_*.txt`` lists, else the published ones) from
        ``data_dir`` (``main/`` and ``transfer/`` sub-folders of ``plateNN/*.png``, or the plate
        folders directly).
    seed : int
        Simulator seed (and the protein split of simulated data).
    """
    if data == "sim":
        base = {"version": 2, "seed": int(seed), "preset": {k: v for k, v in p.to_dict().items() if k in (
            "proteins_per_class", "cells_per_class", "max_cells_per_protein", "split", "noncell_fraction")}}
        main = _store("sim-main", lambda: _sim_main_batches(p, seed), base)
        tparams = {"version": 1, "seed": int(seed), "proteins": p.transfer_proteins_per_class,
                   "cells": p.transfer_cells_per_class}
        transfer = _store("sim-transfer", lambda: _sim_transfer_batches(p, seed), tparams)
        dual = _store("sim-dual", lambda: _sim_dual_batches(p, seed),
                      {"version": 1, "seed": int(seed), "n": p.dual_proteins, "cells": p.dual_cells})
        return YeastData(main, transfer, dual, "sim")
    if data != "real":
        raise ParameterError(f"data must be 'sim' or 'real', not {data!r}")
    if data_dir is None:
        raise ParameterError("data='real' needs data_dir, the folder with the DeepYeast images")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data_dir {str(root)!r} is not a folder")
    table = real_splits(root)
    # The store is rebuilt when the folder or its split lists change.
    listing = hashlib.sha256(pd.util.hash_pandas_object(table[["split", "path", "label_idx"]], index=False)
                             .to_numpy().tobytes()).hexdigest()[:16]
    key = {"version": 2, "root": str(root.resolve()), "splits": listing}
    main = _store("real-main", lambda: _real_batches(root, table, ("train", "val", "test"), DEEPYEAST_CLASSES), key)
    transfer = _store("real-transfer", lambda: _real_batches(
        root, table, ("transfer_train", "transfer_val", "transfer_test"), TRANSFER_CLASSES), key)
    return YeastData(main, transfer, None, "real")


def training_mean(store: ArrayStore, indices: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Per-pixel mean image (2, 64, 64) of the training crops (float64 accumulation)."""
    idx = np.sort(np.asarray(indices))
    if idx.size == 0:
        raise DataError("no training crops to average")
    total = np.zeros(store.shape_per_item, np.float64)
    for a in range(0, idx.size, chunk):
        total += np.asarray(store.images[idx[a:a + chunk]], np.float64).sum(0)
    return (total / idx.size).astype(np.float32)


# =============================================================================================
# training and prediction
# =============================================================================================
@dataclass
class TrainedNetwork:
    model: DeepYeastNet
    trainer: Any
    history: Any
    run_dir: Path
    best_epoch: int


def train_network(data: YeastData, p: Preset, *, seed: int = 0, device: str = "auto") -> TrainedNetwork:
    """Train DeepYeast on the training split (validation picks the best epoch), or reuse the run.

    The run folder is :func:`atlaskit.book.run_dir` of the preset, the data store and the seed,
    so re-executing the chapter returns the finished run instead of training again.
    """
    from atlaskit import book
    from atlaskit.data.datasets import CropDataset
    from atlaskit.train import Trainer, seed_everything

    train_idx, val_idx = data.indices("train"), data.indices("val")
    recipe = {k: v for k, v in p.to_dict().items() if k in ("model", "epochs", "batch_size", "lr", "step_size")}
    folder = book.run_dir(CHAPTER, "deepyeast", recipe=recipe, data=data.main.key, seed=int(seed))
    seed_everything(seed)
    model = DeepYeastNet(p.model)
    model.set_input_mean(training_mean(data.main, train_idx))
    cfg = paper_train_config(
        epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, step_size=p.step_size, seed=seed, device=device,
        checkpoint_dir=folder, channels_last=True, num_workers=p.num_workers,
    )
    trainer = Trainer(
        model, cfg, step_fn=deepyeast_step,
        train_data=CropDataset(data.main, train_idx, label_column="label_idx"),
        val_data=CropDataset(data.main, val_idx, label_column="label_idx"),
        model_config={"model": p.model.to_dict(), "data": data.main.key, "source": data.source},
    )
    history = trainer.fit()
    best = trainer.load_best()
    model.eval()
    return TrainedNetwork(model, trainer, history, folder, best)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _iter_arrays(images, indices=None, batch_size: int = 256):
    """Batches (B, 2, 64, 64) float32 from an array or an ArrayStore (optionally rows ``indices``)."""
    src = images.images if isinstance(images, ArrayStore) else images
    n = len(src) if indices is None else len(indices)
    for a in range(0, n, batch_size):
        if indices is None:
            chunk = np.array(src[a:a + batch_size], dtype=np.float32)  # a writable copy, not a view of the map
        else:
            idx = np.asarray(indices[a:a + batch_size])
            order = np.argsort(idx)
            chunk = np.empty((len(idx),) + tuple(src.shape[1:]), np.float32)
            chunk[order] = np.asarray(src[idx[order]], np.float32)  # sorted reads from the memory map
        yield torch.from_numpy(chunk)


@torch.no_grad()
def predict(model: DeepYeastNet, images, indices=None, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) for an array (N, 2, 64, 64) or store rows ``indices`` (eval mode)."""
    model.eval()
    dev = _device_of(model)
    out = [torch.softmax(model(x.to(dev)).float(), 1).cpu() for x in _iter_arrays(images, indices, batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.n_classes), np.float32)


# =============================================================================================
# per-cell evaluation
# =============================================================================================
def cell_metrics(y_true, y_pred, classes: Sequence[str], *, n_bootstrap: int, seed: int = 0) -> dict:
    """Accuracy, Cohen's kappa, per-class precision / recall with stratified bootstrap intervals, confusion.

    Returns
    -------
    dict
        ``accuracy``, ``kappa``, ``table`` (:func:`atlaskit.metrics.agreement.stratified_bootstrap`),
        ``confusion`` (DataFrame, rows true, columns predicted), ``n``.
    """
    k = len(classes)
    cm = agreement.confusion(y_true, y_pred, k)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.trace(cm) / cm.sum()),
        "kappa": agreement.cohen_kappa(y_true, y_pred, k),
        "table": agreement.stratified_bootstrap(y_true, y_pred, k, n_resamples=n_bootstrap, seed=seed, class_names=classes),
        "confusion": pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")),
    }


# =============================================================================================
# hand-crafted features, random forests
# =============================================================================================
FEATURE_VERSION = 1


def hand_features(store: ArrayStore, indices=None, *, n_jobs: int = 1) -> pd.DataFrame:
    """Hand-crafted features (:func:`atlaskit.analysis.yeastfeatures.yeast_features`) of store rows, cached on disk.

    The cache file sits next to the stores, keyed by the store's content key and the rows, so a
    re-execution reads it instead of measuring again.
    """
    from atlaskit.analysis.yeastfeatures import yeast_features

    idx = np.arange(len(store)) if indices is None else np.asarray(indices, dtype=np.int64)
    key = hashlib.sha256(f"{store.key}|{FEATURE_VERSION}|".encode() + idx.tobytes()).hexdigest()[:20]
    path = _data_root() / "features" / f"features-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return pd.DataFrame(z["values"], columns=[str(c) for c in z["columns"]])
    order = np.argsort(idx)
    images = np.empty((idx.size, 2, 64, 64), np.float32)
    images[order] = np.asarray(store.images[idx[order]], np.float32)
    table = yeast_features(images, n_jobs=n_jobs)
    path.parent.mkdir(parents=True, exist_ok=True)
    from atlaskit._atomic import atomic_write

    with atomic_write(path) as fh:  # unique temporary name: concurrent runs never collide
        np.savez(fh, values=table.to_numpy(), columns=np.asarray(table.columns, dtype=str))
    return table


def _forest(trees: int, seed: int, **kw):
    from sklearn.ensemble import RandomForestClassifier

    # n_jobs=-1: every core; the forest does not depend on it (each tree has its own seed)
    return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=kw.pop("n_jobs", -1), **kw)


def random_forest_baseline(train_x, train_y, test_x, *, trees: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Random forest on features (the paper's CellProfiler baseline): test predictions and the forest."""
    rf = _forest(trees, seed).fit(np.asarray(train_x), np.asarray(train_y))
    return rf.predict(np.asarray(test_x)), rf


def stratified_subset(y, fraction: float, *, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a class-stratified random subset holding ``fraction`` of each class.

    Each class keeps ``max(1, round(fraction · n_c))`` of its ``n_c`` rows, chosen from one
    random order per class, so smaller fractions are subsets of larger ones (for one ``seed``),
    and ``fraction=1`` returns every row in the original order.

    Parameters
    ----------
    y : array (N,)
        Class labels.
    fraction : float in (0, 1]
    seed : int

    Returns
    -------
    ndarray of int64, sorted
    """
    y = np.asarray(y)
    if not (isinstance(fraction, (int, float, np.floating)) and 0 < fraction <= 1):
        raise ParameterError(f"fraction must be in (0, 1], not {fraction!r}")
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        order = rng.permutation(rows.size)
        keep.append(rows[order[: max(1, int(round(fraction * rows.size)))]])
    return np.sort(np.concatenate(keep)).astype(np.int64)


def forest_learning_curve(train_x, train_y, test_x, test_y, *, fractions: Sequence[float] = (0.25, 0.5, 1.0),
                          trees: int, seed: int = 0) -> pd.DataFrame:
    """Test accuracy of :func:`random_forest_baseline` refitted on class-stratified fractions of the training rows.

    The subsets come from :func:`stratified_subset` (nested; ``fraction=1`` is the full training
    set in its order, so with the same ``trees`` and ``seed`` it reproduces the baseline's fit).

    Returns
    -------
    pandas.DataFrame
        ``fraction``, ``n_train``, ``accuracy``.
    """
    x_tr, y_tr = np.asarray(train_x), np.asarray(train_y)
    x_te, y_te = np.asarray(test_x), np.asarray(test_y)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataError("features and labels differ in length")
    rows = []
    for f in fractions:
        pick = stratified_subset(y_tr, f, seed=seed)
        pred, _ = random_forest_baseline(x_tr[pick], y_tr[pick], x_te, trees=trees, seed=seed)
        rows.append({"fraction": float(f), "n_train": int(pick.size), "accuracy": float(np.mean(pred == y_te))})
    return pd.DataFrame(rows)


def quality_filter(train_x, train_is_cell, test_x, *, trees: int, seed: int = 0, threshold: float = 0.5) -> dict:
    """Random forest separating cells from non-cells (empty or badly cropped patches).

    Returns
    -------
    dict
        ``keep`` (bool per test crop: P(cell) ≥ threshold), ``p_cell`` and the forest.
    """
    y = np.asarray(train_is_cell).astype(bool)
    if y.all() or not y.any():
        raise DataError("the cell-quality filter needs both cells and non-cells to train on")
    rf = _forest(trees, seed, class_weight="balanced").fit(np.asarray(train_x), y.astype(int))
    p_cell = rf.predict_proba(np.asarray(test_x))[:, list(rf.classes_).index(1)]
    return {"keep": p_cell >= threshold, "p_cell": p_cell, "forest": rf}


def quality_training_set(data: YeastData, train_features: pd.DataFrame, *, seed: int = 0, n_jobs: int = 1
                         ) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Features and cell / non-cell labels to train the cell-quality filter on.

    Simulated data: the training split itself (its non-cells are known). Real data: DeepYeast's
    cell / non-cell annotations are not public, so the real training crops count as cells and
    simulated non-cells (as many as 8 % of them) stand in for the bad crops — a weaker filter,
    said so by the returned description.
    """
    from atlaskit.analysis.yeastfeatures import yeast_features
    from atlaskit.data import sim

    train = data.indices("train")
    if data.source == "sim":
        is_cell = data.main.metadata["is_cell"].to_numpy()[train].astype(bool)
        return train_features, is_cell, "simulated training crops with known cells and non-cells"
    n = max(50, int(0.08 * len(train)))
    nc = sim.yeast_noncells(n, seed)
    nc_features = yeast_features(nc.images, n_jobs=n_jobs)[train_features.columns]
    x = pd.concat([train_features, nc_features], ignore_index=True)
    y = np.r_[np.ones(len(train_features), bool), np.zeros(n, bool)]
    return x, y, (f"real training crops as cells and {n} simulated non-cells (DeepYeast's non-cell "
                  "annotations are not public)")


# =============================================================================================
# protein level
# =============================================================================================
def protein_level(proteins, probs: np.ndarray, y_true, classes: Sequence[str], *, alpha=1.0) -> pd.DataFrame:
    """Dirichlet–multinomial MAP call per protein from its cells' predicted classes (ties: summed probabilities)."""
    pred = np.asarray(probs).argmax(1)
    calls = agreement.protein_calls(proteins, pred, len(classes), y_true=y_true, alpha=alpha, probabilities=probs)
    calls["call_name"] = [classes[i] for i in calls["call"]]
    calls["true_name"] = [classes[i] for i in calls["true"]]
    return calls


def protein_accuracy_vs_cells(proteins, probs: np.ndarray, y_true, *, ks: Sequence[int] = (1, 2, 3, 5, 10, 20, 50),
                              n_draws: int = 20, alpha=1.0, seed: int = 0) -> pd.DataFrame:
    """Protein-level accuracy when each protein is called from ``k`` of its cells drawn at random.

    Only proteins with at least ``k`` cells count at ``k``; every protein is drawn ``n_draws``
    times. Returns ``k``, ``n_proteins``, ``accuracy`` (mean over draws), ``low``/``high``
    (2.5 / 97.5 % of the draws' accuracies).
    """
    prot = np.asarray(proteins)
    probs = np.asarray(probs)
    y = np.asarray(y_true)
    names, inverse = np.unique(prot, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        eligible = [m for m in members if m.size >= k]
        if not eligible:
            continue
        accs = []
        for _ in range(n_draws):
            correct = 0
            for m in eligible:
                pick = rng.choice(m, size=k, replace=False)
                pred = probs[pick].argmax(1)
                counts = np.bincount(pred, minlength=probs.shape[1]).astype(float)
                theta = agreement.dirichlet_multinomial_map(counts, alpha)[0] + 1e-9 * probs[pick].sum(0) / k
                correct += int(theta.argmax() == y[m[0]])
            accs.append(correct / len(eligible))
        lo, hi = np.percentile(accs, [2.5, 97.5])
        rows.append({"k": int(k), "n_proteins": len(eligible), "accuracy": float(np.mean(accs)), "low": float(lo),
                     "high": float(hi)})
    return pd.DataFrame(rows)


def prior_sweep(proteins, probs: np.ndarray, y_true, classes: Sequence[str], alphas: Sequence[float]) -> pd.DataFrame:
    """Per-protein calls of :func:`protein_level` under several symmetric Dirichlet priors.

    With one α for every class the MAP proportions ``(n_k + α − 1) / (N + Kα − K)`` share their
    denominator, so α cannot reorder the classes: the calls stay those of the first α, and only
    the MAP proportion of the called class shrinks towards ``1 / K`` as α grows.

    Returns
    -------
    pandas.DataFrame
        ``alpha``, ``accuracy``, ``mean_map`` (mean MAP proportion of the called class over the
        proteins) and ``changed`` (proteins whose call differs from the call under ``alphas[0]``).
    """
    rows, first = [], None
    for a in alphas:
        calls = protein_level(proteins, probs, y_true, classes, alpha=a)
        first = calls["call"].to_numpy() if first is None else first
        rows.append({"alpha": float(a), "accuracy": float(calls["correct"].mean()),
                     "mean_map": float(calls["map_call"].mean()),
                     "changed": int(np.sum(calls["call"].to_numpy() != first))})
    return pd.DataFrame(rows)


def vote_calls(proteins, probs: np.ndarray) -> pd.DataFrame:
    """Two plain ways to call a protein from its cells: a majority vote and averaged probabilities.

    Parameters
    ----------
    proteins : array (N,)
        Protein of every cell.
    probs : array (N, K)
        Per-cell class probabilities; a cell's vote is its most probable class.

    Returns
    -------
    pandas.DataFrame
        One row per protein (sorted by name): ``protein``, ``n_cells``, ``majority`` (the class
        with the most votes, the lowest index among tied ones), ``tied`` (whether several classes
        share the most votes) and ``soft`` (the class of the largest mean probability).
    """
    prot = np.asarray(proteins)
    pr = np.asarray(probs, np.float64)
    if pr.ndim != 2 or pr.shape[0] != prot.size:
        raise DataError(f"probs must be shaped (N, K) with N = len(proteins) = {prot.size}, got {pr.shape}")
    rows = []
    for name in np.unique(prot):
        part = pr[prot == name]
        votes = np.bincount(part.argmax(1), minlength=pr.shape[1])
        rows.append({"protein": name, "n_cells": int(part.shape[0]), "majority": int(votes.argmax()),
                     "tied": bool((votes == votes.max()).sum() > 1), "soft": int(part.mean(0).argmax())})
    return pd.DataFrame(rows)


def spread_posteriors(proteins, probs: np.ndarray, classes: Sequence[str], *, pair=("nucleus", "cytoplasm"),
                      alpha=1.0, ci: float = 0.95, min_fraction: float = 0.0) -> pd.DataFrame:
    """Posterior proportions of two classes for each protein (Dirichlet–multinomial, Beta marginals).

    Parameters
    ----------
    proteins, probs : per-cell protein and class probabilities
    pair : two class names
    min_fraction : keep proteins whose cells are called ≥ this fraction in *each* of the two classes

    Returns
    -------
    pandas.DataFrame
        ``protein``, ``n_cells``, and for each class of the pair ``<class>_count``,
        ``<class>_mean``, ``<class>_low``, ``<class>_high``.
    """
    k = [list(classes).index(c) for c in pair]
    pred = np.asarray(probs).argmax(1)
    prot = np.asarray(proteins)
    rows = []
    for name in np.unique(prot):
        sel = prot == name
        counts = np.bincount(pred[sel], minlength=len(classes))
        frac = counts / counts.sum()
        if min(frac[k[0]], frac[k[1]]) < min_fraction:
            continue
        post = agreement.dirichlet_posterior(counts, alpha, ci=ci, class_names=classes)
        row = {"protein": name, "n_cells": int(counts.sum())}
        for c in pair:
            row[f"{c}_count"] = int(post.loc[c, "count"])
            row[f"{c}_mean"] = float(post.loc[c, "posterior_mean"])
            row[f"{c}_low"] = float(post.loc[c, "low"])
            row[f"{c}_high"] = float(post.loc[c, "high"])
        rows.append(row)
    return pd.DataFrame(rows)


# =============================================================================================
# network features, transfer learning
# =============================================================================================
@torch.no_grad()
def layer_features(model: DeepYeastNet, images, indices=None, layers: Sequence[str] = ("fc1",), *,
                   pool: str = "avgmax", batch_size: int = 256) -> dict[str, np.ndarray]:
    """Outputs of named layers as (N, D) feature matrices.

    Convolutional and pooling outputs (B, C, H, W) are summarised per channel: ``pool="avg"``
    (global average, C features), ``"avgmax"`` (average and maximum, 2C) — a spatially
    invariant read-out that keeps the matrices small for random forests; fully connected
    outputs are returned as they are.
    """
    if pool not in ("avg", "avgmax"):
        raise ParameterError(f"pool must be 'avg' or 'avgmax', not {pool!r}")
    model.eval()
    dev = _device_of(model)
    parts: dict[str, list] = {name: [] for name in layers}
    for x in _iter_arrays(images, indices, batch_size):
        feats = model.features(x.to(dev), list(layers))
        for name, t in feats.items():
            t = t.float()
            if t.dim() == 4:
                t = torch.cat([t.mean((2, 3)), t.amax((2, 3))], 1) if pool == "avgmax" else t.mean((2, 3))
            parts[name].append(t.cpu())
    return {name: torch.cat(v).numpy() for name, v in parts.items()}


def transfer_curves(train: Mapping[str, np.ndarray], y_train, test: Mapping[str, np.ndarray], y_test, *,
                    sizes: Sequence[int], repeats: int, trees: int, n_bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """Random forests on each feature set, trained on ``n`` images per class, scored on the test set.

    For every feature set and size, ``repeats`` random class-balanced training subsets are drawn
    (the same subsets for every feature set); sizes above the smallest class are dropped.

    Returns
    -------
    pandas.DataFrame
        ``features``, ``n_per_class``, ``repeat``, ``accuracy``, and ``boot`` (an array of
        stratified-bootstrap accuracies of that repeat's test predictions, for intervals).
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    classes = np.unique(y_train)
    smallest = min(int((y_train == c).sum()) for c in classes)
    rows = []
    rng = np.random.default_rng(seed)
    for n in [s for s in sizes if s <= smallest]:
        for r in range(repeats):
            pick = np.concatenate([rng.choice(np.flatnonzero(y_train == c), n, replace=False) for c in classes])
            for name in train:
                rf = _forest(trees, seed + r).fit(train[name][pick], y_train[pick])
                pred = rf.predict(test[name])
                cm = agreement.confusion(y_test, pred, len(classes))
                boots = agreement.bootstrap_confusions(cm, n_bootstrap, seed + r)
                rows.append({"features": name, "n_per_class": int(n), "repeat": r, "accuracy": float(np.trace(cm) / cm.sum()),
                             "boot": np.trace(boots, axis1=1, axis2=2) / cm.sum()})
    return pd.DataFrame(rows)


def summarize_transfer(curves: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    """Mean accuracy per feature set and size, with an interval over repeats × bootstrap resamples."""
    rows = []
    for (name, n), part in curves.groupby(["features", "n_per_class"], sort=False):
        pooled = np.concatenate(part["boot"].to_list())
        lo, hi = np.percentile(pooled, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
        rows.append({"features": name, "n_per_class": n, "accuracy": float(part["accuracy"].mean()),
                     "low": float(lo), "high": float(hi), "repeats": len(part)})
    return pd.DataFrame(rows)


# =============================================================================================
# interpretation
# =============================================================================================
def embed_layers(features: Mapping[str, np.ndarray], *, seed: int = 0, perplexity: float = 30.0,
                 max_iter: int = 1000) -> dict[str, np.ndarray]:
    """2-D t-SNE of each layer's (N, D) features (standardised, PCA to ≤ 50 dimensions first).

    ``max_iter`` is sklearn's number of optimisation iterations (1000 by default; fewer for
    quick runs). The embedding is reproducible for a given ``seed``.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    out = {}
    for name, x in features.items():
        x = np.asarray(x, np.float64)
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        d = min(50, x.shape[1], x.shape[0] - 1)
        z = PCA(d, random_state=seed).fit_transform(x) if x.shape[1] > d else x
        out[name] = TSNE(2, perplexity=min(perplexity, (len(x) - 1) / 3), init="pca", random_state=seed,
                         learning_rate="auto", max_iter=max_iter).fit_transform(z).astype(np.float32)
    return out


def unit_class_information(acts: np.ndarray, y, *, bins: int = 8) -> np.ndarray:
    """Mutual information (bits) between each unit's activation and the class.

    Activations (N, U) are discretised per unit into ``bins`` equal-count bins (ties share a
    bin); ``I(unit; class) = Σ p(b, c) log2 p(b, c) / (p(b) p(c))``. A constant unit carries 0
    bits; the maximum is the class entropy (log2 12 = 3.58 bits for balanced classes).
    """
    a = np.asarray(acts, np.float64)
    y = np.asarray(y).astype(np.int64)
    if a.ndim != 2 or a.shape[0] != y.size:
        raise DataError(f"acts must be (N, U) with N = len(y) = {y.size}, got {a.shape}")
    n, u = a.shape
    k = int(y.max()) + 1
    ranks = a.argsort(0, kind="stable").argsort(0, kind="stable")
    binned = np.minimum(ranks * bins // n, bins - 1)
    # equal values share the bin of their lowest rank, so a constant unit falls in one bin
    for j in range(u):
        col = a[:, j]
        _, first, inv = np.unique(col, return_index=True, return_inverse=True)
        binned[:, j] = binned[first, j][inv]
    joint = np.zeros((u, bins, k))
    np.add.at(joint, (np.arange(u)[None, :].repeat(n, 0), binned, y[:, None].repeat(u, 1)), 1.0)
    joint /= n
    pb = joint.sum(2, keepdims=True)
    pc = joint.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / (pb * pc)), 0.0)
    return terms.sum((1, 2))


def receptive_fields() -> dict[str, tuple[int, int, float]]:
    """(receptive field size, stride, centre of unit 0) in input pixels for every conv/pool layer.

    A unit at (i, j) of a layer sees the input square of side ``size`` centred at
    ``(centre + i·stride, centre + j·stride)`` (pixel centres at integer + 0.5).
    """
    out = {}
    size, jump, start = 1, 1, 0.5
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            size += 2 * jump
        elif name.startswith("pool"):
            size += jump
            start += 0.5 * jump
            jump *= 2
        else:
            continue
        out[name] = (size, jump, start)
    return out


@torch.no_grad()
def max_activating_patches(model: DeepYeastNet, images: np.ndarray, layer: str, units: Sequence[int], *,
                           top: int = 4, batch_size: int = 256) -> list[list[np.ndarray]]:
    """For each unit, the ``top`` input patches (2, r, r) that activate it most (Fig. 3A).

    Convolutional units are located at their arg-max position and the patch is their receptive
    field (zero outside the crop); fully connected units return the whole crop. Each image
    contributes at most one patch per unit.
    """
    if layer not in LAYER_NAMES:
        raise ParameterError(f"unknown layer {layer!r}; the layers are: {', '.join(LAYER_NAMES)}")
    model.eval()
    dev = _device_of(model)
    best_val, best_pos = [], []
    for x in _iter_arrays(images, None, batch_size):
        t = model.features(x.to(dev), layer)[layer].float().cpu()
        t = t[:, list(units)]
        if t.dim() == 4:
            flat = t.flatten(2)
            v, pos = flat.max(2)
            w = t.shape[-1]
            best_pos.append(torch.stack([pos // w, pos % w], -1))
        else:
            v = t
            best_pos.append(torch.zeros(t.shape + (2,), dtype=torch.long))
        best_val.append(v)
    vals = torch.cat(best_val).numpy()   # (N, U)
    pos = torch.cat(best_pos).numpy()    # (N, U, 2)
    rf = receptive_fields().get(layer)
    s = images.shape[-1]
    out = []
    for j in range(len(units)):
        order = np.argsort(-vals[:, j], kind="stable")[:top]
        patches = []
        for i in order:
            if rf is None:
                patches.append(np.asarray(images[i], np.float32))
                continue
            size, jump, start = rf
            cy, cx = start + pos[i, j, 0] * jump, start + pos[i, j, 1] * jump
            y0, x0 = int(round(cy - size / 2)), int(round(cx - size / 2))
            patch = np.zeros((images.shape[1], size, size), np.float32)
            ys, xs = max(y0, 0), max(x0, 0)
            ye, xe = min(y0 + size, s), min(x0 + size, s)
            patch[:, ys - y0:ye - y0, xs - x0:xe - x0] = images[i, :, ys:ye, xs:xe]
            patches.append(patch)
        out.append(patches)
    return out


# =============================================================================================
# checkpoints and the sim-to-real check
# =============================================================================================
def save_model(model: DeepYeastNet, path: str | Path, *, classes: Sequence[str] = DEEPYEAST_CLASSES,
               info: Mapping[str, Any] | None = None) -> Path:
    """Write a self-contained checkpoint: config, class names, weights and the training mean image.

    Only tensors and plain types, so :func:`load_model` reads it with ``torch.load(weights_only=True)``.
    """
    from atlaskit.train import save_checkpoint

    if len(classes) != model.config.n_classes:
        raise ParameterError(f"{len(classes)} class names for a {model.config.n_classes}-class model")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    obj = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "classes": [str(c) for c in classes],
        "state_dict": state,
        "normalization": "images (N, 2, 64, 64) in [0, 1], GFP then RFP; the network subtracts its "
                         "training mean image (state_dict['input_mean'])",
        "info": json.loads(json.dumps(dict(info or {}), default=str)),
    }
    return save_checkpoint(obj, path)


def load_model(path: str | Path, *, device: str = "cpu") -> tuple[DeepYeastNet, list[str]]:
    """Load a :func:`save_model` checkpoint (``weights_only=True``): the model in eval mode and its classes.

    Raises
    ------
    DataError
        Missing, unreadable or foreign file, or weights that do not fit the stored config.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: checkpoint not found")
    try:
        obj = torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # unpickling refusals, zip errors, truncation
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: not a readable DeepYeast checkpoint ({first})") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{p}: not a DeepYeast checkpoint (expected format {CHECKPOINT_FORMAT!r}; "
                        "write one with atlaskit.studies.deepyeast.save_model)")
    model = DeepYeastNet(DeepYeastConfig.from_dict(obj["config"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"{p}: the weights do not fit the stored configuration: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    return model, list(obj["classes"])


def normalize_label(name: str) -> str:
    """Compare class names ignoring case, spaces and underscores: ``"Cell_Periphery"`` → ``"cellperiphery"``."""
    return re.sub(r"[\s_]+", "", str(name)).lower()


def _map_labels(labels: Sequence[str], classes: Sequence[str], source: str) -> np.ndarray:
    lookup = {normalize_label(c): i for i, c in enumerate(classes)}
    norm = [normalize_label(v) for v in labels]
    unknown = sorted({v for v, n in zip(labels, norm) if n not in lookup}, key=str)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(
            f"{source}: unknown label(s) {shown}; the model's classes are: {', '.join(classes)} "
            "(case, spaces and underscores are ignored)"
        )
    return np.array([lookup[n] for n in norm], dtype=np.int64)


def read_evaluation_images(images: str | Path, classes: Sequence[str], *, list_file: str | Path | None = None
                           ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Real crops for :func:`evaluate_checkpoint`: ``(images (N, 2, 64, 64), labels (N,), metadata)``.

    ``images`` is an ``.npz`` with ``images`` (N, 2, 64, 64) float in [0, 1] (GFP, RFP) and
    ``labels`` (class names), or a DeepYeast-format folder of RGB PNG crops with a split list
    (``list_file``, default the folder's ``HOwt_test.txt``) whose label indices follow the
    folder's ``HOwt_doc.txt`` when present, else the model's class order.
    """
    from atlaskit.data.readers import read_deepyeast_classes, read_deepyeast_list, read_npz_crops

    p = Path(images)
    if p.is_dir():
        lst = Path(list_file) if list_file is not None else p / "HOwt_test.txt"
        if not lst.is_file():
            raise DataError(f"{p}: a DeepYeast image folder needs a split list: pass list_file= (or --list), "
                            f"or put HOwt_test.txt in the folder")
        names = read_deepyeast_classes(p / "HOwt_doc.txt") if (p / "HOwt_doc.txt").is_file() else list(classes)
        x, meta = read_deepyeast_list(lst, p, classes=names, check_empty=False)
        y = _map_labels(meta["label"].tolist(), classes, str(lst))
        return x, y, meta
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder (expected an .npz of crops or a DeepYeast image folder)")
    if p.suffix.lower() != ".npz":
        raise DataError(f"{p}: expected an .npz file (images, labels) or a DeepYeast image folder")
    try:
        with np.load(p, allow_pickle=False) as z:
            shape = z["images"].shape if "images" in z.files else None
    except Exception as exc:
        raise DataError(f"{p}: unreadable .npz file ({exc})") from None
    if shape is not None and (len(shape) != 4 or tuple(shape[1:]) != (2, 64, 64)):
        raise DataError(f"{p}: images must be shaped (N, 2, 64, 64) — channel 0 GFP, channel 1 RFP, float in [0, 1] — "
                        f"got {tuple(shape)}")
    x, meta = read_npz_crops(p, item_shape=(2, 64, 64))
    y = _map_labels(meta["label"].tolist(), classes, str(p))
    return x, y, meta


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate_checkpoint`."""

    source: str
    n: int
    accuracy: float
    kappa: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    predictions: np.ndarray = field(repr=False)

    def to_text(self) -> str:
        """Accuracy, kappa, per-class recall and the confusion matrix as plain text."""
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            per = self.per_class.copy()
            per["recall"] = per["recall"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            per["precision"] = per["precision"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            return (
                f"DeepYeast evaluation on {self.source}: {self.n} crops\n"
                f"accuracy {self.accuracy:.4f}   Cohen's kappa {self.kappa:.4f}\n\n"
                f"per-class recall and precision:\n{per.to_string()}\n\n"
                f"confusion matrix (rows: true class, columns: predicted):\n{self.confusion.to_string()}\n"
            )


def evaluate_checkpoint(checkpoint: str | Path, images: str | Path, *, list_file: str | Path | None = None,
                        batch_size: int = 256, device: str = "cpu") -> EvaluationReport:
    """Apply a saved DeepYeast model to real (or any) crops and measure it.

    The model normalises the images itself (its checkpoint holds the training mean image), so the
    crops go in as they are: float in [0, 1], channel 0 GFP, channel 1 RFP.

    Parameters
    ----------
    checkpoint : path
        Written by :func:`save_model` (the chapter prints its path).
    images : path
        ``.npz`` with ``images`` (N, 2, 64, 64) and ``labels`` (class names; case, spaces and
        underscores ignored), or a DeepYeast-format image folder (see :func:`read_evaluation_images`).
    list_file : path, optional
        Split list for an image folder.

    Raises
    ------
    DataError
        Unreadable checkpoint or images, wrong shapes, labels that are not the model's classes
        (the message names them and lists the valid ones).
    """
    model, classes = load_model(checkpoint, device=device)
    x, y, _ = read_evaluation_images(images, classes, list_file=list_file)
    probs = predict(model, x, batch_size=batch_size)
    pred = probs.argmax(1)
    k = len(classes)
    cm = agreement.confusion(y, pred, k)
    precision, recall = agreement.precision_recall(cm)
    per = pd.DataFrame({"n": cm.sum(1), "recall": recall, "precision": precision}, index=pd.Index(classes, name="class"))
    return EvaluationReport(
        source=str(images), n=int(len(y)), accuracy=float(np.trace(cm) / cm.sum()),
        kappa=agreement.cohen_kappa(y, pred, k), per_class=per,
        confusion=pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")),
        predictions=pred,
    )


# =============================================================================================
# the comparison table
# =============================================================================================
def comparison_table(ours: Mapping[str, float], *, scale: str, source: str) -> pd.DataFrame:
    """The paper's headline numbers beside ours (keys as in :data:`PAPER`)."""
    labels = {
        "cell_accuracy": "per-cell accuracy (test)",
        "cell_accuracy_filtered": "per-cell accuracy after the cell-quality filter",
        "protein_accuracy": "per-protein accuracy (Dirichlet–multinomial MAP)",
        "protein_accuracy_10": "per-protein accuracy, proteins with ≥ 10 cells",
        "rf_accuracy": "random forest on hand-crafted features",
    }
    rows = [{"measure": labels[k], "paper": PAPER[k], "ours": float(ours[k]) if k in ours else float("nan")}
            for k in PAPER]
    table = pd.DataFrame(rows)
    table["difference"] = table["ours"] - table["paper"]
    table.attrs.update(scale=scale, source=source)
    return table

