"""CNN vs FCN for multi-label protein localization in Human Protein Atlas images (Cyto 2017).

Both networks share one **base**: five blocks of two 3×3 convolutions (batch norm, ReLU), each
block closed by a 2×2 max pooling, the number of kernels doubling from block to block. They
differ in their head (shapes for :meth:`CnnFcnConfig.paper`; B = batch)::

    images (B, 4, 256, 256)        protein, nucleus, microtubules, ER in [0, 1]
      block 1: 2 × conv3x3(32)  + BN + ReLU, maxpool 2   -> (B,  32, 128, 128)
      block 2: 2 × conv3x3(64)  ...                      -> (B,  64,  64,  64)
      block 3: 2 × conv3x3(128) ...                      -> (B, 128,  32,  32)
      block 4: 2 × conv3x3(256) ...                      -> (B, 256,  16,  16)
      block 5: 2 × conv3x3(512)                          -> (B, 512,  16,  16)
    CNN:  maxpool 2 -> (B, 512, 8, 8) -> flatten 32768 -> FC 1024 -> FC 1024 -> FC 13
          (ReLU + dropout 0.5 between), sigmoid -> 13 class probabilities
    FCN:  no last pooling; conv1x1(13) -> (B, 13, 16, 16) logits, sigmoid -> 13 heat maps;
          class confidence = the maximum of its heat map

The CNN is trained with binary cross-entropy on the image labels, the FCN with binary
cross-entropy per heat-map pixel against targets made from the protein channel
(:func:`fcn_targets`: normalise, Gaussian filter, threshold 0.3, dilate, resize; the same map for
every class present in the image, zeros for the absent ones). Weights are Glorot (Xavier)
uniform, biases zero, as Keras initialises them.

Both models return **logits** (numerically stable ``BCEWithLogits``); ``predict_proba`` gives the
sigmoid probabilities the paper thresholds.

Choices where the paper is silent (all in :class:`CnnFcnConfig`)
------------------------------------------------------------------
* Widths of the two hidden fully connected layers: 1024 each, ReLU, dropout 0.5
  (``fc_hidden``, ``dropout``).
* Kernel size of the FCN's 13-kernel convolution: 1×1 (``fcn_kernel_size``).
* Convolutions carry no bias (batch norm follows and would cancel it), so every parameter
  receives a gradient.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlaskit.errors import DataError, ParameterError

__all__ = [
    "CnnFcnConfig",
    "BaseNet",
    "CNN",
    "FCN",
    "build_model",
    "glorot_init",
    "fcn_targets",
    "cnn_step",
    "fcn_step",
    "MODEL_KINDS",
]

MODEL_KINDS = ("cnn", "fcn")


@dataclass
class CnnFcnConfig:
    """Hyper-parameters of the shared base and both heads; the defaults are the paper's.

    Attributes
    ----------
    in_channels : int
        Input channels (4: protein, nucleus, microtubules, ER).
    image_size : int
        Square input side (paper: 256); must be divisible by ``2 ** n_blocks``.
    num_classes : int
        Output classes (Cyto 2017: 13).
    base_width : int
        Kernels of the first block; block ``i`` has ``base_width * 2**i`` (paper reading: 32).
    n_blocks : int
        Convolution blocks (paper: 5, i.e. 10 conv layers).
    convs_per_block : int
        3×3 convolutions per block (paper: 2).
    fc_hidden : tuple of int
        Hidden widths of the CNN's fully connected layers (2 hidden + the output = 3 layers).
    dropout : float
        Dropout after each hidden fully connected layer (CNN only).
    fcn_kernel_size : int
        Kernel of the FCN's final 13-kernel convolution (odd; "same" padding).
    """

    in_channels: int = 4
    image_size: int = 256
    num_classes: int = 13
    base_width: int = 32
    n_blocks: int = 5
    convs_per_block: int = 2
    fc_hidden: tuple[int, ...] = (1024, 1024)
    dropout: float = 0.5
    fcn_kernel_size: int = 1

    def __post_init__(self) -> None:
        def bad(name: str, why: str):
            raise ParameterError(f"CnnFcnConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("in_channels", "image_size", "num_classes", "base_width", "n_blocks", "convs_per_block",
                     "fcn_kernel_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                bad(name, "expected a positive integer")
            setattr(self, name, int(v))
        if self.image_size % (2 ** self.n_blocks):
            bad("image_size", f"must be divisible by 2**n_blocks = {2 ** self.n_blocks}")
        if self.fcn_kernel_size % 2 == 0:
            bad("fcn_kernel_size", "must be odd")
        try:
            hidden = tuple(int(h) for h in self.fc_hidden)
        except (TypeError, ValueError):
            bad("fc_hidden", "expected a sequence of positive integers")
        if any(h < 1 for h in hidden):
            bad("fc_hidden", "expected a sequence of positive integers")
        self.fc_hidden = hidden
        if isinstance(self.dropout, bool) or not 0.0 <= float(self.dropout) < 1.0:
            bad("dropout", "must be in [0, 1)")
        self.dropout = float(self.dropout)

    # -- derived sizes
    @property
    def widths(self) -> tuple[int, ...]:
        """Kernels per block, doubling: (32, 64, 128, 256, 512) for the paper."""
        return tuple(self.base_width * 2 ** i for i in range(self.n_blocks))

    @property
    def heatmap_size(self) -> int:
        """Side of the FCN heat maps: the base without its last pooling (256 -> 16)."""
        return self.image_size // 2 ** (self.n_blocks - 1)

    @property
    def cnn_feature_size(self) -> int:
        """Side of the CNN's last feature map (256 -> 8)."""
        return self.image_size // 2 ** self.n_blocks

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    # -- presets
    @classmethod
    def paper(cls, **overrides: Any) -> "CnnFcnConfig":
        """The paper's configuration: 4 × 256 × 256 input, kernels 32 … 512, 16 × 16 heat maps."""
        return cls(**overrides)

    @classmethod
    def scaled(cls, image_size: int, width_multiplier: float, **overrides: Any) -> "CnnFcnConfig":
        """The paper's architecture with fewer kernels and units (``width_multiplier`` × each)
        and another input size, e.g. ``scaled(128, 0.25)``: kernels 8 … 128, FC 256, 8 × 8 maps."""
        if not 0 < float(width_multiplier) <= 4:
            raise ParameterError(f"width_multiplier must be in (0, 4], got {width_multiplier!r}")
        base = cls()
        kw = dict(
            image_size=image_size,
            base_width=max(1, int(round(base.base_width * width_multiplier))),
            fc_hidden=tuple(max(1, int(round(h * width_multiplier))) for h in base.fc_hidden),
        )
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fc_hidden"] = list(self.fc_hidden)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CnnFcnConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"unknown CnnFcnConfig field(s): {', '.join(unknown)}")
        return cls(**dict(data))


def glorot_init(module: nn.Module) -> None:
    """Glorot (Xavier) uniform weights and zero biases for every conv and linear layer;
    batch norm keeps weight 1, bias 0 (the Keras defaults of the paper's time)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _check_images(x: Tensor, cfg: CnnFcnConfig) -> None:
    if not isinstance(x, Tensor):
        raise DataError(f"expected a tensor of images, got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != cfg.input_shape:
        raise DataError(f"expected images of shape (B, {', '.join(map(str, cfg.input_shape))}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DataError(f"expected floating-point images, got {x.dtype}")


class BaseNet(nn.Module):
    """The shared base: ``n_blocks`` × (``convs_per_block`` × [conv3x3 → BN → ReLU], maxpool 2).

    Parameters
    ----------
    config : CnnFcnConfig
    last_pool : bool
        Keep the pooling after the last block (CNN) or drop it (FCN).

    Shapes
    ------
    (B, C, S, S) -> (B, widths[-1], S / 2**n_blocks, ...) with ``last_pool``, else S / 2**(n_blocks-1)
    """

    def __init__(self, config: CnnFcnConfig, last_pool: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = config.in_channels
        for b, width in enumerate(config.widths):
            for _ in range(config.convs_per_block):
                layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                cin = width
            if last_pool or b < config.n_blocks - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class CNN(nn.Module):
    """Base + 3 fully connected layers -> ``num_classes`` logits (sigmoid in :meth:`predict_proba`).

    Shapes
    ------
    (B, 4, S, S) -> (B, 13) logits
    """

    kind = "cnn"

    def __init__(self, config: CnnFcnConfig | None = None) -> None:
        super().__init__()
        self.config = config or CnnFcnConfig.paper()
        c = self.config
        self.base = BaseNet(c, last_pool=True)
        layers: list[nn.Module] = []
        width = self.base.out_channels * c.cnn_feature_size ** 2
        for h in c.fc_hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(c.dropout)]
            width = h
        layers.append(nn.Linear(width, c.num_classes))
        self.head = nn.Sequential(*layers)
        glorot_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, self.config)
        f = self.base(x)  # (B, widths[-1], S/32, S/32)
        return self.head(torch.flatten(f, 1))  # (B, num_classes)

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities (B, num_classes) in [0, 1]."""
        return torch.sigmoid(self(x).float())


class FCN(nn.Module):
    """Base without its last pooling + a ``num_classes``-kernel convolution -> heat-map logits.

    Shapes
    ------
    (B, 4, S, S) -> (B, 13, S/16, S/16) logits (16 × 16 for 256 × 256 input)
    """

    kind = "fcn"

    def __init__(self, config: CnnFcnConfig | None = None) -> None:
        super().__init__()
        self.config = config or CnnFcnConfig.paper()
        c = self.config
        self.base = BaseNet(c, last_pool=False)
        self.classifier = nn.Conv2d(self.base.out_channels, c.num_classes, c.fcn_kernel_size,
                                    padding=c.fcn_kernel_size // 2)
        glorot_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, self.config)
        return self.classifier(self.base(x))  # (B, num_classes, S/16, S/16)

    @torch.no_grad()
    def heatmaps(self, x: Tensor) -> Tensor:
        """Sigmoid heat maps (B, num_classes, h, w) in [0, 1]."""
        return torch.sigmoid(self(x).float())

    @staticmethod
    def confidence(heatmaps: Tensor) -> Tensor:
        """The paper's image-level confidence of a class: the maximum of its heat map (B, K)."""
        return heatmaps.amax(dim=(-2, -1))

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class confidences (B, num_classes): max of each sigmoid heat map."""
        return self.confidence(self.heatmaps(x))


def build_model(kind: str, config: CnnFcnConfig | None = None) -> CNN | FCN:
    """``"cnn"`` or ``"fcn"`` with ``config`` (default: the paper's)."""
    if kind == "cnn":
        return CNN(config)
    if kind == "fcn":
        return FCN(config)
    raise ParameterError(f"model kind must be one of {MODEL_KINDS}, not {kind!r}")


# --------------------------------------------------------------------------- FCN targets


def fcn_targets(
    protein: np.ndarray,
    labels: np.ndarray,
    out_size: int | tuple[int, int],
    *,
    sigma: float = 2.0,
    threshold: float = 0.3,
    dilation: int = 2,
    cover: float = 0.0,
) -> np.ndarray:
    """FCN training targets from the protein channel, as the paper made them.

    Per image: min-max normalise the protein channel to [0, 1]; Gaussian filter (``sigma``
    pixels); threshold at ``threshold`` (0.3); dilate with a disk of radius ``dilation`` pixels;
    resize to the heat-map size by area averaging and keep the heat-map pixels of which more
    than ``cover`` is covered by the mask (default 0: any covered input pixel, so that small
    structures such as a centrosome survive the 16-fold reduction). The map is copied into every
    class present in the image; absent classes get zeros.

    Parameters
    ----------
    protein : ndarray, shape (N, H, W) or (H, W)
        Protein channel (any non-negative scale; it is normalised per image).
    labels : ndarray, shape (N, K) or (K,)
        Multi-hot labels (0/1).
    out_size : int or (int, int)
        Heat-map size, e.g. 16 for 256 × 256 input. Must not exceed the image size.
    sigma : float
        Gaussian standard deviation in input pixels (0: no filter).
    threshold : float in (0, 1)
    dilation : int
        Disk radius in input pixels (0: no dilation).
    cover : float in [0, 1)
        A heat-map pixel is on when more than this fraction of it is covered.

    Returns
    -------
    ndarray of float32, shape (N, K, h, w) (or (K, h, w) for one image), values 0 or 1.

    Notes
    -----
    The paper names the steps but not the filter width, the dilation radius or the
    interpolation; those are our choices (parameters here). With area averaging and
    ``cover=0.5`` (a plain "resize and round") about 30 % of simulated images got an empty map
    at 8 × 8, punctate classes (mitochondria, Golgi, centrosome) most often. An image whose protein channel is
    constant gives an empty map (nothing stands out from the background).
    """
    from scipy import ndimage
    from skimage.morphology import disk

    single = np.ndim(protein) == 2
    p = np.asarray(protein, dtype=np.float32)
    y = np.asarray(labels)
    if single:
        p, y = p[None], y[None]
    if p.ndim != 3:
        raise DataError(f"protein must be (N, H, W) or (H, W), got shape {np.shape(protein)}")
    if y.ndim != 2 or y.shape[0] != p.shape[0]:
        raise DataError(f"labels must be (N, K) with N = {p.shape[0]}, got shape {np.shape(labels)}")
    if not np.isfinite(p).all():
        raise DataError("protein channel contains NaN or inf")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be multi-hot (0 or 1)")
    h, w = (out_size, out_size) if np.isscalar(out_size) else tuple(out_size)
    h, w = int(h), int(w)
    if h < 1 or w < 1 or h > p.shape[1] or w > p.shape[2]:
        raise ParameterError(f"out_size {(h, w)} must be between 1 and the image size {p.shape[1:]}")
    if not 0 < threshold < 1:
        raise ParameterError(f"threshold must be in (0, 1), got {threshold}")
    if sigma < 0 or dilation < 0:
        raise ParameterError("sigma and dilation must be >= 0")
    if not 0 <= cover < 1:
        raise ParameterError(f"cover must be in [0, 1), got {cover}")
    lo = p.min(axis=(1, 2), keepdims=True)
    span = p.max(axis=(1, 2), keepdims=True) - lo
    norm = np.where(span > 0, (p - lo) / np.where(span > 0, span, 1), 0.0).astype(np.float32)  # (N, H, W)
    if sigma > 0:
        norm = ndimage.gaussian_filter(norm, sigma=(0, sigma, sigma), mode="nearest")
    mask = norm >= threshold  # (N, H, W)
    mask &= (span > 0)  # a constant image has no foreground
    if dilation > 0:
        mask = ndimage.binary_dilation(mask, structure=disk(dilation)[None])
    # area averaging: the covered fraction of every heat-map pixel
    frac = F.adaptive_avg_pool2d(torch.from_numpy(mask.astype(np.float32))[:, None], (h, w))[:, 0].numpy()  # (N, h, w)
    fmap = (frac > cover + 1e-6).astype(np.float32)
    out = fmap[:, None] * y.astype(np.float32)[:, :, None, None]  # (N, K, h, w)
    return out[0] if single else out


# --------------------------------------------------------------------------- training steps


def cnn_step(model: nn.Module, batch) -> dict[str, Tensor]:
    """``(images, labels, maps)`` batch: binary cross-entropy of the 13 outputs."""
    x, y = batch[0], batch[1]
    logits = model(x).float()  # (B, K)
    loss = F.binary_cross_entropy_with_logits(logits, y.float())
    with torch.no_grad():
        exact = ((logits > 0) == (y > 0.5)).all(dim=1).float().mean()
    return {"loss": loss, "metric_exact_match_at_0.5": exact}


def fcn_step(model: nn.Module, batch) -> dict[str, Tensor]:
    """``(images, labels, maps)`` batch: binary cross-entropy per heat-map pixel."""
    x, y, maps = batch[0], batch[1], batch[2]
    logits = model(x).float()  # (B, K, h, w)
    if logits.shape != maps.shape:
        raise DataError(f"FCN output {tuple(logits.shape)} and target maps {tuple(maps.shape)} differ")
    loss = F.binary_cross_entropy_with_logits(logits, maps.float())
    with torch.no_grad():
        conf = logits.amax(dim=(2, 3))  # (B, K), max of the heat map (logit scale)
        exact = ((conf > 0) == (y > 0.5)).all(dim=1).float().mean()
    return {"loss": loss, "metric_exact_match_at_0.5": exact}
