"""Benchmark: blind calib-ring on a seeded, randomized set of simulated calibrant images.

Each case draws, from one seed: a detector (pyFAI families and generic pixel grids), a
calibrant (every pyFAI calibrant), X-rays (5–120 keV, or one in ten a lab source's Cu, Mo or Ag
Kα1/Kα2 doublet) or electrons (60–300 kV), a distance
that puts the first ring 20 px to half the detector from the beam (SAXS to wide angle), a
beam centred, near an edge, in a corner or off the detector, a tilt of 0–35°, a beamstop
with or without an arm, hot pixels, weak to strong, narrow to broad, smooth or spotty rings.
The image is simulated with `geocal simulate`'s model and calibrated by the installed
`geocal calib-ring` command (a subprocess, 120 s at most), given only the calibrant, the
radiation and the detector. Every case is classified:

- success: exit 0 and the rings within 0.05 px rms of the truth over the detector;
- imprecise: exit 0 and 0.05–0.5 px;
- wrong answer: exit 0 and more than 0.5 px from the truth (the worst outcome);
- refusal: exit 5 with a message;
- crash: any other exit, a traceback, or more than 120 s.

    python benchmarks/robustness.py                  # 300 cases, 2 at a time
    python benchmarks/robustness.py -n 40 --seed 7   # another draw
    python benchmarks/robustness.py --out results/   # keep images and reports
    python benchmarks/robustness.py --from-truth     # and where each failure lies

The summary counts each class, and the success rate among the cases whose image shows at
least three calibrant rings: rings on the detector (10 % of their circumference on valid
pixels) that stand `RESOLVED_SIGMA` profile widths or more from either neighbour, since
closer rings blend into one; the rate over every ring on the detector, resolved or not, is
given too, and how many answers put the truth beyond 3σ of the 1σ their report states
(`stated_sigmas_off`). One JSON line per case is written to `--out`/cases.jsonl.
With `--from-truth`, each of those cases that is not a success is calibrated again from its
true geometry (`--guess`): a success there is an answer the blind search missed; a refusal
or an imprecise fit even there lies with the checks or with what the image holds.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DETECTORS = ["Pilatus1M", "Pilatus2M", "Pilatus300kw", "Eiger2_4M", "Eiger2CdTe_1M", "Eiger9M",
             "Pilatus2MCdTe", "Perkin", "Mar345", "Rayonix MX225"]
GENERIC = [((1024, 1024), 100.0), ((2048, 2048), 75.0), ((512, 512), 55.0), ((1500, 1200), 172.0),
           ((2048, 1024), 50.0)]
TIMEOUT_S = 120
SUCCESS_PX = 0.05
WRONG_PX = 0.5
#: A ring counts as visible when it lies this many profile σ (the case's `width_px`) or more
#: from either neighbour: two equal Gaussian rings 3σ apart show a 35 % dip between them,
#: 2σ apart none, and closer rings are one blended ring that no calibration separates.
RESOLVED_SIGMA = 3.0


def draw_case(seed: int) -> dict:
    """One case's simulate parameters and the calib-ring options, from a seed."""
    from geocal_cli.core.geometry.units import ring_tth, wavelength_from_energy, wavelength_from_voltage
    import pyFAI.detectors

    from geocal_cli.core.rings.doublet import KALPHA_LINES
    from geocal_cli.io.calibrants import calibrant_names, load_calibrant

    rng = np.random.default_rng(seed)
    names = [n for n in calibrant_names() if n not in ("mock",)]
    calibrant = str(rng.choice(names))
    case: dict = {"seed": seed, "calibrant": calibrant}
    if rng.random() < 0.7:
        det = str(rng.choice(DETECTORS))
        case["detector"] = det
        detector = pyFAI.detectors.detector_factory(det)
        shape, pixel = tuple(detector.shape), detector.pixel1 * 1e6
    else:
        shape, pixel = GENERIC[rng.integers(len(GENERIC))]
        case["detector"] = None
        case["pixel_size_um"] = [pixel, pixel]
        case["shape"] = list(shape)
    electrons = rng.random() < 0.15
    if electrons:
        case["voltage_kv"] = float(rng.uniform(60, 300))
        lam = wavelength_from_voltage(case["voltage_kv"])
    else:
        case["energy_kev"] = float(np.exp(rng.uniform(np.log(5), np.log(120))))
        lam = wavelength_from_energy(case["energy_kev"])
    tth = ring_tth(load_calibrant(calibrant).d_spacing, lam)
    tth1 = float(tth[np.isfinite(tth)][0]) if np.isfinite(tth).any() else np.radians(10)
    size = min(shape)
    r1_px = float(np.exp(rng.uniform(np.log(20), np.log(0.5 * size))))
    case["distance_mm"] = float(np.clip(r1_px * pixel * 1e-3 / np.tan(tth1), 20, 5000))
    where = rng.random()
    h, w = shape
    if where < 0.4:
        centre = [h / 2 + rng.normal(0, 20), w / 2 + rng.normal(0, 20)]
    elif where < 0.6:
        centre = [rng.uniform(0.3, 0.7) * h, rng.uniform(30, 120)]
    elif where < 0.8:
        centre = [rng.uniform(10, 150), rng.uniform(10, 150)]
    else:
        centre = [-rng.uniform(20, 0.5 * h), rng.uniform(0.2, 0.8) * w]
    case["center_px"] = [float(c) for c in centre]
    case["tilt_deg"] = float(rng.choice([0.0, rng.uniform(0, 5), rng.uniform(5, 35)],
                                        p=[0.3, 0.4, 0.3]))
    case["tilt_plan_rotation_deg"] = float(rng.uniform(-180, 180))
    if rng.random() < 0.5:
        case["beamstop_radius_px"] = float(rng.uniform(5, 40))
        if rng.random() < 0.6:
            case["beamstop_arm_deg"] = float(rng.uniform(-180, 180))
    case["hot_pixels"] = int(rng.choice([0, 10, 100]))
    case["peak_counts"] = float(np.exp(rng.uniform(np.log(20), np.log(1e5))))
    case["width_px"] = float(np.exp(rng.uniform(np.log(0.8), np.log(4.0))))
    case["spotty"] = float(rng.choice([0.0, rng.uniform(0.2, 0.8)], p=[0.7, 0.3]))
    if electrons:
        case["direct_beam_counts"] = float(rng.choice([0.0, 1e5]))
    # Drawn last, so that the cases of every other seed stay as they were.
    if not electrons and rng.random() < 0.1:
        # A lab source: Cu, Mo or Ag Kα1/Kα2, the rings at the same place as drawn.
        ka1, ka2 = KALPHA_LINES[str(rng.choice(["Cu", "Mo", "Ag"]))]
        lam1 = ka1 * 1e-10
        tth = ring_tth(load_calibrant(calibrant).d_spacing, lam1)
        tth1 = float(tth[np.isfinite(tth)][0]) if np.isfinite(tth).any() else np.radians(10)
        del case["energy_kev"]
        case.update(wavelength_a=ka1, kalpha2_a=ka2, distance_mm=float(np.clip(
            r1_px * pixel * 1e-3 / np.tan(tth1), 20, 5000)))
    return case


def run_case(case: dict, folder: Path, command=("geocal",), from_truth: bool = False) -> dict:
    """Simulate one case, calibrate it with the geocal command, classify the outcome.

    With `from_truth`, a case with three visible rings or more that is not a success is
    calibrated again from the true geometry (`--guess`): `from_truth` then holds that run's
    outcome, which tells a blind search that missed an answer the checks accept (success
    from the truth) from an image the checks refuse, or fit imprecisely, even there.
    """
    import pyFAI

    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.core.rings.rounds import expected_rings, ring_gap_px
    from geocal_cli.core.geometry.frame import frame_of
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.images import valid_pixels
    from geocal_cli.pipeline import simulate

    folder.mkdir(parents=True, exist_ok=True)
    out = {"case": case}
    try:
        sim = simulate.run(SimulateConfig(output=folder / "image.edf", **case))
    except Exception as exc:  # a case the simulator cannot draw is not calib-ring's
        out.update(outcome="not drawn", message=str(exc)[:300])
        return out
    g = sim.geometry
    tth = ring_tth(load_calibrant(case["calibrant"]).d_spacing, g.wavelength)
    tth = tth[np.isfinite(tth)]
    valid = valid_pixels(sim.data)
    # Every reflection counts: at high energy a dense calibrant may show only its
    # high orders, and the error is measured on the first 60 rings the image shows.
    frame = frame_of(g)
    on_detector = expected_rings(valid, frame, tth)
    resolved = ring_gap_px(frame, tth)[on_detector] >= RESOLVED_SIGMA * case["width_px"]
    out["rings_on_detector"] = int(on_detector.size)
    out["rings_visible"] = int(np.count_nonzero(resolved))
    shown = tth[on_detector[:60]] if on_detector.size else tth[:60]

    def error_px(poni: Path) -> float:
        return float(ring_position_error(pyFAI.load(str(poni)), g, shown, sim.data.shape,
                                         valid=valid))

    def sigmas_off(poni: Path, report: Path) -> float | None:
        return stated_sigmas_off(pyFAI.load(str(poni)), g, report)

    out.update(_calibrate(case, folder, "fit", command, error_px, sigmas_off))
    if from_truth and out["rings_visible"] >= 3 and out["outcome"] != "success":
        truth = _calibrate(case, folder, "from_truth", command, error_px, sigmas_off,
                           ["--guess", str(folder / "image.truth.poni")])
        out["from_truth"] = {k: truth[k] for k in ("outcome", "error_px", "message")
                             if k in truth}
    return out


def stated_sigmas_off(fitted, truth, report: Path) -> float | None:
    """How far the truth lies from an answer in units of the 1σ its report states: the
    largest |fitted − true| / 1σ over Fit2D's directDist, centerX, centerY and tilt, and
    tiltPlanRotation where the tilt stands 3σ and 0.5° clear of zero (nearer, its plane is
    undefined): the terms in which a user reads a geometry, and which a truth with rot3 ≠ 0
    shares with a fit that keeps rot3 at 0 (pyFAI turns the detector by rot3 about the beam,
    which moves no 2θ). With honest Gaussian 1σ, about 1 % of answers lie beyond 3σ. None
    when the report states no Fit2D 1σ (the electron lens model).

    Parameters
    ----------
    fitted, truth : pyFAI.geometry.Geometry
    report : Path
        The run's JSON report.
    """
    sigma = json.loads(report.read_text()).get("uncertainties_1sigma", {}).get("fit2d")
    if not sigma:
        return None
    a, t = fitted.getFit2D(), truth.getFit2D()
    off = [abs(a[k] - t[k]) / sigma[s] for k, s in (
        ("directDist", "directDist_mm"), ("centerX", "centerX_px"), ("centerY", "centerY_px"),
        ("tilt", "tilt_deg"))]
    if t["tilt"] > 3 * sigma["tilt_deg"] + 0.5:
        turn = (a["tiltPlanRotation"] - t["tiltPlanRotation"] + 180.0) % 360.0 - 180.0
        off.append(abs(turn) / sigma["tiltPlanRotation_deg"])
    return float(max(off))


def _calibrate(case: dict, folder: Path, stem: str, command, error_px, sigmas_off,
               extra=()) -> dict:
    """One calib-ring run on the case's image, writing `stem`.poni/.json in `folder`:
    seconds, exit, message (the first error line), outcome and, on exit 0, error_px
    (`error_px`, called with the PONI written) and sigmas_off (`sigmas_off`, called with the
    PONI and the report)."""
    cmd = [*command, "calib-ring", str(folder / "image.edf"), "-c", case["calibrant"],
           "-o", str(folder / f"{stem}.poni"), "--report", str(folder / f"{stem}.json"), *extra]
    if case.get("kalpha2_a"):
        cmd += ["--wavelength", f"{case['wavelength_a']!r},{case['kalpha2_a']!r}"]
    elif case.get("energy_kev"):
        cmd += ["--energy", repr(case["energy_kev"])]
    else:
        cmd += ["--voltage", repr(case["voltage_kv"])]
    if case.get("detector"):
        cmd += ["-d", case["detector"]]
    else:
        cmd += ["--pixel-size", ",".join(repr(p) for p in case["pixel_size_um"])]
    out: dict = {}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        out.update(outcome="crash", message=f"over {TIMEOUT_S} s", seconds=TIMEOUT_S)
        return out
    out["seconds"] = time.perf_counter() - t0
    out["exit"] = proc.returncode
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
    out["message"] = (errors[0] if errors else "")[:400]
    if proc.returncode == 0 and not (folder / f"{stem}.poni").is_file():
        out.update(outcome="crash", message="exit 0 without a PONI")
    elif proc.returncode == 0:
        err = error_px(folder / f"{stem}.poni")
        out["error_px"] = err
        out["sigmas_off"] = sigmas_off(folder / f"{stem}.poni", folder / f"{stem}.json")
        out["outcome"] = ("success" if err <= SUCCESS_PX else
                          "imprecise" if err <= WRONG_PX else "wrong answer")
    elif proc.returncode == 5 and errors and "Traceback" not in proc.stderr:
        out["outcome"] = "refusal"
    else:
        out["outcome"] = "crash"
        out["message"] = (proc.stderr.strip().splitlines() or [""])[-1][:400]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=300, help="cases (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (cases use seed, seed+1, …)")
    ap.add_argument("--jobs", type=int, default=2, help="cases at a time (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="folder for images, reports, cases.jsonl")
    ap.add_argument("--command", default="geocal",
                    help="the calibrating command, e.g. another checkout's "
                         "'python -m geocal_cli' with PYTHONPATH on it (default: geocal)")
    ap.add_argument("--from-truth", action="store_true",
                    help="calibrate every case with ≥ 3 visible rings that is not a success "
                         "again from the true geometry (--guess), to tell a search that "
                         "missed an answer from an image the checks refuse even at the truth")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="geocal-robustness-"))
    # Files of an earlier run (or of an older geocal) would meet calib-ring's output rules,
    # and its refusal to replace them would count as a crash of this one.
    if out.is_dir() and any(out.iterdir()):
        ap.error(f"--out {out} is not empty: give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    cases = [draw_case(args.seed + i) for i in range(args.n)]
    results = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex, open(out / "cases.jsonl", "w") as log:
        command = tuple(args.command.split())
        for res in ex.map(lambda c: run_case(c, out / f"case{c['seed']:05d}", command,
                                             args.from_truth), cases):
            results.append(res)
            log.write(json.dumps(res) + "\n")
            log.flush()
            print(f"{res['case']['seed']:5d} {res['outcome']:13s} "
                  f"{res.get('error_px', float('nan')):8.4f} px  rings {res.get('rings_visible', '-'):>3}  "
                  f"{res['case']['calibrant']:14s} {res['case'].get('detector') or 'generic':14s} "
                  f"{res.get('message', '')[:90]}", flush=True)
    counts = {k: sum(r["outcome"] == k for r in results)
              for k in ("success", "imprecise", "refusal", "wrong answer", "crash", "not drawn")}
    drawn = [r for r in results if r["outcome"] != "not drawn"]
    visible = [r for r in drawn if r.get("rings_visible", 0) >= 3]
    ok = sum(r["outcome"] == "success" for r in visible)
    print(f"\n{len(results)} cases in {time.perf_counter() - t0:.0f} s: " +
          ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"success where ≥ 3 calibrant rings are visible ({RESOLVED_SIGMA:g}σ or more from "
          f"either neighbour): {ok} of {len(visible)} ({100 * ok / max(len(visible), 1):.1f} %)")
    placed = [r for r in drawn if r.get("rings_on_detector", 0) >= 3]
    ok_placed = sum(r["outcome"] == "success" for r in placed)
    print(f"success where ≥ 3 calibrant rings lie on the detector, resolved or not: "
          f"{ok_placed} of {len(placed)} ({100 * ok_placed / max(len(placed), 1):.1f} %)")
    judged = [r["sigmas_off"] for r in drawn if r.get("sigmas_off") is not None]
    beyond = sum(z > 3 for z in judged)
    print(f"answers whose truth lies beyond 3σ of their stated 1σ (Fit2D terms): {beyond} of "
          f"{len(judged)} ({100 * beyond / max(len(judged), 1):.1f} %; about 1 % for honest 1σ)")
    tried = [r for r in visible if "from_truth" in r]
    if tried:
        found = collections.Counter(r["from_truth"]["outcome"] for r in tried)
        print(f"of the {len(tried)} that are not a success, from the true geometry: "
              + ", ".join(f"{v} {k}" for k, v in found.most_common())
              + " (a success there is an answer the blind search missed)")
    print(f"per-case results: {out / 'cases.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
