"""`geocal convert-poni` on real files: Dioptas, GSAS-II and DIALS geometries against the
references in ../shared/data, the flip check of an image, and bad input."""

import json

import numpy as np
import pytest

from tests.cli.test_cli import cli
from tests.conftest import shared

CEO2 = ("xray", "ceo2_pilatus1m_dioptas")
MAR = ("xray", "ceo2_steel_mar345_gsas2")


def _peak_error_deg(poni, image_path) -> float:
    """Mean |Δ2θ| between integrated peaks and the first CeO2 rings, degrees (pyFAI integration)."""
    import fabio
    import pyFAI
    from pyFAI.calibrant import get_calibrant

    ai = pyFAI.load(str(poni))
    img = fabio.open(str(image_path)).data
    tth, intensity = ai.integrate1d(img, 4000, unit="2th_deg", mask=img < 0)
    cal = get_calibrant("CeO2")
    cal.wavelength = ai.wavelength
    errors = []
    for ring in np.degrees(cal.get_2th())[:8]:
        win = np.abs(tth - ring) < 0.15
        if ring > tth.max() or win.sum() < 5:
            continue
        y = intensity[win] - np.percentile(intensity[win], 20)
        top = np.argmax(y)
        sel = slice(max(top - 3, 0), top + 4)
        errors.append(abs(np.sum(tth[win][sel] * y[sel]) / np.sum(y[sel]) - ring))
    return float(np.mean(errors))


def test_dioptas_poni_integrates_onto_ceo2_only_with_the_flip(tmp_path, monkeypatch, capsys):
    poni, tif = shared(*CEO2, "CeO2_Pilatus1M.poni"), shared(*CEO2, "CeO2_Pilatus1M.tif")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["convert-poni", poni, "--from", "dioptas", "--to", "poni", "-o", "fabio.poni",
                        "--image", tif, "--calibrant", "CeO2"], capsys)
    assert code == 0, err
    assert _peak_error_deg(tmp_path / "fabio.poni", tif) < 0.005
    assert _peak_error_deg(poni, tif) > 0.02          # the file as it is, without the flip
    report = json.loads((tmp_path / "fabio.convert.json").read_text())
    fits = {f["name"]: f["fits"] for f in report["flip_check"]}
    assert fits == {"as is": True, "ud": False, "lr": False, "ud+lr": False}
    assert report["self_check"]["exact"] and report["results"]["poni"]["orientation"] == 2


def test_flip_check_names_the_missing_flip(tmp_path, monkeypatch, capsys):
    poni, tif = shared(*CEO2, "CeO2_Pilatus1M.poni"), shared(*CEO2, "CeO2_Pilatus1M.tif")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["convert-poni", poni, "--to", "poni", "-o", "as_is.poni", "--image", tif,
                        "--calibrant", "CeO2", "--json"], capsys)
    report = json.loads(_)
    assert code == 0
    fits = [f["name"] for f in report["flip_check"] if f["fits"]]
    assert fits == ["ud"]
    assert any("does not fit --image as it is" in w and "ud" in w for w in report["warnings"])


def _max_tth_diff_deg(a, b) -> float:
    """Largest |Δ2θ| (degrees) between two geometries over a 47 × 47 grid of the MAR345 image."""
    from geocal_cli.core.geometry.frame import frame_of

    d1, d2 = np.meshgrid(np.linspace(0, 2299, 47), np.linspace(0, 2299, 47), indexing="ij")
    return float(np.degrees(np.abs(frame_of(a).tth(d1, d2) - frame_of(b).tth(d1, d2))).max())


def test_gsas2_controls_match_the_reference_poni(tmp_path, monkeypatch, capsys):
    from geocal_cli.io.poni import read_poni

    controls = shared(*MAR, "gsas2_image_controls_transcribed.txt")
    reference = read_poni(shared(*MAR, "converted_from_gsas2_for_fabio_array.poni"))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["convert-poni", controls, "--to", "poni", "-o", "mar.poni", "--flip", "ud",
                        "--shape", "2300,2300"], capsys)
    assert code == 0, err
    assert _max_tth_diff_deg(read_poni(tmp_path / "mar.poni"), reference) < 1e-6
    # Without the flip GSAS-II's array is not fabio's: a tenth of a degree off.
    code, _, _ = cli(["convert-poni", controls, "--to", "poni", "-o", "noflip.poni", "--shape", "2300,2300"], capsys)
    assert _max_tth_diff_deg(read_poni(tmp_path / "noflip.poni"), reference) > 0.01


def test_gsas2_written_controls_with_numpy_reprs_and_no_pixel_size(tmp_path, monkeypatch, capsys):
    """GSAS-II under numpy 2 writes `np.float64(...)` reprs and may leave pixelSize and size to
    the image: the pixel size then comes from --image's header or --pixel-size."""
    from geocal_cli.io.poni import read_poni

    values = {}
    for line in shared(*MAR, "gsas2_image_controls_transcribed.txt").read_text().splitlines():
        key, sep, value = line.split("#")[0].partition(":")
        if sep and key.strip() in ("wavelength", "distance", "tilt", "rotation", "center"):
            values[key.strip()] = eval(value)  # the transcription's plain Python literals
    cx, cy = values.pop("center")
    lines = [f"{k}:np.float64({v})" for k, v in values.items()]
    lines += [f"center:[np.float64({cx}), np.float64({cy})]", "type:PWDR", "DetDepth:0.0",
              "azmthOff:np.float64(0.0)", "invert_x:False", "invert_y:True"]
    (tmp_path / "g2.imctrl").write_text("\n".join(lines) + "\n")
    reference = read_poni(shared(*MAR, "converted_from_gsas2_for_fabio_array.poni"))
    monkeypatch.chdir(tmp_path)
    image = shared(*MAR, "nx09_strain_001.mar2300")
    for name, extra in (("from_image.poni", ["--image", image]),
                        ("from_flag.poni", ["--pixel-size", "150", "--shape", "2300,2300"])):
        code, _, err = cli(["convert-poni", "g2.imctrl", "--to", "poni", "-o", name, "--flip", "ud",
                            *extra], capsys)
        assert code == 0, err
        assert _max_tth_diff_deg(read_poni(tmp_path / name), reference) < 1e-6
    code, _, err = cli(["convert-poni", "g2.imctrl", "--to", "poni", "-o", "none.poni",
                        "--shape", "2300,2300"], capsys)
    assert code == 4 and "no pixelSize" in err and not (tmp_path / "none.poni").exists()


def _panel_lab_mm(expt_path, rows, cols):
    """dxtbx's panel model from the JSON: centre of pixel (s, f) in lab mm (hierarchy composed)."""
    from geocal_cli.core.geometry.conventions.dials import global_panel

    det = json.loads(expt_path.read_text())["detector"][0]
    root = det["hierarchy"]
    p = global_panel([root], det["panels"][0])
    px = det["panels"][0]["pixel_size"]
    return (p["origin"] + (cols[..., None] + 0.5) * px[0] * p["fast_axis"]
            + (rows[..., None] + 0.5) * px[1] * p["slow_axis"])


def test_dials_expt_round_trip_reproduces_pixel_lab_coordinates(tmp_path, monkeypatch, capsys):
    expt = shared("dials", "cunir_ssx", "indexed.expt")
    monkeypatch.chdir(tmp_path)
    assert cli(["convert-poni", expt, "--to", "poni", "-o", "cunir.poni"], capsys)[0] == 0
    assert cli(["convert-poni", "cunir.poni", "--to", "dials", "-o", "cunir.expt"], capsys)[0] == 0
    rows, cols = np.meshgrid(np.linspace(0, 2526, 21), np.linspace(0, 2462, 21), indexing="ij")
    before = _panel_lab_mm(expt, rows, cols)
    after = _panel_lab_mm(tmp_path / "cunir.expt", rows, cols)
    assert np.abs(after - before).max() < 1e-9
    written = json.loads((tmp_path / "cunir.expt").read_text())
    assert written["beam"][0]["wavelength"] == pytest.approx(1.37611, rel=1e-12)


def test_dials_hierarchy_offset_and_wavelength_in_metres(tmp_path, monkeypatch, capsys):
    expt = shared("dials", "al_electron_powder_expt", "calibrated.expt")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["convert-poni", expt, "--to", "poni", "-o", "al.poni"], capsys)
    assert code == 4 and "metres" in err and "--fix-units" in err and not (tmp_path / "al.poni").exists()
    code, out, err = cli(["convert-poni", expt, "--to", "dials", "-o", "al.expt", "--fix-units", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert any("group origin offset" in w for w in report["warnings"])
    assert any("in metres" in w for w in report["warnings"])
    rows, cols = np.meshgrid(np.linspace(0, 2047, 9), np.linspace(0, 2047, 9), indexing="ij")
    before = _panel_lab_mm(expt, rows, cols)
    # The group origin (−2.43, 0.046, 0) mm is in the written panel.
    assert np.abs(_panel_lab_mm(tmp_path / "al.expt", rows, cols) - before).max() < 1e-9
    assert np.abs(before[0, 0] - (np.array([-28.672, 28.672, -635.1357835249255]) + [0.014, -0.014, 0])).max() > 2
    assert json.loads((tmp_path / "al.expt").read_text())["beam"][0]["wavelength"] == pytest.approx(0.0250824, rel=1e-5)
    for name in ("imported.expt", "eyeballed.expt", "Al_standard_imported.expt"):
        code, _, err = cli(["convert-poni", shared("dials", "al_electron_powder_expt", name), "--to", "poni",
                            "-o", f"{name}.poni"], capsys)
        assert code == 0, err


def _bad_inputs(tmp_path):
    cunir = json.loads(shared("dials", "cunir_ssx", "indexed.expt").read_text())
    cunir["detector"][0]["panels"].append(dict(cunir["detector"][0]["panels"][0]))
    cunir["detector"][0]["hierarchy"]["children"].append({"panel": 1})
    (tmp_path / "two_panels.expt").write_text(json.dumps(cunir))
    (tmp_path / "g.poni").write_text("Distance: 0.1\nPoni1: 0.01\nPoni2: 0.02\nPixelSize1: 1e-4\nPixelSize2: 1e-4\n")
    (tmp_path / "nocenter.yaml").write_text("directDist: 100\ncenterY: 500\npixelX: 100\npixelY: 100\n")
    (tmp_path / "text.par").write_text("distance abc\ny_center 1\nz_center 1\ny_size 100\nz_size 100\n")
    (tmp_path / "um.yaml").write_text("det_calib_params: {cch1: 1, cch2: 2, distance: 0.8, pwidth1: 55, pwidth2: 55}\n")
    (tmp_path / "notes.txt").write_text("hello\nworld\n")
    return [
        (["g.poni", "--to", "foo"], 3, "foo"),
        (["g.poni", "--from", "dials", "--to", "poni"], 4, "not a DIALS experiment list"),
        (["nocenter.yaml", "--to", "poni"], 4, "missing key 'centerX'"),
        (["text.par", "--to", "poni"], 4, "distance = 'abc' is not a number"),
        (["um.yaml", "--to", "poni"], 4, "not a pixel size"),
        (["two_panels.expt", "--to", "poni"], 4, "--panel"),
        (["notes.txt", "--to", "poni"], 4, "cannot tell its geometry format"),
        (["g.poni", "--to", "poni", "--orientation", "2", "--shape", "100,100"], 3, "use orientation 1 or 3"),
        (["g.poni", "--to", "dials"], 3, "image size"),
        (["g.poni", "--to", "poni", "-o", "g.poni"], 3, "is one of this run's inputs"),
    ]


def test_bad_input_is_refused_with_its_exit_code_and_no_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for args, expected, words in _bad_inputs(tmp_path):
        before = set(tmp_path.iterdir())
        code, _, err = cli(["convert-poni", "-o", "out.file", "--report", "r.json", *args], capsys)
        assert code == expected and err.strip().splitlines()[-1].startswith("error:") and words in err, (args, code, err)
        assert set(tmp_path.iterdir()) == before, args
