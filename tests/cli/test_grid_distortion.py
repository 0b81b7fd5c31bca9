"""`geocal grid-distortion` from the command line, and its detector file used by calib-ring."""

from __future__ import annotations

import json

import numpy as np

from tests.cli.test_cli import cli
from tests.conftest import shared

def test_outputs_load_in_pyfai_and_validate(measured):
    import fabio
    import pyFAI

    d = measured
    det = pyFAI.detector_factory(str(d / "det.h5"))
    assert det.shape == (1024, 1024) and not det.uniform_pixel
    assert 0 < det.mask.mean() < 0.2                    # outside the holes' hull
    spline_det = pyFAI.detectors.Detector(splinefile=str(d / "det.spline"))
    assert spline_det.shape == (1024, 1024)
    assert fabio.open(str(d / "corr.edf")).data.shape == (1024, 1024)
    assert (d / "grid.png").stat().st_size > 10_000
    r = json.loads((d / "grid.json").read_text())["results"]
    # Pixel sizes within 0.1 % of the simulated 100 µm; corrected holes within 0.01 pitch.
    assert abs(r["pixel_size_um"]["x"] - 100) < 0.1 and abs(r["pixel_size_um"]["y"] - 100) < 0.1
    assert r["after_correction"]["max_pitch"] < 0.01
    assert r["before_correction"]["max_px"] > 3
    assert r["after_correction"]["holes"] > 0.8 * r["spots"]["indexed"]


def test_spline_converted_to_a_detector_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spline = shared("distortion", "pyFAI_benchmark_halfccd.spline")
    code, out, err = cli(["grid-distortion", spline, "-o", "halfccd.h5"], capsys)
    assert code == 0, err
    import pyFAI

    det = pyFAI.detector_factory(str(tmp_path / "halfccd.h5"))
    assert det.shape == (1025, 2048)
    r = json.loads((tmp_path / "pyFAI_benchmark_halfccd.grid.json").read_text())["results"]
    assert r["source"] == "file" and r["field"]["max_px"] > 10


def _bad(tmp_path, capsys, args, code_expected, message):
    code, _, err = cli(["grid-distortion", *args, "-o", tmp_path / "det.h5",
                        "--report", tmp_path / "r.json"], capsys)
    assert code == code_expected, err
    assert err.strip().splitlines()[-1].startswith("error:") and message in err
    assert not (tmp_path / "det.h5").exists() and not (tmp_path / "r.json").exists()


def test_bad_inputs(tmp_path, capsys):
    from geocal_cli.io.images import write_image

    text = tmp_path / "notes.edf"
    text.write_text("not an image")
    _bad(tmp_path, capsys, [text, "--pitch", "2"], 4, "notes.edf")
    rng = np.random.default_rng(0)
    write_image(tmp_path / "noise.edf", rng.poisson(100, (512, 512)).astype(np.int32))
    _bad(tmp_path, capsys, [tmp_path / "noise.edf", "--pitch", "2"], 5, "no regular grid")
    code, _, err = cli(["simulate", tmp_path / "rings.edf", "--energy", "17", "--pixel-size", "100",
                        "--shape", "512,512", "--distance", "80"], capsys)
    assert code == 0, err
    _bad(tmp_path, capsys, [tmp_path / "rings.edf", "--pitch", "2"], 5, "error:")
    code, _, err = cli(["simulate", tmp_path / "g.edf", "--pixel-size", "100", "--shape", "512,512",
                        "--grid", "2", "--hole-diameter", "8"], capsys)
    assert code == 0, err
    _bad(tmp_path, capsys, [tmp_path / "g.edf", "--pitch", "2", "--pixel-size", "80"], 3,
         "apart in the image")
    _bad(tmp_path, capsys, [tmp_path / "g.edf"], 3, "--pitch")
