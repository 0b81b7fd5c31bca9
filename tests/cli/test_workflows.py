"""The workflow examples: examples/Makefile (make -j2) and examples/Snakefile (snakemake
--cores 2) chain calib-ring → q-check → convert-poni on three simulated images, and a rerun
does nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    root = tmp_path_factory.mktemp("workflow")
    (root / "images").mkdir()
    truths = {}
    for i in range(3):
        res = simulate.run(SimulateConfig(output=root / "images" / f"s{i}.edf", calibrant="LaB6",
                                          energy_kev=17.0, detector="Pilatus1M",
                                          distance_mm=190.0 + 15 * i, seed=i))
        truths[f"s{i}"] = res.geometry.getFit2D()["directDist"]
    for extra in (root / "images").glob("*.*"):
        if extra.suffix != ".edf":
            extra.unlink()
    return root, truths


def _check(out: Path, truths: dict) -> None:
    for stem, dist in truths.items():
        assert json.loads((out / f"{stem}.qcheck.json").read_text())["verdict"]["status"] == "ok"
        fit2d = yaml.safe_load((out / f"{stem}.fit2d.yaml").read_text())
        assert abs(fit2d["directDist"] - dist) < 0.05


def _tree(out: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_the_makefile_chains_the_subcommands(images, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root, truths = images
    out = tmp_path / "calib"
    cmd = ["make", "-f", str(EXAMPLES / "Makefile"), "-j2", f"IMAGES={' '.join(sorted(map(str, (root / 'images').glob('*.edf'))))}",
           f"OUT={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check(out, truths)
    before = _tree(out)
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout
    assert _tree(out) == before


def test_the_snakefile_chains_the_subcommands(images, tmp_path):
    if shutil.which("snakemake") is None:
        pytest.skip("snakemake is not installed")
    root, truths = images
    out = tmp_path / "calib"
    cmd = ["snakemake", "-s", str(EXAMPLES / "Snakefile"), "--cores", "2", "--directory",
           str(tmp_path), "--config", f"images={root / 'images'}", f"out={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check(out, truths)
    before = _tree(out)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert _tree(out) == before
