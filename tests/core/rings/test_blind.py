"""Ring tracing around a common centre (`blind.trace_rings`) on ridge pixels drawn from a
known geometry."""

from __future__ import annotations

import numpy as np
import pyFAI.detectors

from geocal_cli.core.geometry.frame import frame_of, make_geometry
from geocal_cli.core.rings.blind import center_drift_of, refine_center, trace_rings, vote_center
from geocal_cli.core.rings.ridges import RidgePixels
from geocal_cli.core.rings.start import common_center
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import blind_error_px, only_strategy, ring_tth, simulate_case


def _dense_tilted_ridges(seed=0):
    """Ridge pixels of LaB6 at 115 keV on 75 µm pixels 153 mm away, tilted by 4.35° (the
    robustness benchmark's case 135): 91 rings within 570 px of the beam, whose centres move
    by 12 px from the first ring to the last (`_ridges_of`); (ridges, truth frame, ring 2θ)."""
    det = pyFAI.detectors.Detector(75e-6, 75e-6, max_shape=(3269, 3110))
    g = make_geometry(det, 0.1527, 0.1266, 0.1277, 0.0390, -0.0652)
    g.wavelength = 1.0764e-11
    tth = ring_tth(load_calibrant("LaB6_SRM660a").d_spacing, g.wavelength)
    return (*_ridges_of(g, tth, 3.0, seed), tth)


def _ridges_of(g, tth, spacing_px, seed):
    """Ridge pixels of rings `tth` (radians) under geometry `g`, about `spacing_px` apart
    along each ring (a binned ridge map) and jittered by ±1 px, only those on the detector;
    normals along the radius from the beam (to a fraction of a degree at a few degrees of
    tilt). (ridges, frame)."""
    frame = frame_of(g)
    shape = g.detector.max_shape
    rng = np.random.default_rng(seed)
    d1, d2 = [], []
    for t in tth:
        n = int(2 * np.pi * g.dist * np.tan(t) / g.detector.pixel1 / spacing_px)
        p1, p2 = frame.pixel_at(np.full(n, t), rng.uniform(-np.pi, np.pi, n))
        d1.append(p1 + rng.uniform(-1, 1, n))
        d2.append(p2 + rng.uniform(-1, 1, n))
    d1, d2 = np.concatenate(d1), np.concatenate(d2)
    on = (d1 >= 0) & (d1 < shape[0]) & (d2 >= 0) & (d2 < shape[1])
    d1, d2 = d1[on], d2[on]
    b1, b2 = frame.beam_center()
    r = np.hypot(d1 - b1, d2 - b2)
    return (RidgePixels(d1=d1, d2=d2, n1=(d1 - b1) / r, n2=(d2 - b2) / r,
                        strength=np.ones(d1.size), group=np.zeros(d1.size, int),
                        crest_group=np.zeros(d1.size, int), line1=d1, line2=d2), frame)


def test_the_inner_rings_of_a_dense_tilted_pattern_are_traced_one_by_one():
    """Around one common centre the few-degree tilt smears the small inner rings, whose
    centres sit near the beam while the many outer rings set the common one, and the 30 ring
    candidates went to the outer rings, which have the most pixels. The traces follow the
    centres' drift and rank rings by pixels per unit of circumference: the first four rings
    are traced, each a ring of its own."""
    ridges, frame, tth = _dense_tilted_ridges()
    c1, c2, _, drift = common_center(ridges, (3269, 3110))
    traces = trace_rings(ridges, c1, c2, drift=drift)
    spacing = np.diff(tth[:5])
    for k in range(4):
        one = [t for t in traces
               if np.mean(np.abs(frame.tth(t.d1, t.d2) - tth[k]) < 0.25 * spacing[k]) > 0.9]
        assert one, f"ring {k + 1} not traced on its own"


def test_the_centre_drift_is_measured_from_the_traces():
    """The ring centres move with r² along the tilt plane: the drift fitted through the full
    traces predicts the outermost ring's centre from the reference ring's within 1 px."""
    ridges, frame, tth = _dense_tilted_ridges()
    c1, c2, _, drift = common_center(ridges, (3269, 3110))
    traces = trace_rings(ridges, c1, c2, drift=drift)
    full = [t for t in traces if t.arc > np.pi]
    ref = min(full, key=lambda t: t.ellipse.radius).ellipse
    far = max(full, key=lambda t: t.ellipse.radius).ellipse
    drift = center_drift_of(full, ref)
    moved = np.hypot(far.c1 - ref.c1, far.c2 - ref.c2)
    predicted = np.array([ref.c1, ref.c2]) + drift * (far.radius ** 2 - ref.radius ** 2)
    assert moved > 5.0
    assert np.hypot(*(predicted - [far.c1, far.c2])) < 1.0


def test_the_drift_of_half_rings_around_a_beam_off_the_edge_is_found_from_the_ridges():
    """Vanadinite at 10.2 keV, 70 mm, tilted 4° (the robustness benchmark's case 7), on
    172 µm pixels with the beam 24 px off the detector's edge: every ring is an arc of at
    most half a turn, so no trace measures the drift of their centres, which move by 90 px
    from the first ring to the last. Sharpened without a drift, the common centre sits over
    30 px from the beam, among the outer rings' centres, and the inner rings smear
    together. Found with the drift, the centre of a ring of radius 0 lies within 3 px of
    the beam, and of the first 20 rings twice as many are traced on their own."""
    det = pyFAI.detectors.Detector(172e-6, 172e-6, max_shape=(1500, 1200))
    g = make_geometry(det, 0.06976833, 0.1477644, -0.004964649, -0.012377, -0.068449,
                      0.000424, 1.212168e-10)
    tth = ring_tth(load_calibrant("vanadinite").d_spacing, g.wavelength)
    tth = tth[np.isfinite(tth) & (tth < np.radians(75))]
    ridges, frame = _ridges_of(g, tth, 3.0, 0)
    beam = np.array(frame.beam_center())
    vote = vote_center(ridges, (1500, 1200))[:2]
    assert np.hypot(*(np.array(refine_center(ridges, *vote)) - beam)) > 30
    c1, c2, _, drift = common_center(ridges, (1500, 1200))
    assert drift.any()
    assert np.hypot(c1 - beam[0], c2 - beam[1]) < 3.0

    def clean(traces):
        # Rings of the first 20 that one trace holds, with 3 in 4 of its pixels on them.
        return sum(any(np.mean(np.abs(frame.tth(t.d1, t.d2) - t_k) < np.radians(0.1)) >= 0.75
                       for t in traces) for t_k in tth[:20])

    with_drift = clean(trace_rings(ridges, c1, c2, drift=drift))
    assert with_drift >= 6
    assert with_drift >= 2 * clean(trace_rings(ridges, *refine_center(ridges, *vote)))


def test_half_rings_around_a_beam_off_the_edge_calibrate_around_a_common_centre(
        tmp_path, monkeypatch):
    """The image of case 7 (above) as the simulator draws it, with noise, module gaps, a
    beamstop and hot pixels: every blind start had refused it (the rounds stalled at 5.5 px
    from 3 of 9 traced rings, each trace a blend of up to 12 reflections). Its common
    centre, found with the drift, now starts a fit within 0.05 px of the truth."""
    sim, cfg = simulate_case(dict(
        calibrant="vanadinite", energy_kev=10.228300991728398, pixel_size_um=[172.0, 172.0],
        shape=[1500, 1200], distance_mm=69.93744897339988,
        center_px=[-23.84367233286955, 831.2844612355918], tilt_deg=3.9853471437602312,
        tilt_plan_rotation_deg=-79.7667796437216, peak_counts=17102.62047626875,
        width_px=2.177582439822455, beamstop_radius_px=20.57767070589263,
        beamstop_arm_deg=19.25904674681729, hot_pixels=10, seed=7), tmp_path)
    only_strategy(monkeypatch, "rings around a common centre")
    err = blind_error_px(sim, load_calibrant(cfg.calibrant).d_spacing,
                         "rings around a common centre")
    assert err <= 0.05, f"ring-position error {err:.4f} px"


def test_a_centred_untilted_pattern_takes_no_drift():
    """Two more parameters always sharpen the radii a little: on concentric rings the
    common centre comes without a drift, within 0.2 px of the beam."""
    det = pyFAI.detectors.Detector(75e-6, 75e-6, max_shape=(1024, 1024))
    g = make_geometry(det, 0.12, 512.3 * 75e-6, 498.6 * 75e-6, 0.0, 0.0, 0.0, 0.7e-10)
    tth = ring_tth(load_calibrant("CeO2").d_spacing, g.wavelength)[:12]
    ridges, frame = _ridges_of(g, tth, 3.0, 1)
    c1, c2, _, drift = common_center(ridges, (1024, 1024))
    assert not drift.any()
    assert np.hypot(*(np.array([c1, c2]) - frame.beam_center())) < 0.2


def test_further_assignment_hypotheses_are_fitted_only_when_asked_for(tmp_path, monkeypatch):
    """The first start of an excellent hypothesis costs one fit: the others (each two
    rounds of control points) wait until the caller refuses it."""
    import geocal_cli.core.rings.start as start
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.io.images import valid_pixels
    from tests.conftest import simulate_case

    sim, _ = simulate_case(dict(detector="Pilatus1M", calibrant="CeO2", energy_kev=20.0,
                                distance_mm=250.0, center_px=[480.0, 520.0], seed=4), tmp_path)
    valid = valid_pixels(sim.data, sim.geometry.detector.mask.astype(bool))
    traces, family, info = start.ring_traces(start.find_ring_ridges(sim.data, valid),
                                             sim.data.shape, lambda msg: None)
    fits = []
    rounds = start.refine_rounds
    monkeypatch.setattr(start, "refine_rounds", lambda *a, **k: fits.append(1) or rounds(*a, **k))
    d = load_calibrant("CeO2").d_spacing
    starts = start.start_from_traces(traces, family, info, prepare_image(sim.data, valid),
                                     sim.geometry.detector, sim.geometry.wavelength, d,
                                     lambda msg: None)
    values, blind = next(starts)
    assert blind["start_sigma_px"] <= start.EXCELLENT_SIGMA_PX
    assert abs(values["dist"] / sim.geometry.dist - 1) < 0.01
    assert len(fits) == 1
    list(starts)
    assert len(fits) > 1


def test_a_drift_that_spreads_the_radii_beyond_the_detector_is_no_sharpness():
    """A drift that spreads the ridge radii over far more than the ridges' extent draws no
    ring on the detector: its sharpness is 0, without a histogram over the whole spread
    (Si on a 3072² Rayonix: three such histograms took 37 s and 21 GB)."""
    import tracemalloc

    from geocal_cli.core.rings.blind import sharpness

    ridges, frame, _ = _dense_tilted_ridges()
    c1, c2 = frame.beam_center()
    assert sharpness(ridges, c1, c2, 1.0, np.array([1e-5, 0.0])) > 0
    # r² reaches 3·10⁵ px² on these ridges: this drift spreads their radii over 3·10¹⁵ px,
    # where a histogram of 1 px bins cannot be held.
    tracemalloc.start()
    assert sharpness(ridges, c1, c2, 1.0, np.array([30.0, 0.0])) == 0.0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 30 * ridges.d1.size * 8  # a few arrays of the ridges' size
