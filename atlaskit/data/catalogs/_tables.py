"""File helpers shared by the catalog readers (private): read a delimited table as strings,
line numbers of data rows, required values.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.data.registry import FileKey
from atlaskit.errors import DataError

# ==============================================================================================
# file helpers
# ==============================================================================================

def _read_table(key: FileKey, required: Sequence[str], **kwargs) -> pd.DataFrame:
    """Read a CSV/TSV as strings, wrapping parser errors and checking the required columns."""
    path = key[0]
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a valid delimited table ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text table (byte {exc.start})") from None
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; found {list(df.columns)}"
        )
    return df


def _line(i: int) -> int:
    """File line of the i-th (0-based) data row of a table with a one-line header."""
    return int(i) + 2


def _require_values(df: pd.DataFrame, columns: Sequence[str], path: str) -> None:
    """DataError naming the first rows where a required column is empty."""
    for col in columns:
        empty = np.flatnonzero(df[col].isna().to_numpy())
        if len(empty):
            lines = ", ".join(str(_line(i)) for i in empty[:5])
            more = f" (and {len(empty) - 5} more)" if len(empty) > 5 else ""
            raise DataError(f"{path}: line {lines}{more}: empty value in column {col!r}")
