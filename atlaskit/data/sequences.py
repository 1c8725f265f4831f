"""Protein sequences: a validating FASTA reader and the two sequence sets the book uses.

Reading
-------
:func:`read_fasta_report` parses a FASTA file (plain text or gzip, recognised by its first bytes,
not by its suffix) and returns ``(records, problems)``: the records that passed every check and
one :class:`Problem` per record (or stretch of text) that did not. Nothing is dropped silently:
every skipped record appears in ``problems`` with its id and line number.

:func:`read_fasta` is the everyday front end. With ``on_error="raise"`` (the default) it raises
one :class:`~atlaskit.errors.DataError` that names the file and lists every bad record by id and
line; with ``on_error="skip"`` it returns the good records and emits a :class:`FastaWarning`
that lists the skipped ids.

Checks, per record
------------------
- the header has an id (the first word after ``>``);
- the sequence is not empty;
- every letter is one of the 20 standard amino acids (:data:`AMINO_ACIDS`) or one of the accepted
  extra letters (:data:`AMBIGUITY_LETTERS`: ``X`` unknown, ``B`` Asx, ``Z`` Glx, ``U``
  selenocysteine, ``O`` pyrrolysine). These are *kept* in the sequence, since they occur in
  real UniProt entries (U in selenoproteins) and downstream embedders (ESM2) have tokens for
  them; a model that needs the strict 20 can filter with :func:`is_standard`.
  Lower-case letters are upper-cased; white space inside sequence lines is ignored; one
  trailing ``*`` (a translated stop) is removed; any other character (digits, ``-`` gaps,
  ``*`` inside a sequence, punctuation) is an error;
- the id has not been seen before in the file (the first occurrence is kept, every later one
  is a problem that cites the line of the first).

Checks, per file
----------------
- text before the first header is reported as a problem (id ``None``, with its line);
- a file with no record at all is a problem;
- binary content (NUL or other control bytes, bytes that are not UTF-8, a corrupt gzip stream) cannot be parsed
  record by record and always raises :class:`~atlaskit.errors.DataError`, whatever ``on_error``.
"""
from __future__ import annotations

import gzip
import re
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Literal, Mapping

import pandas as pd

from atlaskit._text import _ASCII_UPPER, decode_text
from atlaskit.data.registry import file_key as _key
from atlaskit.errors import DataError

__all__ = [
    "AMINO_ACIDS",
    "AMBIGUITY_LETTERS",
    "ACCEPTED_LETTERS",
    "Record",
    "Problem",
    "FastaWarning",
    "read_fasta",
    "read_fasta_report",
    "is_standard",
    "opencell_sequences",
    "yeast_proteome",
]

#: The 20 standard amino acids, one-letter codes in alphabetical order.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Extra letters accepted and kept: X (unknown), B (D or N), Z (E or Q), U (selenocysteine),
#: O (pyrrolysine).
AMBIGUITY_LETTERS = "XBZUO"
#: Every letter a valid sequence may contain.
ACCEPTED_LETTERS = AMINO_ACIDS + AMBIGUITY_LETTERS

_STANDARD_SET = frozenset(AMINO_ACIDS)
_ACCEPTED_SET = frozenset(ACCEPTED_LETTERS)
_MAX_LISTED = 20  # problems listed in full in an error or warning message


@dataclass(frozen=True)
class Record:
    """One FASTA record.

    Attributes
    ----------
    id : str
        The first word of the header (after ``>``).
    description : str
        The rest of the header (may be empty).
    sequence : str
        Upper-case one-letter amino-acid codes, without white space.
    line : int
        1-based line number of the header in the file (not part of equality).
    """

    id: str
    description: str
    sequence: str
    line: int = field(default=0, compare=False)

    def __len__(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class Problem:
    """Why a record (or a stretch of text) of a FASTA file was rejected.

    Attributes
    ----------
    id : str or None
        The record's id; ``None`` for text that belongs to no record (before the first header,
        an empty file) or for a header without an id.
    line : int
        1-based line number: the record's header, or the offending line.
    message : str
        What is wrong, for people.
    """

    id: str | None
    line: int
    message: str

    def __str__(self) -> str:
        who = f"record {self.id!r}" if self.id is not None else "file"
        return f"line {self.line}: {who}: {self.message}"


class FastaWarning(UserWarning):
    """Emitted by ``read_fasta(..., on_error="skip")`` when records were skipped."""


def is_standard(sequence: str) -> bool:
    """True when ``sequence`` holds only the 20 standard amino acids."""
    return set(sequence) <= _STANDARD_SET


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    """The file's text; gzip recognised by its magic number. Binary content raises DataError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such FASTA file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a FASTA file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read FASTA file ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # zlib.error: found by fuzzing
            raise DataError(f"{path}: corrupt gzip stream ({exc})") from None
    return decode_text(
        raw,
        _CONTROL,
        lambda byte, line: f"{path}: binary content (control byte {byte!r} at line {line}); not a FASTA text file",
        lambda line, offset: (
            f"{path}: binary or non-UTF-8 content at line {line} (byte {offset}); not a FASTA text file"
        ),
    )


_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")  # bytes no text file holds (tab, LF, CR, FF allowed)


def _check_sequence(parts: list[tuple[int, str]]) -> tuple[str, str | None]:
    """Join and validate the sequence lines of one record; return (sequence, error or None)."""
    # ASCII-only upper-casing: str.upper() maps some non-ASCII letters onto amino-acid codes
    # ('ſ' -> 'S', 'ﬀ' -> 'FF', 'ı' -> 'I'), which would hide them from the letter check
    cleaned = [(lineno, _SPACE.sub("", text).translate(_ASCII_UPPER)) for lineno, text in parts]
    cleaned = [(lineno, text) for lineno, text in cleaned if text]
    if cleaned and cleaned[-1][1].endswith("*"):  # one trailing stop is tolerated and removed
        lineno, text = cleaned[-1]
        cleaned[-1] = (lineno, text[:-1])
    sequence = "".join(text for _, text in cleaned)
    if not sequence:
        return sequence, "empty sequence"
    bad: dict[str, int] = {}  # bad character -> first line it occurs on
    for lineno, text in cleaned:
        for ch in set(text) - _ACCEPTED_SET:
            bad.setdefault(ch, lineno)
    if bad:
        listed = ", ".join(f"{ch!r} (line {ln})" for ch, ln in sorted(bad.items(), key=lambda kv: (kv[1], kv[0])))
        return sequence, f"characters outside the accepted amino-acid letters {ACCEPTED_LETTERS}: {listed}"
    return sequence, None


def _parse(text: str) -> tuple[list[Record], list[Problem]]:
    records: list[Record] = []
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}

    header: tuple[int, str, str] | None = None  # (line, id, description)
    parts: list[tuple[int, str]] = []
    preamble_line: int | None = None

    def close() -> None:
        if header is None:
            return
        lineno, seq_id, description = header
        if not seq_id:
            problems.append(Problem(None, lineno, "header without an id ('>' followed by nothing)"))
            return
        sequence, error = _check_sequence(parts)
        if error is not None:
            problems.append(Problem(seq_id, lineno, error))
            # an invalid record still claims its id, so that a later valid copy is a duplicate
            first_seen.setdefault(seq_id, lineno)
            return
        if seq_id in first_seen:
            problems.append(Problem(seq_id, lineno, f"duplicate id (first seen at line {first_seen[seq_id]})"))
            return
        first_seen[seq_id] = lineno
        records.append(Record(seq_id, description, sequence, lineno))

    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.startswith(">"):
            close()
            words = line[1:].strip().split(None, 1)
            seq_id = words[0] if words else ""
            description = words[1].strip() if len(words) > 1 else ""
            header = (lineno, seq_id, description)
            parts = []
        elif header is None:
            if line.strip() and preamble_line is None:
                preamble_line = lineno
        else:
            if line.strip():
                parts.append((lineno, line))
    close()

    if preamble_line is not None:
        problems.insert(0, Problem(None, preamble_line, "text before the first '>' header"))
    if header is None:
        problems.append(Problem(None, 1, "no FASTA record (no line starting with '>')"))
    return records, problems


def read_fasta_report(path: str | PathLike) -> tuple[list[Record], list[Problem]]:
    """Parse a FASTA file and return ``(records, problems)`` without raising for bad records.

    Parameters
    ----------
    path : str or path-like
        A plain-text or gzip-compressed FASTA file (gzip is recognised by content).

    Returns
    -------
    records : list of Record
        Records that passed every check, in file order.
    problems : list of Problem
        One entry per rejected record (by id and header line) and per file-level problem (text
        before the first header, no records), in file order.

    Raises
    ------
    DataError
        The file is missing, unreadable or binary (NUL bytes, not UTF-8, corrupt gzip).
    """
    path = Path(path)
    return _parse(_read_text(path))


def _summarise(path: Path, problems: list[Problem]) -> str:
    listed = "\n  ".join(str(p) for p in problems[:_MAX_LISTED])
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    ids = list(dict.fromkeys(p.id for p in problems if p.id is not None))  # file order
    id_part = f" (bad ids: {', '.join(ids[:_MAX_LISTED])}{', ...' if len(ids) > _MAX_LISTED else ''})" if ids else ""
    return f"{path}: {len(problems)} FASTA problem(s){id_part}:\n  {listed}{more}"


def read_fasta(path: str | PathLike, *, on_error: Literal["raise", "skip"] = "raise") -> list[Record]:
    """Read a FASTA file into a list of validated :class:`Record`.

    Parameters
    ----------
    path : str or path-like
        A plain-text or gzip-compressed FASTA file.
    on_error : {"raise", "skip"}
        ``"raise"``: any problem raises one DataError naming the file and listing every bad
        record by id and line. ``"skip"``: bad records are left out and a
        :class:`FastaWarning` lists them; use :func:`read_fasta_report` to get the problems as
        data.

    Returns
    -------
    list of Record
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    path = Path(path)
    records, problems = read_fasta_report(path)
    if problems:
        message = _summarise(path, problems)
        if on_error == "raise":
            raise DataError(message)
        warnings.warn("skipped " + message, FastaWarning, stacklevel=2)
    return records


# ----------------------------------------------------------------------------------------------
# the book's sequence sets
# ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _opencell_sequences(key: tuple[str, int, int]) -> dict[str, str]:
    records = read_fasta(key[0])
    return {r.id: r.sequence for r in records}


def opencell_sequences(path: str | PathLike | None = None) -> dict[str, str]:
    """Full-length sequences of the 1310 OpenCell targets, ``{gene name: sequence}``.

    Parameters
    ----------
    path : str or path-like, optional
        Your own copy of the FASTA file (ids = gene names); defaults to the registered
        ``opencell/protein-sequences.fasta`` (headers ``>GENE uniprot=ACCESSION``).

    Returns
    -------
    dict
        Gene name → upper-case sequence, in file order. A fresh dict on every call.
    """
    return dict(_opencell_sequences(_key(path, "opencell/protein-sequences.fasta")))


_UNIPROT_ID = re.compile(r"^(?P<db>sp|tr)\|(?P<accession>[^|]+)\|(?P<entry>\S+)$")
_GN = re.compile(r"(?:^|\s)GN=(\S+)")
_OLN = re.compile(r"OrderedLocusNames=([^\s;,]+)")
_OS = re.compile(r"\s(?:OS|OX|GN|PE|SV)=")
#: Systematic S. cerevisiae ORF names (nuclear YxxNNNw[-A], mitochondrial Q0NNNN, 2-micron R0NNNw).
YEAST_ORF = re.compile(r"^(?:Y[A-P][LR]\d{3}[WC](?:-[A-Z])?|Q\d{4}|R\d{4}[WC]?)$")


@lru_cache(maxsize=4)
def _yeast_proteome(key: tuple[str, int, int]) -> pd.DataFrame:
    rows = []
    for r in read_fasta(key[0]):
        m = _UNIPROT_ID.match(r.id)
        if m is None:
            raise DataError(
                f"{key[0]}: line {r.line}: record {r.id!r}: not a UniProt id (expected sp|ACCESSION|ENTRY)"
            )
        gn = _GN.search(r.description)
        gene = gn.group(1) if gn else None
        oln = _OLN.search(r.description)
        if oln:
            orf = oln.group(1)
        elif gene is not None and YEAST_ORF.match(gene):
            orf = gene
        else:
            orf = None
        name = _OS.split(r.description, maxsplit=1)[0].strip()
        rows.append((m["accession"], m["entry"], name, gene, orf, r.sequence))
    return pd.DataFrame(rows, columns=["accession", "entry_name", "protein_name", "gene", "orf", "sequence"])


def yeast_proteome(
    path: str | PathLike | None = None, *, gene_to_orf: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The UniProt S. cerevisiae reference proteome (UP000002311) as a tidy table.

    The ORF (systematic name) is taken from ``OrderedLocusNames=`` when the header has it (the
    UniProt *FASTA* header usually does not), else from ``GN=`` when the gene name is itself a
    systematic ORF name (uncharacterised ORFs, 873 of the 6059 entries in the registered file),
    else from ``gene_to_orf`` (case-insensitive on the gene name), else it is missing. To link
    the proteome to YeastGFP pass its gene names::

        gfp = catalogs.yeastgfp()
        yeast_proteome(gene_to_orf=dict(zip(gfp.gene.dropna(), gfp.orf[gfp.gene.notna()])))

    Parameters
    ----------
    path : str or path-like, optional
        Your own copy (plain or gzip); defaults to ``yeast/uniprot-UP000002311-proteome.fasta.gz``.
    gene_to_orf : mapping, optional
        Standard gene name → ORF, used for entries whose header names no ORF.

    Returns
    -------
    pandas.DataFrame
        One row per entry, with columns

        - ``accession`` (str): UniProt accession, e.g. ``P04806``;
        - ``entry_name`` (str): UniProt entry name, e.g. ``HXKA_YEAST``;
        - ``protein_name`` (str): the header's description up to ``OS=``;
        - ``gene`` (str or None): the ``GN=`` value;
        - ``orf`` (str or None): the systematic ORF name, resolved as above;
        - ``sequence`` (str): upper-case amino acids.
    """
    df = _yeast_proteome(_key(path, "yeast/uniprot-UP000002311-proteome.fasta.gz")).copy()
    if gene_to_orf:
        upper = {str(k).upper(): v for k, v in gene_to_orf.items()}
        missing = df["orf"].isna() & df["gene"].notna()
        df.loc[missing, "orf"] = df.loc[missing, "gene"].str.upper().map(upper)
        df["orf"] = df["orf"].astype(object).where(df["orf"].notna(), None)
    return df
