"""The cytoself study (Kobayashi et al. 2022, *Nature Methods* 19:995–1003): what chapter 01 runs.

Pipeline::

    select_proteins ──► build_data ──► CytoselfData (array store: protein, nucleus distance,
                                        raw nucleus; 8:1:1 split within every protein)
                               │
                               ▼
    train_variant(name) for name in VARIANTS ──► VariantRun (model with its best weights, history)
                               │
                               ▼
    embed(model, test set) ──► Embedding (VQ2 global vectors, VQ1 / VQ2 indices)
          │                          │                               │
          ▼                          ▼                               ▼
    ablation_table (UMAP +     feature_spectra / orphan_ranking   zeroing_maps
    clustering score by        (VQ1 index histograms, biclusters,  (what each index cluster
    family, mean ± sd)          consensus per family)               draws)

Presets per scale (:data:`PRESETS`): ``tiny`` (tests and teaching), ``ci`` (the book's default:
a deliberately small model on a few dozen proteins, minutes on two CPU cores) and ``full`` (the
paper's configuration: all 1310 OpenCell proteins, the published model — 57 million parameters in
atlaskit's implementation, most of them in the two classifiers —, Adam, plateau schedule, early
stopping).

Variants (:data:`VARIANTS`, the paper's ablations): ``full``; ``no_nucleus`` (protein channel
only); ``no_distance`` (the raw nucleus image, min-max scaled to [0, 1], instead of its signed
distance transform); ``no_split`` (VQ2 quantizes whole 576-d vectors instead of 9 sub-vectors);
``no_pretext`` (no protein-identification classifiers).

Decisions
---------
* Nucleus channel of simulated crops: the signed distance transform of **our segmentation** of the
  simulated Hoechst channel (:func:`atlaskit.data.segment.segment_nuclei` with
  :data:`SEGMENT_KWARGS`), as the real pipeline segments real images; the simulator's true
  masks are used only to score that segmentation (and as a fallback for a crop in which it finds
  no nucleus, recorded in the ``nucleus_source`` column). Distances are those of every nucleus in
  the crop, divided by the largest absolute value (:func:`atlaskit.data.segment.signed_distance`,
  ``"max_abs"``): inside positive, in [-1, 1].
* Learning rate: the paper's text says Adam with 4e-4, the public code uses 1e-4; ``full`` uses the
  paper's 4e-4. ``ci`` uses 2e-3 because it trains for only about a hundred steps per run
  (stated in the chapter); at 1e-3 the pretext classifier is still near chance after 4 epochs.
* Clustering score: :func:`atlaskit.analysis.atlas.clustering_score` on the 2-D UMAP
  (15 neighbours, min_dist 0.1) of the flattened VQ2 vectors of the **test** images, labelled by
  the protein's localization family (:data:`atlaskit.data.catalogs.FAMILIES`)::

      c_k = median of the points of family k,  s_k = median_j ||x_j − c_k||
      score = sqrt(mean over k and axes of (c_k − mean_k c_k)²) / median_k s_k
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._presets import select_preset, torch_threads

__all__ = [
    "CHAPTER",
    "SCALES",
    "Preset",
    "PRESETS",
    "preset",
    "Variant",
    "VARIANTS",
    "PAPER_TABLE1_ORDER",
    "SEGMENT_KWARGS",
    "select_proteins",
    "CytoselfData",
    "build_data",
    "VariantRun",
    "train_variant",
    "train_variants",
    "Embedding",
    "embed",
    "history_frame",
    "clustering_scores",
    "ablation_table",
    "umap_seed_scores",
    "code_usage",
    "image_code_histograms",
    "Spectra",
    "feature_spectra",
    "orphan_ranking",
    "orphan_accuracy",
    "zeroing_maps",
    "example_proteins",
    "default_orphan",
    "zeroing_figure",
    "atlas_obs",
    "export_atlas",
]

CHAPTER = "01_cytoself"
SCALES = ("tiny", "ci", "full")
DATA_SOURCES = ("sim", "real")

#: Store channels: 0 protein in [0, 1]; 1 nucleus signed distance in [-1, 1]; 2 raw nucleus in [0, 1].
CHANNELS = ("protein", "nucleus_distance", "nucleus_raw")

#: :func:`atlaskit.data.segment.segment_nuclei` settings for 100 x 100 OpenCell crops. Nuclei
#: here are ~17 px in radius (the defaults were tuned at ~12 px), so ``min_area`` and
#: ``min_distance`` are scaled up; the LoG valley cut is off: on simulated crops it carves the
#: DNA texture and lowers the mask IoU (0.92 vs 0.97 on 80 crops), and only the binary mask
#: matters for the distance transform.
SEGMENT_KWARGS: dict[str, Any] = {"log_sigma": None, "min_area": 48, "min_distance": 7}

#: Data layout version: bump when build_data's output changes, so old stores are not reused.
_DATA_VERSION = 1


# ----------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """Everything a scale decides: data size, model, optimisation, repeats.

    Attributes
    ----------
    scale : str
        ``"tiny"``, ``"ci"`` or ``"full"``.
    n_proteins : int or None
        Proteins to use (None: all 1310 OpenCell targets, or every protein of a real folder).
    complex_members : int or None
        GO-complex members forced into the selection, per complex (None: all of them).
    crops_per_protein : int or None
        Simulated crops per protein; with real data the first ``crops_per_protein`` crops of
        each protein (None: all).
    model : {"tiny", "ci", "small", "paper"}
        :class:`~atlaskit.models.cytoself.CytoselfConfig` preset (``"ci"`` = ``tiny`` with
        128-code books, no residual units in the decoders and 128 hidden units in the
        classifiers, see :meth:`model_config`).
    model_overrides : dict
        Further :class:`~atlaskit.models.cytoself.CytoselfConfig` fields applied on top of the
        ``model`` preset (e.g. ``{"classifier_hidden": (128,)}``).
    epochs, batch_size, lr : int, int, float
        Adam optimisation.
    plateau_factor, plateau_patience : float, int
        LR × factor after ``patience`` epochs without validation improvement (paper: 0.1, 4).
    early_stopping : int
        Stop after this many epochs without validation improvement (paper: 12).
    repeats : int
        Independent trainings (seeds) per variant for the ablation table.
    torch_threads : int or None
        Intra-op threads during training (None: leave torch's setting). The ``ci`` model is so
        small that one thread is as fast as two on an idle 2-core machine and far faster on a
        busy one (two threads then wait on each other).
    workers : int
        Training processes run side by side on a CPU by :func:`train_variants` (``ci``: 2, one
        per core; on a GPU runs are always trained one after the other).
    """

    scale: str
    n_proteins: int | None
    complex_members: int | None
    crops_per_protein: int | None
    model: str
    epochs: int
    batch_size: int
    lr: float
    plateau_factor: float = 0.1
    plateau_patience: int = 4
    early_stopping: int = 12
    repeats: int = 1
    torch_threads: int | None = None
    workers: int = 1
    model_overrides: dict = field(default_factory=dict)

    def model_config(self, num_classes: int, **overrides: Any):
        """The model's :class:`~atlaskit.models.cytoself.CytoselfConfig` for ``num_classes`` proteins."""
        from atlaskit.models.cytoself import CytoselfConfig

        overrides = {**self.model_overrides, **overrides}
        if self.model == "paper":
            return CytoselfConfig.paper(num_classes=num_classes, **overrides)
        if self.model == "small":
            return CytoselfConfig.small(num_classes, **overrides)
        if self.model == "ci":
            # why: the decoders' residual units at 50x50 and 100x100 cost ~40 % of a CPU step;
            # 128-code books cost nothing and leave room for a feature spectrum; tiny's 16-unit
            # classifiers (with dropout 0.5) barely learn the protein IDs in a few hundred steps.
            params = {"local_codebook_size": 128, "global_codebook_size": 128, "decoder_residual_units": 0,
                      "classifier_hidden": (128,)}
            params.update(overrides)
            return CytoselfConfig.tiny(num_classes, **params)
        return CytoselfConfig.tiny(num_classes, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", n_proteins=12, complex_members=1, crops_per_protein=20, model="tiny",
                   epochs=1, batch_size=16, lr=1e-3, repeats=1, torch_threads=1, workers=1),
    "ci": Preset("ci", n_proteins=24, complex_members=2, crops_per_protein=40, model="ci",
                 epochs=4, batch_size=32, lr=2e-3, repeats=2, torch_threads=1, workers=2),
    "full": Preset("full", n_proteins=None, complex_members=None, crops_per_protein=None, model="paper",
                   epochs=100, batch_size=32, lr=4e-4, repeats=3, torch_threads=None, workers=1),
}

#: Simulated crops per protein at scale "full" (real data: every crop of the folder).
FULL_SIM_CROPS = 200


def preset(scale: str, *, epochs: int | None = None, repeats: int | None = None) -> Preset:
    """The :class:`Preset` of a scale, optionally with another number of epochs or repeats.

    Raises
    ------
    ParameterError
        Unknown scale, or epochs / repeats that are not positive integers.
    """
    return select_preset(PRESETS, scale, epochs=epochs, repeats=repeats)


@dataclass(frozen=True)
class Variant:
    """One model of the ablation: which store channels it reads and how its config differs."""

    name: str
    channels: tuple[int, ...]
    overrides: dict = field(default_factory=dict)
    description: str = ""


VARIANTS: dict[str, Variant] = {
    "full": Variant("full", (0, 1), {}, "full model (protein + nucleus distance, split VQ2, ID pretext)"),
    "no_nucleus": Variant("no_nucleus", (0,), {"use_nucleus": False}, "without the nucleus channel"),
    "no_distance": Variant("no_distance", (0, 2), {"nucleus_distance": False},
                           "raw nucleus image instead of its distance transform"),
    "no_split": Variant("no_split", (0, 1), {"split_quantization": False}, "without split quantization"),
    "no_pretext": Variant("no_pretext", (0, 1), {"id_pretext": False}, "without the protein-ID pretext task"),
}

#: What the paper's Table 1 says about each ablation, as far as we quote it: only what the book's
#: brief states (removing the ID pretext collapses the score). We could not read the table itself
#: here, so no number is typed in and the other rows are left unquoted.
PAPER_TABLE1_ORDER: dict[str, str] = {
    "full": "reference",
    "no_nucleus": "not quoted",
    "no_distance": "not quoted",
    "no_split": "not quoted",
    "no_pretext": "collapses (lowest)",
}


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ParameterError(f"unknown cytoself variant {name!r}; the variants are: {', '.join(VARIANTS)}")
    return VARIANTS[name]


# ----------------------------------------------------------------------------------------------
# proteins
# ----------------------------------------------------------------------------------------------

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


def _store_root(root) -> Path:
    if root is not None:
        return Path(root)
    from atlaskit.data import registry

    return registry.cache_dir() / "stores"


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
    simulated Hoechst image (see the module notes). Real data (``data="real"``): a folder in the
    public cytoself format (``<name>_pro.npy``, ``_nuc.npy``, ``_nucdist.npy``, ``_label.npy``);
    the distance channel is ``nucdist × 0.01`` as in the public loader.

    The store (under ``root``, default the atlaskit cache's ``stores/`` folder) is keyed by
    every generating parameter, so a second call with the same arguments opens it instead of
    rendering again.

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
    from atlaskit.data.store import ArrayStore, store_path

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
                  "segment": SEGMENT_KWARGS, "version": _DATA_VERSION}

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
                  "fov_column": fov_column, "version": _DATA_VERSION,
                  "files": [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]}
        crops = p.crops_per_protein

        def batches():
            return _real_batches(folder, genes, crops, fov_column)
        name = "cytoself-real"

    path = store_path(_store_root(root), name, params)
    store = ArrayStore.build(path, batches, shape_per_item=(3, 100, 100), dtype="float16", params=params,
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


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

@dataclass
class VariantRun:
    """One trained variant (best-validation weights loaded).

    Attributes
    ----------
    name, repeat, seed : str, int, int
    model : CytoselfModel
        In eval mode, on ``device``.
    config : CytoselfConfig
    history : atlaskit.train.History
    run_dir : Path
    device : str
    seconds : float
        Wall time of this call's ``fit`` (near 0 when the finished run was reused).
    reused : bool
        True when the run was complete on disk before this call.
    """

    name: str
    repeat: int
    seed: int
    model: Any
    config: Any
    history: Any
    run_dir: Path
    device: str
    seconds: float
    reused: bool


def train_variant(
    name: str,
    data: CytoselfData,
    preset: Preset,
    *,
    repeat: int = 0,
    seed: int = 0,
    device: str = "auto",
    chapter: str = CHAPTER,
) -> VariantRun:
    """Train one variant (or reuse its finished run) and load its best-validation weights.

    The run lives in :func:`atlaskit.book.run_dir` keyed by the chapter, the variant, the
    repeat, the preset, the seed and the data store's key; a second call finds the finished
    run and returns its stored history without training. The reconstruction loss is scaled by
    the variance of the training images of this variant's channels. Repeat ``r`` uses seed
    ``seed + 1000 r`` for the initialisation, the batch order, augmentation and dropout.

    Raises
    ------
    ParameterError
        Unknown variant, negative repeat.
    """
    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.train import Trainer, TrainConfig, seed_everything

    v = _variant(name)
    if not isinstance(preset, Preset):
        raise ParameterError(f"preset must be a Preset, not {type(preset).__name__}")
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 0:
        raise ParameterError(f"repeat must be a non-negative integer, not {repeat!r}")
    run_seed = int(seed) + 1000 * int(repeat)
    config = preset.model_config(data.num_classes, **v.overrides)
    config = dataclasses.replace(config, data_variance=data.data_variance(name))
    folder = _run_folder(name, data, preset, int(repeat), int(seed), chapter)
    tc = TrainConfig(
        epochs=preset.epochs, batch_size=preset.batch_size, optimizer="adam", lr=preset.lr,
        schedule="plateau", factor=preset.plateau_factor, patience=preset.plateau_patience,
        early_stopping_patience=preset.early_stopping, monitor="loss", mode="min",
        seed=run_seed, device=device, checkpoint_dir=folder,
    )
    with torch_threads(preset.torch_threads):
        seed_everything(run_seed)
        model = CytoselfModel(config)
        trainer = Trainer(
            model, tc, train_data=data.dataset("train", name), val_data=data.dataset("val", name),
            model_config={"model": config.to_dict(), "data": data.key, "variant": name, "repeat": int(repeat)},
        )
        trained: list[int] = []
        start = time.perf_counter()
        history = trainer.fit(callback=lambda _trainer, epoch, _logs: trained.append(epoch))
        seconds = time.perf_counter() - start
        trainer.load_best()
    model = trainer.model.eval()
    reused = not trained  # no epoch ran in this call: the finished run was found on disk
    return VariantRun(name, int(repeat), run_seed, model, model.config, history, folder, str(trainer.device),
                      seconds, reused)


def _run_folder(name: str, data: CytoselfData, preset: Preset, repeat: int, seed: int, chapter: str) -> Path:
    from atlaskit import book

    return book.run_dir(chapter, f"{name}-r{repeat}", preset=preset.to_dict(), data=data.key, variant=name,
                        repeat=int(repeat), seed=int(seed))


def _finished(folder: Path, preset: Preset) -> bool:
    """Whether a run folder holds a run that trained all its epochs or stopped early."""
    from atlaskit.train import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(folder / "last.pt")
    except CheckpointError:
        return False
    return int(ckpt["epochs_done"]) >= preset.epochs or bool(ckpt["history"].get("stopped_early"))


def _worker_main() -> None:
    """Entry of a training worker process: ``python -c ... <jobs.pkl> <results.pkl>``.

    Reads a pickled list of jobs written by :func:`_train_in_workers` (a file in a private
    temporary folder of the parent, never user input), trains them one after the other and
    pickles ``[(seconds, reused), ...]``.
    """
    import pickle
    import sys

    job_path, result_path = sys.argv[1], sys.argv[2]
    with open(job_path, "rb") as fh:
        jobs = pickle.load(fh)  # noqa: S301 (our own file)
    results = []
    for name, data, preset, repeat, seed, chapter in jobs:
        run = train_variant(name, data, preset, repeat=repeat, seed=seed, device="cpu", chapter=chapter)
        results.append((run.seconds, run.reused))
    with open(result_path, "wb") as fh:
        pickle.dump(results, fh)


def _train_in_workers(jobs: list[tuple], workers: int) -> dict[tuple[str, int], tuple[float, bool]]:
    """Train jobs ``(name, data, preset, repeat, seed, chapter)`` in ``workers`` fresh Python
    processes, each taking every ``workers``-th job (``subprocess``: no re-import of the
    caller's main module, so it works from notebooks and scripts alike; the children's output
    goes to log files, not to the notebook). Raises :class:`AtlaskitError` with the log's tail
    when a worker fails, after stopping the others."""
    import pickle
    import subprocess
    import sys
    import tempfile

    from atlaskit.errors import AtlaskitError

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # one thread per worker: the workers share the cores
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    code = "from atlaskit.studies.cytoself import _worker_main; _worker_main()"
    groups = [jobs[w::workers] for w in range(workers) if jobs[w::workers]]
    results: dict[tuple[str, int], tuple[float, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="atlaskit-cytoself-") as tmp:
        running = []
        try:
            for w, group in enumerate(groups):
                job_path, result_path, log_path = (Path(tmp) / f"worker{w}.{ext}" for ext in ("pkl", "out", "log"))
                with open(job_path, "wb") as fh:
                    pickle.dump(group, fh)
                log = open(log_path, "wb")
                proc = subprocess.Popen([sys.executable, "-c", code, str(job_path), str(result_path)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
                running.append((proc, log, group, result_path, log_path))
            while running:
                for entry in list(running):
                    proc, log, group, result_path, log_path = entry
                    if proc.poll() is None:
                        continue
                    running.remove(entry)
                    log.close()
                    if proc.returncode != 0 or not result_path.exists():
                        tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-15:])
                        names = ", ".join(f"{j[0]}/r{j[3]}" for j in group)
                        raise AtlaskitError(f"a training worker ({names}) failed with exit code "
                                            f"{proc.returncode}:\n{tail}")
                    with open(result_path, "rb") as fh:
                        outcome = pickle.load(fh)  # noqa: S301 (our own file)
                    for job, value in zip(group, outcome):
                        results[(job[0], job[3])] = value
                time.sleep(0.2)
        finally:
            for proc, log, *_ in running:  # an error or an interrupt: stop the other workers
                proc.kill()
                proc.wait()
                log.close()
    return results


def train_variants(
    names: Sequence[str],
    data: CytoselfData,
    preset: Preset,
    *,
    repeats: int | None = None,
    seed: int = 0,
    device: str = "auto",
    workers: int | None = None,
    chapter: str = CHAPTER,
) -> dict[tuple[str, int], VariantRun]:
    """Train (or reuse) every variant × repeat; returns ``{(variant, repeat): VariantRun}``.

    On a CPU with ``workers > 1`` (default ``preset.workers``) the runs that are not finished on
    disk are trained side by side in that many worker processes (one torch thread each), then
    every run is loaded here with :func:`train_variant`, which finds it finished. Each run
    depends only on its seed, so the result is the same as training one by one.
    """
    from atlaskit.train import resolve_device

    for name in names:
        _variant(name)
    repeats = preset.repeats if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ParameterError(f"repeats must be a positive integer, not {repeats!r}")
    workers = preset.workers if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, not {workers!r}")
    jobs = [(name, r) for r in range(int(repeats)) for name in names]
    for name in names:
        data.data_variance(name)  # computed once here; the cache travels to the workers
    timing: dict[tuple[str, int], tuple[float, bool]] = {}
    if workers > 1 and resolve_device(device).type == "cpu":
        pending = [(n, r) for n, r in jobs if not _finished(_run_folder(n, data, preset, r, seed, chapter), preset)]
        if len(pending) > 1:
            timing = _train_in_workers([(n, data, preset, r, int(seed), chapter) for n, r in pending], int(workers))
    runs = {}
    for name, r in jobs:
        run = train_variant(name, data, preset, repeat=r, seed=seed, device=device, chapter=chapter)
        if (name, r) in timing:
            run.seconds, run.reused = timing[(name, r)]
        runs[(name, r)] = run
    return runs


def history_frame(runs: Sequence[VariantRun]) -> pd.DataFrame:
    """Tidy per-epoch table of several runs: ``variant, repeat, epoch, split, term, value``."""
    frames = []
    for r in runs:
        f = r.history.to_frame()
        f.insert(0, "repeat", r.repeat)
        f.insert(0, "variant", r.name)
        frames.append(f)
    if not frames:
        raise ParameterError("history_frame needs at least one run")
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# embeddings
# ----------------------------------------------------------------------------------------------

@dataclass
class Embedding:
    """Representations of a set of images (numpy, on the CPU).

    Attributes
    ----------
    global_ : ndarray
        (N, 576 * 4 * 4) flattened quantized VQ2 vectors (the atlas's input).
    global_indices : ndarray
        (N, S, 4, 4) VQ2 code indices (S = 9 with split quantization, else 1).
    local_indices : ndarray
        (N, 25, 25) VQ1 code indices (the feature spectrum's input).
    labels : ndarray
        (N,) protein index of each image.
    rows : ndarray
        (N,) store rows of the images.
    """

    global_: np.ndarray
    global_indices: np.ndarray
    local_indices: np.ndarray
    labels: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@torch.no_grad()
def embed(model, dataset, *, batch_size: int = 128, device: str | None = None) -> Embedding:
    """Encode every image of a dataset, in order, without augmentation (model in eval mode).

    Parameters
    ----------
    model : CytoselfModel
    dataset : CropDataset
        E.g. ``data.dataset("test", variant)``; its transform is switched off while encoding.
    batch_size : int
    device : str, optional
        Default: the model's device.
    """
    if len(dataset) == 0:
        raise DataError("embed: the dataset is empty")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    transform, dataset.transform = dataset.transform, None
    out: dict[str, list] = {"global_": [], "global_indices": [], "local_indices": [], "labels": []}
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                if dev.type == "cuda" and torch.cuda.is_bf16_supported() else contextlib.nullcontext())
    try:
        for lo in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))]
            x = torch.stack([it[0] for it in items]).to(dev)  # (B, C, 100, 100)
            with autocast:
                enc = model.encode(x)
            out["global_"].append(enc["global_"].float().flatten(1).cpu().numpy())  # (B, 576*16)
            out["global_indices"].append(enc["global_indices"].cpu().numpy().astype(np.int32))
            out["local_indices"].append(enc["local_indices"].cpu().numpy().astype(np.int32))  # (B, 25, 25)
            out["labels"].append(np.asarray([it[1] for it in items], dtype=np.int64))
    finally:
        dataset.transform = transform
        model.train(was_training)
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    return Embedding(rows=np.asarray(dataset.indices).copy(), **arrays)


# ----------------------------------------------------------------------------------------------
# clustering score and ablation table
# ----------------------------------------------------------------------------------------------

def _import_umap_quietly() -> None:
    """Import umap-learn once with its import-time warnings silenced: in a notebook kernel
    without ipywidgets, ``tqdm.auto`` (imported by umap's dependencies) warns on stderr."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # noqa: F401


def clustering_scores(
    features: Mapping[tuple[str, int], np.ndarray | Embedding],
    labels: Sequence,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """UMAP and clustering score of every (variant, repeat).

    Parameters
    ----------
    features
        ``{(variant, repeat): (N, D) features or Embedding}``; every entry holds the same N
        images, in the order of ``labels``.
    labels
        (N,) class of each image (the family); missing values are left out of the score.

    Returns
    -------
    scores : DataFrame
        ``variant, repeat, score, n_images``.
    umaps : dict
        ``{(variant, repeat): (N, 2) UMAP coordinates}``.
    """
    from atlaskit.analysis.atlas import clustering_score, umap_embed

    _import_umap_quietly()
    if not features:
        raise ParameterError("clustering_scores needs at least one (variant, repeat) entry")
    labels = pd.Series(list(labels), dtype=object)
    rows, umaps = [], {}
    for key, value in features.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ParameterError(f"features keys must be (variant, repeat) tuples, got {key!r}")
        x = value.global_ if isinstance(value, Embedding) else np.asarray(value)
        if x.shape[0] != len(labels):
            raise DataError(f"{key}: {x.shape[0]} feature rows for {len(labels)} labels")
        coords = umap_embed(x, n_neighbors=n_neighbors, min_dist=min_dist, seed=seed)
        umaps[key] = coords
        rows.append({"variant": key[0], "repeat": int(key[1]), "score": clustering_score(coords, labels),
                     "n_images": int(labels.notna().sum())})
    return pd.DataFrame(rows), umaps


def ablation_table(scores: pd.DataFrame, *, reference: str = "full") -> pd.DataFrame:
    """The ablation table: clustering score per variant, mean ± sd over repeats, beside the
    paper's Table 1 ordering (:data:`PAPER_TABLE1_ORDER`).

    Parameters
    ----------
    scores
        From :func:`clustering_scores` (``variant, repeat, score``).
    reference
        Variant the others are compared with (ratio column ``vs_full``).

    Returns
    -------
    DataFrame
        Indexed by variant (in :data:`VARIANTS` order): ``description``, ``repeats``, ``mean``,
        ``sd`` (sample sd, NaN for one repeat), ``vs_full`` (mean / reference mean), ``rank``
        (1 = highest mean), ``paper``.
    """
    needed = {"variant", "repeat", "score"}
    if not needed <= set(scores.columns):
        raise DataError(f"ablation_table needs columns {sorted(needed)}, got {list(scores.columns)}")
    if scores.empty:
        raise DataError("ablation_table: no scores")
    unknown = sorted(set(scores["variant"]) - set(VARIANTS))
    if unknown:
        raise ParameterError(f"ablation_table: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    grouped = scores.groupby("variant", sort=False)["score"]
    table = pd.DataFrame({"repeats": grouped.size(), "mean": grouped.mean(), "sd": grouped.std(ddof=1)})
    table = table.reindex([v for v in VARIANTS if v in table.index])
    table.insert(0, "description", [VARIANTS[v].description for v in table.index])
    if reference in table.index:
        table["vs_full"] = table["mean"] / table.loc[reference, "mean"]
    else:
        table["vs_full"] = np.nan
    table["rank"] = table["mean"].rank(ascending=False, method="min").astype(int)
    table["paper"] = [PAPER_TABLE1_ORDER[v] for v in table.index]
    table.index.name = "variant"
    return table


def umap_seed_scores(
    features: np.ndarray | Embedding,
    labels: Sequence,
    seeds: Sequence[int],
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> pd.Series:
    """Clustering score of one representation on UMAPs drawn with different seeds.

    The UMAP layout depends on its random seed; this separates that noise from the noise of
    training (the repeats of :func:`clustering_scores`).

    Parameters
    ----------
    features
        (N, D) features or an :class:`Embedding` (its ``global_``).
    labels
        (N,) class of each image (the family); missing values are left out of the score.
    seeds
        UMAP seeds, at least one, no duplicates.
    n_neighbors, min_dist
        UMAP parameters (as :func:`clustering_scores`).

    Returns
    -------
    Series
        Score per seed (index ``seed``, in the order given).

    Raises
    ------
    ParameterError
        No seeds, or a seed given twice.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ParameterError(f"umap_seed_scores needs distinct seeds, got {seeds}")
    values = []
    for s in seeds:
        scores, _ = clustering_scores({("seed", s): features}, labels, n_neighbors=n_neighbors,
                                      min_dist=min_dist, seed=s)
        values.append(float(scores["score"].iloc[0]))
    return pd.Series(values, index=pd.Index(seeds, name="seed"), name="score")


def code_usage(indices: np.ndarray, num_embeddings: int, *, batch_size: int | None = None) -> dict[str, float]:
    """Code usage of a quantizer over a set of images, as VQ perplexity and codes used.

    ``indices`` holds every quantized (sub-)vector of N images, e.g. an :class:`Embedding`'s
    ``global_indices`` (N, S, 4, 4). The perplexity is ``exp(-sum_k p_k log p_k)`` of the usage
    ``p_k`` (:func:`atlaskit.models.vq.perplexity_from_counts`).

    Parameters
    ----------
    indices
        (N, ...) integer code indices in ``[0, num_embeddings)``.
    num_embeddings
        Codebook size K.
    batch_size
        Also compute the perplexity the way training logs it: per consecutive batch of
        ``batch_size`` images, then the mean over batches weighted by their size, as
        :class:`atlaskit.train.Trainer` logs ``metric_perplexity2`` for a validation set that it
        reads in order. A batch usually sees fewer codes than the whole set, so this is usually
        below the pooled perplexity.

    Returns
    -------
    dict
        ``images``, ``codes_used`` (codes chosen at least once), ``perplexity`` (pooled over all
        images) and, with ``batch_size``, ``batch_perplexity``.

    Raises
    ------
    DataError
        Empty input, or an index outside ``[0, num_embeddings)``.
    ParameterError
        ``num_embeddings`` or ``batch_size`` not a positive integer.
    """
    from atlaskit.models.vq import perplexity_from_counts

    for name, value in (("num_embeddings", num_embeddings), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ParameterError(f"code_usage: {name} must be a positive integer, not {value!r}")
    q = np.asarray(indices)
    if q.ndim < 1 or q.shape[0] == 0 or q.size == 0:
        raise DataError(f"code_usage needs (N, ...) indices of at least one image, got shape {q.shape}")
    q = q.reshape(q.shape[0], -1)
    if not np.issubdtype(q.dtype, np.integer) or q.min() < 0 or q.max() >= num_embeddings:
        raise DataError(f"code_usage: indices must be integers in [0, {num_embeddings}), "
                        f"got {q.dtype} in [{q.min()}, {q.max()}]")

    def ppl(block: np.ndarray) -> float:
        return float(perplexity_from_counts(torch.from_numpy(np.bincount(block.ravel(), minlength=num_embeddings))))

    counts = np.bincount(q.ravel(), minlength=num_embeddings)
    out = {"images": int(q.shape[0]), "codes_used": int((counts > 0).sum()), "perplexity": ppl(q)}
    if batch_size is not None:
        starts = range(0, q.shape[0], int(batch_size))
        sizes = np.array([min(int(batch_size), q.shape[0] - lo) for lo in starts], dtype=np.float64)
        values = np.array([ppl(q[lo:lo + int(batch_size)]) for lo in starts])
        out["batch_perplexity"] = float((values * sizes).sum() / sizes.sum())
    return out


# ----------------------------------------------------------------------------------------------
# feature spectra, orphans, feature zeroing
# ----------------------------------------------------------------------------------------------

@dataclass
class Spectra:
    """Feature-spectrum analysis of one model.

    Attributes
    ----------
    histograms : DataFrame
        (proteins, K) mean VQ1 index count per image.
    bicluster : atlaskit.analysis.spectra.Bicluster
        Index order (dendrogram) and index clusters I … n.
    spectra : DataFrame
        Histograms with columns in dendrogram order (used indices only).
    consensus : DataFrame
        (families, K_used) mean normalised spectrum per family.
    family : Series
        Family of each protein (index: protein).
    """

    histograms: pd.DataFrame
    bicluster: Any
    spectra: pd.DataFrame
    consensus: pd.DataFrame
    family: pd.Series


def feature_spectra(
    local_indices: np.ndarray,
    proteins: Sequence,
    family: Mapping | pd.Series,
    num_embeddings: int,
    *,
    n_clusters: int = 11,
) -> Spectra:
    """Histograms of VQ1 indices per protein, their biclustering and the family consensus.

    ``n_clusters`` is lowered to the number of used indices minus one when fewer indices are
    used (a tiny codebook); the paper cuts 2048 indices into 11 clusters.
    """
    from atlaskit.analysis import spectra as sp

    hist = sp.index_histograms(local_indices, pd.Series(list(proteins)), num_embeddings)
    corr = sp.index_correlation(hist)
    if corr.shape[0] < 2:
        raise DataError("feature_spectra: fewer than two codebook indices vary between proteins")
    k = max(1, min(int(n_clusters), corr.shape[0] - 1))
    bic = sp.bicluster(hist, correlation=corr, n_clusters=k)
    fam = pd.Series(family) if not isinstance(family, pd.Series) else family
    fam = fam.reindex(hist.index)
    spectra = sp.feature_spectrum(hist, bic)
    consensus = sp.consensus_spectra(spectra, fam)
    return Spectra(hist, bic, spectra, consensus, fam)


def orphan_ranking(spectra: Spectra, protein: str) -> pd.Series:
    """Localize one protein as an "orphan": correlate its spectrum with family consensus
    spectra computed **without** it (so its own annotation cannot help).

    Returns
    -------
    Series
        Pearson r per family, highest first.
    """
    from atlaskit.analysis.atlas import localize_by_correlation
    from atlaskit.analysis.spectra import consensus_spectra

    if protein not in spectra.spectra.index:
        raise ParameterError(f"orphan_ranking: {protein!r} is not one of the {len(spectra.spectra)} proteins")
    others = spectra.spectra.drop(index=protein)
    consensus = consensus_spectra(others, spectra.family.drop(index=protein))
    return localize_by_correlation(spectra.spectra.loc[protein], consensus)


def orphan_accuracy(spectra: Spectra) -> pd.DataFrame:
    """Every protein in turn as the orphan (:func:`orphan_ranking`), leave-one-out.

    Proteins that are the only member of their family are left out (their family cannot be
    found without them).

    Returns
    -------
    DataFrame
        One row per protein: ``family``, ``best`` (best-matching family), ``r_best``, ``rank``
        (rank of the annotated family, 1 = found), ``families`` (families ranked). The attribute
        ``attrs["top1"]`` holds the fraction of proteins whose family ranks first.
    """
    rows = []
    family = spectra.family.dropna()
    for gene in spectra.spectra.index:
        if gene not in family.index or not (family.drop(index=gene) == family[gene]).any():
            continue
        ranking = orphan_ranking(spectra, gene)
        rows.append({"protein": gene, "family": family[gene], "best": ranking.index[0],
                     "r_best": float(ranking.iloc[0]), "rank": list(ranking.index).index(family[gene]) + 1,
                     "families": len(ranking)})
    table = pd.DataFrame(rows, columns=["protein", "family", "best", "r_best", "rank", "families"]).set_index("protein")
    table.attrs["top1"] = float((table["rank"] == 1).mean()) if len(table) else float("nan")
    return table


def image_code_histograms(local_indices: np.ndarray, num_embeddings: int) -> np.ndarray:
    """Per-image VQ1 code histogram: a fixed-length summary of the local representation.

    Row i holds the fraction of image i's positions (625 for a 25 x 25 map) that take each
    code. Averaged over a protein's images and multiplied by the number of positions, the rows
    give that protein's feature spectrum (:func:`feature_spectra`, ``histograms``).

    Parameters
    ----------
    local_indices
        (N, H, W) or (N, P) integer VQ1 indices in ``[0, num_embeddings)``.
    num_embeddings
        Codebook size K.

    Returns
    -------
    ndarray
        (N, K) float64, rows summing to 1.

    Raises
    ------
    DataError
        Empty input, or an index outside ``[0, num_embeddings)``.
    ParameterError
        ``num_embeddings`` not a positive integer.
    """
    if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, (int, np.integer)) or num_embeddings < 1:
        raise ParameterError(f"image_code_histograms: num_embeddings must be a positive integer, not {num_embeddings!r}")
    q = np.asarray(local_indices)
    if q.ndim < 2 or q.shape[0] == 0 or q[0].size == 0:
        raise DataError(f"image_code_histograms needs (N, ...) indices, got shape {q.shape}")
    q = q.reshape(q.shape[0], -1)
    if not np.issubdtype(q.dtype, np.integer) or q.min() < 0 or q.max() >= num_embeddings:
        raise DataError(f"image_code_histograms: indices must be integers in [0, {num_embeddings})")
    n, positions = q.shape
    flat = (np.arange(n)[:, None] * num_embeddings + q).ravel()  # (N * P,) row-offset codes
    counts = np.bincount(flat, minlength=n * num_embeddings).reshape(n, num_embeddings)
    return counts / positions


@torch.no_grad()
def zeroing_maps(model, image: torch.Tensor, spectra: Spectra) -> tuple[np.ndarray, np.ndarray]:
    """Feature-zeroing difference maps of one image: for every index cluster c, zero the VQ1
    positions whose code is in c and take |decoder1(VQ1, VQ2) − decoder1(VQ1 zeroed, VQ2)|.

    Parameters
    ----------
    model : CytoselfModel
    image : Tensor
        (C, 100, 100) or (1, C, 100, 100).
    spectra : Spectra
        Gives the index clusters (:attr:`Spectra.bicluster`).

    Returns
    -------
    reconstruction : ndarray
        (C, 100, 100) decoder1 output.
    maps : ndarray
        (n_clusters, C, 100, 100) absolute differences, cluster I first.
    """
    from atlaskit.analysis.spectra import zeroing_difference
    from atlaskit.models.blocks import resize

    x = image if image.dim() == 4 else image[None]
    dev = next(model.parameters()).device
    model.eval()
    x = x.to(dev, torch.float32)
    out = model(x)
    q1, q2 = out.vq1.quantized, out.vq2.quantized  # (1, 64, 25, 25), (1, 576, 4, 4)
    idx = out.vq1.indices[0, 0].cpu().numpy()  # (25, 25)
    c = model.config
    up2 = resize(q2, (c.local_size, c.local_size), c.global_upsample_mode)  # (1, 576, 25, 25)

    def decode(local):
        return model.decoder1(torch.cat([up2, local], dim=1))  # (1, C, 100, 100)

    clusters = spectra.bicluster.clusters
    maps = []
    for k in range(1, int(clusters.max()) + 1):
        mask = np.zeros(c.local_codebook_size, dtype=bool)
        mask[np.asarray(clusters.index[clusters.to_numpy() == k], dtype=np.int64)] = True
        maps.append(zeroing_difference(decode, q1, mask, indices=idx)[0])
    return decode(q1)[0].float().cpu().numpy(), np.stack(maps)


# ----------------------------------------------------------------------------------------------
# the atlas
# ----------------------------------------------------------------------------------------------

#: Families whose patterns differ most, for example figures (nucleolus first: compact, bright).
_EXAMPLE_FAMILIES = ("nucleolus", "mitochondria", "nuclear membrane", "ER", "Golgi", "chromatin", "vesicles",
                     "membrane", "cytoskeleton", "centrosome", "cytoplasm", "nucleoplasm")


def example_proteins(data: CytoselfData, n: int = 3) -> list[str]:
    """``n`` proteins of different families for example figures: the first protein
    (alphabetically) of each of the first ``n`` families present, in a fixed family order
    (nucleolus, mitochondria, nuclear membrane, ER, Golgi, …)."""
    present = data.proteins.dropna(subset=["family"])
    out = []
    for family in _EXAMPLE_FAMILIES:
        genes = sorted(present.loc[present["family"] == family, "gene"])
        if genes:
            out.append(genes[0])
        if len(out) == n:
            return out
    for gene in sorted(data.proteins["gene"]):  # fewer families than n: fill with other proteins
        if len(out) == n:
            break
        if gene not in out:
            out.append(gene)
    return out


def default_orphan(data: CytoselfData) -> str:
    """The protein the chapter treats as an orphan by default: among the single-localized
    proteins outside the GO complexes (their family is unambiguous), the first one
    (alphabetically) of the family with the most proteins in the data, so that its family
    keeps as many other proteins as possible for the consensus; ties between families are
    broken in a fixed order (nucleolus, mitochondria, nuclear membrane, ER, …)."""
    present = data.proteins.dropna(subset=["family"])
    candidates = present[present["single_localized"].fillna(False).astype(bool) & present["complex"].isna()]
    if candidates.empty:
        candidates = present
    if candidates.empty:
        raise DataError("default_orphan: no protein has a localization family")
    counts = present["family"].value_counts()
    rank = {f: i for i, f in enumerate(_EXAMPLE_FAMILIES)}
    family = min(candidates["family"].unique(), key=lambda f: (-counts[f], rank.get(f, len(rank)), f))
    return sorted(candidates.loc[candidates["family"] == family, "gene"])[0]


def zeroing_figure(examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *, channel: int = 0,
                   size: float = 1.05):
    """Grid of feature-zeroing results, one row per example ``(gene, image, reconstruction,
    maps)`` from :func:`zeroing_maps`: input, reconstruction, then one difference map per index
    cluster. The maps of a row share one colour scale (0 to the row's largest difference), so a
    cluster the image does not use shows as black.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from atlaskit.analysis.spectra import roman

    if not examples:
        raise ParameterError("zeroing_figure needs at least one example")
    ncols = 2 + max(len(e[3]) for e in examples)
    fig, axes = plt.subplots(len(examples), ncols, figsize=(size * ncols, size * len(examples) + 0.4), squeeze=False)
    for row, (gene, image, recon, maps) in enumerate(examples):
        vmax = float(np.max(maps[:, channel])) or 1.0
        panels = [(image[channel], f"{gene}: input", None), (recon[channel], "reconstruction", None)]
        panels += [(m[channel], f"− {roman(k + 1)}", vmax) for k, m in enumerate(maps)]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col >= len(panels):
                ax.axis("off")
                continue
            pic, title, top = panels[col]
            top = top if top is not None else max(float(np.percentile(pic, 99.8)), 1e-6)
            ax.imshow(pic, cmap="gray" if col < 2 else "magma", vmin=0, vmax=top)
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def atlas_obs(data: CytoselfData, embedding: Embedding) -> pd.DataFrame:
    """Per-image metadata of an embedding: gene, family, complex, split, crop, fov."""
    meta = data.meta.iloc[embedding.rows]
    obs = pd.DataFrame({
        "gene": meta["protein"].to_numpy(),
        "family": meta["family"].to_numpy(dtype=object),
        "complex": meta["complex"].to_numpy(dtype=object),
        "split": meta["split"].to_numpy(),
        "crop": meta["crop"].to_numpy(),
        "fov": meta["fov"].to_numpy(),
    }, index=[f"img{r}" for r in embedding.rows])
    obs["family"] = obs["family"].where(obs["family"].notna(), None)
    obs["complex"] = obs["complex"].where(obs["complex"].notna(), None)
    return obs


def export_atlas(path, data: CytoselfData, embedding: Embedding, umap: np.ndarray, *,
                 uns: Mapping | None = None) -> Path:
    """Write the atlas (VQ2 global vectors as X, VQ1 indices as the local representation, UMAP,
    per-image metadata) as AnnData ``.h5ad`` with :func:`atlaskit.analysis.atlas.export_atlas_h5ad`."""
    from atlaskit.analysis.atlas import export_atlas_h5ad

    meta = {"data_key": data.key, "source": data.source}
    meta.update(dict(uns or {}))
    return export_atlas_h5ad(path, global_features=embedding.global_, umap=umap, obs=atlas_obs(data, embedding),
                             local_features=embedding.local_indices, uns=meta)
