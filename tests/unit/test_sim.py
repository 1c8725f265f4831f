"""Tests of the procedural fluorescence simulator (atlaskit.data.sim): determinism, shapes and
ranges per style, ground truth, protein-level variation, a linear probe, heterogeneity, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.analysis.imagestats import crop_features, protein_disjoint_probe

from atlaskit.data import sim
from atlaskit.data.sim import (
    COMPARTMENT_RENDERERS, Component, Layer, ProteinSpec, hpa_fields, iter_opencell_crops, make_hpa_protein,
    make_protein, opencell_crops, opencell_field, register_compartment, signed_distance_transform, yeast_crops,
    yeast_noncells,
)
from atlaskit.errors import DataError

# custom proteins: no catalog needed
NUC = make_protein("TEST_NUC", {"nucleoplasm": 3})
CYT = make_protein("TEST_CYT", {"cytoplasmic": 3, "nucleoplasm": 1})
VES = make_protein("TEST_VES", {"vesicles": 3, "cytoplasmic": 2})


@pytest.fixture(scope="module")
def oc_small():
    return opencell_crops([NUC, CYT, VES], 3, seed=5, masks=True, batch_size=4)


# --- determinism ----------------------------------------------------------------------------

def test_same_seed_same_pixels_any_batching(oc_small):
    again = opencell_crops([NUC, CYT, VES], 3, seed=5, masks=True, batch_size=64)
    assert np.array_equal(oc_small.images, again.images)
    assert np.array_equal(oc_small.cell_masks, again.cell_masks)
    # a crop does not depend on the other proteins of its batch, nor on the number of threads
    alone = opencell_crops([CYT], 3, seed=5, workers=1)
    assert np.array_equal(alone.images, oc_small.images[3:6])
    threads = opencell_crops([NUC, CYT, VES], 3, seed=5, batch_size=2, workers=2)
    assert np.array_equal(threads.images, oc_small.images)


def test_different_seed_different_pixels(oc_small):
    other = opencell_crops([NUC, CYT, VES], 3, seed=6)
    assert np.abs(other.images[:, 0] - oc_small.images[:, 0]).mean() > 0.02
    # consecutive indices of one protein differ too
    assert not np.array_equal(oc_small.images[0], oc_small.images[1])


def test_start_extends_a_set(oc_small):
    tail = opencell_crops([NUC], 2, seed=5, start=1)
    assert np.array_equal(tail.images, oc_small.images[1:3])
    assert tail.meta["index"].tolist() == [1, 2]


def test_hpa_and_yeast_deterministic():
    spec = make_hpa_protein("T1", ["nucleus", "mitochondria"])
    a = hpa_fields([spec], 2, seed=1, size=64, batch_size=1)
    b = hpa_fields([spec], 2, seed=1, size=64, batch_size=8)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, hpa_fields([spec], 2, seed=2, size=64).images)
    y = sim.make_yeast_protein("YTEST1", "vacuole")
    y1, y2 = yeast_crops([y], 3, seed=0, batch_size=2), yeast_crops([y], 3, seed=0)
    assert np.array_equal(y1.images, y2.images)


# --- shapes, dtypes, ranges -----------------------------------------------------------------

def test_opencell_shapes_and_ranges(oc_small):
    b = oc_small
    assert b.images.shape == (9, 2, 100, 100) and b.images.dtype == np.float32
    assert b.channels == ("protein", "nucleus")
    p = b.images[:, 0]
    assert np.allclose(p.min(axis=(1, 2)), 0) and np.allclose(p.max(axis=(1, 2)), 1)
    n = b.images[:, 1]
    assert n.min() >= 0 and n.max() <= 65535 and n.max() > 1000  # raw counts
    assert len(b.meta) == 9 and list(b.meta["protein"]) == ["TEST_NUC"] * 3 + ["TEST_CYT"] * 3 + ["TEST_VES"] * 3
    raw = opencell_crops([NUC], 1, seed=5, normalize="raw")
    assert raw.images[:, 0].max() > 1 and np.allclose(raw.images[0, 1], b.images[0, 1])


def test_iterator_batches_are_bounded():
    sizes = [len(b) for b in iter_opencell_crops([NUC, CYT], 5, seed=0, batch_size=4)]
    assert sizes == [4, 4, 2]


def test_hpa_shapes_ranges_and_quantisation():
    specs = [make_hpa_protein(f"T{i}", labs) for i, labs in
             enumerate([["nucleus"], ["cytosol", "plasma membrane"], ["microtubules", "nucleoli", "vesicles"]])]
    b = hpa_fields(specs, 1, seed=0, size=96, masks=True)
    assert b.images.shape == (3, 4, 96, 96) and b.images.dtype == np.float32
    assert b.channels == ("protein", "nucleus", "microtubules", "er")
    assert b.images.min() >= 0 and b.images.max() <= 1
    assert np.allclose(b.images * 255, np.round(b.images * 255), atol=1e-3)
    assert b.cell_masks.shape == (3, 96, 96) and set(b.meta["cell_line"]) <= set(sim.HPA_CELL_LINES)


def test_yeast_shapes_ranges():
    specs = [sim.make_yeast_protein(f"YT{i}", k) for i, k in enumerate(sim.YEAST_RENDERERS)]
    y = yeast_crops(specs, 1, seed=0, masks=True)
    assert y.images.shape == (16, 2, 64, 64) and y.images.dtype == np.float32
    assert y.images.min() >= 0 and y.images.max() <= 1
    assert set(y.meta["klass"]) == set(sim.YEAST_RENDERERS)
    assert set(y.meta.loc[y.meta["task"] == "main", "label_idx"]) == set(range(12))
    assert set(y.meta.loc[y.meta["task"] == "transfer", "label_idx"]) == set(range(4))
    assert (y.cell_masks[:, 31:33, 31:33] == 1).all()  # the centred cell has id 1
    assert ((y.nucleus_masks > 0) <= (y.cell_masks > 0)).all()
    nc = yeast_noncells(10, seed=0)
    assert nc.images.shape == (10, 2, 64, 64)
    assert (nc.meta["klass"] == "non-cell").all() and set(nc.meta["kind"]) == set(sim.NONCELL_KINDS)


# --- ground truth ---------------------------------------------------------------------------

def test_opencell_ground_truth(oc_small):
    b = oc_small
    assert b.cell_masks.shape == b.nucleus_masks.shape == (9, 100, 100)
    for cm, nm in zip(b.cell_masks, b.nucleus_masks):
        assert cm[49:51, 49:51].min() == 1 and nm[49:51, 49:51].min() == 1  # centre cell has id 1
        assert ((nm > 0) <= (cm > 0)).all() and (nm[nm > 0] == cm[nm > 0]).all()
        assert 400 < (nm == 1).sum() < 2500
    assert (b.meta["nucleus_area"] > 0).all() and (b.meta["n_cells"] >= 1).all()
    # the nucleoplasmic protein is brighter in the nucleus, the cytoplasmic one outside it
    def ratio(i):
        x, n, c = b.images[i, 0], b.nucleus_masks[i] == 1, (b.cell_masks[i] == 1) & (b.nucleus_masks[i] == 0)
        return x[n].mean() / x[c].mean()
    assert min(ratio(i) for i in range(3)) > 2
    assert max(ratio(i) for i in range(3, 6)) < 0.8


def test_opencell_field_masks_and_cells():
    f = opencell_field(NUC, seed=0, size=160)
    assert f.images.shape == (1, 2, 160, 160)
    ids = set(np.unique(f.cell_masks[0])) - {0}
    assert len(ids) >= 5 and ids == set(f.cells["cell_id"])
    assert (f.cells["area"] > 0).all()


def test_catalog_proteins(mirror):
    b = opencell_crops(["AATF", "ARF1"], 1, seed=0)
    assert list(b.meta["grade3"]) == [("nucleolus_gc",), ("golgi",)]
    assert b.meta["family"].tolist() == ["nucleolus", "Golgi"]
    assert len(sim.opencell_specs(None, 0)) == 1310
    y = yeast_crops(None, 1, seed=0, task="transfer", per_class=1)
    assert sorted(y.meta["klass"]) == ["actin", "bud neck", "lipid particle", "microtubule"]
    assert y.meta["gene"].notna().any()


def test_hpa_labels_and_per_cell_truth(mirror):
    b = hpa_fields(6, 1, seed=3, size=128)
    classes = set(sim.CYTO2017)
    for i, row in b.meta.iterrows():
        assert row["labels"] and set(row["labels"]) <= classes
        cells = b.cells[b.cells["image"] == i]
        shown = set().union(*cells["labels"])
        assert shown == set(row["labels"])  # with cell_fraction=1 every cell shows every label
        assert (cells["labels"].map(len) == row["n_labels"]).all()


# --- protein-level variation and a linear probe ----------------------------------------------

def _features(b):
    return crop_features(b.images[:, 0], b.cell_masks, b.nucleus_masks)


PROBE = ("nucleoplasm", "cytoplasmic", "vesicles", "er", "nucleolus_gc", "membrane")


@pytest.fixture(scope="module")
def probe_set(mirror):
    from atlaskit.data.catalogs import opencell_proteins

    t = opencell_proteins()
    single = t[t["grade2"].map(len) == 0]
    genes = {c: list(single[single["grade3"].map(lambda g, c=c: g == (c,))]["gene"][:8]) for c in PROBE}
    assert all(len(g) == 8 for g in genes.values())
    b = opencell_crops([g for c in PROBE for g in genes[c]], 8, seed=0, masks=True)
    return genes, b, _features(b)


def test_linear_probe_separates_compartments(probe_set):
    genes, b, F = probe_set
    label = b.meta["protein"].map({g: c for c in PROBE for g in genes[c]}).to_numpy()
    result = protein_disjoint_probe(F, label, b.meta["protein"].to_numpy(), seed=0)
    assert result["n_test"] == 3 * 8 * len(PROBE)  # 3 of 8 proteins per class held out, 8 crops each
    # observed ≈ 0.9: well above chance (1/6), not trivially perfect
    assert 2 * result["chance"] < result["accuracy"] < 0.999, result["accuracy"]


def test_proteins_of_one_compartment_differ(probe_set):
    genes, b0, F0 = probe_set
    mu, sd = F0.mean(0), F0.std(0)
    # (1) two proteins of one compartment differ beyond image-to-image noise (permutation test)
    rng = np.random.default_rng(0)
    for comp in ("er", "nucleolus_gc", "cytoplasmic"):
        g1, g2 = genes[comp][0], genes[comp][1]
        b = opencell_crops([g1, g2], 16, seed=1, masks=True)
        Z = (_features(b) - mu) / sd
        prot = b.meta["protein"].to_numpy()
        A, B = Z[prot == g1], Z[prot == g2]
        between = np.linalg.norm(A.mean(0) - B.mean(0))
        pool = np.concatenate([A, B])
        null = []
        for _ in range(200):
            i = rng.permutation(len(pool))
            null.append(np.linalg.norm(pool[i[:16]].mean(0) - pool[i[16:]].mean(0)))
        assert between > np.percentile(null, 95), (comp, between, np.percentile(null, 95))
    # (2) ... but proteins of one compartment are closer to each other than to other compartments'
    Z0 = (F0 - mu) / sd
    prot = b0.meta["protein"].to_numpy()
    names = [g for c in PROBE for g in genes[c]]
    comp_of = {g: c for c in PROBE for g in genes[c]}
    M = np.stack([Z0[prot == g].mean(0) for g in names])
    D = np.linalg.norm(M[:, None] - M[None], axis=-1)
    same = np.array([[comp_of[a] == comp_of[b] for b in names] for a in names])
    off = ~np.eye(len(names), dtype=bool)
    assert D[same & off].mean() < 0.6 * D[~same].mean(), (D[same & off].mean(), D[~same].mean())


# --- per-cell heterogeneity -----------------------------------------------------------------

def test_hpa_cell_fraction_respected():
    spec = make_hpa_protein("HET", ["cytosol"])
    b = hpa_fields([spec], 6, seed=0, size=128, cell_lines=["A-431"], cell_fraction=0.3, masks=True)
    cells = b.cells[b.cells["area"] > 150]
    frac = (cells["n_labels"] > 0).mean()
    assert 0.15 < frac < 0.5, frac
    assert (b.cells.groupby("image")["n_labels"].max() == 1).all()  # every field shows its label somewhere
    # cells marked as showing the class are brighter in the protein channel
    on, off = [], []
    for _, c in cells.iterrows():
        m = b.cell_masks[c["image"]] == c["cell_id"]
        (on if c["n_labels"] else off).append(b.images[c["image"], 0][m].mean())
    assert np.median(on) > 3 * np.median(off)
    full = hpa_fields([spec], 2, seed=0, size=128, cell_lines=["A-431"], cell_fraction=1.0)
    assert (full.cells["n_labels"] == 1).all()


# --- registry -------------------------------------------------------------------------------

def test_registry_covers_styles_and_is_extensible():
    for table in (sim.OPENCELL_RENDERERS.values(), sim.YEAST_RENDERERS.values(),
                  [r for v in sim.HPA_RENDERERS.values() for r, _ in v]):
        assert set(table) <= set(COMPARTMENT_RENDERERS)
    assert all(fn.__doc__ for fn in COMPARTMENT_RENDERERS.values())

    @register_compartment("test_ring", params={"width": (1.0, 2.0)})
    def test_ring(ctx, p):
        """A ring in the middle of the cytoplasm."""
        return Layer(sharp=np.exp(-((ctx.g.rho - 1.5) / 0.1) ** 2) * ctx.g.cell_soft)

    try:
        spec = ProteinSpec("RING", (Component("test_ring", 1.0, {"width": 1.5}),), 1.0)
        b = opencell_crops([spec], 2, seed=0)
        assert b.images.shape == (2, 2, 100, 100) and b.images[:, 0].std() > 0.05
    finally:
        del COMPARTMENT_RENDERERS["test_ring"]


def test_signed_distance_transform():
    m = np.zeros((20, 20), int)
    m[5:15, 5:15] = 3
    d = signed_distance_transform(m)
    assert d.max() == pytest.approx(1) and d.min() == pytest.approx(-1)
    assert d[10, 10] > 0 > d[0, 0]


# --- errors ---------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(mirror):
    with pytest.raises(DataError, match="unknown OpenCell protein 'NOTAGENE'"):
        opencell_crops(["NOTAGENE"], 1)
    with pytest.raises(DataError, match="unknown OpenCell compartment 'nucleus'"):
        make_protein("X", {"nucleus": 3})
    with pytest.raises(DataError, match="grade"):
        make_protein("X", {"er": 5})
    with pytest.raises(DataError, match="no annotated compartment"):
        make_protein("X", {})
    with pytest.raises(ValueError, match="n_per_protein must be a positive integer"):
        opencell_crops([NUC], 0)
    with pytest.raises(ValueError, match="seed"):
        opencell_crops([NUC], 1, seed=-1)
    with pytest.raises(ValueError, match="normalize"):
        opencell_crops([NUC], 1, normalize="zscore")
    with pytest.raises(ValueError, match="size must be at least 32"):
        hpa_fields(1, 1, size=8)
    with pytest.raises(ValueError, match="cell_fraction"):
        hpa_fields(1, 1, size=64, cell_fraction=0)
    with pytest.raises(DataError, match="unknown cell line"):
        hpa_fields(1, 1, size=64, cell_lines=["HEK-293"])
    with pytest.raises(DataError, match="unknown Cyto-2017 class"):
        make_hpa_protein("X", ["nucleus", "lysosome"])
    with pytest.raises(DataError, match="unknown yeast ORF"):
        yeast_crops(["YNOTORF"], 1)
    with pytest.raises(DataError, match="unknown non-cell kind"):
        yeast_noncells(2, kinds=["smudge"])
    with pytest.raises(DataError, match="unknown compartment"):
        opencell_crops([ProteinSpec("Z", (Component("golgi_body", 1.0, {}),), 1.0)], 1)
    with pytest.raises(ValueError, match="parameter"):
        register_compartment("bad", params={"size": (2.0, 1.0)})
    with pytest.raises(DataError, match="protein table lacks columns"):
        opencell_crops(pd.DataFrame({"gene": ["A"]}), 1)
