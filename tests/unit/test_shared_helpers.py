"""Private helpers shared between modules: metric input checks (atlaskit.metrics._checks), text
decoding (atlaskit._text), temporary sibling folders (atlaskit.data.store.tmp_sibling) and
the single-open TIFF read of atlaskit.data.readers."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from atlaskit.data import readers, sequences
from atlaskit._text import decode_text
from atlaskit.data.store import tmp_sibling
from atlaskit.errors import DataError
from atlaskit.metrics import agreement, classification, multilabel
from atlaskit.metrics._checks import as_class_indices, as_float64, is_numeric

# --------------------------------------------------------------------------- metric checks


def test_as_float64_casts_numbers_and_names_the_argument():
    out = as_float64(np.array([True, False]), "x")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 0.0]
    assert as_float64([1, 2], "x").dtype == np.float64
    with pytest.raises(DataError, match=r"^proba must be numeric, got dtype <U1$"):
        as_float64(["a"], "proba")
    with pytest.raises(DataError, match=r"^counts must be numbers, got dtype complex128$"):
        as_float64([1j], "counts", "be numbers")  # complex: the cast would drop the imaginary part
    assert is_numeric(np.zeros(1, np.uint8)) and not is_numeric(np.array([None]))


def test_as_class_indices():
    out = as_class_indices(np.array([0.0, 3.0]), "y")
    assert out.dtype == np.int64 and out.tolist() == [0, 3]
    assert as_class_indices(np.array([2], np.uint8), "y").dtype == np.int64
    with pytest.raises(DataError, match=r"^y_pred contains NaN or inf; class indices must be finite integers$"):
        as_class_indices(np.array([0.0, np.inf]), "y_pred")
    for bad, dtype in ((np.array([0.5]), "float64"), (np.array([True]), "bool"), (np.array(["1"]), "<U1")):
        with pytest.raises(DataError, match=rf"^y must hold integer class indices, got dtype {dtype}$"):
            as_class_indices(bad, "y")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: classification.accuracy([0, np.nan], [0, 1]), "y_true contains NaN or inf"),
        (
            lambda: classification.accuracy([0, 1], [0, 1.5]),
            "y_pred must hold integer class indices, got dtype float64",
        ),
        (lambda: classification.accuracy([0, -1.0], [0, 1]), "y_true holds negative class indices"),
        (lambda: classification.auroc([0, 1], ["a", "b"]), "proba must be numeric, got dtype <U1"),
        (lambda: agreement.cohen_kappa([0, 1], [0, np.inf]), "y_pred contains NaN or inf"),
        (lambda: agreement.cohen_kappa(["a"], [0]), "y_true must hold integer class indices"),
        (lambda: agreement.precision_recall(np.array([["a"]])), "confusion matrices must hold numbers, got dtype <U1"),
        (lambda: agreement.dirichlet_multinomial_map(["x"]), "counts must be numbers, got dtype <U1"),
        (lambda: multilabel.apply_thresholds([[0.5, 0.2]], ["a", "b"]), "thresholds must be numeric, got dtype <U1"),
        (lambda: multilabel.apply_thresholds([["a", "b"]], [0.5, 0.5]), "y_score must be numeric, got dtype <U1"),
        (lambda: multilabel.wilson_interval(["a"], [1]), "successes and trials must be numbers, got <U1 and int"),
    ],
)
def test_metric_modules_keep_their_messages(call, message):
    with pytest.raises(DataError, match=re.escape(message)):
        call()


def test_metric_modules_still_accept_whole_floats():
    assert classification.accuracy([0.0, 1.0], [0, 1]) == 1.0
    assert agreement.cohen_kappa(np.array([0.0, 1.0]), [0, 1]) == 1.0


# --------------------------------------------------------------------------- text decoding


def _never(*args):
    raise AssertionError("no message expected")


def test_decode_text_drops_the_bom_and_names_lines():
    nul = re.compile(rb"\x00")
    assert decode_text(b"\xef\xbb\xbfa\nb", nul, _never, _never) == "a\nb"
    with pytest.raises(DataError, match=r"^b'\\x00' on 3$"):
        decode_text(b"a\nb\nc\x00", nul, lambda byte, line: f"{byte!r} on {line}", _never)
    with pytest.raises(DataError, match=r"^line 2 byte 4$"):
        decode_text(b"ab\nc\xff", nul, _never, lambda line, offset: f"line {line} byte {offset}")


def test_text_readers_keep_their_messages(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"label;label_idx\na;0\x00\n")
    what = "not a DeepYeast class list"
    with pytest.raises(DataError, match=re.escape(f"{doc}: binary content (NUL byte at line 2); {what}")):
        readers.read_deepyeast_classes(doc)
    doc.write_bytes(b"label;label_idx\ncaf\xe9;0\n")
    with pytest.raises(DataError, match=re.escape(f"{doc}: line 2: not UTF-8 text (byte 19); {what}")):
        readers.read_deepyeast_classes(doc)
    fasta = tmp_path / "x.fasta"
    fasta.write_bytes(b">A\nMK\x1bT\n")
    fasta_msg = f"{fasta}: binary content (control byte b'\\x1b' at line 2); not a FASTA text file"
    with pytest.raises(DataError, match=re.escape(fasta_msg)):
        sequences.read_fasta(fasta)
    fasta.write_bytes(b">A\nMKT\n>B caf\xe9\n")
    fasta_msg = f"{fasta}: binary or non-UTF-8 content at line 3 (byte 13); not a FASTA text file"
    with pytest.raises(DataError, match=re.escape(fasta_msg)):
        sequences.read_fasta(fasta)


# --------------------------------------------------------------------------- temporary siblings


def test_tmp_sibling_removes_dead_builds_only(tmp_path):
    code = "import os; print(os.getpid())"  # a process that has exited: its pid is dead
    dead_pid = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    dead = tmp_path / f".store.tmp-{dead_pid}-deadbeef"
    live = tmp_path / f".store.tmp-{os.getpid()}-cafef00d"
    other = tmp_path / f".other.tmp-{dead_pid}-deadbeef"  # another name's: not ours to clean
    for folder in (dead, live, other):
        folder.mkdir()
    first, second = tmp_sibling(tmp_path / "store"), tmp_sibling(tmp_path / "store")
    assert not dead.exists() and live.exists() and other.exists()
    for name in (first, second):
        assert name.parent == tmp_path and not name.exists()
        assert re.fullmatch(rf"\.store\.tmp-{os.getpid()}-[0-9a-f]{{8}}", name.name)
    assert first != second


# --------------------------------------------------------------------------- TIFF


class _CountingTiffFile(tifffile.TiffFile):
    opened = 0

    def __init__(self, *args, **kwargs):
        type(self).opened += 1
        super().__init__(*args, **kwargs)


def test_tiff_is_opened_once(tmp_path, monkeypatch):
    img = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, img, photometric="rgb")
    monkeypatch.setattr(tifffile, "TiffFile", _CountingTiffFile)
    _CountingTiffFile.opened = 0
    assert np.array_equal(readers._imread(path), img)
    assert _CountingTiffFile.opened == 1
    # the size check still comes first: an over-limit page is refused before its pixels are read
    monkeypatch.setattr(readers, "MAX_PIXELS", img.size - 1)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", _never)
    with pytest.raises(DataError, match=re.escape(f"{path}: header declares a 6x5x3 image (90 pixel values)")):
        readers._imread(path)
    assert _CountingTiffFile.opened == 2


def test_corrupt_tiff_header_keeps_its_message(tmp_path):
    path = tmp_path / "x.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 12)
    with pytest.raises(DataError, match=re.escape(f"{path}: cannot read TIFF header")):
        readers._imread(path)
