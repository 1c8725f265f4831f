"""Protein-sequence embedders behind one interface: ESM2 (fair-esm), targeting signals, composition.

deepGPS reads a protein's sequence through ESM2 (the paper: the 650M model, 1280-d; its public
code: the 8M model, 320-d), mean-pooled over the residues of the last layer. Where no ESM2
weights are available (an offline laptop, this book's CI), the weight-free
:class:`CompositionEmbedder` stands in: amino-acid (20) and dipeptide (400) composition, the
classic localization features of Hua & Sun (2001). The weight-free :class:`SignalEmbedder`
reads the biology of targeting instead (signal peptides, presequences, NLS motifs,
transmembrane segments, C-terminal tags, disorder, regional composition;
:mod:`atlaskit.models.sequence_features`); it is what ``select_embedder("auto")`` falls back to.
Both always work offline.

Interface
---------
Every embedder has a ``name`` (part of the cache key), a ``dim`` and
:meth:`SequenceEmbedder.embed`, which takes sequences (a mapping id → sequence, a list of
``(id, sequence)`` pairs or of :class:`~atlaskit.data.sequences.Record`) and returns a float32
array ``(N, dim)`` in input order. Embeddings are cached on disk, one ``.npy`` per sequence,
under ``<cache>/<embedder key>/<sha256[:2]>/<sha256>.npy`` (the key names the model, its
weights and the windowing), so a chapter re-run or a ``predict`` call embeds each protein once;
that store is :class:`atlaskit.data.embeddings.EmbeddingCache`, handed to ``embed`` as ``cache``
(this module knows tensors only and never looks up a cache folder itself).

Input rules (every embedder)
-----------------------------
- lower case is upper-cased; white space is removed;
- an empty sequence is an error naming the record id;
- the 20 standard letters and the ambiguity letters X, B, Z, U, O are accepted (they occur in
  UniProt entries; ESM2 has a token for each). :class:`CompositionEmbedder` *maps* them onto the
  20 standard amino acids: B = ½ D + ½ N, Z = ½ E + ½ Q, U → C (selenocysteine), O → K
  (pyrrolysine), X = 1/20 of each. ESM2 reads them as its own tokens;
- any other character (digits, ``*`` inside a sequence, ``-`` gaps, ``J``) is *rejected*:
  :class:`~atlaskit.errors.DataError` naming the record id and the letters.

ESM2 weights
------------
:func:`find_esm2_weights` looks, in this order, at ``$ATLASKIT_ESM2`` and then its older alias
``$ATLASKIT_ESM_WEIGHTS`` (a ``.safetensors`` or ``.pt`` file, or a folder holding
``<model name>.safetensors`` or ``<model name>.pt``), at the data registry's verified copy when
the caller hands one in (``registered``: an
:class:`atlaskit.data.model_weights.RegisteredESM2Weights`; this module never imports the data
layer), and at the torch-hub cache (``torch.hub.get_dir()/checkpoints/<model name>.pt``, where
fair-esm downloads to). ``.safetensors`` files (the Hugging Face layout) are read without any
unpickling by :mod:`atlaskit.models.esm_weights`. ``.pt`` files (fair-esm's) are read with
:func:`esm.pretrained.load_model_and_alphabet_local` under ``torch.load(weights_only=True)``;
the fair-esm checkpoints store their configuration as an ``argparse.Namespace``, so exactly that
one class is allow-listed (nothing else is unpickled; a file holding anything else is refused).
:func:`select_embedder` is what a chapter calls: it returns ESM2 when the weights are found (or,
with ``download=True``, can be downloaded) and otherwise the targeting-signal embedder together
with a message saying so. A randomly initialised ESM2 is never returned: :class:`ESM2Embedder` only
exists with loaded weights, and a known model's shape is checked against its name.

Long sequences
--------------
ESM2 was trained on crops of at most 1024 tokens (1022 residues plus BOS/EOS). A longer protein
is embedded in overlapping windows of ``window`` residues every ``stride`` residues (the last
window ends at the last residue); every residue's representation is the mean over the windows
that contain it, and the protein's embedding is the mean over residues, so a protein that fits
one window gets exactly the plain mean-pooled embedding.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from atlaskit._text import _ASCII_UPPER
from atlaskit.errors import AtlaskitError, DataError, ParameterError
from atlaskit.models.sequence_features import LETTER_ROWS, SIGNAL_FEATURES, STANDARD20, signal_features

__all__ = [
    "STANDARD",
    "ESM2_MODELS",
    "ESM2_ENV",
    "ESM_WEIGHTS_ENV",
    "WeightsSource",
    "clean_sequence",
    "as_records",
    "SequenceEmbedder",
    "CompositionEmbedder",
    "SignalEmbedder",
    "ESM2Embedder",
    "EmbedderChoice",
    "find_esm2_weights",
    "esm2_search_locations",
    "select_embedder",
    "embedder_from_spec",
    "window_starts",
]

#: The 20 standard amino acids (one-letter codes, alphabetical); composition features use this order.
STANDARD = STANDARD20
_AMBIGUOUS = "XBZUO"
_ACCEPTED = frozenset(STANDARD + _AMBIGUOUS)
_SPACE = re.compile(r"\s+")

#: The ESM2 models deepGPS may use: name → (layers, embedding dimension).
ESM2_MODELS: dict[str, tuple[int, int]] = {
    "esm2_t6_8M_UR50D": (6, 320),
    "esm2_t12_35M_UR50D": (12, 480),
    "esm2_t30_150M_UR50D": (30, 640),
    "esm2_t33_650M_UR50D": (33, 1280),
}
#: Environment variable naming an ESM2 weights file (``.safetensors`` or ``.pt``) or a folder of them.
ESM2_ENV = "ATLASKIT_ESM2"
#: Older name of :data:`ESM2_ENV`, still read (after it).
ESM_WEIGHTS_ENV = "ATLASKIT_ESM_WEIGHTS"
_WEIGHT_SUFFIXES = (".safetensors", ".pt")


class WeightsSource(Protocol):
    """Where registered weights come from (:class:`atlaskit.data.model_weights.RegisteredESM2Weights`)."""

    def locate(self, model_name: str, download: bool = False) -> Path | None:
        """A verified local file of ``model_name``'s weights (downloaded with ``download``), or None."""

    def describe(self, model_name: str) -> str:
        """Where it looks, for messages."""


# ---------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------


def clean_sequence(sequence: str, record_id: str = "<sequence>") -> str:
    """Upper-case ``sequence``, drop white space, and check its letters.

    Parameters
    ----------
    sequence : str
    record_id : str
        Named in the error message.

    Returns
    -------
    str
        The cleaned sequence (standard letters and X, B, Z, U, O only).

    Raises
    ------
    DataError
        Empty sequence, or characters other than amino-acid letters (listed in the message).
    """
    if not isinstance(sequence, str):
        raise DataError(f"record {record_id!r}: sequence must be a string, got {type(sequence).__name__}")
    # ASCII-only upper-casing: str.upper() turns 'ſ' into 'S' and 'ﬀ' into 'FF' (not amino acids)
    seq = _SPACE.sub("", sequence).translate(_ASCII_UPPER)
    if not seq:
        raise DataError(f"record {record_id!r}: empty sequence")
    bad = sorted(set(seq) - _ACCEPTED)
    if bad:
        raise DataError(
            f"record {record_id!r}: characters {', '.join(map(repr, bad))} are not amino-acid letters "
            f"(accepted: {STANDARD} and the ambiguity codes {_AMBIGUOUS})"
        )
    return seq


def as_records(sequences) -> list[tuple[str, str]]:
    """Normalise the accepted inputs to a list of ``(id, sequence)`` pairs (not yet cleaned).

    Accepts a mapping id → sequence, a sequence of ``(id, sequence)`` pairs, of objects with
    ``.id`` and ``.sequence`` (:class:`~atlaskit.data.sequences.Record`), or a single string
    (id ``"<sequence>"``).
    """
    if isinstance(sequences, str):
        return [("<sequence>", sequences)]
    if isinstance(sequences, Mapping):
        return [(str(k), v) for k, v in sequences.items()]
    out = []
    for item in sequences:
        if hasattr(item, "id") and hasattr(item, "sequence"):
            out.append((str(item.id), item.sequence))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append((str(item[0]), item[1]))
        else:
            raise ParameterError(
                "sequences must be a mapping id → sequence, (id, sequence) pairs or Records; "
                f"got an item of type {type(item).__name__}"
            )
    return out


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------


class SequenceEmbedder(ABC):
    """A function from protein sequences to fixed-size vectors.

    Subclasses set :attr:`name`, :attr:`dim`, :attr:`key` (cache key: model, weights and every
    setting that changes the numbers) and implement :meth:`_embed_many` on cleaned sequences.
    """

    name: str
    dim: int

    @property
    def key(self) -> str:
        return self.name

    def spec(self) -> dict:
        """Plain description to rebuild this embedder later (see :func:`embedder_from_spec`)."""
        return {"kind": self.name, "dim": int(self.dim), "key": self.key}

    @abstractmethod
    def _embed_many(self, sequences: list[str]) -> np.ndarray:
        """``(N, dim)`` float32 for cleaned sequences."""

    def embed(self, sequences, *, cache=None) -> np.ndarray:
        """Embed sequences (see :func:`as_records` for the accepted inputs).

        Parameters
        ----------
        sequences
            Mapping id → sequence, ``(id, sequence)`` pairs or Records.
        cache : object with ``get`` and ``put``, optional
            Where embeddings are kept between calls: an
            :class:`atlaskit.data.embeddings.EmbeddingCache` (a folder on disk; build one with
            :func:`atlaskit.data.embeddings.embedding_cache`, which turns ``True`` into the default
            cache folder and a path into that folder); ``None`` or ``False``: no cache.

        Returns
        -------
        numpy.ndarray
            ``(N, dim)`` float32, rows in input order.

        Raises
        ------
        DataError
            An empty sequence or a non-amino-acid character; the message names the record id.
        """
        records = as_records(sequences)
        cleaned = [clean_sequence(seq, rid) for rid, seq in records]  # raises before any work
        store = None
        if cache is not False and cache is not None:
            if cache is True or isinstance(cache, (str, os.PathLike)):
                raise ParameterError(
                    "cache must be an object with get and put (or None / False); turn True or a folder into "
                    "one with atlaskit.data.embeddings.embedding_cache"
                )
            store = cache
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}  # unique sequence → rows (duplicates embedded once)
        for i, seq in enumerate(cleaned):
            hit = store.get(self.key, seq, self.dim) if store is not None else None
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(seq, []).append(i)
        if todo:
            unique = list(todo)
            vectors = np.asarray(self._embed_many(unique), dtype=np.float32)  # (U, dim)
            if vectors.shape != (len(unique), self.dim):
                raise RuntimeError(f"{type(self).__name__} returned {vectors.shape}, expected {(len(unique), self.dim)}")
            for seq, v in zip(unique, vectors):
                out[todo[seq]] = v
                if store is not None:
                    store.put(self.key, seq, v)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


# ---------------------------------------------------------------------------------------------
# composition
# ---------------------------------------------------------------------------------------------

# Each accepted letter as a distribution over the 20 standard amino acids (one table for every
# sequence feature; STANDARD and STANDARD20 are the same order).
_LETTER_ROWS = LETTER_ROWS


class CompositionEmbedder(SequenceEmbedder):
    """Amino-acid composition (20) and dipeptide composition (400): 420 features, no weights.

    ``aac[a]`` is the fraction of residues that are ``a``; ``dpc[a, b]`` the fraction of the
    ``L - 1`` adjacent pairs that are ``a`` followed by ``b`` (flattened row-major, ``a`` slow;
    zeros for a single residue). Ambiguity letters count fractionally (see the module notes),
    so both blocks always sum to 1. Hua & Sun (2001) fed these features to an SVM; here a
    logistic regression or random forest reads them.

    Parameters
    ----------
    dipeptides : bool
        Include the 400 dipeptide features (default); ``False``: the 20 composition features only.
    """

    VERSION = 1

    def __init__(self, dipeptides: bool = True):
        self.dipeptides = bool(dipeptides)
        self.name = "composition"
        self.dim = 420 if self.dipeptides else 20

    @property
    def key(self) -> str:
        return f"composition-v{self.VERSION}-{'aa+dp' if self.dipeptides else 'aa'}"

    def spec(self) -> dict:
        return {**super().spec(), "dipeptides": self.dipeptides}

    @staticmethod
    def feature_names(dipeptides: bool = True) -> list[str]:
        """``["A", ..., "Y"]`` then ``["AA", "AC", ..., "YY"]``."""
        names = list(STANDARD)
        if dipeptides:
            names += [a + b for a in STANDARD for b in STANDARD]
        return names

    def _embed_many(self, sequences: list[str]) -> np.ndarray:
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        for i, seq in enumerate(sequences):
            codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
            p = _LETTER_ROWS[codes]  # (L, 20): each residue as a distribution
            out[i, :20] = p.mean(axis=0)
            if self.dipeptides and len(seq) > 1:
                out[i, 20:] = (p[:-1].T @ p[1:]).ravel() / (len(seq) - 1)  # (20, 20) pair counts
        return out


class SignalEmbedder(SequenceEmbedder):
    """Targeting-signal features (:data:`~atlaskit.models.sequence_features.SIGNAL_FEATURES`), no weights.

    N-terminal hydropathy, h-region, charge and hydrophobic moment (signal peptides and
    mitochondrial presequences), classical NLS motif densities, transmembrane-segment count,
    C-terminal tags (KDEL, dilysine, PTS1, CaaX), disorder and low-complexity proxies, length,
    and the composition of the whole chain, its first 50 and last 50 residues; each feature and
    its source is listed in :mod:`atlaskit.models.sequence_features`. The numbers are on their
    natural scales (fractions, counts, hydropathy units): standardise them before a linear model.
    """

    VERSION = 1

    def __init__(self):
        self.name = "signals"
        self.dim = len(SIGNAL_FEATURES)

    @property
    def key(self) -> str:
        return f"signals-v{self.VERSION}"

    @staticmethod
    def feature_names() -> list[str]:
        """The feature names, in column order."""
        return list(SIGNAL_FEATURES)

    def _embed_many(self, sequences: list[str]) -> np.ndarray:
        return np.stack([signal_features(s) for s in sequences]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# ESM2
# ---------------------------------------------------------------------------------------------


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start positions of the windows that cover ``length`` residues.

    ``[0]`` when the sequence fits one window; otherwise every ``stride`` residues, plus a last
    window that ends exactly at the last residue.
    """
    if window < 1 or stride < 1 or stride > window:
        raise ParameterError(f"need 1 <= stride <= window, got window={window}, stride={stride}")
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def _env_locations(model_name: str) -> list[Path]:
    places: list[Path] = []
    for var in (ESM2_ENV, ESM_WEIGHTS_ENV):
        env = os.environ.get(var, "").strip()
        if env:
            p = Path(env).expanduser()
            places += [p] if p.suffix in _WEIGHT_SUFFIXES else [p / f"{model_name}{s}" for s in _WEIGHT_SUFFIXES]
    return places


def esm2_search_locations(model_name: str) -> list[Path]:
    """The files :func:`find_esm2_weights` looks at for ``model_name``, in order (without the
    data registry's, which only its caller knows)."""
    import torch

    return _env_locations(model_name) + [Path(torch.hub.get_dir()) / "checkpoints" / f"{model_name}.pt"]


def _weights_model(path: Path) -> str | None:
    """The model a weights file holds: a ``.pt``'s file name; a ``.safetensors`` header's
    architecture (None when unreadable: loading it then says why)."""
    if path.suffix == ".pt":
        return path.stem
    from atlaskit.models.esm_weights import safetensors_architecture

    try:
        return safetensors_architecture(path)["name"]
    except DataError:
        return None


def find_esm2_weights(model_name: str, *, registered: WeightsSource | None = None) -> Path | None:
    """The first weights file for ``model_name``: ``$ATLASKIT_ESM2`` / ``$ATLASKIT_ESM_WEIGHTS``,
    then ``registered`` (the data registry's verified copy, never downloaded here), then torch hub.

    A ``.pt`` file counts only if its name is ``<model_name>.pt`` (fair-esm derives the
    architecture from the file name); a ``.safetensors`` file named otherwise (``model.safetensors``)
    counts if its tensors have ``model_name``'s architecture, or if its header cannot be read (so
    that loading it says what is wrong).
    """
    for p in _env_locations(model_name):
        if p.is_file() and _weights_model(p) in (model_name, None):
            return p
    found = registered.locate(model_name, download=False) if registered is not None else None
    if found is not None:
        return Path(found)
    hub = esm2_search_locations(model_name)[-1]
    return hub if hub.is_file() else None


def _looked_at(model_name: str, registered: WeightsSource | None) -> str:
    from atlaskit._text import display_path

    places = [display_path(p) for p in esm2_search_locations(model_name)]
    if registered is not None:
        places.insert(-1, registered.describe(model_name))
    return ", ".join(places)


def _weights_fingerprint(path: Path) -> str:
    """Cheap identity of a weights file: size plus sha256 of its first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:12]


def _load_esm_file(path: Path):
    """(model, alphabet) from a fair-esm ``.pt`` file, refusing any pickled class but Namespace."""
    import pickle

    import esm
    import torch

    regression = Path(str(path.with_suffix("")) + "-contact-regression.pt")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            if regression.is_file():
                return esm.pretrained.load_model_and_alphabet_local(path)
            # The contact-regression file only serves contact prediction, which embeddings do not
            # use; without it fair-esm's core loader warns, which we silence deliberately.
            data = torch.load(str(path), map_location="cpu", weights_only=True)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Regression weights not found")
                return esm.pretrained.load_model_and_alphabet_core(path.stem, data, None)
    except pickle.UnpicklingError as exc:
        m = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" (it holds {m.group(1)})" if m else ""
        raise DataError(
            f"{path}: not a fair-esm weights file that can be read safely{what}; only tensors, plain "
            "types and argparse.Namespace are unpickled"
        ) from None
    except (RuntimeError, KeyError, ValueError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot load ESM2 weights: {first}") from None


class ESM2Embedder(SequenceEmbedder):
    """Mean-pooled last-layer ESM2 representations (windowed for long proteins).

    Build it with :meth:`from_file`, :meth:`from_pretrained` or :func:`select_embedder`; the
    constructor takes an already loaded fair-esm model.

    Parameters
    ----------
    model, alphabet
        A fair-esm ``ESM2`` model with its weights and its alphabet.
    name : str
        Model name (e.g. ``esm2_t33_650M_UR50D``).
    weights_id : str
        Identity of the weights (part of the cache key).
    device : str
        ``"cpu"``, ``"cuda"``, ...
    window, stride : int
        Residues per window (1022: ESM2's 1024-token context minus BOS/EOS) and window step.
    max_tokens : int
        Tokens per forward batch (windows of similar length are batched together).
    source : str
        Where the weights came from (for messages).
    """

    def __init__(self, model, alphabet, *, name: str, weights_id: str, device: str = "cpu",
                 window: int = 1022, stride: int = 511, max_tokens: int = 8192, source: str = ""):
        import torch

        window_starts(window + 1, window, stride)  # validates window and stride
        if max_tokens < window + 2:
            raise ParameterError(f"max_tokens ({max_tokens}) must hold one full window ({window + 2} tokens)")
        self.model = model.eval().to(device)
        self.alphabet = alphabet
        self.name = name
        self.weights_id = weights_id
        self.device = torch.device(device)
        self.window, self.stride, self.max_tokens = int(window), int(stride), int(max_tokens)
        self.num_layers = int(model.num_layers)
        self.dim = int(model.embed_dim)
        self.source = source
        if name in ESM2_MODELS and ESM2_MODELS[name] != (self.num_layers, self.dim):
            raise DataError(
                f"weights for {name} should have {ESM2_MODELS[name][0]} layers of {ESM2_MODELS[name][1]}, "
                f"found {self.num_layers} of {self.dim}"
            )
        self._converter = alphabet.get_batch_converter()

    @property
    def key(self) -> str:
        return f"{self.name}-{self.weights_id}-w{self.window}s{self.stride}"

    def spec(self) -> dict:
        return {**super().spec(), "model": self.name, "window": self.window, "stride": self.stride,
                "weights_id": self.weights_id}

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, device: str = "cpu", **kw) -> "ESM2Embedder":
        """Load weights from a Hugging Face ``.safetensors`` file (any name; see
        :mod:`atlaskit.models.esm_weights`) or a fair-esm ``.pt`` file (named ``<model name>.pt``)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such ESM2 weights file")
        if path.suffix == ".safetensors":
            from atlaskit.models.esm_weights import load_esm2_safetensors

            model, alphabet, name = load_esm2_safetensors(path)
        elif path.suffix != ".pt":
            raise DataError(f"{path}: ESM2 weights are a .safetensors (Hugging Face) or .pt (fair-esm) file")
        elif not path.stem.startswith("esm2"):
            raise DataError(f"{path}: ESM2 weights files are named esm2_*.pt (fair-esm reads the architecture from the name)")
        else:
            (model, alphabet), name = _load_esm_file(path), path.stem
        return cls(model, alphabet, name=name, weights_id=_weights_fingerprint(path), device=device,
                   source=str(path), **kw)

    @classmethod
    def from_pretrained(cls, model_name: str = "esm2_t33_650M_UR50D", *, download: bool = False,
                        device: str = "cpu", registered: WeightsSource | None = None, **kw) -> "ESM2Embedder":
        """Load a known model from a local file (:func:`find_esm2_weights`), or download it.

        With ``download``, a model that ``registered`` knows is downloaded through it (the data
        registry: sha256-verified safetensors); any other through fair-esm's torch-hub loader.

        Raises
        ------
        DataError
            No local weights and ``download=False`` (the message lists the places looked at), or
            the download failed.
        """
        if model_name not in ESM2_MODELS:
            raise ParameterError(f"unknown ESM2 model {model_name!r}; known: {', '.join(ESM2_MODELS)}")
        path = find_esm2_weights(model_name, registered=registered)
        if path is not None:
            return cls._named(model_name, path, device, kw)
        if not download:
            raise DataError(
                f"no weights for {model_name} (looked at: {_looked_at(model_name, registered)}); set ${ESM2_ENV} "
                "to the file or its folder, or allow the download"
            )
        if registered is not None:
            try:
                path = registered.locate(model_name, download=True)
            except AtlaskitError as exc:
                raise DataError(f"could not download {model_name}: {exc}") from None
            if path is not None:
                return cls._named(model_name, path, device, kw)
        import esm
        import torch

        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                model, alphabet = esm.pretrained.load_model_and_alphabet_hub(model_name)
        except Exception as exc:  # network errors come in many types
            raise DataError(f"could not download {model_name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        path = find_esm2_weights(model_name)
        weights_id = _weights_fingerprint(path) if path is not None else "hub"
        return cls(model, alphabet, name=model_name, weights_id=weights_id, device=device,
                   source=str(path or "torch hub"), **kw)

    @classmethod
    def _named(cls, model_name: str, path: Path, device: str, kw: dict) -> "ESM2Embedder":
        """:meth:`from_file`, refusing a file that holds another model than ``model_name``."""
        e = cls.from_file(path, device=device, **kw)
        if e.name != model_name:
            raise DataError(f"{path}: holds {e.name} ({e.num_layers} layers of {e.dim}), not {model_name}")
        return e

    # -- embedding
    def _windows(self, sequences: list[str]) -> list[tuple[int, int, str]]:
        """(sequence index, start, window text) for every window of every sequence."""
        return [(i, s, seq[s:s + self.window]) for i, seq in enumerate(sequences)
                for s in window_starts(len(seq), self.window, self.stride)]

    def _embed_many(self, sequences: list[str]) -> np.ndarray:
        import torch

        sums = [np.zeros((len(s), self.dim), np.float64) for s in sequences]  # per-residue sums
        counts = [np.zeros(len(s), np.float64) for s in sequences]
        windows = sorted(self._windows(sequences), key=lambda w: -len(w[2]))  # long first: tight batches
        batch: list[tuple[int, int, str]] = []

        def run(items):
            _, _, tokens = self._converter([(str(k), w[2]) for k, w in enumerate(items)])  # (B, T)
            with torch.no_grad():
                out = self.model(tokens.to(self.device), repr_layers=[self.num_layers])
            reps = out["representations"][self.num_layers].float().cpu().numpy()  # (B, T, dim)
            for row, (i, start, text) in enumerate(items):
                n = len(text)
                sums[i][start:start + n] += reps[row, 1:1 + n]  # skip BOS; EOS and padding after
                counts[i][start:start + n] += 1

        for w in windows:
            width = len(batch[0][2]) + 2 if batch else len(w[2]) + 2  # tokens per row (longest first)
            if batch and width * (len(batch) + 1) > self.max_tokens:
                run(batch)
                batch = []
            batch.append(w)
        if batch:
            run(batch)
        out = np.zeros((len(sequences), self.dim), np.float32)
        for i in range(len(sequences)):
            out[i] = (sums[i] / counts[i][:, None]).mean(axis=0)
        return out


# ---------------------------------------------------------------------------------------------
# choosing an embedder
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedderChoice:
    """What :func:`select_embedder` decided.

    Attributes
    ----------
    embedder : SequenceEmbedder
    requested : str
        What was asked for (``"auto"``, ``"signals"``, ``"composition"`` or an ESM2 model name).
    fallback : bool
        True when ESM2 was wanted but its weights were absent, so the signal embedder is used.
    message : str
        One paragraph for people, printed by the chapter.
    """

    embedder: SequenceEmbedder
    requested: str
    fallback: bool
    message: str


def select_embedder(embedder: str = "auto", *, esm_model: str = "esm2_t33_650M_UR50D", download: bool = False,
                    device: str = "cpu", registered: WeightsSource | None = None, **esm_kw) -> EmbedderChoice:
    """Pick the sequence embedder of a chapter run.

    Parameters
    ----------
    embedder : {"auto", "signals", "composition", "esm2"} or an ESM2 model name
        ``"auto"``: ``esm_model`` if its weights are found (or downloaded with ``download``),
        else the targeting-signal embedder with a message saying so. ``"esm2"`` or a model name:
        ESM2 is required (a clear error without weights). ``"signals"`` / ``"composition"``:
        always that weight-free embedder.
    esm_model : str
        The ESM2 model for ``"auto"``/``"esm2"`` (one of :data:`ESM2_MODELS`).
    download : bool
        Allow downloading missing weights: through ``registered`` when it knows the model (into the
        atlaskit cache, sha256-verified), else by fair-esm into the torch-hub cache.
    device : str
    registered : WeightsSource, optional
        The data registry's ESM2 files
        (:class:`atlaskit.data.model_weights.RegisteredESM2Weights`), looked at after
        ``$ATLASKIT_ESM2`` and before torch hub.
    **esm_kw
        ``window``, ``stride``, ``max_tokens`` for :class:`ESM2Embedder`.
    """
    if embedder == "composition":
        e = CompositionEmbedder()
        return EmbedderChoice(e, embedder, False, "Sequence embedder: amino-acid + dipeptide composition (420 features, no weights).")
    if embedder == "signals":
        e = SignalEmbedder()
        return EmbedderChoice(e, embedder, False, f"Sequence embedder: targeting signals ({e.dim} features, no weights).")
    if embedder in ("auto", "esm2") or embedder in ESM2_MODELS:
        name = esm_model if embedder in ("auto", "esm2") else embedder
        if name not in ESM2_MODELS:
            raise ParameterError(f"unknown ESM2 model {name!r}; known: {', '.join(ESM2_MODELS)}")
        found = find_esm2_weights(name, registered=registered)
        try:
            e = ESM2Embedder.from_pretrained(name, download=download, device=device, registered=registered, **esm_kw)
        except DataError as exc:
            if embedder != "auto":
                raise
            looked = _looked_at(name, registered)
            if found is not None:
                what = f"ESM2 weights for {name} were found but could not be loaded ({exc})"
            else:
                why = f"the download failed: {exc}" if download else "downloads are off"
                what = f"ESM2 weights for {name} were not found (looked at: {looked}; {why})"
            message = (
                f"{what}. "
                f"Using the targeting-signal embedder ({len(SIGNAL_FEATURES)} features: signal peptide, presequence, "
                "NLS, transmembrane and C-terminal motifs, disorder, regional composition) instead; a randomly "
                f"initialised ESM2 is never used in its place. To use ESM2, set ${ESM2_ENV} to a weights file "
                f"(the Hugging Face model.safetensors of facebook/{name}, or fair-esm's {name}.pt)."
            )
            return EmbedderChoice(SignalEmbedder(), embedder, True, message)
        return EmbedderChoice(e, embedder, False,
                              f"Sequence embedder: {name} ({e.dim}-d, mean-pooled last layer), weights from {e.source}.")
    raise ParameterError(
        f"embedder must be 'auto', 'signals', 'composition', 'esm2' or one of {', '.join(ESM2_MODELS)}, not {embedder!r}"
    )


def embedder_from_spec(spec: Mapping, *, device: str = "cpu", esm_weights: str | os.PathLike | None = None,
                       registered: WeightsSource | None = None) -> SequenceEmbedder:
    """Rebuild the embedder described by :meth:`SequenceEmbedder.spec` (e.g. for ``predict``).

    An ESM2 spec needs the same weights: found by :func:`find_esm2_weights` or given as
    ``esm_weights``; other weights (a different fingerprint) are refused, because the trained
    model would read vectors it never saw.
    """
    kind = spec.get("kind")
    if kind == "composition":
        return CompositionEmbedder(dipeptides=bool(spec.get("dipeptides", True)))
    if kind == "signals":
        e = SignalEmbedder()
        if spec.get("key") not in (None, e.key):
            raise DataError(f"this model was trained on {spec.get('key')} features; this atlaskit computes {e.key}")
        return e
    model = spec.get("model") or kind
    path = Path(esm_weights).expanduser() if esm_weights else find_esm2_weights(str(model), registered=registered)
    if path is None:
        raise DataError(
            f"this model was trained on {model} embeddings, but no weights for {model} were found "
            f"(looked at: {_looked_at(str(model), registered)}); set ${ESM2_ENV}"
        )
    e = ESM2Embedder.from_file(path, device=device, window=int(spec.get("window", 1022)), stride=int(spec.get("stride", 511)))
    if spec.get("weights_id") not in (None, e.weights_id):
        raise DataError(f"{path}: these are not the weights the model was trained with ({spec.get('weights_id')})")
    return e

