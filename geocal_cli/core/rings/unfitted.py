"""The rings of an image measured without a calibration: under the user's guess or, blind,
under a neutral frame about the rings' common centre in which each ring has one radius
whatever the distance. Each candidate calibrant (or wavelength) then chooses its own distance
(`audit.rank_calibrants`), the profile strategy starts from them (`profilestart`), and the
audit holds a fit against them (`audit`, rule 1)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame, frame_of
from geocal_cli.core.rings.audit import (Audit, counted_rings, merge_rankings, rank_calibrants,
                                        replacement)
from geocal_cli.core.rings.parallel import in_background, threads
from geocal_cli.core.rings.seen import seen_rings
from geocal_cli.core.rings.start import common_center, find_ring_ridges

#: Measurements of the ring centres that build the neutral frame, at most.
NEUTRAL_ROUNDS = 4
#: A refit of the neutral frame whose profile's signal falls below this fraction of the
#: sharpest so far has blurred the rings (the signal of one image scatters by a few per cent
#: between frames that differ by a tenth of a pixel).
BLURRED = 0.9
#: Pixels of an image whose rings `Unfitted.start` measures on a thread of their own, at
#: least: smaller images gain no time there and a larger peak of memory.
BACKGROUND_PIXELS = 1_000_000
#: Traced rings the drift of their centres is fitted on, at least: two parameters per axis,
#: and three traces fit any drift exactly.
TREND_TRACES = 4


class Unfitted:
    """The rings of one image measured without a fit, measured and ranked once: the blind
    search's audit of every fit, the profile strategy and the answer's audit share them.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
    guess : pyFAI.geometry.Geometry or None
    ridges : RidgePixels or None
        Ridges already found (`start.find_ring_ridges`).
    candidates : dict[str, tuple]
        Calibrants to rank (as `audit.rank_calibrants` takes them).
    wavelength : float
        Metres.
    given : str, optional
        The calibrant given, whose unresolved reflections the ranking merges
        (`audit.rank_calibrants`, `blends`).
    """

    def __init__(self, image, valid, detector, guess, ridges, candidates: dict,
                 wavelength: float, given: str | None = None):
        self._args = (image, valid, detector, guess, ridges)
        self._candidates, self._wavelength = candidates, wavelength
        self._blends = () if given is None else (given,)
        self._centre, self._traces = None, ()
        self._measured: tuple | None = None
        self._ranked: list | None = None
        self._done = False
        self._running = None

    def locate(self, centre, traces=()) -> None:
        """What the blind search found of the rings' centre, for the measurement to start
        from (it spares finding the centre again): the common centre (pixel indices) and
        the rings traced around it (`blind.RingTrace`), whose own centres show the tilt.
        Ignored once the rings are measured or being measured (`start`)."""
        if not self._done and self._running is None:
            self._centre, self._traces = centre, tuple(traces)

    def start(self) -> None:
        """Measure and rank the rings on a thread of their own, from what `locate` gave so
        far, while the caller goes on: the blind search assigns and refines its first start
        meanwhile, and every fit's audit needs them. On two cores the synthetic benchmark's
        cases of a megapixel and more took 5–15 % less time (medians of five runs: Eiger2 4M
        LaB6 0.89 → 0.77 s, MAR345 1.75 → 1.63 s), the two threads' arrays raising the peak
        memory of some runs (a Pilatus 1M's to 6.8 times the image); those of small images
        took as long (Medipix 512², 0.39 → 0.40 s: their arrays are too small to run beside
        Python's own work, and a Pilatus 300K-W run's peak memory went from 5.6 to 6.8 times
        the image). `measure` and `ranked` wait for it. Does nothing
        once the rings are measured or being measured, for an image of fewer than
        `BACKGROUND_PIXELS`, nor where the process may run one thread only
        (`parallel.threads`: batch workers, one per core)."""
        if (self._done or self._running is not None or threads() <= 1
                or self._args[0].size < BACKGROUND_PIXELS):
            return
        self._running = in_background(self._measure_and_rank)

    def _measure_and_rank(self) -> None:
        self._measure()
        self._rank()

    def _wait(self) -> None:
        """Wait for `start`'s thread; re-raise what it raised (then measure again if asked)."""
        running, self._running = self._running, None
        if running is not None:
            running.result()

    def measure(self) -> tuple | None:
        """(DetectorFrame, SeenRings, counted: ndarray of bool), or None when the image shows
        no ridges to centre on. The first call's measurement stands for the image."""
        self._wait()
        self._measure()
        return self._measured

    def _measure(self) -> None:
        if not self._done:
            self._measured = neutral_measure(*self._args, self._centre, self._traces)
            self._done = True

    def rings(self) -> tuple | None:
        """(SeenRings, counted), or None (`measure`)."""
        measured = self.measure()
        return None if measured is None else measured[1:]

    def ranked(self) -> list:
        """The candidates ranked on these rings (best first; empty without rings)."""
        self.measure()
        self._rank()
        return self._ranked

    def _rank(self) -> None:
        if self._ranked is None:
            rings = None if self._measured is None else self._measured[1:]
            self._ranked = [] if rings is None else rank_calibrants(
                *rings, self._candidates, self._wavelength, self._blends)

    def replacement(self, given: str, families: dict):
        """The calibrant that replaces `given` on these rings (`audit.replacement`: more
        rings explained, or as many with clearly better intensities), or None (also when the
        image shows no rings to rank). Every fit's audit weighs this ranking
        (`Audit.better_calibrant`)."""
        ranked = self.ranked()
        return replacement(ranked, given, families) if ranked else None

    def joined(self, checked: Audit) -> Audit:
        """A fit's audit with the ranking on these rings merged in (`Audit.rankings` gains
        it as its last measurement)."""
        ranked = self.ranked()
        if not ranked:
            return checked
        return replace(checked, ranking=merge_rankings(checked.ranking, ranked),
                       rankings=checked.rankings + (ranked,))


def neutral_measure(image: np.ndarray, valid: np.ndarray, detector, guess=None, ridges=None,
                    centre=None, traces=()):
    """The rings of an image measured without a calibration, and those that count.

    Under the guess's geometry or, without one, under `neutral_frame` at the rings' common
    centre: the radius then does not depend on the distance, which each candidate calibrant
    (or wavelength) chooses for itself.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
    guess : pyFAI.geometry.Geometry, optional
    ridges : RidgePixels, optional
        Ridges already found (`start.find_ring_ridges`).
    centre : (float, float), optional
        The rings' common centre (`start.common_center`), when the blind search found it;
        else found from the ridges.
    traces : sequence of RingTrace
        The rings the blind search traced about `centre`, if any (`neutral_frame`).

    Returns
    -------
    (DetectorFrame, SeenRings, ndarray of bool) or None
        The frame, the rings, those that count (`audit.counted_rings`); None when the image
        shows no ridges to centre on.
    """
    if guess is not None:
        frame = frame_of(guess)
    else:
        if centre is None:
            ridges = ridges if ridges is not None else find_ring_ridges(image, valid)
            if ridges.d1.size < 10:
                return None
            centre = common_center(ridges, image.shape)[:2]
        return neutral_frame(image, valid, detector, centre, traces)
    return (frame, *_counted(seen_rings(image, valid, frame)))


def _counted(seen):
    """(seen, the rings that count)."""
    return seen, counted_rings(seen)


def neutral_frame(image: np.ndarray, valid: np.ndarray, detector, centre,
                  traces=()) -> tuple:
    """A frame in which every ring of the image has one radius, without knowing the distance,
    and the rings measured under it.

    On a detector tilted by τ, the ring of radius r is centred r² tan τ / L (L the distance in
    pixels) from the beam, towards where the detector recedes. Measured under an untilted
    frame at the rings' common centre, each ring's own centre comes from its position in
    every sector (`seen.seen_rings`, `offset`); the strong whole rings' centres are fitted as
    c(r) = c₀ + s r² (at least three): c₀ is the beam, and a frame at any distance L with the
    slope s L built into its pixel axes draws the same centres to first order in τ. The
    offsets are measured again under that frame and the fit repeated (at most
    `NEUTRAL_ROUNDS` times, until the centres move by less than 0.05 px): rings split by a
    large first offset come together. A refit that blurs the profile (`_signal`, the
    counted rings' summed SNR, below `BLURRED` times the sharpest so far) ends it, the frame
    measured before standing. With fewer rings, the untilted frame.

    Where the rings are arcs around a beam off the detector, the common centre lands among
    their drifting centres, and under the untilted frame there every ring smears over its
    neighbours' radii: no strong whole ring is left to fit (Si at 113 keV, 107 mm, tilted
    5°: 0 rings counted). The traced rings' own ellipse centres show the same drift: fitted
    as c₀ + s r² (`centre_trend`), they give a second start, and the start whose counted
    rings carry more signal (the sum of their SNR) is the one refined.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
        Pixel sizes.
    centre : (float, float)
        The rings' common centre, pixel indices (d1, d2).
    traces : sequence of RingTrace
        Rings traced about `centre` (`start.ring_traces`), if any.

    Returns
    -------
    (DetectorFrame, SeenRings, ndarray of bool)
        The frame, the rings of its profile and those that count (`audit.counted_rings`).
    """
    p1, p2 = float(detector.pixel1), float(detector.pixel2)

    def frame(c, slope, dist_px):
        t1, t2 = np.asarray(slope) * dist_px
        e1, e2 = np.array([p1, 0.0, p1 * t1]), np.array([0.0, p2, p2 * t2])
        origin = np.array([0.0, 0.0, dist_px * np.sqrt(p1 * p2)]) - c[0] * e1 - c[1] * e2
        return DetectorFrame(origin=origin, e1=e1, e2=e2)

    def dist_for(slope, radius):
        # Any distance serves; a moderate one keeps the built-in tilt small.
        return min(4.0 * radius, 0.3 / max(float(np.hypot(*slope)), 1e-12))

    starts = [(np.asarray(centre, float), np.zeros(2), 1000.0)]
    trend = centre_trend(traces)
    if trend is not None:
        c0, slope, radius = trend
        # A trend that draws every traced centre within a pixel of the common one adds nothing.
        if np.hypot(*(c0 + slope * radius ** 2 - starts[0][0])) > 1.0:
            starts.append((c0, slope, dist_for(slope, radius)))
    measured = [_counted(seen_rings(image, valid, frame(*s))) for s in starts]
    # The sharper profile carries more signal in its counted rings: a ring smeared over its
    # neighbours' radii, or split in two by a centre off the beam, loses height. (By count,
    # arcs on a strip detector whose ellipse centres scatter along the strip won with 14
    # weak rings against 16 strong ones.) The same measure keeps the refinement honest: the
    # first-order drift can overshoot on a strongly tilted detector (CeO2 tilted 10°: the
    # signal went 12416, 11362, 3147, 2540 while the beam wandered off), and a refit that
    # blurs the rings ends it.
    i = max(range(len(starts)), key=lambda j: _signal(*measured[j]))
    (c0, slope, dist_px), (seen, counted) = starts[i], measured[i]
    kept, top = (frame(c0, slope, dist_px), seen, counted), _signal(seen, counted)
    for n in range(NEUTRAL_ROUNDS + 1):
        if n:
            f = frame(c0, slope, dist_px)
            seen, counted = _counted(seen_rings(image, valid, f))
            if _signal(seen, counted) < BLURRED * top:
                break
            kept, top = (f, seen, counted), max(top, _signal(seen, counted))
        use = counted & (seen.snr >= 20) & np.isfinite(seen.offset[:, 0])
        if n == NEUTRAL_ROUNDS or use.sum() < 3:
            break
        r2 = seen.u_px[use] ** 2
        # The frame's x1, x2 run along d1, d2: offsets are pixel steps from the centres the
        # frame draws, c₀ + s r².
        drawn = c0 + r2[:, None] * slope
        fit_c0, fit_slope = _drift(r2, drawn + seen.offset[use], np.sqrt(seen.snr[use]))
        if np.abs(fit_c0 + r2[:, None] * fit_slope - drawn).max() < 0.05:
            break
        c0, slope = fit_c0, fit_slope
        dist_px = dist_for(slope, float(seen.u_px[use].max()))
    return kept


def _signal(seen, counted) -> float:
    """The summed SNR of the counted rings of a profile: how sharply it shows them."""
    return float(seen.snr[counted].sum())


def centre_trend(traces) -> tuple | None:
    """The drift of traced rings' centres with radius, c(r) = c₀ + s r² (see
    `neutral_frame`), weighted by each trace's score.

    Parameters
    ----------
    traces : sequence of RingTrace
        Each with an ellipse (centre `c1`, `c2` and `radius`, pixels) and a `score`.

    Returns
    -------
    (c0, slope, radius) or None
        c0 : ndarray, shape (2,), pixel indices (d1, d2); slope : ndarray, shape (2,), pixels
        per pixel²; radius : the largest traced radius, pixels. None with fewer than
        `TREND_TRACES` traces, radii too alike to show a drift, or a drift beyond any tilt's
        (a centre moving by more than the ring's radius).
    """
    if len(traces) < TREND_TRACES:
        return None
    r2 = np.array([t.ellipse.radius for t in traces], float) ** 2
    if r2.max() < 1.5 * r2.min():
        return None
    c = np.array([[t.ellipse.c1, t.ellipse.c2] for t in traces], float)
    c0, slope = _drift(r2, c, np.sqrt(np.maximum([t.score for t in traces], 0.0)))
    radius = float(np.sqrt(r2.max()))
    if not (np.all(np.isfinite(c0)) and np.all(np.isfinite(slope))) \
            or np.hypot(*slope) * radius > 1.0:
        return None
    return c0, slope, radius


def _drift(r2: np.ndarray, centres: np.ndarray, weights: np.ndarray) -> tuple:
    """Weighted least-squares fit of ring centres (shape (n, 2), pixel indices) against
    squared radius `r2` (shape (n,)) as c₀ + s r²: (c₀, s), each of shape (2,)."""
    a = np.stack([np.ones_like(r2), r2], 1)
    coef = np.linalg.lstsq(a * weights[:, None], centres * weights[:, None], rcond=None)[0]
    return coef[0], coef[1]


def identify_calibrant(image: np.ndarray, valid: np.ndarray, detector, wavelength: float,
                       candidates: dict, guess=None, ridges=None) -> list:
    """Rank candidate calibrants on the rings of an image before (or without) a calibration
    (`neutral_measure`, `audit.rank_calibrants`).

    Parameters
    ----------
    image, valid, detector, guess, ridges
        As `neutral_measure`.
    wavelength : float
        Metres.
    candidates : dict[str, tuple]
        As `audit.rank_calibrants` takes them.

    Returns
    -------
    list of CalibrantScore
        Best first; empty when the image shows no ring centre.
    """
    return Unfitted(image, valid, detector, guess, ridges, candidates, wavelength).ranked()


