"""An on-disk, memory-mapped array store with a tidy metadata table.

One store is one folder::

    <path>/
      images.npy      (N, *shape_per_item) array in the standard .npy format, opened with
                      ``np.load(mmap_mode="r", allow_pickle=False)``: nothing is read until used
      metadata.csv    one row per item, in item order (protein id, label(s), split, cell line, ...)
      store.json      format, version, shape, dtype, item count, content key, parameters, attrs,
                      metadata column types
      COMPLETE        written last; a folder without it is never opened as a store

An OpenCell-scale set (1310 proteins x ~800 crops of 2 x 100 x 100 float32, about 80 GB; half with
float16 or uint16) is written batch by batch from a generator with plain file writes, so the
writer's memory stays flat whatever the size, and read back through the memory map.

Atomicity: a build writes into a hidden sibling folder ``.<name>.tmp-<pid>-<random>`` and
renames it to ``<name>`` only after everything (data, header, table, marker) is flushed, so an
interrupted build leaves nothing that reads as a valid store (stale temporary folders of dead
processes are removed by the next build of the same store).

Concurrency: :meth:`ArrayStore.build` holds an inter-process lock per store path
(``<parent>/.locks/<name>.lock``, an OS file lock that the kernel releases if its holder dies), so
two processes asking for the same store build it once: the second waits, then opens the first's.

Caching: every store records a content key, the SHA-256 of the canonical JSON of the parameters
that generated it (:func:`content_key`). :meth:`ArrayStore.build` reuses an existing store only if
it is complete and its key matches; otherwise it rebuilds it.

Metadata is CSV (pyarrow, hence parquet/feather, is not a dependency); column types are recorded
in ``store.json`` and restored on reading (``bool``, ``int``, ``float``, ``str``). Multi-valued
fields (e.g. HPA targets) are stored as space-separated strings.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import mmap as _mmap_module
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit._atomic import file_lock
from atlaskit.errors import DataError

__all__ = ["ArrayStore", "StoreWriter", "content_key", "store_path"]

FORMAT = "atlaskit-array-store"
VERSION = 1
IMAGES = "images.npy"
METADATA = "metadata.csv"
HEADER = "store.json"
COMPLETE = "COMPLETE"


# --------------------------------------------------------------------------- content key


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_jsonable(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return np.dtype(obj).str
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"parameter value {obj!r} of type {type(obj).__name__} has no canonical JSON form")


def content_key(params: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``params``.

    Keys are sorted, tuples become lists, numpy scalars/arrays/dtypes and paths are converted,
    so equal parameters always give the same key. Unsupported objects raise ``TypeError``.
    """
    text = json.dumps(_jsonable(params), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_path(root: str | os.PathLike, name: str, params: Mapping[str, Any]) -> Path:
    """A folder name for a cached store: ``root / f"{name}-{key[:12]}"``.

    Stores made from different parameters get different folders and can coexist.
    """
    return Path(root) / f"{name}-{content_key(params)[:12]}"


# --------------------------------------------------------------------------- .npy header


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], total_len: int | None = None) -> bytes:
    """A version-1.0 .npy header for ``shape``, padded with spaces to ``total_len`` bytes."""
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    text = repr(d).encode("latin1")
    prefix = np.lib.format.magic(1, 0)
    base = len(prefix) + 2 + len(text) + 1  # + uint16 length + newline
    if total_len is None:
        total_len = -(-base // 64) * 64
    if base > total_len or total_len - len(prefix) - 2 > 65535:
        raise ValueError("npy header does not fit the reserved space")
    text = text + b" " * (total_len - base) + b"\n"
    return prefix + np.uint16(len(text)).astype("<u2").tobytes() + text


def _kind(series: pd.Series) -> str:
    dt = series.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "bool"
    if pd.api.types.is_integer_dtype(dt):
        return "int"
    if pd.api.types.is_float_dtype(dt):
        return "float"
    return "str"


def _widen(old: str | None, new: str) -> str:
    """Column type able to hold both kinds (int + float -> float; bool + other -> str)."""
    if old is None or old == new:
        return new
    if {old, new} == {"int", "float"}:
        return "float"
    return "str"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(path: Path) -> None:
    """Remove ``.<name>.tmp-<pid>-*`` folders left by builds whose process is gone."""
    if not path.parent.is_dir():
        return
    for cand in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(cand.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(cand, ignore_errors=True)


def tmp_sibling(path: Path) -> Path:
    """A fresh name for a hidden temporary sibling of ``path``, to build in and rename into place.

    The name is ``.<name>.tmp-<pid>-<random>`` next to ``path``; siblings of that form left by
    processes that are gone (an interrupted build or extraction) are removed first. The folder
    itself is not created.

    Parameters
    ----------
    path : Path
        The final folder (a store, an extracted archive); its parent must exist to be cleaned.

    Returns
    -------
    Path
        ``path.parent / ".<name>.tmp-<pid>-<random>"``, unique to this process and call.
    """
    _remove_stale_tmp(path)
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _looks_like_store(path: Path) -> bool:
    return (path / HEADER).is_file() or (path / COMPLETE).exists() or (path / IMAGES).is_file()


def _build_lock(path: Path):
    """Inter-process lock of the store at ``path`` (flock/LockFileEx: freed when its holder dies)."""
    return file_lock(path.parent, path.name)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- writer


class StoreWriter:
    """Streams batches into a new store; obtain one from :meth:`ArrayStore.create`.

    Use it as a context manager: leaving the block normally finalises the store, an exception
    aborts it (the temporary folder is deleted and nothing appears at ``path``)::

        with ArrayStore.create(path, (2, 100, 100), "float16", metadata_columns=["protein"]) as w:
            for images, meta in batches:          # images (B, 2, 100, 100), meta: B rows
                w.append(images, meta)
        store = w.store
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape_per_item: Sequence[int],
        dtype: Any,
        *,
        n_items: int | None = None,
        metadata_columns: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        check_finite: bool = True,
    ):
        self.path = Path(path)
        self.shape_per_item = tuple(int(s) for s in shape_per_item)
        if any(s <= 0 for s in self.shape_per_item):
            raise ValueError(f"shape_per_item must be positive, got {self.shape_per_item}")
        self.dtype = np.dtype(dtype)
        if self.dtype.hasobject or self.dtype.kind not in "biuf":
            raise ValueError(f"dtype must be a numeric dtype, got {self.dtype}")
        if n_items is not None and int(n_items) < 0:
            raise ValueError(f"n_items must be >= 0, got {n_items}")
        self.n_items = None if n_items is None else int(n_items)
        self.metadata_columns = None if metadata_columns is None else [str(c) for c in metadata_columns]
        self.params = dict(params or {})
        self.key = content_key(self.params)
        self.attrs = _jsonable(dict(attrs or {}))
        self.overwrite = overwrite
        self.check_finite = check_finite
        self.n_written = 0
        self.store: ArrayStore | None = None
        self._kinds: dict[str, str] = {}
        self._closed = False

        if self.path.exists() and not overwrite:
            raise DataError(f"{self.path}: already exists (pass overwrite=True to replace it)")
        if self.path.exists() and not (_looks_like_store(self.path) or not any(self.path.iterdir())):
            raise DataError(f"{self.path}: exists and is not an array store; refusing to replace it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_sibling(self.path)
        self.tmp.mkdir()
        self._item_bytes = int(np.prod(self.shape_per_item)) * self.dtype.itemsize
        reserve_n = self.n_items if self.n_items is not None else 10**15
        self._header_len = len(_npy_header(self.dtype, (reserve_n,) + self.shape_per_item))
        self._fh = open(self.tmp / IMAGES, "wb")
        self._fh.write(b"\0" * self._header_len)
        if self.n_items is not None:  # allocate (sparse) so a short build is detected
            self._fh.truncate(self._header_len + self.n_items * self._item_bytes)
        self._meta_fh = open(self.tmp / METADATA, "w", newline="", encoding="utf-8")
        self._meta_header_written = False

    # -- appending
    def append(self, images: np.ndarray, metadata: pd.DataFrame | Mapping[str, Any] | None = None) -> int:
        """Append a batch.

        Parameters
        ----------
        images : ndarray, shape (B, *shape_per_item) or shape_per_item (one item)
            Cast to the store dtype. Floating input into an integer store is refused (scale and
            round it first); NaN/inf are refused when ``check_finite``.
        metadata : DataFrame or mapping of columns, B rows
            Required when the store has metadata columns; columns must match them exactly.

        Returns
        -------
        int
            Index of the first appended item.
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        arr = np.asarray(images)
        if arr.shape == self.shape_per_item:
            arr = arr[None]
        if arr.ndim != len(self.shape_per_item) + 1 or arr.shape[1:] != self.shape_per_item:
            raise DataError(
                f"{self.path}: batch of shape {arr.shape} does not match items of shape {self.shape_per_item}"
            )
        b = arr.shape[0]
        if arr.dtype.kind == "f" and self.dtype.kind in "biu":
            raise DataError(f"{self.path}: refusing to cast floating data to {self.dtype}; scale it first")
        if self.check_finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(f"{self.path}: batch starting at item {self.n_written} contains NaN or inf")
        if self.n_items is not None and self.n_written + b > self.n_items:
            raise DataError(f"{self.path}: more than the declared {self.n_items} items were appended")
        meta = self._check_metadata(metadata, b)
        data = np.ascontiguousarray(arr, dtype=self.dtype)
        if data.size:
            self._fh.write(memoryview(data.reshape(-1)).cast("B"))
        if meta is not None:
            meta.to_csv(self._meta_fh, header=not self._meta_header_written, index=False)
            self._meta_header_written = True
        start = self.n_written
        self.n_written += b
        return start

    def extend(self, batches: Iterable[tuple[np.ndarray, Any]]) -> None:
        """Append every ``(images, metadata)`` pair of an iterable (e.g. a generator)."""
        for item in batches:
            if isinstance(item, tuple):
                self.append(*item)
            else:
                self.append(item)

    def _check_metadata(self, metadata, b: int) -> pd.DataFrame | None:
        if metadata is None:
            if self.metadata_columns:
                raise DataError(f"{self.path}: metadata with columns {self.metadata_columns} is required")
            if self._meta_header_written:
                raise DataError(f"{self.path}: metadata missing for a batch (earlier batches had some)")
            return None
        meta = metadata if isinstance(metadata, pd.DataFrame) else pd.DataFrame(dict(metadata))
        if len(meta) != b:
            raise DataError(f"{self.path}: metadata has {len(meta)} rows for a batch of {b} items")
        cols = [str(c) for c in meta.columns]
        if self.metadata_columns is None:
            if self.n_written and not self._meta_header_written:
                raise DataError(f"{self.path}: metadata appeared after batches without it")
            self.metadata_columns = cols
        if sorted(cols) != sorted(self.metadata_columns):
            raise DataError(
                f"{self.path}: metadata columns {cols} differ from the store's {self.metadata_columns}"
            )
        meta = meta.copy()
        meta.columns = cols
        meta = meta[self.metadata_columns]
        for c in self.metadata_columns:
            self._kinds[c] = _widen(self._kinds.get(c), _kind(meta[c]))
        return meta

    # -- finishing
    def finalize(self) -> "ArrayStore":
        """Flush everything, write header/table/marker and atomically move the store in place."""
        if self.store is not None:
            return self.store
        if self._closed:
            raise RuntimeError("writer was aborted")
        if self.n_items is not None and self.n_written != self.n_items:
            self.abort()
            raise DataError(f"{self.path}: {self.n_written} items written, {self.n_items} declared")
        try:
            self._fh.seek(0)
            self._fh.write(_npy_header(self.dtype, (self.n_written,) + self.shape_per_item, self._header_len))
            self._fh.truncate(self._header_len + self.n_written * self._item_bytes)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            if not self._meta_header_written and self.metadata_columns:
                pd.DataFrame(columns=self.metadata_columns).to_csv(self._meta_fh, index=False)
            self._meta_fh.flush()
            os.fsync(self._meta_fh.fileno())
            self._meta_fh.close()
            columns = [[c, self._kinds.get(c, "str")] for c in (self.metadata_columns or [])]
            header = {
                "format": FORMAT,
                "version": VERSION,
                "shape_per_item": list(self.shape_per_item),
                "dtype": self.dtype.str,
                "n_items": self.n_written,
                "key": self.key,
                "params": _jsonable(self.params),
                "attrs": self.attrs,
                "metadata_columns": columns,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            with open(self.tmp / HEADER, "w", encoding="utf-8") as fh:
                json.dump(header, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            with open(self.tmp / COMPLETE, "w", encoding="utf-8") as fh:
                fh.write(self.key + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            _fsync_dir(self.tmp)
            if self.path.exists():
                if not self.overwrite:
                    raise DataError(f"{self.path}: appeared while building (pass overwrite=True)")
                trash = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(self.path, trash)
                try:
                    os.rename(self.tmp, self.path)
                except BaseException:
                    # Interrupted between the two renames (Ctrl-C, a full directory): put the
                    # previous store back rather than leave no store at all.
                    if not self.path.exists():
                        os.rename(trash, self.path)
                    raise
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(self.tmp, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self.store = ArrayStore.open(self.path)
        return self.store

    def abort(self) -> None:
        """Discard the partial build (nothing is left at ``path``)."""
        for fh in (self._fh, self._meta_fh):
            try:
                fh.close()
            except Exception:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        elif not self._closed:
            self.abort()


# --------------------------------------------------------------------------- reader


class ArrayStore:
    """A finished store: memory-mapped images plus a metadata table.

    Attributes
    ----------
    path : Path
    images : numpy.memmap, shape (N, *shape_per_item)
        Read-only; slicing reads only the touched items.
    metadata : pandas.DataFrame
        N rows in item order (RangeIndex 0..N-1).
    key : str
        Content key of the generating parameters.
    params, attrs : dict
        The parameters the store was built from and free-form attributes (class names, ...).

    Pickling keeps only the path and reopens the memory map on unpickling, so a Dataset holding
    a store can be sent to DataLoader worker processes cheaply.
    """

    def __init__(self, path: Path, images: np.ndarray, metadata: pd.DataFrame, header: dict):
        self.path = path
        self.images = images
        self.metadata = metadata
        self.header = header

    # -- construction
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        shape_per_item: Sequence[int],
        dtype: Any,
        n_items: int | None = None,
        metadata_columns: Sequence[str] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        check_finite: bool = True,
    ) -> StoreWriter:
        """Start a new store and return its :class:`StoreWriter`.

        Parameters
        ----------
        path : path-like
            Folder of the store (created atomically at :meth:`StoreWriter.finalize`).
        shape_per_item : sequence of int
            E.g. ``(2, 100, 100)``.
        dtype : dtype-like
            ``float32``, ``float16``, ``uint16``, ``uint8``, ...
        n_items : int, optional
            Exact number of items; ``None`` makes the store growable (any number of batches).
        metadata_columns : sequence of str, optional
            Required metadata columns; ``None`` takes them from the first batch.
        params : mapping, optional
            Generating parameters; their :func:`content_key` is recorded.
        attrs : mapping, optional
            JSON-able attributes (class names, channel names, ...).
        overwrite : bool
            Replace an existing store at ``path`` (only folders that look like stores).
        check_finite : bool
            Refuse floating batches with NaN/inf.
        """
        return StoreWriter(
            path,
            shape_per_item,
            dtype,
            n_items=n_items,
            metadata_columns=metadata_columns,
            params=params,
            attrs=attrs,
            overwrite=overwrite,
            check_finite=check_finite,
        )

    @classmethod
    def build(
        cls,
        path: str | os.PathLike,
        batches: Iterable | Callable[[], Iterable],
        *,
        shape_per_item: Sequence[int],
        dtype: Any,
        params: Mapping[str, Any],
        n_items: int | None = None,
        metadata_columns: Sequence[str] | None = None,
        attrs: Mapping[str, Any] | None = None,
        rebuild: bool = False,
    ) -> "ArrayStore":
        """Open the store at ``path`` if it is complete and was built from ``params``, else build it.

        Parameters
        ----------
        batches : iterable of (images, metadata), or a callable returning one
            Pass a callable (e.g. a generator function) so nothing is generated on a cache hit.
        params : mapping
            Generating parameters; the cached store is reused only if its key equals
            ``content_key(params)``.
        rebuild : bool
            Build even if a matching store exists.

        Other parameters are those of :meth:`create`.
        """
        key = content_key(params)
        if not rebuild and cls.is_complete(path, key):
            return cls.open(path, key=key)
        with _build_lock(Path(path)):
            # Checked again under the lock: another process may have built it while we waited.
            if not rebuild and cls.is_complete(path, key):
                return cls.open(path, key=key)
            source = batches() if callable(batches) else batches
            with cls.create(
                path, shape_per_item, dtype, n_items, metadata_columns, params=params, attrs=attrs, overwrite=True
            ) as writer:
                writer.extend(source)
        return writer.store

    @staticmethod
    def is_complete(path: str | os.PathLike, key: str | None = None) -> bool:
        """True if ``path`` holds a finished store (and, if given, with content key ``key``)."""
        p = Path(path)
        try:
            if not (p / COMPLETE).is_file() or not (p / HEADER).is_file():
                return False
            with open(p / HEADER, encoding="utf-8") as fh:
                header = json.load(fh)
        except (OSError, ValueError):
            return False
        return header.get("format") == FORMAT and (key is None or header.get("key") == key)

    @classmethod
    def open(cls, path: str | os.PathLike, *, key: str | None = None, mmap: bool = True) -> "ArrayStore":
        """Open a finished store.

        Parameters
        ----------
        path : path-like
        key : str, optional
            Expected content key; a different one raises :class:`DataError`.
        mmap : bool
            Memory-map the images (default); ``False`` reads them into memory.

        Raises
        ------
        DataError
            Missing folder, unfinished (interrupted) build, unreadable or inconsistent files.
        """
        p = Path(path)
        if not p.is_dir():
            raise DataError(f"{p}: no array store here")
        if not (p / COMPLETE).is_file():
            raise DataError(f"{p}: incomplete array store (no {COMPLETE} marker; was the build interrupted?)")
        try:
            with open(p / HEADER, encoding="utf-8") as fh:
                header = json.load(fh)
        except (OSError, ValueError) as err:
            raise DataError(f"{p / HEADER}: unreadable store header ({err})") from None
        if header.get("format") != FORMAT:
            raise DataError(f"{p / HEADER}: not an {FORMAT} header")
        if header.get("version") != VERSION:
            raise DataError(f"{p / HEADER}: unsupported store version {header.get('version')}")
        if key is not None and header.get("key") != key:
            raise DataError(f"{p}: store was built from other parameters (key {header.get('key')[:12]}…)")
        try:
            images = np.load(p / IMAGES, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(f"{p / IMAGES}: unreadable image array ({err})") from None
        n = int(header["n_items"])
        shape = (n,) + tuple(header["shape_per_item"])
        if images.shape != shape or images.dtype != np.dtype(header["dtype"]):
            raise DataError(
                f"{p / IMAGES}: array {images.shape} {images.dtype} does not match the header {shape} {header['dtype']}"
            )
        columns = {str(c): str(k) for c, k in header.get("metadata_columns") or []}
        metadata = _read_metadata(p / METADATA, columns, n)
        return cls(p, images, metadata, header)

    # -- access
    @property
    def key(self) -> str:
        return self.header["key"]

    @property
    def params(self) -> dict:
        return self.header.get("params", {})

    @property
    def attrs(self) -> dict:
        return self.header.get("attrs", {})

    @property
    def shape_per_item(self) -> tuple[int, ...]:
        return tuple(self.header["shape_per_item"])

    @property
    def dtype(self) -> np.dtype:
        return self.images.dtype

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index) -> np.ndarray:
        """Read items into memory (a copy, never a view on the map)."""
        return np.array(self.images[index])

    def release_pages(self) -> None:
        """Drop the pages of the memory map from this process's resident set.

        Pages read through the map count in RSS (as clean, file-backed memory that the kernel may
        evict at any time); after a long sequential pass, calling this makes RSS reflect only
        real allocations again. Later reads fault the pages back in from the page cache.
        """
        mm = getattr(self.images, "_mmap", None)
        if mm is not None and hasattr(mm, "madvise") and hasattr(_mmap_module, "MADV_DONTNEED"):
            mm.madvise(_mmap_module.MADV_DONTNEED)

    def __repr__(self) -> str:
        return (
            f"ArrayStore({str(self.path)!r}, n_items={len(self)}, shape_per_item={self.shape_per_item}, "
            f"dtype={self.dtype}, key={self.key[:12]})"
        )

    def __getstate__(self) -> dict:
        return {"path": str(self.path), "key": self.key, "mmap": isinstance(self.images, np.memmap)}

    def __setstate__(self, state: dict) -> None:
        other = ArrayStore.open(state["path"], key=state["key"], mmap=state["mmap"])
        self.__dict__.update(other.__dict__)


def _read_metadata(path: Path, columns: Mapping[str, str], n: int) -> pd.DataFrame:
    if not columns:
        if path.is_file() and path.stat().st_size > 0:
            raise DataError(f"{path}: metadata present but the header lists no columns")
        return pd.DataFrame(index=pd.RangeIndex(n))
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable metadata table ({err})") from None
    if list(table.columns) != list(columns):
        raise DataError(f"{path}: columns {list(table.columns)} differ from the header {list(columns)}")
    if len(table) != n:
        raise DataError(f"{path}: {len(table)} rows for {n} items")
    for col, kind in columns.items():
        s = table[col]
        try:
            if kind == "int":
                table[col] = s.astype(np.int64)
            elif kind == "float":
                table[col] = pd.to_numeric(s.replace("", np.nan)).astype(np.float64)
            elif kind == "bool":
                if not s.isin(["True", "False"]).all():
                    raise ValueError("non-boolean value")
                table[col] = s == "True"
        except ValueError as err:
            raise DataError(f"{path}: column {col!r} is not {kind} ({err})") from None
    return table
