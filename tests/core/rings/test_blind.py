"""Ring tracing around a common centre (`blind.trace_rings`) on ridge pixels drawn from a
known geometry."""

from __future__ import annotations

import numpy as np
import pyFAI.detectors

from geocal_cli.core.geometry.frame import frame_of, make_geometry
from geocal_cli.core.rings.blind import center_drift_of, trace_rings
from geocal_cli.core.rings.ridges import RidgePixels
from geocal_cli.core.rings.start import common_center
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import ring_tth


def _dense_tilted_ridges(seed=0):
    """Ridge pixels of LaB6 at 115 keV on 75 µm pixels 153 mm away, tilted by 4.35° (the
    robustness benchmark's case 135): 91 rings within 570 px of the beam, whose centres move
    by 12 px from the first ring to the last. Pixels about 3 px apart along each ring (a
    binned ridge map), jittered by ±1 px; (ridges, truth frame, ring 2θ)."""
    det = pyFAI.detectors.Detector(75e-6, 75e-6, max_shape=(3269, 3110))
    g = make_geometry(det, 0.1527, 0.1266, 0.1277, 0.0390, -0.0652)
    g.wavelength = 1.0764e-11
    frame = frame_of(g)
    tth = ring_tth(load_calibrant("LaB6_SRM660a").d_spacing, g.wavelength)
    rng = np.random.default_rng(seed)
    d1, d2 = [], []
    for t in tth:
        n = int(2 * np.pi * g.dist * np.tan(t) / 75e-6 / 3)
        p1, p2 = frame.pixel_at(np.full(n, t), rng.uniform(-np.pi, np.pi, n))
        d1.append(p1 + rng.uniform(-1, 1, n))
        d2.append(p2 + rng.uniform(-1, 1, n))
    d1, d2 = np.concatenate(d1), np.concatenate(d2)
    # Ridge normals point along the radius (to a fraction of a degree at this tilt).
    b1, b2 = frame.beam_center()
    r = np.hypot(d1 - b1, d2 - b2)
    return (RidgePixels(d1=d1, d2=d2, n1=(d1 - b1) / r, n2=(d2 - b2) / r,
                        strength=np.ones(d1.size), group=np.zeros(d1.size, int)), frame, tth)


def test_the_inner_rings_of_a_dense_tilted_pattern_are_traced_one_by_one():
    """Around one common centre the few-degree tilt smears the small inner rings, whose
    centres sit near the beam while the many outer rings set the common one, and the 30 ring
    candidates went to the outer rings, which have the most pixels. The traces follow the
    centres' drift and rank rings by pixels per unit of circumference: the first four rings
    are traced, each a ring of its own."""
    ridges, frame, tth = _dense_tilted_ridges()
    c1, c2, _ = common_center(ridges, (3269, 3110))
    traces = trace_rings(ridges, c1, c2)
    spacing = np.diff(tth[:5])
    for k in range(4):
        one = [t for t in traces
               if np.mean(np.abs(frame.tth(t.d1, t.d2) - tth[k]) < 0.25 * spacing[k]) > 0.9]
        assert one, f"ring {k + 1} not traced on its own"


def test_the_centre_drift_is_measured_from_the_traces():
    """The ring centres move with r² along the tilt plane: the drift fitted through the full
    traces predicts the outermost ring's centre from the reference ring's within 1 px."""
    ridges, frame, tth = _dense_tilted_ridges()
    c1, c2, _ = common_center(ridges, (3269, 3110))
    traces = trace_rings(ridges, c1, c2)
    full = [t for t in traces if t.arc > np.pi]
    ref = min(full, key=lambda t: t.ellipse.radius).ellipse
    far = max(full, key=lambda t: t.ellipse.radius).ellipse
    drift = center_drift_of(full, ref)
    moved = np.hypot(far.c1 - ref.c1, far.c2 - ref.c2)
    predicted = np.array([ref.c1, ref.c2]) + drift * (far.radius ** 2 - ref.radius ** 2)
    assert moved > 5.0
    assert np.hypot(*(predicted - [far.c1, far.c2])) < 1.0


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
