"""A user's own images beside deepGPS's predictions (the openGPS "Submit" analogue).

The user gives, for each protein of a FASTA file, a protein image and the nucleus image of the
same cell. deepGPS generates the protein image from the sequence and that nucleus; the
comparison says how close the user's protein image is to the generated one:

* **PSNR and SSIM** (:func:`atlaskit.metrics.classification.image_quality`, the chapter's own
  generation metrics) at the model's image size, both images min-max scaled to [0, 1] as the
  chapter scales its targets;
* with a trained chapter-01 cytoself model, the **distance in its embedding** (Euclidean, between
  the global vectors) and its **rank**: 1 when the user's image is nearer to its own protein's
  generated image than to the generated image of any other protein of the comparison.

The images folder (:func:`find_compare_images`)::

    IMAGES/<name>_protein.<ext>   the protein channel
    IMAGES/<name>_nucleus.<ext>   the nucleus channel of the same field, same height and width

``<ext>`` is ``png``, ``tif``/``tiff`` or ``npy`` (a 2-D numeric array); a colour PNG is
accepted only when its colour channels are equal (a grey image saved as RGB). ``<name>`` is the
FASTA id, or the id with every character other than letters, digits, ``.``, ``_``, ``-``
replaced by ``_`` (the name of its generated PNG). Images must be square (deepGPS reads square
crops) and at least :data:`MIN_SIDE` pixels wide. Other files, and hidden ones, are ignored.

This module reads files and computes; the command line lives in :mod:`atlaskit.commands.predict`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import DataError
from atlaskit.studies.deepgps.data import model_images

__all__ = ["IMAGE_SUFFIXES", "ROLES", "MIN_SIDE", "ImagePair", "find_compare_images", "read_channel_image",
           "match_names", "read_pairs", "model_pairs", "image_scores", "atlas_inputs", "atlas_scores",
           "comparison_text"]

#: File types of the images folder.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
#: The two images of a protein, by file-name suffix.
ROLES = ("protein", "nucleus")
#: Smallest image side accepted (pixels).
MIN_SIDE = 8
_PATTERN = re.compile(r"^(?P<name>.+)_(?P<role>protein|nucleus)$")

#: ``progress(done, total, stage)``: called while reading images and encoding them.
Progress = Callable[[int, int, str], None]


def _no_progress(done: int, total: int, stage: str) -> None:
    return None


@dataclass
class ImagePair:
    """One protein's images as read: ``protein`` and ``nucleus`` (H, W) float32, their files."""

    name: str
    protein: np.ndarray
    nucleus: np.ndarray
    protein_file: Path
    nucleus_file: Path


def find_compare_images(folder: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """The ``<name>_protein`` / ``<name>_nucleus`` image files of a folder, by name.

    Returns
    -------
    dict
        ``{name: {"protein": path, "nucleus": path}}``, names sorted.

    Raises
    ------
    DataError
        A missing folder, a file instead of a folder, no image pair at all, a name with only one
        of its two images, or a name with two files for one role (``a_protein.png`` and
        ``a_protein.tif``).
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"--compare {root}: no such folder")
    if not root.is_dir():
        raise DataError(f"--compare {root}: not a folder; give a folder of <name>_protein.png and "
                        "<name>_nucleus.png files (or .tif/.npy)")
    found: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _PATTERN.match(path.stem)
        if m:
            found.setdefault(m["name"], {}).setdefault(m["role"], []).append(path)
    if not found:
        raise DataError(f"--compare {root}: no <name>_protein / <name>_nucleus images "
                        f"({', '.join(IMAGE_SUFFIXES)}) in the folder")
    doubled = sorted(f"{n}_{r} ({', '.join(p.suffix for p in ps)})" for n, rs in found.items() for r, ps in rs.items()
                     if len(ps) > 1)
    if doubled:
        raise DataError(f"--compare {root}: more than one file for {_few(doubled)}; keep one of each")
    lonely = sorted(f"{n} (no {n}_{'nucleus' if 'protein' in rs else 'protein'} image)" for n, rs in found.items()
                    if len(rs) < 2)
    if lonely:
        raise DataError(f"--compare {root}: a protein needs both images: {_few(lonely)}")
    return {n: {r: rs[r][0] for r in ROLES} for n, rs in sorted(found.items())}


def _few(items: Sequence[str], k: int = 5) -> str:
    """At most ``k`` items joined, with how many more there are."""
    items = list(items)
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def read_channel_image(path: str | os.PathLike) -> np.ndarray:
    """One single-channel image (PNG/TIFF through the project's readers, or a 2-D ``.npy``) as
    (H, W) float32, values as stored.

    A colour image is accepted when its colour channels are equal (alpha ignored); a
    (1, H, W) or (H, W, 1) array is squeezed.

    Raises
    ------
    DataError
        Unreadable file, more than one distinct channel, not 2-D, non-finite or constant values,
        an image that is not square or smaller than :data:`MIN_SIDE`.
    """
    from atlaskit.data._imagefiles import _check_declared_size, _imread

    p = Path(path)
    if p.suffix.lower() == ".npy":
        try:
            img = np.load(p, mmap_mode="r", allow_pickle=False)  # the header first: its size is checked
        except Exception as exc:  # truncated files, pickled objects, not an .npy at all
            raise DataError(f"{p}: cannot read the array ({type(exc).__name__}: {_first_line(exc)})") from None
        if img.dtype == bool or not np.issubdtype(img.dtype, np.number):
            raise DataError(f"{p}: not a numeric array (dtype {img.dtype})")
        _check_declared_size(p, tuple(img.shape))  # zero-size or over atlaskit.data.readers.MAX_PIXELS
        img = np.array(img)
    else:
        img = _imread(p)
    img = np.asarray(img)
    if img.ndim == 3 and 1 in (img.shape[0], img.shape[-1]):
        img = img[0] if img.shape[0] == 1 else img[..., 0]
    elif img.ndim == 3 and img.shape[-1] in (2, 3, 4) and p.suffix.lower() != ".npy":
        colour = img[..., :3] if img.shape[-1] in (3, 4) else img[..., :1]
        if not (colour == colour[..., :1]).all():
            raise DataError(f"{p}: a colour image with {img.shape[-1]} different channels; give one channel "
                            f"per file (the protein in <name>_protein, the nucleus in <name>_nucleus)")
        img = colour[..., 0]
    if img.ndim != 2:
        raise DataError(f"{p}: expected one single-channel 2-D image, got shape {img.shape}; "
                        "give one channel per file (<name>_protein and <name>_nucleus)")
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise DataError(f"{p}: holds NaN or infinite values")
    if img.max() == img.min():
        raise DataError(f"{p}: the image is constant (nothing to compare)")
    h, w = img.shape
    if h != w:
        raise DataError(f"{p}: {h} × {w} pixels; deepGPS reads square crops: crop it square around the cell")
    if h < MIN_SIDE:
        raise DataError(f"{p}: {h} × {w} pixels, smaller than {MIN_SIDE} × {MIN_SIDE}")
    return img


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _safe_stem(name: str) -> str:
    """The file-name form of an id (as :mod:`atlaskit.commands.predict` names its PNGs)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100].strip("._")


def match_names(record_ids: Sequence[str], image_names: Sequence[str],
                skipped: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pair every FASTA id with its image name (the id itself, else its file-name form).

    Parameters
    ----------
    record_ids
        Ids of the good FASTA records.
    image_names
        ``<name>`` of every image pair of the folder.
    skipped
        Ids of records the FASTA reader skipped → why, to explain images that match one.

    Returns
    -------
    dict
        ``{record id: image name}`` in record order.

    Raises
    ------
    DataError
        Images whose name is no FASTA id (saying so when the record was skipped), FASTA records
        without images, or two ids with one file-name form.
    """
    names = set(image_names)
    skipped = dict(skipped or {})
    pairs: dict[str, str] = {}
    missing = []
    for rid in record_ids:
        name = rid if rid in names else _safe_stem(rid) if _safe_stem(rid) in names else None
        if name is None:
            missing.append(rid)
        else:
            pairs[rid] = name
    used = pd.Series(list(pairs.values()))
    twice = sorted(set(used[used.duplicated()]))
    if twice:
        raise DataError(f"--compare: the images {_few(twice)} match more than one FASTA id; name them by the full id")
    extra = sorted(names - set(pairs.values()))
    if extra:
        why = {n: skipped[s] for n in extra for s in skipped if s in (n,) or _safe_stem(s) == n}
        described = [f"{n} (its record was skipped: {why[n]})" if n in why else n for n in extra]
        raise DataError(f"--compare: images with no FASTA record: {_few(described)}")
    if missing:
        raise DataError(f"--compare: FASTA records with no images: {_few(missing)} "
                        "(each needs <id>_protein and <id>_nucleus files)")
    return pairs


def read_pairs(files: Mapping[str, Mapping[str, Path]], names: Sequence[str],
               progress: Progress | None = None) -> list[ImagePair]:
    """Read the image pairs of ``names`` (:func:`find_compare_images` gives ``files``).

    Raises
    ------
    DataError
        As :func:`read_channel_image`, and a protein and nucleus image of different sizes.
    """
    progress = progress or _no_progress
    out = []
    for k, name in enumerate(names):
        pro, nuc = read_channel_image(files[name]["protein"]), read_channel_image(files[name]["nucleus"])
        if pro.shape != nuc.shape:
            raise DataError(f"{name}: the protein image is {pro.shape[0]} × {pro.shape[1]} pixels, the nucleus image "
                            f"{nuc.shape[0]} × {nuc.shape[1]}; they must show the same field")
        out.append(ImagePair(name, pro, nuc, Path(files[name]["protein"]), Path(files[name]["nucleus"])))
        progress(k + 1, len(names), "image pairs read")
    return out


def model_pairs(pairs: Sequence[ImagePair], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs as deepGPS sees them: resized to ``size`` and min-max scaled, as the chapter
    scales its images (:func:`atlaskit.studies.deepgps.data.model_images`).

    Returns
    -------
    protein, nucleus : ndarray (n, size, size) float32 in [0, 1]
    """
    both = [model_images(p.protein[None], p.nucleus[None], size)[0] for p in pairs]  # each (2, S, S)
    x = np.stack(both) if both else np.zeros((0, 2, size, size), np.float32)  # (n, 2, S, S): nucleus, protein
    return x[:, 1], x[:, 0]


def image_scores(generated: np.ndarray, real: np.ndarray) -> pd.DataFrame:
    """PSNR (dB; inf for identical images) and SSIM of each generated image against the user's.

    Parameters
    ----------
    generated, real : array (n, S, S) in [0, 1]

    Returns
    -------
    DataFrame with columns ``psnr``, ``ssim`` (n rows)
    """
    from atlaskit.metrics.classification import image_quality

    return image_quality(generated, real, data_range=1.0)


def atlas_inputs(protein: np.ndarray, nucleus: np.ndarray, size: int = 100,
                 names: Sequence[str] | None = None) -> np.ndarray:
    """Chapter-01 model inputs (n, 3, size, size): protein, nucleus signed distance, raw nucleus.

    Every image is upsampled from the deepGPS size to ``size`` (bilinear), so the user's
    image and the generated one reach the encoder through the same path; the nucleus distance
    is the signed distance of the nucleus segmented as chapter 01 segments it
    (:data:`atlaskit.studies.cytoself.data.SEGMENT_KWARGS`), with an Otsu threshold when that
    finds no nucleus.

    Raises
    ------
    DataError
        A nucleus image in which no nucleus (or no background) can be found.
    """
    from skimage.filters import threshold_otsu

    from atlaskit.data import segment
    from atlaskit.studies.cytoself.data import SEGMENT_KWARGS
    from atlaskit.studies.deepgps.data import _minmax, _resize

    pro = _minmax(_resize(np.asarray(protein, np.float32)[:, None], size)[:, 0])  # (n, size, size)
    nuc = _minmax(_resize(np.asarray(nucleus, np.float32)[:, None], size)[:, 0])
    out = np.empty((len(pro), 3, size, size), np.float32)
    for i in range(len(pro)):
        mask = segment.segment_nuclei(nuc[i], **SEGMENT_KWARGS) != 0
        if not mask.any() or mask.all():
            mask = nuc[i] > threshold_otsu(nuc[i])
        if not mask.any() or mask.all():
            who = names[i] if names is not None else f"image {i + 1}"
            raise DataError(f"{who}: no nucleus found in its nucleus image (nor any background)")
        out[i, 0] = pro[i]
        out[i, 1] = segment.signed_distance(mask, normalise="max_abs")
        out[i, 2] = nuc[i]
    return out


def atlas_scores(model, real: np.ndarray, generated: np.ndarray, nucleus: np.ndarray,
                 progress: Progress | None = None, names: Sequence[str] | None = None,
                 batch_size: int = 64) -> pd.DataFrame:
    """Distance between the user's and the generated image in a chapter-01 cytoself embedding.

    Parameters
    ----------
    model
        A trained :class:`~atlaskit.models.cytoself.CytoselfModel`
        (:func:`atlaskit.studies.cytoself.place.load_run`).
    real, generated, nucleus : array (n, S, S) in [0, 1]
        The user's protein images, the generated ones and the nuclei they were generated from.
    names
        The proteins' names, for error messages.

    Returns
    -------
    DataFrame, n rows
        ``atlas_distance``: Euclidean distance between the global vectors of the user's image
        and of its own generated image (0 below float noise). ``atlas_rank``: 1 + the number of
        *other* proteins whose generated image is nearer to the user's image than its own (1 = its
        own is the nearest). ``atlas_ties``: other proteins' generated images at the same distance
        (the global vectors are quantized: with a small codebook, or images far from the
        training images, many images get the same codes, and a rank of 1 with ties says little).
    """
    from scipy.spatial.distance import cdist

    from atlaskit.studies.cytoself.place import encode_images
    from atlaskit.studies.deepgps.data import _minmax, _resize

    progress = progress or _no_progress
    size = int(getattr(getattr(model, "model", model), "config").image_size)
    n = len(real)
    vectors = []
    for lo in range(0, n, batch_size):
        sl = slice(lo, min(lo + batch_size, n))
        who = None if names is None else list(names)[sl]
        user = atlas_inputs(real[sl], nucleus[sl], size, who)  # (b, 3, size, size)
        gen = user.copy()  # the same nucleus channels (segmented once), the generated protein
        gen[:, 0] = _minmax(_resize(np.asarray(generated[sl], np.float32)[:, None], size)[:, 0])
        both = np.concatenate([user, gen])  # (2b, 3, size, size)
        vectors.append(encode_images(model, both, batch_size=batch_size).astype(np.float64))
        progress(sl.stop, n, "proteins encoded with the chapter-01 model")
    b = [len(v) // 2 for v in vectors]
    user = np.concatenate([v[:k] for v, k in zip(vectors, b)])  # (n, D)
    gen = np.concatenate([v[k:] for v, k in zip(vectors, b)])  # (n, D)
    dist = cdist(user, gen)  # (n user, n generated) Euclidean
    own = np.diag(dist)
    tol = 1e-6 * max(1.0, float(dist.max()))  # float noise: equal quantized vectors differ by ~1e-7
    nearer = (dist < own[:, None] - tol).sum(axis=1)
    tied = (np.abs(dist - own[:, None]) <= tol).sum(axis=1) - 1  # the own image is not a tie
    return pd.DataFrame({"atlas_distance": np.where(own <= tol, 0.0, own), "atlas_rank": (1 + nearer).astype(int),
                         "atlas_ties": tied.astype(int)})


def comparison_text(table: pd.DataFrame, max_rows: int = 20) -> str:
    """The comparison as a plain-text table: ``id``, ``psnr`` (2 decimals), ``ssim`` (3) and,
    when present, ``atlas_distance`` (3) and ``atlas_rank`` (``r/n``, with ties); at most ``max_rows``
    rows, then how many more there are."""
    cols = ["id", "psnr", "ssim"] + [c for c in ("atlas_distance", "atlas_rank") if c in table.columns]
    shown = table[cols].head(max_rows).copy()
    shown["psnr"] = shown["psnr"].map(lambda v: f"{v:.2f}")
    shown["ssim"] = shown["ssim"].map(lambda v: f"{v:.3f}")
    if "atlas_distance" in shown:
        shown["atlas_distance"] = shown["atlas_distance"].map(lambda v: f"{v:.3f}")
        ties = table["atlas_ties"] if "atlas_ties" in table else pd.Series(0, index=table.index)
        shown["atlas_rank"] = [f"{int(r)}/{len(table)}" + (f" ({int(t)} tied)" if t else "")
                               for r, t in zip(shown["atlas_rank"], ties.loc[shown.index])]
    text = shown.to_string(index=False)
    if len(table) > max_rows:
        text += f"\n… and {len(table) - max_rows} more protein(s)"
    return text + "\n"
