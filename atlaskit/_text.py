"""Decoding small text files into str, with errors that name the line (private helper).

Shared by the table/list readers (:mod:`atlaskit.data.readers`) and the FASTA reader
(:mod:`atlaskit.data.sequences`), which differ only in which bytes they refuse and in the
wording of their messages. Also home of :data:`_ASCII_UPPER`, the ASCII-only upper-casing
table that the FASTA reader and the sequence embedders (:mod:`atlaskit.models.sequence`) share
(defined once, at the base level, so the model layer need not import the data layer).
"""
from __future__ import annotations

import re
from typing import Callable

from atlaskit.errors import DataError

# ASCII-only upper-casing: str.upper() maps some non-ASCII letters onto amino-acid codes
# ('ſ' -> 'S', 'ﬀ' -> 'FF', 'ı' -> 'I'), which would hide them from a letter check
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _line_of(raw: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``raw``."""
    return raw.count(b"\n", 0, offset) + 1


def decode_text(
    raw: bytes,
    forbidden: re.Pattern[bytes],
    binary: Callable[[bytes, int], str],
    not_utf8: Callable[[int, int], str],
) -> str:
    """``raw`` decoded as UTF-8 (a leading BOM dropped), or a DataError naming the line.

    Parameters
    ----------
    raw : bytes
        The file's content.
    forbidden : compiled bytes pattern
        Bytes no text file of this kind holds (NUL, control bytes); the first match is refused
        before decoding, since it marks binary content rather than a text encoding problem.
    binary : callable (byte, line) -> str
        The error message for a forbidden ``byte`` found on 1-based ``line``.
    not_utf8 : callable (line, offset) -> str
        The error message for bytes that are not UTF-8, on 1-based ``line`` at byte ``offset``.

    Raises
    ------
    DataError
        With the message built by ``binary`` or ``not_utf8``.
    """
    bad = forbidden.search(raw)
    if bad is not None:
        raise DataError(binary(bad.group(), _line_of(raw, bad.start())))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(not_utf8(_line_of(raw, err.start), err.start)) from None
