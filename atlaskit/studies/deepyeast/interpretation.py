"""Inside the network (the paper's Fig. 3 and S4): t-SNE maps of layer outputs, the mutual
information between each unit and the class, the input patches that excite single units, the
activation maps of example cells, and the correlation of units with hand-crafted features."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepyeast import LAYER_NAMES
from atlaskit.studies._scaffold import cpu_threads
from atlaskit.studies.deepyeast.training import _device_of, _iter_arrays, network

__all__ = ["embed_layers", "unit_class_information", "layer_information", "receptive_fields",
           "max_activating_patches", "top_unit_patches", "example_cells", "activation_maps",
           "unit_feature_correlation", "strongest_correlations"]


def embed_layers(features: Mapping[str, np.ndarray], *, seed: int = 0, perplexity: float = 30.0,
                 max_iter: int = 1000, threads: int | None = None) -> dict[str, np.ndarray]:
    """2-D t-SNE of each layer's (N, D) features (standardised, PCA to ≤ 50 dimensions first).

    ``max_iter`` is sklearn's number of optimisation iterations (1000 by default; fewer for
    quick runs). The embedding is reproducible for a given ``seed`` and number of ``threads``
    (CPU threads of the OpenMP / BLAS pools while it runs; None leaves them alone).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    out = {}
    with cpu_threads(threads):
        for name, x in features.items():
            x = np.asarray(x, np.float64)
            x = (x - x.mean(0)) / (x.std(0) + 1e-6)
            d = min(50, x.shape[1], x.shape[0] - 1)
            z = PCA(d, random_state=seed).fit_transform(x) if x.shape[1] > d else x
            out[name] = TSNE(2, perplexity=min(perplexity, (len(x) - 1) / 3), init="pca", random_state=seed,
                             learning_rate="auto", max_iter=max_iter).fit_transform(z).astype(np.float32)
    return out


def unit_class_information(acts: np.ndarray, y, *, bins: int = 8) -> np.ndarray:
    """Mutual information (bits) between each unit's activation and the class.

    Activations (N, U) are discretised per unit into ``bins`` equal-count bins (ties share a
    bin); ``I(unit; class) = Σ p(b, c) log2 p(b, c) / (p(b) p(c))``. A constant unit carries 0
    bits; the maximum is the class entropy (log2 12 = 3.58 bits for balanced classes).
    """
    a = np.asarray(acts, np.float64)
    y = np.asarray(y).astype(np.int64)
    if a.ndim != 2 or a.shape[0] != y.size:
        raise DataError(f"acts must be (N, U) with N = len(y) = {y.size}, got {a.shape}")
    n, u = a.shape
    k = int(y.max()) + 1
    ranks = a.argsort(0, kind="stable").argsort(0, kind="stable")
    binned = np.minimum(ranks * bins // n, bins - 1)
    # equal values share the bin of their lowest rank, so a constant unit falls in one bin
    for j in range(u):
        col = a[:, j]
        _, first, inv = np.unique(col, return_index=True, return_inverse=True)
        binned[:, j] = binned[first, j][inv]
    joint = np.zeros((u, bins, k))
    np.add.at(joint, (np.arange(u)[None, :].repeat(n, 0), binned, y[:, None].repeat(u, 1)), 1.0)
    joint /= n
    pb = joint.sum(2, keepdims=True)
    pc = joint.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / (pb * pc)), 0.0)
    return terms.sum((1, 2))


def receptive_fields() -> dict[str, tuple[int, int, float]]:
    """(receptive field size, stride, centre of unit 0) in input pixels for every conv/pool layer.

    A unit at (i, j) of a layer sees the input square of side ``size`` centred at
    ``(centre + i·stride, centre + j·stride)`` (pixel centres at integer + 0.5).
    """
    out = {}
    size, jump, start = 1, 1, 0.5
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            size += 2 * jump
        elif name.startswith("pool"):
            size += jump
            start += 0.5 * jump
            jump *= 2
        else:
            continue
        out[name] = (size, jump, start)
    return out


@torch.no_grad()
def max_activating_patches(model, images: np.ndarray, layer: str, units: Sequence[int], *,
                           top: int = 4, batch_size: int = 256) -> list[list[np.ndarray]]:
    """For each unit, the ``top`` input patches (2, r, r) that activate it most (Fig. 3A).

    Convolutional units are located at their arg-max position and the patch is their receptive
    field (zero outside the crop); fully connected units return the whole crop. Each image
    contributes at most one patch per unit. ``model`` is a DeepYeastNet or a
    :class:`~atlaskit.studies._scaffold.TrainedRun` (then with the run's CPU threads).
    """
    if layer not in LAYER_NAMES:
        raise ParameterError(f"unknown layer {layer!r}; the layers are: {', '.join(LAYER_NAMES)}")
    model, threads = network(model)
    model.eval()
    dev = _device_of(model)
    best_val, best_pos = [], []
    with cpu_threads(threads, dev):
        for x in _iter_arrays(images, None, batch_size):
            t = model.features(x.to(dev), layer)[layer].float().cpu()
            t = t[:, list(units)]
            if t.dim() == 4:
                flat = t.flatten(2)
                v, pos = flat.max(2)
                w = t.shape[-1]
                best_pos.append(torch.stack([pos // w, pos % w], -1))
            else:
                v = t
                best_pos.append(torch.zeros(t.shape + (2,), dtype=torch.long))
            best_val.append(v)
    vals = torch.cat(best_val).numpy()   # (N, U)
    pos = torch.cat(best_pos).numpy()    # (N, U, 2)
    rf = receptive_fields().get(layer)
    s = images.shape[-1]
    out = []
    for j in range(len(units)):
        order = np.argsort(-vals[:, j], kind="stable")[:top]
        patches = []
        for i in order:
            if rf is None:
                patches.append(np.asarray(images[i], np.float32))
                continue
            size, jump, start = rf
            cy, cx = start + pos[i, j, 0] * jump, start + pos[i, j, 1] * jump
            y0, x0 = int(round(cy - size / 2)), int(round(cx - size / 2))
            patch = np.zeros((images.shape[1], size, size), np.float32)
            ys, xs = max(y0, 0), max(x0, 0)
            ye, xe = min(y0 + size, s), min(x0 + size, s)
            patch[:, ys - y0:ye - y0, xs - x0:xe - x0] = images[i, :, ys:ye, xs:xe]
            patches.append(patch)
        out.append(patches)
    return out


def layer_information(features: Mapping[str, np.ndarray], y, *, bins: int = 8,
                      layers: Sequence[str] = LAYER_NAMES) -> pd.DataFrame:
    """:func:`unit_class_information` of every unit of every layer in ``layers`` (Fig. 3D).

    Returns
    -------
    pandas.DataFrame
        ``layer``, ``bits``: one row per unit, layers in the order of ``layers``.
    """
    return pd.concat([pd.DataFrame({"layer": name, "bits": unit_class_information(features[name], y, bins=bins)})
                      for name in layers], ignore_index=True)


def top_unit_patches(model, images: np.ndarray, information: pd.DataFrame, layers: Sequence[str], *,
                     units: int = 3, top: int = 4) -> list[tuple[str, int, list[np.ndarray]]]:
    """The ``top`` patches of the ``units`` most class-informative units of each layer (Fig. 3A).

    ``information`` is :func:`layer_information`'s table; returns ``(layer, unit, patches)`` per
    unit, layer by layer, units by decreasing information.
    """
    out = []
    for name in layers:
        info = information[information["layer"] == name]["bits"].to_numpy()
        chosen = list(np.argsort(-info, kind="stable")[:units])
        for unit, patches in zip(chosen, max_activating_patches(model, images, name, chosen, top=top)):
            out.append((name, int(unit), patches))
    return out


def example_cells(y, probs: np.ndarray, *, n: int = 3) -> np.ndarray:
    """``n`` cells of ``n`` different classes to show the network's activations on (Fig. 3C).

    For every class, its most confidently and correctly called cell; the ``n`` classes whose
    such cell is most confident are kept (ties: lowest index). Returns row indices into ``y``.
    """
    y = np.asarray(y).astype(np.int64)
    pr = np.asarray(probs, np.float64)
    if pr.ndim != 2 or pr.shape[0] != y.size:
        raise DataError(f"probs must be (N, K) with N = len(y) = {y.size}, got {pr.shape}")
    if n < 1:
        raise ParameterError(f"n must be at least 1, not {n}")
    right = pr.argmax(1) == y
    best = []
    for k in np.unique(y[right]):
        rows = np.flatnonzero(right & (y == k))
        i = rows[np.argmax(pr[rows, k])]
        best.append((-pr[i, k], int(i)))
    if len(best) < n:
        raise DataError(f"only {len(best)} classes have a correctly called cell; {n} wanted")
    return np.array([i for _, i in sorted(best)[:n]], dtype=np.int64)


@torch.no_grad()
def activation_maps(model, images: np.ndarray, layers: Sequence[str] = ("conv1_1", "conv1_2", "conv2_1", "conv2_2",
                                                                        "conv3_1", "conv3_2", "conv3_3", "conv3_4"),
                    ) -> dict[str, np.ndarray]:
    """The channel-mean activation map of each convolutional or pooling layer for a few cells (Fig. 3C).

    Parameters
    ----------
    model : DeepYeastNet or TrainedRun
    images : array (N, 2, S, S)
    layers : names of conv / pool layers (spatial outputs)

    Returns
    -------
    dict
        Layer → (N, H, W) float32, the post-ReLU activation averaged over the layer's channels.
    """
    bad = [n for n in layers if n not in LAYER_NAMES or not n.startswith(("conv", "pool"))]
    if bad or not len(layers):
        raise ParameterError(f"activation maps need convolutional or pooling layers, not {bad or list(layers)}")
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise DataError(f"images must be (N, C, S, S), got {x.shape}")
    model, threads = network(model)
    model.eval()
    dev = _device_of(model)
    with cpu_threads(threads, dev):
        out = model.features(torch.from_numpy(x).to(dev), list(layers))
    return {name: t.float().mean(1).cpu().numpy() for name, t in out.items()}


def unit_feature_correlation(units: np.ndarray, features: pd.DataFrame, *, method: str = "pearson") -> pd.DataFrame:
    """Correlation of every network unit with every hand-crafted feature over the same cells (Fig. S4).

    Parameters
    ----------
    units : array (N, U)
        A layer's outputs (e.g. fc1) of N cells.
    features : DataFrame (N, F)
        The hand-crafted features of the same cells, in the same order.
    method : "pearson" or "spearman" (ranks, ties averaged)

    Returns
    -------
    pandas.DataFrame
        (U, F) correlations, rows ``unit 0`` …, columns the feature names; NaN where a unit or a
        feature is constant over the cells (a dead ReLU unit has no correlation).
    """
    from scipy.stats import rankdata

    a = np.asarray(units, np.float64)
    f = np.asarray(features, np.float64)
    if a.ndim != 2 or f.ndim != 2 or a.shape[0] != f.shape[0]:
        raise DataError(f"units (N, U) and features (N, F) must share N cells, got {a.shape} and {f.shape}")
    if a.shape[0] < 3:
        raise DataError(f"a correlation needs at least 3 cells, got {a.shape[0]}")
    if method not in ("pearson", "spearman"):
        raise ParameterError(f"method must be 'pearson' or 'spearman', not {method!r}")
    if not (np.isfinite(a).all() and np.isfinite(f).all()):
        raise DataError("units and features must be finite")
    const_a, const_f = np.ptp(a, axis=0) == 0, np.ptp(f, axis=0) == 0
    if method == "spearman":
        a, f = rankdata(a, axis=0), rankdata(f, axis=0)
    a = a - a.mean(0)
    f = f - f.mean(0)
    na = np.where(const_a, np.nan, np.sqrt((a ** 2).sum(0)))
    nf = np.where(const_f, np.nan, np.sqrt((f ** 2).sum(0)))
    r = np.clip((a.T @ f) / np.outer(na, nf), -1.0, 1.0)
    columns = features.columns if isinstance(features, pd.DataFrame) else [f"feature {j}" for j in range(f.shape[1])]
    return pd.DataFrame(r, index=[f"unit {i}" for i in range(a.shape[1])], columns=list(map(str, columns)))


def strongest_correlations(corr: pd.DataFrame, *, n_units: int = 30, n_features: int = 30) -> pd.DataFrame:
    """The block of :func:`unit_feature_correlation` to show: the ``n_units`` units and
    ``n_features`` features with the largest absolute correlation (ties: first in order)."""
    if n_units < 1 or n_features < 1:
        raise ParameterError(f"n_units and n_features must be at least 1, not {n_units}, {n_features}")
    best = corr.abs()
    units = best.max(1).fillna(-1.0).sort_values(ascending=False, kind="stable").index[:n_units]
    feats = best.max(0).fillna(-1.0).sort_values(ascending=False, kind="stable").index[:n_features]
    return corr.loc[units, feats]
