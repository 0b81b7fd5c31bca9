"""The integration check's pattern and cake (`core.rings.integration`): the same as pyFAI's
integrate1d without pixel splitting, and the calibrant's rings on its peaks under the true
geometry."""

import numpy as np
import pyFAI

from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.integration import integrate
from geocal_cli.io.images import read_image


def test_pattern_matches_pyfai_and_peaks_sit_on_the_rings(lab6_pilatus):
    sim, cfg = lab6_pilatus
    truth = pyFAI.load(str(sim.truth))
    image = read_image(sim.image).data
    valid = image >= 0
    got = integrate(image, valid, frame_of(truth))
    assert got.cake.shape == (got.chi.size, got.tth.size)
    step = got.tth[1] - got.tth[0]
    ref = truth.integrate1d(image, got.tth.size, mask=~valid, unit="2th_rad",
                            method=("no", "histogram", "cython"), correctSolidAngle=False,
                            radial_range=(0, got.tth[-1] + step / 2))
    assert np.allclose(ref.radial, got.tth, atol=1e-9)
    full = np.isfinite(got.mean) & (ref.count > 100)
    assert np.median(np.abs(got.mean[full] / ref.intensity[full] - 1)) < 0.01
    # The cake averages to the pattern where every χ bin is filled.
    cake_mean = np.nanmean(got.cake, axis=0)
    filled = np.isfinite(got.cake).all(axis=0)
    assert np.allclose(cake_mean[filled], got.mean[filled], rtol=0.3)
    # The background is a lower envelope that leaves the rings standing: the pattern above it
    # is near zero between rings and largest at them.
    seen = np.isfinite(got.mean)
    assert np.all(got.background[seen] <= got.mean[seen] + 1e-9 * np.abs(got.mean[seen]).max())
    above = got.mean - got.background
    # Each of the first LaB6 rings is a peak of the pattern within one bin.
    from pyFAI.calibrant import get_calibrant

    tth = ring_tth(np.array(get_calibrant("LaB6").dSpacing[:6]) * 1e-10, truth.wavelength)
    for t in tth[tth < got.tth[-1] * 0.9]:
        near = np.abs(got.tth - t) <= 5 * step
        assert abs(got.tth[near][np.nanargmax(got.mean[near])] - t) <= 1.01 * step
        assert np.nanmax(above[near]) > 10 * np.nanmedian(np.abs(above[seen]))


def test_no_valid_pixel_gives_an_empty_pattern(lab6_pilatus):
    sim, _ = lab6_pilatus
    truth = pyFAI.load(str(sim.truth))
    image = read_image(sim.image).data
    got = integrate(image, np.zeros(image.shape, bool), frame_of(truth))
    assert np.isnan(got.mean).all() and np.isnan(got.cake).all()
