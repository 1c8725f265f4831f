"""DeepYeast (Pärnamaa & Parts 2017, *G3* 7:1385): an 11-layer CNN for 64×64 yeast cells.

Architecture (the paper; the same layer names as the public Keras re-implementation
``tanelp/deepyeast``)::

    input (B, 2, 64, 64)  GFP protein, RFP cytosolic marker; minus the training mean image
    conv1_1  3×3, 64   BN, ReLU          conv1_2  3×3, 64   BN, ReLU    pool1 2×2 → 32×32
    conv2_1  3×3, 128  BN, ReLU          conv2_2  3×3, 128  BN, ReLU    pool2 2×2 → 16×16
    conv3_1 … conv3_4  3×3, 256  BN, ReLU (four layers)                pool3 2×2 → 8×8
    fc1      8·8·256 → 512  BN, ReLU, dropout 0.5
    fc2      512 → 512      BN, ReLU, dropout 0.5
    logits   512 → 12       (softmax in the loss)

Batch normalisation sits before every ReLU, as in the paper (the Keras code also normalises the
two fully connected layers). Weights are Glorot-normal (Keras' ``glorot_normal``: a normal
truncated at two standard deviations with variance ``2 / (fan_in + fan_out)``); biases and BN
shifts start at 0, BN scales at 1. Convolutions and fc1/fc2 carry no bias, since the batch norm
after them has its own shift.

Optimisation (the paper; the study's
:func:`atlaskit.studies.deepyeast.training.paper_train_config`): SGD with momentum 0.9, learning
rate 0.1 halved every 25 epochs, weight decay 5·10⁻⁴, batch 100.

Input normalisation: the network subtracts a per-pixel **training mean image** (2, 64, 64)
held in the buffer ``input_mean``. It is part of ``state_dict()``, so it travels with every
checkpoint and a loaded model normalises new images exactly as in training; set it with
:meth:`DeepYeastNet.set_input_mean` before training.

Feature extraction: :meth:`DeepYeastNet.features` returns the output of any named layer (for
``conv*`` and ``fc*`` the post-ReLU activation, for ``pool*`` the pooled map, for ``logits`` the
pre-softmax scores), which is what the transfer-learning and interpretation analyses use.
"""
from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlaskit.errors import ParameterError
from atlaskit.models.blocks import ConvBNAct

__all__ = [
    "DeepYeastConfig",
    "DeepYeastNet",
    "deepyeast_step",
    "CONV_LAYERS",
    "LAYER_NAMES",
]

#: Names of the eight convolutional layers (the paper's order).
CONV_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4")
#: Every named layer in forward order; any of them can be extracted with ``features``.
LAYER_NAMES = (
    "conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4", "pool3", "fc1", "fc2", "logits",
)


@dataclass(frozen=True)
class DeepYeastConfig:
    """Shape of a DeepYeast network.

    Parameters
    ----------
    in_channels : int
        Input channels (2: GFP protein, RFP cytosolic marker).
    image_size : int
        Side of the square input (64); must be divisible by 8 (three 2×2 poolings).
    conv_channels : tuple of 8 int
        Widths of conv1_1 … conv3_4 (paper: 64, 64, 128, 128, 256, 256, 256, 256).
    fc_units : tuple of 2 int
        Widths of fc1 and fc2 (paper: 512, 512).
    n_classes : int
        Output classes (paper: 12).
    dropout : float
        Dropout after fc1 and fc2 (paper: 0.5).
    """

    in_channels: int = 2
    image_size: int = 64
    conv_channels: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 256, 256)
    fc_units: tuple[int, ...] = (512, 512)
    n_classes: int = 12
    dropout: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        object.__setattr__(self, "fc_units", tuple(int(c) for c in self.fc_units))
        if len(self.conv_channels) != 8 or min(self.conv_channels) < 1:
            raise ParameterError(f"DeepYeastConfig.conv_channels needs 8 positive widths, got {self.conv_channels}")
        if len(self.fc_units) != 2 or min(self.fc_units) < 1:
            raise ParameterError(f"DeepYeastConfig.fc_units needs 2 positive widths, got {self.fc_units}")
        if self.image_size < 8 or self.image_size % 8:
            raise ParameterError(f"DeepYeastConfig.image_size must be a positive multiple of 8, got {self.image_size}")
        if self.in_channels < 1 or self.n_classes < 2:
            raise ParameterError("DeepYeastConfig needs in_channels >= 1 and n_classes >= 2")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"DeepYeastConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def paper(cls, n_classes: int = 12) -> "DeepYeastConfig":
        """The published network: 8 conv layers 64-64-128-128-256-256-256-256, FC 512-512."""
        return cls(n_classes=n_classes)

    @classmethod
    def small(cls, width: float = 0.25, n_classes: int = 12, dropout: float = 0.5) -> "DeepYeastConfig":
        """The same 11-layer topology with every width multiplied by ``width`` (CPU teaching runs).

        ``width=0.25`` gives 16-16-32-32-64-64-64-64 and FC 128-128 (about 1/16 of the paper's
        compute), ``width=0.125`` 8-8-16-16-32-32-32-32 and FC 64-64; ``dropout`` may be lowered
        for very short runs. It is **not** the paper's network.
        """
        if not 0 < width <= 1:
            raise ParameterError(f"width must be in (0, 1], got {width}")
        paper = cls.paper(n_classes)
        return cls(
            conv_channels=tuple(max(1, round(c * width)) for c in paper.conv_channels),
            fc_units=tuple(max(1, round(c * width)) for c in paper.fc_units),
            n_classes=n_classes,
            dropout=dropout,
        )

    def to_dict(self) -> dict:
        """Plain types (lists for tuples): safe in a ``weights_only`` checkpoint and in JSON."""
        d = dataclasses.asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        d["fc_units"] = list(self.fc_units)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "DeepYeastConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParameterError(f"unknown DeepYeastConfig fields {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @property
    def is_paper(self) -> bool:
        """True when the widths are the published ones."""
        p = DeepYeastConfig.paper(self.n_classes)
        return self.conv_channels == p.conv_channels and self.fc_units == p.fc_units


class _FCBNReLU(nn.Sequential):
    """Linear (no bias) → BatchNorm1d → ReLU: a fully connected layer of the paper."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features), nn.ReLU())


def _glorot_normal_(weight: Tensor) -> None:
    """Keras ``glorot_normal``: truncated normal (±2σ), σ = 0.8796 · sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    # 0.87962566 corrects the variance lost by truncating at two standard deviations
    std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


class DeepYeastNet(nn.Module):
    """The DeepYeast classifier.

    Parameters
    ----------
    config : DeepYeastConfig, optional
        Default :meth:`DeepYeastConfig.paper`.

    Shapes
    ------
    (B, in_channels, S, S) float → (B, n_classes) logits.
    """

    def __init__(self, config: DeepYeastConfig | None = None):
        super().__init__()
        cfg = config if config is not None else DeepYeastConfig.paper()
        if not isinstance(cfg, DeepYeastConfig):
            raise ParameterError(f"config must be a DeepYeastConfig, got {type(cfg).__name__}")
        self.config = cfg
        c = cfg.conv_channels
        side = cfg.image_size // 8
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        widths = dict(zip(CONV_LAYERS, c))
        previous = cfg.in_channels
        for name in LAYER_NAMES:
            if name.startswith("conv"):
                layers[name] = ConvBNAct(previous, widths[name], 3, act="relu")
                previous = widths[name]
            elif name.startswith("pool"):
                layers[name] = nn.MaxPool2d(2, 2)
        layers = OrderedDict(
            list(layers.items())
            + [
                ("fc1", nn.Sequential(nn.Flatten(1), _FCBNReLU(c[-1] * side * side, cfg.fc_units[0]))),
                ("fc2", nn.Sequential(nn.Dropout(cfg.dropout), _FCBNReLU(cfg.fc_units[0], cfg.fc_units[1]))),
                ("logits", nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.fc_units[1], cfg.n_classes))),
            ]
        )
        # Dropout sits at the start of the next layer so that "fc1"/"fc2" features are the
        # deterministic post-ReLU activations (dropout is the identity in eval mode anyway).
        self.layers = nn.Sequential(layers)
        self.register_buffer("input_mean", torch.zeros(cfg.in_channels, cfg.image_size, cfg.image_size))
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def reset_parameters(self) -> None:
        """Glorot-normal weights, zero biases, BN scale 1 and shift 0 (the paper's initialisation)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                _glorot_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()

    @torch.no_grad()
    def set_input_mean(self, mean: np.ndarray | Tensor) -> None:
        """Store the per-pixel training mean image (in_channels, S, S) subtracted from every input."""
        t = torch.as_tensor(np.asarray(mean, dtype=np.float32) if not isinstance(mean, Tensor) else mean).float()
        if tuple(t.shape) != tuple(self.input_mean.shape):
            raise ParameterError(f"the mean image must be shaped {tuple(self.input_mean.shape)}, got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ParameterError("the mean image contains NaN or infinite values")
        self.input_mean.copy_(t.to(self.input_mean.device))

    @property
    def layer_names(self) -> tuple[str, ...]:
        return LAYER_NAMES

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        cfg = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ParameterError(
                f"DeepYeastNet expects images shaped (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.layers(x - self.input_mean)  # (B, n_classes)

    def features(self, x: Tensor, layers: str | Iterable[str] = "fc1", *, flatten: bool = False) -> dict[str, Tensor]:
        """Outputs of named layers for a batch, computed in one forward pass.

        Parameters
        ----------
        x : Tensor (B, in_channels, S, S)
        layers : str or iterable of str
            Names from :data:`LAYER_NAMES` (e.g. ``"fc1"`` for transfer learning).
        flatten : bool
            Return every output as (B, D) instead of its natural shape.

        Returns
        -------
        dict
            Layer name → tensor: (B, C, H, W) for conv/pool layers, (B, D) for fc1, fc2, logits.
            The pass stops after the last requested layer.
        """
        wanted = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in wanted if n not in LAYER_NAMES]
        if unknown or not wanted:
            raise ParameterError(f"unknown layer(s) {unknown or wanted}; the layers are: {', '.join(LAYER_NAMES)}")
        self._check_input(x)
        remaining = set(wanted)
        out: dict[str, Tensor] = {}
        h = x - self.input_mean
        for name, module in self.layers.named_children():
            h = module(h)
            if name in remaining:
                out[name] = torch.flatten(h, 1) if flatten else h
                remaining.discard(name)
                if not remaining:
                    break
        return {n: out[n] for n in wanted}

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape (without the batch) of every named layer, from one dummy pass in eval mode."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(1, self.config.in_channels, self.config.image_size, self.config.image_size,
                                device=self.input_mean.device)
                feats = self.features(x, LAYER_NAMES)
        finally:
            self.train(was)
        return {k: tuple(v.shape[1:]) for k, v in feats.items()}


def deepyeast_step(model: nn.Module, batch) -> dict[str, Tensor]:
    """Trainer step for ``(image, label)`` batches: cross-entropy and accuracy.

    Labels may carry -1 for items that must not count (none in the chapter's data); they are
    ignored by the loss.
    """
    x, y = batch[0], batch[1]
    logits = model(x)  # (B, K)
    loss = F.cross_entropy(logits.float(), y, ignore_index=-1)
    keep = y >= 0
    acc = (logits.detach().argmax(1)[keep] == y[keep]).float().mean() if keep.any() else logits.new_zeros(())
    return {"loss": loss, "metric_accuracy": acc}
