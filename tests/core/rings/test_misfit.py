"""The residual split into the points' own scatter and the model's misfit."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.misfit import (JUMP_PX, ring_mean_jump, ring_offset_trend,
                                          split_residual)

N_CHI = 720
STEP = 2 * np.pi / N_CHI
CHI = (np.arange(N_CHI) + 0.5) * STEP - np.pi


def _points(rng, rings=3, keep=0.7, scatter=0.1, misfit=0.3):
    """Points on `rings` rings at a random `keep` fraction of the azimuths: white scatter
    plus a slow misfit (2nd and 3rd azimuthal harmonics) of the given rms, pixels."""
    ring, chi, res = [], [], []
    for k in range(rings):
        c = CHI[rng.random(N_CHI) < keep]
        slow = misfit * (np.cos(2 * c + k) + np.sin(3 * c - k))     # rms = misfit
        ring.append(np.full(c.size, k))
        chi.append(c)
        res.append(slow + rng.normal(0, scatter, c.size))
    order = rng.permutation(sum(c.size for c in chi))             # the split does not need order
    return (np.concatenate(ring)[order], np.concatenate(chi)[order], np.concatenate(res)[order])


@pytest.mark.parametrize("scatter,misfit", [(0.1, 0.3), (0.3, 0.1), (0.05, 0.0), (0.2, 0.2)])
def test_scatter_and_misfit_are_recovered(scatter, misfit):
    rng = np.random.default_rng(1)
    m = split_residual(*_points(rng, scatter=scatter, misfit=misfit), STEP)
    assert m.scatter_px == pytest.approx(scatter, rel=0.08)
    assert m.misfit_px == pytest.approx(misfit, abs=0.03)
    assert m.rms_px ** 2 == pytest.approx(m.scatter_px ** 2 + m.misfit_px ** 2, rel=1e-6) \
        or m.misfit_px == 0


def test_a_gap_is_not_a_neighbour():
    """A ring seen on two arcs on opposite sides with opposite offsets: only neighbours within
    the arcs are compared, so the jump between the arcs reads as misfit, not scatter."""
    rng = np.random.default_rng(2)
    c = np.r_[CHI[10:200], CHI[400:600]]
    res = np.where(c < 0, -0.5, 0.5) + rng.normal(0, 0.05, c.size)
    m = split_residual(np.zeros(c.size, int), c, res, STEP)
    assert m.scatter_px == pytest.approx(0.05, rel=0.15)
    assert m.misfit_px == pytest.approx(0.5, rel=0.02)


def test_the_azimuth_wraps_at_pi():
    """A full ring: the first and last azimuths are neighbours (one pair more)."""
    c = CHI
    m = split_residual(np.zeros(c.size, int), c, np.ones(c.size), STEP)
    assert m.pairs == N_CHI and m.scatter_px == 0 and m.misfit_px == pytest.approx(1.0)


def test_too_few_neighbours_leave_it_undetermined():
    c = CHI[::4][:40]                         # no two points are neighbours
    m = split_residual(np.zeros(c.size, int), c, np.ones(c.size), STEP)
    assert m.pairs == 0 and np.isnan(m.scatter_px) and np.isnan(m.misfit_px)
    assert m.rms_px == pytest.approx(1.0)


def _rings_with_means(rng, means, tth, n=200, scatter=0.3):
    """(ring, tth, residual) of `n` points per ring scattered about each ring's mean, with
    rings given in shuffled order (the check sorts them by 2θ)."""
    k = np.repeat(np.arange(len(means)), n)
    res = np.asarray(means)[k] + rng.normal(0, scatter, k.size)
    order = rng.permutation(k.size)
    return k[order] + 3, np.asarray(tth)[k][order], res[order]


def test_a_smooth_trend_of_ring_means_is_no_jump():
    """A radial distortion's means (the simulated detector's, 0.42 to -1.10 px over ten
    rings, a right fit) follow a smooth trend in 2θ: no ring departs by JUMP_PX."""
    rng = np.random.default_rng(3)
    tth = np.radians(np.sqrt(np.arange(1, 11)) * 4.0)
    means = 0.42 - 1.52 * ((tth - tth[0]) / (tth[-1] - tth[0])) ** 1.5
    jump = ring_mean_jump(*_rings_with_means(rng, means, tth))
    assert abs(jump.departure_px) < 0.1 < JUMP_PX


def test_a_ring_off_its_neighbours_is_found():
    """One ring's points sit 1.1 px off (points of other rings): it, its neighbours and its
    departure are reported, whatever the order of the points."""
    rng = np.random.default_rng(4)
    tth = np.radians([3.0, 4.0, 5.5, 6.0, 8.0, 9.0])
    means = [0.1, 0.0, -0.05, -1.1, -0.1, 0.0]
    jump = ring_mean_jump(*_rings_with_means(rng, means, tth))
    assert (jump.ring, jump.neighbours) == (6, (5, 7))
    line = -0.05 + (6.0 - 5.5) / (8.0 - 5.5) * (-0.1 + 0.05)        # at ring 6's 2θ
    assert jump.departure_px == pytest.approx(-1.1 - line, abs=0.05)
    assert abs(jump.departure_px) > JUMP_PX


def test_sparse_rings_are_not_judged():
    """Rings with fewer than min_points points do not count; under three rings, no verdict."""
    rng = np.random.default_rng(5)
    ring, tth, res = _rings_with_means(rng, [0.0, 2.0, 0.0], np.radians([3.0, 4.0, 5.0]), n=10)
    assert ring_mean_jump(ring, tth, res) is None
    assert ring_mean_jump(ring, tth, res, min_points=5).ring == 4


def test_ring_offsets_on_a_trend_in_2theta_are_told_from_ring_by_ring_offsets():
    """Twelve rings of 200 points (scatter 0.02 px): offsets on a parabola in 2θ (a series
    fitted an order off) give a share near 1, independent offsets of the same size one near
    2/(K − 1), and fewer than five rings none."""
    rng = np.random.default_rng(3)
    tth = np.radians(np.linspace(1.0, 3.0, 12))
    ring = np.repeat(np.arange(12), 200)
    x = (tth - tth.mean()) / np.ptp(tth)
    noise = rng.normal(0, 0.02, ring.size)
    parabola = 0.6 * x ** 2 - 0.05
    assert ring_offset_trend(ring, tth[ring], parabola[ring] + noise) > 0.95
    shares = [ring_offset_trend(ring, tth[ring], r.normal(0, 0.15, 12)[ring] + noise)
              for r in map(np.random.default_rng, range(40))]
    assert np.median(shares) < 0.35 and np.mean(np.array(shares) >= 2 / 3) < 0.05
    few = ring < 4
    assert ring_offset_trend(ring[few], tth[ring[few]], parabola[ring[few]]) == 0.0
