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

__all__ = ["example_proteins", "default_orphan", "atlas_obs", "export_atlas"]

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
                 uns: Mapping | None = None) -> Path:
    """Write the atlas (VQ2 global vectors as X, VQ1 indices as the local representation, UMAP,
    per-image metadata) as AnnData ``.h5ad`` with :func:`atlaskit.analysis.atlas.export_atlas_h5ad`."""
    from atlaskit.analysis.atlas import export_atlas_h5ad

    meta = {"data_key": data.key, "source": data.source}
    meta.update(dict(uns or {}))
    return export_atlas_h5ad(path, global_features=embedding.global_, umap=umap, obs=atlas_obs(data, embedding),
                             local_features=embedding.local_indices, uns=meta)
