"""Inception-V3 with torchvision's parameter names, for a user's torchvision-style checkpoint.

The CNN-vs-FCN paper also fine-tuned an ImageNet-pretrained Inception-V3 on its 13 classes. No
ImageNet weights can be reached offline here, so the chapter cannot download them; this module is
the code path for a user who has such a checkpoint (e.g. torchvision's ``inception_v3`` weights
saved with ``torch.save(model.state_dict(), path)``).

:class:`InceptionV3` builds the network so that its ``state_dict`` has exactly the keys and
shapes of torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.
running_mean``, ``AuxLogits.fc.weight``, ``fc.bias`` …), written from torchvision's definition
(Szegedy et al. 2016, "Rethinking the Inception architecture"). With the auxiliary head and 1000
classes it has 27,161,264 parameters, as torchvision documents. Shapes (B = batch)::

    (B, 3, 299, 299) -> stem: 5 BasicConv2d, 2 max pools      -> (B, 192, 35, 35)
      Mixed_5b/5c/5d (InceptionA)                             -> (B, 288, 35, 35)
      Mixed_6a (InceptionB, grid reduction)                   -> (B, 768, 17, 17)
      Mixed_6b..6e (InceptionC, factorised 7x7)               -> (B, 768, 17, 17)  [AuxLogits here]
      Mixed_7a (InceptionD, grid reduction)                   -> (B, 1280, 8, 8)
      Mixed_7b/7c (InceptionE)                                -> (B, 2048, 8, 8)
      global average pool, dropout, fc                        -> (B, num_classes)

:func:`load_inception_checkpoint` reads a checkpoint with ``torch.load(..., weights_only=True)``
(no code in the file is executed) and refuses one whose keys or shapes differ, naming the file and
the first mismatching key. :func:`adapt_to_hpa` then turns the 1000-class, 3-channel network into
the chapter's 13-output, 4-channel one:

* **Heads**: ``fc`` and ``AuxLogits.fc`` are replaced by fresh 13-output layers.
* **Input**: the first convolution gets 4 input channels, initialised from the RGB weights so that
  the network sees exactly what the RGB network would see on the HPA colour composite
  (microtubules red, protein green, nucleus blue, ER yellow = red + green): the weights of the
  microtubule channel are the red ones, of the protein channel the green ones, of the nucleus
  channel the blue ones and of the ER channel red + green. (The alternative, feeding three of the
  four channels as RGB, would drop the ER channel.)

:class:`HPAInception` wraps the adapted network for the chapter's images: 4-channel images in
[0, 1] of any size are resized to ``input_size`` (299 by default) and scaled to [-1, 1], the
range of torchvision's Inception weights (ported from TensorFlow).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlaskit.errors import DataError, ParameterError

__all__ = [
    "InceptionV3", "InceptionOutputs", "BasicConv2d", "load_inception_checkpoint", "adapt_to_hpa",
    "rgb_composite_weights", "HPAInception", "inception_step", "TORCHVISION_PARAMETERS",
]

#: Parameters of torchvision's ``inception_v3`` (aux_logits=True, 1000 classes), as its
#: documentation lists them (``Inception_V3_Weights.IMAGENET1K_V1.meta["num_params"]``).
TORCHVISION_PARAMETERS = 27_161_264


class InceptionOutputs(NamedTuple):
    """What :class:`InceptionV3` returns in training mode with the auxiliary head."""

    logits: Tensor
    aux_logits: Tensor | None


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU: ``conv.*`` and ``bn.*`` keys."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_branch(x: Tensor, conv: nn.Module) -> Tensor:
    """3 × 3 average pooling (stride 1, padding 1), then ``conv``: the pooling branch."""
    return conv(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))


class InceptionA(nn.Module):
    """35 × 35 block: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1 (``pool_features``)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            _avg_pool_branch(x, self.branch_pool),
        ], 1)  # (B, 224 + pool_features, H, W)


class InceptionB(nn.Module):
    """Grid reduction 35 → 17: strided 3×3 | 1×1→3×3→strided 3×3 | max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)  # (B, 480 + in_channels, H', W')


class InceptionC(nn.Module):
    """17 × 17 block with factorised 7×7 convolutions (1×7 and 7×1), ``channels_7x7`` wide."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c = channels_7x7
        row, col = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c, c, **row)
        self.branch7x7_3 = BasicConv2d(c, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c, c, **col)
        self.branch7x7dbl_3 = BasicConv2d(c, c, **row)
        self.branch7x7dbl_4 = BasicConv2d(c, c, **col)
        self.branch7x7dbl_5 = BasicConv2d(c, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for name in ("branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"):
            double = getattr(self, name)(double)
        return torch.cat([self.branch1x1(x), seven, double, _avg_pool_branch(x, self.branch_pool)], 1)  # (B, 768, H, W)


class InceptionD(nn.Module):
    """Grid reduction 17 → 8: 1×1→strided 3×3 | 1×1→1×7→7×1→strided 3×3 | max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = x
        for name in ("branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"):
            seven = getattr(self, name)(seven)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven,
                          F.max_pool2d(x, kernel_size=3, stride=2)], 1)  # (B, 512 + in_channels, H', W')


class InceptionE(nn.Module):
    """8 × 8 block with expanded filter banks (parallel 1×3 and 3×1 outputs concatenated)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1),
            torch.cat([self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b)], 1),
            _avg_pool_branch(x, self.branch_pool),
        ], 1)  # (B, 2048, H, W)


class InceptionAux(nn.Module):
    """The auxiliary classifier on the 17 × 17 grid: avg pool 5/3, 1×1 (128), 5×5 (768), fc."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.avg_pool2d(x, kernel_size=5, stride=3)  # (B, 768, 5, 5) for a 17 × 17 grid
        x = self.conv1(self.conv0(x))  # (B, 768, 1, 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))  # (B, num_classes)


class InceptionV3(nn.Module):
    """Inception-V3 whose ``state_dict`` matches torchvision's ``Inception3`` key for key.

    Parameters
    ----------
    num_classes : int
        Outputs of ``fc`` (and of ``AuxLogits.fc``); torchvision's ImageNet weights have 1000.
    aux_logits : bool
        Build the auxiliary head (its output is returned in training mode only).
    in_channels : int
        Input channels of ``Conv2d_1a_3x3`` (3 for torchvision's weights).
    dropout : float
        Dropout before ``fc``.

    Shapes
    ------
    (B, in_channels, 299, 299) -> (B, num_classes) logits in eval mode; in training mode with
    ``aux_logits`` an :class:`InceptionOutputs` (logits, aux_logits). Inputs down to 75 × 75 work
    (299 × 299 when the auxiliary head runs, in training).
    """

    def __init__(self, num_classes: int = 1000, *, aux_logits: bool = True, in_channels: int = 3,
                 dropout: float = 0.5) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"InceptionV3 {name} must be a positive integer, not {value!r}")
        self.aux_logits = bool(aux_logits)
        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if self.aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():  # truncated normal weights, as torchvision initialises them
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.1, a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def in_channels(self) -> int:
        return self.Conv2d_1a_3x3.conv.in_channels

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def forward(self, x: Tensor):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise DataError(f"expected images (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 75:
            raise DataError(f"Inception-V3 needs images of at least 75 × 75, got {tuple(x.shape[-2:])}")
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                     "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = getattr(self, name)(x)  # ends at (B, 768, 17, 17) for 299 × 299 input
        aux = None
        if self.AuxLogits is not None and self.training:
            if min(x.shape[-2:]) < 17:
                raise DataError(f"the auxiliary head needs the 17 × 17 grid of a 299 × 299 input; this input gives "
                                f"{tuple(x.shape[-2:])}: use 299 × 299 images or aux_logits=False")
            aux = self.AuxLogits(x)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # (B, 2048, 8, 8)
        logits = self.fc(torch.flatten(self.dropout(self.avgpool(x)), 1))  # (B, num_classes)
        return InceptionOutputs(logits, aux) if aux is not None else logits


def load_inception_checkpoint(path: str | os.PathLike, model: InceptionV3 | None = None) -> InceptionV3:
    """Load a torchvision-style Inception-V3 ``state_dict`` into ``model`` (default: a fresh
    1000-class, 3-channel :class:`InceptionV3` with the auxiliary head).

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: tensors
    only, no pickled code runs. A dict with a ``"state_dict"`` or ``"model"`` entry is unwrapped,
    and a ``"module."`` prefix (from ``DataParallel``) is removed.

    Raises
    ------
    DataError
        The file cannot be read as a tensor dict, or its keys or shapes differ from the model's:
        one line naming the file and the first mismatching key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such Inception-V3 checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's data problem
        raise DataError(f"{path}: not a weights-only torch checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model = model if model is not None else InceptionV3()
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise DataError(f"{path}: not a torchvision Inception-V3 checkpoint for this model: key {key!r} is missing")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise DataError(f"{path}: key {key!r} has shape {tuple(state[key].shape)}, the model expects "
                            f"{tuple(tensor.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise DataError(f"{path}: unexpected key {extra[0]!r} ({len(extra)} keys the model does not have)")
    model.load_state_dict(state, strict=True)
    return model


def rgb_composite_weights(rgb_weight: Tensor) -> Tensor:
    """First-convolution weights for HPA's 4 channels from RGB weights ``(out, 3, k, k)``.

    Channels of the result (the chapter's order): protein = green, nucleus = blue, microtubules =
    red, ER = red + green. Convolving the 4 channels with them equals convolving the HPA colour
    composite (R = microtubules + ER, G = protein + ER, B = nucleus) with the RGB weights.
    """
    if rgb_weight.dim() != 4 or rgb_weight.shape[1] != 3:
        raise ParameterError(f"expected RGB convolution weights (out, 3, k, k), got {tuple(rgb_weight.shape)}")
    red, green, blue = rgb_weight[:, 0], rgb_weight[:, 1], rgb_weight[:, 2]
    return torch.stack([green, blue, red, red + green], dim=1)  # (out, 4, k, k)


def adapt_to_hpa(model: InceptionV3, num_classes: int = 13, *, seed: int = 0) -> InceptionV3:
    """Turn a 3-channel, 1000-class Inception-V3 into the chapter's 4-channel, ``num_classes`` one.

    The first convolution's weights come from :func:`rgb_composite_weights`; ``fc`` and
    ``AuxLogits.fc`` are replaced by fresh layers (truncated-normal weights from ``seed``, zero
    biases). Everything else keeps the checkpoint's weights. Changes ``model`` in place and returns it.
    """
    if model.in_channels != 3:
        raise ParameterError(f"adapt_to_hpa expects the 3-channel (RGB) network, got {model.in_channels} channels")
    old = model.Conv2d_1a_3x3.conv
    conv = nn.Conv2d(4, old.out_channels, kernel_size=old.kernel_size, stride=old.stride, padding=old.padding,
                     bias=False)
    with torch.no_grad():
        conv.weight.copy_(rgb_composite_weights(old.weight))
    model.Conv2d_1a_3x3.conv = conv
    generator = torch.Generator().manual_seed(int(seed))

    def fresh(width: int) -> nn.Linear:
        layer = nn.Linear(width, num_classes)
        with torch.no_grad():
            layer.weight.copy_(torch.fmod(torch.randn(layer.weight.shape, generator=generator), 2) * 0.001)
            layer.bias.zero_()
        return layer

    model.fc = fresh(model.fc.in_features)
    if model.AuxLogits is not None:
        model.AuxLogits.fc = fresh(model.AuxLogits.fc.in_features)
    return model


class HPAInception(nn.Module):
    """An adapted :class:`InceptionV3` on the chapter's images: (B, 4, S, S) in [0, 1] are resized
    to ``input_size`` (bilinear) and scaled to [-1, 1]; returns logits (B, 13) (plus the auxiliary
    logits in training mode, as :class:`InceptionOutputs`). Below 299 × 299 the auxiliary head's
    grid is too small, and the head is removed (a cheaper, smaller input for tests or a CPU)."""

    kind = "inception"

    def __init__(self, network: InceptionV3, input_size: int = 299) -> None:
        super().__init__()
        if network.in_channels != 4:
            raise ParameterError("HPAInception needs the 4-channel network (adapt_to_hpa)")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 75:
            raise ParameterError(f"input_size must be an integer of at least 75, not {input_size!r}")
        if input_size < 299 and network.AuxLogits is not None:  # its grid would be too small
            network.AuxLogits, network.aux_logits = None, False
        self.network = network
        self.input_size = input_size

    def forward(self, x: Tensor):
        if x.dim() != 4 or x.shape[1] != 4:
            raise DataError(f"expected images (B, 4, S, S), got {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.network(x * 2.0 - 1.0)  # (B, 13), or (logits, aux) in training

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities (B, 13) in [0, 1]."""
        out = self(x)
        logits = out.logits if isinstance(out, InceptionOutputs) else out
        return torch.sigmoid(logits.float())


def inception_step(model: nn.Module, batch, aux_weight: float = 0.4) -> dict[str, Tensor]:
    """``(images, labels, ...)`` batch: binary cross-entropy of the 13 outputs, plus ``aux_weight``
    × that of the auxiliary head in training (0.4, as in the Inception-V3 paper)."""
    x, y = batch[0], batch[1].float()
    out = model(x)
    logits, aux = (out.logits, out.aux_logits) if isinstance(out, InceptionOutputs) else (out, None)
    loss = F.binary_cross_entropy_with_logits(logits.float(), y)
    if aux is not None:
        loss = loss + aux_weight * F.binary_cross_entropy_with_logits(aux.float(), y)
    with torch.no_grad():
        exact = ((logits > 0) == (y > 0.5)).all(dim=1).float().mean()
    return {"loss": loss, "metric_exact_match_at_0.5": exact}
