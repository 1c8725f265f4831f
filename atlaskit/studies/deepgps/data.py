"""Images of the deepGPS study: the store of (nucleus, protein) pairs of every protein a variant
uses, simulated from the real annotations or read from a folder of real crops, and the dataset
that pairs them with sequence vectors."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.deepgps import CHAPTER
from atlaskit.studies.deepgps.presets import Preset
from atlaskit.studies.deepgps.proteins import VARIANTS, image_proteins

__all__ = ["ImageData", "build_data", "DeepGPSDataset", "model_images"]


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) → (N, C, size, size), bilinear with antialiasing when shrinking."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[-1] == size and t.shape[-2] == size:
        return t.numpy()
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=True).numpy()


def _minmax(x: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 1] of (N, H, W)."""
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)


def model_images(protein: np.ndarray, nucleus: np.ndarray, size: int) -> np.ndarray:
    """Stack (N, 2, size, size) = (nucleus, protein), each min-max normalised to [0, 1]."""
    both = _resize(np.stack([nucleus, protein], axis=1), size)  # (N, 2, S, S)
    return np.stack([_minmax(both[:, 0]), np.clip(_minmax(both[:, 1]), 0, 1)], axis=1)


def model_input(image: np.ndarray, size: int) -> np.ndarray:
    """One 2-D image (H, W) as a model input: (size, size) float32, resized, min-max scaled to [0, 1]."""
    img = _resize(np.asarray(image, dtype=np.float32)[None, None], size)[0, 0]
    return _minmax(img[None])[0]


@dataclass
class ImageData:
    """The image store of the chapter and where each protein's images are.

    Attributes
    ----------
    store : ArrayStore
        Items (2, S, S): channel 0 = nucleus (input), 1 = protein (target), both in [0, 1].
    meta : DataFrame
        The store's metadata: ``protein``, ``index``, ``split``.
    source : str
        "sim" or "real".
    """

    store: Any
    meta: pd.DataFrame
    source: str

    def items(self, genes: Sequence[str], split: str | None = None) -> np.ndarray:
        """Store indices of the images of ``genes`` (optionally of one split), in store order."""
        sel = self.meta["protein"].isin(set(genes))
        if split is not None:
            sel &= self.meta["split"] == split
        return np.flatnonzero(sel.to_numpy())


def build_data(table: pd.DataFrame, preset: Preset, *, seed: int = 0, data: str = "sim",
               data_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> ImageData:
    """Render (or read) the images of every protein any variant uses, into a cached array store.

    ``data="sim"``: ``preset.images_per_protein`` simulated crops per protein (its real graded
    annotation), resized to ``preset.image_size``. ``data="real"``: the crops of a
    cytoself/OpenCell folder (``<gene>_pro.npy``, ``<gene>_nuc.npy``; at most
    ``images_per_protein`` per protein), proteins without files are left out. The store is
    reused when its parameters (and the data layer's source) are unchanged
    (:func:`atlaskit.studies._scaffold.study_store`; ``root`` overrides its folder).
    """
    genes = sorted(set().union(*(set(image_proteins(table, v, preset, seed)["gene"]) for v in VARIANTS)))
    split = dict(zip(table["gene"], table["split"]))
    n = preset.images_per_protein
    size = preset.image_size
    if data == "sim":
        params = {"data": "sim", "seed": seed, "size": size, "n": n, "genes": hashlib.sha256("\n".join(genes).encode()).hexdigest(),
                  "splits": hashlib.sha256(json.dumps([split[g] for g in genes]).encode()).hexdigest(),
                  "dtype": preset.store_dtype}

        def batches():
            from atlaskit.data import sim

            for b in sim.iter_opencell_crops(genes, n, seed=seed, batch_size=128):
                images = model_images(b.images[:, 0], b.images[:, 1], size)
                meta = pd.DataFrame({"protein": b.meta["protein"].to_numpy(), "index": b.meta["index"].to_numpy(),
                                     "split": b.meta["protein"].map(split).to_numpy()})
                yield images, meta
    elif data == "real":
        from atlaskit.data import readers

        if data_dir is None:
            raise ParameterError("data='real' needs data_dir, a cytoself/OpenCell folder of <gene>_pro.npy / _nuc.npy files")
        folder = Path(data_dir)
        available = set(readers.opencell_proteins(folder))
        genes = [g for g in genes if g in available]
        if not genes:
            raise DataError(f"{folder}: none of the OpenCell proteins of this chapter has files there")
        params = {"data": "real", "folder": str(folder.resolve()), "size": size, "n": n,
                  "genes": hashlib.sha256("\n".join(genes).encode()).hexdigest(), "dtype": preset.store_dtype}

        def batches():
            for images, meta in readers.iter_opencell_folder(folder, proteins=genes, channels=("pro", "nuc")):
                images, meta = images[:n], meta.iloc[:n]
                gene = meta["file_name"].iloc[0]
                out = model_images(images[:, 0], images[:, 1], size)
                yield out, pd.DataFrame({"protein": [gene] * len(out), "index": np.arange(len(out)),
                                         "split": [split[gene]] * len(out)})
    else:
        raise ParameterError(f"data must be 'sim' or 'real', not {data!r}")
    store = study_store(CHAPTER, f"images-{data}", params, batches, code=__name__, root=root, shape_per_item=(2, size, size),
                        dtype=preset.store_dtype, metadata_columns=["protein", "index", "split"],
                        attrs={"channels": ["nucleus", "protein"]})
    return ImageData(store, store.metadata.copy(), data)


class DeepGPSDataset(Dataset):
    """Items of an image store paired with their protein's sequence vector and label.

    Returns (``__getitem__``) a dict: ``seq`` (D,) float32, ``nucleus`` (1, S, S), ``target``
    (1, S, S) and, when labels are given, ``label`` (int).
    """

    def __init__(self, data: ImageData, indices: np.ndarray, features: pd.DataFrame,
                 labels: Mapping[str, int] | None = None):
        self.store = data.store
        self.indices = np.asarray(indices, dtype=np.int64)
        proteins = data.meta["protein"].to_numpy()[self.indices]
        missing = set(proteins) - set(features.index)
        if missing:
            raise DataError(f"no sequence vector for {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
        self.proteins = proteins
        self.vectors = features.loc[proteins].to_numpy(dtype=np.float32)  # (N, D) one per item
        self.labels = None if labels is None else np.array([labels[p] for p in proteins], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> dict:
        img = np.array(self.store.images[int(self.indices[i])], dtype=np.float32)  # (2, S, S)
        item = {"seq": torch.from_numpy(self.vectors[i]), "nucleus": torch.from_numpy(img[0:1]),
                "target": torch.from_numpy(img[1:2])}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item
