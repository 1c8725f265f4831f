"""PointNet (Qi et al. 2017) for protein point clouds, and a classifier on structure, sequence or both.

:class:`PointNetEncoder` reads a batch of point clouds ``(batch, points, features)`` with a mask
of the real points ``(batch, points)`` (clouds of different sizes are zero-padded): a shared
per-point MLP (the same linear layers applied to every point, each followed by a ReLU), then a
symmetric max-pooling over the real points. The embedding therefore does not depend on the order
of the points or on the padding. The input transform networks (T-Nets) of the original PointNet,
and batch normalisation (whose statistics would see the padding), are left out.

:class:`StructureSequenceClassifier` puts an MLP head on the PointNet embedding, on a sequence
vector, or on both concatenated: the three arms of the structure experiment of deepGPS (Fig. 3).
The models know tensors only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PointNetConfig", "PointNetEncoder", "StructureSequenceClassifier"]


@dataclass(frozen=True)
class PointNetConfig:
    """Sizes of a :class:`PointNetEncoder`.

    Attributes
    ----------
    in_features : int
        Features per point (coordinates first, then any per-point features).
    widths : tuple of int
        Output width of each shared per-point layer; the last is the embedding's width.
    """

    in_features: int
    widths: tuple[int, ...] = (64, 128, 256)

    def __post_init__(self):
        if self.in_features < 1 or not self.widths or min(self.widths) < 1:
            raise ValueError(f"PointNetConfig needs positive sizes, got in_features={self.in_features}, "
                             f"widths={self.widths}")

    @property
    def embed_dim(self) -> int:
        return self.widths[-1]


class PointNetEncoder(nn.Module):
    """Shared per-point MLP + masked max-pooling: ``(B, N, F)``, ``(B, N)`` → ``(B, D)``."""

    def __init__(self, config: PointNetConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_features
        for out in config.widths:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.point_mlp = nn.Sequential(*layers)  # applied to the last axis: every point alike

    def point_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point features before pooling: ``(B, N, F)`` → ``(B, N, D)``."""
        return self.point_mlp(points)

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed point clouds.

        Parameters
        ----------
        points : Tensor
            ``(B, N, F)`` float, padded rows arbitrary.
        mask : Tensor, optional
            ``(B, N)`` bool, True for a real point (default: every point is real). Every cloud
            needs at least one real point.

        Returns
        -------
        Tensor
            ``(B, D)`` with ``D = config.embed_dim``.
        """
        if points.dim() != 3 or points.shape[-1] != self.config.in_features:
            raise ValueError(f"points must be (batch, points, {self.config.in_features}), got {tuple(points.shape)}")
        if mask is None:
            mask = torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
        if mask.shape != points.shape[:2]:
            raise ValueError(f"mask must be {tuple(points.shape[:2])}, got {tuple(mask.shape)}")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every point cloud needs at least one real point (mask all False)")
        feats = self.point_features(points)  # (B, N, D)
        feats = feats.masked_fill(~mask[..., None], float("-inf"))  # padding never wins the max
        return feats.max(dim=1).values  # (B, D)


class StructureSequenceClassifier(nn.Module):
    """Class logits from a point cloud, a sequence vector, or both.

    Parameters
    ----------
    n_classes : int
    pointnet : PointNetConfig, optional
        The structure encoder (None: sequence only).
    seq_dim : int
        Width of the sequence vector (0: structure only).
    hidden : int
        Width of the head's hidden layer.
    dropout : float
        Dropout before the head's last layer.
    """

    def __init__(self, n_classes: int, *, pointnet: PointNetConfig | None = None, seq_dim: int = 0,
                 hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        if pointnet is None and seq_dim < 1:
            raise ValueError("the classifier needs a structure encoder, a sequence vector, or both")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.encoder = PointNetEncoder(pointnet) if pointnet is not None else None
        self.seq_dim = int(seq_dim)
        width = (pointnet.embed_dim if pointnet is not None else 0) + self.seq_dim
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def embed(self, points: torch.Tensor | None = None, mask: torch.Tensor | None = None,
              sequence: torch.Tensor | None = None) -> torch.Tensor:
        """The head's input: ``(B, D + S)`` (PointNet embedding, then the sequence vector)."""
        parts = []
        if self.encoder is not None:
            if points is None:
                raise ValueError("this classifier reads point clouds: points are required")
            parts.append(self.encoder(points, mask))  # (B, D)
        if self.seq_dim:
            if sequence is None or sequence.dim() != 2 or sequence.shape[1] != self.seq_dim:
                raise ValueError(f"sequence must be (batch, {self.seq_dim}), got "
                                 f"{None if sequence is None else tuple(sequence.shape)}")
            parts.append(sequence)  # (B, S)
        return torch.cat(parts, dim=1)

    def forward(self, points: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                sequence: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)`` from ``points (B, N, F)`` + ``mask (B, N)`` and/or ``sequence (B, S)``."""
        return self.head(self.embed(points, mask, sequence))
