"""The first 20 cases of benchmarks/robustness.py, run as in the benchmark: the installed
`geocal calib-ring` on each simulated image, given only the calibrant, the radiation and the
detector. None may be a wrong answer (exit 0 but > 0.5 px from the truth) or a crash (any
exit but 0 and 5, a traceback, > 120 s). Refusals are allowed: the benchmark reports how
many there are; this guards the promise that an answer given is right, and says how good it
is: the truth lies within 5σ of the 1σ the report states (Fit2D terms, `stated_sigmas_off`;
case 17, Si at 21 mm with rings of σ = 2.1 px, lay 9.1σ off in distance before its 1σ
allowed for the skew of the rings' profiles)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GEOCAL = str(Path(sys.executable).with_name("geocal"))


def _benchmark():
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "benchmarks" / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()


@pytest.mark.parametrize("seed", range(20))
def test_no_wrong_answer_and_no_crash(seed, tmp_path):
    res = BENCH.run_case(BENCH.draw_case(seed), tmp_path / "case", command=(GEOCAL,))
    assert res["outcome"] not in ("wrong answer", "crash"), res
    assert res.get("sigmas_off") is None or res["sigmas_off"] < 5, res
