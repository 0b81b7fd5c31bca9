"""Benchmark: geocal's ring recentring vs the threshold-centroid method and pyFAI, same images.

Synthetic 2048 × 2048 CeO2 images (100 µm pixels, 300 mm, 20 keV, Poisson noise) with a
known beam centre: the full pattern, a beamstop with its arm, and rings cut by the detector
edge (ring 1 keeps 60 % of its azimuths). The reference geometry is the truth with its beam
centre moved by (+7.3, −4.1) px. In one process, for each image:

- geocal: `prepare_image` + `recenter_on_rings` on the array in memory;
- threshold: Otsu threshold of the image, largest connected component, centroid of its
  pixels (the common script method);
- pyFAI: `SingleGeometry.extract_cp` from the reference + `refine2` with everything but
  poni1 and poni2 fixed (pyFAI's refinement of the centre alone).

It prints the centre error against the truth and the median wall time of each.

    python benchmarks/recenter.py [--repeat N]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Measure what the geocal command runs: its BLAS setting applies before numpy loads.
import geocal_cli.main  # noqa: E402, F401

import numpy as np  # noqa: E402

SHAPE = (2048, 2048)
CASES = {
    "full": dict(center=(1030.3, 1010.7)),
    "beamstop": dict(center=(1012.2, 1033.9), beamstop_radius_px=60, beamstop_arm_deg=-60),
    "edge-cut": dict(center=(187.0, 1020.5)),
}


def make_case(center, **spec):
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    from geocal_cli.core.geometry.frame import frame_of, make_geometry, poni_for_beam_center
    from geocal_cli.core.simulate.patterns import PatternSpec, render_ring_image, ring_strengths
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant

    det = Detector(100e-6, 100e-6, max_shape=SHAPE)
    g = Geometry(detector=det, wavelength=0.62e-10)
    g.setFit2D(300.0, 0.0, 0.0, 0.0, 0.0, 100.0, 100.0)
    p1, p2 = poni_for_beam_center(g, center[1] - 0.5, center[0] - 0.5)
    truth = make_geometry(det, g.dist, p1, p2, wavelength=g.wavelength)
    dsp = load_calibrant("CeO2").d_spacing
    tth = ring_tth(dsp, g.wavelength)
    tth = tth[np.isfinite(tth)][:15]
    data = render_ring_image(truth, SHAPE, tth, ring_strengths(tth, None, 1),
                             PatternSpec(peak_counts=300, background=20, seed=1, **spec))
    b = np.array(frame_of(truth).beam_center())
    q1, q2 = poni_for_beam_center(truth, b[0] - 4.1, b[1] + 7.3)
    reference = make_geometry(det, g.dist, q1, q2, wavelength=g.wavelength)
    return data, reference, b, tth, dsp


def run_geocal(data, reference, tth):
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.core.geometry.frame import frame_of
    from geocal_cli.core.center.ringcenter import recenter_on_rings

    valid = data >= 0
    frame = frame_of(reference)
    rec = recenter_on_rings(prepare_image(data, valid), valid, frame, tth)
    return np.array(frame.beam_center()) + rec.fit.shift


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold (IEEE Trans. SMC 9 (1979) 62) on a 256-bin histogram."""
    hist, edges = np.histogram(values, 256)
    mid = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mid) / np.maximum(w0, 1)
    m1 = (np.sum(hist * mid) - np.cumsum(hist * mid)) / np.maximum(w1, 1)
    return float(mid[np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def run_threshold(data):
    from scipy import ndimage

    img = data.astype(np.float32)
    labels, n = ndimage.label(img > otsu(img[data >= 0]))
    if n == 0:
        return np.array([np.nan, np.nan])
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    d1, d2 = np.nonzero(labels == largest)
    return np.array([d1.mean(), d2.mean()])


def run_pyfai(data, reference, dsp):
    from pyFAI.calibrant import Calibrant
    from pyFAI.goniometer import SingleGeometry

    from geocal_cli.core.geometry.frame import frame_of

    det = copy.deepcopy(reference.detector)
    det.mask = (data < 0).astype(np.int8)
    cal = Calibrant(dspacing=list(dsp * 1e10), wavelength=reference.wavelength)
    sg = SingleGeometry("bench", np.clip(data, 0, None).astype(np.float32), calibrant=cal,
                        detector=det, geometry=copy.deepcopy(reference))
    sg.extract_cp(max_rings=15, pts_per_deg=1)
    sg.geometry_refinement.refine2(fix=["dist", "rot1", "rot2", "rot3", "wavelength"])
    gr = sg.geometry_refinement
    return np.array(frame_of(gr).beam_center())


def main(argv=None) -> int:
    import logging

    logging.getLogger("pyFAI").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per method and case")
    args = parser.parse_args(argv)
    print(f"{'case':10s} {'method':10s} {'error px':>10s} {'median ms':>10s}")
    rows = {}
    for name, case in CASES.items():
        data, reference, truth, tth, dsp = make_case(**case)
        methods = {"geocal": lambda: run_geocal(data, reference, tth),
                   "threshold": lambda: run_threshold(data),
                   "pyFAI": lambda: run_pyfai(data, reference, dsp)}
        for method, fn in methods.items():
            times = []
            for _ in range(args.repeat if method != "pyFAI" else 1):
                t = time.perf_counter()
                found = fn()
                times.append(time.perf_counter() - t)
            err = float(np.hypot(*(found - truth)))
            ms = 1e3 * float(np.median(times))
            rows[name, method] = (err, ms)
            print(f"{name:10s} {method:10s} {err:10.4f} {ms:10.1f}")
    print("\nratios (geocal / other): error, time")
    for name in CASES:
        g_err, g_ms = rows[name, "geocal"]
        for other in ("threshold", "pyFAI"):
            o_err, o_ms = rows[name, other]
            print(f"{name:10s} vs {other:10s} error {g_err / o_err:8.4f}  time {g_ms / o_ms:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
