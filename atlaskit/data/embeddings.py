"""The on-disk cache of protein-sequence embeddings (one ``.npy`` per sequence).

The embedders (:mod:`atlaskit.models.sequence`) know tensors only: their
:meth:`~atlaskit.models.sequence.SequenceEmbedder.embed` takes a ``cache`` object with ``get`` and
``put`` (or ``None`` / ``False`` for none). This module holds the store they are given:
:class:`EmbeddingCache` keeps embeddings under
``<cache>/<embedder key>/<sha256[:2]>/<sha256>.npy`` (the key names the model, its weights and
the windowing), so a chapter re-run or a ``predict`` call embeds each protein once. Its default
folder is ``<atlaskit cache>/embeddings`` (``$ATLASKIT_CACHE``, see
:func:`atlaskit.data.registry.cache_dir`); :func:`embedding_cache` turns the usual ``cache``
arguments (``True``, a folder, ``False``) into a store.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from atlaskit._atomic import atomic_write

__all__ = ["EmbeddingCache", "default_embedding_dir", "embedding_cache"]


def _sha(sequence: str) -> str:
    return hashlib.sha256(sequence.encode("ascii")).hexdigest()


def default_embedding_dir() -> Path:
    """``<atlaskit cache>/embeddings`` (``$ATLASKIT_CACHE``; the folder may not exist yet)."""
    from atlaskit.data.registry import cache_dir

    return cache_dir() / "embeddings"


class EmbeddingCache:
    """One ``.npy`` per (embedder key, sequence) under ``root``.

    Parameters
    ----------
    root : path-like, optional
        Default ``<atlaskit cache>/embeddings`` (``$ATLASKIT_CACHE``).
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            root = default_embedding_dir()
        self.root = Path(root)

    def path(self, key: str, sequence: str) -> Path:
        digest = _sha(sequence)
        return self.root / key / digest[:2] / f"{digest}.npy"

    def get(self, key: str, sequence: str, dim: int) -> np.ndarray | None:
        """The cached vector, or None (a missing, unreadable or wrongly shaped file is a miss)."""
        p = self.path(key, sequence)
        if not p.is_file():
            return None
        try:
            v = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # EOFError: an empty file (e.g. from a full disk)
            return None
        if v.shape != (dim,) or v.dtype != np.float32:
            return None
        return v

    def put(self, key: str, sequence: str, vector: np.ndarray) -> None:
        """Write atomically (temporary file, then rename), so readers never see half a file."""
        p = self.path(key, sequence)
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(p) as fh:
            np.save(fh, np.asarray(vector, dtype=np.float32), allow_pickle=False)


def embedding_cache(cache: bool | str | os.PathLike | EmbeddingCache | None = True) -> EmbeddingCache | None:
    """The store for a ``cache`` argument, to hand to :meth:`SequenceEmbedder.embed`.

    Parameters
    ----------
    cache : bool, path or EmbeddingCache
        ``True`` (or ``None``): the default cache folder; a path: that folder; ``False``: no
        cache; an :class:`EmbeddingCache` (or any object with ``get`` and ``put``): itself.

    Returns
    -------
    EmbeddingCache or None
    """
    if cache is False:
        return None
    if cache is True or cache is None:
        return EmbeddingCache()
    if isinstance(cache, (str, os.PathLike)):
        return EmbeddingCache(cache)
    return cache
