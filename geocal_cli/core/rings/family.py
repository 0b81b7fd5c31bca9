"""Strongly tilted detectors: geometry from the shapes of unassigned ring arcs.

Every powder ring is the section of a cone of half-angle 2θ by the detector plane. Before
knowing which reflection an arc belongs to, its 2θ can be a free parameter: fitting pyFAI's
geometry (distance, beam centre, tilts) with one free 2θ per arc to the arcs' ridge pixels
recovers the tilt from how eccentricity and centre change from ring to ring. At strong tilts
this also fixes the distance, and the fitted tan 2θ are tilt-free ring "radii" for the
assignment, where circle radii of conic arcs are not.

Starts: the beam centre extrapolated from the drift of the arcs' circle centres with r²
(conic centres move away from the beam along the tilt plane) and a grid of tilts in that
plane (both ways, both pyFAI rotations, since their signs depend on the detector
orientation) and of distances, the likeliest first, until one fits; or, where that
extrapolation fails, the geometry under which the arcs are most coherent over the whole
range of geometries (`coherent_start`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import (PARAM_NAMES, beam_frame, frame_of, make_geometry,
                                            mean_pixel, poni_for_beam_center)
from geocal_cli.core.rings import wholerange
from geocal_cli.core.rings.refine import MIN_DIST_PX, PARAM_SCALES, tth_jacobian

_FREE = ("dist", "poni1", "poni2", "rot1", "rot2")
_SCALE = np.array([PARAM_SCALES[p] for p in _FREE])


@dataclass(frozen=True)
class RingFamily:
    """Result of `fit_ring_family`.

    Attributes
    ----------
    values : dict
        dist, poni1, poni2, rot1, rot2, rot3 (0), in metres and radians.
    tth : ndarray, shape (n_arcs,)
        Fitted 2θ of each arc, radians.
    cost : float
        Mean |residual| of the ridge pixels, pixels of the fitted geometry (the mean, not
        the median: a free 2θ per arc lets a wrong geometry fit most pixels of every arc,
        but not its ends).
    """

    values: dict
    tth: np.ndarray
    cost: float


def center_drift(centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear fit of arc centres against r².

    Parameters
    ----------
    centres : ndarray, shape (n, 2)
        Circle centres of the arcs, pixel indices.
    radii : ndarray, shape (n,)

    Returns
    -------
    c0 : ndarray, shape (2,)
        Centre extrapolated to r = 0 (near the beam).
    slope : ndarray, shape (2,)
        d(centre)/d(r²), pixels per pixel².
    """
    a = np.stack([np.ones_like(radii), radii**2], 1)
    sol, *_ = np.linalg.lstsq(a, centres, rcond=None)
    return sol[0], sol[1]


def residual_px(frame, d1: np.ndarray, d2: np.ndarray, tth: np.ndarray) -> np.ndarray:
    """How far pixels lie from the 2θ of their arc, in pixels of `frame` (DetectorFrame):
    (2θ − `tth`) / |∇2θ|, all arrays of shape (n,), 2θ in radians."""
    return (frame.tth(d1, d2) - tth) / np.maximum(frame.tth_gradient(d1, d2), 1e-9)


def fit_ring_family(detector, d1: np.ndarray, d2: np.ndarray, arc: np.ndarray,
                    centres: np.ndarray, radii: np.ndarray, wavelength: float,
                    max_nfev: int = 80, good_px: float = 2.0,
                    start: dict | None = None, own_pixels: bool = False
                    ) -> RingFamily | None:
    """Fit distance, beam centre, tilts and one 2θ per arc to ring-arc pixels.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
    d1, d2 : ndarray, shape (n,)
        Ridge pixels of the arcs (pixel indices).
    arc : ndarray of int, shape (n,)
        Arc index of each pixel, 0..n_arcs-1.
    centres : ndarray, shape (n_arcs, 2)
        Circle centre of each arc (pixel indices).
    radii : ndarray, shape (n_arcs,)
        Circle radius of each arc, pixels.
    wavelength : float
        Metres (carried, not fitted).
    max_nfev : int
        Function evaluations per start.
    good_px : float
        Stop trying starts once the mean |residual| is below this (pixels).
    start : dict, optional
        A geometry (dist, poni1, poni2, rot1, rot2) to start from instead of the grid, e.g.
        the fit of the longest arcs.
    own_pixels : bool
        Measure the residuals in pixels of the geometry being fitted, not in the start's.
        In the start's pixels a fit can slide towards the sample, where every 2θ nears 90°
        and their differences shrink (LaB6 on a MAR345 tilted 24.5°, rings at 2θ 38–86°:
        started at the truth, the fit collapsed there and no family was returned). The grid
        keeps the start's pixels: in their own, its fits of a vanadinite pattern tilted 34°
        ended at a wrong geometry (0.94 px) where those in the start's found the truth
        (0.87 px).

    Returns
    -------
    RingFamily or None
        None when no start converges.
    """
    from scipy.optimize import least_squares

    n_a = radii.size
    pixel = mean_pixel(detector)
    c0, slope = center_drift(centres, radii)
    size = float(np.hypot(*detector.shape)) * pixel if detector.shape is not None else radii.max() * pixel
    u = slope / (np.hypot(*slope) or 1.0)
    # Distances in units of the detector's diagonal: a wide-angle detector 85 mm from the
    # sample (a MAR345 tilted by 22°) lies below 0.5 of it, and 40 evaluations from there
    # do not reach it.
    grid = [(k * size, s1 * tau * u[1], s2 * tau * u[0])
            for tau in np.radians([25.0, 12.0, 38.0]) for k in (0.5, 1.5, 0.12)
            for s1 in (1, -1) for s2 in (1, -1)]
    starts = [np.array([start[k] for k in _FREE])] if start is not None else \
        [np.array([dist, *poni_for_beam_center(
            make_geometry(detector, dist, 0.0, 0.0, rot1, rot2, 0.0, wavelength),
            float(c0[0]), float(c0[1])), rot1, rot2]) for dist, rot1, rot2 in grid]
    best = None
    for x0 in starts:
        g = make_geometry(detector, *x0, 0.0, wavelength)
        fr = frame_of(g, [*x0, 0.0])
        t = fr.tth(d1, d2)
        tth0 = np.bincount(arc, weights=t, minlength=n_a) / np.maximum(np.bincount(arc, minlength=n_a), 1)
        grad = np.maximum(fr.tth_gradient(d1, d2), 1e-9)

        def unpack(x, x0=x0, tth0=tth0):
            geo = x0 + x[:5] * _SCALE
            return [geo[0], geo[1], geo[2], geo[3], geo[4], 0.0], tth0 + x[5:] * 1e-3

        def scale(p6, grad=grad, g=g):
            if not own_pixels:
                return grad
            return np.maximum(frame_of(g, p6).tth_gradient(d1, d2), 1e-9)

        def fun(x, unpack=unpack, g=g):
            p6, tth = unpack(x)
            return (frame_of(g, p6).tth(d1, d2) - tth[arc]) / scale(p6)

        def jac(x, unpack=unpack, g=g):
            p6, _ = unpack(x)
            j = np.zeros((d1.size, 5 + n_a))
            j[:, :5] = tth_jacobian(g, p6, d1, d2, _FREE, _SCALE)
            j[np.arange(d1.size), 5 + arc] = -1e-3
            return j / scale(p6)[:, None]

        try:
            res = least_squares(fun, np.zeros(5 + n_a), jac=jac, loss="soft_l1", f_scale=1.0,
                                method="trf", max_nfev=max_nfev)
        except (ValueError, np.linalg.LinAlgError):
            continue
        p6, tth = unpack(res.x)
        if p6[0] <= MIN_DIST_PX * pixel:
            continue
        # In pixels of the fitted geometry: divided by the start's gradient, a fit that
        # drifted to a long distance, where every 2θ difference shrinks, reported arcs
        # 12–30 px off as a 1.1 px fit (Al2O3 tilted 29° at 56 mm: 5.8 m, untilted).
        cost = float(np.mean(np.abs(residual_px(frame_of(g, p6), d1, d2, tth[arc]))))
        if np.isfinite(cost) and (best is None or cost < best[0]):
            best = (cost, p6, tth)
        if best is not None and best[0] < good_px:
            break
    if best is None:
        return None
    cost, p6, tth = best
    return RingFamily(values=dict(zip(PARAM_NAMES, p6)), tth=np.asarray(tth), cost=cost)


#: `coherent_start`: the residual (pixels) beyond which a pixel counts as an outlier.
COHERENT_CAP_PX = 10.0


def coherent_start(detector, d1: np.ndarray, d2: np.ndarray, arc: np.ndarray,
                   shape: tuple[int, int]) -> dict | None:
    """The geometry under which each arc's pixels share one 2θ best, over the whole range of
    geometries (`wholerange.search`): a start for `fit_ring_family` that needs no guess of
    the beam centre.

    For a geometry, the best 2θ of an arc is its pixels' mean, so the family fit's cost
    depends on the geometry's five parameters alone: the pixels' mean distance, in pixels of
    that geometry, from their arc's 2θ, each capped at `COHERENT_CAP_PX` (an arc that chains
    two touching rings then weighs little). In pixels of the geometry measured, a geometry
    that crowds every pixel near one 2θ (the detector at the sample, all pixels near 90°)
    gains nothing.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
    d1, d2 : ndarray, shape (n,)
        Ridge pixels of the arcs (pixel indices).
    arc : ndarray of int, shape (n,)
        Arc index of each pixel, 0..n_arcs-1.
    shape : (int, int)
        The image's shape.

    Returns
    -------
    dict or None
        dist, poni1, poni2, rot1, rot2 (metres, radians); None where the search ends at a
        wall of the range (`wholerange.at_wall`).
    """
    pixel = mean_pixel(detector)
    flat = make_geometry(detector, 0.1, 0.0, 0.0)
    count = np.maximum(np.bincount(arc), 1)

    def cost(x):
        with np.errstate(all="ignore"):
            t, g1, g2 = beam_frame(x, flat, pixel).tth_and_grad(d1, d2)
            off = np.abs(t - (np.bincount(arc, t) / count)[arc]) / np.hypot(g1, g2)
        return float(np.mean(np.minimum(np.where(np.isfinite(off), off, COHERENT_CAP_PX),
                                        COHERENT_CAP_PX)))

    x = wholerange.search(cost, shape)
    if x is None:
        return None
    b1, b2, dist_px, rot1, rot2 = x
    g = make_geometry(detector, dist_px * pixel, 0.0, 0.0, rot1, rot2)
    poni1, poni2 = poni_for_beam_center(g, b1, b2)
    return {"dist": dist_px * pixel, "poni1": poni1, "poni2": poni2, "rot1": rot1,
            "rot2": rot2}
