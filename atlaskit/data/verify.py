"""Content checks of the data cache that the registry (:mod:`atlaskit.data.registry`) relies on.

- :func:`verified_in_process`: a cached file is re-hashed (sha256) the first time a process uses
  it, whatever stamp says it was verified before: an edit that restores the file's mtime, or
  silent disk corruption, is caught by the next run. Within a process the result is remembered
  by path and ``stat`` (size, mtime, inode and ctime — ctime cannot be set back by a user), so
  a chapter that opens a file many times hashes it once.
- :func:`bounded_download`: the bytes of a download are counted as they arrive and the transfer
  stops as soon as they exceed the registered size, instead of filling the disk for a server
  that keeps sending.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from atlaskit.errors import FetchError

__all__ = ["file_sha256", "verified_in_process", "forget", "bounded_download", "DownloadTooLarge"]

_CHUNK = 1 << 20
_VERIFIED: dict[tuple, str] = {}  # (path, size, mtime_ns, ino, ctime_ns) -> sha256 (hex)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def verified_in_process(path: str | os.PathLike, size: int, sha256: str) -> bool:
    """Whether the file at ``path`` holds ``size`` bytes with this ``sha256``, hashed by content
    the first time this process asks (and again whenever its ``stat`` changes).

    Parameters
    ----------
    path : path-like
    size : int
        The registered size: a file of another size is refused without hashing.
    sha256 : str
        The registered hex digest.

    Returns
    -------
    bool
        False also when the file is missing.
    """
    path = Path(path)
    try:
        key = _stat_key(path)
    except OSError:
        return False
    if key[1] != size:
        return False
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key] == sha256


def forget(path: str | os.PathLike | None = None) -> None:
    """Drop remembered hashes (of ``path``, or all): the next check hashes again."""
    if path is None:
        _VERIFIED.clear()
        return
    name = str(Path(path))
    for key in [k for k in _VERIFIED if k[0] == name]:
        del _VERIFIED[key]


class DownloadTooLarge(FetchError):
    """The server sent more bytes than the registry says the file has."""


def bounded_download(chunks: Iterable[bytes], *, limit: int | None, offset: int, announced: int | None,
                     out: BinaryIO, part: Path, name: str, url: str) -> Iterator[bytes]:
    """Yield the chunks of a download while ``offset`` + the bytes so far stay within ``limit``.

    Parameters
    ----------
    chunks : iterable of bytes
        The response body.
    limit : int or None
        The registered size of the file being written; None: unknown, no bound.
    offset : int
        Bytes already in ``part`` (a resumed download).
    announced : int or None
        The response's Content-Length: a body announced too long is refused before any byte is read.
    out : file
        The open ``part`` file: emptied when the limit is crossed.
    part : Path
        The partial download, deleted when the limit is crossed (it cannot be the registered file).
    name, url : str
        For the message.

    Raises
    ------
    DownloadTooLarge
        More than ``limit`` bytes; the message names the file, the URL and the sizes.
    """
    def refuse(got: str) -> DownloadTooLarge:
        with contextlib.suppress(OSError):
            out.seek(0)
            out.truncate()
        with contextlib.suppress(OSError):
            part.unlink()
        return DownloadTooLarge(
            f"refusing the download of {name} from {url}: the server {got}, more than the {limit} bytes "
            f"registered for it; the partial download was deleted. The source may have changed: check "
            f"the URL, or update the registry entry (size and sha256) if the new file is right.")

    if limit is None:
        yield from chunks
        return
    if announced is not None and offset + announced > limit:
        raise refuse(f"announced {offset + announced} bytes")
    total = offset
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise refuse(f"sent at least {total} bytes")
        yield chunk
