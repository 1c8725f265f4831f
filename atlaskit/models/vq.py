"""Vector quantization with optional *split quantization* (cytoself).

A feature map ``z`` of shape (B, C, H, W) is cut, at every position, into ``S = C / D``
sub-vectors of ``D = embedding_dim`` consecutive channels (channels ``s*D .. s*D + D - 1`` form
split ``s``). Every sub-vector is replaced by its nearest entry of ONE shared codebook
``E`` (K x D), nearest by squared Euclidean distance computed with one matrix product::

    d(z, e_k) = ||z||^2 - 2 z . e_k + ||e_k||^2

``channels == embedding_dim`` (S = 1) is the ordinary VQ-VAE quantizer; cytoself's VQ2 uses
C = 576, D = 64, S = 9 (the split layout matches the public code: the channel axis is reshaped to
(S, D), so split ``s`` is the ``s``-th block of 64 channels).

Losses (van den Oord et al. 2017; the public cytoself code, both versions)::

    vq_codebook   = mean((sg[z] - e)^2)        moves the codebook towards the encoder outputs
    vq_commitment = mean((z - sg[e])^2)        keeps the encoder close to its codes (unweighted)
    vq            = vq_codebook + commitment * vq_commitment      (commitment = 0.25)

means are over all elements (B * C * H * W). The output uses the straight-through estimator,
``quantized = z + sg[e - z]``: its value is ``e`` and its gradient with respect to ``z`` is the
identity, so the codebook is trained by ``vq_codebook`` only.

Perplexity is ``exp(entropy)`` of the code-usage distribution over every quantized sub-vector of
the batch (B * S * H * W of them): 1 when one code is used, K when all are used equally.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from atlaskit.errors import DataError, ParameterError

__all__ = ["VQOutput", "VectorQuantizer", "perplexity_from_counts"]


class VQOutput(NamedTuple):
    """Result of :meth:`VectorQuantizer.forward`.

    Attributes
    ----------
    quantized : Tensor
        (B, C, H, W) quantized map, straight-through (value = codes, gradient to ``z`` = identity).
    vq : Tensor
        Scalar total VQ loss ``vq_codebook + commitment * vq_commitment``.
    vq_codebook : Tensor
        Scalar codebook loss ``mean((sg[z] - e)^2)`` (gradient reaches the codebook only).
    vq_commitment : Tensor
        Scalar unweighted commitment loss ``mean((z - sg[e])^2)`` (gradient reaches ``z`` only).
    indices : Tensor
        (B, S, H, W) long code index of every sub-vector (S = C / D splits).
    perplexity : Tensor
        Scalar, detached: ``exp`` of the entropy of the code usage over the batch.
    counts : Tensor
        (K,) long, detached: how many sub-vectors of the batch chose each code.
    """

    quantized: Tensor
    vq: Tensor
    vq_codebook: Tensor
    vq_commitment: Tensor
    indices: Tensor
    perplexity: Tensor
    counts: Tensor

    @property
    def losses(self) -> dict[str, Tensor]:
        """The three loss terms by name (``vq``, ``vq_codebook``, ``vq_commitment``)."""
        return {"vq": self.vq, "vq_codebook": self.vq_codebook, "vq_commitment": self.vq_commitment}


def perplexity_from_counts(counts: Tensor) -> Tensor:
    """``exp(-sum p log p)`` of the usage distribution ``p = counts / counts.sum()``.

    Parameters
    ----------
    counts : Tensor
        (K,) non-negative counts (any numeric dtype).

    Returns
    -------
    Tensor
        Scalar float32 in [1, K] (1.0 for an all-zero input).
    """
    counts = counts.detach().to(torch.float32)  # (K,)
    p = counts / counts.sum().clamp_min(1.0)  # (K,); all zeros -> entropy 0 -> perplexity 1
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()  # 0 * log(tiny) = 0
    return torch.exp(entropy)


class VectorQuantizer(nn.Module):
    """Vector quantizer with a shared codebook and optional split quantization.

    Parameters
    ----------
    num_embeddings : int
        Codebook size K (cytoself: 2048).
    embedding_dim : int
        Code dimension D (cytoself: 64).
    channels : int, optional
        Channels C of the input; must be a multiple of ``embedding_dim``. Defaults to
        ``embedding_dim`` (no split). ``C / D`` sub-vectors per position share the codebook.
    commitment : float, default 0.25
        Weight of the commitment term in ``vq``.
    init_scale : float, optional
        Codebook entries start uniform in ``[-init_scale, init_scale]``; default
        ``sqrt(3 / K)`` (unit total variance over the codebook, the public PyTorch code's choice).

    Attributes
    ----------
    codebook : torch.nn.Parameter
        (K, D) code vectors.
    splits : int
        ``C / D``.

    Examples
    --------
    >>> vq = VectorQuantizer(2048, 64, channels=576)      # cytoself VQ2: 9 splits of 64
    >>> out = vq(torch.randn(8, 576, 4, 4))
    >>> out.quantized.shape, out.indices.shape
    (torch.Size([8, 576, 4, 4]), torch.Size([8, 9, 4, 4]))
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        channels: Optional[int] = None,
        commitment: float = 0.25,
        init_scale: Optional[float] = None,
    ) -> None:
        super().__init__()
        if channels is None:
            channels = embedding_dim
        for name, value in (
            ("num_embeddings", num_embeddings),
            ("embedding_dim", embedding_dim),
            ("channels", channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"VectorQuantizer {name} must be a positive integer, got {value!r}")
        if channels % embedding_dim != 0:
            raise ParameterError(
                f"VectorQuantizer channels ({channels}) must be a multiple of embedding_dim "
                f"({embedding_dim}) for split quantization"
            )
        if not commitment >= 0:
            raise ParameterError(f"VectorQuantizer commitment must be >= 0, got {commitment!r}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.channels = channels
        self.splits = channels // embedding_dim
        self.commitment = float(commitment)
        scale = math.sqrt(3.0 / num_embeddings) if init_scale is None else float(init_scale)
        self.codebook = nn.Parameter(torch.empty(num_embeddings, embedding_dim).uniform_(-scale, scale))

    def extra_repr(self) -> str:
        return (
            f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, "
            f"channels={self.channels}, splits={self.splits}, commitment={self.commitment}"
        )

    # ------------------------------------------------------------------ helpers
    def _check(self, z: Tensor) -> None:
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise DataError(
                f"VectorQuantizer expected a (B, {self.channels}, H, W) tensor, got shape {tuple(z.shape)}"
            )
        if not z.is_floating_point():
            raise DataError(f"VectorQuantizer expected a floating-point tensor, got {z.dtype}")

    def flatten(self, z: Tensor) -> Tensor:
        """(B, C, H, W) -> (B*H*W*S, D) sub-vectors, row order (b, h, w, s)."""
        return z.permute(0, 2, 3, 1).reshape(-1, self.embedding_dim)

    def distances(self, flat: Tensor) -> Tensor:
        """Squared distances (N, K) between sub-vectors (N, D) and every code, by one matmul.

        Computed in at least float32 (float64 inputs stay float64) and without gradient.
        """
        with torch.no_grad():
            f, e = self._detached_pair(flat)  # (N, D), (K, D)
            e_sq = (e * e).sum(dim=1)  # (K,)
            f_sq = (f * f).sum(dim=1, keepdim=True)  # (N, 1)
            # ||f||^2 - 2 f.e + ||e||^2 ; addmm(input, m1, m2, beta, alpha) = beta*input + alpha*m1@m2
            return torch.addmm(e_sq.unsqueeze(0), f, e.t(), beta=1.0, alpha=-2.0) + f_sq  # (N, K)

    def _detached_pair(self, flat: Tensor) -> tuple[Tensor, Tensor]:
        """Sub-vectors (N, D) and codebook (K, D) without gradient, in at least float32."""
        dtype = torch.promote_types(flat.dtype, torch.float32)
        return flat.detach().to(dtype), self.codebook.detach().to(dtype)

    def nearest(self, flat: Tensor) -> Tensor:
        """Index (N,) of the nearest code of each sub-vector (N, D); ties go to the lowest index.

        The argmin over codes of ``||e||^2 - 2 f.e``: :meth:`distances` without ``||f||^2``, which
        is the same for every code of a row, as one matrix product ``[f, 1] @ [-2e, ||e||^2]^T``.
        On a CPU the broadcast additions of the bias and of ``||f||^2`` over the (N, K) matrix
        cost more than the product itself (``benchmarks/README.md``, issue #24).
        """
        with torch.no_grad():
            f, e = self._detached_pair(flat)  # (N, D), (K, D)
            ones = torch.ones((f.shape[0], 1), dtype=f.dtype, device=f.device)
            f_aug = torch.cat([f, ones], dim=1)  # (N, D + 1)
            e_aug = torch.cat([-2.0 * e, (e * e).sum(dim=1, keepdim=True)], dim=1)  # (K, D + 1)
            return (f_aug @ e_aug.t()).argmin(dim=1)  # (N,)

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors for an index map: (B, S, H, W) long -> (B, S*D, H, W)."""
        if indices.dim() != 4 or indices.shape[1] != self.splits:
            raise DataError(
                f"VectorQuantizer.lookup expected (B, {self.splits}, H, W) indices, "
                f"got {tuple(indices.shape)}"
            )
        b, s, h, w = indices.shape
        codes = self.codebook[indices.permute(0, 2, 3, 1).reshape(-1)]  # (B*H*W*S, D)
        return codes.reshape(b, h, w, s * self.embedding_dim).permute(0, 3, 1, 2)  # (B, C, H, W)

    # ------------------------------------------------------------------ forward
    def forward(self, z: Tensor) -> VQOutput:
        """Quantize ``z``.

        Parameters
        ----------
        z : Tensor
            (B, C, H, W) encoder output, ``C == channels`` (any memory format).

        Returns
        -------
        VQOutput
        """
        self._check(z)
        b, c, h, w = z.shape
        s, d = self.splits, self.embedding_dim
        flat = self.flatten(z)  # (N = B*H*W*S, D)
        idx = self.nearest(flat)  # (N,) long
        codes = self.codebook[idx]  # (N, D), differentiable w.r.t. the codebook only
        e = codes.reshape(b, h, w, c).permute(0, 3, 1, 2).to(z.dtype)  # (B, C, H, W)

        vq_codebook = torch.mean((e - z.detach()) ** 2)  # scalar
        vq_commitment = torch.mean((z - e.detach()) ** 2)  # scalar
        vq = vq_codebook + self.commitment * vq_commitment  # scalar
        quantized = z + (e - z).detach()  # (B, C, H, W) straight-through

        indices = idx.reshape(b, h, w, s).permute(0, 3, 1, 2)  # (B, S, H, W)
        counts = torch.bincount(idx.detach(), minlength=self.num_embeddings)  # (K,)
        return VQOutput(
            quantized=quantized,
            vq=vq,
            vq_codebook=vq_codebook,
            vq_commitment=vq_commitment,
            indices=indices,
            perplexity=perplexity_from_counts(counts),
            counts=counts,
        )
