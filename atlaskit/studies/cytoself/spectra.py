"""Feature spectra of the cytoself study: VQ1 index histograms per protein, their biclustering and
family consensus, "orphan" proteins localized by correlation, and feature zeroing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError

__all__ = ["Spectra", "feature_spectra", "orphan_ranking", "orphan_accuracy", "image_code_histograms",
           "zeroing_maps", "zeroing_examples"]


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


def zeroing_examples(model, data, spectra: Spectra, genes: Sequence[str], *, split: str = "test",
                     variant: str = "full") -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Feature zeroing (:func:`zeroing_maps`) of the first ``split`` image of each protein of ``genes``.

    Returns
    -------
    list of (gene, image, reconstruction, maps)
        The input for :func:`atlaskit.studies.cytoself.figures.zeroing_figure`.
    """
    rows = data.indices(split)
    proteins = data.meta["protein"].to_numpy()[rows]
    examples = []
    for gene in genes:
        if not (proteins == gene).any():
            raise ParameterError(f"zeroing_examples: no {split} image of {gene!r}")
        row = int(rows[proteins == gene][0])
        image = data.images([row], variant)[0]
        reconstruction, maps = zeroing_maps(model, image, spectra)
        examples.append((gene, image.numpy(), reconstruction, maps))
    return examples
