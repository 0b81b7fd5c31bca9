"""Every JSON report validates against its published schema (`geocal schema`), its inputs and
outputs hash as it says, and its provenance names the command that made it."""

from __future__ import annotations

import json
import shlex

import jsonschema
import pytest

from tests.cli.conftest import geocal
from tests.conftest import assert_valid_report, shared

CEO2 = ("xray", "ceo2_pilatus1m_dioptas", "CeO2_Pilatus1M.tif")


def _run(args, capsys):
    code, _, err = geocal(args, capsys)
    assert code == 0, err


def test_calib_ring_recenter_q_check_convert_reports_on_real_data(tmp_path, capsys):
    image = shared(*CEO2)
    poni, report = tmp_path / "c.poni", tmp_path / "c.json"
    args = ["calib-ring", image, "-c", "CeO2", "--wavelength", "0.4066", "-d", "Pilatus1M",
            "-o", poni, "--report", report, "--plot", tmp_path / "c.png", "-q"]
    _run(args, capsys)
    r = assert_valid_report(report)
    assert r["provenance"]["command_line"] == shlex.join(["geocal", *map(str, args)])
    assert {o["path"] for o in r["outputs"]} == {str(poni), str(tmp_path / "c.png")}
    assert set(r["provenance"]["versions"]) >= {"geocal", "pyFAI", "fabio", "numpy", "scipy", "python"}
    _run(["recenter", image, "--poni", poni, "-c", "CeO2", "-o", tmp_path / "r.poni",
          "--report", tmp_path / "r.json", "-q"], capsys)
    assert_valid_report(tmp_path / "r.json")
    _run(["q-check", image, "--poni", poni, "-c", "CeO2", "--report", tmp_path / "q.json", "-q"], capsys)
    assert assert_valid_report(tmp_path / "q.json")["verdict"]["status"] == "ok"
    _run(["convert-poni", poni, "--to", "fit2d", "-o", tmp_path / "c.f2d.yaml",
          "--report", tmp_path / "v.json", "-q"], capsys)
    assert_valid_report(tmp_path / "v.json")


def test_calibrant_file_and_mask_are_hashed_inputs(lab6_pilatus, tmp_path, capsys):
    import numpy as np

    from geocal_cli.io.images import write_image

    sim, cfg = lab6_pilatus
    dspacing = tmp_path / "lab6.D"
    dspacing.write_text("\n".join(f"{d:.6f}" for d in (4.15692, 2.93939, 2.40000, 2.07846, 1.85903,
                                                        1.69706, 1.46969, 1.38564, 1.31453)) + "\n")
    mask = tmp_path / "mask.edf"
    write_image(mask, np.zeros((1043, 981), np.int8))
    _run(["calib-ring", sim.image, "-c", dspacing, "--energy", cfg.energy_kev, "-d", "Pilatus1M",
          "--mask", mask, "-o", tmp_path / "l.poni", "--report", tmp_path / "l.json", "-q"], capsys)
    r = assert_valid_report(tmp_path / "l.json")
    assert {e["path"] for e in r["inputs"]} == {str(sim.image), str(dspacing), str(mask)}


def test_simulate_grid_distortion_and_electron_reports(tmp_path, capsys):
    grid = tmp_path / "grid.edf"
    _run(["simulate", grid, "--grid", "2", "--pixel-size", "100", "--shape", "512,512",
          "--radial", "2", "-q"], capsys)
    assert_valid_report(tmp_path / "grid.simulate.json")
    _run(["grid-distortion", grid, "--pitch", "2", "--pixel-size", "100", "-o", tmp_path / "g.h5",
          "--report", tmp_path / "g.json", "-q"], capsys)
    assert_valid_report(tmp_path / "g.json")
    au = shared("electron", "au_xgrating_pyxem", "au_xgrating_20cm.tif")
    cif = shared("electron", "au_xgrating_pyxem", "au.cif")
    _run(["calib-ring", au, "-c", cif, "--voltage", "200", "--pixel-size", "55",
          "-o", tmp_path / "au.poni", "--report", tmp_path / "au.json", "-q"], capsys)
    r = assert_valid_report(tmp_path / "au.json")
    assert str(cif) in {e["path"] for e in r["inputs"]}
    ellipse = json.loads((tmp_path / "au.ellipse.json").read_text())
    jsonschema.validate(ellipse, _schema("ellipse", capsys))


def _schema(name, capsys):
    code, out, _ = geocal(["schema", name], capsys)
    assert code == 0
    return json.loads(out)


@pytest.mark.parametrize("name", ["calib-ring", "recenter", "q-check", "convert-poni",
                                  "grid-distortion", "simulate", "joint", "batch", "ellipse"])
def test_published_schemas_are_valid_schemas(name, capsys):
    jsonschema.Draft202012Validator.check_schema(_schema(name, capsys))


def test_schema_refuses_a_broken_report(lab6_pilatus, tmp_path, capsys):
    """The schemas are not vacuous: a report missing a key result or with a wrong type fails."""
    sim, cfg = lab6_pilatus
    _run(["calib-ring", sim.image, "-c", "LaB6", "--energy", cfg.energy_kev, "-d", "Pilatus1M",
          "-o", tmp_path / "l.poni", "--report", tmp_path / "l.json", "-q"], capsys)
    schema = _schema("calib-ring", capsys)
    good = json.loads((tmp_path / "l.json").read_text())
    jsonschema.validate(good, schema)
    for broken in (lambda r: r["results"]["geometry"]["poni"].pop("dist_m"),
                   lambda r: r["residuals"].__setitem__("rms_px", "0.1"),
                   lambda r: r["inputs"][0].__setitem__("sha256", "abc"),
                   lambda r: r["provenance"].pop("command_line"),
                   lambda r: r["schema"].__setitem__("name", "geocal.recenter")):
        report = json.loads(json.dumps(good))
        broken(report)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(report, schema)
