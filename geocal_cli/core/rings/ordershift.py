"""A fit's rings an order off: the same control points assigned one reflection further in
or out along the calibrant's list, and refitted.

A comb of reflections whose d-spacings follow d₁/n (silver behenate's lamellar orders,
any long-period standard) looks alike one order up or down: rings n…m fitted as n+1…m+1
need only a shorter distance and a tilt to keep every ring within a fraction of a pixel.
Refined from a guess 6 % short (AgBh 2.7 m from a Pilatus 300K-W tilted 10°), rings 13–33
were fitted as 14–34 at 0.45 px rms, 47 px from the truth, with only weakly determined
parameters and a misfit to warn of; the same points one order in fit at 0.025 px. Points
that fit far better with their reflections an order off were fitted on the wrong ones:
that assignment is the one to refine. Where the calibrant is no comb, a shifted
assignment puts each ring on another's radius ratio and fits far worse, and nothing
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import (frame_of, geometry_from_values,
                                           poni_for_beam_center, with_distance_scaled)
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.controlpoints import ControlPoints
from geocal_cli.core.rings.misfit import split_residual
from geocal_cli.core.rings.refine import Refinement, refine_geometry

#: The shifts tried, in reflections along the calibrant's list.
SHIFTS = (-1, 1)
#: Shifts taken one after another from one fit: AgBh's rings 10–35 lie 3–10 % apart in
#: distance, so three orders cover a guess 10–30 % off, beyond any user's start.
MAX_SHIFTS = 3
#: Inliers a shifted fit is screened on, evenly spread over them: 2000 points fix six
#: parameters far better than the factor `SHIFT_BETTER` asks, in about 20 ms a refit.
SCREEN_POINTS = 2000
#: A shifted assignment replaces the fit's when its rms is below this share of the fit's
#: on the same points: 0.046 for the AgBh fit one order out (above), while the true fit's
#: points shifted either way fit 16 and 21 times worse than it.
SHIFT_BETTER = 0.5
#: ... and it keeps at least this share of the points: rings shifted off the calibrant's
#: list (or past 2θ = 180°) are dropped, and outliers of the refit rejected.
MIN_KEPT = 0.8


@dataclass(frozen=True)
class OrderShift:
    """A shifted assignment that fits a fit's points better.

    Attributes
    ----------
    shift : int
        Reflections moved along the calibrant's list (−1: one order in, to larger d).
    values : dict
        The shifted fit's PONI values and wavelength (m, rad), a start for refinement rounds.
    rms_px : float
        Its rms over its inliers, pixels.
    fit_rms_px : float
        The fit's own rms over the same screened points, pixels.
    """

    shift: int
    values: dict
    rms_px: float
    fit_rms_px: float

    def describe(self) -> str:
        """The shift as a sentence's clause."""
        return (f"the rings fit the reflections {orders(self.shift)} far better "
                f"({self.rms_px:.3f} px rms against {self.fit_rms_px:.3f} px)")


def orders(shift: int) -> str:
    """A shift along the calibrant's list in words: "one order further in" (shift −1)."""
    count = "one order" if abs(shift) == 1 else f"{abs(shift)} orders"
    return f"{count} further {'in' if shift < 0 else 'out'}"


def order_shifted(detector, result: Refinement, pts: ControlPoints, d_spacing, free: tuple,
                  chi_step: float) -> OrderShift | None:
    """The assignment an order off (`SHIFTS`) that fits a fit's inliers best, when it fits
    them far better (`SHIFT_BETTER`), else None.

    No assignment fits points below their own scatter (`misfit.split_residual`), so a fit
    within 1 / `SHIFT_BETTER` of it, or whose scatter the points cannot measure, is left
    without a refit. Each shift is refined from two starts, the distance scaled to keep
    the most populated ring's radius and the beam centre kept: with the fit's tilts, and
    untilted, since a tilt that bends one series onto another's ratios (AgBh fitted one
    order in, tilted 12°) holds the shifted fit in its own minimum (0.42 px rms; untilted,
    0.019 px).

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
    result : Refinement
        The fit; its `inliers` select the points.
    pts : ControlPoints
        Its control points, shape (n,); `ring` indexes `d_spacing`.
    d_spacing : ndarray, shape (m,)
        The calibrant's d-spacings, metres, decreasing.
    free : tuple of str
        The parameters a shifted fit refines: the fit's, and the distance (a shift needs
        another distance).
    chi_step : float
        Azimuth step of the control points' sampling, radians.

    Returns
    -------
    OrderShift or None
    """
    inl = result.inliers
    split = split_residual(pts.ring[inl], pts.chi[inl], result.residual_px[inl], chi_step)
    if not split.rms_px * SHIFT_BETTER > split.scatter_px:
        return None
    kept = np.nonzero(inl)[0]
    kept = kept[np.linspace(0, kept.size - 1, min(kept.size, SCREEN_POINTS)).astype(int)]
    d1, d2, ring = pts.d1[kept], pts.d2[kept], pts.ring[kept]
    fit_rms = float(np.sqrt(np.mean(result.residual_px[kept] ** 2)))
    tth = ring_tth(d_spacing, result.values["wavelength"])
    geometry = geometry_from_values(detector, result.values)
    free = tuple(dict.fromkeys(("dist", *free)))
    anchor = np.bincount(ring).argmax()
    best = None
    for shift in SHIFTS:
        moved = ring + shift
        on_list = (moved >= 0) & (moved < d_spacing.size)
        on_list[on_list] &= np.isfinite(tth[moved[on_list]])
        if on_list.mean() < MIN_KEPT or not on_list[ring == anchor].all():
            continue
        for start in _starts(detector, result.values,
                             np.tan(tth[anchor]) / np.tan(tth[anchor + shift])):
            try:
                alt = refine_geometry(geometry, d1[on_list], d2[on_list],
                                      d_spacing[moved[on_list]], start, free, n_rounds=2)
            except ValueError:
                continue
            rms = float(np.sqrt(np.mean(alt.residual_px[alt.inliers] ** 2)))
            if alt.values["dist"] > 0 and on_list.mean() * alt.inliers.mean() >= MIN_KEPT \
                    and rms < SHIFT_BETTER * fit_rms and (best is None or rms < best.rms_px):
                best = OrderShift(shift, alt.values, rms, fit_rms)
    return best


def _starts(detector, values: dict, ratio: float) -> list[dict]:
    """The distance times `ratio` about the same beam centre, with the tilts and untilted
    (`order_shifted`); the first alone where the beam misses the detector's plane."""
    tilted = with_distance_scaled(detector, values, ratio)
    beam = frame_of(geometry_from_values(detector, tilted)).beam_center()
    if not np.all(np.isfinite(beam)):
        return [tilted]
    untilted = {**tilted, "rot1": 0.0, "rot2": 0.0}
    untilted["poni1"], untilted["poni2"] = poni_for_beam_center(
        geometry_from_values(detector, untilted), *beam)
    return [tilted, untilted]
