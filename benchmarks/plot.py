"""Benchmark: what `--plot` costs on the Pilatus 1M CeO2 image (../shared/data), and where.

In one run:

- the `geocal calib-ring` command with and without `--plot` (wall times of N pairs of runs,
  back to back): the extra time a user waits, as the median of the pairs' differences,
  matplotlib's import overlapping the calibration in the command's plot helpers
  (`geocal_cli.io.render`);
- in one process without the helpers, the parts of the plot: importing matplotlib,
  integrating the image for the integration check, building and drawing the figure's upper
  part (image and residuals) and its integration part (the command's two helpers draw these
  at once), writing the PNG; and, for scale,
  pyFAI's own `integrate1d` + `integrate2d` of the same image (what a user runs by hand for
  the same check).

    python benchmarks/plot.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMAGE = ROOT.parent / "shared" / "data" / "xray" / "ceo2_pilatus1m_dioptas" / "CeO2_Pilatus1M.tif"
ARGS = ["-c", "CeO2", "--wavelength", "0.4066", "-d", "Pilatus1M", "-q"]


def command_times(folder: Path, repeat: int) -> tuple[list, list]:
    """Wall times (s) of the command without and with --plot, run in pairs, back to back."""
    plain, plotted = [], []
    for i in range(repeat):
        for times, extra in ((plain, []), (plotted, ["--plot", str(folder / "c.png")])):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "geocal_cli", "calib-ring", str(IMAGE), *ARGS,
                            "-o", str(folder / f"c{i}.poni"), "--report", str(folder / f"c{i}.json"),
                            "--overwrite", *extra], check=True, cwd=folder)
            times.append(time.perf_counter() - t)
    return plain, plotted


def parts(folder: Path) -> dict:
    """Seconds of each part of the plot, in one process."""
    t = time.perf_counter()
    from geocal_cli.io import plots

    plots._import_pyplot()
    out = {"import matplotlib": time.perf_counter() - t}
    from geocal_cli.config.calib_ring import CalibRingConfig
    from geocal_cli.pipeline import calib_ring

    captured = {}

    def keep(*a):
        captured["args"] = a
    calib_ring.plot_calibration = keep
    cfg = CalibRingConfig(image=IMAGE, calibrant="CeO2", wavelength_a=0.4066, detector="Pilatus1M",
                          output=folder / "p.poni", report=folder / "p.json", plot=folder / "p.png",
                          overwrite=True)
    calib_ring.run(cfg)
    _, image, valid, fit, ring_tth, check, calibrant, title = captured["args"]
    t = time.perf_counter()
    view = check()
    out["integration check (geocal)"] = time.perf_counter() - t
    t = time.perf_counter()
    upper = plots._calibration_part(image, valid, fit, ring_tth, calibrant, title)
    out["upper part: build and draw (helper 1)"] = time.perf_counter() - t
    t = time.perf_counter()
    lower = plots._integration_part(view, calibrant, "the fitted geometry", plots.CALIBRATION_SIZE[0],
                                    plots.CALIBRATION_LEFT, plots.CALIBRATION_RIGHT)
    out["integration part: build and draw (helper 2)"] = time.perf_counter() - t
    t = time.perf_counter()
    plots._write_png(folder / "p.png", np.concatenate([upper, lower]))
    out["write the PNG"] = time.perf_counter() - t
    import pyFAI

    ai = pyFAI.load(str(folder / "p.poni"))
    t = time.perf_counter()
    ai.integrate1d(image, 1000, mask=~valid, unit="2th_deg")
    ai.integrate2d(image, 1000, 360, mask=~valid, unit="2th_deg")
    out["pyFAI integrate1d + integrate2d (for scale)"] = time.perf_counter() - t
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not IMAGE.is_file():
        print(f"real data not available: {IMAGE}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain, plotted = command_times(folder, args.repeat)
        # The machine's speed drifts over a run by more than the plot costs: each pair's
        # difference, then their median and quartiles.
        extra = np.subtract(plotted, plain)
        q1, q3 = np.percentile(extra, [25, 75])
        print(f"geocal calib-ring on {IMAGE.name}, median of {args.repeat}: "
              f"{statistics.median(plain):.2f} s, with --plot {statistics.median(plotted):.2f} s; "
              f"--plot costs {np.median(extra):.2f} s (median of the pairs' differences, "
              f"quartiles {q1:.2f}–{q3:.2f} s)")
        for name, seconds in parts(folder).items():
            print(f"  {name:45s} {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
