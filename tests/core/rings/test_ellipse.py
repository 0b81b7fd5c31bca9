import numpy as np
import pytest

from geocal_cli.core.rings.ellipse import fit_ellipse


def _arc(c1, c2, a, b, angle, t0, t1, n, noise, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(t0, t1, n)
    u, v = a * np.cos(t), b * np.sin(t)
    x = c2 + u * np.cos(angle) - v * np.sin(angle) + rng.normal(0, noise, n)
    y = c1 + u * np.sin(angle) + v * np.cos(angle) + rng.normal(0, noise, n)
    return y, x


def test_full_ellipse_recovered():
    d1, d2 = _arc(200.0, 300.0, 150.0, 140.0, np.radians(147.5), 0, 2 * np.pi, 800, 0.2, 0)
    e = fit_ellipse(d1, d2)
    assert (e.c1, e.c2) == pytest.approx((200.0, 300.0), abs=0.05)
    assert e.a / e.b == pytest.approx(150 / 140, abs=1e-3)
    assert np.degrees(e.angle) == pytest.approx(147.5, abs=0.5)


def test_outliers_rejected_on_a_partial_arc():
    d1, d2 = _arc(500.0, -50.0, 400.0, 396.0, 0.3, -0.8, 0.9, 600, 0.3, 1)
    rng = np.random.default_rng(5)
    bad = rng.choice(600, 60, replace=False)
    d2[bad] += rng.choice([-1, 1], 60) * rng.uniform(8, 30, 60)   # stray ridge pixels
    e = fit_ellipse(d1, d2)
    assert e.inliers[bad].sum() == 0
    good = np.setdiff1d(np.arange(600), bad)
    assert e.inliers[good].mean() > 0.97
    # A 100° arc leaves the centre loosely fixed, but the curve itself must be right.
    assert np.sqrt(np.mean(e.distance(d1[good], d2[good]) ** 2)) < 0.5


def test_collinear_points_give_none():
    assert fit_ellipse(np.arange(20.0), 2 * np.arange(20.0)) is None
