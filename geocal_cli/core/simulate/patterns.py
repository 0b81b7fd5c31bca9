"""Synthetic calibrant ring images and single-crystal spot patterns with a known geometry.

Rings are Gaussian in 2θ with a constant width in pixels along the radius, powder intensity
per ring (m|F|² when known, else seeded random strengths) with the Lorentz factor
1 / (sin θ sin 2θ) for intensity per unit arc length of a Debye ring, optional spotty
texture (few crystallites), a smooth background falling with 2θ, a beamstop disc and arm,
module gaps, Poisson noise and hot pixels. Everything is vectorised over pixels; each pixel
sums the four calibrant rings nearest in 2θ.

Spot patterns are zero-order Laue zone patterns of a crystal at a zone axis (the usual TEM
selected-area pattern): reflections g = h b1 + k b2 in the plane normal to the beam, at
Bragg's 2θ and the azimuth of g, Friedel-symmetric intensities (I(g) = I(−g)) under a
Gaussian envelope, Gaussian spots; the same background, direct beam, beamstop, noise,
saturation and gaps as ring images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import frame_of, moved_frame


@dataclass(frozen=True)
class PatternSpec:
    """What to draw.

    Attributes
    ----------
    peak_counts : float
        Peak height of the strongest ring or spot (counts above background).
    width_px : float
        Gaussian σ of the ring profile along the radius, or of a spot, pixels.
    background : float
        Background counts near the beam; it falls to a third at high 2θ.
    beamstop_radius_px : float
        Radius of the beamstop shadow around the direct beam (0: none).
    beamstop_arm_deg : float or None
        Direction of the beamstop arm from the beam centre (degrees from +x towards +y);
        None for no arm.
    spotty : float
        0 for smooth rings; towards 1, rings break into spots (few crystallites).
    hot_pixels : int
        Number of random pixels set to a huge value.
    poisson : bool
        Add Poisson noise.
    seed : int
    ellipticity : (float, float)
        Projector-lens distortion (e_c, e_s) of `geometry.frame.stretch_matrix` about the beam
        centre; (0, 0) for none.
    direct_beam_counts : float
        Peak of a Gaussian direct beam at the beam centre (0: none); a beamstop hides it.
    direct_beam_sigma_px : float
        Its σ, pixels.
    saturation : float or None
        Counts at which pixels saturate (clipped after the noise).
    ring_shift_px : float
        σ of a random shift of each reflection's ring (rows and columns), pixels: rings that
        are not concentric, as on a non-planar detector (0: concentric).
    """

    peak_counts: float = 1000.0
    width_px: float = 1.5
    background: float = 20.0
    beamstop_radius_px: float = 0.0
    beamstop_arm_deg: float | None = None
    spotty: float = 0.0
    hot_pixels: int = 0
    poisson: bool = True
    seed: int = 0
    ellipticity: tuple[float, float] = (0.0, 0.0)
    direct_beam_counts: float = 0.0
    direct_beam_sigma_px: float = 2.0
    saturation: float | None = None
    ring_shift_px: float = 0.0


def ring_strengths(tth: np.ndarray, intensity: np.ndarray | None, seed: int) -> np.ndarray:
    """Relative ring peak heights (max 1): structure × Lorentz factor, or seeded random.

    Parameters
    ----------
    tth : ndarray, shape (K,)
        Radians.
    intensity : ndarray, shape (K,) or None
        m|F|² per ring when known.
    seed : int
    """
    tth = np.asarray(tth, float)
    if intensity is None:
        base = np.random.default_rng(seed).uniform(0.35, 1.0, tth.size)
    else:
        with np.errstate(divide="ignore"):
            base = np.asarray(intensity, float) / (np.sin(tth / 2) * np.sin(tth))
        # Keep the weakest rings visible: compress the dynamic range like a real pattern's
        # brightest-to-faintest over a few decades.
        base = np.sqrt(base / np.nanmax(base))
    return base / np.nanmax(base)


def render_ring_image(geometry, shape: tuple[int, int], tth: np.ndarray,
                      strengths: np.ndarray, spec: PatternSpec,
                      gaps: np.ndarray | None = None,
                      displacement: tuple[np.ndarray, np.ndarray] | None = None,
                      reflection: np.ndarray | None = None) -> np.ndarray:
    """Render a calibrant ring image.

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
        Detector and PONI parameters of the truth.
    shape : (H, W)
    tth : ndarray, shape (K,)
        Ring angles in radians, increasing.
    strengths : ndarray, shape (K,)
        Relative peak heights (max 1).
    spec : PatternSpec
    gaps : ndarray of bool, shape (H, W), optional
        Pixels with no sensor (module gaps): set to −1 like Pilatus/Eiger images.
    displacement : (ndarray, ndarray), shape (H, W) each, optional
        The detector's distortion (dy, dx) at the pixel centres, pyFAI's convention: each
        pixel shows the pattern at its true position, index + displacement.
    reflection : ndarray of int, shape (K,), optional
        The reflection each ring comes from: rings of one reflection (a doublet's two lines)
        share their spotty texture, as the same grains diffract both. Default: one each.

    Returns
    -------
    ndarray of int32, shape (H, W)
    """
    rng = np.random.default_rng(spec.seed)
    fr = moved_frame(frame_of(geometry), (0.0, 0.0), spec.ellipticity)
    d1, d2 = np.meshgrid(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float),
                         indexing="ij")
    if displacement is not None:
        d1, d2 = d1 + displacement[0], d2 + displacement[1]
    t, chi = fr.tth_chi(d1, d2)
    grad = fr.tth_gradient(d1, d2)
    tth = np.asarray(tth, float)
    k0 = np.searchsorted(tth, t)
    ks = np.clip(k0[..., None] + np.array([-2, -1, 0, 1]), 0, tth.size - 1)       # (H, W, 4)
    sig = spec.width_px * grad[..., None]
    source = np.arange(tth.size) if reflection is None else np.asarray(reflection, int)
    offset = 0.0
    if spec.ring_shift_px > 0:
        # Each reflection's rings moved by its own random shift: a moved ring shows at pixel
        # p what the unmoved one shows at p − δ, to first order 2θ(p) − ∇2θ·δ.
        shift = np.random.default_rng([spec.seed, 1]).normal(0, spec.ring_shift_px,
                                                              (int(source.max()) + 1, 2))
        g1 = (fr.tth(d1 + 0.5, d2) - t) / 0.5
        g2 = (fr.tth(d1, d2 + 0.5) - t) / 0.5
        offset = g1[..., None] * shift[source[ks], 0] + g2[..., None] * shift[source[ks], 1]
        del g1, g2
    prof = np.exp(-0.5 * ((t[..., None] - offset - tth[ks]) / sig) ** 2)
    amp = np.asarray(strengths, float)[ks]
    if spec.spotty > 0:
        amp = amp * _texture(source[ks], chi, int(source.max()) + 1, spec.spotty, rng)
    # Neighbouring indices can repeat after clipping: count each ring once.
    uniq = np.ones(ks.shape, bool)
    uniq[..., 1:] = ks[..., 1:] != ks[..., :-1]
    rings = spec.peak_counts * np.sum(amp * prof * uniq, axis=-1)
    return _finish(rings, fr, d1, d2, t, spec, rng, gaps)


def zone_axis_reflections(basis_d: tuple[float, float], gamma_deg: float, rotation_deg: float,
                          wavelength: float, tth_max: float,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-order Laue zone reflections of a crystal at a zone axis.

    Parameters
    ----------
    basis_d : (float, float)
        d-spacings of the two basis reflections b1, b2, metres.
    gamma_deg : float
        Angle between b1 and b2, degrees.
    rotation_deg : float
        Azimuth χ of b1 (pyFAI's convention), degrees.
    wavelength : float
        Metres.
    tth_max : float
        Largest 2θ kept, radians.
    seed : int
        Seed of the random structure factors.

    Returns
    -------
    tth, chi, strength : ndarray, shape (n,)
        Bragg angle 2θ = 2 asin(λ|g|/2) and azimuth of g (radians), and relative peak height
        (max 1), equal for g and −g (Friedel's law); g = 0 (the direct beam) excluded.
    """
    a1, a2 = np.radians(rotation_deg), np.radians(rotation_deg + gamma_deg)
    # Reciprocal vectors as (x1, x2) components: χ = atan2(x1, x2).
    b1 = np.array([np.sin(a1), np.cos(a1)]) / basis_d[0]
    b2 = np.array([np.sin(a2), np.cos(a2)]) / basis_d[1]
    g_max = 2 * np.sin(min(tth_max, np.pi) / 2) / wavelength
    # |h b1 + k b2| ≥ |h| |b1| sin γ: bounds that cover every g within g_max.
    sin_g = max(abs(np.sin(np.radians(gamma_deg))), 1e-3)
    n1 = int(np.ceil(g_max * basis_d[0] / sin_g))
    n2 = int(np.ceil(g_max * basis_d[1] / sin_g))
    h, k = np.meshgrid(np.arange(-n1, n1 + 1), np.arange(-n2, n2 + 1), indexing="ij")
    h, k = h.ravel(), k.ravel()
    g = h[:, None] * b1 + k[:, None] * b2
    length = np.hypot(*g.T)
    keep = (length > 0) & (length <= g_max)
    h, k, g, length = h[keep], k[keep], g[keep], length[keep]
    # One random |F|² per Friedel pair: index pairs by their canonical member (h, k) > 0.
    rng = np.random.default_rng(seed)
    table = rng.uniform(0.2, 1.0, (2 * n1 + 1, 2 * n2 + 1))
    flip = (h < 0) | ((h == 0) & (k < 0))
    f2 = table[np.where(flip, -h, h) + n1, np.where(flip, -k, k) + n2]
    strength = f2 * np.exp(-(length / (0.6 * g_max)) ** 2)
    tth = 2 * np.arcsin(np.clip(wavelength * length / 2, 0, 1))
    return tth, np.arctan2(g[:, 0], g[:, 1]), strength / strength.max()


def render_spot_image(geometry, shape: tuple[int, int], tth: np.ndarray, chi: np.ndarray,
                      strengths: np.ndarray, spec: PatternSpec,
                      gaps: np.ndarray | None = None) -> np.ndarray:
    """Render a single-crystal spot pattern.

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
        Detector and PONI parameters of the truth.
    shape : (H, W)
    tth, chi : ndarray, shape (n,)
        Directions of the reflections, radians (`zone_axis_reflections`).
    strengths : ndarray, shape (n,)
        Relative peak heights (max 1).
    spec : PatternSpec
        `width_px` is the spots' σ; `ring`-only fields (spotty) are ignored.
    gaps : ndarray of bool, shape (H, W), optional

    Returns
    -------
    ndarray of int32, shape (H, W)
    """
    rng = np.random.default_rng(spec.seed)
    fr = moved_frame(frame_of(geometry), (0.0, 0.0), spec.ellipticity)
    c1, c2 = fr.pixel_at(tth, chi)
    h, w = shape
    r = int(np.ceil(4 * spec.width_px))
    on = np.isfinite(c1) & (c1 > -r) & (c1 < h + r) & (c2 > -r) & (c2 < w + r)
    c1, c2, amp = c1[on], c2[on], np.asarray(strengths, float)[on]
    off = np.arange(-r, r + 1)
    i1 = np.round(c1).astype(int)[:, None, None] + off[None, :, None]        # (n, P, 1)
    i2 = np.round(c2).astype(int)[:, None, None] + off[None, None, :]        # (n, 1, P)
    val = amp[:, None, None] * np.exp(-0.5 * ((i1 - c1[:, None, None]) ** 2
                                              + (i2 - c2[:, None, None]) ** 2) / spec.width_px**2)
    i1, i2 = np.broadcast_arrays(i1, i2)
    inside = (i1 >= 0) & (i1 < h) & (i2 >= 0) & (i2 < w)
    spots = np.zeros(h * w)
    np.add.at(spots, i1[inside] * w + i2[inside], val[inside])
    d1, d2 = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    return _finish(spec.peak_counts * spots.reshape(shape), fr, d1, d2, fr.tth(d1, d2), spec, rng, gaps)


def _finish(signal: np.ndarray, fr, d1: np.ndarray, d2: np.ndarray, t: np.ndarray,
            spec: PatternSpec, rng, gaps: np.ndarray | None) -> np.ndarray:
    """Background, direct beam, beamstop, noise, saturation, hot pixels and gaps on top of
    a rendered signal; d1, d2 the pixel index grids and t the 2θ map, all shape (H, W);
    int32 image."""
    t_max = float(np.nanmax(t)) or 1.0
    bkg = spec.background * (1 / 3 + (2 / 3) / (1 + (t / (0.3 * t_max)) ** 2))
    img = signal + bkg
    bc1, bc2 = fr.beam_center()
    if spec.direct_beam_counts > 0 and np.isfinite(bc1):
        r2 = (d1 - bc1) ** 2 + (d2 - bc2) ** 2
        img = img + spec.direct_beam_counts * np.exp(-0.5 * r2 / spec.direct_beam_sigma_px**2)
    if spec.beamstop_radius_px > 0 and np.isfinite(bc1):
        r = np.hypot(d1 - bc1, d2 - bc2)
        shadow = r < spec.beamstop_radius_px
        if spec.beamstop_arm_deg is not None:
            a = np.radians(spec.beamstop_arm_deg)
            along = (d2 - bc2) * np.cos(a) + (d1 - bc1) * np.sin(a)
            across = -(d2 - bc2) * np.sin(a) + (d1 - bc1) * np.cos(a)
            shadow |= (along > 0) & (np.abs(across) < 0.4 * spec.beamstop_radius_px)
        img = np.where(shadow, 0.02 * img, img)
    if spec.poisson:
        img = rng.poisson(img).astype(np.float64)
    if spec.saturation is not None:
        img = np.minimum(img, spec.saturation)
    out = np.round(img).astype(np.int32)
    if spec.hot_pixels:
        idx = rng.choice(out.size, spec.hot_pixels, replace=False)
        out.flat[idx] = 1_000_000
    if gaps is not None:
        out[gaps] = -1
    return out


def _texture(ks, chi, n_rings, spotty, rng):
    """Per-ring azimuthal modulation: smooth (0) to spotty (1), mean about 1."""
    n_bins = 720
    n_spots = int(np.clip(400 * (1 - spotty) + 20, 20, 420))
    tex = np.full((n_rings, n_bins), 0.05 * (1 - spotty))
    pos = rng.integers(0, n_bins, (n_rings, n_spots))
    amp = rng.exponential(1.0, (n_rings, n_spots))
    np.add.at(tex, (np.repeat(np.arange(n_rings), n_spots), pos.ravel()), amp.ravel())
    # Spots a few bins wide (circular smoothing).
    kern = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    tex = sum(np.roll(tex, s, axis=1) * w for s, w in zip(range(-4, 5), kern))
    tex /= tex.mean(axis=1, keepdims=True)
    b = np.clip(((chi + np.pi) / (2 * np.pi) * n_bins).astype(int), 0, n_bins - 1)
    return tex[ks, b[..., None]]
