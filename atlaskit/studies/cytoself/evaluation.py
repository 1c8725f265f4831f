"""Evaluation of the cytoself variants: embeddings of the test images, the UMAP clustering score of
every run, the ablation table, and the code usage of the quantizers."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.cytoself.presets import PAPER_TABLE1_ORDER, VARIANTS
from atlaskit.studies._scaffold import check_count

__all__ = ["Embedding", "embed", "Evaluation", "evaluate", "clustering_scores", "ablation_table", "umap_seed_scores",
           "code_usage"]


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
# the evaluation step of the chapter
# ----------------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    """The runs of an ablation evaluated on one split (:func:`evaluate`).

    Attributes
    ----------
    embeddings : dict
        ``{(variant, repeat): Embedding}`` of the split's images, in store order.
    scores : DataFrame
        ``variant, repeat, score, n_images``: a run's score is the mean over its UMAP seeds.
    umaps : dict
        ``{(variant, repeat): (N, 2) UMAP coordinates}`` of the first seed (the one drawn).
    labels : ndarray
        (N,) localization family of each image (None where the protein has none).
    seed_scores : DataFrame
        ``variant, repeat, umap_seed, score, n_images``: every UMAP's score.
    umap_params : dict
        ``n_neighbors, min_dist, metric, seed`` of the drawn UMAPs (``umaps``), for
        :func:`~atlaskit.studies.cytoself.export_atlas`.
    """

    embeddings: dict
    scores: pd.DataFrame
    umaps: dict
    labels: np.ndarray
    seed_scores: pd.DataFrame
    umap_params: dict = field(default_factory=dict)

    def score(self, variant: str, repeat: int) -> float:
        """The clustering score of one run (mean over its UMAP seeds)."""
        hit = self.scores[(self.scores["variant"] == variant) & (self.scores["repeat"] == int(repeat))]
        if len(hit) != 1:
            raise ParameterError(f"no run ({variant!r}, {repeat}) was evaluated")
        return float(hit["score"].item())


def evaluate(runs: Mapping, data, *, split: str = "test", seed: int = 0, umap_seeds: int = 1, n_neighbors: int = 15,
             min_dist: float = 0.1) -> Evaluation:
    """Encode the ``split`` images with every run (each with its variant's channels) and score
    the UMAPs of each run's global representation by localization family.

    Parameters
    ----------
    runs : dict
        ``{(variant, repeat): VariantRun}`` (:func:`train_variants`).
    data : CytoselfData
    split : str
        The images to evaluate on (the paper: the test images).
    seed : int
        Seed of the first UMAP; the others use ``seed + 1``, ``seed + 2``…
    umap_seeds : int
        UMAPs per run (``preset.umap_seeds``); a run's score is their mean, which removes most
        of the layout's randomness from the comparison of variants.
    n_neighbors, min_dist
        UMAP parameters (:func:`clustering_scores`).
    """
    umap_seeds = check_count("umap_seeds", umap_seeds)
    embeddings = {key: embed(r.model, data.dataset(split, r.variant)) for key, r in runs.items()}
    labels = data.meta["family"].to_numpy()[data.indices(split)]
    per_seed, umaps = [], {}
    for k in range(umap_seeds):
        scores, drawn = clustering_scores(embeddings, labels, n_neighbors=n_neighbors, min_dist=min_dist, seed=seed + k)
        per_seed.append(scores.assign(umap_seed=seed + k))
        if k == 0:
            umaps = drawn
    seed_scores = pd.concat(per_seed, ignore_index=True)[["variant", "repeat", "umap_seed", "score", "n_images"]]
    scores = (seed_scores.groupby(["variant", "repeat"], sort=False)
              .agg(score=("score", "mean"), n_images=("n_images", "first")).reset_index())
    drawn_with = {"n_neighbors": int(n_neighbors), "min_dist": float(min_dist), "metric": "euclidean", "seed": int(seed)}
    return Evaluation(embeddings, scores, umaps, labels, seed_scores, drawn_with)
