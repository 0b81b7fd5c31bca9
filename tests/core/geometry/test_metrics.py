"""The ring-position error between two geometries: only rings on the detector count, and a
dense calibrant's full ring list costs no more than the rings the detector holds."""

import tracemalloc

import numpy as np

from geocal_cli.core.geometry.frame import frame_of, make_geometry
from geocal_cli.core.geometry.metrics import ring_position_error
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.io.calibrants import load_calibrant

SHAPE = (400, 600)


def _pair():
    import pyFAI.detectors

    det = pyFAI.detectors.Detector(172e-6, 172e-6, max_shape=SHAPE)
    truth = make_geometry(det, 0.2, 0.02, 0.03, 0.02, -0.01, 0.0, 0.2e-10)
    moved = make_geometry(det, 0.2006, 0.0201, 0.0299, 0.021, -0.01, 0.0, 0.2e-10)
    return truth, moved


def test_rings_off_the_detector_change_nothing_and_cost_nothing():
    truth, moved = _pair()
    tth = ring_tth(load_calibrant("LaB6").d_spacing, truth.wavelength)
    tth = tth[np.isfinite(tth)]
    assert tth.size > 1000
    hi = frame_of(truth).tth_range(SHAPE)[1]
    # The rings up to well beyond the farthest corner hold every point the full list has.
    near = tth[tth < hi + 0.05]
    assert near.size < 100
    tracemalloc.start()
    full = ring_position_error(moved, truth, tth, SHAPE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert full == ring_position_error(moved, truth, near, SHAPE)
    assert 0.1 < full < 10
    # Drawn at every azimuth, the 1441 rings took about 100 MB.
    assert peak < 20e6


def test_a_ring_that_reaches_only_the_outer_half_of_a_corner_pixel_counts():
    truth, moved = _pair()
    h, w = SHAPE
    frame = frame_of(truth)
    hi = frame.tth_range(SHAPE)[1]
    corner = float(frame.tth(np.array([h - 0.6]), np.array([w - 0.6]))[0])
    assert corner > hi
    assert np.isfinite(ring_position_error(moved, truth, np.array([corner]), SHAPE,
                                           n_chi=200_000))
