"""Truly held-out "orphan" proteins (the paper's Fig. 4c–e): real OpenCell proteins that were never
in training (no protein-ID class, no image), rendered like the chapter's data, embedded by every
trained model and placed among the localization families by their feature spectrum.

Pipeline::

    select_heldout(training genes) ──► build_heldout (same simulator, seed and image transform as
    build_data; an image store of its own) ──► heldout_orphans(runs, data, heldout): for every
    repeat of ``full``, family consensus spectra from the training proteins (feature_spectra),
    each held-out protein's spectrum from its own images (heldout_ranking) ──► one row per
    protein × repeat ──► heldout_by_family (the chapter's table) and the ledger row.

Nothing is retrained: the models are those of :func:`~atlaskit.studies.cytoself.train_variants`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.cytoself.data import CHANNELS, SEGMENT_KWARGS, CytoselfData, _sim_batches, select_proteins
from atlaskit.studies.cytoself.presets import _variant
from atlaskit.studies.cytoself.spectra import Spectra, repeat_spectra

__all__ = ["HELDOUT_PER_FAMILY", "HELDOUT_CROPS", "select_heldout", "HeldOut", "build_heldout", "heldout_ranking",
           "heldout_orphans", "heldout_by_family"]

#: Held-out proteins per localization family (at most; a family with fewer candidates gives fewer).
HELDOUT_PER_FAMILY = 3

#: Simulated images per held-out protein (every one of them is a test image: none was trained on).
HELDOUT_CROPS = 16

#: Columns of the per protein × repeat table of :func:`heldout_orphans`.
_COLUMNS = ["protein", "repeat", "family", "best", "r_best", "rank", "families", "images"]


def select_heldout(
    training: Sequence[str],
    families: Sequence[str] | None = None,
    *,
    per_family: int = HELDOUT_PER_FAMILY,
    seed: int = 0,
) -> pd.DataFrame:
    """Real OpenCell proteins outside the training set, ``per_family`` per localization family.

    The rule: among the catalog proteins with a family (:func:`select_proteins` with
    ``n_proteins=None``) that are not in ``training``, for each family of ``families`` (default:
    every family of :data:`~atlaskit.data.catalogs.FAMILIES`), single-localized proteins first
    (their family is unambiguous), in a random order drawn from ``seed`` within each group, the
    first ``per_family``. Deterministic for a seed; disjoint from ``training`` by construction.

    Parameters
    ----------
    training
        Genes of the training proteins (the pretext task's classes).
    families
        Families to hold proteins out from: those that have a consensus spectrum (a family
        without training proteins cannot be found). Unknown families raise.
    per_family
        Proteins per family (fewer where the catalog has fewer candidates).
    seed
        Seed of the random order.

    Returns
    -------
    DataFrame
        Sorted by family (catalog order), then gene: ``gene``, ``family``, ``single_localized``.

    Raises
    ------
    ParameterError
        ``per_family`` not a positive integer, an unknown family.
    """
    from atlaskit.data import catalogs

    if isinstance(per_family, bool) or not isinstance(per_family, (int, np.integer)) or per_family < 1:
        raise ParameterError(f"per_family must be a positive integer, not {per_family!r}")
    wanted = list(catalogs.FAMILIES) if families is None else list(dict.fromkeys(families))
    unknown = [f for f in wanted if f not in catalogs.FAMILIES]
    if unknown:
        raise ParameterError(f"select_heldout: unknown families {unknown}; known: {list(catalogs.FAMILIES)}")
    table = select_proteins(None)
    table = table[~table["gene"].isin(set(map(str, training)))]
    rng = np.random.default_rng(seed)
    chosen = []
    for family in catalogs.FAMILIES:  # catalog order, so the draws do not depend on ``families``' order
        rows = table[table["family"] == family].sort_values("gene")
        rows = rows.iloc[rng.permutation(len(rows))]
        rows = rows.sort_values("single_localized", ascending=False, kind="stable")
        if family in wanted:
            chosen.append(rows.iloc[:int(per_family)])
    columns = ["gene", "family", "single_localized"]
    if not chosen:
        return pd.DataFrame(columns=columns)
    out = pd.concat(chosen)[columns]
    out["order"] = out["family"].map({f: i for i, f in enumerate(catalogs.FAMILIES)})
    return out.sort_values(["order", "gene"]).drop(columns="order").reset_index(drop=True)


@dataclass
class HeldOut:
    """Images of the held-out proteins.

    Attributes
    ----------
    store : ArrayStore
        Items (3, 100, 100) float16 with the channels of :data:`CHANNELS` (as the training store).
    meta : DataFrame
        One row per item: ``protein``, ``family`` and the simulator's columns.
    proteins : DataFrame
        From :func:`select_heldout`.
    """

    store: Any
    meta: pd.DataFrame
    proteins: pd.DataFrame

    def dataset(self, variant: str = "full"):
        """Every image, with a variant's channels, no augmentation; labels index ``proteins``' genes."""
        from atlaskit.data.datasets import CropDataset

        return CropDataset(self.store, np.arange(len(self.meta)), channels=list(_variant(variant).channels),
                           label_column="protein", classes=sorted(self.proteins["gene"]))


def build_heldout(
    data: CytoselfData,
    *,
    per_family: int = HELDOUT_PER_FAMILY,
    crops: int = HELDOUT_CROPS,
    seed: int | None = None,
    root: str | os.PathLike | None = None,
    workers: int | None = None,
) -> HeldOut | None:
    """Render the held-out proteins of a simulated data set (or reuse their store).

    The proteins are :func:`select_heldout` of ``data``'s classes, for the families that have
    training proteins. Their images come from the same simulator, simulator seed (the seed decides
    every protein's simulated pattern: another seed would be another simulated proteome) and image
    transform (segmentation, distance transform) as :func:`build_data`'s; the simulator draws crop
    ``i`` of gene ``g`` from ``(seed, g, i)``, so with genes outside training no image is shared.

    Parameters
    ----------
    data
        The chapter's data set (its ``params["seed"]`` is the simulator seed).
    per_family, crops
        Proteins per family and images per protein.
    seed
        Seed of the protein choice (default: the data's seed).
    root, workers
        As for :func:`build_data`.

    Returns
    -------
    HeldOut or None
        None when nothing can be held out: real images (the folder decides the proteins), or no
        catalog protein outside training (scale ``full`` trains on all of them).
    """
    from atlaskit.studies.cytoself import CHAPTER

    if data.source != "sim":
        return None
    if isinstance(crops, bool) or not isinstance(crops, (int, np.integer)) or crops < 1:
        raise ParameterError(f"crops must be a positive integer, not {crops!r}")
    sim_seed = int(data.params["seed"])
    families = sorted(set(data.proteins["family"].dropna()))
    proteins = select_heldout(data.classes, families, per_family=per_family,
                              seed=sim_seed if seed is None else seed)
    if proteins.empty:
        return None
    genes = list(proteins["gene"])
    params = {"source": "sim", "genes": genes, "crops": int(crops), "seed": sim_seed, "segment": SEGMENT_KWARGS,
              "heldout_from": data.key}
    store = study_store(CHAPTER, "cytoself-sim-heldout", params, lambda: _sim_batches(genes, int(crops), sim_seed, workers),
                        code=__name__, root=root, shape_per_item=(3, 100, 100), dtype="float16",
                        attrs={"channels": list(CHANNELS)})
    meta = store.metadata.copy()
    meta["protein"] = meta["protein"].astype(str)
    meta["family"] = meta["protein"].map(dict(zip(proteins["gene"], proteins["family"])))
    return HeldOut(store=store, meta=meta, proteins=proteins)


def heldout_ranking(spectra: Spectra, local_indices: np.ndarray, proteins: Sequence,
                    family: Mapping | pd.Series) -> pd.DataFrame:
    """Rank the families for proteins the spectra were not computed from.

    Each protein's spectrum is its mean VQ1 index count per image
    (:func:`atlaskit.analysis.spectra.index_histograms`) restricted to the training spectra's
    indices in their order (:func:`atlaskit.analysis.spectra.feature_spectrum` with
    ``spectra.bicluster``), the definition of :func:`feature_spectra`; the families are ranked by
    Pearson correlation with the training proteins' consensus spectra (``spectra.consensus``,
    :func:`atlaskit.analysis.atlas.localize_by_correlation`), as in :func:`orphan_ranking`.

    Parameters
    ----------
    spectra
        Feature spectra of the training proteins (:func:`feature_spectra`).
    local_indices
        (N, ...) VQ1 indices of the held-out images.
    proteins
        (N,) protein of each image.
    family
        Annotated family of each protein (used only to score the ranking).

    Returns
    -------
    DataFrame
        Indexed by protein: ``family``, ``best`` (best-matching family), ``r_best``, ``rank`` (of
        the annotated family among the consensus families; NaN if it has no consensus),
        ``families`` (families ranked), ``images``.

    Raises
    ------
    DataError
        A protein of the spectra among the held-out ones (it is not held out), or no index in
        common with the spectra.
    """
    from atlaskit.analysis import spectra as sp
    from atlaskit.analysis.atlas import localize_by_correlation

    names = pd.Series(np.asarray(proteins, dtype=object)).astype(str)
    overlap = sorted(set(names) & set(map(str, spectra.spectra.index)))
    if overlap:
        raise DataError(f"heldout_ranking: {overlap[:5]} are among the spectra's proteins, so not held out")
    k = spectra.histograms.shape[1]
    hist = sp.index_histograms(local_indices, names, k)
    own = sp.feature_spectrum(hist, spectra.bicluster)  # the training spectra's indices, in their order
    fam = pd.Series(family) if not isinstance(family, pd.Series) else family
    images = names.value_counts()
    rows = []
    for gene, profile in own.iterrows():
        ranking = localize_by_correlation(profile, spectra.consensus)
        true = fam.get(gene)
        order = list(ranking.index)
        rows.append({"protein": gene, "family": true, "best": order[0], "r_best": float(ranking.iloc[0]),
                     "rank": order.index(true) + 1 if true in order else np.nan, "families": len(order),
                     "images": int(images[gene])})
    return pd.DataFrame(rows, columns=_COLUMNS[:1] + _COLUMNS[2:]).set_index("protein")


def heldout_orphans(runs: Mapping, data: CytoselfData, heldout: HeldOut | None, *, split: str = "all",
                    variant: str = "full", spectra: Mapping[int, Spectra] | None = None) -> pd.DataFrame:
    """Every held-out protein placed by every training repeat of a variant.

    For each repeat ``r`` of ``variant`` in ``runs``: the training proteins' feature spectra from
    their ``split`` images (:func:`feature_spectra`; pass ``spectra[r]`` to reuse ones already
    computed), the held-out images embedded by the same model, and :func:`heldout_ranking`.

    Returns
    -------
    DataFrame
        One row per protein × repeat (columns ``protein, repeat, family, best, r_best, rank,
        families, images``), empty when ``heldout`` is None.
    """
    from atlaskit.studies.cytoself.evaluation import embed

    if heldout is None:
        return pd.DataFrame(columns=_COLUMNS)
    if not any(v == variant for v, _ in runs):
        raise ParameterError(f"heldout_orphans: no run of variant {variant!r}")
    training_spectra = repeat_spectra(runs, data, split=split, variant=variant, spectra=spectra)
    held_family = heldout.proteins.set_index("gene")["family"]
    tables = []
    for r, spec in training_spectra.items():
        held = embed(runs[(variant, r)].model, heldout.dataset(variant))
        table = heldout_ranking(spec, held.local_indices, heldout.meta["protein"].to_numpy()[held.rows], held_family)
        tables.append(table.reset_index().assign(repeat=r))
    return pd.concat(tables, ignore_index=True)[_COLUMNS]


def heldout_by_family(table: pd.DataFrame) -> pd.DataFrame:
    """Per family: proteins held out, and the top-1 / top-3 rates over proteins × repeats.

    Returns
    -------
    DataFrame
        Indexed by family (plus a row ``all``): ``proteins``, ``placements`` (proteins ×
        repeats), ``top1``, ``top3`` (fractions).
    """
    if table.empty:
        return pd.DataFrame(columns=["proteins", "placements", "top1", "top3"])
    t = table.assign(top1=table["rank"] == 1, top3=table["rank"] <= 3)
    out = t.groupby("family", sort=False).agg(proteins=("protein", "nunique"), placements=("protein", "size"),
                                              top1=("top1", "mean"), top3=("top3", "mean"))
    out.loc["all"] = [t["protein"].nunique(), len(t), t["top1"].mean(), t["top3"].mean()]
    return out.astype({"proteins": int, "placements": int})
