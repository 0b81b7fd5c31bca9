import numpy as np
import pytest

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of, make_geometry
from geocal_cli.core.rings.clustered import cell_index, widen_for_clusters
from geocal_cli.core.rings.misfit import ring_offset_px
from geocal_cli.core.rings.refine import propagate, refine_geometry

FREE = ("dist", "poni1", "poni2", "rot1", "rot2")
SHAPE = (1043, 981)


def _points(field_px, noise_px, seed, offset_px=0.0):
    """Points on six rings of a Pilatus 1M, moved along the radius by a smooth random field
    (wavelength 300 px), by independent noise and by each ring's own random offset
    (rms `offset_px`): (truth, d1, d2, d-spacings, fit)."""
    import pyFAI.detectors

    det = pyFAI.detectors.detector_factory("Pilatus1M")
    truth = make_geometry(det, 0.25, 0.09, 0.08, 0.02, -0.015, 0.0, 1e-10)
    d = 4.157e-10 / np.sqrt([1, 2, 3, 4, 5, 6])
    chi = np.linspace(-np.pi, np.pi, 600, endpoint=False)
    fr = frame_of(truth)
    d1, d2 = fr.pixel_at(2 * np.arcsin(1e-10 / (2 * d))[:, None], chi[None, :])
    dsp = np.repeat(d, chi.size)
    d1, d2 = d1.ravel(), d2.ravel()
    ok = (d1 > 0) & (d1 < SHAPE[0]) & (d2 > 0) & (d2 < SHAPE[1])
    d1, d2, dsp = d1[ok], d2[ok], dsp[ok]
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, 8)
    phase = rng.uniform(0, 2 * np.pi, 8)
    k = 2 * np.pi / 300
    field = np.sqrt(2 / 8) * field_px * np.cos(
        k * (np.cos(angle) * d1[:, None] + np.sin(angle) * d2[:, None]) + phase).sum(axis=1)
    e = field + rng.normal(0, noise_px, d1.size)
    e += rng.normal(0, offset_px, d.size)[np.searchsorted(-d, -dsp)]
    b1, b2 = fr.beam_center()
    g1, g2 = d1 - b1, d2 - b2
    n = np.hypot(g1, g2)
    d1, d2 = d1 + e * g1 / n, d2 + e * g2 / n
    start = {p: getattr(truth, p) for p in PARAM_NAMES}
    start["wavelength"] = 1e-10
    return truth, d1, d2, dsp, refine_geometry(truth, d1, d2, dsp, start, FREE, n_rounds=1)


def _fit(field_px, noise_px, seed):
    """The fit of `_points` and its widened twin: the beam centre's error, the 1σ of each and
    the largest widening."""
    truth, d1, d2, dsp, fit = _points(field_px, noise_px, seed)
    wide, widening = widen_for_clusters(fit, truth, d1, d2, dsp, cell_index(d1, d2, SHAPE))

    def centre(r):
        value, cov = propagate(r, lambda v: frame_of(truth, [v[p] for p in PARAM_NAMES])
                               .beam_center())
        return value, np.sqrt(np.diag(cov))

    value, sigma = centre(fit)
    _, wide_sigma = centre(wide)
    return value - frame_of(truth).beam_center(), sigma, wide_sigma, widening.cells


def test_errors_shared_by_neighbouring_points_widen_the_beam_centre_1sigma():
    z_independent, z_wide = [], []
    for seed in range(10):
        err, sigma, wide, factor = _fit(0.3, 0.05, seed)
        assert factor > 2
        z_independent += list(err / sigma)
        z_wide += list(err / wide)
    # Independent points' 1σ claim the centre several times sharper than it is; the
    # cluster-robust 1σ cover its errors as a 1σ should (20 samples: rms z within ±35 %).
    assert np.sqrt(np.mean(np.square(z_independent))) > 3
    assert np.sqrt(np.mean(np.square(z_wide))) == pytest.approx(1.0, abs=0.35)


def test_independent_points_keep_their_1sigma():
    ratios = []
    for seed in range(10):
        err, sigma, wide, factor = _fit(0.0, 0.3, seed)
        # The positive part of a noisy difference widens a little, never much.
        assert 1.0 <= factor < 1.7
        ratios += list(wide / sigma)
    assert max(ratios) < 1.4 and np.mean(ratios) < 1.15


def test_too_few_cells_leave_the_fit_as_it_is():
    truth, d1, d2, dsp, fit = _points(0.3, 0.05, 0)
    same, widening = widen_for_clusters(fit, truth, d1, d2, dsp, np.arange(d1.size) % 19)
    assert same is fit and widening.cells is None


def test_the_ring_centre_fit_allows_for_errors_shared_by_neighbouring_points():
    """`recenter`'s and the electron lens model's fit: the same field, the shift's 1σ."""
    from geocal_cli.core.center.ringcenter import fit_ring_center
    from geocal_cli.core.rings.controlpoints import ControlPoints

    z = {None: [], SHAPE: []}
    for seed in range(10):
        truth, d1, d2, dsp, _ = _points(0.3, 0.05, seed)
        d, ring = np.unique(dsp, return_inverse=True)
        cp = ControlPoints(d1, d2, ring, np.zeros(d1.size), np.ones(d1.size), np.ones(d1.size))
        tth = 2 * np.arcsin(1e-10 / (2 * d))
        for shape in z:
            fit = fit_ring_center(cp, frame_of(truth), tth, (0.0, 0.0), fit_ellipticity=False,
                                  rings="calibrant", shape=shape)
            # The reference is the truth: the fitted shift is the error.
            z[shape] += list(fit.shift / np.sqrt(np.diag(fit.shift_cov)))
    # With the tilt held, the field moves the centre less than it moves a full geometry
    # fit's, and the cluster-robust 1σ err on the safe side here (rms z 0.42).
    assert np.sqrt(np.mean(np.square(z[None]))) > 1.3
    assert np.sqrt(np.mean(np.square(z[SHAPE]))) < 1.0 and np.max(np.abs(z[SHAPE])) < 3


def test_whole_rings_off_widen_the_distance_1sigma():
    """Each ring 0.05 px off as a whole (a neighbour's flank, a beamstop's edge): its 600
    points do not average the offset away, and the distance's 1σ must allow for it."""
    z_points, z_rings, tau = [], [], []
    for seed in range(20):
        truth, d1, d2, dsp, fit = _points(0.0, 0.05, seed, offset_px=0.05)
        ring = np.unique(-dsp, return_inverse=True)[1]
        inl = fit.inliers
        tau.append(ring_offset_px(ring[inl], fit.residual_px[inl], 0.05))
        wide, widening = widen_for_clusters(fit, truth, d1, d2, dsp, cell_index(d1, d2, SHAPE),
                                            ring, tau[-1])
        assert widening.offset_px == tau[-1]
        err = fit.values["dist"] - truth.dist
        z_points.append(err / fit.sigma["dist"])
        z_rings.append(err / wide.sigma["dist"])
    # Six rings a seed: τ is found within its estimate's spread, the independent points'
    # 1σ claim the distance many times sharper than it is, and the widened 1σ cover it.
    assert np.sqrt(np.mean(np.square(tau))) == pytest.approx(0.05, rel=0.3)
    assert np.sqrt(np.mean(np.square(z_points))) > 3
    assert np.sqrt(np.mean(np.square(z_rings))) == pytest.approx(1.0, abs=0.4)


def test_rings_on_their_fit_keep_their_1sigma():
    """Without ring offsets the ring means scatter as their points' noise says: τ is 0 but
    for the F test's 1 % of chance excesses, and the 1σ keep their size."""
    taus, ratios = [], []
    for seed in range(20):
        truth, d1, d2, dsp, fit = _points(0.0, 0.3, seed)
        ring = np.unique(-dsp, return_inverse=True)[1]
        inl = fit.inliers
        taus.append(ring_offset_px(ring[inl], fit.residual_px[inl], 0.3))
        wide, widening = widen_for_clusters(fit, truth, d1, d2, dsp, np.zeros(d1.size, int),
                                            ring, taus[-1])
        assert widening.cells is None
        ratios.append(wide.sigma["dist"] / fit.sigma["dist"])
    assert np.count_nonzero(taus) <= 2 and np.median(ratios) == 1.0 and np.mean(ratios) < 1.2
