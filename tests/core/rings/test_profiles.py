"""Multi-peak profile control points: overlapping rings each located at their own radius
(`core.rings.profiles`), against an image drawn with known radii."""

import numpy as np
import pytest

from geocal_cli.core.geometry.frame import frame_of, make_geometry
from geocal_cli.core.rings.controlpoints import extract_control_points, prepare_image
from geocal_cli.core.rings.profiles import (BLEND_WIDTHS, MAX_GROUP, fit_ring_profiles,
                                            ring_groups, separable_rings)


def _rings_image(radii, sigma, amp, centre, shape=(300, 300), seed=0):
    """Rings of Gaussian radial profile on a flat background, Poisson noise."""
    d1, d2 = np.indices(shape, dtype=float)
    r = np.hypot(d1 - centre[0], d2 - centre[1])
    signal = 200.0 + sum(a * np.exp(-0.5 * ((r - r0) / sigma) ** 2) for r0, a in zip(radii, amp))
    return np.random.default_rng(seed).poisson(signal).astype(float)


def _frame(centre, shape=(300, 300)):
    import pyFAI.detectors

    det = pyFAI.detectors.Detector(1e-4, 1e-4, max_shape=shape)
    # 1 m from the sample with 0.1 mm pixels: tan 2θ = r / 10 000 px.
    return frame_of(make_geometry(det, 1.0, (centre[0] + 0.5) * 1e-4, (centre[1] + 0.5) * 1e-4,
                                  wavelength=1e-10))


def test_overlapping_rings_are_each_located():
    centre = (151.3, 148.6)
    radii = np.array([60.0, 66.0, 110.0])           # 60 and 66 overlap at σ = 2.5 px
    image = _rings_image(radii, 2.5, [3000, 1500, 2000], centre)
    valid = np.ones(image.shape, bool)
    frame = _frame(centre)
    tth = np.arctan(radii / 1e4)
    # Start 0.8 px off every ring, as a geometry one round old would be.
    start = np.arctan((radii + 0.8) / 1e4)
    prof = fit_ring_profiles(prepare_image(image, valid), frame, start, np.full(3, 3.0), 2.0)
    pts = prof.points
    assert [list(g) for g in prof.groups] == [[0, 1], [2]]
    r = np.hypot(pts.d1 - centre[0], pts.d2 - centre[1])
    for k, r0 in enumerate(radii):
        sel = pts.ring == k
        assert sel.sum() > 300
        # Each ring at its own radius: the mean to 0.02 px, the scatter what the 1σ says.
        assert np.mean(r[sel]) == pytest.approx(r0, abs=0.02)
        pull = (r[sel] - r0) / prof.sigma_px[sel]
        assert 0.7 < np.std(pull) < 1.4
    # A centroid cannot tell the two overlapping rings apart: within windows the gap allows
    # (±2.9 px) the weaker ring's peak stands on the stronger one's flank, and its points
    # are either dropped (a maximum at the window's edge) or dragged towards the other ring.
    cp = extract_control_points(prepare_image(image, valid), frame, tth[:2], np.full(2, 2.9))
    rc = np.hypot(cp.d1 - centre[0], cp.d2 - centre[1])[cp.ring == 1]
    assert rc.size < 0.5 * np.sum(pts.ring == 1) or abs(np.mean(rc) - radii[1]) > 0.05


def test_ring_groups_join_overlaps_and_split_long_runs():
    offset = np.array([0.0, 5.0, 40.0, 44.0, 48.0, 52.0, 56.0, 60.0, 100.0])
    groups = ring_groups(offset, np.full(offset.size, 1.0), 1.0)
    assert [list(g) for g in groups][0] == [0, 1]
    assert [8] in [list(g) for g in groups]
    assert all(g.size <= MAX_GROUP for g in groups)
    assert sorted(np.concatenate(groups)) == list(range(offset.size))


def test_control_points_in_ring_blocks_are_those_of_one_pass(monkeypatch):
    # Wide windows on many rings are extracted a block of rings at a time, for the memory;
    # the points, their rings and their noise must be those of a single pass (to float32
    # rounding: a block's profiles are padded to its own widest window).
    import geocal_cli.core.rings.controlpoints as controlpoints

    centre = (151.3, 148.6)
    radii = np.arange(20.0, 140.0, 12.0)
    image = _rings_image(radii, 1.5, np.full(radii.size, 800.0), centre)
    valid = np.ones(image.shape, bool)
    valid[140:160, :] = False                       # a gap, to make some rings lose points
    frame = _frame(centre)
    prepared = prepare_image(image, valid)
    tth = np.arctan((radii + 0.4) / 1e4)
    hw = np.linspace(3.0, 5.5, radii.size)
    crowded = np.arange(radii.size) % 3 == 0
    whole = extract_control_points(prepared, frame, tth, hw, n_chi=720, crowded=crowded)
    monkeypatch.setattr(controlpoints, "BLOCK_SAMPLES", 720 * 23 * 3)
    blocks = extract_control_points(prepared, frame, tth, hw, n_chi=720, crowded=crowded)
    assert len(whole) > 5000
    assert np.unique(whole.ring).size == radii.size
    np.testing.assert_array_equal(blocks.ring, whole.ring)
    np.testing.assert_array_equal(blocks.chi, whole.chi)
    for field in ("d1", "d2", "width"):
        np.testing.assert_allclose(getattr(blocks, field), getattr(whole, field), atol=1e-5)
    np.testing.assert_allclose(blocks.snr, whole.snr, rtol=1e-4)


def test_a_continuum_of_blended_rings_is_not_cut_into_groups():
    """Isolated rings and short runs of close rings carry points; a longer run, whose rings
    stand closer than `BLEND_WIDTHS` widths one after the next, is a continuum: none of it
    does, even where its gaps vary."""
    width = 1.6
    step = 0.8 * BLEND_WIDTHS * width
    continuum = 200.0 + np.cumsum(np.r_[0.0, step * np.linspace(0.5, 1.0, MAX_GROUP + 2)])
    radii = np.r_[30.0, 60.0, 100.0, 100.0 + step, np.nan, continuum, np.nan]
    ok = separable_rings(radii, width)
    assert ok.tolist() == [True, True, True, True, False] + [False] * continuum.size + [False]
    # A run of `MAX_GROUP` rings is fitted together: kept.
    assert separable_rings(100.0 + step * np.arange(MAX_GROUP), width).all()
