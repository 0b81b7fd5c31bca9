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
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of
from geocal_cli.core.rings.refine import (PARAM_SCALES, Refinement, ring_tth_derivative,
                                          tth_jacobian)

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


def widen_for_clusters(refinement: Refinement, geometry, d1: np.ndarray, d2: np.ndarray,
                       d_spacing: np.ndarray, cluster: np.ndarray) -> tuple[Refinement, float | None]:
    """The refinement with a covariance that allows for errors shared within clusters.

    The cluster-robust covariance C_c of the fit (its own weights, its inliers) is compared
    with the refinement's C: the covariance kept is C + [C_c − C]₊, the positive part of the
    difference (its negative eigenvalues set to zero). It is at least C and at least C_c in
    every direction of the parameters, so every derived quantity (the beam centre, by
    `refine.propagate`) is at least as uncertain as either says; a fit whose points are
    independent keeps its 1σ within the estimate's noise.

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

    Returns
    -------
    Refinement
        With the widened `sigma` and `correlation` (the same object when it is not judged).
    float or None
        The largest factor by which a parameter's 1σ grew (1.0: none); None when the points
        fill too few cells (`MIN_CELLS_PER_PARAM`) or a parameter is undetermined.
    """
    inl = refinement.inliers
    free = refinement.free
    cells, group = np.unique(np.asarray(cluster)[inl], return_inverse=True)
    n, p = int(inl.sum()), len(free)
    scale = np.array([PARAM_SCALES[k] for k in free])
    sigma = np.array([refinement.sigma[k] for k in free]) / scale
    if cells.size < MIN_CELLS_PER_PARAM * p or n <= p or not np.all(np.isfinite(sigma)):
        return refinement, None
    values = refinement.values
    p6 = [values[k] for k in PARAM_NAMES]
    a1, a2 = np.asarray(d1, float)[inl], np.asarray(d2, float)[inl]
    jac = tth_jacobian(geometry, p6, a1, a2, free, scale)
    if "wavelength" in free:
        jac[:, free.index("wavelength")] = (-ring_tth_derivative(
            values["wavelength"], np.asarray(d_spacing, float)[inl]) * PARAM_SCALES["wavelength"])
    w = np.ones(n) if refinement.weights is None else refinement.weights[inl]
    # The residuals and their Jacobian as the fit weighed them, in pixels.
    jac *= (w / frame_of(geometry, p6).tth_gradient(a1, a2))[:, None]
    res = refinement.residual_px[inl] * w
    try:
        bread = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return refinement, None
    scores = np.zeros((cells.size, p))
    np.add.at(scores, group, jac * res[:, None])
    g = cells.size
    clustered = bread @ (scores.T @ scores) @ bread * (g / (g - 1) * (n - 1) / (n - p))
    cov = refinement.correlation * np.outer(sigma, sigma)
    lam, vec = np.linalg.eigh(0.5 * ((clustered - cov) + (clustered - cov).T))
    cov = cov + (vec * np.maximum(lam, 0.0)) @ vec.T
    widened = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = cov / np.outer(widened, widened)
    out = replace(refinement, sigma={k: float(s * c) for k, s, c in zip(free, widened, scale)},
                  correlation=correlation)
    return out, float(np.max(widened / sigma))
