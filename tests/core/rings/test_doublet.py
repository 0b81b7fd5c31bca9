"""The Kα1/Kα2 profile model: where the measured peak of a blended doublet sits."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.doublet import KALPHA_LINES, Doublet, lab_line


def test_an_unresolved_doublet_peaks_near_the_intensity_weighted_mean():
    mo = Doublet(0.71359 / 0.70930, 0.5)
    # separation 0.3 px under σ = 3 px lines: the centroid of the blend is near a third; the
    # background through the window ends leans towards Kα2 and takes a little back
    shift = mo.peak_shift_px(np.array([0.3]), np.array([3.0]), np.array([8.0]), np.array([3.2]),
                             0.5)
    assert shift[0] == pytest.approx(0.1, abs=0.01)


def test_a_resolved_doublet_peaks_at_kalpha1():
    cu = Doublet(1.54439 / 1.54056, 0.5)
    shift = cu.peak_shift_px(np.array([12.0]), np.array([1.0]), np.array([5.4]),
                             np.array([2.16]), 0.5)
    assert abs(shift[0]) < 0.01


def test_the_shift_grows_smoothly_from_resolved_to_blended():
    d = Doublet(1.006, 0.5)
    sep = np.linspace(0.1, 10, 60)
    frac = d.peak_shift_px(sep, np.full(sep.size, 1.5), np.full(sep.size, 8.0),
                           np.full(sep.size, 3.2), 0.5) / sep
    # The background through the window ends leans towards a Kα2 line at the window's edge:
    # the measured peak then moves a little below Kα1, as the image's does.
    assert np.all((frac >= -0.03) & (frac <= 1 / 3 + 0.02))
    assert frac[0] > 0.3 and abs(frac[-1]) < 0.03
    assert np.all(np.diff(frac[:30]) < 0)


def test_the_window_narrows_the_measured_width():
    """A window of ± 2.5σ with its background through the ends measures a single line a
    sixth narrower than it is: taking that measure for σ misplaced partly resolved doublets
    by 0.1-0.5 px."""
    d = Doublet(1.006, 0.5)
    _, width = d.measured(np.array([2.0]), np.array([0.0]), np.array([5.0]), np.array([2.0]), 0.5)
    assert 1.5 < width[0] < 1.8


def test_line_sigma_inverts_the_measure_blended_or_partly_resolved():
    d = Doublet(1.006, 0.5)
    sep = np.linspace(0.1, 6.0, 30)
    hw, half = np.full(sep.size, 7.0), np.full(sep.size, 2.8)
    _, width = d.measured(np.full(sep.size, 2.0), sep, hw, half, 0.5)
    assert np.allclose(d.line_sigma(width, sep, hw, half, 0.5), 2.0, atol=0.01)
    # Where the split inside the window makes the width, narrow lines measure alike too: the
    # blended rings' σ decides.
    _, narrow = d.measured(np.array([0.6]), np.array([3.9]), np.array([6.8]), np.array([2.7]), 0.5)
    both = d.line_sigma(np.r_[width[:3], narrow], np.r_[sep[:3], 3.9], np.r_[hw[:3], 6.8],
                        np.r_[half[:3], 2.7], 0.5)
    assert both[-1] > 1.0


def test_tth2_follows_bragg_at_the_longer_wavelength():
    d = Doublet(1.01, 0.5)
    tth1 = np.radians([10.0, 100.0, 179.0])
    tth2 = d.tth2(tth1)
    assert np.sin(tth2[0] / 2) == pytest.approx(1.01 * np.sin(tth1[0] / 2))
    assert np.isnan(tth2[2])                      # beyond backscattering: no Kα2 ring


@pytest.mark.parametrize("anode", sorted(KALPHA_LINES))
def test_a_lab_kalpha1_or_mean_is_recognised(anode):
    ka1, ka2 = KALPHA_LINES[anode]
    assert anode in lab_line(ka1 * 1e-10)
    assert f"{ka1},{ka2}" in lab_line((2 * ka1 + ka2) / 3 * 1e-10)


def test_a_synchrotron_wavelength_is_not_a_lab_line():
    assert lab_line(0.4066e-10) is None
    assert lab_line(0.7000e-10) is None


#: LaB6 with Mo Kα1/Kα2, 20 mm from a 512² detector of 55 µm pixels, σ = 2.6 px rings to
#: 2θ = 53°: the lines blend at small angles and part inside the search window at large
#: ones, where the window's ends cut their tails (case 95 of the robustness benchmark, 0.065
#: px from the truth while the model took the measured width for the lines' σ).
MO_NEAR = dict(calibrant="LaB6", wavelength_a=0.7093, kalpha2_a=0.71359, pixel_size_um=[55.0, 55.0],
               shape=[512, 512], distance_mm=20.0, center_px=[186.7296151731273, 100.04326412845597],
               tilt_plan_rotation_deg=-0.008518103773099028, peak_counts=194.20785338725693,
               width_px=2.632353444336459, beamstop_radius_px=31.528405857853347,
               beamstop_arm_deg=115.84476952554655, hot_pixels=100, seed=95)


def _calibrated(case: dict, folder, **options):
    """A robustness case simulated and calibrated blind under its doublet: the Calibration
    and its ring-position error against the truth (px, rms over every ring)."""
    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.rings.calibrate import calibrate
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.images import valid_pixels
    from tests.conftest import ring_tth, simulate_case

    sim, cfg = simulate_case(case, folder)
    g = sim.geometry
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    res = calibrate(sim.data, valid_pixels(sim.data), g.detector, g.wavelength, d_spacing,
                    doublet=Doublet(case["kalpha2_a"] / case["wavelength_a"], 0.5), **options)
    return res, ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength),
                                    sim.data.shape)


def test_partly_resolved_doublets_calibrate_against_kalpha1(tmp_path):
    _, err = _calibrated(MO_NEAR, tmp_path)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


def test_kalpha2_companions_are_the_weaker_ring_at_the_lines_radius_ratio():
    d = Doublet(0.5638 / 0.55941, 0.5)                             # Ag Kα
    distance = 1000.0
    tth1 = np.radians([8.0, 20.0, 40.0, 55.0])
    r1 = distance * np.tan(tth1)
    r2 = distance * np.tan(d.tth2(tth1))
    # A dense calibrant's next ring 5 % out, weaker than either line, is no companion.
    neighbour = r1[1] * 1.05
    radii = np.r_[r1, r2, neighbour]
    weights = np.r_[np.full(4, 2.0), np.full(4, 1.0), 0.5]
    assert d.companions(radii, weights).tolist() == [False] * 4 + [True] * 4 + [False]
    # The stronger of two lines is never the companion (spotty rings: Kα2 may trace stronger).
    assert not d.companions(radii, np.r_[np.full(4, 1.0), np.full(4, 2.0), 0.5])[4:8].any()


#: Si with Ag Kα1/Kα2 on a Pilatus 2M CdTe 204 mm away, the beam 347 px off the detector,
#: spotty σ = 3.4 px rings: the lines part by 8–17 px and the tracer finds 22 rings of 13
#: reflections. With every trace assigned, the best assignment started 7 px from the truth
#: and the rounds stalled at 1.3 px; the image was refused (robustness case 225).
AG_RESOLVED = dict(calibrant="Si_SRM640d", wavelength_a=0.55941, kalpha2_a=0.5638,
                   detector="Pilatus2MCdTe", distance_mm=203.6074747754314,
                   center_px=[-347.1301748989695, 941.2266310822074], tilt_deg=1.753336195542044,
                   tilt_plan_rotation_deg=-159.31489649593698, peak_counts=28863.243221307832,
                   width_px=3.4357765582485356, beamstop_radius_px=22.27508793034537,
                   beamstop_arm_deg=-71.08516253253705, spotty=0.760251084445521, seed=225)


def test_resolved_doublets_are_assigned_by_their_kalpha1_rings(tmp_path):
    said = []
    _, err = _calibrated(AG_RESOLVED, tmp_path, progress=said.append)
    assert any("Kα2 line of a stronger one" in m for m in said)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


#: Hydrocerussite under Ag Kα1/Kα2 on a MAR345 85 mm away, the beam 37 px inside its edge,
#: broad weak rings (robustness case 163): the answer refined again from itself took in one
#: control point of a ring at 28°, and the λ-free refit, which explained the points worse than
#: the given λ, put λ 2.9 % short at 5.2σ. The image was refused with "check the energy".
HYDROCERUSSITE_AG = dict(calibrant="hydrocerussite", wavelength_a=0.55941, kalpha2_a=0.5638,
                         detector="Mar345", distance_mm=85.40871419171414,
                         center_px=[1543.9430812577266, 37.47592370986287],
                         tilt_deg=2.5377257639323796, tilt_plan_rotation_deg=149.0445995383124,
                         beamstop_radius_px=16.668075042901656, hot_pixels=10,
                         peak_counts=100.21962945501282, width_px=3.1452308419693735, seed=163)


def test_a_right_energy_is_not_blamed_for_a_refit_that_explains_less(tmp_path):
    res, err = _calibrated(HYDROCERUSSITE_AG, tmp_path)
    check = res.audit.wavelength
    assert check.consistent and check.chi2_drop < 25.0
    # The broad weak doublet leaves it imprecise, as refined from the truth (0.11 px over
    # the first 60 rings), but far from a wrong answer.
    assert err <= 0.15, f"ring-position error {err:.4f} px"
