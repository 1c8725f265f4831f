"""Placing new images on a cytoself atlas (atlaskit.studies.cytoself.place, ``atlaskit place``)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from atlaskit.errors import DataError, ParameterError
from atlaskit.studies.cytoself import place

FAMILIES = {"A": "ER", "B": "nucleolus", "C": "mitochondria"}
CENTERS = {"A": np.r_[10.0, 0, 0, 0], "B": np.r_[0, 10.0, 0, 0], "C": np.r_[0, 0, 10.0, 0]}


def _cluster(letter, n, rng):
    return CENTERS[letter] + rng.normal(0, 0.3, size=(n, 4))


@pytest.fixture(scope="module")
def atlas():
    """Three well-separated clusters of 4 proteins × 5 images, mapped by a seeded UMAP."""
    import anndata as ad

    from atlaskit.analysis.atlas import umap_embed

    rng = np.random.default_rng(0)
    x, genes, families = [], [], []
    for letter in "ABC":
        for p in range(4):
            x.append(_cluster(letter, 5, rng))
            genes += [f"{letter}{p}"] * 5
            families += [FAMILIES[letter]] * 5
    x = np.concatenate(x).astype(np.float32)
    obs = pd.DataFrame({"gene": genes, "family": families}, index=[f"img{i}" for i in range(len(x))])
    a = ad.AnnData(X=x, obs=obs)
    a.obsm["X_umap"] = umap_embed(x, n_neighbors=5, seed=3)
    a.uns["seed"] = 3
    a.uns["umap"] = {"n_neighbors": 5}
    return a


@pytest.fixture(scope="module")
def reducer(atlas):
    return place.refit_atlas_umap(atlas)


def test_umap_params_read_from_the_atlas(atlas):
    p = place.atlas_umap_params(atlas)
    assert p == {"n_neighbors": 5, "min_dist": 0.1, "metric": "euclidean", "seed": 3}


def test_refit_reproduces_the_stored_map(reducer):
    _, shift = reducer
    assert shift < 1e-4


@pytest.mark.parametrize("letter", list("ABC"))
def test_new_protein_lands_in_its_cluster_and_gets_its_family(atlas, reducer, letter):
    new = _cluster(letter, 6, np.random.default_rng(1))
    pl = place.place_features(new, atlas, k=4, reducer=reducer[0])
    # the 4 nearest proteins are the 4 of the cluster: one family, 100 % of the votes
    assert set(pl.neighbors["gene"]) == {f"{letter}{p}" for p in range(4)}
    assert pl.family == FAMILIES[letter] and pl.votes.iloc[0] == 1.0
    assert (np.diff(pl.neighbors["distance"]) >= 0).all()
    # on the map, nearer the cluster's own points than any other cluster's
    genes = atlas.obs["gene"].str[0].to_numpy()
    d = {c: np.linalg.norm(pl.atlas_coords[genes == c].mean(0) - pl.center) for c in "ABC"}
    assert min(d, key=d.get) == letter
    assert pl.coords.shape == (6, 2)
    assert pl.table().loc[1, "family share"] == 1.0


def test_vote_shares_with_two_families(atlas, reducer):
    # k = 6 from cluster A: 4 A proteins, then 2 of the others → ER 4/6
    pl = place.place_features(_cluster("A", 3, np.random.default_rng(2)), atlas, k=6, reducer=reducer[0])
    assert pl.votes.iloc[0] == pytest.approx(4 / 6) and pl.family == "ER"
    assert pl.votes.sum() == pytest.approx(1.0)
    assert "ER 67%" in pl.summary()


def test_k_larger_than_the_atlas_lists_every_protein(atlas, reducer):
    pl = place.place_features(_cluster("B", 2, np.random.default_rng(3)), atlas, k=50, reducer=reducer[0])
    assert len(pl.neighbors) == 12


@pytest.mark.parametrize("features, match", [
    (np.zeros((0, 4)), "at least one image"),
    (np.zeros((3, 5)), "5 values, the atlas's 4"),
    (np.full((2, 4), np.nan), "NaN"),
])
def test_bad_features(atlas, reducer, features, match):
    with pytest.raises(DataError, match=match):
        place.place_features(features, atlas, reducer=reducer[0])


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k(atlas, reducer, k):
    with pytest.raises(ParameterError):
        place.place_features(np.zeros((1, 4)), atlas, k=k, reducer=reducer[0])


def test_atlas_that_is_not_one():
    with pytest.raises(DataError, match="X_umap"):
        place.place_features(np.zeros((1, 4)), object())


def _fake_model(use_nucleus=True, nucleus_distance=True):
    return SimpleNamespace(config=SimpleNamespace(image_size=100, in_channels=2 if use_nucleus else 1,
                                                  use_nucleus=use_nucleus, nucleus_distance=nucleus_distance))


def test_model_channels_from_the_config():
    assert place.model_channels(_fake_model()) == (0, 1)
    assert place.model_channels(_fake_model(nucleus_distance=False)) == (0, 2)
    assert place.model_channels(_fake_model(use_nucleus=False)) == (0,)


def test_model_input_takes_the_model_channels():
    x = np.stack([np.full((100, 100), c, np.float32) for c in range(3)])[None].repeat(2, 0)
    out = place._model_input(_fake_model(nucleus_distance=False), x)
    assert out.shape == (2, 2, 100, 100) and out[0, 1, 0, 0] == 2
    assert place._model_input(_fake_model(), x[:, :2]).shape == (2, 2, 100, 100)


@pytest.mark.parametrize("shape, match", [
    ((2, 3, 64, 64), "100 × 100"),
    ((2, 4, 100, 100), "4 channels"),
    ((3, 100, 100), "shaped"),
    ((0, 3, 100, 100), "N >= 1"),
])
def test_model_input_refuses_wrong_shapes(shape, match):
    with pytest.raises(DataError, match=match):
        place._model_input(_fake_model(), np.zeros(shape, np.float32))


def test_read_images_from_npz(tmp_path):
    np.savez(tmp_path / "FAM241A.npz", images=np.ones((3, 3, 100, 100), np.float32))
    x, name = place.read_place_images(tmp_path / "FAM241A.npz")
    assert x.shape == (3, 3, 100, 100) and name == "FAM241A"


def test_read_images_bad_input(tmp_path):
    with pytest.raises(DataError, match="no images"):
        place.read_place_images(tmp_path)  # empty folder
    with pytest.raises(DataError, match="no such file"):
        place.read_place_images(tmp_path / "missing.npz")
    np.savez(tmp_path / "x.npz", other=np.ones(3))
    with pytest.raises(DataError, match="no 'images'"):
        place.read_place_images(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", images=np.ones((3, 100)))
    with pytest.raises(DataError, match="shaped"):
        place.read_place_images(tmp_path / "y.npz")
    (tmp_path / "z.txt").write_text("x")
    with pytest.raises(DataError, match="expected an .npz"):
        place.read_place_images(tmp_path / "z.txt")


def test_read_images_from_a_cytoself_folder(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "FAM241A_pro.npy", rng.random((2, 100, 100)).astype(np.float32))
    np.save(tmp_path / "FAM241A_nuc.npy", rng.random((2, 100, 100)).astype(np.float32))
    np.save(tmp_path / "FAM241A_nucdist.npy", rng.normal(0, 50, (2, 100, 100)).astype(np.float32))
    # the public label layout: ensg_id, protein, localization per image, an object array
    labels = np.array([["ENSG00000000001", "FAM241A", "unknown"]] * 2, dtype=object)
    np.save(tmp_path / "FAM241A_label.npy", labels, allow_pickle=True)
    x, name = place.read_place_images(tmp_path)
    assert name == "FAM241A" and x.shape == (2, 3, 100, 100)


def test_load_run_missing(tmp_path):
    with pytest.raises(DataError, match="no such run folder"):
        place.load_run(tmp_path / "nope")
    with pytest.raises(DataError, match="no best.pt"):
        place.load_run(tmp_path)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from atlaskit.cli import main

    np.savez(tmp_path / "p.npz", images=np.ones((2, 3, 100, 100), np.float32))
    assert main(["place", "--run", str(tmp_path / "nope"), "--images", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("atlaskit: error:") and "no such run folder" in err and "\n" not in err
    assert main(["place", "--atlas", str(tmp_path / "a.h5ad"), "--images", str(tmp_path / "p.npz")]) == 2
    assert "no such atlas" in capsys.readouterr().err


def test_a_tied_vote_is_reported_as_a_tie():
    import pandas as pd

    from atlaskit.studies.cytoself.place import Placement

    def placement(votes):
        return Placement(np.zeros((1, 2)), np.zeros(2), pd.DataFrame(), pd.Series(votes), 0.0, np.zeros((1, 2)),
                         pd.DataFrame())

    assert placement({"chromatin": 0.2, "nucleolus": 0.2, "ER": 0.1}).family == "chromatin / nucleolus (tie)"
    assert placement({"chromatin": 0.3, "nucleolus": 0.2}).family == "chromatin"
    assert placement({"a": 0.5, "b": 0.5}).leading == ["a", "b"]
