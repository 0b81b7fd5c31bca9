"""The rings measured without a fit (`unfitted.Unfitted`), in line or on a thread of their own."""

import numpy as np
import pytest

from geocal_cli.core.rings import unfitted
from geocal_cli.core.rings.start import find_ring_ridges
from geocal_cli.core.rings.unfitted import Unfitted
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.images import valid_pixels
from tests.conftest import simulate_case

CEO2 = dict(detector="Pilatus1M", calibrant="CeO2", energy_kev=30.0, distance_mm=210.0,
            center_px=[520.3, 480.6], tilt_deg=1.0, tilt_plan_rotation_deg=120.0,
            beamstop_radius_px=15.0, seed=41)


@pytest.fixture(scope="module")
def blind_args(tmp_path_factory):
    sim, _ = simulate_case(CEO2, tmp_path_factory.mktemp("unfitted"))
    g = sim.geometry
    valid = valid_pixels(sim.data, g.detector.mask.astype(bool))
    cal = {name: (load_calibrant(name).d_spacing, None) for name in ("CeO2", "LaB6", "Si")}
    return (sim.data, valid, g.detector, None, find_ring_ridges(sim.data, valid), cal,
            g.wavelength, "CeO2")


def test_rings_measured_on_a_thread_are_those_measured_in_line(blind_args, monkeypatch):
    monkeypatch.setattr(unfitted, "threads", lambda: 2)
    inline, threaded = Unfitted(*blind_args), Unfitted(*blind_args)
    threaded.start()
    assert threaded._running is not None
    threaded.locate((0.0, 0.0))  # too late: the measurement has started from the ridges
    frame_a, seen_a, counted_a = inline.measure()
    frame_b, seen_b, counted_b = threaded.measure()
    np.testing.assert_array_equal(frame_a.origin, frame_b.origin)
    np.testing.assert_array_equal(seen_a.u_px, seen_b.u_px)
    np.testing.assert_array_equal(counted_a, counted_b)
    assert counted_a.sum() >= 8
    assert [(r.name, r.explained) for r in inline.ranked()] == \
        [(r.name, r.explained) for r in threaded.ranked()]
    assert inline.ranked()[0].name == "CeO2"


def test_a_failure_on_the_thread_is_raised_where_the_rings_are_asked_for(blind_args,
                                                                          monkeypatch):
    calls = []

    def fails(*args):
        calls.append(args)
        raise MemoryError("no room for the profile")

    monkeypatch.setattr(unfitted, "neutral_measure", fails)
    monkeypatch.setattr(unfitted, "threads", lambda: 2)
    u = Unfitted(*blind_args)
    u.start()
    with pytest.raises(MemoryError, match="no room"):
        u.ranked()
    assert len(calls) == 1  # the thread's own failure, not a second measurement


def test_one_thread_allowed_measures_in_line(blind_args, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as batch workers set it
    u = Unfitted(*blind_args)
    u.start()
    assert u._running is None
    assert u.ranked()[0].name == "CeO2"


def test_a_small_image_is_measured_in_line(blind_args, monkeypatch):
    monkeypatch.setattr(unfitted, "threads", lambda: 2)
    monkeypatch.setattr(unfitted, "BACKGROUND_PIXELS", blind_args[0].size + 1)
    u = Unfitted(*blind_args)
    u.start()
    assert u._running is None
    monkeypatch.setattr(unfitted, "BACKGROUND_PIXELS", blind_args[0].size)
    u.start()
    assert u._running is not None
