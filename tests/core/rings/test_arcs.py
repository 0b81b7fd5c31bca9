"""The ring-arc strategy of the blind search (`start.arc_traces`): a tilted detector's rings
as conic arcs of one geometry, against a simulated truth."""

from geocal_cli.core.rings import start
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import blind_calibrate, ring_tth, simulate_case

#: LaB6 on a Mar345 tilted by 20°, the beam 61 px inside the edge: 80 ring arcs, weak rings
#: (robustness benchmark case 137).
LAB6_MAR_TILTED = dict(calibrant="LaB6_SRM660a", detector="Mar345", energy_kev=36.47929278112509,
                       distance_mm=195.955423160182, center_px=[1819.670556224061, 61.08778807363409],
                       tilt_deg=19.74178486233942, tilt_plan_rotation_deg=108.33878119830757,
                       hot_pixels=0, peak_counts=92.66536303907715, width_px=1.702212404567916,
                       seed=137)


def test_many_arcs_calibrate_blind_from_the_longest(tmp_path):
    """More arcs than the family fit takes (`FAMILY_ARCS`): the longest fix the geometry, every
    arc gets its 2θ from it, and the image calibrates blind within 0.05 px. (Fitting all 80,
    one 2θ each, took two minutes.)"""
    from geocal_cli.core.geometry.metrics import ring_position_error

    sim, cfg = simulate_case(LAB6_MAR_TILTED, tmp_path)
    g = sim.geometry
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    res = blind_calibrate(sim, d_spacing)
    assert res.blind["strategy"] == "ring arcs of a tilted detector"
    assert res.blind["arcs"] > start.FAMILY_ARCS
    err = ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err <= 0.05, f"ring-position error {err:.4f} px"
