"""The residual split into the points' own scatter and the model's misfit."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.misfit import split_residual

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
