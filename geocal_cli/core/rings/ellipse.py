"""Robust ellipse and circle fitting to 2-D points.

Direct least-squares ellipse fit of Fitzgibbon, Pilu & Fisher (IEEE TPAMI 21 (1999) 476,
doi:10.1109/34.765658) in the numerically stable form of Halíř & Flusser (WSCG 1998); algebraic
circle fit of Kåsa (IEEE Trans. Instrum. Meas. IM-25 (1976) 8, doi:10.1109/TIM.1976.6312298)
for short arcs, where five ellipse parameters are ill-determined. Both reject points far
from the curve iteratively (median absolute deviation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import hypot


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in pixel indices.

    Attributes
    ----------
    c1, c2 : float
        Centre (row, column).
    a, b : float
        Semi-major and semi-minor axes in pixels (a ≥ b).
    angle : float
        Direction of the major axis in radians, measured from +d2 (x, columns) towards +d1
        (y, rows), in [0, π).
    rms : float
        Rms distance of the inlier points from the curve, pixels.
    inliers : ndarray of bool, shape (n,)
        Which of the fitted points were kept.
    """

    c1: float
    c2: float
    a: float
    b: float
    angle: float
    rms: float
    inliers: np.ndarray

    @property
    def radius(self) -> float:
        """Geometric-mean radius sqrt(a·b), pixels."""
        return float(np.sqrt(self.a * self.b))

    def distance(self, d1, d2) -> np.ndarray:
        """Approximate signed distance of points from the curve (outside > 0), pixels."""
        x = np.asarray(d2, float) - self.c2
        y = np.asarray(d1, float) - self.c1
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        u = x * ca + y * sa
        v = -x * sa + y * ca
        rho = hypot(u / self.a, v / self.b)
        r = hypot(u, v)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rho > 0, r * (1 - 1 / rho), -self.b)


def _conic_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    d1 = np.stack([x * x, x * y, y * y], 1)
    d2 = np.stack([x, y, np.ones_like(x)], 1)
    s1 = d1.T @ d1
    s2 = d1.T @ d2
    s3 = d2.T @ d2
    try:
        t = -np.linalg.solve(s3, s2.T)
    except np.linalg.LinAlgError:
        return None
    m = s1 + s2 @ t
    m = np.array([m[2] / 2, -m[1], m[0] / 2])
    try:
        _, vec = np.linalg.eig(m)
    except np.linalg.LinAlgError:
        return None
    vec = np.real(vec)
    cond = 4 * vec[0] * vec[2] - vec[1] ** 2
    ok = np.nonzero(cond > 0)[0]
    if ok.size == 0:
        return None
    a1 = vec[:, ok[0]]
    return np.concatenate([a1, t @ a1])


def _conic_to_ellipse(coef: np.ndarray):
    a, b, c, d, e, f = coef
    den = b * b - 4 * a * c
    if den >= 0:
        return None
    x0 = (2 * c * d - b * e) / den
    y0 = (2 * a * e - b * d) / den
    num = 2 * (a * e * e + c * d * d - b * d * e + den * f)
    root = np.sqrt((a - c) ** 2 + b * b)
    s1 = num * (a + c + root)
    s2 = num * (a + c - root)
    if s1 <= 0 or s2 <= 0:
        return None
    ax1 = np.sqrt(s1) / -den
    ax2 = np.sqrt(s2) / -den
    # ax1 is the axis along angle theta below.
    theta = 0.5 * np.arctan2(-b, c - a)
    if ax1 < ax2:
        ax1, ax2 = ax2, ax1
        theta += np.pi / 2
    return x0, y0, ax1, ax2, theta % np.pi


def _circle_fit(x: np.ndarray, y: np.ndarray):
    a = np.stack([x, y, np.ones_like(x)], 1)
    try:
        sol, *_ = np.linalg.lstsq(a, x * x + y * y, rcond=None)
    except np.linalg.LinAlgError:
        return None
    cx, cy = sol[0] / 2, sol[1] / 2
    r2 = sol[2] + cx * cx + cy * cy
    if not r2 > 0:
        return None
    return cx, cy, np.sqrt(r2), np.sqrt(r2), 0.0


def fit_circle(d1, d2, n_iter: int = 4, clip: float = 3.0, min_points: int = 8) -> Ellipse | None:
    """Fit a circle (an `Ellipse` with a = b) to points, rejecting outliers.

    Same parameters and return as `fit_ellipse`; better conditioned on short arcs.
    """
    return _robust(d1, d2, n_iter, clip, min_points, _circle_fit)


def fit_ellipse(d1, d2, n_iter: int = 4, clip: float = 3.0, min_points: int = 8) -> Ellipse | None:
    """Fit an ellipse to points, rejecting outliers.

    Parameters
    ----------
    d1, d2 : array_like, shape (n,)
        Row and column coordinates of points on (or near) the curve.
    n_iter : int
        Rounds of fit and rejection.
    clip : float
        Points farther than `clip` robust standard deviations (and 0.5 px) are rejected.
    min_points : int
        Fewer inliers than this give None.

    Returns
    -------
    Ellipse or None
        None when the points do not define an ellipse (too few, collinear, hyperbolic).
    """
    def conic(x, y):
        coef = _conic_fit(x, y)
        return None if coef is None else _conic_to_ellipse(coef)

    return _robust(d1, d2, n_iter, clip, min_points, conic)


def _robust(d1, d2, n_iter, clip, min_points, fit) -> Ellipse | None:
    d1 = np.asarray(d1, float)
    d2 = np.asarray(d2, float)
    keep = np.ones(d1.size, bool)
    result = None
    for _ in range(n_iter):
        if keep.sum() < min_points:
            return None
        # Centre and scale for conditioning.
        m1, m2 = d1[keep].mean(), d2[keep].mean()
        sc = max(d1[keep].std(), d2[keep].std(), 1e-9)
        par = fit((d2[keep] - m2) / sc, (d1[keep] - m1) / sc)
        if par is None:
            return None
        x0, y0, ax1, ax2, th = par
        e = Ellipse(c1=y0 * sc + m1, c2=x0 * sc + m2, a=ax1 * sc, b=ax2 * sc, angle=th, rms=0.0,
                    inliers=keep)
        dist = e.distance(d1, d2)
        med = np.median(dist[keep])
        mad = 1.4826 * np.median(np.abs(dist[keep] - med))
        new_keep = np.abs(dist - med) <= max(clip * mad, 0.5)
        rms = float(np.sqrt(np.mean(dist[new_keep] ** 2))) if new_keep.any() else np.inf
        result = Ellipse(e.c1, e.c2, e.a, e.b, e.angle, rms, new_keep)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return result if result is not None and result.inliers.sum() >= min_points else None
