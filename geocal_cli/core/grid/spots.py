"""Hole-grid spots: their size and lattice from the image, candidates and sub-pixel centres.

The image's autocorrelation (by FFT, after removing the illumination) gives the spot size
(the width of its central peak) and two lattice vectors (its nearest side peaks) without any
parameter from the user. Candidates are the local maxima of a difference-of-Gaussians
matched filter of that size, which ignores a slowly varying illumination; their centres are
Gaussian-windowed centroids above a local background (the "windowed" positions of
SExtractor, Bertin & Arnouts, A&AS 117 (1996) 393, doi:10.1051/aas:1996164), iterated to the
centre of symmetry of each spot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatticeEstimate:
    """What the autocorrelation says about a grid image.

    Attributes
    ----------
    a, b : ndarray, shape (2,)
        Lattice vectors (dy, dx) in pixels: `a` the one closer to +x, `b` to +y.
    diameter_px : float
        Spot diameter estimated from the central peak's half width.
    contrast : float
        Height of the side peaks relative to the central peak (≈ 1 for a clean grid,
        ≈ 0 for an image without periodic spots).
    """

    a: np.ndarray
    b: np.ndarray
    diameter_px: float
    contrast: float

    def scaled(self, factor: float) -> "LatticeEstimate":
        """The estimate for an image `factor` times larger (from a binned one)."""
        return LatticeEstimate(a=self.a * factor, b=self.b * factor,
                               diameter_px=self.diameter_px * factor, contrast=self.contrast)

    @property
    def pitch_px(self) -> float:
        """Mean length of the two lattice vectors, pixels."""
        return 0.5 * float(np.hypot(*self.a) + np.hypot(*self.b))


@dataclass(frozen=True)
class Spots:
    """Spot candidates.

    Attributes
    ----------
    y, x : ndarray, shape (n,)
        Centres, corner coordinates (a pixel centre is at i + 0.5).
    strength : ndarray, shape (n,)
        Matched-filter response at the maximum (counts).
    flux : ndarray, shape (n,)
        Windowed flux above the local background.
    converged : ndarray of bool, shape (n,)
        The centroid iteration settled inside its window.
    """

    y: np.ndarray
    x: np.ndarray
    strength: np.ndarray
    flux: np.ndarray
    converged: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)


def flatten_illumination(image: np.ndarray, valid: np.ndarray, dark: bool) -> np.ndarray:
    """Spots bright on a zero background: inverted for dark dots, the smooth illumination
    divided out and the background subtracted.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    dark : bool
        Dark dots on a bright field.

    Returns
    -------
    ndarray of float32, shape (H, W)
        0 at invalid pixels.
    """
    from scipy.ndimage import gaussian_filter, zoom

    img = np.where(valid, image, 0).astype(np.float32)
    w = valid.astype(np.float32)
    # The illumination varies on the scale of the image: smooth 16 × 16 block sums, which is
    # the same as a wide Gaussian on the full image at a fraction of the cost.
    b = 16
    h2, w2 = (image.shape[0] // b) * b, (image.shape[1] // b) * b
    blocks = [a[:h2, :w2].reshape(h2 // b, b, w2 // b, b).sum(axis=(1, 3)) for a in (img, w)]
    sm = [gaussian_filter(a, 4.0, mode="nearest") for a in blocks]
    coarse = sm[0] / np.maximum(sm[1], 1e-3)
    level = zoom(coarse, (image.shape[0] / coarse.shape[0], image.shape[1] / coarse.shape[1]),
                 order=1, mode="nearest", grid_mode=True)
    ratio = np.where(valid, img / np.maximum(level, 1e-6), 0)
    if dark:
        ratio = np.where(valid, np.maximum(1.0 - ratio, 0), 0)
    floor = np.percentile(ratio[valid], 20)
    return np.where(valid, ratio - floor, 0).astype(np.float32)


def estimate_lattice(flat: np.ndarray) -> LatticeEstimate:
    """Spot size and two lattice vectors from the autocorrelation of a flattened grid image.

    Parameters
    ----------
    flat : ndarray, shape (H, W)
        From `flatten_illumination`.

    Returns
    -------
    LatticeEstimate
        `contrast` near 0 when the image has no lattice; the vectors are then meaningless.
    """
    from scipy import fft

    h, w = flat.shape
    f = flat - flat.mean()
    # Lags up to a quarter of the image; padding by that much keeps them free of wrap-around.
    reach = min(h, w) // 4
    size = (fft.next_fast_len(h + reach, real=True), fft.next_fast_len(w + reach, real=True))
    spec = fft.rfft2(f, s=size, workers=-1)
    ac = fft.irfft2(spec * np.conj(spec), s=size, workers=-1)
    ac = np.roll(ac, (reach, reach), axis=(0, 1))[:2 * reach + 1, :2 * reach + 1]
    # Normalise by the overlap area so that distant peaks are not favoured or suppressed.
    n = np.arange(-reach, reach + 1)
    ac /= (h - np.abs(n))[:, None] * (w - np.abs(n))[None, :]
    ac /= ac[reach, reach]
    dy, dx = np.meshgrid(n, n, indexing="ij")
    r = np.hypot(dy, dx)
    # Central peak: its radius at half height above the level between spots.
    radial = np.bincount(r.astype(int).ravel(), ac.ravel()) / np.bincount(r.astype(int).ravel())
    below = np.nonzero(radial < 0.5 * (1 + radial[:reach].min()))[0]
    r_half = float(below[0]) if below.size else reach / 4
    from scipy.ndimage import maximum_filter

    lo = max(2.5 * r_half, 3.0)
    peaks = (ac == maximum_filter(ac, size=max(3, int(r_half)))) & (r >= lo) & (r <= reach)
    iy, ix = np.nonzero(peaks)
    # Without two independent side peaks there is no lattice: contrast 0, unit vectors.
    no_lattice = LatticeEstimate(np.array([0.0, 1.0]), np.array([1.0, 0.0]), 2 * r_half, 0.0)
    if iy.size < 2:
        return no_lattice
    height = ac[iy, ix]
    strong = height >= 0.5 * height.max()
    iy, ix, height = iy[strong], ix[strong], height[strong]
    vec = np.stack([iy - reach, ix - reach], 1).astype(float)
    order = np.argsort(np.hypot(*vec.T))
    vec, height = vec[order], height[order]
    first = vec[0]
    # The second vector: the shortest one clearly not parallel to the first.
    cross = np.abs(vec[:, 0] * first[1] - vec[:, 1] * first[0]) / (np.hypot(*vec.T) * np.hypot(*first))
    other = np.nonzero(cross > 0.5)[0]
    if not other.size:
        return no_lattice
    second = vec[other[0]]
    a, b = (first, second) if abs(first[1]) >= abs(second[1]) else (second, first)
    a = a if a[1] > 0 else -a
    b = b if b[0] > 0 else -b
    return LatticeEstimate(a=_refine_peak(ac, a, reach), b=_refine_peak(ac, b, reach),
                           diameter_px=2.0 * r_half,
                           contrast=float(min(height[0], height[other[0]])))


def _refine_peak(ac: np.ndarray, v: np.ndarray, reach: int) -> np.ndarray:
    """Sub-pixel position of an autocorrelation peak by a parabola through 3 × 3 samples."""
    iy, ix = int(v[0]) + reach, int(v[1]) + reach
    c = ac[iy - 1:iy + 2, ix - 1:ix + 2]
    if c.shape != (3, 3):
        return v.astype(float)

    def vertex(m, z, p):
        den = m - 2 * z + p
        return 0.5 * (m - p) / den if den < 0 else 0.0
    return np.array([v[0] + vertex(c[0, 1], c[1, 1], c[2, 1]), v[1] + vertex(c[1, 0], c[1, 1], c[1, 2])])


def find_spots(image: np.ndarray, dark: bool, valid: np.ndarray, diameter_px: float,
               pitch_px: float, min_snr: float = 6.0) -> Spots:
    """Candidate spots with sub-pixel centres.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    dark : bool
        Dark dots on a bright field.
    valid : ndarray of bool, shape (H, W)
    diameter_px : float
        Spot diameter (sets the matched filter and the centroid window).
    pitch_px : float
        Approximate hole spacing (sets the separation of maxima and the patch size).
    min_snr : float
        Matched-filter response over its robust noise below which maxima are ignored.

    Returns
    -------
    Spots
        Every local maximum that stands above the noise and above a fifth of the typical
        spot; the lattice decides later which are holes.
    """
    from scipy.ndimage import gaussian_filter, maximum_filter

    # Spots are looked for on the image binned b × b (≥ 3 pixels across a spot, a fraction
    # of the filtering cost) with its illumination flattened; centres are measured on every
    # pixel of the image itself (dividing by an estimated illumination would tilt each
    # spot's profile and bias its centre).
    b = int(np.clip(diameter_px // 6, 1, 4))
    small, ok = bin_image(image, valid, b)
    flat = flatten_illumination(small, ok, dark)
    s1 = max(0.3 * diameter_px / b, 0.8)
    resp = gaussian_filter(flat, s1) - gaussian_filter(flat, 1.6 * s1)
    resp[~ok] = 0
    sep = max(3, int(0.5 * pitch_px / b))
    is_max = (resp == maximum_filter(resp, size=sep)) & ok
    noise = 1.4826 * np.median(np.abs(resp[ok] - np.median(resp[ok])))
    iy, ix = np.nonzero(is_max & (resp > min_snr * max(noise, 1e-12)))
    if iy.size == 0:
        empty = np.zeros(0)
        return Spots(empty, empty, empty, empty, np.zeros(0, bool))
    strength = resp[iy, ix]
    # Intensity-robust: compare with the typical strong spot, not with a fixed level.
    keep = strength > 0.2 * np.percentile(strength, 75)
    iy, ix, strength = iy[keep], ix[keep], strength[keep]
    half = patch_half_size(pitch_px, diameter_px)
    signal = -image.astype(np.float32) if dark else image.astype(np.float32)
    y, x, flux, whole = windowed_centroids(signal, (iy + 0.5) * b, (ix + 0.5) * b, diameter_px,
                                           half, valid)
    return Spots(y=y, x=x, strength=strength, flux=flux, converged=whole)


def bin_image(image: np.ndarray, valid: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of b × b blocks (the last partial row and column dropped), and whether every
    pixel of a block is valid.

    Returns
    -------
    binned : ndarray of float32, shape (H // b, W // b)
    valid : ndarray of bool, same shape
    """
    if b == 1:
        return image.astype(np.float32), valid
    h, w = (image.shape[0] // b) * b, (image.shape[1] // b) * b
    shape = (h // b, b, w // b, b)
    binned = image[:h, :w].astype(np.float32).reshape(shape).mean(axis=(1, 3))
    return binned, valid[:h, :w].reshape(shape).all(axis=(1, 3))


def patch_half_size(pitch_px: float, diameter_px: float) -> int:
    """Half size of the patch read around a spot: the window and a background annulus,
    without reaching the next hole."""
    return int(np.clip(0.45 * pitch_px, 2, diameter_px + 3))


def windowed_centroids(image: np.ndarray, y0: np.ndarray, x0: np.ndarray, diameter_px: float,
                       half: int, valid: np.ndarray | None = None, n_iter: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids of spots near starting positions, all spots at once.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Spots bright on a flat background.
    y0, x0 : ndarray, shape (n,)
        Starting positions, corner coordinates.
    diameter_px : float
        Spot diameter: the window σ is a third of it, the background annulus lies outside it.
    half : int
        Half size of the square patch read around each spot, pixels.
    valid : ndarray of bool, shape (H, W), optional
        A spot with an invalid pixel within a diameter of its centre is not converged.
    n_iter : int

    Returns
    -------
    y, x : ndarray, shape (n,)
        Centres, corner coordinates.
    flux : ndarray, shape (n,)
        Windowed flux above the local background.
    converged : ndarray of bool, shape (n,)
        The centre moved < 1e-3 px in the last step, and the spot lies whole on the image
        (a spot cut by the edge or a mask has a biased centroid).
    """
    h, w = image.shape
    off = np.arange(-half, half + 1)
    cy = np.clip(np.floor(y0).astype(int), half, h - half - 1)
    cx = np.clip(np.floor(x0).astype(int), half, w - half - 1)
    py = cy[:, None, None] + off[None, :, None]
    px = cx[:, None, None] + off[None, None, :]
    patch = image[py, px].astype(float)                                  # (n, P, P)
    # Pixel-centre coordinates of the patch relative to each patch's centre pixel.
    ry = (off + 0.5)[None, :, None] + np.zeros_like(patch)
    rx = (off + 0.5)[None, None, :] + np.zeros_like(patch)
    dist = np.hypot(ry - (y0 - cy)[:, None, None], rx - (x0 - cx)[:, None, None])
    ring = dist > 0.75 * diameter_px
    bkg = _masked_median(patch, ring)
    sig = patch - bkg[:, None, None]
    sw = max(diameter_px / 3, 0.7)
    ey, ex = y0 - cy, x0 - cx
    step = np.full(y0.shape, np.inf)
    for _ in range(n_iter):
        if np.all(step < 1e-4):
            break
        wgt = np.exp(-0.5 * ((ry - ey[:, None, None]) ** 2 + (rx - ex[:, None, None]) ** 2) / sw**2)
        m = wgt * sig
        tot = m.sum(axis=(1, 2))
        safe = np.where(tot > 0, tot, 1.0)
        ny = np.clip((m * ry).sum(axis=(1, 2)) / safe, -half, half + 1)
        nx = np.clip((m * rx).sum(axis=(1, 2)) / safe, -half, half + 1)
        step = np.hypot(ny - ey, nx - ex)
        ey, ex = ny, nx
    flux = (wgt * sig).sum(axis=(1, 2))
    fy, fx = cy + ey, cx + ex
    whole = (fy - diameter_px > 0) & (fy + diameter_px < h) & (fx - diameter_px > 0) & (fx + diameter_px < w)
    if valid is not None:
        core = np.hypot(ry - ey[:, None, None], rx - ex[:, None, None]) < diameter_px
        whole &= ~np.any(core & ~valid[py, px], axis=(1, 2))
    converged = (step < 1e-3) & (flux > 0) & whole
    return fy, fx, flux, converged


def _masked_median(patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median of each patch over its masked pixels, vectorised (NaN-median)."""
    vals = np.where(mask, patch, np.nan).reshape(patch.shape[0], -1)
    med = np.nanmedian(vals, axis=1)
    return np.nan_to_num(med)
