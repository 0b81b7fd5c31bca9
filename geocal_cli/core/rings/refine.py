"""Least-squares refinement of a pyFAI geometry on control points, with 1σ uncertainties.

The model is pyFAI's: the residual of a point is 2θ(d1, d2; dist, poni1, poni2, rot1, rot2,
rot3) − 2θ_ring(λ), as in pyFAI's `GeometryRefinement.residu3`, here divided by the local
|∇2θ| so that residuals and tolerances are in pixels. scipy's trust-region least squares
(soft-L1 loss, then plain least squares on the inliers) replaces pyFAI's SLSQP so that the
Jacobian at the optimum gives the covariance: cov = s² (JᵀJ)⁻¹ with s² the reduced χ².
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of

#: Parameter scales for conditioning (m, m, m, rad, rad, rad, m): the units of the scaled
#: Jacobian columns (`tth_jacobian`).
PARAM_SCALES = {"dist": 1e-3, "poni1": 1e-4, "poni2": 1e-4, "rot1": 1e-3, "rot2": 1e-3,
                "rot3": 1e-3, "wavelength": 1e-13}
ALL_PARAMS = PARAM_NAMES + ("wavelength",)
#: Shortest distance (pyFAI's dist, signed: a detector faces the sample) a fit may end at,
#: pixels. As the distance goes to 0 every arc's 2θ goes to 90° and its 2θ gradient per
#: pixel grows without bound, so the arcs' residuals in pixels of that geometry vanish: a
#: 256² electron pattern's 7 arcs "fitted" at 10⁻⁹ px with 0.006 px of cost, all one ring.
#: No detector sits within 10 pixels of the sample (a ring 100 px out would lie at 84°).
MIN_DIST_PX = 10.0


@dataclass(frozen=True)
class Refinement:
    """Outcome of a refinement.

    Attributes
    ----------
    values : dict[str, float]
        All seven parameters (m, rad, wavelength in m), fixed ones included.
    sigma : dict[str, float]
        1σ of the free parameters (same units); fixed ones are absent.
    correlation : ndarray, shape (p, p)
        Correlation matrix of the free parameters in `free` order.
    free : tuple of str
    residual_px : ndarray, shape (n,)
        Signed residual of every input point along the radius, pixels.
    residual_tth : ndarray, shape (n,)
        Signed 2θ residual, radians.
    inliers : ndarray of bool, shape (n,)
        Points kept by the outlier rejection.
    condition : float
        Condition number of the scaled Jacobian (large: parameters not separable).
    weights : ndarray, shape (n,) or None
        The inverse 1σ (pixels⁻¹) each point was fitted with; None: all 1.
    """

    values: dict
    sigma: dict
    correlation: np.ndarray
    free: tuple
    residual_px: np.ndarray
    residual_tth: np.ndarray
    inliers: np.ndarray
    condition: float
    weights: np.ndarray | None = None


def covariance_matrix(refinement: Refinement, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """The free parameters' covariance, shape (p, p) in `refinement.free` order, each
    parameter divided by its `scale` (shape (p,) or a float)."""
    sigma = np.array([refinement.sigma[k] for k in refinement.free]) / scale
    return refinement.correlation * np.outer(sigma, sigma)


def with_covariance(refinement: Refinement, cov: np.ndarray,
                    scale: np.ndarray | float = 1.0) -> Refinement:
    """`refinement` with the 1σ and correlation of `cov` (shape (p, p), each parameter in
    units of its `scale`, as `covariance_matrix` gives it)."""
    sigma = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = cov / np.outer(sigma, sigma)
    scale = np.broadcast_to(np.asarray(scale, float), sigma.shape)
    return replace(refinement, sigma={k: float(s * c) for k, s, c in
                                      zip(refinement.free, sigma, scale)},
                   correlation=correlation)


def _tth_model(geometry, p6, d1, d2):
    return frame_of(geometry, p6).tth(d1, d2)


def tth_jacobian(geometry, p6, d1, d2, names, scale) -> np.ndarray:
    """∂2θ/∂(scaled parameter) at every point, shape (n, len(names)); a "wavelength" column
    is left zero (see `ring_tth_derivative`).

    Positions are affine in the frame vectors (origin, e1, e2), so the frame is
    differentiated by central differences on its three defining pixels and the chain rule
    does the rest: exact to the difference step, for the cost of two frames per parameter.
    The chain rule runs as one (n, 3) × (3, 3p) product: ∇_x 2θ against the derivatives of
    origin, e1 and e2, then weighted by 1, d1 and d2.
    """
    x, y, z = frame_of(geometry, p6).xyz(d1, d2)
    rho2 = x * x + y * y
    rho = np.sqrt(rho2) + 1e-300
    r2 = rho2 + z * z
    dt = np.stack([x * z / (rho * r2), y * z / (rho * r2), -rho / r2], -1)   # (n, 3)
    cols = [j for j, name in enumerate(names) if name != "wavelength"]
    # Derivatives of (origin, e1, e2) per scaled parameter: shape (3 components, 3, p).
    dframe = np.empty((3, 3, len(cols)))
    for c, j in enumerate(cols):
        h = scale[j] * 1e-2
        i = PARAM_NAMES.index(names[j])
        hi = np.array(p6, float)
        lo = np.array(p6, float)
        hi[i] += h
        lo[i] -= h
        fa = frame_of(geometry, hi)
        fb = frame_of(geometry, lo)
        for k, attr in enumerate(("origin", "e1", "e2")):
            dframe[:, k, c] = (getattr(fa, attr) - getattr(fb, attr)) * (scale[j] / (2 * h))
    a = (dt @ dframe.reshape(3, -1)).reshape(-1, 3, len(cols))
    out = np.zeros((d1.size, len(names)))
    out[:, cols] = a[:, 0] + d1[:, None] * a[:, 1] + d2[:, None] * a[:, 2]
    return out


def ring_tth_derivative(wavelength: float, d_spacing: np.ndarray) -> np.ndarray:
    """∂2θ_ring/∂λ (rad/m) of Bragg's law 2θ = 2 arcsin(λ / 2d), shape of `d_spacing`."""
    u = wavelength / (2 * d_spacing)
    return 1 / (d_spacing * np.sqrt(np.clip(1 - u * u, 1e-12, None)))


def residual_jacobian(geometry, values: dict, d1, d2, d_spacing, free: tuple,
                      row_scale: np.ndarray) -> np.ndarray:
    """∂(2θ − 2θ_ring)/∂(scaled parameter) at every point, each row times `row_scale`: the
    Jacobian of the residuals a fit minimises (`refine_geometry`: its weights over |∇2θ|,
    residuals in weighted pixels).

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
        Supplies the detector.
    values : dict
        The seven parameters (`ALL_PARAMS`).
    d1, d2 : ndarray, shape (n,)
    d_spacing : ndarray, shape (n,)
        Each point's ring d-spacing, metres.
    free : tuple of str
        The columns, in units of `PARAM_SCALES`.
    row_scale : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n, len(free))
    """
    scale = np.array([PARAM_SCALES[p] for p in free])
    j = tth_jacobian(geometry, [values[p] for p in PARAM_NAMES], d1, d2, free, scale)
    if "wavelength" in free:
        j[:, free.index("wavelength")] = (-ring_tth_derivative(values["wavelength"], d_spacing)
                                          * PARAM_SCALES["wavelength"])
    return j * row_scale[:, None]


def covariance(jac: np.ndarray, fun: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """1σ, correlation and condition number of a least-squares optimum.

    cov = s² (JᵀJ)⁻¹ with s² the reduced χ², through the SVD of J so that a singular
    direction shows as infinite σ rather than as a numerical accident.

    Parameters
    ----------
    jac : ndarray, shape (n, p)
        Jacobian of the residuals at the optimum.
    fun : ndarray, shape (n,)
        Residuals at the optimum.

    Returns
    -------
    sigma : ndarray, shape (p,)
        In the units of the columns of `jac` (inf where not determined).
    correlation : ndarray, shape (p, p)
    condition : float
    """
    n, p = jac.shape
    s2 = float(np.sum(fun**2) / max(n - p, 1))
    u, sv, vt = np.linalg.svd(jac, full_matrices=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else np.inf
    with np.errstate(divide="ignore"):
        inv_s2 = np.where(sv > sv[0] * 1e-14, 1 / sv**2, np.inf)
    cov = (vt.T * inv_s2) @ vt * s2 if np.all(np.isfinite(inv_s2)) else np.full((p, p), np.inf)
    sig = np.sqrt(np.abs(np.diag(cov)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    return sig, corr, cond


def refine_geometry(geometry, d1, d2, d_spacing, start: dict, free: tuple, clip: float = 4.0,
                    n_rounds: int = 3, weights=None) -> Refinement:
    """Refine PONI parameters (and optionally the wavelength) on control points.

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
        Supplies the detector; its parameters are not used.
    d1, d2 : ndarray, shape (n,)
        Control-point pixel indices.
    d_spacing : ndarray, shape (n,)
        d-spacing of each point's ring, metres.
    start : dict
        Starting values of all seven parameters (`ALL_PARAMS`).
    free : tuple of str
        Names of the parameters to refine; the others stay at `start`.
    clip : float
        Points beyond `clip` robust σ (and 0.3 px) are rejected before the final round.
    n_rounds : int
        Fit / reject rounds.
    weights : ndarray, shape (n,), optional
        Inverse 1σ of each point (pixels⁻¹), e.g. from the scatter of its ring.

    Returns
    -------
    Refinement

    Raises
    ------
    ValueError
        If there are fewer points than free parameters.
    """
    from scipy.optimize import least_squares

    d1 = np.asarray(d1, float)
    d2 = np.asarray(d2, float)
    dsp = np.asarray(d_spacing, float)
    free = tuple(p for p in ALL_PARAMS if p in free)
    if d1.size <= len(free):
        raise ValueError(f"{d1.size} control points cannot fix {len(free)} parameters")
    values = {k: float(start[k]) for k in ALL_PARAMS}
    scale = np.array([PARAM_SCALES[p] for p in free])

    def unpack(x):
        v = dict(values)
        for name, xi, sc in zip(free, x, scale):
            v[name] = v[name] + xi * sc
        return v

    def tth_ring(lam):
        with np.errstate(invalid="ignore"):
            return 2 * np.arcsin(np.clip(lam / (2 * dsp), -1, 1))

    wts = np.ones(d1.size) if weights is None else np.asarray(weights, float)
    keep = np.ones(d1.size, bool)
    grad = frame_of(geometry, [values[p] for p in PARAM_NAMES]).tth_gradient(d1, d2)
    res = None
    for rnd in range(n_rounds):
        def fun(x, sel=keep):
            v = unpack(x)
            t = _tth_model(geometry, [v[p] for p in PARAM_NAMES], d1[sel], d2[sel])
            return (t - tth_ring(v["wavelength"])[sel]) * (wts[sel] / grad[sel])

        def jac(x, sel=keep):
            return residual_jacobian(geometry, unpack(x), d1[sel], d2[sel], dsp[sel], free,
                                     wts[sel] / grad[sel])

        x0 = np.zeros(len(free))
        loss = "soft_l1" if rnd < n_rounds - 1 else "linear"
        # A consistent problem converges in ~10 evaluations; inconsistent data (a wrong
        # calibrant) would otherwise iterate for long.
        res = least_squares(fun, x0, jac=jac, loss=loss, f_scale=0.5, method="trf", x_scale=1.0,
                            max_nfev=60)
        values = unpack(res.x)
        grad = frame_of(geometry, [values[p] for p in PARAM_NAMES]).tth_gradient(d1, d2)
        t_all = _tth_model(geometry, [values[p] for p in PARAM_NAMES], d1, d2)
        r_all = (t_all - tth_ring(values["wavelength"])) / grad
        if rnd < n_rounds - 1:
            z = r_all * wts
            med = np.median(z[keep])
            mad = 1.4826 * np.median(np.abs(z[keep] - med))
            new_keep = np.abs(z - med) <= max(clip * mad, 0.3 * np.median(wts))
            if new_keep.sum() > len(free):
                keep = new_keep
    sig, corr, cond = covariance(res.jac, res.fun)
    sigma = {name: float(s * sc) for name, s, sc in zip(free, sig, scale)}
    t_all = _tth_model(geometry, [values[p] for p in PARAM_NAMES], d1, d2)
    r_tth = t_all - tth_ring(values["wavelength"])
    return Refinement(values=values, sigma=sigma, correlation=corr, free=free,
                      residual_px=r_tth / grad, residual_tth=r_tth, inliers=keep,
                      condition=cond, weights=None if weights is None else wts)


def propagate(refinement: Refinement, func, step: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Value and covariance of a derived quantity, by first-order error propagation.

    Parameters
    ----------
    refinement : Refinement
    func : callable(dict) -> array_like, shape (q,)
        Maps the seven parameter values to the derived quantity (e.g. the beam centre).
    step : float
        Finite-difference step as a fraction of each parameter's scale.

    Returns
    -------
    value : ndarray, shape (q,)
    cov : ndarray, shape (q, q)
        Inf where the refinement's covariance is not finite.
    """
    base = dict(refinement.values)
    value = np.atleast_1d(np.asarray(func(base), float))
    jac = np.empty((value.size, len(refinement.free)))
    for j, name in enumerate(refinement.free):
        h = PARAM_SCALES[name] * step
        v = dict(base)
        v[name] += h
        jac[:, j] = (np.atleast_1d(np.asarray(func(v), float)) - value) / h
    sig = np.array([refinement.sigma[n] for n in refinement.free])
    cov_p = refinement.correlation * np.outer(sig, sig)
    if not np.all(np.isfinite(cov_p)):
        return value, np.full((value.size, value.size), np.inf)
    return value, jac @ cov_p @ jac.T
