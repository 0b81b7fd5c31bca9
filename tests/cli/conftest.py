"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import pytest


def geocal(args, capsys):
    """Run the command line in this process: (exit code, stdout, stderr)."""
    from geocal_cli.main import run

    with pytest.raises(SystemExit) as exc:
        run([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


GRID = ["--pixel-size", "100", "--shape", "1024,1024", "--grid", "2", "--hole-diameter", "8",
        "--missing", "0.03", "--spurious", "4", "--illumination", "0.5", "--grid-angle", "0.4"]


@pytest.fixture(scope="session")
def measured(tmp_path_factory):
    """A simulated distorted grid, measured with every output."""
    from geocal_cli.main import run

    d = tmp_path_factory.mktemp("grid")

    def call(args):
        with pytest.raises(SystemExit) as exc:
            run([str(a) for a in args])
        assert exc.value.code == 0
    call(["-q", "simulate", d / "grid.edf", *GRID, "--radial", "3", "--random-field", "1",
          "--skew", "0.3", "--seed", "2"])
    call(["-q", "grid-distortion", d / "grid.edf", "--pitch", "2", "--pixel-size", "100",
          "-o", d / "det.h5", "--spline", d / "det.spline", "--corrected", d / "corr.edf",
          "--report", d / "grid.json", "--plot", d / "grid.png"])
    return d
