"""calib-ring with a detector file from grid-distortion, on a calibrant seen through the same
distortion."""

from __future__ import annotations

import json

from tests.cli.test_cli import cli


def test_calib_ring_with_the_detector_file(measured, tmp_path, capsys, monkeypatch):
    """A calibrant seen through the same distortion: the file brings the rings within
    0.05 px of the truth; without it the same points are several times worse."""
    from geocal_cli.config.calib_ring import CalibRingConfig
    from geocal_cli.core.geometry.frame import geometry_from_values
    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.distortion import read_distortion
    from geocal_cli.io.poni import read_poni
    from geocal_cli.pipeline import calib_ring

    monkeypatch.chdir(tmp_path)
    d = measured
    code, _, err = cli(["simulate", "lab6.edf", "--energy", "17", "--pixel-size", "100",
                        "--shape", "1024,1024", "--distance", "100", "--tilt", "1.5",
                        "--tilt-plan-rotation", "40", "--center", "505.3,520.8",
                        "--distortion", d / "grid.truth.h5"], capsys)
    assert code == 0, err
    # The command end to end: it exits 0 and its report shows both residuals.
    code, _, err = cli(["calib-ring", "lab6.edf", "-c", "LaB6", "--energy", "17",
                        "--detector", d / "det.h5", "--report", "with.json"], capsys)
    assert code == 0, err
    effect = json.loads((tmp_path / "with.json").read_text())["distortion"]
    assert effect["rms_px_with"] < 0.1 and effect["rms_px_without"] > 5 * effect["rms_px_with"]
    # The pipeline again, for the calibration's control points.
    res = calib_ring.run(CalibRingConfig(image=tmp_path / "lab6.edf", calibrant="LaB6",
                                         energy_kev=17, detector=str(d / "det.h5")))
    distorted = read_poni(res.poni).detector                   # the PONI carries the file
    assert not distorted.uniform_pixel

    truth = read_poni(tmp_path / "lab6.truth.poni")
    true_field = read_distortion(d / "grid.truth.h5")[0]
    field = read_distortion(d / "det.h5")[0]
    d_spacing = load_calibrant("LaB6", "xray").d_spacing
    tth = ring_tth(d_spacing[:10], truth.wavelength)
    # With the file: the geometry fitted on ideal pixels, compared where rings fall on raw ones.
    with_file = ring_position_error(res.calibration.geometry, truth, tth, (1024, 1024),
                                    field=field, reference_field=true_field)
    assert with_file <= 0.05
    # Without it: the same points on raw pixels, refined on a plain detector.
    raw = calib_ring.refit_without_distortion(res.calibration, distorted, d_spacing)
    without = ring_position_error(geometry_from_values(truth.detector, raw.values), truth, tth,
                                  (1024, 1024), reference_field=true_field)
    assert without > 5 * with_file and without > 0.1
