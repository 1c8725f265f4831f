"""Data of the cytoself study: the protein choice and the image store (protein, nucleus distance,
raw nucleus; 8:1:1 split within every protein)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.cytoself.presets import FULL_SIM_CROPS, PRESETS, SCALES, Preset, _variant

__all__ = ["CHANNELS", "SEGMENT_KWARGS", "select_proteins", "CytoselfData", "build_data"]

#: Where a chapter's images come from: the simulator, or a folder of real images.
DATA_SOURCES = ("sim", "real")

#: Store channels: 0 protein in [0, 1]; 1 nucleus signed distance in [-1, 1]; 2 raw nucleus in [0, 1].
CHANNELS = ("protein", "nucleus_distance", "nucleus_raw")

#: :func:`atlaskit.data.segment.segment_nuclei` settings for 100 x 100 OpenCell crops. Nuclei
#: here are ~17 px in radius (the defaults were tuned at ~12 px), so ``min_area`` and
#: ``min_distance`` are scaled up; the LoG valley cut is off: on simulated crops it carves the
#: DNA texture and lowers the mask IoU (0.92 vs 0.97 on 80 crops), and only the binary mask
#: matters for the distance transform.
SEGMENT_KWARGS: dict[str, Any] = {"log_sigma": None, "min_area": 48, "min_distance": 7}


def select_proteins(
    n_proteins: int | None,
    *,
    complex_members: int | None = 2,
    seed: int = 0,
    available: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Real OpenCell targets for a run, stratified over the localization families.

    ``complex_members`` members of each GO complex (:func:`atlaskit.data.catalogs.go_complexes`:
    proteasome, nuclear pore, cytosolic ribosome, spliceosome) are taken first, at random; the
    rest is filled family by family, always from the family with the fewest proteins so far
    (ties in :data:`~atlaskit.data.catalogs.FAMILIES` order), single-localized proteins first
    (their family is unambiguous), at random within a family. Deterministic for a seed.

    Parameters
    ----------
    n_proteins
        Number of proteins; None = every protein (then ``complex_members`` is ignored).
    complex_members
        Members per complex to include (None = all members).
    seed
        Seed of the random choices.
    available
        Restrict the choice to these genes (e.g. the proteins of a real image folder).

    Returns
    -------
    DataFrame
        Sorted by gene: ``gene``, ``family``, ``complex`` (None outside the four complexes),
        ``single_localized``.
    """
    from atlaskit.data import catalogs

    table = catalogs.opencell_proteins()
    table = table[table["family"].notna()]
    complexes = catalogs.go_complexes()
    complex_of = dict(zip(complexes["gene"], complexes["complex"]))
    if available is not None:
        table = table[table["gene"].isin(list(available))]
    table = table.assign(complex=table["gene"].map(complex_of))
    table["complex"] = table["complex"].astype(object).where(table["complex"].notna(), None)
    columns = ["gene", "family", "complex", "single_localized"]
    if n_proteins is None:
        return table[columns].sort_values("gene").reset_index(drop=True)
    if isinstance(n_proteins, bool) or not isinstance(n_proteins, (int, np.integer)) or n_proteins < 2:
        raise ParameterError(f"n_proteins must be an integer >= 2 or None, not {n_proteins!r}")
    if n_proteins > len(table):
        raise ParameterError(f"n_proteins={n_proteins} but only {len(table)} proteins are available")
    if complex_members is not None and (isinstance(complex_members, bool) or int(complex_members) < 0):
        raise ParameterError(f"complex_members must be >= 0 or None, not {complex_members!r}")
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for name in dict.fromkeys(complexes["complex"]):
        members = sorted(table.loc[table["complex"] == name, "gene"])
        k = len(members) if complex_members is None else min(int(complex_members), len(members))
        chosen += [members[i] for i in sorted(rng.permutation(len(members))[:k])]
    chosen = chosen[:n_proteins]
    queues: dict[str, list[str]] = {}
    for family in catalogs.FAMILIES:
        rows = table[(table["family"] == family) & ~table["gene"].isin(chosen)].sort_values("gene")
        order = rng.permutation(len(rows))
        rows = rows.iloc[order]
        # single-localized first, random order kept within each group (stable sort)
        rows = rows.sort_values("single_localized", ascending=False, kind="stable")
        queues[family] = list(rows["gene"])
    family_of = dict(zip(table["gene"], table["family"]))
    counts = {f: sum(family_of[g] == f for g in chosen) for f in catalogs.FAMILIES}
    while len(chosen) < n_proteins:
        open_families = [f for f in catalogs.FAMILIES if queues[f]]
        family = min(open_families, key=lambda f: (counts[f], catalogs.FAMILIES.index(f)))
        chosen.append(queues[family].pop(0))
        counts[family] += 1
    out = table[table["gene"].isin(chosen)][columns]
    return out.sort_values("gene").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

@dataclass
class CytoselfData:
    """A cytoself data set: the array store, its metadata with split and labels, the proteins.

    Attributes
    ----------
    store : ArrayStore
        Items (3, 100, 100) float16: protein [0, 1], nucleus signed distance [-1, 1], raw nucleus
        [0, 1] (see :data:`CHANNELS`); variants pick their channels from it.
    meta : DataFrame
        One row per item: ``protein``, ``fov``, ``family``, ``complex``, ``split``
        (train/val/test), ``label`` (protein index into ``classes``) and source columns.
    proteins : DataFrame
        One row per protein: ``gene``, ``family``, ``complex``, ``single_localized`` (from the
        OpenCell catalog; missing for real proteins outside it).
    classes : list of str
        Protein names in label order (the pretext task's classes).
    source : {"sim", "real"}
    params : dict
        The parameters the store was built from (its content key is ``store.key``).
    """

    store: Any
    meta: pd.DataFrame
    proteins: pd.DataFrame
    classes: list
    source: str
    params: dict
    _variance: dict = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """Content key of the store (part of every training run's fingerprint)."""
        return self.store.key

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def indices(self, split: str) -> np.ndarray:
        """Store rows of a split (``"train"``, ``"val"``, ``"test"``, or ``"all"``), in store order."""
        if split == "all":
            return np.arange(len(self.meta))
        if split not in ("train", "val", "test"):
            raise ParameterError(f"split must be 'train', 'val', 'test' or 'all', not {split!r}")
        return np.flatnonzero(self.meta["split"].to_numpy() == split)

    def dataset(self, split: str, variant: str = "full", *, augment: bool | None = None):
        """A :class:`~atlaskit.data.datasets.CropDataset` of a split with a variant's channels.

        ``augment`` (default: True for ``"train"``) applies random 90° rotations and flips.
        Labels are protein indices (``classes``).
        """
        from atlaskit.data.datasets import CropDataset, RandomRot90Flip

        v = _variant(variant)
        augment = (split == "train") if augment is None else bool(augment)
        return CropDataset(
            self.store, self.indices(split), channels=list(v.channels),
            transform=RandomRot90Flip() if augment else None,
            label_column="protein", classes=self.classes,
        )

    def data_variance(self, variant: str = "full") -> float:
        """``np.var`` of the training images with a variant's channels (all pixels, all
        channels), as the public code computes it; streamed in chunks, float64 accumulators."""
        v = _variant(variant)
        if v.channels not in self._variance:
            rows = self.indices("train")
            total = total_sq = 0.0
            count = 0
            for lo in range(0, len(rows), 512):
                x = np.asarray(self.store.images[rows[lo:lo + 512]][:, list(v.channels)], dtype=np.float64)
                total += float(x.sum())
                total_sq += float((x * x).sum())
                count += x.size
            mean = total / count
            self._variance[v.channels] = max(total_sq / count - mean * mean, 1e-12)
        return self._variance[v.channels]

    def images(self, rows: Sequence[int], variant: str = "full") -> torch.Tensor:
        """Images of store rows with a variant's channels, (N, C, 100, 100) float32."""
        v = _variant(variant)
        x = np.asarray(self.store.images[np.asarray(rows)], dtype=np.float32)[:, list(v.channels)]
        return torch.from_numpy(np.ascontiguousarray(x))

    def summary(self) -> pd.DataFrame:
        """Images per split, proteins, families (a small table for the chapter)."""
        rows = []
        for split in ("train", "val", "test"):
            m = self.meta[self.meta["split"] == split]
            rows.append({"split": split, "images": len(m), "proteins": m["protein"].nunique(),
                         "families": m["family"].nunique()})
        return pd.DataFrame(rows)


def _sim_batches(genes: Sequence[str], crops: int, seed: int, workers: int | None) -> Iterator:
    """(images (B, 3, 100, 100) float16, metadata) batches of simulated crops."""
    from atlaskit.data import segment, sim

    for batch in sim.iter_opencell_crops(list(genes), crops, seed, batch_size=64, masks=True, workers=workers):
        b = len(batch)
        out = np.empty((b, 3, 100, 100), dtype=np.float32)
        sources, ious, n_nuclei = [], [], []
        for i in range(b):
            nucleus = batch.images[i, 1]
            truth = batch.nucleus_masks[i] != 0
            labels = segment.segment_nuclei(nucleus, **SEGMENT_KWARGS)
            mask = labels != 0
            if mask.any() and not mask.all():
                sources.append("segmented")
            else:  # why: the distance is undefined without a nucleus; fall back to the truth
                mask = truth
                sources.append("simulator")
            union = (mask | truth).sum()
            ious.append(float((mask & truth).sum() / union) if union else 1.0)
            n_nuclei.append(int(labels.max()))
            out[i, 0] = batch.images[i, 0]  # already min-max scaled to [0, 1] by the simulator
            out[i, 1] = segment.signed_distance(mask, normalise="max_abs")
            out[i, 2] = segment.rescale_unit(nucleus)
        meta = pd.DataFrame({
            "protein": batch.meta["protein"].to_numpy(),
            "crop": batch.meta["index"].to_numpy(),
            "fov": batch.meta["field_id"].to_numpy(),
            "nucleus_source": sources,
            "nucleus_iou": np.round(ious, 4),
            "n_nuclei": n_nuclei,
        })
        yield out.astype(np.float16), meta


def _real_batches(folder: Path, genes: Sequence[str], crops: int | None, fov_column: str | None) -> Iterator:
    """(images (B, 3, 100, 100) float16, metadata) batches of a cytoself/OpenCell npy folder."""
    from atlaskit.data.readers import iter_opencell_folder
    from atlaskit.data.segment import rescale_unit

    for images, meta in iter_opencell_folder(folder, proteins=list(genes), channels=("pro", "nuc", "nucdist"),
                                             scale={"nucdist": 0.01}):
        if crops is not None:
            images, meta = images[:crops], meta.iloc[:crops]
        if fov_column is not None and fov_column not in meta.columns:
            raise DataError(f"{folder}: label files have no column {fov_column!r}; they have {list(meta.columns)}")
        out = np.empty((len(images), 3, images.shape[2], images.shape[3]), dtype=np.float32)
        out[:, 0] = images[:, 0]
        out[:, 1] = images[:, 2]  # the public loader's nucdist x 0.01
        for i in range(len(images)):
            out[i, 2] = rescale_unit(images[i, 1])
        name = meta["file_name"].astype(str)
        fov = meta[fov_column].astype(str) if fov_column else meta["crop"].astype(str)
        yield out.astype(np.float16), pd.DataFrame({
            "protein": meta["protein"].astype(str).to_numpy(), "crop": meta["crop"].to_numpy(),
            "fov": (name + "/" + fov).to_numpy(),
        })


def build_data(
    preset: Preset | str,
    data: str = "sim",
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    *,
    root: str | os.PathLike | None = None,
    fov_column: str | None = None,
    workers: int | None = None,
) -> CytoselfData:
    """Build (or reuse) the cytoself data set of a preset and split it 8:1:1 within every protein.

    Simulated data (``data="sim"``): ``preset.crops_per_protein`` OpenCell-like crops of each
    protein of :func:`select_proteins` (at scale ``full``: all 1310, :data:`FULL_SIM_CROPS`
    each); the nucleus channel is the signed distance transform of our segmentation of the
    simulated Hoechst image (see the package notes). Real data (``data="real"``): a folder in the
    public cytoself format (``<name>_pro.npy``, ``_nuc.npy``, ``_nucdist.npy``, ``_label.npy``);
    the distance channel is ``nucdist × 0.01`` as in the public loader.

    The store (:func:`atlaskit.studies._scaffold.study_store`; under ``root``, default the
    chapter's folder of the atlaskit cache's ``stores/``) is keyed by every generating parameter
    and the data layer's source hash, so a second call with the same arguments and code opens it
    instead of rendering again.

    Parameters
    ----------
    preset
        A :class:`Preset` or a scale name.
    data, data_dir
        ``"sim"``, or ``"real"`` with the folder.
    seed
        Seed of the protein choice, the simulator and the split.
    fov_column
        Real data only: label column holding the field of view, so that crops of one image stay
        in one split (default: every crop is its own unit).
    workers
        Simulator threads (default: the simulator's choice).

    Raises
    ------
    ParameterError
        Unknown data source, ``data="real"`` without ``data_dir``, a bad seed.
    DataError
        Unreadable real folder, proteins with fewer than 3 crops (no 8:1:1 split possible).
    """
    from atlaskit.data.datasets import within_group_split
    from atlaskit.studies.cytoself import CHAPTER

    p = PRESETS[preset] if isinstance(preset, str) and preset in PRESETS else preset
    if not isinstance(p, Preset):
        raise ParameterError(f"preset must be a Preset or one of {', '.join(map(repr, SCALES))}, not {preset!r}")
    if data not in DATA_SOURCES:
        raise ParameterError(f"data must be 'sim' or 'real', not {data!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, not {seed!r}")
    seed = int(seed)
    if data == "sim":
        proteins = select_proteins(p.n_proteins, complex_members=p.complex_members, seed=seed)
        crops = p.crops_per_protein if p.crops_per_protein is not None else FULL_SIM_CROPS
        if crops < 3:
            raise ParameterError(f"crops_per_protein must be >= 3 for an 8:1:1 split, not {crops}")
        genes = list(proteins["gene"])
        params = {"source": "sim", "genes": genes, "crops": int(crops), "seed": seed,
                  "segment": SEGMENT_KWARGS}

        def batches():
            return _sim_batches(genes, crops, seed, workers)
        name = "cytoself-sim"
    else:
        if data_dir is None:
            raise ParameterError("data='real' needs data_dir, a folder of cytoself/OpenCell npy files")
        folder = Path(data_dir).expanduser().resolve()
        from atlaskit.data.readers import opencell_proteins as folder_proteins

        names = folder_proteins(folder)
        if not names:
            raise DataError(f"{folder}: no *_label.npy files (not a cytoself/OpenCell folder)")
        if p.n_proteins is not None and p.n_proteins < len(names):
            known = select_proteins(None, available=names)
            if len(known) >= p.n_proteins:  # file names are OpenCell genes: stratified choice
                genes = list(select_proteins(p.n_proteins, complex_members=p.complex_members, seed=seed,
                                             available=names)["gene"])
            else:  # unknown names: the first ones, in sorted order
                genes = names[:p.n_proteins]
        else:
            genes = names
        files = sorted(f for g in genes for f in folder.glob(f"{g}_*.npy"))
        params = {"source": "real", "folder": str(folder), "genes": genes, "crops": p.crops_per_protein,
                  "fov_column": fov_column,
                  "files": [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]}
        crops = p.crops_per_protein

        def batches():
            return _real_batches(folder, genes, crops, fov_column)
        name = "cytoself-real"

    store = study_store(CHAPTER, name, params, batches, code=__name__, root=root, shape_per_item=(3, 100, 100), dtype="float16",
                        attrs={"channels": list(CHANNELS)})
    meta = store.metadata.copy()
    meta["protein"] = meta["protein"].astype(str)
    if "nucleus_source" not in meta.columns:  # real data: the distance came with the files
        meta["nucleus_source"] = "file"
        meta["nucleus_iou"] = np.nan
    counts = meta.groupby("protein").size()
    if (counts < 3).any():
        raise DataError(f"proteins with fewer than 3 crops cannot be split 8:1:1: {list(counts[counts < 3].index[:5])}")
    meta["split"] = within_group_split(meta, group="protein", unit="fov", fractions=(0.8, 0.1, 0.1), seed=seed).to_numpy()
    catalog = select_proteins(None)
    family = dict(zip(catalog["gene"], catalog["family"]))
    complex_of = dict(zip(catalog["gene"], catalog["complex"]))
    meta["family"] = meta["protein"].map(family)
    meta["complex"] = meta["protein"].map(complex_of)
    classes = sorted(meta["protein"].unique())
    meta["label"] = meta["protein"].map({c: i for i, c in enumerate(classes)}).astype(int)
    proteins = pd.DataFrame({"gene": classes})
    proteins["family"] = proteins["gene"].map(family)
    proteins["complex"] = proteins["gene"].map(complex_of)
    proteins["single_localized"] = proteins["gene"].map(dict(zip(catalog["gene"], catalog["single_localized"])))
    return CytoselfData(store=store, meta=meta, proteins=proteins, classes=classes, source=data, params=params)

