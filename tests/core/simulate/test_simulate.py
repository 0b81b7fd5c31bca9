"""The simulator must draw rings where the truth geometry puts them, independently of our
calibrator: pyFAI integrates the image with the truth geometry, peaks fall on the calibrant."""

import numpy as np

from tests.conftest import ring_tth


def test_rings_integrate_to_calibrant_angles(lab6_pilatus):
    import pyFAI.integrator.azimuthal as az

    from geocal_cli.io.calibrants import load_calibrant

    sim, _ = lab6_pilatus
    g = sim.geometry
    ai = az.AzimuthalIntegrator(dist=g.dist, poni1=g.poni1, poni2=g.poni2, rot1=g.rot1,
                                rot2=g.rot2, rot3=g.rot3, detector=g.detector, wavelength=g.wavelength)
    data = sim.data.astype(float)
    res = ai.integrate1d(data, 4000, unit="2th_deg", mask=(sim.data < 0) | (sim.data > 1e5),
                         method=("no", "histogram", "cython"))
    from scipy.optimize import curve_fit

    x, y = res.radial, res.intensity
    tth = np.degrees(ring_tth(load_calibrant("LaB6").d_spacing, g.wavelength))
    tth = tth[(tth > x[0] + 0.5) & (tth < x[-1] - 0.5)]
    isolated = tth[np.min(np.abs(tth[:, None] - tth[None, :]) + 99 * np.eye(tth.size), 1) > 0.6]
    found = []
    for t in isolated:   # a handful of rings: a Gaussian + line fit each
        sel = np.abs(x - t) < 0.25
        p, _ = curve_fit(lambda u, a, c, s, b0, b1: a * np.exp(-0.5 * ((u - c) / s) ** 2) + b0 + b1 * u,
                         x[sel], y[sel], p0=[y[sel].max(), t, 0.05, y[sel].min(), 0.0])
        found.append(p[1])
    assert len(found) >= 5
    # Degrees; one pixel is ≈ 0.04° here, so 0.002° is 0.05 px.
    assert np.abs(np.array(found) - isolated).max() < 0.002


def test_gaps_negative_and_hot_pixels_present(lab6_pilatus):
    sim, cfg = lab6_pilatus
    assert (sim.data == -1).sum() == sim.geometry.detector.mask.sum()
    assert (sim.data >= 1_000_000).sum() == cfg.hot_pixels


def test_seeded_images_are_reproducible(tmp_path):
    from tests.conftest import simulate_case

    case = dict(detector="Pilatus100k", calibrant="Si", energy_kev=20.0, distance_mm=100.0, seed=3)
    a, _ = simulate_case(case, tmp_path / "a")
    b, _ = simulate_case(case, tmp_path / "b")
    assert np.array_equal(a.data, b.data)
    assert a.data.dtype == np.int32
    c, _ = simulate_case({**case, "seed": 4}, tmp_path / "c")
    assert not np.array_equal(a.data, c.data)
