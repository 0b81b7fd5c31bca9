import json
import shutil
import subprocess

import pytest


def test_demo_runs_offline_and_recovers_the_truth(tmp_path):
    from tests.conftest import poni_ring_error

    r = subprocess.run([shutil.which("geocal"), "demo"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "geocal-demo"
    assert {p.name for p in folder.iterdir()} >= {"lab6_pilatus1m.edf", "lab6_pilatus1m.truth.poni",
                                                   "lab6_pilatus1m.poni", "lab6_pilatus1m.calib.json",
                                                   "lab6_pilatus1m.png"}
    assert "truth" in r.stdout and "fit" in r.stdout
    assert poni_ring_error(folder / "lab6_pilatus1m.poni", folder / "lab6_pilatus1m.truth.poni",
                           "LaB6", (1043, 981)) < 0.02
    report = json.loads((folder / "lab6_pilatus1m.calib.json").read_text())
    assert report["results"]["geometry"]["fit2d"]["directDist_mm"] == pytest.approx(250.0, abs=0.02)
