"""Blocks on threads (`core.rings.parallel`): as many threads as the process may use and the
user allows, and results that do not depend on them."""

import numpy as np
import pytest

from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.core.rings import parallel
from geocal_cli.core.rings.controlpoints import extract_control_points, prepare_image
from geocal_cli.core.rings.seen import seen_rings
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.images import valid_pixels
from tests.conftest import ring_tth, simulate_case


def test_threads_follow_the_cores_and_omp_num_threads(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(16)),
                        raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert parallel.threads() == parallel.MAX_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "1")          # as batch workers set it
    assert parallel.threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert parallel.threads() == min(3, parallel.MAX_THREADS)
    monkeypatch.setenv("OMP_NUM_THREADS", "")           # unset in effect: the cores decide
    assert parallel.threads() == parallel.MAX_THREADS
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert parallel.threads() == 1


def test_thread_map_keeps_the_order_and_raises_the_error(monkeypatch):
    monkeypatch.setattr(parallel, "threads", lambda: 3)
    assert parallel.thread_map(lambda x: x * x, list(range(20))) == [x * x for x in range(20)]

    def fails(x):
        if x == 7:
            raise ValueError("item 7")
        return x

    with pytest.raises(ValueError, match="item 7"):
        parallel.thread_map(fails, list(range(10)))


#: A 1475 × 1679 detector whose 18 LaB6 rings at 1440 azimuths make three blocks.
LAB6 = dict(detector="Pilatus2M", calibrant="LaB6", energy_kev=30.0, distance_mm=180.0,
            center_px=[700.3, 820.6], tilt_deg=3.0, tilt_plan_rotation_deg=20.0, seed=5)


def test_control_points_and_profiles_do_not_depend_on_the_threads(tmp_path, monkeypatch):
    import geocal_cli.core.rings.controlpoints as controlpoints

    sim, _ = simulate_case(LAB6, tmp_path)
    valid = valid_pixels(sim.data, sim.geometry.detector.mask.astype(bool))
    frame = frame_of(sim.geometry)
    tth = ring_tth(load_calibrant("LaB6").d_spacing, sim.geometry.wavelength)[:18]
    prepared = prepare_image(sim.data, valid)
    hw = np.full(tth.size, 12.0)
    samples = tth.size * 1440 * 49                  # 49 samples along each ± 12 px window
    assert samples > 2 * controlpoints.BLOCK_SAMPLES
    results = {}
    for n in (1, 4):
        monkeypatch.setattr(parallel, "threads", lambda n=n: n)
        results[n] = (extract_control_points(prepared, frame, tth, hw, n_chi=1440),
                      seen_rings(sim.data, valid, frame, width_px=1.0))
    (cp1, seen1), (cp4, seen4) = results[1], results[4]
    assert len(cp1) > 10000
    for field in ("d1", "d2", "ring", "chi", "snr", "width"):
        np.testing.assert_array_equal(getattr(cp4, field), getattr(cp1, field))
    for field in ("u_px", "snr", "coverage", "width_px", "area", "profile"):
        np.testing.assert_array_equal(getattr(seen4, field), getattr(seen1, field))


def test_work_in_the_background_hands_back_its_result_or_its_error():
    assert parallel.in_background(lambda: 6 * 7).result(timeout=10) == 42

    def fails():
        raise ValueError("no rings")

    with pytest.raises(ValueError, match="no rings"):
        parallel.in_background(fails).result(timeout=10)
