"""Place new images on an existing cytoself atlas (the paper's FAM241A use).

Images of a protein that was not in training are encoded by a trained chapter-01 model (its VQ2
global representation, :func:`~atlaskit.studies.cytoself.embed`), put on the atlas's 2-D map
with ``umap.UMAP.transform``, and compared with the atlas's proteins in the embedding space:
the ``k`` proteins whose mean global vector is nearest to the new protein's mean vector, with
their localization families and each family's share of the ``k`` votes.

The atlas file (:func:`~atlaskit.studies.cytoself.export_atlas`, AnnData) stores the map's
coordinates, not the fitted UMAP object. The UMAP is refitted on the atlas's own features with
the atlas's parameters (15 neighbours, min_dist 0.1, Euclidean, ``random_state`` = the atlas's
seed, as :func:`~atlaskit.studies.cytoself.evaluate` drew it); with a seed umap-learn is
deterministic, so the refit reproduces the stored map, and :attr:`Placement.refit_shift` (the
largest distance between a refitted and a stored atlas point) says whether it did.

Pipeline::

    read_images (an .npz or a cytoself/OpenCell folder) ─┐
    load_run (a chapter-01 run folder) ──► embed ───────┴► place_features(atlas) ──► Placement
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.cytoself.data import CHANNELS

__all__ = ["Placement", "atlas_umap_params", "refit_atlas_umap", "place_features", "place_on_atlas",
           "read_place_images", "load_run", "model_channels", "encode_images", "heldout_images", "placement_figure"]

#: UMAP parameters of the chapter's atlas (:func:`atlaskit.analysis.atlas.umap_embed` defaults).
_UMAP_DEFAULTS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "seed": 0}


@dataclass
class Placement:
    """Where new images land on an atlas.

    Attributes
    ----------
    coords : ndarray
        (M, 2) UMAP coordinates of each new image (``umap.UMAP.transform``).
    center : ndarray
        (2,) median of ``coords``: the protein's place on the map.
    neighbors : DataFrame
        The ``k`` atlas proteins nearest to the new images' mean global vector (Euclidean, in the
        embedding space), nearest first: ``gene``, ``family``, ``distance``, ``images``.
    votes : Series
        Share of the ``k`` neighbours per family (families without one left out), largest first
        (ties by name); a neighbour without a family votes ``"(none)"``.
    refit_shift : float
        Largest distance between the refitted UMAP's atlas points and the stored ones (0 when
        the refit reproduced the map; the map's width gives the scale).
    atlas_coords : ndarray
        (N, 2) the atlas's stored map, for figures.
    atlas_obs : DataFrame
        The atlas's per-image metadata (``gene``, ``family``, …).
    """

    coords: np.ndarray
    center: np.ndarray
    neighbors: pd.DataFrame
    votes: pd.Series
    refit_shift: float
    atlas_coords: np.ndarray = field(repr=False)
    atlas_obs: pd.DataFrame = field(repr=False)

    @property
    def leading(self) -> list[str]:
        """The families with the largest vote share (more than one when the vote is tied)."""
        return [str(f) for f, v in self.votes.items() if np.isclose(v, self.votes.iloc[0])]

    @property
    def family(self) -> str:
        """The family with the largest vote share, or the tied ones as ``"a / b (tie)"``."""
        leading = self.leading
        return leading[0] if len(leading) == 1 else " / ".join(leading) + " (tie)"

    def table(self) -> pd.DataFrame:
        """The neighbour table with each neighbour's family vote share, ranked from 1."""
        out = self.neighbors.copy()
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        out["family share"] = out["family"].fillna("(none)").map(self.votes).to_numpy()
        return out.set_index("rank")

    def summary(self) -> str:
        """One line: images, place on the map, the family vote."""
        votes = ", ".join(f"{f} {v:.0%}" for f, v in self.votes.items())
        return (f"{len(self.coords)} image(s) placed at ({self.center[0]:.2f}, {self.center[1]:.2f}); "
                f"{len(self.neighbors)} nearest proteins: {votes}")


def _atlas(atlas):
    """An AnnData atlas from a path or an AnnData."""
    from atlaskit.analysis.atlas import read_atlas_h5ad

    if isinstance(atlas, (str, os.PathLike)):
        return read_atlas_h5ad(atlas)
    if not hasattr(atlas, "obsm") or "X_umap" not in getattr(atlas, "obsm", {}):
        raise DataError("the atlas must be an .h5ad path or an AnnData with obsm['X_umap'] "
                        "(written by atlaskit.studies.cytoself.export_atlas)")
    return atlas


def atlas_umap_params(atlas) -> dict[str, Any]:
    """UMAP parameters of an atlas: ``uns["umap"]["params"]`` when stored (scanpy's layout,
    written by :func:`~atlaskit.analysis.atlas.export_atlas_h5ad`: ``random_state`` is the
    seed; a flat ``uns["umap"]`` of older files is read too), else the chapter's defaults with
    ``uns["seed"]`` as the seed (the chapter draws the exported map with the run seed)."""
    a = _atlas(atlas)
    params = dict(_UMAP_DEFAULTS)
    if "seed" in a.uns:
        params["seed"] = int(a.uns["seed"])
    stored = dict(a.uns.get("umap", {}))
    stored = dict(stored.get("params", stored))
    if "random_state" in stored:
        stored.setdefault("seed", stored["random_state"])
    params.update({k: v for k, v in stored.items() if k in params})
    params["n_neighbors"], params["seed"] = int(params["n_neighbors"]), int(params["seed"])
    params["min_dist"], params["metric"] = float(params["min_dist"]), str(params["metric"])
    return params


def refit_atlas_umap(atlas):
    """Refit the atlas's UMAP on its features (deterministic with the atlas's seed).

    Returns
    -------
    reducer : umap.UMAP
        Fitted; ``reducer.transform`` places new features.
    shift : float
        Largest distance between the refitted and the stored atlas coordinates.
    """
    import umap

    a = _atlas(atlas)
    x = np.asarray(a.X, dtype=np.float32)
    p = atlas_umap_params(a)
    if x.shape[0] < p["n_neighbors"] + 1:
        raise DataError(f"the atlas has {x.shape[0]} images, too few for a UMAP with {p['n_neighbors']} neighbours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a seed disables parallelism: that is the point of the seed
        reducer = umap.UMAP(n_neighbors=p["n_neighbors"], min_dist=p["min_dist"], metric=p["metric"],
                            n_components=2, random_state=p["seed"]).fit(x)
    stored = np.asarray(a.obsm["X_umap"], dtype=np.float64)
    shift = float(np.linalg.norm(np.asarray(reducer.embedding_, dtype=np.float64) - stored, axis=1).max())
    return reducer, shift


def place_features(features: np.ndarray, atlas, *, k: int = 10, reducer=None) -> Placement:
    """Place global feature vectors of new images (one protein) on an atlas.

    Parameters
    ----------
    features
        (M, D) global vectors of the new images (D = the atlas's ``X`` width), or (M, ...)
        flattened to that.
    atlas
        ``.h5ad`` path or AnnData (:func:`~atlaskit.studies.cytoself.export_atlas`): ``X``,
        ``obsm["X_umap"]``, ``obs["gene"]`` and ``obs["family"]``.
    k
        Nearest atlas proteins listed (fewer when the atlas has fewer).
    reducer
        A fitted UMAP of this atlas (:func:`refit_atlas_umap`) to reuse; default: refitted here.

    Raises
    ------
    ParameterError
        ``k`` not a positive integer.
    DataError
        No images, features of the wrong width, non-finite values, an atlas without genes.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer, not {k!r}")
    a = _atlas(atlas)
    x_atlas = np.asarray(a.X, dtype=np.float32)
    f = np.asarray(features)
    if f.ndim < 2 or f.shape[0] == 0:
        raise DataError(f"place_features needs (M, D) features of at least one image, got shape {f.shape}")
    f = f.reshape(f.shape[0], -1).astype(np.float32)
    if f.shape[1] != x_atlas.shape[1]:
        raise DataError(f"the new images' features have {f.shape[1]} values, the atlas's {x_atlas.shape[1]}: "
                        "they come from another model than the one that drew the atlas")
    if not np.isfinite(f).all():
        raise DataError("the new images' features contain NaN or infinite values")
    if "gene" not in a.obs.columns:
        raise DataError("the atlas has no obs['gene'] column (not a cytoself atlas)")
    shift = None
    if reducer is None:
        reducer, shift = refit_atlas_umap(a)
    if shift is None:
        shift = float(np.linalg.norm(np.asarray(reducer.embedding_, dtype=np.float64)
                                     - np.asarray(a.obsm["X_umap"], dtype=np.float64), axis=1).max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords = np.asarray(reducer.transform(f), dtype=np.float64)
    genes = a.obs["gene"].astype(str).to_numpy()
    families = (a.obs["family"].astype(object).to_numpy() if "family" in a.obs.columns
                else np.full(len(genes), None, dtype=object))
    centroids = pd.DataFrame(x_atlas).groupby(genes, sort=True).mean()
    family_of = pd.Series(families, index=genes).groupby(level=0).first().reindex(centroids.index)
    count = pd.Series(genes).value_counts().reindex(centroids.index)
    dist = np.linalg.norm(centroids.to_numpy(dtype=np.float64) - f.mean(axis=0, dtype=np.float64), axis=1)
    order = np.lexsort((centroids.index.to_numpy(), dist))[:int(k)]  # ties by gene name
    fam = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in family_of.iloc[order]]
    neighbors = pd.DataFrame({"gene": centroids.index[order].to_numpy(), "family": fam, "distance": dist[order],
                              "images": count.iloc[order].to_numpy()})
    share = pd.Series([f or "(none)" for f in fam]).value_counts(normalize=True)
    ranked = sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))  # largest share first, ties by name
    votes = pd.Series([v for _, v in ranked], index=[n for n, _ in ranked], name="share", dtype=float)
    return Placement(coords=coords, center=np.median(coords, axis=0), neighbors=neighbors, votes=votes,
                     refit_shift=shift, atlas_coords=np.asarray(a.obsm["X_umap"], dtype=np.float64),
                     atlas_obs=a.obs.copy())


def model_channels(model) -> tuple[int, ...]:
    """Store channels (:data:`~atlaskit.studies.cytoself.CHANNELS`) a model reads, from its
    config: protein + nucleus distance (0, 1), protein + raw nucleus (0, 2), or protein (0,)."""
    config = model.config
    if not config.use_nucleus:
        return (0,)
    return (0, 1) if config.nucleus_distance else (0, 2)


def _model_input(model, images: np.ndarray) -> np.ndarray:
    """Images in the model's channels: (M, 3, S, S) in the store's order, or (M, C, S, S) as the model reads."""
    x = np.asarray(images)
    size = int(model.config.image_size)
    c_in = int(model.config.in_channels)
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(f"images must be shaped (N, C, {size}, {size}) with N >= 1, got {x.shape}")
    if tuple(x.shape[2:]) != (size, size):
        raise DataError(f"images must be {size} × {size} crops (the model's input), got {x.shape[2]} × {x.shape[3]}")
    if x.shape[1] == len(CHANNELS):
        x = x[:, list(model_channels(model))]
    elif x.shape[1] != c_in:
        raise DataError(f"images have {x.shape[1]} channels; the model reads {c_in} "
                        f"(or give the chapter's {len(CHANNELS)}: {', '.join(CHANNELS)})")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError("images contain NaN or infinite values")
    return x


def place_on_atlas(model, atlas, images: np.ndarray, *, k: int = 10, reducer=None, batch_size: int = 128
                   ) -> Placement:
    """Encode images of one protein with a trained chapter-01 model and place them on an atlas.

    Parameters
    ----------
    model
        A :class:`~atlaskit.models.cytoself.CytoselfModel` or a run of
        :func:`~atlaskit.studies.cytoself.train_variants` (its ``.model``): the model that drew
        the atlas.
    atlas
        ``.h5ad`` path or AnnData (:func:`~atlaskit.studies.cytoself.export_atlas`).
    images
        (M, 3, 100, 100) crops with the chapter's channels (:data:`CHANNELS`: protein, nucleus
        distance, raw nucleus; the model's channels are taken) or (M, C, 100, 100) with exactly
        the model's C input channels.
    k, reducer
        As for :func:`place_features`.

    Raises
    ------
    DataError
        No images, wrong shape or channels, non-finite values, a model that did not draw the atlas.
    """
    return place_features(encode_images(model, images, batch_size=batch_size), atlas, k=k, reducer=reducer)


def encode_images(model, images: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """Global vectors (M, D) float32 of images encoded by a trained chapter-01 model.

    ``model`` and ``images`` as for :func:`place_on_atlas` (the chapter's 3 channels or exactly
    the model's own); raises DataError for a wrong shape, wrong channels or non-finite values.
    """
    import torch

    from atlaskit.studies.cytoself.evaluation import embed

    model = getattr(model, "model", model)
    x = _model_input(model, images)
    return embed(model, _ArrayDataset(torch.from_numpy(x)), batch_size=batch_size).global_


class _ArrayDataset:
    """The minimal dataset :func:`embed` reads: items ``(image, 0)``, ``indices`` and ``transform``."""

    def __init__(self, x):
        self.x = x
        self.indices = np.arange(len(x))
        self.transform = None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


def read_place_images(path) -> tuple[np.ndarray, str]:
    """Images of one protein from an ``.npz`` or a cytoself/OpenCell folder.

    An ``.npz`` holds ``images`` (N, C, 100, 100) (C = 3 in :data:`CHANNELS` order, or the
    model's own channels). A folder is in the public cytoself format (``<name>_pro.npy``,
    ``_nuc.npy``, ``_nucdist.npy``, ``_label.npy``), read as the chapter reads real data
    (distance × 0.01, the raw nucleus min-max scaled); it must hold exactly one protein.

    Returns
    -------
    images : ndarray
        (N, C, 100, 100) float32.
    name : str
        The protein's name (the folder's file prefix, or the ``.npz`` file's stem).

    Raises
    ------
    DataError
        A missing path, an empty folder, a folder of several proteins, an unreadable ``.npz``
        or one without ``images``.
    """
    from atlaskit.data.readers import opencell_proteins
    from atlaskit.studies.cytoself.data import _real_batches

    p = Path(path)
    if p.is_dir():
        genes = opencell_proteins(p)
        if not genes:
            raise DataError(f"{p}: no images (no <name>_label.npy files of the cytoself format)")
        if len(genes) > 1:
            raise DataError(f"{p}: holds {len(genes)} proteins ({', '.join(genes[:5])}); place one protein at a time")
        parts = [b for b, _ in _real_batches(p, genes, None, None)]
        return np.concatenate(parts).astype(np.float32), genes[0]
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder (expected an .npz with 'images' or a cytoself-format folder)")
    if p.suffix.lower() != ".npz":
        raise DataError(f"{p}: expected an .npz file with 'images' (N, C, 100, 100) or a cytoself-format folder")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "images" not in z.files:
                raise DataError(f"{p}: no 'images' array (it has {z.files})")
            x = np.asarray(z["images"], dtype=np.float32)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{p}: unreadable .npz file ({exc})") from None
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(f"{p}: images must be shaped (N, C, 100, 100) with N >= 1, got {x.shape}")
    return x, p.stem


def load_run(run_dir):
    """The best-validation model of a chapter-01 run folder (``best.pt``, else ``last.pt``).

    Raises
    ------
    DataError
        A missing folder or checkpoint, or a checkpoint that is not a cytoself run.
    """
    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.models.cytoself_config import CytoselfConfig
    from atlaskit.train import load_checkpoint

    folder = Path(run_dir)
    if folder.is_file():
        path = folder
    else:
        if not folder.is_dir():
            raise DataError(f"{folder}: no such run folder (chapter 01 writes them under _build/runs/01_cytoself)")
        path = next((folder / n for n in ("best.pt", "last.pt") if (folder / n).is_file()), None)
        if path is None:
            raise DataError(f"{folder}: no best.pt or last.pt (not a finished chapter-01 run)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an older checkpoint without checksum: still loaded
        ckpt = load_checkpoint(path)
    config: Mapping = (ckpt.get("config") or {}).get("model") or {}
    if "model" not in config:
        raise DataError(f"{path}: not a cytoself run (its checkpoint has no cytoself model config)")
    try:
        model = CytoselfModel(CytoselfConfig.from_dict(config["model"]))
        model.load_state_dict(ckpt["model"])
    except (ParameterError, ValueError, TypeError, RuntimeError) as exc:  # another study's model config
        raise DataError(f"{path}: not a cytoself run ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model


def heldout_images(heldout, gene: str) -> np.ndarray:
    """(M, 3, 100, 100) float32 images of one held-out protein
    (:func:`~atlaskit.studies.cytoself.build_heldout`), in the chapter's channels.

    Raises
    ------
    DataError
        ``gene`` is not among the held-out proteins.
    """
    rows = np.flatnonzero(heldout.meta["protein"].astype(str).to_numpy() == str(gene))
    if rows.size == 0:
        raise DataError(f"{gene!r} is not a held-out protein; they are: {', '.join(heldout.proteins['gene'])}")
    return np.stack([np.asarray(heldout.store[int(r)], dtype=np.float32) for r in rows])


def placement_figure(placement: Placement, name: str, *, family: str | None = None):
    """The atlas coloured by family with the placed images drawn on top (black stars) and lines
    from their place to the nearest proteins' images (plotly)."""
    import plotly.graph_objects as go

    from atlaskit.analysis.atlas import atlas_figure

    fig = atlas_figure(placement.atlas_coords, placement.atlas_obs, color="family", hover=("gene", "family"),
                       marker_size=6, title=f"{name} placed on the atlas (nearest proteins outlined)")
    genes = placement.atlas_obs["gene"].astype(str).to_numpy()
    near = np.isin(genes, placement.neighbors["gene"].astype(str).to_numpy())
    fig.add_trace(go.Scatter(x=placement.atlas_coords[near, 0], y=placement.atlas_coords[near, 1], mode="markers",
                             name=f"{len(placement.neighbors)} nearest proteins",
                             marker={"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1.5}},
                             text=genes[near], hovertemplate="%{text}<extra></extra>"))
    label = f"{name}" + (f" ({family})" if family else "")
    fig.add_trace(go.Scatter(x=placement.coords[:, 0], y=placement.coords[:, 1], mode="markers", name=label,
                             marker={"symbol": "star", "size": 14, "color": "black",
                                     "line": {"color": "white", "width": 1}},
                             hovertemplate=f"{label}<extra></extra>"))
    fig.update_layout(height=620)
    return fig
