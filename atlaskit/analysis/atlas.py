"""The cytoself localization atlas: UMAP of the global representation, the clustering score,
an AnnData export, an interactive atlas figure and the "orphan protein" localization.

Model-agnostic, pure functions on numpy arrays and pandas tables (chapter 01 feeds them the VQ2
global representation of the trained model; any (N, D) feature matrix works).

Sources
-------
Kobayashi, Cheveralls, Leonetti & Royer (2022), *Self-supervised deep learning encodes
high-resolution features of protein subcellular localization*, Nature Methods 19:995–1003 (and
bioRxiv 10.1101/2021.03.29.437595), and its public code, github.com/royerlab/cytoself:
``cytoself/analysis/base.py`` (UMAP with 15 neighbours, min_dist 0.1, Euclidean, on the
flattened global representation), ``cytoself/analysis/utils/cluster_score.py`` and
``cytoself/analysis/plot_umap.py`` (the clustering score; see :func:`clustering_score` for the
formula and where this implementation differs on purpose).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError

#: Colour of each coarse localization family (:data:`atlaskit.data.catalogs.FAMILIES`), fixed so
#: that every figure of the book colours a family the same way (Tableau-like, colour-blind aware
#: ordering of hues: nuclear families blue/teal/purple, cytoplasmic organelles warm).
FAMILY_COLORS: dict[str, str] = {
    "nucleoplasm": "#1f77b4",
    "nucleolus": "#17becf",
    "chromatin": "#393b79",
    "nuclear membrane": "#9467bd",
    "cytoplasm": "#bcbd22",
    "ER": "#2ca02c",
    "Golgi": "#d62728",
    "mitochondria": "#ff7f0e",
    "vesicles": "#e377c2",
    "cytoskeleton": "#8c564b",
    "membrane": "#7f7f7f",
    "centrosome": "#000000",
}
#: Colour of points without a label (missing value or the ``"others"`` category), drawn underneath.
OTHERS_COLOR = "#d9d9d9"
#: Extra colours for categories outside :data:`FAMILY_COLORS`, given in sorted order of the names.
_EXTRA_COLORS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)
#: Colours of highlighted complexes (in the order given), distinct from the palettes above.
_COMPLEX_COLORS = (
    "#ffe119", "#00e5ff", "#ff00aa", "#7fff00", "#ff4500", "#8a2be2", "#00ff7f", "#ffd700",
    "#ff1493", "#1e90ff",
)
_OTHERS_NAMES = ("others", "other", "")


# ----------------------------------------------------------------------------------------------
# UMAP
# ----------------------------------------------------------------------------------------------

def umap_embed(
    features: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    seed: int | None = 0,
    **umap_kwargs,
) -> np.ndarray:
    """2-D UMAP of a feature matrix, as the cytoself localization atlas.

    The paper and ``cytoself/analysis/base.py`` use ``umap.UMAP(n_neighbors=15, min_dist=0.1,
    metric="euclidean")`` on the flattened VQ2 global representation; those are the defaults.

    Parameters
    ----------
    features
        (N, D) features, or (N, ...) that are flattened to (N, D) (e.g. the (N, 576, 4, 4)
        global representation).
    n_neighbors, min_dist, metric
        UMAP parameters.
    seed
        ``random_state`` of UMAP: with a seed the result is reproducible bit for bit (umap-learn
        then runs single-threaded); ``None`` lets it run in parallel, not reproducibly.
    **umap_kwargs
        Passed on to :class:`umap.UMAP` (e.g. ``n_epochs``).

    Returns
    -------
    ndarray
        (N, 2) float32 coordinates.

    Raises
    ------
    DataError
        If there are fewer than ``n_neighbors + 1`` rows or any value is not finite.
    """
    x = np.asarray(features)
    if x.ndim < 2:
        raise DataError(f"umap_embed needs an (N, D) feature matrix, got shape {x.shape}")
    x = x.reshape(x.shape[0], -1).astype(np.float32, copy=False)
    if n_neighbors < 2:
        raise ParameterError(f"umap_embed: n_neighbors must be at least 2, got {n_neighbors}")
    if x.shape[0] < n_neighbors + 1:
        raise DataError(
            f"umap_embed: {x.shape[0]} rows are too few for n_neighbors={n_neighbors}; "
            f"UMAP needs at least n_neighbors + 1 = {n_neighbors + 1} (lower n_neighbors or add data)"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"umap_embed: {rows.size} of {x.shape[0]} rows contain NaN or infinite values "
            f"(first rows: {rows[:5].tolist()})"
        )
    import umap  # slow import (numba); only when needed

    with warnings.catch_warnings():
        # umap-learn warns that a seed disables parallelism: that is the point of the seed.
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
        warnings.filterwarnings("ignore", message=".*random_state.*parallelism.*")
        reducer = umap.UMAP(
            n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, n_components=2,
            random_state=seed, **umap_kwargs,
        )
        embedding = reducer.fit_transform(x)
    return np.asarray(embedding, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# clustering score
# ----------------------------------------------------------------------------------------------

def _class_groups(embedding, labels, ignore, min_size):
    """Validated (N, d) float array, and per kept class: (label, rows of the class)."""
    x = np.asarray(embedding, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"clustering score needs an (N, d) embedding, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("clustering score: the embedding contains NaN or infinite values")
    lab = pd.Series(np.asarray(labels, dtype=object).ravel() if not isinstance(labels, pd.Series)
                    else labels.to_numpy(dtype=object))
    if len(lab) != x.shape[0]:
        raise DataError(f"clustering score: {len(lab)} labels for {x.shape[0]} points")
    keep = lab.notna().to_numpy()
    if ignore is not None:
        ignored = [ignore] if isinstance(ignore, str) or not np.iterable(ignore) else list(ignore)
        keep &= ~lab.isin(ignored).to_numpy()
    codes, uniques = pd.factorize(lab[keep], sort=True)
    rows = np.flatnonzero(keep)
    groups = []
    for k, name in enumerate(uniques):
        members = rows[codes == k]
        if members.size >= min_size:
            groups.append((name, members))
    return x, groups


def clustering_score_table(
    embedding: np.ndarray,
    labels: Sequence,
    *,
    ignore=None,
    min_size: int = 1,
) -> pd.DataFrame:
    """Per-class centroid and spread behind :func:`clustering_score`.

    For each class k with points x_j (rows with label k):

    - centroid c_k = coordinate-wise median of the x_j;
    - spread s_k = median_j ||x_j − c_k||₂ (the "cluster size" of cytoself's
      ``calculate_cluster_centrosize``);
    - nearest: the class whose centroid is closest to c_k, at distance δ_k;
    - separation = δ_k / s_k (> 1: the nearest other centroid lies outside the typical radius).

    Parameters
    ----------
    embedding
        (N, d) coordinates (the 2-D UMAP in the paper).
    labels
        (N,) class of each point; missing values (None/NaN) are left out.
    ignore
        A label or labels to leave out (e.g. ``"others"``).
    min_size
        Classes with fewer points are left out.

    Returns
    -------
    DataFrame
        Indexed by class (sorted): ``n``, ``centroid_0`` … ``centroid_{d-1}``, ``spread``,
        ``nearest``, ``nearest_distance``, ``separation``.
    """
    x, groups = _class_groups(embedding, labels, ignore, min_size)
    if not groups:
        raise DataError("clustering_score_table: no class left (all labels missing or ignored)")
    names = [g[0] for g in groups]
    centroids = np.stack([np.median(x[m], axis=0) for _, m in groups])  # (K, d)
    spreads = np.array([np.median(np.linalg.norm(x[m] - c, axis=1)) for (_, m), c in zip(groups, centroids)])
    table = pd.DataFrame({"n": [m.size for _, m in groups]}, index=pd.Index(names, name="class"))
    for axis in range(x.shape[1]):
        table[f"centroid_{axis}"] = centroids[:, axis]
    table["spread"] = spreads
    if len(groups) > 1:
        dist = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)  # (K, K)
        np.fill_diagonal(dist, np.inf)
        nearest = dist.argmin(axis=1)
        table["nearest"] = [names[i] for i in nearest]
        table["nearest_distance"] = dist[np.arange(len(names)), nearest]
    else:
        table["nearest"] = None
        table["nearest_distance"] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        table["separation"] = table["nearest_distance"] / table["spread"]
    return table


def clustering_score(
    embedding: np.ndarray,
    labels: Sequence,
    *,
    ignore=None,
    min_size: int = 1,
    inter: Literal["pooled", "flat"] = "pooled",
) -> float:
    """The cytoself clustering score: spread of class centroids over the typical class size.

    With the per-class centroid c_k (coordinate-wise median) and spread s_k (median distance of
    the class's points to c_k) of :func:`clustering_score_table`, over the K kept classes in d
    dimensions::

        σ_intra = median_k s_k
        σ_inter = sqrt( 1/(K·d) · Σ_k ||c_k − c̄||² ),   c̄ = (1/K) Σ_k c_k
        score   = σ_inter / σ_intra

    i.e. σ_inter is the (population) standard deviation of the centroid coordinates, each axis
    around its own mean, pooled over the d axes. High scores mean compact classes far apart.

    Source: the paper's Methods ("clustering score": ratio of the inter-cluster to the
    intra-cluster standard deviation, computed with medians for robustness to outliers) and the
    public code — ``calculate_cluster_centrosize`` in ``cytoself/analysis/utils/cluster_score.py``
    (median centroid, median Euclidean distance to it as cluster size) and ``plot_umap.py``
    (``intra = median(cluster sizes)``, ``inter = np.std(centroid matrix)``, score = inter/intra).

    One deliberate difference: the public code takes ``np.std`` of the flattened (K, 2) centroid
    matrix, around a single grand mean of *all* coordinates, so its value changes when the
    embedding is translated along one axis (UMAP's origin is arbitrary). ``inter="pooled"`` (the
    default) centres each axis on its own mean, which makes the score invariant to translation,
    uniform scaling, axis permutations/reflections and relabelling. ``inter="flat"`` reproduces the
    public code exactly; the two agree whenever the centroid means are equal on every axis.
    The coordinate-wise median makes the score invariant to an arbitrary rotation only
    approximately (exactly for multiples of 90°).

    Parameters
    ----------
    embedding
        (N, d) coordinates; the paper scores the 2-D UMAP.
    labels
        (N,) class of each point (organelle family, protein complex, …); missing values skipped.
    ignore
        A label or labels to leave out (the public code leaves out ``"others"``).
    min_size
        Classes with fewer points are left out.
    inter
        ``"pooled"`` (default) or ``"flat"`` (public-code formula), see above.

    Returns
    -------
    float
        The score; ``inf`` when every kept class has zero spread but the centroids differ.

    Raises
    ------
    DataError
        Fewer than two classes after leaving out missing/ignored labels, or a malformed input.
    """
    if inter not in ("pooled", "flat"):
        raise ParameterError(f"clustering_score: inter must be 'pooled' or 'flat', got {inter!r}")
    table = clustering_score_table(embedding, labels, ignore=ignore, min_size=min_size)
    if len(table) < 2:
        raise DataError(
            f"clustering_score needs at least two classes, got {len(table)} "
            f"({list(table.index)!r}); a score compares classes with each other"
        )
    centroids = table.filter(like="centroid_").to_numpy()  # (K, d)
    if inter == "pooled":
        sigma_inter = float(np.sqrt(np.mean((centroids - centroids.mean(axis=0)) ** 2)))
    else:
        sigma_inter = float(np.std(centroids))
    sigma_intra = float(np.median(table["spread"]))
    if sigma_intra == 0:
        return float("inf") if sigma_inter > 0 else float("nan")
    return sigma_inter / sigma_intra


# ----------------------------------------------------------------------------------------------
# AnnData export
# ----------------------------------------------------------------------------------------------

#: :func:`umap_embed`'s parameters (and umap-learn's ``spread``), the defaults of an atlas's UMAP.
UMAP_DEFAULTS: dict = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "seed": 0, "spread": 1.0}


def umap_curve_params(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """``(a, b)`` of the curve 1 / (1 + a·d^(2b)) that umap-learn fits to ``min_dist`` and
    ``spread`` (``umap.umap_.find_ab_params``, the values scanpy stores in ``uns["umap"]``)."""
    from umap.umap_ import find_ab_params  # the same fit umap-learn ran when it drew the map

    a, b = find_ab_params(float(spread), float(min_dist))
    return float(a), float(b)


def scanpy_umap_params(params: Mapping) -> dict:
    """``uns["umap"]["params"]`` for UMAP parameters (:data:`UMAP_DEFAULTS` names; ``seed`` or
    ``random_state``): scanpy's ``a``, ``b`` and ``random_state`` beside umap-learn's names.

    Raises
    ------
    ParameterError
        A parameter :func:`umap_embed` does not take.
    """
    given = dict(params)
    if "random_state" in given:
        given.setdefault("seed", given.pop("random_state"))
    unknown = sorted(set(given) - set(UMAP_DEFAULTS))
    if unknown:
        raise ParameterError(f"umap_params: unknown parameter(s) {unknown}; known: {sorted(UMAP_DEFAULTS)}")
    p = {**UMAP_DEFAULTS, **given}
    a, b = umap_curve_params(p["min_dist"], p["spread"])
    out = {"a": a, "b": b, "n_neighbors": int(p["n_neighbors"]), "min_dist": float(p["min_dist"]),
           "spread": float(p["spread"]), "metric": str(p["metric"])}
    if p["seed"] is not None:  # left out for an unseeded map (there is no value to repeat it with)
        out["random_state"] = int(p["seed"])
    return out


def export_atlas_h5ad(
    path,
    *,
    global_features: np.ndarray,
    umap: np.ndarray,
    obs: pd.DataFrame | None = None,
    local_features: np.ndarray | None = None,
    uns: Mapping | None = None,
    umap_params: Mapping | None = None,
    color_keys: Sequence[str] | None = None,
    var_prefix: str = "global_",
    compression: str | None = "gzip",
) -> Path:
    """Write the atlas as an AnnData ``.h5ad`` file (readable by scanpy, cellxgene, …).

    Layout: ``X`` = global representation (N, D) as float32, var names ``global_0`` …;
    ``obsm["X_umap"]`` = (N, 2) UMAP (scanpy's key, so ``sc.pl.umap`` works);
    ``obsm["local"]`` = local representation flattened to (N, prod(rest)) with its original
    per-image shape in ``uns["atlaskit"]["local_shape"]`` (see :func:`atlas_local`);
    ``obs`` = per-image metadata (gene, family, split, …), text columns as pandas categoricals;
    ``uns`` = your dict (parameters, scores, …) plus ``uns["atlaskit"]``.

    For scanpy (not a dependency) the file also carries, in scanpy's own layout:

    - ``uns["umap"]["params"]``: the UMAP's ``a`` and ``b`` (the curve umap-learn fits to
      ``min_dist``, :func:`umap_curve_params`) as ``sc.tl.umap`` writes them, plus what drew the
      map, under umap-learn's names: ``n_neighbors``, ``min_dist``, ``spread``, ``metric`` and
      ``random_state`` (absent when the map was drawn without a seed). No ``uns["neighbors"]``
      is written: scanpy reads that entry as a stored neighbour graph, which the file does not hold.
    - ``uns["<key>_colors"]`` for each column of ``color_keys``: the book's colour of each
      category (:func:`category_colors`), in the order of ``obs[key].cat.categories``, so that
      ``sc.pl.umap(adata, color="family")`` draws the book's atlas colours. Missing values are
      no category (scanpy draws them grey).

    The file is written to a temporary name beside ``path`` and renamed over it, so a reader
    never sees a half-written atlas.

    Parameters
    ----------
    path
        Destination ``.h5ad`` file; parent folders are created.
    global_features
        (N, D) or (N, ...) global features (flattened to (N, D)).
    umap
        (N, 2) coordinates.
    obs
        Per-image table with N rows; its index (stringified) becomes the obs names. Default: an
        empty table indexed ``"0"`` … ``"N-1"``.
    local_features
        Optional (N, ...) local representation (features or VQ1 indices), dtype kept.
    uns
        Optional dict of values anndata can store (numbers, strings, arrays, lists, nested dicts).
    umap_params
        The parameters that drew ``umap`` (:func:`umap_embed`'s ``n_neighbors``, ``min_dist``,
        ``metric``, ``seed``; missing ones take its defaults, ``seed=None`` means unseeded);
        ``None`` writes no ``uns["umap"]``.
    color_keys
        ``obs`` columns that get ``uns["<key>_colors"]`` (stored as categoricals); a named
        column that is missing is an error. Default: ``"family"`` when ``obs`` has it.
    compression
        h5py compression of the arrays (``None`` for speed).

    Returns
    -------
    Path
        The written file.
    """
    import anndata as ad

    path = Path(path)
    x = np.asarray(global_features)
    if x.ndim < 2:
        raise DataError(f"export_atlas_h5ad: global_features must be (N, D), got shape {x.shape}")
    x = x.reshape(x.shape[0], -1).astype(np.float32, copy=False)
    n = x.shape[0]
    coords = np.asarray(umap, dtype=np.float32)
    if coords.shape != (n, 2):
        raise DataError(f"export_atlas_h5ad: umap must have shape ({n}, 2), got {coords.shape}")
    if obs is None:
        obs = pd.DataFrame(index=pd.RangeIndex(n))
    if len(obs) != n:
        raise DataError(f"export_atlas_h5ad: obs has {len(obs)} rows for {n} images")
    obs = obs.copy()
    obs.index = obs.index.map(str)
    if obs.index.has_duplicates:
        raise DataError("export_atlas_h5ad: the obs index (image names) has duplicates")
    for column in obs.columns:  # anndata cannot write object columns mixing strings and NaN/None
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("string").astype(object).where(obs[column].notna(), None)
            obs[column] = pd.Categorical(obs[column])
    obs.columns = obs.columns.map(str)
    if color_keys is None:
        color_keys = ["family"] if "family" in obs.columns else []
    keys = [color_keys] if isinstance(color_keys, str) else [str(k) for k in color_keys]
    missing = [k for k in keys if k not in obs.columns]
    if missing:
        raise DataError(f"export_atlas_h5ad: color_keys {missing} are not obs columns; obs has {list(obs.columns)}")
    for key in keys:  # a colour per category needs categories (numbers and strings alike)
        if not isinstance(obs[key].dtype, pd.CategoricalDtype):
            obs[key] = pd.Categorical(obs[key].map(lambda v: None if pd.isna(v) else str(v)))
    var = pd.DataFrame(index=[f"{var_prefix}{i}" for i in range(x.shape[1])])
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.obsm["X_umap"] = coords
    meta: dict = {"global_shape": list(np.asarray(global_features).shape[1:])}
    if local_features is not None:
        local = np.asarray(local_features)
        if local.ndim < 2 or local.shape[0] != n:
            raise DataError(f"export_atlas_h5ad: local_features must be ({n}, ...), got shape {local.shape}")
        meta["local_shape"] = list(local.shape[1:])
        adata.obsm["local"] = local.reshape(n, -1)
    adata.uns.update(dict(uns or {}))
    adata.uns["atlaskit"] = meta
    if umap_params is not None:
        adata.uns["umap"] = {"params": scanpy_umap_params(umap_params)}
    for key in keys:
        colors = category_colors(obs[key].cat.categories)
        adata.uns[f"{key}_colors"] = [colors[str(c)] for c in obs[key].cat.categories]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.h5ad")
    try:
        adata.write_h5ad(tmp, compression=compression)
        os.replace(tmp, path)
    except Exception as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, (OSError, DataError)):
            raise
        raise DataError(f"export_atlas_h5ad: could not write {path}: {error}") from error
    return path


def read_atlas_h5ad(path):
    """Read an atlas written by :func:`export_atlas_h5ad` (an :class:`anndata.AnnData`).

    Raises
    ------
    DataError
        If the file does not exist, is not an h5ad file or has no ``obsm["X_umap"]``.
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise DataError(f"read_atlas_h5ad: no file at {path}")
    try:
        adata = ad.read_h5ad(path)
    except Exception as error:
        raise DataError(f"read_atlas_h5ad: {path} is not a readable .h5ad file: {error}") from error
    if "X_umap" not in adata.obsm:
        raise DataError(f"read_atlas_h5ad: {path} has no obsm['X_umap']; not an atlaskit atlas")
    return adata


def atlas_local(adata) -> np.ndarray | None:
    """The local representation of an atlas with its per-image shape restored: (N, ...) or None."""
    if "local" not in adata.obsm:
        return None
    local = np.asarray(adata.obsm["local"])
    shape = adata.uns.get("atlaskit", {}).get("local_shape")
    return local.reshape(local.shape[0], *[int(s) for s in shape]) if shape is not None else local


# ----------------------------------------------------------------------------------------------
# interactive atlas figure
# ----------------------------------------------------------------------------------------------

def category_colors(categories) -> dict[str, str]:
    """A colour for each category: :data:`FAMILY_COLORS` for the families, grey for "others",
    and fixed colours in sorted-name order for anything else (so a category keeps its colour
    across figures that show the same set)."""
    names = [str(c) for c in pd.unique(pd.Series(list(categories), dtype=object).dropna())]
    colors = {}
    extra = sorted(c for c in names if c not in FAMILY_COLORS and c.lower() not in _OTHERS_NAMES)
    for name in names:
        if name in FAMILY_COLORS:
            colors[name] = FAMILY_COLORS[name]
        elif name.lower() in _OTHERS_NAMES:
            colors[name] = OTHERS_COLOR
    for i, name in enumerate(extra):
        colors[name] = _EXTRA_COLORS[i % len(_EXTRA_COLORS)]
    return colors


def _legend_order(names):
    family_rank = {f: i for i, f in enumerate(FAMILY_COLORS)}
    return sorted(names, key=lambda c: (c.lower() in _OTHERS_NAMES, family_rank.get(c, len(family_rank)), c))


def atlas_figure(
    umap: np.ndarray,
    obs: pd.DataFrame,
    *,
    color: str | None = "family",
    hover: Sequence[str] = ("gene",),
    highlight: Mapping[str, Sequence[str]] | None = None,
    gene_column: str = "gene",
    marker_size: float = 4.0,
    opacity: float = 0.6,
    webgl_threshold: int = 1000,
    title: str | None = None,
):
    """Interactive scatter of the atlas (plotly), one legend entry per category.

    Parameters
    ----------
    umap
        (N, 2) coordinates.
    obs
        N-row table holding the ``color``, ``hover`` and ``gene_column`` columns.
    color
        Column to colour by. A categorical column gets one trace per category with fixed colours
        (:func:`category_colors`; missing values and ``"others"`` are grey and drawn underneath);
        a numeric column with more than 20 distinct values gets a continuous colour scale.
        ``None``: a single grey trace.
    hover
        Columns shown when hovering a point (the gene name by default).
    highlight
        ``{complex name: [gene, …]}``: the points of those genes are drawn again on top as
        larger, black-outlined markers in their own bright colours, one legend entry per
        complex, listed first (the paper highlights protein complexes on its atlas this way).
    gene_column
        Column matched against the genes in ``highlight``.
    webgl_threshold
        At or above this many points the traces use ``Scattergl`` (WebGL) instead of SVG.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    xy = np.asarray(umap, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise DataError(f"atlas_figure needs (N, 2) coordinates, got shape {xy.shape}")
    n = xy.shape[0]
    if len(obs) != n:
        raise DataError(f"atlas_figure: obs has {len(obs)} rows for {n} points")
    hover = [h for h in ([hover] if isinstance(hover, str) else list(hover))]
    needed = [c for c in [color, *hover] if c is not None]
    if highlight:
        needed.append(gene_column)
    missing = [c for c in needed if c not in obs.columns]
    if missing:
        raise DataError(f"atlas_figure: obs has no column(s) {missing}; it has {list(obs.columns)}")
    obs = obs.reset_index(drop=True)
    Scatter = go.Scattergl if n >= webgl_threshold else go.Scatter
    custom = obs[hover].astype(str).to_numpy() if hover else None
    template = "<br>".join(f"{h}: %{{customdata[{i}]}}" for i, h in enumerate(hover))

    def trace(rows, name, **marker):
        marker = {"size": marker_size, "opacity": opacity, **marker}
        return Scatter(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=name,
            customdata=custom[rows] if custom is not None else None,
            hovertemplate=(template + f"<extra>{name}</extra>") if hover else None,
            marker=marker,
        )

    fig = go.Figure()
    values = obs[color] if color is not None else None
    if values is None:
        fig.add_trace(trace(np.arange(n), "images", color=OTHERS_COLOR))
    elif pd.api.types.is_numeric_dtype(values) and values.nunique() > 20:
        fig.add_trace(trace(np.arange(n), str(color), color=values.to_numpy(), colorscale="Viridis",
                            showscale=True, colorbar=dict(title=str(color))))
    else:
        labels = values.map(lambda v: "others" if pd.isna(v) else str(v))
        colors = category_colors(labels)
        order = _legend_order(list(colors))  # families first, "others" last
        # grey categories are added first so that they are drawn underneath
        for name in sorted(order, key=lambda c: c.lower() not in _OTHERS_NAMES):
            rows = np.flatnonzero((labels == name).to_numpy())
            fig.add_trace(trace(rows, name, color=colors[name]))
            fig.data[-1].legendrank = 1000 + order.index(name)

    if highlight:
        genes = obs[gene_column].astype(str)
        for rank, (name, members) in enumerate(highlight.items()):
            rows = np.flatnonzero(genes.isin([str(g) for g in members]).to_numpy())
            fig.add_trace(trace(
                rows, str(name), color=_COMPLEX_COLORS[rank % len(_COMPLEX_COLORS)], size=marker_size * 2.5,
                opacity=1.0, line=dict(color="black", width=1.5),
            ))
            fig.data[-1].legendrank = rank  # complexes on top of the legend
    fig.update_layout(
        title=title, xaxis_title="UMAP 1", yaxis_title="UMAP 2", legend=dict(itemsizing="constant"),
        xaxis=dict(showgrid=False, zeroline=False), yaxis=dict(showgrid=False, zeroline=False),
    )
    return fig


# ----------------------------------------------------------------------------------------------
# orphan proteins
# ----------------------------------------------------------------------------------------------

def localize_by_correlation(profile, consensus: pd.DataFrame) -> pd.Series:
    """Rank localization families by the Pearson correlation of a protein's feature spectrum
    with each family's consensus spectrum (the paper's analysis of "orphan" proteins).

    r_f = Σ_k (p_k − p̄)(m_fk − m̄_f) / sqrt(Σ_k (p_k − p̄)² · Σ_k (m_fk − m̄_f)²)

    for the protein's spectrum p (K,) and the consensus m_f (K,) of family f
    (:func:`atlaskit.analysis.spectra.consensus_spectra`). Scale-free, so raw counts and
    normalised spectra give the same ranking.

    Parameters
    ----------
    profile
        (K,) spectrum: an array in the column order of ``consensus``, or a Series indexed by
        the same codebook indices (aligned by label).
    consensus
        (F, K) table, one row per family.

    Returns
    -------
    Series
        Correlation per family, highest first (named ``"pearson_r"``); NaN for a constant row.
    """
    consensus = pd.DataFrame(consensus)
    if isinstance(profile, pd.Series):
        missing = consensus.columns.difference(profile.index)
        if len(missing):
            raise DataError(f"localize_by_correlation: profile lacks {len(missing)} consensus columns")
        p = profile.reindex(consensus.columns).to_numpy(dtype=np.float64)
    else:
        p = np.asarray(profile, dtype=np.float64).ravel()
    if p.shape[0] != consensus.shape[1]:
        raise DataError(f"localize_by_correlation: profile has {p.shape[0]} values, consensus {consensus.shape[1]} columns")
    if not np.all(np.isfinite(p)) or np.ptp(p) == 0:
        raise DataError("localize_by_correlation: the profile must be finite and not constant")
    m = consensus.to_numpy(dtype=np.float64)  # (F, K)
    pc = p - p.mean()
    mc = m - m.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mc @ pc / np.sqrt((mc**2).sum(axis=1) * (pc**2).sum())
    return pd.Series(r, index=consensus.index, name="pearson_r").sort_values(ascending=False, na_position="last")
