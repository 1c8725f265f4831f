"""Integrity end to end (issue 23): checksummed checkpoints, finite weights, a run folder with a
damaged checkpoint refused, no executed notebook lost to a failed write, bounded downloads and
archives, cached files re-verified by content."""
from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from atlaskit.train import TrainConfig, classification_step
from atlaskit.train.checkpoints import (
    INTEGRITY_KEY,
    CheckpointError,
    CheckpointWarning,
    checkpoint_digest,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- helpers
def _flip_tensor_byte(path: Path, record_suffix: str | None = None) -> None:
    """Flip one byte inside the largest tensor record of a torch zip file (the weights' bytes,
    not the zip structure: torch.load reads such a file without complaint)."""
    with zipfile.ZipFile(path) as z:
        records = [i for i in z.infolist() if "/data/" in i.filename and i.file_size > 0
                   and (record_suffix is None or i.filename.endswith(record_suffix))]
        info = max(records, key=lambda i: i.file_size)
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(fh.read(4), dtype="<u2")
        start = info.header_offset + 30 + int(name_len) + int(extra_len)
        fh.seek(start + info.file_size // 2)
        b = fh.read(1)[0]
        fh.seek(start + info.file_size // 2)
        fh.write(bytes([b ^ 0x40]))


def _ckpt(**extra):
    g = torch.Generator().manual_seed(0)
    return {"format": "atlaskit.train/1", "epochs_done": 2,
            "model": {"w": torch.randn(64, 32, generator=g), "b": torch.zeros(32)},
            "history": {"val": [{"loss": float("nan")}]}, **extra}


# --------------------------------------------------------------------------- A. checkpoints
def test_checkpoint_carries_a_content_checksum_and_loads_clean(tmp_path):
    path = save_checkpoint(_ckpt(), tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)
    assert raw[INTEGRITY_KEY]["sha256"] == checkpoint_digest(_ckpt())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified file warns about nothing
        obj = load_checkpoint(path)
    assert INTEGRITY_KEY not in obj and torch.equal(obj["model"]["w"], _ckpt()["model"]["w"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_digest_tells_structures_and_values_apart():
    base = checkpoint_digest({"a": [1, 2]})
    assert base == checkpoint_digest({"a": [1, 2]})
    assert base != checkpoint_digest({"a": (1, 2)})
    assert base != checkpoint_digest({"a": [1, 3]})
    assert checkpoint_digest({1: 0}) != checkpoint_digest({"1": 0})
    assert checkpoint_digest({"t": torch.zeros(2, 3)}) != checkpoint_digest({"t": torch.zeros(3, 2)})
    assert checkpoint_digest({"t": torch.zeros(2)}) != checkpoint_digest({"t": torch.zeros(2, dtype=torch.float64)})
    t = torch.arange(6.0)
    assert checkpoint_digest({"t": t[::2]}) == checkpoint_digest({"t": torch.tensor([0.0, 2.0, 4.0])})
    assert checkpoint_digest({"t": torch.ones(3, dtype=torch.bfloat16)}) != checkpoint_digest({"t": torch.zeros(3, dtype=torch.bfloat16)})


def test_flipped_byte_in_the_weights_is_refused(tmp_path):
    path = save_checkpoint(_ckpt(), tmp_path / "c.pt")
    _flip_tensor_byte(path)
    torch.load(path, weights_only=True)  # torch itself does not notice
    with pytest.raises(CheckpointError, match=r"c\.pt failed its integrity check .*changed after it was written"):
        load_checkpoint(path)


def test_nan_or_inf_weights_are_refused_by_name(tmp_path):
    bad = _ckpt()
    bad["model"]["w"][3, 4] = float("nan")
    bad["model"]["b"][0] = float("inf")
    path = save_checkpoint(bad, tmp_path / "nan.pt")  # a correct checksum of bad weights
    with pytest.raises(CheckpointError, match=r"non-finite \(NaN or inf\) weights in model\.w, model\.b"):
        load_checkpoint(path)
    # NaN outside the weights (a history entry) is legitimate
    assert np.isnan(load_checkpoint(save_checkpoint(_ckpt(), tmp_path / "ok.pt"))["history"]["val"][0]["loss"])


def test_old_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(_ckpt(), path)  # as written before checkpoints carried a checksum
    with pytest.warns(CheckpointWarning, match="carries no checksum"):
        obj = load_checkpoint(path)
    assert obj["epochs_done"] == 2
    old_nan = _ckpt()
    old_nan["model"]["w"][0, 0] = float("nan")
    torch.save(old_nan, path)
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(path)


def test_unknown_checksum_method_and_folder_are_refused(tmp_path):
    obj = _ckpt()
    obj[INTEGRITY_KEY] = {"method": "md5", "sha256": "0"}
    torch.save(obj, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="unknown checksum method 'md5'"):
        load_checkpoint(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="it is a folder"):
        verify_checkpoint(tmp_path)


def _data(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _fit(monkeypatch, root):
    from atlaskit.studies import _scaffold as sc

    monkeypatch.setenv("ATLASKIT_RUNS", str(root))
    config = TrainConfig(epochs=2, batch_size=8, lr=0.1, seed=7, device="cpu", progress=False)
    return sc.fit_or_reuse("99_demo", "linear", lambda: torch.nn.Linear(3, 2), config, key={"width": 3},
                           train_data=_data(0), val_data=lambda: _data(1), step_fn=classification_step, threads=1)


def test_corrupted_best_pt_in_a_run_folder_is_refused_not_used(tmp_path, monkeypatch):
    """A chapter re-run finds the finished run; its damaged best.pt must stop it with a message
    naming the file and what to do (not publish numbers from damaged weights, not retrain
    silently: the damage points at a disk problem the user should know about)."""
    run = _fit(monkeypatch, tmp_path)
    assert not run.reused
    best = run.run_dir / "best.pt"
    _flip_tensor_byte(best)
    with pytest.raises(CheckpointError, match=r"best\.pt failed its integrity check.*delete it \(or its run folder\)"):
        _fit(monkeypatch, tmp_path)
    best.unlink()
    (run.run_dir / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"last\.pt is not a readable checkpoint"):
        _fit(monkeypatch, tmp_path)


def test_evaluate_refuses_a_flipped_byte_and_nan_weights(tmp_path, capsys):
    from atlaskit.cli import main as cli_main
    from atlaskit.commands.evaluate import evaluate_checkpoint
    from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet
    from atlaskit.studies import deepyeast as dy

    torch.manual_seed(0)
    model = DeepYeastNet(DeepYeastConfig.small(0.125)).eval()
    path = dy.save_model(model, tmp_path / "dy.pt")
    rng = np.random.default_rng(0)
    npz = tmp_path / "crops.npz"
    np.savez(npz, images=rng.random((4, 2, 64, 64), dtype=np.float32), labels=np.asarray(["nucleus"] * 4))
    assert 0 <= evaluate_checkpoint(path, npz).accuracy <= 1
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(path.read_bytes())
    _flip_tensor_byte(flipped)
    with pytest.raises(CheckpointError, match="failed its integrity check"):
        evaluate_checkpoint(flipped, npz)
    assert cli_main(["evaluate", "deepyeast", "--checkpoint", str(flipped), "--images", str(npz)]) == 2
    err = capsys.readouterr().err
    assert "failed its integrity check" in err and "accuracy" not in err and "Traceback" not in err
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    nan_path = dy.save_model(model, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="non-finite"):
        evaluate_checkpoint(nan_path, npz)


# --------------------------------------------------------------------------- B. no run lost to a failed write
def _no_chapter(monkeypatch):
    from atlaskit import book

    monkeypatch.setattr(book, "execute_chapter", lambda *a, **k: pytest.fail("the chapter ran"))


@pytest.mark.parametrize("make_out, message", [
    (lambda tmp: tmp / "a-file" / "ch.ipynb", r"a-file is a file, not a folder"),
    (lambda tmp: tmp / "a-file" / "deeper" / "ch.ipynb", r"a-file is a file, not a folder"),
    (lambda tmp: tmp / "folder", r"it is a folder \(name the file to write\)"),
])
def test_run_refuses_an_unwritable_output_before_executing(tmp_path, monkeypatch, capsys, make_out, message):
    from atlaskit import cli

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder").mkdir()
    _no_chapter(monkeypatch)
    out = make_out(tmp_path)
    assert cli.main(["run", "00_data", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write the executed notebook to" in err and str(out) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    import re
    assert re.search(message, err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_run_refuses_a_read_only_output_folder(tmp_path, monkeypatch, capsys):
    from atlaskit import cli

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _no_chapter(monkeypatch)
        assert cli.main(["run", "00_data", "-o", str(ro / "ch.ipynb")]) == 2
        assert "Permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_run_checks_chapter_and_parameters_before_the_output(tmp_path, monkeypatch, capsys):
    from atlaskit import cli

    _no_chapter(monkeypatch)
    assert cli.main(["run", "00_data", "-p", "nope", "1", "-o", str(tmp_path)]) == 2
    assert "no parameter 'nope'" in capsys.readouterr().err


def test_publish_file_keeps_the_result_when_the_target_cannot_be_written(tmp_path):
    from atlaskit._atomic import publish_file
    from atlaskit.errors import AtlaskitError

    src = tmp_path / "executed.ipynb"
    src.write_text('{"cells": []}')
    (tmp_path / "out").mkdir()
    assert publish_file(src, tmp_path / "out" / "ch.ipynb").read_text() == '{"cells": []}'
    # the target is a folder
    (tmp_path / "out" / "dir.ipynb").mkdir()
    with pytest.raises(AtlaskitError, match=r"dir\.ipynb: it is a folder.*; it is kept at .*kept.dir\.ipynb$"):
        publish_file(src, tmp_path / "out" / "dir.ipynb", keep_in=[tmp_path / "kept"], what="the notebook")
    assert (tmp_path / "kept" / "dir.ipynb").read_text() == '{"cells": []}'
    # a regular file where the folder should be; the first rescue folder is unusable too
    (tmp_path / "blocker").write_text("")
    with pytest.raises(AtlaskitError) as err:
        publish_file(src, tmp_path / "blocker" / "ch.ipynb", keep_in=[tmp_path / "blocker" / "k"])
    kept = Path(str(err.value).rsplit("it is kept at ", 1)[1])
    assert kept.read_text() == '{"cells": []}' and kept.name == "ch.ipynb"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_publish_file_on_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno
    import shutil

    from atlaskit import _atomic
    from atlaskit.errors import AtlaskitError

    src = tmp_path / "executed.ipynb"
    src.write_bytes(b"x" * 10_000)
    (tmp_path / "out").mkdir()
    real = shutil.copyfileobj
    calls = []

    def full_once(fsrc, fdst, *a, **k):
        calls.append(1)
        if len(calls) == 1:
            fdst.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fsrc, fdst, *a, **k)

    monkeypatch.setattr(shutil, "copyfileobj", full_once)
    with pytest.raises(AtlaskitError, match="No space left on device; it is kept at"):
        _atomic.publish_file(src, tmp_path / "out" / "ch.ipynb", keep_in=[tmp_path / "kept"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no .ch.ipynb.*.tmp
    assert (tmp_path / "kept" / "ch.ipynb").read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------- C. bounded archives
def _zeros_zip(path: Path, n_bytes: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * n_bytes)
    return path


def test_unpack_refuses_a_compression_ratio_over_the_limit(tmp_path, capsys):
    from atlaskit import cli
    from atlaskit.data.archives import safe_extract
    from atlaskit.errors import DataError

    archive = _zeros_zip(tmp_path / "bomb.zip", 8 << 20)  # 8 MiB of zeros in ~8 kB: ratio ~1000
    size = archive.stat().st_size
    assert size < 80_000
    with pytest.raises(DataError, match=rf"declare 8388608 bytes uncompressed, more than 100 times the archive's {size} bytes"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert cli.main(["data", "unpack", str(archive), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--max-ratio" in err and len(err.strip().splitlines()) == 1
    # trusted: raise the limit, or lift it
    assert safe_extract(archive, tmp_path / "a", max_ratio=5000) == [Path("zeros.bin")]
    assert cli.main(["data", "unpack", str(archive), str(tmp_path / "b"), "--max-ratio", "0"]) == 0
    assert (tmp_path / "b" / "zeros.bin").stat().st_size == 8 << 20
    # below the floor (1 MiB of content) a high ratio is fine: a small file of repeats
    assert safe_extract(_zeros_zip(tmp_path / "small.zip", 500_000), tmp_path / "c") == [Path("zeros.bin")]
    with pytest.raises(DataError, match="max_ratio must be a positive number"):
        safe_extract(archive, tmp_path / "d", max_ratio=0)


def test_unpack_refuses_content_larger_than_the_free_space(tmp_path, monkeypatch, capsys):
    import shutil
    import tarfile

    from atlaskit import cli
    from atlaskit.data import archives
    from atlaskit.errors import DataError

    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(300_000))
    tgz = tmp_path / "a.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(data, arcname="d/data.bin")
    zp = tmp_path / "a.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.write(data, "data.bin")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(archives.shutil, "disk_usage", lambda p: usage._replace(free=100_000))
    for archive in (tgz, zp):
        with pytest.raises(DataError, match=r"need 300000 bytes but only 100000 are free"):
            archives.safe_extract(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    assert cli.main(["data", "unpack", str(tgz), str(tmp_path / "out")]) == 2
    assert "--skip-space-check" in capsys.readouterr().err
    assert cli.main(["data", "unpack", str(tgz), str(tmp_path / "out"), "--skip-space-check"]) == 0
    assert (tmp_path / "out" / "d" / "data.bin").read_bytes() == data.read_bytes()


# --------------------------------------------------------------------------------------------------
# C/D. helpers of the registry (atlaskit.data.verify)
def test_verified_in_process_hashes_once_and_catches_an_edit_with_restored_mtime(tmp_path, monkeypatch):
    import hashlib

    from atlaskit.data import verify

    data = os.urandom(50_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    calls = []
    real = verify.file_sha256
    monkeypatch.setattr(verify, "file_sha256", lambda p: calls.append(p) or real(p))
    assert verify.verified_in_process(path, len(data), good)
    assert verify.verified_in_process(path, len(data), good) and len(calls) == 1  # remembered
    assert not verify.verified_in_process(path, len(data) + 1, good) and len(calls) == 1  # size: no hash
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(10)
        fh.write(bytes([data[10] ^ 1]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size, mtime and inode as before
    assert not verify.verified_in_process(path, len(data), good)  # ctime moved: hashed again
    assert len(calls) == 2
    verify.forget(path)
    assert not verify.verified_in_process(path, len(data), good) and len(calls) == 3
    assert not verify.verified_in_process(tmp_path / "missing", 1, good)


def test_bounded_download_stops_as_soon_as_the_registered_size_is_exceeded(tmp_path):
    from atlaskit.data.verify import DownloadTooLarge, bounded_download
    from atlaskit.errors import FetchError

    part = tmp_path / "x.part"
    sent = []

    def endless():  # a server that keeps sending, without a Content-Length
        while True:
            sent.append(1)
            yield b"z" * 1000

    with open(part, "wb") as out:
        with pytest.raises(DownloadTooLarge, match=r"x from http://h/x: the server sent at least 10500 bytes, "
                                                   r"more than the 10000 bytes registered"):
            for chunk in bounded_download(endless(), limit=10_000, offset=500, announced=None, out=out,
                                          part=part, name="x", url="http://h/x"):
                out.write(chunk)
    assert len(sent) == 10 and not part.exists()  # stopped at the first chunk over the limit
    assert issubclass(DownloadTooLarge, FetchError)
    with open(part, "wb") as out:
        with pytest.raises(DownloadTooLarge, match="announced 10001 bytes"):
            next(bounded_download(iter([b"a"]), limit=10_000, offset=0, announced=10_001, out=out, part=part,
                                  name="x", url="u"))
    with open(part, "wb") as out:  # exactly the registered size, or no size known: everything passes
        assert b"".join(bounded_download(iter([b"a" * 6, b"b" * 4]), limit=10, offset=0, announced=10, out=out,
                                         part=part, name="x", url="u")) == b"a" * 6 + b"b" * 4
        assert len(b"".join(bounded_download(endless_n(5), limit=None, offset=0, announced=None, out=out,
                                             part=part, name="x", url="u"))) == 5000


def endless_n(n):
    for _ in range(n):
        yield b"z" * 1000


# --------------------------------------------------------------------------------------------------
# E. input and environment errors: one line naming the culprit, checked before the work
@pytest.fixture(scope="module")
def dy_checkpoint(tmp_path_factory):
    from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet
    from atlaskit.studies import deepyeast as dy

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dy")
    path = dy.save_model(DeepYeastNet(DeepYeastConfig.small(0.125)).eval(), folder / "dy.pt")
    npz = folder / "crops.npz"
    np.savez(npz, images=np.random.default_rng(0).random((3, 2, 64, 64), dtype=np.float32),
             labels=np.asarray(["nucleus"] * 3))
    return path, npz


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_evaluate_option_errors_name_the_option(dy_checkpoint, tmp_path, capsys):
    from atlaskit import cli

    path, npz = dy_checkpoint
    base = ["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(npz)]
    with pytest.raises(SystemExit) as stop:
        cli.main(base + ["--batch-size", "0"])
    assert stop.value.code == 2 and "--batch-size: expected a positive integer, got '0'" in capsys.readouterr().err
    assert cli.main(base + ["--device", "cuda:9"]) == 2
    err = _one_line_error(capsys)
    assert "device 'cuda:9'" in err and str(path) not in err  # the device, not the checkpoint
    folder = tmp_path / "imgs"
    folder.mkdir()
    assert cli.main(["evaluate", "deepyeast", "--checkpoint", str(path), "--images", str(folder),
                     "--list", str(tmp_path / "missing.txt")]) == 2
    assert f"{tmp_path / 'missing.txt'}: no such split list" in _one_line_error(capsys)


def test_evaluate_blames_a_checkpoint_whose_class_names_do_not_fit_its_outputs(dy_checkpoint, tmp_path, capsys):
    from atlaskit import cli

    path, npz = dy_checkpoint
    obj = torch.load(path, weights_only=True)
    obj["classes"] = ["nucleus", "vacuole", "er"]
    bad = save_checkpoint(obj, tmp_path / "three.pt")  # a valid checksum of an inconsistent checkpoint
    assert cli.main(["evaluate", "deepyeast", "--checkpoint", str(bad), "--images", str(npz)]) == 2
    assert "names 3 classes but its network has 12 outputs" in _one_line_error(capsys)


def test_huge_or_negative_seed_is_refused_by_name():
    from atlaskit.chapter import MAX_SEED, setup_chapter
    from atlaskit.errors import ParameterError

    for seed in (2**40, -1, MAX_SEED + 1):
        with pytest.raises(ParameterError, match=rf"seed must be an integer from 0 to {MAX_SEED}, not {seed}"):
            setup_chapter("99_demo", seed=seed, device="cpu", show=False)


def test_predict_out_naming_a_file_fails_before_anything_runs(tmp_path):
    from atlaskit.commands.predict import predict_fasta
    from atlaskit.errors import ParameterError

    (tmp_path / "taken").write_text("x")
    with pytest.raises(ParameterError, match=r"--out .*taken is a file; name a folder"):
        predict_fasta(tmp_path / "no-such.fasta", out_dir=tmp_path / "taken")


def test_long_fasta_ids_make_short_file_names():
    from atlaskit.commands.predict import _safe_name

    taken: set = set()
    a, b = _safe_name("P" * 300, taken), _safe_name("P" * 300, taken)
    assert len(a) == 100 and b == a + "_2" and len((a + ".png").encode()) < 255


@pytest.mark.parametrize("members", [("a", "a/b"), ("a/b", "a"), ("d/", "d")])
def test_archive_file_folder_clash_is_named_not_called_corrupt(tmp_path, members):
    import io
    import tarfile

    from atlaskit.data.archives import safe_extract
    from atlaskit.errors import DataError

    zp = tmp_path / "clash.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for m in members:
            z.writestr(m, b"" if m.endswith("/") else b"data")
    tp = tmp_path / "clash.tar"
    with tarfile.open(tp, "w") as tf:
        for m in members:
            info = tarfile.TarInfo(m.rstrip("/"))
            if m.endswith("/"):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = 4
                tf.addfile(info, io.BytesIO(b"data"))
    for archive in (zp, tp):
        with pytest.raises(DataError, match=r"clashes with member .*both a file and a folder"):
            safe_extract(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_environment_errors_are_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    from atlaskit import cli

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("ATLASKIT_CACHE", str(blocker))
    monkeypatch.delenv("ATLASKIT_MIRROR", raising=False)
    monkeypatch.setenv("ATLASKIT_NO_PROGRESS", "1")
    status = cli.main(["data", "fetch", "opencell/annotations-flat.csv"])
    err = _one_line_error(capsys)
    assert status == 1 and err.startswith("atlaskit: error:") and str(blocker) in err


@pytest.fixture(scope="module")
def deepgps_run(tiny_deepgps_run):
    """A tiny deepGPS-single-2 chapter run (tests/conftest.py)."""
    return tiny_deepgps_run


def test_predict_refuses_to_mix_with_an_earlier_prediction_and_escapes_formula_ids(deepgps_run, tmp_path):
    import pandas as pd

    from atlaskit.commands.predict import predict_fasta
    from atlaskit.errors import ParameterError

    root, run = deepgps_run
    long_id = "Q" * 300
    fasta = tmp_path / "a.fasta"
    fasta.write_text(f">=HYPERLINK(1)\nMKTAYIAKQR\n>{long_id}\nMKTAYIAKQR\n>@x\nMKT7\n")
    out = tmp_path / "out"
    res = predict_fasta(fasta, out_dir=out, checkpoint=run.run_dir)
    assert res.table["id"].tolist() == ["=HYPERLINK(1)", long_id]  # the table keeps the real ids
    written = pd.read_csv(out / "predictions.csv")
    assert written["id"].tolist() == ["'=HYPERLINK(1)", long_id]  # the CSV cannot run a formula
    assert pd.read_csv(out / "skipped.csv")["id"].tolist() == ["'@x"]
    assert ("Q" * 100 + ".png") in written["image"].tolist()
    second = tmp_path / "b.fasta"
    second.write_text(">other\nMKTAYIAKQR\n")
    with pytest.raises(ParameterError, match=r"holds an earlier prediction .*--overwrite"):
        predict_fasta(second, out_dir=out, checkpoint=run.run_dir)
    (out / "notes.txt").write_text("mine")
    predict_fasta(second, out_dir=out, checkpoint=run.run_dir, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "other.png", "predictions.csv", "skipped.csv"]


def test_predict_refuses_a_pickled_nucleus_in_the_run_folder(deepgps_run, tmp_path):
    import shutil

    from atlaskit.commands.predict import predict_fasta
    from atlaskit.errors import DataError

    _, run = deepgps_run
    folder = tmp_path / "run"
    shutil.copytree(run.run_dir, folder)
    np.save(folder / "nucleus.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    fasta = tmp_path / "a.fasta"
    fasta.write_text(">p1\nMKTAYIAKQR\n")
    with pytest.raises(DataError, match=r"nucleus\.npy: not a plain numeric \.npy array .*refused"):
        predict_fasta(fasta, out_dir=tmp_path / "o", checkpoint=folder)
    assert not (tmp_path / "o").exists()  # nothing created before the failure


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_non_finite_chapter_parameters_are_refused_by_name(value):
    from pathlib import Path

    from atlaskit import book
    from atlaskit.errors import ParameterError

    source = Path(book.__file__).resolve().parents[1] / "notebooks" / "04_deepyeast.py"
    with pytest.raises(ParameterError, match=r"parameter alpha expects a finite number"):
        book.validate_parameters("04_deepyeast", source, {"alpha": value})
    assert book.validate_parameters("04_deepyeast", source, {"alpha": "2.5"}) == {"alpha": 2.5}


def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """A SIGTERM during a command unwinds it (temporary folders removed) and exits 143."""
    import subprocess
    import sys
    import textwrap

    marker = tmp_path / "tmpdir.txt"
    script = textwrap.dedent(f"""
        import os, signal, sys, tempfile, threading, time
        from atlaskit import cli

        def slow(args):
            with tempfile.TemporaryDirectory(prefix="atlaskit-test-") as tmp:
                open({str(marker)!r}, "w").write(tmp)
                threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
                time.sleep(30)
            return 0

        cli.cmd_data_list = slow
        sys.exit(cli.main(["data", "list"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, done.stderr
    assert "terminated" in done.stderr and "Traceback" not in done.stderr
    import os

    assert not os.path.exists(marker.read_text())  # the temporary folder was removed
