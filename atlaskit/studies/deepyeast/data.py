"""The chapter's image sets: simulated yeast crops (12 classes, 4 transfer classes, proteins between
nucleus and cytoplasm) or the real DeepYeast images, each an :class:`~atlaskit.data.store.ArrayStore`
built once through :func:`atlaskit.studies._scaffold.study_store` and reused."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.data.catalogs import DEEPYEAST_CLASSES, TRANSFER_CLASSES
from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.deepyeast import CHAPTER
from atlaskit.studies.deepyeast.presets import Preset

__all__ = ["YeastData", "build_data", "protein_key", "real_splits", "data_sources", "dual_specs", "training_mean"]


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
    """What :func:`build_data` reads, for :func:`atlaskit.chapter.provenance`.

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
    return study_store(CHAPTER, name, params, batches, code=__name__, shape_per_item=(2, 64, 64), dtype=np.float32)


def build_data(p: Preset, *, data: str = "sim", data_dir: str | Path | None = None, seed: int = 0) -> YeastData:
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
        base = {"seed": int(seed), "preset": {k: v for k, v in p.to_dict().items() if k in (
            "proteins_per_class", "cells_per_class", "max_cells_per_protein", "split", "noncell_fraction")}}
        main = _store("sim-main", lambda: _sim_main_batches(p, seed), base)
        tparams = {"seed": int(seed), "proteins": p.transfer_proteins_per_class, "cells": p.transfer_cells_per_class}
        transfer = _store("sim-transfer", lambda: _sim_transfer_batches(p, seed), tparams)
        dual = _store("sim-dual", lambda: _sim_dual_batches(p, seed),
                      {"seed": int(seed), "n": p.dual_proteins, "cells": p.dual_cells})
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
    key = {"root": str(root.resolve()), "splits": listing}
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
