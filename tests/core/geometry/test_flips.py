"""Array conventions: PONI parameters recovered from a frame, image flips and detector
orientations, checked on pixel maps computed by pyFAI itself (tilted, off-centre geometry
with non-square pixels)."""

import numpy as np
import pytest

from geocal_cli.core.geometry.flips import flip_frame, index_map, map_difference, reoriented
from geocal_cli.core.geometry.frame import frame_of, make_geometry, params_from_frame

SHAPE = (600, 400)


def _geometry(orientation):
    from pyFAI.detectors import Detector

    det = Detector(pixel1=75e-6, pixel2=172e-6, max_shape=SHAPE, orientation=orientation)
    return make_geometry(det, 0.15, 0.02, 0.03, 0.12, -0.21, 0.3, 1e-10)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_params_from_frame_inverts_frame_of(orientation):
    from pyFAI.detectors import Detector

    rng = np.random.default_rng(orientation)
    det = Detector(pixel1=75e-6, pixel2=172e-6, max_shape=SHAPE, orientation=orientation)
    for _ in range(20):
        p = np.r_[rng.uniform(0.05, 1), rng.uniform(-0.05, 0.1, 2), rng.uniform(-0.6, 0.6, 3)]
        assert np.abs(params_from_frame(frame_of(make_geometry(det, *p)), det) - p).max() < 1e-11


def test_params_from_frame_refuses_other_pixel_sizes():
    from pyFAI.detectors import Detector

    g = _geometry(3)
    with pytest.raises(ValueError, match="pixel sizes"):
        params_from_frame(frame_of(g), Detector(pixel1=172e-6, pixel2=172e-6, max_shape=SHAPE))


def _pyfai_maps(geometry, shape):
    return (geometry.center_array(shape, unit="2th_rad"), geometry.center_array(shape, unit="chi_rad"))


ARRAY_OPS = {"ud": np.flipud, "lr": np.fliplr, "transpose": np.transpose}


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
@pytest.mark.parametrize("flips", [["ud"], ["lr"], ["transpose"], ["ud", "lr"], ["lr", "transpose", "ud"]])
def test_flipped_geometry_sees_the_flipped_array(orientation, flips):
    """pyFAI's 2θ and χ maps of the converted geometry equal the source's maps flipped."""
    g = _geometry(orientation)
    frame, shape = frame_of(g), SHAPE
    for how in flips:
        frame, shape = flip_frame(frame, shape, how)
    new = reoriented(g, frame, shape, flips.count("transpose") % 2 == 1)
    tth, chi = _pyfai_maps(g, SHAPE)
    for how in flips:
        tth, chi = ARRAY_OPS[how](tth), ARRAY_OPS[how](chi)
    new_tth, new_chi = _pyfai_maps(new, shape)
    assert np.abs(new_tth - tth).max() < 1e-9
    assert np.abs(np.angle(np.exp(1j * (new_chi - chi)))).max() < 1e-9
    back, shape_b = index_map(SHAPE, flips)
    assert shape_b == shape
    assert np.abs(map_difference(g, new, back, shape)).max() < 1e-11


@pytest.mark.parametrize("target", [1, 2, 3, 4])
def test_orientation_change_keeps_the_maps_or_says_which_fit(target):
    g = _geometry(3)
    if target in (1, 3):
        new = reoriented(g, frame_of(g), SHAPE, False, target)
        assert new.detector.orientation == target
        assert np.abs(map_difference(g, new, lambda a, b: (a, b), SHAPE)).max() < 1e-11
    else:
        with pytest.raises(ValueError, match="use orientation 1 or 3"):
            reoriented(g, frame_of(g), SHAPE, False, target)


def test_dioptas_poni_fits_fabio_array_with_orientation_2():
    """A geometry for the up-down flipped image (as Dioptas shows it) is, for the array as
    read, the same parameters on an orientation 2 detector (shared/data README)."""
    from pyFAI.detectors import Detector

    det = Detector(pixel1=172e-6, pixel2=172e-6, max_shape=(1043, 981))
    dioptas = make_geometry(det, 0.2087, 0.0873, 0.0800, -0.0184, 0.0041, 0.0, 4.066e-11)
    frame, shape = flip_frame(frame_of(dioptas), (1043, 981), "ud")
    new = reoriented(dioptas, frame, shape, False)
    assert new.detector.orientation == 2
    p = [new.dist, new.poni1, new.poni2, new.rot1, new.rot2, new.rot3]
    assert np.allclose(p, [0.2087, 0.0873, 0.0800, -0.0184, 0.0041, 0.0], atol=1e-12)


@pytest.mark.parametrize("tilt, plan", [(5.0, 30.0), (20.0, 200.0), (45.0, 10.0)])
def test_fit2d_round_trip_is_exact_with_a_grid_point_on_the_beam(tilt, plan):
    """χ is undefined at the direct beam: a grid point there must not fail the self-check."""
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    det = Detector(pixel1=172e-6, pixel2=172e-6, max_shape=(1043, 981))
    source = Geometry(detector=det, wavelength=6e-11)
    # 33-point grid over 1043 × 981: row 521 and column 490 are grid points.
    source.setFit2D(200.0, 490.5, 521.5, tilt=tilt, tiltPlanRotation=plan, pixelX=172, pixelY=172)
    target = Geometry(detector=det, wavelength=6e-11)
    target.setFit2D(**{k: v for k, v in source.getFit2D().items()
                       if k in ("directDist", "centerX", "centerY", "tilt", "tiltPlanRotation",
                                "pixelX", "pixelY")})
    tth, _, chi_spread = map_difference(source, target, lambda d1, d2: (d1, d2), (1043, 981))
    assert tth < 1e-12 and chi_spread < 1e-9
    # χ mirrored (same 2θ everywhere: an untilted detector read upside down) is still caught.
    flat = Geometry(detector=det, wavelength=6e-11)
    flat.setFit2D(200.0, 490.5, 521.5, pixelX=172, pixelY=172)
    tth, _, chi_spread = map_difference(flat, flat, lambda d1, d2: (1042 - d1, d2), (1043, 981))
    assert tth < 1e-12 and chi_spread > 1.0
