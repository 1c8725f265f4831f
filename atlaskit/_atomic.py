"""Write a file under a unique temporary name and rename it into place; inter-process locks.

A reader never sees a half-written file (a crash, Ctrl-C or full disk leaves the old file or none),
and two processes writing the same path each write their own temporary file; the last rename wins
with a complete file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs):
    """Context manager yielding a file object whose content replaces ``path`` on success.

    Parameters
    ----------
    path : path
        The final file; its folder must exist.
    mode : {"wb", "w"}
        Binary or text.
    **open_kwargs
        Passed to :func:`open` (e.g. ``encoding``).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

LOCKS = ".locks"  #: sub-folder holding the lock files of :func:`file_lock`


def file_lock(folder: str | os.PathLike, name: str):
    """An inter-process lock ``<folder>/.locks/<name>.lock`` (``filelock``).

    It is an OS lock (``flock`` on POSIX, ``LockFileEx`` on Windows) that the kernel releases when
    its holder dies, even by SIGKILL, so a crashed writer never blocks the next one; the empty
    lock file stays behind, harmless.
    """
    import filelock

    path = Path(folder) / LOCKS / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(path)
