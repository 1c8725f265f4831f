"""Tidy catalogs built from the real annotation tables of the four studies.

Every function returns a fresh :class:`pandas.DataFrame` (or dict) whose columns are listed in
its docstring. Each reads the registered file through :func:`atlaskit.data.registry.fetch` unless
given ``path=`` (your own copy in the same format). Parsed tables are cached per file (keyed on
the resolved path, modification time and size), so repeated calls are cheap; callers get a copy
and may modify it freely. A malformed file (missing columns, unknown compartments, a grade
outside 1..3, a label index out of range, …) raises :class:`~atlaskit.errors.DataError` naming
the file and the line (line 1 = the header; the first data row is line 2).

Contents
--------
OpenCell (cytoself, deepGPS)
    :func:`opencell_annotations`, :func:`opencell_proteins`, :func:`deepgps_label_counts`,
    :func:`deepgps_labels`, :func:`go_complexes`; constants :data:`OPENCELL_COMPARTMENTS`,
    :data:`OPENCELL_FAMILY`, :data:`FAMILIES`.
Human Protein Atlas (CNN vs FCN)
    :func:`hpa_locations`, :func:`kaggle_hpa_labels`, :func:`kaggle_to_cyto2017`,
    :func:`cyto2017_label_sets`, :func:`label_cooccurrence`; constants
    :data:`KAGGLE_HPA_CLASSES`, :data:`CYTO2017_CLASSES`, :data:`CYTO2017_DROPPED`.
Yeast (DeepYeast)
    :func:`yeastgfp`, :func:`yeast_classes`, :func:`deepyeast_splits`,
    :func:`deepyeast_split_files`; constants
    :data:`DEEPYEAST_CLASSES`, :data:`TRANSFER_CLASSES`, :data:`YEASTGFP_TO_DEEPYEAST`.

The tables live in one module per study: :mod:`.opencell`, :mod:`.hpa` and :mod:`.yeast`
(shared file helpers in :mod:`._tables`); every name is re-exported here, so
``from atlaskit.data.catalogs import X`` works as before.
"""
from __future__ import annotations

from atlaskit.data.catalogs._tables import _line, _read_table, _require_values  # noqa: F401
from atlaskit.data.catalogs.opencell import (  # noqa: F401
    deepgps_label_counts, deepgps_labels, DEEPGPS_PAPER_COUNTS, DEEPGPS_PAPER_SINGLE_LOCALIZED, DEEPGPS_VARIANTS,
    FAMILIES, GO_COMPLEXES, go_complexes, _go_table, major_localizations, opencell_annotations,
    _opencell_annotations, OPENCELL_COMPARTMENTS, OPENCELL_FAMILY, opencell_proteins, _opencell_proteins,
    _PRIORITY, _sorted_compartments,
)
from atlaskit.data.catalogs.hpa import (  # noqa: F401
    CYTO2017_CLASSES, CYTO2017_DROPPED, cyto2017_label_sets, hpa_locations, _hpa_locations, HPA_RELIABILITY,
    KAGGLE_HPA_CLASSES, kaggle_hpa_labels, _kaggle_labels, kaggle_to_cyto2017, _KAGGLE_TO_CYTO2017,
    label_cooccurrence, _split_locations,
)
from atlaskit.data.catalogs.yeast import (  # noqa: F401
    DEEPYEAST_CLASSES, deepyeast_split_files, DEEPYEAST_SPLIT_SIZES, deepyeast_splits, _deepyeast_splits,
    _DOC_FILES, _read_doc, _SPLIT_FILES, _split_path, _SPLITS_DIR, TRANSFER_CLASSES, yeast_classes, _yeast_classes,
    yeastgfp, _yeastgfp, YEASTGFP_LOCALIZATIONS, YEASTGFP_TO_DEEPYEAST, YEASTGFP_UNMAPPED,
)

__all__ = [
    "OPENCELL_COMPARTMENTS", "OPENCELL_FAMILY", "FAMILIES", "DEEPGPS_PAPER_COUNTS",
    "DEEPGPS_PAPER_SINGLE_LOCALIZED", "DEEPGPS_VARIANTS", "GO_COMPLEXES", "HPA_RELIABILITY",
    "KAGGLE_HPA_CLASSES", "CYTO2017_CLASSES", "CYTO2017_DROPPED", "YEASTGFP_LOCALIZATIONS",
    "DEEPYEAST_CLASSES", "TRANSFER_CLASSES", "YEASTGFP_TO_DEEPYEAST", "YEASTGFP_UNMAPPED",
    "DEEPYEAST_SPLIT_SIZES",
    "opencell_annotations", "opencell_proteins", "major_localizations", "deepgps_label_counts",
    "deepgps_labels", "go_complexes", "hpa_locations", "kaggle_hpa_labels", "kaggle_to_cyto2017",
    "cyto2017_label_sets", "label_cooccurrence", "yeastgfp", "yeast_classes", "deepyeast_splits",
    "deepyeast_split_files",
]
