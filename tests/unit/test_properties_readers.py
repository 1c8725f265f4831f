"""Bad input, systematically, for the readers (issue #10, part 3): random bytes, truncated files,
wrong dtypes and shapes, NaN/inf pixels, zero-size and enormous images, malformed FASTA and label
tables. Every outcome must be a parse or an atlaskit error whose message names the file (and the
record or label); an enormous declared size must be refused from the header, before memory for
the pixels is allocated.

The CI counterpart of the atheris run documented in tests/fuzz/README.md.
"""
from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from atlaskit.data import readers
from atlaskit.data.readers import (
    load_label_npy,
    parse_deepyeast_list,
    read_deepyeast_classes,
    read_deepyeast_list,
    read_hpa_folder,
    read_hpa_labels,
    read_npz_crops,
    read_opencell_folder,
)
from atlaskit.data.sequences import ACCEPTED_LETTERS, read_fasta
from atlaskit.errors import AtlaskitError, DataError
from atlaskit.models.sequence import clean_sequence

# tmp_path is shared by the examples of one test: every example overwrites the same files
FAST = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=12, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


def parses_or_names(fn, path: Path, *names: str):
    """``fn()`` either returns or raises an AtlaskitError whose message names ``path`` (and ``names``)."""
    try:
        return fn()
    except AtlaskitError as err:
        for name in (path.name, *names):
            assert name in str(err), f"{name!r} not named in: {err}"
        return err
    # any other exception propagates and fails the test


def refused(fn, *names: str) -> DataError:
    with pytest.raises(DataError) as info:
        fn()
    for name in names:
        assert name in str(info.value), f"{name!r} not named in: {info.value}"
    return info.value


# --------------------------------------------------------------------------- valid files to damage


def _png(img: np.ndarray) -> bytes:
    return iio.imwrite("<bytes>", img, extension=".png")


def _tiff(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, img)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 255, (16, 16), dtype=np.uint8)
RGB = RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)
CROPS = RNG.random((2, 2, 64, 64)).astype(np.float32)
VALID = {
    "png8": _png(GRAY),
    "png16": _png(GRAY.astype(np.uint16) * 250),
    "tif": _tiff(GRAY),
    "tif_float": _tiff(RNG.random((16, 16), dtype=np.float32)),
}


def _hpa_one(folder: Path, data: bytes, name: str = "a1_green.png") -> Path:
    """An HPA folder with one channel file holding ``data`` and its label table."""
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    path = folder / name
    path.write_bytes(data)
    (folder / "train.csv").write_text("Id,Target\na1,0\n")
    return path


def _read_hpa(folder: Path):
    return read_hpa_folder(folder, folder / "train.csv", size=8, missing="zeros")


def _yeast_one(root: Path, data: bytes, suffix: str = ".png") -> tuple[Path, Path]:
    root.mkdir(exist_ok=True)
    img = root / f"a{suffix}"
    img.write_bytes(data)
    lst = root / "list.txt"
    lst.write_text(f"a{suffix} 0\n")
    return img, lst


# --------------------------------------------------------------------------- random bytes


@FAST
@given(st.binary(max_size=300), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"\x93NUMPY\x01\x00",
                                                  b"PK\x03\x04", b">"]))
def test_random_bytes_never_escape_as_a_foreign_error(tmp_path, blob, magic):
    """Random content, optionally behind a format's magic number, in every reader."""
    data = magic + blob
    png = _hpa_one(tmp_path / "hpa", data)
    parses_or_names(lambda: _read_hpa(tmp_path / "hpa"), png)
    img, lst = _yeast_one(tmp_path / "yeast", data, ".tif")
    parses_or_names(lambda: read_deepyeast_list(lst, tmp_path / "yeast"), img)
    for name, fn in [("x.npy", load_label_npy), ("x.npz", read_npz_crops), ("x.csv", read_hpa_labels),
                     ("x.txt", parse_deepyeast_list), ("doc.txt", read_deepyeast_classes), ("x.fasta", read_fasta)]:
        path = tmp_path / name
        path.write_bytes(data)
        parses_or_names(lambda: fn(path), path)
    oc = tmp_path / "oc"
    oc.mkdir(exist_ok=True)
    np.save(oc / "P_label.npy", np.array([["E", "P", "x"]]))
    (oc / "P_pro.npy").write_bytes(data)
    parses_or_names(lambda: read_opencell_folder(oc, channels=("pro",), crop_size=4), oc / "P_pro.npy")


# --------------------------------------------------------------------------- truncated files


@FAST
@given(st.sampled_from(sorted(VALID)), st.floats(0, 1, exclude_max=True))
def test_truncated_images_are_refused_with_the_file_name(tmp_path, kind, frac):
    data = VALID[kind]
    cut = data[: int(len(data) * frac)]
    png = _hpa_one(tmp_path / "hpa", cut)
    if kind.startswith("tif"):  # TIFF through the DeepYeast reader (suffix decides the decoder)
        img, lst = _yeast_one(tmp_path / "yeast", cut, ".tif")
        out = parses_or_names(lambda: read_deepyeast_list(lst, tmp_path / "yeast"), img)
        assert isinstance(out, AtlaskitError)  # (16 x 16 gray: never a DeepYeast crop)
        out = parses_or_names(lambda: readers._imread(img), img)
    else:
        out = parses_or_names(lambda: _read_hpa(tmp_path / "hpa"), png)
        out = parses_or_names(lambda: readers._imread(png), png)
    if not isinstance(out, AtlaskitError):
        # a cut that leaves the pixel data whole (only trailing chunks lost) may read, but it must
        # never yield different pixels
        original = readers._imread(_hpa_one(tmp_path / "whole", data))
        np.testing.assert_array_equal(out, original)


@FAST
@given(st.floats(0, 1, exclude_max=True), st.sampled_from(["npy", "npz", "fasta.gz"]))
def test_truncated_arrays_and_gzip_are_refused_with_the_file_name(tmp_path, frac, kind):
    data = {"npy": _npy(np.array([["E", "P", "loc"]] * 3)),
            "npz": _npz(images=CROPS, labels=np.array(["a", "b"])),
            "fasta.gz": gzip.compress(b">P1\nMKT\n>P2\nACDE\n")}[kind]
    path = tmp_path / f"x.{kind}"
    path.write_bytes(data[: int(len(data) * frac)])
    fn = {"npy": load_label_npy, "npz": read_npz_crops, "fasta.gz": read_fasta}[kind]
    out = parses_or_names(lambda: fn(path), path)
    assert isinstance(out, AtlaskitError)


def test_truncated_opencell_channel_is_refused(tmp_path):
    np.save(tmp_path / "P_label.npy", np.array([["E", "P", "x"]] * 2))
    full = _npy(RNG.random((2, 8, 8)).astype(np.float32))
    for cut in (10, len(full) // 2, len(full) - 1):
        (tmp_path / "P_pro.npy").write_bytes(full[:cut])
        refused(lambda: read_opencell_folder(tmp_path, channels=("pro",), crop_size=8), "P_pro.npy")


# --------------------------------------------------------------------------- dtypes, shapes, NaN/inf, zero size


wrong_dtypes = st.sampled_from([np.complex64, np.bool_, np.int8, np.uint32, "U2", "S2", "datetime64[s]"])


@FEW
@given(wrong_dtypes)
def test_wrong_dtypes_are_refused(tmp_path, dtype):
    images = np.ones((2, 2, 64, 64)).astype(dtype)
    path = tmp_path / "crops.npz"
    np.savez(path, images=images, labels=np.array(["a", "b"]))
    refused(lambda: read_npz_crops(path), "crops.npz")
    np.save(tmp_path / "P_label.npy", np.array([["E", "P", "x"]] * 2))
    np.save(tmp_path / "P_pro.npy", np.ones((2, 8, 8)).astype(dtype))
    out = parses_or_names(lambda: read_opencell_folder(tmp_path, channels=("pro",), crop_size=8), tmp_path / "P_pro.npy")
    assert isinstance(out, AtlaskitError)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_any_float_width_in_unit_range_is_read(tmp_path, dtype):
    path = tmp_path / "crops.npz"
    np.savez(path, images=CROPS.astype(dtype), labels=np.array(["a", "b"]))
    x, meta = read_npz_crops(path)
    assert x.dtype == np.float32 and np.allclose(x, CROPS, atol=1e-3) and len(meta) == 2


@FEW
@given(hnp.array_shapes(min_dims=1, max_dims=5, max_side=3))
def test_wrong_shapes_are_refused(tmp_path, shape):
    path = tmp_path / "crops.npz"
    np.savez(path, images=np.full(shape, 0.5), labels=np.array(["a"] * shape[0]))
    if len(shape) == 4 and shape[1:] == (2, 64, 64):
        return
    refused(lambda: read_npz_crops(path), "crops.npz")
    png = _hpa_one(tmp_path / "hpa", _png(np.zeros((4, 4, 3), np.uint8) + np.arange(3, dtype=np.uint8)))
    refused(lambda: _read_hpa(tmp_path / "hpa"), png.name, "single-channel")


@FEW
@given(st.sampled_from([np.nan, np.inf, -np.inf]), st.integers(0, 63), st.integers(0, 63))
def test_nan_and_inf_pixels_are_refused(tmp_path, bad, i, j):
    images = CROPS.copy()
    images[1, 0, i, j] = bad
    path = tmp_path / "crops.npz"
    np.savez(path, images=images, labels=np.array(["a", "b"]))
    refused(lambda: read_npz_crops(path), "crops.npz", "NaN")
    tif = RNG.random((64, 64, 3)).astype(np.float32)
    tif[i, j, 1] = bad
    img, lst = _yeast_one(tmp_path / "yeast", _tiff(tif), ".tif")
    refused(lambda: read_deepyeast_list(lst, tmp_path / "yeast"), img.name, "NaN")
    np.save(tmp_path / "P_label.npy", np.array([["E", "P", "x"]] * 2))
    crops = RNG.random((2, 64, 64)).astype(np.float32)
    crops[1, i, j] = bad
    np.save(tmp_path / "P_pro.npy", crops)
    refused(lambda: read_opencell_folder(tmp_path, channels=("pro",), crop_size=64), "P_pro.npy", "crop 1")


def _png_header(width: int, height: int, bitdepth: int = 8, color: int = 0) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` but whose data is a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bitdepth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 9)) + chunk(b"IEND", b"")


def _tiff_header(width: int, height: int) -> bytes:
    """A valid 4 x 4 TIFF whose width and length tags are rewritten to ``width`` x ``height``."""
    data = bytearray(_tiff(np.ones((4, 4), np.uint8)))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags
        spots = [(tags[code].valueoffset, tags[code].dtype) for code in (256, 257)]
    for (offset, dtype), value in zip(spots, (width, height)):
        struct.pack_into("<H" if dtype == 3 else "<I", data, offset, min(value, 65535) if dtype == 3 else value)
    return bytes(data)


def test_zero_size_images_are_refused(tmp_path):
    for w, h in ((0, 0), (0, 16), (16, 0)):
        png = _hpa_one(tmp_path / "hpa", _png_header(w, h))
        refused(lambda: _read_hpa(tmp_path / "hpa"), png.name, "zero-size")
    path = tmp_path / "crops.npz"
    np.savez(path, images=np.zeros((0, 2, 64, 64), np.float32), labels=np.array([], dtype="<U1"))
    refused(lambda: read_npz_crops(path), "crops.npz", "no images")
    np.save(tmp_path / "P_label.npy", np.array([["E", "P", "x"]]))
    np.save(tmp_path / "P_pro.npy", np.zeros((1, 0, 0), np.float32))
    refused(lambda: read_opencell_folder(tmp_path, channels=("pro",), crop_size=8), "P_pro.npy")


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except DataError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@FEW
@given(st.integers(20_000, 2**31 - 1), st.integers(20_000, 2**31 - 1), st.sampled_from([0, 2, 6]))
def test_enormous_png_is_refused_from_the_header(tmp_path, width, height, color):
    png = _hpa_one(tmp_path / "hpa", _png_header(width, height, 8, color))
    err = refused(lambda: _read_hpa(tmp_path / "hpa"), png.name, "MAX_PIXELS", f"{height}x{width}")
    assert "before decoding" in str(err)
    assert _peak_bytes(lambda: _read_hpa(tmp_path / "hpa")) < 20 * 2**20


def test_enormous_tiff_npy_and_npz_are_refused_before_allocating(tmp_path):
    img, lst = _yeast_one(tmp_path / "yeast", _tiff_header(100_000, 100_000), ".tif")
    refused(lambda: read_deepyeast_list(lst, tmp_path / "yeast"), img.name, "MAX_PIXELS")
    assert _peak_bytes(lambda: read_deepyeast_list(lst, tmp_path / "yeast")) < 20 * 2**20

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
    big = tmp_path / "big_label.npy"
    big.write_bytes(header.getvalue() + b"\0" * 64)
    refused(lambda: load_label_npy(big), "big_label.npy", "refused before allocating")
    assert _peak_bytes(lambda: load_label_npy(big)) < 20 * 2**20

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 2, 64, 64)})
    npz = tmp_path / "big.npz"
    with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", member.getvalue() + b"\0" * 64)
        zf.writestr("labels.npy", _npy(np.array(["a"])))
    refused(lambda: read_npz_crops(npz), "big.npz", "images.npy")
    assert _peak_bytes(lambda: read_npz_crops(npz)) < 20 * 2**20

    oc = tmp_path / "oc"
    oc.mkdir()
    np.save(oc / "P_label.npy", np.array([["E", "P", "x"]]))
    (oc / "P_pro.npy").write_bytes(header.getvalue() + b"\0" * 64)
    refused(lambda: read_opencell_folder(oc, channels=("pro",), crop_size=8), "P_pro.npy")
    assert _peak_bytes(lambda: read_opencell_folder(oc, channels=("pro",), crop_size=8)) < 20 * 2**20


def test_max_pixels_is_the_documented_limit(tmp_path, monkeypatch):
    png = _hpa_one(tmp_path / "hpa", _png(GRAY))
    assert _read_hpa(tmp_path / "hpa")[0].shape == (1, 4, 8, 8)
    monkeypatch.setattr(readers, "MAX_PIXELS", GRAY.size - 1)
    refused(lambda: _read_hpa(tmp_path / "hpa"), png.name, "MAX_PIXELS")


# --------------------------------------------------------------------------- FASTA


ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_|.", min_size=1, max_size=8)
good_seq = st.text(alphabet=ACCEPTED_LETTERS + ACCEPTED_LETTERS.lower(), min_size=1, max_size=30)
# characters that are not amino-acid letters, including non-ASCII ones that str.upper() would
# turn into amino-acid codes ('ſ' -> 'S', 'ﬀ' -> 'FF', 'ı' -> 'I')
bad_char = st.sampled_from(list("J1-.?#ſﬀıµé") + ["\u00df", "**"])  # one trailing '*' is a tolerated stop


@FAST
@given(st.lists(st.tuples(ids, good_seq), min_size=1, max_size=6, unique_by=lambda r: r[0]), st.data())
def test_fasta_bad_records_are_named(tmp_path, records, data):
    """One record of a valid file is damaged; the error names the file and that record's id."""
    i = data.draw(st.integers(0, len(records) - 1))
    damage = data.draw(st.sampled_from(["empty", "duplicate", "letter", "no_header"]))
    recs = [list(r) for r in records]
    victim = recs[i][0]
    if damage == "empty":
        recs[i][1] = ""
    elif damage == "letter":
        seq = recs[i][1]
        pos = data.draw(st.integers(0, len(seq)))
        recs[i][1] = seq[:pos] + data.draw(bad_char) + seq[pos:]
    elif damage == "duplicate":
        recs.append([victim, recs[i][1]])
    text = "".join(f">{rid} desc\n{seq}\n" for rid, seq in recs)
    if damage == "no_header":
        text = "MKTAYIAKQR\n" + text  # sequence text before the first '>'
    path = tmp_path / "x.fasta"
    path.write_text(text, encoding="utf-8")
    err = refused(lambda: read_fasta(path), "x.fasta")
    if damage != "no_header":
        assert repr(victim) in str(err)
    else:
        assert "before the first '>'" in str(err)
    good = read_fasta(path, on_error="skip") if damage != "no_header" else None
    if good is not None:
        assert victim not in [r.id for r in good] or damage == "duplicate"


@FAST
@given(st.lists(st.tuples(ids, good_seq), min_size=1, max_size=6, unique_by=lambda r: r[0]))
def test_fasta_valid_files_round_trip(tmp_path, records):
    path = tmp_path / "x.fasta"
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    got = read_fasta(path)
    assert [(r.id, r.sequence) for r in got] == [(rid, seq.upper()) for rid, seq in records]
    assert all(clean_sequence(seq, rid) == seq.upper() for rid, seq in records)


@FAST
@given(good_seq, bad_char, st.data())
def test_clean_sequence_refuses_non_amino_acid_letters(seq, bad, data):
    pos = data.draw(st.integers(0, len(seq)))
    with pytest.raises(DataError, match="'P7'"):
        clean_sequence(seq[:pos] + bad + seq[pos:], "P7")


def test_fasta_empty_and_binary_files(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_bytes(b"")
    refused(lambda: read_fasta(path), "x.fasta", "no FASTA record")
    path.write_bytes(b">P1\nMK\x00T\n")
    refused(lambda: read_fasta(path), "x.fasta", "binary")
    path.write_bytes(b">P1\nMK\xffT\n")
    refused(lambda: read_fasta(path), "x.fasta", "line 2")


# --------------------------------------------------------------------------- labels outside the class list


@FAST
@given(st.integers(28, 10**30), st.integers(0, 3))
def test_hpa_label_outside_the_classes_names_label_and_file(tmp_path, bad, row):
    rows = [f"id{i},{i} 1" for i in range(4)]
    rows[row] = f"id{row},3 {bad}"
    path = tmp_path / "labels.csv"
    path.write_text("Id,Target\n" + "\n".join(rows) + "\n")
    refused(lambda: read_hpa_labels(path), "labels.csv", f"line {row + 2}", str(bad), f"id{row}")


@FAST
@given(st.integers(4, 10**30))
def test_deepyeast_label_outside_the_classes_names_label_and_file(tmp_path, bad):
    lst = tmp_path / "list.txt"
    lst.write_text(f"a.png 0\nb.png {bad}\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("label;label_idx\na;0\nb;1\nc;2\nd;3\n")
    (tmp_path / "img").mkdir(exist_ok=True)
    refused(lambda: read_deepyeast_list(lst, tmp_path / "img", classes=doc), "list.txt", str(bad))


@FAST
@given(st.lists(st.sampled_from(["a", "b", "c", "zz", "?"]), min_size=2, max_size=2))
def test_npz_label_outside_the_classes_names_label_and_file(tmp_path, labels):
    path = tmp_path / "crops.npz"
    np.savez(path, images=CROPS, labels=np.array(labels), classes=np.array(["a", "b", "c"]))
    unknown = sorted(set(labels) - {"a", "b", "c"})
    if not unknown:
        assert read_npz_crops(path)[1]["label"].tolist() == labels
    else:
        refused(lambda: read_npz_crops(path), "crops.npz", repr(unknown[0]))


def test_deepyeast_class_list_with_duplicate_or_empty_names(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("a;0\na;1\n")
    refused(lambda: read_deepyeast_classes(doc), "doc.txt", "line 2", "'a' appears twice")
    doc.write_text("a;0\n;1\n")
    refused(lambda: read_deepyeast_classes(doc), "doc.txt", "line 2", "empty class name")


# --------------------------------------------------------------------------- atheris findings (regressions)

# inputs found by tests/fuzz/fuzz_readers.py: a TIFF whose IFD chain made tifffile's `series`
# walk for more than 20 s, and a gzip FASTA with corrupt deflate data (zlib.error escaped)
FUZZ_TIFF = "SUkqAAgAAAAPAAABBAABAAAACAAAAAEBBAABAAAACAAAAAIBAwABAAAAIAAAAAMBAwABAAAAAQAAAAYBegMAAQEAAAAAAAAAAAAAAQAAAA4BAgASAAAAwgAAABEBBAABAAAAAAEAABUBAwABAAAAAQAAABYBBAABAAAACAAAABcBBAABAAAAAAEAABoBBQABAAAA5AAAABsBBQABAAAA7AAAAwAoAAEBAAAAAQBkADEBAgAMAAAA9AAAAFMBAwABAAAAAwAAAAAAAAB7InNoYXBlIjogWzgsIDhdfQAAAAAAAAAAAP//////////////////////AMIAAAAAAAABAAAAAAEAAAABafHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fHx8fG6BzwKris/4o4GPzauJT/MvIM+4IkdPxqZQwCJUE7HDQoaCgAAAGBJSERSAAAAQBwAHQgA9iSUAO9BEit6AT+lHlc/Cz4wP2k5ND+0IMc+OwpgP7xWCj4EMxQ/dbM4P2pxWD+efQY/njbAPgTYMGWVPXkdcD8gBgg/7jC3Pg=="
FUZZ_GZIP_FASTA = "H4sIAMP2AUjLLCou4fL1DnGM9HTk8g4M0uKyCzDiSkxOSU1Lz8jMzsnNKygEKikrr4xwigrJ5wIALELGyecCACxCxrk1AAAA"


def test_fuzz_found_tiff_is_refused_quickly(tmp_path):
    import base64
    import time

    img, lst = _yeast_one(tmp_path / "yeast", base64.b64decode(FUZZ_TIFF), ".tif")
    start = time.perf_counter()
    refused(lambda: read_deepyeast_list(lst, tmp_path / "yeast"), img.name)
    assert time.perf_counter() - start < 5


def test_fuzz_found_corrupt_gzip_fasta_is_a_data_error(tmp_path):
    import base64

    path = tmp_path / "x.fasta"
    path.write_bytes(base64.b64decode(FUZZ_GZIP_FASTA))
    refused(lambda: read_fasta(path), "x.fasta", "corrupt gzip")


# a label table of bare CRs on which pandas' parser spent 10 s and ~900 MB (found by fuzzing)
FUZZ_SLOW_TABLE = "SWQsMT8NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0gMAoKVCl5Ow=="


def test_fuzz_found_slow_label_table_is_refused_quickly(tmp_path):
    import base64
    import time

    path = tmp_path / "labels.csv"
    path.write_bytes(base64.b64decode(FUZZ_SLOW_TABLE))
    start = time.perf_counter()
    refused(lambda: read_hpa_labels(path), "labels.csv", "expected columns Id,Target")
    assert time.perf_counter() - start < 2
