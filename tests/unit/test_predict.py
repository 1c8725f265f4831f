"""`atlaskit predict`: a FASTA with good and bad records, long sequences, nucleus images, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit import cli
from atlaskit.errors import AtlaskitError, DataError, ParameterError


@pytest.fixture(scope="module")
def trained(tiny_deepgps_run):
    """A tiny deepGPS-single-2 chapter run in its own runs folder (tests/conftest.py)."""
    return tiny_deepgps_run


LONG = "MKTAYIAKQRQISFVKSHFSRQ" * 150  # 3300 residues, longer than any window

FASTA = f""">good1 a cytoplasmic-looking protein
MSTNPKPQRKTKRNTNRRPQDVKFPGG
>long1
{LONG}
>empty1

>bad_letters
MKT1AY*IAK
>good1 duplicate
MKTAYIAKQR
>
MKTAYIAKQR
>Weird|id/with:chars
mktayiakqrqisf
"""


def test_predict_fasta_with_good_and_bad_records(trained, tmp_path):
    from atlaskit.commands import predict

    root, run = trained
    fasta = tmp_path / "in.fasta"
    fasta.write_text(FASTA)
    res = predict.predict_fasta(fasta, out_dir=tmp_path / "out", checkpoint=run.run_dir, runs_root=root / "runs")
    assert res.table["id"].tolist() == ["good1", "long1", "Weird|id/with:chars"]
    assert res.table["length"].tolist() == [27, len(LONG), 14]
    assert np.allclose(res.table[["p_cytoplasm", "p_nucleoplasm"]].sum(1), 1)
    assert set(res.table["label"]) <= {"cytoplasm", "nucleoplasm"}
    skipped = res.skipped.set_index("line")
    assert skipped.loc[5, "id"] == "empty1" and "empty" in skipped.loc[5, "reason"]
    assert skipped.loc[7, "id"] == "bad_letters" and "'1'" in skipped.loc[7, "reason"]
    assert skipped.loc[9, "id"] == "good1" and "duplicate" in skipped.loc[9, "reason"]
    assert skipped.loc[11, "reason"].startswith("header without an id")
    files = sorted(p.name for p in res.out_dir.iterdir())
    assert files == ["Weird_id_with_chars.png", "good1.png", "long1.png", "predictions.csv", "skipped.csv"]
    import imageio.v3 as iio

    assert iio.imread(res.out_dir / "long1.png").shape == (32, 32)
    assert pd.read_csv(res.out_dir / "skipped.csv")["id"].fillna("").tolist() == ["empty1", "bad_letters", "good1", ""]


def test_predict_uses_the_latest_run_and_a_given_nucleus(trained, tmp_path):
    import imageio.v3 as iio

    from atlaskit.commands import predict

    root, run = trained
    assert predict.latest_export("single-2", root / "runs") == run.run_dir
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">p1\nMKTAYIAKQRQISF\n")
    a = predict.predict_fasta(fasta, out_dir=tmp_path / "a", runs_root=root / "runs")
    nucleus = tmp_path / "nucleus.png"
    yy, xx = np.mgrid[:80, :80]
    iio.imwrite(nucleus, (((yy - 40) ** 2 + (xx - 40) ** 2 < 400) * 200).astype(np.uint8))
    b = predict.predict_fasta(fasta, out_dir=tmp_path / "b", runs_root=root / "runs", nucleus=nucleus)
    assert a.table["p_nucleoplasm"].item() == pytest.approx(b.table["p_nucleoplasm"].item())  # labels: sequence only
    assert not np.array_equal(iio.imread(a.out_dir / "p1.png"), iio.imread(b.out_dir / "p1.png"))  # images: nucleus too
    assert predict.read_nucleus_image(nucleus, 32).shape == (32, 32)


def test_predict_errors(trained, tmp_path):
    from atlaskit.commands import predict

    root, run = trained
    bad = tmp_path / "bad.fasta"
    bad.write_text(">e\n\n>x\nMK7\n")
    with pytest.raises(DataError, match="no valid FASTA record"):
        predict.predict_fasta(bad, out_dir=tmp_path / "o", checkpoint=run.run_dir)
    good = tmp_path / "good.fasta"
    good.write_text(">p\nMKTAYIAK\n")
    with pytest.raises(AtlaskitError, match="no trained deepGPS-single-4"):
        predict.predict_fasta(good, out_dir=tmp_path / "o", variant="single-4", runs_root=root / "runs")
    with pytest.raises(ParameterError, match="holds a deepGPS-single-2"):
        predict.predict_fasta(good, out_dir=tmp_path / "o", variant="all", checkpoint=run.run_dir)
    with pytest.raises(DataError, match="not a deepGPS chapter run"):
        predict.predict_fasta(good, out_dir=tmp_path / "o", checkpoint=tmp_path)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((20, 20), np.float32))
    with pytest.raises(DataError, match="constant"):
        predict.predict_fasta(good, out_dir=tmp_path / "o", checkpoint=run.run_dir, nucleus=flat)


def test_cli_predict(trained, tmp_path, capsys, monkeypatch):
    root, run = trained
    monkeypatch.setenv("ATLASKIT_RUNS", str(root / "runs"))
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">ok\nMKTAYIAKQR\n>bad\nMK7\n")
    code = cli.main(["predict", "--fasta", str(fasta), "--model", "single-2", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "skipped record 'bad' (line 3)" in err and "1 protein(s) predicted, 1 record(s) skipped" in out
    assert (tmp_path / "out" / "ok.png").is_file()
    code = cli.main(["predict", "--fasta", str(fasta), "--model", "single-4", "--out", str(tmp_path / "o2")])
    assert code == 2 and "run the chapter first" in capsys.readouterr().err
    code = cli.main(["predict", "--fasta", str(tmp_path / "missing.fasta")])
    assert code == 2 and "no such FASTA file" in capsys.readouterr().err
