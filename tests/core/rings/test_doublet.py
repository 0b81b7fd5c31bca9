"""The Kα1/Kα2 profile model: where the measured peak of a blended doublet sits."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.rings.doublet import KALPHA_LINES, Doublet, lab_line


def test_an_unresolved_doublet_peaks_at_the_intensity_weighted_mean():
    mo = Doublet(0.71359 / 0.70930, 0.5)
    # separation 0.3 px under a 3 px wide ring: the centroid of the blend is at a third
    shift = mo.peak_shift_px(np.array([0.3]), np.array([3.0]), np.array([3.0]), 0.5)
    assert shift[0] == pytest.approx(0.1, abs=0.005)


def test_a_resolved_doublet_peaks_at_kalpha1():
    cu = Doublet(1.54439 / 1.54056, 0.5)
    shift = cu.peak_shift_px(np.array([12.0]), np.array([1.0]), np.array([1.5]), 0.5)
    assert abs(shift[0]) < 0.01


def test_the_shift_grows_smoothly_from_resolved_to_blended():
    d = Doublet(1.006, 0.5)
    sep = np.linspace(0.1, 10, 60)
    # the measured width of a blend includes the split
    width = np.sqrt(1.5 ** 2 + 2 / 9 * sep ** 2)
    frac = d.peak_shift_px(sep, width, np.full(sep.size, 3.0), 0.5) / sep
    assert np.all((frac >= -0.01) & (frac <= 1 / 3 + 0.01))
    assert frac[0] > 0.3 and frac[-1] < 0.05


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
