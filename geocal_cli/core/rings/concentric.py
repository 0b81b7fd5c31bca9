"""Per-ring centres: how far each calibrant ring's own centre sits from the fitted geometry's.

A flat detector and an ideal sample give rings that one geometry places everywhere; a
non-planar detector, a lens (electrons) or a sample off the rotation axis moves single rings
by a few 0.1 px, and the fitted beam centre is then a weighted mean of ring centres whose
least-squares 1σ (per-point noise only) is far too small. Each ring's radial residuals are
fitted with r = a + δ·u (a radius change a and a shift δ, u the unit vector of increasing 2θ
at the point), the shifts' scatter beyond their own noise is the ring-to-ring spread, and
the centre's 1σ gains spread / √(number of rings): the uncertainty of a mean over rings that
each carry an independent shift (the same treatment as a between-group variance component,
e.g. Cochran's random-effects mean, doi:10.2307/3001666).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A ring's shift is measured only with this many points and a well-conditioned fit (the ring
#: covers enough azimuth for a shift to differ from a radius change).
MIN_POINTS = 20
MAX_CONDITION = 1e3
#: Ring-to-ring scatter of the ring centres (rms per axis beyond noise, pixels) above which
#: the report warns that the rings are not concentric.
NON_CONCENTRIC_PX = 0.1
#: How that warning begins (reports replace one model's by another's).
NON_CONCENTRIC_START = "the rings are not concentric"


@dataclass(frozen=True)
class RingCentres:
    """Shifts of single rings from the fitted geometry.

    Attributes
    ----------
    ring : ndarray of int, shape (k,)
        Calibrant ring indices (0-based) whose shift is measured.
    shift_px : ndarray, shape (k, 2)
        Shift of each ring (d1 = row, d2 = column), pixels, about their weighted mean.
    sigma_px : ndarray, shape (k,)
        1σ of each shift (per axis, from the ring's own residual scatter), pixels.
    spread_px : float
        Rms ring-to-ring scatter of the shifts per axis beyond their noise (0 when the
        scatter is what the noise gives), pixels.
    """

    ring: np.ndarray
    shift_px: np.ndarray
    sigma_px: np.ndarray
    spread_px: float

    @property
    def centre_sigma_px(self) -> float:
        """What the spread adds (in quadrature) to the beam centre's 1σ per axis, pixels."""
        return self.spread_px / np.sqrt(max(self.ring.size, 1))


def ring_centres(ring: np.ndarray, residual_px: np.ndarray, u1: np.ndarray,
                 u2: np.ndarray) -> RingCentres | None:
    """Fit each ring's radial residuals with a radius change and a shift.

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
        Ring index of each control point (inliers only).
    residual_px : ndarray, shape (n,)
        Observed − model position along increasing 2θ, pixels.
    u1, u2 : ndarray, shape (n,)
        Unit vector of increasing 2θ at each point (rows, columns).

    Returns
    -------
    RingCentres or None
        None when fewer than three rings can be measured.
    """
    x = np.stack([np.ones_like(u1), u1, u2], axis=1)                       # (n, 3)
    ids, inv = np.unique(ring, return_inverse=True)
    k = ids.size
    a = np.zeros((k, 3, 3))
    b = np.zeros((k, 3))
    for i in range(3):
        b[:, i] = np.bincount(inv, x[:, i] * residual_px, k)
        for j in range(i, 3):
            a[:, i, j] = a[:, j, i] = np.bincount(inv, x[:, i] * x[:, j], k)
    count = np.bincount(inv, minlength=k)
    ok = (count >= MIN_POINTS) & (np.linalg.cond(a) < MAX_CONDITION)
    if ok.sum() < 3:
        return None
    a, b, ids, count = a[ok], b[ok], ids[ok], count[ok]
    beta = np.linalg.solve(a, b[..., None])[..., 0]                        # (k, 3)
    keep = ok[inv]
    fitted = np.einsum("nj,nj->n", x[keep], beta[np.searchsorted(ids, ring[keep])])
    rss = np.bincount(np.searchsorted(ids, ring[keep]), (residual_px[keep] - fitted) ** 2, ids.size)
    s2 = rss / np.maximum(count - 3, 1)
    cov = np.linalg.inv(a) * s2[:, None, None]
    sigma = np.sqrt(0.5 * (cov[:, 1, 1] + cov[:, 2, 2]))
    shift = beta[:, 1:]
    w = 1 / sigma ** 2
    shift = shift - (w[:, None] * shift).sum(0) / w.sum()
    var = np.mean(0.5 * np.sum(shift ** 2, axis=1))
    excess = var - np.mean(sigma ** 2)
    return RingCentres(ring=ids, shift_px=shift, sigma_px=sigma,
                       spread_px=float(np.sqrt(max(excess, 0.0))))


def ring_shifts(frame, tth: np.ndarray, chi: np.ndarray, ring: np.ndarray,
                residual_px: np.ndarray) -> RingCentres | None:
    """`ring_centres` of control points on a geometry's rings.

    Parameters
    ----------
    frame : DetectorFrame
        The fitted geometry.
    tth : ndarray, shape (n,)
        2θ of each point's calibrant ring (radians, the fit's wavelength).
    chi : ndarray, shape (n,)
        Azimuth of each point, radians.
    ring : ndarray of int, shape (n,)
    residual_px : ndarray, shape (n,)
        Observed − model position along increasing 2θ, pixels.
    """
    _, _, u1, u2 = frame.radial_direction(tth, chi)
    ok = np.isfinite(u1) & np.isfinite(u2)
    return ring_centres(ring[ok], residual_px[ok], u1[ok], u2[ok])


def concentric_warning(centres: RingCentres | None) -> str | None:
    """The warning for rings whose own centres scatter beyond `NON_CONCENTRIC_PX`, or None."""
    if centres is None or not centres.spread_px > NON_CONCENTRIC_PX:
        return None
    return (f"{NON_CONCENTRIC_START}: their centres scatter by {centres.spread_px:.2f} px (rms "
            f"per axis, beyond noise, over {centres.ring.size} rings; a non-planar detector or "
            "a sample off the axis); the beam centre's 1σ includes it")
