"""The plot helper process: figures drawn there are the same files, errors come back, and a
helper that is gone leaves the drawing to the command."""

from __future__ import annotations

import pytest

from geocal_cli.io import plots, render
from tests.cli.conftest import geocal
from tests.conftest import assert_valid_report

SERIES = {"items": ["a.tif", "b.tif", "c.tif"], "order": "file name", "jumps": [],
          "parameters": {"dist_mm": {"values": [100.0, 100.1, 100.05],
                                     "sigma": [0.01, 0.01, 0.01], "unit": "mm"}}}


def _png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_helper_draws_the_figure(tmp_path):
    with render.ahead(True):
        helpers = list(render._helpers)
        assert len(helpers) == render.HELPERS and all(h._proc.pid is not None for h in helpers)
        assert helpers[0].draw(plots.plot_series.__wrapped__, (tmp_path / "s.png", SERIES), {})
        plots.plot_series(tmp_path / "t.png", SERIES)  # through the decorator
        assert all(h._proc.is_alive() for h in helpers)
    assert render._helpers == [] and not any(h._proc.is_alive() for h in helpers)
    assert _png(tmp_path / "s.png") and _png(tmp_path / "t.png")


def test_helper_errors_reach_the_command(tmp_path):
    broken = {**SERIES, "parameters": {"dist_mm": {"values": [1.0]}}}  # no "sigma"
    with render.ahead(True):
        with pytest.raises(KeyError, match="sigma"):
            plots.plot_series(tmp_path / "s.png", broken)
        # The helper survives an error and draws the next figure.
        assert render._helpers[0].draw(plots.plot_series.__wrapped__, (tmp_path / "t.png", SERIES), {})
    assert not (tmp_path / "s.png").exists() and _png(tmp_path / "t.png")


def test_figure_drawn_here_when_the_helper_is_gone(tmp_path):
    with render.ahead(True):
        for helper in render._helpers:
            helper._proc.kill()
            helper._proc.join()
        plots.plot_series(tmp_path / "s.png", SERIES)
    assert _png(tmp_path / "s.png")


def test_no_helper_without_a_plot(tmp_path):
    with render.ahead(False):
        assert render._helpers == []
        plots.plot_series(tmp_path / "s.png", SERIES)
    assert _png(tmp_path / "s.png")


def test_calib_ring_plot_through_the_helper(tmp_path, capsys, lab6_pilatus):
    """The command path: `--plot` starts the helper, and its PNG is written before the report
    hashes it."""
    sim, _ = lab6_pilatus
    started = []
    real = render.Helper.__init__

    def spy(self, *args):
        real(self, *args)
        started.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render.Helper, "__init__", spy)
        code, _, err = geocal(["calib-ring", sim.image, "-c", "LaB6", "--energy", "17", "-d",
                               "Pilatus1M", "-o", tmp_path / "c.poni", "--report",
                               tmp_path / "c.json", "--plot", tmp_path / "c.png", "-q"], capsys)
    assert code == 0, err
    assert len(started) == render.HELPERS and not any(h._proc.is_alive() for h in started)
    report = assert_valid_report(tmp_path / "c.json")
    assert str(tmp_path / "c.png") in [o["path"] for o in report["outputs"]]


def test_the_helper_ends_silently(tmp_path, lab6_pilatus):
    """The installed `geocal` command in its own process: spawning the helper runs the
    console script's module there too, and ending the helper printed "interrupted" on every
    run with --plot."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "geocal"
    if not script.is_file():
        script = shutil.which("geocal")
    if script is None:
        pytest.skip("the geocal console script is not installed")
    sim, _ = lab6_pilatus
    proc = subprocess.run([str(script), "calib-ring", str(sim.image),
                           "-c", "LaB6", "--energy", "17", "-d", "Pilatus1M", "-o",
                           str(tmp_path / "c.poni"), "--report", str(tmp_path / "c.json"),
                           "--plot", str(tmp_path / "c.png")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _png(tmp_path / "c.png")
    assert "interrupted" not in proc.stderr


@pytest.mark.parametrize("error", [OSError, RuntimeError, AssertionError])
def test_figure_drawn_here_when_the_helper_cannot_start(tmp_path, monkeypatch, error):
    """multiprocessing's errors for no resources, a bootstrapping parent and a daemonic
    parent (a pool worker) leave the drawing to the command."""
    def refuse(*args):
        raise error("no helper here")

    monkeypatch.setattr(render, "Helper", refuse)
    with render.ahead(True):
        assert render._helpers == []
        plots.plot_series(tmp_path / "s.png", SERIES)
    assert _png(tmp_path / "s.png")


def test_submitted_jobs_run_in_two_helpers_at_once():
    import os

    with render.ahead(True):
        first, second = render.submit(os.getpid), render.submit(os.getpid)
        here = render.submit(os.getpid)  # both helpers busy: run here
        pids = {first.result(), second.result()}
        assert pids == {h._proc.pid for h in render._helpers}
        assert here.result() == os.getpid()
        with pytest.raises(ValueError, match="invalid literal"):
            render.gather([render.submit(int, "x"), render.submit(os.getpid)])
        # Both answers were read: the helpers are free and answer the next jobs rightly.
        assert not any(h.busy for h in render._helpers)
        assert set(render.gather([render.submit(os.getpid), render.submit(os.getpid)])) == pids


def test_a_submitted_job_whose_helper_died_runs_here():
    import os

    with render.ahead(True):
        for helper in render._helpers:
            helper._proc.kill()
            helper._proc.join()
        assert render.submit(os.getpid).result() == os.getpid()


def test_the_figure_in_parts_is_the_figure_drawn_here(tmp_path, capsys, lab6_pilatus):
    """calib-ring's figure, drawn in two parts by the helpers, is pixel for pixel the one
    drawn in-process, and has the integration check below the image."""
    import numpy as np
    from PIL import Image

    sim, _ = lab6_pilatus
    pixels = {}
    for helpers in (render.HELPERS, 0):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(render, "HELPERS", helpers)
            png = tmp_path / f"c{helpers}.png"
            code, _, err = geocal(["calib-ring", sim.image, "-c", "LaB6", "--energy", "17", "-d",
                                   "Pilatus1M", "-o", tmp_path / f"c{helpers}.poni", "--report",
                                   tmp_path / f"c{helpers}.json", "--plot", png, "-q"], capsys)
        assert code == 0, err
        pixels[helpers] = np.asarray(Image.open(png))
    assert np.array_equal(pixels[render.HELPERS], pixels[0])
    width = plots.CALIBRATION_SIZE[0] * plots.DPI
    height = (plots.CALIBRATION_SIZE[1] + plots.INTEGRATION_HEIGHT) * plots.DPI
    assert pixels[0].shape == (round(height), round(width), 4)
