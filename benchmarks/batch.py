"""Benchmark: `geocal batch` against a shell loop over `geocal calib-ring`, and 2 workers
against 1, on the same simulated images in one run.

Timings on N LaB6 images of one Pilatus 1M setup (distances, tilts and centres drawn from a
seed): a shell loop (one process per image, what users write today), `geocal batch --jobs 1`
and `--jobs 2` (each from an empty output folder), a rerun that finds everything done, and
`--force`; and what two workers can give at most on this machine (two `--jobs 1` runs side by
side against one, `machine_ceiling`). With `--mixed M`: M images cycling through detectors (Pilatus 1M, Eiger2 4M,
Eiger2 CdTe 1M, a generic 1024² CCD) and calibrants (LaB6, CeO2, Si, AgBh), plus four corrupt
files and two images without rings, one batch per setup: exit codes and record counts.

    python benchmarks/batch.py                 # 20 images of one setup: the timings
    python benchmarks/batch.py --mixed 40      # and 40 mixed images with 6 bad files
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETUPS = [  # detector (or pixel µm, shape), calibrant, energy keV, distance mm
    ("Pilatus1M", "LaB6", 17.0, 200.0), ("Pilatus1M", "CeO2", 30.0, 250.0),
    ("Eiger2_4M", "Si", 20.0, 150.0), ("Eiger2CdTe_1M", "LaB6", 40.0, 180.0),
    ((100.0, (1024, 1024)), "AgBh", 12.0, 600.0), ((100.0, (1024, 1024)), "CeO2", 25.0, 120.0)]


def make_images(folder: Path, n: int, mixed: bool, seed: int = 0) -> list[Path]:
    """N good images (all of the first setup, or cycling through `SETUPS` when `mixed`), then
    four corrupt files and two images without rings."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.io.images import write_image
    from geocal_cli.pipeline import simulate

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        k = i % len(SETUPS) if mixed else 0
        det, cal, energy, dist = SETUPS[k]
        geometry = ({"detector": det} if isinstance(det, str) else
                    {"detector": None, "pixel_size_um": (det[0], det[0]), "shape": det[1]})
        out = folder / f"img{k}_{i:03d}.edf"
        simulate.run(SimulateConfig(output=out, calibrant=cal, energy_kev=energy,
                                    distance_mm=dist * rng.uniform(0.9, 1.1),
                                    tilt_deg=float(rng.uniform(0, 3)),
                                    tilt_plan_rotation_deg=float(rng.uniform(-180, 180)),
                                    peak_counts=2000.0, seed=i, **geometry))
        paths.append(out)
    for i in range(4):
        bad = folder / f"corrupt_{i}.edf"
        bad.write_bytes(b"{\nEDF_DataBlockID = 0\n" + bytes(rng.integers(0, 255, 200, dtype=np.uint8)))
        paths.append(bad)
    for i in range(2):
        empty = folder / f"norings_{i}.edf"
        write_image(empty, rng.poisson(30, (1043, 981)).astype(np.int32))
        paths.append(empty)
    for extra in folder.iterdir():
        if extra.suffix != ".edf":
            extra.unlink()
    return paths


def setup_of(path: Path) -> int:
    """The `SETUPS` index of an image (the bad files go with the first)."""
    return int(path.stem[3]) if path.stem.startswith("img") else 0


def calib_args(k: int) -> list[str]:
    det, cal, energy, _ = SETUPS[k]
    where = ["-d", det] if isinstance(det, str) else ["--pixel-size", str(det[0])]
    return ["-c", cal, "--energy", str(energy), *where]


def batch(paths: list[Path], out: Path, *extra: str) -> tuple[float, list[int]]:
    """One `geocal batch` per setup present; total wall time and the exit codes."""
    total, codes = 0.0, []
    for k in sorted({setup_of(p) for p in paths}):
        members = [str(p) for p in paths if setup_of(p) == k]
        t0 = time.perf_counter()
        proc = subprocess.run(["geocal", "-q", "batch", "calib-ring", *members, *calib_args(k),
                               "--out-dir", str(out / f"setup{k}"), *extra], capture_output=True)
        total += time.perf_counter() - t0
        codes.append(proc.returncode)
    return total, codes


def machine_ceiling(paths: list[Path], work: Path) -> float:
    """What two workers can give at most on this machine: the speed-up of two `batch --jobs 1`
    runs side by side (half of the images each) over one run of them all. Below 2 when two
    busy cores slow each other (shared caches, memory bandwidth, hyper-threads)."""
    half = len(paths) // 2
    alone, _ = batch(paths[:2 * half], work / "ceiling_alone", "--jobs", "1")
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["geocal", "-q", "batch", "calib-ring", *map(str, part), *calib_args(0),
                               "--out-dir", str(work / f"ceiling_{i}"), "--jobs", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i, part in enumerate((paths[:half], paths[half:2 * half]))]
    for p in procs:
        p.wait()
    return alone / (time.perf_counter() - t0)


def first_records(out: Path) -> dict:
    recs = [json.loads(line) for f in out.glob("setup*/manifest.jsonl")
            for line in f.read_text().splitlines()]
    return {s: sum(r["status"] == s for r in recs) for s in ("ok", "failed", "skipped")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="images of one setup for the timings (default 20)")
    ap.add_argument("--mixed", type=int, default=0,
                    help="also this many images of mixed detectors and calibrants, plus the bad files")
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the images and outputs in")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="geocal-batch-bench-"))
    good = [p for p in make_images(work / "images", args.n, mixed=False) if p.stem.startswith("img")]
    result = {"images": len(good)}

    # Today's way: one process per image (Python and pyFAI start-up every time).
    (work / "loop").mkdir()
    t0 = time.perf_counter()
    for p in good:
        subprocess.run(["geocal", "-q", "calib-ring", str(p), *calib_args(0)], cwd=work / "loop",
                       capture_output=True)
    result["shell_loop_s"] = time.perf_counter() - t0
    result["batch_jobs1_s"], _ = batch(good, work / "jobs1", "--jobs", "1")
    result["batch_jobs2_s"], _ = batch(good, work / "jobs2", "--jobs", "2")
    result["rerun_s"], result["rerun_exit"] = batch(good, work / "jobs2", "--jobs", "2")
    result["force_s"], _ = batch(good, work / "jobs2", "--jobs", "2", "--force")
    result["speedup_2_vs_1_workers"] = result["batch_jobs1_s"] / result["batch_jobs2_s"]
    result["machine_ceiling_2_workers"] = machine_ceiling(good, work)
    result["per_image_loop_s"] = result["shell_loop_s"] / len(good)
    result["per_image_batch_jobs1_s"] = result["batch_jobs1_s"] / len(good)
    result["ratio_batch_jobs1_to_loop"] = result["batch_jobs1_s"] / result["shell_loop_s"]
    if args.mixed:
        paths = make_images(work / "mixed", args.mixed, mixed=True, seed=1)
        seconds, codes = batch(paths, work / "mixed_out", "--jobs", "2")
        result["mixed"] = {"images": args.mixed, "bad_files": len(paths) - args.mixed,
                           "seconds": seconds, "exit_codes": codes,
                           "records": first_records(work / "mixed_out")}
        t0 = time.perf_counter()
        _, result["mixed"]["rerun_exit_codes"] = batch(paths, work / "mixed_out", "--jobs", "2")
        result["mixed"]["rerun_s"] = time.perf_counter() - t0
    print(json.dumps(result, indent=2))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
