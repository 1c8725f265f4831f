"""Atlas analysis on hand-made embeddings with known answers: clustering score, h5ad export,
the plotly atlas and the correlation-based localization of orphan proteins."""
import numpy as np
import pandas as pd
import pytest

from atlaskit.analysis import atlas
from atlaskit.errors import DataError


def blobs(centres, n=60, scale=1.0, seed=0):
    """Isotropic Gaussian blobs: (n·len(centres), 2) points and their labels."""
    rng = np.random.default_rng(seed)
    points = np.concatenate([np.asarray(c, float) + scale * rng.normal(size=(n, 2)) for c in centres])
    labels = np.repeat([f"c{i}" for i in range(len(centres))], n)
    return points, labels


CENTRES = [(0, 0), (10, 0), (0, 10), (10, 10), (5, 20)]


# ---------------------------------------------------------------------------- clustering score

def test_clustering_score_by_hand():
    # class A: median centroid (0, 0), distances 0, 1, 1 → spread 1; class B likewise around (10, 0)
    x = np.array([[0, 0], [1, 0], [0, 1], [10, 0], [11, 0], [10, 1]], float)
    y = ["A", "A", "A", "B", "B", "B"]
    table = atlas.clustering_score_table(x, y)
    assert table.loc["A", ["centroid_0", "centroid_1"]].tolist() == [0, 0]
    assert table.loc["B", ["centroid_0", "centroid_1"]].tolist() == [10, 0]
    assert table["spread"].tolist() == [1, 1]
    assert table.loc["A", "nearest"] == "B" and table.loc["A", "nearest_distance"] == 10
    assert table.loc["A", "separation"] == 10
    # σ_intra = 1; centroids (0,0),(10,0), c̄ = (5,0): σ_inter = sqrt((25 + 25) / (2·2))
    assert atlas.clustering_score(x, y) == pytest.approx(np.sqrt(12.5))
    # public-code formula: np.std([0, 0, 10, 0]) = sqrt(18.75)
    assert atlas.clustering_score(x, y, inter="flat") == pytest.approx(np.sqrt(18.75))


def test_separated_tight_clusters_score_higher_than_overlapping():
    tight, labels = blobs(CENTRES, scale=0.5)
    loose, _ = blobs(CENTRES, scale=4.0)
    assert atlas.clustering_score(tight, labels) > 5 * atlas.clustering_score(loose, labels)
    shuffled = np.random.default_rng(1).permutation(labels)  # labels unrelated to position
    assert atlas.clustering_score(tight, shuffled) < 0.5 * atlas.clustering_score(loose, labels)


def test_clustering_score_invariances():
    x, y = blobs(CENTRES, scale=1.5)
    score = atlas.clustering_score(x, y)
    rot90 = np.array([[0, -1], [1, 0]])
    assert atlas.clustering_score(x + [123.0, -45.0], y) == pytest.approx(score, rel=1e-12)
    assert atlas.clustering_score(7.5 * x, y) == pytest.approx(score, rel=1e-12)
    assert atlas.clustering_score(x @ rot90.T, y) == pytest.approx(score, rel=1e-12)
    assert atlas.clustering_score(x * [-1, 1], y) == pytest.approx(score, rel=1e-12)
    renamed = pd.Series(y).map({"c0": "z", "c1": "q", "c2": "a", "c3": "m", "c4": "b"})
    assert atlas.clustering_score(x, renamed) == pytest.approx(score, rel=1e-12)
    order = np.random.default_rng(2).permutation(len(y))
    assert atlas.clustering_score(x[order], y[order]) == pytest.approx(score, rel=1e-12)
    # an arbitrary rotation: only approximately (coordinate-wise medians; closer with more points)
    many, labels = blobs(CENTRES, n=400, scale=1.5)
    t = 0.6
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    assert atlas.clustering_score(many @ rot.T, labels) == pytest.approx(atlas.clustering_score(many, labels), rel=0.03)
    # the public code's flat std is not translation invariant
    flat = atlas.clustering_score(x, y, inter="flat")
    assert atlas.clustering_score(x + [100.0, 0.0], y, inter="flat") != pytest.approx(flat, rel=1e-3)


def test_clustering_score_ignore_and_missing_labels():
    x, y = blobs(CENTRES, scale=1.0)
    labels = pd.Series(y, dtype=object)
    keep = labels != "c4"
    expected = atlas.clustering_score(x[keep.to_numpy()], labels[keep])
    assert atlas.clustering_score(x, labels, ignore="c4") == pytest.approx(expected)
    assert atlas.clustering_score(x, labels.where(keep, None)) == pytest.approx(expected)
    assert atlas.clustering_score(x, labels.where(keep, "others"), ignore=["others"]) == pytest.approx(expected)


def test_clustering_score_errors():
    x, _ = blobs(CENTRES[:2])
    with pytest.raises(DataError, match="at least two classes"):
        atlas.clustering_score(x, ["same"] * len(x))
    with pytest.raises(DataError, match="labels for"):
        atlas.clustering_score(x, ["a", "b"])
    x[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        atlas.clustering_score(x, ["a", "b"] * (len(x) // 2))


# ---------------------------------------------------------------------------- UMAP

def test_umap_embed_rejects_too_few_rows_and_nans():
    with pytest.raises(DataError, match="n_neighbors"):
        atlas.umap_embed(np.zeros((10, 3)), n_neighbors=15)
    bad = np.random.default_rng(0).normal(size=(30, 4))
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        atlas.umap_embed(bad, n_neighbors=5)


@pytest.mark.slow
def test_umap_embed_is_deterministic_and_keeps_clusters_apart():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(3, 8))
    features = np.concatenate([c + rng.normal(size=(25, 8)) for c in centres]).reshape(75, 2, 4)
    labels = np.repeat(["a", "b", "c"], 25)
    first = atlas.umap_embed(features, n_neighbors=10, seed=3, n_epochs=60)
    second = atlas.umap_embed(features, n_neighbors=10, seed=3, n_epochs=60)
    assert first.shape == (75, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    assert atlas.clustering_score(first, labels) > 2


# ---------------------------------------------------------------------------- h5ad

def atlas_inputs(n=12):
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({
        "gene": [f"G{i % 4}" for i in range(n)],
        "family": (["nucleolus", "ER", None] * n)[:n],
        "split": ["train"] * (n - 2) + ["test"] * 2,
        "fov": np.arange(n) // 3,
    })
    return dict(
        global_features=rng.normal(size=(n, 3, 2, 2)),
        local_features=rng.integers(0, 16, size=(n, 5, 5)),
        umap=rng.normal(size=(n, 2)),
        obs=obs,
        uns={"params": {"n_neighbors": 15, "min_dist": 0.1}, "score": 1.5, "families": ["ER", "nucleolus"]},
    )


def test_h5ad_round_trip(tmp_path):
    inputs = atlas_inputs()
    path = atlas.export_atlas_h5ad(tmp_path / "sub" / "atlas.h5ad", **inputs)
    assert sorted(p.name for p in path.parent.iterdir()) == ["atlas.h5ad"]  # no temp file left
    adata = atlas.read_atlas_h5ad(path)
    assert adata.shape == (12, 12)
    np.testing.assert_allclose(adata.X, inputs["global_features"].reshape(12, -1), rtol=1e-6)
    assert adata.obsm["X_umap"].shape == (12, 2)
    np.testing.assert_allclose(adata.obsm["X_umap"], inputs["umap"], rtol=1e-6)
    local = atlas.atlas_local(adata)
    np.testing.assert_array_equal(local, inputs["local_features"])
    assert list(adata.obs["gene"]) == list(inputs["obs"]["gene"])
    assert adata.obs["family"].isna().sum() == 4
    assert list(adata.obs["fov"]) == list(inputs["obs"]["fov"])
    assert adata.uns["params"]["n_neighbors"] == 15 and adata.uns["score"] == 1.5
    assert list(adata.var_names[:2]) == ["global_0", "global_1"]
    # overwriting an existing atlas works (atomic replace)
    inputs["umap"] = inputs["umap"] + 1
    atlas.export_atlas_h5ad(path, **inputs)
    np.testing.assert_allclose(atlas.read_atlas_h5ad(path).obsm["X_umap"], inputs["umap"], rtol=1e-6)


def test_h5ad_errors(tmp_path):
    inputs = atlas_inputs()
    inputs["umap"] = inputs["umap"][:5]
    with pytest.raises(DataError, match="umap must have shape"):
        atlas.export_atlas_h5ad(tmp_path / "a.h5ad", **inputs)
    with pytest.raises(DataError, match="no file"):
        atlas.read_atlas_h5ad(tmp_path / "missing.h5ad")
    (tmp_path / "junk.h5ad").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable"):
        atlas.read_atlas_h5ad(tmp_path / "junk.h5ad")


# ---------------------------------------------------------------------------- figure

def test_atlas_figure_traces_colours_hover_and_highlight():
    inputs = atlas_inputs()
    obs = inputs["obs"]
    fig = atlas.atlas_figure(inputs["umap"], obs, highlight={"complex X": ["G1", "G2"]})
    names = [t.name for t in fig.data]
    assert names == ["others", "nucleolus", "ER", "complex X"]  # grey underneath, complex on top
    by_name = {t.name: t for t in fig.data}
    assert by_name["ER"].marker.color == atlas.FAMILY_COLORS["ER"]
    assert by_name["others"].marker.color == atlas.OTHERS_COLOR
    assert len(by_name["nucleolus"].x) == 4 and len(by_name["others"].x) == 4
    highlighted = by_name["complex X"]
    assert len(highlighted.x) == 6 and highlighted.marker.line.color == "black"
    assert highlighted.marker.color not in atlas.FAMILY_COLORS.values()
    assert "gene" in by_name["ER"].hovertemplate
    assert set(np.asarray(by_name["ER"].customdata)[:, 0]) <= {"G0", "G1", "G2", "G3"}
    assert fig.data[0].type == "scatter" and fig.layout.xaxis.title.text == "UMAP 1"
    plain = atlas.atlas_figure(inputs["umap"], obs)
    assert plain.layout.xaxis.title.text == "UMAP 1" and len(plain.data) == 3
    big = atlas.atlas_figure(inputs["umap"], obs, webgl_threshold=5)
    assert {t.type for t in big.data} == {"scattergl"}
    with pytest.raises(DataError, match="no column"):
        atlas.atlas_figure(inputs["umap"], obs, color="compartment")


def test_category_colours_are_stable():
    a = atlas.category_colors(["zeta", "alpha", "ER"])
    b = atlas.category_colors(["alpha", "ER", "zeta", "zeta"])
    assert a == b and a["ER"] == atlas.FAMILY_COLORS["ER"] and a["alpha"] != a["zeta"]


# ---------------------------------------------------------------------------- orphans

def test_localize_by_correlation_ranks_the_right_family_first():
    rng = np.random.default_rng(0)
    consensus = pd.DataFrame(rng.gamma(1.0, size=(4, 50)), index=["ER", "Golgi", "nucleolus", "vesicles"])
    profile = 3.0 * consensus.loc["Golgi"] + rng.normal(scale=0.2, size=50)  # scaled, noisy Golgi
    ranking = atlas.localize_by_correlation(profile.to_numpy(), consensus)
    assert ranking.index[0] == "Golgi" and ranking.iloc[0] > 0.9
    assert ranking.is_monotonic_decreasing
    expected = np.corrcoef(profile, consensus.loc["ER"])[0, 1]
    assert ranking["ER"] == pytest.approx(expected)
    shuffled = profile.sample(frac=1, random_state=0)  # a Series is aligned by label
    pd.testing.assert_series_equal(atlas.localize_by_correlation(shuffled, consensus), ranking)
    with pytest.raises(DataError, match="constant"):
        atlas.localize_by_correlation(np.ones(50), consensus)
