"""Shared fixtures: synthetic images with a known geometry, and the real-data folder."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

# First, so that the BLAS setting of the geocal command applies before numpy loads.
import geocal_cli.main  # noqa: F401

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
MATRIX = ROOT / "benchmarks" / "synthetic_matrix.yaml"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true",
                     help="also run the tests marked slow, the long tails of a few tables (most of "
                          "them the real wrong-calibrant table): about 30 CPU-minutes more")


def pytest_collection_modifyitems(config, items):
    # The robustness subset first: its 20 cases are the longest block (10–45 s each), and
    # pytest-xdist hands out tests in this order, so at the end of the run the two workers
    # wait on short tests rather than one of them on a long case.
    items.sort(key=lambda item: item.path.name != "test_robustness_subset.py")
    # CI runs one representative of each slow family; the rest wait for --runslow.
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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


def truth_values(sim) -> dict:
    """The simulator's geometry as the seven refined values (m, rad), a start at the truth."""
    g = sim.geometry
    return dict(dist=g.dist, poni1=g.poni1, poni2=g.poni2, rot1=g.rot1, rot2=g.rot2,
                rot3=g.rot3, wavelength=g.wavelength)


def blind_calibrate(sim, d_spacing: np.ndarray):
    """`calibrate` a simulated image blind, with its own detector and wavelength."""
    from geocal_cli.core.rings.calibrate import calibrate
    from geocal_cli.io.images import valid_pixels

    g = sim.geometry
    return calibrate(sim.data, valid_pixels(sim.data), g.detector, g.wavelength, d_spacing)


def only_strategy(monkeypatch, strategy: str) -> None:
    """Let the blind search refine only the starts of one strategy (their blind summary's
    "strategy"), so that a test exercises it on an image an earlier one also calibrates."""
    from geocal_cli.core.rings import calibrate as module

    real = module._solve_first

    def solve_first(starts, *args, **kwargs):
        return real((s for s in starts if s[1]["strategy"] == strategy), *args, **kwargs)

    monkeypatch.setattr(module, "_solve_first", solve_first)


def blind_error_px(sim, d_spacing: np.ndarray, strategy: str) -> float:
    """Calibrate a simulated image blind, check which start the search took, and return the
    ring-position error (px, rms over the detector) against the simulator's truth."""
    from geocal_cli.core.geometry.metrics import ring_position_error

    g = sim.geometry
    res = blind_calibrate(sim, d_spacing)
    assert res.blind["strategy"] == strategy
    return ring_position_error(res.geometry, g, ring_tth(d_spacing, g.wavelength), sim.data.shape)


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


#: A unit in brackets, as every axis label with a dimension carries it.
UNIT = re.compile(r"\[.+\]")


#: With GEOCAL_GALLERY=FOLDER, each test also writes its figures there: the README's gallery
#: (docs/gallery) is regenerated by running tests/io/test_plots.py so.
GALLERY = os.environ.get("GEOCAL_GALLERY")


class WrittenFigure:
    """A figure drawn in parts (`io.plots._with_integration`), seen as one: the axes of all
    its parts, top to bottom, and the first part's title."""

    def __init__(self, parts: list):
        self.parts = parts
        self.axes = [ax for part in parts for ax in part.axes]
        self._suptitle = parts[0]._suptitle


@pytest.fixture
def figures(monkeypatch, request):
    """The figures the run saves, kept open for inspection (and still written): drawn in
    this process, not by the command's plot helpers (`io.render`). A figure drawn in parts
    is kept as one `WrittenFigure`."""
    from geocal_cli.io import plots, render

    kept, parts = [], []
    name = re.sub(r"\W+", "_", request.node.name.removeprefix("test_")).strip("_")

    def keep(plt, fig, path):
        fig.canvas.draw()  # lay out text, as the file has it
        kept.append(fig)
        with plots.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=40, format="png")
        if GALLERY:
            fig.savefig(Path(GALLERY) / f"{name}.png", dpi=50, pil_kwargs={"compress_level": 9})

    def keep_part(plt, fig):
        fig.canvas.draw()
        parts.append(fig)
        return np.array(fig.canvas.buffer_rgba())

    def write(path, rgba):
        kept.append(WrittenFigure(parts[:]))
        parts.clear()
        written(path, rgba)
        if GALLERY:
            from PIL import Image

            height, width = rgba.shape[:2]
            scale = 50 / plots.DPI
            Image.fromarray(rgba).resize((round(width * scale), round(height * scale)),
                                         Image.LANCZOS).save(Path(GALLERY) / f"{name}.png",
                                                             compress_level=9)

    written = plots._write_png
    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setattr(plots, "_pixels", keep_part)
    monkeypatch.setattr(plots, "_write_png", write)
    monkeypatch.setattr(render, "ahead", lambda wanted: contextlib.nullcontext())
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        for part in getattr(fig, "parts", [fig]):
            plt.close(part)


def labelled(ax):
    """Both axes labelled, with a unit in brackets."""
    assert UNIT.search(ax.get_xlabel()), ax.get_xlabel()
    assert UNIT.search(ax.get_ylabel()), ax.get_ylabel()


def legend_texts(ax) -> list[str]:
    """The texts of an axis's legend (none without one)."""
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg is not None else []


def colourbars(fig) -> list[str]:
    """Labels of the colour bars (their axes carry a `_colorbar`)."""
    return [getattr(ax, "_colorbar").ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]
