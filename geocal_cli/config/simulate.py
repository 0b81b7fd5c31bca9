"""Configuration of `geocal simulate`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from geocal_cli.config.base import DoubletBeamConfig, DetectorName, PixelUm, Side


class SimulateConfig(DoubletBeamConfig):
    """A calibrant ring image, or a zone-axis spot pattern, with a known geometry."""

    output: Path = Field(json_schema_extra={"argument": True}, description="image written (.edf, .tif, .cbf or .npy)")
    truth: Path | None = Field(None, description="truth PONI (default: <output name>.truth.poni)")
    report: Path | None = Field(None, description="JSON report: config, truth and the files written with their SHA-256 (default: <output name>.simulate.json)")
    calibrant: str = Field("LaB6", description="pyFAI calibrant name, d-spacing file or CIF")
    detector: DetectorName | None = Field("Pilatus1M", description="pyFAI detector name")
    pixel_size_um: tuple[PixelUm, PixelUm] | None = Field(None, description="pixel size (rows, columns), µm")
    shape: tuple[Side, Side] | None = Field(None, description="image shape (rows, columns) for --pixel-size")
    distance_mm: float = Field(200.0, gt=0, le=100_000, description="sample–detector distance along the beam (Fit2D directDist), mm")
    center_px: tuple[float, float] | None = Field(
        None, description="beam centre (x = column, y = row), pixel centres at i + 0.5; default: image centre")

    @field_validator("center_px")
    @classmethod
    def _center(cls, v):
        if v is not None and max(abs(c) for c in v) > 1e6:
            raise ValueError("the beam centre must lie within 10⁶ pixels of the image")
        return v
    tilt_deg: float = Field(0.0, ge=0, lt=60, description="detector tilt (Fit2D tilt), degrees")
    tilt_plan_rotation_deg: float = Field(0.0, description="Fit2D tiltPlanRotation, degrees")
    peak_counts: float = Field(1000.0, gt=0, le=1e9, description="peak height of the strongest ring, counts")
    width_px: float = Field(1.5, gt=0, le=1000, description="ring profile σ along the radius, pixels")
    background: float = Field(20.0, ge=0, le=1e9, description="background near the beam, counts")
    beamstop_radius_px: float = Field(0.0, ge=0, le=1e5, description="beamstop shadow radius, pixels")
    beamstop_arm_deg: float | None = Field(None, description="beamstop arm direction, degrees from +x towards +y")
    spotty: float = Field(0.0, ge=0, le=1, description="0 smooth rings … 1 spotty rings")
    hot_pixels: int = Field(0, ge=0, le=1_000_000, description="number of hot pixels")
    noise: bool = Field(True, json_schema_extra={"flag": "--no-noise"}, description="Poisson noise")
    gaps: bool = Field(True, json_schema_extra={"flag": "--no-gaps"}, description="module gaps of the detector set to -1")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed")
    axis_ratio: float = Field(1.0, ge=1, lt=1.5, description="elliptical ring distortion (projector lens): major/minor axis ratio")
    ellipse_angle_deg: float = Field(0.0, description="major axis of that distortion, degrees from +x towards +y")
    direct_beam_counts: float = Field(0.0, ge=0, le=1e12, description="peak of a Gaussian direct beam at the beam centre (0: none)")
    direct_beam_sigma_px: float = Field(2.0, gt=0, le=1e4, description="σ of the direct beam, pixels")
    saturation: float | None = Field(None, gt=0, le=1e12, description="counts at which pixels saturate")
    ring_shift_px: float = Field(0.0, ge=0, le=100, description="σ of a random shift of each ring's centre, pixels (rings not concentric, as on a non-planar detector)")
    spot_lattice: tuple[float, float, float] | None = Field(
        None, json_schema_extra={"flag": "--spots"}, description="instead of rings, a single-crystal zone-axis spot pattern: d-spacings "
                          "of the two basis reflections (Å) and the angle between them (deg)")
    spot_rotation_deg: float = Field(0.0, description="azimuth χ of the first basis reflection, degrees")
    grid_pitch_mm: float | None = Field(
        None, gt=0, le=1000, description="instead of rings, a hole grid of this pitch (mm) in front of the detector")
    hole_diameter_px: float | None = Field(None, gt=0, le=1e4, description="grid hole diameter, pixels (default: a fifth of the pitch)")
    grid_angle_deg: float = Field(0.0, description="rotation of the grid from +x towards +y, degrees")
    dark_spots: bool = Field(False, description="dark dots on a bright field instead of bright holes")
    illumination: float = Field(0.0, ge=0, lt=1, description="relative fall-off of the illumination across the grid image")
    missing_fraction: float = Field(0.0, ge=0, lt=0.5, description="fraction of grid holes missing")
    spurious_spots: int = Field(0, ge=0, le=100_000, description="bright spots off the grid")
    radial_px: float = Field(0.0, ge=-1000, le=1000, description="radial distortion at the corners, pixels (> 0 pincushion, < 0 barrel)")
    random_field_px: float = Field(0.0, ge=0, le=1000, description="rms of a smooth random displacement field, pixels")
    field_correlation_px: float | None = Field(None, gt=0, le=1e6, description="correlation length of that field, pixels (default: a fifth of the image)")
    skew_deg: float = Field(0.0, gt=-45, lt=45, description="shear of the pixel axes, degrees (x moves by tan(skew) · y)")
    distortion: Path | None = Field(None, description="render through this distortion (pyFAI detector .h5 or Fit2D .spline)")

    @model_validator(mode="after")
    def _detector(self):
        if self.pixel_size_um is not None:
            if self.shape is None:
                raise ValueError("with pixel_size_um, give the image shape (--shape ROWS,COLS)")
            if not all(p > 0 for p in self.pixel_size_um) or not all(s > 1 for s in self.shape):
                raise ValueError("pixel_size_um and shape must be positive")
        elif self.detector is None:
            raise ValueError("give a detector name or a pixel size and shape")
        if self.spot_lattice is not None:
            d1, d2, gamma = self.spot_lattice
            if not (0 < d1 <= 1000 and 0 < d2 <= 1000) or not 0 < gamma < 180:
                raise ValueError("spot_lattice: d-spacings must be in (0, 1000] Å and the angle in (0, 180)")
        if self.grid_pitch_mm is None and self.energy_kev is None and self.wavelength_a is None \
                and self.voltage_kv is None:
            raise ValueError("give energy_kev, wavelength_a or voltage_kv")
        if self.distortion is not None and self.synthetic_field:
            raise ValueError("give a distortion file or a synthetic field (radial, random, skew), not both")
        if self.grid_pitch_mm is not None and self.spot_lattice is not None:
            raise ValueError("give a grid pitch or a spot lattice, not both")
        if self.spot_lattice is not None and (self.distortion is not None or self.synthetic_field):
            raise ValueError("spot patterns are rendered on an undistorted detector only")
        return self

    @property
    def synthetic_field(self) -> bool:
        """A synthetic distortion is asked for."""
        return bool(self.radial_px or self.random_field_px or self.skew_deg)
