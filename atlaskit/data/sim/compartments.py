"""Compartment patterns: one function per compartment, collected in :data:`COMPARTMENT_RENDERERS`.

A renderer receives a :class:`Ctx` (the geometry of a sub-batch of images that all contain the
compartment, and their random streams) and a :class:`ParamView` (the per-protein parameters of
the compartment, one value per image) and returns a :class:`Layer`:

- ``sharp`` ``(b, S, S)``: a concentration map drawn at pixel scale (diffuse signal, networks,
  rings), and/or
- ``spots`` ``(b, S, S)`` impulses plus ``spot_sigma`` ``(b,)``: puncta, widened by their own
  Gaussian before the microscope's PSF (so puncta of any size cost one FFT).

Intensities are scaled so that the bright part of each pattern is about 1 (a punctum's peak, a
membrane's ridge, a nucleoplasm's mean), and the caller weights compartments by grade and by each
cell's expression level. Lengths are given in *reference pixels* (see :mod:`.cells`) and
multiplied by ``ctx.scale``.

Adding a compartment
--------------------
::

    from atlaskit.data.sim import register_compartment, Layer

    @register_compartment("lipid_droplets", params={"count": (3, 12), "size": (1.0, 2.0)})
    def lipid_droplets(ctx, p):
        rate = p.count / ctx.cyto_area() * ctx.g.cyto_soft
        return ctx.spots(rate, p.size, amp=1.5)

Parameter ranges are ``(lo, hi)`` (uniform) or ``(lo, hi, "log")`` (log-uniform); every protein
draws its own value once, deterministically from its name, so that two proteins of one
compartment look alike but not identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from atlaskit.data.sim._core import ItemRNG, unknown
from atlaskit.data.sim.optics import blur, spectral_field

f32 = np.float32

#: name → renderer. Each renderer has attributes ``params`` (name → range), ``geometry``
#: ("mammalian" or "yeast") and ``__doc__`` (what it draws).
COMPARTMENT_RENDERERS: dict[str, Callable] = {}


def register_compartment(name: str, params: dict | None = None, geometry: str = "mammalian"):
    """Decorator adding a renderer to :data:`COMPARTMENT_RENDERERS` (see the module docstring)."""
    if geometry not in ("mammalian", "yeast"):
        raise ValueError(f"geometry must be 'mammalian' or 'yeast', got {geometry!r}")
    for k, v in (params or {}).items():
        if not (isinstance(v, tuple) and len(v) in (2, 3) and float(v[0]) <= float(v[1])):
            raise ValueError(f"compartment {name!r}: parameter {k!r} must be (lo, hi) or (lo, hi, 'log'), got {v!r}")

    def deco(fn):
        fn.params = dict(params or {})
        fn.geometry = geometry
        fn.compartment = name
        COMPARTMENT_RENDERERS[name] = fn
        return fn

    return deco


def draw_params(name: str, rng: np.random.Generator) -> dict[str, float]:
    """One protein's parameter values for compartment ``name`` (uniform / log-uniform in the ranges)."""
    if name not in COMPARTMENT_RENDERERS:
        raise unknown("compartment", name, COMPARTMENT_RENDERERS)
    out = {}
    for k, spec in COMPARTMENT_RENDERERS[name].params.items():
        u = rng.random()
        lo, hi = float(spec[0]), float(spec[1])
        if len(spec) == 3 and spec[2] == "log":
            out[k] = float(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))))
        else:
            out[k] = lo + u * (hi - lo)
    return out


class ParamView:
    """Per-image parameter values of one compartment: ``p.size`` is a ``(b, 1, 1)`` float32 array."""

    def __init__(self, values: dict[str, np.ndarray]):
        self._v = {k: np.asarray(v, f32).reshape(-1, 1, 1) for k, v in values.items()}

    def __getattr__(self, k):
        try:
            return self._v[k]
        except KeyError:
            raise AttributeError(f"no parameter {k!r} (have {sorted(self._v)})") from None

    def vec(self, k) -> np.ndarray:
        """The ``(b,)`` vector of parameter ``k``."""
        return self._v[k].reshape(-1)


@dataclass
class Layer:
    """What a renderer returns (see the module docstring)."""

    sharp: np.ndarray | None = None
    spots: np.ndarray | None = None
    spot_sigma: np.ndarray | None = None

    def __add__(self, other: "Layer") -> "Layer":
        sharp = _add(self.sharp, other.sharp)
        if self.spots is not None and other.spots is not None:
            # different widths cannot share one impulse image: blur the other one now
            s = blur(other.spots, other.spot_sigma) if not np.allclose(self.spot_sigma, other.spot_sigma) else other.spots
            if s is not other.spots:
                sharp = _add(sharp, s)
                return Layer(sharp, self.spots, self.spot_sigma)
            return Layer(sharp, self.spots + other.spots, self.spot_sigma)
        if other.spots is not None:
            return Layer(sharp, other.spots, other.spot_sigma)
        return Layer(sharp, self.spots, self.spot_sigma)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class Ctx:
    """Render context of a sub-batch: geometry ``g``, random streams ``rng``, helpers."""

    def __init__(self, g, rng: ItemRNG):
        self.g = g
        self.rng = rng

    @property
    def n(self) -> int:
        return self.g.n

    @property
    def scale(self) -> float:
        return self.g.scale

    @property
    def shape(self):
        return self.g.shape

    def field(self, sigma, *, sigma_x=None, angle=None) -> np.ndarray:
        """Unit-variance random field of correlation length ``sigma`` (reference px; (b,1,1) or scalar)."""
        s = np.asarray(sigma, f32).reshape(-1) * f32(self.scale)
        sx = None if sigma_x is None else np.asarray(sigma_x, f32).reshape(-1) * f32(self.scale)
        return spectral_field(self.rng, self.shape, s, sigma_x=sx, angle=angle)

    def hits(self, rate: np.ndarray, spread=0.6) -> np.ndarray:
        """Poisson-process impulses with expected count ``rate`` per pixel; amplitudes log-normal(spread)."""
        u = self.rng.random(self.shape)
        hit = u < rate
        out = np.zeros(rate.shape, f32)
        if hit.any():
            v = u[hit] / np.maximum(rate[hit], f32(1e-12))  # uniform in [0, 1) given a hit: reuse it
            sp = np.broadcast_to(np.asarray(spread, f32), rate.shape)[hit]
            z = _ndtri(np.clip(v, 1e-4, 1 - 1e-4))
            out[hit] = np.exp(sp * z - f32(0.5) * sp * sp)
        return out

    def spots(self, rate, size, amp=1.0, spread=0.6) -> Layer:
        """Puncta of Gaussian width ``size`` (reference px) and typical peak ``amp``, at ``rate`` per pixel."""
        imp = self.hits(rate, spread)
        s = np.broadcast_to(np.asarray(size, f32).reshape(-1), (self.n,)) * f32(self.scale)
        peak_norm = f32(2 * np.pi) * (s * s + f32(self.scale) ** 2)
        imp *= (np.asarray(amp, f32) * peak_norm.reshape(-1, 1, 1)) if np.ndim(amp) else f32(amp) * peak_norm.reshape(-1, 1, 1)
        return Layer(spots=imp, spot_sigma=s)

    def lines(self, mask: np.ndarray, width, amp=1.0) -> Layer:
        """A one-pixel line map (``mask``, e.g. cell borders) widened to Gaussian ``width`` (reference px)."""
        s = np.broadcast_to(np.asarray(width, f32).reshape(-1), (self.n,)) * f32(self.scale)
        norm = f32(np.sqrt(2 * np.pi)) * np.sqrt(s * s + f32(self.scale) ** 2)
        return Layer(spots=mask * (norm.reshape(-1, 1, 1) * f32(amp)), spot_sigma=s)

    def cyto_area(self) -> np.ndarray:
        """Per-pixel area (px²) of the owning cell's cytoplasm, for counts → rates.

        Capped at that of a typical HEK293T cell (1500 reference px²): counts are per such a
        cell, and larger cells (U-2 OS) get proportionally more puncta, not sparser ones.
        """
        g = self.g
        a = np.pi * ((g.rn + g.t) ** 2 - g.rn ** 2)
        return np.clip(a, 20.0, 1500.0 * self.scale ** 2).astype(f32)

    def nuc_area(self) -> np.ndarray:
        return np.maximum(np.pi * self.g.rn ** 2, 20.0).astype(f32)

    def nuc_dist(self) -> np.ndarray:
        """Signed distance (px) to the owning cell's nuclear envelope, negative inside."""
        return self.g.r - self.g.rn

    def polar(self, cx: np.ndarray, cy: np.ndarray, warp=None) -> tuple[np.ndarray, np.ndarray]:
        """Angle and radius of every pixel around per-cell points ``(cx, cy)`` (b, K)."""
        g = self.g
        S = self.shape[0]
        dx = np.arange(S, dtype=f32)[None, None, :] - g.gather(cx)
        dy = np.arange(S, dtype=f32)[None, :, None] - g.gather(cy)
        if warp is not None:
            dx = dx + warp[0]
            dy = dy + warp[1]
        return np.arctan2(dy, dx), np.sqrt(dx * dx + dy * dy)


def _ndtri(p):
    from scipy.special import ndtri

    return ndtri(p).astype(f32)


def ridge(field: np.ndarray, width) -> np.ndarray:
    """Thin lines along the zero set of a random field (a network: ER, mitochondria, filaments)."""
    q = field / np.asarray(width, f32)
    return np.exp(-(q * q))


def smoothstep(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def polar_texture(rng: ItemRNG, n_ang: int, n_rad: int, sig_ang, sig_rad) -> np.ndarray:
    """Random field on an (angle, radius) grid (b, n_ang, n_rad), periodic in angle."""
    return spectral_field(rng, (n_ang, n_rad), np.asarray(sig_ang, f32).reshape(-1) if np.ndim(sig_ang) else sig_ang,
                          sigma_x=np.asarray(sig_rad, f32).reshape(-1) if np.ndim(sig_rad) else sig_rad, angle=np.pi / 2)


def polar_lookup(T: np.ndarray, ang: np.ndarray, rad: np.ndarray) -> np.ndarray:
    """Sample ``T`` (b, A, R) at angle ``ang`` (radians) and radius ``rad`` (in radial bins), linear in angle."""
    b, A, R = T.shape
    a = ang * f32(A / (2 * np.pi))
    a0 = np.floor(a)
    fr = a - a0
    i0 = a0.astype(np.int32) % A
    i1 = (i0 + 1) % A
    ri = np.clip(rad, 0, R - 1).astype(np.int32)
    base = (np.arange(b, dtype=np.int32) * (A * R)).reshape(b, 1, 1) + ri
    flat = T.reshape(-1)
    return flat.take(base + i0 * R) * (1 - fr) + flat.take(base + i1 * R) * fr


# =============================================================================================
# mammalian compartments (geometry: cells.Geometry)
# =============================================================================================

@register_compartment("nucleoplasm", {"grain": (0.6, 2.0), "contrast": (0.05, 0.45), "exclusion": (0.2, 0.95), "edge": (-0.4, 0.3),
                                      "foci": (0.0, 25.0), "cyto": (0.0, 0.06)})
def nucleoplasm(ctx, p):
    """Diffuse nuclear signal with granular texture, darker nucleoli, optional faint foci."""
    g = ctx.g
    f = ctx.field(p.grain)
    s = g.nuc_soft * np.maximum(1 + p.contrast * f, 0) * (1 - p.exclusion * g.nucleoli) * (1 + p.edge * (g.rhon - 0.5))
    rate = p.foci / ctx.nuc_area() * g.nuc_soft * (1 - g.nucleoli)
    return Layer(sharp=s + p.cyto * g.cyto_soft) + ctx.spots(rate, 0.5, amp=0.6, spread=0.4)


@register_compartment("cytoplasm", {"grain": (0.7, 2.5), "contrast": (0.03, 0.35), "gradient": (-0.3, 0.8), "nuclear": (0.0, 0.25),
                                    "granules": (0.0, 30.0)})
def cytoplasm(ctx, p):
    """Diffuse cytosolic signal, textured, brighter near the nucleus for ``gradient > 0``, optional faint granules."""
    g = ctx.g
    f = ctx.field(p.grain)
    s = g.cyto_soft * (1 + p.contrast * f) * (1 + p.gradient * (1.5 - np.minimum(g.rho, 2))) + p.nuclear * g.nuc_soft
    rate = p.granules / ctx.cyto_area() * g.cyto_soft
    return Layer(sharp=np.maximum(s, 0)) + ctx.spots(rate, 0.6, amp=0.5, spread=0.4)


@register_compartment("vesicles", {"count": (10.0, 70.0, "log"), "size": (0.45, 1.5), "perinuclear": (0.0, 2.5),
                                   "diffuse": (0.05, 0.35), "spread": (0.3, 0.9)})
def vesicles(ctx, p):
    """Cytoplasmic puncta (endosomes, lysosomes, transport vesicles), optionally perinuclear."""
    g = ctx.g
    bias = np.exp(-p.perinuclear * (np.minimum(g.rho, 2) - 1)) * (p.perinuclear + 0.1) / (1.1 - np.exp(-p.perinuclear))
    rate = p.count / ctx.cyto_area() * g.cyto_soft * bias
    return ctx.spots(rate, p.size, amp=1.0, spread=p.spread) + Layer(sharp=p.diffuse * g.cyto_soft)


@register_compartment("er", {"mesh": (1.4, 2.8), "width": (0.25, 0.55), "perinuclear": (0.3, 1.8), "rim": (0.3, 0.9),
                             "diffuse": (0.08, 0.3)})
def er(ctx, p):
    """Endoplasmic reticulum: reticular network, densest around the nucleus, plus the nuclear envelope."""
    g = ctx.g
    net = ridge(ctx.field(p.mesh), p.width)
    sheet = smoothstep((ctx.field(p.mesh * 1.3) + 0.45) / 0.5)  # sheets with holes: a sponge
    dens = g.cyto_soft * np.exp(-p.perinuclear * (np.minimum(g.rho, 2) - 1))
    d = ctx.nuc_dist() / f32(ctx.scale)
    rim = np.exp(-(d * d) / f32(0.8)) * g.cell_soft
    return Layer(sharp=dens * (p.diffuse + (1 - p.diffuse) * np.maximum(net, 0.7 * sheet)) + p.rim * rim)


@register_compartment("golgi", {"spread": (0.2, 0.45), "offset": (0.1, 0.35), "thickness": (0.2, 0.4), "grain": (0.6, 1.3),
                                "puncta": (0.2, 0.8), "diffuse": (0.0, 0.12)})
def golgi(ctx, p):
    """Compact perinuclear ribbon on one side of the nucleus (towards the centrosome), tubular-punctate."""
    g = ctx.g
    cp = g.gather(np.cos(g.cells.pol))
    sp = g.gather(np.sin(g.cells.pol))
    ang = g.cphi * cp + g.sphi * sp
    wa = np.exp(-(1 - ang) / (p.spread * p.spread))
    wr = np.exp(-(((g.rho - 1 - p.offset) / p.thickness) ** 2))
    region = g.cyto_soft * wa * wr
    tex = np.maximum(1 + 1.1 * ctx.field(p.grain), 0)
    rate = region * (p.puncta * 0.12 / f32(ctx.scale) ** 2)
    return Layer(sharp=region * tex * (1 - 0.5 * p.puncta) + p.diffuse * g.cyto_soft) + ctx.spots(rate, 0.6, amp=1.2, spread=0.4)


@register_compartment("mitochondria", {"mesh": (1.3, 2.3), "width": (0.2, 0.4), "fragmentation": (-0.6, 0.7),
                                       "perinuclear": (0.2, 1.5), "diffuse": (0.02, 0.1)})
def mitochondria(ctx, p):
    """Tubular mitochondrial network (zero lines of a random field, cut into fragments)."""
    g = ctx.g
    tub = ridge(ctx.field(p.mesh), p.width)
    frag = 1 / (1 + np.exp(-4 * (ctx.field(p.mesh * 2.5) - p.fragmentation)))
    dens = g.cyto_soft * np.exp(-p.perinuclear * (np.minimum(g.rho, 2) - 1))
    return Layer(sharp=dens * (tub * frag * 1.3 + p.diffuse))


@register_compartment("nucleolus_gc", {"grain": (0.8, 1.5), "contrast": (0.1, 0.35), "rim": (0.0, 0.6), "nuclear": (0.03, 0.25)})
def nucleolus_gc(ctx, p):
    """Nucleoli filled (granular component), optionally brighter at their rim, faint nucleoplasm."""
    g = ctx.g
    n = g.nucleoli
    shell = 4 * n * (1 - n)
    body = (1 - p.rim) * n + p.rim * shell
    return Layer(sharp=body * np.maximum(1 + p.contrast * ctx.field(p.grain), 0) + p.nuclear * g.nuc_soft)


@register_compartment("nucleolus_fc_dfc", {"count": (3.0, 12.0), "size": (0.35, 0.8), "fill": (0.05, 0.3), "nuclear": (0.02, 0.15)})
def nucleolus_fc_dfc(ctx, p):
    """Small dots (fibrillar centres / dense fibrillar component) inside the nucleoli."""
    g = ctx.g
    area = f32(np.pi * 9.0) * f32(ctx.scale) ** 2
    rate = p.count / area * g.nucleoli
    return ctx.spots(rate, p.size, amp=1.0, spread=0.35) + Layer(sharp=p.fill * g.nucleoli + p.nuclear * g.nuc_soft)


@register_compartment("nuclear_membrane", {"width": (0.6, 1.3), "patchiness": (0.1, 0.5), "nuclear": (0.03, 0.2), "er": (0.0, 0.15)})
def nuclear_membrane(ctx, p):
    """Nuclear envelope / lamina: a thin rim at the nuclear edge, slightly patchy."""
    g = ctx.g
    d = ctx.nuc_dist() / (p.width * f32(ctx.scale))
    rim = np.exp(-(d * d)) * g.cell_soft * np.maximum(1 + p.patchiness * ctx.field(1.5), 0)
    return Layer(sharp=rim + p.nuclear * g.nuc_soft + p.er * g.cyto_soft * np.exp(-2 * (np.minimum(g.rho, 2) - 1)))


@register_compartment("nuclear_speckles", {"count": (5.0, 40.0, "log"), "size": (0.5, 2.0), "diffuse": (0.1, 0.5),
                                           "spread": (0.2, 0.7)})
def nuclear_speckles(ctx, p):
    """Nuclear puncta: speckles, PML/Cajal bodies, foci — outside the nucleoli — over diffuse nucleoplasm."""
    g = ctx.g
    core = np.clip((1 - g.rhon) * g.rn / f32(1.5 * ctx.scale), 0, 1)
    rate = p.count / ctx.nuc_area() * core * (1 - g.nucleoli)
    return ctx.spots(rate, p.size, amp=1.0, spread=p.spread) + Layer(sharp=p.diffuse * g.nuc_soft * (1 - 0.7 * g.nucleoli))


@register_compartment("chromatin", {"gamma": (1.3, 2.6), "contrast": (0.0, 0.6), "grain": (0.8, 1.5)})
def chromatin(ctx, p):
    """Chromatin-bound: follows the DNA stain texture, with stronger contrast."""
    g = ctx.g
    dn = g.dna / np.maximum(g.gather(g.cells.dna), f32(1e-3))
    extra = np.maximum(1 + p.contrast * ctx.field(p.grain), 0)
    return Layer(sharp=np.power(np.maximum(dn, 0), p.gamma) * extra)


@register_compartment("plasma_membrane", {"width": (0.6, 1.4), "cyto": (0.03, 0.2), "puncta": (0.0, 20.0), "patchiness": (0.1, 0.5)})
def plasma_membrane(ctx, p):
    """Plasma membrane: thin signal along every cell border, endocytic puncta, faint cytoplasm."""
    g = ctx.g
    patch = np.maximum(1 + p.patchiness * ctx.field(2.0), 0)
    layer = ctx.lines(g.edge * patch, p.width)
    rate = p.puncta / ctx.cyto_area() * g.cyto_soft * np.exp(-3 * (2 - np.minimum(g.rho, 2)))
    return layer + Layer(sharp=p.cyto * g.cyto_soft) + ctx.spots(rate, 0.7, amp=0.8)


@register_compartment("cell_contact", {"width": (0.6, 1.3), "free": (0.05, 0.25), "cyto": (0.02, 0.15)})
def cell_contact(ctx, p):
    """Cell junctions: membrane signal only where two cells touch."""
    g = ctx.g
    patch = np.maximum(1 + 0.4 * ctx.field(2.0), 0)
    free = g.edge - g.contact
    return ctx.lines((g.contact + p.free * free) * patch, p.width) + Layer(sharp=p.cyto * g.cyto_soft)


@register_compartment("centrosome", {"size": (0.45, 1.0), "pair": (0.2, 1.0), "cyto": (0.05, 0.4), "satellites": (0.0, 6.0)})
def centrosome(ctx, p):
    """1–2 bright dots next to the nucleus (centrioles), optional pericentriolar satellites."""
    from atlaskit.data.sim.cells import splat

    g = ctx.g
    cs = g.cells
    b, K = cs.shape
    x, y = cs.centrosome(gap=1.5 * ctx.scale)
    u = ctx.rng.random((K, 4), dtype=np.float64)
    ang2 = 2 * np.pi * u[..., 0]
    d2 = (1.6 + 1.2 * u[..., 1]) * ctx.scale
    two = u[..., 2] < p.pair.reshape(-1, 1)
    px = np.concatenate([x, x + d2 * np.cos(ang2)], 1)
    py = np.concatenate([y, y + d2 * np.sin(ang2)], 1)
    amp = np.concatenate([cs.valid * 1.0, cs.valid * two * (0.6 + 0.4 * u[..., 3])], 1)
    S = ctx.shape[0]
    imp = splat(px, py, amp, S)
    s = p.vec("size") * f32(ctx.scale)
    imp *= (f32(2 * np.pi) * (s * s + f32(ctx.scale) ** 2) * f32(1.8)).reshape(-1, 1, 1)
    dist_rate = g.cyto_soft * np.exp(-(np.minimum(g.rho, 2) - 1) * 6) * (p.satellites / ctx.cyto_area() * 4)
    layer = Layer(spots=imp, spot_sigma=s) + ctx.spots(dist_rate, 0.5, amp=0.5)
    return layer + Layer(sharp=p.cyto * g.cyto_soft)


@register_compartment("focal_adhesions", {"count": (6.0, 25.0), "length": (2.0, 5.0), "size": (0.5, 0.9), "cyto": (0.05, 0.3)})
def focal_adhesions(ctx, p):
    """Radial streaks at the cell periphery (adhesion plaques at the ends of stress fibres)."""
    g = ctx.g
    band = np.exp(-(((g.rho - 1.82) / 0.14) ** 2)) * g.cell_soft
    ang = np.arctan2(g.sphi, g.cphi)
    T = polar_texture(ctx.rng, 256, 16, 1.6, 4.0)
    streak = ridge(polar_lookup(T, ang, np.full(ang.shape, 8, f32)), 0.35)
    select = smoothstep((ctx.field(p.length) - 0.6) / 0.8)
    dens = band * streak * select * (p.count / 12)
    return Layer(sharp=np.minimum(dens, 1.5) + p.cyto * g.cyto_soft)


@register_compartment("aggregates", {"count": (0.5, 3.0), "size": (1.5, 3.5), "brightness": (2.0, 6.0), "diffuse": (0.1, 0.5)})
def aggregates(ctx, p):
    """A few large bright cytoplasmic inclusions over a diffuse cytoplasm."""
    g = ctx.g
    rate = p.count / ctx.cyto_area() * g.cyto_soft * np.exp(-1.5 * (np.minimum(g.rho, 2) - 1))
    return ctx.spots(rate, p.size, amp=p.brightness, spread=0.5) + Layer(sharp=p.diffuse * g.cyto_soft)


def _actin(ctx, p) -> Layer:
    g = ctx.g
    cs = g.cells
    b, K = cs.shape
    th = (ctx.rng.random((), dtype=np.float64) * np.pi).astype(f32)
    f1 = ctx.field(p.fibre_length, sigma_x=p.fibre_width * 1.5, angle=th)
    f2 = ctx.field(p.fibre_length, sigma_x=p.fibre_width * 1.5, angle=th + f32(np.pi / 3))
    odd = (g.owner % 2 == 1)
    fib = ridge(np.where(odd, f2, f1), 0.3)
    periph = np.clip(0.35 + 0.65 * (np.minimum(g.rho, 2) - 1), 0.35, 1) * g.cell_soft
    cortex = ctx.lines(g.edge, 0.9, amp=p.cortex)
    return cortex + Layer(sharp=periph * (p.fibres * fib + p.diffuse))


def oriented_lines(ctx, orient: np.ndarray, length, spacing, width, n_dir: int = 4) -> np.ndarray:
    """Long thin lines following a per-pixel orientation field ``orient`` (radians, (b,S,S)).

    ``n_dir`` random fields, each smooth along one direction (correlation ``length``) and rough
    across it (``spacing``), give parallel wavy lines at that direction (their zero sets); every
    pixel blends the fields whose direction is closest to its own orientation.
    """
    th0 = ctx.rng.random((), dtype=np.float64) * np.pi / n_dir
    out = np.zeros(orient.shape, f32)
    wsum = np.zeros(orient.shape, f32)
    for j in range(n_dir):
        th = (th0 + j * np.pi / n_dir).astype(f32)
        f = ctx.field(length, sigma_x=spacing, angle=th)
        c = np.cos(orient - th.reshape(-1, 1, 1))
        w = (c * c) ** 4
        out += w * ridge(f, width)
        wsum += w
    return out / np.maximum(wsum, f32(1e-6))


def filaments(ctx, x0: np.ndarray, y0: np.ndarray, theta0: np.ndarray, step: float, curvature, amp=1.0,
              dim_nucleus=0.0) -> np.ndarray:
    """Impulse image of persistent random-walk filaments (microtubules), ``(b, S, S)``.

    Filament ``j`` of cell ``k`` starts at ``(x0, y0)[:, k, j]`` ((b, K, n) px) in direction
    ``theta0`` and walks with steps of ``step`` px, turning by ``N(0, curvature)`` radians per
    step ((b,) or scalar), until it leaves its cell (or the image). Impulses are scaled so that a
    filament's ridge has height ``amp`` after a ~1 px Gaussian; dimmed by ``dim_nucleus`` ((b,)
    or scalar) over nuclei.
    """
    g = ctx.g
    cs = g.cells
    b, K = cs.shape
    n = x0.shape[2]
    S = ctx.shape[0]
    ext = (np.maximum(cs.na, cs.nb) + 1.6 * cs.t0) * 2
    Li = (np.ceil(np.max(np.where(cs.valid, ext, 0), axis=1) / step) + 1).astype(int)
    curv = np.broadcast_to(np.asarray(curvature, f32).reshape(-1), (b,))
    amps = np.broadcast_to(np.asarray(amp, f32).reshape(-1), (b,))
    dims = np.broadcast_to(np.asarray(dim_nucleus, f32).reshape(-1), (b,))
    norm = f32(step * np.sqrt(2 * np.pi) * np.sqrt(1 + ctx.scale ** 2))
    out = np.zeros((b, S * S), f32)
    x0, y0, theta0 = (np.asarray(a, f32) for a in (x0, y0, theta0))
    for i, gen in enumerate(ctx.rng.gens):  # one image at a time: memory ~ K n L of one image
        L = int(Li[i])
        turn = gen.standard_normal((K, n, L), dtype=np.float32)  # drawn for every cell slot
        ki = np.flatnonzero(cs.valid[i])
        if len(ki) == 0:
            continue
        th = theta0[i, ki][..., None] + np.cumsum(turn[ki] * curv[i], axis=-1)
        px = x0[i, ki][..., None] + f32(step) * np.cumsum(np.cos(th), axis=-1)
        py = y0[i, ki][..., None] + f32(step) * np.cumsum(np.sin(th), axis=-1)
        del th
        inb = (px >= 0) & (px <= S - 1) & (py >= 0) & (py <= S - 1)
        flat = np.clip(np.rint(py), 0, S - 1).astype(np.int32) * S + np.clip(np.rint(px), 0, S - 1).astype(np.int32)
        del px, py
        own = g.owner[i].reshape(-1)[flat]
        alive = np.cumprod((own == ki.astype(np.int32)[:, None, None]) & inb, axis=-1, dtype=np.int8)
        a = alive.astype(f32) * (amps[i] * norm)
        if dims[i] != 0:
            a *= 1 - dims[i] * g.nuc_soft[i].reshape(-1)[flat]
        keep = a > 0
        out[i] = np.bincount(flat[keep], weights=a[keep], minlength=S * S)
    return out.reshape(b, S, S)


def cell_points(ctx, n: int, rho=(1.0, 1.95), power: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random points per cell between normalised radii ``rho`` (1 = nuclear envelope,
    2 = membrane), ``(x, y, angle)`` each (b, K, n) — angle is the direction from the nucleus.
    ``power`` 0.5 spreads them evenly over the area, larger values favour the inner radii."""
    from atlaskit.data.sim.cells import N_ANGLE, _radius_tables

    cs = ctx.g.cells
    b, K = cs.shape
    u = ctx.rng.random((K, n, 2), dtype=np.float32)
    psi = u[..., 0] * f32(2 * np.pi)
    rr = f32(rho[0]) + f32(rho[1] - rho[0]) * u[..., 1] ** f32(power)
    tab_rn, tab_t = _radius_tables(cs)
    bins = np.minimum((u[..., 0] * N_ANGLE).astype(int), N_ANGLE - 1)
    rn = np.take_along_axis(tab_rn, bins, axis=2)
    t = np.take_along_axis(tab_t, bins, axis=2)
    r = np.where(rr < 1, rr * rn, rn + (rr - 1) * t)
    return (cs.cx[..., None] + r * np.cos(psi)).astype(f32), (cs.cy[..., None] + r * np.sin(psi)).astype(f32), psi


def _microtubules(ctx, p) -> Layer:
    g = ctx.g
    cx, cy = g.cells.centrosome(gap=1.5 * ctx.scale)
    # filaments seen from random points of the cytoplasm, running mostly outwards (half of them
    # inwards, across the nucleus): an even mesh rather than an aster
    frac = min(1.0, 1.5 * ctx.scale)
    n = max(8, int(np.ceil(160 * frac)))
    x0, y0, psi = cell_points(ctx, n, (1.0, 1.9), power=0.8)
    turn = (ctx.rng.random((g.cells.shape[1], n), dtype=np.float32) - 0.5) * f32(1.6)
    theta0 = psi + turn + f32(np.pi) * (np.arange(n) % 2)
    imp = filaments(ctx, x0, y0, theta0, 0.9, p.curvature / f32(np.sqrt(max(ctx.scale, 0.1))),
                    amp=p.density / f32(60 * frac), dim_nucleus=p.nuclear_dim)
    bundles = np.maximum(1 + 0.3 * ctx.field(6.0), 0.3)
    ang, rad = ctx.polar(cx, cy)
    mtoc = np.exp(-(rad / f32(3.0 * ctx.scale)) ** 2)
    s = np.broadcast_to(p.vec("width") * f32(ctx.scale), (ctx.n,)).astype(f32)
    return Layer(spots=imp * bundles, spot_sigma=s) + Layer(sharp=g.cell_soft * (p.diffuse + p.mtoc * mtoc))


def _intermediate(ctx, p) -> Layer:
    g = ctx.g
    ang = np.arctan2(g.sphi, g.cphi) + 0.25 * ctx.field(8.0)
    T = polar_texture(ctx.rng, 256, 64, 9.0, p.tangle)
    cage = ridge(polar_lookup(T, ang, g.r / f32(1.5 * ctx.scale)), p.width)
    curvy = ridge(ctx.field(p.mesh), p.width)
    dens = g.cyto_soft * np.exp(-p.perinuclear * (np.minimum(g.rho, 2) - 1))
    return Layer(sharp=dens * (0.6 * cage + 0.6 * curvy + p.diffuse))


_ACTIN = {"cortex": (0.3, 1.0), "fibres": (0.3, 1.0), "fibre_width": (0.5, 0.9), "fibre_length": (6.0, 14.0), "diffuse": (0.08, 0.3)}
_MT = {"density": (25.0, 60.0), "width": (0.2, 0.5), "curvature": (0.04, 0.1), "nuclear_dim": (0.3, 0.7), "mtoc": (0.2, 0.8),
       "diffuse": (0.05, 0.2)}
_IF = {"mesh": (2.5, 4.5), "width": (0.18, 0.3), "tangle": (1.0, 3.0), "perinuclear": (0.5, 2.0), "diffuse": (0.05, 0.2)}


@register_compartment("actin", _ACTIN)
def actin(ctx, p):
    """Actin: cortical rim along the membrane plus stress fibres (parallel streaks, one orientation per cell)."""
    return _actin(ctx, p)


@register_compartment("microtubules", _MT)
def microtubules(ctx, p):
    """Microtubules: curvy filaments radiating from the centrosome, bright MTOC, dimmer over the nucleus."""
    return _microtubules(ctx, p)


@register_compartment("intermediate_filaments", _IF)
def intermediate_filaments(ctx, p):
    """Intermediate filaments: long curvy bundles forming a perinuclear cage."""
    return _intermediate(ctx, p)


@register_compartment("cytoskeleton", {"kind": (0.0, 2.999), **_ACTIN, **_MT, **{"if_" + k: v for k, v in _IF.items()}})
def cytoskeleton(ctx, p):
    """OpenCell's "cytoskeleton": each protein is actin-, microtubule- or intermediate-filament-like (``kind``)."""
    kind = np.floor(p.vec("kind")).astype(int)
    out_sharp = np.zeros((ctx.n, *ctx.shape), f32)
    spots = np.zeros((ctx.n, *ctx.shape), f32)
    sig = np.full(ctx.n, 0.9 * ctx.scale, f32)
    for k, fn in enumerate((_actin, _microtubules, _intermediate)):
        idx = np.flatnonzero(kind == k)
        if len(idx) == 0:
            continue
        sub = Ctx(ctx.g.take(idx) if len(idx) < ctx.n else ctx.g, ctx.rng.take(idx))
        vals = {kk: v.reshape(-1)[idx] for kk, v in p._v.items()}
        if k == 2:
            vals.update({kk[3:]: v for kk, v in vals.items() if kk.startswith("if_")})
        layer = fn(sub, ParamView(vals))
        if layer.sharp is not None:
            out_sharp[idx] += layer.sharp
        if layer.spots is not None:
            spots[idx] += layer.spots
    return Layer(sharp=out_sharp, spots=spots, spot_sigma=sig)


# =============================================================================================
# yeast compartments (geometry: cells.YeastGeometry): in :mod:`.compartments_yeast`, registered here,
# after the mammalian ones and before anything below (the registration order is the render order)
# =============================================================================================

from atlaskit.data.sim.compartments_yeast import (  # noqa: E402,F401  (registers the y_* renderers)
    per_cell_density, y_actin, y_bud_neck, y_cell_periphery, y_cytoplasm, y_endosome, y_er, y_golgi, y_lipid_particle,
    y_microtubule, y_mitochondrion, y_nuclear_periphery, y_nucleolus, y_nucleus, y_peroxisome, y_spindle_pole, y_vacuole,
)


# =============================================================================================
# mixing compartments into one channel
# =============================================================================================

@dataclass(frozen=True)
class Component:
    """One compartment of a protein's pattern: renderer name, weight, parameter values."""

    compartment: str
    weight: float
    params: dict


def render_components(g, rng: ItemRNG, items: list, presence: list | None = None):
    """Render one channel of a batch whose image ``i`` shows the components ``items[i]``.

    Parameters
    ----------
    g : geometry of the batch (``b`` images).
    rng : the batch's per-image generators.
    items : list (length b) of sequences of :class:`Component`.
    presence : optional list (length b) of dicts compartment → ``(K,)`` per-cell weights (e.g.
        0/1 to show a compartment in only some cells); default all cells.

    Returns
    -------
    sharp : (b, S, S) float32, and spots : list of ``(idx, impulses, sigma)`` for
    :func:`atlaskit.data.sim.optics.form_image`.

    Compartments are rendered in :data:`COMPARTMENT_RENDERERS` order, each once for the images
    that contain it, so every image draws its random numbers in an order fixed by its own
    components (never by the rest of the batch). Every component is weighted per pixel by the
    owning cell's expression level (× its presence weight).
    """
    b = g.n
    sharp = np.zeros((b, *g.shape), f32)
    spots = []
    if b == 0:
        return sharp, spots
    wanted = {c.compartment for it in items for c in it}
    for c in wanted:
        if c not in COMPARTMENT_RENDERERS:
            raise unknown("compartment", c, COMPARTMENT_RENDERERS)
    expr = None
    for name, fn in COMPARTMENT_RENDERERS.items():
        if name not in wanted:
            continue
        idx = np.array([i for i, it in enumerate(items) if any(c.compartment == name for c in it)])
        comps = [next(c for c in items[i] if c.compartment == name) for i in idx]
        full = len(idx) == b
        sub = Ctx(g if full else g.take(idx), rng.take(idx))
        pv = ParamView({k: [c.params[k] for c in comps] for k in fn.params})
        layer = fn(sub, pv)
        weight = np.array([c.weight for c in comps], f32).reshape(-1, 1, 1)
        if presence is not None and any(name in (presence[i] or {}) for i in idx):
            K = g.cells.valid.shape[1]
            pres = np.stack([np.asarray((presence[i] or {}).get(name, np.ones(K)), f32) for i in idx])
            cw = sub.g.gather(sub.g.cells.expr * pres)
        else:
            if expr is None:
                expr = g.gather(g.cells.expr)
            cw = expr if full else expr[idx]
        cw = cw * weight
        if hasattr(sub.g, "thick"):
            cw = cw * sub.g.thick
        if layer.sharp is not None:
            if full:
                sharp += layer.sharp * cw
            else:
                sharp[idx] += layer.sharp * cw
        if layer.spots is not None:
            spots.append((idx, layer.spots * cw, layer.spot_sigma))
    return sharp, spots
