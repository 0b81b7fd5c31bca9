"""1σ of a ring fit whose residuals are correlated over the detector.

The refinement's covariance, s² (JᵀJ)⁻¹, holds when the control points' errors are
independent. A detector distortion, a non-planar detector or a projector lens displaces
neighbouring points alike, and thousands of points then fix the geometry far less sharply
than that formula says: LaB6 seen through a smooth random 0.3 px displacement field (1024²
pixels, correlation length 200 px) was fitted with a beam-centre 1σ of 0.011 px, 0.11 px
from the truth (10σ).

The cluster-robust ("sandwich") covariance lets errors correlate freely within clusters and
assumes them independent only between clusters (Liang & Zeger, Biometrika 73, 13 (1986),
doi:10.1093/biomet/73.1.13; with the small-sample factor CR1 of Cameron & Miller,
J. Human Resources 50, 317 (2015), doi:10.3368/jhr.50.2.317):
cov = (JᵀJ)⁻¹ (Σ_g J_gᵀ r_g r_gᵀ J_g) (JᵀJ)⁻¹ · G/(G − 1) · (n − 1)/(n − p).
The clusters are square cells of the detector, `CELLS_PER_SIDE` along its larger side, so
that partial rings (a beam off the detector) and every ring through a distorted region share
them. On the field above, the beam centre's error over eight seeds was at most 3.2 times this
1σ (10 times the independent points' 1σ); without a field both agree. A distortion at the
scale of the whole detector stays out of reach: a uniform displacement is a beam centre, and
no single image tells them apart (`grid-distortion` measures it).

Whole rings measured a little off (a neighbour's flank or a beamstop's edge under a broad
ring, grains shared by a ring's points) are errors shared within a ring, which cells do not
catch where the rings are few and small: three rings of a broad-lined lamellar calibrant
within 120 px of the beam, 0.07 px rms off as wholes, held a 340 mm distance 0.13 mm from
the truth, 8 times its 1σ. Such offsets, independent between rings with an rms τ
(`misfit.ring_offset_px`), add (JᵀJ)⁻¹ (Σ_k τ² s_k s_kᵀ) (JᵀJ)⁻¹ to the covariance, s_k the
sum of ring k's rows of the weighted Jacobian times their weights: the covariance of the
estimate under the one-way random-effects model.

A shift of every point along its radius by ε_i, one sign for all (the skew of the rings'
profiles, `skew.profile_skew_px`), moves the optimum by Δ = (JᵀJ)⁻¹ Jᵀ (w ε), which no
residual shows; Δ Δᵀ is added to the covariance as the 1σ of that systematic error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of
from geocal_cli.core.rings.refine import (PARAM_SCALES, Refinement, covariance_matrix,
                                          residual_jacobian, with_covariance)

#: Cells along the detector's larger side: a 1024² image gets cells of 171 px, the 256² Au
#: electron pattern of 43 px. Smaller cells leave more of a correlated misfit between them
#: (the beam-centre error above was up to 4.3σ with 12 per side).
CELLS_PER_SIDE = 6
#: Fewer occupied cells than this many per free parameter leave the covariance as it is:
#: the estimate's relative spread goes as √(2/G), and below p cells it is singular.
MIN_CELLS_PER_PARAM = 4


def cell_index(d1: np.ndarray, d2: np.ndarray, shape: tuple[int, int],
               per_side: int = CELLS_PER_SIDE) -> np.ndarray:
    """Index of the square detector cell of each point.

    Parameters
    ----------
    d1, d2 : ndarray, shape (n,)
        Pixel indices (row, column).
    shape : (int, int)
        Image shape.
    per_side : int
        Cells along the larger side.

    Returns
    -------
    ndarray of int, shape (n,)
    """
    size = max(shape) / per_side
    cols = int(np.ceil(shape[1] / size)) + 1
    return (np.floor(np.asarray(d1) / size).astype(int) * cols
            + np.floor(np.asarray(d2) / size).astype(int))


def clustered_covariance(jac: np.ndarray, res: np.ndarray,
                         cluster: np.ndarray) -> np.ndarray | None:
    """Cluster-robust covariance of a least-squares optimum (the module docstring's formula).

    Parameters
    ----------
    jac : ndarray, shape (n, p)
        Jacobian of the residuals at the optimum, as the fit weighed them.
    res : ndarray, shape (n,)
        The residuals, weighed alike.
    cluster : ndarray of int, shape (n,)
        Each residual's cluster (`cell_index`).

    Returns
    -------
    ndarray, shape (p, p), or None
        In the units of `jac`'s columns; None with fewer than `MIN_CELLS_PER_PARAM` clusters
        per parameter (or no more residuals than parameters, or a singular Jacobian).
    """
    n, p = jac.shape
    cells, group = np.unique(cluster, return_inverse=True)
    g = cells.size
    if g < MIN_CELLS_PER_PARAM * p or n <= p:
        return None
    try:
        bread = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    scores = np.zeros((g, p))
    np.add.at(scores, group, jac * res[:, None])
    return bread @ (scores.T @ scores) @ bread * (g / (g - 1) * (n - 1) / (n - p))


def at_least(cov: np.ndarray, other: np.ndarray) -> np.ndarray:
    """cov + [other − cov]₊: the difference's negative eigenvalues set to zero, so that the
    result is at least either covariance in every direction (shape (p, p) both). A `cov` or
    `other` that is not finite everywhere (an undetermined parameter) returns `cov`."""
    diff = other - cov
    if not np.all(np.isfinite(diff)):
        return cov
    lam, vec = np.linalg.eigh(0.5 * (diff + diff.T))
    return cov + (vec * np.maximum(lam, 0.0)) @ vec.T


def ring_offset_covariance(jac: np.ndarray, weights: np.ndarray, ring: np.ndarray,
                           offset_px: float) -> np.ndarray | None:
    """Covariance that independent offsets of whole rings, rms `offset_px`, add to a
    least-squares optimum (the module docstring's formula).

    Parameters
    ----------
    jac : ndarray, shape (n, p)
        Jacobian of the weighted residuals at the optimum.
    weights : ndarray, shape (n,)
        The fit's weight of each residual (a ring offset δ moves a weighted residual by w δ).
    ring : ndarray of int, shape (n,)
        Each residual's ring.
    offset_px : float
        τ, pixels.

    Returns
    -------
    ndarray, shape (p, p), or None
        In the units of `jac`'s columns; None for a singular Jacobian.
    """
    try:
        bread = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    _, group = np.unique(ring, return_inverse=True)
    sums = np.zeros((group.max() + 1, jac.shape[1]))
    np.add.at(sums, group, jac * weights[:, None])
    return offset_px ** 2 * bread @ (sums.T @ sums) @ bread


def common_shift_covariance(jac: np.ndarray, weights: np.ndarray,
                            shift_px: np.ndarray) -> np.ndarray | None:
    """Covariance Δ Δᵀ of the move Δ that shifting every point along its radius by
    `shift_px` causes at a least-squares optimum (the module docstring's formula).

    Parameters
    ----------
    jac : ndarray, shape (n, p)
        Jacobian of the weighted residuals at the optimum.
    weights : ndarray, shape (n,)
        The fit's weight of each residual.
    shift_px : ndarray, shape (n,)
        Each point's shift, pixels.

    Returns
    -------
    ndarray, shape (p, p), or None
        In the units of `jac`'s columns; None for a singular Jacobian.
    """
    try:
        delta = np.linalg.solve(jac.T @ jac, jac.T @ (weights * shift_px))
    except np.linalg.LinAlgError:
        return None
    return np.outer(delta, delta)


@dataclass(frozen=True)
class Widening:
    """How much `widen_for_clusters` widened a fit's 1σ, per cause.

    Attributes
    ----------
    cells : float or None
        The largest factor by which the cluster-robust covariance widened a parameter's 1σ
        (1.0: none); None when the points fill too few cells (`MIN_CELLS_PER_PARAM`).
    rings : float
        The largest factor by which the rings' own offsets widened one (1.0: none).
    offset_px : float
        Those offsets' rms τ, pixels.
    skew : float
        The largest factor by which the skew of the rings' profiles widened one (1.0: none).
    skew_px : float
        The largest shift that skew allows a point, pixels (0: not allowed for).
    """

    cells: float | None
    rings: float
    offset_px: float
    skew: float = 1.0
    skew_px: float = 0.0


def widen_for_clusters(refinement: Refinement, geometry, d1: np.ndarray, d2: np.ndarray,
                       d_spacing: np.ndarray, cluster: np.ndarray, ring: np.ndarray | None = None,
                       offset_px: float = 0.0, skew_px: np.ndarray | None = None
                       ) -> tuple[Refinement, Widening | None]:
    """The refinement with a covariance that allows for errors shared within clusters and,
    given `ring` and `offset_px`, within rings, and given `skew_px`, for a shift of all the
    points along their radius.

    The refinement's C plus the rings' term (`ring_offset_covariance`) and the shift's
    (`common_shift_covariance`) is widened to the cluster-robust covariance C_c of the fit
    (`clustered_covariance`, with the fit's own weights on its inliers) by `at_least`: every
    derived quantity (the beam centre, by `refine.propagate`) is then at least as uncertain
    as either says. A fit whose points are independent keeps its 1σ within the estimate's
    noise.

    Parameters
    ----------
    refinement : Refinement
    geometry : pyFAI.geometry.Geometry
        Supplies the detector.
    d1, d2 : ndarray, shape (n,)
        The points the refinement was fitted on (all of them; its `inliers` select).
    d_spacing : ndarray, shape (n,)
        Each point's ring d-spacing, metres.
    cluster : ndarray of int, shape (n,)
        Each point's cluster (`cell_index`).
    ring : ndarray of int, shape (n,), optional
        Each point's ring.
    offset_px : float
        The rings' rms offset τ (`misfit.ring_offset_px`), pixels.
    skew_px : ndarray, shape (n,), optional
        How far the skew of its ring's profile may shift each point along its radius
        (`skew.profile_skew_px`), pixels.

    Returns
    -------
    Refinement
        With the widened `sigma` and `correlation` (the same object when nothing widened).
    Widening or None
        None when a parameter is undetermined.
    """
    inl = refinement.inliers
    free = refinement.free
    scale = np.array([PARAM_SCALES[k] for k in free])
    sigma = np.array([refinement.sigma[k] for k in free]) / scale
    if not np.all(np.isfinite(sigma)):
        return refinement, None
    values = refinement.values
    a1, a2 = np.asarray(d1, float)[inl], np.asarray(d2, float)[inl]
    w = np.ones(a1.size) if refinement.weights is None else refinement.weights[inl]
    # The residuals and their Jacobian as the fit weighed them, in pixels.
    grad = frame_of(geometry, [values[k] for k in PARAM_NAMES]).tth_gradient(a1, a2)
    jac = residual_jacobian(geometry, values, a1, a2, np.asarray(d_spacing, float)[inl], free,
                            w / grad)
    base = covariance_matrix(refinement, scale)
    cov = base
    if ring is not None and offset_px > 0:
        extra = ring_offset_covariance(jac, w, np.asarray(ring)[inl], offset_px)
        cov = base if extra is None else base + extra
    rings = float(np.max(np.sqrt(np.diag(cov)) / sigma))
    skew, largest = 1.0, 0.0
    if skew_px is not None:
        shift = np.asarray(skew_px, float)[inl]
        extra = common_shift_covariance(jac, w, shift) if shift.size else None
        if extra is not None:
            largest = float(shift.max())
            skew = float(np.max(np.sqrt(np.diag(base + extra)) / sigma))
            cov = cov + extra
    robust = clustered_covariance(jac, refinement.residual_px[inl] * w,
                                  np.asarray(cluster)[inl])
    cells = None
    if robust is not None:
        cells = float(np.max(np.sqrt(np.diag(at_least(base, robust))) / sigma))
        cov = at_least(cov, robust)
    widening = Widening(cells, rings, offset_px, skew, largest)
    if cov is base:
        return refinement, widening
    return with_covariance(refinement, cov, scale), widening
