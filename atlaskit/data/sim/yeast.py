"""Yeast-like images (DeepYeast / CYCLoPs style): 64×64 crops, GFP protein + RFP cytosolic marker.

Budding yeast cells are ellipses (about 30–40 px across in a 64-px crop in the calibrated look),
about a third with a bud; each cell has a round nucleus beside one or two vacuole lobes (dark in
the cytosolic marker). Proteins are named after real ORFs of each class
(:func:`atlaskit.data.catalogs.yeast_classes`, the YeastGFP proteins with exactly one DeepYeast
class): the 12 DeepYeast classes (``task="main"``) and the 4 transfer classes
(``task="transfer"``); a protein's GFP brightness follows its YeastGFP abundance
(:func:`abundance_brightness`). :func:`yeast_noncells` makes the bad crops (empty, off-centre,
debris, out of focus, clumps) that DeepYeast's cell-quality filter removes.

How the crops look — cell size and framing, PSF, photons, background, noise, the 8-bit export —
is a :class:`YeastLook`; the default (:data:`CALIBRATED`) was measured on real cells of the
screen DeepYeast used, :data:`ORIGINAL` is the look before that calibration. Each protein is
imaged in its own well (its RFP level and GFP background drawn once per protein, with the
spreads measured between the real wells).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from atlaskit.data.sim._core import (
    ItemRNG, SimBatch, check_count, check_seed, item_generator, map_ordered, protein_generator, unknown,
)
from atlaskit.data.sim.cells import GeometryView
from atlaskit.data.sim.compartments import Component, draw_params, render_components
from atlaskit.data.sim.optics import Optics, acquire, crop_margin, draw_focus, form_image, otf_for, to_uint8_scale
from atlaskit.data.sim.opencell import ProteinSpec, rebatch

#: DeepYeast class → yeast renderer (the 12 main classes, then the 4 transfer classes).
YEAST_RENDERERS: dict[str, str] = {
    "cell periphery": "y_cell_periphery",
    "cytoplasm": "y_cytoplasm",
    "endosome": "y_endosome",
    "er": "y_er",
    "golgi": "y_golgi",
    "mitochondrion": "y_mitochondrion",
    "nuclear periphery": "y_nuclear_periphery",
    "nucleolus": "y_nucleolus",
    "nucleus": "y_nucleus",
    "peroxisome": "y_peroxisome",
    "spindle pole": "y_spindle_pole",
    "vacuole": "y_vacuole",
    "actin": "y_actin",
    "bud neck": "y_bud_neck",
    "lipid particle": "y_lipid_particle",
    "microtubule": "y_microtubule",
}
MAIN_CLASSES = tuple(list(YEAST_RENDERERS)[:12])
TRANSFER = tuple(list(YEAST_RENDERERS)[12:])
NONCELL_KINDS = ("empty", "off_centre", "debris", "blurred", "clump")

CROP = 64
MARGIN = 8

# --- calibration on real cells ---------------------------------------------------------------
@dataclass(frozen=True)
class YeastLook:
    """How simulated yeast crops look: cell layout, optics, camera and the 8-bit export.

    :data:`CALIBRATED` (the default) was measured on the mirror's real Chong et al. (2015) WT2
    cells (``yeast/chong-wt2-toy``: 1642 cells of 5 proteins, GFP + RFP, 64×64, 8-bit levels
    scaled to [0, 1]) with :mod:`atlaskit.analysis.realism` (per-image statistics and the
    real-vs-simulated discriminator; chapter 00 shows both looks side by side);
    :data:`ORIGINAL` is the look before that calibration, kept so that the comparison can be
    rerun. Lengths scale together: cells, compartments, PSF and defocus all by ``scale``.

    Attributes
    ----------
    scale : float
        Cell size relative to the base layout (radius 10.5–14 px). Real: the Otsu-segmented
        central cell covers ≈ 1,140 px² (≈ 38 px across) of the 64-px crop.
    centre_jitter : float
        Spread of the centred cell's position (px before scaling). Real cells sit 0.12 crop
        sides off centre.
    bud_probability : float
        Budded fraction of the cells (real crops mostly show unbudded cells).
    optics : Optics
        PSF, defocus, photons and camera. Calibrated: background ≈ 18 % of the RFP cytosol (real
        16 %), white noise ≈ 0.011 of the [0, 1] scale in both channels (real 0.011).
    rfp_photons : float
        RFP (cytosolic marker) photons at the cytosol's level.
    rfp_vacuole : float
        How dark vacuoles are in the RFP channel (0 = not at all, 1 = black); real: faint.
    rfp_grain : float
        Correlation length (px before scaling) of the RFP cytosol's texture.
    gfp_saturation, rfp_saturation : float
        8-bit export: counts above offset that map to 1.0, in units of the channel's peak
        photons (real median brightest pixel: GFP 0.40, RFP 0.42).
    background_follows_exposure : bool
        Autofluorescence and stray light scale with the exposure, as the signal does (real: the
        background is a constant share of the brightest pixel, whatever the exposure).
    dim_field_fraction, dim_field_gain : float
        Per-field export gain: 13 % of the real cells come from fields exported ≈ 6× dimmer
        (their background, noise and levels all scaled alike, quantised to few 8-bit levels).
    gfp_background : float
        GFP background photons relative to the RFP channel's (autofluorescence and stray light
        may differ between the two channels). Calibrated: 1 (the discriminator separates real
        from simulated more at 0.8 or 1.25).
    well_rfp_sd, well_background_sd : float
        Each protein is imaged in its own well, and the wells differ: the spread (sd of the log)
        of the RFP marker's level (its signal, not the background: real wells' RFP background
        relative to their brightest pixel runs from 0.08 to 0.14) and of the GFP background
        between proteins. Real (the five wells of the mirror's cells, per-well medians): RFP
        brightest pixel 0.34, GFP background 0.34; without a well term the simulated proteins
        spread 0.10 and 0.13.
    rfp_background, rfp_smoothing, rfp_read_noise : float
        The RFP camera: its background photons relative to the common background, the weight
        ``w`` of a separable ``[w, 1, w] / (1 + 2w)`` smoothing of its counts after acquisition
        (an image resampled onto the GFP camera's pixel grid), and its read noise (counts). The
        real RFP noise is smoothed (:func:`atlaskit.analysis.cellmeasures.pixel_noise`: diagonal to
        axis 0.92 in all five real wells, 1.0 for white noise), the real GFP noise is white.
        Calibrated: 1, 0, 4 (white, as the GFP): ``rfp_smoothing=0.14, rfp_background=0.88,
        rfp_read_noise=16, rfp_saturation=3.0`` matches the RFP's noise shape and levels but was
        measured not to lower the discriminator's AUROC (chapter 00), so it was not adopted.
    gfp_photon_exponent : float
        A brighter protein's GFP image holds more photons per displayed level: its signal and
        background photons are multiplied by ``brightness ** gfp_photon_exponent`` and its export
        scale alike, so the levels stay and the relative noise falls. Real wells: the shot-noise
        variance per level above background
        (:func:`~atlaskit.analysis.cellmeasures.noise_per_level`) falls as the displayed signal
        rises, as signal ** −0.42 over the five wells (0.0010–0.0012 in the two bright ones,
        0.0016–0.0032 in the three dim); simulated, with a fixed export, −0.09. Calibrated:
        0.4, chosen from that slope (simulated −0.34 at 0.3, −0.43 at 0.4, −0.60 at 0.6; 0 is
        the look before). Overall the simulated GFP still holds fewer photons per level (median
        variance per level 0.0030, real 0.0016); more photons in both channels raised the
        discriminator's AUROC (chapter 00).
    """

    scale: float = 1.5
    centre_jitter: float = 8.0
    bud_probability: float = 0.35
    optics: Optics = Optics(psf_sigma=1.6, focus_sigma=1.1, halo=0.08, halo_sigma=6.0, peak_photons=120.0,
                            exposure_sd=0.3, background=31.0, offset=100.0, gain=2.0, read_noise=4.0)
    rfp_photons: float = 150.0
    rfp_vacuole: float = 0.55
    rfp_grain: float = 0.98
    gfp_saturation: float = 3.3
    rfp_saturation: float = 3.17
    background_follows_exposure: bool = True
    dim_field_fraction: float = 0.13
    dim_field_gain: float = 0.17
    gfp_background: float = 1.0
    well_rfp_sd: float = 0.33
    well_background_sd: float = 0.3
    rfp_background: float = 1.0
    rfp_smoothing: float = 0.0
    rfp_read_noise: float = 4.0
    gfp_photon_exponent: float = 0.4

    def rfp_params(self) -> dict:
        """Parameters of the RFP channel's ``y_cytoplasm`` pattern."""
        return {"grain": self.rfp_grain, "contrast": 0.12, "nuclear": 0.75, "vacuole": self.rfp_vacuole}


#: The look calibrated on real cells (the default of every yeast function).
CALIBRATED = YeastLook()
#: The look before calibration (small, sharp, bright cells; saturated RFP), for comparisons.
ORIGINAL = YeastLook(scale=1.0, centre_jitter=3.0, bud_probability=0.5,
                     optics=Optics(psf_sigma=1.15, focus_sigma=0.5, halo=0.08, halo_sigma=6.0, peak_photons=300.0,
                                   exposure_sd=0.2, background=12.0, offset=100.0, gain=2.0, read_noise=4.0),
                     rfp_photons=400.0, rfp_vacuole=0.9, gfp_saturation=1.6, rfp_saturation=1.25,
                     background_follows_exposure=False, dim_field_fraction=0.0, dim_field_gain=1.0, rfp_grain=1.4,
                     well_rfp_sd=0.0, well_background_sd=0.0, gfp_photon_exponent=0.0)
YEAST_LOOKS = {"calibrated": CALIBRATED, "original": ORIGINAL}
#: The calibrated optics (kept as a module constant for code that reads it).
YEAST_OPTICS = CALIBRATED.optics


def yeast_look(look: "str | YeastLook") -> YeastLook:
    """A :class:`YeastLook` from its name in :data:`YEAST_LOOKS` (or the look itself)."""
    if isinstance(look, YeastLook):
        return look
    if look not in YEAST_LOOKS:
        raise unknown("yeast look", look, YEAST_LOOKS)
    return YEAST_LOOKS[look]


#: GFP brightness from YeastGFP abundance (Huh et al. 2003), see :func:`abundance_brightness`.
ABUNDANCE_REFERENCE = 3500.0  # molecules per cell of brightness 1 (about the median of the classified proteins)
ABUNDANCE_EXPONENT = 0.455
UNMEASURED_MOLECULES = 400.0  # "not visualized" / "low signal": about the 10th percentile
BRIGHTNESS_RANGE = (0.3, 3.0)


@dataclass
class YeastCells:
    """Per-cell parameters (b, K) of yeast crops (lengths in px, angles in radians)."""

    valid: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    a: np.ndarray
    b: np.ndarray
    th: np.ndarray
    has_bud: np.ndarray
    bud_angle: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    ba: np.ndarray
    bb: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    nr: np.ndarray
    nuc_angle: np.ndarray
    spb_angle: np.ndarray
    vx1: np.ndarray
    vy1: np.ndarray
    vr1: np.ndarray
    vx2: np.ndarray
    vy2: np.ndarray
    vr2: np.ndarray
    expr: np.ndarray

    @property
    def shape(self):
        return self.valid.shape

    def take(self, idx) -> "YeastCells":
        return YeastCells(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def yeast_layout(rng: ItemRNG, size: int, scale: float = 1.0, *, bud_prob=0.5, centre_offset=None,
                 n_neighbours=(1, 6), radius=(10.5, 14.0), centre_jitter: float = 3.0) -> YeastCells:
    """A centred yeast cell (index 0) and 0–6 neighbours around it (K = 7)."""
    b, K = len(rng), 7
    U = rng.random((K, 16), dtype=np.float64)
    V = rng.random((4,), dtype=np.float64)
    ctr = (size - 1) / 2
    a = (radius[0] + (radius[1] - radius[0]) * U[..., 0]) * scale
    asp = 0.84 + 0.16 * U[..., 1]
    bb = a * asp
    th = U[..., 2] * np.pi
    bud_p = np.broadcast_to(np.asarray(bud_prob, float).reshape(-1, 1) if np.ndim(bud_prob) else bud_prob, (b, K))
    has_bud = U[..., 3] < bud_p
    ratio = 0.35 + 0.5 * U[..., 4]
    bud_angle = U[..., 5] * 2 * np.pi
    re = a * bb / np.sqrt((bb * np.cos(bud_angle - th)) ** 2 + (a * np.sin(bud_angle - th)) ** 2)
    # neighbours: ring around the centre cell, touching-ish
    ang = V[:, 0:1] * 2 * np.pi + np.arange(K) * (2 * np.pi / (K - 1)) + (U[..., 6] - 0.5) * 0.5
    ext = a * (1 + 0.6 * has_bud * ratio)
    dist = ext[:, :1] + ext + (0.5 + 6 * U[..., 7]) * scale
    cx = ctr + dist * np.cos(ang)
    cy = ctr + dist * np.sin(ang)
    cx[:, 0] = ctr + (V[:, 1] - 0.5) * centre_jitter * scale
    cy[:, 0] = ctr + (V[:, 2] - 0.5) * centre_jitter * scale
    if centre_offset is not None:
        off = np.asarray(centre_offset, float).reshape(-1)
        cx[:, 0] += off * np.cos(V[:, 3] * 2 * np.pi)
        cy[:, 0] += off * np.sin(V[:, 3] * 2 * np.pi)
    lo, hi = n_neighbours
    n_nb = lo + np.floor(V[:, 3:4] * (hi - lo + 1))
    valid = np.arange(K)[None, :] <= n_nb
    valid = valid & (U[..., 8] < 0.85)
    valid[:, 0] = True
    d = re * (1 + ratio) * 0.9
    bx = cx + d * np.cos(bud_angle)
    by = cy + d * np.sin(bud_angle)
    ba = ratio * a
    bbb = ratio * a * 0.88
    # nucleus: beside the vacuole; in large-budded cells at the neck
    big = has_bud & (ratio > 0.7)
    nuc_dir = np.where(big, bud_angle, U[..., 9] * 2 * np.pi)
    nr = a * (0.34 + 0.1 * U[..., 10])
    noff = np.where(big, 0.55, 0.3) * a
    nx = cx + noff * np.cos(nuc_dir)
    ny = cy + noff * np.sin(nuc_dir)
    vr1 = a * (0.38 + 0.18 * U[..., 11])
    vdir = nuc_dir + np.pi + (U[..., 12] - 0.5) * 0.8
    voff = np.maximum(nr + vr1 * 0.85 - noff, 0.1 * a)
    voff = np.minimum(voff, a - vr1 - 1.0 * scale)
    vx1 = cx + voff * np.cos(vdir)
    vy1 = cy + voff * np.sin(vdir)
    two = U[..., 13] < 0.4
    vr2 = np.where(two, vr1 * (0.5 + 0.2 * U[..., 14]), 0)
    vx2 = vx1 + (vr1 + vr2 * 0.5) * np.cos(vdir + 1.3)
    vy2 = vy1 + (vr1 + vr2 * 0.5) * np.sin(vdir + 1.3)
    nuc_angle = U[..., 15] * 2 * np.pi
    spb_angle = np.where(has_bud, bud_angle, nuc_dir) + (U[..., 6] - 0.5) * 1.0
    expr = np.exp(0.25 * (U[..., 14] - 0.5) * 3.4)
    return YeastCells(valid, cx, cy, a, bb, th, has_bud, bud_angle, bx, by, ba, bbb, nx, ny, nr, nuc_angle, spb_angle,
                      vx1, vy1, vr1, vx2, vy2, vr2, expr)


@dataclass
class YeastGeometry:
    """Per-pixel fields of yeast crops (``(b, S, S)``); distances in px (see the yeast renderers)."""

    cells: YeastCells
    scale: float
    owner: np.ndarray
    cell_soft: np.ndarray
    bud_soft: np.ndarray
    edge_dist: np.ndarray
    nuc_soft: np.ndarray
    nuc_dist: np.ndarray
    nuc_side: np.ndarray
    nuc_r_px: np.ndarray
    vac_soft: np.ndarray
    vac_dist: np.ndarray
    cell_r: np.ndarray
    neck_u: np.ndarray
    neck_v: np.ndarray
    neck_len: np.ndarray
    mt_u: np.ndarray
    mt_v: np.ndarray

    @property
    def n(self) -> int:
        return self.owner.shape[0]

    @property
    def shape(self):
        return self.owner.shape[1:]

    def take(self, idx) -> GeometryView:
        """The geometry of images ``idx``; arrays are indexed lazily, on first use."""
        return GeometryView(self, idx)

    def gather(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        b, K = values.shape[:2]
        flat = np.maximum(self.owner, 0) + (np.arange(b) * K).reshape(b, 1, 1)
        out = np.asarray(values, np.float32).reshape(-1).take(flat)
        if fill is not None:
            out[self.owner < 0] = fill
        return out


def yeast_geometry(cs: YeastCells, size: int, scale: float = 1.0) -> YeastGeometry:
    """Per-pixel yeast geometry: cells (mother ∪ bud), nucleus, vacuole, bud neck, spindle axis."""
    f32 = np.float32
    b, K = cs.shape
    S = int(size)
    X = np.arange(S, dtype=f32)[None, None, :]
    Y = np.arange(S, dtype=f32)[None, :, None]
    best = np.full((b, S, S), np.inf, f32)
    owner = np.zeros((b, S, S), np.int32)
    for k in range(2 * K):
        kk = k % K
        bud = k >= K
        ok = cs.valid[:, kk] & (cs.has_bud[:, kk] if bud else True)
        if not ok.any():
            continue
        cx, cy = (cs.bx, cs.by) if bud else (cs.cx, cs.cy)
        a, bb = (cs.ba, cs.bb) if bud else (cs.a, cs.b)
        th = cs.bud_angle if bud else cs.th
        c, s = np.cos(th[:, kk]).astype(f32).reshape(b, 1, 1), np.sin(th[:, kk]).astype(f32).reshape(b, 1, 1)
        dx = X - f32(1) * cx[:, kk].astype(f32).reshape(b, 1, 1)
        dy = Y - cy[:, kk].astype(f32).reshape(b, 1, 1)
        u = (dx * c + dy * s) / a[:, kk].astype(f32).reshape(b, 1, 1)
        v = (dy * c - dx * s) / bb[:, kk].astype(f32).reshape(b, 1, 1)
        e = np.sqrt(u * u + v * v)
        e[~ok] = np.inf
        less = e < best
        best = np.where(less, e, best)
        owner[less] = k
    inside = best < 1
    ent = owner.copy()
    owner = np.where(inside, ent % K, -1).astype(np.int32)
    isbud = inside & (ent >= K)
    # distance to the cell border (mother and bud of one cell share no border)
    bnd = np.zeros((b, S, S), bool)
    for ax in (1, 2):
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[ax] = slice(0, -1)
        sl1[ax] = slice(1, None)
        diff = owner[tuple(sl0)] != owner[tuple(sl1)]
        bnd[tuple(sl0)] |= diff
        bnd[tuple(sl1)] |= diff
    bnd |= ~inside
    edge_dist = ndimage.distance_transform_edt(~bnd, sampling=(4.0 * S, 1.0, 1.0)).astype(f32)
    edge_dist[~inside] = 0
    # soft edge: half a pixel outside the last inside pixel
    cell_soft = np.clip(edge_dist + f32(0.5), 0, 1) * inside
    flat = np.maximum(owner, 0) + (np.arange(b, dtype=np.int32) * K).reshape(b, 1, 1)

    def g(a):
        return np.asarray(a, f32).reshape(-1).take(flat)

    ddx = X - g(cs.nx)
    ddy = Y - g(cs.ny)
    nrp = g(cs.nr)
    rn = np.sqrt(ddx * ddx + ddy * ddy)
    nuc_dist = rn - nrp
    nuc_soft = np.clip(f32(0.5) - nuc_dist, 0, 1) * inside
    nuc_side = (ddx * g(np.cos(cs.nuc_angle)) + ddy * g(np.sin(cs.nuc_angle))) / np.maximum(nrp, f32(1e-3))
    v1 = np.sqrt((X - g(cs.vx1)) ** 2 + (Y - g(cs.vy1)) ** 2) - g(cs.vr1)
    vr2 = g(cs.vr2)
    v2 = np.where(vr2 > 0, np.sqrt((X - g(cs.vx2)) ** 2 + (Y - g(cs.vy2)) ** 2) - vr2, np.inf)
    vac_dist = np.minimum(v1, v2)
    vac_soft = np.clip(f32(0.5) - vac_dist, 0, 1) * inside * (1 - nuc_soft)
    # bud neck frame: origin on the mother's border towards the bud
    re = cs.a * cs.b / np.sqrt((cs.b * np.cos(cs.bud_angle - cs.th)) ** 2 + (cs.a * np.sin(cs.bud_angle - cs.th)) ** 2)
    kx = cs.cx + re * np.cos(cs.bud_angle)
    ky = cs.cy + re * np.sin(cs.bud_angle)
    cb, sb = g(np.cos(cs.bud_angle)), g(np.sin(cs.bud_angle))
    ex, ey = X - g(kx), Y - g(ky)
    neck_u = ex * cb + ey * sb
    neck_v = ey * cb - ex * sb
    neck_len = g(np.where(cs.has_bud, 0.45 * cs.ba, 0.9 * scale))
    # spindle axis through the nucleus along the bud direction
    mt_u = ddx * cb + ddy * sb
    mt_v = ddy * cb - ddx * sb
    cell_r = g(0.5 * (cs.a + cs.b))
    return YeastGeometry(cs, scale, owner, cell_soft.astype(f32), isbud.astype(f32) * cell_soft, edge_dist, nuc_soft.astype(f32),
                         nuc_dist, nuc_side, nrp, vac_soft.astype(f32), vac_dist, cell_r, neck_u, neck_v, neck_len, mt_u, mt_v)


def _class_index(klass: str) -> int:
    return MAIN_CLASSES.index(klass) if klass in MAIN_CLASSES else TRANSFER.index(klass)


def abundance_brightness(molecules) -> np.ndarray:
    """Relative GFP brightness of yeast proteins from their abundance (molecules per cell).

    ``(molecules / ABUNDANCE_REFERENCE) ** ABUNDANCE_EXPONENT``, clipped to
    :data:`BRIGHTNESS_RANGE`; an unmeasured abundance (NaN: YeastGFP's "not visualized" or "low
    signal") counts as :data:`UNMEASURED_MOLECULES`. The sublinear exponent and the reference
    were calibrated on the real Chong et al. cells of the mirror (the real-vs-simulated
    discriminator of :mod:`atlaskit.analysis.realism`, lowest out-of-fold AUROC over two
    simulated draws: 0.35 → 0.455 and 2,500 → 3,500 lowered it from 0.83 to 0.80): the five
    proteins span 1,080–77,000 molecules per cell (Huh et al. 2003) but only a few-fold in GFP
    signal above background (bright proteins saturate the 8-bit export, the brightest pixel of
    a diffuse protein is not its total).
    """
    m = np.asarray(molecules, np.float64)
    m = np.where(np.isfinite(m) & (m > 0), m, UNMEASURED_MOLECULES)
    return np.clip((m / ABUNDANCE_REFERENCE) ** ABUNDANCE_EXPONENT, *BRIGHTNESS_RANGE)


def make_yeast_protein(orf: str, klass: str, seed: int = 0, info: dict | None = None) -> ProteinSpec:
    """A simulated yeast protein of class ``klass`` (one of the 16), parameters drawn from the ORF name.

    With ``info["molecules"]`` (YeastGFP abundance, molecules per cell; NaN when unmeasured) the
    brightness follows :func:`abundance_brightness` times a per-protein spread; without it, a
    log-uniform draw over the same range.
    """
    check_seed(seed)
    if klass not in YEAST_RENDERERS:
        raise unknown("yeast class", klass, YEAST_RENDERERS)
    rng = protein_generator(seed, "yeast", orf)
    spread = float(np.exp(rng.normal(0.0, 0.2)))
    if info is not None and "molecules" in info:
        abundance = float(abundance_brightness(info["molecules"])) * spread
    else:
        abundance = float(np.exp(rng.uniform(*np.log(BRIGHTNESS_RANGE))))
    renderer = YEAST_RENDERERS[klass]
    comps = (Component(renderer, float(rng.uniform(0.85, 1.15)), draw_params(renderer, rng)),)
    # the protein's well: standard normal draws that YeastLook's well spreads scale (drawn last,
    # so that every earlier parameter is the same as before wells existed)
    well = tuple(float(z) for z in rng.standard_normal(2))
    return ProteinSpec(orf, comps, abundance, {klass: 3}, dict(info or {}, klass=klass, well=well))


@lru_cache(maxsize=4)
def _catalog(seed: int) -> dict:
    from atlaskit.data.catalogs import yeast_classes, yeastgfp

    t = yeast_classes()
    molecules = yeastgfp().set_index("orf")["abundance"]
    return {row.orf: make_yeast_protein(row.orf, row.klass, seed, {"gene": row.gene, "task": row.task, "label_idx": int(row.label_idx),
                                                                   "molecules": float(molecules.get(row.orf, np.nan))})
            for row in t.itertuples(index=False)}


def yeast_specs(proteins=None, seed: int = 0, task: str | None = "main", per_class: int | None = None) -> list[ProteinSpec]:
    """Yeast protein specs: ORF names (catalog), :class:`ProteinSpec`, or all ORFs of ``task``.

    ``per_class`` keeps the first ``per_class`` ORFs of every class (file order) when
    ``proteins`` is None.
    """
    seed = check_seed(seed)
    if task not in ("main", "transfer", "all", None):
        raise ValueError(f"task must be 'main', 'transfer' or 'all', got {task!r}")
    if isinstance(proteins, (str, ProteinSpec)):
        proteins = [proteins]
    if proteins is None:
        cat = _catalog(seed)
        specs = [s for s in cat.values() if task in ("all", None) or s.info["task"] == task]
        if per_class is not None:
            per_class = check_count(per_class, "per_class")
            seen: dict = {}
            keep = []
            for s in specs:
                k = s.info["klass"]
                if seen.get(k, 0) < per_class:
                    keep.append(s)
                    seen[k] = seen.get(k, 0) + 1
            specs = keep
        return specs
    cat = None
    out = []
    for p in proteins:
        if isinstance(p, ProteinSpec):
            out.append(p)
            continue
        cat = _catalog(seed) if cat is None else cat
        if p not in cat:
            raise unknown("yeast ORF", p, cat)
        out.append(cat[p])
    if not out:
        raise ValueError("proteins is empty")
    return out


def _smooth_pairs(raw: np.ndarray, weight: float, offset: float) -> np.ndarray:
    """Raw counts (b, H, W) smoothed by the separable kernel ``[w, 1, w] / (1 + 2w)`` on both axes."""
    kernel = np.array([weight, 1.0, weight], np.float32) / np.float32(1 + 2 * weight)
    out = ndimage.correlate1d(raw - np.float32(offset), kernel, axis=1, mode="reflect")
    out = ndimage.correlate1d(out, kernel, axis=2, mode="reflect")
    return out + np.float32(offset)


def _render_yeast(specs: Sequence[ProteinSpec | None], items, seed: int, style: str, *, masks: bool, normalize: str,
                  kinds: Sequence[str] | None = None, look: YeastLook = CALIBRATED) -> SimBatch:
    S = CROP + 2 * MARGIN
    names = [specs[p].name if specs[p] is not None else f"noncell/{kinds[j]}" for j, (p, _) in enumerate(items)]
    rng = ItemRNG([item_generator(seed, style, nm, i) for nm, (_, i) in zip(names, items)])
    b = len(items)
    offset = None
    extra_focus = np.zeros(b, np.float32)
    if kinds is not None:
        offset = np.array([{"off_centre": 24.0, "empty": 60.0}.get(k, 0.0) for k in kinds]) * look.scale
    bud_prob = np.array([0.85 if (s is not None and s.info.get("klass") == "bud neck") else look.bud_probability for s in
                         (specs[p] for p, _ in items)])
    cs = yeast_layout(rng, S, look.scale, bud_prob=bud_prob, centre_offset=offset, centre_jitter=look.centre_jitter)
    if kinds is not None:
        kinds_arr = np.array(kinds)
        cs.valid[kinds_arr == "empty", 1:] &= rng.random((cs.valid.shape[1] - 1,))[kinds_arr == "empty"] < 0.3
        clump = kinds_arr == "clump"
        if clump.any():  # many small cells jammed together
            for f in ("a", "b", "ba", "bb", "nr", "vr1", "vr2"):
                getattr(cs, f)[clump] *= 0.6
            cs.cx[clump] = (cs.cx[clump] - (S - 1) / 2) * 0.45 + (S - 1) / 2
            cs.cy[clump] = (cs.cy[clump] - (S - 1) / 2) * 0.45 + (S - 1) / 2
            cs.bx[clump] = cs.cx[clump]
            cs.by[clump] = cs.cy[clump]
            cs.valid[clump] = True
        extra_focus[kinds_arr == "blurred"] = 3.0
    g = yeast_geometry(cs, S, look.scale)
    comps = []
    for j, (p, _) in enumerate(items):
        if specs[p] is not None:
            comps.append(specs[p].components)
        else:
            comps.append((Component("y_cytoplasm", 0.6, look.rfp_params()),))
    sharp, spots = render_components(g, rng, comps)
    rfp, _ = render_components(g, rng, [(Component("y_cytoplasm", 1.0, look.rfp_params()),)] * b)
    if kinds is not None:  # every non-cell image draws these numbers, whatever its kind
        deb = np.array(kinds) == "debris"
        u = rng.random((S, S))
        hits = (u < 0.004) * (deb[:, None, None])
        blobs = ndimage.gaussian_filter(hits.astype(np.float32), (0, 1.5, 1.5)) * 40
        sharp += blobs
        rfp = rfp * (~deb[:, None, None]) + blobs * 0.7
        spots = [(idx, imp * (~deb[idx, None, None]), sg) for idx, imp, sg in spots]
        sharp[deb] *= 0.3
    optics = look.optics
    focus = np.sqrt(draw_focus(rng, optics, look.scale) ** 2 + (extra_focus * look.scale) ** 2).astype(np.float32)
    exposure = np.exp(rng.normal(()) * np.float32(optics.exposure_sd)).astype(np.float32)
    otf, _ = otf_for(optics, (S, S), focus, look.scale)
    gfp = crop_margin(form_image(sharp, spots, otf, (S, S)), MARGIN)
    red = crop_margin(form_image(rfp, [], otf, (S, S)), MARGIN)
    abundance = np.array([specs[p].abundance if specs[p] is not None else 0.5 for p, _ in items], np.float32)
    ones = np.ones(b, np.float32)
    # each protein is imaged in its own well: the RFP signal's level (not its background) and the
    # GFP background move together for all of its cells
    well = np.array([specs[p].info.get("well", (0.0, 0.0)) if specs[p] is not None else (0.0, 0.0) for p, _ in items],
                    np.float32).reshape(b, 2)
    well_rfp = np.exp(np.float32(look.well_rfp_sd) * well[:, 0])
    well_background = np.exp(np.float32(look.well_background_sd) * well[:, 1])
    # GFP: the image's bright end (99.9th percentile) gets peak × abundance photons, as a
    # protein's own brightest structures set what the screen's exposure captured
    # autofluorescence and stray light scale with the exposure as the signal does
    background = np.float32(optics.background) * (exposure if look.background_follows_exposure else np.ones_like(exposure))
    # photons per displayed GFP level: brightness ** exponent (1 when 0), the export scaled alike
    photon_factor = (abundance ** np.float32(look.gfp_photon_exponent)).astype(np.float32)
    raw_g = acquire(np.ascontiguousarray(gfp), rng, optics, peak=optics.peak_photons * abundance * exposure * photon_factor,
                    background=background * np.float32(look.gfp_background) * well_background * photon_factor)
    rfp_camera = replace(optics, read_noise=look.rfp_read_noise)
    raw_r = acquire(np.ascontiguousarray(red), rng, rfp_camera, peak=np.float32(look.rfp_photons) * exposure * well_rfp,
                    ref=ones, background=background * np.float32(look.rfp_background))
    if look.rfp_smoothing > 0:
        raw_r = _smooth_pairs(raw_r, look.rfp_smoothing, optics.offset)
    # the export's per-field gain: most fields at one scale, some far dimmer (measured on the real cells)
    u = rng.random(())
    export_gain = np.where(u < look.dim_field_fraction, look.dim_field_gain, 1.0).astype(np.float32)
    if normalize == "paper":
        sat_g = (optics.gain * optics.peak_photons * look.gfp_saturation + optics.gain * optics.background) / export_gain
        sat_g = sat_g * photon_factor
        sat_r = (optics.gain * look.rfp_photons * look.rfp_saturation
                 + optics.gain * optics.background * look.rfp_background) / export_gain
        imgs = np.stack([to_uint8_scale(raw_g, optics.offset, sat_g), to_uint8_scale(raw_r, optics.offset, sat_r)], 1)
    elif normalize == "minmax":
        from atlaskit.data.sim.optics import minmax

        imgs = np.stack([minmax(raw_g), minmax(raw_r)], 1)
    else:
        imgs = np.stack([raw_g, raw_r], 1)
    sl = (slice(None), slice(MARGIN, S - MARGIN), slice(MARGIN, S - MARGIN))
    cm = (g.owner[sl] + 1).astype(np.int32)
    nm = np.where(g.nuc_soft[sl] >= 0.5, cm, 0).astype(np.int32)
    rows = []
    for j, (p, i) in enumerate(items):
        sp = specs[p]
        if sp is None:
            rows.append({"protein": names[j], "gene": None, "klass": "non-cell", "task": "quality", "label_idx": -1,
                         "index": i, "kind": kinds[j], "is_cell": False, "budded": bool(cs.has_bud[j, 0]),
                         "abundance": np.nan, "exposure": float(exposure[j]), "focus": float(focus[j]),
                         "field_id": f"yeast/{names[j]}/{i}"})
        else:
            rows.append({"protein": sp.name, "gene": sp.info.get("gene"), "klass": sp.info["klass"],
                         "task": sp.info.get("task", "main" if sp.info["klass"] in MAIN_CLASSES else "transfer"),
                         "label_idx": sp.info.get("label_idx", _class_index(sp.info["klass"])),
                         "index": i, "kind": "cell", "is_cell": True, "budded": bool(cs.has_bud[j, 0]),
                         "abundance": sp.abundance, "exposure": float(exposure[j]), "focus": float(focus[j]),
                         "field_id": f"yeast/{sp.name}/{i}"})
    meta = pd.DataFrame(rows)
    meta["normalization"] = {"paper": "8-bit at a fixed per-channel saturation (as plate images), / 255 → [0, 1]",
                             "minmax": "per-image per-channel min-max to [0, 1]", "raw": "raw counts"}[normalize]
    batch = SimBatch(imgs.astype(np.float32, copy=False), meta, ("gfp", "rfp"))
    if masks:
        batch.cell_masks, batch.nucleus_masks = cm, nm
    return batch


def iter_yeast_crops(proteins=None, n_per_protein: int = 20, seed: int = 0, *, task: str = "main", per_class: int | None = None,
                     batch_size: int = 256, normalize: str = "paper", masks: bool = False, start: int = 0,
                     workers: int | None = None, look: "str | YeastLook" = "calibrated") -> Iterator[SimBatch]:
    """Yield batches of 64×64 yeast crops (GFP protein, RFP cytosol), protein by protein.

    Parameters
    ----------
    proteins : None, ORF name(s) or ProteinSpec list
        None = every ORF of ``task`` in :func:`atlaskit.data.catalogs.yeast_classes` (optionally
        the first ``per_class`` of each class).
    n_per_protein, seed, batch_size, start, workers : as in :func:`iter_opencell_crops`.
    task : {"main", "transfer", "all"}
    normalize : {"paper", "minmax", "raw"}
        ``"paper"``: each channel quantised to 8 bits at a fixed saturation level (bright proteins
        saturate, dim ones stay dim, as in plate screens), divided by 255 → [0, 1].
    masks : bool
        Also return cell masks (mother + bud; the centred cell has id 1) and nucleus masks.
    look : {"calibrated", "original"} or YeastLook
        Layout, optics and export (:class:`YeastLook`); ``"calibrated"`` matches the real Chong
        et al. cells, ``"original"`` is the look before that calibration.

    Yields
    ------
    SimBatch
        ``images`` (n, 2, 64, 64); ``meta`` columns ``protein, gene, klass, task, label_idx,
        index, kind, is_cell, budded, abundance, exposure, focus, field_id, normalization``.
    """
    specs = yeast_specs(proteins, seed, task, per_class)
    return _iter(specs, None, n_per_protein, seed, "yeast", batch_size, normalize, masks, start, workers, yeast_look(look))


def _iter(specs, kinds, n_per, seed, style, batch_size, normalize, masks, start, workers=None, look=CALIBRATED):
    n_per = check_count(n_per, "n_per_protein")
    batch_size = check_count(batch_size, "batch_size")
    if normalize not in ("paper", "minmax", "raw"):
        raise ValueError(f"normalize must be 'paper', 'minmax' or 'raw', got {normalize!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")

    chunk = min(batch_size, 128)
    items = [(p, start + i) for p in range(len(specs)) for i in range(n_per)]
    parts = (items[lo:lo + chunk] for lo in range(0, len(items), chunk))

    def render(part):
        kk = None if kinds is None else [kinds[p] for p, _ in part]
        return _render_yeast(specs, part, seed, style, masks=masks, normalize=normalize, kinds=kk, look=look)

    return rebatch(map_ordered(render, parts, workers), batch_size)


def yeast_crops(proteins=None, n_per_protein: int = 20, seed: int = 0, **kw) -> SimBatch:
    """All crops of :func:`iter_yeast_crops` in one :class:`SimBatch`."""
    return SimBatch.concat(list(iter_yeast_crops(proteins, n_per_protein, seed, **kw)))


def yeast_noncells(n: int, seed: int = 0, *, kinds: Sequence[str] = NONCELL_KINDS, normalize: str = "paper",
                   masks: bool = False, look: "str | YeastLook" = "calibrated") -> SimBatch:
    """Bad crops for DeepYeast's cell-quality filter, ``klass = "non-cell"``.

    Kinds (cycled): ``empty`` (background, maybe a cell fragment at the border), ``off_centre``
    (a cell cut by the border), ``debris`` (bright specks, no cell body), ``blurred`` (a cell far
    out of focus), ``clump`` (a jam of small cells). Image ``i`` is kind ``kinds[i % len(kinds)]``.
    """
    n = check_count(n, "n")
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError("kinds is empty")
    for k in kinds:
        if k not in NONCELL_KINDS:
            raise unknown("non-cell kind", k, NONCELL_KINDS)
    specs = [None] * len(kinds)
    # one "protein" per kind; images i, i + len(kinds), … of a kind have indices 0, 1, …
    items = [(i % len(kinds), i // len(kinds)) for i in range(n)]
    seed = check_seed(seed)
    look = yeast_look(look)
    parts = [items[lo:lo + 128] for lo in range(0, n, 128)]

    def render(part):
        return _render_yeast(specs, part, seed, "yeast_noncell", masks=masks, normalize=normalize,
                             kinds=[kinds[p] for p, _ in part], look=look)

    return SimBatch.concat(list(map_ordered(render, parts)))
