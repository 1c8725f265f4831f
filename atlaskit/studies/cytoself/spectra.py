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
           "zeroing_maps", "zeroing_examples", "family_clusters", "zeroing_changes", "zeroing_scores",
           "zeroing_by_family", "repeat_spectra"]

#: Columns of the per image × zeroed cluster table of :func:`zeroing_changes`.
ZEROING_COLUMNS = ["image", "protein", "family", "zeroed", "cluster", "change", "on_target"]


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


def family_clusters(spectra: Spectra) -> pd.DataFrame:
    """The index cluster of each localization family: the one its consensus spectrum is most
    enriched in.

    With M[f, c] the share of family f's consensus spectrum (rows sum to 1) that falls in index
    cluster c, the enrichment is E[f, c] = M[f, c] / mean over families of M[·, c]; the family's
    cluster is argmax_c E[f, c] (the lowest cluster number on ties). Only families with
    enrichment above 1 have a cluster of their own (a family spread evenly over the clusters has
    none).

    Returns
    -------
    DataFrame
        Indexed by family (consensus order): ``cluster`` (int, 1 = I), ``enrichment``, ``share``
        (M of that cluster).

    Raises
    ------
    DataError
        Fewer than two families in the consensus, or consensus indices without a cluster.
    """
    consensus = spectra.consensus
    if consensus.shape[0] < 2:
        raise DataError(f"family_clusters needs at least two families, got {consensus.shape[0]}")
    clusters = spectra.bicluster.clusters
    missing = [c for c in consensus.columns if c not in clusters.index]
    if missing:
        raise DataError(f"family_clusters: consensus indices {missing[:5]} have no index cluster")
    share = consensus.div(consensus.sum(axis=1), axis=0).T.groupby(clusters.reindex(consensus.columns).to_numpy()).sum().T
    enrichment = share / share.mean(axis=0)
    best = enrichment.to_numpy().argmax(axis=1)  # first maximum: the lowest cluster on ties
    out = pd.DataFrame({"cluster": np.asarray(enrichment.columns)[best].astype(int),
                        "enrichment": enrichment.to_numpy()[np.arange(len(best)), best],
                        "share": share.to_numpy()[np.arange(len(best)), best]}, index=consensus.index)
    return out[out["enrichment"] > 1 + 1e-9]  # rounding: a family equal to the mean has no cluster


@torch.no_grad()
def zeroing_changes(model, images: torch.Tensor, proteins: Sequence, family: Mapping | pd.Series,
                    spectra: Spectra, clusters: pd.DataFrame | None = None, *, channel: int = 0,
                    batch_size: int = 64) -> pd.DataFrame:
    """How much zeroing each family's index cluster changes each image's reconstruction.

    For every image x and every family f with a cluster c_f (:func:`family_clusters`), the VQ1
    positions whose code is in c_f are zeroed (as in :func:`zeroing_maps`) and the image is decoded
    again; the change is the relative L1 difference in one channel,

        change = Σ |x̂ − x̂_f| / Σ |x̂|        (sums over the pixels of ``channel``),

    0 when the image uses no code of c_f. The paper's claim (Fig. 5) is that zeroing a family's
    cluster removes that family's pattern: the change is larger on images of that family
    (``on_target``) than on images of the others.

    Parameters
    ----------
    model : CytoselfModel
    images : Tensor
        (N, C, 100, 100) inputs with the model's channels.
    proteins
        (N,) protein of each image.
    family
        Family of each protein (a mapping or Series indexed by protein).
    spectra
        Gives the index clusters and, through :func:`family_clusters`, each family's cluster.
    clusters
        Precomputed :func:`family_clusters` (default: computed from ``spectra``).
    channel
        Reconstruction channel to compare (0: the protein).

    Returns
    -------
    DataFrame
        One row per image × family with a cluster: ``image`` (position in ``images``),
        ``protein``, ``family`` (the image's), ``zeroed`` (the family whose cluster is zeroed),
        ``cluster``, ``change``, ``on_target`` (family == zeroed).

    Raises
    ------
    DataError
        No image, a count mismatch, a protein without a family, a reconstruction that is zero.
    """
    from atlaskit.models.blocks import resize

    x_all = torch.as_tensor(images)
    names = np.asarray(list(proteins), dtype=object)
    if x_all.dim() != 4 or x_all.shape[0] == 0:
        raise DataError(f"zeroing_changes needs (N, C, H, W) images, got shape {tuple(x_all.shape)}")
    if len(names) != x_all.shape[0]:
        raise DataError(f"zeroing_changes: {len(names)} proteins for {x_all.shape[0]} images")
    fam = pd.Series(family) if not isinstance(family, pd.Series) else family
    fam_of = fam.reindex(names).to_numpy(dtype=object)
    if pd.isna(fam_of).any():
        raise DataError(f"zeroing_changes: no family for {sorted(set(names[pd.isna(fam_of)]))[:5]}")
    table = family_clusters(spectra) if clusters is None else clusters
    members = spectra.bicluster.clusters
    c = model.config
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = []
    try:
        for lo in range(0, x_all.shape[0], batch_size):
            x = x_all[lo:lo + batch_size].to(dev, torch.float32)
            out = model(x)
            q1, idx = out.vq1.quantized, out.vq1.indices[:, 0]  # (B, D, 25, 25), (B, 25, 25)
            up2 = resize(out.vq2.quantized, (c.local_size, c.local_size), c.global_upsample_mode)
            base = model.decoder1(torch.cat([up2, q1], dim=1))[:, channel]  # (B, 100, 100)
            norm = base.abs().flatten(1).sum(1)
            if (norm <= 0).any():
                raise DataError("zeroing_changes: a reconstruction is zero everywhere")
            for zeroed, cluster in table["cluster"].items():
                mask = torch.zeros(c.local_codebook_size, dtype=torch.bool, device=dev)
                mask[torch.as_tensor(np.asarray(members.index[members.to_numpy() == cluster], dtype=np.int64))] = True
                keep = (~mask[idx]).unsqueeze(1).to(q1.dtype)  # (B, 1, 25, 25)
                rec = model.decoder1(torch.cat([up2, q1 * keep], dim=1))[:, channel]
                change = ((base - rec).abs().flatten(1).sum(1) / norm).cpu().numpy()
                for i, value in enumerate(change):
                    rows.append((lo + i, names[lo + i], fam_of[lo + i], zeroed, int(cluster), float(value),
                                 fam_of[lo + i] == zeroed))
    finally:
        model.train(was_training)
    return pd.DataFrame(rows, columns=ZEROING_COLUMNS)


def repeat_spectra(runs: Mapping, data, *, split: str = "all", variant: str = "full",
                   spectra: Mapping[int, Spectra] | None = None) -> dict[int, Spectra]:
    """:func:`feature_spectra` of every repeat of ``variant`` from its ``split`` images (those
    already in ``spectra`` are reused), ``{repeat: Spectra}``."""
    from atlaskit.studies.cytoself.evaluation import embed

    repeats = sorted(r for v, r in runs if v == variant)
    if not repeats:
        raise ParameterError(f"repeat_spectra: no run of variant {variant!r}")
    family_of = data.proteins.set_index("gene")["family"]
    out = {}
    for r in repeats:
        out[r] = (spectra or {}).get(r)
        if out[r] is None:
            model = runs[(variant, r)].model
            emb = embed(model, data.dataset(split, variant))
            out[r] = feature_spectra(emb.local_indices, data.meta["protein"].to_numpy()[emb.rows], family_of,
                                     model.config.local_codebook_size)
    return out


def zeroing_scores(runs: Mapping, data, *, split: str = "test", per_protein: int = 2, spectra_split: str = "all",
                   variant: str = "full", spectra: Mapping[int, Spectra] | None = None) -> pd.DataFrame:
    """:func:`zeroing_changes` of the first ``per_protein`` ``split`` images of every protein, for
    every repeat of ``variant``, each with its own feature spectra (from its ``spectra_split``
    images; pass ``spectra[r]`` to reuse ones already computed).

    Returns
    -------
    DataFrame
        :func:`zeroing_changes`' columns plus ``repeat``.

    Raises
    ------
    ParameterError
        ``per_protein`` not a positive integer, no run of ``variant``.
    """
    if isinstance(per_protein, bool) or not isinstance(per_protein, (int, np.integer)) or per_protein < 1:
        raise ParameterError(f"zeroing_scores: per_protein must be a positive integer, not {per_protein!r}")
    repeats = sorted(r for v, r in runs if v == variant)
    if not repeats:
        raise ParameterError(f"zeroing_scores: no run of variant {variant!r}")
    rows = data.indices(split)
    genes = data.meta["protein"].to_numpy()[rows]
    chosen = np.concatenate([rows[genes == g][:int(per_protein)] for g in sorted(set(genes))])
    images = data.images(list(chosen), variant)
    proteins = data.meta["protein"].to_numpy()[chosen]
    family_of = data.proteins.set_index("gene")["family"]
    specs = repeat_spectra(runs, data, split=spectra_split, variant=variant, spectra=spectra)
    tables = [zeroing_changes(runs[(variant, r)].model, images, proteins, family_of, specs[r]).assign(repeat=r)
              for r in repeats]
    return pd.concat(tables, ignore_index=True)


def zeroing_by_family(table: pd.DataFrame) -> pd.DataFrame:
    """Per zeroed family: its cluster(s), the mean change on its own images (``on``) and on the
    other families' images (``off``), and their ratio; a last row ``all`` pools every row.

    Returns
    -------
    DataFrame
        Indexed by the zeroed family: ``cluster`` (the clusters over repeats, e.g. "III" or
        "III/V"), ``on``, ``off``, ``on/off``.

    Raises
    ------
    DataError
        An empty table, or no on-target or no off-target row.
    """
    from atlaskit.analysis.spectra import roman

    missing = [c for c in ("zeroed", "cluster", "change", "on_target") if c not in table.columns]
    if missing:
        raise DataError(f"zeroing_by_family: missing columns {missing}")
    if table.empty or not table["on_target"].any() or table["on_target"].all():
        raise DataError("zeroing_by_family needs on-target and off-target rows")
    out = {}
    for zeroed, t in table.groupby("zeroed", sort=True):
        on, off = t.loc[t["on_target"], "change"].mean(), t.loc[~t["on_target"], "change"].mean()
        out[zeroed] = {"cluster": "/".join(roman(int(k)) for k in sorted(set(t["cluster"]))), "on": on, "off": off}
    on, off = table.loc[table["on_target"], "change"].mean(), table.loc[~table["on_target"], "change"].mean()
    out["all"] = {"cluster": "", "on": on, "off": off}
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame["on/off"] = frame["on"] / frame["off"]
    return frame
