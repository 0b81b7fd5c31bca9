import numpy as np
import pytest

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of, make_geometry
from geocal_cli.core.rings.refine import refine_geometry


def _setup(noise_px, seed):
    import pyFAI.detectors

    det = pyFAI.detectors.detector_factory("Pilatus1M")
    truth = make_geometry(det, 0.25, 0.09, 0.08, 0.02, -0.015, 0.0, 1e-10)
    d = 4.157e-10 / np.sqrt([1, 2, 3, 4, 5, 6])
    tth = 2 * np.arcsin(1e-10 / (2 * d))
    chi = np.linspace(-np.pi, np.pi, 300, endpoint=False)
    fr = frame_of(truth)
    d1, d2 = fr.pixel_at(tth[:, None], chi[None, :])
    dsp = np.repeat(d, chi.size)
    d1, d2 = d1.ravel(), d2.ravel()
    ok = (d1 > 0) & (d1 < 1043) & (d2 > 0) & (d2 < 981)
    rng = np.random.default_rng(seed)
    # Noise along the radius (the direction ring maxima scatter in).
    g1, g2 = d1[ok] - fr.beam_center()[0], d2[ok] - fr.beam_center()[1]
    n = np.hypot(g1, g2)
    e = rng.normal(0, noise_px, n.size)
    return truth, d1[ok] + e * g1 / n, d2[ok] + e * g2 / n, dsp[ok]


def test_recovers_truth_from_a_perturbed_start():
    truth, d1, d2, dsp = _setup(0.0, 0)
    start = {p: getattr(truth, p) for p in PARAM_NAMES}
    start.update(dist=0.255, poni1=0.0905, poni2=0.0795, rot1=0.025, rot2=-0.01, wavelength=1e-10)
    r = refine_geometry(truth, d1, d2, dsp, start, ("dist", "poni1", "poni2", "rot1", "rot2"))
    for p in ("dist", "poni1", "poni2"):
        assert r.values[p] == pytest.approx(getattr(truth, p), abs=1e-9)
    for p in ("rot1", "rot2"):
        assert r.values[p] == pytest.approx(getattr(truth, p), abs=1e-9)
    assert np.abs(r.residual_px).max() < 1e-6


def test_uncertainties_match_the_scatter_of_repeated_fits():
    free = ("dist", "poni1", "poni2", "rot1", "rot2")
    fits, sigmas = [], []
    for seed in range(12):
        truth, d1, d2, dsp = _setup(0.3, seed)
        start = {p: getattr(truth, p) for p in PARAM_NAMES}
        start["wavelength"] = 1e-10
        r = refine_geometry(truth, d1, d2, dsp, start, free, n_rounds=1)
        fits.append([r.values[p] for p in free])
        sigmas.append([r.sigma[p] for p in free])
    spread = np.std(fits, axis=0, ddof=1)
    reported = np.mean(sigmas, axis=0)
    # 12 samples estimate a standard deviation to ±20 %: allow a factor 1.6 either way.
    assert np.all(spread / reported < 1.6) and np.all(spread / reported > 1 / 1.6)


def test_too_few_points_raise():
    truth, d1, d2, dsp = _setup(0.0, 0)
    start = {p: getattr(truth, p) for p in PARAM_NAMES}
    start["wavelength"] = 1e-10
    with pytest.raises(ValueError):
        refine_geometry(truth, d1[:3], d2[:3], dsp[:3], start, ("dist", "poni1", "poni2", "rot1"))


def test_twist_free_rot3_is_fit2ds_tilt_model():
    """rot3 of pyFAI's own conversion of Fit2D (tilt, tiltPlanRotation), for any tilt."""
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    from geocal_cli.core.rings.refine import twist_free_rot3

    rng = np.random.default_rng(3)
    g = Geometry(detector=Detector(pixel1=1e-4, pixel2=1e-4, max_shape=(100, 100)))
    for tilt, plan in zip(rng.uniform(0.1, 40, 30), rng.uniform(-180, 180, 30)):
        g.setFit2D(200.0, 50.0, 50.0, tilt=tilt, tiltPlanRotation=plan)
        assert twist_free_rot3(g.rot1, g.rot2) == pytest.approx(g.rot3, abs=1e-12)


def test_without_rot3_the_twist_is_held_not_rot3():
    """Refined without rot3 from a twist-free start, a tilted (8°) twist-free geometry is
    recovered exactly: rot3 follows rot1 and rot2 (held constant, it would bias the tilt and
    the centre)."""
    import pyFAI.detectors

    from geocal_cli.core.rings.refine import twist_free_rot3

    det = pyFAI.detectors.detector_factory("Pilatus1M")
    truth = dict(zip(PARAM_NAMES, (0.14, 0.06, 0.066, -0.10, 0.104,
                                   float(twist_free_rot3(-0.10, 0.104)))), wavelength=1e-10)
    g = make_geometry(det, *[truth[p] for p in PARAM_NAMES], 1e-10)
    d = 4.157e-10 / np.sqrt([1, 2, 3, 4, 5, 6, 8, 9])
    chi = np.linspace(-np.pi, np.pi, 300, endpoint=False)
    d1, d2 = frame_of(g).pixel_at(2 * np.arcsin(1e-10 / (2 * d))[:, None], chi[None, :])
    dsp = np.repeat(d, chi.size)
    ok = (d1.ravel() > 0) & (d1.ravel() < 1043) & (d2.ravel() > 0) & (d2.ravel() < 981)
    start = {**truth, "rot1": -0.09, "rot2": 0.09, "poni1": truth["poni1"] + 3e-4}
    start["rot3"] = float(twist_free_rot3(start["rot1"], start["rot2"]))
    r = refine_geometry(g, d1.ravel()[ok], d2.ravel()[ok], dsp[ok], start,
                        ("dist", "poni1", "poni2", "rot1", "rot2"))
    for p in PARAM_NAMES:
        assert r.values[p] == pytest.approx(truth[p], abs=1e-9)
