"""Coverage-guided fuzzing (atheris / libFuzzer) of the image, array, table and FASTA readers.

The property every reader must keep: whatever bytes a file holds, the reader either parses it or
raises an :class:`atlaskit.errors.AtlaskitError` whose message names the file. Any other
exception (a numpy ValueError, a UnicodeDecodeError, a MemoryError ...), a crash, a hang or a
large allocation (libFuzzer's ``-rss_limit_mb``) is a finding.

Not part of CI (atheris is not in requirements.txt); see tests/fuzz/README.md for how to run it::

    .venv/bin/pip install atheris==3.0.0
    .venv/bin/python tests/fuzz/fuzz_readers.py --make-corpus /tmp/fuzz-corpus
    .venv/bin/python tests/fuzz/fuzz_readers.py images /tmp/fuzz-corpus/images -max_total_time=300 -rss_limit_mb=2048

Targets: ``images`` (PNG/TIFF through the folder readers' image decoder, ``.npy`` label arrays,
``.npz`` crops; the first input byte picks the format), ``fasta`` (read_fasta and
read_fasta_report), ``tables`` (HPA label table, DeepYeast image list and class list).
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["atlaskit"]):
    from atlaskit.data import readers, sequences
    from atlaskit.errors import AtlaskitError

WORK = Path(tempfile.mkdtemp(prefix="atlaskit-fuzz-"))
IMAGE_SUFFIXES = (".png", ".tif", ".npy", ".npz")


def _write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def _expect_atlaskit_error(fn, path: Path) -> None:
    """Run ``fn``; an AtlaskitError must name the file, any other exception propagates."""
    try:
        fn()
    except AtlaskitError as err:
        if path.name not in str(err):
            raise AssertionError(f"error does not name the file {path.name}: {err}") from err


def fuzz_images(data: bytes) -> None:
    if not data:
        return
    suffix = IMAGE_SUFFIXES[data[0] % len(IMAGE_SUFFIXES)]
    path = _write("input" + suffix, data[1:])
    if suffix in (".png", ".tif"):
        # the decoder shared by the HPA and DeepYeast folder readers, then the pixel-type check
        _expect_atlaskit_error(lambda: readers._to_unit(readers._imread(path), path), path)
    elif suffix == ".npy":
        _expect_atlaskit_error(lambda: readers.load_label_npy(path), path)
    else:
        _expect_atlaskit_error(lambda: readers.read_npz_crops(path, item_shape=None), path)


def fuzz_fasta(data: bytes) -> None:
    path = _write("input.fasta", data)
    _expect_atlaskit_error(lambda: sequences.read_fasta(path), path)
    _expect_atlaskit_error(lambda: sequences.read_fasta_report(path), path)


def fuzz_tables(data: bytes) -> None:
    path = _write("input.csv", data)
    _expect_atlaskit_error(lambda: readers.read_hpa_labels(path), path)
    _expect_atlaskit_error(lambda: readers.parse_deepyeast_list(path), path)
    _expect_atlaskit_error(lambda: readers.read_deepyeast_classes(path), path)


TARGETS = {"images": fuzz_images, "fasta": fuzz_fasta, "tables": fuzz_tables}


def make_corpus(root: Path) -> None:
    """Small valid seed files for every target (libFuzzer mutates from these)."""
    import gzip

    import imageio.v3 as iio
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (8, 8), dtype=np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    seeds = {}
    seeds["png8"] = bytes([0]) + iio.imwrite("<bytes>", img, extension=".png")
    seeds["png16"] = bytes([0]) + iio.imwrite("<bytes>", img.astype(np.uint16) * 200, extension=".png")
    seeds["pngrgb"] = bytes([0]) + iio.imwrite("<bytes>", np.stack([img] * 3, -1), extension=".png")
    buf = io.BytesIO()
    tifffile.imwrite(buf, rng.random((8, 8), dtype=np.float32))
    seeds["tif"] = bytes([1]) + buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, np.array([["ENSG1", "ACTB", "cytoplasm"]]))
    seeds["npy"] = bytes([2]) + buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, images=rng.random((2, 1, 4, 4)), labels=np.array(["a", "b"]), classes=np.array(["b", "a"]))
    seeds["npz"] = bytes([3]) + buf.getvalue()
    for name, blob in seeds.items():
        (root / "images" / name).write_bytes(blob)
    (root / "fasta").mkdir(exist_ok=True)
    fasta = b">P1 first\nMKTAYIA\nKQR*\n>P2\nacdefghiklmnpqrstvwyXBZUO\n"
    (root / "fasta" / "plain").write_bytes(fasta)
    (root / "fasta" / "gzip").write_bytes(gzip.compress(fasta))
    (root / "tables").mkdir(exist_ok=True)
    (root / "tables" / "hpa").write_bytes(b"Id,Target\na1,16 0\nb2,7\n")
    (root / "tables" / "list").write_bytes(b"plate01/a.png 3\nplate02/b.png 0\n")
    (root / "tables" / "doc").write_bytes(b"label;label_idx\ncell periphery;0\ncytoplasm;1\n")


def main(argv: list[str]) -> None:
    if len(argv) > 2 and argv[1] == "--make-corpus":
        make_corpus(Path(argv[2]))
        return
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [corpus dir] [libFuzzer options]\n"
                 f"       {argv[0]} --make-corpus DIR")
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0]] + argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("ATLASKIT_CACHE", str(WORK / "cache"))
    main(sys.argv)
