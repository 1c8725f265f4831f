"""Feature spectra: what the cytoself local codebook (VQ1) encodes, protein by protein.

Pipeline (the feature-spectrum analysis of the paper)::

    VQ1 indices (N, 25, 25) ──index_histograms──► H: proteins × K  (mean count per image)
    H ──index_correlation──► C: K × K Pearson correlation of the index profiles across proteins
    C ──bicluster──► dendrogram order of the K indices + their 11 top-level clusters (I … XI)
    H[:, order] ──feature_spectrum──► spectra; ──consensus_spectra──► family × K means
    spectrum_heatmap / consensus_figure: the figures; zeroing_difference: what a cluster draws.

Model-agnostic: numpy arrays and pandas tables in, tables and matplotlib figures out;
:func:`zeroing_difference` takes the decoder as a callable (numpy or torch).

Sources
-------
Kobayashi et al. (2022) Nature Methods 19:995–1003, the feature-spectrum section of the Results and Methods,
and the public code github.com/royerlab/cytoself, ``cytoself/analysis/analysis_opencell.py``:
``calculate_cellid_ondim0_vqidx_ondim1`` (per protein, the per-image histograms of VQ1 indices
summed and divided by the number of images, i.e. the mean count per image),
``calculate_corr_vqidx_vqidx`` (Pearson correlation between the index columns of that matrix,
NaN set to 0), ``plot_clustermap`` (``seaborn.clustermap`` of the correlation matrix: average
linkage, Euclidean distance between its rows; the row dendrogram's leaf order is the spectrum's
x-axis order) and ``compute_feature_spectrum`` (histograms with columns in that order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError

_MONOTONE_METHODS = ("single", "complete", "average", "weighted", "ward")


# ----------------------------------------------------------------------------------------------
# histograms and correlation
# ----------------------------------------------------------------------------------------------

def index_histograms(
    indices: np.ndarray,
    groups: Sequence,
    num_embeddings: int,
    *,
    normalize: bool = False,
) -> pd.DataFrame:
    """Per-group (protein) histogram of codebook indices: the raw feature spectrum.

    For group g with images i ∈ g, each image holding P quantized positions (25 × 25 = 625 for
    VQ1) with codebook indices q_ip ∈ {0 … K−1}::

        H[g, k] = (1/|g|) Σ_{i∈g} #{p : q_ip = k}          (normalize=False, public-code scale)
        H[g, k] = (1/(|g|·P)) Σ_{i∈g} #{p : q_ip = k}       (normalize=True, rows sum to 1)

    Parameters
    ----------
    indices
        (N, ...) integer codebook indices of N images (e.g. (N, 25, 25)); all values in
        [0, num_embeddings).
    groups
        (N,) group (protein) of each image; missing values are not allowed. A pandas
        Categorical keeps its category order (empty categories give all-zero rows); otherwise
        groups are sorted.
    num_embeddings
        Codebook size K (2048 in cytoself).
    normalize
        False: mean count per image (what ``calculate_cellid_ondim0_vqidx_ondim1`` returns);
        True: fractions of the positions.

    Returns
    -------
    DataFrame
        (G, K): index = groups (named ``"group"``), columns = codebook indices 0 … K−1.
    """
    q = np.asarray(indices)
    if q.ndim < 1 or q.shape[0] == 0:
        raise DataError(f"index_histograms needs (N, ...) indices, got shape {q.shape}")
    if not np.issubdtype(q.dtype, np.integer):
        if np.issubdtype(q.dtype, np.floating) and np.all(np.isfinite(q)) and np.all(q == np.round(q)):
            q = q.astype(np.int64)
        else:
            raise DataError(f"index_histograms needs integer codebook indices, got dtype {q.dtype}")
    q = q.reshape(q.shape[0], -1).astype(np.int64, copy=False)  # (N, P)
    if num_embeddings < 1:
        raise ParameterError(f"index_histograms: num_embeddings must be positive, got {num_embeddings}")
    if q.size and (q.min() < 0 or q.max() >= num_embeddings):
        raise DataError(
            f"index_histograms: indices range over [{q.min()}, {q.max()}], outside the codebook "
            f"[0, {num_embeddings - 1}]"
        )
    g = pd.Series(groups) if not isinstance(groups, pd.Series) else groups.reset_index(drop=True)
    if len(g) != q.shape[0]:
        raise DataError(f"index_histograms: {len(g)} groups for {q.shape[0]} images")
    if g.isna().any():
        raise DataError(f"index_histograms: {int(g.isna().sum())} images have no group")
    if isinstance(g.dtype, pd.CategoricalDtype):
        codes, names = g.cat.codes.to_numpy(), g.cat.categories
    else:
        codes, names = pd.factorize(g, sort=True)
    n_groups, n_pos = len(names), q.shape[1]
    flat = (codes[:, None].astype(np.int64) * num_embeddings + q).ravel()
    counts = np.bincount(flat, minlength=n_groups * num_embeddings).reshape(n_groups, num_embeddings)
    images = np.bincount(codes, minlength=n_groups).astype(np.float64)  # (G,)
    denom = images * (n_pos if normalize else 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hist = np.where(denom[:, None] > 0, counts / np.maximum(denom, 1)[:, None], 0.0)
    return pd.DataFrame(hist, index=pd.Index(names, name="group"),
                        columns=pd.RangeIndex(num_embeddings, name="index"))


def normalize_rows(histograms: pd.DataFrame) -> pd.DataFrame:
    """Each row divided by its sum (rows that sum to 0 stay 0): spectra as fractions."""
    h = pd.DataFrame(histograms).astype(np.float64)
    total = h.sum(axis=1)
    return h.div(total.where(total > 0, 1.0), axis=0)


def index_correlation(
    histograms: pd.DataFrame,
    *,
    unused: Literal["drop", "zero", "nan"] = "drop",
) -> pd.DataFrame:
    """Pearson correlation between codebook-index profiles across groups (proteins).

    For indices k, l with profiles h_k = H[:, k] and h_l = H[:, l] over the G proteins::

        C[k, l] = Σ_g (H_gk − h̄_k)(H_gl − h̄_l) / sqrt(Σ_g (H_gk − h̄_k)² · Σ_g (H_gl − h̄_l)²)

    An index whose profile is constant over the proteins (above all, an index no image uses)
    has an undefined correlation. ``unused`` says what to do with such indices:

    - ``"drop"`` (default): leave them out, the matrix is K_used × K_used with unit diagonal;
    - ``"zero"``: keep them with 0 everywhere, diagonal included — what the public code gets
      from ``np.nan_to_num`` (they then cluster together in :func:`bicluster`);
    - ``"nan"``: keep them as NaN rows and columns.

    Parameters
    ----------
    histograms
        (G, K) table from :func:`index_histograms` (normalised or not), G ≥ 2.

    Returns
    -------
    DataFrame
        Symmetric correlation matrix indexed (both axes) by codebook index.
    """
    h = pd.DataFrame(histograms)
    if unused not in ("drop", "zero", "nan"):
        raise ParameterError(f"index_correlation: unused must be 'drop', 'zero' or 'nan', got {unused!r}")
    if h.shape[0] < 2:
        raise DataError(f"index_correlation needs at least two groups (rows), got {h.shape[0]}")
    x = h.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError("index_correlation: the histograms contain NaN or infinite values")
    xc = x - x.mean(axis=0)
    norm = np.sqrt((xc**2).sum(axis=0))  # (K,)
    varying = norm > 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0))
    corr = np.full((x.shape[1], x.shape[1]), np.nan)
    z = xc[:, varying] / norm[varying]
    sub = np.clip(z.T @ z, -1.0, 1.0)
    np.fill_diagonal(sub, 1.0)
    corr[np.ix_(varying, varying)] = sub
    table = pd.DataFrame(corr, index=h.columns, columns=h.columns)
    if unused == "drop":
        keep = h.columns[varying]
        return table.loc[keep, keep]
    if unused == "zero":
        return table.fillna(0.0)
    return table


# ----------------------------------------------------------------------------------------------
# biclustering
# ----------------------------------------------------------------------------------------------

@dataclass
class Bicluster:
    """Result of :func:`bicluster`.

    Attributes
    ----------
    order
        Codebook indices in dendrogram-leaf order: the spectrum's x-axis.
    clusters
        Series indexed like ``order``: top-level cluster 1 … n of each index, numbered left to
        right along ``order`` (the paper's I … XI); clusters are contiguous blocks of ``order``.
    linkage
        scipy linkage matrix of the indices, (K_used − 1, 4).
    row_order
        Groups (proteins) in dendrogram-leaf order, or None when no histograms were given.
    row_linkage
        scipy linkage matrix of the groups, or None.
    """

    order: pd.Index
    clusters: pd.Series
    linkage: np.ndarray
    row_order: pd.Index | None = None
    row_linkage: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.nunique())

    @property
    def boundaries(self) -> np.ndarray:
        """Positions along ``order`` where a new cluster starts (after the first), (n−1,)."""
        c = self.clusters.reindex(self.order).to_numpy()
        return np.flatnonzero(c[1:] != c[:-1]) + 1


def roman(number: int) -> str:
    """1 → "I", 11 → "XI" (cluster names as in the paper)."""
    if not 0 < number < 4000:
        raise ParameterError(f"roman: {number} is out of range 1 … 3999")
    out = ""
    for value, numeral in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, number = divmod(number, value)
        out += numeral * count
    return out


def _tree(matrix: np.ndarray, method: str, metric: str):
    """Linkage and leaf order of the rows of a matrix."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import pdist

    if matrix.shape[0] < 2:
        return np.zeros((0, 4)), np.arange(matrix.shape[0])
    distances = np.nan_to_num(pdist(matrix, metric=metric), nan=0.0)
    z = hierarchy.linkage(distances, method=method)
    return z, hierarchy.leaves_list(z)


def bicluster(
    histograms: pd.DataFrame | None = None,
    *,
    correlation: pd.DataFrame | None = None,
    n_clusters: int = 11,
    method: str = "average",
    metric: str = "euclidean",
    unused: Literal["drop", "zero"] = "drop",
) -> Bicluster:
    """Hierarchical clustering of the codebook indices (and of the proteins) for the spectrum.

    Indices: each index k is described by its row C[k, :] of the index–index correlation
    (:func:`index_correlation`); rows are joined by agglomerative clustering with ``method``
    linkage on ``metric`` distances between rows — average linkage on Euclidean distances is
    what ``seaborn.clustermap`` (used by cytoself's ``plot_clustermap``) does by default. The
    dendrogram's leaf order is the spectrum's x-axis; the tree is cut into ``n_clusters``
    top-level clusters (the paper's 11, I … XI) with ``scipy.cluster.hierarchy.cut_tree``.

    Proteins (rows of the heat map), when ``histograms`` is given: each protein is described by
    its row of the protein–protein Pearson correlation of the spectra (over the kept indices)
    and clustered the same way, giving ``row_order``.

    Parameters
    ----------
    histograms
        (G, K) spectra from :func:`index_histograms`; needed unless ``correlation`` is given.
    correlation
        Precomputed (K, K) correlation; computed from ``histograms`` when omitted.
    n_clusters
        Number of top-level clusters of indices.
    method, metric
        ``scipy.cluster.hierarchy.linkage`` method (a monotone one: single, complete, average,
        weighted, ward) and ``scipy.spatial.distance.pdist`` metric.
    unused
        Passed to :func:`index_correlation` when computing it.
    """
    if method not in _MONOTONE_METHODS:
        raise ParameterError(f"bicluster: method must be one of {_MONOTONE_METHODS}, got {method!r}")
    if histograms is None and correlation is None:
        raise ParameterError("bicluster needs histograms or a correlation matrix")
    if correlation is None:
        correlation = index_correlation(histograms, unused=unused)
    correlation = pd.DataFrame(correlation)
    if correlation.shape[0] != correlation.shape[1] or not correlation.index.equals(correlation.columns):
        raise DataError(f"bicluster: correlation must be square with equal row and column labels, got {correlation.shape}")
    k = correlation.shape[0]
    if not 1 <= n_clusters <= k:
        raise ParameterError(f"bicluster: n_clusters={n_clusters} but only {k} indices to cluster")
    from scipy.cluster import hierarchy

    z, leaves = _tree(np.nan_to_num(correlation.to_numpy(dtype=np.float64)), method, metric)
    order = correlation.index[leaves]
    if k == 1:
        raw = np.zeros(1, dtype=int)
    else:
        raw = hierarchy.cut_tree(z, n_clusters=n_clusters).ravel()  # (K,) in correlation order
        if len(np.unique(raw)) != n_clusters:  # cut_tree is only reliable on monotone trees
            raw = hierarchy.fcluster(z, t=n_clusters, criterion="maxclust")
    # renumber 1 … n from left to right along the leaf order
    along = raw[leaves]
    first_seen = {c: i + 1 for i, c in enumerate(pd.unique(along))}
    clusters = pd.Series([first_seen[c] for c in along], index=order, name="cluster")

    row_order = row_z = None
    if histograms is not None:
        h = pd.DataFrame(histograms)
        kept = h.reindex(columns=correlation.index).to_numpy(dtype=np.float64)  # (G, K_used)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows = np.nan_to_num(np.corrcoef(kept)) if kept.shape[0] > 1 else np.ones((1, 1))
        row_z, row_leaves = _tree(rows, method, metric)
        row_order = h.index[row_leaves]
    return Bicluster(order=order, clusters=clusters, linkage=z, row_order=row_order, row_linkage=row_z)


# ----------------------------------------------------------------------------------------------
# spectra
# ----------------------------------------------------------------------------------------------

def _order_of(order) -> pd.Index:
    return order.order if isinstance(order, Bicluster) else pd.Index(order)


def feature_spectrum(histograms: pd.DataFrame, order) -> pd.DataFrame:
    """The feature spectra: histogram columns in the dendrogram order (``Bicluster`` or indices).

    Indices not in ``order`` (e.g. those dropped as unused by :func:`index_correlation`) are
    left out.
    """
    h = pd.DataFrame(histograms)
    order = _order_of(order)
    missing = order.difference(h.columns)
    if len(missing):
        raise DataError(f"feature_spectrum: {len(missing)} indices of the order are not histogram columns (e.g. {list(missing[:3])})")
    return h.loc[:, order]


def consensus_spectra(spectra: pd.DataFrame, family, *, normalize: bool = True) -> pd.DataFrame:
    """Mean spectrum per localization family.

    m_f = (1/|f|) Σ_{g∈f} s_g, with s_g the protein's spectrum divided by its sum
    (``normalize=True``) so that every protein weighs the same.

    Parameters
    ----------
    spectra
        (G, K) spectra (rows = proteins).
    family
        Family of each protein: a Series indexed by protein (aligned by label) or a (G,)
        sequence in row order; proteins with a missing family are left out.

    Returns
    -------
    DataFrame
        (F, K), index = families (sorted, named ``"family"``), columns as ``spectra``.
    """
    s = pd.DataFrame(spectra).astype(np.float64)
    if isinstance(family, pd.Series):
        if not s.index.isin(family.index).all():
            raise DataError("consensus_spectra: family has no entry for some proteins of the spectra")
        fam = family.reindex(s.index)
    else:
        fam = pd.Series(list(family), index=s.index)
        if len(fam) != len(s):
            raise DataError(f"consensus_spectra: {len(fam)} families for {len(s)} proteins")
    if normalize:
        s = normalize_rows(s)
    keep = fam.notna().to_numpy()
    if not keep.any():
        raise DataError("consensus_spectra: no protein has a family")
    out = s[keep].groupby(fam[keep].to_numpy()).mean().sort_index()
    out.index.name = "family"
    return out


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------

def _cluster_strip(ax, clusters_along: np.ndarray, *, label_every: int = 1):
    """Coloured bar of cluster numbers along the x-axis, with roman numerals."""
    from matplotlib import colormaps

    n = int(clusters_along.max())
    cmap = colormaps["tab20"]
    colors = np.array([cmap(((c - 1) * 2) % 20) for c in clusters_along])[None, :, :]  # (1, K, 4)
    ax.imshow(colors, aspect="auto", interpolation="nearest")
    for c in range(1, n + 1):
        where = np.flatnonzero(clusters_along == c)
        if where.size and (c - 1) % label_every == 0:
            ax.text(where.mean(), 0, roman(c), ha="center", va="center", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def spectrum_heatmap(
    spectra: pd.DataFrame,
    order,
    clusters: pd.Series | None = None,
    *,
    row_order=None,
    row_labels=None,
    row_colors: dict | None = None,
    normalize: bool = True,
    vmax_quantile: float = 0.99,
    figsize=(10, 6),
    cmap: str = "viridis",
):
    """Heat map of the feature spectra: proteins × indices in dendrogram order.

    Parameters
    ----------
    spectra
        (G, K) spectra or histograms (rows = proteins).
    order
        Index order (a :class:`Bicluster` also gives ``clusters`` and ``row_order``).
    clusters
        Cluster of each index (drawn as a coloured strip on top, with white lines at the
        boundaries); default from ``order`` when it is a :class:`Bicluster`.
    row_order
        Order of the proteins (default: the Bicluster's ``row_order``, else as given).
    row_labels
        Per-protein label (Series by protein or sequence in row order), e.g. the family, drawn
        as a coloured strip on the left with a legend.
    row_colors
        ``{label: colour}`` for ``row_labels``; default :func:`atlaskit.analysis.atlas.category_colors`.
    normalize
        Divide each row by its sum before plotting.
    vmax_quantile
        Colour scale top at this quantile of the values (a few very frequent indices would
        otherwise wash out the rest).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    s = feature_spectrum(normalize_rows(spectra) if normalize else pd.DataFrame(spectra), order)
    if isinstance(order, Bicluster):
        clusters = order.clusters if clusters is None else clusters
        row_order = order.row_order if row_order is None else row_order
    labels = None
    if row_labels is not None:
        labels = (row_labels.reindex(s.index) if isinstance(row_labels, pd.Series)
                  else pd.Series(list(row_labels), index=s.index))
    if row_order is not None:
        s = s.loc[pd.Index(row_order)]
        labels = labels.loc[s.index] if labels is not None else None
    values = s.to_numpy()
    vmax = float(np.quantile(values, vmax_quantile)) or float(values.max()) or 1.0

    fig = plt.figure(figsize=figsize)
    grid = fig.add_gridspec(2, 3, width_ratios=[0.02 if labels is not None else 0.0001, 1, 0.02],
                            height_ratios=[0.04, 1], wspace=0.02, hspace=0.02)
    ax = fig.add_subplot(grid[1, 1])
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=vmax)
    ax.set_xlabel("codebook index (dendrogram order)")
    ax.set_yticks([])
    fig.colorbar(image, cax=fig.add_subplot(grid[1, 2]), label="fraction of positions" if normalize else "count per image")
    if clusters is not None:
        along = pd.Series(clusters).reindex(s.columns).to_numpy()
        if np.isnan(along.astype(float)).any():
            raise DataError("spectrum_heatmap: clusters lack some indices of the order")
        along = along.astype(int)
        _cluster_strip(fig.add_subplot(grid[0, 1], sharex=ax), along)
        for b in np.flatnonzero(along[1:] != along[:-1]) + 1:
            ax.axvline(b - 0.5, color="white", lw=0.6)
    if labels is not None:
        from atlaskit.analysis.atlas import OTHERS_COLOR, _legend_order, category_colors
        from matplotlib.colors import to_rgba

        text = labels.map(lambda v: "others" if pd.isna(v) else str(v))
        colors = dict(category_colors(text), **(row_colors or {}))
        strip = np.array([to_rgba(colors.get(t, OTHERS_COLOR)) for t in text])[:, None, :]
        side = fig.add_subplot(grid[1, 0], sharey=ax)
        side.imshow(strip, aspect="auto", interpolation="nearest")
        side.set_xticks([])
        side.set_yticks([])
        side.set_ylabel(f"proteins ({len(s)})")
        present = [c for c in _legend_order(list(colors)) if c in set(text)]
        fig.legend(handles=[Patch(color=colors[c], label=c) for c in present], loc="lower center",
                   ncol=min(6, max(1, len(present))), fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.02))
    else:
        ax.set_ylabel(f"proteins ({len(s)})")
    return fig


def consensus_figure(consensus: pd.DataFrame, clusters, *, order=None, figsize=None, color="#4e79a7"):
    """One bar-chart row per family: its consensus spectrum along the index order, with the
    index clusters shaded alternately and labelled I … n on top (as the paper draws them).

    Parameters
    ----------
    consensus
        (F, K) from :func:`consensus_spectra`.
    clusters
        Cluster of each index (Series), or a :class:`Bicluster` (which also gives the order).
    order
        Index order; default the Bicluster's, else the order of ``clusters``' index.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if isinstance(clusters, Bicluster):
        order = clusters.order if order is None else order
        clusters = clusters.clusters
    order = pd.Index(clusters.index) if order is None else _order_of(order)
    c = pd.DataFrame(consensus)
    c = feature_spectrum(c, order)
    along = pd.Series(clusters).reindex(order).to_numpy().astype(int)
    n_rows = len(c)
    fig, axes = plt.subplots(n_rows + 1, 1, sharex=True, squeeze=False,
                             figsize=figsize or (10, 0.7 * n_rows + 0.6),
                             gridspec_kw={"height_ratios": [0.35] + [1] * n_rows, "hspace": 0.08})
    axes = axes[:, 0]
    _cluster_strip(axes[0], along)
    x = np.arange(len(order))
    starts = np.r_[0, np.flatnonzero(along[1:] != along[:-1]) + 1, len(order)]
    for ax, (family, row) in zip(axes[1:], c.iterrows()):
        for i, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            if i % 2:
                ax.axvspan(a - 0.5, b - 0.5, color="0.93", lw=0)
        ax.bar(x, row.to_numpy(), width=1.0, color=color, lw=0)
        ax.set_ylabel(str(family), rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        ax.set_xlim(-0.5, len(order) - 0.5)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlabel("codebook index (dendrogram order)")
    return fig


# ----------------------------------------------------------------------------------------------
# feature zeroing
# ----------------------------------------------------------------------------------------------

def zeroing_difference(
    reconstruct_fn: Callable,
    quantized,
    mask,
    *,
    indices=None,
) -> np.ndarray:
    """What a set of local features contributes to the image: |decode(q) − decode(q with the
    features zeroed)| (the paper's feature-zeroing analysis of the spectrum's clusters).

    With q the (1, C, H, W) quantized local representation and Z ⊂ {positions} the positions to
    zero, q'[:, :, y, x] = 0 for (y, x) ∈ Z and q' = q elsewhere; the result is
    |reconstruct_fn(q) − reconstruct_fn(q')|, element-wise.

    Parameters
    ----------
    reconstruct_fn
        Callable decoding a (1, C, H, W) local representation to an image (e.g. a lambda around
        the cytoself decoder); must be deterministic (model in eval mode). Receives the same
        type as ``quantized`` (numpy array or torch tensor).
    quantized
        (1, C, H, W) quantized local representation (numpy array or torch tensor).
    mask
        Which features to zero, either
        - a boolean position mask of shape (H, W), (1, H, W) or (1, 1, H, W), or
        - a boolean (K,) mask over the codebook ("these indices", e.g. ``clusters == 3``),
          together with ``indices``: the positions whose code is masked are zeroed.
    indices
        (H, W) or (1, H, W) codebook index of each position; required for a (K,) code mask.

    Returns
    -------
    ndarray
        Absolute difference, shape of the reconstruction (zero everywhere if nothing is zeroed).
    """
    is_torch = hasattr(quantized, "detach") and hasattr(quantized, "clone")
    shape = tuple(quantized.shape)
    if len(shape) != 4 or shape[0] != 1:
        raise DataError(f"zeroing_difference needs a (1, C, H, W) representation, got shape {shape}")
    _, _, height, width = shape
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask).astype(bool)
    if indices is not None:
        idx = np.asarray(indices.detach().cpu().numpy() if hasattr(indices, "detach") else indices)
        idx = idx.reshape(height, width) if idx.size == height * width else None
        if idx is None:
            raise DataError(f"zeroing_difference: indices must have {height}×{width} positions")
        if m.ndim != 1:
            raise DataError("zeroing_difference: with indices, mask must be a (K,) mask over the codebook")
        if idx.min() < 0 or idx.max() >= m.size:
            raise DataError(f"zeroing_difference: indices outside the (K={m.size},) code mask")
        positions = m[idx]  # (H, W)
    else:
        if m.size != height * width:
            raise DataError(
                f"zeroing_difference: a position mask needs {height}×{width} entries, got shape {m.shape} "
                "(for a mask over codebook indices pass indices=)"
            )
        positions = m.reshape(height, width)
    keep = ~positions[None, None]  # (1, 1, H, W)

    if is_torch:
        import torch

        with torch.no_grad():
            zeroed = quantized * torch.as_tensor(keep, device=quantized.device, dtype=quantized.dtype)
            full = reconstruct_fn(quantized)
            part = reconstruct_fn(zeroed)
            diff = (full - part).abs()
        return diff.detach().cpu().numpy()
    q = np.asarray(quantized)
    zeroed = q * keep.astype(q.dtype)
    return np.abs(np.asarray(reconstruct_fn(q)) - np.asarray(reconstruct_fn(zeroed)))
