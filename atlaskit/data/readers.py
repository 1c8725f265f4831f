"""Readers for the public image formats of the four studies.

Every reader returns ``(images, metadata)``: a float32 numpy array shaped (N, C, H, W) and a
pandas DataFrame with one row per image, and raises :class:`~atlaskit.errors.DataError` naming
the offending file for missing files or channels, wrong shapes or dtypes, NaNs and empty
(constant) images. The ``iter_*`` variants yield the same in batches, to stream a large folder
into an :class:`~atlaskit.data.store.ArrayStore` without holding it in memory.

Formats
-------
OpenCell / cytoself (:func:`read_opencell_folder`)
    The public cytoself data: per protein ``<name>_pro.npy``, ``<name>_nuc.npy``,
    ``<name>_nucdist.npy`` (N, 100, 100) and ``<name>_label.npy`` (N, k) labels, whose columns
    are Ensembl id, protein name, localization (cytoself README), sometimes followed by more
    (e.g. the field of view). The label files are numpy *object* arrays, i.e. pickles; they are
    read with a restricted unpickler that only rebuilds numpy arrays of plain values (no
    arbitrary code runs), so ``allow_pickle=True`` is never needed.
HPA, Kaggle 2018 layout (:func:`read_hpa_folder`)
    ``<id>_<blue|green|red|yellow>.png`` single-channel images plus a label table ``Id,Target``
    with space-separated class indices (0-27). Returned channel order is
    **(green, blue, red, yellow) = (protein, nucleus, microtubules, endoplasmic reticulum)**,
    the protein first as in the other studies; values in [0, 1], resized to ``size``.
DeepYeast (:func:`read_deepyeast_list`)
    Split files with lines ``relative/path.png label_idx`` and 64 x 64 RGB PNG crops with the
    GFP-tagged protein in the green channel and the cytosolic mCherry (RFP) marker in red (the
    public loader of tanelp/deepyeast keeps ``img[:, :, :2]``, i.e. red then green). Returned
    channel order is **(GFP, RFP)**: protein first. Class names come from ``HOwt_doc.txt``
    (``label;label_idx``), see :func:`read_deepyeast_classes`.
Crops in ``.npz`` (:func:`read_npz_crops`)
    ``images`` (N, 2, 64, 64) float in [0, 1] and ``labels`` (N,) class names, optionally
    ``classes`` (the class order); saved without pickles.

Size limits
-----------
Image sizes are read from the file's header *before* any pixel is decoded: an image declaring
more than :data:`MAX_PIXELS` pixel values (height x width x channels), or zero of them, is
refused with a :class:`DataError`. A ``.npy`` array (or ``.npz`` member) whose header declares
more bytes than the file holds (or than its compressed size can expand to) is refused the same
way, so a corrupt or hostile header cannot make a reader allocate gigabytes.

Modules
-------
This module reads OpenCell and HPA; the DeepYeast and ``.npz`` readers live in
:mod:`atlaskit.data.readers_deepyeast` and the shared low-level file access (headers, size
checks, decoding) in :mod:`atlaskit.data._imagefiles`. Every reader is re-exported here, so
``from atlaskit.data.readers import X`` works for all of them.
"""
from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.data._imagefiles import (  # noqa: F401  (_imread, _read_text, _to_unit: also used as readers._*)
    _check_npy_header, _constant_items, _imread, _read_text, _to_unit,
)
from atlaskit.data.readers_deepyeast import (  # noqa: F401  (re-exported: DeepYeast lists, .npz crops)
    iter_deepyeast_list, parse_deepyeast_list, read_deepyeast_classes, read_deepyeast_list, read_npz_crops,
    read_paired_cells, scale_intensities, INTENSITY_SCALINGS,
)
from atlaskit.errors import DataError

__all__ = [
    "read_opencell_folder",
    "iter_opencell_folder",
    "opencell_proteins",
    "load_label_npy",
    "read_hpa_labels",
    "read_hpa_folder",
    "iter_hpa_folder",
    "hpa_ids",
    "HPA_CHANNELS",
    "read_deepyeast_classes",
    "parse_deepyeast_list",
    "read_deepyeast_list",
    "iter_deepyeast_list",
    "read_npz_crops",
    "read_paired_cells",
    "scale_intensities",
    "INTENSITY_SCALINGS",
]

OPENCELL_CHANNELS = ("pro", "nuc", "nucdist")
HPA_CHANNELS = ("green", "blue", "red", "yellow")  # protein, nucleus, microtubules, ER
HPA_N_CLASSES = 28

#: Largest image a reader decodes, in pixel values (height x width x channels) as declared by the
#: file's header: 2**27 (e.g. 6000 x 6000 x 3), far above the studies' images (HPA: at most
#: 3072 x 3072 per channel). Raise it (``readers.MAX_PIXELS = ...``) for a genuine larger image.
MAX_PIXELS = 2**27


# --------------------------------------------------------------------------- OpenCell


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and scalars and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core."):
            try:  # numpy >= 2 keeps these in numpy._core (numpy.core only warns and forwards)
                return getattr(importlib.import_module("numpy._core." + module[len("numpy.core.") :]), name)
            except ImportError:  # numpy < 2
                pass
        return getattr(importlib.import_module(module), name)


def load_label_npy(path: str | os.PathLike) -> np.ndarray:
    """Load a ``.npy`` label array, including object (pickled) arrays, without running code.

    Plain arrays are read with ``np.load(allow_pickle=False)``; object arrays with a restricted
    unpickler that only rebuilds numpy arrays/scalars and builtin values (str, int, float, ...).

    Raises
    ------
    DataError
        Missing or unreadable file, or a pickle that references anything else.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        with open(p, "rb") as fh:
            _check_npy_header(fh, p, p.stat().st_size)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{p}: unreadable .npy file ({err})") from None
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise DataError(f"{p}: unreadable .npy file ({err})") from None
    except OSError as err:
        raise DataError(f"{p}: unreadable .npy file ({err})") from None
    try:
        with open(p, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            arr = _ArrayOnlyUnpickler(fh).load()
    except Exception as err:
        raise DataError(f"{p}: cannot read object array safely ({err})") from None
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise DataError(f"{p}: pickled content is not the declared {shape} array")
    return arr


def opencell_proteins(folder: str | os.PathLike) -> list[str]:
    """Names ``<name>`` of all ``<name>_label.npy`` files in ``folder``, sorted."""
    f = Path(folder)
    if not f.is_dir():
        raise DataError(f"{f}: folder not found")
    return sorted(p.name[: -len("_label.npy")] for p in f.glob("*_label.npy"))


def _label_columns(k: int) -> list[str]:
    base = ["ensg_id", "protein", "localization"]
    if k == 1:
        return ["protein"]
    if k == 2:
        return base[:2]
    return base + [f"label_{j}" for j in range(3, k)]


def _read_opencell_protein(
    folder: Path, name: str, channels: Sequence[str], crop_size: int, scale: Mapping[str, float]
) -> tuple[np.ndarray, pd.DataFrame]:
    label_path = folder / f"{name}_label.npy"
    labels = load_label_npy(label_path)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise DataError(f"{label_path}: expected labels shaped (N, k) with N > 0, got {labels.shape}")
    n = labels.shape[0]
    out = np.empty((n, len(channels), crop_size, crop_size), dtype=np.float32)  # (N, C, S, S)
    for c, ch in enumerate(channels):
        path = folder / f"{name}_{ch}.npy"
        if not path.is_file():
            raise DataError(f"{path}: channel file missing (channel {ch!r} of {name})")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as err:  # OSError, ValueError, EOFError (empty file), ...
            raise DataError(f"{path}: unreadable .npy file ({type(err).__name__}: {err})") from None
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 3 or arr.shape[1:] != (crop_size, crop_size):
            raise DataError(f"{path}: expected (N, {crop_size}, {crop_size}) crops, got {arr.shape}")
        if arr.shape[0] != n:
            raise DataError(f"{path}: {arr.shape[0]} crops but {label_path.name} has {n} labels")
        if arr.dtype.kind not in "iuf":
            raise DataError(f"{path}: unsupported dtype {arr.dtype} (expected integer or float)")
        x = np.asarray(arr, dtype=np.float32)
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))[0])
            raise DataError(f"{path}: crop {bad} contains NaN or infinite values")
        const = _constant_items(x)
        if const.size:
            raise DataError(f"{path}: crop {int(const[0])} is empty (constant); {const.size} such crops")
        out[:, c] = x * np.float32(scale.get(ch, 1.0))
    cols = _label_columns(labels.shape[1])
    meta = pd.DataFrame({col: [str(v) for v in labels[:, j]] for j, col in enumerate(cols)})
    meta.insert(0, "file_name", name)
    meta["crop"] = np.arange(n)
    if "protein" not in meta.columns:
        meta["protein"] = name
    return out, meta


def iter_opencell_folder(
    folder: str | os.PathLike,
    *,
    proteins: Sequence[str] | None = None,
    channels: Sequence[str] = OPENCELL_CHANNELS,
    crop_size: int = 100,
    scale: Mapping[str, float] | None = None,
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """Yield ``(images, metadata)`` one protein at a time; see :func:`read_opencell_folder`."""
    f = Path(folder)
    available = opencell_proteins(f)
    if not available:
        raise DataError(f"{f}: no *_label.npy files (not a cytoself/OpenCell folder)")
    if proteins is None:
        names = available
    else:
        names = list(proteins)
        missing = [p for p in names if p not in available]
        if missing:
            raise DataError(f"{f}: no {missing[0]}_label.npy (requested proteins missing: {missing[:5]})")
    if not channels:
        raise ValueError("at least one channel is needed")
    for name in names:
        yield _read_opencell_protein(f, name, list(channels), crop_size, dict(scale or {}))


def read_opencell_folder(
    folder: str | os.PathLike,
    *,
    proteins: Sequence[str] | None = None,
    channels: Sequence[str] = OPENCELL_CHANNELS,
    crop_size: int = 100,
    scale: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read cytoself/OpenCell per-protein crop arrays from a folder.

    Parameters
    ----------
    folder : path-like
        Folder holding ``<name>_label.npy`` and ``<name>_<channel>.npy`` files.
    proteins : sequence of str, optional
        File names ``<name>`` to read; default every ``*_label.npy`` in the folder.
    channels : sequence of str
        Channel suffixes in output order; default ``("pro", "nuc", "nucdist")``. cytoself's
        model input is ``("pro", "nucdist")``.
    crop_size : int
        Expected crop side.
    scale : mapping, optional
        Multiplier per channel. The public cytoself loader multiplies ``nucdist`` by 0.01
        (``{"nucdist": 0.01}``) because its files store the distance in pixels; values are
        returned unchanged by default.

    Returns
    -------
    images : ndarray of float32, shape (N, C, crop_size, crop_size)
    metadata : DataFrame
        ``file_name``, the label columns (``ensg_id``, ``protein``, ``localization`` and
        ``label_3``... for extra columns; as strings) and ``crop`` (index in the protein's file).

    Raises
    ------
    DataError
        Missing folder, label or channel file; wrong shape or dtype; crop counts that differ
        between files; NaN/inf; an empty (constant) crop. The message names the file.
    """
    parts = list(iter_opencell_folder(folder, proteins=proteins, channels=channels, crop_size=crop_size, scale=scale))
    images = np.concatenate([p[0] for p in parts])
    meta = pd.concat([p[1] for p in parts], ignore_index=True)
    return images, meta


# --------------------------------------------------------------------------- HPA


def read_hpa_labels(labels_csv: str | os.PathLike, *, n_classes: int = HPA_N_CLASSES) -> pd.DataFrame:
    """Read a Kaggle HPA label table (``Id,Target``, Target = space-separated class indices).

    Returns
    -------
    DataFrame
        ``id``, ``target`` (the indices, space-separated, as in the file), ``n_labels``;
        indexed by row order of the file.
    """
    p = Path(labels_csv)
    if not p.is_file():
        raise DataError(f"{p}: label table not found")
    import io

    # decoded and with line endings normalised first: pandas' parser took 10 s and ~900 MB on a
    # 112-byte file of bare CRs (found by fuzzing)
    text = _read_text(p, "label table").replace("\r\n", "\n").replace("\r", "\n")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except Exception as err:
        raise DataError(f"{p}: unreadable label table ({err})") from None
    if not {"Id", "Target"} <= set(table.columns):
        raise DataError(f"{p}: expected columns Id,Target, got {list(table.columns)}")
    n_labels = np.empty(len(table), dtype=np.int64)
    for i, (ident, target) in enumerate(zip(table["Id"], table["Target"])):
        tokens = target.split()
        if not ident or not tokens:
            raise DataError(f"{p}: line {i + 2}: empty Id or Target")
        try:
            values = [int(t) for t in tokens]
        except ValueError:
            raise DataError(f"{p}: line {i + 2}: Target {target!r} is not space-separated integers") from None
        bad = [v for v in values if not 0 <= v < n_classes]
        if bad:
            raise DataError(
                f"{p}: line {i + 2}: class index outside 0..{n_classes - 1}: {bad[0]} in Target {target!r} "
                f"of Id {ident!r}"
            )
        n_labels[i] = len(values)
    dup = table["Id"].duplicated()
    if dup.any():
        raise DataError(f"{p}: duplicate Id {table['Id'][dup].iloc[0]!r}")
    return pd.DataFrame({"id": table["Id"].to_numpy(), "target": table["Target"].to_numpy(), "n_labels": n_labels})


def hpa_ids(folder: str | os.PathLike) -> list[str]:
    """Image ids with at least one ``<id>_<channel>.png`` file in ``folder``, sorted."""
    f = Path(folder)
    if not f.is_dir():
        raise DataError(f"{f}: folder not found")
    ids = set()
    for ch in HPA_CHANNELS:
        suffix = f"_{ch}.png"
        ids.update(p.name[: -len(suffix)] for p in f.glob(f"*{suffix}"))
    return sorted(ids)


def _read_hpa_image(folder: Path, ident: str, size: int, missing: str) -> tuple[np.ndarray, list[str], tuple]:
    out = np.zeros((len(HPA_CHANNELS), size, size), dtype=np.float32)  # (4, size, size)
    absent: list[str] = []
    shape = None
    from skimage.transform import resize

    for c, ch in enumerate(HPA_CHANNELS):
        path = folder / f"{ident}_{ch}.png"
        if not path.is_file():
            if missing == "error":
                raise DataError(f"{path}: channel file missing ({ch} of image {ident})")
            absent.append(ch)
            continue
        img = _imread(path)
        if img.ndim != 2:
            raise DataError(f"{path}: expected a single-channel image, got shape {img.shape}")
        if shape is not None and img.shape != shape:
            raise DataError(f"{path}: size {img.shape} differs from the other channels' {shape}")
        shape = img.shape
        x = _to_unit(img, path)
        if x.max() == x.min():
            raise DataError(f"{path}: image is empty (constant intensity {x.max():g})")
        if x.shape != (size, size):
            x = resize(x, (size, size), order=1, anti_aliasing=x.shape[0] > size, preserve_range=True)
        out[c] = np.clip(x, 0.0, 1.0)
    if len(absent) == len(HPA_CHANNELS):
        raise DataError(f"{folder}: no channel file for image {ident} ({ident}_<channel>.png)")
    return out, absent, shape


def iter_hpa_folder(
    folder: str | os.PathLike,
    labels_csv: str | os.PathLike,
    *,
    size: int = 256,
    ids: Sequence[str] | None = None,
    missing: str = "error",
    batch_size: int = 64,
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """Yield ``(images, metadata)`` batches; see :func:`read_hpa_folder`."""
    if missing not in ("error", "zeros"):
        raise ValueError(f"missing must be 'error' or 'zeros', got {missing!r}")
    f = Path(folder)
    labels = read_hpa_labels(labels_csv).set_index("id")
    wanted = hpa_ids(f) if ids is None else list(ids)
    if not wanted:
        raise DataError(f"{f}: no <id>_<channel>.png images")
    absent_ids = [i for i in wanted if i not in labels.index]
    if absent_ids:
        raise DataError(f"{labels_csv}: no label row for image id {absent_ids[0]!r} ({len(absent_ids)} ids)")
    for start in range(0, len(wanted), batch_size):
        chunk = wanted[start : start + batch_size]
        imgs = np.empty((len(chunk), len(HPA_CHANNELS), size, size), dtype=np.float32)
        rows = []
        for j, ident in enumerate(chunk):
            imgs[j], absent, shape = _read_hpa_image(f, ident, size, missing)
            rows.append(
                {
                    "id": ident,
                    "target": labels.at[ident, "target"],
                    "n_labels": int(labels.at[ident, "n_labels"]),
                    "missing_channels": " ".join(absent),
                    "source_height": int(shape[0]),
                    "source_width": int(shape[1]),
                }
            )
        yield imgs, pd.DataFrame(rows)


def read_hpa_folder(
    folder: str | os.PathLike,
    labels_csv: str | os.PathLike,
    *,
    size: int = 256,
    ids: Sequence[str] | None = None,
    missing: str = "error",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read HPA images stored as ``<id>_<blue|green|red|yellow>.png`` with a Kaggle label table.

    Parameters
    ----------
    folder : path-like
    labels_csv : path-like
        ``Id,Target`` table; every image read must have a row.
    size : int
        Output side; images are resized (bilinear, anti-aliased when shrinking). The CNN-vs-FCN
        study used 256.
    ids : sequence of str, optional
        Image ids to read; default every id with at least one channel file in ``folder``.
    missing : {"error", "zeros"}
        A missing channel file raises :class:`DataError` (default) or is filled with zeros and
        listed in the ``missing_channels`` column.

    Returns
    -------
    images : ndarray of float32, shape (N, 4, size, size)
        Values in [0, 1] (uint8 / 255, uint16 / 65535); channel order
        (green, blue, red, yellow) = (protein, nucleus, microtubules, ER).
    metadata : DataFrame
        ``id``, ``target`` (space-separated class indices), ``n_labels``, ``missing_channels``,
        ``source_height``, ``source_width``.

    Raises
    ------
    DataError
        Missing folder/table/label row/channel file, unreadable or multi-channel PNG, channel
        sizes that differ, unsupported pixel type, empty (constant) channel image.
    """
    parts = list(iter_hpa_folder(folder, labels_csv, size=size, ids=ids, missing=missing))
    return np.concatenate([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True)
