"""Safe extraction of archives that users give us (zip and tar, compressed or not).

An archive is untrusted input: its member names, types and sizes are chosen by whoever made it.
:func:`safe_extract` refuses, before writing anything,

* absolute member names (``/etc/x``, ``C:\\x``), names with a ``..`` component, and any name whose
  resolved path would fall outside the destination;
* symbolic and hard links (of any target: refusing them all is simpler than proving a target
  harmless), device files, fifos and other special members;
* archives that declare more than ``max_members`` members or more than ``max_bytes`` bytes of
  uncompressed content, or more than ``max_ratio`` times the archive's own size (zip/tar bombs);
  while writing, bytes are counted again, so a member that yields more than it declared is
  refused as well;
* archives whose declared content does not fit in the free space of the destination's disk.

Files are written by this module (``tarfile``/``zipfile`` only read), into a hidden temporary
sibling of the destination that is renamed into place at the end: a refused member, a truncated
archive, a full disk or a Ctrl-C leaves no destination folder at all. (tarfile's ``filter="data"``
is therefore not used: no tarfile extraction code runs; the checks here are a superset of it.)
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from atlaskit.errors import DataError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_RATIO", "safe_extract", "archive_kind"]

DEFAULT_MAX_BYTES = 64 * 1024**3  # 64 GiB: above any data set of the book, far below a bomb's
DEFAULT_MAX_MEMBERS = 1_000_000
#: Largest accepted ratio of uncompressed content to archive size. Image data sets (PNG, TIFF,
#: JPEG: compressed already) unpack at about 1:1 and text tables at 3-20:1, while a bomb needs
#: ratios of thousands to millions; 100:1 is also Apache POI's limit for zip-based documents.
#: Archives below :data:`RATIO_FLOOR` of content are not held to it (a tiny file of repeats).
DEFAULT_MAX_RATIO = 100.0
RATIO_FLOOR = 1 << 20
_CHUNK = 1 << 20

_TAR_SUFFIXES = {
    ".tar": "tar", ".tar.gz": "tar", ".tgz": "tar", ".tar.bz2": "tar", ".tbz2": "tar", ".tbz": "tar",
    ".tar.xz": "tar", ".txz": "tar",
}
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def archive_kind(archive: str | os.PathLike) -> str:
    """``"zip"`` or ``"tar"``: from the file name's suffix, else from the content.

    Raises
    ------
    DataError
        The file is missing or is neither a zip nor a (compressed) tar archive.
    """
    path = Path(archive)
    if not path.is_file():
        raise DataError(f"{path}: no such archive file")
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    for suffix, kind in _TAR_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError as exc:
        raise DataError(f"{path}: cannot read archive ({exc})") from None
    raise DataError(f"{path}: not an archive (supported: .zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz)")


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    max_members: int
    max_ratio: float | None
    archive_size: int
    check_space: bool

    @property
    def ratio_bytes(self) -> float:
        """Most uncompressed bytes the ratio limit allows."""
        if self.max_ratio is None:
            return float("inf")
        return max(self.max_ratio * self.archive_size, RATIO_FLOOR)


def safe_extract(archive: str | os.PathLike, destination: str | os.PathLike, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_members: int = DEFAULT_MAX_MEMBERS,
                 max_ratio: float | None = DEFAULT_MAX_RATIO, check_space: bool = True) -> list[PurePosixPath]:
    """Extract a zip or tar archive into ``destination`` without trusting its content.

    Parameters
    ----------
    archive : path-like
        ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2`` or ``.tar.xz`` (other names are
        recognised by their content).
    destination : path-like
        Folder to create. It must not exist, or be an empty folder.
    max_bytes : int
        Largest total uncompressed size accepted (declared sizes, and bytes actually written).
    max_members : int
        Largest number of members (files and folders) accepted.
    max_ratio : float or None
        Largest ratio of total uncompressed size to the archive's size (:data:`DEFAULT_MAX_RATIO`;
        not applied below :data:`RATIO_FLOOR` bytes of content); None: no ratio limit.
    check_space : bool
        Refuse, before writing, an archive whose declared content exceeds the free space of the
        destination's disk.

    Returns
    -------
    list of PurePosixPath
        The extracted files (not folders), relative to ``destination``, in archive order.

    Raises
    ------
    DataError
        Not an archive, truncated or corrupt archive, a refused member (the message names the
        archive and the member), or content over a limit or the free space; ``destination`` is then
        left as it was (absent, or empty).
    """
    archive = Path(archive)
    destination = Path(destination)
    kind = archive_kind(archive)
    if max_ratio is not None and not (max_ratio > 0):
        raise DataError(f"max_ratio must be a positive number or None, not {max_ratio!r}")
    limits = _Limits(int(max_bytes), int(max_members), None if max_ratio is None else float(max_ratio),
                     archive.stat().st_size, bool(check_space))
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise DataError(f"{destination}: already exists and is not an empty folder; choose a new "
                        f"destination for {archive.name}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    from atlaskit.data.store import tmp_sibling  # same temporary-name convention as stores

    tmp = tmp_sibling(destination)
    tmp.mkdir()
    try:
        extract = _extract_zip if kind == "zip" else _extract_tar
        files = extract(archive, tmp, limits)
        # os.rename replaces an empty folder atomically; a non-empty one (created meanwhile) fails.
        os.rename(tmp, destination)
    except BaseException as exc:  # a refusal, a library error or Ctrl-C: leave nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, DataError):
            raise
        if isinstance(exc, (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
                            OSError, RuntimeError, ValueError, NotImplementedError)):
            raise DataError(f"{archive}: cannot extract ({type(exc).__name__}: {exc}); the archive may "
                            f"be truncated or corrupt. Nothing was written to {destination}.") from None
        raise
    return files


# --------------------------------------------------------------------------------------------------
# Checks shared by both formats


def _safe_relative(archive: Path, name: str, root: Path) -> PurePosixPath:
    """The member's path relative to ``root``, or DataError when it could land elsewhere."""
    def refuse(why: str) -> DataError:
        return DataError(f"{archive}: refusing member {name!r}: {why}. Nothing was extracted.")

    if "\x00" in name:
        raise refuse("its name contains a NUL byte")
    # Backslashes are separators for Windows tools: judge '..\\x' and 'C:\\x' as they would.
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE_RE.match(text):
        raise refuse("absolute path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' component (path traversal)")
    if not parts:
        raise refuse("empty name")
    relative = PurePosixPath(*parts)
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):  # belt and braces: no link is ever created
        raise refuse(f"resolves outside the destination ({target})")
    return relative


def _check_totals(archive: Path, name: str, count: int, total: int, limits: _Limits) -> None:
    max_bytes, max_members = limits.max_bytes, limits.max_members
    if count > max_members:
        raise DataError(f"{archive}: more than {max_members} members (at {name!r}); refusing a possible "
                        f"archive bomb (raise max_members if the archive is trusted). Nothing was extracted.")
    if total > max_bytes:
        raise DataError(f"{archive}: members up to {name!r} declare {total} bytes uncompressed, more than "
                        f"the limit of {max_bytes}; refusing a possible archive bomb (raise max_bytes if "
                        f"the archive is trusted). Nothing was extracted.")
    if total > limits.ratio_bytes:
        raise DataError(f"{archive}: members up to {name!r} declare {total} bytes uncompressed, more than "
                        f"{limits.max_ratio:g} times the archive's {limits.archive_size} bytes; refusing a "
                        f"possible archive bomb (raise the ratio limit, --max-ratio, if the archive is "
                        f"trusted). Nothing was extracted.")


def _check_space(archive: Path, root: Path, total: int, limits: _Limits) -> None:
    """Refuse content that cannot fit on the destination's disk, before writing any of it."""
    if not limits.check_space:
        return
    free = shutil.disk_usage(root).free
    if total > free:
        raise DataError(f"{archive}: its members need {total} bytes but only {free} are free on the disk of "
                        f"{root.parent}; free space or choose another destination (or skip this check, "
                        f"--skip-space-check, if the free space is misreported). Nothing was extracted.")


class _Layout:
    """The files and folders the members declared so far: a file and a folder may not share a path
    (``a`` then ``a/b``, or ``a/b`` then ``a``), which would otherwise fail halfway through writing."""

    def __init__(self, archive: Path) -> None:
        self.archive, self.files, self.dirs = archive, {}, {}

    def add(self, name: str, relative: PurePosixPath, is_dir: bool) -> None:
        def clash(other: str) -> DataError:
            return DataError(f"{self.archive}: member {name!r} clashes with member {other!r}: one path cannot "
                             f"be both a file and a folder. Nothing was extracted.")

        for parent in relative.parents:
            if parent in self.files:
                raise clash(self.files[parent])
        if is_dir:
            if relative in self.files:
                raise clash(self.files[relative])
        else:
            if relative in self.dirs:
                raise clash(self.dirs[relative])
            if relative in self.files:
                raise DataError(f"{self.archive}: member {name!r} appears twice. Nothing was extracted.")
            self.files[relative] = name
        for parent in ([relative] if is_dir else []) + list(relative.parents)[:-1]:
            self.dirs.setdefault(parent, name)


def _write(archive: Path, name: str, source, target: Path, declared: int, budget: int) -> int:
    """Copy ``source`` into a new file ``target``, refusing more bytes than declared or budgeted."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # 'x': a duplicate member never overwrites an earlier one
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            written += len(chunk)
            if written > declared or written > budget:
                raise DataError(f"{archive}: member {name!r} holds more bytes than it declares "
                                f"({declared}) or than the size limit allows; refusing it. "
                                f"Nothing was extracted.")
            out.write(chunk)
    return written


# --------------------------------------------------------------------------------------------------
# zip


def _zip_members(archive: Path, zf: zipfile.ZipFile, root: Path,
                 limits: _Limits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    members, layout, total = [], _Layout(archive), 0
    for count, info in enumerate(zf.infolist(), start=1):
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise DataError(f"{archive}: refusing member {info.filename!r}: symbolic link. Nothing was extracted.")
        if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise DataError(f"{archive}: refusing member {info.filename!r}: special file (device, fifo "
                            f"or socket). Nothing was extracted.")
        relative = _safe_relative(archive, info.filename, root)
        layout.add(info.filename, relative, info.is_dir())
        total += info.file_size
        _check_totals(archive, info.filename, count, total, limits)
        members.append((info, relative))
    _check_space(archive, root, total, limits)
    return members


def _extract_zip(archive: Path, root: Path, limits: _Limits) -> list[PurePosixPath]:
    files, budget = [], min(limits.max_bytes, limits.ratio_bytes)
    with zipfile.ZipFile(archive) as zf:
        for info, relative in _zip_members(archive, zf, root, limits):
            target = root / relative
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:  # zipfile checks each member's CRC-32 at its end
                budget -= _write(archive, info.filename, source, target, info.file_size, budget)
            files.append(relative)
    return files


# --------------------------------------------------------------------------------------------------
# tar


def _tar_members(archive: Path, tf: tarfile.TarFile, root: Path,
                 limits: _Limits) -> Iterator[tuple[tarfile.TarInfo, PurePosixPath]]:
    layout, total = _Layout(archive), 0
    # Iterating reads headers one by one, so a bomb is refused at the first member over a limit.
    for count, member in enumerate(tf, start=1):
        name = member.name
        if member.issym() or member.islnk():
            kind = "symbolic" if member.issym() else "hard"
            raise DataError(f"{archive}: refusing member {name!r}: {kind} link to {member.linkname!r} "
                            f"(links are never extracted). Nothing was extracted.")
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{archive}: refusing member {name!r}: special file (device, fifo or other "
                            f"non-regular type). Nothing was extracted.")
        relative = _safe_relative(archive, name, root)
        layout.add(name, relative, member.isdir())
        if member.isfile():
            total += member.size
        _check_totals(archive, name, count, total, limits)
        yield member, relative


def _extract_tar(archive: Path, root: Path, limits: _Limits) -> list[PurePosixPath]:
    # First pass: every header is checked before anything is written.
    with tarfile.open(archive, "r:*") as tf:
        checked = list(_tar_members(archive, tf, root, limits))
        _check_space(archive, root, sum(m.size for m, _ in checked if m.isfile()), limits)
        files, budget = [], min(limits.max_bytes, limits.ratio_bytes)
        for member, relative in checked:
            target = root / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            source = tf.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                raise DataError(f"{archive}: member {member.name!r} has no data. Nothing was extracted.")
            with source:
                written = _write(archive, member.name, source, target, member.size, budget)
            if written != member.size:  # tarfile raises on truncation; this is a second guard
                raise DataError(f"{archive}: member {member.name!r} is truncated ({written} of "
                                f"{member.size} bytes). Nothing was extracted.")
            budget -= written
            files.append(relative)
    return files
