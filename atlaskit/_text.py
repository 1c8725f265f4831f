"""Decoding small text files into str, with errors that name the line (private helper).

Shared by the table/list readers (:mod:`atlaskit.data.readers`) and the FASTA reader
(:mod:`atlaskit.data.sequences`), which differ only in which bytes they refuse and in the
wording of their messages. Also home of :data:`_ASCII_UPPER`, the ASCII-only upper-casing
table that the FASTA reader and the sequence embedders (:mod:`atlaskit.models.sequence`) share
(defined once, at the base level, so the model layer need not import the data layer), and of
:func:`display_path`, the one way atlaskit shows a path to a reader (relative to the project,
``~`` for the home folder), importable from every layer.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
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


def _project_root() -> Path:
    """The project root of a source checkout; the work folder of an installed atlaskit (:mod:`atlaskit._paths`)."""
    from atlaskit._paths import project_root

    return project_root()


def display_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """How a path is shown to a reader: relative to the project, ``~`` for the home folder.

    Only for display (printed messages, tables, commands a reader copies): a chapter page must
    not show the absolute folders of the machine that built it. Nothing is resolved for use;
    the returned text is never read back as a path by atlaskit.

    Parameters
    ----------
    path : str or path-like
        The path to show. A relative path is shown as it is.
    root : str or path-like, optional
        The project root; default: the checkout (the work folder of an installed atlaskit).

    Returns
    -------
    str
        ``path`` relative to ``root`` when it lies inside it (``"."`` for the root itself), else
        ``~/…`` when it lies inside the home folder, else the path unchanged.

    Raises
    ------
    TypeError
        ``path`` (or ``root``) is not a str or path-like object.

    Examples
    --------
    >>> display_path("/work/main/_build/runs/x.pt", root="/work/main")
    '_build/runs/x.pt'
    """
    p = Path(os.fspath(path))
    if not p.is_absolute():
        return str(p)
    base = Path(os.fspath(root)) if root is not None else _project_root()
    home = os.path.expanduser("~")
    candidates = [(base, None)]
    if home not in ("~", "/", ""):
        candidates.append((Path(home), "~"))
    for folder, prefix in candidates:
        for a, b in ((p, folder), (p, _resolved(folder)), (_resolved(p), _resolved(folder))):
            if a.is_relative_to(b):
                rel = a.relative_to(b)
                if prefix is None:
                    return str(rel)
                return prefix if rel == Path(".") else f"{prefix}{os.sep}{rel}"
    return str(p)


def _resolved(p: Path) -> Path:
    """``p`` with symbolic links resolved where it exists (``p`` itself if resolving fails)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p
