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


def check_writable_file(path: str | os.PathLike, what: str = "the output") -> Path:
    """Check, before any long work, that a file can later be written at ``path``; returns it.

    Writes and removes a probe file in the nearest existing folder of ``path`` (its folder, or
    the first existing one above it, where the writer would create the missing ones), creating
    nothing; so a read-only folder or file system, a full quota, a folder where the file should
    go, or a file where a folder should be fail at once with one line naming ``path``.

    Raises
    ------
    atlaskit.errors.AtlaskitError
        ``path`` cannot be written; the message says why.
    """
    from atlaskit.errors import AtlaskitError

    path = Path(path).expanduser()
    if path.is_dir():
        raise AtlaskitError(f"cannot write {what} to {path}: it is a folder (name the file to write)")
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():  # a regular file where a folder should be
        raise AtlaskitError(f"cannot write {what} to {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AtlaskitError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
    return path


def publish_file(src: str | os.PathLike, dest: str | os.PathLike, *, keep_in: list | tuple = (),
                 what: str = "the file") -> Path:
    """Copy ``src`` to ``dest`` atomically (a unique temporary file beside ``dest``, renamed into
    place); on failure keep a copy of ``src`` somewhere safe and say where.

    For results that took long to make (an executed chapter): a full disk, a read-only folder or
    a folder named like the file must not lose them. No partial temporary file is left behind.

    Parameters
    ----------
    src, dest : path
    keep_in : sequence of path
        Folders tried in turn for the rescue copy when ``dest`` cannot be written; then a new
        folder in the system temporary directory (not deleted afterwards).
    what : str
        Names the file in the message.

    Raises
    ------
    atlaskit.errors.AtlaskitError
        ``dest`` could not be written; the message names it, the reason and where the copy is kept
        (or why it could not be kept anywhere).
    """
    import shutil

    from atlaskit.errors import AtlaskitError

    src, dest = Path(src), Path(dest)
    try:
        if dest.is_dir():
            raise IsADirectoryError(21, "it is a folder (name the file to write)")
        with atomic_write(dest, "wb") as fh, open(src, "rb") as source:
            shutil.copyfileobj(source, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return dest
    except OSError as exc:
        reason = exc.strerror or str(exc)
    failures = []
    for folder in [*keep_in, None]:
        try:
            target = Path(tempfile.mkdtemp(prefix="atlaskit-kept-")) if folder is None else Path(folder)
            target.mkdir(parents=True, exist_ok=True)
            kept = target / dest.name
            if kept.resolve() == dest.resolve():
                continue
            with atomic_write(kept, "wb") as fh, open(src, "rb") as source:
                shutil.copyfileobj(source, fh)
            raise AtlaskitError(f"cannot write {what} to {dest}: {reason}; it is kept at {kept}")
        except OSError as exc:
            failures.append(f"{folder or 'the temporary directory'}: {exc.strerror or exc}")
    raise AtlaskitError(f"cannot write {what} to {dest}: {reason}; no copy could be kept either "
                        f"({'; '.join(failures)})")
