"""Ring, Friedel-pair and direct-beam recentring on synthetic 2048² images with a known beam
centre: every detector orientation, a 5° tilt, a ring cut to 60 % of its azimuths by the
detector edge, 3 % lens ellipticity, Poisson noise and a beamstop with its arm. The reference
geometry is the truth with its beam centre moved; the recovered centre is compared with the
truth."""

import numpy as np
import pytest

from geocal_cli.core.rings.controlpoints import prepare_image
from geocal_cli.core.center.directbeam import find_direct_beam
from geocal_cli.core.center.friedel import find_spots, recenter_on_friedel_pairs
from geocal_cli.core.geometry.frame import (ellipse_of, ellipticity_of, frame_of, make_geometry,
                                      poni_for_beam_center)
from geocal_cli.core.geometry.metrics import ring_position_error
from geocal_cli.core.center.ringcenter import recenter_on_rings
from geocal_cli.core.simulate.patterns import (PatternSpec, render_ring_image, render_spot_image,
                                      ring_strengths, zone_axis_reflections)
from geocal_cli.errors import CalibrationError
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import ring_tth

SHAPE = (2048, 2048)
MOVE = np.array([-4.1, 7.3])   # reference centre minus truth, (d1, d2) px


def geometry_for(orientation, center_xy, tilt_deg=0.0, tilt_plan_deg=0.0):
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    det = Detector(100e-6, 100e-6, max_shape=SHAPE, orientation=orientation)
    g = Geometry(detector=det, wavelength=0.62e-10)
    g.setFit2D(300.0, 0.0, 0.0, tilt_deg, tilt_plan_deg, 100.0, 100.0)
    p1, p2 = poni_for_beam_center(g, center_xy[1] - 0.5, center_xy[0] - 0.5)
    return make_geometry(det, g.dist, p1, p2, g.rot1, g.rot2, g.rot3, g.wavelength)


def moved(geometry, shift):
    b = np.array(frame_of(geometry).beam_center()) + shift
    p1, p2 = poni_for_beam_center(geometry, *b)
    return make_geometry(geometry.detector, geometry.dist, p1, p2, geometry.rot1, geometry.rot2,
                         geometry.rot3, geometry.wavelength)


def render(geometry, tth, seed, **spec):
    spec = PatternSpec(peak_counts=300, background=20, seed=seed, **spec)
    return render_ring_image(geometry, SHAPE, tth, ring_strengths(tth, None, seed), spec)


@pytest.fixture(scope="module")
def ceo2_tth():
    return ring_tth(load_calibrant("CeO2").d_spacing, 0.62e-10)[:15]


CASES = {
    "orientation 1": dict(orientation=1, center=(1030.3, 1010.7)),
    "orientation 2": dict(orientation=2, center=(990.6, 1050.2)),
    "orientation 3": dict(orientation=3, center=(1012.2, 1033.9)),
    "orientation 4": dict(orientation=4, center=(1040.8, 995.4)),
    "tilt 5 deg": dict(orientation=3, center=(1020.4, 1001.1), tilt=5.0, plan=30.0),
    # Ring 1 (radius ~605 px) keeps 60 % of its azimuths: centre 0.309 radius from the edge.
    "edge cut": dict(orientation=3, center=(187.0, 1020.5)),
    "ellipticity 3 %": dict(orientation=3, center=(1015.5, 1022.3), ellipse=(1.03, 40.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_ring_method_recovers_centre(name, ceo2_tth):
    case = CASES[name]
    truth = geometry_for(case["orientation"], case["center"], case.get("tilt", 0.0), case.get("plan", 0.0))
    ell = tuple(ellipticity_of(*case["ellipse"])) if "ellipse" in case else (0.0, 0.0)
    data = render(truth, ceo2_tth, seed=len(name), beamstop_radius_px=40, beamstop_arm_deg=-60,
                  ellipticity=ell)
    valid = data >= 0
    reference = moved(truth, MOVE)
    rec = recenter_on_rings(prepare_image(data, valid), valid, frame_of(reference), ceo2_tth)
    found = np.array(frame_of(reference).beam_center()) + rec.fit.shift
    true = np.array(frame_of(truth).beam_center())
    assert np.hypot(*(found - true)) < 0.05
    if "ellipse" in case:
        ratio, angle = ellipse_of(rec.fit.ellipticity)
        assert ratio == pytest.approx(1.03, abs=1e-3)
        assert angle == pytest.approx(40.0, abs=0.5)
    else:
        assert not rec.fit.fitted_ellipticity
        new = moved(reference, rec.fit.shift)
        assert ring_position_error(new, truth, ceo2_tth, SHAPE, valid=valid) < 0.1
    if name == "edge cut":
        assert 0.5 < rec.coverage[0] < 0.7


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_beam_method_recovers_centre(orientation, ceo2_tth):
    truth = geometry_for(orientation, (1003.3, 1040.6), 5.0 if orientation == 4 else 0.0, 60.0)
    data = render(truth, ceo2_tth, seed=orientation, direct_beam_counts=2e5,
                  direct_beam_sigma_px=2.5, saturation=5e4)
    spot = find_direct_beam(data, data >= 0)
    true = np.array(frame_of(truth).beam_center())
    assert np.hypot(spot.d1 - true[0], spot.d2 - true[1]) < 0.1
    assert spot.saturated > 0


def test_beam_absent_and_no_ring_are_refused(ceo2_tth):
    truth = geometry_for(3, (1024.0, 1024.0))
    data = render(truth, ceo2_tth, seed=5, beamstop_radius_px=40)
    with pytest.raises(CalibrationError, match="direct beam absent"):
        find_direct_beam(data, data >= 0)
    flat = np.random.default_rng(0).poisson(50, SHAPE)
    with pytest.raises(CalibrationError, match="no ring"):
        recenter_on_rings(prepare_image(flat, flat >= 0), flat >= 0, frame_of(truth), ceo2_tth)


def render_spots(geometry, seed, **spec):
    """An oblique zone-axis lattice (15 Å, 12 Å, 75°): spots 120-160 px apart here."""
    tth, chi, strength = zone_axis_reflections((15e-10, 12e-10), 75.0, 17.0, geometry.wavelength,
                                               frame_of(geometry).tth_range(SHAPE)[1], seed)
    spec = PatternSpec(peak_counts=2000, width_px=2.0, background=30, seed=seed, **spec)
    return render_spot_image(geometry, SHAPE, tth, chi, strength, spec)


SPOT_CASES = {
    "orientation 1": dict(orientation=1, center=(1030.3, 1010.7)),
    "orientation 2": dict(orientation=2, center=(990.6, 1050.2)),
    "orientation 3, saturated direct beam, hot pixels": dict(
        orientation=3, center=(1012.2, 1033.9), beamstop=False,
        spec=dict(direct_beam_counts=2e5, saturation=5e4, hot_pixels=30)),
    "orientation 4": dict(orientation=4, center=(1040.8, 995.4)),
    "tilt 5 deg": dict(orientation=3, center=(1020.4, 1001.1), tilt=5.0, plan=30.0),
    "ellipticity 3 %": dict(orientation=3, center=(1015.5, 1022.3),
                            spec=dict(ellipticity=tuple(ellipticity_of(1.03, 40.0)))),
}


@pytest.mark.parametrize("name", list(SPOT_CASES))
def test_friedel_method_recovers_centre(name):
    case = SPOT_CASES[name]
    truth = geometry_for(case["orientation"], case["center"], case.get("tilt", 0.0), case.get("plan", 0.0))
    stop = dict(beamstop_radius_px=40, beamstop_arm_deg=-60) if case.get("beamstop", True) else {}
    data = render_spots(truth, seed=len(name), **stop, **case.get("spec", {}))
    reference = moved(truth, MOVE)
    fit = recenter_on_friedel_pairs(find_spots(data, data >= 0), frame_of(reference))
    found = np.array(frame_of(reference).beam_center()) + fit.shift
    true = np.array(frame_of(truth).beam_center())
    assert np.hypot(*(found - true)) < 0.05
    assert fit.pairs.shape[0] > 50
    # The reported 1σ is honest: the error is within 4σ of it.
    assert np.hypot(*(found - true)) < 4 * np.sqrt(np.trace(fit.shift_cov)) + 0.01


def test_friedel_refuses_rings_and_noise(ceo2_tth):
    truth = geometry_for(3, (1024.0, 1024.0))
    for data in (render(truth, ceo2_tth, seed=5), render(truth, ceo2_tth, seed=6, spotty=0.9),
                 np.random.default_rng(0).poisson(50, SHAPE)):
        with pytest.raises(CalibrationError, match="no Friedel pairs"):
            recenter_on_friedel_pairs(find_spots(data, data >= 0), frame_of(truth))
