"""Optics and camera: FFT blur with per-image widths, random fields, acquisition, normalisation.

Everything works on batches ``(b, H, W)`` and takes per-image parameters as ``(b,)`` arrays, so
a batch of images with different point-spread functions costs one FFT pair. FFTs are periodic:
the renderers draw a margin around every image and :func:`acquire` cuts it off, so nothing wraps
into the returned pixels.

Image formation (:func:`acquire`)::

    signal = PSF * (sharp + sum_j G(sigma_j) * spots_j)       (PSF = Gaussian + weak broad halo)
    photons ~ Poisson(background + peak * signal / ref)       (ref = 99.9th percentile of signal)
    raw = clip(offset + gain * photons + N(0, read_noise), 0, 65535)

``sharp`` holds sub-resolution patterns drawn directly at pixel scale; ``spots`` hold impulse
images (puncta) to be widened by their own Gaussian ``sigma_j`` before the PSF; the halo stands
for out-of-focus light; a per-image ``focus`` blur is added in quadrature to the PSF width.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from atlaskit.data.sim._core import ItemRNG, shot_noise

#: Worker threads of scipy.fft. Results do not depend on it (each 1-D transform is computed
#: identically whichever thread runs it); 2 suits the 2-core CI machines.
FFT_WORKERS = 2


def rfft2(x: np.ndarray) -> np.ndarray:
    return sfft.rfft2(x, workers=FFT_WORKERS)


def irfft2(f: np.ndarray, shape) -> np.ndarray:
    return sfft.irfft2(f, s=tuple(shape), workers=FFT_WORKERS)


@lru_cache(maxsize=32)
def _k2(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Signed angular frequencies (ky, kx) of an rfft2 layout, float32, shapes (H,1), (1,W//2+1)."""
    ky = (2 * np.pi * np.fft.fftfreq(shape[0])).astype(np.float32)[:, None]
    kx = (2 * np.pi * np.fft.rfftfreq(shape[1])).astype(np.float32)[None, :]
    return ky, kx


def _col(a, n: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return np.broadcast_to(a.reshape(-1) if a.ndim else a, (n,)).reshape(n, 1, 1)


def gaussian_otf(shape, sigma, n: int | None = None) -> np.ndarray:
    """Optical transfer functions of Gaussians of width ``sigma`` (px; scalar or (b,)) → (b, H, W//2+1)."""
    sigma = np.atleast_1d(np.asarray(sigma, np.float32))
    n = len(sigma) if n is None else n
    ky, kx = _k2(tuple(shape))
    s2 = _col(sigma, n) ** 2 * np.float32(-0.5)
    return np.exp(s2 * (ky * ky) + s2 * (kx * kx)).astype(np.float32)


def blur(x: np.ndarray, sigma) -> np.ndarray:
    """Gaussian blur of every image of ``x`` (b, H, W) with its own ``sigma`` (scalar or (b,)); periodic."""
    if x.shape[0] == 0:
        return x.astype(np.float32)
    f = rfft2(x)
    f *= gaussian_otf(x.shape[1:], sigma, x.shape[0])
    return irfft2(f, x.shape[1:]).astype(np.float32, copy=False)


def spectral_field(rng: ItemRNG, shape, sigma, *, sigma_x=None, angle=None) -> np.ndarray:
    """Smooth Gaussian random fields, zero mean and unit variance per image, (b, H, W) float32.

    ``sigma`` is the correlation length (px; scalar or (b,)). With ``sigma_x`` the field is
    anisotropic: ``sigma`` along the direction ``angle`` (radians, (b,)) and ``sigma_x`` across
    it — long parallel streaks for stress fibres, or (on a polar grid) radial microtubules.
    The field is synthesised in Fourier space (complex white noise × filter, one inverse FFT).
    """
    b = len(rng)
    H, W = int(shape[0]), int(shape[1])
    if b == 0:
        return np.zeros((0, H, W), np.float32)
    ky, kx = _k2((H, W))
    s_par = _col(sigma, b)
    s_min = s_par.reshape(-1) if sigma_x is None else np.minimum(s_par, _col(sigma_x, b)).reshape(-1)
    # band limit: the filter is < 1e-3 beyond |k| = 5.3 / sigma, so each image draws complex
    # noise only below its own cut-off (a number of draws fixed by its own sigma, not the batch's)
    spec = np.zeros((b, H, W // 2 + 1), np.complex64)
    half = np.complex64(0.5 + 0.5j)
    for i, g in enumerate(rng.gens):
        sm = max(float(s_min[i]), 1e-3)
        iy = min(H // 2, int(np.ceil(5.3 * H / (2 * np.pi * sm))) + 1)
        ix = min(W // 2, int(np.ceil(5.3 * W / (2 * np.pi * sm))) + 1)
        # uniform (not normal) real and imaginary parts: 4x cheaper to draw, and the field, a sum
        # of thousands of such terms, is Gaussian all the same
        if 2 * iy + 1 >= H:
            spec[i, :, :ix + 1] = g.random((H, ix + 1, 2), dtype=np.float32).view(np.complex64)[..., 0] - half
        else:
            noise = g.random((2 * iy + 1, ix + 1, 2), dtype=np.float32).view(np.complex64)[..., 0] - half
            spec[i, :iy + 1, :ix + 1] = noise[:iy + 1]
            spec[i, H - iy:, :ix + 1] = noise[iy + 1:]
    if sigma_x is None:
        filt = np.exp(-(s_par ** 2) * (ky * ky + kx * kx) * np.float32(0.25))
    else:
        s_perp = _col(sigma_x, b)
        th = _col(0.0 if angle is None else angle, b)
        k_par = kx * np.cos(th) + ky * np.sin(th)
        k_perp = -kx * np.sin(th) + ky * np.cos(th)
        filt = np.exp(-(s_par ** 2 * k_par ** 2 + s_perp ** 2 * k_perp ** 2) * np.float32(0.25))
    spec = spec * filt.astype(np.float32, copy=False)
    spec[:, 0, 0] = 0
    f = irfft2(spec, (H, W)).astype(np.float32, copy=False)
    f /= np.sqrt(np.mean(f * f, axis=(1, 2), keepdims=True)) + np.float32(1e-12)
    return f


@dataclass(frozen=True)
class Optics:
    """Microscope and camera of one imaging style (per-image values are drawn around these).

    Attributes
    ----------
    psf_sigma : float
        Gaussian PSF width (px at the style's sampling).
    focus_sigma : float
        Scale of the extra per-image defocus blur, ``|N(0, focus_sigma)|`` px, added in quadrature.
    halo : float, halo_sigma : float
        Weight and width (px) of the broad out-of-focus component of the PSF.
    peak_photons : float
        Photons at the bright end (99.9th percentile) of a unit-abundance, unit-exposure image.
    exposure_sd : float
        Log-normal spread of exposure between images.
    background : float
        Background photons per pixel (autofluorescence, stray light).
    offset, gain, read_noise : float
        Camera offset (counts), counts per photon, Gaussian read noise (counts).
    """

    psf_sigma: float = 1.0
    focus_sigma: float = 0.4
    halo: float = 0.05
    halo_sigma: float = 8.0
    peak_photons: float = 400.0
    exposure_sd: float = 0.3
    background: float = 6.0
    offset: float = 100.0
    gain: float = 2.0
    read_noise: float = 3.0


def draw_focus(rng: ItemRNG, optics: Optics, scale: float = 1.0) -> np.ndarray:
    """Per-image defocus blur ``|N(0, focus_sigma)|`` (px, (b,)), shared by all channels of an image."""
    return (np.abs(rng.normal(())) * np.float32(optics.focus_sigma * scale)).astype(np.float32)


def otf_for(optics: Optics, shape, focus: np.ndarray, scale: float = 1.0, psf_sigma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-image OTFs (b, H, W//2+1) of PSF ⊕ defocus + halo, and the Gaussian widths used (b,).

    ``psf_sigma`` overrides ``optics.psf_sigma`` (e.g. a shorter wavelength for the DNA stain).
    """
    focus = np.asarray(focus, np.float32)
    b = len(focus)
    base = optics.psf_sigma if psf_sigma is None else psf_sigma
    sig = np.sqrt(np.float32(base * scale) ** 2 + focus ** 2).astype(np.float32)
    otf = gaussian_otf(shape, sig, b)
    if optics.halo > 0:
        otf *= np.float32(1 - optics.halo)
        otf += np.float32(optics.halo) * gaussian_otf(shape, optics.halo_sigma * scale, 1)
    return otf, sig


def form_image(sharp: np.ndarray | None, spots: list, otf: np.ndarray, shape) -> np.ndarray:
    """Optical image ``PSF * (sharp + Σ G(σ_j) * spots_j)`` (b, H, W), float32, clipped at 0.

    ``sharp`` is (b, H, W) or None; ``spots`` a list of ``(idx, impulses (b_j, H, W), sigma_j
    (b_j,))`` with ``idx`` the rows of the batch they belong to; ``otf`` (b, H, W//2+1) from
    :func:`otf_for`.
    """
    shape = tuple(shape)
    spec = rfft2(sharp) if sharp is not None else np.zeros(otf.shape, np.complex64)
    for idx, imp, sig in spots:
        if len(idx) == 0:
            continue
        f = rfft2(imp)
        f *= gaussian_otf(shape, sig, len(idx))
        if len(idx) == spec.shape[0]:
            spec += f
        else:
            spec[idx] += f
    spec *= otf
    out = irfft2(spec, shape).astype(np.float32, copy=False)
    np.maximum(out, 0, out=out)
    return out


def crop_margin(x: np.ndarray, margin: int) -> np.ndarray:
    return x[..., margin:x.shape[-2] - margin, margin:x.shape[-1] - margin] if margin else x


def acquire(signal: np.ndarray, rng: ItemRNG, optics: Optics, peak=None, ref=None, background=None) -> np.ndarray:
    """Camera: photons ~ Poisson(background + peak·signal/ref), raw counts on a uint16 scale.

    Parameters
    ----------
    signal : (b, H, W) float32, non-negative optical image.
    rng : per-image generators.
    optics : the style's :class:`Optics`.
    peak : (b,) photons at the reference level (default ``optics.peak_photons``; includes
        abundance and exposure).
    ref : (b,) reference level of ``signal`` (default its 99.9th percentile per image).
    background : (b,) background photons per pixel (default ``optics.background`` for every
        image; e.g. scaled by the exposure, as autofluorescence is).

    Returns
    -------
    (b, H, W) float32 raw counts in [0, 65535].
    """
    b = signal.shape[0]
    if ref is None:
        flat = signal.reshape(b, -1)
        k = int(0.999 * (flat.shape[1] - 1))
        ref = np.partition(flat, k, axis=1)[:, k]
    ref = np.maximum(np.asarray(ref, np.float32), 1e-6).reshape(b, 1, 1)
    peak = np.full(b, optics.peak_photons, np.float32) if peak is None else np.asarray(peak, np.float32)
    bg = np.float32(optics.background) if background is None else np.asarray(background, np.float32).reshape(b, 1, 1)
    lam = signal * (peak.reshape(b, 1, 1) / ref) + bg
    photons = shot_noise(lam, rng)
    raw = photons * np.float32(optics.gain) + np.float32(optics.offset)
    raw += rng.normal(signal.shape[1:]) * np.float32(optics.read_noise)
    np.clip(raw, 0, 65535, out=raw)
    return raw


# --- export normalisation ------------------------------------------------------------------

def minmax(x: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling of (b, H, W) to [0, 1] (cytoself's protein channel)."""
    lo = x.min(axis=(-2, -1), keepdims=True)
    hi = x.max(axis=(-2, -1), keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)


def percentile_scale(x: np.ndarray, lo: float = 0.1, hi: float = 99.9) -> np.ndarray:
    """Per-image scaling of (b, H, W) so that the ``lo``/``hi`` percentiles map to 0/1, clipped."""
    flat = x.reshape(x.shape[0], -1)
    p = np.percentile(flat, [lo, hi], axis=1).astype(np.float32)
    a, c = p[0].reshape(-1, 1, 1), p[1].reshape(-1, 1, 1)
    return np.clip((x - a) / np.maximum(c - a, 1e-6), 0, 1).astype(np.float32)


def to_uint8_scale(raw: np.ndarray, offset: float, saturation) -> np.ndarray:
    """8-bit export as HPA/DeepYeast PNGs: ``round(255·(raw-offset)/saturation)`` clipped, then /255.

    ``saturation`` (scalar or (b,)) is the count above offset that maps to 255.
    """
    b = raw.shape[0]
    sat = np.asarray(saturation, np.float32).reshape(-1, *([1] * (raw.ndim - 1))) if np.ndim(saturation) else np.float32(saturation)
    v = np.rint(np.clip((raw - np.float32(offset)) / sat, 0, 1) * 255)
    return (v / 255).astype(np.float32).reshape(b, *raw.shape[1:])


def signed_distance_transform(mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Signed Euclidean distance to the mask boundary, inside positive (cytoself's nucleus channel).

    Parameters
    ----------
    mask : (H, W) or (N, H, W) array, non-zero inside (instance labels are treated as one mask).
    normalize : bool
        Scale each image to [-1, 1] by dividing the positive part by its maximum and the negative
        part by the maximum of its magnitude (so 1 = deepest inside point, -1 = farthest outside).

    Returns
    -------
    float32 array of ``mask``'s shape.
    """
    m = np.asarray(mask) != 0
    squeeze = m.ndim == 2
    if squeeze:
        m = m[None]
    out = np.empty(m.shape, np.float32)
    for i, mi in enumerate(m):
        inside = ndimage.distance_transform_edt(mi) if mi.any() else np.zeros(mi.shape)
        outside = ndimage.distance_transform_edt(~mi) if (~mi).any() else np.zeros(mi.shape)
        d = inside - outside
        if normalize:
            pos, neg = inside.max(), outside.max()
            d = np.where(d > 0, d / max(pos, 1e-6), d / max(neg, 1e-6))
        out[i] = d
    return out[0] if squeeze else out
