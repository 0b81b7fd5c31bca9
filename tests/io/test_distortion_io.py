"""Distortion files: Fit2D splines and pyFAI detector files, against pyFAI's own readers."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.simulate.grid import DistortionSpec, synthetic_field
from geocal_cli.errors import InputFileError
from geocal_cli.io.distortion import (field_of, make_distorted_detector, read_distortion,
                                      write_detector, write_spline)
from tests.conftest import shared


def _corners_px(detector):
    c = detector.get_pixel_corners().astype(float)
    return c[..., 1] / detector.pixel1, c[..., 2] / detector.pixel2


@pytest.mark.parametrize("name", ["dioptas_f4mnew.spline", "pyFAI_benchmark_halfccd.spline"])
def test_spline_to_detector_file_matches_pyfai_spline(name, tmp_path):
    import pyFAI

    spline = shared("distortion", name)
    field, pixel, mask = read_distortion(spline)
    assert mask is None
    path = tmp_path / "det.h5"
    write_detector(path, make_distorted_detector(field, pixel))
    mine = pyFAI.detector_factory(str(path))
    ref = pyFAI.detectors.Detector(splinefile=str(spline))
    assert mine.shape == ref.shape
    assert np.allclose((mine.pixel1, mine.pixel2), (ref.pixel1, ref.pixel2), rtol=1e-9)
    for a, b in zip(_corners_px(mine), _corners_px(ref)):
        assert np.abs(a - b).max() < 1e-3
    # The corners carry the spline's displacement, not a regular grid.
    assert np.abs(field.dx).max() > 1.0


def test_written_spline_read_by_pyfai_reproduces_the_field(tmp_path):
    from pyFAI.detectors import Detector

    shape = (1024, 2048)
    field = synthetic_field(shape, DistortionSpec(radial_px=4.0, random_px=1.5, skew_deg=0.5, seed=3))
    path = tmp_path / "out.spline"
    write_spline(path, field, (50e-6, 48e-6))
    det = Detector(splinefile=str(path))
    assert det.shape == shape and np.isclose(det.pixel1, 50e-6) and np.isclose(det.pixel2, 48e-6)
    back = field_of(det)
    assert np.abs(back.dx - field.dx).max() < 0.01
    assert np.abs(back.dy - field.dy).max() < 0.01


def test_raw_position_inverts_the_field():
    field = synthetic_field((512, 512), DistortionSpec(radial_px=4.0, random_px=1.0, seed=1))
    y, x = np.array([10.5, 200.25, 480.0]), np.array([30.0, 256.5, 500.75])
    ry, rx = field.raw_position(y, x)
    dy, dx = field.at(ry, rx)
    assert np.allclose(ry + dy, y, atol=1e-6) and np.allclose(rx + dx, x, atol=1e-6)


def test_regular_detector_has_a_zero_field():
    from pyFAI.detectors import Detector

    f = field_of(Detector(pixel1=1e-4, pixel2=1e-4, max_shape=(64, 80)))
    assert f.shape == (64, 80) and np.abs(f.dx).max() < 1e-3 and np.abs(f.dy).max() < 1e-3


def test_unreadable_distortion_files(tmp_path):
    bad = tmp_path / "bad.spline"
    bad.write_text("not a spline\n")
    with pytest.raises(InputFileError, match="Fit2D spline"):
        read_distortion(bad)
    h5 = tmp_path / "bad.h5"
    h5.write_bytes(b"\x00" * 64)
    with pytest.raises(InputFileError, match="pyFAI detector file"):
        read_distortion(h5)
    with pytest.raises(InputFileError, match="not found"):
        read_distortion(tmp_path / "missing.h5")
