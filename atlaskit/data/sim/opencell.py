"""OpenCell-like images: HEK293T cells, 2 channels (tagged protein, Hoechst), nucleus-centred crops.

One simulated protein per real OpenCell target (1310, from
:func:`atlaskit.data.catalogs.opencell_proteins`). A protein's pattern mixes renderers for its
graded compartments — grade 3 at weight ~1, grade 2 ~0.4, grade 1 ~0.12 — with parameters drawn
once from the gene name (so two nucleolar proteins differ in granularity, rim, background …),
and an abundance that sets its photon budget (dim proteins are noisier).

A crop is the 100×100 window around a nucleus of a small simulated neighbourhood (the centre
cell and up to 12 neighbours on a jittered hexagonal lattice), rendered directly with a 10-pixel
margin so that blur and neighbours are right at the border.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from atlaskit.data.sim._core import (
    ItemRNG, SimBatch, check_count, check_seed, item_generator, map_ordered, protein_generator, unknown,
)
from atlaskit.data.sim.cells import CELL_LINES, crop_layout, field_layout, instance_masks, mammalian_geometry
from atlaskit.data.sim.compartments import Component, draw_params, render_components
from atlaskit.data.sim.optics import (
    Optics, acquire, crop_margin, draw_focus, form_image, minmax, otf_for, percentile_scale,
)
from atlaskit.errors import DataError

#: OpenCell compartment → renderer in :data:`COMPARTMENT_RENDERERS`.
OPENCELL_RENDERERS: dict[str, str] = {
    "nucleoplasm": "nucleoplasm",
    "cytoplasmic": "cytoplasm",
    "vesicles": "vesicles",
    "er": "er",
    "golgi": "golgi",
    "mitochondria": "mitochondria",
    "nucleolus_gc": "nucleolus_gc",
    "nucleolus_fc_dfc": "nucleolus_fc_dfc",
    "nuclear_membrane": "nuclear_membrane",
    "nuclear_punctae": "nuclear_speckles",
    "chromatin": "chromatin",
    "cytoskeleton": "cytoskeleton",
    "membrane": "plasma_membrane",
    "centrosome": "centrosome",
    "cell_contact": "cell_contact",
    "focal_adhesions": "focal_adhesions",
    "big_aggregates": "aggregates",
}

#: Weight range of a compartment by annotation grade (3 prominent, 2 less prominent, 1 weak).
GRADE_WEIGHTS = {3: (0.8, 1.2), 2: (0.3, 0.55), 1: (0.08, 0.18)}

#: Spinning-disk confocal of the OpenCell pipeline, at the 100×100-crop sampling.
OPENCELL_OPTICS = Optics(psf_sigma=1.1, focus_sigma=0.5, halo=0.06, halo_sigma=8.0, peak_photons=350.0,
                         exposure_sd=0.25, background=8.0, offset=100.0, gain=2.0, read_noise=3.0)
#: Hoechst: shorter wavelength, bright stain.
NUCLEUS_PSF = 1.0
NUCLEUS_PHOTONS = 900.0

CROP = 100
MARGIN = 10
NORMALIZATIONS = ("paper", "percentile", "raw")


@dataclass(frozen=True)
class ProteinSpec:
    """A simulated protein: name, components (compartment, weight, parameters), abundance.

    ``grades`` maps the protein's annotated compartments (style vocabulary, e.g. OpenCell names)
    to their grade; ``info`` carries catalog columns copied into the metadata (family …).
    """

    name: str
    components: tuple
    abundance: float
    grades: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def make_protein(name: str, grades: dict, seed: int = 0, style: str = "opencell", info: dict | None = None) -> ProteinSpec:
    """A :class:`ProteinSpec` from annotated compartments ``{compartment: grade}`` (OpenCell names).

    Parameters are drawn from ``(seed, style, name)``: the same gene always gets the same
    pattern; another seed gives a different (but equally plausible) simulated proteome.
    """
    check_seed(seed)
    if not grades:
        raise DataError(f"protein {name!r}: no annotated compartment to simulate")
    rng = protein_generator(seed, style, name)
    abundance = float(np.exp(rng.uniform(np.log(0.15), np.log(4.0))))
    comps = []
    for comp, grade in sorted(grades.items(), key=lambda kv: (-int(kv[1]), kv[0])):
        if comp not in OPENCELL_RENDERERS:
            raise unknown("OpenCell compartment", comp, OPENCELL_RENDERERS)
        if int(grade) not in GRADE_WEIGHTS:
            raise DataError(f"protein {name!r}: grade {grade!r} of {comp!r} is not 1, 2 or 3")
        lo, hi = GRADE_WEIGHTS[int(grade)]
        w = float(rng.uniform(lo, hi))
        renderer = OPENCELL_RENDERERS[comp]
        comps.append(Component(renderer, w, draw_params(renderer, rng)))
    # two OpenCell names never share a renderer, so components are unique by renderer
    return ProteinSpec(name, tuple(comps), abundance, dict(grades), dict(info or {}))


@lru_cache(maxsize=4)
def _catalog_specs(seed: int) -> dict:
    from atlaskit.data.catalogs import opencell_proteins

    table = opencell_proteins()
    out = {}
    for row in table.itertuples(index=False):
        grades = {c: 1 for c in row.grade1}
        grades.update({c: 2 for c in row.grade2})
        grades.update({c: 3 for c in row.grade3})
        info = {"grade3": tuple(row.grade3), "grade2": tuple(row.grade2), "grade1": tuple(row.grade1),
                "family": row.family, "major": row.major}
        out[row.gene] = make_protein(row.gene, grades, seed, "opencell", info)
    return out


def opencell_specs(proteins=None, seed: int = 0) -> list[ProteinSpec]:
    """Protein specs for OpenCell genes (all 1310 by default), from the real annotations.

    ``proteins`` may be a gene name, a list of gene names and/or :class:`ProteinSpec` (custom
    proteins, e.g. from :func:`make_protein`), or a DataFrame with columns ``gene, grade3,
    grade2, grade1`` (tuples of OpenCell compartments). Unknown genes raise :class:`DataError`.
    """
    seed = check_seed(seed)
    if isinstance(proteins, pd.DataFrame):
        missing = {"gene", "grade3", "grade2", "grade1"} - set(proteins.columns)
        if missing:
            raise DataError(f"protein table lacks columns {sorted(missing)}")
        specs = []
        for row in proteins.itertuples(index=False):
            grades = {c: 1 for c in row.grade1}
            grades.update({c: 2 for c in row.grade2})
            grades.update({c: 3 for c in row.grade3})
            specs.append(make_protein(row.gene, grades, seed, "opencell",
                                      {"grade3": tuple(row.grade3), "grade2": tuple(row.grade2), "grade1": tuple(row.grade1)}))
        return specs
    if isinstance(proteins, (str, ProteinSpec)):
        proteins = [proteins]
    if proteins is not None and not all(isinstance(p, ProteinSpec) for p in proteins):
        catalog = _catalog_specs(seed)
    elif proteins is None:
        return list(_catalog_specs(seed).values())
    else:
        catalog = {}
    specs = []
    for p in proteins:
        if isinstance(p, ProteinSpec):
            specs.append(p)
        elif p in catalog:
            specs.append(catalog[p])
        else:
            raise unknown("OpenCell protein", p, catalog)
    if not specs:
        raise ValueError("proteins is empty")
    return specs


def _normalization(normalize: str) -> str:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return normalize


def _render_opencell(specs: Sequence[ProteinSpec], items: list[tuple[int, int]], seed: int, *, size: int, margin: int,
                     layout: str, normalize: str, masks: bool, cell_line: str, scale: float = 1.0,
                     density=None) -> SimBatch:
    """Render images ``items = [(protein position, image index), ...]`` of ``specs``."""
    morph = CELL_LINES[cell_line]
    S = size + 2 * margin
    rng = ItemRNG([item_generator(seed, "opencell", specs[p].name, i) for p, i in items])
    b = len(items)
    if layout == "crop":
        cs = crop_layout(rng, morph, S, scale)
    else:
        cs = field_layout(rng, morph, S, scale, density=density)
    g = mammalian_geometry(cs, S, rng, morph, scale)
    comps = [specs[p].components for p, _ in items]
    sharp, spots = render_components(g, rng, comps)
    optics = OPENCELL_OPTICS
    focus = draw_focus(rng, optics, scale)
    exposure = np.exp(rng.normal(()) * np.float32(optics.exposure_sd)).astype(np.float32)
    otf, psf = otf_for(optics, (S, S), focus, scale)
    prot = crop_margin(form_image(sharp, spots, otf, (S, S)), margin)
    otf_n, _ = otf_for(optics, (S, S), focus, scale, psf_sigma=NUCLEUS_PSF)
    nuc = crop_margin(form_image(g.dna, [], otf_n, (S, S)), margin)
    abundance = np.array([specs[p].abundance for p, _ in items], np.float32)
    raw_p = acquire(np.ascontiguousarray(prot), rng, optics, peak=optics.peak_photons * abundance * exposure)
    nuc_level = np.float32(NUCLEUS_PHOTONS) * exposure
    raw_n = acquire(np.ascontiguousarray(nuc), rng, optics, peak=nuc_level,
                    ref=np.full(b, 1.0, np.float32))
    if normalize == "paper":
        p_img = minmax(raw_p)
    elif normalize == "percentile":
        p_img = percentile_scale(raw_p)
    else:
        p_img = raw_p
    images = np.stack([p_img, raw_n], 1).astype(np.float32, copy=False)
    cm, nm = instance_masks(g.owner, g.nuc_soft >= 0.5, margin)
    n_cells = np.array([len(np.unique(c[c > 0])) for c in cm])
    rows = []
    for j, (p, i) in enumerate(items):
        sp = specs[p]
        row = {"protein": sp.name, "protein_pos": p, "index": i, "field_id": f"opencell/{sp.name}/{i}",
               "cell_line": cell_line, "abundance": sp.abundance, "exposure": float(exposure[j]),
               "focus": float(focus[j]), "n_cells": int(n_cells[j]),
               "nucleus_area": int((nm[j] == 1).sum()) if layout == "crop" else int((nm[j] > 0).sum()),
               "normalization": {"paper": "protein: per-image min-max to [0, 1]; nucleus: raw counts",
                                 "percentile": "protein: per-image 0.1-99.9 percentile to [0, 1], clipped; nucleus: raw counts",
                                 "raw": "raw counts (uint16 scale) in both channels"}[normalize]}
        row.update({k: v for k, v in sp.info.items()})
        row["compartments"] = tuple(c.compartment for c in sp.components)
        rows.append(row)
    meta = pd.DataFrame(rows)
    batch = SimBatch(images, meta, ("protein", "nucleus"))
    if masks:
        batch.cell_masks, batch.nucleus_masks = cm, nm
    if layout == "field":
        recs = []
        for j in range(b):
            ids, areas = np.unique(cm[j], return_counts=True)
            for cid, a in zip(ids, areas):
                if cid == 0:
                    continue
                recs.append({"image": j, "cell_id": int(cid), "area": int(a),
                             "nucleus_area": int((nm[j] == cid).sum()),
                             "expression": float(cs.expr[j, cid - 1])})
        batch.cells = pd.DataFrame(recs, columns=["image", "cell_id", "area", "nucleus_area", "expression"])
    return batch


def iter_opencell_crops(proteins=None, n_per_protein: int = 40, seed: int = 0, *, batch_size: int = 128,
                        normalize: str = "paper", masks: bool = False, start: int = 0,
                        cell_line: str = "HEK293T", workers: int | None = None) -> Iterator[SimBatch]:
    """Yield batches of OpenCell-like crops, protein by protein (memory flat in the total count).

    Parameters
    ----------
    proteins : None, str, list of str / ProteinSpec, or DataFrame
        Which proteins (see :func:`opencell_specs`); None = all 1310 OpenCell targets.
    n_per_protein : int
        Crops per protein (image indices ``start .. start + n_per_protein - 1``).
    seed : int
        Base seed; crop ``i`` of gene ``g`` is identical whatever the batching.
    batch_size : int
        Crops per yielded batch (rendered in chunks of at most 64).
    normalize : {"paper", "percentile", "raw"}
        ``"paper"`` (cytoself): protein min-max scaled to [0, 1] per image, nucleus left in raw
        counts (the cytoself pipeline replaces it by a signed distance transform of a
        segmentation, see :func:`signed_distance_transform`); ``"percentile"``: protein
        0.1–99.9 percentiles → [0, 1]; ``"raw"``: both channels in raw counts (0–65535).
    masks : bool
        Also return cell and nucleus instance masks (the centre cell has id 1).
    start : int
        First image index (to extend a data set without re-rendering it).
    cell_line : str
        Morphology (key of :data:`CELL_LINES`), HEK293T as in OpenCell.
    workers : int, optional
        Threads rendering chunks in parallel (default ``ATLASKIT_SIM_WORKERS`` or min(2, CPUs));
        the pixels do not depend on it.

    Yields
    ------
    SimBatch
        ``images`` (n, 2, 100, 100) float32 (protein, nucleus); ``meta`` with columns
        ``protein, protein_pos, index, field_id, cell_line, abundance, exposure, focus, n_cells,
        nucleus_area, normalization, grade3, grade2, grade1, family, major, compartments``.
    """
    specs = opencell_specs(proteins, seed)
    n_per_protein = check_count(n_per_protein, "n_per_protein")
    batch_size = check_count(batch_size, "batch_size")
    normalize = _normalization(normalize)
    if cell_line not in CELL_LINES:
        raise unknown("cell line", cell_line, CELL_LINES)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    chunk = min(batch_size, 64)
    items = [(p, start + i) for p in range(len(specs)) for i in range(n_per_protein)]
    chunks = (items[lo:lo + chunk] for lo in range(0, len(items), chunk))

    def render(part):
        return _render_opencell(specs, part, seed, size=CROP, margin=MARGIN, layout="crop",
                                normalize=normalize, masks=masks, cell_line=cell_line)

    yield from rebatch(map_ordered(render, chunks, workers), batch_size)


def rebatch(batches, batch_size: int):
    """Regroup a stream of :class:`SimBatch` into batches of exactly ``batch_size`` (last may be short)."""
    pending: list[SimBatch] = []
    n = 0
    for b in batches:
        pending.append(b)
        n += len(b)
        while n >= batch_size:
            out = SimBatch.concat(pending)
            yield _head(out, batch_size)
            rest = _tail(out, batch_size)
            pending = [rest] if rest is not None else []
            n = len(rest) if rest is not None else 0
    if pending:
        out = SimBatch.concat(pending)
        if len(out):
            yield out


def _head(b: SimBatch, n: int) -> SimBatch:
    return _slice(b, slice(0, n))


def _tail(b: SimBatch, n: int) -> SimBatch | None:
    return _slice(b, slice(n, None)) if len(b) > n else None


def _slice(b: SimBatch, sl: slice) -> SimBatch:
    lo, hi, _ = sl.indices(len(b))
    cells = None
    if b.cells is not None:
        cells = b.cells[(b.cells["image"] >= lo) & (b.cells["image"] < hi)].copy()
        cells["image"] -= lo
        cells = cells.reset_index(drop=True)
    return SimBatch(
        b.images[sl], b.meta.iloc[sl].reset_index(drop=True), b.channels,
        None if b.cell_masks is None else b.cell_masks[sl],
        None if b.nucleus_masks is None else b.nucleus_masks[sl], cells,
    )


def opencell_crops(proteins=None, n_per_protein: int = 40, seed: int = 0, **kw) -> SimBatch:
    """All crops of :func:`iter_opencell_crops` in one :class:`SimBatch` (for small sets)."""
    return SimBatch.concat(list(iter_opencell_crops(proteins, n_per_protein, seed, **kw)))


def opencell_field(protein, seed: int = 0, *, size: int = 512, index: int = 0, normalize: str = "paper",
                   density: float | None = None, cell_line: str = "HEK293T") -> SimBatch:
    """One OpenCell-like field of view (many HEK293T cells) with instance masks.

    Parameters
    ----------
    protein : str or ProteinSpec
    seed, index : int
        The field is image ``index`` of the protein (independent of the crops' indices' pixels:
        fields and crops use different layouts).
    size : int
        Field side in pixels (at the crop sampling: a nucleus is ~35 px across).
    normalize : as in :func:`iter_opencell_crops`.
    density : float in (0, 1], optional
        Fraction of occupied lattice sites (default: drawn from the cell line's range).

    Returns
    -------
    SimBatch
        1 image ``(1, 2, size, size)``, ``cell_masks``/``nucleus_masks`` ``(1, size, size)`` and a
        ``cells`` table (cell_id, area, nucleus_area, expression). Cut cell-centred crops from it
        with :mod:`atlaskit.data.segment`.
    """
    specs = opencell_specs([protein] if not isinstance(protein, list) else protein, seed)
    if len(specs) != 1:
        raise ValueError("opencell_field renders one protein")
    size = check_count(size, "size")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if density is not None and not 0 < float(density) <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if cell_line not in CELL_LINES:
        raise unknown("cell line", cell_line, CELL_LINES)
    return _render_opencell(specs, [(0, int(index))], seed, size=size, margin=MARGIN, layout="field",
                            normalize=_normalization(normalize), masks=True, cell_line=cell_line, density=density)
