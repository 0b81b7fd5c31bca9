"""Beam centre from the direct beam (unblocked or attenuated), saturated or not.

The beam is the brightest compact blob after isolated hot pixels are removed (grey opening).
Its centre comes from a least-squares fit of an elliptical 2-D Gaussian plus a constant to the
pixels around it, leaving out saturated pixels so that a clipped core does not flatten the
fit: the unsaturated shoulder carries the position. The start is the intensity-weighted
centroid (first moments) of the blob; the saturated plateau's centroid is reported beside the
fit as a check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.errors import CalibrationError


@dataclass(frozen=True)
class BeamSpot:
    """A fitted direct beam.

    Attributes
    ----------
    d1, d2 : float
        Centre in pixel indices (pixel centre of pixel i at i).
    cov : ndarray, shape (2, 2)
        Covariance of (d1, d2), px², scaled by the fit's reduced χ².
    sigma_px : tuple of float
        Gaussian σ along the two principal axes, pixels (major first).
    peak : float
        Fitted peak height above the background, counts.
    background : float
        Fitted constant, counts.
    saturated : int
        Pixels left out as saturated.
    plateau_center : tuple of float or None
        Centroid (d1, d2) of the saturated plateau, when there is one.
    rms : float
        Rms residual of the fit relative to the peak height.
    snr : float
        Blob height over the image's robust noise.
    """

    d1: float
    d2: float
    cov: np.ndarray
    sigma_px: tuple
    peak: float
    background: float
    saturated: int
    plateau_center: tuple | None
    rms: float
    snr: float


def _gauss(p, y, x):
    a, c1, c2, q11, q12, q22, b = p
    dy, dx = y - c1, x - c2
    return a * np.exp(-0.5 * (q11 * dy * dy + 2 * q12 * dy * dx + q22 * dx * dx)) + b


def find_direct_beam(image: np.ndarray, valid: np.ndarray, saturation: float | None = None,
                     min_snr: float = 20.0) -> BeamSpot:
    """Locate and fit the direct beam.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    saturation : float, optional
        Counts at and above which pixels are saturated; default: when five or more pixels lie
        within 3 % of the maximum (a flat top), those above 90 % of it.
    min_snr : float
        The blob must stand this many robust noise σ above the median.

    Returns
    -------
    BeamSpot

    Raises
    ------
    CalibrationError
        No compact bright blob (direct beam absent or blocked), or the fit fails.
    """
    from scipy import ndimage
    from scipy.optimize import least_squares

    data = image.astype(np.float32)
    data[~valid] = np.nan
    vals = data[valid]
    if vals.size == 0:
        raise CalibrationError("direct beam absent: no valid pixel")
    med = float(np.median(vals))
    noise = max(1.4826 * float(np.median(np.abs(vals - med))), np.sqrt(max(med, 1.0)))
    work = np.where(valid, data, med)
    # Opening removes isolated hot pixels and thin ring segments; a beam is a few px wide.
    smooth = ndimage.uniform_filter(ndimage.grey_opening(work, size=(3, 3)), 3)
    k1, k2 = np.unravel_index(np.argmax(smooth), smooth.shape)
    top = float(smooth[k1, k2])
    snr = (top - med) / noise
    if snr < min_snr:
        raise CalibrationError(f"direct beam absent: the brightest blob stands {snr:.0f} σ above "
                               f"the background (needs {min_snr:g}); use --method ring")

    def region(level):
        labels, _ = ndimage.label(smooth > med + level * (top - med))
        return labels == labels[k1, k2]

    # A beam falls off in every direction: seen at a quarter of its height it is a compact,
    # filled, roundish patch (a uniform disc of variance v per axis has area 4π·v). The
    # brightest stretch of a ring runs along the ring instead: elongated, or a thin annulus.
    wide = region(0.25)
    i1, i2 = np.nonzero(wide)
    ev = np.linalg.eigvalsh(np.cov(np.stack([i1, i2]))) if i1.size > 2 else np.ones(2)
    fill = i1.size / (4 * np.pi * np.sqrt(max(ev[0], 0.25) * max(ev[1], 0.25)))
    if i1.size > 0.01 * image.size or ev[1] > 4 * max(ev[0], 0.25) or fill < 0.5:
        raise CalibrationError("direct beam absent: the brightest region is extended or "
                               "elongated (a ring or streak, not a beam); use --method ring")
    radius = float(np.sqrt(np.count_nonzero(region(0.5)) / np.pi))
    r = int(np.clip(np.ceil(3 * radius + 3), 5, 80))
    lo1, hi1 = max(k1 - r, 0), min(k1 + r + 1, image.shape[0])
    lo2, hi2 = max(k2 - r, 0), min(k2 + r + 1, image.shape[1])
    win = data[lo1:hi1, lo2:hi2].astype(float)
    yy, xx = np.mgrid[lo1:hi1, lo2:hi2]
    ok = np.isfinite(win)
    vmax = np.nanmax(win)
    # A Gaussian has one or two pixels within 3 % of its peak; a flat top of five or more is
    # (possibly soft) saturation, whose knee starts lower: leave out everything above 90 %.
    if saturation is not None:
        sat = win >= saturation
    elif np.count_nonzero(win >= 0.97 * vmax) >= 5:
        sat = win >= 0.9 * vmax
    else:
        sat = np.zeros(win.shape, bool)
    ok &= ~sat
    plateau = (float(yy[sat].mean()), float(xx[sat].mean())) if sat.any() else None
    if np.count_nonzero(ok) < 12:
        raise CalibrationError("direct beam: too few unsaturated valid pixels around it to fit")
    y, x, z = yy[ok], xx[ok], win[ok]
    b0 = float(np.percentile(z, 10))
    w = np.clip(z - b0, 0, None)
    c1 = float((w * y).sum() / w.sum()) if w.sum() > 0 else float(k1)
    c2 = float((w * x).sum() / w.sum()) if w.sum() > 0 else float(k2)
    s0 = max(radius / 1.18, 0.7)
    p0 = [max(vmax - b0, 1.0), c1, c2, 1 / s0**2, 0.0, 1 / s0**2, b0]
    scale = max(vmax - b0, 1.0)
    try:
        sol = least_squares(lambda p: (_gauss(p, y, x) - z) / scale, p0, method="trf",
                            bounds=([0, lo1 - 1, lo2 - 1, 1e-4, -10, 1e-4, -np.inf],
                                    [np.inf, hi1, hi2, 10, 10, 10, np.inf]))
    except ValueError as exc:
        raise CalibrationError(f"direct beam fit failed: {exc}") from exc
    p = sol.x
    q = np.array([[p[3], p[4]], [p[4], p[5]]])
    if not sol.success or np.linalg.det(q) <= 0:
        raise CalibrationError("direct beam fit did not converge")
    dof = max(z.size - p.size, 1)
    jtj = sol.jac.T @ sol.jac
    cov = np.linalg.pinv(jtj) * float(np.sum(sol.fun**2) / dof)
    sig = np.sqrt(1 / np.linalg.eigvalsh(q))
    return BeamSpot(d1=float(p[1]), d2=float(p[2]), cov=cov[1:3, 1:3],
                    sigma_px=(float(sig.max()), float(sig.min())), peak=float(p[0]),
                    background=float(p[6]), saturated=int(sat.sum()), plateau_center=plateau,
                    rms=float(np.sqrt(np.mean(sol.fun**2))), snr=float(snr))
