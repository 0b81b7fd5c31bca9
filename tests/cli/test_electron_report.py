"""calib-ring's electron report: the lens model's own warnings replace the tilted start's."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import cli


def test_the_lens_model_replaces_the_tilted_starts_warnings(tmp_path, capsys, monkeypatch):
    """Concentric elliptical Au rings (a 3 % projector-lens stretch): a tilted detector can
    describe them only approximately, so the tilted start sees rings that are not concentric
    and a misfit; the lens model describes them to the points' own scatter, and the report
    keeps the model's verdict, not the start's."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["-q", "simulate", "au.tif", "-c", "Au", "--voltage", "200",
                        "--pixel-size", "55", "--shape", "512,512", "--distance", "300",
                        "--axis-ratio", "1.03", "--ellipse-angle", "30", "--beamstop", "15"], capsys)
    assert code == 0, err
    code, out, err = cli(["calib-ring", "au.tif", "-c", "Au", "--voltage", "200",
                          "--pixel-size", "55", "--report", "au.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "au.json").read_text())
    r = report["residuals"]
    assert r["model_misfit_px"] < 0.02 and r["points_scatter_px"] < 0.1
    assert "model misfit" in out
    assert report["results"]["electron"]["axis_ratio"] == pytest.approx(1.03, abs=1e-3)
    assert not any(w.startswith(("the rings are not concentric", "the geometry leaves"))
                   for w in report["warnings"]), report["warnings"]
