"""How much of a fit's residual the model leaves, beyond the control points' own scatter.

A ring's control points scatter about the true ring (counting noise, grain spots, pixels);
a geometry that does not describe the rings adds a residual that varies slowly with the
azimuth χ. Differences between the residuals of neighbouring azimuths on one ring cancel
the slow part and keep the scatter: for independent points of variance σ², the mean square
successive difference is 2σ² (von Neumann, Ann. Math. Statist. 12, 367 (1941),
doi:10.1214/aoms/1177731677; the Durbin–Watson statistic of regression residuals,
Biometrika 37, 409 (1950), doi:10.1093/biomet/37.3-4.409, is the same ratio). So the total
mean square residual splits into the points' scatter and the model's misfit:
rms² = σ_points² + misfit².

Across rings, the residual of a right geometry varies smoothly with 2θ too; one ring's mean
jumping off its neighbours' trend marks points of other rings (`ring_mean_jump`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
# scipy.stats would add 0.5 s to every command's start; its χ² quantile is this function.
from scipy.special import chdtri

#: A misfit beyond both this multiple of the scatter and this many pixels is worth a warning:
#: the GE 41RT panel's radial distortion leaves 0.12 px against 0.03 px of scatter; simulated
#: images without distortion, 0.01 px.
WARN_RATIO = 2.0
WARN_PX = 0.1
#: How a misfit warning begins (reports replace one model's by another's).
WARNING_START = "the geometry leaves"

#: A ring whose mean residual departs from the line through its neighbours' means by more than
#: this many pixels holds points of other rings: on a wrong assignment of LaB6 to PBBA's rings
#: one ring sat 1.07 px off its neighbours' line. On right fits: the simulated radial
#: distortion (0.67 px rms) 0.19 px at most; steel rings under a CeO2 ring on the real
#: MAR345 image pull it 0.52 px off, which a foreign ring may do.
JUMP_PX = 0.8
#: Rings with fewer inlier points are not judged: their mean is too noisy.
JUMP_MIN_POINTS = 20
#: Significance at which ring means scattering beyond their points' noise are taken for
#: rings' own offsets (`ring_offset_px`): 1 % of fits without offsets widen their 1σ.
OFFSET_LEVEL = 0.01

# Neighbours further apart than this many azimuth steps (a gap, a blocked sector) are not
# compared: the slow part would no longer cancel.
NEIGHBOUR_STEPS = 1.5


@dataclass(frozen=True)
class Misfit:
    """A fit's residual split into the control points' scatter and the model's misfit.

    Attributes
    ----------
    rms_px : float
        Rms residual of the points compared, pixels.
    scatter_px : float
        The points' own scatter, from successive differences along χ, pixels (NaN with
        fewer than `min_pairs` neighbour pairs).
    misfit_px : float
        sqrt(max(rms² − scatter², 0)): the part of the residual that varies slowly with χ,
        pixels (NaN when `scatter_px` is).
    pairs : int
        Neighbour pairs compared.
    """

    rms_px: float
    scatter_px: float
    misfit_px: float
    pairs: int


def split_residual(ring: np.ndarray, chi: np.ndarray, residual_px: np.ndarray,
                   chi_step: float, min_pairs: int = 10) -> Misfit:
    """Split residuals into the points' scatter and the model's misfit.

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
        Each point's ring.
    chi : ndarray, shape (n,)
        Each point's azimuth, radians.
    residual_px : ndarray, shape (n,)
        Each point's radial residual, pixels (the inliers of a fit).
    chi_step : float
        Azimuth step of the sampling, radians: points on one ring at most
        `NEIGHBOUR_STEPS` steps apart are neighbours.
    min_pairs : int
        Fewer neighbour pairs leave the split undetermined (NaN).

    Returns
    -------
    Misfit
    """
    ring = np.asarray(ring)
    res = np.asarray(residual_px, float)
    rms = float(np.sqrt(np.mean(res ** 2))) if res.size else float("nan")
    order = np.lexsort((chi, ring))
    r, c, e = ring[order], np.asarray(chi, float)[order], res[order]
    pair = (r[1:] == r[:-1]) & (np.diff(c) <= NEIGHBOUR_STEPS * chi_step)
    # The wrap at ±π joins the first and last azimuths of a ring (of two points or more).
    new_ring = r[1:] != r[:-1]
    first, last = np.nonzero(np.r_[True, new_ring])[0], np.nonzero(np.r_[new_ring, True])[0]
    wrap = (first != last) & (c[first] + 2 * np.pi - c[last] <= NEIGHBOUR_STEPS * chi_step)
    diff = np.r_[np.diff(e)[pair], (e[first] - e[last])[wrap]]
    if diff.size < min_pairs:
        return Misfit(rms, float("nan"), float("nan"), int(diff.size))
    scatter = float(np.sqrt(np.mean(diff ** 2) / 2))
    return Misfit(rms, scatter, float(np.sqrt(max(rms ** 2 - scatter ** 2, 0.0))), int(diff.size))


def ring_offset_px(ring: np.ndarray, residual_px: np.ndarray, scatter_px: float) -> float:
    """Rms offset of whole rings beyond their points' scatter: τ of the model
    r_i = (geometry) + δ_ring(i) + ε_i with independent ring offsets δ of variance τ².

    A ring whose peaks are all measured a little off (a neighbour's flank, a beamstop's edge
    under a broad ring, correlated grains) moves every point of it alike, so its thousands of
    points do not average the offset away; a few such rings pull the distance by many times
    the 1σ of independent points. With m_k the mean residual of ring k's n_k points (N in
    all, K rings) and σ the points' scatter, the between-ring sum of squares has expectation
    E[Σ n_k m_k²] = (K − 1) σ² + (N − Σ n_k² / N) τ², one ring mean's worth taken out by the
    distance as by a grand mean (the analysis-of-variance estimator of the unbalanced one-way
    random-effects model: Searle, Casella & McCulloch, *Variance Components*, Wiley, New
    York, 1992). Rings of few points weigh little, as in the fit. With a few rings that
    estimate is noisy enough to widen the 1σ of a fit without offsets two or three times: τ
    is taken as 0 unless the ring means scatter beyond the points' noise at the
    `OFFSET_LEVEL` significance of the F test (Σ n_k m_k² / ((K − 1) σ²), χ²_{K−1}/(K−1)
    without offsets).

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
        Each point's ring.
    residual_px : ndarray, shape (n,)
        Each point's radial residual, pixels (the inliers of a fit).
    scatter_px : float
        The points' own scatter (`Misfit.scatter_px`); NaN: their scatter about their ring's
        mean.

    Returns
    -------
    float
        τ, pixels; 0 with fewer than two rings or no offset beyond the scatter.
    """
    _, inv, n = np.unique(np.asarray(ring), return_inverse=True, return_counts=True)
    total = n.sum()
    spread = total - np.sum(n.astype(float) ** 2) / max(total, 1)
    if n.size < 2 or spread <= 0:
        return 0.0
    res = np.asarray(residual_px, float)
    mean = np.bincount(inv, res) / n
    between = float(np.sum(n * mean ** 2))
    if np.isfinite(scatter_px):
        var = scatter_px ** 2
    else:
        var = float(np.sum((res - mean[inv]) ** 2)) / max(total - n.size, 1)
    dof = n.size - 1
    if not between > chdtri(dof, OFFSET_LEVEL) * var:
        return 0.0
    return float(np.sqrt(max((between - dof * var) / spread, 0.0)))


def ring_offset_trend(ring: np.ndarray, tth: np.ndarray, residual_px: np.ndarray) -> float:
    """Share of the spread of the rings' mean residuals that a quadratic in 2θ explains.

    Offsets of whole rings from a profile's skew, a neighbour's tail or a blend differ from
    ring to ring; radii that do not follow the calibrant's d-spacings under the fitted
    geometry (a series assigned one order off, wrong d-spacings) leave a smooth trend across
    2θ that the geometry could not absorb: AgBh fitted one order off its reflections left its
    twelve rings' means on a parabola (share 0.79); a vanadinite comb's blends under a Kα
    doublet, 0.32 px off as wholes too, scattered about one (0.18, about the 2/(K − 1) of
    offsets without a trend).

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
        Each point's ring.
    tth : ndarray, shape (n,)
        Each point's ring 2θ, radians.
    residual_px : ndarray, shape (n,)
        Radial residuals, pixels (the inliers of a fit).

    Returns
    -------
    float
        Between 0 and 1, weighted by the rings' points; 0 with fewer than five rings.
    """
    rings, inv, n = np.unique(ring, return_inverse=True, return_counts=True)
    if rings.size < 5:
        return 0.0
    mean = np.bincount(inv, np.asarray(residual_px, float)) / n
    x = np.bincount(inv, np.asarray(tth, float)) / n
    x = (x - x.mean()) / max(float(np.ptp(x)), 1e-12)
    w = np.sqrt(n)
    design = np.stack([np.ones_like(x), x, x * x], 1)
    coef = np.linalg.lstsq(design * w[:, None], mean * w, rcond=None)[0]
    total = float(np.sum(n * (mean - np.average(mean, weights=n)) ** 2))
    if not total > 0:
        return 0.0
    return float(np.clip(1.0 - np.sum(n * (mean - design @ coef) ** 2) / total, 0.0, 1.0))


@dataclass(frozen=True)
class RingJump:
    """The ring whose mean residual departs most from the line through its neighbours'.

    Attributes
    ----------
    ring : int
        The ring (index into the calibrant's reflections).
    neighbours : tuple of int
        The rings on either side in 2θ whose means define the line.
    mean_px : float
        The ring's mean radial residual, pixels.
    departure_px : float
        Its mean minus the line's value at its 2θ, pixels.
    """

    ring: int
    neighbours: tuple[int, int]
    mean_px: float
    departure_px: float


def ring_mean_jump(ring: np.ndarray, tth: np.ndarray, residual_px: np.ndarray,
                   min_points: int = JUMP_MIN_POINTS) -> RingJump | None:
    """The largest departure of a ring's mean residual from its neighbours' trend.

    A right geometry leaves each ring's mean radial residual near zero, or, where the model
    lacks something (a radial distortion, a non-planar detector), on a trend that varies
    smoothly with 2θ. Points that belong to other rings (a wrong assignment that a dense
    calibrant lets fit within a pixel) shift one ring's mean against its neighbours'. Each
    ring with two judged neighbours is compared with the straight line in 2θ through their
    means (a second difference).

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
        Each point's ring.
    tth : ndarray, shape (n,)
        Each point's ring's 2θ, radians (the same for all points of a ring).
    residual_px : ndarray, shape (n,)
        Each point's radial residual, pixels (the inliers of a fit).
    min_points : int
        Rings with fewer points are left out.

    Returns
    -------
    RingJump or None
        None with fewer than three rings of `min_points` points.
    """
    ks, first, inv, n = np.unique(np.asarray(ring), return_index=True, return_inverse=True,
                                  return_counts=True)
    mean = np.bincount(inv, np.asarray(residual_px, float)) / n
    keep = n >= min_points
    ks, t, m = ks[keep], np.asarray(tth, float)[first][keep], mean[keep]
    if ks.size < 3:
        return None
    order = np.argsort(t)
    ks, t, m = ks[order], t[order], m[order]
    f = (t[1:-1] - t[:-2]) / np.maximum(t[2:] - t[:-2], 1e-12)
    dep = m[1:-1] - (m[:-2] + f * (m[2:] - m[:-2]))
    i = int(np.argmax(np.abs(dep)))
    return RingJump(int(ks[i + 1]), (int(ks[i]), int(ks[i + 2])), float(m[i + 1]), float(dep[i]))


def misfit_warning(m: Misfit, cause: str) -> str | None:
    """The warning for a misfit beyond `WARN_RATIO` × the scatter and `WARN_PX`, or None.

    Parameters
    ----------
    m : Misfit
    cause : str
        What the model cannot describe and what it means for the 1σ, for the user.
    """
    if not m.misfit_px > max(WARN_RATIO * m.scatter_px, WARN_PX):
        return None
    return (f"{WARNING_START} {m.misfit_px:.2f} px rms that varies slowly with the azimuth, "
            f"beyond the points' own scatter ({m.scatter_px:.2f} px): {cause}")
