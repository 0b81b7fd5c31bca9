"""q-check numerics against synthetic truth: stills prediction, diagnosis, slips, powder."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.controlpoints import ControlPoints
from geocal_cli.core.q.diagnosis import Parameter, explain
from geocal_cli.core.q.powder import check_powder
from geocal_cli.core.q.stills import (Reflections, check_experiments, cube_rotations,
                                     describe_rotation)
from geocal_cli.core.q.prediction import (Crystals, Panels, q_bragg, q_from_positions, ray_intersection,
                                    rotation_about, stills_predict)

LAM = 1.0


def synthetic_stills(n_exp=4, seed=1, noise_px=0.3):
    """Crystals, a 2000 × 2000 × 0.1 mm panel 200 mm away, and reflections on it."""
    rng = np.random.default_rng(seed)
    panels = Panels(origin=np.array([[-95.0, 105.0, -200.0]]), fast=np.array([[1.0, 0, 0]]),
                    slow=np.array([[0.0, -1, 0]]), pixel_size=np.array([[0.1, 0.1]]),
                    image_size=np.array([[2000, 2000]]))
    A = []
    for _ in range(n_exp):
        axis = rng.normal(size=3)
        A.append(rotation_about(axis / np.linalg.norm(axis), rng.uniform(0, np.pi)) / 40.0)
    crystals = Crystals(A=np.array(A), fixed=np.tile(np.eye(3), (n_exp, 1, 1)),
                        setting=np.tile(np.eye(3), (n_exp, 1, 1)), axis=np.tile([1.0, 0, 0], (n_exp, 1)),
                        s0=np.tile([0.0, 0, -1 / LAM], (n_exp, 1)))
    hkl = np.stack(np.meshgrid(*[np.arange(-14, 15)] * 3, indexing="ij"), -1).reshape(-1, 3)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    hs, es = [], []
    for e in range(n_exp):
        q = hkl @ crystals.A[e].T
        near = np.abs(np.linalg.norm(q + crystals.s0[e], axis=1) - 1 / LAM) < 2e-3
        hs.append(hkl[near])
        es.append(np.full(near.sum(), e))
    h, exp = np.concatenate(hs), np.concatenate(es)
    s1, _, _ = stills_predict(q_bragg(crystals, h, exp), crystals.s0[exp])
    xy = ray_intersection(panels, np.zeros(len(h), int), s1)
    on = np.all((xy > 1) & (xy < 199), axis=1)
    h, exp, xy, s1 = h[on], exp[on], xy[on], s1[on]
    obs = xy + rng.normal(scale=noise_px * 0.1, size=xy.shape)
    refl = Reflections(h=h, exp=exp, panel=np.zeros(len(h), int), xy=obs, xy_cal=xy, s1=s1)
    return crystals, panels, refl


def test_stills_prediction_is_on_the_ewald_sphere_and_matches_the_table():
    crystals, panels, refl = synthetic_stills()
    assert len(refl.h) > 300
    chk = check_experiments(crystals, panels, refl)
    k = 1 / LAM
    assert np.abs(np.linalg.norm(chk.q_pred + crystals.s0[refl.exp], axis=1) - k).max() < 1e-12
    assert chk.table["prediction_vs_xyzcal_px"] < 1e-9
    assert chk.table["q_pixel_xyzcal_vs_table_s1"] < 1e-12
    assert np.abs(chk.excitation).max() < 2e-3 + 1e-9
    # 0.3 px of position noise at 200 mm: |Δq| ≈ 0.3 × 0.1 / 200 / λ ≈ 1.5e-4 Å⁻¹.
    assert 0.5e-4 < np.linalg.norm(chk.dq, axis=1).mean() < 3e-4
    assert not chk.diagnosis.systematic and chk.slip is None


def test_stills_distance_error_is_named_with_its_size():
    crystals, panels, refl = synthetic_stills()
    normal = np.array([0.0, 0, -1])
    moved = Panels(panels.origin + 1.0 * normal, panels.fast, panels.slow, panels.pixel_size, panels.image_size)
    chk = check_experiments(crystals, moved, refl)
    d = chk.diagnosis
    assert d.systematic and d.cause[0] == "distance"
    assert d.error["distance"] == pytest.approx(1.0, abs=0.05)
    assert chk.slip is None


def test_stills_centre_error_in_pixels():
    crystals, panels, refl = synthetic_stills()
    # Panel moved −3 px along fast: the beam now hits 3 px further along x than the truth.
    moved = Panels(panels.origin - 0.3 * panels.fast, panels.fast, panels.slow, panels.pixel_size, panels.image_size)
    d = check_experiments(crystals, moved, refl).diagnosis
    assert d.systematic and d.cause == ("centre",)
    assert d.error["centre_x"] == pytest.approx(3.0, abs=0.05)
    assert abs(d.error["centre_y"]) < 0.05


@pytest.mark.parametrize("mirror, words", [((1, -1, 1), "mirrored in y"), ((-1, 1, 1), "mirrored in x")])
def test_stills_detector_mirror_is_found(mirror, words):
    crystals, panels, refl = synthetic_stills()
    m = np.array(mirror, float)
    flipped = Panels(panels.origin * m, panels.fast * m, panels.slow * m, panels.pixel_size, panels.image_size)
    chk = check_experiments(crystals, flipped, refl)
    assert np.linalg.norm(chk.dq, axis=1).mean() > 1e-2
    assert chk.slip is not None and words in chk.slip.description
    assert chk.slip.rms_after < 0.05 * chk.slip.rms_before
    assert not chk.diagnosis.systematic


@pytest.mark.parametrize("axis, angle, words", [((0, 0, 1), 90, "90° about +z"), ((1, 0, 0), -90, "90° about −x"),
                                                ((0, 1, 0), 180, "180° about +y")])
def test_stills_missing_crystal_rotation_is_named(axis, angle, words):
    crystals, panels, refl = synthetic_stills()
    r = rotation_about(np.array(axis, float), np.radians(angle))
    turned = Crystals(np.einsum("ij,ejk->eik", r, crystals.A), crystals.fixed, crystals.setting,
                      crystals.axis, crystals.s0)
    chk = check_experiments(turned, panels, refl)
    assert chk.slip is not None
    # Stills cannot tell a crystal turned 180° about y from a detector mirrored in x.
    assert any(t.endswith(words) for t in (chk.slip.description,) + chk.slip.alternatives)
    assert len(chk.slip.alternatives) <= 1


def test_goniometer_chain_and_rotation_helpers():
    rots = cube_rotations()
    assert len(rots) == 24 and np.allclose(rots[0], np.eye(3))
    assert all(np.allclose(m @ m.T, np.eye(3)) and np.linalg.det(m) > 0 for m in rots)
    assert describe_rotation(rotation_about(np.array([0.0, 0, 1]), np.pi / 2)) == "90° about +z"
    assert describe_rotation(rotation_about(np.array([1.0, 1, 1]), 2 * np.pi / 3)) == "120° about (1, 1, 1)"
    # S R(φ) F A h composed as dxtbx does.
    rng = np.random.default_rng(0)
    A, F, S = (rotation_about(rng.normal(size=3), rng.uniform(0, 3)) for _ in range(3))
    axis = np.array([0.0, 1, 0])
    cr = Crystals(A[None], F[None], S[None], axis[None], np.array([[0.0, 0, -1]]))
    h = np.array([[1, 2, 3]])
    phi = np.array([0.7])
    expected = S @ rotation_about(axis, 0.7) @ F @ A @ h[0]
    assert np.allclose(q_bragg(cr, h, np.array([0]), phi)[0], expected)


def test_q_from_positions_has_dials_magnitude():
    lab = np.array([[10.0, -20.0, -150.0]])
    s0 = np.array([[0.0, 0, -1 / 0.8]])
    q = q_from_positions(lab, s0)
    assert np.linalg.norm(q + s0) == pytest.approx(1 / 0.8)


def test_explain_recovers_a_known_linear_error_and_calls_noise_random():
    rng = np.random.default_rng(3)
    J = rng.normal(size=(2000, 3))
    params = [Parameter("a", "ga", "mm"), Parameter("b", "gb", "px"), Parameter("c", "gc", "deg")]
    r = J @ np.array([0.0, 2.0, 0.0]) + rng.normal(scale=0.1, size=2000)
    d = explain(r, J, params)
    assert d.systematic and d.cause == ("gb",)
    assert d.error["b"] == pytest.approx(2.0, abs=4 * d.sigma["b"])
    noise = explain(rng.normal(size=2000), J, params)
    assert not noise.systematic and noise.cause == ()
    assert "no systematic geometry error" in noise.summary()


def _ring_points(frame, tth, n_chi=180):
    chi = np.linspace(-np.pi, np.pi, n_chi, endpoint=False)
    d1, d2 = frame.pixel_at(tth[:, None], chi[None, :])
    ring = np.repeat(np.arange(tth.size), n_chi)
    d1, d2 = d1.ravel(), d2.ravel()
    on = (d1 > 0) & (d1 < 2047) & (d2 > 0) & (d2 < 2047)
    return ControlPoints(d1[on], d2[on], ring[on], np.tile(chi, tth.size)[on],
                         np.ones(on.sum()), np.ones(on.sum()))


@pytest.mark.parametrize("change, cause, name, size", [
    ({"dist": 0.101}, "distance", "distance", 1.0),
    ({"poni2": 0.05 + 2 * 100e-6}, "centre", "centre_x", 2.0),
    ({}, None, None, None),
])
def test_powder_check_against_exact_ring_points(change, cause, name, size):
    from pyFAI.calibrant import get_calibrant

    from geocal_cli.core.geometry.frame import frame_of, make_geometry
    from geocal_cli.io.detectors import make_detector
    from geocal_cli.core.geometry.units import ring_tth

    det = make_detector(None, (100.0, 100.0), (2048, 2048))
    lam = 0.7e-10
    truth = make_geometry(det, 0.100, 0.05, 0.05, 0.01, -0.02, 0.0, lam)
    d = np.array(get_calibrant("LaB6").get_dSpacing()[:12]) * 1e-10
    cp = _ring_points(frame_of(truth), ring_tth(d, lam))
    rng = np.random.default_rng(0)
    cp = ControlPoints(cp.d1 + rng.normal(scale=0.05, size=len(cp)), cp.d2 + rng.normal(scale=0.05, size=len(cp)),
                       cp.ring, cp.chi, cp.snr, cp.width)
    values = {"dist": 0.100, "poni1": 0.05, "poni2": 0.05} | change
    checked = make_geometry(det, values["dist"], values["poni1"], values["poni2"], 0.01, -0.02, 0.0, lam)
    chk = check_powder(frame_of(checked), cp, d, lam)
    diag = chk.diagnosis
    if cause is None:
        assert not diag.systematic
        assert np.median(np.abs(chk.geometric_strain)) * 1e6 < 50
        return
    assert diag.systematic and diag.cause[0] == cause
    assert diag.error[name] == pytest.approx(size, rel=0.05)
