"""The fourth blind start (`profilestart`): the azimuthal profile's rings under the neutral
frame, matched to the calibrant, against the truth of a simulated image that the traced-ring
strategies cannot start."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.geometry.frame import frame_of, geometry_from_values, params_from_frame
from geocal_cli.core.geometry.metrics import ring_position_error
from geocal_cli.core.rings.calibrate import calibrate
from geocal_cli.core.rings.unfitted import neutral_measure
from geocal_cli.core.rings.profilestart import _tilted_frame, start_from_profile
from geocal_cli.errors import CalibrationError
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.images import valid_pixels
from tests.conftest import (blind_calibrate, blind_error_px, only_strategy, ring_tth,
                            simulate_case)

#: PBBA's dense ring list on a 1500 × 1200 panel of 172 µm pixels at 735 mm, 83 keV, the beam
#: 50 px from a corner, spotty rings (case 84 of the robustness benchmark): the traced rings
#: align with a wrong stretch of the ring list, and every traced-ring strategy refused.
PBBA_CORNER = dict(calibrant="PBBA", pixel_size_um=[172.0, 172.0], shape=[1500, 1200],
                   energy_kev=82.98274261434098, distance_mm=734.9445488645947,
                   center_px=[100.83139129160881, 49.599313257591696], tilt_deg=0.0,
                   tilt_plan_rotation_deg=-41.95513000074149,
                   beamstop_radius_px=15.762542126911926, beamstop_arm_deg=87.70567939579752,
                   hot_pixels=0, peak_counts=2111.932063224644, width_px=0.9744940198190006,
                   spotty=0.4552834377524396, seed=84)


@pytest.fixture(scope="module")
def pbba(tmp_path_factory):
    sim, cfg = simulate_case(PBBA_CORNER, tmp_path_factory.mktemp("pbba"))
    return sim, load_calibrant(cfg.calibrant).d_spacing


def _profile(sim):
    """(seen, counted, neutral frame) of the image, as the profile search measures them."""
    frame, seen, counted = neutral_measure(sim.data, valid_pixels(sim.data),
                                           sim.geometry.detector)
    return seen, counted, frame


@pytest.mark.parametrize("tilt", [(0.0, 0.0), (0.03, -0.05), (-0.12, 0.02)])
def test_the_tilted_frame_is_a_rigid_detector(tilt):
    """Pixel steps of the detector's size, orthogonal, the beam at the pixel asked for, the
    axes climbing out of the plane with the slopes asked for (to first order): a frame pyFAI's
    parameters reproduce exactly."""
    from pyFAI.detectors import Detector

    det = Detector(172e-6, 150e-6, max_shape=(1000, 800))
    pix = np.array([det.pixel1, det.pixel2])
    frame = _tilted_frame(np.array([310.5, -42.0]), np.array(tilt), 4000.0, pix)
    assert np.linalg.norm(frame.e1) == pytest.approx(pix[0], rel=1e-12)
    assert np.linalg.norm(frame.e2) == pytest.approx(pix[1], rel=1e-12)
    assert frame.e1 @ frame.e2 == pytest.approx(0.0, abs=1e-18)
    assert frame.beam_center() == pytest.approx((310.5, -42.0), abs=1e-6)
    slopes = frame.e1[2] / pix[0], frame.e2[2] / pix[1]
    assert slopes == pytest.approx(tilt, abs=np.hypot(*tilt) ** 3 + 1e-15)
    again = frame_of(geometry_from_values(det, {**dict(zip(
        ("dist", "poni1", "poni2", "rot1", "rot2", "rot3"), params_from_frame(frame, det))),
        "wavelength": 1e-10}))
    assert np.allclose(again.origin, frame.origin, atol=1e-12)


def test_the_profile_start_is_near_the_truth(pbba):
    """The profile's rings, matched to PBBA, put every ring within a few pixels of the truth:
    close enough for the refinement rounds' search windows."""
    sim, d_spacing = pbba
    g = sim.geometry
    seen, counted, frame = _profile(sim)
    values, info = start_from_profile(seen, counted, frame, g.detector, g.wavelength, d_spacing)[0]
    assert info["strategy"] == "rings of the azimuthal profile"
    assert len(info["rings_assigned"]) >= 0.5 * info["rings_traced"] >= 3
    assert values["dist"] == pytest.approx(g.dist, rel=0.01)
    err = ring_position_error(geometry_from_values(g.detector, values), g,
                              ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err < 3.0, f"start {err:.2f} px from the truth"


#: CI runs the quickest refusal (LaB6, 18 s on a loaded 2-core machine); --runslow CeO2
#: (24 s there), Si (45 s) and AgBh too.
@pytest.mark.parametrize("wrong", ["LaB6"] + [pytest.param(c, marks=pytest.mark.slow)
                                              for c in ("CeO2", "Si", "AgBh")])
def test_a_wrong_calibrant_is_refused_though_the_profile_starts_it(pbba, wrong):
    """A dense enough ring list matches most profile rings at some distance, so the profile
    starts a wrong calibrant too; the refinement and the audit must refuse it (exit 5)."""
    sim, _ = pbba
    g = sim.geometry
    d_spacing = load_calibrant(wrong).d_spacing
    values, info = start_from_profile(*_profile(sim), g.detector, g.wavelength, d_spacing)[0]
    assert len(info["rings_assigned"]) >= 0.5 * info["rings_traced"]
    with pytest.raises(CalibrationError):
        calibrate(sim.data, valid_pixels(sim.data), g.detector, g.wavelength, d_spacing,
                  calibrant=wrong)


def test_dense_rings_from_a_corner_calibrate_blind_from_the_profile(pbba, monkeypatch):
    only_strategy(monkeypatch, "rings of the azimuthal profile")
    err = blind_error_px(*pbba, "rings of the azimuthal profile")
    assert err <= 0.05, f"ring-position error {err:.4f} px"


def test_dense_rings_from_a_corner_calibrate_blind(pbba):
    """The whole search calibrates the image, whichever strategy starts it."""
    sim, d_spacing = pbba
    g = sim.geometry
    res = blind_calibrate(sim, d_spacing)
    err = ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err <= 0.05, f"ring-position error {err:.4f} px"


def test_a_frame_without_a_beam_gives_no_start(pbba):
    """A neutral frame whose beam misses its plane gives no start (exit 5), not NaNs."""
    from dataclasses import replace as replaced

    sim, d_spacing = pbba
    g = sim.geometry
    seen, counted, frame = _profile(sim)
    # The detector plane through the sample: no ray meets it in front of the sample.
    flat = replaced(frame, origin=frame.origin - frame.normal * (frame.origin @ frame.normal))
    with pytest.raises(CalibrationError, match="no detector geometry"):
        start_from_profile(seen, counted, flat, g.detector, g.wavelength, d_spacing)
