"""cytoself (Kobayashi et al., Nature Methods 2022): a two-level VQ-VAE with a protein-ID pretext.

Architecture (shapes for :meth:`CytoselfConfig.paper`; B = batch)::

    images (B, 2, 100, 100)   protein in [0, 1]; nucleus as a signed distance in [-1, 1]
      encoder1: stem 3x3/2 -> MBConv stages (EfficientNet-B0 rows 1-3) -> 1x1 head + BN + SiLU
    z1 (B, 64, 25, 25)        local representation, before quantization
      VQ1: codebook 2048 x 64, no split            -> q1 (B, 64, 25, 25), indices (B, 25, 25)
      encoder2 (reads z1, the PRE-quantization encoder1 output, as both public codes do):
               MBConv stages (EfficientNet-B0 rows 4-7, strides 2, 2, 2, 1) -> 1x1 head + BN + SiLU
    z2 (B, 576, 4, 4)         global representation, before quantization
      VQ2: 9 splits of 64 per position against ONE 2048 x 64 codebook -> q2 (B, 576, 4, 4),
           indices (B, 9, 4, 4)
      decoder2: q2 -> (B, 64, 25, 25), trained to match z1 (the ``decoder2`` loss)
      decoder1: concat[resize(q2 -> 25x25), q1] (B, 640, 25, 25) -> (B, 2, 100, 100)
      classifier1: flatten(q1) (B, 40000) -> 1000 -> 1311 ;  classifier2: flatten(q2) (B, 9216) -> ...

Losses returned by :meth:`CytoselfModel.compute_losses` (all scalars)::

    reconstruction = mean((decoder1(x) - x)^2) / data_variance
    decoder2       = mean((decoder2(q2) - z1)^2)                   (not scaled by the variance)
    vq1, vq2       = codebook + 0.25 * commitment                   (see atlaskit.models.vq)
    classifier1/2  = cross-entropy of the protein ID                (only with id_pretext)
    loss           = reconstruction + decoder2_weight * decoder2
                     + vq_weight * (vq1 + vq2) + classifier_weight * (classifier1 + classifier2)

plus diagnostics that are not losses (detached, prefix ``metric_``): ``metric_perplexity1``,
``metric_perplexity2`` and, with the pretext, ``metric_accuracy1``, ``metric_accuracy2``.

Decisions where the paper and its two public implementations (royerlab/cytoself: the
TensorFlow code used for the paper, and the later PyTorch port) differ or are silent
-------------------------------------------------------------------------------------
* Classifier input: the QUANTIZED vectors (straight-through), flattened. Both public codes do
  this (TF: ``fc_blocks`` on the VQ output; PyTorch: ``fc_input_type='vqvec'``).
  ``classifier_input="encoded"`` switches to the pre-quantization maps.
* Classifier depth: both public codes build ``num_fc_layers=2`` fully connected layers, i.e. ONE
  hidden layer of 1000 units (ReLU, dropout 0.5) followed by the output layer. ``paper()`` follows
  the code: ``classifier_hidden=(1000,)``. Use ``classifier_hidden=(1000, 1000)`` for the reading
  "two hidden layers of 1000".
* Decoder inputs: the quantized (straight-through) vectors, as in the TF code. (The PyTorch port
  feeds the decoders with the pre-quantization encoder outputs.)
* decoder2 target: encoder1's output ``z1`` NOT detached -- both public codes let the gradient of
  this MSE reach encoder1 (TF ``SimpleMSE``, PyTorch ``nn.MSELoss()(dec(encd), encoded)``).
  ``decoder2_detach_target=True`` stops it. The term is not divided by the data variance.
* Reconstruction scaling: the MSE is divided by ``data_variance``, the variance of the whole
  training array (all pixels of all channels of all training images, ``np.var(train_data)`` in
  the public code). It is a config value and a persistent buffer (saved in the state dict); set it
  with :meth:`CytoselfModel.set_data_variance` before training (default 1.0 = plain MSE).
* Upsampling VQ2 to 25x25 for decoder1: bilinear (TF ``UpConcat2D(interpolation='bilinear')``;
  the PyTorch port uses nearest) -- ``global_upsample_mode``.
* Decoder1 channel order: [upsampled VQ2, VQ1] as in both codes.
* Decoders: TF ``Decoderres_bicub``: first 3x3 conv-BN-SiLU to 64 channels, then per block
  bilinear x2 upsampling (here: resize to the exact target size ``ceil(out / 2**k)``, as the
  PyTorch port does), 2 residual units, conv-BN-SiLU halving the width down to 32; decoder1 ends
  with a linear 3x3 conv (with bias) to the image channels; decoder2's last conv-BN-SiLU outputs
  64 channels (encoder1's output is also post-SiLU). Batch norm is affine (Keras default).
* Encoder2 has no stem: its first MBConv reads the 64 channels of z1 directly (TF
  ``isencoder=2``); the PyTorch port adds a 3x3 stride-1 stem instead.
* Drop-connect: 0 (the TF EfficientNet default used by cytoself; the PyTorch port uses
  torchvision's 0.2 stochastic depth). ``drop_connect_rate`` sets it.
* Codebook initialisation: uniform in +-sqrt(3 / K) (PyTorch port; TF used Keras' +-0.05).
* ``nucleus_distance`` is only recorded: False means the data layer feeds the raw normalised
  nucleus (Hoechst) image instead of its signed distance transform; the network is identical.
  ``use_nucleus=False`` builds a 1-channel (protein only) model that reconstructs only the protein.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.blocks import (
    ConvBNAct,
    MLPHead,
    Resize,
    ResidualBlock,
    mbconv_stack,
    recompute_region,
    resize,
)
from atlaskit.models.cytoself_config import (  # noqa: F401  (re-exported: the configuration lives there)
    _TUPLE_FIELDS, _UPSAMPLE_MODES, PAPER_ENCODER1, PAPER_ENCODER2, CytoselfConfig, Stage,
)
from atlaskit.models.vq import VectorQuantizer, VQOutput

__all__ = ["CytoselfConfig", "CytoselfModel", "CytoselfOutput", "ResNetDecoder"]


class ResNetDecoder(nn.Module):
    """cytoself residual decoder from (in_channels, in_size, in_size) to (out_channels, out_size, out_size).

    first conv3x3-BN-SiLU to ``hidden`` (none when ``hidden`` is None: the blocks start at
    ``in_channels``, as in the public PyTorch port); then ``n = ceil(log2(out_size / in_size))`` blocks of
    [resize to ``ceil(out_size / 2**(n-1-i))``, ``residual_units`` x :class:`ResidualBlock`,
    conv3x3-BN-SiLU halving the width (not below ``min_hidden``)]; then either a linear conv3x3
    with bias to ``out_channels`` (``linear_output=True``) or -- for ``linear_output=False`` --
    the last block's conv-BN-SiLU outputs ``out_channels`` directly.

    Shapes
    ------
    (B, in_channels, in_size, in_size) -> (B, out_channels, out_size, out_size)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        hidden: Optional[int] = 64,
        min_hidden: int = 32,
        residual_units: int = 2,
        upsample_mode: str = "bilinear",
        linear_output: bool = True,
        act: str = "silu",
    ) -> None:
        super().__init__()
        if out_size < in_size:
            raise ParameterError(f"ResNetDecoder cannot shrink {in_size} to {out_size}")
        n_blocks = 1
        while in_size * 2**n_blocks < out_size:
            n_blocks += 1
        # hidden=None: no first conv, the blocks run at the input width (the PyTorch port).
        self.first = nn.Identity() if hidden is None else ConvBNAct(in_channels, hidden, 3, act=act)
        blocks: list[nn.Module] = []
        width = in_channels if hidden is None else hidden
        for i in range(n_blocks):
            target = -(-out_size // 2 ** (n_blocks - 1 - i))  # ceil division
            nxt = max(width // 2, min_hidden)
            if i == n_blocks - 1 and not linear_output:
                nxt = out_channels
            blocks.append(
                nn.Sequential(
                    Resize((target, target), upsample_mode),
                    *[ResidualBlock(width, act=act) for _ in range(residual_units)],
                    ConvBNAct(width, nxt, 3, act=act),
                )
            )
            width = nxt
        self.blocks = nn.Sequential(*blocks)
        self.last = nn.Conv2d(width, out_channels, 3, padding=1) if linear_output else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(x)  # (B, hidden, in_size, in_size)
        for block in self.blocks:
            upsample, unit = block[0], block[1]
            if isinstance(unit, ResidualBlock) and unit.keeps_only_input():
                # Resizing inside the first unit's recomputed region: the region keeps the small
                # input (a quarter of the pixels), not the resized map.
                h = recompute_region(_resize_then_unit, upsample, unit, h)  # (B, width, target, target)
                h = block[2:](h)
            else:
                h = block(h)  # (B, width, target, target)
        return self.last(h)  # (B, out_channels, out_size, out_size)


def _resize_then_unit(upsample: nn.Module, unit: ResidualBlock, x: Tensor) -> Tensor:
    return unit.forward_elementwise(upsample(x))


class _Encoder(nn.Module):
    """[optional stride-2 stem] -> MBConv stages -> 1x1 conv-BN-SiLU head."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stages: tuple[Stage, ...],
        stem_channels: Optional[int],
        se_ratio: float,
        drop_connect_rate: float,
    ) -> None:
        super().__init__()
        if stem_channels is not None:
            self.stem: nn.Module = ConvBNAct(in_channels, stem_channels, 3, stride=2)
            width = stem_channels
        else:
            self.stem = nn.Identity()
            width = in_channels
        self.blocks, width = mbconv_stack(
            width, stages, se_ratio=se_ratio, drop_connect_rate=drop_connect_rate
        )
        self.head = ConvBNAct(width, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


@dataclass
class CytoselfOutput:
    """Everything one forward pass computes (shapes for the paper config).

    Attributes
    ----------
    reconstruction : Tensor
        (B, C, 100, 100) decoder1 output (linear).
    local_pre, global_pre : Tensor
        (B, 64, 25, 25) and (B, 576, 4, 4) encoder outputs before quantization.
    vq1, vq2 : VQOutput
        Quantizer results; ``vq1.quantized`` (B, 64, 25, 25), ``vq1.indices`` (B, 1, 25, 25),
        ``vq2.quantized`` (B, 576, 4, 4), ``vq2.indices`` (B, 9, 4, 4).
    decoded_local : Tensor
        (B, 64, 25, 25) decoder2 output (prediction of ``local_pre``).
    logits1, logits2 : Tensor or None
        (B, num_classes) classifier logits on VQ1 / VQ2; None without the ID pretext.
    """

    reconstruction: Tensor
    local_pre: Tensor
    global_pre: Tensor
    vq1: VQOutput
    vq2: VQOutput
    decoded_local: Tensor
    logits1: Optional[Tensor] = None
    logits2: Optional[Tensor] = None


class CytoselfModel(nn.Module):
    """The cytoself network (see the module docstring for the architecture and decisions).

    Parameters
    ----------
    config : CytoselfConfig
        Copied; ``model.config`` is the model's own copy.
    channels_last : bool, default True
        Convert the input to channels-last (NHWC) memory format before the first convolution, so
        every activation is NHWC. On CPU (oneDNN) the backward pass of the 5x5 depthwise
        convolutions is about 25x slower in NCHW; the result is numerically the same.

    Examples
    --------
    >>> model = CytoselfModel(CytoselfConfig.tiny(num_classes=10))
    >>> x = torch.rand(4, 2, 100, 100); y = torch.randint(0, 10, (4,))
    >>> losses = model.compute_losses(x, y); losses["loss"].backward()
    >>> sorted(model.encode(x))
    ['global_', 'global_indices', 'global_pre', 'local', 'local_indices', 'local_pre']
    """

    def __init__(self, config: CytoselfConfig, channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = bool(channels_last)
        if not isinstance(config, CytoselfConfig):
            raise ParameterError(f"CytoselfModel needs a CytoselfConfig, got {type(config).__name__}")
        self.config = dataclasses.replace(config)  # own copy: set_data_variance edits it
        c = self.config
        loc, glo = c.local_size, c.global_size
        self.encoder1 = _Encoder(
            c.in_channels, c.local_dim, c.encoder1_stages, c.stem_channels, c.se_ratio, c.drop_connect_rate
        )
        self.encoder2 = _Encoder(
            c.local_dim, c.global_channels, c.encoder2_stages, None, c.se_ratio, c.drop_connect_rate
        )
        self.vq1 = VectorQuantizer(c.local_codebook_size, c.local_dim, c.local_dim, c.commitment)
        self.vq2 = VectorQuantizer(
            c.global_codebook_size, c.vq2_embedding_dim, c.global_channels, c.commitment
        )
        self.decoder2 = ResNetDecoder(
            c.global_channels, c.local_dim, glo, loc,
            hidden=c.decoder_hidden, min_hidden=c.decoder_min_hidden,
            residual_units=c.decoder_residual_units, upsample_mode=c.upsample_mode,
            linear_output=False,
        )
        self.decoder1 = ResNetDecoder(
            c.global_channels + c.local_dim, c.in_channels, loc, c.image_size,
            hidden=c.decoder_hidden, min_hidden=c.decoder_min_hidden,
            residual_units=c.decoder_residual_units, upsample_mode=c.upsample_mode,
            linear_output=True,
        )
        self.classifier1: Optional[MLPHead] = None
        self.classifier2: Optional[MLPHead] = None
        if c.id_pretext and 1 in c.classifiers:
            self.classifier1 = MLPHead(
                c.local_dim * loc * loc, c.classifier_hidden, c.num_classes, c.classifier_dropout
            )
        if c.id_pretext and 2 in c.classifiers:
            self.classifier2 = MLPHead(
                c.global_channels * glo * glo, c.classifier_hidden, c.num_classes, c.classifier_dropout
            )
        self.register_buffer("data_variance", torch.tensor(float(c.data_variance), dtype=torch.float32))
        self._init_weights()

    def _init_weights(self) -> None:
        # Encoders: EfficientNet's He-normal (fan_out); decoders: Xavier-normal (public PyTorch
        # port; keeps the initial reconstruction near the data scale). Linear layers: torch default.
        def he_fan_out(w: Tensor) -> None:
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")

        for part, init in (
            ((self.encoder1, self.encoder2), he_fan_out),
            ((self.decoder1, self.decoder2), nn.init.xavier_normal_),
        ):
            for module in part:
                for m in module.modules():
                    if isinstance(m, nn.Conv2d):
                        init(m.weight)
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ utilities
    def num_parameters(self, trainable_only: bool = True) -> int:
        """Number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def set_data_variance(self, value: float) -> None:
        """Set the variance of the training images that scales the reconstruction loss.

        Parameters
        ----------
        value : float
            ``np.var`` of the whole training array (all pixels, all channels), as in the public
            code. Stored in the ``data_variance`` buffer (saved with the state dict) and the config.
        """
        value = float(value)
        if not (math.isfinite(value) and value > 0):
            raise ParameterError(f"data_variance must be finite and > 0, got {value}")
        self.data_variance.fill_(value)
        self.config.data_variance = value

    def _memory_format(self, images: Tensor) -> Tensor:
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def _check_images(self, images: Tensor) -> None:
        c = self.config
        expected = f"(B, {c.in_channels}, {c.image_size}, {c.image_size})"
        what = "protein, nucleus" if c.use_nucleus else "protein only, use_nucleus=False"
        if not isinstance(images, Tensor):
            raise DataError(
                f"cytoself expects a torch.Tensor of shape {expected} ({what}), got {type(images).__name__}"
            )
        if images.dim() != 4 or tuple(images.shape[1:]) != c.input_shape:
            raise DataError(
                f"cytoself expects images of shape {expected} ({what}); got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise DataError(f"cytoself expects floating-point images, got dtype {images.dtype}")

    def _check_labels(self, labels: Optional[Tensor], batch: int) -> Tensor:
        n = self.config.num_classes
        if labels is None:
            raise DataError("labels (protein IDs, shape (B,)) are required when id_pretext=True")
        if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != batch:
            shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise DataError(f"labels must be a ({batch},) integer tensor of protein IDs; got {shape}")
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise DataError(f"labels must be integer protein IDs, got dtype {labels.dtype}")
        if batch and (int(labels.min()) < 0 or int(labels.max()) >= n):
            raise DataError(
                f"labels must lie in [0, {n - 1}] (num_classes={n}); got range "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return labels.long()

    # ------------------------------------------------------------------ forward
    def forward(self, images: Tensor) -> CytoselfOutput:
        """Run encoders, quantizers, decoders and classifiers.

        Parameters
        ----------
        images : Tensor
            (B, C, H, W) with C = ``config.in_channels``, H = W = ``config.image_size``.

        Returns
        -------
        CytoselfOutput
        """
        self._check_images(images)
        c = self.config
        loc = c.local_size
        images_in = self._memory_format(images)  # (B, C, 100, 100), NHWC in memory by default
        z1 = self.encoder1(images_in)  # (B, 64, 25, 25)
        z2 = self.encoder2(z1)  # (B, 576, 4, 4)
        q1 = self.vq1(z1)  # quantized (B, 64, 25, 25), indices (B, 1, 25, 25)
        q2 = self.vq2(z2)  # quantized (B, 576, 4, 4), indices (B, 9, 4, 4)
        decoded_local = self.decoder2(q2.quantized)  # (B, 64, 25, 25)
        up2 = resize(q2.quantized, (loc, loc), c.global_upsample_mode)  # (B, 576, 25, 25)
        recon = self.decoder1(torch.cat([up2, q1.quantized], dim=1))  # (B, C, 100, 100)
        logits1 = logits2 = None
        f1, f2 = (q1.quantized, q2.quantized) if c.classifier_input == "quantized" else (z1, z2)
        if self.classifier1 is not None:
            logits1 = self.classifier1(f1)  # (B, num_classes) from (B, 64*25*25)
        if self.classifier2 is not None:
            logits2 = self.classifier2(f2)  # (B, num_classes) from (B, 576*4*4)
        return CytoselfOutput(
            reconstruction=recon,
            local_pre=z1,
            global_pre=z2,
            vq1=q1,
            vq2=q2,
            decoded_local=decoded_local,
            logits1=logits1,
            logits2=logits2,
        )

    def losses_from_output(
        self, output: CytoselfOutput, images: Tensor, labels: Optional[Tensor] = None
    ) -> dict[str, Tensor]:
        """Loss terms for an already computed :class:`CytoselfOutput` (see :meth:`compute_losses`)."""
        c = self.config
        target2 = output.local_pre.detach() if c.decoder2_detach_target else output.local_pre
        losses: dict[str, Tensor] = {
            "reconstruction": F.mse_loss(output.reconstruction, images) / self.data_variance,
            "decoder2": F.mse_loss(output.decoded_local, target2),
            "vq1": output.vq1.vq,
            "vq2": output.vq2.vq,
        }
        total = (
            losses["reconstruction"]
            + c.decoder2_weight * losses["decoder2"]
            + c.vq_weight * (losses["vq1"] + losses["vq2"])
        )
        metrics: dict[str, Tensor] = {
            "metric_perplexity1": output.vq1.perplexity.detach(),
            "metric_perplexity2": output.vq2.perplexity.detach(),
        }
        present = [(k, lg) for k, lg in ((1, output.logits1), (2, output.logits2)) if lg is not None]
        if present:
            y = self._check_labels(labels, images.shape[0])
            for k, logits in present:
                losses[f"classifier{k}"] = F.cross_entropy(logits, y)
                with torch.no_grad():
                    metrics[f"metric_accuracy{k}"] = (logits.argmax(1) == y).float().mean()
            classification = sum(losses[f"classifier{k}"] for k, _ in present)  # 0 + x is exact
            total = total + c.classifier_weight * classification
        return {"loss": total, **losses, **metrics}

    def compute_losses(self, images: Tensor, labels: Optional[Tensor] = None) -> dict[str, Tensor]:
        """Forward pass and every loss term by name.

        Parameters
        ----------
        images : Tensor
            (B, C, H, W) input batch.
        labels : Tensor, optional
            (B,) integer protein IDs in ``[0, num_classes)``; required when ``id_pretext``.

        Returns
        -------
        dict of str to Tensor
            Scalars: ``loss`` (total, differentiable), ``reconstruction``, ``decoder2``, ``vq1``,
            ``vq2`` and, with the pretext, ``classifier1``, ``classifier2``; detached
            diagnostics ``metric_perplexity1``, ``metric_perplexity2`` and, with the pretext,
            ``metric_accuracy1``, ``metric_accuracy2``. Keys starting with ``metric_`` are never
            part of ``loss``.
        """
        output = self(images)
        return self.losses_from_output(output, images, labels)

    # ------------------------------------------------------------------ analysis
    @torch.no_grad()
    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """Representations for analysis (no gradient; the caller chooses train/eval mode).

        Parameters
        ----------
        images : Tensor
            (B, C, H, W) input batch.

        Returns
        -------
        dict of str to Tensor
            ``local`` (B, 64, 25, 25) quantized VQ1 vectors; ``local_pre`` the same before
            quantization; ``local_indices`` (B, 25, 25) VQ1 code indices; ``global_``
            (B, 576, 4, 4) quantized VQ2 vectors; ``global_pre`` before quantization;
            ``global_indices`` (B, 9, 4, 4) VQ2 code indices ((B, 1, 4, 4) without split).
        """
        self._check_images(images)
        z1 = self.encoder1(self._memory_format(images))  # (B, 64, 25, 25)
        z2 = self.encoder2(z1)  # (B, 576, 4, 4)
        q1 = self.vq1(z1)
        q2 = self.vq2(z2)
        return {
            "local": q1.quantized,  # (B, 64, 25, 25)
            "local_pre": z1,  # (B, 64, 25, 25)
            "local_indices": q1.indices[:, 0],  # (B, 25, 25)
            "global_": q2.quantized,  # (B, 576, 4, 4)
            "global_pre": z2,  # (B, 576, 4, 4)
            "global_indices": q2.indices,  # (B, 9, 4, 4)
        }

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """decoder1's reconstruction (B, C, H, W) of ``images`` (no gradient)."""
        return self(images).reconstruction
