"""`geocal simulate`: a calibrant ring image or a zone-axis spot pattern with a known geometry."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli import console
from geocal_cli.commands._common import (OVERWRITE_OPTION, CONFIG_OPTION, ENERGY_OPTION, PIXEL_SIZE_OPTION,
                                         SHOW_CONFIG_OPTION, VOLTAGE_OPTION, WAVELENGTH_DOUBLET_OPTION, KALPHA2_RATIO_OPTION,
                                         load, parse_floats, parse_wavelength)

EPILOG = """Examples:

  geocal simulate lab6.edf --energy 17 --distance 250 --tilt 3 --tilt-plan-rotation 40

  geocal simulate ceo2.cbf -c CeO2 --detector Eiger2_4M --energy 30 --center 1000.5,1100.2 --beamstop 30 --beamstop-arm 45

  geocal simulate lab6_mo.tif --wavelength 0.70930,0.71359 --pixel-size 100 --shape 1024,1024 --distance 100 --width 3

  geocal simulate au.tif -c au.cif --voltage 200 --pixel-size 55 --shape 512,512 --distance 1500 --spotty 0.5

  geocal simulate tem.tif -c Au --voltage 200 --pixel-size 28 --shape 2048,2048 --distance 400 --axis-ratio 1.03 --ellipse-angle 40 --direct-beam 1e5 --saturation 30000

  geocal simulate sad.tif --spots 2.039,2.039,90 --spot-rotation 17 --voltage 200 --pixel-size 55 --shape 1024,1024 --distance 400 --width 2 --direct-beam 1e5

  geocal simulate grid.edf --grid 5 --pixel-size 50 --shape 2048,2048 --radial 4 --random-field 1.5 --skew 0.5 --missing 0.03 --spurious 5 --illumination 0.5

  geocal simulate lab6_distorted.edf --energy 17 --pixel-size 50 --shape 2048,2048 --distance 150 --distortion grid.truth.h5

Writes the image (int32; gaps -1) and OUTPUT-stem.truth.poni with the geometry used (not for
a grid); with --radial, --random-field or --skew also OUTPUT-stem.truth.h5, the true
distortion as a pyFAI detector file.

Exit codes: 0 ok, 3 bad config, 4 a --distortion file that cannot be read or does not fit
the image, or an output that cannot be written."""


def command(
    output: Path = typer.Argument(None, show_default=False, help="Image to write: .edf, .tif, .cbf or .npy."),
    calibrant: str = typer.Option(None, "--calibrant", "-c", help="pyFAI calibrant name, d-spacing file or CIF [default: LaB6]."),
    energy: float = ENERGY_OPTION,
    wavelength: str = WAVELENGTH_DOUBLET_OPTION,
    kalpha2_ratio: float = KALPHA2_RATIO_OPTION,
    voltage: float = VOLTAGE_OPTION,
    detector: str = typer.Option(None, "--detector", "-d", help="pyFAI detector name [default: Pilatus1M].", rich_help_panel="Detector"),
    pixel_size: str = PIXEL_SIZE_OPTION,
    shape: str = typer.Option(None, "--shape", help="Image shape 'ROWS,COLS' with --pixel-size.", rich_help_panel="Detector"),
    no_gaps: bool = typer.Option(None, "--no-gaps", help="Do not blank the detector's module gaps.", rich_help_panel="Detector"),
    distance: float = typer.Option(None, "--distance", help="Sample-detector distance along the beam (Fit2D directDist), mm [default: 200].", rich_help_panel="Geometry"),
    center: str = typer.Option(None, "--center", help="Beam centre 'X,Y' in pixels (x = column, y = row, pixel centres at i + 0.5) [default: image centre].", rich_help_panel="Geometry"),
    tilt: float = typer.Option(None, "--tilt", help="Detector tilt (Fit2D), degrees.", rich_help_panel="Geometry"),
    tilt_plan_rotation: float = typer.Option(None, "--tilt-plan-rotation", help="Fit2D tiltPlanRotation, degrees.", rich_help_panel="Geometry"),
    peak_counts: float = typer.Option(None, "--peak-counts", help="Peak height of the strongest ring, counts [default: 1000].", rich_help_panel="Image"),
    width: float = typer.Option(None, "--width", help="Ring profile σ along the radius, pixels [default: 1.5].", rich_help_panel="Image"),
    background: float = typer.Option(None, "--background", help="Background near the beam, counts [default: 20].", rich_help_panel="Image"),
    beamstop: float = typer.Option(None, "--beamstop", help="Beamstop shadow radius, pixels.", rich_help_panel="Image"),
    beamstop_arm: float = typer.Option(None, "--beamstop-arm", help="Beamstop arm direction, degrees from +x towards +y.", rich_help_panel="Image"),
    spotty: float = typer.Option(None, "--spotty", help="0 smooth rings ... 1 spotty rings.", rich_help_panel="Image"),
    hot_pixels: int = typer.Option(None, "--hot-pixels", help="Number of hot pixels.", rich_help_panel="Image"),
    no_noise: bool = typer.Option(None, "--no-noise", help="No Poisson noise.", rich_help_panel="Image"),
    seed: int = typer.Option(None, "--seed", help="Random seed [default: 0].", rich_help_panel="Image"),
    axis_ratio: float = typer.Option(None, "--axis-ratio", help="Elliptical ring distortion of a TEM projector lens: major/minor axis ratio [default: 1].", rich_help_panel="Image"),
    ellipse_angle: float = typer.Option(None, "--ellipse-angle", help="Major axis of that distortion, degrees from +x towards +y.", rich_help_panel="Image"),
    direct_beam: float = typer.Option(None, "--direct-beam", help="Peak counts of a Gaussian direct beam at the beam centre (a beamstop hides it).", rich_help_panel="Image"),
    direct_beam_sigma: float = typer.Option(None, "--direct-beam-sigma", help="σ of the direct beam, pixels [default: 2].", rich_help_panel="Image"),
    saturation: float = typer.Option(None, "--saturation", help="Counts at which pixels saturate.", rich_help_panel="Image"),
    ring_shift: float = typer.Option(None, "--ring-shift", help="σ of a random shift of each ring's centre, pixels: rings that are not concentric (a non-planar detector).", rich_help_panel="Image"),
    spots: str = typer.Option(None, "--spots", help="Instead of rings, a single-crystal zone-axis spot pattern: 'D1,D2,GAMMA', the d-spacings of two basis reflections (Å) and their angle (deg); --width is the spot σ.", rich_help_panel="Spot pattern"),
    spot_rotation: float = typer.Option(None, "--spot-rotation", help="Azimuth χ of the first basis reflection, degrees [default: 0].", rich_help_panel="Spot pattern"),
    grid: float = typer.Option(None, "--grid", help="Instead of rings, a hole grid of this pitch (mm) in front of the detector (needs --pixel-size and --shape or --detector).", rich_help_panel="Grid"),
    hole_diameter: float = typer.Option(None, "--hole-diameter", help="Hole diameter, pixels [default: pitch / 5].", rich_help_panel="Grid"),
    grid_angle: float = typer.Option(None, "--grid-angle", help="Rotation of the grid from +x towards +y, degrees [default: 0].", rich_help_panel="Grid"),
    dark_spots: bool = typer.Option(None, "--dark-spots", help="Dark dots on a bright field.", rich_help_panel="Grid"),
    illumination: float = typer.Option(None, "--illumination", help="Relative fall-off of the illumination across the image, 0 … 1 [default: 0].", rich_help_panel="Grid"),
    missing: float = typer.Option(None, "--missing", help="Fraction of holes missing [default: 0].", rich_help_panel="Grid"),
    spurious: int = typer.Option(None, "--spurious", help="Number of bright spots off the grid [default: 0].", rich_help_panel="Grid"),
    radial: float = typer.Option(None, "--radial", help="Radial distortion at the corners, pixels (> 0 pincushion, < 0 barrel).", rich_help_panel="Distortion"),
    random_field: float = typer.Option(None, "--random-field", help="Rms of a smooth random displacement field, pixels.", rich_help_panel="Distortion"),
    field_correlation: float = typer.Option(None, "--field-correlation", help="Correlation length of that field, pixels [default: a fifth of the image].", rich_help_panel="Distortion"),
    skew: float = typer.Option(None, "--skew", help="Shear of the pixel axes, degrees.", rich_help_panel="Distortion"),
    distortion: Path = typer.Option(None, "--distortion", help="Render through this distortion: pyFAI detector .h5 or Fit2D .spline.", rich_help_panel="Distortion"),
    truth: Path = typer.Option(None, "--truth", help="Truth PONI to write (default: OUTPUT-name.truth.poni).", rich_help_panel="Outputs"),
    report: Path = typer.Option(None, "--report", help="JSON report: config, truth geometry, files written with SHA-256 (default: OUTPUT-name.simulate.json).", rich_help_panel="Outputs"),
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Simulate a calibrant ring image, a single-crystal spot pattern or a hole-grid image,
    with a known geometry and detector distortion.

    Rings carry per-ring intensities (structure factors for a CIF), background, Poisson noise,
    optional beamstop with arm, module gaps, spotty rings and hot pixels. With --spots, the
    image is a zero-order Laue zone pattern with Friedel-symmetric intensities instead. With
    --grid, it is a hole grid (uneven illumination, missing holes, stray spots). Rings and
    grids can be seen through a synthetic distortion (--radial, --random-field, --skew) or
    a distortion file (--distortion).
    """
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    shape_t = parse_floats(shape, "--shape")
    cfg = load(SimulateConfig, config, dict(
        output=output, truth=truth, report=report, calibrant=calibrant, energy_kev=energy, **parse_wavelength(wavelength), kalpha2_ratio=kalpha2_ratio,
        voltage_kv=voltage, detector=detector, pixel_size_um=parse_floats(pixel_size, "--pixel-size"),
        shape=tuple(int(v) for v in shape_t) if shape_t else None,
        gaps=False if no_gaps else None, distance_mm=distance,
        center_px=parse_floats(center, "--center"), tilt_deg=tilt,
        tilt_plan_rotation_deg=tilt_plan_rotation, peak_counts=peak_counts, width_px=width,
        background=background, beamstop_radius_px=beamstop, beamstop_arm_deg=beamstop_arm,
        spotty=spotty, hot_pixels=hot_pixels, noise=False if no_noise else None, seed=seed,
        axis_ratio=axis_ratio, ellipse_angle_deg=ellipse_angle, direct_beam_counts=direct_beam,
        direct_beam_sigma_px=direct_beam_sigma, saturation=saturation, ring_shift_px=ring_shift,
        spot_lattice=parse_floats(spots, "--spots", 3), spot_rotation_deg=spot_rotation,
        grid_pitch_mm=grid, hole_diameter_px=hole_diameter, grid_angle_deg=grid_angle,
        dark_spots=dark_spots, illumination=illumination, missing_fraction=missing,
        spurious_spots=spurious, radial_px=radial, random_field_px=random_field,
        field_correlation_px=field_correlation, skew_deg=skew, distortion=distortion, overwrite=overwrite),
        show_config)
    res = simulate.run(cfg, progress=console.progress)
    written = ", ".join(str(p) for p in (res.image, res.truth, res.truth_distortion, res.report) if p)
    if res.geometry is None:
        console.result(f"wrote {written}")
        return
    g = res.geometry.getFit2D()
    console.result(f"wrote {written}: directDist {g['directDist']:.3f} mm, "
                   f"centre ({g['centerX']:.3f}, {g['centerY']:.3f}) px, tilt {g['tilt']:.3f}°, "
                   f"tiltPlanRotation {g['tiltPlanRotation']:.2f}°")
