"""Registry of the external data files that atlaskit reads.

Every file is known by a name (its path relative to a mirror root, e.g.
``"opencell/annotations-flat.csv"``), a public source URL, and the sha256 and size of its final
bytes. :func:`fetch` returns a local path to a verified copy, looking in this order:

1. the cache folder (``$ATLASKIT_CACHE``, by default the user cache folder of ``atlaskit``);
2. each folder of ``$ATLASKIT_MIRROR`` (an ``os.pathsep``-separated list), read in place;
3. the public source, downloaded (resumably) into the cache, transformed where the registered file
   is not the downloaded one (decompressed, taken out of an archive, converted), then verified.

Writes into the cache are atomic (temporary name, then rename) and, per entry, serialised between
processes by a file lock in ``<cache>/.locks/``: processes sharing a cache folder download or copy
each file once, and an interruption (Ctrl-C, a crash) never leaves a file at its final name.

The manifest, ``registry.json`` beside this module, holds only metadata; it is regenerated from a
mirror folder by the maintainer script ``_make_registry.py``.

Some entries are fetched *on request* only (``Entry.on_request``: large model weights such as
ESM2's): they are fetched, cached, mirrored and verified like every other file when named
(``fetch(name)``, ``atlaskit data fetch <name>``), but :func:`entries`, :func:`groups`,
:func:`status` and ``atlaskit data fetch --all`` leave them out unless asked
(``on_request=True``), so that no default run or prefetch downloads them.

Examples
--------
>>> from atlaskit.data import registry
>>> path = registry.fetch("opencell/annotations-flat.csv")      # doctest: +SKIP
>>> folder = registry.fetch_group("hpa/kaggle2018-sample")       # doctest: +SKIP
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import json
import lzma
import os
import re
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import requests

from atlaskit._atomic import LOCKS as _LOCKS  # cache sub-folder of the per-entry lock files
from atlaskit._atomic import atomic_write, file_lock
from atlaskit.data.verify import bounded_download, file_sha256, verified_in_process
from atlaskit.errors import DataError, FetchError

__all__ = [
    "Entry", "Registry", "RegistryWarning", "cache_dir", "default_registry", "entries", "fetch",
    "fetch_group", "groups", "load_manifest", "mirror_dirs", "sha256sum", "status",
]

MANIFEST_PATH = Path(__file__).with_name("registry.json")

ENV_CACHE = "ATLASKIT_CACHE"
ENV_MIRROR = "ATLASKIT_MIRROR"
ENV_NO_PROGRESS = "ATLASKIT_NO_PROGRESS"
ENV_ALLOW_HTTP_HOSTS = "ATLASKIT_ALLOW_HTTP_HOSTS"

_CHUNK = 1 << 20
# Small network reads: when a connection drops, urllib3 discards the chunk being filled, so the
# chunk size bounds what an interruption loses (and what a resumed download must fetch again).
_NET_CHUNK = 1 << 16
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_STAMPS = ".stamps"  # cache sub-folder of verification stamps, kept apart from the data files


class RegistryWarning(UserWarning):
    """A local copy of a registered file was ignored or replaced (corrupt cache, mismatching mirror)."""


# --------------------------------------------------------------------------------------------------
# Entries


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered file.

    Attributes
    ----------
    name : str
        Path relative to a mirror root or to the cache folder, with ``/`` separators.
    url : str
        Public source. What it serves may differ from the registered bytes, see ``transform``.
    sha256, size : str, int
        Checksum and size of the final file (after the transform).
    licence, description : str
        Licence of the data and a one-line description.
    group : str
        Folder holding the file (a prefix of ``name``); :func:`fetch_group` fetches a whole group.
    transform : str or None
        How the downloaded file becomes the registered one: ``None`` (identical), ``"xz"``
        (decompress), ``"zip-member:<member>"`` (one member of a zip archive, e.g. a wheel) or
        ``"torch-dict-to-fasta:<table>"`` (a ``torch.save``-d dict gene -> sequence written as FASTA,
        with UniProt ids from the registered CSV ``<table>``).
    on_request : bool
        Fetched only when named (large model weights): left out of :meth:`Registry.entries`,
        :meth:`Registry.groups`, :meth:`Registry.status` and ``atlaskit data fetch --all`` unless
        they are called with ``on_request=True``.
    """

    name: str
    url: str
    sha256: str
    size: int
    licence: str
    description: str
    group: str
    transform: str | None = None
    on_request: bool = False

    def __post_init__(self) -> None:
        problems = _entry_problems(self)
        if problems:
            raise DataError(f"registry entry {self.name!r}: " + "; ".join(problems))

    @property
    def transform_kind(self) -> str | None:
        """The transform's name without its argument (``"zip-member"``), or None."""
        return None if self.transform is None else self.transform.split(":", 1)[0]

    @property
    def transform_arg(self) -> str | None:
        """The transform's argument (a member path, a table name), or None."""
        if self.transform is None or ":" not in self.transform:
            return None
        return self.transform.split(":", 1)[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping) -> "Entry":
        unknown = set(record) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise DataError(f"registry entry {record.get('name')!r}: unknown fields {sorted(unknown)}")
        return cls(**record)


def _entry_problems(entry: Entry) -> list[str]:
    """Reasons why ``entry`` is unusable (empty when it is fine)."""
    problems = []
    path = PurePosixPath(entry.name)
    # Names become paths under the cache: refuse anything that could escape it.
    if not entry.name or path.is_absolute() or ".." in path.parts or "\\" in entry.name:
        problems.append("name must be a relative path with '/' separators and no '..'")
    if not _SHA256_RE.fullmatch(entry.sha256):
        problems.append("sha256 must be 64 lowercase hex digits")
    if not isinstance(entry.size, int) or entry.size < 0:
        problems.append("size must be a non-negative integer")
    if urlsplit(entry.url).scheme not in ("http", "https"):
        problems.append("url must be an http(s) URL")
    if not isinstance(entry.on_request, bool):
        problems.append("on_request must be true or false")
    if not entry.name.startswith(entry.group + "/"):
        problems.append(f"group {entry.group!r} is not a folder holding the file")
    if entry.transform is not None and entry.transform_kind not in _TRANSFORMS:
        problems.append(f"unknown transform {entry.transform!r} (known: {sorted(_TRANSFORMS)})")
    elif entry.transform_kind in _TRANSFORMS_NEEDING_ARG and not entry.transform_arg:
        problems.append(f"transform {entry.transform_kind!r} needs an argument after ':'")
    elif entry.transform_kind == "zip-member" and not _is_plain_member(entry.transform_arg):
        # Only that member's bytes are ever read (into the cache file), never extracted under its
        # own name; still, a traversal-looking name in a manifest is a sign of a forged entry.
        problems.append("zip-member name must be a relative path with '/' separators and no '..'")
    return problems


def _is_plain_member(member: str) -> bool:
    path = PurePosixPath(member)
    return not (path.is_absolute() or ".." in path.parts or "\\" in member or member.endswith("/")
                or re.match(r"^[A-Za-z]:", member))


def load_manifest(path: str | os.PathLike | None = None) -> list[Entry]:
    """Read a manifest (by default the package's ``registry.json``) into entries.

    Raises
    ------
    DataError
        If the file is not a valid manifest.
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["files"]
        return [Entry.from_dict(r) for r in records]
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a valid data registry manifest ({exc})") from exc


# --------------------------------------------------------------------------------------------------
# Checksums


#: Hex sha256 of a file, read in 1 MiB chunks (one implementation: :func:`atlaskit.data.verify.file_sha256`).
sha256sum = file_sha256


def _fingerprint(path: Path) -> tuple:
    """What changes when a file is rewritten: cheap to read, used to skip re-hashing."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


# Hashes computed in this process, keyed by path and fingerprint: checking a 200-file mirror group
# twice costs one hash per file. (Mirrors are read-only, so no stamp can be written beside them.)
_HASH_MEMO: dict[tuple[str, tuple], str] = {}


def _memo_sha256(path: Path) -> str:
    key = (str(path), _fingerprint(path))
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256sum(path)
    return _HASH_MEMO[key]


# --------------------------------------------------------------------------------------------------
# Transforms: (downloaded file, destination, argument, registry) -> None


def _unxz(src: Path, dst: Path, arg: str | None, registry: "Registry") -> None:
    with lzma.open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)


def _zip_member(src: Path, dst: Path, member: str | None, registry: "Registry") -> None:
    with zipfile.ZipFile(src) as archive, archive.open(member) as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)


def _torch_dict_to_fasta(src: Path, dst: Path, table: str | None, registry: "Registry") -> None:
    import torch  # heavy: imported only for this one conversion

    # weights_only=True refuses arbitrary pickled objects: the file holds a plain dict of strings.
    sequences = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(sequences, dict):
        raise DataError(f"{src}: expected a dict gene -> sequence, found {type(sequences).__name__}")
    with open(registry.fetch(table, progress=False), newline="", encoding="utf-8") as f:
        uniprot = {row["gene_name"]: row["uniprot_id"] for row in csv.DictReader(f)}
    missing = [gene for gene in sequences if gene not in uniprot]
    if missing:
        raise DataError(f"{table}: no uniprot_id for genes {missing[:5]} of {src.name}")
    with open(dst, "w", encoding="ascii", newline="\n") as out:
        for gene, sequence in sequences.items():  # the dict's order (that of the OpenCell library)
            out.write(f">{gene} uniprot={uniprot[gene]}\n")
            for start in range(0, len(sequence), 60):
                out.write(sequence[start:start + 60] + "\n")


_TRANSFORMS: dict[str, Callable[[Path, Path, str | None, "Registry"], None]] = {
    "xz": _unxz,
    "zip-member": _zip_member,
    "torch-dict-to-fasta": _torch_dict_to_fasta,
}
_TRANSFORMS_NEEDING_ARG = {"zip-member", "torch-dict-to-fasta"}


# --------------------------------------------------------------------------------------------------
# The registry


class _Interrupted(Exception):
    """The server closed the connection before sending the whole body."""


class _ChecksumMismatch(FetchError):
    """The downloaded (and transformed) file is not the registered one."""


class Registry:
    """A set of registered files with the folders where they are looked up.

    Parameters
    ----------
    entries : iterable of Entry
        The registered files.
    cache : path, optional
        Cache folder; by default ``$ATLASKIT_CACHE``, else the user cache folder of ``atlaskit``
        (read at each call, so a change of the environment takes effect).
    mirrors : iterable of paths, optional
        Read-only mirror folders; by default the ``os.pathsep``-separated ``$ATLASKIT_MIRROR``.
    allow_http_hosts : iterable of str, optional
        Hosts that may be downloaded from over plain http (for tests with a local server); by
        default the comma-separated ``$ATLASKIT_ALLOW_HTTP_HOSTS``. Everything else needs https.
    retries : int
        How many times an interrupted download is resumed within one call. A download that makes
        no progress (no network, server down) is not retried.
    timeout : float or (float, float)
        ``requests`` timeout (connect, read) in seconds.
    """

    def __init__(self, entries: Iterable[Entry], *, cache: str | os.PathLike | None = None,
                 mirrors: Iterable[str | os.PathLike] | None = None,
                 allow_http_hosts: Iterable[str] | None = None, retries: int = 3,
                 timeout: float | tuple[float, float] = (15, 60)) -> None:
        self._entries = {e.name: e for e in entries}
        self._cache = None if cache is None else Path(cache).expanduser()
        self._mirrors = None if mirrors is None else [Path(m).expanduser() for m in mirrors]
        self._allow_http = None if allow_http_hosts is None else set(allow_http_hosts)
        self.retries = retries
        self.timeout = timeout

    # ---- what is registered

    def entries(self, *, on_request: bool = False) -> dict[str, Entry]:
        """The entries fetched by default, by name; ``on_request=True``: also the on-request ones."""
        return {n: e for n, e in self._entries.items() if on_request or not e.on_request}

    def entry(self, name: str) -> Entry:
        """The entry called ``name``.

        Raises
        ------
        FetchError
            If no file has that name; the message suggests close names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise FetchError(_unknown("file", name, self._entries)) from None

    def groups(self, *, on_request: bool = False) -> list[str]:
        """The groups (folders) of the registered files, sorted (see :meth:`entries`)."""
        return sorted({e.group for e in self.entries(on_request=on_request).values()})

    def members(self, group: str) -> list[Entry]:
        """Entries of the files under the folder ``group`` (sub-folders included), sorted by name."""
        group = group.rstrip("/")
        found = [e for n, e in sorted(self._entries.items()) if n.startswith(group + "/")]
        if not found:
            raise FetchError(_unknown("group", group, self.groups()))
        return found

    # ---- where files are looked up

    def cache_dir(self) -> Path:
        """The cache folder (it may not exist yet)."""
        if self._cache is not None:
            return self._cache
        if os.environ.get(ENV_CACHE):
            return Path(os.environ[ENV_CACHE]).expanduser()
        import platformdirs

        return Path(platformdirs.user_cache_dir("atlaskit"))

    def mirror_dirs(self) -> list[Path]:
        """The mirror folders, in lookup order (as configured: they may not exist)."""
        if self._mirrors is not None:
            return list(self._mirrors)
        value = os.environ.get(ENV_MIRROR, "")
        return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]

    def _http_allowed(self, host: str | None) -> bool:
        hosts = self._allow_http
        if hosts is None:
            hosts = {h.strip() for h in os.environ.get(ENV_ALLOW_HTTP_HOSTS, "").split(",") if h.strip()}
        return host in hosts

    # ---- public operations

    def fetch(self, name: str, *, progress: bool = True, fill_cache: bool = False) -> Path:
        """Return the path of a verified local copy of the registered file ``name``.

        Parameters
        ----------
        name : str
            Registered name, e.g. ``"opencell/annotations-flat.csv"``.
        progress : bool
            Show a progress bar while downloading (never shown when stderr is not a terminal or
            ``$ATLASKIT_NO_PROGRESS`` is set).
        fill_cache : bool
            Copy a file found in a mirror into the cache too (verified, atomically), so that the
            cache folder alone holds every fetched file — e.g. to copy it to workshop laptops.

        Returns
        -------
        pathlib.Path
            A file in the cache or in a mirror folder (mirror files are not copied). Treat it as
            read-only.

        Raises
        ------
        FetchError
            Unknown name, no network and no mirror holding the file, HTTP error, or a download
            whose sha256 does not match the registry.
        """
        entry = self.entry(name)
        cached = self._from_cache(entry, remove_corrupt=False)
        if cached:
            return cached
        if (self.cache_dir() / entry.name).is_file():  # there but corrupt: removed (under the lock,
            with self._lock(entry):                    # with a warning) whichever source serves it now
                self._from_cache(entry)
        mirrored = self._from_mirrors(entry)
        if mirrored and not fill_cache:
            return mirrored
        return self._fill(entry, mirrored, progress)

    def fetch_group(self, group: str, *, progress: bool = True) -> Path:
        """Return a folder holding verified copies of every file of ``group``.

        The folder is ``<mirror>/<group>`` when one mirror holds all of them, else
        ``<cache>/<group>`` after fetching the missing ones (files found in a mirror are copied).
        """
        members = self.members(group)
        group = group.rstrip("/")
        for mirror in self.mirror_dirs():
            # quiet=True: a mismatch is reported once, by _from_mirrors below.
            if all(self._valid_copy(mirror / e.name, e, quiet=True) for e in members):
                return mirror / group
        for entry in members:
            if self._from_cache(entry, remove_corrupt=False):
                continue
            self._fill(entry, self._from_mirrors(entry), progress)
        return self.cache_dir() / group

    def status(self, *, on_request: bool = False):
        """Where each registered file is found now (on-request files only with ``on_request=True``).

        Returns
        -------
        pandas.DataFrame
            Columns ``name``, ``group``, ``size``, ``where`` (``"cache"``, ``"mirror"`` or
            ``"missing"``) and ``path`` (empty when missing); files are verified (hashes are
            remembered, so a second call is cheap).
        """
        import pandas as pd

        rows = []
        for name, entry in sorted(self.entries(on_request=on_request).items()):
            path, where = self._from_cache(entry, remove_corrupt=False), "cache"
            if path is None:
                path, where = self._from_mirrors(entry), "mirror"
            if path is None:
                where = "missing"
            rows.append({"name": name, "group": entry.group, "size": entry.size, "where": where,
                         "path": "" if path is None else str(path)})
        return pd.DataFrame(rows, columns=["name", "group", "size", "where", "path"])

    # ---- filling the cache, one process at a time per entry

    def _lock(self, entry: Entry):
        """An inter-process lock for writing ``entry`` into the cache.

        Two processes (workshop laptops sharing a cache folder, DataLoader workers) filling the
        same entry would otherwise append to the same ``.part`` file. The lock is an OS lock
        (``flock`` on POSIX, ``LockFileEx`` on Windows) that the kernel releases when its holder
        dies, even by SIGKILL, so a crashed download never blocks the next one; the lock file
        itself stays behind, empty and harmless.
        """
        return file_lock(self.cache_dir(), entry.name)

    def _fill(self, entry: Entry, mirrored: Path | None, progress: bool) -> Path:
        """Put a verified copy of ``entry`` into the cache (from ``mirrored``, else downloaded)."""
        with self._lock(entry):
            # Checked again under the lock: the process we waited for has usually filled it, and
            # a corrupt file is only removed by the lock holder (never one being replaced).
            cached = self._from_cache(entry)
            if cached:
                return cached
            if mirrored is not None:
                return self._copy_into_cache(mirrored, entry)
            return self._download(entry, progress)

    # ---- lookups

    def _valid_copy(self, path: Path, entry: Entry, *, quiet: bool = False) -> bool:
        """Whether ``path`` holds the registered bytes (size first: a cheap way to say no)."""
        if not path.is_file():
            return False
        if path.stat().st_size == entry.size and _memo_sha256(path) == entry.sha256:
            return True
        if not quiet:
            warnings.warn(f"ignoring {path}: it does not match the registry's sha256 of {entry.name} "
                          f"({entry.sha256})", RegistryWarning, stacklevel=4)
        return False

    def _from_mirrors(self, entry: Entry) -> Path | None:
        for mirror in self.mirror_dirs():
            if self._valid_copy(mirror / entry.name, entry):
                return mirror / entry.name
        return None

    def _stamp_path(self, entry: Entry) -> Path:
        return self.cache_dir() / _STAMPS / f"{entry.name}.json"

    def _from_cache(self, entry: Entry, *, remove_corrupt: bool = True) -> Path | None:
        """The cached file if it is verified; a corrupt one is removed (and then fetched again)."""
        path = self.cache_dir() / entry.name
        if not path.is_file():
            return None
        # By content, once per process (a stamp alone would trust an edit that restored the mtime).
        if verified_in_process(path, entry.size, entry.sha256):
            if not self._stamp_matches(path, entry):
                self._write_stamp(path, entry)
            return path
        if not remove_corrupt:
            return None
        warnings.warn(f"removing corrupt cached file {path}: its sha256 does not match the registry "
                      f"({entry.sha256}); it will be fetched again", RegistryWarning, stacklevel=4)
        path.unlink()
        self._stamp_path(entry).unlink(missing_ok=True)
        return None

    def _stamp_matches(self, path: Path, entry: Entry) -> bool:
        """A stamp records a successful check, so unchanged files are not hashed on every call."""
        try:
            stamp = json.loads(self._stamp_path(entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return stamp == {"sha256": entry.sha256, "fingerprint": list(_fingerprint(path))}

    def _write_stamp(self, path: Path, entry: Entry) -> None:
        stamp = self._stamp_path(entry)
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(stamp, json.dumps({"sha256": entry.sha256,
                                                  "fingerprint": list(_fingerprint(path))}))
        except OSError:
            pass  # a stamp only saves time: without one the file is hashed again next time

    def _copy_into_cache(self, source: Path, entry: Entry) -> Path:
        target = self.cache_dir() / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name: two processes filling one cache never write the same file.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._write_stamp(target, entry)
        return target

    # ---- downloads

    def _download(self, entry: Entry, progress: bool) -> Path:
        """Download ``entry`` into the cache, transform and verify it, then move it into place."""
        self._check_url(entry.url, entry)
        target = self.cache_dir() / entry.name
        part = target.with_name(target.name + ".part")
        resumed = self._download_raw(entry, part, progress)
        try:
            return self._finish(entry, part, target)
        except _ChecksumMismatch:
            if not resumed:
                raise
            # The .part we resumed may have come from an older source: try once from scratch.
            self._download_raw(entry, part, progress)
            return self._finish(entry, part, target)

    def _finish(self, entry: Entry, part: Path, target: Path) -> Path:
        """Transform (if needed) and verify the downloaded ``part``; move it to ``target``."""
        result = part
        if entry.transform is not None:
            result = target.with_name(target.name + ".tmp")
            try:
                _TRANSFORMS[entry.transform_kind](part, result, entry.transform_arg, self)
            except FetchError:
                result.unlink(missing_ok=True)
                raise
            except Exception as exc:  # any failure here means the download is not what we expect
                part.unlink(missing_ok=True)
                result.unlink(missing_ok=True)
                raise FetchError(f"cannot apply transform {entry.transform!r} to the file downloaded "
                                 f"for {entry.name} from {entry.url}: {exc}") from exc
            part.unlink()
        actual = sha256sum(result)
        if actual != entry.sha256:
            size = result.stat().st_size
            part.unlink(missing_ok=True)
            result.unlink(missing_ok=True)
            raise _ChecksumMismatch(
                f"checksum mismatch for {entry.name} downloaded from {entry.url}: expected sha256 "
                f"{entry.sha256} ({entry.size} bytes), got {actual} ({size} bytes). The file was "
                f"deleted; the source may have changed or the download was corrupted.")
        os.replace(result, target)  # atomic: readers never see a half-written file
        self._write_stamp(target, entry)
        return target

    def _check_url(self, url: str, entry: Entry) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and self._http_allowed(parts.hostname)):
            return
        raise FetchError(f"refusing to download {entry.name} from {url}: only https URLs are used "
                         f"(plain http only for hosts listed in ${ENV_ALLOW_HTTP_HOSTS})")

    def _download_raw(self, entry: Entry, part: Path, progress: bool) -> bool:
        """Fill ``part`` with the source's bytes, resuming interrupted transfers.

        Returns whether any bytes came from before this call's first request or from a resumed
        request (so that a checksum mismatch can be retried from scratch once).
        """
        resumed = _size(part) > 0
        with requests.Session() as session:
            for attempt in range(self.retries + 1):
                before = _size(part)
                try:
                    self._transfer(session, entry, part, progress)
                    return resumed
                except (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError, _Interrupted) as exc:
                    # Retry only transfers that were cut off: a server we cannot reach at all
                    # (offline) will not become reachable in the next second.
                    if _size(part) <= before or attempt == self.retries:
                        raise self._network_error(entry, exc, _size(part)) from None
                    resumed = True
                except requests.RequestException as exc:
                    raise FetchError(f"cannot download {entry.name} from {entry.url}: {exc}") from None
        raise AssertionError("unreachable")

    def _transfer(self, session: requests.Session, entry: Entry, part: Path, progress: bool) -> None:
        """One HTTP request; appends to ``part`` when the server honours a Range request."""
        offset = _size(part)
        # identity: bytes on disk must be the bytes on the wire, or Range offsets would be wrong.
        headers = {"Accept-Encoding": "identity", "User-Agent": "atlaskit-data-registry"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with session.get(entry.url, headers=headers, stream=True, timeout=self.timeout) as response:
            self._check_url(response.url, entry)  # after redirects: no downgrade to plain http
            if offset and response.status_code == 416:
                # Our .part is at least as long as the file: it cannot be trusted, start over.
                part.unlink()
                return self._transfer(session, entry, part, progress)
            if response.status_code >= 400:
                raise FetchError(f"cannot download {entry.name}: HTTP {response.status_code} "
                                 f"{response.reason} from {entry.url}")
            if offset and not _continues_at(response, offset):
                offset = 0  # the server sent the whole file (200): restart rather than append
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            part.parent.mkdir(parents=True, exist_ok=True)
            limit = entry.size if entry.transform is None else None  # the bytes on the wire are the file's
            with open(part, "ab" if offset else "wb") as out, _progress_bar(
                    entry, progress, offset, None if expected is None else offset + expected) as bar:
                for chunk in bounded_download(response.iter_content(_NET_CHUNK), limit=limit, offset=offset,
                                              announced=expected, out=out, part=part, name=entry.name,
                                              url=entry.url):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received < expected:
                raise _Interrupted(f"received {received} of {expected} bytes")

    def _network_error(self, entry: Entry, exc: Exception, partial: int) -> FetchError:
        mirrors = self.mirror_dirs()
        where = (f"It is not in the mirror folder(s) {', '.join(map(str, mirrors))}. " if mirrors
                 else f"${ENV_MIRROR} is not set. ")
        if isinstance(exc, (requests.exceptions.ChunkedEncodingError, _Interrupted)):
            what = "the transfer was cut off"
        else:
            what = "the network or the server is unreachable"
        kept = (f"The {partial} bytes received so far are kept and the next attempt resumes. "
                if partial else "")
        return FetchError(
            f"cannot download {entry.name} from {entry.url} ({what}: {type(exc).__name__}). "
            f"{kept}{where}Set "
            f"{ENV_MIRROR} to a folder that holds {entry.name}, or run `atlaskit data fetch` where "
            f"a network exists and copy its cache folder to {self.cache_dir()}.")


# --------------------------------------------------------------------------------------------------
# Helpers


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _continues_at(response: requests.Response, offset: int) -> bool:
    """Whether ``response`` is a 206 whose body starts at byte ``offset``."""
    if response.status_code != 206:
        return False
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return bool(match) and int(match.group(1)) == offset


def _progress_bar(entry: Entry, progress: bool, initial: int, total: int | None):
    from tqdm import tqdm

    disable = not progress or bool(os.environ.get(ENV_NO_PROGRESS)) or not sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=PurePosixPath(entry.name).name, disable=disable, leave=False)


def _atomic_write_text(path: Path, text: str) -> None:
    # A unique temporary name: stamps are also written by readers, outside the entry's lock.
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"no registered data {kind} called {name!r}.{hint} (`atlaskit data list` lists them all.)"


# --------------------------------------------------------------------------------------------------
# Module-level interface: the default registry, built from registry.json


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of the package's manifest, with cache and mirrors taken from the environment."""
    return Registry(load_manifest())


def entries(*, on_request: bool = False) -> dict[str, Entry]:
    """The registered files fetched by default, by name (see :class:`Entry`); ``on_request=True``:
    also those fetched only when named (model weights)."""
    return default_registry().entries(on_request=on_request)


def groups(*, on_request: bool = False) -> list[str]:
    """The groups (folders) of the registered files (see :func:`entries`)."""
    return default_registry().groups(on_request=on_request)


def fetch(name: str, *, progress: bool = True, fill_cache: bool = False) -> Path:
    """Return the path of a verified local copy of the registered file ``name``.

    See :meth:`Registry.fetch`.
    """
    return default_registry().fetch(name, progress=progress, fill_cache=fill_cache)


def fetch_group(group: str, *, progress: bool = True) -> Path:
    """Return a folder holding verified copies of every file of ``group``.

    See :meth:`Registry.fetch_group`.
    """
    return default_registry().fetch_group(group, progress=progress)


def cache_dir() -> Path:
    """The cache folder: ``$ATLASKIT_CACHE``, else the user cache folder of ``atlaskit``."""
    return default_registry().cache_dir()


def mirror_dirs() -> list[Path]:
    """The mirror folders listed in ``$ATLASKIT_MIRROR`` (``os.pathsep``-separated)."""
    return default_registry().mirror_dirs()


def status(*, on_request: bool = False):
    """A DataFrame telling where each registered file is found now (see :meth:`Registry.status`)."""
    return default_registry().status(on_request=on_request)


FileKey = tuple[str, int, int]


def file_key(path: str | os.PathLike | None, name: str) -> FileKey:
    """Cache key of a table a catalog reads: the user's ``path``, or the registered file ``name``.

    Returns the resolved path, modification time (ns) and size, so that functions cached on this
    key re-read a file that changed on disk.
    """
    p = Path(fetch(name)) if path is None else Path(path)
    try:
        st = p.stat()
    except OSError:
        raise DataError(f"{p}: no such file") from None
    if not p.is_file():
        raise DataError(f"{p}: not a file")
    return str(p.resolve()), st.st_mtime_ns, st.st_size
