"""Configuration of `geocal calib-ring`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geocal_cli.config.base import DetectorName, DoubletBeamConfig, Frame, PixelUm

Param = Literal["dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"]


class CalibRingConfig(DoubletBeamConfig):
    """Blind calibration of one calibrant ring image."""

    image: Path = Field(json_schema_extra={"argument": True}, description="calibrant image (anything fabio reads)")
    frame: Frame | None = Field(None, description=(
        "a stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames"))
    calibrant: str = Field(description="pyFAI calibrant name, d-spacing file (Å), CIF, or 'auto' "
                                       "(identified from the rings among pyFAI's calibrants)")
    detector: DetectorName | None = Field(None, description="pyFAI detector name (pixel size, mask)")
    pixel_size_um: tuple[PixelUm, PixelUm] | None = Field(
        None, description="pixel size (rows, columns) in µm when no detector is named")
    mask: Path | None = Field(None, description="mask image, non-zero = masked")
    guess: Path | None = Field(None, description="starting geometry (PONI); skips the blind search")
    fix: tuple[Param, ...] = Field(("rot3", "wavelength"), description="parameters kept fixed")
    max_rings: int | None = Field(None, ge=2, description="use at most this many calibrant rings")
    min_rings: int = Field(2, ge=1, le=100, description=(
        "calibrant rings the fit must rest on, each seen in the image's azimuthal profile; "
        "1 accepts a single ring (its assignment, so the distance, then rests on the start)"))
    output: Path | None = Field(None, description="PONI file written (default: <image stem>.poni)")
    report: Path | None = Field(None, description="JSON report (default: <image stem>.calib.json)")
    plot: Path | None = Field(None, description="PNG with rings, control points and residuals")
    electron_model: Literal["lens", "tilt"] = Field("lens", description=(
        "electrons: 'lens' fits camera length, projector-lens ellipticity and centre on an "
        "untilted detector (the PONI holds the tilted geometry nearest its ellipses, the "
        "ellipse file the model); 'tilt' fits a tilted detector as for X-rays"))
    ellipse: Path | None = Field(None, description=(
        "electrons, lens model: ellipse file for pyxem/py4DSTEM (default: beside the PONI, <PONI stem>.ellipse.json)"))

    @model_validator(mode="after")
    def _pixels(self):
        if self.pixel_size_um is not None and not all(p > 0 for p in self.pixel_size_um):
            raise ValueError(f"pixel_size_um must be positive, got {list(self.pixel_size_um)}")
        if self.detector is not None and self.pixel_size_um is not None:
            raise ValueError("give --detector or --pixel-size, not both")
        if set(self.fix) >= set(Param.__args__):
            raise ValueError("fix leaves nothing to refine; to check a geometry without refining "
                             "it, use geocal q-check")
        return self
