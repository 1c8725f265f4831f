"""Cell and nucleus geometry: cell-line morphologies, layouts of cells, per-pixel coordinates.

A mammalian cell is described by a handful of numbers (nucleus centre, semi-axes, orientation,
low-order shape harmonics, cytoplasm thickness and its harmonics, polarity angle, nucleoli).
Rendering a batch turns those numbers into per-pixel fields that every compartment pattern uses:

``owner``
    which cell a pixel belongs to (-1 = background). Cells tile space as a *power diagram*
    (nearest centre, weighted by cell size) of slightly warped coordinates, cut by each cell's
    own outline — dense epithelial sheets get polygonal, wavy cell-cell borders, sparse cells
    get free outlines.
``rho``
    a normalised radial coordinate of the owning cell: 0 at the nucleus centre, 1 on the nuclear
    envelope, 2 on the plasma membrane (3 in background). Patterns are written in ``rho`` so they
    adapt to every cell's size and shape (ER dense near ``rho = 1``, focal adhesions near 2 …).
``cphi, sphi``
    unit direction from the nucleus centre (for polarity: Golgi and centrosome on one side).
``nuc_soft, cell_soft``
    anti-aliased nucleus and cell indicators; ``edge`` / ``contact`` mark cell borders (all /
    cell-cell only); ``nucleoli`` is a soft nucleolus map and ``dna`` the DNA-stain texture.

Lengths are in pixels of the rendered image; a :class:`Morphology` gives them in *reference*
pixels and the caller passes ``scale`` (rendered px per reference px).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from atlaskit.data.sim._core import ItemRNG
from atlaskit.data.sim.optics import blur, spectral_field


@dataclass(frozen=True)
class Morphology:
    """Shape statistics of one cell line (lengths in reference pixels).

    Attributes
    ----------
    name : str
    nucleus_radius : (lo, hi)
        Mean nuclear semi-axis.
    nucleus_aspect : (lo, hi)
        Minor/major axis ratio of the nucleus.
    nucleus_irregularity : float
        Amplitude of the 2nd/3rd shape harmonics of the nucleus (0 = perfect ellipse).
    cytoplasm : (lo, hi)
        Cytoplasm thickness from the nuclear envelope to the plasma membrane.
    cytoplasm_irregularity : float
        Amplitude of the 1st/2nd shape harmonics of the cell outline (1st = off-centre nucleus).
    elongation : float
        Extra 2nd harmonic of the outline along the nucleus' long axis (spindle-shaped cells).
    spacing : float
        Lattice spacing between cell centres relative to ``2 (R_nucleus + 0.75 cytoplasm)``;
        below 1 cells press against each other.
    dropout : (lo, hi)
        Range of the fraction of empty lattice sites (per image): the cell density.
    clustering : float
        0 = cells scattered uniformly; 1 = cells in colonies with empty gaps (A-431).
    warp, warp_scale : float
        Amplitude and correlation length of the smooth random warp that makes outlines wavy.
    nucleoli : (lo, hi)
        Number of nucleoli per nucleus (inclusive).
    nucleolus_size : float
        Gaussian width of a nucleolus.
    outline_noise : float
        Relative amplitude of the smooth random modulation of the cytoplasm thickness
        (lamellipodia, protrusions: irregular free outlines).
    flatness : float
        How much dimmer the cell periphery is than the perinuclear region (thin spread cells
        hold less fluorophore per pixel at their edges); 0 = uniform.
    """

    name: str
    nucleus_radius: tuple = (15.0, 20.0)
    nucleus_aspect: tuple = (0.72, 0.95)
    nucleus_irregularity: float = 0.04
    cytoplasm: tuple = (7.0, 14.0)
    cytoplasm_irregularity: float = 0.2
    elongation: float = 0.1
    spacing: float = 0.95
    dropout: tuple = (0.0, 0.35)
    clustering: float = 0.0
    warp: float = 2.0
    warp_scale: float = 6.0
    nucleoli: tuple = (1, 4)
    nucleolus_size: float = 3.2
    outline_noise: float = 0.15
    flatness: float = 0.2


#: Cell lines. HEK293T is in OpenCell crop pixels (a 100×100 crop holds one cell and parts of its
#: neighbours); the HPA lines are in pixels of the Kaggle 512×512 images (2048 px → 512 px).
CELL_LINES: dict[str, Morphology] = {
    "HEK293T": Morphology("HEK293T"),
    "U-2 OS": Morphology(
        "U-2 OS", nucleus_radius=(21.0, 28.0), nucleus_aspect=(0.6, 0.88), nucleus_irregularity=0.05,
        cytoplasm=(35.0, 70.0), cytoplasm_irregularity=0.35, elongation=0.3, spacing=0.8,
        dropout=(0.3, 0.6), clustering=0.2, warp=6.0, warp_scale=18.0, nucleoli=(2, 5), nucleolus_size=3.6,
        outline_noise=0.45, flatness=0.65,
    ),
    "A-431": Morphology(
        "A-431", nucleus_radius=(16.0, 21.0), nucleus_aspect=(0.75, 0.95), nucleus_irregularity=0.04,
        cytoplasm=(13.0, 24.0), cytoplasm_irregularity=0.15, elongation=0.08, spacing=1.0,
        dropout=(0.2, 0.5), clustering=0.75, warp=3.0, warp_scale=10.0, nucleoli=(1, 3), nucleolus_size=3.2,
        outline_noise=0.2, flatness=0.35,
    ),
    "HeLa": Morphology(
        "HeLa", nucleus_radius=(17.0, 23.0), nucleus_aspect=(0.65, 0.9), nucleus_irregularity=0.05,
        cytoplasm=(22.0, 42.0), cytoplasm_irregularity=0.3, elongation=0.35, spacing=0.85,
        dropout=(0.2, 0.5), clustering=0.3, warp=5.0, warp_scale=14.0, nucleoli=(2, 4), nucleolus_size=3.4,
        outline_noise=0.35, flatness=0.5,
    ),
}

#: Nucleolus slots per cell (unused slots have zero amplitude).
MAX_NUCLEOLI = 5


@dataclass
class CellSet:
    """Per-cell parameters of a batch, every array ``(b, K)`` (K cells, some maybe invalid).

    Lengths in rendered pixels; angles in radians. ``nh``/``ch`` are ``(b, K, 4)`` harmonic
    coefficients (cos 2φ, sin 2φ, cos 3φ, sin 3φ of the nucleus; cos φ, sin φ, cos 2φ, sin 2φ of
    the outline); ``nucleoli`` is ``(b, K, MAX_NUCLEOLI, 3)`` with (u, v, amplitude) in
    nucleus-normalised coordinates.
    """

    valid: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    na: np.ndarray
    nb: np.ndarray
    th: np.ndarray
    nh: np.ndarray
    t0: np.ndarray
    ch: np.ndarray
    pol: np.ndarray
    expr: np.ndarray
    dna: np.ndarray
    nucleoli: np.ndarray

    @property
    def shape(self):
        return self.valid.shape

    def take(self, idx) -> "CellSet":
        return CellSet(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def rmax(self) -> np.ndarray:
        """Upper bound of the nuclear radius (b, K)."""
        return np.maximum(self.na, self.nb) * (1 + np.abs(self.nh).sum(-1))

    def centrosome(self, gap: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
        """Centrosome position per cell: just outside the nucleus in the polarity direction."""
        d = self.pol - self.th
        re = self.na * self.nb / np.sqrt((self.nb * np.cos(d)) ** 2 + (self.na * np.sin(d)) ** 2)
        r = re * 1.04 + gap
        return self.cx + r * np.cos(self.pol), self.cy + r * np.sin(self.pol)


def _draw_cells(morph: Morphology, scale: float, U: np.ndarray, Z: np.ndarray) -> dict:
    """Per-cell shape parameters from uniform ``U`` (b, K, ≥12) and normal ``Z`` (b, K, ≥14) draws."""
    lo, hi = morph.nucleus_radius
    r = (lo + (hi - lo) * U[..., 3]) * scale
    asp = morph.nucleus_aspect[0] + (morph.nucleus_aspect[1] - morph.nucleus_aspect[0]) * U[..., 4]
    na, nb = r / np.sqrt(asp), r * np.sqrt(asp)
    th = U[..., 5] * np.pi
    nh = Z[..., 0:4] * morph.nucleus_irregularity * np.array([1.0, 1.0, 0.6, 0.6])
    t0 = (morph.cytoplasm[0] + (morph.cytoplasm[1] - morph.cytoplasm[0]) * U[..., 6]) * scale
    ch = Z[..., 4:8] * morph.cytoplasm_irregularity * np.array([0.6, 0.6, 0.5, 0.5])
    ch[..., 2] += morph.elongation * np.cos(2 * th)
    ch[..., 3] += morph.elongation * np.sin(2 * th)
    pol = U[..., 7] * 2 * np.pi
    expr = np.exp(0.25 * Z[..., 8])
    dna = np.exp(0.15 * Z[..., 9])
    nlo, nhi = morph.nucleoli
    count = nlo + np.floor(U[..., 8] * (nhi - nlo + 1))
    ang = 2 * np.pi * U[..., 9:10] + np.arange(MAX_NUCLEOLI) * (2 * np.pi / MAX_NUCLEOLI) + Z[..., 10:10 + MAX_NUCLEOLI] * 0.4
    rad = 0.2 + 0.3 * np.abs(np.tanh(Z[..., 10:10 + MAX_NUCLEOLI] + U[..., 10:11]))
    amp = (np.arange(MAX_NUCLEOLI) < count[..., None]) * (0.75 + 0.5 * U[..., 11:12] * np.cos(ang * 3) ** 2)
    nucleoli = np.stack([rad * np.cos(ang), rad * np.sin(ang), amp], -1)
    return dict(na=na, nb=nb, th=th, nh=nh, t0=t0, ch=ch, pol=pol, expr=expr, dna=dna, nucleoli=nucleoli)


def _relax(cs: CellSet, gap: float, pinned: np.ndarray | None = None, iters: int = 8) -> None:
    """Push cell centres apart (in place) until no nucleus crosses a power-diagram border."""
    w = (0.5 * (cs.na + cs.nb) + cs.t0) ** 2
    rm = cs.rmax() + gap
    for _ in range(iters):
        dx = cs.cx[:, :, None] - cs.cx[:, None, :]
        dy = cs.cy[:, :, None] - cs.cy[:, None, :]
        D = np.sqrt(dx * dx + dy * dy) + 1e-6
        border = (D * D + w[:, :, None] - w[:, None, :]) / (2 * D)
        both = cs.valid[:, :, None] & cs.valid[:, None, :]
        K = cs.valid.shape[1]
        deficit = np.where(both & ~np.eye(K, dtype=bool), np.maximum(rm[:, :, None] - border, 0), 0)
        if not deficit.any():
            break
        mx = (deficit * dx / D).sum(2)
        my = (deficit * dy / D).sum(2)
        if pinned is not None:
            mx[pinned] = 0
            my[pinned] = 0
        cs.cx += 0.6 * mx
        cs.cy += 0.6 * my


def crop_layout(rng: ItemRNG, morph: Morphology, size: int, scale: float = 1.0, jitter: float = 1.0) -> CellSet:
    """Cells around one nucleus centred in a ``size``×``size`` render (cell 0 is the centre cell).

    Neighbours sit on a jittered hexagonal lattice (6 at the lattice spacing, 6 at √3 times),
    each missing with the image's dropout probability, so crops differ in density.
    """
    b, K = len(rng), 13
    V = rng.random((6,), dtype=np.float64)
    U = rng.random((K, 12), dtype=np.float64)
    Z = rng.normal((K, 16), dtype=np.float64)
    p = _draw_cells(morph, scale, U, Z)
    rn_mean = np.mean(morph.nucleus_radius) * scale
    t_mean = np.mean(morph.cytoplasm) * scale
    d = morph.spacing * 2 * (rn_mean + 0.75 * t_mean) * (0.9 + 0.2 * V[:, 0:1])
    alpha = V[:, 1:2] * np.pi / 3
    ang = alpha + np.r_[0, np.arange(6) * np.pi / 3, np.pi / 6 + np.arange(6) * np.pi / 3][None, :]
    dist = d * np.r_[0, np.ones(6), np.full(6, np.sqrt(3))][None, :]
    c = (size - 1) / 2
    cx = c + dist * np.cos(ang) + (U[..., 0] - 0.5) * 0.24 * d * (dist > 0)
    cy = c + dist * np.sin(ang) + (U[..., 1] - 0.5) * 0.24 * d * (dist > 0)
    cx[:, 0] += (V[:, 2] - 0.5) * 2 * jitter
    cy[:, 0] += (V[:, 3] - 0.5) * 2 * jitter
    pdrop = morph.dropout[0] + (morph.dropout[1] - morph.dropout[0]) * V[:, 4:5]
    valid = U[..., 2] >= pdrop
    valid[:, 0] = True
    cs = CellSet(valid=valid, cx=cx, cy=cy, **p)
    pinned = np.zeros((b, K), bool)
    pinned[:, 0] = True
    _relax(cs, gap=1.5 * scale + morph.warp * scale, pinned=pinned)
    return cs


def field_layout(rng: ItemRNG, morph: Morphology, size: int, scale: float = 1.0, density=None) -> CellSet:
    """Cells scattered over a ``size``×``size`` field: jittered hexagonal lattice with gaps.

    ``density`` (per image, (b,) or scalar in [0, 1]) overrides the drawn fraction of occupied
    lattice sites; with ``morph.clustering`` the gaps follow a smooth random field (colonies).
    """
    b = len(rng)
    rn_mean = np.mean(morph.nucleus_radius) * scale
    t_mean = np.mean(morph.cytoplasm) * scale
    d = morph.spacing * 2 * (rn_mean + 0.75 * t_mean)
    n1 = int(np.ceil((size + 2 * d) / d)) + 1
    n2 = int(np.ceil((size + 2 * d) / (d * np.sqrt(3) / 2))) + 1
    K = n1 * n2
    V = rng.random((12,), dtype=np.float64)
    U = rng.random((K, 12), dtype=np.float64)
    Z = rng.normal((K, 16), dtype=np.float64)
    p = _draw_cells(morph, scale, U, Z)
    ii, jj = np.meshgrid(np.arange(n2), np.arange(n1), indexing="ij")
    gx = (jj + 0.5 * (ii % 2)).ravel() * d - d
    gy = ii.ravel() * d * np.sqrt(3) / 2 - d
    rot = (V[:, 0:1] - 0.5) * 0.6
    ctr = size / 2
    cx = ctr + (gx - ctr) * np.cos(rot) - (gy - ctr) * np.sin(rot) + V[:, 1:2] * d
    cy = ctr + (gx - ctr) * np.sin(rot) + (gy - ctr) * np.cos(rot) + V[:, 2:3] * d
    cx += (U[..., 0] - 0.5) * 0.3 * d
    cy += (U[..., 1] - 0.5) * 0.3 * d
    if density is None:
        keep = 1 - (morph.dropout[0] + (morph.dropout[1] - morph.dropout[0]) * V[:, 3:4])
    else:
        keep = np.broadcast_to(np.asarray(density, float).reshape(-1, 1), (b, 1))
    k = 2 * np.pi / (size * (0.5 + 0.5 * V[:, 4:7]))
    cl = sum(
        np.cos(k[:, j:j + 1] * (cx * np.cos(2.1 * j + 6 * V[:, 7:8]) + cy * np.sin(2.1 * j + 6 * V[:, 7:8])) + 6.3 * V[:, 8 + j:9 + j])
        for j in range(3)
    ) / np.sqrt(1.5)
    keep_p = np.clip(keep + morph.clustering * 0.45 * cl, 0, 1)
    valid = U[..., 2] < keep_p
    inside = (cx > -d * 0.6) & (cx < size + d * 0.6) & (cy > -d * 0.6) & (cy < size + d * 0.6)
    valid &= inside
    cs = CellSet(valid=valid, cx=cx, cy=cy, **p)
    _relax(cs, gap=1.5 * scale + morph.warp * scale)
    return cs


@dataclass
class Geometry:
    """Per-pixel fields of a batch of mammalian cell images (all ``(b, S, S)``; see module doc)."""

    cells: CellSet
    scale: float
    owner: np.ndarray
    rho: np.ndarray
    rhon: np.ndarray
    cphi: np.ndarray
    sphi: np.ndarray
    r: np.ndarray
    rn: np.ndarray
    t: np.ndarray
    nuc_soft: np.ndarray
    cell_soft: np.ndarray
    edge: np.ndarray
    contact: np.ndarray
    nucleoli: np.ndarray
    dna: np.ndarray
    thick: np.ndarray

    @property
    def n(self) -> int:
        return self.owner.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.owner.shape[1:]

    @property
    def incell(self) -> np.ndarray:
        return self.owner >= 0

    @property
    def cyto_soft(self) -> np.ndarray:
        return np.maximum(self.cell_soft - self.nuc_soft, 0)

    def take(self, idx) -> "GeometryView":
        """The geometry of images ``idx``; arrays are indexed lazily, on first use."""
        return GeometryView(self, idx)

    def gather(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-cell values ``(b, K)`` → per-pixel map ``(b, S, S)`` of the owning cell (``fill`` outside)."""
        b, K = values.shape[:2]
        flat = np.maximum(self.owner, 0) + (np.arange(b) * K).reshape(b, 1, 1)
        out = np.asarray(values, np.float32).reshape(-1).take(flat)
        if fill is not None:
            out[self.owner < 0] = fill
        return out


#: Angle bins of the per-cell radius tables (≈1 px steps along a 20-px nucleus).
N_ANGLE = 128


def _radius_tables(cs: CellSet) -> tuple[np.ndarray, np.ndarray]:
    """Nuclear radius R_n(φ) and cytoplasm thickness T(φ) per cell and angle bin, (b, K, N_ANGLE) float32.

    R_n is the ellipse radius times ``1 + Σ`` 2nd/3rd harmonics; T is ``t0 (1 + Σ`` 1st/2nd
    harmonics), floored at a quarter of ``t0``.
    """
    phi = (np.arange(N_ANGLE) + 0.5) * (2 * np.pi / N_ANGLE)
    c, s = np.cos(phi), np.sin(phi)
    c2, s2, c3, s3 = np.cos(2 * phi), np.sin(2 * phi), np.cos(3 * phi), np.sin(3 * phi)
    d = phi - cs.th[..., None]
    na, nb = cs.na[..., None], cs.nb[..., None]
    re = na * nb / np.sqrt((nb * np.cos(d)) ** 2 + (na * np.sin(d)) ** 2)
    nh, ch = cs.nh[..., None, :], cs.ch[..., None, :]
    hn = nh[..., 0] * c2 + nh[..., 1] * s2 + nh[..., 2] * c3 + nh[..., 3] * s3
    hc = ch[..., 0] * c + ch[..., 1] * s + ch[..., 2] * c2 + ch[..., 3] * s2
    rn = re * (1 + hn)
    t = cs.t0[..., None] * np.maximum(1 + hc, 0.25)
    return rn.astype(np.float32), t.astype(np.float32)


class GeometryView:
    """A lazily indexed subset of a geometry (:class:`Geometry` or the yeast one): an array
    field is copied out of the full batch only when a renderer reads it."""

    def __init__(self, base, idx):
        self._base = base
        self._idx = np.asarray(idx)
        self.cells = base.cells.take(self._idx)
        self.scale = base.scale

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        v = getattr(self._base, name)
        if isinstance(v, np.ndarray):
            v = v[self._idx]
            setattr(self, name, v)
            return v
        raise AttributeError(name)

    def take(self, idx) -> "GeometryView":
        return GeometryView(self._base, self._idx[np.asarray(idx)])

    n = property(lambda self: len(self._idx))
    shape = property(lambda self: self._base.shape)
    incell = property(lambda self: self.owner >= 0)
    cyto_soft = property(lambda self: np.maximum(self.cell_soft - self.nuc_soft, 0))

    def gather(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        return Geometry.gather(self, values, fill)


def mammalian_geometry(cs: CellSet, size: int, rng: ItemRNG, morph: Morphology, scale: float = 1.0) -> Geometry:
    """Per-pixel geometry of ``size``×``size`` renders of the cells ``cs`` (see module doc)."""
    b, K = cs.shape
    S = int(size)
    f32 = np.float32
    # smooth warp of the coordinates: wavy cell borders and nuclear outlines
    warp = spectral_field(rng, (S, 2 * S), morph.warp_scale * scale) * f32(morph.warp * scale / 1.4)
    X = np.arange(S, dtype=f32)[None, None, :] + warp[:, :, :S]
    Y = np.arange(S, dtype=f32)[None, :, None] + warp[:, :, S:]
    # power diagram: argmin_k |x - c_k|^2 - w_k  (the common |x|^2 term dropped)
    w = (0.5 * (cs.na + cs.nb) + cs.t0) ** 2
    const = np.where(cs.valid, cs.cx ** 2 + cs.cy ** 2 - w, np.inf).astype(f32)
    ax = (-2 * cs.cx).astype(f32)
    ay = (-2 * cs.cy).astype(f32)
    best = np.full((b, S, S), np.inf, f32)
    owner = np.zeros((b, S, S), np.int32)
    tmp = np.empty_like(best)
    less = np.empty(best.shape, bool)
    for k in range(K):
        if not cs.valid[:, k].any():
            continue
        np.multiply(X, ax[:, k].reshape(b, 1, 1), out=tmp)
        tmp += Y * ay[:, k].reshape(b, 1, 1)
        tmp += const[:, k].reshape(b, 1, 1)
        np.less(tmp, best, out=less)
        np.minimum(tmp, best, out=best)
        np.putmask(owner, less, k)
    # normalised radial coordinate of the owner
    flat = owner + (np.arange(b, dtype=np.int32) * K).reshape(b, 1, 1)

    def g(a):
        return np.asarray(a, f32).reshape(-1).take(flat)

    # the nucleus and the radial coordinate see a third of the warp: smooth, oval nuclei
    dx = X - warp[:, :, :S] * f32(0.65) - g(cs.cx)
    dy = Y - warp[:, :, S:] * f32(0.65) - g(cs.cy)
    r = np.sqrt(dx * dx + dy * dy) + f32(1e-3)
    c, s = dx / r, dy / r
    # nuclear radius and cytoplasm thickness per direction: per-cell tables over angle bins
    ang = np.arctan2(dy, dx)
    abin = (ang * f32(N_ANGLE / (2 * np.pi))).astype(np.int32) % N_ANGLE
    abin += flat * N_ANGLE
    tab_rn, tab_t = _radius_tables(cs)
    rn = tab_rn.reshape(-1).take(abin)
    bumps = spectral_field(rng, (S, S), 1.6 * morph.warp_scale * scale)
    t = tab_t.reshape(-1).take(abin) * np.maximum(1 + f32(morph.outline_noise) * bumps, f32(0.25))
    rhon = r / rn
    rho = np.where(rhon < 1, rhon, 1 + (r - rn) / t)
    outside = rho >= 2
    owner[outside] = -1
    rho[outside] = 3
    nuc_soft = np.clip((1 - rhon) * rn + f32(0.5), 0, 1)
    cell_soft = np.clip((2 - rho) * t + f32(0.5), 0, 1)
    nuc_soft[outside] = 0
    cell_soft[outside] = 0
    # fluorophore per pixel: thinner towards the periphery, smooth thickness variations
    thick = (1 - f32(morph.flatness) * np.clip(rho - 1, 0, 1) ** 1.5) * (1 + f32(0.12) * bumps)
    thick[outside] = 0
    # borders
    edge = np.zeros((b, S, S), bool)
    contact = np.zeros((b, S, S), bool)
    for ax_ in (1, 2):
        a = owner
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[ax_] = slice(0, -1)
        sl1[ax_] = slice(1, None)
        diff = a[tuple(sl0)] != a[tuple(sl1)]
        both = (a[tuple(sl0)] >= 0) & (a[tuple(sl1)] >= 0)
        edge[tuple(sl0)] |= diff
        edge[tuple(sl1)] |= diff
        contact[tuple(sl0)] |= diff & both
        contact[tuple(sl1)] |= diff & both
    incell = owner >= 0
    edge &= incell
    contact &= incell
    # nucleoli: blurred impulses at the nucleolus positions, soft-thresholded, kept inside
    M = cs.nucleoli.shape[2]
    uu, vv, amp = cs.nucleoli[..., 0], cs.nucleoli[..., 1], cs.nucleoli[..., 2]
    px = cs.cx[..., None] + uu * cs.na[..., None] * np.cos(cs.th)[..., None] - vv * cs.nb[..., None] * np.sin(cs.th)[..., None]
    py = cs.cy[..., None] + uu * cs.na[..., None] * np.sin(cs.th)[..., None] + vv * cs.nb[..., None] * np.cos(cs.th)[..., None]
    imp = splat(px.reshape(b, K * M), py.reshape(b, K * M), (amp * cs.valid[..., None]).reshape(b, K * M), S)
    sig = morph.nucleolus_size * scale
    blob = blur(imp, sig) * f32(2 * np.pi * sig * sig)
    core = np.clip((1 - rhon) * rn / f32(2.5 * scale), 0, 1) * (owner >= 0)
    nucleoli = np.clip((blob - f32(0.3)) / f32(0.3), 0, 1) * core
    nucleoli = nucleoli * nucleoli * (3 - 2 * nucleoli)
    # DNA stain texture: fine grain + chromatin domains, dark nucleoli, brighter periphery
    f1 = spectral_field(rng, (S, S), 0.9 * scale)
    f2 = spectral_field(rng, (S, S), 3.0 * scale)
    rim = np.exp(-(((1 - rhon) * rn / f32(1.8 * scale)) ** 2))
    dna = nuc_soft * g(cs.dna) * (1 + f32(0.2) * f1 + f32(0.14) * f2 + f32(0.15) * rim) * (1 - f32(0.55) * nucleoli)
    np.maximum(dna, 0, out=dna)
    return Geometry(
        cells=cs, scale=scale, owner=owner, rho=rho, rhon=rhon, cphi=c, sphi=s, r=r, rn=rn, t=t,
        nuc_soft=nuc_soft, cell_soft=cell_soft, edge=edge.astype(f32), contact=contact.astype(f32),
        nucleoli=nucleoli.astype(f32, copy=False), dna=dna.astype(f32, copy=False), thick=thick.astype(f32, copy=False),
    )


def splat(x: np.ndarray, y: np.ndarray, amp: np.ndarray, size: int) -> np.ndarray:
    """Impulse images (b, S, S): ``amp`` added at the rounded positions ``(x, y)`` (b, n); off-image points dropped."""
    b = x.shape[0]
    S = int(size)
    xi = np.rint(x).astype(np.int64)
    yi = np.rint(y).astype(np.int64)
    ok = (xi >= 0) & (xi < S) & (yi >= 0) & (yi < S) & (amp != 0)
    flat = (np.arange(b)[:, None] * S * S + yi * S + xi)[ok]
    out = np.zeros(b * S * S, np.float32)
    np.add.at(out, flat, np.broadcast_to(np.asarray(amp, np.float32), ok.shape)[ok])
    return out.reshape(b, S, S)


def instance_masks(owner: np.ndarray, nuc: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell and nucleus instance masks (int32, 0 = background, id = cell index + 1), margin cut."""
    sl = (slice(None), slice(margin, owner.shape[1] - margin), slice(margin, owner.shape[2] - margin))
    cell = (owner[sl] + 1).astype(np.int32)
    nucm = np.where(nuc[sl], cell, 0).astype(np.int32)
    return cell, nucm
