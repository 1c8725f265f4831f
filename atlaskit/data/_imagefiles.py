"""Low-level file access shared by the image readers (private): image headers and their size
limits, PNG/TIFF/other decoding, small text files, ``.npy`` headers.

Used by :mod:`atlaskit.data.readers` (OpenCell, HPA) and :mod:`atlaskit.data.readers_deepyeast`
(DeepYeast lists, ``.npz`` crops). The size limit stays where it is documented and may be raised,
:data:`atlaskit.data.readers.MAX_PIXELS`; it is looked up there at every check.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from atlaskit._text import decode_text
from atlaskit.errors import DataError

_ZIP_MAX_RATIO = 1100  # deflate cannot expand data by more than ~1032:1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_NUL = re.compile(rb"\x00")  # the byte that marks a binary file in a text reader


def _max_pixels() -> int:
    """The current :data:`atlaskit.data.readers.MAX_PIXELS` (read at call time: users may raise it)."""
    from atlaskit.data import readers

    return readers.MAX_PIXELS


# --------------------------------------------------------------------------- helpers


def _constant_items(x: np.ndarray) -> np.ndarray:
    """Indices of items (axis 0) whose values are all equal; x shaped (N, ...)."""
    flat = x.reshape(len(x), -1)
    if flat.shape[1] == 0:
        return np.arange(len(x))
    return np.flatnonzero(flat.max(axis=1) == flat.min(axis=1))


def _to_unit(img: np.ndarray, path: Path) -> np.ndarray:
    """Integer images to float32 in [0, 1] by their dtype range; floats must already be in it."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype.kind == "f":
        x = img.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: contains NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{path}: float image outside [0, 1] ({x.min():g}..{x.max():g})")
        return x
    raise DataError(f"{path}: unsupported pixel type {img.dtype} (expected uint8, uint16 or float)")


def _declared_shape(path: Path, head: bytes) -> tuple[int, ...]:
    """The image shape as the header of a non-TIFF file declares it, without decoding pixels.

    ``head`` holds the file's first 33 bytes. PNG: the IHDR chunk (width, height, colour type);
    other formats: pillow's lazy ``Image.open``. An unreadable header is a DataError. TIFF
    files are checked by :func:`_read_tiff`, which reads the header and the pixels from one
    open handle.
    """
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 33 or head[12:16] != b"IHDR":
            raise DataError(f"{path}: not a valid PNG (no IHDR header chunk)")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        return (height, width, _PNG_CHANNELS.get(head[25], 4))
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            with Image.open(path) as im:  # lazy: reads the header only
                return (im.size[1], im.size[0], len(im.getbands()))
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: image too large to decode ({err})") from None
    except Exception as err:
        raise DataError(f"{path}: cannot read image ({type(err).__name__}: {err})") from None


def _check_declared_size(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse zero-size images and images above :data:`~atlaskit.data.readers.MAX_PIXELS` from the header's ``shape``."""
    n = int(np.prod(shape, dtype=object))  # Python ints: no overflow for absurd headers
    dims = "x".join(map(str, shape))
    if n == 0:
        raise DataError(f"{path}: zero-size image ({dims}); the file holds no pixels")
    max_pixels = _max_pixels()
    if n > max_pixels:
        raise DataError(
            f"{path}: header declares a {dims} image ({n:,} pixel values), more than "
            f"MAX_PIXELS = {max_pixels:,}; refused before decoding (corrupt file? if genuine, raise "
            "atlaskit.data.readers.MAX_PIXELS)"
        )


def _read_tiff(path: Path) -> np.ndarray:
    """The first page of a TIFF, its declared size checked before its pixels are decoded.

    One handle serves both: the page header (shape, checked by :func:`_check_declared_size`)
    and then the pixels of the same page.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # tifffile raises many types for corrupt headers
        raise DataError(f"{path}: cannot read TIFF header ({type(err).__name__}: {err})") from None
    with tif:
        try:
            # the first page only: `series` walks every IFD, which a looping or corrupt IFD chain
            # turns into a hang (found by fuzzing)
            page = tif.pages[0]
            shape = tuple(int(n) for n in page.shape)
        except Exception as err:
            raise DataError(f"{path}: cannot read TIFF header ({type(err).__name__}: {err})") from None
        _check_declared_size(path, shape)
        try:
            return np.asarray(page.asarray())
        except Exception as err:  # corrupt strips, unsupported compression, ...
            raise DataError(f"{path}: cannot read image ({type(err).__name__}: {err})") from None


def _imread(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:4] in _TIFF_MAGIC:
        img = _read_tiff(path)
    else:
        _check_declared_size(path, _declared_shape(path, head))
        try:
            import imageio.v3 as iio

            # PNG via pillow directly (8- and 16-bit); no probing of every plugin on corrupt files
            plugin = "pillow" if path.suffix.lower() == ".png" else None
            img = np.asarray(iio.imread(path, plugin=plugin))
        except Exception as err:  # imageio raises many types for corrupt files
            raise DataError(f"{path}: cannot read image ({type(err).__name__}: {err})") from None
    if img.size == 0:
        raise DataError(f"{path}: zero-size image (shape {img.shape})")
    return img


def _read_text(path: Path, what: str) -> str:
    """A small text file's content; binary or non-UTF-8 content is a DataError naming the line."""
    return decode_text(
        path.read_bytes(),
        _NUL,
        lambda byte, line: f"{path}: binary content (NUL byte at line {line}); not a {what}",
        lambda line, offset: f"{path}: line {line}: not UTF-8 text (byte {offset}); not a {what}",
    )


def _check_npy_header(fh, path: Path, available: int, what: str = "") -> None:
    """Read a ``.npy`` header from ``fh`` and refuse it if it declares more bytes than ``available``.

    ``available`` is the number of bytes the file (or zip member) holds in all, header included.
    Object arrays (pickles) carry no fixed size and are not checked here.
    """
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=10_000)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=10_000)
    if dtype.hasobject:
        return
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = available - fh.tell()
    if declared > held:
        raise DataError(
            f"{path}{what}: header declares a {shape} {dtype} array ({declared:,} bytes) but only {held:,} "
            "bytes follow; truncated or corrupt file, refused before allocating"
        )
