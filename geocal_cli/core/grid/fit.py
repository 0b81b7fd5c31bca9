"""The ideal grid behind indexed holes, and the smooth displacement field that maps them to it.

Ideal grid: hole (i, j) sits at y = o_y + u (i sin θ + j cos θ), x = o_x + v (i cos θ − j sin θ)
on a perfect detector, with u, v the pitch in pixels along y and x (pitch / pixel size) and θ
the grid's rotation. For a fixed θ the model is linear in (o_y, u) and (o_x, v) separately, so
the least-squares fit is a one-dimensional search over θ. The fit has exactly the five gauge
freedoms of `geocal_cli.core.geometry.displacement`; the general affine fit is reported beside it for
the skew of the pixel axes.

Field: the displacement d = ideal − measured, known at the measured hole positions, is
interpolated by a thin-plate smoothing spline (Wahba, Spline Models for Observational Data,
SIAM 1990, doi:10.1137/1.9781611970128) whose smoothing is chosen by generalised
cross-validation (Craven & Wahba, Numer. Math. 31 (1979) 377, doi:10.1007/BF01404567), both
components with one smoothing. It is evaluated on a coarse corner grid and carried to every
pixel corner by bicubic interpolation (the field is smooth on the scale of the pitch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.displacement import Field, corner_grid


@dataclass(frozen=True)
class IdealGrid:
    """A perfect square hole grid on a perfect detector.

    Attributes
    ----------
    origin : ndarray, shape (2,)
        (y, x) of hole (0, 0), corner coordinates.
    pitch_px : ndarray, shape (2,)
        Hole spacing in pixels along y and along x (pitch / pixel size).
    angle : float
        Rotation of the grid's i axis from +x towards +y, radians.
    """

    origin: np.ndarray
    pitch_px: np.ndarray
    angle: float

    def positions(self, ij: np.ndarray) -> np.ndarray:
        """Ideal (y, x) of holes, shape (n, 2), from their indices, shape (n, 2)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        i, j = ij[:, 0], ij[:, 1]
        return np.stack([self.origin[0] + self.pitch_px[0] * (i * s + j * c),
                         self.origin[1] + self.pitch_px[1] * (i * c - j * s)], 1)


def fit_ideal_grid(ij: np.ndarray, yx: np.ndarray) -> IdealGrid:
    """Least-squares ideal grid for indexed holes.

    Parameters
    ----------
    ij : ndarray of int, shape (n, 2)
    yx : ndarray, shape (n, 2)
        Measured positions, pixels.

    Returns
    -------
    IdealGrid
    """
    from scipy.optimize import minimize_scalar

    i, j = ij[:, 0].astype(float), ij[:, 1].astype(float)

    def solve(theta):
        c, s = np.cos(theta), np.sin(theta)
        out, rss = [], 0.0
        for col, basis in ((0, i * s + j * c), (1, i * c - j * s)):
            A = np.stack([np.ones_like(basis), basis], 1)
            coef = np.linalg.lstsq(A, yx[:, col], rcond=None)[0]
            out.append(coef)
            rss += float(np.sum((A @ coef - yx[:, col]) ** 2))
        return out, rss

    aff = affine_fit(ij, yx)
    theta0 = np.arctan2(aff[0, 0], aff[1, 0])     # direction of the i axis (dy, dx)
    best = minimize_scalar(lambda t: solve(t)[1], bounds=(theta0 - 0.05, theta0 + 0.05),
                           method="bounded", options={"xatol": 1e-10})
    (oy, u), (ox, v) = solve(best.x)[0]
    return IdealGrid(origin=np.array([oy, ox]), pitch_px=np.array([u, v]), angle=float(best.x))


def affine_fit(ij: np.ndarray, yx: np.ndarray) -> np.ndarray:
    """General affine lattice yx ≈ o + M (i, j).

    Returns
    -------
    ndarray, shape (2, 3)
        Columns: the i-step (dy, dx), the j-step and the origin.
    """
    A = np.column_stack([ij.astype(float), np.ones(ij.shape[0])])
    return np.linalg.lstsq(A, yx, rcond=None)[0].T


def skew_deg(ij: np.ndarray, yx: np.ndarray, pitch_px: np.ndarray) -> float:
    """Deviation from 90° of the angle between the grid's axes on the detector, degrees,
    with the pixels scaled to physical units (the pixel axes' shear)."""
    m = affine_fit(ij, yx)
    a = m[:, 0] / pitch_px
    b = m[:, 1] / pitch_px
    cosang = np.dot(a, b) / (np.hypot(*a) * np.hypot(*b))
    return float(90.0 - np.degrees(np.arccos(cosang)))


@dataclass(frozen=True)
class SmoothingSpline:
    """A fitted thin-plate smoothing spline for a 2-component field.

    Attributes
    ----------
    centres : ndarray, shape (n, 2)
        Data sites, scaled coordinates.
    weights : ndarray, shape (n, 2)
    poly : ndarray, shape (3, 2)
        Coefficients of 1, y, x.
    scale : float
        Pixels per scaled unit.
    smoothing : float
        The GCV-chosen λ (scaled units).
    residual : ndarray, shape (n, 2)
        Data minus fit at the sites, pixels.
    """

    centres: np.ndarray
    weights: np.ndarray
    poly: np.ndarray
    scale: float
    smoothing: float
    residual: np.ndarray

    def __call__(self, y: np.ndarray, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """The field at points (y, x) in pixels; shape (m, 2) for (dy, dx)."""
        pts = np.stack([np.ravel(y), np.ravel(x)], 1) / self.scale
        out = np.empty((pts.shape[0], 2))
        for k in range(0, pts.shape[0], chunk):
            p = pts[k:k + chunk]
            out[k:k + chunk] = _tps_kernel(p, self.centres) @ self.weights + \
                np.column_stack([np.ones(len(p)), p]) @ self.poly
        return out


def _tps_kernel(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """r² log r between two point sets, shape (len(p), len(q))."""
    d2 = (p[:, 0, None] - q[None, :, 0]) ** 2 + (p[:, 1, None] - q[None, :, 1]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 0.5 * d2 * np.log(d2)
    return np.nan_to_num(k, nan=0.0)


def fit_smoothing_spline(yx: np.ndarray, values: np.ndarray, scale: float,
                         max_gcv_sites: int = 1500, seed: int = 0) -> SmoothingSpline:
    """Thin-plate smoothing spline through 2-component data, smoothing by GCV.

    Parameters
    ----------
    yx : ndarray, shape (n, 2)
        Data sites, pixels (n ≥ 4).
    values : ndarray, shape (n, 2)
        (dy, dx) at the sites, pixels.
    scale : float
        Length that maps the sites to about unit range (conditioning).
    max_gcv_sites : int
        λ is chosen on a seeded random subset of this many sites when there are more (the
        eigen-decomposition is O(n³)); the final fit uses all of them.
    seed : int

    Returns
    -------
    SmoothingSpline
    """
    pts = yx / scale
    n = pts.shape[0]
    sub = np.arange(n)
    if n > max_gcv_sites:
        sub = np.sort(np.random.default_rng(seed).choice(n, max_gcv_sites, replace=False))
    lam = _gcv_lambda(pts[sub], values[sub])
    K = _tps_kernel(pts, pts)
    P = np.column_stack([np.ones(n), pts])
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = K + n * lam * np.eye(n)
    system[:n, n:] = P
    system[n:, :n] = P.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = values
    sol = np.linalg.solve(system, rhs)
    w, c = sol[:n], sol[n:]
    return SmoothingSpline(centres=pts, weights=w, poly=c, scale=scale, smoothing=lam,
                           residual=values - (K @ w + P @ c))


def _gcv_lambda(pts: np.ndarray, values: np.ndarray) -> float:
    """The λ minimising the GCV score n‖(I − A)f‖² / tr(I − A)², both components summed.

    With P = [1, y, x] = Q₁R and Q₂ the complement, I − A(λ) = nλ Q₂ (Q₂ᵀKQ₂ + nλ)⁻¹ Q₂ᵀ;
    one eigen-decomposition of Q₂ᵀKQ₂ gives the score for every λ.
    """
    n = pts.shape[0]
    K = _tps_kernel(pts, pts)
    P = np.column_stack([np.ones(n), pts])
    Q, _ = np.linalg.qr(P, mode="complete")
    Q2 = Q[:, 3:]
    e, U = np.linalg.eigh(Q2.T @ K @ Q2)
    z = U.T @ (Q2.T @ values)                                           # (n − 3, 2)
    z2 = np.sum(z**2, axis=1)
    scale_e = np.median(np.abs(e)) or 1.0
    lam = np.logspace(-10, 3, 261) * scale_e / n
    f = n * lam[:, None] / (e[None, :] + n * lam[:, None])              # (λ, n − 3)
    score = n * np.sum(f**2 * z2, axis=1) / np.sum(f, axis=1) ** 2
    return float(lam[np.argmin(score)])


def evaluate_on_corners(spline: SmoothingSpline, shape: tuple[int, int], step: int) -> Field:
    """The spline at every pixel corner: exactly on a coarse corner grid every `step`
    pixels, bicubic in between.

    Returns
    -------
    Field
    """
    from scipy.interpolate import RectBivariateSpline

    gy, gx = corner_grid(shape, step)
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    v = spline(yy, xx).reshape(yy.shape + (2,))
    fy, fx = corner_grid(shape)
    return Field(dy=RectBivariateSpline(gy, gx, v[..., 0])(fy, fx),
                 dx=RectBivariateSpline(gy, gx, v[..., 1])(fy, fx))


def hull_mask(yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the convex hull of points.

    Parameters
    ----------
    yx : ndarray, shape (n, 2)
        Points, corner coordinates (n ≥ 3, not collinear).
    shape : (H, W)

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    from scipy.spatial import ConvexHull

    hull = ConvexHull(yx[:, ::-1])                      # (x, y): counter-clockwise vertices
    vx, vy = hull.points[hull.vertices].T
    cy = np.arange(shape[0]) + 0.5
    lo = np.full(shape[0], -np.inf)
    hi = np.full(shape[0], np.inf)
    # Each edge is a half-plane; on a row it bounds x from one side.
    x0, y0 = vx, vy
    x1, y1 = np.roll(vx, -1), np.roll(vy, -1)
    ex, ey = x1 - x0, y1 - y0
    # Inside (left of a counter-clockwise edge): ex (y − y0) − ey (x − x0) ≥ 0.
    for k in range(vx.size):
        # A loop over hull edges (tens), each a vector operation over the rows.
        rhs = ex[k] * (cy - y0[k])
        if ey[k] > 0:
            hi = np.minimum(hi, x0[k] + rhs / ey[k])
        elif ey[k] < 0:
            lo = np.maximum(lo, x0[k] + rhs / ey[k])
        else:
            inside_row = rhs >= 0
            lo = np.where(inside_row, lo, np.inf)
    cx = np.arange(shape[1]) + 0.5
    return (cx[None, :] >= lo[:, None]) & (cx[None, :] <= hi[:, None])
