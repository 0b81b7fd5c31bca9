import numpy as np
import pytest

from geocal_cli.core.geometry.frame import (PARAM_NAMES, frame_of, geometry_from_values,
                                           geometry_params, hypot, make_geometry,
                                           poni_for_beam_center, with_distance_scaled,
                                           with_params)


def _detector(orientation, pixel1=75e-6, pixel2=172e-6):
    import pyFAI.detectors

    det = pyFAI.detectors.Detector(pixel1=pixel1, pixel2=pixel2, max_shape=(600, 400),
                                   orientation=orientation)
    return det


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_frame_matches_pyfai_tth_chi(orientation):
    g = make_geometry(_detector(orientation), 0.15, 0.02, 0.03, 0.12, -0.21, 0.3, 1e-10)
    rng = np.random.default_rng(0)
    d1, d2 = rng.uniform(0, 600, 200), rng.uniform(0, 400, 200)
    tth, chi = frame_of(g).tth_chi(d1, d2)
    assert np.abs(tth - g.tth(d1, d2)).max() < 1e-12
    assert np.abs(np.angle(np.exp(1j * (chi - g.chi(d1, d2))))).max() < 1e-10


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_frame_puts_every_pixel_where_pyfai_does(orientation):
    """Lab positions of pixels anywhere on the detector, for PONI parameters other than the
    geometry's own, to a tenth of a picometre of pyFAI's `calc_pos_zyx`."""
    g = make_geometry(_detector(orientation), 0.15, 0.02, 0.03, 0.12, -0.21, 0.3, 1e-10)
    param = [0.31, -0.012, 0.047, -0.33, 0.08, -1.2]
    rng = np.random.default_rng(2)
    d1, d2 = rng.uniform(-50, 650, 200), rng.uniform(-50, 450, 200)
    x3, x1, x2 = g.calc_pos_zyx(d1=d1, d2=d2, param=np.array(param))
    assert np.abs(frame_of(g, param).positions(d1, d2) - np.stack([x1, x2, x3], -1)).max() < 1e-13


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_tth_gradient_matches_central_differences(orientation):
    f = frame_of(make_geometry(_detector(orientation), 0.15, 0.02, 0.03, 0.12, -0.21, 0.3, 1e-10))
    rng = np.random.default_rng(1)
    d1, d2 = rng.uniform(0, 600, 200), rng.uniform(0, 400, 200)
    tth, g1, g2 = f.tth_and_grad(d1, d2)
    h = 1e-4
    assert np.abs(tth - f.tth_chi(d1, d2)[0]).max() == 0
    assert np.abs(g1 - (f.tth(d1 + h, d2) - f.tth(d1 - h, d2)) / (2 * h)).max() < 1e-10
    assert np.abs(g2 - (f.tth(d1, d2 + h) - f.tth(d1, d2 - h)) / (2 * h)).max() < 1e-10


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_pixel_at_inverts_tth_chi(orientation):
    g = make_geometry(_detector(orientation), 0.15, 0.02, 0.03, 0.12, -0.21, 0.0, 1e-10)
    f = frame_of(g)
    d1, d2 = np.meshgrid(np.linspace(0, 599, 7), np.linspace(0, 399, 5))
    back = f.pixel_at(*f.tth_chi(d1, d2))
    assert np.abs(back[0] - d1).max() < 1e-8 and np.abs(back[1] - d2).max() < 1e-8


@pytest.mark.parametrize("params", [
    (0.15, 0.02, 0.03, 0.12, -0.21, 0.3),      # beam on the detector, tilted
    (0.05, -0.01, 0.02, 0.5, 0.7, 0.0),         # beam off it, steep tilt
    (0.1, 0.07, 0.01, -0.9, 0.2, 0.0),          # 2θ beyond 90° at one side
])
def test_tth_range_holds_every_pixel(params):
    f = frame_of(make_geometry(_detector(3), *params, 1e-10))
    d1, d2 = np.meshgrid(np.arange(600.0), np.arange(400.0), indexing="ij")
    tth = f.tth(d1, d2)
    lo, hi = f.tth_range((600, 400))
    assert hi == pytest.approx(tth.max(), abs=1e-12)
    assert lo <= tth.min() + 1e-12 and lo >= tth.min() - 2e-4


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_poni_for_beam_center_puts_the_direct_beam_there(orientation):
    g = make_geometry(_detector(orientation), 0.2, 0.0, 0.0, 0.08, 0.05, 0.0, 1e-10)
    p1, p2 = poni_for_beam_center(g, 123.4, 210.9)
    moved = with_params(g, [0.2, p1, p2, 0.08, 0.05, 0.0])
    b1, b2 = frame_of(moved).beam_center()
    assert (b1, b2) == pytest.approx((123.4, 210.9), abs=1e-5)
    # With a tilt the PONI is not the beam centre.
    assert abs(p1 / 75e-6 - 0.5 - 123.4) > 10 or abs(p2 / 172e-6 - 0.5 - 210.9) > 10


def test_a_distance_scaled_keeps_the_beam_centre_or_where_the_beam_misses_the_poni():
    det = _detector(1)
    g = make_geometry(det, 0.2, 0.01, 0.02, 0.08, 0.05)
    values = dict(zip(PARAM_NAMES, geometry_params(g)))
    scaled = with_distance_scaled(det, values, 1.5)
    assert scaled["dist"] == pytest.approx(0.3)
    assert frame_of(geometry_from_values(det, scaled)).beam_center() == pytest.approx(
        frame_of(g).beam_center(), abs=1e-6)
    # Turned by 100°, the detector faces away from the beam: no beam centre to keep.
    away = {**values, "rot1": np.radians(100)}
    assert np.isnan(frame_of(geometry_from_values(det, away)).beam_center()[0])
    kept = with_distance_scaled(det, away, 1.5)
    assert (kept["dist"], kept["poni1"], kept["poni2"]) == pytest.approx((0.3, 0.01, 0.02))


def test_fit2d_centre_uses_pixel_centres_at_i_plus_half():
    g = make_geometry(_detector(3, 100e-6, 100e-6), 0.1, 0.01005, 0.02005, 0, 0, 0, 1e-10)
    b1, b2 = frame_of(g).beam_center()
    f2d = g.getFit2D()
    assert f2d["centerX"] == pytest.approx(b2 + 0.5, abs=1e-6)
    assert f2d["centerY"] == pytest.approx(b1 + 0.5, abs=1e-6)


def test_hypot_is_numpys_to_rounding_over_lengths_in_metres_and_pixels():
    rng = np.random.default_rng(2)
    scale = 10.0 ** rng.uniform(-7, 5, (2, 100_000))
    a, b = rng.normal(size=(2, 100_000)) * scale
    np.testing.assert_allclose(hypot(a, b), np.hypot(a, b), rtol=4e-16, atol=0)
