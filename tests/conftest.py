"""Shared fixtures: synthetic images with a known geometry, and the real-data folder."""

from __future__ import annotations

from pathlib import Path

# First, so that the BLAS setting of the geocal command applies before numpy loads.
import geocal_cli.main  # noqa: F401

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
MATRIX = ROOT / "benchmarks" / "synthetic_matrix.yaml"


def shared(*parts: str) -> Path:
    """A file of ../shared/data; the test is skipped when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def matrix_cases(ci_only: bool) -> dict:
    """Synthetic cases from benchmarks/synthetic_matrix.yaml."""
    cases = yaml.safe_load(MATRIX.read_text())
    return {k: v for k, v in cases.items() if v.get("ci") or not ci_only}


def simulate_case(case: dict, folder: Path):
    """Run the simulator for one matrix case; returns (SimulateResult, config)."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    params = {k: v for k, v in case.items() if k != "ci"}
    folder.mkdir(parents=True, exist_ok=True)
    cfg = SimulateConfig(output=folder / "image.edf", **params)
    return simulate.run(cfg), cfg


def emd_signal(data: np.ndarray) -> dict:
    """A rosettasciio signal dict for `rsciio.emd.file_writer`: the image with 55 µm pixels."""
    axes = [{"name": n, "size": s, "offset": 0.0, "scale": 55000.0, "units": "nm", "navigate": False}
            for n, s in zip("yx", data.shape)]
    return {"data": data, "axes": axes, "metadata": {"General": {"title": "pattern"}, "Signal": {}},
            "original_metadata": {}}


def ring_tth(d_spacing: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (rad) of the rings that exist at this wavelength."""
    from geocal_cli.core.geometry.units import ring_tth as bragg

    tth = bragg(d_spacing, wavelength)
    return tth[np.isfinite(tth)]


def poni_ring_error(fit_poni: Path, truth_poni: Path, calibrant: str, shape) -> float:
    """Ring-position error (px rms) between the geometries of two PONI files."""
    import pyFAI

    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.io.calibrants import load_calibrant

    truth = pyFAI.load(str(truth_poni))
    tth = ring_tth(load_calibrant(calibrant).d_spacing, truth.wavelength)
    return ring_position_error(pyFAI.load(str(fit_poni)), truth, tth, shape)


@pytest.fixture(scope="session")
def lab6_pilatus(tmp_path_factory):
    """A LaB6 image on a Pilatus 1M: tilted, off-centre, beamstop with arm, hot pixels."""
    folder = tmp_path_factory.mktemp("lab6")
    case = dict(detector="Pilatus1M", calibrant="LaB6", energy_kev=17.0, distance_mm=220.0,
                center_px=[470.4, 530.7], tilt_deg=3.0, tilt_plan_rotation_deg=50.0,
                beamstop_radius_px=20.0, beamstop_arm_deg=-45.0, hot_pixels=20, seed=21)
    sim, cfg = simulate_case(case, folder)
    return sim, cfg


def assert_valid_report(path: Path) -> dict:
    """A report as written: valid against its published schema (`geocal schema`), and every
    input and output it lists hashes to the SHA-256 it gives (files changed since are the
    caller's business). Returns the report."""
    import hashlib
    import json

    import jsonschema

    from geocal_cli.io.schemas import schema_for

    report = json.loads(Path(path).read_text())
    name = report["schema"]["name"] if isinstance(report["schema"], dict) else report["schema"]
    jsonschema.Draft202012Validator(schema_for(name)).validate(report)
    for entry in report.get("inputs", []) + report.get("outputs", []):
        data = Path(entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        assert len(data) == entry["bytes"], entry["path"]
    return report
