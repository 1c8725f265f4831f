"""Training of the deepGPS variants: one run per variant through the scaffold's
:func:`~atlaskit.studies._scaffold.fit_or_reuse`, and the export that ``atlaskit predict`` reads.

The paper's recipe: AdamW (weight decay 0), the learning rate × ``gamma`` after every epoch, no
validation split, and the weights after the last epoch (``weights="last"``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlaskit.errors import DataError
from atlaskit.models.deepgps import DeepGPSModel
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies._scaffold import TrainedRun, fit_or_reuse
from atlaskit.studies.deepgps import CHAPTER
from atlaskit.studies.deepgps.data import DeepGPSDataset, ImageData
from atlaskit.studies.deepgps.presets import Preset, model_config
from atlaskit.studies.deepgps.proteins import CLASS_LABELS, image_proteins, variant_classes

__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "VariantRun", "train", "train_config"]

#: The file beside a run's weights that ``atlaskit predict`` reads (config, classes, embedder).
EXPORT_FILE = "deepgps-export.json"
EXPORT_FORMAT = "atlaskit.deepgps/1"


@dataclass(kw_only=True)
class VariantRun(TrainedRun):
    """A trained deepGPS variant (a :class:`~atlaskit.studies._scaffold.TrainedRun`).

    ``model`` holds the weights after the last epoch, in eval mode (``best_epoch`` is None).

    Attributes
    ----------
    variant : str
    classes : tuple of str
    proteins : DataFrame
        The variant's image proteins (gene, split, label...).
    train_items, test_items : ndarray
        Store indices.
    """

    variant: str
    classes: tuple
    proteins: pd.DataFrame
    train_items: np.ndarray
    test_items: np.ndarray


def _feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature; the std is floored at a tenth of its median so
    that a nearly constant feature (a rare dipeptide) cannot blow up after standardisation."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = 0.1 * float(np.median(std[std > 0])) if (std > 0).any() else 1.0
    return mean, np.maximum(std, floor)


def train_config(preset: Preset, *, seed: int = 0, device: str = "auto"):
    """The training recipe of a preset (the paper's at ``full``): AdamW, exponential decay, no validation."""
    from atlaskit.train import TrainConfig

    return TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size, optimizer="adamw", lr=preset.lr,
                       weight_decay=preset.weight_decay, schedule="exponential", gamma=preset.gamma, seed=seed,
                       device=device, monitor="loss", progress=False,
                       channels_last=True)  # also on CPU: ~1.4x faster convolutions there


def train(variant: str, table: pd.DataFrame, images: ImageData, features: pd.DataFrame, preset: Preset, *,
          embedder: SequenceEmbedder, seed: int = 0, device: str = "auto") -> VariantRun:
    """Train (or reload the finished run of) one deepGPS variant.

    The run folder is :func:`atlaskit.runs.run_dir` keyed by every parameter that changes the
    result (variant, preset, seed, embedder, image store) and the atlaskit source, so a re-run
    of the chapter reuses it. The folder also receives the export that ``atlaskit predict`` reads.
    """
    classes = variant_classes(variant)
    proteins = image_proteins(table, variant, preset, seed)
    proteins = proteins[proteins["gene"].isin(set(images.meta["protein"]))].reset_index(drop=True)
    train_genes = proteins.loc[proteins["split"] == "train", "gene"]
    train_items = images.items(train_genes, "train")
    test_items = images.items(proteins.loc[proteins["split"] == "test", "gene"], "test")
    if train_items.size == 0:
        raise DataError(f"variant {variant}: no training images")
    labels = dict(zip(proteins["gene"], proteins["label_idx"])) if classes else None

    cfg = model_config(preset, variant, features.shape[1])
    mean, std = _feature_stats(features.loc[train_genes].to_numpy(dtype=np.float64))

    def build_model() -> DeepGPSModel:
        model = DeepGPSModel(cfg)
        model.set_sequence_normalization(mean, std)
        return model

    params = {"variant": variant, "preset": preset.to_dict(), "seed": seed, "embedder": embedder.key,
              "store": images.store.key, "n_train_items": int(train_items.size)}
    run = fit_or_reuse(
        CHAPTER, f"deepgps-{variant}", build_model, train_config(preset, seed=seed, device=device), key=params,
        train_data=lambda: DeepGPSDataset(images, train_items, features, labels),
        model_config={"model": cfg.to_dict(), "data": params}, threads=preset.cpu_threads, weights="last",
        run_type=VariantRun, variant=variant, classes=classes, proteins=proteins, train_items=train_items,
        test_items=test_items)
    _write_export(run.run_dir, variant=variant, cfg=cfg, classes=classes, embedder=embedder, images=images,
                  test_items=test_items, preset=preset)
    return run


def _write_export(folder: Path, *, variant, cfg, classes, embedder, images, test_items, preset) -> None:
    """What ``atlaskit predict`` needs beside the weights: config, classes, embedder, a nucleus."""
    from atlaskit._atomic import atomic_write

    nucleus_file = folder / "nucleus.npy"
    if test_items.size and not nucleus_file.exists():
        with atomic_write(nucleus_file) as fh:  # never a truncated nucleus.npy after an interruption
            np.save(fh, np.asarray(images.store.images[int(test_items[0])][0], dtype=np.float32), allow_pickle=False)
    export = {"format": EXPORT_FORMAT, "chapter": CHAPTER, "variant": variant, "classes": list(classes),
              "class_labels": [CLASS_LABELS.get(c, c) for c in classes], "model_config": cfg.to_dict(),
              "embedder": embedder.spec(), "weights": "last.pt", "nucleus": "nucleus.npy", "image_size": cfg.image_size,
              "scale": preset.scale, "data": images.source}
    path = folder / EXPORT_FILE
    text = json.dumps(export, indent=1, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        with atomic_write(path, "w", encoding="utf-8") as fh:
            fh.write(text)
