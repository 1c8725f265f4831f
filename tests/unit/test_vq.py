"""Vector quantizer (atlaskit.models.vq) against a plain loop reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from atlaskit.models.vq import VectorQuantizer, perplexity_from_counts


def reference_vq(z: np.ndarray, codebook: np.ndarray, commitment: float):
    """Loop over batch, rows, columns and splits; explicit squared distances and argmin."""
    b, c, h, w = z.shape
    k, d = codebook.shape
    s = c // d
    indices = np.zeros((b, s, h, w), dtype=np.int64)
    quantized = np.zeros_like(z)
    for bi in range(b):
        for yi in range(h):
            for xi in range(w):
                for si in range(s):
                    sub = z[bi, si * d:(si + 1) * d, yi, xi]
                    dist = [float(np.sum((sub - codebook[j]) ** 2)) for j in range(k)]
                    j = int(np.argmin(dist))
                    indices[bi, si, yi, xi] = j
                    quantized[bi, si * d:(si + 1) * d, yi, xi] = codebook[j]
    mse = float(np.mean((quantized - z) ** 2))
    counts = np.bincount(indices.ravel(), minlength=k)
    p = counts / counts.sum()
    nz = p[p > 0]
    perplexity = math.exp(-float(np.sum(nz * np.log(nz))))
    return {
        "indices": indices,
        "quantized": quantized,
        "codebook": mse,
        "commitment": mse,
        "vq": mse + commitment * mse,
        "perplexity": perplexity,
        "counts": counts,
    }


@pytest.mark.parametrize(
    "k,d,c,shape",
    [
        (7, 4, 12, (3, 5, 4)),  # 3 splits of 4, non-square map
        (11, 5, 5, (2, 3, 3)),  # no split
        (16, 3, 27, (2, 2, 2)),  # 9 splits, like cytoself VQ2 in miniature
    ],
)
def test_matches_loop_reference(k, d, c, shape):
    torch.manual_seed(k)
    b, h, w = shape
    vq = VectorQuantizer(k, d, channels=c, commitment=0.25).double()
    z = torch.randn(b, c, h, w, dtype=torch.float64)
    out = vq(z)
    ref = reference_vq(z.numpy(), vq.codebook.detach().numpy(), 0.25)

    assert vq.splits == c // d
    assert out.indices.dtype == torch.long
    assert out.indices.shape == (b, c // d, h, w)
    np.testing.assert_array_equal(out.indices.numpy(), ref["indices"])
    assert out.quantized.shape == z.shape
    np.testing.assert_allclose(out.quantized.detach().numpy(), ref["quantized"], rtol=0, atol=1e-12)
    assert out.vq_codebook.item() == pytest.approx(ref["codebook"], rel=1e-10)
    assert out.vq_commitment.item() == pytest.approx(ref["commitment"], rel=1e-10)
    assert out.vq.item() == pytest.approx(ref["vq"], rel=1e-10)
    assert out.perplexity.item() == pytest.approx(ref["perplexity"], rel=1e-5)
    np.testing.assert_array_equal(out.counts.numpy(), ref["counts"])
    assert set(out.losses) == {"vq", "vq_codebook", "vq_commitment"}


def test_float32_matches_reference_indices():
    torch.manual_seed(1)
    vq = VectorQuantizer(32, 8, channels=24)
    z = torch.randn(2, 24, 4, 4)
    out = vq(z)
    ref = reference_vq(z.double().numpy(), vq.codebook.detach().double().numpy(), 0.25)
    np.testing.assert_array_equal(out.indices.numpy(), ref["indices"])


def test_straight_through_gradient_is_identity():
    torch.manual_seed(2)
    vq = VectorQuantizer(10, 4, channels=8).double()
    z = torch.randn(2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn_like(z)
    out = vq(z)
    (out.quantized * g).sum().backward()
    torch.testing.assert_close(z.grad, g, rtol=0, atol=0)
    # the reconstruction path never reaches the codebook
    assert vq.codebook.grad is None or torch.count_nonzero(vq.codebook.grad) == 0


def test_codebook_gets_gradient_from_codebook_term_only():
    torch.manual_seed(3)
    k, d, c = 9, 4, 8
    vq = VectorQuantizer(k, d, channels=c).double()
    z = torch.randn(2, c, 3, 3, dtype=torch.float64, requires_grad=True)

    out = vq(z)
    out.vq_codebook.backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0  # sg[z]
    # analytic gradient: d/de_j mean((e - z)^2) = 2 * sum_{assigned to j} (e_j - z_i) / numel
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, d)
    idx = out.indices.permute(0, 2, 3, 1).reshape(-1)
    expected = torch.zeros(k, d, dtype=torch.float64)
    expected.index_add_(0, idx, 2 * (vq.codebook.detach()[idx] - flat) / z.numel())
    torch.testing.assert_close(vq.codebook.grad, expected)
    unused = torch.ones(k, dtype=torch.bool)
    unused[idx.unique()] = False
    assert torch.all(vq.codebook.grad[unused] == 0)

    vq.codebook.grad = None
    z.grad = None
    out = vq(z)
    out.vq_commitment.backward()
    assert vq.codebook.grad is None or torch.count_nonzero(vq.codebook.grad) == 0  # sg[e]
    torch.testing.assert_close(z.grad, 2 * (z.detach() - out.quantized.detach()) / z.numel())


def test_total_loss_weights_commitment():
    torch.manual_seed(4)
    vq = VectorQuantizer(5, 2, channels=6, commitment=0.7)
    out = vq(torch.randn(3, 6, 2, 2))
    assert out.vq.item() == pytest.approx(out.vq_codebook.item() + 0.7 * out.vq_commitment.item(), rel=1e-6)


def test_inputs_on_codes_are_exact_and_lossless():
    vq = VectorQuantizer(4, 3, channels=6).double()
    with torch.no_grad():
        vq.codebook.copy_(torch.arange(12, dtype=torch.float64).reshape(4, 3))
    idx = torch.tensor([[[[0, 1], [2, 3]], [[3, 3], [1, 0]]]])  # (1, 2, 2, 2)
    z = vq.lookup(idx)  # (1, 6, 2, 2)
    out = vq(z)
    torch.testing.assert_close(out.indices, idx)
    torch.testing.assert_close(out.quantized, z)
    assert out.vq.item() == 0.0
    # split s holds channels s*D .. s*D+D-1 of each position
    torch.testing.assert_close(z[0, 3:6, 0, 0], vq.codebook[3].detach())


def test_perplexity_extremes():
    vq = VectorQuantizer(8, 2).double()
    with torch.no_grad():
        vq.codebook.copy_(torch.arange(8, dtype=torch.float64).unsqueeze(1).repeat(1, 2))  # distinct codes
    same = vq.lookup(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    assert vq(same).perplexity.item() == pytest.approx(1.0)
    all_codes = vq.lookup(torch.arange(8).reshape(1, 1, 2, 4))
    assert vq(all_codes).perplexity.item() == pytest.approx(8.0)
    assert perplexity_from_counts(torch.tensor([0, 0, 0])).item() == 1.0
    assert perplexity_from_counts(torch.tensor([2, 2, 0, 0])).item() == pytest.approx(2.0)
    assert not vq(same).perplexity.requires_grad


def test_channels_last_input_gives_same_result():
    torch.manual_seed(5)
    vq = VectorQuantizer(16, 4, channels=12)
    z = torch.randn(2, 12, 5, 5)
    a = vq(z)
    b = vq(z.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a.indices, b.indices)
    torch.testing.assert_close(a.quantized, b.quantized)
    torch.testing.assert_close(vq.lookup(a.indices), a.quantized)


def test_default_init_and_repr():
    vq = VectorQuantizer(2048, 64, channels=576)
    assert vq.codebook.shape == (2048, 64)
    assert vq.splits == 9
    assert vq.codebook.abs().max().item() <= math.sqrt(3 / 2048) + 1e-6
    assert "splits=9" in repr(vq)
    assert VectorQuantizer(3, 5).channels == 5


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_embeddings=8, embedding_dim=64, channels=100), "multiple of embedding_dim"),
        (dict(num_embeddings=0, embedding_dim=4), "num_embeddings"),
        (dict(num_embeddings=8, embedding_dim=-1), "embedding_dim"),
        (dict(num_embeddings=8, embedding_dim=4, commitment=-1.0), "commitment"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VectorQuantizer(**kwargs)


def test_bad_inputs():
    vq = VectorQuantizer(8, 4, channels=8)
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\)"):
        vq(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\)"):
        vq(torch.randn(8, 3, 3))
    with pytest.raises(ValueError, match="floating-point"):
        vq(torch.ones(1, 8, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        vq.lookup(torch.zeros(1, 1, 2, 2, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearest_is_the_argmin_of_the_distances(dtype):
    # nearest() drops ||f||^2, a constant per row: same index as the full distance matrix
    g = torch.Generator().manual_seed(3)
    vq = VectorQuantizer(num_embeddings=37, embedding_dim=5, channels=10)
    flat = torch.randn(400, 5, generator=g, dtype=dtype)
    expected = vq.distances(flat).argmin(dim=1)
    assert torch.equal(vq.nearest(flat), expected)
    # and the explicit squared distances of the reference
    explicit = ((flat[:, None, :] - vq.codebook.detach().to(dtype)[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(vq.nearest(flat), explicit)


def test_nearest_breaks_ties_to_the_lowest_index():
    vq = VectorQuantizer(num_embeddings=4, embedding_dim=2, channels=2)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]]))
    flat = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.5, 0.5]])
    assert vq.nearest(flat).tolist() == [0, 0, 0]
