"""Protein structures (AlphaFold models) as residue point clouds: reading, naming, featurising.

Files are read with biotite (PDB: ``.pdb``/``.ent``; mmCIF: ``.cif``/``.mmcif``; BinaryCIF:
``.bcif``), never by a hand-written parser. An AlphaFold model stores its per-residue confidence
(pLDDT, 0–100) in the B-factor column; :func:`read_structure` returns it per residue.

A folder of structures names every file by its protein's UniProt accession:
``AF-<id>-F1-model_v<k>.pdb`` (the AlphaFold DB's names), ``<id>.cif``, ``<id>.pdb``…
(:func:`uniprot_of`, :func:`structure_files`).

A point cloud (:func:`point_cloud`) has one point per residue: its Cα coordinates, centred on
the protein's centroid and divided by :data:`COORD_SCALE` (Å), followed by the residue type
(one-hot over the 20 standard amino acids, plus one column for any other) and pLDDT / 100.
:func:`pad_clouds` stacks clouds of different lengths into ``(batch, points, features)`` with a
mask of the real points.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from atlaskit.errors import DataError, ParameterError

__all__ = ["AMINO_ACIDS", "COORD_SCALE", "N_POINT_FEATURES", "STRUCTURE_SUFFIXES", "Structure", "read_structure",
           "uniprot_of", "structure_files", "point_cloud", "pad_clouds"]

#: The 20 standard residues (three-letter codes), in one-letter alphabetical order (ACDEFGHIKLMNPQRSTVWY).
AMINO_ACIDS = ("ALA", "CYS", "ASP", "GLU", "PHE", "GLY", "HIS", "ILE", "LYS", "LEU",
               "MET", "ASN", "PRO", "GLN", "ARG", "SER", "THR", "VAL", "TRP", "TYR")
_ONE_LETTER = dict(zip(AMINO_ACIDS, "ACDEFGHIKLMNPQRSTVWY"))
#: Coordinates are divided by this many ångström (a protein of a few hundred residues spans ~±5).
COORD_SCALE = 10.0
#: Features per point: x, y, z, 20 residue types + "other", pLDDT / 100.
N_POINT_FEATURES = 3 + len(AMINO_ACIDS) + 1 + 1
#: File suffixes read as structures (lower case).
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".bcif")
#: A UniProt accession (UniProt's documented pattern).
_UNIPROT = r"(?:[OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2})"
_NAME = re.compile(rf"^(?:AF-)?(?P<id>{_UNIPROT})(?:-F(?P<fragment>\d+)(?:-model_v(?P<version>\d+))?)?$")


@dataclass(frozen=True)
class Structure:
    """One protein chain's residues.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    uniprot : str or None
        The accession from the file name (None when the name carries none).
    sequence : str
        One letter per residue (``X`` for a non-standard one).
    residues : numpy.ndarray
        ``(n,)`` three-letter residue names.
    coords : numpy.ndarray
        ``(n, 3)`` Cα coordinates in ångström, as in the file.
    plddt : numpy.ndarray
        ``(n,)`` the B-factor column of the Cα atoms (pLDDT for an AlphaFold model).
    """

    path: Path
    uniprot: str | None
    sequence: str
    residues: np.ndarray
    coords: np.ndarray
    plddt: np.ndarray

    def __len__(self) -> int:
        return len(self.sequence)


def uniprot_of(path: str | Path) -> str | None:
    """The UniProt accession a structure file is named by, or None.

    ``AF-Q96HM7-F1-model_v4.pdb`` → ``Q96HM7``; ``O15552.cif`` → ``O15552``; ``notes.pdb`` → None.
    """
    name = Path(path).name
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        return None
    match = _NAME.match(name)
    return match.group("id") if match else None


def _version(path: Path) -> int:
    match = _NAME.match(path.name.split(".")[0])
    return int(match.group("version") or 0) if match else 0


def structure_files(folder: str | Path) -> dict[str, Path]:
    """The structure files of ``folder`` by UniProt accession (files named otherwise are ignored).

    When a protein has several files, the highest AlphaFold model version wins, then PDB before
    mmCIF, then the first name in sorted order, so the choice never depends on the file system.

    Raises
    ------
    DataError
        ``folder`` is not a folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"structures_dir {folder}: no such folder")
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        uniprot = uniprot_of(path) if path.is_file() else None
        if uniprot:
            found.setdefault(uniprot, []).append(path)

    def preference(p: Path):
        return (-_version(p), p.suffix.lower() not in (".pdb", ".ent"), p.name)

    return {u: sorted(paths, key=preference)[0] for u, paths in sorted(found.items())}


def _load_atoms(path: Path):
    """Every atom of the first model, with its B-factor (biotite ``AtomArray``)."""
    suffix = path.suffix.lower()
    if suffix in (".pdb", ".ent"):
        from biotite.structure.io.pdb import PDBFile

        return PDBFile.read(str(path)).get_structure(model=1, extra_fields=["b_factor"])
    if suffix in (".cif", ".mmcif", ".bcif"):
        from biotite.structure.io import pdbx

        file = pdbx.BinaryCIFFile.read(str(path)) if suffix == ".bcif" else pdbx.CIFFile.read(str(path))
        return pdbx.get_structure(file, model=1, extra_fields=["b_factor"])
    raise DataError(f"{path}: not a structure file (expected one of {', '.join(STRUCTURE_SUFFIXES)})")


def read_structure(path: str | Path, *, chain: str | None = None) -> Structure:
    """Read the Cα atoms of one chain of a PDB or mmCIF file (biotite).

    Parameters
    ----------
    path : path-like
        A ``.pdb``/``.ent``, ``.cif``/``.mmcif`` or ``.bcif`` file.
    chain : str, optional
        The chain to read; by default the first chain with amino-acid residues (an AlphaFold
        model has one, ``A``).

    Returns
    -------
    Structure

    Raises
    ------
    DataError
        One line naming the file: it is missing, cannot be parsed, holds no amino-acid Cα atoms
        (or not in ``chain``), or its B-factors are not pLDDT values (outside 0–100).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"structure file {path}: not found")
    try:
        atoms = _load_atoms(path)
    except DataError:
        raise
    except Exception as exc:  # biotite raises several types for a garbled file
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(f"structure file {path}: cannot be read as {path.suffix.lstrip('.').upper()} ({detail})") from None
    import biotite.structure as struc

    ca = atoms[struc.filter_amino_acids(atoms) & (atoms.atom_name == "CA") & (atoms.element == "C")]
    if len(ca) == 0:
        raise DataError(f"structure file {path}: no amino-acid Cα atoms")
    chain = str(ca.chain_id[0]) if chain is None else chain
    ca = ca[ca.chain_id == chain]
    if len(ca) == 0:
        raise DataError(f"structure file {path}: no Cα atoms in chain {chain!r}")
    # biotite keeps the first alternate location of an atom (altloc="first"): one Cα per residue
    plddt = np.asarray(ca.b_factor, dtype=np.float32)
    if not np.all(np.isfinite(plddt)) or plddt.min() < 0 or plddt.max() > 100:
        raise DataError(f"structure file {path}: B-factors {plddt.min():.1f}–{plddt.max():.1f} are not pLDDT "
                        "values (0–100); is it an AlphaFold model?")
    residues = np.asarray(ca.res_name).astype(str)
    sequence = "".join(_ONE_LETTER.get(r, "X") for r in residues)
    return Structure(path, uniprot_of(path), sequence, residues, np.asarray(ca.coord, dtype=np.float32), plddt)


def point_cloud(structure: Structure, *, max_points: int | None = None) -> np.ndarray:
    """The residues of ``structure`` as points: ``(n, N_POINT_FEATURES)`` float32.

    Columns: centred Cα coordinates / :data:`COORD_SCALE`, one-hot residue type (20 standard +
    other), pLDDT / 100. With ``max_points``, a longer chain keeps ``max_points`` residues evenly
    spaced along it (always the same ones), centred on the centroid of all residues.
    """
    coords = structure.coords - structure.coords.mean(axis=0, keepdims=True)  # (n, 3)
    index = {r: i for i, r in enumerate(AMINO_ACIDS)}
    kinds = np.array([index.get(r, len(AMINO_ACIDS)) for r in structure.residues])
    onehot = np.eye(len(AMINO_ACIDS) + 1, dtype=np.float32)[kinds]  # (n, 21)
    cloud = np.concatenate([coords / COORD_SCALE, onehot, structure.plddt[:, None] / 100.0], axis=1)
    if max_points is not None:
        if int(max_points) < 1:
            raise ParameterError(f"max_points must be at least 1, got {max_points!r}")
        if len(cloud) > max_points:
            cloud = cloud[np.linspace(0, len(cloud) - 1, int(max_points)).round().astype(int)]
    return cloud.astype(np.float32)


def pad_clouds(clouds: Iterable[np.ndarray] | Mapping[str, np.ndarray], *,
               max_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack point clouds of different lengths: ``points (batch, N, F)`` float32 and ``mask (batch, N)`` bool.

    ``N`` is the longest cloud (or ``max_points``; longer clouds keep evenly spaced points). Padded
    rows are zeros with ``mask`` False.
    """
    clouds = list(clouds.values()) if isinstance(clouds, Mapping) else list(clouds)
    if not clouds:
        raise DataError("no point clouds to stack")
    widths = {c.shape[1] for c in clouds}
    if len(widths) != 1:
        raise DataError(f"point clouds with different numbers of features: {sorted(widths)}")
    if max_points is not None:
        clouds = [c if len(c) <= max_points else c[np.linspace(0, len(c) - 1, max_points).round().astype(int)]
                  for c in clouds]
    n = max(len(c) for c in clouds)
    points = np.zeros((len(clouds), n, widths.pop()), dtype=np.float32)  # (batch, N, F)
    mask = np.zeros((len(clouds), n), dtype=bool)  # (batch, N)
    for i, c in enumerate(clouds):
        points[i, : len(c)] = c
        mask[i, : len(c)] = True
    return points, mask
