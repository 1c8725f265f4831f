"""Presets of the CNN-vs-FCN study (chapter 03): what each scale decides, and the table that
puts a preset beside the paper's configuration."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from atlaskit.models.cnnfcn import CnnFcnConfig
from atlaskit.studies import _scaffold

__all__ = ["Preset", "PRESETS", "preset", "settings_table"]


@dataclass(frozen=True)
class Preset(_scaffold.Preset):
    """Everything a scale decides (``scale`` and ``cpu_threads`` come from the scaffold's base).

    Attributes
    ----------
    image_size : int
        Input side (paper 256).
    width_multiplier : float
        Kernels and fully connected units relative to the paper's (1.0).
    zoom : float
        Simulated pixels per pixel of a 512 × 512 Kaggle image; 0.5 is the paper's scale (a
        2048 × 2048 HPA image resized to 256 × 256).
    n_train, n_val, n_test : int
        Fields per split (simulated data; real data: at most this many, 0 = all, split 8:1:1).
    epochs : int
        Training epochs; an upper bound when ``early_stopping`` is set (the paper: up to 100).
    batch_size : int
        Images per step (the paper: 64).
    early_stopping : int, optional
        Stop after this many epochs without a lower validation loss (the paper: 20); None trains
        every epoch.
    cell_fractions : tuple of float
        Per-cell probabilities of showing each class; field ``i`` uses entry ``i mod len``.
    cell_line_weights : tuple of float
        Share of the chapter's fields drawn in each simulated cell line (U-2 OS, A-431, HeLa), as
        in the paper's data, where some lines have many images and others few (its Fig. 8).
    hetero_fractions : tuple of float
        Cell fractions of the heterogeneity experiment.
    n_hetero : int
        Fields per fraction in the heterogeneity experiment.
    label_counts, n_per_label_count : tuple of int, int
        Table 1 on fresh fields: ``n_per_label_count`` fields for each number of labels in
        ``label_counts`` (:func:`~atlaskit.studies.cnnfcn.data.label_count_data`).
    target_sigma, target_threshold, target_dilation : float, float, int
        FCN target construction (:func:`atlaskit.models.cnnfcn.fcn_targets`), in input pixels.
    augment : bool
        Random 90° rotations and flips of the training images (and FCN maps); not in the paper.
    num_workers : int
        DataLoader workers.
    pretrain_size, n_pretrain, n_pretrain_val : int, int, int
        Transfer learning (:mod:`~atlaskit.studies.cnnfcn.transfer`): side of the pretraining
        crops and their numbers for training and validation (other proteins than the chapter's).
    pretrain_epochs, finetune_epochs : int
        Upper bounds of the pretraining and of the fine-tuning (each keeps its epoch of lowest
        validation loss).
    cpu_threads : int, optional
        torch threads while training and predicting on a CPU (None: torch's default). The small
        presets use 1: their convolutions are too small to gain from a second thread (on a
        shared 2-core machine two threads ran 2-5 times slower), and one thread makes their
        numbers independent of the machine's core count.
    """

    image_size: int
    width_multiplier: float
    zoom: float
    n_train: int
    n_val: int
    n_test: int
    epochs: int
    batch_size: int = 64
    early_stopping: int | None = None
    cell_fractions: tuple[float, ...] = (1.0, 1.0, 0.5, 0.25)
    cell_line_weights: tuple[float, ...] = (0.6, 0.3, 0.1)
    hetero_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    n_hetero: int = 50
    label_counts: tuple[int, ...] = (1, 2, 3, 4)
    n_per_label_count: int = 48
    target_sigma: float = 2.0
    target_threshold: float = 0.3
    target_dilation: int = 2
    augment: bool = False
    num_workers: int = 0
    pretrain_size: int = 64
    n_pretrain: int = 2048
    n_pretrain_val: int = 256
    pretrain_epochs: int = 3
    finetune_epochs: int = 3

    def model_config(self) -> CnnFcnConfig:
        if self.width_multiplier == 1.0 and self.image_size == 256:
            return CnnFcnConfig.paper()
        return CnnFcnConfig.scaled(self.image_size, self.width_multiplier)

    @property
    def heatmap_size(self) -> int:
        return self.model_config().heatmap_size

    @property
    def target_params(self) -> dict[str, float]:
        return {"sigma": self.target_sigma, "threshold": self.target_threshold, "dilation": self.target_dilation}


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", image_size=64, width_multiplier=0.125, zoom=0.5, n_train=48, n_val=16, n_test=24,
                   epochs=2, batch_size=16, hetero_fractions=(0.25, 1.0), n_hetero=8, n_per_label_count=4,
                   pretrain_size=32, n_pretrain=96, n_pretrain_val=16, pretrain_epochs=1, finetune_epochs=1,
                   cpu_threads=1),
    # Measured on 2 cores, seed 0, cell lines uniform (mean per-class accuracy CNN / FCN; test split):
    # 512 training fields, 10 epochs 0.42 / 0.43; 20 epochs 0.30 / 0.45; 1024 fields, 10 epochs,
    # batch 32: 0.49 / 0.37 (both best at the last epoch: still learning); 20 epochs, batch 32:
    # 0.48 / 0.52 (Dice 0.37 / 0.49), best epochs 19 / 19; 20 epochs, batch 64 (the paper's):
    # 0.50 / 0.49 (Dice 0.38 / 0.48; the CNN predicts 2.3 labels per image, the FCN 1.6, truth 1.6),
    # best epochs 17 / 19; CNN ~8 s, FCN ~10 s per epoch on one thread.
    # Transfer learning at ci (pretraining crops 64 × 64): a trial with 2,048 + 256 crops, 5 pretraining
    # and 6 fine-tuning epochs gave validation losses 0.324 0.275 0.242 0.247 0.235 (pretraining) and
    # 0.385 0.231 0.210 0.209 0.204 0.253 (fine-tuning): most of the fall is over by epoch 3 of each,
    # so 3 + 3 with 1,280 + 128 crops keeps the section near 90 s; each stage keeps its lowest
    # validation loss. No test score chose any of these numbers.
    "ci": Preset("ci", image_size=128, width_multiplier=0.25, zoom=0.5, n_train=1024, n_val=96, n_test=224,
                 epochs=20, batch_size=64, n_hetero=48, pretrain_size=64, n_pretrain=1280, n_pretrain_val=128,
                 pretrain_epochs=3, finetune_epochs=3, cpu_threads=1),
    # The paper: the Cyto 2017 challenge's 16,000 training images split 90:10 into training and
    # validation, its 4,000 test images; batch 64, up to 100 epochs, early stopping after 20
    # epochs without a lower validation loss.
    "full": Preset("full", image_size=256, width_multiplier=1.0, zoom=0.5, n_train=14400, n_val=1600,
                   n_test=4000, epochs=100, batch_size=64, early_stopping=20, n_hetero=500,
                   n_per_label_count=50, num_workers=4, pretrain_size=128, n_pretrain=57600, n_pretrain_val=1600,
                   pretrain_epochs=30, finetune_epochs=30),
}


def preset(scale: str, *, epochs: int | None = None) -> Preset:
    """The preset of ``scale`` ("tiny", "ci", "full"), with ``epochs`` overriding its default."""
    return _scaffold.select_preset(PRESETS, scale, epochs=epochs)


def settings_table(p: Preset, data: str = "sim") -> pd.DataFrame:
    """This run's configuration beside the paper's: input, kernels, hidden units, heat maps, data
    sizes, epochs and batch (``data`` is the chapter's data source, "sim" or "real")."""
    config = p.model_config()
    epochs = f"up to {p.epochs}, early stopping after {p.early_stopping}" if p.early_stopping else str(p.epochs)
    return pd.DataFrame({
        "this run": [f"{p.image_size} × {p.image_size}", ", ".join(map(str, config.widths)), str(config.fc_hidden),
                     f"{config.heatmap_size} × {config.heatmap_size}",
                     f"{p.n_train} / {p.n_val} / {p.n_test}" if data == "sim" else "8 : 1 : 1 split of the folder",
                     epochs, p.batch_size],
        "paper": ["256 × 256", "32, 64, 128, 256, 512", "not stated (our assumption: 1024, 1024)", "16 × 16",
                  "14,400 / 1,600 / 4,000 (Cyto 2017)", "up to 100, early stopping after 20", "64"],
    }, index=["input", "kernels per block", "hidden FC units", "FCN heat maps", "train / val / test images",
              "epochs", "batch"])
