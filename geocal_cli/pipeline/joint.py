"""Joint calibration after a `batch calib-ring`: one motion model over all the images.

Each image calibrated alone (its batch item) seeds the model's shared parameters; images that
could not be calibrated alone (one arc, too few rings) still contribute their control points
at the geometry the model predicts for them. Writes, in the batch's folder: `joint/` with a
PONI per image at its position, `goniometer.json` (pyFAI's `Goniometer.sload` reads it),
`joint.json` (the report) and `joint.png` (residuals per image and ring).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.errors import CalibrationError, ConfigError
from geocal_cli.pipeline.results import misfit_summary

SCHEMA = "geocal.joint"
REPORT = "joint.json"
GONIOMETER = "goniometer.json"
PLOT = "joint.png"
#: Per-image rms (px) above which the model does not describe an image.
MAX_IMAGE_RMS_PX = 1.0
#: 1σ (px, rms over an image's valid pixels) of where the fitted geometry puts rings of any
#: 2θ, above which the images do not determine that image's geometry. Parameters the images
#: cannot separate one by one (a PONI shift against a rotation, from a few arcs) are only
#: reported while the rings stay pinned: the geometry integrates the same.
MAX_MAP_SIGMA_PX = 0.5


@dataclass(frozen=True)
class JointResult:
    """What a joint calibration wrote: the report and every file's path."""

    report: dict
    report_path: Path
    ponis: list
    goniometer: Path
    plot: Path


def motion_model(spec: str, wavelength: float | None):
    """A preset by name, or the model of a pyFAI goniometer file (its `param` the start).

    Raises
    ------
    ConfigError
        Neither a preset nor a readable goniometer file.
    """
    from geocal_cli.core.joint.model import PRESETS, from_goniometer, preset

    if spec in PRESETS:
        return preset(spec)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--joint {spec}: not one of {', '.join(PRESETS)} nor a pyFAI "
                          "goniometer file")
    from geocal_cli.files import parse_structured, read_text

    data = parse_structured(read_text(path, "goniometer file", error=ConfigError), path,
                            "goniometer file", json_only=True, error=ConfigError)
    try:
        return from_goniometer(data["trans_function"], data.get("param"),
                               data.get("wavelength") or wavelength)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a pyFAI goniometer file ({exc})") from None


def run(model_spec: str, positions: list, configs: list, seeds: list, ponis: list,
        out_dir: Path, free: tuple | None = None, say=lambda msg: None) -> JointResult:
    """Fit a motion model over the images of `configs` and write its outputs.

    Parameters
    ----------
    model_spec : str
        A preset name or a pyFAI goniometer file.
    positions : list of float
        One per image, in the model's position unit.
    configs : list of CalibRingConfig
        One per image (the batch's items).
    seeds : list of (Path or None)
        Each image's PONI from its calibration alone, None where that failed.
    ponis : list of Path
        Where each image's PONI from the joint model goes.
    out_dir : Path
    free : tuple of str, optional
        Parameters fitted (default: the model's).
    say : callable(str)

    Raises
    ------
    CalibrationError
        Neither the images calibrated alone nor the ring arcs start a fit, or the fit does not
        describe every image, does not pin its rings, or leaves a freed wavelength
        undetermined (exit 5).
    ConfigError
        Images of different detectors, or an unknown parameter name.
    """
    from geocal_cli.config.base import to_plain
    from geocal_cli.core.geometry.frame import geometry_from_values
    from geocal_cli.core.joint.fit import joint_rounds
    from geocal_cli.core.joint.model import PIXEL_SCALE, POSE_KEYS
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.io.outputs import Outputs, committing
    from geocal_cli.io.plots import plot_joint
    from geocal_cli.io.poni import read_poni, write_poni
    from geocal_cli.io.reports import report_header, write_report
    from geocal_cli.pipeline.calib_ring import read_inputs

    t0 = time.perf_counter()
    wavelength = configs[0].wavelength_m()
    model = motion_model(model_spec, wavelength)
    free = tuple(free) if free else model.free
    unknown = sorted(set(free) - set(model.param_names))
    if unknown:
        raise ConfigError(f"the {model.name} model has no parameter {', '.join(unknown)}; its "
                          f"parameters: {', '.join(model.param_names)}")
    report_path, gonio_path, plot_path = out_dir / REPORT, out_dir / GONIOMETER, out_dir / PLOT
    for p in ponis:
        p.parent.mkdir(parents=True, exist_ok=True)
    outputs = Outputs.planned([c.image for c in configs], False, report_path, gonio_path,
                              plot_path, *ponis)
    sources = [read_inputs(c) for c in configs]
    detector = sources[0].fit_detector
    for c, s in zip(configs, sources):
        if s.data.shape != sources[0].data.shape or \
                not np.allclose([s.fit_detector.pixel1, s.fit_detector.pixel2],
                                [detector.pixel1, detector.pixel2]):
            raise ConfigError(f"{c.image.name} is not from the detector of {configs[0].image.name}: "
                              "a joint calibration shares one detector")
    pos = np.asarray(positions, float)
    seeded = [i for i, s in enumerate(seeds) if s is not None]
    theta0 = model.vector({"wavelength": wavelength})
    # Images calibrated alone know neither λ apart from the distance nor the pixel size.
    seed_free = tuple(n for n in free if n not in ("wavelength", PIXEL_SCALE))
    prepared = [prepare_image(s.data, s.valid, c.doublet()) for s, c in zip(sources, configs)]
    dsp = [s.rings.d_spacing for s in sources]
    names = [c.image.name for c in configs]

    def attempt(start: dict) -> dict:
        result, cps = joint_rounds(prepared, detector, dsp, model, pos, start.pop("theta"), free,
                                   say=say)
        return {"start": start, "result": result, "cps": cps,
                **_judge(result, names, [s.valid for s in sources], detector, free)}

    tried = []
    if seeded:
        alone = np.array([_pose(read_poni(seeds[i]), wavelength) for i in seeded])
        say(f"joint {model.name}: {len(configs)} images, {len(seeded)} calibrated alone; "
            f"fitting {', '.join(free)}")
        try:
            tried.append(attempt({"from": "images calibrated alone", "images": len(seeded),
                                  "theta": model.seed(alone, pos[seeded], seed_free, theta0)}))
        except CalibrationError as exc:
            say(f"the images calibrated alone start no joint fit ({exc})")
        if tried and tried[-1]["misfit"]:
            say("the images calibrated alone do not agree on one model: searching the ring arcs")
    if not tried or tried[-1]["misfit"]:
        try:
            tried.append(attempt(_arc_start(sources, detector, model, pos, dsp, theta0,
                                            seed_free, say, bool(seeded))))
        except CalibrationError as exc:
            if not tried:
                raise
            say(f"the ring arcs start no better fit ({exc})")
    best = min(tried, key=lambda t: (len(t["problems"]), float(np.nanmean(t["result"].rms_px()))))
    result, cps, problems = best["result"], best["cps"], best["problems"]
    report = report_header(SCHEMA, {"model": model_spec, "free": list(free),
                                    "calib_ring": to_plain(configs[0])},
                           [c.image for c in configs])
    report.update(_results(model, result, configs, positions, seeds, ponis, cps, dsp,
                           [p.data.shape for p in prepared]))
    if PIXEL_SCALE in model.param_names:
        scale = result.values[PIXEL_SCALE]
        report["detector"] = {
            "pixel_scale": scale, "pixel_scale_sigma": result.sigma.get(PIXEL_SCALE),
            "pixel_um": [detector.pixel1 * 1e6 * scale, detector.pixel2 * 1e6 * scale],
            "note": "the PONIs and goniometer.json are for the detector file's nominal pixels "
                    "(distance and PONI divided by pixel_scale, every 2θ the same); the "
                    "physical distances are pixel_scale times theirs"}
    report["start"] = best["start"]
    for img, m in zip(report["images"], best["maps"]):
        img["ring_position_sigma_px"] = m if np.isfinite(m) else None
    if best["undetermined"] and not problems:
        say("not determined one by one (the rings' positions are): "
            + "; ".join(best["undetermined"]))
    report["undetermined"] = best["undetermined"]
    report["problems"] = problems
    with committing(outputs):
        for p, pose in zip(ponis, result.poses):
            write_poni(p, geometry_from_values(detector, dict(zip(POSE_KEYS, pose))))
        _write_goniometer(gonio_path, model, result, detector, float(result.poses[0][6]))
        plot_joint(plot_path, names, result, cps)
        report["timings_s"] = {"total": time.perf_counter() - t0}
        write_report(report_path, report)
    if problems:
        raise CalibrationError("joint calibration not trusted: " + "; ".join(problems)
                               + f" (the outputs are written for inspection: {report_path})")
    return JointResult(report, report_path, list(ponis), gonio_path, plot_path)


def _judge(result, names, valids, detector, free) -> dict:
    """What keeps a joint fit from being trusted (`problems`; `misfit` when it is the fit's
    place, not what the images can determine), each image's ring-position 1σ (`maps`, px)
    and the quantities not determined one by one (`undetermined`)."""
    rms = result.rms_px()
    problems = []
    bad = [n for n, r in zip(names, rms) if not r <= MAX_IMAGE_RMS_PX]
    if bad:
        problems.append(f"the model does not describe {', '.join(bad)} (rms beyond "
                        f"{MAX_IMAGE_RMS_PX} px or no rings where it puts them)")
    maps = [_map_sigma(detector, pose, cov, v)
            for pose, cov, v in zip(result.poses, result.pose_cov, valids)]
    loose = [f"{n} ({m:.2g} px)" for n, m in zip(names, maps) if not m <= MAX_MAP_SIGMA_PX]
    if loose:
        problems.append(f"the images do not pin the rings' positions on {', '.join(loose)}: "
                        f"their 1σ exceeds {MAX_MAP_SIGMA_PX} px")
    misfit = bool(problems)
    undetermined = []
    for key, worst, tol, pairs in result.undetermined(detector.pixel1):
        unit = "relative" if key in ("dist", "wavelength") else "px" if key.startswith("poni") else "rad"
        why = "; ".join(f"{a} and {b} move together (correlation {c:+.5f})" for a, b, c in pairs)
        text = f"{key} (1σ {worst:.3g} {unit}, needs ≤ {tol:g})" + (f": {why}" if why else "")
        undetermined.append(text)
        if key == "wavelength" and any(n in free for n in result.feeds["wavelength"]):
            problems.append(f"the images do not determine the wavelength they were asked for: "
                            f"{text}; fix one of them")
    return {"problems": problems, "misfit": misfit, "maps": maps, "undetermined": undetermined}


def _arc_start(sources, detector, model, pos, dsp, theta0, free, say, seeded: bool) -> dict:
    """The start from the ring arcs of all images (when none calibrates alone, or those that
    do disagree)."""
    from geocal_cli.core.joint.arcs import image_arcs, search_arcs
    from geocal_cli.core.rings.start import find_ring_ridges

    arcs = []
    for s in sources:
        try:
            arcs.append(image_arcs(find_ring_ridges(s.data, s.valid)))
        except CalibrationError:
            arcs.append([])
    say(("" if seeded else f"joint {model.name}: no image calibrates alone; ")
        + f"searching the shared geometry over the {sum(map(len, arcs))} ring arcs of "
        f"{len(sources)} images")
    distance = "direct_dist" if "direct_dist" in model.param_names else "dist"
    found = search_arcs(detector, model, pos, arcs, dsp, theta0, free, distance=distance)
    rings = " / ".join(",".join(str(k + 1) for k in r) or "-" for r in found.rings)
    say(f"ring arcs: rings {rings} per image, {found.rms_px:.2f} px"
        + (f" (next best assignment {found.runner_up[0]:.2f} px)" if found.runner_up else ""))
    return {"from": "ring arcs of all images", "theta": found.theta, "rings": found.rings,
            "rms_px": found.rms_px,
            "runner_up_rms_px": found.runner_up[0] if found.runner_up else None}


def _map_sigma(detector, pose, cov, valid) -> float:
    """rms over an image's valid pixels (a grid of about 20 000) of the ring-position 1σ."""
    from geocal_cli.core.joint.fit import map_sigma_px

    step = max(1, int(np.sqrt(valid.size / 20000)))
    d1, d2 = np.nonzero(valid[::step, ::step])
    sig = map_sigma_px(detector, pose, cov, d1 * float(step), d2 * float(step))
    return float(np.sqrt(np.mean(sig ** 2))) if sig.size else float("inf")


def _pose(geometry, wavelength: float) -> list:
    return [geometry.dist, geometry.poni1, geometry.poni2, geometry.rot1, geometry.rot2,
            geometry.rot3, geometry.wavelength or wavelength]


def _write_goniometer(path: Path, model, result, detector, wavelength: float) -> None:
    from pyFAI.goniometer import Goniometer

    from geocal_cli.io.outputs import write_text

    gonio = Goniometer([result.values[n] for n in model.param_names], model.transformation(),
                       detector=detector, wavelength=wavelength)
    write_text(path, json.dumps(gonio.to_dict(), indent=2, default=list) + "\n")


def _results(model, result, configs, positions, seeds, ponis, cps, dsp, shapes) -> dict:
    from geocal_cli.core.joint.model import POSE_KEYS
    from geocal_cli.core.rings.misfit import split_residual
    from geocal_cli.core.rings.rounds import azimuths

    rms = result.rms_px()
    images = []
    for i, c in enumerate(configs):
        cp, k = cps[i], result.inliers[i]
        rings, split = [], None
        if cp is not None:
            split = split_residual(cp.ring[k], cp.chi[k], result.residual_px[i][k],
                                   2 * np.pi / azimuths(shapes[i]))
            for ring in np.unique(cp.ring):
                sel = cp.ring == ring
                r = result.residual_px[i][sel & k]
                rings.append({"ring": int(ring) + 1, "d_spacing_m": float(dsp[i][ring]),
                              "points": int(r.size),
                              "rms_px": float(np.sqrt(np.mean(r ** 2))) if r.size else None})
        images.append({"image": str(c.image), "position": positions[i],
                       "calibrated_alone": seeds[i] is not None, "poni": str(Path(ponis[i]).resolve()),
                       "pose": dict(zip(POSE_KEYS, map(float, result.poses[i]))),
                       "pose_sigma": dict(zip(POSE_KEYS, map(float, result.pose_sigma()[i]))),
                       "rms_px": float(rms[i]), **misfit_summary(split), "rings": rings})
    corr = result.correlation
    return {
        "model": {"name": model.name, "param_names": list(model.param_names),
                  "expressions": model.expressions, "pos_names": list(model.pos_names)},
        "shared": {n: {"value": result.values[n], "sigma": result.sigma.get(n),
                       "fixed": n not in result.free} for n in model.param_names},
        "correlation": {"parameters": list(result.free),
                        "matrix": np.where(np.isfinite(corr), corr, None).tolist()},
        "condition": result.condition,
        "images": images,
        "residuals": {"rms_px": float(np.sqrt(np.nanmean(rms ** 2))),
                      "points": int(sum(int(k.sum()) for k in result.inliers))},
    }
