"""The ring-arc strategy of the blind search (`start.arc_traces`): a tilted detector's rings
as conic arcs of one geometry, against a simulated truth."""

import pytest

from geocal_cli.core.rings import start
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import (blind_calibrate, blind_error_px, only_strategy, ring_tth,
                            simulate_case)

#: Si on a Pilatus 2M CdTe tilted by 16°: 158 ring arcs, which read right only when every arc
#: joins the fit started from the longest arcs' solution (robustness benchmark case 240).
SI_TILTED = dict(calibrant="Si_SRM640e", detector="Pilatus2MCdTe", energy_kev=18.888478768341024,
                 distance_mm=105.58835585491572, center_px=[883.3774450767351, 713.7016842706337],
                 tilt_deg=16.125587619753123, tilt_plan_rotation_deg=-75.06016225151255,
                 hot_pixels=100, peak_counts=1083.7864557238447, width_px=1.4976590953789422,
                 seed=240)
#: Cr2O3 on a Pilatus 1M tilted by 3°: 153 arcs, which read right only with each arc's 2θ
#: given by the longest arcs' solution (the joint fit drifts; case 195).
CR2O3 = dict(calibrant="Cr2O3", detector="Pilatus1M", energy_kev=13.008873334694897,
             distance_mm=88.78089033154902, center_px=[530.1484932290978, 496.29653028298134],
             tilt_deg=2.909393977020992, tilt_plan_rotation_deg=-179.01993435612061,
             hot_pixels=100, peak_counts=16658.244680780914, width_px=1.9222783742402656,
             seed=195)


@pytest.mark.parametrize("case", [SI_TILTED, CR2O3], ids=["joint fit", "2θ from the geometry"])
def test_many_arcs_calibrate_blind_from_the_longest(case, tmp_path, monkeypatch):
    """More arcs than the family fit starts from (`FAMILY_ARCS`; fitting 150–170 arcs from
    the grid of starts took up to two minutes): each case needs one of the two readings
    `arc_traces` gives, and calibrates blind within 0.05 px (the arc strategy alone: the
    common-centre one now calibrates the Cr2O3 image too)."""
    from geocal_cli.core.geometry.metrics import ring_position_error

    only_strategy(monkeypatch, "ring arcs of a tilted detector")
    sim, cfg = simulate_case(case, tmp_path)
    g = sim.geometry
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    res = blind_calibrate(sim, d_spacing)
    assert res.blind["strategy"] == "ring arcs of a tilted detector"
    assert res.blind["arcs"] > start.FAMILY_ARCS
    err = ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


#: Corundum on a MAR345 85 mm away, tilted by 22°: the detector is nearer than a fifth of its
#: diagonal, below the family fit's grid of distances before it reached down to 0.12 of it
#: (robustness benchmark case 117, refused for a wavelength that "did not fit").
CORUNDUM_NEAR = dict(calibrant="alpha_Al2O3_SRM676a_2015", detector="Mar345",
                     energy_kev=15.721341588108823, distance_mm=85.31151516950516,
                     center_px=[1737.5125373904787, 1732.1062598930998],
                     tilt_deg=21.72729747869116, tilt_plan_rotation_deg=-66.50241054751193,
                     beamstop_radius_px=35.8207668034906, hot_pixels=0,
                     peak_counts=5749.754721515864, width_px=1.345591671975277, seed=117)


def test_a_near_tilted_detector_calibrates_from_its_arcs(tmp_path, monkeypatch):
    only_strategy(monkeypatch, "ring arcs of a tilted detector")
    sim, cfg = simulate_case(CORUNDUM_NEAR, tmp_path)
    err = blind_error_px(sim, load_calibrant(cfg.calibrant).d_spacing,
                         "ring arcs of a tilted detector")
    assert err <= 0.05, f"ring-position error {err:.4f} px"
