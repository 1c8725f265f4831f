"""The hyper-parameters of a cytoself model (:class:`CytoselfConfig`) and the paper's encoder stages.

Re-exported by :mod:`atlaskit.models.cytoself` (see its docstring for the architecture and the
decisions behind the defaults); import them from there.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from atlaskit.errors import ParameterError
from atlaskit.models.blocks import MBConvStage, conv_output_size

__all__ = ["CytoselfConfig", "PAPER_ENCODER1", "PAPER_ENCODER2", "Stage"]

Stage = tuple[int, int, int, int, int]  # (expand_ratio, kernel_size, stride, out_channels, repeats)

#: EfficientNet-B0 stages 1-3 (encoder1) and 4-7 (encoder2) as split by cytoself's TF code
#: (``CytoselfBaseModel``): the 24->40 stage has stride 1 instead of 2 and the 80->112 stage stride
#: 2 instead of 1, so that 100 -> 50 (stem) -> 25 in encoder1 and 25 -> 13 -> 7 -> 4 in encoder2.
PAPER_ENCODER1: tuple[Stage, ...] = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 1, 40, 2))
PAPER_ENCODER2: tuple[Stage, ...] = ((6, 3, 2, 80, 3), (6, 5, 2, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))

_UPSAMPLE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
_TUPLE_FIELDS = ("encoder1_stages", "encoder2_stages", "classifiers", "classifier_hidden")


@dataclass
class CytoselfConfig:
    """Every hyper-parameter of a cytoself model; the defaults are the paper's.

    Attributes
    ----------
    num_classes : int
        Protein IDs predicted by the pretext classifiers (paper: 1311).
    image_size : int
        Square input side (paper: 100).
    use_nucleus : bool
        True: 2 input channels (protein, nucleus); False: protein only (ablation).
    nucleus_distance : bool
        Recorded only: whether the nucleus channel is the signed distance transform (True) or the
        raw nucleus image (False, ablation). The data layer acts on it, not the model.
    split_quantization : bool
        True: VQ2 quantizes ``global_splits`` sub-vectors of ``global_dim`` per position against
        one ``global_codebook_size x global_dim`` codebook. False (ablation): whole
        ``global_dim * global_splits`` vectors against a ``global_codebook_size x 576`` codebook.
    id_pretext : bool
        Build the protein-ID classifiers and add their cross-entropy (False: ablation).
    stem_channels : int
        Width of encoder1's stride-2 stem convolution.
    encoder1_stages, encoder2_stages : tuple of 5-tuples
        MBConv stages ``(expand_ratio, kernel_size, stride, out_channels, repeats)``.
    se_ratio : float
        Squeeze-excitation width relative to a block's input channels.
    drop_connect_rate : float
        Maximum stochastic-depth rate in the encoders (0 in the paper's code).
    local_dim : int
        Channels of the local representation = VQ1 code dimension (64).
    local_codebook_size : int
        VQ1 codebook size (2048).
    global_dim : int
        Dimension of one VQ2 sub-vector (64).
    global_splits : int
        Sub-vectors per global position (9); the global map has ``global_dim * global_splits``
        channels (576).
    global_codebook_size : int
        VQ2 codebook size (2048).
    commitment : float
        Commitment weight of both quantizers (0.25).
    decoder_hidden : int or None
        Decoder width after the first conv (64, the TF code). None: as wide as the decoder's
        input (640 for decoder1, 576 for decoder2), the public PyTorch port's default, which
        makes the last decoder stages (640 channels at 50x50, 320 at 100x100) do most of the work.
    decoder_min_hidden : int
        Floor of the width halving (32).
    decoder_residual_units : int
        Residual units per decoder block (2).
    upsample_mode : str
        Interpolation inside the decoders (bilinear).
    global_upsample_mode : str
        Interpolation of VQ2 up to the local grid for decoder1 (bilinear).
    decoder2_detach_target : bool
        Stop the decoder2 MSE gradient from reaching encoder1 (False, as in the public code).
    classifiers : tuple of int
        Which levels get a protein-ID classifier: ``(1, 2)`` (VQ1 and VQ2, the paper) or a subset,
        e.g. ``(2,)`` as in the public code's README demo (``fc_output_idx=[2]``).
    classifier_hidden : tuple of int
        Hidden widths of each classifier ((1000,), see the module notes).
    classifier_dropout : float
        Dropout after each hidden layer (0.5).
    classifier_input : {"quantized", "encoded"}
        Which representation the classifiers read ("quantized", as in the public code).
    data_variance : float
        Variance of the training images; divides the reconstruction MSE (1.0 until set).
    vq_weight, classifier_weight, decoder2_weight : float
        Loss weights (1.0).
    """

    num_classes: int = 1311
    image_size: int = 100
    use_nucleus: bool = True
    nucleus_distance: bool = True
    split_quantization: bool = True
    id_pretext: bool = True
    stem_channels: int = 32
    encoder1_stages: tuple[Stage, ...] = PAPER_ENCODER1
    encoder2_stages: tuple[Stage, ...] = PAPER_ENCODER2
    se_ratio: float = 0.25
    drop_connect_rate: float = 0.0
    local_dim: int = 64
    local_codebook_size: int = 2048
    global_dim: int = 64
    global_splits: int = 9
    global_codebook_size: int = 2048
    commitment: float = 0.25
    decoder_hidden: Optional[int] = 64
    decoder_min_hidden: int = 32
    decoder_residual_units: int = 2
    upsample_mode: str = "bilinear"
    global_upsample_mode: str = "bilinear"
    decoder2_detach_target: bool = False
    classifiers: tuple[int, ...] = (1, 2)
    classifier_hidden: tuple[int, ...] = (1000,)
    classifier_dropout: float = 0.5
    classifier_input: str = "quantized"
    data_variance: float = 1.0
    vq_weight: float = 1.0
    classifier_weight: float = 1.0
    decoder2_weight: float = 1.0

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists: normalise.
        self.encoder1_stages = tuple(tuple(int(v) for v in s) for s in self.encoder1_stages)
        self.encoder2_stages = tuple(tuple(int(v) for v in s) for s in self.encoder2_stages)
        self.classifier_hidden = tuple(int(v) for v in self.classifier_hidden)
        self.classifiers = tuple(int(v) for v in self.classifiers)
        for name in (
            "num_classes", "image_size", "stem_channels", "local_dim", "local_codebook_size",
            "global_dim", "global_splits", "global_codebook_size", "decoder_min_hidden",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"CytoselfConfig.{name} must be a positive integer, got {value!r}")
        if self.decoder_hidden is not None and (
            isinstance(self.decoder_hidden, bool) or not isinstance(self.decoder_hidden, int)
            or self.decoder_hidden < 1
        ):
            raise ParameterError(
                f"CytoselfConfig.decoder_hidden must be a positive integer or None, got {self.decoder_hidden!r}"
            )
        if not self.classifiers or len(set(self.classifiers)) != len(self.classifiers) or not set(
            self.classifiers
        ) <= {1, 2}:
            raise ParameterError(
                f"CytoselfConfig.classifiers must be (1, 2), (1,) or (2,), got {self.classifiers!r}"
            )
        if not isinstance(self.decoder_residual_units, int) or self.decoder_residual_units < 0:
            raise ParameterError(
                f"CytoselfConfig.decoder_residual_units must be >= 0, got {self.decoder_residual_units!r}"
            )
        for name in ("encoder1_stages", "encoder2_stages"):
            stages = getattr(self, name)
            if not stages:
                raise ParameterError(f"CytoselfConfig.{name} needs at least one MBConv stage")
            for s in stages:
                MBConvStage.coerce(s)
                if s[2] not in (1, 2) or s[1] % 2 == 0:
                    raise ParameterError(
                        f"CytoselfConfig.{name}: stage {s} needs stride 1 or 2 and an odd kernel"
                    )
        if any(h < 1 for h in self.classifier_hidden):
            raise ParameterError(
                f"CytoselfConfig.classifier_hidden must be positive, got {self.classifier_hidden}"
            )
        for name in ("upsample_mode", "global_upsample_mode"):
            if getattr(self, name) not in _UPSAMPLE_MODES:
                raise ParameterError(
                    f"CytoselfConfig.{name} must be one of {_UPSAMPLE_MODES}, got {getattr(self, name)!r}"
                )
        if self.classifier_input not in ("quantized", "encoded"):
            raise ParameterError(
                "CytoselfConfig.classifier_input must be 'quantized' or 'encoded', "
                f"got {self.classifier_input!r}"
            )
        for name in ("classifier_dropout", "drop_connect_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ParameterError(f"CytoselfConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not (math.isfinite(self.data_variance) and self.data_variance > 0):
            raise ParameterError(
                f"CytoselfConfig.data_variance must be finite and > 0, got {self.data_variance}"
            )
        for name in ("commitment", "vq_weight", "classifier_weight", "decoder2_weight"):
            if not getattr(self, name) >= 0:
                raise ParameterError(f"CytoselfConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.global_size > self.local_size:
            raise ParameterError("encoder2 must not enlarge the map (check the encoder2 strides)")

    # ------------------------------------------------------------------ derived shapes
    @property
    def in_channels(self) -> int:
        """Input (and reconstructed) channels: 2 with the nucleus, 1 without."""
        return 2 if self.use_nucleus else 1

    @property
    def local_size(self) -> int:
        """Side of the local (VQ1) grid: 25 for 100x100 inputs."""
        size = conv_output_size(self.image_size, 3, 2)  # stem
        for expand, kernel, stride, out, repeats in self.encoder1_stages:
            size = conv_output_size(size, kernel, stride)
        return size

    @property
    def global_size(self) -> int:
        """Side of the global (VQ2) grid: 4 for 100x100 inputs."""
        size = self.local_size
        for expand, kernel, stride, out, repeats in self.encoder2_stages:
            size = conv_output_size(size, kernel, stride)
        return size

    @property
    def global_channels(self) -> int:
        """Channels of the global map: ``global_dim * global_splits`` (576)."""
        return self.global_dim * self.global_splits

    @property
    def vq2_embedding_dim(self) -> int:
        """VQ2 code dimension: ``global_dim`` with split quantization, else ``global_channels``."""
        return self.global_dim if self.split_quantization else self.global_channels

    @property
    def vq2_splits(self) -> int:
        """Sub-vectors per global position (9 with split quantization, else 1)."""
        return self.global_splits if self.split_quantization else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input image."""
        return (self.in_channels, self.image_size, self.image_size)

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, num_classes: int = 1311, **overrides: Any) -> "CytoselfConfig":
        """The published model (2x100x100 -> 25x25x64 local, 4x4x(9x64) global, 2048-code books)."""
        return cls(num_classes=num_classes, **overrides)

    @classmethod
    def small(cls, num_classes: int, **overrides: Any) -> "CytoselfConfig":
        """A CPU-sized model for the book's chapters: same 100x100 input, 25x25 local and 4x4
        global grids with 9 splits, narrower encoders/decoders, 256-code books of 32-d codes and
        classifiers with one hidden layer of 128 units."""
        params: dict[str, Any] = dict(
            num_classes=num_classes,
            stem_channels=16,
            encoder1_stages=((1, 3, 1, 16, 1), (4, 3, 2, 24, 1), (4, 5, 1, 32, 1)),
            encoder2_stages=((4, 3, 2, 48, 1), (4, 5, 2, 64, 1), (4, 5, 2, 96, 1)),
            local_dim=32,
            local_codebook_size=256,
            global_dim=32,
            global_splits=9,
            global_codebook_size=256,
            decoder_hidden=32,
            decoder_min_hidden=16,
            decoder_residual_units=1,
            classifier_hidden=(128,),
        )
        params.update(overrides)
        return cls(**params)

    @classmethod
    def pytorch_port(cls, num_classes: int = 1311, **overrides: Any) -> "CytoselfConfig":
        """The paper model as the public PyTorch port builds it by default: decoders as wide as
        their inputs (``decoder_hidden=None``: no first conv, 640 channels at 50x50, 320 at 100x100 in
        decoder1), 94 M parameters with 1311 classes. Used to compare speed with that code (``benchmarks``)."""
        return cls(num_classes=num_classes, **{"decoder_hidden": None, **overrides})

    @classmethod
    def port_demo(cls, num_classes: int, **overrides: Any) -> "CytoselfConfig":
        """The public PyTorch port's README demo: 512-code books, VQ2 without splits (4x4x64),
        decoders as wide as their inputs, one classifier, on VQ2 (``fc_output_idx=[2]``)."""
        params: dict[str, Any] = dict(
            num_classes=num_classes, decoder_hidden=None, local_codebook_size=512,
            global_codebook_size=512, global_splits=1, classifiers=(2,),
        )
        params.update(overrides)
        return cls(**params)

    @classmethod
    def tiny(cls, num_classes: int, **overrides: Any) -> "CytoselfConfig":
        """A minimal model for tests (100x100 input, 25x25 local, 4x4 global with 9 splits)."""
        params: dict[str, Any] = dict(
            num_classes=num_classes,
            stem_channels=8,
            encoder1_stages=((1, 3, 1, 8, 1), (2, 3, 2, 8, 1)),
            encoder2_stages=((2, 3, 2, 16, 1), (2, 3, 2, 16, 1), (2, 3, 2, 16, 1)),
            local_dim=8,
            local_codebook_size=32,
            global_dim=8,
            global_splits=9,
            global_codebook_size=32,
            decoder_hidden=8,
            decoder_min_hidden=4,
            decoder_residual_units=1,
            classifier_hidden=(16,),
        )
        params.update(overrides)
        return cls(**params)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists) that :meth:`from_dict` reads back."""
        out = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            value = out[name]
            out[name] = [list(v) if isinstance(v, tuple) else v for v in value]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CytoselfConfig":
        """Rebuild a config from :meth:`to_dict` output; missing keys take the defaults.

        Raises
        ------
        ParameterError
            For keys that are not config fields.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown CytoselfConfig field(s): {', '.join(unknown)}")
        return cls(**dict(data))
