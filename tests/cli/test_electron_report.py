"""calib-ring's electron report: the lens model's own warnings replace the tilted start's,
and its PONI is the pyFAI geometry nearest its ellipses."""

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


def test_the_poni_is_the_pyfai_geometry_nearest_the_ellipses(tmp_path, capsys, monkeypatch):
    """pyFAI has no lens ellipticity: the PONI written for the lens model is the tilted
    detector whose rings come nearest the true ellipses (a 3 % stretch: untilted circles at
    the camera length miss them by 1.2 px rms, 2.2 px at most), and the report says so."""
    import numpy as np
    import pyFAI

    from geocal_cli.core.geometry.frame import ellipticity_of, frame_of, moved_frame
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant

    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["-q", "simulate", "au.tif", "-c", "Au", "--voltage", "200",
                        "--pixel-size", "55", "--shape", "512,512", "--distance", "300",
                        "--axis-ratio", "1.03", "--ellipse-angle", "30", "--beamstop", "15"], capsys)
    assert code == 0, err
    code, _, err = cli(["-q", "calib-ring", "au.tif", "-c", "Au", "--voltage", "200",
                        "--pixel-size", "55", "--report", "au.json"], capsys)
    assert code == 0, err
    truth = pyFAI.load(str(tmp_path / "au.truth.poni"))
    ellipses = moved_frame(frame_of(truth), (0.0, 0.0), ellipticity_of(1.03, 30))
    tth = ring_tth(load_calibrant("Au").d_spacing, truth.wavelength)[:8]
    d1, d2 = ellipses.pixel_at(tth[:, None], np.linspace(-np.pi, np.pi, 360, endpoint=False))
    on = np.isfinite(d1) & (d1 >= 0) & (d1 < 512) & (d2 >= 0) & (d2 < 512)
    poni = frame_of(pyFAI.load(str(tmp_path / "au.poni")))
    miss = ((poni.tth(d1[on], d2[on]) - np.broadcast_to(tth[:, None], d1.shape)[on])
            / poni.tth_gradient(d1[on], d2[on]))
    assert np.sqrt(np.mean(miss ** 2)) < 0.5 and np.abs(miss).max() < 1.0
    # A tilt τ draws ellipses of axis ratio 1/cos τ.
    report = json.loads((tmp_path / "au.json").read_text())
    fit2d = report["results"]["geometry"]["fit2d"]
    assert 1 / np.cos(np.radians(fit2d["tilt_deg"])) == pytest.approx(1.03, abs=0.005)
    assert any(n.startswith("the PONI is the pyFAI geometry nearest the electron model")
               for n in report["notes"]), report["notes"]
