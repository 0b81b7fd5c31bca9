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
