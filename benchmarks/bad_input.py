"""Benchmark: the bad-input corpus run by the installed `geocal` command, one process per case.

Every case of `tests/badinput/corpus.py` (hostile images, geometry files, configs, calibrant
files, splines, output paths and flag values, fed to each subcommand) is run as a separate
`geocal` process in a freshly written corpus folder. For each: the exit code (must be one
of the case's documented codes, never 1), the wall time (must stay under 10 s), the peak
resident memory of the process (`os.wait4`; must stay under 1 GiB), and whether the folder
is byte-identical afterwards (no output, no temporary).

    python benchmarks/bad_input.py            # all cases, 2 at a time
    python benchmarks/bad_input.py --jobs 1

Prints one line per case that breaks a rule, then the summary: cases, subcommands, clean
cases, slowest case and largest peak memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.badinput.corpus import cases, snapshot, write_corpus  # noqa: E402

SECONDS = 10.0
BYTES = 1 << 30
GEOCAL = str(Path(sys.executable).with_name("geocal"))


def run_case(case) -> dict:
    """One case in its own corpus folder (FIFOs cannot be copied: each is written afresh)."""
    name, args, codes = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_corpus(folder)
        before = snapshot(folder)
        t0 = time.perf_counter()
        proc = subprocess.Popen([GEOCAL, *args], cwd=folder, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:
            status, usage = 0, None
        seconds = time.perf_counter() - t0
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.returncode = os.waitstatus_to_exitcode(status)
        touched = snapshot(folder) != before
    return {"name": name, "command": args[0], "code": proc.returncode, "codes": sorted(codes),
            "seconds": seconds, "peak_bytes": usage.ru_maxrss * 1024 if usage else 0,
            "touched": touched, "last_line": err.strip().splitlines()[-1] if err.strip() else ""}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    opts = parser.parse_args(argv)
    all_cases = cases()
    with ThreadPoolExecutor(opts.jobs) as pool:
        rows = list(pool.map(run_case, all_cases))
    bad = 0
    for r in rows:
        problems = [p for p, broken in (
            (f"exit {r['code']} not in {r['codes']}", r["code"] not in r["codes"]),
            (f"{r['seconds']:.1f} s", r["seconds"] > SECONDS),
            (f"{r['peak_bytes'] / 2**20:.0f} MiB", r["peak_bytes"] > BYTES),
            ("folder changed", r["touched"]),
            ("no error line", not r["last_line"].startswith("error:"))) if broken]
        if problems:
            bad += 1
            print(f"{r['name']}: {', '.join(problems)} ({r['last_line'][:120]})")
    slow = max(rows, key=lambda r: r["seconds"])
    big = max(rows, key=lambda r: r["peak_bytes"])
    print(f"{len(rows)} cases over {len({r['command'] for r in rows})} subcommands: "
          f"{len(rows) - bad} clean, {bad} broke a rule; slowest {slow['seconds']:.2f} s "
          f"({slow['name']}), largest peak {big['peak_bytes'] / 2**20:.0f} MiB ({big['name']})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
