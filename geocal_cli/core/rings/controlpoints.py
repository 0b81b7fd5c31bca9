"""Control points on calibrant rings, sampled along 2θ at fixed χ (a local "cake").

For each expected ring k and azimuth χ_j the image is interpolated along the line of constant
χ (on a flat detector a straight line: the half-plane of that azimuth through the beam axis
meets the detector plane in a line), over ± a window in pixels around the ring; the background is the straight line through the window ends, the peak
is located by an iterated centroid around the maximum, and the point is kept when the peak
stands clear of the noise and away from the window edges. Everything is evaluated for all
(ring, χ) profiles at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame
from geocal_cli.core.rings.doublet import Doublet
from geocal_cli.core.rings.noise import noise_at, pixel_noise
from geocal_cli.core.rings.parallel import thread_map
from geocal_cli.core.rings.peaks import (RESOLVED_WINDOWS, measured_lines, net_profile,
                                         peak_in_window, recentred, window_bounds)

#: Profile samples (rings × azimuths × steps) of one block of rings, about 40 MB of arrays:
#: with `parallel.MAX_THREADS` blocks in flight, the memory of the one block of 2²¹ samples
#: extracted before the blocks ran on threads (and smaller blocks stay in cache: a MAR345
#: run took 6.5 s instead of 6.9 s on one thread).
BLOCK_SAMPLES = 2 ** 19


@dataclass(frozen=True)
class ControlPoints:
    """Points on calibrant rings.

    Attributes
    ----------
    d1, d2 : ndarray, shape (n,)
        Pixel indices (row, column) of the ring maximum.
    ring : ndarray of int, shape (n,)
        Index of the calibrant ring.
    chi : ndarray, shape (n,)
        Azimuth in radians (pyFAI's χ).
    snr : ndarray, shape (n,)
        Peak height over the noise (`extract_control_points`).
    width : ndarray, shape (n,)
        Rms width of the peak along the radius, pixels.
    """

    d1: np.ndarray
    d2: np.ndarray
    ring: np.ndarray
    chi: np.ndarray
    snr: np.ndarray
    width: np.ndarray

    def __len__(self) -> int:
        return int(self.d1.size)

    def subset(self, keep: np.ndarray) -> "ControlPoints":
        """The points selected by a boolean mask or index array."""
        return ControlPoints(self.d1[keep], self.d2[keep], self.ring[keep], self.chi[keep],
                             self.snr[keep], self.width[keep])


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for sampling: float32 with invalid pixels at 0, where bilinear
    interpolation touches only valid pixels (the 2 × 2 neighbourhood down-right is valid),
    its pixel noise on blocks (`noise.pixel_noise`), and the source's Kα2 line when the image
    was taken with a doublet (ring maxima are then referred to Kα1, see `doublet`).

    Attributes
    ----------
    pairs : ndarray of complex64, shape (H, W)
        Each pixel (real part) with its right-hand neighbour (imaginary part; 0 in the last
        column): one gather reads both pixels of an interpolation's row, and sampling
        (`sample_lines`) takes 2.6 times less time than with four gathers of single pixels.
        Twice the memory of the float32 image (a Pilatus 1M run's peak: 5.0 → 5.5 times the
        image as float64).
    interpolable, valid : ndarray of bool, shape (H, W)
    doublet : Doublet or None
    """

    pairs: np.ndarray
    interpolable: np.ndarray
    valid: np.ndarray
    doublet: Doublet | None = None

    @property
    def data(self) -> np.ndarray:
        """The image, float32 (H, W) (a view of `pairs`)."""
        return self.pairs.real

    @functools.cached_property
    def noise(self) -> np.ndarray:
        """The pixel noise on blocks (`noise.pixel_noise`), measured the first time a crowded
        ring needs it (0.04 s per megapixel that most images never spend)."""
        return pixel_noise(self.data, self.valid)


def prepare_image(image: np.ndarray, valid: np.ndarray, doublet: Doublet | None = None) -> PreparedImage:
    """Prepare an image (shape (H, W)) and its validity mask once for many extractions."""
    pairs = np.zeros(image.shape, np.complex64)
    data = pairs.real
    data[valid] = image[valid]
    pairs.imag[:, :-1] = data[:, 1:]
    # Bilinear interpolation at index i reads pixels i and i + 1 along both axes.
    interpolable = valid.copy()
    interpolable[:-1] &= valid[1:]
    interpolable[:, :-1] &= interpolable[:, 1:].copy()
    return PreparedImage(pairs=pairs, interpolable=interpolable, valid=valid, doublet=doublet)


def _bilinear(pairs: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear interpolation of an image at fractional indices within [0, H-1] × [0, W-1].

    A gather of the two pixel pairs (`PreparedImage.pairs`) of each sample: several times
    faster than `ndimage.map_coordinates` for the 10⁵ coherent samples of a ring extraction.

    Parameters
    ----------
    pairs : ndarray of complex64, shape (H, W)
        `PreparedImage.pairs`.
    p1, p2 : ndarray of float32, shape (...)
        Row and column indices.

    Returns
    -------
    values : ndarray of float32, shape (...)
    base : ndarray of int, shape (...)
        Flat index of each sample's top-left pixel.
    """
    h, w = pairs.shape
    # Fractions in the coordinates' own dtype (an integer index would promote to float64).
    i1 = np.minimum(np.floor(p1), h - 2)
    i2 = np.minimum(np.floor(p2), w - 2)
    f1 = p1 - i1
    f2 = p2 - i2
    flat = pairs.ravel()
    base = i1.astype(np.intp) * w + i2.astype(np.intp)
    top = flat[base]
    bottom = flat[base + w]
    top = top.real + (top.imag - top.real) * f2
    bottom = bottom.real + (bottom.imag - bottom.real) * f2
    return top + (bottom - top) * f1, base


def sample_lines(prepared: PreparedImage, c1, c2, u1, u2, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image interpolated along straight lines, bilinearly.

    Parameters
    ----------
    prepared : PreparedImage
    c1, c2 : ndarray, shape (...)
        Start of each line, fractional pixel indices (row, column).
    u1, u2 : ndarray, shape (...)
        Its unit direction (NaN: no line).
    s : ndarray of float32, shape (S,)
        Sample positions along the lines, pixels from the start.

    Returns
    -------
    prof : ndarray of float32, shape (..., S)
        Interpolated counts (0 off the image).
    good : ndarray of bool, shape (..., S)
        Samples on the image whose four neighbours are all valid.
    """
    # The (..., S) arrays are the memory peak: float32 (sub-millipixel here).
    p1 = np.asarray(c1)[..., None].astype(np.float32) + s * np.asarray(u1)[..., None].astype(np.float32)
    p2 = np.asarray(c2)[..., None].astype(np.float32) + s * np.asarray(u2)[..., None].astype(np.float32)
    h, w = prepared.pairs.shape
    on = np.isfinite(p1) & (p1 >= 0) & (p1 <= h - 1) & (p2 >= 0) & (p2 <= w - 1)
    p1[~on] = 0.0
    p2[~on] = 0.0
    prof, base = _bilinear(prepared.pairs, p1, p2)
    # Any invalid neighbour spoils the interpolated sample.
    good = prepared.interpolable.ravel()[base] & on
    return prof, good


def extract_control_points(prepared: PreparedImage, frame: DetectorFrame,
                           tth: np.ndarray, half_width_px: np.ndarray, n_chi: int = 360,
                           step_px: float = 0.5, min_snr: float = 5.0,
                           crowded: np.ndarray | None = None,
                           neighbours: np.ndarray | None = None) -> ControlPoints:
    """Locate ring maxima along 2θ at many azimuths.

    Parameters
    ----------
    prepared : PreparedImage
        From `prepare_image`.
    frame : DetectorFrame
        Current geometry.
    tth : ndarray, shape (K,)
        2θ of the rings to sample, radians.
    half_width_px : ndarray, shape (K,)
        Half-width of the search window of each ring, in pixels along the radius.
    n_chi : int
        Number of azimuths (evenly spaced over 2π).
    step_px : float
        Sampling step along the radius, pixels.
    min_snr : float
        Minimum peak height over the noise: the spread of successive differences along
        the window or, for `crowded` rings, the standard deviation of the image's pixel
        noise there (`noise`; no window of white noise reaches 5σ, 99.9 % stay below 4σ).
    crowded : ndarray of bool, shape (K,), optional
        Rings whose window a close neighbour narrowed to no wider than the peak, whose
        slopes the spread of differences would take for noise.
    neighbours : ndarray, shape (M,), optional
        2θ (radians) of every ring of the calibrant on the detector. Given, a ring whose
        neighbours on both sides are among `tth` has its peaks corrected for their tails
        (`_neighbour_shift`); without it, or without a Kα2 doublet to correct instead, the
        peaks are taken as measured.

    Returns
    -------
    ControlPoints
        Possibly empty.
    """
    tth = np.asarray(tth, float)
    hw = np.asarray(half_width_px, float)
    chi = (np.arange(n_chi) + 0.5) * (2 * np.pi / n_chi) - np.pi
    # Rings in blocks of at most `BLOCK_SAMPLES` profile samples: a fit still pixels off
    # widens the windows, and 30 rings at 1440 azimuths then took 500 MB at once. The blocks
    # do not depend on the threads: a block's profiles are padded to its widest window, and
    # the points to float32 rounding with them.
    samples = tth.size * n_chi * (2 * np.ceil(hw.max() / step_px) + 1)
    blocks = np.array_split(np.arange(tth.size),
                            int(np.clip(np.ceil(samples / BLOCK_SAMPLES), 1, tth.size)))
    def measure(b, reference=None):
        return _measure(prepared, frame, tth[b], hw[b], chi, step_px, min_snr,
                        None if crowded is None else np.asarray(crowded)[b], reference)

    parts = thread_map(measure, blocks)
    if len(blocks) > 1:
        # Which peaks are measured again depends on every ring's line (`_measure`): with
        # the rings in blocks, a block whose own reference chose other rings than the
        # reference of all is measured again with that.
        line = np.concatenate([p.line for p in parts])
        reference = _recentring_reference(prepared, hw, line)
        held = _held(hw, line, reference)
        again = [k for k, b in enumerate(blocks) if np.any(parts[k].held != held[b])]
        for k, part in zip(again, thread_map(lambda k: measure(blocks[k], reference), again)):
            parts[k] = part
    m = _Measured(*(np.concatenate([getattr(p, f.name) for p in parts])
                    for f in fields(_Measured)))
    half = _centroid_half(hw)
    centre = m.centre.astype(float)
    kk, jj = np.nonzero(m.keep)
    if kk.size and prepared.doublet is not None:
        centre[kk, jj] -= _kalpha2_shift(prepared.doublet, frame, tth, chi, m, hw, half,
                                         step_px)[kk, jj]
    elif kk.size and neighbours is not None:
        centre[kk, jj] -= _neighbour_shift(m, tth, hw, half, step_px, neighbours)[kk, jj]
    d1 = m.c1[kk, jj] + centre[kk, jj] * m.u1[kk, jj]
    d2 = m.c2[kk, jj] + centre[kk, jj] * m.u2[kk, jj]
    return ControlPoints(d1=d1, d2=d2, ring=kk.astype(int), chi=chi[jj], snr=m.snr[kk, jj],
                         width=m.width[kk, jj].astype(float))


@dataclass(frozen=True)
class _Measured:
    """Every ring profile of an extraction (`_measure`), arrays of shape (K, J): the ring's
    point and direction along its line (c1, c2, u1, u2), the peak's position along it
    (centre, pixels), rms width, height above the background line, its signal-to-noise, and
    whether it makes a control point (keep); and each ring's line σ, pixels, from its points'
    median width (line, shape (K,); inf for a ring without points) and whether its peaks
    were measured again in windows centred on them (held, shape (K,): `peaks.recentred`)."""

    c1: np.ndarray
    c2: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    centre: np.ndarray
    width: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    keep: np.ndarray
    line: np.ndarray
    held: np.ndarray


def _centroid_half(hw: np.ndarray) -> np.ndarray:
    """Centroid half-window of each ring (pixels) for its search half-window `hw`."""
    return np.maximum(1.5, 0.4 * hw)


def _reference_line(hw: np.ndarray, line: np.ndarray) -> float | None:
    """The image's line σ (pixels): the median σ of the rings whose windows hold their own
    (`RESOLVED_WINDOWS`), or None where none does."""
    held = hw >= RESOLVED_WINDOWS * line
    return float(np.median(line[held])) if held.any() else None


def _recentring_reference(prepared, hw: np.ndarray, line: np.ndarray) -> float | None:
    """`_reference_line` for re-centring (`_measure`): None under a modelled Kα doublet."""
    return None if prepared.doublet is not None else _reference_line(hw, line)


def _held(hw: np.ndarray, line: np.ndarray, reference: float | None) -> np.ndarray:
    """Rings whose windows hold the larger of their line σ and `reference` (`_measure`);
    none without a reference."""
    if reference is None:
        return np.zeros(hw.size, bool)
    return hw >= RESOLVED_WINDOWS * np.maximum(line, reference)


def _measure(prepared, frame, tth, hw, chi, step_px, min_snr, crowded,
             reference: float | None = None) -> _Measured:
    """The profiles of rings (`tth`, `hw`: shape (K,)) at azimuths `chi`
    (`extract_control_points`); `reference`, the line σ of the rings whose windows hold
    theirs (`_recentring_reference`), from these rings when None."""
    # Ring point and unit direction of increasing 2θ along the line of constant χ.
    c1, c2, u1, u2 = frame.radial_direction(tth[:, None], chi[None, :])      # (K, J)
    n_s = int(np.ceil(hw.max() / step_px))
    s = np.arange(-n_s, n_s + 1) * step_px                                   # (S,)
    inside = np.abs(s)[None, :] <= hw[:, None] + 1e-9                        # (K, S)
    s32 = s.astype(np.float32)
    prof, good = sample_lines(prepared, c1, c2, u1, u2, s32)
    usable = np.all(good | ~inside[:, None, :], axis=2) & np.isfinite(u1)    # (K, J)

    net = net_profile(prof, s32, hw[:, None], step_px)
    half = _centroid_half(hw)[:, None]
    centre, width, k_max, peak = peak_in_window(net, s32, half, step_px)
    del net
    # Noise from the spread of successive differences inside the window (robust to the peak,
    # and high on the flank of a ring the window misses). Each ring's window is one
    # contiguous index range, so a loop over rings (not points) avoids a NaN-aware median.
    idx_lo, idx_hi = window_bounds(n_s, hw, step_px)
    noise = np.array([np.median(np.abs(np.diff(prof[k, :, lo:hi + 1], axis=1)), axis=1)
                      for k, (lo, hi) in enumerate(zip(idx_lo, idx_hi))]).reshape(prof.shape[:2])
    noise = 1.4826 * noise / np.sqrt(2)
    # Between close rings (a dense calibrant at small radii) the window is no wider than the
    # peak, whose slopes would read as noise: a ring 600σ high in the azimuthal profile then
    # lost every point. There the image's own pixel noise decides.
    if crowded is not None and np.any(crowded):
        noise[crowded] = noise_at(prepared.noise, c1[crowded], c2[crowded])
    snr = peak / (noise + 1e-12)
    edge = (k_max <= idx_lo[:, None] + 1) | (k_max >= idx_hi[:, None] - 1)
    found = usable & ~edge & (snr >= min_snr)
    keep = found & (np.abs(centre) < hw[:, None] - 1.0)
    # Each ring's line σ from its points' median width, as the estimator measures widths.
    rows = np.nonzero(keep.any(axis=1))[0]
    line = np.full(hw.size, np.inf)
    if rows.size:
        line[rows] = _line_sigma(np.nanmedian(np.where(keep[rows], width[rows], np.nan), axis=1),
                                 hw[rows], half[rows, 0], step_px)
    # A window that cuts its line measures a width that hardly grows with σ, and the σ read
    # from it is a lower bound: the rings re-centred are those whose windows hold the larger
    # of their own σ and the σ of the rings whose windows hold theirs (a Si image whose
    # crowded caps read 1 px for lines of 3.3 px, re-centred, settled 0.33 px off its truth).
    # Not under a Kα doublet: its blend is referred to Kα1 by a model whose line σ is read
    # from the blend's width, and a window re-centred on the blend carries that σ's error
    # into the shift (a weak broad hydrocerussite doublet went 0.08 → 0.16 px off its truth).
    held = _held(hw, line, _recentring_reference(prepared, hw, line) if reference is None
                 else reference)
    # Only the peaks found: the others make no point whatever their centre.
    kk, jj = np.nonzero(found & held[:, None])
    if kk.size:
        centre[kk, jj] = recentred(prof[kk, jj], s32, hw[kk], half[kk, 0], step_px,
                                   centre[kk, jj], True)
    keep = found & (np.abs(centre) < hw[:, None] - 1.0)
    return _Measured(c1, c2, u1, u2, centre, width, peak, snr, keep, line, held)


def _kalpha2_shift(doublet: Doublet, frame, tth, chi, m: _Measured, hw, half,
                   step_px) -> np.ndarray:
    """Shift (K, J) of each measured peak from its Kα1 ring, pixels along the profile: the
    Kα2 ring's distance at that azimuth, each ring's line width (`Doublet.line_sigma`, from
    its median measured width) and its window, through the doublet model."""
    c1, c2, u1, u2, width, keep = m.c1, m.c2, m.u1, m.u2, m.width, m.keep
    b1, b2 = frame.pixel_at(doublet.tth2(tth)[:, None], chi[None, :])
    separation = (b1 - c1) * u1 + (b2 - c2) * u2                             # (K, J)
    rows = np.nonzero(keep.any(axis=1))[0]
    sigma = np.zeros(keep.shape[0])
    sigma[rows] = doublet.line_sigma(
        np.nanmedian(np.where(keep[rows], width[rows], np.nan), axis=1),
        np.nanmedian(np.where(keep[rows], separation[rows], np.nan), axis=1),
        hw[rows], half[rows], step_px)
    kk, jj = np.nonzero(keep)
    shift = np.zeros(keep.shape)
    shift[kk, jj] = doublet.peak_shift_px(separation[kk, jj], sigma[kk], hw[kk], half[kk],
                                          step_px)
    return shift


#: Rings whose search half-window is narrower than this many σ of the image's lines keep
#: their peaks uncorrected: there the measured peak is the top of a cap between two lines,
#: and the heights the model needs no longer follow from it (Si at 48 keV, σ = 3.3 px, ±3
#: px: the 400 ring's correction came out twice its bias).
MODEL_WINDOWS = 1.0
#: A neighbour's line is left out of the model where its height at the near window end is
#: below this fraction of the ring's own peak.
TAIL_FLOOR = 1e-3
#: σ beyond a window's end past which a neighbour's line leaves less than `TAIL_FLOOR` there
#: even at a hundred times the ring's height: rings with no neighbour nearer are not modelled.
TAIL_REACH = 5.0


def _neighbour_shift(m: _Measured, tth: np.ndarray, hw: np.ndarray, half: np.ndarray,
                     step_px: float, neighbours: np.ndarray) -> np.ndarray:
    """Shift (K, J) of each measured peak from its ring, pixels along the profile, by the
    tails of the rings beside it.

    Each window stops short of its neighbours (`rounds.window_px`), but a broad ring's
    neighbour still lifts one end of the window's background line and one flank of the peak:
    Si drawn at 48 keV with σ = 3.3 px, 6.6 px from a ring several times stronger, measured
    its 400 ring 0.21 px out on a noise-free image. The model (`peaks.measured_lines`) is
    the ring and its two neighbours, Gaussian lines of the image's σ at their predicted
    distances along the same line of constant χ, each as high as its peak at that azimuth
    says once the neighbours' tails are taken out of it (`_line_heights`; a neighbour with no
    peak there is left out); the shift is where the estimator places that blend less where
    it places the ring alone. The σ comes from the rings whose windows hold their whole line
    (`peaks.RESOLVED_WINDOWS`), their median measured width mapped through the same estimator;
    without such a ring nothing is corrected, nor is a ring with a calibrant ring beside it
    that was not measured (`neighbours`: its height is unknown), or whose window or a
    neighbour's is narrower than `MODEL_WINDOWS` σ (the heights then do not follow from the
    peaks).
    """
    shift = np.zeros(m.keep.shape)
    order = np.argsort(tth)
    rows = m.keep.any(axis=1)
    if order.size < 2 or not rows.any():
        return shift
    sigma = _reference_line(hw, m.line)
    if sigma is None:
        return shift
    neighbour = np.full((hw.size, 2), -1)
    neighbour[order[1:], 0], neighbour[order[:-1], 1] = order[:-1], order[1:]
    n = np.maximum(neighbour, 0)
    offsets = np.stack([(m.c1[n[:, i]] - m.c1) * m.u1 + (m.c2[n[:, i]] - m.c2) * m.u2
                        for i in range(2)], -1)                               # (K, J, 2)
    present = (neighbour[:, None, :] >= 0) & np.isfinite(offsets)
    offsets = np.where(present, offsets, 0.0)
    # Each ring's neighbours among all the calibrant's rings must be the ones measured.
    everyone = np.sort(np.asarray(neighbours, float))
    at = np.clip(np.searchsorted(everyone, tth), 0, everyone.size - 1)
    known = np.abs(everyone[at] - tth) <= 1e-9 * np.maximum(tth, 1.0)
    lower = np.where(at > 0, everyone[np.maximum(at - 1, 0)], np.nan)
    upper = np.where(at < everyone.size - 1, everyone[np.minimum(at + 1, everyone.size - 1)],
                     np.nan)
    measured = [np.where(neighbour[:, i] >= 0, tth[n[:, i]], np.nan) for i in range(2)]
    wide = hw >= MODEL_WINDOWS * sigma
    gap = np.abs(offsets) - hw[:, None, None]
    near = np.any(present & (gap < TAIL_REACH * sigma), axis=(1, 2))
    whole = known & _same(lower, measured[0]) & _same(upper, measured[1]) & wide & near \
        & np.all(wide[n] | (neighbour < 0), axis=1)
    if not whole.any():
        return shift
    heights = _line_heights(m, hw, sigma, n, offsets, present)                # (K, J)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.stack([heights[n[:, i]] for i in range(2)], -1) / heights[..., None]
    heights = np.where(present & np.isfinite(ratio), np.clip(ratio, 0.0, None), 0.0)
    reach = heights * np.exp(-0.5 * (np.maximum(gap, 0) / sigma) ** 2) >= TAIL_FLOOR
    kk, jj = np.nonzero(m.keep & reach.any(axis=-1) & whole[:, None])
    if not kk.size:
        return shift
    lines = np.concatenate([np.zeros((kk.size, 1)), offsets[kk, jj]], axis=1)
    tall = np.concatenate([np.ones((kk.size, 1)), heights[kk, jj] * reach[kk, jj]], axis=1)
    blended, _ = measured_lines(sigma, lines, tall, hw[kk], half[kk], step_px, m.held[kk])
    alone, _ = measured_lines(sigma, np.zeros((hw.size, 1)), np.ones((hw.size, 1)), hw, half,
                              step_px, m.held)
    shift[kk, jj] = blended - alone[kk]
    return shift


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: both NaN, or equal."""
    return (np.isnan(a) & np.isnan(b)) | (a == b)


def _line_heights(m: _Measured, hw: np.ndarray, sigma: float, neighbour: np.ndarray,
                  offsets: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each ring's line height at each azimuth (K, J), from the peaks measured above the
    windows' background lines: a unit line at δ from a window's centre adds
    g(δ) − (g(δ − hw) + g(δ + hw)) / 2 to its peak (g the line's profile), its own line
    1 − g(hw). Two Jacobi steps on those equations, each ring with its two neighbours,
    take the neighbours' tails out of each peak (Si at 48 keV, σ = 3.3 px: the cut peaks
    alone put the 311 ring 2.5 times as high as the 220 beside it, the lines are 1.8 times
    as high). NaN where a profile has no peak above its background.

    Parameters
    ----------
    m : _Measured
    hw : ndarray, shape (K,)
    sigma : float
        The lines' σ, pixels.
    neighbour : ndarray of int, shape (K, 2)
        Each ring's lower and upper neighbour (any index where there is none).
    offsets : ndarray, shape (K, J, 2)
        Their distances along each profile, pixels.
    present : ndarray of bool, shape (K, J, 2)
        Whether each neighbour is there.
    """
    def g(x):
        return np.exp(-0.5 * (x / sigma) ** 2)

    w = hw[:, None, None]
    cross = np.where(present, g(offsets) - 0.5 * (g(offsets - w) + g(offsets + w)), 0.0)
    own = 1 - g(hw)[:, None]
    peak = np.where(np.isfinite(m.peak) & (m.peak > 0), m.peak, np.nan)
    heights = peak / own
    for _ in range(2):
        beside = np.stack([np.nan_to_num(heights[neighbour[:, i]]) for i in range(2)], -1)
        heights = np.maximum(peak - np.sum(cross * beside, axis=-1), 0.0) / own
    return heights


def _line_sigma(width_px: np.ndarray, hw_px: np.ndarray, half_px: np.ndarray,
                step_px: float) -> np.ndarray:
    """The σ of a Gaussian line that the estimator measures as wide as each ring was
    measured (`peaks.measured_lines`, window and centroid half-window included), pixels;
    shape like `width_px`. Beyond what the window holds the measured width stops growing, and
    the σ found there is a lower bound at best: the caller keeps the rings whose window holds
    their line (`RESOLVED_WINDOWS`)."""
    grid = np.geomspace(0.3, max(4.0 * float(np.max(width_px)), 2.0), 48)
    _, model = measured_lines(grid[None, :], np.zeros((width_px.size, grid.size, 1)),
                              np.ones((width_px.size, grid.size, 1)), hw_px[:, None],
                              half_px[:, None], step_px)                      # (n, G)
    return np.array([np.interp(w, np.maximum.accumulate(row), grid) for w, row in
                     zip(width_px, model)])
