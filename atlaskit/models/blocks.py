"""Building blocks shared by the image models (torch only: no torchvision, no timm).

* :class:`ConvBNAct` -- convolution, batch norm, activation (``same`` padding for odd kernels).
* :class:`SqueezeExcite` and :class:`MBConv` -- the EfficientNet-B0 mobile inverted bottleneck:
  1x1 expansion, depthwise kxk, squeeze-and-excitation, 1x1 linear projection, identity skip
  when the input and output shapes match, optional drop-connect (stochastic depth) on the skip.
* :class:`MBConvStage` and :func:`mbconv_stack` -- build a stack of MBConv stages from a table
  like Table 1 of the EfficientNet paper.
* :class:`ResidualBlock` -- the residual unit of the cytoself decoders:
  conv-bn-act, conv-bn, add the input, act.
* :func:`resize` / :class:`Resize` -- interpolation to an exact spatial size.
* :class:`MLPHead` -- fully connected classifier (Linear-act-dropout repeated, then Linear).
* :func:`set_recompute` -- trade computation for activation memory in :class:`ConvBNAct`,
  :class:`ResidualBlock` and :class:`MBConv`: at level ``"elementwise"`` only convolution outputs
  are kept for the backward pass and batch norm, activations and residual sums are recomputed
  from them (no convolution runs twice); at level ``"residual"`` each residual block keeps only
  its input and reruns its convolutions too. Results are bit-identical at every level.

Every module accepts channels-last tensors: nothing here calls ``.view`` on a tensor that may be
non-contiguous (``reshape`` / ``flatten`` are used instead).
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from atlaskit.errors import ParameterError

__all__ = [
    "ACTIVATIONS",
    "make_activation",
    "conv_output_size",
    "ConvBNAct",
    "RECOMPUTE_LEVELS",
    "recompute_level",
    "set_recompute",
    "recompute_region",
    "SqueezeExcite",
    "drop_connect",
    "MBConv",
    "MBConvStage",
    "mbconv_stack",
    "ResidualBlock",
    "resize",
    "Resize",
    "MLPHead",
]

#: Activation names accepted by :func:`make_activation` (``swish`` is an alias of ``silu``).
ACTIVATIONS = ("silu", "swish", "relu", "lrelu", "gelu", "identity")


def make_activation(name: Optional[str]) -> nn.Module:
    """Return a fresh activation module by name.

    Parameters
    ----------
    name : str or None
        One of :data:`ACTIVATIONS`; ``None`` means identity. ``lrelu`` uses slope 0.3 (the Keras
        default that the cytoself TensorFlow code used).

    Returns
    -------
    torch.nn.Module
    """
    if name is None or name == "identity":
        return nn.Identity()
    key = name.lower()
    if key in ("silu", "swish"):
        return nn.SiLU()
    if key == "relu":
        return nn.ReLU()
    if key == "lrelu":
        return nn.LeakyReLU(negative_slope=0.3)
    if key == "gelu":
        return nn.GELU()
    raise ParameterError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


def conv_output_size(size: int, kernel_size: int, stride: int) -> int:
    """Spatial output size of a convolution with ``padding = kernel_size // 2``.

    For odd kernels this is ``ceil(size / stride)`` (e.g. 100 -> 50 -> 25 -> 13 -> 7 -> 4).
    """
    pad = kernel_size // 2
    return (size + 2 * pad - kernel_size) // stride + 1


# ---------------------------------------------------------------- activation recomputation
# A training step keeps, for the backward pass, every tensor an operator needs: for
# conv -> BN -> act that is the conv output (for BN) and the BN output (for SiLU), then the act
# output (for the next conv). With recomputation on, a module keeps only its convolution outputs;
# the element-wise tail (BN, activation, residual sum) runs inside
# ``torch.utils.checkpoint`` and is rerun in the backward pass from those outputs. The regions are
# cut so that each ends with a convolution's *input* (non-reentrant checkpointing stops
# recomputing once the last saved tensor is back, before that convolution runs) or with a tensor
# nobody saves; no convolution runs twice.

_RECOMPUTE_STATE = threading.local()


@contextlib.contextmanager
def _recomputing() -> Iterator[None]:
    """Mark the backward-pass rerun of a checkpointed region (see :func:`_batch_norm`)."""
    previous = getattr(_RECOMPUTE_STATE, "active", False)
    _RECOMPUTE_STATE.active = True
    try:
        yield
    finally:
        _RECOMPUTE_STATE.active = previous


def _checkpoint_contexts():
    return contextlib.nullcontext(), _recomputing()


def recompute_region(fn: Callable[..., Tensor], *args) -> Tensor:
    """``fn(*args)``, keeping only the tensor arguments for backward: ``fn`` is rerun there.

    Batch norm inside ``fn`` (through :func:`_batch_norm`) does not update its running
    statistics a second time in the rerun.
    """
    return torch.utils.checkpoint.checkpoint(
        fn, *args, use_reentrant=False, context_fn=_checkpoint_contexts
    )


def _batch_norm(bn: nn.BatchNorm2d, x: Tensor) -> Tensor:
    """``bn(x)``; when rerun in the backward pass, the running statistics are not updated again.

    The rerun normalises with the same batch statistics (same input), so its output is
    identical; momentum 0 leaves ``running_mean``/``running_var`` unchanged and
    ``num_batches_tracked`` is not incremented a second time.
    """
    if bn.training and getattr(_RECOMPUTE_STATE, "active", False):
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, 0.0, bn.eps)
    return bn(x)


def _bn_act(bn: nn.BatchNorm2d, act: nn.Module, x: Tensor) -> Tensor:
    return act(_batch_norm(bn, x))


def _bn_act_conv(bn: nn.BatchNorm2d, act: nn.Module, conv: nn.Conv2d, x: Tensor) -> Tensor:
    return conv(act(_batch_norm(bn, x)))


def _bn_add_act(bn: nn.BatchNorm2d, act: nn.Module, x: Tensor, residual: Tensor) -> Tensor:
    return act(residual + _batch_norm(bn, x))


def _recompute_active(module: nn.Module) -> bool:
    return module.recompute != "off" and module.training and torch.is_grad_enabled()


def _keeps_only_input(module: nn.Module) -> bool:
    """Level ``"residual"`` applies to this call of a residual block (training, gradients on)."""
    return module.recompute == "residual" and _recompute_active(module)


#: Recomputation levels accepted by :func:`set_recompute` (``True`` means ``"elementwise"``).
RECOMPUTE_LEVELS = ("off", "elementwise", "residual")


def recompute_level(value: "bool | str | None") -> str:
    """Normalise a recomputation setting to one of :data:`RECOMPUTE_LEVELS`.

    ``False``/``None`` -> ``"off"``, ``True`` -> ``"elementwise"``; strings are checked.
    """
    if value is None or value is False:
        return "off"
    if value is True:
        return "elementwise"
    if isinstance(value, str) and value in RECOMPUTE_LEVELS:
        return value
    raise ParameterError(
        f"activation recomputation must be True, False or one of {', '.join(map(repr, RECOMPUTE_LEVELS))}; "
        f"got {value!r}"
    )


def set_recompute(module: nn.Module, level: "bool | str" = True) -> int:
    """Set activation recomputation for every :class:`ConvBNAct`, :class:`ResidualBlock` and
    :class:`MBConv` inside ``module`` (the module itself included).

    Parameters
    ----------
    module : torch.nn.Module
    level : bool or str, default True
        Applies in training mode with gradients enabled; outputs, gradients and batch-norm
        running statistics are unchanged at every level.

        * ``"elementwise"`` (or ``True``): only convolution outputs are kept for the backward
          pass; batch norm, activation and residual sums are rerun there. No convolution runs
          twice.
        * ``"residual"``: as ``"elementwise"``, and each residual block (:class:`ResidualBlock`,
          :class:`MBConv`) keeps only its input: its convolutions are rerun in the backward pass
          (one more forward pass of the residual blocks, about a third more of their FLOPs) for
          the largest saving.
        * ``"off"`` (or ``False``): everything is stored, PyTorch's default.

    Returns
    -------
    int
        How many modules were switched (0: none of these blocks in ``module``).
    """
    level = recompute_level(level)
    switched = 0
    for m in module.modules():
        if isinstance(m, (ConvBNAct, ResidualBlock, MBConv)):
            m.recompute = level
            switched += 1
    return switched


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int, default 3
        Square kernel; padding is ``kernel_size // 2`` ("same" for stride 1 and odd kernels).
    stride : int, default 1
    groups : int, default 1
        ``groups == in_channels == out_channels`` gives a depthwise convolution.
    act : str or None, default "silu"
        Activation name (see :func:`make_activation`); ``None`` for a linear output (conv + BN).

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: Optional[str] = "silu",
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            make_activation(act),
        )
        self.recompute = "off"  # see set_recompute

    def forward(self, x: Tensor) -> Tensor:
        if not _recompute_active(self):
            return super().forward(x)
        conv, bn, act = self
        return recompute_region(_bn_act, bn, act, conv(x))  # keeps the conv output, not BN's


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: channel gates from globally pooled features.

    Parameters
    ----------
    channels : int
        Channels of the tensor being gated.
    squeeze_channels : int
        Width of the bottleneck (EfficientNet: ``max(1, int(block_in_channels * 0.25))``).
    act : str, default "silu"

    Shapes
    ------
    (B, C, H, W) -> (B, C, H, W)
    """

    def __init__(self, channels: int, squeeze_channels: int, act: str = "silu") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        s = torch.sigmoid(self.expand(self.act(self.reduce(s))))  # (B, C, 1, 1)
        return x * s  # (B, C, H, W)


def drop_connect(x: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole samples of a residual branch with probability ``p`` (stochastic depth).

    Kept samples are scaled by ``1 / (1 - p)`` so the expectation is unchanged; identity when not
    training or ``p == 0``.
    """
    if not training or p <= 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    mask.bernoulli_(keep)  # (B, 1, 1, 1)
    return x * mask / keep


class MBConv(nn.Module):
    """EfficientNet-B0 mobile inverted bottleneck block.

    expansion 1x1 (skipped when ``expand_ratio == 1``) -> depthwise kxk (stride) ->
    squeeze-excitation -> 1x1 projection (BN, no activation) -> ``+ input`` when
    ``stride == 1 and in_channels == out_channels`` (with optional drop-connect on the branch).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int, default 3
        Depthwise kernel (3 or 5 in B0).
    stride : int, default 1
        1 or 2.
    expand_ratio : int, default 6
    se_ratio : float, default 0.25
        Squeeze width relative to ``in_channels``; 0 disables squeeze-excitation.
    drop_connect_rate : float, default 0.0
        Probability of dropping the residual branch per sample in training.
    act : str, default "silu"

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: int = 6,
        se_ratio: float = 0.25,
        drop_connect_rate: float = 0.0,
        act: str = "silu",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ParameterError(f"MBConv stride must be 1 or 2, got {stride}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ParameterError(f"MBConv kernel_size must be odd and positive, got {kernel_size}")
        if expand_ratio < 1:
            raise ParameterError(f"MBConv expand_ratio must be >= 1, got {expand_ratio}")
        if not 0.0 <= drop_connect_rate < 1.0:
            raise ParameterError(f"drop_connect_rate must be in [0, 1), got {drop_connect_rate}")
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_connect_rate = float(drop_connect_rate)
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, act=act) if expand_ratio != 1 else nn.Identity()
        )
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride=stride, groups=hidden, act=act)
        self.se = (
            SqueezeExcite(hidden, max(1, int(in_channels * se_ratio)), act=act)
            if se_ratio > 0
            else nn.Identity()
        )
        self.project = ConvBNAct(hidden, out_channels, 1, act=None)
        self.recompute = "off"  # see set_recompute

    def forward(self, x: Tensor) -> Tensor:
        if _keeps_only_input(self):
            # Keeps x only; drop-connect's mask is redrawn identically (checkpoint restores the RNG).
            return recompute_region(self._forward, x)
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        h = self.expand(x)  # (B, in*expand, H, W)
        h = self.depthwise(h)  # (B, in*expand, H', W')
        h = self.se(h)  # (B, in*expand, H', W')
        h = self.project(h)  # (B, out, H', W')
        if self.use_residual:
            h = drop_connect(h, self.drop_connect_rate, self.training) + x
        return h


@dataclass(frozen=True)
class MBConvStage:
    """One row of an EfficientNet stage table.

    Attributes
    ----------
    expand_ratio : int
    kernel_size : int
    stride : int
        Stride of the first block of the stage (the others use 1).
    out_channels : int
    repeats : int
        Number of MBConv blocks in the stage.
    """

    expand_ratio: int
    kernel_size: int
    stride: int
    out_channels: int
    repeats: int

    @classmethod
    def coerce(cls, spec: "MBConvStage | Sequence[int]") -> "MBConvStage":
        """Accept a stage or a 5-sequence ``(expand_ratio, kernel_size, stride, out_channels, repeats)``."""
        if isinstance(spec, MBConvStage):
            return spec
        values = tuple(spec)
        if len(values) != 5 or not all(isinstance(v, int) and v > 0 for v in values):
            raise ParameterError(
                "an MBConv stage is 5 positive integers (expand_ratio, kernel_size, stride, "
                f"out_channels, repeats); got {spec!r}"
            )
        return cls(*values)


def mbconv_stack(
    in_channels: int,
    stages: Iterable["MBConvStage | Sequence[int]"],
    *,
    se_ratio: float = 0.25,
    drop_connect_rate: float = 0.0,
    act: str = "silu",
) -> tuple[nn.Sequential, int]:
    """Build a sequence of MBConv stages.

    Parameters
    ----------
    in_channels : int
        Channels of the stack's input.
    stages : iterable of MBConvStage or 5-tuples
        ``(expand_ratio, kernel_size, stride, out_channels, repeats)`` per stage.
    se_ratio : float, default 0.25
    drop_connect_rate : float, default 0.0
        Maximum drop-connect rate, scaled linearly with block depth as in EfficientNet
        (block ``b`` of ``n`` uses ``rate * b / n``).
    act : str, default "silu"

    Returns
    -------
    (torch.nn.Sequential, int)
        The stack (one ``nn.Sequential`` per stage) and its output channel count.
    """
    specs = [MBConvStage.coerce(s) for s in stages]
    if not specs:
        raise ParameterError("an MBConv stack needs at least one stage")
    total = sum(s.repeats for s in specs)
    layers: list[nn.Module] = []
    channels = in_channels
    block = 0
    for spec in specs:
        stage: list[nn.Module] = []
        for r in range(spec.repeats):
            stage.append(
                MBConv(
                    channels,
                    spec.out_channels,
                    kernel_size=spec.kernel_size,
                    stride=spec.stride if r == 0 else 1,
                    expand_ratio=spec.expand_ratio,
                    se_ratio=se_ratio,
                    drop_connect_rate=drop_connect_rate * block / total,
                    act=act,
                )
            )
            channels = spec.out_channels
            block += 1
        layers.append(nn.Sequential(*stage))
    return nn.Sequential(*layers), channels


class ResidualBlock(nn.Module):
    """Residual unit of the cytoself decoders: ``act(x + BN(conv(act(BN(conv(x))))))``.

    Parameters
    ----------
    channels : int
        Input and output channels.
    kernel_size : int, default 3
    act : str, default "silu"

    Shapes
    ------
    (B, C, H, W) -> (B, C, H, W)
    """

    def __init__(self, channels: int, kernel_size: int = 3, act: str = "silu") -> None:
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels, kernel_size, act=act)
        self.conv2 = ConvBNAct(channels, channels, kernel_size, act=None)
        self.act = make_activation(act)
        self.recompute = "off"  # see set_recompute

    def forward(self, x: Tensor) -> Tensor:
        if not _recompute_active(self):
            return self.act(x + self.conv2(self.conv1(x)))  # (B, C, H, W)
        if _keeps_only_input(self):
            # Keeps x only; the element-wise regions inside are nested (their reruns stop as before).
            return recompute_region(self.forward_elementwise, x)
        return self.forward_elementwise(x)

    def keeps_only_input(self) -> bool:
        """Whether this call keeps only the unit's input for backward (level ``"residual"``,
        training, gradients on)."""
        return _keeps_only_input(self)

    def forward_elementwise(self, x: Tensor) -> Tensor:
        """The unit at recomputation level ``"elementwise"`` (what a ``"residual"`` region reruns)."""
        conv1, bn1, act1 = self.conv1
        conv2, bn2, _ = self.conv2
        c1 = conv1(x)  # (B, C, H, W), kept
        # Keeps c1 only; the rerun stops once conv2's input is back, before conv2 itself runs.
        c2 = recompute_region(_bn_act_conv, bn1, act1, conv2, c1)  # (B, C, H, W)
        return recompute_region(_bn_add_act, bn2, self.act, c2, x)  # keeps c2 and x (already kept)


_INTERP_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def resize(x: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize a (B, C, H, W) tensor to exactly ``size = (H', W')``.

    ``bilinear`` / ``bicubic`` use ``align_corners=False`` (the convention of
    ``tf.image.resize`` and ``torch.nn.Upsample``). Returns ``x`` itself when the size already
    matches.
    """
    if mode not in _INTERP_MODES:
        raise ParameterError(f"unknown interpolation mode {mode!r}; expected one of {_INTERP_MODES}")
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(x, size=size, mode=mode, align_corners=False)
    return F.interpolate(x, size=size, mode=mode)


class Resize(nn.Module):
    """Module form of :func:`resize` (an upsampling layer to an exact size)."""

    def __init__(self, size: tuple[int, int], mode: str = "bilinear") -> None:
        super().__init__()
        if mode not in _INTERP_MODES:
            raise ParameterError(f"unknown interpolation mode {mode!r}; expected one of {_INTERP_MODES}")
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return resize(x, self.size, self.mode)  # (B, C, *size)

    def extra_repr(self) -> str:
        return f"size={self.size}, mode={self.mode!r}"


class MLPHead(nn.Module):
    """Fully connected classifier: (Linear -> act -> Dropout) per hidden width, then Linear.

    Parameters
    ----------
    in_features : int
    hidden : sequence of int
        Hidden widths (may be empty: a single linear layer).
    out_features : int
    dropout : float, default 0.5
    act : str, default "relu"

    Shapes
    ------
    (B, *) -> (B, out_features) logits; the input is flattened from dimension 1.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        dropout: float = 0.5,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), make_activation(act), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(torch.flatten(x, 1))  # (B, out_features)
