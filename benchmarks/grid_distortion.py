"""Benchmark: detector distortion from a 2048² synthetic hole grid, geocal vs the tutorial.

The grid (5 mm pitch on 50 µm pixels: 100 px; 20 px holes, 3 % missing, 6 stray spots,
illumination falling by 60 %, Poisson noise) is seen through a known field: pincushion 4 px
at the corners + a smooth random field of 1.5 px rms + a 0.5° shear. In one run:

- geocal: the whole `geocal grid-distortion grid.edf --pitch 5 --pixel-size 50 -o det.h5`
  command, timed as a user runs it (a fresh process, reading the image, writing the pyFAI
  detector file and the report, validating on the corrected image);
- tutorial: pyFAI's "CCD calibration" tutorial pipeline in-process: a disc convolution,
  pyFAI's InverseWatershed peak picking with merge_singleton, hand-tuned size and height
  thresholds, pyFAI's Bilinear sub-pixel refinement, the lattice from the peak nearest the
  centre and its neighbours, global rounding of every peak in that lattice, an affine ideal
  grid, scipy's cubic griddata at every pixel (NaN outside the hull) and the pyFAI detector
  file (its last step; the image already in memory).

Accuracy is the rms and max of |field − truth| at every 4th pixel inside both fields'
valid regions, after removing the best shift/rotation/per-axis-scale difference (a grid
cannot tell those from its own placement and pitch); a shear of the pixel axes is detector
distortion and stays in. The rms with any affine difference removed is printed beside it.
Two grids: a hard one and a clean one (every hole, no stray spot, even light). It prints
time and accuracy of each and the ratios.

    python benchmarks/grid_distortion.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from geocal_cli.core.geometry.displacement import gauge_free_difference  # noqa: E402
from geocal_cli.core.simulate.grid import DistortionSpec, GridSpec, render_grid_image, synthetic_field  # noqa: E402
from geocal_cli.io.distortion import make_distorted_detector, read_distortion, write_detector  # noqa: E402
from geocal_cli.io.images import write_image  # noqa: E402

SHAPE = (2048, 2048)
PITCH_PX = 100.0


CASES = {
    "hard (stray spots, 3 % missing, uneven light)":
        dict(illumination=0.6, missing=0.03, spurious=6),
    "clean (every hole, no stray spot, even light)":
        dict(illumination=0.0, missing=0.0, spurious=0),
}


def simulate(folder: Path, case: dict):
    truth = synthetic_field(SHAPE, DistortionSpec(radial_px=4.0, random_px=1.5, skew_deg=0.5, seed=11))
    grid = GridSpec(pitch_px=(PITCH_PX, PITCH_PX), angle_deg=0.7, diameter_px=20.0, seed=12, **case)
    img = render_grid_image(SHAPE, grid, truth)
    write_image(folder / "grid.edf", img)
    write_detector(folder / "truth.h5", make_distorted_detector(truth, (50e-6, 50e-6)))
    return img, truth


def run_geocal(folder: Path) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "geocal_cli", "-q", "grid-distortion", "grid.edf",
                    "--pitch", "5", "--pixel-size", "50", "-o", "det.h5"], cwd=folder, check=True)
    elapsed = time.perf_counter() - t0
    field, _, mask = read_distortion(folder / "det.h5")
    cy, cx = field.centres()
    return elapsed, cy, cx, ~mask


def run_tutorial(img: np.ndarray, folder: Path) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    from scipy import signal
    from scipy.interpolate import griddata

    from pyFAI.ext.bilinear import Bilinear
    from pyFAI.ext.watershed import InverseWatershed

    t0 = time.perf_counter()
    data = img.astype(np.float32)
    # Disc kernel of the hole size, as in the tutorial.
    size = 21
    c = (size - 1) // 2
    y, x = np.ogrid[-c:c + 1, -c:c + 1]
    kernel = ((x * x + y * y) <= (c + 0.5) ** 2).astype(float)
    kernel /= kernel.sum()
    mini = int((kernel > 0).sum())
    cnv = signal.convolve2d(data, kernel, mode="same").astype(np.float32)
    iw = InverseWatershed(cnv)
    iw.init()
    iw.merge_singleton()
    regions = [r for r in set(iw.regions.values()) if r.size > mini]
    heights = np.array([r.maxi for r in regions])
    # The tutorial reads the threshold off a histogram of peak heights by eye.
    thres = 0.5 * np.median(heights[heights > np.percentile(heights, 50)])
    peaks = [(r.index // data.shape[1], r.index % data.shape[1]) for r in regions if r.maxi > thres]
    bl = Bilinear(cnv)
    ref = np.array([bl.local_maxi(p) for p in peaks], float) + 0.5     # corner coordinates
    # Lattice from the peak nearest the centre and its nearest neighbours, then global rounding.
    centre = np.array(SHAPE) / 2
    p0 = ref[np.argmin(np.hypot(*(ref - centre).T))]
    d = ref - p0
    near = d[np.argsort(np.hypot(*d.T))[1:5]]
    a = near[np.argmax(np.abs(near[:, 1]))]
    a = a if a[1] > 0 else -a
    b = near[np.argmax(np.abs(near[:, 0]))]
    b = b if b[0] > 0 else -b
    ij = np.round(np.linalg.solve(np.stack([a, b], 1), d.T).T)
    A = np.column_stack([ij, np.ones(len(ij))])
    coef = np.linalg.lstsq(A, ref, rcond=None)[0]
    disp = A @ coef - ref
    yy, xx = np.meshgrid(np.arange(SHAPE[0]) + 0.5, np.arange(SHAPE[1]) + 0.5, indexing="ij")
    cy = griddata(ref, disp[:, 0], (yy, xx), method="cubic")
    cx = griddata(ref, disp[:, 1], (yy, xx), method="cubic")
    # The tutorial's last step: a pyFAI detector file with the field at the pixel corners.
    from pyFAI.detectors import Detector

    det = Detector(pixel1=50e-6, pixel2=50e-6, max_shape=SHAPE)
    pad = (lambda a: np.pad(np.nan_to_num(a), ((0, 1), (0, 1)), mode="edge"))
    det.set_dx(pad(cx))
    det.set_dy(pad(cy))
    det.save(str(folder / "tutorial.h5"))
    elapsed = time.perf_counter() - t0
    return elapsed, cy, cx, np.isfinite(cy) & np.isfinite(cx)


def accuracy(cy, cx, truth, valid) -> tuple[float, float, float]:
    """Rms and max |field − truth| with the gauge difference removed, and the rms with any
    affine difference removed (what is left if a shear counted as grid placement too)."""
    ty, tx = truth.centres()
    e = gauge_free_difference(cy - ty, cx - tx, valid)
    sel = np.zeros(valid.shape, bool)
    sel[::4, ::4] = valid[::4, ::4]
    y, x = (i + 0.5 for i in np.nonzero(sel))
    one, zero = np.ones_like(y), np.zeros_like(y)
    affine = np.stack([np.concatenate(c) for c in ((one, zero), (zero, one), (y, zero), (x, zero),
                                                   (zero, y), (zero, x))], 1)
    r = np.concatenate([(cy - ty)[sel], (cx - tx)[sel]])
    r = r - affine @ np.linalg.lstsq(affine, r, rcond=None)[0]
    return (float(np.sqrt(np.mean(e**2))), float(e.max()),
            float(np.sqrt(2 * np.mean(r**2))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="folder for the files (default: a temporary one)")
    args = ap.parse_args()
    print("field: pincushion 4 px + random 1.5 px rms + shear 0.5°, 2048², 100 px pitch")
    for name, case in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = (args.keep / name.split()[0]) if args.keep else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            img, truth = simulate(folder, case)
            t_geo, gy, gx, g_valid = run_geocal(folder)
            t_tut, ty, tx, t_valid = run_tutorial(img, folder)
            both = g_valid & t_valid
            geo = accuracy(gy, gx, truth, both)
            tut = accuracy(ty, tx, truth, both)
            print(f"\n{name}: max |d| {truth.norm().max():.2f} px, compared on {both.mean():.1%} "
                  "of the pixels (inside both fields)")
            for label, t, a in (("geocal (whole command)", t_geo, geo), ("tutorial pipeline", t_tut, tut)):
                print(f"  {label:23s} {t:6.2f} s  rms {a[0]:.4f} px  max {a[1]:.4f} px  "
                      f"(rms {a[2]:.4f} px with any affine part ignored)")
            print(f"  geocal is {t_tut / t_geo:.1f}x faster and {tut[0] / geo[0]:.1f}x (rms), "
                  f"{tut[1] / geo[1]:.1f}x (max) more accurate")


if __name__ == "__main__":
    main()
