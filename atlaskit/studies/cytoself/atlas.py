"""The cytoself atlas: example and orphan proteins of a data set, per-image metadata, and the
AnnData export."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from atlaskit.errors import DataError
from atlaskit.studies.cytoself.data import CytoselfData
from atlaskit.studies.cytoself.evaluation import Embedding

__all__ = ["example_proteins", "default_orphan", "atlas_obs", "export_atlas", "BAND_GROUPS", "band_group",
           "band_groups", "band_positions", "band_scores", "band_summary"]

#: The groups of the nucleus ↔ cytoplasm axis (the paper's grey band, Fig. 3a), by the families of
#: a protein's major localizations (OpenCell grades, :func:`atlaskit.data.catalogs.opencell_proteins`).
BAND_GROUPS = ("nucleus", "both", "cytoplasm")

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
                 uns: Mapping | None = None, umap_params: Mapping | None = None) -> Path:
    """Write the atlas (VQ2 global vectors as X, VQ1 indices as the local representation, UMAP,
    per-image metadata) as AnnData ``.h5ad`` with :func:`atlaskit.analysis.atlas.export_atlas_h5ad`.

    Ready for ``scanpy.pl.umap(adata, color="family")`` in the book's family colours
    (``uns["family_colors"]``), with the UMAP's parameters in ``uns["umap"]["params"]``:
    ``umap_params`` (:attr:`Evaluation.umap_params <atlaskit.studies.cytoself.Evaluation>`),
    by default :func:`~atlaskit.studies.cytoself.evaluate`'s (15 neighbours, min_dist 0.1,
    Euclidean) with ``uns["seed"]`` as the seed, as the chapter draws the map.
    """
    from atlaskit.analysis.atlas import export_atlas_h5ad

    meta = {"data_key": data.key, "source": data.source}
    meta.update(dict(uns or {}))
    if not umap_params:  # None, or an Evaluation from before umap_params were recorded
        umap_params = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "seed": int(meta.get("seed", 0))}
    return export_atlas_h5ad(path, global_features=embedding.global_, umap=umap, obs=atlas_obs(data, embedding),
                             local_features=embedding.local_indices, uns=meta, umap_params=umap_params,
                             color_keys=("family",))


def band_group(major_localizations) -> str | None:
    """The nucleus ↔ cytoplasm group of one protein from its major localizations (OpenCell
    compartments at the highest grade): ``"nucleus"`` when they all belong to the nucleoplasm
    family (nucleoplasm, nuclear punctae), ``"cytoplasm"`` when they all belong to the cytoplasm
    family (cytoplasmic, big aggregates), ``"both"`` when they cover exactly these two families,
    None otherwise (another compartment, or none).

    Raises
    ------
    DataError
        An unknown compartment.
    """
    from atlaskit.data.catalogs import OPENCELL_FAMILY

    compartments = [major_localizations] if isinstance(major_localizations, str) else list(major_localizations)
    unknown = [c for c in compartments if c not in OPENCELL_FAMILY]
    if unknown:
        raise DataError(f"band_group: unknown OpenCell compartments {unknown}")
    families = {OPENCELL_FAMILY[c] for c in compartments}
    return {frozenset({"nucleoplasm"}): "nucleus", frozenset({"cytoplasm"}): "cytoplasm",
            frozenset({"nucleoplasm", "cytoplasm"}): "both"}.get(frozenset(families))


def band_groups(genes) -> pd.Series:
    """:func:`band_group` of each gene from the OpenCell annotations (None for a gene the catalog
    does not have), indexed by gene."""
    from atlaskit.data import catalogs

    major = catalogs.opencell_proteins().set_index("gene")["major_localizations"]
    genes = list(dict.fromkeys(map(str, genes)))
    return pd.Series([band_group(major[g]) if g in major.index else None for g in genes], index=genes,
                     dtype=object, name="band")


def band_positions(features: np.ndarray, proteins, groups: Mapping | pd.Series) -> pd.DataFrame:
    """Position of every protein on the nucleus ↔ cytoplasm axis of an embedding.

    With x_p the mean feature vector of protein p's images, n the mean of x_p over the
    ``"nucleus"`` proteins and c over the ``"cytoplasm"`` ones, the position is the projection

        t_p = (x_p − n) · (c − n) / ‖c − n‖²        (0 = nuclear centroid, 1 = cytoplasmic),

    so the nucleus group's mean position is 0 and the cytoplasm group's 1 by construction; the
    paper's grey band says the ``"both"`` proteins lie in between.

    Parameters
    ----------
    features
        (N, D) one row per image (e.g. the flattened VQ2 vectors, :attr:`Embedding.global_`).
    proteins
        (N,) protein of each image.
    groups
        :data:`BAND_GROUPS` entry (or None) of each protein; proteins without a group are left out.

    Returns
    -------
    DataFrame
        Indexed by protein (sorted): ``group``, ``position``, ``images``.

    Raises
    ------
    DataError
        Shapes that do not match, no protein of the nucleus or the cytoplasm group, or two
        centroids that coincide.
    """
    x = np.asarray(features, dtype=np.float64)
    names = np.asarray(list(proteins), dtype=object)
    if x.ndim != 2 or x.shape[0] == 0 or len(names) != x.shape[0]:
        raise DataError(f"band_positions needs (N, D) features and N proteins, got {x.shape} and {len(names)}")
    group = (pd.Series(groups) if not isinstance(groups, pd.Series) else groups).reindex(names).to_numpy(dtype=object)
    keep = np.asarray([g in BAND_GROUPS for g in group])
    frame = pd.DataFrame(x[keep]).groupby(names[keep]).mean()
    group_of = pd.Series(group[keep], index=names[keep]).groupby(level=0).first().reindex(frame.index)
    images = pd.Series(names[keep]).value_counts().reindex(frame.index)
    ends = {}
    for end in ("nucleus", "cytoplasm"):
        rows = frame[(group_of == end).to_numpy()]
        if rows.empty:
            raise DataError(f"band_positions: no protein of the {end} group")
        ends[end] = rows.to_numpy().mean(axis=0)
    axis = ends["cytoplasm"] - ends["nucleus"]
    length = float(axis @ axis)
    if not length > 0:
        raise DataError("band_positions: the nucleus and cytoplasm centroids coincide")
    position = (frame.to_numpy() - ends["nucleus"]) @ axis / length
    return pd.DataFrame({"group": group_of.to_numpy(), "position": position, "images": images.to_numpy()},
                        index=pd.Index(frame.index, name="protein"))


def band_scores(embeddings: Mapping, data: CytoselfData, *, variant: str = "full") -> pd.DataFrame:
    """:func:`band_positions` of the global representation (:attr:`Embedding.global_`) of every
    repeat of ``variant`` in ``embeddings``, the groups from :func:`band_groups`.

    Returns
    -------
    DataFrame
        One row per protein × repeat: ``protein``, ``repeat``, ``group``, ``position``, ``images``;
        empty when a group at an end of the axis has no protein.
    """
    columns = ["protein", "repeat", "group", "position", "images"]
    groups = band_groups(data.proteins["gene"])
    if not {"nucleus", "cytoplasm"} <= set(groups.dropna()):
        return pd.DataFrame(columns=columns)
    tables = []
    for (name, repeat), emb in sorted(embeddings.items()):
        if name != variant:
            continue
        proteins = data.meta["protein"].to_numpy()[emb.rows]
        tables.append(band_positions(emb.global_, proteins, groups).reset_index().assign(repeat=repeat))
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def band_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per group of :data:`BAND_GROUPS` (in axis order): proteins, mean position over proteins ×
    repeats, and its lowest and highest per-protein mean (over repeats)."""
    per_protein = table.groupby(["group", "protein"])["position"].mean()
    rows = {}
    for group in BAND_GROUPS:
        if group in per_protein.index.get_level_values(0):
            p = per_protein.loc[group]
            rows[group] = {"proteins": len(p), "mean position": float(table.loc[table["group"] == group, "position"].mean()),
                           "lowest": float(p.min()), "highest": float(p.max()), "genes": ", ".join(p.index)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["proteins", "mean position", "lowest", "highest",
                                                                   "genes"])
