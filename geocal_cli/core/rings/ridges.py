"""Ridge (bright thin curve) detection on diffraction images.

Rings are bright ridges. The Hessian of the smoothed image has, across a ridge, one strongly
negative eigenvalue whose eigenvector is the ridge normal, i.e. points along the ring radius.
This is the standard multiscale ridge measure (Lindeberg, Int. J. Comput. Vis. 30 (1998) 117,
doi:10.1023/A:1008097225773), used here at one scale with normalised convolution so that
module gaps and masks do not create false edges (Knutsson & Westin, CVPR 1993,
doi:10.1109/CVPR.1993.341081).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class RidgePixels:
    """Pixels on bright ridges, in pixel indices of the full-resolution image.

    Attributes
    ----------
    d1, d2 : ndarray, shape (n,)
        Row and column indices (pixel centre of pixel i at i).
    n1, n2 : ndarray, shape (n,)
        Unit ridge normal (along the ring radius for a ring).
    strength : ndarray, shape (n,)
        Ridge strength (−smallest Hessian eigenvalue of sqrt-compressed counts), > 0.
    group : ndarray of int, shape (n,)
        Connected component of the full (not subsampled) ridge map each pixel belongs to:
        one ring arc, unless rings touch; 0 for none (the edge of a shadow).
    crest_group : ndarray of int, shape (n,)
        Connected component of the ridge crests (`_crest`, one pixel wide) of the crest each
        pixel lies on, or of the nearest one along its normal within 2 pixels; 0 for none.
        Where broad rings crowd, their ridge bands touch and one `group` runs along several
        rings, while their crests stay apart.
    line1, line2 : ndarray, shape (n,)
        Row and column of the centre of each pixel's line (`_line_centre`), on a binned
        image; (d1, d2) unbinned.
    """

    d1: np.ndarray
    d2: np.ndarray
    n1: np.ndarray
    n2: np.ndarray
    strength: np.ndarray
    group: np.ndarray
    crest_group: np.ndarray
    line1: np.ndarray
    line2: np.ndarray

    def subset(self, sel: np.ndarray) -> "RidgePixels":
        """The pixels `sel` (boolean mask or indices, over n)."""
        return RidgePixels(*(getattr(self, k)[sel] for k in self.__dataclass_fields__))

    def on_lines(self) -> "RidgePixels":
        """These pixels at the centres of their lines (`line1`, `line2`)."""
        return replace(self, d1=self.line1, d2=self.line2)

    def arcs(self, min_pixels: int, crests: bool = False) -> list[np.ndarray]:
        """The connected ridge arcs with at least `min_pixels` pixels.

        Parameters
        ----------
        min_pixels : int
            Fewest ridge pixels an arc keeps.
        crests : bool
            Arcs of connected crests (`crest_group`), not of connected ridge bands (`group`).

        Returns
        -------
        list of ndarray of int
            Indices of each arc's pixels (increasing), arcs by increasing group label.
        """
        group = self.crest_group if crests else self.group
        order = np.argsort(group, kind="stable")
        labels, start, counts = np.unique(group[order], return_index=True,
                                          return_counts=True)
        return [order[a:a + n] for g, a, n in zip(labels, start, counts)
                if g > 0 and n >= min_pixels]


def bin_image(image: np.ndarray, valid: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of valid pixels over factor × factor blocks.

    Returns
    -------
    binned : ndarray, shape (H // factor, W // factor)
    fraction : ndarray, same shape
        Fraction of valid pixels in each block.
    """
    if factor == 1:
        return np.where(valid, image, 0).astype(np.float32), valid.astype(np.float32)
    h, w = (s // factor * factor for s in image.shape)
    v = valid[:h, :w].astype(float)
    x = np.where(valid[:h, :w], image[:h, :w], 0.0)
    shape = (h // factor, factor, w // factor, factor)
    n = v.reshape(shape).sum(axis=(1, 3))
    s = x.reshape(shape).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(n > 0, s / n, 0.0).astype(np.float32),
                (n / factor**2).astype(np.float32))


def compress(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Square-root compression with hot-pixel clipping, invalid pixels set to 0.

    The square root makes Poisson noise roughly uniform so that one ridge threshold suits
    strong and weak rings; clipping at the 99.95th percentile of valid pixels keeps single
    hot pixels from dominating the smoothed image.
    """
    vals = image[valid]
    if vals.size == 0:
        return np.zeros(image.shape, np.float32)
    lo, hi = np.percentile(vals, [0.5, 99.95])
    lo = min(float(lo), 0.0)
    out = image.astype(np.float32)
    out -= lo
    np.clip(out, 0.0, max(float(hi) - lo, 1e-12), out=out)
    np.sqrt(out, out=out)
    out[~valid] = 0.0
    return out


#: Ridge pixels below which an image shows no rings: the threshold from the ridge strengths'
#: own spread is then taken to have been set by the rings themselves (`find_ridges`), and a
#: full-resolution region that yields fewer is no better view (`with_full_resolution_core`).
FEW_RIDGE_PIXELS = 50
#: Where the strengths' spread keeps less than this fraction of the ridge pixels that stand
#: above the pixel noise, rings cover the image and set the spread (`find_ridges`). Over
#: the 300 robustness images the spread kept 0.9–1.2 times as many where background
#: dominates, 4–100 % where rings dominate and enough crests stand above it, and 0–0.3 %
#: where it lay above nearly every crest (Si at 72 keV tilted 25° on 512²: 159 of 115 434
#: pixels, and no ring traced).
SPREAD_KEEPS = 0.01


def _strength(smoothed: np.ndarray):
    """(strength, h11, h12, λmin) of a smoothed image: −λmin of the Hessian less any second
    negative curvature (lines, not blobs), all float32 arrays of its shape."""
    g1, g2 = np.gradient(smoothed)
    h11, h12 = np.gradient(g1)
    del g1
    h22 = np.gradient(g2, axis=1)
    del g2
    # Eigenvalues of [[h11, h12], [h12, h22]]: half trace ± disc.
    half_tr = 0.5 * (h11 + h22)
    disc = np.hypot(0.5 * (h11 - h22), h12)
    del h22
    lam_min = half_tr - disc
    half_tr += disc
    del disc
    strength = np.maximum(-lam_min, 0.0)
    strength -= np.maximum(-half_tr, 0.0)
    return strength, h11, h12, lam_min


def _spread_threshold(vals: np.ndarray) -> float:
    """Median + 4 × 1.4826 MAD of positive ridge strengths."""
    med = np.median(vals)
    return float(med + 4.0 * (np.median(np.abs(vals - med)) * 1.4826 + 1e-30))


@lru_cache(maxsize=4)
def _unit_noise_threshold(sigma: float) -> float:
    """`_spread_threshold` of the ridge strength of unit Gaussian white noise smoothed at
    `sigma` (a fixed 256² draw)."""
    from scipy import ndimage

    noise = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    strength = _strength(ndimage.gaussian_filter(noise, sigma))[0]
    return _spread_threshold(strength[strength > 0])


def _pixel_noise(s: np.ndarray, valid: np.ndarray) -> float:
    """The pixel noise σ of the compressed image `s`: the robust spread of second
    differences along rows, which cancel smooth gradients (inf with under 100 of them)."""
    second = s[:, :-2] - 2.0 * s[:, 1:-1] + s[:, 2:]
    ok = valid[:, :-2] & valid[:, 1:-1] & valid[:, 2:]
    if ok.sum() < 100:
        return np.inf
    vals = second[ok]
    return float(1.4826 * np.median(np.abs(vals - np.median(vals))) / np.sqrt(6.0))


#: A pixel is in shadow where its smoothed compressed value is below this fraction of its
#: surroundings' (a quarter of their counts).
SHADOW_LEVEL = 0.5
#: The surroundings' level: minima of blocks this many pixels a side (the background
#: between rings), median-filtered over 5 × 5 blocks (a shadow crossing some of them does
#: not lower it), and no higher than the median block minimum of the whole image (where
#: dense rings fill every block, their valleys set the minima, above the background).
SHADOW_BLOCK = 16
#: Fewest connected pixels a shadow has: dark specks in valleys between strong rings have
#: tens.
SHADOW_PIXELS = 100
#: How far (noise σ of the smoothed image) a shadow lies below its surroundings' level, at
#: least: a background of a few counts is not taken for one.
SHADOW_CONTRAST = 5.0


def _near_shadow(sm: np.ndarray, ok: np.ndarray, noise: float, sigma: float) -> np.ndarray:
    """Pixels within reach of a shadow: a beamstop, its arm, a flight tube's edge.

    The bright side of a shadow's edge curves like a ridge: the Hessian measure finds a
    line along it, and a beamstop arm's two edges join the rings they cross into one arc
    (an Al2O3 pattern at 5 keV, tilted 20°: its three inner rings and the arm became one arc,
    whose ellipse started the tilted search 350 px from the beam). A shadow is a connected
    region of at least `SHADOW_PIXELS` pixels darker than `SHADOW_LEVEL` of its
    surroundings by at least `SHADOW_CONTRAST` noise σ; its edge ridge lies about σ beyond
    it, so its pixels and those within 2σ + 1 of them are returned.

    Parameters
    ----------
    sm : ndarray of float32, shape (H, W)
        The compressed image, smoothed at `sigma` (normalised convolution).
    ok : ndarray of bool, shape (H, W)
        Valid pixels whose smoothing saw valid pixels only.
    noise : float
        Pixel noise σ of the compressed image before smoothing (`_pixel_noise`).
    sigma : float

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    from scipy import ndimage

    f = SHADOW_BLOCK
    none = np.zeros(sm.shape, bool)
    if min(sm.shape) < 5 * f or not np.isfinite(noise):
        return none
    h, w = sm.shape[0] // f * f, sm.shape[1] // f * f
    low = np.where(ok, sm, np.inf)[:h, :w].reshape(h // f, f, w // f, f).min(axis=(1, 3))
    finite = np.isfinite(low)
    if not finite.any():
        return none
    # Blocks without valid pixels (inf) take the image's level from the cap; their own
    # pixels are not `ok`.
    level = np.minimum(ndimage.median_filter(low, 5, mode="nearest"), np.median(low[finite]))
    level = np.repeat(np.repeat(level, f, 0), f, 1)
    level = np.pad(level, [(0, n - m) for n, m in zip(sm.shape, level.shape)], mode="edge")
    # The smoothing's noise: white noise of σ 1 smoothed by a Gaussian of σ s has σ
    # 1 / (2 s √π).
    floor = SHADOW_CONTRAST * noise / (2.0 * sigma * np.sqrt(np.pi)) / (1.0 - SHADOW_LEVEL)
    dark = ok & (level > floor) & (sm < SHADOW_LEVEL * level)
    if not dark.any():
        return none
    labels, _ = ndimage.label(dark, structure=np.ones((3, 3)))
    big = np.bincount(labels.ravel()) >= SHADOW_PIXELS
    big[0] = False
    if not big.any():
        return none
    reach = int(np.ceil(2.0 * sigma)) + 1
    return ndimage.maximum_filter(big[labels], size=2 * reach + 1)


def find_ridges(image: np.ndarray, valid: np.ndarray, sigma: float = 1.5, factor: int = 1,
                max_pixels: int = 30000, min_coverage: float = 0.95) -> RidgePixels:
    """Strongest ridge pixels of an image, with their normals.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Intensities (any float), invalid pixels arbitrary.
    valid : ndarray of bool, shape (H, W)
    sigma : float
        Gaussian scale in (binned) pixels.
    factor : int
        Binning factor applied first (speed on large detectors).
    max_pixels : int
        At most this many ridge pixels are returned: beyond it, a random subset of those
        above noise, the crests of the ridge bands (`_crest`) first.
    min_coverage : float
        Pixels whose smoothing kernel sees less than this fraction of valid pixels are
        ignored (they sit at gaps or mask edges).

    Returns
    -------
    RidgePixels
        Coordinates in full-resolution pixel indices; pixels at a shadow's edge
        (`_near_shadow`) in group 0. Empty when nothing stands above noise.
    """
    from scipy import ndimage

    binned, frac = bin_image(image, valid, factor)
    bvalid = frac > 0.5
    del frac
    # float32 and in-place work keep the peak memory near a few images.
    s = compress(binned, bvalid).astype(np.float32)
    del binned
    w = bvalid.astype(np.float32)
    s *= w
    noise = _pixel_noise(s, bvalid)
    noise_threshold = noise * _unit_noise_threshold(sigma)
    sm = ndimage.gaussian_filter(s, sigma, mode="constant")
    den = ndimage.gaussian_filter(w, sigma, mode="constant")
    del s, w
    np.divide(sm, den, out=sm, where=den > 1e-3)
    sm[den <= 1e-3] = 0.0
    coverage_ok = den > min_coverage
    del den
    shadowed = _near_shadow(sm, coverage_ok & bvalid, noise, sigma)
    strength, h11, h12, lam_min = _strength(sm)
    # Unbinned, a ridge band is about as wide as its ring (± 1–2 px), as the arcs' and ring
    # families' tolerances assume; binned by 3, ± 5 px, wider than they allow (CeO2 20 mm from
    # an Eiger 9M tilted 16°: no arc passed for one ring, the arcs' family fit stood at 3.3
    # px): there the lines' centres (`_line_centre`) are found too.
    sm = sm if factor > 1 else None
    # Also suppress ridges hugging the kernel edge of gaps.
    good = coverage_ok & bvalid & (strength > 0)
    strength[~good] = 0.0
    vals = strength[good]
    if vals.size == 0:
        del sm
        return RidgePixels(*(np.empty(0),) * 5, np.empty(0, int), np.empty(0, int),
                           np.empty(0), np.empty(0))
    # A noise threshold, then a random subset: keeping the strongest pixels instead would let
    # a few intense rings (a steel sample) crowd out the weak calibrant rings. The strengths'
    # spread stands for the noise where most pixels are background; where strong rings
    # cover the image, it is theirs and lies above nearly every crest (`SPREAD_KEEPS`), and
    # the pixel noise decides.
    ridge = strength > _spread_threshold(vals)
    del vals
    above_noise = strength > noise_threshold
    if np.count_nonzero(ridge) < max(FEW_RIDGE_PIXELS,
                                     SPREAD_KEEPS * np.count_nonzero(above_noise)):
        ridge = above_noise
    del above_noise
    # A shadow's edges belong to no arc: a beamstop arm's would join the rings it crosses
    # into one. They stay ridge pixels (a beamstop's rim is a circle about the beam).
    labels, _ = ndimage.label(ridge & ~shadowed, structure=np.ones((3, 3)))
    i1, i2 = np.nonzero(ridge)
    v1, v2 = _normals(h11, h12, lam_min, i1, i2)
    crest = _crest(strength, i1, i2, v1, v2)
    ridge[:] = False
    ridge[i1[crest], i2[crest]] = True
    crest_labels, _ = ndimage.label(ridge & ~shadowed, structure=np.ones((3, 3)))
    del ridge
    if i1.size > max_pixels:
        # A random subset, crests first: the flanks of strong rings would crowd out the
        # small inner rings, but they fill what budget the crests leave, for faint arcs
        # whose crest alone is a few noisy pixels.
        key = np.random.default_rng(0).random(i1.size) + ~crest
        pick = np.sort(np.argsort(key)[:max_pixels])
        i1, i2, v1, v2 = i1[pick], i2[pick], v1[pick], v2[pick]
    crest_group, j1, j2 = _nearest_crest(crest_labels, i1, i2, v1, v2)
    p1, p2 = (i1, i2) if sm is None else _line_centre(sm, h11, h12, lam_min, j1, j2)
    del sm
    offset = (factor - 1) / 2.0
    return RidgePixels(d1=i1 * factor + offset, d2=i2 * factor + offset, n1=v1, n2=v2,
                       strength=strength[i1, i2].astype(float),
                       group=labels[i1, i2].astype(np.int64), crest_group=crest_group,
                       line1=p1 * factor + offset, line2=p2 * factor + offset)


def _nearest_crest(crest_labels, i1, i2, v1, v2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crest label (`crest_labels`, an image) at pixels (i1, i2), shape (n,), or, off a
    crest, at the first labelled pixel 1, −1, 2 or −2 steps along the normal (v1, v2),
    rounded to the 8-neighbourhood; 0 where none is. Also that crest pixel's indices
    (j1, j2), or (i1, i2) where none is."""
    s1, s2 = np.rint(v1).astype(np.int64), np.rint(v2).astype(np.int64)
    n1, n2 = crest_labels.shape
    out = crest_labels[i1, i2].astype(np.int64)
    j1, j2 = i1.copy(), i2.copy()
    for k in (1, -1, 2, -2):
        k1, k2 = np.clip(i1 + k * s1, 0, n1 - 1), np.clip(i2 + k * s2, 0, n2 - 1)
        near = (out == 0) & (crest_labels[k1, k2] > 0)
        out[near] = crest_labels[k1[near], k2[near]]
        j1[near], j2[near] = k1[near], k2[near]
    return out, j1, j2


#: Farthest a crest pixel is moved along its normal onto the line's centre (`_line_centre`),
#: in (binned) pixels: a crest lies within half a pixel of it but for noise.
MAX_LINE_OFFSET = 1.0


def _line_centre(sm, h11, h12, lam_min, i1, i2) -> tuple[np.ndarray, np.ndarray]:
    """The centre of the line through each pixel (i1, i2), shape (n,): the extremum of the
    smoothed image `sm` along the ridge normal in its second-order Taylor expansion,
    −(∇s · n) / λmin from the pixel, at most `MAX_LINE_OFFSET` (Steger, IEEE PAMI 20
    (1998) 113, doi:10.1109/34.659930).

    A ridge band is several pixels wide, more so on a binned image (± 5 full pixels at 3×
    binning). Its flank pixels are taken to their crest (`_nearest_crest`) first: from a
    flank, the expansion of a Gaussian line overshoots its centre."""
    v1, v2 = _normals(h11, h12, lam_min, i1, i2)
    n1, n2 = sm.shape
    up1, dn1 = np.minimum(i1 + 1, n1 - 1), np.maximum(i1 - 1, 0)
    up2, dn2 = np.minimum(i2 + 1, n2 - 1), np.maximum(i2 - 1, 0)
    g1 = (sm[up1, i2].astype(float) - sm[dn1, i2]) / np.maximum(up1 - dn1, 1)
    g2 = (sm[i1, up2].astype(float) - sm[i1, dn2]) / np.maximum(up2 - dn2, 1)
    lm = lam_min[i1, i2].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(lm < 0, -(g1 * v1 + g2 * v2) / lm, 0.0)
    t = np.clip(np.nan_to_num(t), -MAX_LINE_OFFSET, MAX_LINE_OFFSET)
    return i1 + t * v1, i2 + t * v2


def _normals(h11, h12, lam_min, i1, i2) -> tuple[np.ndarray, np.ndarray]:
    """Unit ridge normals (the Hessian's λmin eigenvector) at pixels (i1, i2), shape (n,)."""
    a = h11[i1, i2].astype(float)
    b = h12[i1, i2].astype(float)
    lm = lam_min[i1, i2].astype(float)
    # Eigenvector of [[a, b], [b, c]] for lam_min; pick the better-conditioned formula.
    v1 = np.where(np.abs(b) > 1e-30, b, np.where(np.abs(a - lm) < 1e-30, 1.0, 0.0))
    v2 = np.where(np.abs(b) > 1e-30, lm - a, np.where(np.abs(a - lm) < 1e-30, 0.0, 1.0))
    nrm = np.hypot(v1, v2)
    nrm[nrm == 0] = 1.0
    return v1 / nrm, v2 / nrm


def _crest(strength, i1, i2, v1, v2) -> np.ndarray:
    """Which pixels (i1, i2), shape (n,), are crests: no weaker than both neighbours along
    their normal (v1, v2), rounded to the 8-neighbourhood (non-maximum suppression, Canny,
    IEEE PAMI 8 (1986) 679, doi:10.1109/TPAMI.1986.4767851).

    A strong ring's ridge measure stays above threshold over a band several pixels wide;
    kept whole, bands of dense rings merge in radius and fill the pixel budget with
    flanks, leaving the small inner rings a few samples each.
    """
    s1, s2 = np.rint(v1).astype(np.int64), np.rint(v2).astype(np.int64)
    n1, n2 = strength.shape
    s0 = strength[i1, i2]
    up = strength[np.clip(i1 + s1, 0, n1 - 1), np.clip(i2 + s2, 0, n2 - 1)]
    down = strength[np.clip(i1 - s1, 0, n1 - 1), np.clip(i2 - s2, 0, n2 - 1)]
    return (s0 >= up) & (s0 >= down)


#: Fraction of the ridge pixels, strongest first, whose extent is taken for the rings' core
#: (`with_full_resolution_core`).
CORE_FRACTION = 0.1
#: Margin added round that extent: a fraction of its size, and pixels.
CORE_MARGIN = (0.25, 16)


def with_full_resolution_core(image: np.ndarray, valid: np.ndarray, ridges: RidgePixels,
                              factor: int, min_pixels: int = FEW_RIDGE_PIXELS) -> RidgePixels:
    """Ridges of a binned image with those of its strongest rings' region found again at full
    resolution.

    Binning a large image for speed merges rings a few pixels apart: dense rings of high
    energy or a long distance, all within a few hundred pixels of the beam. The region of
    the strongest ridge pixels (`CORE_FRACTION`, their 1st–99th percentile extent plus
    `CORE_MARGIN`) is searched again unbinned when it holds no more pixels than the binned
    image; its ridges replace the binned ones there.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    ridges : RidgePixels
        Ridges of the image binned by `factor` (`find_ridges`).
    factor : int
    min_pixels : int
        Fewest full-resolution ridge pixels that replace the binned ones.

    Returns
    -------
    RidgePixels
        `ridges` unchanged when the region is too large or yields too few ridge pixels;
        otherwise the binned ones outside it and the full-resolution ones inside (their
        groups numbered after the binned ones').
    """
    if factor <= 1 or ridges.d1.size < min_pixels:
        return ridges
    strong = ridges.strength >= np.quantile(ridges.strength, 1.0 - CORE_FRACTION)
    box = []
    for x, n in ((ridges.d1, image.shape[0]), (ridges.d2, image.shape[1])):
        lo, hi = np.percentile(x[strong], [1, 99])
        pad = CORE_MARGIN[0] * (hi - lo) + CORE_MARGIN[1]
        box.append((max(0, int(lo - pad)), min(n, int(np.ceil(hi + pad)) + 1)))
    (a1, b1), (a2, b2) = box
    if (b1 - a1) * (b2 - a2) * factor ** 2 > image.size:
        return ridges
    core = find_ridges(image[a1:b1, a2:b2], valid[a1:b1, a2:b2])
    if core.d1.size < min_pixels:
        return ridges
    outside = ~((ridges.d1 >= a1) & (ridges.d1 < b1) & (ridges.d2 >= a2) & (ridges.d2 < b2))
    groups = {k: np.concatenate([getattr(ridges, k)[outside],
                                 np.where(getattr(core, k) > 0,
                                          getattr(core, k) + int(getattr(ridges, k).max()) + 1, 0)])
              for k in ("group", "crest_group")}
    shifts = (("d1", a1), ("d2", a2), ("n1", 0), ("n2", 0), ("strength", 0), ("line1", a1),
              ("line2", a2))
    return RidgePixels(**{k: np.concatenate([getattr(ridges, k)[outside], getattr(core, k) + d])
                          for k, d in shifts}, **groups)
