"""The rings of an image measured without a calibration: under the user's guess or, blind,
under a neutral frame about the rings' common centre in which each ring has one radius
whatever the distance. Each candidate calibrant (or wavelength) then chooses its own distance
(`audit.rank_calibrants`), the profile strategy starts from them (`profilestart`), and the
audit holds a fit against them (`audit`, rule 1)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame, frame_of
from geocal_cli.core.rings.audit import Audit, counted_rings, merge_rankings, rank_calibrants
from geocal_cli.core.rings.seen import seen_rings
from geocal_cli.core.rings.start import common_center, find_ring_ridges

#: Measurements of the ring centres that build the neutral frame, at most.
NEUTRAL_ROUNDS = 4


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
    """

    def __init__(self, image, valid, detector, guess, ridges, candidates: dict,
                 wavelength: float):
        self._args = (image, valid, detector, guess, ridges)
        self._candidates, self._wavelength = candidates, wavelength
        self._measured: tuple | None = None
        self._ranked: list | None = None
        self._done = False

    def measure(self, centre=None) -> tuple | None:
        """(DetectorFrame, SeenRings, counted: ndarray of bool), or None when the image shows
        no ridges to centre on. `centre` (the rings' common centre, pixel indices) spares
        finding it again; the first call's measurement stands for the image."""
        if not self._done:
            self._measured = neutral_measure(*self._args, centre)
            self._done = True
        return self._measured

    def rings(self, centre=None) -> tuple | None:
        """(SeenRings, counted), or None (`measure`)."""
        measured = self.measure(centre)
        return None if measured is None else measured[1:]

    def ranked(self, centre=None) -> list:
        """The candidates ranked on these rings (best first; empty without rings)."""
        if self._ranked is None:
            rings = self.rings(centre)
            self._ranked = [] if rings is None else rank_calibrants(
                *rings, self._candidates, self._wavelength)
        return self._ranked

    def joined(self, checked: Audit, centre=None) -> Audit:
        """A fit's audit with the ranking on these rings merged in (`Audit.rankings` gains
        it as its last measurement)."""
        ranked = self.ranked(centre)
        if not ranked:
            return checked
        return replace(checked, ranking=merge_rankings(checked.ranking, ranked),
                       rankings=checked.rankings + (ranked,))


def neutral_measure(image: np.ndarray, valid: np.ndarray, detector, guess=None, ridges=None,
                    centre=None):
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
        frame = neutral_frame(image, valid, detector, centre)
    return (frame, *_counted(seen_rings(image, valid, frame)))


def _counted(seen):
    """(seen, the rings that count)."""
    return seen, counted_rings(seen)


def neutral_frame(image: np.ndarray, valid: np.ndarray, detector, centre) -> DetectorFrame:
    """A frame in which every ring of the image has one radius, without knowing the distance.

    On a detector tilted by τ, the ring of radius r is centred r² tan τ / L (L the distance in
    pixels) from the beam, towards where the detector recedes. Measured under an untilted
    frame at the rings' common centre, each ring's own centre comes from its position in
    every sector (`seen.seen_rings`, `offset`); the strong whole rings' centres are fitted as
    c(r) = c₀ + s r² (at least three): c₀ is the beam, and a frame at any distance L with the
    slope s L built into its pixel axes draws the same centres to first order in τ. The
    offsets are measured again under that frame and the fit repeated (at most
    `NEUTRAL_ROUNDS` times, until the centres move by less than 0.05 px): rings split by a
    large first offset come together. With fewer rings, the untilted frame.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
        Pixel sizes.
    centre : (float, float)
        The rings' common centre, pixel indices (d1, d2).

    Returns
    -------
    DetectorFrame
    """
    p1, p2 = float(detector.pixel1), float(detector.pixel2)

    def frame(c, slope, dist_px):
        t1, t2 = np.asarray(slope) * dist_px
        e1, e2 = np.array([p1, 0.0, p1 * t1]), np.array([0.0, p2, p2 * t2])
        origin = np.array([0.0, 0.0, dist_px * np.sqrt(p1 * p2)]) - c[0] * e1 - c[1] * e2
        return DetectorFrame(origin=origin, e1=e1, e2=e2)

    c0, slope, dist_px = np.asarray(centre, float), np.zeros(2), 1000.0
    for _ in range(NEUTRAL_ROUNDS):
        seen, counted = _counted(seen_rings(image, valid, frame(c0, slope, dist_px)))
        use = counted & (seen.snr >= 20) & np.isfinite(seen.offset[:, 0])
        if use.sum() < 3:
            break
        r2 = seen.u_px[use] ** 2
        w = np.sqrt(seen.snr[use])
        a = np.stack([np.ones_like(r2), r2], 1)
        # The frame's x1, x2 run along d1, d2: offsets are pixel steps from the centres the
        # frame draws, c₀ + s r².
        centres = c0 + r2[:, None] * slope + seen.offset[use]
        coef = np.linalg.lstsq(a * w[:, None], centres * w[:, None], rcond=None)[0]
        moved = np.abs(a @ coef - (c0 + r2[:, None] * slope)).max()
        c0, slope = coef[0], coef[1]
        # Any distance serves; a moderate one keeps the built-in tilt small.
        dist_px = min(4.0 * float(seen.u_px[use].max()),
                      0.3 / max(float(np.hypot(*slope)), 1e-12))
        if moved < 0.05:
            break
    return frame(c0, slope, dist_px)


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


