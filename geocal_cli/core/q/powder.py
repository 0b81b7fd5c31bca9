"""q consistency of a powder geometry on calibrant control points.

Each control point's q_pixel = 4π sin θ / λ (pyFAI's convention, Å⁻¹) from the geometry at
its pixel is compared with its ring's q_ring = 2π / d: Δq = q_pixel − q_ring and the strain
Δd/d = q_ring / q_pixel − 1 (in µε, 10⁻⁶). The residuals are then explained
(`diagnosis.explain`) by small rigid moves of the detector about the beam centre and by the
wavelength (`rigid.PARAMETERS`, without the turn about the normal, which leaves 2θ alone).

A geometry error moves each ring as a smooth function of χ: to first order a constant
(distance, wavelength), cos χ and sin χ (beam centre, tilt) and cos 2χ, sin 2χ (tilt). The
part of each ring's Δd/d that these five terms fit is the geometric strain; what is left is
the scatter of single control points (sub-pixel peak finding on sharp rings, counting noise),
which shrinks with more points and says nothing about the geometry. Both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.rings.controlpoints import ControlPoints
from geocal_cli.core.q.diagnosis import Diagnosis, explain
from geocal_cli.core.geometry.frame import DetectorFrame
from geocal_cli.core.q.rigid import PARAMETERS, STEPS, DetectorAxes, jacobian

#: Points a ring needs for its χ harmonics to be fitted.
MIN_HARMONIC_POINTS = 12
#: The rigid-move parameters that change 2θ (all but the turn about the normal).
_USED = [0, 1, 2, 3, 4, 6]


@dataclass(frozen=True)
class PowderCheck:
    """Outcome of `check_powder`.

    Attributes
    ----------
    points : ControlPoints
        The points checked (n).
    q_pixel, q_ring, dq : ndarray, shape (n,)
        Å⁻¹.
    strain : ndarray, shape (n,)
        Δd/d = q_ring / q_pixel − 1.
    geometric_strain : ndarray, shape (n,)
        The part of `strain` smooth in χ along each ring (orders 0–2; order 0 alone on rings
        with fewer than `MIN_HARMONIC_POINTS` points).
    radius_mm : ndarray, shape (n,)
        Distance of each point from the beam centre in the detector plane, mm.
    rings : list of dict
        Per ring: 'ring' (1-based), 'd_angstrom', 'q_ring' and the `stats` of its points.
    diagnosis : Diagnosis
    """

    points: ControlPoints
    q_pixel: np.ndarray
    q_ring: np.ndarray
    dq: np.ndarray
    strain: np.ndarray
    geometric_strain: np.ndarray
    radius_mm: np.ndarray
    rings: list
    diagnosis: Diagnosis


def _q(lab: np.ndarray, wavelength_a: float) -> np.ndarray:
    tth = np.arctan2(np.hypot(lab[:, 0], lab[:, 1]), lab[:, 2])
    return 4 * np.pi * np.sin(tth / 2) / wavelength_a


def stats(dq: np.ndarray, strain: np.ndarray, geometric: np.ndarray) -> dict:
    """Mean, median and max |Δq| (Å⁻¹), median |Δd/d| and rms Δd/d (µε) of a set of points,
    per point and for the geometric part."""
    a = np.abs(dq)
    return {"points": int(dq.size), "mean_abs_dq": float(a.mean()), "median_abs_dq": float(np.median(a)),
            "max_abs_dq": float(a.max()), "mean_dq": float(dq.mean()),
            "median_abs_microstrain": float(np.median(np.abs(strain)) * 1e6),
            "rms_microstrain": float(np.sqrt(np.mean(strain**2)) * 1e6),
            "geometric_median_abs_microstrain": float(np.median(np.abs(geometric)) * 1e6),
            "scatter_rms_microstrain": float(np.std(strain - geometric) * 1e6)}


def ring_harmonics(ring: np.ndarray, chi: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per ring, the least-squares fit of a0 + a1 cos χ + b1 sin χ + a2 cos 2χ + b2 sin 2χ.

    Parameters
    ----------
    ring, chi, values : ndarray, shape (n,)
        Ring index, azimuth (rad) and the value fitted.

    Returns
    -------
    ndarray, shape (n,)
        The fitted smooth part at every point.
    """
    basis = np.stack([np.ones_like(chi), np.cos(chi), np.sin(chi), np.cos(2 * chi), np.sin(2 * chi)], 1)
    out = np.zeros_like(values)
    for k in np.unique(ring):
        on = ring == k
        b = basis[on] if on.sum() >= MIN_HARMONIC_POINTS else basis[on, :1]
        out[on] = b @ np.linalg.lstsq(b, values[on], rcond=None)[0]
    return out


def check_powder(frame: DetectorFrame, points: ControlPoints, d_spacing: np.ndarray,
                 wavelength: float) -> PowderCheck:
    """Compare q at control points with their rings' q and name the geometry error, if any.

    Parameters
    ----------
    frame : DetectorFrame
        The geometry checked (metres).
    points : ControlPoints
        Points on calibrant rings (`ring` indexes `d_spacing`).
    d_spacing : ndarray, shape (m,)
        Calibrant d-spacings, metres.
    wavelength : float
        Metres.

    Returns
    -------
    PowderCheck

    Raises
    ------
    ValueError
        Too few points to diagnose.
    """
    lam = wavelength * 1e10
    lab = frame.positions(points.d1, points.d2)
    q_ring = 2 * np.pi / (d_spacing[points.ring] * 1e10)
    q_pixel = _q(lab, lam)
    dq = q_pixel - q_ring
    strain = q_ring / q_pixel - 1
    geometric = ring_harmonics(points.ring, points.chi, strain)
    c1, c2 = frame.beam_center()
    pivot = frame.positions(np.array([c1]), np.array([c2]))[0]
    radius = np.linalg.norm(lab - pivot, axis=1) * 1e3
    px = (np.linalg.norm(frame.e2), np.linalg.norm(frame.e1))
    axes = DetectorAxes.of(frame.e2 / px[0], frame.e1 / px[1], frame.origin, [0.0, 0.0, 1.0], px, mm=1e-3)

    def residual(p6):
        p = np.zeros(7)
        p[_USED] = p6
        return _q(axes.move(lab, p), lam / (1 + p[6] / 100)) - q_ring

    J = jacobian(residual, STEPS[_USED])
    diagnosis = explain(dq, J, [PARAMETERS[i] for i in _USED])
    rings = []
    for k in np.unique(points.ring):
        on = points.ring == k
        rings.append({"ring": int(k) + 1, "d_angstrom": float(d_spacing[k] * 1e10),
                      "q_ring": float(q_ring[on][0]), **stats(dq[on], strain[on], geometric[on])})
    return PowderCheck(points=points, q_pixel=q_pixel, q_ring=q_ring, dq=dq, strain=strain,
                       geometric_strain=geometric, radius_mm=radius, rings=rings, diagnosis=diagnosis)
