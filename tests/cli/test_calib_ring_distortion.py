"""calib-ring with a detector file from grid-distortion, on a calibrant seen through the same
distortion."""

from __future__ import annotations

import json

from tests.cli.test_cli import cli


def test_calib_ring_with_the_detector_file(measured, tmp_path, capsys, monkeypatch):
    """A calibrant seen through the same distortion: the file brings the rings within
    0.05 px of the truth; without it the same points are several times worse."""
    from geocal_cli.core.geometry import geometry_from_values
    from geocal_cli.core.metrics import ring_position_error
    from geocal_cli.core.refine import refine_geometry
    from geocal_cli.core.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.distortion import read_distortion
    from geocal_cli.io.poni import read_poni

    monkeypatch.chdir(tmp_path)
    d = measured
    code, _, err = cli(["simulate", "lab6.edf", "--energy", "17", "--pixel-size", "100",
                        "--shape", "1024,1024", "--distance", "100", "--tilt", "1.5",
                        "--tilt-plan-rotation", "40", "--center", "505.3,520.8",
                        "--distortion", d / "grid.truth.h5"], capsys)
    assert code == 0, err
    code, out, err = cli(["calib-ring", "lab6.edf", "-c", "LaB6", "--energy", "17",
                          "--detector", d / "det.h5", "--report", "with.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "with.json").read_text())
    effect = report["distortion"]
    assert effect["rms_px_with"] < 0.1 and effect["rms_px_without"] > 5 * effect["rms_px_with"]

    truth = read_poni(tmp_path / "lab6.truth.poni")
    fitted = read_poni(tmp_path / "lab6.poni")             # carries the detector file
    assert not fitted.detector.uniform_pixel
    true_field = read_distortion(d / "grid.truth.h5")[0]
    field, pixel, _ = read_distortion(d / "det.h5")
    from pyFAI.detectors import Detector

    flat = Detector(pixel1=pixel[0], pixel2=pixel[1], max_shape=(1024, 1024))
    values = {**{p: getattr(fitted, p) for p in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")},
              "wavelength": fitted.wavelength}
    rings = load_calibrant("LaB6", "xray")
    tth = ring_tth(rings.d_spacing[:10], truth.wavelength)
    with_file = ring_position_error(geometry_from_values(flat, values), truth, tth, (1024, 1024),
                                    field=field, reference_field=true_field)
    assert with_file <= 0.05

    # Without the file: the same image's ring points on raw pixels, refined on a plain detector.
    from geocal_cli.config.calib_ring import CalibRingConfig
    from geocal_cli.pipeline import calib_ring

    calib = calib_ring.run(CalibRingConfig(image=tmp_path / "lab6.edf", calibrant="LaB6",
                                           energy_kev=17, detector=str(d / "det.h5"))).calibration
    pts, ref = calib.points, calib.refinement
    ry, rx = field.raw_position(pts.d1 + 0.5, pts.d2 + 0.5)
    raw = refine_geometry(calib.geometry, ry - 0.5, rx - 0.5, rings.d_spacing[pts.ring],
                          ref.values, ref.free)
    without = ring_position_error(geometry_from_values(truth.detector, raw.values), truth, tth,
                                  (1024, 1024), reference_field=true_field)
    assert without > 5 * with_file and without > 0.1
