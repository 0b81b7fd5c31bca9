"""q-check on real data: DIALS stills of CuNiR and the CeO2 Pilatus image calibrated by Dioptas."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import cli
from tests.conftest import shared


def _cunir():
    return shared("dials", "cunir_ssx", "indexed.expt"), shared("dials", "cunir_ssx", "indexed.refl")


def test_cunir_models_reproduce_the_table_exactly():
    from geocal_cli.config.q_check import QCheckConfig
    from geocal_cli.core.q.stills import check_experiments
    from geocal_cli.io.dials_models import read_experiments
    from geocal_cli.io.dials_refl import read_reflections
    from geocal_cli.pipeline.q_check import _reflections

    expt, refl_path = _cunir()
    cfg = QCheckConfig(expt=expt, refl=refl_path)
    models = read_experiments(expt)
    refl, _ = _reflections(cfg, models, read_reflections(refl_path))
    chk = check_experiments(models.crystals, models.panels, refl)
    assert chk.table["q_pixel_xyzcal_vs_table_s1"] < 1e-9
    assert chk.table["prediction_vs_xyzcal_px"] < 1e-6
    assert chk.table["q_pred_vs_table_s1"] < 1e-12


def _stills_report(tmp_path, capsys, expt, refl, name="r.json"):
    code, _, err = cli(["q-check", "--expt", expt, "--refl", refl, "--report", tmp_path / name], capsys)
    return code, json.loads((tmp_path / name).read_text()), err


def test_cunir_is_consistent(tmp_path, capsys):
    expt, refl = _cunir()
    code, rep, _ = _stills_report(tmp_path, capsys, expt, refl)
    assert code == 0 and rep["verdict"]["status"] == "ok"
    per = [e["mean_abs_dq"] for e in rep["results"]["experiments"]]
    assert len(per) == 5 and all(2e-4 <= v <= 7e-4 for v in per)
    assert rep["results"]["diagnosis"]["summary"].startswith("no systematic geometry error")
    assert rep["results"]["slip"] is None


def _perturbed(tmp_path, change) -> object:
    expt, _ = _cunir()
    data = json.loads(expt.read_text())
    change(data)
    out = tmp_path / "perturbed.expt"
    out.write_text(json.dumps(data))
    return out


def _distance(data):
    p = data["detector"][0]["panels"][0]
    n = np.cross(p["fast_axis"], p["slow_axis"])
    n *= np.sign(n @ np.array(p["origin"]))
    p["origin"] = (np.array(p["origin"]) + n / np.linalg.norm(n)).tolist()


def _yflip(data):
    p = data["detector"][0]["panels"][0]
    for k in ("origin", "fast_axis", "slow_axis"):
        p[k] = (np.array(p[k]) * [1, -1, 1]).tolist()


def _crystal_turn(data):
    r = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    for c in data["crystal"]:
        for k in ("real_space_a", "real_space_b", "real_space_c"):
            c[k] = (r @ np.array(c[k])).tolist()


@pytest.mark.parametrize("change, words", [
    (_distance, "distance +1"), (_yflip, "mirrored in y"), (_crystal_turn, "crystal frame turned by 90° about +z")])
def test_cunir_perturbations_are_flagged_and_named(tmp_path, capsys, change, words):
    _, refl = _cunir()
    code, rep, err = _stills_report(tmp_path, capsys, _perturbed(tmp_path, change), refl)
    assert code == 6 and rep["verdict"]["status"] == "flagged"
    assert rep["results"]["overall"]["mean_abs_dq"] > 8e-4
    assert words in rep["results"]["diagnosis"]["summary"]
    assert err.strip().splitlines()[-1].startswith("error: q-check failed")


def _ceo2(tmp_path, capsys):
    folder = "xray", "ceo2_pilatus1m_dioptas"
    image, dioptas = shared(*folder, "CeO2_Pilatus1M.tif"), shared(*folder, "CeO2_Pilatus1M.poni")
    assert cli(["convert-poni", dioptas, "--from", "dioptas", "--to", "poni", "-o", tmp_path / "ref.poni",
                "--shape", "1043,981", "--report", tmp_path / "conv.json"], capsys)[0] == 0
    return image, dioptas, tmp_path / "ref.poni"


def _powder(tmp_path, capsys, image, poni):
    code, _, err = cli(["q-check", image, "--poni", poni, "-c", "CeO2", "--report", tmp_path / "q.json"], capsys)
    return code, json.loads((tmp_path / "q.json").read_text()), err


def test_ceo2_reference_geometry_is_consistent(tmp_path, capsys):
    image, _, ref = _ceo2(tmp_path, capsys)
    code, rep, _ = _powder(tmp_path, capsys, image, ref)
    assert code == 0
    overall = rep["results"]["overall"]
    assert overall["geometric_median_abs_microstrain"] < 300
    assert overall["points"] > 5000 and len(rep["results"]["rings"]) >= 12
    assert rep["results"]["diagnosis"]["summary"].startswith("no systematic geometry error")


@pytest.mark.parametrize("what", ["distance", "centre"])
def test_ceo2_perturbed_geometry_is_flagged_and_named(tmp_path, capsys, what):
    from geocal_cli.core.geometry.frame import make_geometry
    from geocal_cli.io.poni import read_poni, write_poni

    image, _, ref = _ceo2(tmp_path, capsys)
    g = read_poni(ref)
    dist, poni2 = (g.dist * 1.01, g.poni2) if what == "distance" else (g.dist, g.poni2 + 2 * 172e-6)
    write_poni(tmp_path / "bad.poni", make_geometry(g.detector, dist, g.poni1, poni2, g.rot1, g.rot2, g.rot3, g.wavelength))
    code, rep, _ = _powder(tmp_path, capsys, image, tmp_path / "bad.poni")
    assert code == 6
    diag = rep["results"]["diagnosis"]
    assert diag["systematic"] and diag["cause"][0] == what
    if what == "distance":
        assert rep["results"]["overall"]["geometric_median_abs_microstrain"] > 5000
        assert diag["error"]["distance"]["value"] == pytest.approx(g.dist * 1e3 * 0.01, rel=0.1)
    else:
        assert abs(diag["error"]["centre_x"]["value"]) == pytest.approx(2.0, abs=0.2)


def test_ceo2_geometry_without_the_dioptas_flip_is_flagged(tmp_path, capsys):
    image, dioptas, _ = _ceo2(tmp_path, capsys)
    code, rep, err = _powder(tmp_path, capsys, image, dioptas)
    assert code == 6
    assert "only after flipping it (ud)" in err.strip().splitlines()[-1]
    assert any(f["flip"] == "ud" and f["fits"] for f in rep["results"]["flip_check"])
    # The table's diagnosis says what the exit message says.
    assert "only after flipping it (ud)" in rep["results"]["diagnosis"]["summary"]
