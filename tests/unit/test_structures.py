"""The structure path of chapter 02: reading AlphaFold models (biotite), point clouds, the PointNet,
the AlphaFold DB source (URL pattern, download into the cache with its sha256 stamp), and the
structure-vs-sequence experiment end to end on small structures written here."""
from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from atlaskit.data import structures as st
from atlaskit.data.alphafold import ALPHAFOLD_URL, AlphaFoldDB, alphafold_name, alphafold_url
from atlaskit.data.registry import Registry, load_manifest
from atlaskit.errors import DataError, FetchError, ParameterError
from atlaskit.models.pointnet import PointNetConfig, PointNetEncoder, StructureSequenceClassifier

SAMPLES = "structures/alphafold-human-samples"


def write_pdb(path: Path, coords: np.ndarray, residues, plddt) -> Path:
    """A one-chain model of Cα atoms written by biotite (PDB or mmCIF by the suffix)."""
    import biotite.structure as struc
    from biotite.structure.io import pdb, pdbx

    n = len(coords)
    atoms = struc.AtomArray(n)
    atoms.coord = np.asarray(coords, np.float32)
    atoms.chain_id[:] = "A"
    atoms.res_id = np.arange(1, n + 1)
    atoms.res_name = np.asarray(residues)
    atoms.atom_name[:] = "CA"
    atoms.element[:] = "C"
    atoms.hetero[:] = False
    atoms.add_annotation("b_factor", float)
    atoms.b_factor = np.asarray(plddt, float)
    if path.suffix == ".cif":
        f = pdbx.CIFFile()
        pdbx.set_structure(f, atoms)
    else:
        f = pdb.PDBFile()
        f.set_structure(atoms)
    f.write(str(path))
    return path


def helix(n: int, radius: float, rise: float, rng) -> np.ndarray:
    t = np.arange(n) * 100 / 180 * np.pi
    return np.stack([radius * np.cos(t), radius * np.sin(t), rise * np.arange(n)], 1) + rng.normal(0, 0.3, (n, 3))


# ---- reading real AlphaFold models


@pytest.fixture(scope="module")
def samples(mirror):
    folder = mirror / SAMPLES
    assert folder.is_dir(), f"the data mirror {mirror} lacks its AlphaFold samples ({SAMPLES})"
    return folder


def test_real_pdb_and_mmcif_models_are_read_with_plddt_in_range(samples):
    files = st.structure_files(samples)
    assert sorted(files) == ["A0A1W2PQ64", "O15552", "Q5T5X7", "Q7Z6M3", "Q96HM7", "Q96PD2"]
    assert {p.suffix for p in files.values()} == {".pdb", ".cif"}
    for uniprot, path in files.items():
        s = st.read_structure(path)
        assert s.uniprot == uniprot and len(s) == len(s.coords) == len(s.plddt) > 100
        assert s.coords.shape == (len(s), 3) and s.sequence.startswith("M")
        assert 0 <= s.plddt.min() < s.plddt.max() <= 100
        assert 40 < s.plddt.mean() < 100  # AlphaFold confidences, not crystallographic B-factors
    # the mmCIF reader agrees with the sequence of its first residues (O15552 = FFAR2)
    assert st.read_structure(files["O15552"]).sequence[:10] == "MLPDWKSSLI"
    assert len(st.read_structure(files["Q96HM7"])) == 432


def test_point_cloud_columns(samples):
    s = st.read_structure(samples / "AF-Q96HM7-F1-model_v4.pdb")
    cloud = st.point_cloud(s)
    assert cloud.shape == (len(s), st.N_POINT_FEATURES) == (432, 25) and cloud.dtype == np.float32
    assert np.allclose(cloud[:, :3].mean(0), 0, atol=1e-4)  # centred
    assert np.allclose(cloud[:, :3] * st.COORD_SCALE, s.coords - s.coords.mean(0), atol=1e-3)
    assert np.all(cloud[:, 3:24].sum(1) == 1) and cloud[0, 3 + st.AMINO_ACIDS.index("MET")] == 1
    assert np.allclose(cloud[:, -1], s.plddt / 100)
    short = st.point_cloud(s, max_points=100)
    assert short.shape == (100, 25) and np.array_equal(short[0], cloud[0]) and np.array_equal(short[-1], cloud[-1])


def test_pad_clouds_shapes_and_mask():
    a, b = np.ones((5, 4), np.float32), np.ones((3, 4), np.float32)
    points, mask = st.pad_clouds([a, b])
    assert points.shape == (2, 5, 4) and mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    assert points[1, 3:].sum() == 0
    assert st.pad_clouds([a, b], max_points=4)[0].shape == (2, 4, 4)
    with pytest.raises(DataError, match="different numbers of features"):
        st.pad_clouds([a, np.ones((2, 3))])


@pytest.mark.parametrize("name, expected", [
    ("AF-Q96HM7-F1-model_v4.pdb", "Q96HM7"), ("O15552.cif", "O15552"), ("AF-A0A1W2PQ64-F1-model_v2.cif", "A0A1W2PQ64"),
    ("P12345.pdb", "P12345"), ("notes.pdb", None), ("Q96HM7.txt", None), ("AF-Q96HM7-F1-model_v4.pdb.bak", None)])
def test_uniprot_of_file_names(name, expected):
    assert st.uniprot_of(name) == expected


def test_structure_files_prefers_latest_model_then_pdb(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("AF-P12345-F1-model_v2.pdb", "AF-P12345-F1-model_v4.cif", "AF-P12345-F1-model_v4.pdb", "readme.pdb"):
        write_pdb(tmp_path / name, rng.normal(size=(4, 3)), ["ALA"] * 4, [90] * 4)
    assert st.structure_files(tmp_path) == {"P12345": tmp_path / "AF-P12345-F1-model_v4.pdb"}
    with pytest.raises(DataError, match="no such folder"):
        st.structure_files(tmp_path / "nowhere")


def test_reader_errors_name_the_file(tmp_path):
    missing = tmp_path / "AF-P12345-F1-model_v4.pdb"
    with pytest.raises(DataError, match=f"structure file {missing}: not found"):
        st.read_structure(missing)
    garbled = tmp_path / "P12345.cif"
    garbled.write_text("data_x\n_atom_site.id\nthis is not a table\n")
    with pytest.raises(DataError) as err:
        st.read_structure(garbled)
    assert str(garbled) in str(err.value) and "\n" not in str(err.value)
    binary = tmp_path / "P12345.pdb"
    binary.write_bytes(b"\x00\xff" * 50)
    with pytest.raises(DataError, match=str(binary)):
        st.read_structure(binary)
    no_ca = tmp_path / "Q12345.pdb"
    no_ca.write_text("HEADER    EMPTY\nEND\n")
    with pytest.raises(DataError, match=f"{no_ca}: "):
        st.read_structure(no_ca)
    not_plddt = write_pdb(tmp_path / "O12345.pdb", np.zeros((3, 3)), ["GLY"] * 3, [150, 160, 170])
    with pytest.raises(DataError, match="not pLDDT"):
        st.read_structure(not_plddt)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="not a structure file"):
        st.read_structure(tmp_path / "x.txt")


def test_written_pdb_and_cif_read_back_identically(tmp_path):
    rng = np.random.default_rng(1)
    coords, res, plddt = rng.normal(size=(7, 3)) * 10, ["MET", "LYS", "ALA", "SEC", "GLY", "TRP", "LEU"], np.linspace(20, 95, 7)
    a = st.read_structure(write_pdb(tmp_path / "P11111.pdb", coords, res, plddt))
    b = st.read_structure(write_pdb(tmp_path / "P11111.cif", coords, res, plddt))
    assert a.sequence == b.sequence == "MKAXGWL"
    assert np.allclose(a.coords, coords, atol=1e-3) and np.allclose(b.coords, coords, atol=1e-3)
    assert np.allclose(a.plddt, plddt, atol=0.01) and np.allclose(b.plddt, plddt, atol=0.01)
    assert st.point_cloud(a)[3, 3 + 20] == 1  # a non-standard residue goes to "other"


# ---- the PointNet


def _clouds(batch=3, n=9, f=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, f, generator=g)


def test_pointnet_shapes_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    enc = PointNetEncoder(PointNetConfig(5, (8, 16, 12)))
    points, mask = _clouds(), torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    assert enc.point_features(points).shape == (3, 9, 12)
    emb = enc(points, mask)
    assert emb.shape == (3, 12)
    emb.sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    clf = StructureSequenceClassifier(2, pointnet=PointNetConfig(5, (8, 16)), seq_dim=4, hidden=6)
    logits = clf(points, mask, torch.randn(3, 4))
    assert logits.shape == (3, 2) and clf.embed(points, mask, torch.randn(3, 4)).shape == (3, 20)
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in clf.parameters())
    assert StructureSequenceClassifier(3, seq_dim=4)(sequence=torch.randn(2, 4)).shape == (2, 3)
    assert StructureSequenceClassifier(2, pointnet=PointNetConfig(5))(points, mask).shape == (3, 2)


def test_pointnet_is_permutation_invariant():
    torch.manual_seed(0)
    enc = PointNetEncoder(PointNetConfig(5, (8, 16)))
    points = _clouds()
    perm = torch.randperm(9)
    assert torch.allclose(enc(points), enc(points[:, perm]), atol=1e-6)
    assert not torch.allclose(enc(points), enc(points * 2))  # it does read the points


def test_pointnet_ignores_padding():
    torch.manual_seed(0)
    enc = PointNetEncoder(PointNetConfig(5, (8, 16)))
    points = _clouds(batch=1, n=4)
    padded = torch.cat([points, 100 * torch.randn(1, 6, 5)], dim=1)  # large padding rows would win the max
    mask = torch.tensor([[True] * 4 + [False] * 6])
    assert torch.allclose(enc(points), enc(padded, mask), atol=1e-6)
    assert not torch.allclose(enc(points), enc(padded))  # without the mask the padding counts


def test_pointnet_rejects_bad_inputs():
    enc = PointNetEncoder(PointNetConfig(5))
    with pytest.raises(ValueError, match=r"\(batch, points, 5\)"):
        enc(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="at least one real point"):
        enc(torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs a structure encoder"):
        StructureSequenceClassifier(2)


# ---- the AlphaFold DB source


def test_alphafold_url_pattern():
    assert alphafold_url("Q96HM7") == "https://alphafold.ebi.ac.uk/files/AF-Q96HM7-F1-model_v4.pdb"
    assert ALPHAFOLD_URL.format(uniprot="P12345").startswith("https://alphafold.ebi.ac.uk/files/AF-P12345-F1")
    assert alphafold_name("P12345") == "structures/alphafold/AF-P12345-F1-model_v4.pdb"
    for bad in ("FFAR2", "q96hm7", "Q96HM7/../x", ""):
        with pytest.raises(ParameterError, match="not a UniProt accession"):
            alphafold_url(bad)


def test_registered_samples_are_found_by_accession(samples, mirror, tmp_path):
    reg = Registry(load_manifest(), cache=tmp_path / "cache", mirrors=[mirror])
    db = AlphaFoldDB(reg)
    assert sorted(db.registered()) == ["A0A1W2PQ64", "O15552", "Q5T5X7", "Q7Z6M3", "Q96HM7", "Q96PD2"]
    assert db.locate("O15552") == mirror / SAMPLES / "O15552.cif"
    assert db.locate("P12345") is None  # not registered, not cached, no download asked


@pytest.fixture
def afdb_mirror(tmp_path):
    """A local stand-in for the AlphaFold DB: an http server on 127.0.0.1 serving written models."""
    root = tmp_path / "afdb"
    (root / "files").mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_pdb(root / "files" / "AF-P12345-F1-model_v4.pdb", helix(30, 2.3, 1.5, rng), ["ALA"] * 30, [80] * 30)
    (root / "files" / "AF-P99999-F1-model_v4.pdb").write_text("<html>not found page</html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/files/AF-{{uniprot}}-F1-model_v4.pdb"
    server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_into_cache_records_sha256_in_stamp(afdb_mirror, tmp_path):
    root, pattern = afdb_mirror
    reg = Registry([], cache=tmp_path / "cache", mirrors=[])
    db = AlphaFoldDB(reg, url_pattern=pattern, allow_http_hosts={"127.0.0.1"})
    assert db.locate("P12345") is None
    path = db.locate("P12345", download=True)
    assert path == tmp_path / "cache" / "structures/alphafold/AF-P12345-F1-model_v4.pdb"
    source = root / "files" / "AF-P12345-F1-model_v4.pdb"
    assert path.read_bytes() == source.read_bytes()
    stamp = json.loads(db.stamp_path("P12345").read_text())
    assert stamp["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert stamp["size"] == source.stat().st_size and stamp["url"] == pattern.format(uniprot="P12345")
    assert db.stamp_path("P12345") == tmp_path / "cache" / ".stamps/structures/alphafold/AF-P12345-F1-model_v4.pdb.json"
    assert db.locate("P12345") == path and len(st.read_structure(path)) == 30  # from the cache, no download
    path.write_text(path.read_text().replace("ALA", "GLY"))  # changed after download: refused
    with pytest.raises(FetchError, match="sha256 no longer matches"):
        db.locate("P12345")


def test_download_errors(afdb_mirror, tmp_path):
    _, pattern = afdb_mirror
    reg = Registry([], cache=tmp_path / "cache", mirrors=[])
    db = AlphaFoldDB(reg, url_pattern=pattern, allow_http_hosts={"127.0.0.1"})
    with pytest.raises(DataError, match="P99999.*not a structure"):
        db.locate("P99999", download=True)
    assert not (tmp_path / "cache" / alphafold_name("P99999")).exists()  # nothing kept
    with pytest.raises(FetchError, match="HTTP 404"):
        db.locate("Q11111", download=True)
    with pytest.raises(FetchError, match="only https"):
        AlphaFoldDB(reg, url_pattern=pattern, allow_http_hosts=set()).locate("P12345", download=True)


# ---- the experiment, end to end on written structures


@pytest.fixture(scope="module")
def chapter_table(mirror):
    from atlaskit.studies import deepgps

    return deepgps.protein_table(0)


def test_structure_experiment_end_to_end(chapter_table, tmp_path):
    from atlaskit.analysis.effects import VERDICTS
    from atlaskit.studies.deepgps import measure_effects, structure as dgs
    from atlaskit.studies.deepgps.proteins import variant_table

    vt = variant_table(chapter_table, "single-2").merge(chapter_table[["gene", "uniprot"]], on="gene")
    picked = vt.groupby("label").head(12)  # 12 cytoplasmic + 12 nucleoplasmic proteins
    rng = np.random.default_rng(0)
    for i, row in enumerate(picked.itertuples()):
        # geometry that separates the classes: wide helices (cytoplasmic) vs tight ones (nucleoplasm)
        radius = 12.0 if row.label == "cytoplasmic" else 2.3
        name = f"AF-{row.uniprot}-F1-model_v4.pdb" if i % 3 else f"{row.uniprot}.cif"
        write_pdb(tmp_path / name, helix(40 + i, radius, 1.5, rng), rng.choice(st.AMINO_ACIDS, 40 + i), [85] * (40 + i))
    features = __import__("pandas").DataFrame(rng.normal(size=(len(vt), 6)), index=vt["gene"])  # uninformative
    exp = dgs.structure_experiment(chapter_table, features, structures_dir=tmp_path, seed=0, epochs=30, max_points=64,
                                   widths=(16, 32), registry=Registry([], cache=tmp_path / "cache", mirrors=[]))
    assert exp.ran and exp.n_found == 24 and set(exp.results) == set(dgs.ARMS)
    for r in exp.results.values():
        assert r.proba.shape == (24, 2) and np.allclose(r.proba.sum(1), 1) and r.n_folds == 5
        assert sorted(r.genes) == sorted(picked["gene"])
    table = dgs.arm_table(exp, n_boot=200)
    acc = table.set_index("arm")["accuracy"]
    assert acc["structure"] >= 0.8 > acc["sequence"]  # the written geometry is learnt; the noise is not
    assert "structure" in exp.message() and "ran on 24" in exp.message()
    row = dgs.structure_effect(exp, n_boot=200)
    assert row.ours is not None and row.verdict in VERDICTS[:3] and row.low <= row.high and row.data == "real"
    assert row.ours == pytest.approx(acc["sequence"] - acc["sequence + structure"])
    # through the chapter's ledger function, with the other rows left out
    from unittest import mock

    with mock.patch("atlaskit.studies.deepgps.effects.classifier_vs_majority", return_value=row), \
            mock.patch("atlaskit.studies.deepgps.effects.generation_vs_floor", return_value=row):
        rows = measure_effects(model=None, majority=None, run=None, images=None, features=None, items=None,
                               floor_items=None, n_boot=100, structure=exp)
    assert rows[-1].effect == row.effect and rows[-1].ours is not None


def test_structure_experiment_not_testable_without_structures(chapter_table, tmp_path):
    from atlaskit.studies.deepgps import structure as dgs

    exp = dgs.structure_experiment(chapter_table, None, registry=Registry([], cache=tmp_path / "cache", mirrors=[]))
    assert not exp.ran and exp.n_found == 0 and "structures_dir" in exp.reason
    row = dgs.structure_effect(exp, n_boot=100)
    assert row.verdict == "not testable" and row.ours is None and "0 of" in row.reason


def test_pointnet_probe_on_real_samples(samples):
    from atlaskit.studies.deepgps import structure as dgs

    structures = dgs.sample_structures()
    probe = dgs.pointnet_probe(structures, max_points=128, widths=(8, 16))
    assert probe["points"].shape == (6, 128, st.N_POINT_FEATURES) and probe["embedding"].shape == (6, 16)
    assert probe["mask"].sum() == sum(min(len(s), 128) for s in structures.values())
    assert probe["permutation_gap"] < 1e-5
    fig = dgs.point_cloud_figure(structures["Q96HM7"])
    assert len(fig.data[1].x) == 432 and fig.data[1].marker.cmax == 100
