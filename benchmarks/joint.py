"""Benchmark: geocal's joint calibration against pyFAI's GoniometerRefinement, on the same
simulated images in one run.

Two series with a known truth:
- **arm**: LaB6 on a Pilatus 300K-W strip on a 2θ arm, 12 frames 5–65°, one to four partial
  rings each (model `arm-2theta`);
- **stage**: LaB6 on a Pilatus 1M moved along a 1.5°-tilted beam, five frames 150–600 mm,
  the wavelength given 0.3 % off (model `translation`, λ free in geocal; pyFAI's
  GoniometerRefinement keeps the wavelength it is given).

pyFAI starts from the truth perturbed like a user's guess (1 mm, 0.5 mrad, 10 px) and runs
its scripted workflow (`SingleGeometry.extract_cp` on every frame, then `refine2`). geocal
runs twice: its core fit from the same perturbed start (`joint_rounds`), and blind, the whole
`geocal batch calib-ring … --joint` command in a fresh process (calib-ring on every frame, then
the joint fit from the frames that calibrated alone or from the ring arcs). Accuracy: each
frame's rings as the fit puts them against the truth, rms over the frame's pixels (px), the
worst frame reported; and the wavelength's relative error.

    python benchmarks/joint.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _detector(name):
    import pyFAI.detectors

    return pyFAI.detectors.detector_factory(name)


def _series(kind: str):
    """(detector, model, truth vector, positions, given λ, calibrant name)."""
    from geocal_cli.core.joint.model import preset

    if kind == "arm":
        model = preset("arm-2theta")
        truth = model.vector({"dist": 0.5, "poni1": 0.016, "poni2": 0.11, "rot1": 0.004,
                              "rot2_offset": -0.003, "wavelength": 0.8856e-10})
        return _detector("Pilatus300kw"), model, truth, np.linspace(5, 65, 12), 0.8856e-10
    model = preset("translation")
    lam = 0.7293e-10
    truth = model.vector({"direct_dist": 0.15, "center1": 0.086, "center2": 0.0826,
                          "rot1": -0.02, "rot2": 0.017, "wavelength": lam})
    return _detector("Pilatus1M"), model, truth, np.array([0.0, 100, 200, 300, 450]), lam * 1.003


def _images(folder: Path, detector, model, truth, positions):
    from geocal_cli.core.geometry.frame import make_geometry
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.core.simulate.patterns import PatternSpec, render_ring_image, ring_strengths
    from geocal_cli.io.images import write_image
    from pyFAI.calibrant import get_calibrant

    dsp = np.array(get_calibrant("LaB6").dspacing) * 1e-10
    paths = []
    for i, pose in enumerate(model.poses(truth, positions)):
        tth = ring_tth(dsp, pose[6])
        tth = tth[np.isfinite(tth)]
        geometry = make_geometry(detector, *pose[:6], wavelength=pose[6])
        data = render_ring_image(geometry, detector.shape, tth, ring_strengths(tth, None, i),
                                 PatternSpec(peak_counts=3000, width_px=1.5, background=50, seed=i))
        paths.append(folder / f"frame{i:02d}.edf")
        write_image(paths[-1], data)
    (folder / "positions.csv").write_text(
        "".join(f"{p.name},{x:g}\n" for p, x in zip(paths, positions)))
    return paths, dsp


def _error_px(detector, poses_fit, poses_true, shape) -> float:
    """Worst frame's rms (over a pixel grid) of the fitted rings' distance from the truth's."""
    from geocal_cli.core.geometry.frame import frame_of, make_geometry, ring_shift_px

    d1, d2 = (g.ravel().astype(float) for g in np.meshgrid(np.arange(0, shape[0], 4),
                                                            np.arange(0, shape[1], 4), indexing="ij"))
    worst = 0.0
    for fit, true in zip(poses_fit, poses_true):
        moved = ring_shift_px(frame_of(make_geometry(detector, *fit[:6])),
                              frame_of(make_geometry(detector, *true[:6])), d1, d2)
        worst = max(worst, float(np.sqrt(np.nanmean(moved ** 2))))
    return worst


def _perturbed(model, truth, detector, given_lam):
    rng = np.random.default_rng(7)
    start = truth.copy()
    for i, name in enumerate(model.param_names):
        if name in ("dist", "direct_dist"):
            start[i] += 1e-3 * rng.choice([-1, 1])
        elif name.startswith(("poni", "center")) and not name.endswith("drift"):
            start[i] += 10 * detector.pixel1 * rng.choice([-1, 1])
        elif name in ("rot1", "rot2", "rot2_offset"):
            start[i] += 5e-4 * rng.choice([-1, 1])
    start[model.param_names.index("wavelength")] = given_lam
    return start


def _pyfai(paths, positions, detector, model, start, given_lam):
    import fabio
    from pyFAI.calibrant import get_calibrant
    from pyFAI.goniometer import GoniometerRefinement

    names = [n for n in model.param_names if n != "wavelength"]
    trans = model.transformation()
    # pyFAI's goniometer keeps the wavelength it is given: drop it from the parameters.
    from pyFAI.goniometer import GeometryTransformation

    exprs = {f"{k}_expr": model.expressions[k].replace("wavelength", repr(given_lam))
             for k in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")}
    trans = GeometryTransformation(param_names=names, pos_names=["pos"],
                                   constants=dict(model.constants), **exprs)
    param = [start[model.param_names.index(n)] for n in names]
    bounds = [(None, None)] * len(names)
    free = set(model.free) - {"wavelength"}
    for i, n in enumerate(names):
        if n not in free:
            bounds[i] = (param[i], param[i])
    t0 = time.perf_counter()
    gonio = GoniometerRefinement(param, pos_function=lambda p: p, trans_function=trans,
                                 detector=detector, wavelength=given_lam, bounds=bounds)
    calibrant = get_calibrant("LaB6")
    calibrant.wavelength = given_lam
    for path, pos in zip(paths, positions):
        sg = gonio.new_geometry(path.stem, image=fabio.open(str(path)).data, metadata=float(pos),
                                calibrant=calibrant)
        sg.extract_cp(max_rings=12, pts_per_deg=1)
    gonio.refine2()
    seconds = time.perf_counter() - t0
    theta = np.array(start, float)
    for n, v in zip(names, gonio.param):
        theta[model.param_names.index(n)] = v
    return seconds, theta


def _geocal_core(paths, positions, detector, model, start, dsp):
    from geocal_cli.core.joint.fit import joint_rounds
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.io.images import read_image

    t0 = time.perf_counter()
    images = []
    for p in paths:
        data = read_image(p).data
        images.append(prepare_image(data, data >= 0))
    result, _ = joint_rounds(images, detector, [dsp] * len(paths), model, positions, start,
                             model.free)
    return time.perf_counter() - t0, model.vector(result.values)


def _geocal_blind(folder, paths, detector_name, model_name, given_lam):
    out = folder / "geocal"
    t0 = time.perf_counter()
    proc = subprocess.run(["geocal", "-q", "batch", "calib-ring", *map(str, paths), "-c", "LaB6",
                           "--wavelength", f"{given_lam * 1e10:.6f}", "-d", detector_name,
                           "--out-dir", str(out), "--joint", model_name,
                           "--positions", str(folder / "positions.csv"), "--jobs", "2"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return seconds, None, proc.stderr.strip()[-300:]
    report = json.loads((out / "joint.json").read_text())
    return seconds, report, None


def main() -> int:
    results = {}
    for kind, det_name, model_name in (("arm", "Pilatus300kw", "arm-2theta"),
                                       ("stage", "Pilatus1M", "translation")):
        detector, model, truth, positions, given_lam = _series(kind)
        folder = Path(tempfile.mkdtemp(prefix=f"geocal-joint-{kind}-"))
        paths, dsp = _images(folder, detector, model, truth, positions)
        true_poses = model.poses(truth, positions)
        start = _perturbed(model, truth, detector, given_lam)
        lam_true = truth[model.param_names.index("wavelength")]
        row = {"frames": len(paths)}
        t, theta = _pyfai(paths, positions, detector, model, start, given_lam)
        row["pyfai"] = {"seconds": t, "ring_error_px": _error_px(
            detector, model.poses(theta, positions), true_poses, detector.shape),
            "wavelength_rel_error": given_lam / lam_true - 1}
        t, theta = _geocal_core(paths, positions, detector, model, start, dsp)
        row["geocal_from_guess"] = {"seconds": t, "ring_error_px": _error_px(
            detector, model.poses(theta, positions), true_poses, detector.shape),
            "wavelength_rel_error": theta[model.param_names.index("wavelength")] / lam_true - 1}
        t, report, error = _geocal_blind(folder, paths, det_name, model_name, given_lam)
        if report is None:
            row["geocal_blind"] = {"seconds": t, "error": error}
        else:
            poses = np.array([[i["pose"][k] for k in ("dist", "poni1", "poni2", "rot1", "rot2",
                                                      "rot3", "wavelength")]
                              for i in report["images"]])
            row["geocal_blind"] = {"seconds": t, "ring_error_px": _error_px(
                detector, poses, true_poses, detector.shape),
                "wavelength_rel_error": float(poses[0, 6] / lam_true - 1),
                "start": report["start"]["from"]}
        row["time_ratio_geocal_from_guess_to_pyfai"] = (row["geocal_from_guess"]["seconds"]
                                                        / row["pyfai"]["seconds"])
        row["time_ratio_geocal_blind_to_pyfai"] = row["geocal_blind"]["seconds"] / row["pyfai"]["seconds"]
        results[kind] = row
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
