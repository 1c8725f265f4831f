"""Yeast catalogs (DeepYeast): the YeastGFP (Huh 2003) localizations, the DeepYeast classes
and their ORFs, the published train/validation/test splits. Re-exported by
:mod:`atlaskit.data.catalogs`.
"""
from __future__ import annotations

from functools import lru_cache
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from atlaskit.data.catalogs._tables import _line, _read_table, _require_values
from atlaskit.data.registry import FileKey
from atlaskit.data.registry import file_key as _file_key
from atlaskit.errors import DataError

# ==============================================================================================
# Yeast
# ==============================================================================================

#: The 23 yes/no localization columns of the Huh et al. 2003 YeastGFP table, in file order.
YEASTGFP_LOCALIZATIONS: tuple[str, ...] = (
    "ambiguous", "mitochondrion", "vacuole", "spindle pole", "cell periphery",
    "punctate composite", "vacuolar membrane", "ER", "nuclear periphery", "endosome",
    "bud neck", "microtubule", "Golgi", "late Golgi", "peroxisome", "actin", "nucleolus",
    "cytoplasm", "ER to Golgi", "early Golgi", "lipid particle", "nucleus", "bud",
)

#: The 12 DeepYeast classes in label-index order (deepyeast-splits/HOwt_doc.txt).
DEEPYEAST_CLASSES: tuple[str, ...] = (
    "cell periphery",
    "cytoplasm",
    "endosome",
    "er",
    "golgi",
    "mitochondrion",
    "nuclear periphery",
    "nucleolus",
    "nucleus",
    "peroxisome",
    "spindle pole",
    "vacuole",
)

#: The 4 DeepYeast transfer-learning classes in label-index order (HOwt_transfer_doc.txt).
TRANSFER_CLASSES: tuple[str, ...] = ("actin", "bud neck", "lipid particle", "microtubule")

#: YeastGFP column → DeepYeast class (main or transfer). The three Golgi columns pool into
#: "golgi"; "vacuolar membrane" joins "vacuole" (DeepYeast has one vacuole class). Columns not
#: listed (:data:`YEASTGFP_UNMAPPED`) name no class.
YEASTGFP_TO_DEEPYEAST: dict[str, str] = {
    "cell periphery": "cell periphery",
    "cytoplasm": "cytoplasm",
    "endosome": "endosome",
    "ER": "er",
    "Golgi": "golgi",
    "early Golgi": "golgi",
    "late Golgi": "golgi",
    "mitochondrion": "mitochondrion",
    "nuclear periphery": "nuclear periphery",
    "nucleolus": "nucleolus",
    "nucleus": "nucleus",
    "peroxisome": "peroxisome",
    "spindle pole": "spindle pole",
    "vacuole": "vacuole",
    "vacuolar membrane": "vacuole",
    "actin": "actin",
    "bud neck": "bud neck",
    "lipid particle": "lipid particle",
    "microtubule": "microtubule",
}

#: YeastGFP columns that map to no DeepYeast class: "ambiguous" (no confident call),
#: "punctate composite" (mixed puncta), "ER to Golgi" (transport vesicles), "bud".
YEASTGFP_UNMAPPED: tuple[str, ...] = tuple(c for c in YEASTGFP_LOCALIZATIONS if c not in YEASTGFP_TO_DEEPYEAST)


@lru_cache(maxsize=4)
def _yeastgfp(key: FileKey) -> pd.DataFrame:
    required = ["yORF", "gene name", "abundance", *YEASTGFP_LOCALIZATIONS]
    df = _read_table(key, required)
    _require_values(df, ["yORF", *YEASTGFP_LOCALIZATIONS], key[0])
    dup = np.flatnonzero(df["yORF"].duplicated().to_numpy())
    if len(dup):
        i = dup[0]
        raise DataError(f"{key[0]}: line {_line(i)}: duplicate ORF {df['yORF'].iloc[i]!r}")
    flags = df[list(YEASTGFP_LOCALIZATIONS)]
    bad = ~flags.isin(["T", "F"])
    if bad.to_numpy().any():
        i, j = np.argwhere(bad.to_numpy())[0]
        raise DataError(
            f"{key[0]}: line {_line(i)}: ORF {df['yORF'].iloc[i]}: column {YEASTGFP_LOCALIZATIONS[j]!r} "
            f"is {flags.iat[i, j]!r}, expected T or F"
        )
    on = (flags == "T").to_numpy()
    names = np.array(YEASTGFP_LOCALIZATIONS, dtype=object)
    abundance = pd.to_numeric(df["abundance"], errors="coerce")
    note = df["abundance"].where(abundance.isna() & df["abundance"].notna())
    return pd.DataFrame(
        {
            "orf": df["yORF"].str.strip(),
            "gene": df["gene name"].astype(object).where(df["gene name"].notna(), None),
            "abundance": abundance.astype("float64"),
            "abundance_note": note.astype(object).where(note.notna(), None),
            "ambiguous": on[:, 0],
            "localizations": [tuple(names[row]) for row in on],
        }
    )


def yeastgfp(path: str | PathLike | None = None) -> pd.DataFrame:
    """The Huh et al. 2003 YeastGFP localization table, one row per ORF (4155).

    Parameters
    ----------
    path : str or path-like, optional
        CSV with columns ``yORF, gene name, abundance`` and the 23 yes/no columns of
        :data:`YEASTGFP_LOCALIZATIONS` (values ``T``/``F``); default
        ``yeast/yeastgfp-huh2003.csv``.

    Returns
    -------
    pandas.DataFrame
        In file order, with columns

        - ``orf`` (str): systematic ORF name, e.g. ``YAL001C``;
        - ``gene`` (str or None): standard gene name (missing for 837 ORFs);
        - ``abundance`` (float): molecules per cell, NaN when not measured;
        - ``abundance_note`` (str or None): why not ("not visualized", "low signal",
          "technical problem");
        - ``ambiguous`` (bool): the "ambiguous" flag;
        - ``localizations`` (tuple of str): the columns set to T, in file-column order
          ("ambiguous" included when set).
    """
    return _yeastgfp(_file_key(path, "yeast/yeastgfp-huh2003.csv")).copy()


@lru_cache(maxsize=8)
def _yeast_classes(key: FileKey, strict: bool) -> pd.DataFrame:
    gfp = _yeastgfp(key)
    main, transfer = set(DEEPYEAST_CLASSES), set(TRANSFER_CLASSES)
    main_idx = {c: i for i, c in enumerate(DEEPYEAST_CLASSES)}
    transfer_idx = {c: i for i, c in enumerate(TRANSFER_CLASSES)}
    rows = []
    for orf, gene, ambiguous, locs in zip(gfp["orf"], gfp["gene"], gfp["ambiguous"], gfp["localizations"]):
        if ambiguous:
            continue
        if strict and any(loc in YEASTGFP_UNMAPPED for loc in locs):
            continue
        classes = {YEASTGFP_TO_DEEPYEAST[loc] for loc in locs if loc in YEASTGFP_TO_DEEPYEAST}
        if len(classes) != 1:
            continue
        (klass,) = classes
        if klass in main:
            rows.append((orf, gene, klass, "main", main_idx[klass]))
        elif klass in transfer:
            rows.append((orf, gene, klass, "transfer", transfer_idx[klass]))
    return pd.DataFrame(rows, columns=["orf", "gene", "klass", "task", "label_idx"])


def yeast_classes(path: str | PathLike | None = None, *, strict: bool = True) -> pd.DataFrame:
    """ORF → DeepYeast class for YeastGFP proteins localized to exactly one class.

    YeastGFP columns are mapped with :data:`YEASTGFP_TO_DEEPYEAST` onto the 12
    :data:`DEEPYEAST_CLASSES` plus the 4 :data:`TRANSFER_CLASSES` (Golgi, early Golgi and late
    Golgi → golgi; vacuole and vacuolar membrane → vacuole; ER → er; the others by name). A
    protein gets a class when its mapped localizations form exactly one of these 16 classes
    (so nucleus + nucleolus, or cytoplasm + actin, is excluded). Proteins flagged "ambiguous"
    are always excluded; with ``strict=True`` (default) so is any protein with an unmapped
    localization ("punctate composite", "ER to Golgi", "bud"), since it is then not localized to
    a single class; ``strict=False`` ignores those three.

    In the registered file (``strict=True``): 2670 proteins — cytoplasm 821, nucleus 496,
    mitochondrion 485, er 265, vacuole 176, golgi 82, nucleolus 70, cell periphery 57, nuclear
    periphery 53, spindle pole 39, endosome 34, peroxisome 21; transfer: actin 27, lipid
    particle 19, bud neck 15, microtubule 10 (``strict=False``: 2734). DeepYeast's own labels
    are per-cell calls on its image set (Chong et al. 2015 screen), which is not public here;
    this protein-level table from Huh et al. 2003 is the public stand-in (for example to give
    simulated proteins realistic class sizes), not DeepYeast's label list.

    Returns
    -------
    pandas.DataFrame
        In file order, with columns

        - ``orf`` (str), ``gene`` (str or None);
        - ``klass`` (str): the class;
        - ``task`` (str): ``"main"`` (one of the 12) or ``"transfer"`` (one of the 4);
        - ``label_idx`` (int): index of ``klass`` in its task's class tuple.
    """
    return _yeast_classes(_file_key(path, "yeast/yeastgfp-huh2003.csv"), bool(strict)).copy()


#: Expected number of images per DeepYeast split (from the DeepYeast repository).
DEEPYEAST_SPLIT_SIZES: dict[str, int] = {
    "train": 65_000,
    "val": 12_500,
    "test": 12_500,
    "transfer_train": 4_000,
    "transfer_val": 2_000,
    "transfer_test": 4_000,
}

_SPLIT_FILES = {
    "train": "HOwt_train.txt",
    "val": "HOwt_val.txt",
    "test": "HOwt_test.txt",
    "transfer_train": "HOwt_transfer_train.txt",
    "transfer_val": "HOwt_transfer_val.txt",
    "transfer_test": "HOwt_transfer_test.txt",
}
_DOC_FILES = {"main": "HOwt_doc.txt", "transfer": "HOwt_transfer_doc.txt"}
_SPLITS_DIR = "yeast/deepyeast-splits"


def deepyeast_split_files() -> list[str]:
    """Registry names of the published DeepYeast split lists and class lists.

    These are the files :func:`deepyeast_splits` reads when no ``path`` is given (each can be
    passed to :func:`atlaskit.data.registry.fetch`).

    Returns
    -------
    list of str
        Registry-relative paths ``yeast/deepyeast-splits/<file>``: the two class lists
        (``HOwt_doc.txt``, ``HOwt_transfer_doc.txt``), then the six split files in the order of
        :data:`DEEPYEAST_SPLIT_SIZES` (``HOwt_train.txt`` ... ``HOwt_transfer_test.txt``).
    """
    return [f"{_SPLITS_DIR}/{name}" for name in (*_DOC_FILES.values(), *_SPLIT_FILES.values())]


def _split_path(folder: str | PathLike | None, filename: str) -> str | PathLike | None:
    return None if folder is None else Path(folder) / filename


def _read_doc(key: FileKey, expected: tuple[str, ...]) -> None:
    """Check a DeepYeast class list (``label;label_idx`` lines) against ``expected``."""
    path = key[0]
    with open(path, encoding="utf-8-sig") as fh:
        lines = [ln.strip() for ln in fh]
    found: dict[int, str] = {}
    for lineno, ln in enumerate(lines, start=1):
        if not ln or ln.lower() == "label;label_idx":
            continue
        label, sep, idx = ln.rpartition(";")
        try:
            found[int(idx)] = label.strip()
        except ValueError:
            raise DataError(f"{path}: line {lineno}: expected 'label;label_idx', got {ln!r}") from None
        if not sep:
            raise DataError(f"{path}: line {lineno}: expected 'label;label_idx', got {ln!r}")
    classes = tuple(found[i] for i in sorted(found))
    if classes != expected or sorted(found) != list(range(len(found))):
        raise DataError(f"{path}: class list {classes} differs from the expected {expected}")


@lru_cache(maxsize=4)
def _deepyeast_splits(
    split_keys: tuple[tuple[str, FileKey], ...], doc_keys: tuple[FileKey, ...], check_sizes: bool
) -> pd.DataFrame:
    _read_doc(doc_keys[0], DEEPYEAST_CLASSES)
    _read_doc(doc_keys[1], TRANSFER_CLASSES)
    frames = []
    for split, key in split_keys:
        classes = TRANSFER_CLASSES if split.startswith("transfer") else DEEPYEAST_CLASSES
        paths, idxs = [], []
        with open(key[0], encoding="utf-8-sig") as fh:
            for lineno, ln in enumerate(fh, start=1):
                ln = ln.strip()
                if not ln:
                    continue
                img, _, idx = ln.rpartition(" ")
                try:
                    k = int(idx)
                except ValueError:
                    k = -1
                if not img or not 0 <= k < len(classes):
                    raise DataError(
                        f"{key[0]}: line {lineno}: expected 'image_path label_idx' with label_idx in "
                        f"0..{len(classes) - 1}, got {ln!r}"
                    )
                paths.append(img.strip())
                idxs.append(k)
        expected = DEEPYEAST_SPLIT_SIZES[split]
        if check_sizes and len(paths) != expected:
            raise DataError(f"{key[0]}: {len(paths)} images in split {split!r}, expected {expected}")
        idx = np.asarray(idxs, dtype=np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "task": "transfer" if split.startswith("transfer") else "main",
                    "path": paths,
                    "label_idx": idx,
                    "label": np.asarray(classes, dtype=object)[idx] if len(idx) else np.array([], dtype=object),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["split"] = pd.Categorical(out["split"], categories=list(_SPLIT_FILES))
    return out


def deepyeast_splits(path: str | PathLike | None = None, *, check_sizes: bool = True) -> pd.DataFrame:
    """The DeepYeast image splits (image path and class per line), all six files in one table.

    Parameters
    ----------
    path : str or path-like, optional
        A folder holding ``HOwt_{train,val,test}.txt``, ``HOwt_transfer_{train,val,test}.txt``
        (``image_path label_idx`` per line) and the class lists ``HOwt_doc.txt`` /
        ``HOwt_transfer_doc.txt``; default: the registered ``yeast/deepyeast-splits/`` files.
    check_sizes : bool
        Check the split sizes against :data:`DEEPYEAST_SPLIT_SIZES` (65,000 / 12,500 / 12,500
        main; 4,000 / 2,000 / 4,000 transfer) and raise DataError on a mismatch.

    Returns
    -------
    pandas.DataFrame
        100,000 rows, split by split in file order, with columns

        - ``split`` (categorical): train, val, test, transfer_train, transfer_val, transfer_test;
        - ``task`` (str): ``"main"`` or ``"transfer"``;
        - ``path`` (str): image path relative to the image root, e.g. ``plate01/….png``;
        - ``label_idx`` (int): index into :data:`DEEPYEAST_CLASSES` (main) or
          :data:`TRANSFER_CLASSES` (transfer);
        - ``label`` (str): the class name.

    Raises
    ------
    DataError
        A malformed line, a label index out of range, a class list that differs from the
        constants, or (with ``check_sizes``) a split of the wrong size.
    """
    split_keys = tuple(
        (split, _file_key(_split_path(path, name), f"{_SPLITS_DIR}/{name}")) for split, name in _SPLIT_FILES.items()
    )
    doc_keys = tuple(_file_key(_split_path(path, name), f"{_SPLITS_DIR}/{name}") for name in _DOC_FILES.values())
    return _deepyeast_splits(split_keys, doc_keys, bool(check_sizes)).copy()
