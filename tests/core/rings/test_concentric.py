"""Per-ring centres from radial residuals."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.concentric import ring_centres


def _points(shifts, noise, n=400, seed=0, arc=2 * np.pi):
    rng = np.random.default_rng(seed)
    k = len(shifts)
    ring = np.repeat(np.arange(k), n)
    chi = rng.uniform(-arc / 2, arc / 2, ring.size)
    u1, u2 = np.sin(chi), np.cos(chi)
    s = np.asarray(shifts, float)[ring]
    radius_change = rng.normal(0, 0.2, k)[ring]
    res = radius_change + s[:, 0] * u1 + s[:, 1] * u2 + rng.normal(0, noise, ring.size)
    return ring, res, u1, u2


def test_the_spread_of_ring_shifts_is_measured_beyond_noise():
    rng = np.random.default_rng(3)
    shifts = rng.normal(0, 0.3, (30, 2))
    c = ring_centres(*_points(shifts, noise=0.2))
    assert c.spread_px == pytest.approx(np.std(shifts - shifts.mean(0)), rel=0.2)
    assert np.allclose(c.shift_px, shifts - shifts.mean(0), atol=0.1)
    assert c.centre_sigma_px == pytest.approx(c.spread_px / np.sqrt(30))


def test_concentric_rings_have_no_spread_beyond_noise():
    c = ring_centres(*_points(np.zeros((20, 2)), noise=0.5))
    assert c.spread_px < 0.03


def test_short_arcs_are_not_measured():
    # a 20° arc cannot tell a shift from a radius change
    assert ring_centres(*_points(np.zeros((10, 2)), noise=0.1, arc=np.radians(20))) is None
