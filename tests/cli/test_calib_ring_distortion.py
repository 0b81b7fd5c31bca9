"""calib-ring with a detector file from grid-distortion, on a calibrant seen through the same
distortion."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import cli


@pytest.fixture(scope="module")
def distorted_lab6(measured, tmp_path_factory):
    """LaB6 simulated through the grid's true distortion (`measured`)."""
    from geocal_cli.main import run

    d = tmp_path_factory.mktemp("lab6")
    with pytest.raises(SystemExit) as exc:
        run(["-q", "simulate", str(d / "lab6.edf"), "--energy", "17", "--pixel-size", "100",
             "--shape", "1024,1024", "--distance", "100", "--tilt", "1.5",
             "--tilt-plan-rotation", "40", "--center", "505.3,520.8",
             "--distortion", str(measured / "grid.truth.h5")])
    assert exc.value.code == 0
    return d / "lab6.edf"


def test_calib_ring_with_the_detector_file(measured, distorted_lab6, tmp_path, capsys, monkeypatch):
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
    (tmp_path / "lab6.edf").symlink_to(distorted_lab6)
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

    truth = read_poni(distorted_lab6.with_name("lab6.truth.poni"))
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


def test_a_distortion_the_poni_cannot_describe_is_reported(measured, distorted_lab6, tmp_path,
                                                           capsys):
    """Without the detector file the rings leave a residual that varies slowly with χ, far
    beyond the points' own scatter: the report splits the two and warns; with the file the
    misfit is gone."""
    code, _, err = cli(["calib-ring", distorted_lab6, "-c", "LaB6", "--energy", "17",
                        "--pixel-size", "100", "-o", tmp_path / "raw.poni",
                        "--report", tmp_path / "raw.json"], capsys)
    assert code == 0, err
    raw = json.loads((tmp_path / "raw.json").read_text())
    r = raw["residuals"]
    assert r["points_scatter_px"] < 0.1 and r["model_misfit_px"] > 5 * r["points_scatter_px"]
    assert r["rms_px"] ** 2 == pytest.approx(r["points_scatter_px"] ** 2 + r["model_misfit_px"] ** 2)
    assert any("varies slowly with the azimuth" in w for w in raw["warnings"])
    code, out, err = cli(["calib-ring", distorted_lab6, "-c", "LaB6", "--energy", "17",
                          "--detector", measured / "det.h5", "-o", tmp_path / "file.poni",
                          "--report", tmp_path / "file.json"], capsys)
    assert code == 0, err
    assert "model misfit" in out
    fixed = json.loads((tmp_path / "file.json").read_text())
    assert fixed["residuals"]["model_misfit_px"] < 0.2 * r["model_misfit_px"]
    assert not any("varies slowly with the azimuth" in w for w in fixed["warnings"])
