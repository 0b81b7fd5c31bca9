"""`demo` pipeline: simulate a LaB6 image on a Pilatus 1M, calibrate it blind, compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geocal_cli.errors import OutputFileError
from geocal_cli.config.calib_ring import CalibRingConfig
from geocal_cli.config.simulate import SimulateConfig
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.pipeline import calib_ring, simulate

#: The demo's truth: a tilted detector, beam off-centre, beamstop with arm, hot pixels.
DEMO_SIMULATION = dict(calibrant="LaB6", energy_kev=17.0, detector="Pilatus1M", distance_mm=250.0,
                       center_px=(455.3, 540.8), tilt_deg=2.5, tilt_plan_rotation_deg=35.0,
                       peak_counts=400.0, background=30.0, beamstop_radius_px=22.0,
                       beamstop_arm_deg=-60.0, hot_pixels=12, seed=7)


@dataclass(frozen=True)
class DemoResult:
    """Paths written and the truth-vs-fit comparison (rows of name, truth, fit, unit)."""

    folder: Path
    image: Path
    truth: Path
    poni: Path
    report: Path
    plot: Path
    comparison: list
    ring_position_error_px: float


def run(folder: Path, progress=None) -> DemoResult:
    """Write the demo image and its blind calibration into `folder`."""
    import numpy as np

    from geocal_cli.core.geometry.metrics import ring_position_error
    from geocal_cli.core.geometry.units import ring_tth

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFileError(f"cannot create the demo folder {folder}: {exc.strerror or exc}") from None
    image = folder / "lab6_pilatus1m.edf"
    sim = simulate.run(SimulateConfig(output=image, **DEMO_SIMULATION), progress)
    stem = folder / "lab6_pilatus1m"
    cal = calib_ring.run(CalibRingConfig(
        image=image, calibrant="LaB6", energy_kev=DEMO_SIMULATION["energy_kev"],
        detector="Pilatus1M", output=stem.with_suffix(".poni"),
        report=stem.with_suffix(".calib.json"), plot=stem.with_suffix(".png")), progress)
    truth = calib_ring.geometry_summary(sim.geometry)
    fit = cal.report["results"]["geometry"]
    sig = cal.report["uncertainties_1sigma"]
    rows = [("distance (directDist)", truth["fit2d"]["directDist_mm"], fit["fit2d"]["directDist_mm"],
             sig["fit2d"]["directDist_mm"], "mm"),
            ("beam centre x", truth["beam_center_px"]["x"], fit["beam_center_px"]["x"],
             sig["beam_center_px"]["x"], "px"),
            ("beam centre y", truth["beam_center_px"]["y"], fit["beam_center_px"]["y"],
             sig["beam_center_px"]["y"], "px"),
            ("tilt", truth["fit2d"]["tilt_deg"], fit["fit2d"]["tilt_deg"],
             sig["fit2d"]["tilt_deg"], "deg"),
            ("tiltPlanRotation", truth["fit2d"]["tiltPlanRotation_deg"],
             fit["fit2d"]["tiltPlanRotation_deg"], sig["fit2d"]["tiltPlanRotation_deg"], "deg")]
    tth = ring_tth(load_calibrant("LaB6").d_spacing, sim.geometry.wavelength)
    err = ring_position_error(cal.calibration.geometry, sim.geometry, tth[np.isfinite(tth)],
                              sim.data.shape)
    return DemoResult(folder=folder, image=image, truth=sim.truth, poni=cal.poni,
                      report=cal.report_path, plot=stem.with_suffix(".png"), comparison=rows,
                      ring_position_error_px=err)
