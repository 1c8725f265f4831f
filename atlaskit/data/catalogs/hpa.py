"""Human Protein Atlas catalogs (CNN vs FCN): subcellular locations, the Kaggle 2018 labels,
their mapping onto the Cyto-2017 classes, label co-occurrence. Re-exported by
:mod:`atlaskit.data.catalogs`.
"""
from __future__ import annotations

from functools import lru_cache
from os import PathLike
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.data.catalogs._tables import _line, _read_table, _require_values
from atlaskit.data.registry import FileKey
from atlaskit.data.registry import file_key as _file_key
from atlaskit.errors import DataError

# ==============================================================================================
# Human Protein Atlas
# ==============================================================================================

#: HPA reliability levels (current scheme; "Validated" is the pre-2019 name of "Enhanced").
HPA_RELIABILITY = ("Enhanced", "Supported", "Approved", "Uncertain", "Validated")


def _split_locations(value) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    return tuple(x.strip() for x in value.split(";") if x.strip())


@lru_cache(maxsize=4)
def _hpa_locations(key: FileKey) -> pd.DataFrame:
    cols = ["Gene", "Gene name", "Reliability", "Main location", "Additional location"]
    df = _read_table(key, cols, sep="\t")
    _require_values(df, ["Gene", "Gene name", "Reliability"], key[0])
    bad = np.flatnonzero(~df["Reliability"].isin(HPA_RELIABILITY).to_numpy())
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{key[0]}: line {_line(i)}: unknown Reliability {df['Reliability'].iloc[i]!r} "
            f"(expected one of {', '.join(HPA_RELIABILITY)})"
        )
    main = df["Main location"].map(_split_locations)
    extra = df["Additional location"].map(_split_locations)
    return pd.DataFrame(
        {
            "gene": df["Gene name"],
            "ensg": df["Gene"],
            "reliability": df["Reliability"],
            "main_locations": main,
            "additional_locations": extra,
            "all_locations": [tuple(dict.fromkeys(m + a)) for m, a in zip(main, extra)],
        }
    )


def hpa_locations(path: str | PathLike | None = None) -> pd.DataFrame:
    """Human Protein Atlas subcellular locations, one row per gene (12,813 rows in the file).

    Parameters
    ----------
    path : str or path-like, optional
        HPA ``subcellular_location.tsv`` (tab-separated; columns ``Gene, Gene name, Reliability,
        Main location, Additional location``); default ``hpa/subcellular_location.tsv``.

    Returns
    -------
    pandas.DataFrame
        In file order, with columns

        - ``gene`` (str): gene name (not unique: a few names map to two Ensembl ids);
        - ``ensg`` (str): Ensembl gene id (unique);
        - ``reliability`` (str): Enhanced / Supported / Approved / Uncertain;
        - ``main_locations`` (tuple of str), ``additional_locations`` (tuple of str): HPA
          location names as written (e.g. "Nucleoplasm", "Cell Junctions");
        - ``all_locations`` (tuple of str): main then additional, without repeats.
    """
    return _hpa_locations(_file_key(path, "hpa/subcellular_location.tsv")).copy()


#: The 28 classes of the Kaggle 2018 "Human Protein Atlas Image Classification" challenge, in
#: label-index order.
KAGGLE_HPA_CLASSES: tuple[str, ...] = (
    "Nucleoplasm",
    "Nuclear membrane",
    "Nucleoli",
    "Nucleoli fibrillar center",
    "Nuclear speckles",
    "Nuclear bodies",
    "Endoplasmic reticulum",
    "Golgi apparatus",
    "Peroxisomes",
    "Endosomes",
    "Lysosomes",
    "Intermediate filaments",
    "Actin filaments",
    "Focal adhesion sites",
    "Microtubules",
    "Microtubule ends",
    "Cytokinetic bridge",
    "Mitotic spindle",
    "Microtubule organizing center",
    "Centrosome",
    "Lipid droplets",
    "Plasma membrane",
    "Cell junctions",
    "Mitochondria",
    "Aggresome",
    "Cytosol",
    "Cytoplasmic bodies",
    "Rods & rings",
)

#: The 13 classes of the CNN-vs-FCN study on HPA Cyto-2017, in label-index order.
CYTO2017_CLASSES: tuple[str, ...] = (
    "actin filaments",
    "centrosome",
    "cytosol",
    "endoplasmic reticulum",
    "golgi apparatus",
    "intermediate filaments",
    "microtubules",
    "mitochondria",
    "nuclear membrane",
    "nucleoli",
    "nucleus",
    "plasma membrane",
    "vesicles",
)

# Kaggle class → Cyto-2017 class (None = dropped). The grouping follows the HPA's own
# organelle hierarchy where the Cyto-2017 list has the parent, with vesicle-like puncta pooled
# into "vesicles" as the 2017 Cell Atlas did.
_KAGGLE_TO_CYTO2017: dict[str, str | None] = {
    "Nucleoplasm": "nucleus",
    "Nuclear membrane": "nuclear membrane",
    "Nucleoli": "nucleoli",
    "Nucleoli fibrillar center": "nucleoli",
    "Nuclear speckles": "nucleus",
    "Nuclear bodies": "nucleus",
    "Endoplasmic reticulum": "endoplasmic reticulum",
    "Golgi apparatus": "golgi apparatus",
    "Peroxisomes": "vesicles",
    "Endosomes": "vesicles",
    "Lysosomes": "vesicles",
    "Intermediate filaments": "intermediate filaments",
    "Actin filaments": "actin filaments",
    "Focal adhesion sites": "actin filaments",
    "Microtubules": "microtubules",
    "Microtubule ends": "microtubules",
    "Cytokinetic bridge": None,
    "Mitotic spindle": None,
    "Microtubule organizing center": "centrosome",
    "Centrosome": "centrosome",
    "Lipid droplets": "vesicles",
    "Plasma membrane": "plasma membrane",
    "Cell junctions": "plasma membrane",
    "Mitochondria": "mitochondria",
    "Aggresome": "cytosol",
    "Cytosol": "cytosol",
    "Cytoplasmic bodies": "vesicles",
    "Rods & rings": None,
}

#: Kaggle classes with no Cyto-2017 counterpart: the two mitosis-only structures (seen in a
#: few cells of an image, not a steady-state localization) and Rods & rings (11 images).
CYTO2017_DROPPED: tuple[str, ...] = tuple(k for k, v in _KAGGLE_TO_CYTO2017.items() if v is None)


def kaggle_to_cyto2017() -> dict[str, str | None]:
    """Mapping of the 28 Kaggle HPA classes onto the 13 Cyto-2017 classes (None = dropped).

    ================================================  =========================
    Kaggle classes                                    Cyto-2017 class
    ================================================  =========================
    Nucleoplasm, Nuclear speckles, Nuclear bodies     nucleus
    Nucleoli, Nucleoli fibrillar center               nucleoli
    Nuclear membrane                                  nuclear membrane
    Endoplasmic reticulum                             endoplasmic reticulum
    Golgi apparatus                                   golgi apparatus
    Peroxisomes, Endosomes, Lysosomes,
    Lipid droplets, Cytoplasmic bodies                vesicles
    Intermediate filaments                            intermediate filaments
    Actin filaments, Focal adhesion sites             actin filaments
    Microtubules, Microtubule ends                    microtubules
    Microtubule organizing center, Centrosome         centrosome
    Plasma membrane, Cell junctions                   plasma membrane
    Mitochondria                                      mitochondria
    Cytosol, Aggresome                                cytosol
    Cytokinetic bridge, Mitotic spindle, Rods & rings dropped (:data:`CYTO2017_DROPPED`)
    ================================================  =========================

    Focal adhesion sites, Microtubule ends, Cell junctions and Aggresome go to the parent the
    HPA's organelle hierarchy gives them; Cytoplasmic bodies (P-bodies and other puncta) look
    like vesicles at this resolution and are pooled with them.

    Returns
    -------
    dict
        Kaggle class name (in :data:`KAGGLE_HPA_CLASSES` order) → Cyto-2017 class name or None.
    """
    return dict(_KAGGLE_TO_CYTO2017)


@lru_cache(maxsize=4)
def _kaggle_labels(key: FileKey) -> pd.DataFrame:
    df = _read_table(key, ["Id", "Target"])
    _require_values(df, ["Id", "Target"], key[0])
    dup = np.flatnonzero(df["Id"].duplicated().to_numpy())
    if len(dup):
        i = dup[0]
        raise DataError(f"{key[0]}: line {_line(i)}: duplicate image id {df['Id'].iloc[i]!r}")
    labels = []
    n = len(KAGGLE_HPA_CLASSES)
    for i, (img, target) in enumerate(zip(df["Id"], df["Target"])):
        try:
            idx = sorted({int(x) for x in target.split()})
        except ValueError:
            raise DataError(
                f"{key[0]}: line {_line(i)}: image {img}: Target {target!r} is not a list of integers"
            ) from None
        if not idx or idx[0] < 0 or idx[-1] >= n:
            raise DataError(
                f"{key[0]}: line {_line(i)}: image {img}: label {target!r} outside 0..{n - 1}"
            )
        labels.append(tuple(idx))
    return pd.DataFrame(
        {
            "id": df["Id"].str.strip(),
            "labels": labels,
            "label_names": [tuple(KAGGLE_HPA_CLASSES[j] for j in t) for t in labels],
        }
    )


def kaggle_hpa_labels(path: str | PathLike | None = None) -> pd.DataFrame:
    """The Kaggle HPA 2018 training label table (31,072 images, multi-label).

    Parameters
    ----------
    path : str or path-like, optional
        CSV with columns ``Id, Target`` (space-separated class indices); default
        ``hpa/kaggle2018-train-labels.csv``.

    Returns
    -------
    pandas.DataFrame
        In file order, with columns

        - ``id`` (str): image id (files ``<id>_<blue|green|red|yellow>.png``);
        - ``labels`` (tuple of int): class indices into :data:`KAGGLE_HPA_CLASSES`, ascending;
        - ``label_names`` (tuple of str): the same as class names.
    """
    return _kaggle_labels(_file_key(path, "hpa/kaggle2018-train-labels.csv")).copy()


def cyto2017_label_sets(path: str | PathLike | None = None) -> pd.DataFrame:
    """The Kaggle label table mapped to Cyto-2017 13-class label sets (:func:`kaggle_to_cyto2017`).

    Images left with no mapped label (only dropped classes) are removed; their number is in
    ``df.attrs["dropped_images"]``.

    Returns
    -------
    pandas.DataFrame
        In file order, with columns

        - ``id`` (str): image id;
        - ``kaggle_labels`` (tuple of int): the original Kaggle indices;
        - ``labels`` (tuple of str): Cyto-2017 class names, in :data:`CYTO2017_CLASSES` order;
        - ``label_idx`` (tuple of int): their indices in :data:`CYTO2017_CLASSES`;
        - ``n_labels`` (int): ``len(labels)``.
    """
    k = kaggle_hpa_labels(path)
    index = {c: i for i, c in enumerate(CYTO2017_CLASSES)}
    by_idx = [_KAGGLE_TO_CYTO2017[c] for c in KAGGLE_HPA_CLASSES]
    label_idx = [
        tuple(sorted({index[by_idx[j]] for j in labels if by_idx[j] is not None})) for labels in k["labels"]
    ]
    out = pd.DataFrame(
        {
            "id": k["id"],
            "kaggle_labels": k["labels"],
            "labels": [tuple(CYTO2017_CLASSES[i] for i in t) for t in label_idx],
            "label_idx": label_idx,
        }
    )
    out["n_labels"] = out["label_idx"].map(len).astype("int64")
    keep = out["n_labels"] > 0
    dropped = int((~keep).sum())
    out = out[keep].reset_index(drop=True)
    out.attrs["dropped_images"] = dropped
    return out


def label_cooccurrence(
    df: pd.DataFrame, classes: Sequence | None = None, *, column: str = "labels"
) -> pd.DataFrame:
    """Counts of images (rows) carrying each pair of classes.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a column of label collections (tuples of names or of indices), e.g. from
        :func:`kaggle_hpa_labels` (``labels`` = indices, ``label_names`` = names) or
        :func:`cyto2017_label_sets`.
    classes : sequence, optional
        Row/column order; default: the labels that occur, sorted. A label not in ``classes``
        raises DataError.
    column : str
        The label column (default ``"labels"``).

    Returns
    -------
    pandas.DataFrame
        Square, ``classes × classes``, int64: entry (a, b) = number of rows whose labels contain
        both a and b; the diagonal = number of rows with a. Symmetric.
    """
    if column not in df.columns:
        raise DataError(f"label table has no column {column!r} (columns: {list(df.columns)})")
    label_sets = [tuple(dict.fromkeys(v)) for v in df[column]]
    if classes is None:
        classes = sorted({x for v in label_sets for x in v})
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for row, labels in enumerate(label_sets):
        try:
            idx = np.fromiter((index[x] for x in labels), dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"row {row}: label {exc.args[0]!r} is not one of the given classes") from None
        m[np.ix_(idx, idx)] += 1
    return pd.DataFrame(m, index=pd.Index(classes, name=column), columns=pd.Index(classes, name=column))
