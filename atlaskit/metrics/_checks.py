"""Input checks shared by the metric modules (private).

Each check raises :class:`~atlaskit.errors.DataError` (never numpy's ValueError/TypeError) and
takes the argument's name, or the wording of the requirement, so that every caller keeps its
own message.
"""
from __future__ import annotations

import numpy as np

from atlaskit.errors import DataError

_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: no strings, objects or complex


def is_numeric(a: np.ndarray) -> bool:
    """Whether ``a`` holds booleans, integers or real floats."""
    return a.dtype.kind in _NUMERIC_KINDS


def as_float64(x, name: str, requirement: str = "be numeric") -> np.ndarray:
    """``x`` as a float64 array, or ``DataError("<name> must <requirement>, got dtype <dtype>")``.

    Strings, objects and complex numbers are refused before the cast, which would otherwise fail
    with a numpy error (or, for complex, silently drop the imaginary part).
    """
    a = np.asarray(x)
    if not is_numeric(a):
        raise DataError(f"{name} must {requirement}, got dtype {a.dtype}")
    return a.astype(np.float64)


def as_class_indices(a: np.ndarray, name: str) -> np.ndarray:
    """Class-index array ``a`` as int64: integers pass, whole-valued floats are cast.

    NaN or inf is refused before the cast (it would become an arbitrary, often negative,
    integer), as is any other dtype or a float with a fractional part. Shape and range are the
    caller's to check.
    """
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise DataError(f"{name} contains NaN or inf; class indices must be finite integers")
        if np.all(a == np.round(a)):
            return a.astype(np.int64)
    raise DataError(f"{name} must hold integer class indices, got dtype {a.dtype}")
