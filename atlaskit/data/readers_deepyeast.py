"""Readers of the DeepYeast formats: class list (``HOwt_doc.txt``), split lists of PNG crops,
and crops saved in ``.npz``. Re-exported by :mod:`atlaskit.data.readers` (see its docstring for
the formats); import them from there.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from atlaskit.data._imagefiles import _ZIP_MAX_RATIO, _check_npy_header, _constant_items, _imread, _read_text, _to_unit
from atlaskit.errors import DataError


# --------------------------------------------------------------------------- DeepYeast


def read_deepyeast_classes(doc_file: str | os.PathLike) -> list[str]:
    """Class names in index order from a DeepYeast ``HOwt_doc.txt`` (``label;label_idx`` lines)."""
    p = Path(doc_file)
    if not p.is_file():
        raise DataError(f"{p}: class list not found")
    pairs = {}
    lines = _read_text(p, "DeepYeast class list").splitlines()
    for i, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or (i == 1 and line.replace(" ", "") == "label;label_idx"):
            continue
        parts = line.rsplit(";", 1)
        try:
            name, idx = parts[0].strip(), int(parts[1])
        except (IndexError, ValueError):
            raise DataError(f"{p}: line {i}: expected 'label;label_idx', got {line!r}") from None
        if idx in pairs:
            raise DataError(f"{p}: line {i}: index {idx} appears twice")
        if not name:
            raise DataError(f"{p}: line {i}: empty class name for index {idx}")
        if name in pairs.values():
            raise DataError(f"{p}: line {i}: class name {name!r} appears twice")
        pairs[idx] = name
    if not pairs or sorted(pairs) != list(range(len(pairs))):
        raise DataError(f"{p}: class indices must be 0..K-1, got {sorted(pairs)}")
    return [pairs[i] for i in range(len(pairs))]


def parse_deepyeast_list(list_file: str | os.PathLike) -> pd.DataFrame:
    """Parse a DeepYeast split file (``relative/path.png label_idx`` per line).

    Returns
    -------
    DataFrame
        ``path`` (str, relative), ``label_idx`` (int).
    """
    p = Path(list_file)
    if not p.is_file():
        raise DataError(f"{p}: image list not found")
    paths, labels = [], []
    for i, line in enumerate(_read_text(p, "DeepYeast image list").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{p}: line {i}: expected 'path label_idx', got {line!r}")
        try:
            label = int(parts[1])
        except ValueError:
            raise DataError(f"{p}: line {i}: label {parts[1]!r} is not an integer") from None
        if label < 0:
            raise DataError(f"{p}: line {i}: negative label {label}")
        if label > _MAX_LABEL:
            raise DataError(f"{p}: line {i}: label {label} is not a plausible class index")
        paths.append(parts[0])
        labels.append(label)
    if not paths:
        raise DataError(f"{p}: no entries")
    return pd.DataFrame({"path": paths, "label_idx": np.asarray(labels, dtype=np.int64)})


_MAX_LABEL = 2**31 - 1  # labels are class indices; larger values overflow the int64 column


def _read_yeast_image(path: Path, crop_size: int, check_empty: bool) -> np.ndarray:
    img = _imread(path)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise DataError(f"{path}: expected an RGB(A) image with GFP in green and RFP in red, got shape {img.shape}")
    if img.shape[:2] != (crop_size, crop_size):
        raise DataError(f"{path}: expected {crop_size}x{crop_size} pixels, got {img.shape[0]}x{img.shape[1]}")
    x = _to_unit(img, path)
    out = np.stack([x[..., 1], x[..., 0]])  # (2, H, W): GFP (green), RFP (red)
    if check_empty:
        for c, name in enumerate(("GFP (green)", "RFP (red)")):
            if out[c].max() == out[c].min():
                raise DataError(f"{path}: {name} channel is empty (constant)")
    return out


def iter_deepyeast_list(
    list_file: str | os.PathLike,
    image_root: str | os.PathLike,
    *,
    classes: Sequence[str] | str | os.PathLike | None = None,
    crop_size: int = 64,
    check_empty: bool = True,
    batch_size: int = 1024,
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """Yield ``(images, metadata)`` batches; see :func:`read_deepyeast_list`."""
    table = parse_deepyeast_list(list_file)
    root = Path(image_root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    names = None
    if classes is not None:
        names = read_deepyeast_classes(classes) if isinstance(classes, (str, os.PathLike)) else list(classes)
        bad = table["label_idx"] >= len(names)
        if bad.any():
            raise DataError(
                f"{list_file}: label {int(table['label_idx'][bad].iloc[0])} but only {len(names)} classes"
            )
    for start in range(0, len(table), batch_size):
        chunk = table.iloc[start : start + batch_size].reset_index(drop=True)
        imgs = np.empty((len(chunk), 2, crop_size, crop_size), dtype=np.float32)
        for j, rel in enumerate(chunk["path"]):
            imgs[j] = _read_yeast_image(root / rel, crop_size, check_empty)
        if names is not None:
            chunk["label"] = [names[k] for k in chunk["label_idx"]]
        yield imgs, chunk


def read_deepyeast_list(
    list_file: str | os.PathLike,
    image_root: str | os.PathLike,
    *,
    classes: Sequence[str] | str | os.PathLike | None = None,
    crop_size: int = 64,
    check_empty: bool = True,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read DeepYeast crops listed in a split file.

    Parameters
    ----------
    list_file : path-like
        ``relative/path.png label_idx`` per line (e.g. ``HOwt_train.txt``).
    image_root : path-like
        Folder the relative paths start from.
    classes : sequence of str or path-like, optional
        Class names in index order, or the ``HOwt_doc.txt`` file; adds a ``label`` column.
    crop_size : int
        Expected side (DeepYeast: 64).
    check_empty : bool
        Refuse crops whose GFP or RFP channel is constant.

    Returns
    -------
    images : ndarray of float32, shape (N, 2, crop_size, crop_size)
        Channel 0 = GFP (protein, from green), channel 1 = RFP (cytosolic marker, from red), in
        [0, 1]. The DeepYeast network used (x / 255 - 0.5) * 2, i.e. ``2 * images - 1``.
    metadata : DataFrame
        ``path``, ``label_idx`` and, with ``classes``, ``label``.

    Raises
    ------
    DataError
        Missing or malformed list, missing image, image not 64 x 64 RGB(A), unsupported pixel
        type, empty channel, label index beyond the class list.
    """
    parts = list(
        iter_deepyeast_list(list_file, image_root, classes=classes, crop_size=crop_size, check_empty=check_empty)
    )
    return np.concatenate([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True)


# --------------------------------------------------------------------------- .npz crops


def _check_npz_headers(path: Path, keys: Sequence[str]) -> None:
    """Refuse members of an ``.npz`` whose headers declare more data than the zip can hold."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key not in keys:
                continue
            limit = info.compress_size * (_ZIP_MAX_RATIO if info.compress_type != zipfile.ZIP_STORED else 1)
            if info.file_size > limit + 1024:
                raise DataError(
                    f"{path}: member {info.filename!r} claims {info.file_size:,} bytes from {info.compress_size:,} "
                    "compressed ones; corrupt zip, refused before allocating"
                )
            with zf.open(info) as fh:
                _check_npy_header(fh, path, info.file_size, f" (member {info.filename!r})")


#: What :func:`scale_intensities` does to each kind of input, in the words a report prints.
INTENSITY_SCALINGS = {
    "unit": "floats in [0, 1], used as they are (the training crops' scale: 8-bit levels / 255 at a fixed "
            "per-channel saturation)",
    "uint8": "8-bit levels divided by 255 (as the training crops)",
    "raw": "raw intensities: each channel divided by its 99.9th percentile over the whole set (one fixed "
           "saturation per channel, as the training crops' export), clipped to 1 and rounded to 8-bit levels",
}


def scale_intensities(images: np.ndarray) -> tuple[np.ndarray, str]:
    """Bring crops of any common intensity scaling to the [0, 1] scale DeepYeast trains on.

    The training crops are 8-bit levels at one fixed saturation per channel for the whole screen
    (bright proteins saturate, dim ones stay dim; never scaled per image), divided by 255. So:
    floats already in [0, 1] are used as they are; ``uint8`` is divided by 255; anything else —
    ``uint16`` or other integer counts, floats above 1 — is *raw*: each channel is divided by one
    level for the whole set, its 99.9th percentile, then clipped and rounded to 8-bit levels.
    Crops scaled per image (every crop's brightest pixel exactly 1) are used as they are; the
    description says so, because that scaling removes the brightness differences the training
    crops keep.

    Returns
    -------
    images : ndarray of float32 in [0, 1]
    description : str
        Which scaling ran (see :data:`INTENSITY_SCALINGS`).
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0, INTENSITY_SCALINGS["uint8"]
    if x.dtype.kind == "f" and x.size and 0 <= float(np.nanmin(x)) and float(np.nanmax(x)) <= 1:
        x = x.astype(np.float32)
        peaks = x.reshape(x.shape[0], x.shape[1], -1).max(-1)
        note = INTENSITY_SCALINGS["unit"]
        if np.all(peaks == 1.0):
            note += "; note: every crop's brightest pixel is exactly 1 in every channel, so the crops look " \
                    "scaled per image, which the training crops were not"
        return x, note
    if x.dtype.kind not in "uif":
        raise DataError(f"images of type {x.dtype} cannot be scaled (expected integers or floats)")
    x = x.astype(np.float32)
    if x.ndim < 2:
        raise DataError(f"images must be (N, C, ...), got shape {x.shape}")
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        level = float(np.percentile(x[:, c], 99.9))
        low = float(x[:, c].min())
        if low < 0:
            raise DataError(f"raw intensities must not be negative (channel {c} has {low:g})")
        if level <= 0:
            raise DataError(f"channel {c} is empty (its 99.9th percentile is {level:g})")
        out[:, c] = np.round(np.clip(x[:, c] / level, 0, 1) * 255) / 255
    return out, INTENSITY_SCALINGS["raw"]


def read_npz_crops(
    path: str | os.PathLike, *, item_shape: Sequence[int] | None = (2, 64, 64), scale: bool = False
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read crops saved as ``.npz`` with ``images`` (N, C, H, W) in [0, 1] and ``labels`` (N,).

    Parameters
    ----------
    path : path-like
    item_shape : sequence of int or None
        Expected (C, H, W); ``None`` accepts any.
    scale : bool
        Accept other intensity scalings (8-bit levels, raw counts, floats above 1) and bring them to
        [0, 1] with :func:`scale_intensities`; the metadata's ``scaling`` column says which ran.
        Without it, images must be floats in [0, 1].

    Returns
    -------
    images : ndarray of float32, shape (N, *item_shape)
    metadata : DataFrame
        ``label`` (class name) and ``label_idx`` (position in the file's ``classes`` array if
        present, else in the sorted unique labels); with ``scale``, also ``scaling``.

    Raises
    ------
    DataError
        Missing file or key, pickled (object) arrays, wrong shape/dtype, NaN, values outside
        [0, 1], empty (constant) images, label count or class mismatch.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        _check_npz_headers(p, ("images", "labels", "classes"))
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            for key in ("images", "labels"):
                if key not in keys:
                    raise DataError(f"{p}: no {key!r} array (has {sorted(keys)})")
            images = z["images"]
            labels = z["labels"]
            classes = z["classes"] if "classes" in keys else None
    except DataError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(f"{p}: contains object (pickled) arrays; save labels as a string array") from None
        raise DataError(f"{p}: unreadable .npz file ({err})") from None
    except Exception as err:
        raise DataError(f"{p}: unreadable .npz file ({err})") from None
    if images.ndim != 4:
        raise DataError(f"{p}: images must be (N, C, H, W), got {images.shape}")
    if images.size == 0:
        raise DataError(f"{p}: no images (shape {images.shape})")
    if item_shape is not None and images.shape[1:] != tuple(item_shape):
        raise DataError(f"{p}: images must be (N, {', '.join(map(str, item_shape))}), got {images.shape}")
    scaling = None
    if scale:
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise DataError(f"{p}: images contain NaN or infinite values")
        try:
            images, scaling = scale_intensities(images)
        except DataError as exc:
            raise DataError(f"{p}: {exc}") from None
    if images.dtype.kind != "f":
        raise DataError(f"{p}: images must be floating point in [0, 1], got {images.dtype}")
    x = images.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{p}: images contain NaN or infinite values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(f"{p}: images outside [0, 1] ({x.min():g}..{x.max():g})")
    const = _constant_items(x)
    if const.size:
        raise DataError(f"{p}: image {int(const[0])} is empty (constant); {const.size} such images")
    if labels.ndim != 1 or len(labels) != len(x):
        raise DataError(f"{p}: labels must be (N,) = ({len(x)},), got {labels.shape}")
    if labels.dtype.kind == "S":
        labels = labels.astype(str)
    if labels.dtype.kind not in "Uiu":
        raise DataError(f"{p}: labels must be class names (strings), got {labels.dtype}")
    names = labels.astype(str)
    order = list(np.asarray(classes).astype(str)) if classes is not None else sorted(set(names.tolist()))
    index = {c: i for i, c in enumerate(order)}
    unknown = sorted(set(names.tolist()) - set(index))
    if unknown:
        raise DataError(f"{p}: labels {unknown[:5]} are not in the file's classes")
    meta = pd.DataFrame({"label": names, "label_idx": np.array([index[c] for c in names], dtype=np.int64)})
    if scaling is not None:
        meta["scaling"] = scaling
    return x, meta


# --------------------------------------------------------------------------- paired GFP/RFP cells


def read_paired_cells(
    folder: str | os.PathLike, *, proteins: Sequence[str] | None = None, crop_size: int = 64
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read single-cell crops stored one folder per protein as ``<cell>_gfp.tif`` / ``<cell>_rfp.tif`` pairs.

    This is the layout of the real Toronto WT2 yeast cells (Chong et al. 2015) published with
    paired cell inpainting (Lu et al. 2019): ``FOLDER/<PROTEIN>/<cell>_gfp.tif`` (the tagged
    protein) beside ``<cell>_rfp.tif`` (the cytosolic marker). TIFF, PNG or any format of
    :mod:`atlaskit.data.readers` works: uint8 and uint16 pixels are divided by their dtype's
    range; float pixels must already be in [0, 1] (the real cells are float32 in [0, 1]).

    Parameters
    ----------
    folder : path-like
        The folder holding one sub-folder per protein.
    proteins : sequence of str, optional
        Protein folders to read (default: every sub-folder, sorted).
    crop_size : int
        Expected height and width of every crop.

    Returns
    -------
    images : ndarray of float32, shape (N, 2, crop_size, crop_size)
        Channel 0 GFP (protein), channel 1 RFP (cytosol); proteins in the given (or sorted)
        order, cells sorted by file name within a protein.
    meta : DataFrame
        ``protein`` (folder name) and ``cell`` (file stem without ``_gfp``).

    Raises
    ------
    DataError
        Missing folder, a protein folder without ``*_gfp.*`` files, a GFP file without its RFP
        partner (or an RFP file without its GFP partner), crops of the wrong shape or pixel type.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: folder of paired cells not found")
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if proteins is None else [str(p) for p in proteins]
    if not names:
        raise DataError(f"{root}: no protein folders (expected FOLDER/<PROTEIN>/<cell>_gfp.tif and _rfp.tif)")
    images, rows = [], []
    for protein in names:
        sub = root / protein
        if not sub.is_dir():
            raise DataError(f"{sub}: no such protein folder (have {sorted(p.name for p in root.iterdir() if p.is_dir())[:8]})")
        files = {p.name: p for p in sub.iterdir() if p.is_file()}
        gfp = sorted(n for n in files if _stem(n).endswith("_gfp"))
        rfp = {n for n in files if _stem(n).endswith("_rfp")}
        if not gfp:
            raise DataError(f"{sub}: no <cell>_gfp files")
        partners = {n: n.replace("_gfp.", "_rfp.", 1) for n in gfp}
        missing = [partners[n] for n in gfp if partners[n] not in rfp]
        if missing:
            raise DataError(f"{sub}: {len(missing)} GFP file(s) without their RFP partner, e.g. {missing[0]} is missing")
        orphans = sorted(rfp - set(partners.values()))
        if orphans:
            raise DataError(f"{sub}: {len(orphans)} RFP file(s) without their GFP partner, e.g. {orphans[0]}")
        for n in gfp:
            pair = []
            for path in (files[n], files[partners[n]]):
                img = _to_unit(_imread(path), path)
                if img.shape != (crop_size, crop_size):
                    raise DataError(f"{path}: expected a {crop_size}×{crop_size} single-channel crop, got shape {img.shape}")
                pair.append(img)
            images.append(np.stack(pair))
            rows.append({"protein": protein, "cell": _stem(n)[: -len("_gfp")]})
    return np.stack(images).astype(np.float32, copy=False), pd.DataFrame(rows)


def _stem(name: str) -> str:
    """File name without its last suffix."""
    return name.rsplit(".", 1)[0] if "." in name else name
