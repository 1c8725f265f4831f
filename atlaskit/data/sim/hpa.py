"""HPA-like images (Cyto-2017 / Kaggle style): fields of several cells, 4 channels.

Channels: protein (green), nucleus (blue, DAPI), microtubules (red), ER (yellow), exported as
8-bit PNGs would be (per image and channel, the 99.9th percentile mapped to 50–100 % of the
8-bit range, quantised, divided by 255). Cell lines U-2 OS (large, flat, spread), A-431 (small, compact,
growing in colonies) and HeLa (medium, elongated) — drawn per image.

Proteins take their multi-label sets from the real Kaggle HPA table mapped to the 13 Cyto-2017
classes (:func:`atlaskit.data.catalogs.cyto2017_label_sets`): simulated protein ``i`` has the
label set of a real image, so label frequencies and co-occurrences are the real ones.

Per-cell heterogeneity: with ``cell_fraction < 1`` each cell of a field shows each of the
protein's classes with that probability (at least one cell per class, so the image label stays
true); the per-cell truth is in ``SimBatch.cells`` — the quantity the CNN-vs-FCN chapter varies.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from atlaskit.data.sim._core import (
    ItemRNG, SimBatch, check_count, check_seed, item_generator, map_ordered, protein_generator, unknown,
)
from atlaskit.data.sim.cells import CELL_LINES, field_layout, mammalian_geometry
from atlaskit.data.sim.compartments import Component, draw_params, render_components
from atlaskit.data.sim.opencell import ProteinSpec, rebatch
from atlaskit.data.sim.optics import Optics, acquire, crop_margin, draw_focus, form_image, otf_for, to_uint8_scale
from atlaskit.errors import DataError

#: The 13 Cyto-2017 classes (same order as ``atlaskit.data.catalogs.CYTO2017_CLASSES``).
CYTO2017 = ("actin filaments", "centrosome", "cytosol", "endoplasmic reticulum", "golgi apparatus",
            "intermediate filaments", "microtubules", "mitochondria", "nuclear membrane", "nucleoli",
            "nucleus", "plasma membrane", "vesicles")

#: Cyto-2017 class → renderer variants ``(renderer, probability)``; each protein picks one.
HPA_RENDERERS: dict[str, tuple] = {
    "actin filaments": (("actin", 0.8), ("focal_adhesions", 0.2)),
    "centrosome": (("centrosome", 1.0),),
    "cytosol": (("cytoplasm", 1.0),),
    "endoplasmic reticulum": (("er", 1.0),),
    "golgi apparatus": (("golgi", 1.0),),
    "intermediate filaments": (("intermediate_filaments", 1.0),),
    "microtubules": (("microtubules", 1.0),),
    "mitochondria": (("mitochondria", 1.0),),
    "nuclear membrane": (("nuclear_membrane", 1.0),),
    "nucleoli": (("nucleolus_gc", 0.75), ("nucleolus_fc_dfc", 0.25)),
    "nucleus": (("nucleoplasm", 0.6), ("nuclear_speckles", 0.4)),
    "plasma membrane": (("plasma_membrane", 0.8), ("cell_contact", 0.2)),
    "vesicles": (("vesicles", 0.85), ("aggregates", 0.15)),
}
HPA_CELL_LINES = ("U-2 OS", "A-431", "HeLa")
CHANNELS = ("protein", "nucleus", "microtubules", "er")

HPA_OPTICS = Optics(psf_sigma=1.3, focus_sigma=0.5, halo=0.04, halo_sigma=10.0, peak_photons=180.0,
                    exposure_sd=0.25, background=2.0, offset=50.0, gain=1.5, read_noise=2.0)
_REF_MT = {"density": 55.0, "width": 0.3, "curvature": 0.07, "nuclear_dim": 0.5, "mtoc": 0.1, "diffuse": 0.15}
_REF_ER = {"mesh": 2.2, "width": 0.4, "perinuclear": 0.9, "rim": 0.5, "diffuse": 0.15}
_PHOTONS = {"protein": 1.0, "nucleus": 2.5, "microtubules": 1.2, "er": 1.2}
REFERENCE_SIZE = 512


def make_hpa_protein(name: str, labels: Sequence[str], seed: int = 0, info: dict | None = None) -> ProteinSpec:
    """A simulated HPA protein with the given Cyto-2017 ``labels`` (parameters drawn from ``name``)."""
    check_seed(seed)
    labels = tuple(labels)
    if not labels:
        raise DataError(f"protein {name!r}: empty label set")
    rng = protein_generator(seed, "hpa", name)
    abundance = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    comps = []
    for lab in sorted(set(labels), key=lambda c: CYTO2017.index(c) if c in CYTO2017 else -1):
        if lab not in HPA_RENDERERS:
            raise unknown("Cyto-2017 class", lab, HPA_RENDERERS)
        variants = HPA_RENDERERS[lab]
        u = rng.random()
        acc = 0.0
        renderer = variants[-1][0]
        for r, pr in variants:
            acc += pr
            if u < acc:
                renderer = r
                break
        comps.append(Component(renderer, float(rng.uniform(0.7, 1.2)), draw_params(renderer, rng)))
    return ProteinSpec(name, tuple(comps), abundance, {lab: 3 for lab in labels},
                       dict(info or {}, labels=tuple(sorted(set(labels), key=CYTO2017.index)), renderers=tuple(c.compartment for c in comps)))


@lru_cache(maxsize=2)
def _label_table() -> pd.DataFrame:
    from atlaskit.data.catalogs import cyto2017_label_sets

    return cyto2017_label_sets()


def hpa_specs(proteins=None, seed: int = 0) -> list[ProteinSpec]:
    """Simulated HPA proteins with real Cyto-2017 label sets.

    ``proteins``: None (every label set of the Kaggle table, ~31k), an int ``n`` (``n`` label
    sets sampled without replacement, seed-dependent), a list of Kaggle image ids and/or
    :class:`ProteinSpec`, or a DataFrame with columns ``id, labels``.
    """
    seed = check_seed(seed)
    if isinstance(proteins, pd.DataFrame):
        if not {"id", "labels"} <= set(proteins.columns):
            raise DataError("protein table needs columns 'id' and 'labels'")
        return [make_hpa_protein(r.id, r.labels, seed) for r in proteins.itertuples(index=False)]
    if isinstance(proteins, (bool, np.bool_)):
        raise ValueError(f"proteins must be None, a count, ids or specs, got {proteins!r}")
    table = None
    if proteins is None or isinstance(proteins, (int, np.integer)):
        table = _label_table()
        if proteins is None:
            rows = np.arange(len(table))
        else:
            n = check_count(proteins, "number of proteins")
            if n > len(table):
                raise ValueError(f"asked for {n} proteins, the label table has {len(table)}")
            rows = np.sort(np.random.default_rng(np.random.SeedSequence([seed, 12, 7])).choice(len(table), n, replace=False))
        sub = table.iloc[rows]
        return [make_hpa_protein(i, lab, seed) for i, lab in zip(sub["id"], sub["labels"])]
    if isinstance(proteins, (str, ProteinSpec)):
        proteins = [proteins]
    out = []
    index = None
    for p in proteins:
        if isinstance(p, ProteinSpec):
            out.append(p)
            continue
        if index is None:
            table = _label_table()
            index = dict(zip(table["id"], table["labels"]))
        if p not in index:
            raise unknown("HPA image id", p, index)
        out.append(make_hpa_protein(p, index[p], seed))
    if not out:
        raise ValueError("proteins is empty")
    return out


def _render_hpa(specs, items, seed, *, size, zoom, cell_lines, cell_fraction, masks) -> SimBatch:
    margin = max(8, int(round(12 * zoom)))
    S = size + 2 * margin
    rng_all = ItemRNG([item_generator(seed, "hpa", specs[p].name, i) for p, i in items])
    b = len(items)
    line_u = rng_all.random(())
    line_idx = np.minimum((line_u * len(cell_lines)).astype(int), len(cell_lines) - 1)
    parts = []
    for li in np.unique(line_idx):
        idx = np.flatnonzero(line_idx == li)
        parts.append((idx, _render_group(specs, [items[i] for i in idx], rng_all.take(idx), cell_lines[li], S, margin,
                                         zoom, cell_fraction, masks)))
    order = np.concatenate([idx for idx, _ in parts])
    batch = SimBatch.concat([bt for _, bt in parts])
    inv = np.empty(b, int)
    inv[order] = np.arange(b)
    images = batch.images[inv]
    meta = batch.meta.iloc[inv].reset_index(drop=True)
    cells = batch.cells.copy()
    cells["image"] = inv[cells["image"].to_numpy()] if len(cells) else cells["image"]
    cells = cells.sort_values(["image", "cell_id"]).reset_index(drop=True)
    out = SimBatch(images, meta, CHANNELS, None, None, cells)
    if masks:
        out.cell_masks = batch.cell_masks[inv]
        out.nucleus_masks = batch.nucleus_masks[inv]
    return out


def _render_group(specs, items, rng, line, S, margin, zoom, cell_fraction, masks) -> SimBatch:
    morph = CELL_LINES[line]
    b = len(items)
    cs = field_layout(rng, morph, S, zoom)
    K = cs.valid.shape[1]
    g = mammalian_geometry(cs, S, rng, morph, zoom)
    # which cells show which class
    P = rng.random((len(CYTO2017), K), dtype=np.float64)
    size = S - 2 * margin
    inner = g.owner[:, margin:S - margin, margin:S - margin]
    presence = []
    shown = np.zeros((b, len(CYTO2017), K), bool)
    for j, (p, _) in enumerate(items):
        sp = specs[p]
        counts = np.bincount(inner[j][inner[j] >= 0].ravel(), minlength=K)
        visible = counts > 0
        ctr = np.hypot(cs.cx[j] - (S - 1) / 2, cs.cy[j] - (S - 1) / 2)
        best = int(np.argmax(np.where(visible, counts - 1e-3 * ctr, -np.inf))) if visible.any() else 0
        pres = {}
        for lab, comp in zip(sp.info["labels"], sp.components):
            c = CYTO2017.index(lab)
            on = (P[j, c] < cell_fraction) & cs.valid[j]
            on[best] = True
            shown[j, c] = on
            pres[comp.compartment] = on.astype(np.float32)
        presence.append(pres)
    prot_s, prot_spots = render_components(g, rng, [specs[p].components for p, _ in items], presence)
    mt_s, mt_spots = render_components(g, rng, [(Component("microtubules", 1.0, _REF_MT),)] * b)
    er_s, er_spots = render_components(g, rng, [(Component("er", 1.0, _REF_ER),)] * b)
    optics = HPA_OPTICS
    focus = draw_focus(rng, optics, zoom)
    exposure = np.exp(rng.normal((4,)) * np.float32(optics.exposure_sd)).astype(np.float32)
    # exposure/display range: the 99.9th percentile lands at 50-100 % of the 8-bit range
    sat = (1.0 + rng.random((4,))).astype(np.float32)
    otf, _ = otf_for(optics, (S, S), focus, zoom)
    chans = []
    abundance = np.array([specs[p].abundance for p, _ in items], np.float32)
    for ci, (name, sharp, spots) in enumerate(
            [("protein", prot_s, prot_spots), ("nucleus", g.dna, []), ("microtubules", mt_s, mt_spots), ("er", er_s, er_spots)]):
        sig = crop_margin(form_image(sharp, spots, otf, (S, S)), margin)
        peak = optics.peak_photons * _PHOTONS[name] * exposure[:, ci] * (abundance if name == "protein" else 1.0)
        raw = acquire(np.ascontiguousarray(sig), rng, optics, peak=peak)
        flat = (raw - optics.offset).reshape(b, -1)
        k = int(0.999 * (flat.shape[1] - 1))
        level = np.partition(flat, k, axis=1)[:, k] * sat[:, ci]
        floor = optics.offset + optics.gain * optics.background * 1.8
        chans.append(to_uint8_scale(raw, floor, np.maximum(level - (floor - optics.offset), 1.0)))
    images = np.stack(chans, 1).astype(np.float32, copy=False)
    sl = (slice(None), slice(margin, S - margin), slice(margin, S - margin))
    cm = (g.owner[sl] + 1).astype(np.int32)
    nm = np.where(g.nuc_soft[sl] >= 0.5, cm, 0).astype(np.int32)
    rows, cells = [], []
    for j, (p, i) in enumerate(items):
        sp = specs[p]
        ids, areas = np.unique(cm[j], return_counts=True)
        n_cells = 0
        for cid, a in zip(ids, areas):
            if cid == 0:
                continue
            k = cid - 1
            m = cm[j] == cid
            border = bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
            labs = tuple(c for c in CYTO2017 if shown[j, CYTO2017.index(c), k])
            cells.append({"image": j, "cell_id": int(cid), "labels": labs, "n_labels": len(labs), "area": int(a),
                          "nucleus_area": int((nm[j] == cid).sum()), "border": border, "expression": float(cs.expr[j, k])})
            n_cells += 1
        labels = sp.info["labels"]
        rows.append({"protein": sp.name, "index": i, "labels": labels,
                     "label_idx": tuple(CYTO2017.index(c) for c in labels), "n_labels": len(labels),
                     "renderers": tuple(c.compartment for c in sp.components), "cell_line": line,
                     "field_id": f"hpa/{sp.name}/{i}", "n_cells": n_cells, "cell_fraction": float(cell_fraction),
                     "zoom": float(zoom), "abundance": sp.abundance, "focus": float(focus[j]),
                     "normalization": "8-bit per image and channel (99.9th percentile at 50-100 % of 255), / 255 → [0, 1]"})
    batch = SimBatch(images, pd.DataFrame(rows), CHANNELS, cm, nm,
                     pd.DataFrame(cells, columns=["image", "cell_id", "labels", "n_labels", "area", "nucleus_area", "border", "expression"]))
    if not masks:
        batch.cell_masks = batch.nucleus_masks = None
        # keep them for the reorder in _render_hpa only when asked
    return batch


def iter_hpa_fields(proteins=None, n_per_protein: int = 1, seed: int = 0, *, size: int = 256, zoom: float | None = None,
                    cell_lines: Sequence[str] = HPA_CELL_LINES, cell_fraction: float = 1.0, batch_size: int = 16,
                    masks: bool = False, start: int = 0, workers: int | None = None) -> Iterator[SimBatch]:
    """Yield batches of HPA-like fields, protein by protein.

    Parameters
    ----------
    proteins : None, int, list of ids / ProteinSpec, or DataFrame
        See :func:`hpa_specs` (an int ``n`` samples ``n`` real label sets).
    n_per_protein : int
        Fields per protein.
    seed : int
    size : int
        Field side in pixels (≥ 32), e.g. 256 (the CNN-vs-FCN input) or 512 (Kaggle).
    zoom : float, optional
        Rendered pixels per pixel of a Kaggle 512×512 image; default ``size / 512`` (the field of
        view of a Kaggle image whatever ``size``).
    cell_lines : sequence of str
        Cell lines to draw from (uniformly per image); keys of :data:`CELL_LINES`.
    cell_fraction : float in (0, 1]
        Probability that a cell shows each of the protein's classes (≥ 1 cell per class).
    batch_size : int
    masks : bool
        Also return cell and nucleus instance masks.
    start : int
        First image index.
    workers : int, optional
        Threads rendering in parallel (see :func:`iter_opencell_crops`).

    Yields
    ------
    SimBatch
        ``images`` (n, 4, size, size) float32 in [0, 1] (protein, nucleus, microtubules, ER);
        ``meta`` columns ``protein, index, labels, label_idx, n_labels, renderers, cell_line,
        field_id, n_cells, cell_fraction, zoom, abundance, focus, normalization``; ``cells`` one
        row per cell (``image, cell_id, labels, n_labels, area, nucleus_area, border,
        expression``), ``labels`` being the classes that cell shows.
    """
    specs = hpa_specs(proteins, seed)
    n_per_protein = check_count(n_per_protein, "n_per_protein")
    batch_size = check_count(batch_size, "batch_size")
    size = check_count(size, "size")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    zoom = size / REFERENCE_SIZE if zoom is None else float(zoom)
    if not 0.05 <= zoom <= 4:
        raise ValueError(f"zoom must be in [0.05, 4], got {zoom}")
    if isinstance(cell_lines, str):
        cell_lines = (cell_lines,)
    cell_lines = tuple(cell_lines)
    if not cell_lines:
        raise ValueError("cell_lines is empty")
    for c in cell_lines:
        if c not in CELL_LINES:
            raise unknown("cell line", c, CELL_LINES)
    if not 0 < float(cell_fraction) <= 1:
        raise ValueError(f"cell_fraction must be in (0, 1], got {cell_fraction!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    chunk = max(1, min(batch_size, int(1_000_000 // (size + 32) ** 2)))
    items = [(p, start + i) for p in range(len(specs)) for i in range(n_per_protein)]
    parts = (items[lo:lo + chunk] for lo in range(0, len(items), chunk))

    def render(part):
        return _render_hpa(specs, part, seed, size=size, zoom=zoom, cell_lines=cell_lines,
                           cell_fraction=float(cell_fraction), masks=masks)

    yield from rebatch(map_ordered(render, parts, workers), batch_size)


def hpa_fields(proteins=None, n_per_protein: int = 1, seed: int = 0, **kw) -> SimBatch:
    """All fields of :func:`iter_hpa_fields` in one :class:`SimBatch`."""
    if proteins is None:
        raise ValueError("hpa_fields needs proteins (e.g. an int: that many real label sets); "
                         "use iter_hpa_fields to stream all 31k")
    return SimBatch.concat(list(iter_hpa_fields(proteins, n_per_protein, seed, **kw)))
