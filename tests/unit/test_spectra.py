"""Feature spectra on hand-made codebook indices with known answers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from atlaskit.analysis import spectra  # noqa: E402
from atlaskit.errors import DataError, ParameterError  # noqa: E402


def test_index_histograms_count_exactly():
    indices = np.array([
        [[0, 1], [1, 3]],   # image 0, protein b
        [[2, 2], [2, 2]],   # image 1, protein a
        [[3, 3], [1, 0]],   # image 2, protein b
    ])
    hist = spectra.index_histograms(indices, ["b", "a", "b"], num_embeddings=5)
    assert list(hist.index) == ["a", "b"] and list(hist.columns) == [0, 1, 2, 3, 4]
    # a: one image, four 2s; b: two images, counts 0:2 1:3 3:3 → mean per image
    np.testing.assert_array_equal(hist.loc["a"], [0, 0, 4, 0, 0])
    np.testing.assert_array_equal(hist.loc["b"], [1, 1.5, 0, 1.5, 0])
    fractions = spectra.index_histograms(indices, ["b", "a", "b"], 5, normalize=True)
    np.testing.assert_allclose(fractions.sum(axis=1), 1)
    np.testing.assert_allclose(fractions.loc["b"], [0.25, 0.375, 0, 0.375, 0])


def test_index_histograms_categories_and_errors():
    indices = np.zeros((2, 3), int)
    groups = pd.Categorical(["y", "y"], categories=["y", "x"])
    hist = spectra.index_histograms(indices, groups, 2)
    assert list(hist.index) == ["y", "x"] and hist.loc["x"].sum() == 0 and hist.loc["y", 0] == 3
    np.testing.assert_array_equal(spectra.index_histograms(indices.astype(float), ["p", "q"], 2), [[3, 0], [3, 0]])
    with pytest.raises(DataError, match="outside the codebook"):
        spectra.index_histograms(np.array([[0, 2]]), ["p"], 2)
    with pytest.raises(DataError, match="groups for"):
        spectra.index_histograms(indices, ["p"], 2)
    with pytest.raises(DataError, match="integer"):
        spectra.index_histograms(np.array([[0.5]]), ["p"], 2)


def block_histograms(seed=0, proteins=30, blocks=((0, 6), (6, 12), (12, 18)), unused=(18, 19)):
    """Proteins whose use of three blocks of indices co-varies within each block; two unused."""
    rng = np.random.default_rng(seed)
    k = max(unused) + 1
    hist = np.zeros((proteins, k))
    for a, b in blocks:
        level = rng.gamma(2.0, size=(proteins, 1))
        hist[:, a:b] = level * (1 + 0.05 * rng.normal(size=(proteins, b - a)))
    return pd.DataFrame(hist, index=[f"P{i}" for i in range(proteins)])


def test_index_correlation_is_symmetric_with_unit_diagonal():
    hist = block_histograms()
    corr = spectra.index_correlation(hist)
    assert corr.shape == (18, 18) and list(corr.index) == list(range(18))  # unused 18, 19 dropped
    np.testing.assert_allclose(corr, corr.T)
    np.testing.assert_allclose(np.diag(corr), 1)
    np.testing.assert_allclose(corr, np.corrcoef(hist.iloc[:, :18].T), atol=1e-12)
    assert corr.loc[0, 1] > 0.9 and abs(corr.loc[0, 7]) < 0.6
    zero = spectra.index_correlation(hist, unused="zero")
    assert zero.shape == (20, 20) and (zero.loc[18] == 0).all() and zero.loc[18, 18] == 0
    nan = spectra.index_correlation(hist, unused="nan")
    assert nan.loc[19].isna().all() and nan.loc[3, 3] == 1
    with pytest.raises(DataError, match="two groups"):
        spectra.index_correlation(hist.iloc[:1])


def test_bicluster_recovers_blocks_and_returns_permutations():
    hist = block_histograms()
    result = spectra.bicluster(hist, n_clusters=3)
    assert sorted(result.order) == list(range(18))
    assert result.n_clusters == 3 and sorted(result.clusters.unique()) == [1, 2, 3]
    along = result.clusters.reindex(result.order).to_numpy()
    assert along[0] == 1 and np.all(np.diff(along) >= 0)  # numbered left to right, contiguous
    assert len(result.boundaries) == 2
    for a, b in ((0, 6), (6, 12), (12, 18)):
        assert result.clusters.loc[list(range(a, b))].nunique() == 1
    assert sorted(result.row_order) == sorted(hist.index)
    assert result.linkage.shape == (17, 4)
    by_corr = spectra.bicluster(correlation=spectra.index_correlation(hist), n_clusters=3)
    pd.testing.assert_series_equal(by_corr.clusters, result.clusters)
    assert by_corr.row_order is None
    eleven = spectra.bicluster(hist)
    assert eleven.n_clusters == 11
    with pytest.raises(ParameterError, match="n_clusters"):
        spectra.bicluster(hist, n_clusters=40)
    with pytest.raises(ParameterError, match="method"):
        spectra.bicluster(hist, method="centroid")
    assert spectra.roman(11) == "XI" and spectra.roman(4) == "IV"


def test_feature_spectrum_and_consensus_by_hand():
    hist = pd.DataFrame([[1, 0, 3], [2, 2, 0], [0, 4, 4]], index=["p", "q", "r"], columns=[0, 1, 2])
    spec = spectra.feature_spectrum(hist, [2, 0, 1])
    assert list(spec.columns) == [2, 0, 1] and spec.loc["p"].tolist() == [3, 1, 0]
    consensus = spectra.consensus_spectra(hist, ["A", "B", "A"])
    # A = mean of p/4 = (.25, 0, .75) and r/8 = (0, .5, .5)
    np.testing.assert_allclose(consensus.loc["A"], [0.125, 0.25, 0.625])
    np.testing.assert_allclose(consensus.loc["B"], [0.5, 0.5, 0])
    raw = spectra.consensus_spectra(hist, pd.Series({"r": "A", "q": None, "p": "A"}), normalize=False)
    assert list(raw.index) == ["A"]
    np.testing.assert_allclose(raw.loc["A"], [0.5, 2, 3.5])
    with pytest.raises(DataError, match="not histogram columns"):
        spectra.feature_spectrum(hist, [5])


def test_figures_draw():
    hist = block_histograms()
    result = spectra.bicluster(hist, n_clusters=3)
    family = pd.Series(["ER", "Golgi", None] * 10, index=hist.index)
    fig = spectra.spectrum_heatmap(hist, result, row_labels=family)
    assert len(fig.axes) == 4  # heat map, colour bar, cluster strip, family strip
    plt.close(fig)
    consensus = spectra.consensus_spectra(spectra.feature_spectrum(hist, result), family)
    fig = spectra.consensus_figure(consensus, result)
    assert len(fig.axes) == 1 + len(consensus)
    plt.close(fig)


def linear_decoder(weights):
    """A deterministic 'decoder': 1×1 channel mixing then ×2 upsampling, (1, C, H, W) → (1, 1, 2H, 2W)."""
    def decode(q):
        image = np.einsum("c,bchw->bhw", weights, q)[:, None]
        return image.repeat(2, axis=2).repeat(2, axis=3)
    return decode


def test_zeroing_difference_numpy():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(1, 3, 4, 4))
    decode = linear_decoder(np.array([1.0, -2.0, 0.5]))
    empty = spectra.zeroing_difference(decode, q, np.zeros((4, 4), bool))
    assert empty.shape == (1, 1, 8, 8) and np.all(empty == 0)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    diff = spectra.zeroing_difference(decode, q, mask)
    assert np.all(diff[0, 0, 2:4, 4:6] > 0) and diff.sum() == pytest.approx(4 * diff[0, 0, 2, 4])
    # a mask over the codebook: zero the positions using codes 1 or 3
    indices = np.array([[0, 1, 2, 3]] * 4)
    by_code = spectra.zeroing_difference(decode, q, np.array([False, True, False, True]), indices=indices)
    positions = np.isin(indices, [1, 3])
    np.testing.assert_allclose(by_code, spectra.zeroing_difference(decode, q, positions))
    with pytest.raises(DataError, match="position mask"):
        spectra.zeroing_difference(decode, q, np.zeros(7, bool))


def test_zeroing_difference_torch():
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(3, 1, kernel_size=3, padding=1).eval()
    q = torch.randn(1, 3, 5, 5)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    assert np.all(spectra.zeroing_difference(conv, q, mask) == 0)
    mask[2, 2] = True
    diff = spectra.zeroing_difference(conv, q, mask)
    assert isinstance(diff, np.ndarray) and diff.shape == (1, 1, 5, 5)
    assert diff[0, 0, 2, 2] > 0 and diff[0, 0, 0, 0] == 0  # effect stays within the 3×3 footprint
