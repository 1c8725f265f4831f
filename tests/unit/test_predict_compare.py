"""`atlaskit predict --compare`: a user's own images against deepGPS's generated ones (openGPS
"Submit"): the metrics on hand-made cases, the folder layout, the CLI end to end on the tiny
chapter-02 run (and a tiny chapter-01 model), and every bad input as a one-line error."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit import cli
from atlaskit.errors import DataError
from atlaskit.studies.deepgps import compare as cmp

SEQS = {"alpha": "MSTNPKPQRKTKRNTNRRPQDVKFPGG", "beta": "MKTAYIAKQRQISFVKSHFSRQ", "gamma": "MDDDEEEKKKLLLAAAGGG"}


@pytest.fixture(scope="module")
def trained(tiny_deepgps_run):
    """A tiny deepGPS-single-2 chapter run (tests/conftest.py): ``(root, run)``; images 32 × 32."""
    return tiny_deepgps_run


@pytest.fixture(scope="module")
def cytoself_run(tmp_path_factory):
    """A chapter-01 run folder holding an untrained tiny cytoself model (``last.pt``)."""
    import torch

    from atlaskit.models.cytoself import CytoselfConfig, CytoselfModel
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    cfg = CytoselfConfig.tiny(num_classes=4)
    folder = tmp_path_factory.mktemp("cytoself-run")
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": CytoselfModel(cfg).state_dict(),
                     "config": {"model": {"model": cfg.to_dict(), "variant": "full"}}}, folder / "last.pt")
    return folder


def _disc(size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.float32) * 0.8 + 0.1


def _write_images(folder, size: int = 32, names=SEQS, seed: int = 0) -> dict:
    """Protein and nucleus images (.npy) of every name: a nucleus disc and a ring-like protein."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, name in enumerate(names):
        c = size / 2 + (k - 1) * size / 8
        nucleus = _disc(size, c, c, size / 5) + rng.uniform(0, 0.05, (size, size)).astype(np.float32)
        protein = np.clip(_disc(size, c, c, size / 3) - _disc(size, c, c, size / 5) + 0.1, 0, 1)
        protein[0, 0], protein[-1, -1] = 0.0, 1.0  # min 0, max 1: min-max leaves it unchanged
        np.save(folder / f"{name}_protein.npy", protein)
        np.save(folder / f"{name}_nucleus.npy", nucleus)
        out[name] = (protein, nucleus)
    return out


def _fasta(path, names=SEQS, extra: str = "") -> str:
    path.write_text("".join(f">{n}\n{SEQS.get(n, 'MKTAYIAKQR')}\n" for n in names) + extra)
    return str(path)


# --------------------------------------------------------------------------- metrics, hand-made
def test_identical_images_have_ssim_one_and_infinite_psnr():
    img = np.random.default_rng(0).uniform(0, 1, (2, 16, 16)).astype(np.float32)
    q = cmp.image_scores(img, img.copy())
    assert q["ssim"].tolist() == pytest.approx([1.0, 1.0])
    assert np.isinf(q["psnr"]).all()


def test_psnr_of_a_known_mean_squared_error():
    real = np.random.default_rng(1).uniform(0, 0.8, (1, 16, 16)).astype(np.float64)
    q = cmp.image_scores(real + 0.1, real)  # MSE 0.01 on a range of 1: PSNR = 10 log10(1 / 0.01) = 20 dB
    assert q["psnr"].item() == pytest.approx(20.0, abs=1e-6)
    assert q["ssim"].item() < 1


def test_atlas_distance_is_zero_and_rank_one_for_identical_images(cytoself_run):
    from atlaskit.studies.cytoself.place import load_run

    imgs = {n: _disc(32, 16 + 3 * k, 16, 6 + 2 * k) for k, n in enumerate(SEQS)}
    real = np.stack(list(imgs.values()))  # (3, 32, 32)
    nucleus = np.stack([_disc(32, 16, 16, 7)] * 3)
    model = load_run(cytoself_run)
    same = cmp.atlas_scores(model, real, real.copy(), nucleus)
    assert same["atlas_distance"].tolist() == pytest.approx([0, 0, 0], abs=1e-5)
    assert same["atlas_rank"].tolist() == [1, 1, 1]
    assert same["atlas_ties"].between(0, 2).all()


def test_atlas_rank_counts_the_other_proteins_nearer_than_its_own(cytoself_run, monkeypatch):
    """With the protein channel itself as the 'embedding' (an untrained model's quantized vectors
    barely differ), each generated image given to the wrong protein is ranked behind the right one."""
    from atlaskit.studies.cytoself import place

    monkeypatch.setattr(place, "encode_images", lambda model, x, batch_size=64: x[:, 0].reshape(len(x), -1))
    real = np.stack([_disc(32, 16 + 3 * k, 16, 6 + 2 * k) for k in range(3)])  # (3, 32, 32)
    nucleus = np.stack([_disc(32, 16, 16, 7)] * 3)
    model = place.load_run(cytoself_run)
    same = cmp.atlas_scores(model, real, real.copy(), nucleus)
    assert same["atlas_rank"].tolist() == [1, 1, 1] and same["atlas_distance"].max() == 0
    assert same["atlas_ties"].tolist() == [0, 0, 0]
    twins = cmp.atlas_scores(model, real[[0, 0, 1]], real[[0, 0, 1]], nucleus)  # two proteins, one image
    assert twins["atlas_rank"].tolist() == [1, 1, 1] and twins["atlas_ties"].tolist() == [1, 1, 0]
    assert "1/3 (1 tied)" in cmp.comparison_text(pd.concat([pd.DataFrame(
        {"id": list("abc"), "psnr": [20.0] * 3, "ssim": [0.5] * 3}), twins], axis=1))
    shuffled = cmp.atlas_scores(model, real, real[[1, 2, 0]], nucleus)  # each one's own image is another's
    assert (shuffled["atlas_distance"] > 1).all() and (shuffled["atlas_rank"] >= 2).all()
    v = cmp.atlas_inputs(real, nucleus)[:, 0].reshape(3, -1)  # the 'embedding' of each user image
    for i, j in enumerate([1, 2, 0]):  # protein i's own generated image is real[j]
        own = np.linalg.norm(v[i] - v[j])
        assert shuffled["atlas_rank"][i] == 1 + sum(np.linalg.norm(v[i] - v[m]) < own for m in range(3))


# --------------------------------------------------------------------------- the folder
def test_read_channel_image_formats_and_refusals(tmp_path):
    import imageio.v3 as iio
    import tifffile

    grey = (np.arange(24 * 24).reshape(24, 24) % 251).astype(np.uint8)
    iio.imwrite(tmp_path / "rgb_grey.png", np.stack([grey] * 3, -1))
    tifffile.imwrite(tmp_path / "t.tif", grey.astype(np.float32))
    assert cmp.read_channel_image(tmp_path / "rgb_grey.png").shape == (24, 24)
    assert np.array_equal(cmp.read_channel_image(tmp_path / "t.tif"), grey.astype(np.float32))
    colour = np.stack([grey, grey[::-1], grey], -1)
    iio.imwrite(tmp_path / "colour.png", colour)
    np.save(tmp_path / "two.npy", np.stack([grey, grey]).astype(np.float32))
    np.save(tmp_path / "flat.npy", np.ones((24, 24), np.float32))
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).uniform(size=(24, 30)))
    np.save(tmp_path / "small.npy", np.random.default_rng(0).uniform(size=(4, 4)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    cases = {"colour.png": "3 different channels", "two.npy": r"shape \(2, 24, 24\)", "flat.npy": "constant",
             "wide.npy": "square", "small.npy": "smaller than 8", "objects.npy": "cannot read the array",
             "broken.png": "broken.png", "missing.png": "file not found"}
    for name, match in cases.items():
        with pytest.raises(DataError, match=match):
            cmp.read_channel_image(tmp_path / name)


def test_an_npy_over_the_pixel_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from atlaskit.data import readers

    np.save(tmp_path / "big.npy", np.random.default_rng(0).uniform(size=(24, 24)))
    monkeypatch.setattr(readers, "MAX_PIXELS", 500)
    with pytest.raises(DataError, match="MAX_PIXELS"):
        cmp.read_channel_image(tmp_path / "big.npy")


def test_find_compare_images_and_its_errors(tmp_path):
    _write_images(tmp_path / "ok")
    (tmp_path / "ok" / "notes.txt").write_text("ignored")
    files = cmp.find_compare_images(tmp_path / "ok")
    assert list(files) == ["alpha", "beta", "gamma"] and files["beta"]["nucleus"].name == "beta_nucleus.npy"
    with pytest.raises(DataError, match="no such folder"):
        cmp.find_compare_images(tmp_path / "nope")
    with pytest.raises(DataError, match="not a folder"):
        cmp.find_compare_images(tmp_path / "ok" / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no <name>_protein"):
        cmp.find_compare_images(tmp_path / "empty")
    (tmp_path / "ok" / "alpha_nucleus.npy").unlink()
    with pytest.raises(DataError, match=r"both images: alpha \(no alpha_nucleus image\)"):
        cmp.find_compare_images(tmp_path / "ok")
    _write_images(tmp_path / "twice")
    (tmp_path / "twice" / "beta_protein.tif").write_bytes(b"")
    with pytest.raises(DataError, match=r"more than one file for beta_protein \(.npy, .tif\)"):
        cmp.find_compare_images(tmp_path / "twice")


def test_match_names():
    assert cmp.match_names(["a", "sp|P1|X_HUMAN"], ["a", "sp_P1_X_HUMAN"]) == {"a": "a", "sp|P1|X_HUMAN": "sp_P1_X_HUMAN"}
    with pytest.raises(DataError, match=r"images with no FASTA record: zz$"):
        cmp.match_names(["a"], ["a", "zz"])
    with pytest.raises(DataError, match=r"images with no FASTA record: bad \(its record was skipped: empty"):
        cmp.match_names(["a"], ["a", "bad"], {"bad": "empty sequence"})
    with pytest.raises(DataError, match="FASTA records with no images: b, c"):
        cmp.match_names(["a", "b", "c"], ["a"])
    with pytest.raises(DataError, match="match more than one FASTA id"):
        cmp.match_names(["a|b", "a_b"], ["a_b"])


# --------------------------------------------------------------------------- end to end
def test_compare_generates_each_protein_from_its_own_nucleus(trained, tmp_path):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from atlaskit.commands import predict

    root, run = trained
    images = _write_images(tmp_path / "mine")
    fasta = _fasta(tmp_path / "in.fasta")
    res = predict.predict_fasta(fasta, out_dir=tmp_path / "out", checkpoint=run.run_dir, compare=tmp_path / "mine")
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert table["id"].tolist() == ["alpha", "beta", "gamma"]
    assert table["protein_image"].tolist() == [f"{n}_protein.npy" for n in SEQS]
    assert np.allclose(table[["psnr", "ssim"]], res.comparison[["psnr", "ssim"]])
    predictor = predict.Predictor.load(run.run_dir)
    for k, name in enumerate(SEQS):  # the same image as a plain prediction with that nucleus
        protein, nucleus = images[name]
        np.save(tmp_path / "nuc.npy", nucleus)
        _, gen = predictor.predict([(name, SEQS[name])], predict.read_nucleus_image(tmp_path / "nuc.npy", 32))
        assert res.comparison["psnr"][k] == pytest.approx(peak_signal_noise_ratio(protein, gen[0], data_range=1.0), rel=1e-5)
        assert res.comparison["ssim"][k] == pytest.approx(
            structural_similarity(protein, gen[0], data_range=1.0, win_size=7), rel=1e-5)
    # an earlier comparison is removed with the prediction it belongs to
    predict.predict_fasta(fasta, out_dir=tmp_path / "out", checkpoint=run.run_dir, overwrite=True)
    assert not (tmp_path / "out" / "comparison.csv").exists()


def test_cli_compare_with_the_atlas_run(trained, cytoself_run, tmp_path, capsys):
    root, run = trained
    _write_images(tmp_path / "mine", size=48)  # resized to the model's 32 × 32
    fasta = _fasta(tmp_path / "in.fasta", extra=">=cmd\nMKTAYIAKQR\n")
    np.save(tmp_path / "mine" / "=cmd_protein.npy", np.random.default_rng(3).uniform(size=(32, 32)))
    np.save(tmp_path / "mine" / "=cmd_nucleus.npy", _disc(32, 16, 16, 7))
    code = cli.main(["predict", "--fasta", fasta, "--checkpoint", str(run.run_dir), "--out", str(tmp_path / "out"),
                     "--compare", str(tmp_path / "mine"), "--atlas-run", str(cytoself_run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "cytoself distance and rank" in out and "atlas_rank" in out and "/4" in out
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert table["id"].tolist() == ["alpha", "beta", "gamma", "'=cmd"]  # escaped against spreadsheet formulas
    assert table["protein_image"].iloc[3] == "'=cmd_protein.npy"
    assert (table["atlas_distance"] >= 0).all() and table["atlas_rank"].between(1, 4).all()
    assert (table["ssim"] <= 1).all() and np.isfinite(table["psnr"]).all()


def test_cli_progress_for_many_proteins(trained, tmp_path, capsys):
    root, run = trained
    names = [f"p{k:02d}" for k in range(20)]
    _write_images(tmp_path / "mine", size=16, names=names)
    fasta = _fasta(tmp_path / "in.fasta", names=names)
    code = cli.main(["predict", "--fasta", fasta, "--checkpoint", str(run.run_dir), "--out", str(tmp_path / "out"),
                     "--compare", str(tmp_path / "mine")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "compare: 2/20 image pairs read" in err and "compare: 20/20 image pairs read" in err
    assert "… and 0 more" not in out and len(pd.read_csv(tmp_path / "out" / "comparison.csv")) == 20


def _bad_inputs(tmp_path, trained):
    """(name, extra argv, prepare, expected error text)."""
    import imageio.v3 as iio

    def extra_image(folder):
        np.save(folder / "delta_protein.npy", _disc(32, 16, 16, 9))
        np.save(folder / "delta_nucleus.npy", _disc(32, 16, 16, 5))

    def missing_images(folder):
        for role in ("protein", "nucleus"):
            (folder / f"gamma_{role}.npy").unlink()

    def mismatched(folder):
        np.save(folder / "beta_nucleus.npy", _disc(40, 20, 20, 8))

    def not_square(folder):
        for role in ("protein", "nucleus"):
            np.save(folder / f"beta_{role}.npy", _disc(40, 16, 20, 8)[:32])

    def colour(folder):
        (folder / "alpha_protein.npy").unlink()
        rgb = np.stack([_disc(32, 16, 16, r) for r in (5, 8, 11)], -1)
        iio.imwrite(folder / "alpha_protein.png", (rgb * 255).astype(np.uint8))

    def unreadable(folder):
        (folder / "alpha_nucleus.npy").write_bytes(b"not an array")

    run_dir = str(trained[1].run_dir)
    return [
        ("extra", [], extra_image, "images with no FASTA record: delta"),
        ("missing", [], missing_images, "FASTA records with no images: gamma"),
        ("shapes", [], mismatched, "the protein image is 32 × 32 pixels, the nucleus image 40 × 40"),
        ("square", [], not_square, "deepGPS reads square crops"),
        ("channels", [], colour, "alpha_protein.png: a colour image with 3 different channels"),
        ("unreadable", [], unreadable, "alpha_nucleus.npy: cannot read the array"),
        ("nucleus", ["--nucleus", "x.png"], None, "--nucleus and --compare exclude each other"),
        ("not cytoself", ["--atlas-run", run_dir], None, "not a cytoself run"),
        ("no run", ["--atlas-run", str(tmp_path / "nowhere")], None, "no such run folder"),
    ]


def test_cli_bad_inputs_are_one_line_errors(trained, tmp_path, capsys):
    root, run = trained
    for k, (name, argv, prepare, expected) in enumerate(_bad_inputs(tmp_path, trained)):
        folder = tmp_path / f"case{k}"
        _write_images(folder)
        if prepare is not None:
            prepare(folder)
        fasta = _fasta(tmp_path / f"case{k}.fasta")
        code = cli.main(["predict", "--fasta", fasta, "--checkpoint", str(run.run_dir), "--compare", str(folder),
                         "--out", str(tmp_path / f"out{k}")] + argv)
        out, err = capsys.readouterr()
        assert code == 2, (name, err)
        assert expected in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert not (tmp_path / f"out{k}").exists(), name  # nothing written
    code = cli.main(["predict", "--fasta", _fasta(tmp_path / "x.fasta"), "--atlas-run", str(tmp_path)])
    assert code == 2 and "--atlas-run needs --compare" in capsys.readouterr().err


def test_cli_names_a_skipped_record_that_has_images(trained, tmp_path, capsys):
    root, run = trained
    _write_images(tmp_path / "mine")
    np.save(tmp_path / "mine" / "broken_protein.npy", _disc(32, 16, 16, 9))
    np.save(tmp_path / "mine" / "broken_nucleus.npy", _disc(32, 16, 16, 5))
    fasta = _fasta(tmp_path / "in.fasta", extra=">broken\nMK7\n")
    code = cli.main(["predict", "--fasta", fasta, "--checkpoint", str(run.run_dir), "--out", str(tmp_path / "o"),
                     "--compare", str(tmp_path / "mine")])
    err = capsys.readouterr().err
    assert code == 2 and "images with no FASTA record: broken (its record was skipped:" in err
