"""deepGPS (Yuan et al.): protein sequence + nucleus image → generated protein image and a label.

Architecture (shapes for :meth:`DeepGPSConfig.paper`; B = batch)::

    sequence vector s (B, 1280)         ESM2-650M, mean-pooled (or any embedder: seq_dim)
      standardise with stored training mean/std (identity by default)
      h = ReLU(Linear(1280 → 1024)(s))                 (B, 1024)
    nucleus image (B, 1, 208, 208) in [0, 1]
      inc   DoubleConv 1 → 64                          (B,   64, 208, 208)
      down1 MaxPool 2 + DoubleConv 64 → 128            (B,  128, 104, 104)
      down2                 128 → 256                  (B,  256,  52,  52)
      down3                 256 → 512                  (B,  512,  26,  26)
      down4                 512 → 1024                 (B, 1024,  13,  13)   bottleneck
      fusion: the 169 positions (queries) attend to h (key = value; one token):
              MultiheadAttention(1024, 1 head) → (B, 169, 1024) → (B, 1024, 13, 13)
      up1..up4: ConvTranspose 2×2/2 (C → C/2), concatenate the skip, DoubleConv
                                                       (B, 64, 208, 208)
      out:  1×1 conv → sigmoid                         (B, 1, 208, 208) generated protein image
    classifier on h: 1024 → 512 → 256 → K (ReLU)       (B, K) logits

    DoubleConv = (3×3 conv with bias → BatchNorm → ReLU) × 2

Losses (:meth:`DeepGPSModel.compute_losses`)::

    image          = mean |generated - target|                      (L1; the public code's "mae")
    classification = cross-entropy(logits, label)                   (absent for variant "all")
    loss           = image_weight * image + classification_weight * classification

Training (paper and public code): AdamW, lr 2e-4, LR × 0.9 after every epoch, 50 epochs,
batch 32 (8 per GPU on 4 GPUs).

Decisions where the paper and its public code (royal-dargon/DeepGPS) differ or are silent
-----------------------------------------------------------------------------------------
* Fusion: in the public code the bottleneck is **replaced** by the attention output
  (``x5_new, _ = MultiheadAttention(x5, h, h)``, no residual). With a single key/value token
  the softmax weight is exactly 1 for every query, so the output is
  ``W_o (W_v h + b_v) + b_o`` at all 169 positions: the bottleneck becomes the projected
  sequence vector, broadcast, and the image reaches the decoder only through the skip
  connections. A consequence: the last encoder block (``down4``, 512 → 1024, 14.2 M of the
  37.2 M parameters of :meth:`DeepGPSConfig.paper`) only feeds the attention queries, which
  cannot change a softmax over one token, so it receives only rounding-level gradients (about
  1e-12) and is never trained. ``fusion="replace"`` (default) keeps the published behaviour;
  ``fusion="residual"`` adds the attention output to the bottleneck instead (``x5 + attn``),
  which keeps the image features there and trains every block. Either way the query and key
  projections receive no gradient; they are kept so that the parameter layout is the paper's.
* Classifier: the public code applies ``softmax`` and then ``CrossEntropyLoss`` (which applies
  log-softmax again) to one-hot float targets. We use the logits with cross-entropy, the
  standard reading of "MLP classifier + cross-entropy"; ``predict_proba`` applies the softmax.
  Dropout: none in the public classifier (``classifier_dropout=0``).
* Optimiser: the public code uses ``transformers.AdamW`` whose default weight decay is 0, so
  ``weight_decay=0`` here (torch's AdamW default would be 0.01).
* Initialisation: Kaiming-uniform convolutions and transposed convolutions with zero biases,
  BatchNorm weight 1 / bias 0 (public code); PyTorch defaults elsewhere.
* Image size: 208 needs four halvings to 13 (208 = 13 · 16); ``image_size`` must be a multiple
  of 16. Smaller presets (the chapter's ``ci`` scale) use 64 → 4×4 and narrower widths.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlaskit.errors import DataError, ParameterError

__all__ = ["DeepGPSConfig", "DeepGPSModel", "DeepGPSOutput", "DoubleConv", "Down", "Up", "VARIANT_CLASSES"]

#: Number of classes of each deepGPS variant ("all" trains generation only).
VARIANT_CLASSES = {"single-2": 2, "single-4": 4, "all": 0}
_FUSIONS = ("replace", "residual")
_TUPLE_FIELDS = ("widths", "classifier_hidden")


@dataclass
class DeepGPSConfig:
    """Every hyper-parameter of a deepGPS model; the defaults are the paper's single-2 model.

    Attributes
    ----------
    seq_dim : int
        Input sequence-vector size (ESM2-650M: 1280; ESM2-8M: 320; composition: 420).
    image_size : int
        Square input/output side, a multiple of 16 (paper: 208 → 13×13 bottleneck).
    in_channels, out_channels : int
        Nucleus channels in (1), protein channels out (1).
    widths : tuple of 5 int
        U-Net widths per level (64, 128, 256, 512, 1024); the last is also the size of the
        projected sequence vector and of the attention.
    attention_heads : int
        Heads of the bottleneck attention (1); must divide ``widths[-1]``.
    fusion : {"replace", "residual"}
        How the attention output enters the bottleneck (see the module notes).
    num_classes : int
        Classes of the classifier (2: single-2, 4: single-4, 0: no classifier, variant "all").
    classifier_hidden : tuple of int
        Hidden widths of the classifier MLP (512, 256).
    classifier_dropout : float
        Dropout after each hidden layer (0, as in the public code).
    image_weight, classification_weight : float
        Loss weights (1, 1).
    """

    seq_dim: int = 1280
    image_size: int = 208
    in_channels: int = 1
    out_channels: int = 1
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    attention_heads: int = 1
    fusion: str = "replace"
    num_classes: int = 2
    classifier_hidden: tuple[int, ...] = (512, 256)
    classifier_dropout: float = 0.0
    image_weight: float = 1.0
    classification_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("seq_dim", "image_size", "in_channels", "out_channels", "attention_heads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"DeepGPSConfig.{name} must be a positive integer, got {v!r}")
        if len(self.widths) != 5 or any(w < 1 for w in self.widths):
            raise ParameterError(f"DeepGPSConfig.widths must be 5 positive integers, got {self.widths}")
        if any(self.widths[i + 1] != 2 * self.widths[i] for i in range(4)):
            raise ParameterError(
                f"DeepGPSConfig.widths must double at every level (the transposed convolutions halve "
                f"the channels before the skip is concatenated), got {self.widths}"
            )
        if self.image_size % 16:
            raise ParameterError(
                f"DeepGPSConfig.image_size must be a multiple of 16 (four 2× poolings), got {self.image_size}"
            )
        if self.widths[-1] % self.attention_heads:
            raise ParameterError(f"attention_heads ({self.attention_heads}) must divide widths[-1] ({self.widths[-1]})")
        if self.fusion not in _FUSIONS:
            raise ParameterError(f"DeepGPSConfig.fusion must be one of {_FUSIONS}, got {self.fusion!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0 \
                or self.num_classes == 1:
            raise ParameterError(f"DeepGPSConfig.num_classes must be 0 (no classifier) or >= 2, got {self.num_classes!r}")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ParameterError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")
        if self.image_weight < 0 or self.classification_weight < 0:
            raise ParameterError("loss weights must be non-negative")

    # -------------------------------------------------------------- presets
    @classmethod
    def paper(cls, variant: str = "single-2", seq_dim: int = 1280, **overrides: Any) -> "DeepGPSConfig":
        """The published configuration for ``variant`` ("single-2", "single-4" or "all")."""
        if variant not in VARIANT_CLASSES:
            raise ParameterError(f"variant must be one of {', '.join(VARIANT_CLASSES)}, not {variant!r}")
        return cls(seq_dim=seq_dim, num_classes=VARIANT_CLASSES[variant], **overrides)

    @classmethod
    def small(cls, variant: str = "single-2", seq_dim: int = 1280, *, image_size: int = 64,
              width_multiplier: float = 0.125, **overrides: Any) -> "DeepGPSConfig":
        """A scaled-down model for CPUs and teaching: the paper's layout with every width (U-Net,
        projection, attention, classifier) multiplied by ``width_multiplier`` (0.125: 8 … 128) and a
        smaller image (64 → a 4×4 bottleneck)."""
        if variant not in VARIANT_CLASSES:
            raise ParameterError(f"variant must be one of {', '.join(VARIANT_CLASSES)}, not {variant!r}")
        if not 0 < width_multiplier <= 1:
            raise ParameterError(f"width_multiplier must be in (0, 1], got {width_multiplier}")
        base = max(1, round(64 * width_multiplier))
        widths = tuple(base * 2 ** i for i in range(5))
        hidden = tuple(max(2, round(h * width_multiplier)) for h in (512, 256))
        return cls(seq_dim=seq_dim, image_size=image_size, widths=widths, classifier_hidden=hidden,
                   num_classes=VARIANT_CLASSES[variant], **overrides)

    @property
    def bottleneck_size(self) -> int:
        """Side of the bottleneck grid (13 for 208)."""
        return self.image_size // 16

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DeepGPSConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError(f"unknown DeepGPSConfig keys: {sorted(unknown)}")
        return cls(**dict(d))

    def replace(self, **changes: Any) -> "DeepGPSConfig":
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# U-Net parts (the public code's DoubleConv / Down / Up)
# ---------------------------------------------------------------------------------------------


def _kaiming(module: nn.Module) -> None:
    nn.init.kaiming_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class DoubleConv(nn.Sequential):
    """(3×3 conv with bias → BatchNorm → ReLU) × 2. Shapes: (B, in, H, W) → (B, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        c1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        c2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        _kaiming(c1)
        _kaiming(c2)
        super().__init__(c1, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
                         c2, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Down(nn.Sequential):
    """2×2 max pool, then DoubleConv. Shapes: (B, in, H, W) → (B, out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(nn.Module):
    """2×2 transposed conv (C → C/2), pad to the skip's size, concatenate [skip, up], DoubleConv.

    Shapes: x (B, C, H, W), skip (B, C/2, 2H, 2W) → (B, out, 2H, 2W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        _kaiming(self.up)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, C/2, 2H, 2W)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))  # (B, out, 2H, 2W)


class DeepGPSOutput(NamedTuple):
    """Forward outputs: ``image`` (B, out, S, S) in [0, 1], ``logits`` (B, K) or None, ``hidden``
    (B, widths[-1]) the projected sequence vector."""

    image: Tensor
    logits: Tensor | None
    hidden: Tensor


class DeepGPSModel(nn.Module):
    """The deepGPS network (see the module docstring); ``forward(seq, nucleus)``.

    The sequence input is standardised with the buffers ``seq_mean`` / ``seq_std`` (set them
    from the training proteins with :meth:`set_sequence_normalization`; identity until then).
    They are part of the state dict, so a checkpoint carries them.
    """

    def __init__(self, config: DeepGPSConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else DeepGPSConfig()
        if not isinstance(cfg, DeepGPSConfig):
            raise ParameterError(f"config must be a DeepGPSConfig, got {type(cfg).__name__}")
        self.config = cfg
        w = cfg.widths
        self.register_buffer("seq_mean", torch.zeros(cfg.seq_dim))
        self.register_buffer("seq_std", torch.ones(cfg.seq_dim))
        self.seq_proj = nn.Linear(cfg.seq_dim, w[-1])
        self.inc = DoubleConv(cfg.in_channels, w[0])
        self.down = nn.ModuleList([Down(w[i], w[i + 1]) for i in range(4)])
        self.attention = nn.MultiheadAttention(w[-1], cfg.attention_heads, batch_first=True)
        self.up = nn.ModuleList([Up(w[i + 1], w[i]) for i in reversed(range(4))])
        self.outc = nn.Conv2d(w[0], cfg.out_channels, 1)
        _kaiming(self.outc)
        self.classifier: nn.Module | None = None
        if cfg.num_classes:
            layers: list[nn.Module] = []
            width = w[-1]
            for h in cfg.classifier_hidden:
                layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
                if cfg.classifier_dropout:
                    layers.append(nn.Dropout(cfg.classifier_dropout))
                width = h
            layers.append(nn.Linear(width, cfg.num_classes))
            self.classifier = nn.Sequential(*layers)

    # -------------------------------------------------------------- helpers
    def set_sequence_normalization(self, mean, std, eps: float = 1e-6) -> None:
        """Store the per-feature mean and standard deviation of the training sequence vectors."""
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean.numel() != self.config.seq_dim or std.numel() != self.config.seq_dim:
            raise DataError(f"normalisation vectors must have {self.config.seq_dim} values")
        self.seq_mean.copy_(mean)
        self.seq_std.copy_(std.clamp_min(eps))

    def _check(self, seq: Tensor, nucleus: Tensor) -> None:
        cfg = self.config
        if seq.dim() != 2 or seq.shape[1] != cfg.seq_dim:
            raise DataError(f"sequence vectors must be (B, {cfg.seq_dim}), got {tuple(seq.shape)}")
        expected = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if nucleus.dim() != 4 or tuple(nucleus.shape[1:]) != expected:
            raise DataError(f"nucleus images must be (B, {', '.join(map(str, expected))}), got {tuple(nucleus.shape)}")
        if seq.shape[0] != nucleus.shape[0]:
            raise DataError(f"{seq.shape[0]} sequence vectors for {nucleus.shape[0]} nucleus images")

    def encode_sequence(self, seq: Tensor) -> Tensor:
        """(B, seq_dim) → (B, widths[-1]): standardise, project, ReLU."""
        return F.relu(self.seq_proj((seq - self.seq_mean) / self.seq_std))

    def classify(self, seq: Tensor) -> Tensor:
        """Logits (B, K) from sequence vectors alone (the classifier never sees the image)."""
        if self.classifier is None:
            raise ParameterError("this deepGPS model has no classifier (variant 'all', num_classes=0)")
        return self.classifier(self.encode_sequence(seq))

    # -------------------------------------------------------------- forward
    def forward(self, seq: Tensor, nucleus: Tensor) -> DeepGPSOutput:
        self._check(seq, nucleus)
        h = self.encode_sequence(seq)  # (B, D)
        skips = [self.inc(nucleus)]  # (B, w0, S, S)
        for down in self.down:
            skips.append(down(skips[-1]))  # ... (B, D, S/16, S/16)
        x = skips.pop()
        b, d, gh, gw = x.shape
        queries = x.flatten(2).transpose(1, 2)  # (B, S/16 * S/16, D): image positions
        kv = h.unsqueeze(1)  # (B, 1, D): the sequence as one token
        attended, _ = self.attention(queries, kv, kv, need_weights=False)  # (B, P, D)
        attended = attended.transpose(1, 2).reshape(b, d, gh, gw)  # (B, D, S/16, S/16)
        x = attended if self.config.fusion == "replace" else x + attended
        for up in self.up:
            x = up(x, skips.pop())  # doubles the side, halves the channels
        image = torch.sigmoid(self.outc(x))  # (B, out, S, S)
        logits = self.classifier(h) if self.classifier is not None else None  # (B, K)
        return DeepGPSOutput(image, logits, h)

    def compute_losses(self, seq: Tensor, nucleus: Tensor, target: Tensor, label: Tensor | None = None,
                       **_: Any) -> dict[str, Tensor]:
        """L1 image loss (+ cross-entropy when the model has a classifier and ``label`` is given).

        Returns ``loss``, ``image_l1``, and with labels ``classification`` and
        ``metric_accuracy``. Extra batch keys (e.g. a protein index) are ignored.
        """
        out = self(seq, nucleus)
        if target.shape != out.image.shape:
            raise DataError(f"target images must be {tuple(out.image.shape)}, got {tuple(target.shape)}")
        image_l1 = F.l1_loss(out.image.float(), target.float())
        losses = {"image_l1": image_l1}
        total = self.config.image_weight * image_l1
        if out.logits is not None and label is not None:
            ce = F.cross_entropy(out.logits.float(), label.long())
            losses["classification"] = ce
            losses["metric_accuracy"] = (out.logits.detach().argmax(1) == label).float().mean()
            total = total + self.config.classification_weight * ce
        losses["loss"] = total
        return losses

    @torch.no_grad()
    def predict_proba(self, seq: Tensor) -> Tensor:
        """Class probabilities (B, K) from sequence vectors (eval mode is the caller's business)."""
        return torch.softmax(self.classify(seq).float(), dim=1)
