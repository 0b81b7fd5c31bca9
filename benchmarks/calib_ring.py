"""Benchmark: geocal blind calibration vs pyFAI's scripted calibration, on the same images.

For every case (the real images of ../shared/data when present, and the synthetic matrix of
synthetic_matrix.yaml) this runs, in one process:

- geocal: `geocal_cli.core.rings.calibrate.calibrate`, blind (no guess);
- pyFAI: `pyFAI.goniometer.SingleGeometry.extract_cp` + `GeometryRefinement.refine2`
  (rot3 and wavelength fixed), started from a user-like guess: the reference geometry with
  the distance +2 %, the beam centre moved by (+3, −2) px and rot1 off by 0.5°;

and prints the wall time of each, their ratio, the ring-position error of each against the
truth (synthetic) or the reference program's geometry (real), and geocal's peak memory
(tracemalloc, numpy included) relative to the image as float64.

    python benchmarks/calib_ring.py              # everything
    python benchmarks/calib_ring.py --real       # the real images only
    python benchmarks/calib_ring.py CASE [CASE]  # some synthetic cases
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Measure what the geocal command runs: its BLAS setting applies before numpy loads.
import geocal_cli.main  # noqa: E402, F401

import numpy as np  # noqa: E402
import yaml  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def real_cases():
    """(name, image, valid, detector, wavelength, d_spacing, reference geometry)."""
    import pyFAI.detectors

    from geocal_cli.core.geometry.frame import make_geometry
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.images import read_image, valid_pixels
    from geocal_cli.io.poni import read_poni

    x = DATA / "xray"
    # The detector: a pyFAI name, or the pixel size (m) of a generic one.
    specs = [
        ("real_ceo2_pilatus1m_dioptas", x / "ceo2_pilatus1m_dioptas" / "CeO2_Pilatus1M.tif",
         "Pilatus1M", "CeO2", 0.4066e-10, x / "ceo2_pilatus1m_dioptas" / "CeO2_Pilatus1M.poni", 2),
        ("real_agbh_pilatus1m_bm26", x / "agbh_pilatus1m_bm26" / "Pilatus1M.edf", "Pilatus1M",
         "AgBh", 1.0332e-10, x / "agbh_pilatus1m_bm26" / "Pilatus1M_pyFAI_benchmark.poni", 3),
        ("real_ceo2_steel_mar345_gsas2", x / "ceo2_steel_mar345_gsas2" / "nx09_strain_001.mar2300",
         150e-6, "CeO2", 0.12398e-10,
         x / "ceo2_steel_mar345_gsas2" / "converted_from_gsas2_for_fabio_array.poni", 3),
        ("real_ceo2_pilatus2mcdte_dls", x / "ceo2_pilatus2mcdte_dls" / "103853_00001.cbf",
         "Pilatus2MCdTe", "CeO2", 0.12423e-10,
         x / "ceo2_pilatus2mcdte_dls" / "103853_for_fabio_array.poni", 3),
        # HEXRD's radial distortion of the panel is not in the PONI (data README).
        ("real_ceo2_ge41rt_hexrd", x / "ceo2_ge41rt_aps_hexrd" / "CeO2_GE41RT_80p725keV.tif",
         200e-6, "CeO2", 0.153588e-10, x / "ceo2_ge41rt_aps_hexrd" / "converted_from_hexrd.poni",
         3),
    ]
    for name, image, det_spec, cal, lam, ref_path, orientation in specs:
        if not image.exists():
            continue
        data = read_image(image).data
        named = isinstance(det_spec, str)
        if named:
            det = pyFAI.detectors.detector_factory(det_spec)
        else:
            det = pyFAI.detectors.Detector(det_spec, det_spec, max_shape=data.shape)
        valid = valid_pixels(data, det.mask.astype(bool) if det.mask is not None else None)
        ref = read_poni(ref_path)
        # Dioptas' PONI is for the image flipped up-down: orientation 2 on fabio's array.
        ref_det = pyFAI.detectors.detector_factory(det_spec, {"orientation": orientation}) \
            if named else det
        ref = make_geometry(ref_det, ref.dist, ref.poni1, ref.poni2, ref.rot1, ref.rot2, ref.rot3, lam)
        yield name, data, valid, det, lam, load_calibrant(cal).d_spacing, ref


def synthetic_cases(names):
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.images import valid_pixels
    from geocal_cli.pipeline import simulate

    cases = yaml.safe_load((ROOT / "benchmarks" / "synthetic_matrix.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.items():
            if names and name not in names:
                continue
            params = {k: v for k, v in case.items() if k != "ci"}
            cfg = SimulateConfig(output=Path(tmp) / f"{name}.npy", **params)
            sim = simulate.run(cfg)
            g = sim.geometry
            yield (name, sim.data, valid_pixels(sim.data), g.detector, g.wavelength,
                   load_calibrant(cfg.calibrant, cfg.scattering).d_spacing, g)


def user_guess(ref):
    """The reference moved like a user's starting guess: dist +2 %, centre (+3, −2) px, rot1 +0.5°."""
    from geocal_cli.core.geometry.frame import frame_of, make_geometry, poni_for_beam_center

    g = make_geometry(ref.detector, ref.dist * 1.02, 0, 0, ref.rot1 + np.radians(0.5), ref.rot2,
                      ref.rot3, ref.wavelength)
    b1, b2 = frame_of(ref).beam_center()
    if not np.isfinite(b1):
        return make_geometry(ref.detector, ref.dist * 1.02, ref.poni1, ref.poni2,
                             ref.rot1 + np.radians(0.5), ref.rot2, ref.rot3, ref.wavelength)
    p1, p2 = poni_for_beam_center(g, b1 + 3, b2 - 2)
    return make_geometry(ref.detector, g.dist, p1, p2, g.rot1, g.rot2, g.rot3, ref.wavelength)


def run_geocal(data, valid, det, lam, dsp):
    """Timed run, then a second run under tracemalloc for the peak memory (it slows numpy)."""
    from geocal_cli.core.rings.calibrate import calibrate

    t = time.perf_counter()
    try:
        geometry, note = calibrate(data, valid, det, lam, dsp).geometry, ""
    except Exception as exc:  # a failed case is a result of the benchmark
        geometry, note = None, f"{type(exc).__name__}: {exc}"[:70]
    elapsed = time.perf_counter() - t
    tracemalloc.start()
    try:
        calibrate(data, valid, det, lam, dsp)
    except Exception:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return geometry, elapsed, peak, note


def run_pyfai(data, valid, det, lam, dsp, guess):
    from pyFAI.calibrant import Calibrant
    from pyFAI.goniometer import SingleGeometry

    import copy

    cal = Calibrant(dspacing=list(dsp * 1e10), wavelength=lam)
    # The guess's own detector (orientation included), masked like geocal's input.
    det = copy.deepcopy(guess.detector)
    det.mask = (~valid).astype(np.int8)
    img = np.where(valid, data, 0).astype(np.float32)
    t = time.perf_counter()
    try:
        sg = SingleGeometry("bench", img, calibrant=cal, detector=det, geometry=guess)
        sg.extract_cp(max_rings=30, pts_per_deg=1)
        sg.geometry_refinement.refine2(fix=["rot3", "wavelength"])
        gr = sg.geometry_refinement
        from geocal_cli.core.geometry.frame import make_geometry

        geometry = make_geometry(det, gr.dist, gr.poni1, gr.poni2, gr.rot1, gr.rot2,
                                 gr.rot3, lam)
        note = ""
    except Exception as exc:
        geometry, note = None, f"{type(exc).__name__}: {exc}"[:70]
    return geometry, time.perf_counter() - t, note


def main(argv=None) -> int:
    import logging

    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.geometry.units import ring_tth

    logging.disable(logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", nargs="*", help="synthetic case names (default: all)")
    ap.add_argument("--real", action="store_true", help="only the real images")
    args = ap.parse_args(argv)
    rows = []
    sources = [real_cases()] if args.real else ([synthetic_cases(args.cases)] if args.cases
                                                 else [real_cases(), synthetic_cases([])])
    print(f"{'case':40s} {'geocal s':>9s} {'pyFAI s':>8s} {'ratio':>6s} {'geocal px':>10s} "
          f"{'pyFAI px':>9s} {'mem×':>5s}  notes")
    for source in sources:
        for name, data, valid, det, lam, dsp, ref in source:
            tth = ring_tth(dsp, lam)
            tth = tth[np.isfinite(tth)]
            g1, t1, peak, note1 = run_geocal(data, valid, det, lam, dsp)
            g2, t2, note2 = run_pyfai(data, valid, det, lam, dsp, user_guess(ref))
            e1 = ring_position_error(g1, ref, tth, data.shape) if g1 is not None else np.nan
            e2 = ring_position_error(g2, ref, tth, data.shape) if g2 is not None else np.nan
            mem = peak / (data.size * 8)
            notes = "; ".join(n for n in (note1 and f"geocal {note1}", note2 and f"pyFAI {note2}") if n)
            rows.append((name, t1, t2, e1, e2, mem))
            print(f"{name:40s} {t1:9.2f} {t2:8.2f} {t1 / t2:6.2f} {e1:10.4f} {e2:9.4f} {mem:5.1f}  {notes}",
                  flush=True)
    r = np.array([(t1 / t2) for _, t1, t2, *_ in rows])
    e1 = np.array([row[3] for row in rows])
    e2 = np.array([row[4] for row in rows])
    print(f"\nmedian time ratio geocal/pyFAI: {np.median(r):.2f}; geocal more accurate in "
          f"{np.sum(np.nan_to_num(e1, nan=1e9) < np.nan_to_num(e2, nan=1e9))} of {len(rows)} cases; "
          f"peak memory up to {max(row[5] for row in rows):.1f}× the image as float64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
