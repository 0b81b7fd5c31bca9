"""The ring-arc strategy of the blind search (`start.arc_traces`): a tilted detector's rings
as conic arcs of one geometry, against a simulated truth."""

import pytest

from geocal_cli.core.rings import start
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import (blind_calibrate, blind_error_px, only_strategy, ring_tth,
                            simulate_case)

ARCS = "ring arcs of a tilted detector"


def _assert_arcs_calibrate(sim, cfg) -> None:
    """The image calibrates blind from the ring-arc strategy within 0.05 px of its truth."""
    err = blind_error_px(sim, load_calibrant(cfg.calibrant, cfg.scattering).d_spacing, ARCS)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


def _assert_drawn_arcs_calibrate(case: dict, tmp_path) -> None:
    """`_assert_arcs_calibrate` on the image the simulator draws of `case`."""
    _assert_arcs_calibrate(*simulate_case(case, tmp_path))


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

    only_strategy(monkeypatch, ARCS)
    sim, cfg = simulate_case(case, tmp_path)
    g = sim.geometry
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    res = blind_calibrate(sim, d_spacing)
    assert res.blind["strategy"] == ARCS
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
    only_strategy(monkeypatch, ARCS)
    _assert_drawn_arcs_calibrate(CORUNDUM_NEAR, tmp_path)


#: Vanadinite at 5.8 keV 98 mm from a 1500 × 1200 detector of 172 µm pixels tilted by 34°,
#: weak broad rings (23 counts, σ 3.3 px) to 2θ = 69° (robustness case 15): the family fit
#: of its 43 arcs stopped 3.7 % short with every 2θ 1.1° high, and no assignment held.
VANADINITE_STEEP = dict(calibrant="vanadinite", pixel_size_um=[172.0, 172.0], shape=[1500, 1200],
                        energy_kev=5.7657546574029395, distance_mm=97.75175633227119,
                        center_px=[760.5123240903501, 616.146472468187],
                        tilt_deg=34.27813662170526, tilt_plan_rotation_deg=123.76441629503131,
                        hot_pixels=10, peak_counts=23.378500490400004,
                        width_px=3.3465927475108503, seed=15)


def test_a_family_fit_stopped_along_its_valley_is_continued(tmp_path):
    _assert_drawn_arcs_calibrate(VANADINITE_STEEP, tmp_path)


#: Corundum at 5.5 keV 20 mm from a Pilatus 2M, the beam 78 px off its edge: weak rings to
#: 2θ = 76°, whose arcs the reading takes for 13 rings where 7 are, pieces of one ring 1 %
#: apart. The right assignment explains 6 of the 13, and it was not enough (robustness case
#: 11, refused); a hypothesis on one partial ring also ended the reading's later ones.
CORUNDUM_PIECES = dict(calibrant="alpha_Al2O3_SRM676a_2015", detector="Pilatus2M",
                       energy_kev=5.477304636899741, distance_mm=20.0,
                       center_px=[-77.7096621583643, 409.84994521837876],
                       tilt_deg=4.741642266458875, tilt_plan_rotation_deg=4.100407849174559,
                       hot_pixels=100, peak_counts=64.76938282349828, width_px=2.8438456791875275,
                       seed=11)


def test_pieces_of_one_ring_read_as_rings_count_as_that_ring(tmp_path):
    _assert_drawn_arcs_calibrate(CORUNDUM_PIECES, tmp_path)


#: Corundum 56 mm from a Perkin Elmer flat panel tilted by 29° (robustness benchmark case 77):
#: the rings crowd on one side, their ridges touch there, and the longest arcs are chains of
#: two to four rings that no single geometry fits.
CORUNDUM_CROWDED = dict(calibrant="alpha_Al2O3", detector="Perkin", energy_kev=14.47391706290766,
                        distance_mm=55.63809428887511,
                        center_px=[1016.9098722305714, 1045.3271762423967],
                        tilt_deg=28.739687007925045, tilt_plan_rotation_deg=37.431014176898714,
                        peak_counts=8257.942247970686, width_px=1.0364190219120852,
                        beamstop_radius_px=17.59456391027659, hot_pixels=10, seed=77)


@pytest.fixture(scope="module")
def corundum_crowded(tmp_path_factory):
    return simulate_case(CORUNDUM_CROWDED, tmp_path_factory.mktemp("crowded"))


def _one_ring_arcs(sim):
    """(d1, d2, arc, centres, radii) of the family fit on the arcs that are one ring each,
    picked as `start.arc_traces` picks them; asserts there are 3 or more, not all arcs."""
    import numpy as np

    from geocal_cli.io.images import valid_pixels

    ridges = start.find_ring_ridges(sim.data, valid_pixels(sim.data))
    arcs, picks = start.ring_arcs(ridges)
    one = [i for i, (idx, _) in enumerate(arcs) if start._one_ring(ridges, idx)]
    assert 3 <= len(one) < len(arcs)
    sel = np.concatenate([picks[i] for i in one])
    arc = np.repeat(np.arange(len(one)), [picks[i].size for i in one])
    return (ridges.d1[sel], ridges.d2[sel], arc,
            np.array([[arcs[i][1].c1, arcs[i][1].c2] for i in one]),
            np.array([arcs[i][1].radius for i in one]))


def test_the_family_fit_of_one_ring_arcs_finds_the_geometry_and_says_its_cost_in_pixels(
        corundum_crowded):
    """On the arcs that are one ring each, the ring-family fit lands within 5 % of the
    distance, and its cost is the mean |residual| of the ridge pixels under the geometry it
    returns. (Measured against the start's 2θ gradient, fits that drifted 1.5–5.8 m away,
    where every 2θ difference shrinks, reported 1.1 px for arcs 13–31 px off.)"""
    import numpy as np

    from geocal_cli.core.geometry.frame import frame_of, geometry_from_values
    from geocal_cli.core.rings.family import fit_ring_family

    sim, _ = corundum_crowded
    g = sim.geometry
    d1, d2, arc, centres, radii = _one_ring_arcs(sim)
    fam = fit_ring_family(g.detector, d1, d2, arc, centres, radii, g.wavelength, max_nfev=40)
    assert fam.values["dist"] == pytest.approx(g.dist, rel=0.05)
    frame = frame_of(geometry_from_values(g.detector, {**fam.values, "wavelength": g.wavelength}))
    residual_px = (frame.tth(d1, d2) - fam.tth[arc]) / frame.tth_gradient(d1, d2)
    assert fam.cost == pytest.approx(np.mean(np.abs(residual_px)), rel=1e-6)
    assert fam.cost <= start.FAMILY_COST_PX


def test_a_family_fit_collapsed_onto_the_sample_is_no_fit(corundum_crowded):
    """As the distance goes to 0 every arc's 2θ goes to 90° and the residuals in pixels of
    that geometry vanish: started one pixel from the sample, the fit of the one-ring arcs
    ends at 10⁻¹³ px with a cost of 10⁻⁵ px, all arcs one ring (on the 256² Au electron
    pattern such a fit ended the arc strategy's search). No fit is returned below
    `MIN_DIST_PX`."""
    from geocal_cli.core.geometry.frame import make_geometry, poni_for_beam_center
    from geocal_cli.core.rings.family import MIN_DIST_PX, fit_ring_family

    sim, _ = corundum_crowded
    g = sim.geometry
    dist = g.detector.pixel1
    p1, p2 = poni_for_beam_center(make_geometry(g.detector, dist, 0, 0, 0, 0, 0, g.wavelength),
                                  *CORUNDUM_CROWDED["center_px"])
    fam = fit_ring_family(g.detector, *_one_ring_arcs(sim), g.wavelength, max_nfev=40,
                          start=dict(dist=dist, poni1=p1, poni2=p2, rot1=0.0, rot2=0.0))
    assert fam is None or fam.values["dist"] >= MIN_DIST_PX * g.detector.pixel1


def test_rings_crowded_by_a_strong_tilt_calibrate_from_their_one_ring_arcs(corundum_crowded,
                                                                          monkeypatch):
    """The whole-arc family fails (its chains of rings fit no geometry), the one-ring arcs
    carry it, and among their assignments the one of three rings wins over an excellent fit
    of two (on two rings any assignment fits excellently; this one, 100 px from the truth,
    ended the search): blind within 0.05 px, where the search refused."""
    sim, cfg = corundum_crowded
    only_strategy(monkeypatch, ARCS)
    _assert_arcs_calibrate(sim, cfg)


#: LaB6 at 12.9 keV 72 mm from a 1000² detector of 200 µm pixels tilted by 24.5°, the beam
#: 17 px from its top edge: 87 arcs of weak spotty rings at 2θ 38–86° (robustness case 234
#: on a smaller detector). The arcs' circle centres extrapolate to a beam far from the truth,
#: and no start of the grid reaches it: its best reading stood 85 px off and none held.
LAB6_WIDE = dict(calibrant="LaB6", pixel_size_um=[200.0, 200.0], shape=[1000, 1000],
                 energy_kev=12.918689912757516, distance_mm=79.50768004566042,
                 center_px=[64.9, 17.3], tilt_deg=24.521261365409202,
                 tilt_plan_rotation_deg=133.0532490613527, peak_counts=24.72, width_px=1.77,
                 beamstop_radius_px=13.3, spotty=0.52, hot_pixels=0, seed=234)


@pytest.fixture(scope="module")
def lab6_wide(tmp_path_factory):
    """(SimulateResult, config, the family fit's inputs on the longest arcs as
    `start._family_readings` picks them: d1, d2, arc, centres, radii)."""
    import numpy as np

    from geocal_cli.io.images import valid_pixels

    sim, cfg = simulate_case(LAB6_WIDE, tmp_path_factory.mktemp("wide"))
    ridges = start.find_ring_ridges(sim.data, valid_pixels(sim.data))
    arcs, picks = start.ring_arcs(ridges)
    first = sorted(sorted(range(len(arcs)), key=lambda i: -arcs[i][0].size)[:start.FAMILY_ARCS])
    sel = np.concatenate([picks[i] for i in first])
    return sim, cfg, (ridges.d1[sel], ridges.d2[sel],
                      np.repeat(np.arange(len(first)), [picks[i].size for i in first]),
                      np.array([[arcs[i][1].c1, arcs[i][1].c2] for i in first]),
                      np.array([arcs[i][1].radius for i in first]))


def _beam_off_px(values: dict, truth) -> float:
    """Pixels between the beam centre of a family fit's values and the truth's."""
    import numpy as np

    from geocal_cli.core.geometry.frame import frame_of, geometry_from_values

    fitted = geometry_from_values(truth.detector, {**values, "rot3": 0.0,
                                                   "wavelength": truth.wavelength})
    return float(np.hypot(*np.subtract(frame_of(fitted).beam_center(),
                                       frame_of(truth).beam_center())))


def test_a_family_fit_in_its_own_pixels_stays_at_the_truth(lab6_wide):
    """Started at the truth, the family fit measured in the start's pixels slides 130 px
    away, to a geometry whose residuals look smaller there; measured in its own pixels it
    stays within 2 px of the beam and 0.3 % of the distance."""
    from geocal_cli.core.rings.family import fit_ring_family

    sim, _, arcs = lab6_wide
    g = sim.geometry
    truth = {k: getattr(g, k) for k in ("dist", "poni1", "poni2", "rot1", "rot2")}
    own = fit_ring_family(g.detector, *arcs, g.wavelength, max_nfev=40, start=truth,
                          own_pixels=True)
    assert _beam_off_px(own.values, g) <= 2.0
    assert own.values["dist"] == pytest.approx(g.dist, rel=0.003)
    slid = fit_ring_family(g.detector, *arcs, g.wavelength, max_nfev=40, start=truth)
    assert slid is None or _beam_off_px(slid.values, g) > 50.0


def test_the_arcs_most_coherent_geometry_finds_the_beam_without_a_start(lab6_wide):
    """Over the whole range, the geometry under which each arc's pixels share one 2θ best
    lies within 5 px of the beam and 2° of the tilt, and the family fit from it in its own
    pixels within 3 px."""
    from geocal_cli.core.rings.family import coherent_start, fit_ring_family

    sim, _, arcs = lab6_wide
    g = sim.geometry
    found = coherent_start(g.detector, *arcs[:3], sim.data.shape)
    assert _beam_off_px(found, g) <= 5.0
    from geocal_cli.core.geometry.frame import geometry_from_values

    tilt = geometry_from_values(g.detector, {**found, "rot3": 0.0}).getFit2D()["tilt"]
    assert tilt == pytest.approx(LAB6_WIDE["tilt_deg"], abs=2.0)
    fam = fit_ring_family(g.detector, *arcs, g.wavelength, max_nfev=40, start=found,
                          own_pixels=True)
    assert _beam_off_px(fam.values, g) <= 3.0


def test_wide_angle_arcs_far_from_their_extrapolated_centre_calibrate_blind(lab6_wide,
                                                                            monkeypatch):
    """The grid's readings fail; those from the arcs' most coherent geometry hold: blind
    within 0.05 px, where every strategy refused."""
    sim, cfg, _ = lab6_wide
    only_strategy(monkeypatch, ARCS)
    _assert_arcs_calibrate(sim, cfg)


#: Cristobalite at 8.9 keV 148 mm from a Pilatus 2M CdTe tilted by 33°, the beam 43 px off
#: its left edge, broad spotty rings (robustness case 345): the rings crowd on the far side
#: and the longest arcs chain them there, so that even at the truth the family fit of the 48
#: longest arcs stands at 4.9 px, beyond `FAMILY_COST_PX`, and no arc fits one ellipse.
CRISTOBALITE_CHAINED = dict(calibrant="cristobaltite", detector="Pilatus2MCdTe",
                            energy_kev=8.932737261305506, distance_mm=147.6356682847947,
                            center_px=[-42.820668726689334, 928.0606639295937],
                            tilt_deg=32.86055130147463,
                            tilt_plan_rotation_deg=-174.65578059563265,
                            peak_counts=3502.9135214803227, width_px=2.4600356416411686,
                            beamstop_radius_px=19.444107516586712,
                            beamstop_arm_deg=-89.57648107960985, spotty=0.5154742025638683,
                            hot_pixels=0, seed=345)


def test_arcs_chaining_rings_are_left_out_of_the_coherent_reading(tmp_path, monkeypatch):
    """From the arcs' most coherent geometry, the arcs whose pixels sit within
    `FAMILY_COST_PX` of one 2θ carry the reading: blind within 0.05 px, where every
    strategy refused."""
    sim, cfg = simulate_case(CRISTOBALITE_CHAINED, tmp_path)
    only_strategy(monkeypatch, ARCS)
    _assert_arcs_calibrate(sim, cfg)


#: Graphite (Mo Kα1, Kα2) 20 mm from a 512² detector of 55 µm pixels tilted 32.8°, broad
#: rings crossed by a beamstop arm (robustness case 660): the ridge bands touch and join
#: into one arc of 26 000 pixels; the ridge crests stay apart.
GRAPHITE_JOINED = dict(calibrant="graphite", pixel_size_um=[55.0, 55.0], shape=[512, 512],
                       wavelength_a=0.55941, kalpha2_a=0.5638, distance_mm=20.0,
                       center_px=[248.26855109691314, 100.79923886699534],
                       tilt_deg=32.770851964487335, tilt_plan_rotation_deg=-132.3671078822848,
                       peak_counts=22479.477824001253, width_px=2.6369779608722363,
                       beamstop_radius_px=11.524329583534069, beamstop_arm_deg=78.04046002508335,
                       hot_pixels=100, seed=660)


def test_rings_whose_ridges_all_join_calibrate_from_their_crests(tmp_path):
    """Fewer than three ridge arcs, but a dozen crest arcs that are one ring each: the arc
    strategy reads those, and the image calibrates blind within 0.05 px, where every
    strategy refused."""
    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.rings.calibrate import calibrate
    from geocal_cli.core.rings.doublet import Doublet
    from geocal_cli.io.images import valid_pixels

    sim, cfg = simulate_case(GRAPHITE_JOINED, tmp_path)
    g = sim.geometry
    valid = valid_pixels(sim.data)
    ridges = start.find_ring_ridges(sim.data, valid)
    assert len(start.ring_arcs(ridges)[0]) < 3
    assert len(start._one_rings(ridges, start.ring_arcs(ridges, crests=True)[0])) >= 10
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    res = calibrate(sim.data, valid, g.detector, g.wavelength, d_spacing,
                    doublet=Doublet(cfg.kalpha2_a / cfg.wavelength_a, 0.5))
    assert res.blind["strategy"] == ARCS
    err = ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


#: CeO2 at 14.2 keV 20 mm from a 3100² detector of 75 µm pixels tilted by 15.8°, the beam
#: 306 px off its edge: only rings of 2θ 40–82°, long flat arcs (robustness case 814, on an
#: Eiger 9M). Binned by 3 for the ridges, each ridge band is ± 5 px wide: no arc passed for
#: one ring, and the arcs' family fit stood at 3.3 px, its threshold 3.
CEO2_WIDE_BINNED = dict(calibrant="CeO2", pixel_size_um=[75.0, 75.0], shape=[3100, 3100],
                        energy_kev=14.17303717760609, distance_mm=20.0,
                        center_px=[-305.56955638525653, 1196.0], tilt_deg=15.803562745631472,
                        tilt_plan_rotation_deg=-4.2536382630866285, hot_pixels=100,
                        peak_counts=271.9169506350883, width_px=2.4264956028260887, seed=814)


def test_wide_angle_arcs_of_a_binned_image_calibrate_from_their_lines_centres(tmp_path):
    _assert_drawn_arcs_calibrate(CEO2_WIDE_BINNED, tmp_path)


#: CeO2 at 6.2 keV 126 mm from an Eiger 9M tilted by 31°, the beam by its edge behind a
#: beamstop with an arm: 26 arcs fit one family at 1.5 px at their lines' centres, two of
#: them read at 2θ 0.9° and 7.6° (no rings of CeO2), every 2θ 0.6° low, and no assignment
#: explained half the rings (robustness case 879). The arcs that are one ring each, read
#: after every arc's readings, calibrate it.
CEO2_EIGER_STEEP = dict(calibrant="CeO2", detector="Eiger9M", energy_kev=6.196550157073299,
                        distance_mm=126.18888427700705,
                        center_px=[1705.9173051657015, 115.42924179382825],
                        tilt_deg=30.753075559230535, tilt_plan_rotation_deg=-118.77699874950281,
                        beamstop_radius_px=14.447817859416002,
                        beamstop_arm_deg=-105.35041467921457, hot_pixels=100,
                        peak_counts=256.17814111757434, width_px=2.3892256203173248, seed=879)


def test_arcs_of_no_ring_that_hold_the_family_off_leave_the_one_ring_arcs_to_read(tmp_path):
    _assert_drawn_arcs_calibrate(CEO2_EIGER_STEEP, tmp_path)
