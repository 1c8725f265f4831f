"""Yeast compartment patterns (geometry: :class:`~atlaskit.data.sim.cells.YeastGeometry`).

The ``y_*`` renderers of :data:`~atlaskit.data.sim.compartments.COMPARTMENT_RENDERERS` (see
:mod:`.compartments` for what a renderer receives and returns). This module is imported by
:mod:`.compartments` right after its mammalian renderers, so the registration order (mammalian
compartments first, then these, in file order) is the same as when both lived in one file.
"""
from __future__ import annotations

import numpy as np

from atlaskit.data.sim.compartments import Layer, f32, register_compartment, ridge, smoothstep

# =============================================================================================
# yeast compartments (geometry: cells.YeastGeometry)
# =============================================================================================

@register_compartment("y_cytoplasm", {"grain": (0.8, 2.0), "contrast": (0.05, 0.25), "nuclear": (0.5, 1.0),
                                     "vacuole": (0.3, 0.8)}, geometry="yeast")
def y_cytoplasm(ctx, p):
    """Yeast cytoplasm: fills the cell, vacuole darker (by ``vacuole``), nucleus dimmer.

    A widefield image sums the cytoplasm over and under the vacuole and the nucleus, so neither
    is black: real cytosolic cells are brightest at their centre (edge profile 0.74 at the edge,
    1.14 at the centre; the RFP marker alike). Darkening by 0.6–0.95 and 0.2–0.7 left the
    simulated centre at 0.98; by 0.3–0.8 and 0–0.5 it is 1.06.
    """
    g = ctx.g
    f = ctx.field(p.grain)
    s = g.cell_soft * (1 - p.vacuole * g.vac_soft) * (1 - (1 - p.nuclear) * g.nuc_soft) * (1 + p.contrast * f)
    return Layer(sharp=np.maximum(s, 0))


@register_compartment("y_nucleus", {"grain": (0.7, 1.4), "contrast": (0.05, 0.25), "cyto": (0.0, 0.12)}, geometry="yeast")
def y_nucleus(ctx, p):
    """Yeast nucleus: one round body beside the vacuole."""
    g = ctx.g
    f = ctx.field(p.grain)
    return Layer(sharp=g.nuc_soft * (1 + p.contrast * f) + p.cyto * g.cell_soft * (1 - g.vac_soft))


@register_compartment("y_nucleolus", {"size": (0.35, 0.6), "nuclear": (0.05, 0.25)}, geometry="yeast")
def y_nucleolus(ctx, p):
    """Crescent on one side of the nucleus."""
    g = ctx.g
    cres = g.nuc_soft * smoothstep((g.nuc_side - (1 - 2 * p.size)) / 0.5)
    return Layer(sharp=cres + p.nuclear * g.nuc_soft)


@register_compartment("y_nuclear_periphery", {"width": (0.5, 0.9), "nuclear": (0.02, 0.15), "patchiness": (0.1, 0.5)}, geometry="yeast")
def y_nuclear_periphery(ctx, p):
    """Ring around the yeast nucleus (nuclear envelope, nuclear pores)."""
    g = ctx.g
    d = g.nuc_dist / (p.width * f32(ctx.scale))
    rim = np.exp(-(d * d)) * g.cell_soft * np.maximum(1 + p.patchiness * ctx.field(1.2), 0)
    return Layer(sharp=rim + p.nuclear * g.nuc_soft)


@register_compartment("y_er", {"cortical": (0.6, 1.0), "width": (0.5, 0.9), "patchiness": (0.2, 0.6), "perinuclear": (0.5, 1.0)}, geometry="yeast")
def y_er(ctx, p):
    """Yeast ER: cortical ER under the plasma membrane plus the perinuclear ring, patchy."""
    g = ctx.g
    dm = g.edge_dist / (p.width * f32(ctx.scale))
    cort = np.exp(-(dm - 0.8) ** 2) * g.cell_soft
    dn = g.nuc_dist / (p.width * f32(ctx.scale))
    peri = np.exp(-(dn * dn)) * g.cell_soft
    patch = np.maximum(1 + p.patchiness * ctx.field(1.5), 0)
    return Layer(sharp=(p.cortical * cort + p.perinuclear * peri) * patch)


@register_compartment("y_cell_periphery", {"width": (0.5, 0.9), "patchiness": (0.05, 0.4), "cyto": (0.0, 0.1)}, geometry="yeast")
def y_cell_periphery(ctx, p):
    """Plasma membrane / cell wall rim, including the bud."""
    g = ctx.g
    dm = g.edge_dist / (p.width * f32(ctx.scale))
    ring = np.exp(-(dm - 0.5) ** 2) * g.cell_soft * np.maximum(1 + p.patchiness * ctx.field(2.0), 0)
    return Layer(sharp=ring + p.cyto * g.cell_soft)


@register_compartment("y_mitochondrion", {"mesh": (1.0, 1.6), "width": (0.25, 0.4), "cortical": (0.09, 0.3), "diffuse": (0.02, 0.1)}, geometry="yeast")
def y_mitochondrion(ctx, p):
    """Tubular mitochondria along the cell cortex, seen from above.

    A widefield image sums the whole cell, so the cortical network over and under the vacuole
    and the nucleus shows on them: both dim the network only by 0.4, and the edge gets a weak
    extra (``cortical``). Calibrated on the real mitochondrial cells' edge profile
    (:func:`atlaskit.analysis.cellmeasures.edge_profile`: their GFP falls only at the outermost
    2 px and is even inside, where dimming by 0.8 and 0.7 left the centre at 0.86 of the mean).
    """
    g = ctx.g
    tub = ridge(ctx.field(p.mesh), p.width)
    frag = 1 / (1 + np.exp(-3 * (ctx.field(2.5) + 0.3)))
    cort = 1 + p.cortical * np.exp(-(g.edge_dist / f32(3.0 * ctx.scale)) ** 2)
    zone = g.cell_soft * (1 - 0.4 * g.vac_soft) * (1 - 0.4 * g.nuc_soft) * cort
    # tubules 2.0 above the diffuse floor: the real cells' spread within the cell (cv 0.31)
    return Layer(sharp=zone * (2.0 * tub * frag + p.diffuse))


@register_compartment("y_vacuole", {"membrane": (0.0, 1.0), "width": (0.5, 0.9), "lumen_grain": (1.0, 2.0), "cyto": (0.0, 0.08)}, geometry="yeast")
def y_vacuole(ctx, p):
    """Vacuole: bright lumen (``membrane`` → 0) or a rim around a dark lumen (``membrane`` → 1)."""
    g = ctx.g
    d = g.vac_dist / (p.width * f32(ctx.scale))
    rim = np.exp(-(d * d)) * g.cell_soft
    lumen = g.vac_soft * np.maximum(1 + 0.15 * ctx.field(p.lumen_grain), 0)
    return Layer(sharp=p.membrane * rim + (1 - p.membrane) * lumen * 0.9 + p.cyto * g.cell_soft)


def per_cell_density(g, zone: np.ndarray) -> np.ndarray:
    """``zone`` divided by its sum over the owning cell: integrates to 1 per cell."""
    b = g.n
    K = g.cells.valid.shape[1]
    flat = (np.maximum(g.owner, 0) + (np.arange(b) * K).reshape(b, 1, 1)).reshape(-1)
    tot = np.bincount(flat, weights=(zone * (g.owner >= 0)).reshape(-1), minlength=b * K)
    return (zone / np.maximum(tot[flat].reshape(zone.shape), 1.0)).astype(f32)


def _y_dots(ctx, count, size, zone, amp=1.0, spread=0.4, diffuse=0.0):
    g = ctx.g
    rate = count * per_cell_density(g, zone)
    return ctx.spots(rate, size, amp=amp, spread=spread) + Layer(sharp=diffuse * g.cell_soft * (1 - 0.8 * g.vac_soft))


@register_compartment("y_peroxisome", {"count": (2.0, 7.0), "size": (0.4, 0.7), "diffuse": (0.02, 0.1)}, geometry="yeast")
def y_peroxisome(ctx, p):
    """Few small bright dots anywhere in the cytoplasm."""
    g = ctx.g
    return _y_dots(ctx, p.count, p.size, g.cell_soft * (1 - g.vac_soft), amp=1.0, diffuse=p.diffuse)


@register_compartment("y_endosome", {"count": (2.0, 6.0), "size": (0.6, 1.0), "diffuse": (0.05, 0.2)}, geometry="yeast")
def y_endosome(ctx, p):
    """Few medium dots next to the vacuole (pre-vacuolar compartment)."""
    g = ctx.g
    near_vac = np.exp(-(np.maximum(g.vac_dist, 0) / f32(2.5 * ctx.scale)) ** 2) * (1 - g.vac_soft)
    return _y_dots(ctx, p.count, p.size, g.cell_soft * near_vac * 2.5, amp=0.9, diffuse=p.diffuse)


@register_compartment("y_golgi", {"count": (3.0, 10.0), "size": (0.45, 0.8), "diffuse": (0.03, 0.12)}, geometry="yeast")
def y_golgi(ctx, p):
    """Scattered dots (yeast Golgi cisternae are dispersed)."""
    g = ctx.g
    return _y_dots(ctx, p.count, p.size, g.cell_soft * (1 - g.vac_soft) * (1 - 0.5 * g.nuc_soft), amp=0.9, spread=0.5,
                   diffuse=p.diffuse)


@register_compartment("y_lipid_particle", {"count": (2.0, 6.0), "size": (0.55, 0.9), "diffuse": (0.0, 0.06)}, geometry="yeast")
def y_lipid_particle(ctx, p):
    """Lipid droplets: a few round bright dots, often near the nucleus/ER."""
    g = ctx.g
    zone = g.cell_soft * (1 - g.vac_soft) * (0.5 + np.exp(-(np.maximum(g.nuc_dist, 0) / f32(3.0 * ctx.scale)) ** 2))
    return _y_dots(ctx, p.count, p.size, zone, amp=1.3, spread=0.3, diffuse=p.diffuse)


@register_compartment("y_spindle_pole", {"size": (0.35, 0.6), "pair": (0.2, 0.9), "diffuse": (0.02, 0.1)}, geometry="yeast")
def y_spindle_pole(ctx, p):
    """1–2 dots on the nuclear edge (spindle pole bodies)."""
    from atlaskit.data.sim.cells import splat

    g = ctx.g
    cs = g.cells
    b, K = cs.valid.shape
    u = ctx.rng.random((K, 2), dtype=np.float64)
    a1 = cs.spb_angle
    x1 = cs.nx + cs.nr * np.cos(a1)
    y1 = cs.ny + cs.nr * np.sin(a1)
    two = u[..., 0] < p.pair.reshape(-1, 1)
    a2 = a1 + np.pi * (0.5 + 0.5 * u[..., 1])
    x2 = cs.nx + cs.nr * np.cos(a2)
    y2 = cs.ny + cs.nr * np.sin(a2)
    imp = splat(np.concatenate([x1, x2], 1), np.concatenate([y1, y2], 1),
                np.concatenate([cs.valid * 1.0, cs.valid * two * 0.8], 1), ctx.shape[0])
    s = p.vec("size") * f32(ctx.scale)
    imp *= (f32(2 * np.pi) * (s * s + f32(ctx.scale) ** 2)).reshape(-1, 1, 1)
    return Layer(spots=imp, spot_sigma=s) + Layer(sharp=p.diffuse * g.cell_soft * (1 - g.vac_soft))


@register_compartment("y_bud_neck", {"width": (0.5, 0.9), "length": (0.5, 0.8), "diffuse": (0.02, 0.1)}, geometry="yeast")
def y_bud_neck(ctx, p):
    """A bar across the mother-bud junction (septin ring seen edge-on); a dot at the incipient bud site."""
    g = ctx.g
    along = g.neck_u / (p.width * f32(ctx.scale))
    across = g.neck_v / (p.length * g.neck_len + f32(0.5 * ctx.scale))
    bar = np.exp(-(along * along) - (across * across) ** 2) * g.cell_soft
    return Layer(sharp=bar * 1.5 + p.diffuse * g.cell_soft * (1 - g.vac_soft))


@register_compartment("y_actin", {"count": (6.0, 18.0), "size": (0.45, 0.8), "bud_bias": (2.0, 6.0), "cables": (0.0, 0.4)}, geometry="yeast")
def y_actin(ctx, p):
    """Cortical actin patches concentrated in the bud (or at the bud site), faint cables."""
    g = ctx.g
    cortex = np.exp(-(g.edge_dist / f32(1.5 * ctx.scale)) ** 2)
    zone = g.cell_soft * cortex * (1 + p.bud_bias * g.bud_soft)
    cables = ridge(ctx.field(1.2, sigma_x=6.0, angle=g.cells.bud_angle[:, 0].astype(f32)), 0.3) * g.cell_soft * (1 - g.vac_soft)
    return _y_dots(ctx, p.count, p.size, zone, amp=1.0, spread=0.4) + Layer(sharp=p.cables * cables)


@register_compartment("y_microtubule", {"width": (0.5, 0.8), "length": (0.8, 1.6), "diffuse": (0.02, 0.1)}, geometry="yeast")
def y_microtubule(ctx, p):
    """Short spindle through the nucleus (or towards the bud) with astral microtubules."""
    g = ctx.g
    along = g.mt_u / (p.length * g.nuc_r_px)
    across = g.mt_v / (p.width * f32(ctx.scale))
    bar = np.exp(-(along * along) ** 2 - across * across) * g.cell_soft
    return Layer(sharp=1.3 * bar + p.diffuse * g.cell_soft * (1 - g.vac_soft))
