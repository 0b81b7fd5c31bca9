"""Configuration of `geocal grid-distortion`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from geocal_cli.config.base import Frame, GeocalModel, PixelUm


class GridDistortionConfig(GeocalModel):
    """Detector distortion from a hole-grid image, or a distortion file converted."""

    image: Path = Field(json_schema_extra={"argument": True}, description="hole-grid image; or a Fit2D .spline / pyFAI detector file to convert")
    frame: Frame | None = Field(None, description=(
        "a stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames"))
    pitch_mm: float | None = Field(None, gt=0, le=1000, description="hole spacing of the grid, mm (needed for an image)")
    pixel_size_um: tuple[PixelUm, PixelUm] | None = Field(
        None, description="nominal pixel size (rows, columns), µm; default: pitch / measured hole spacing")
    spot_diameter_px: float | None = Field(None, gt=0, description="hole diameter in the image, pixels (default: from the image)")
    dark_spots: bool = Field(False, description="dark dots on a bright field instead of bright holes")
    mask: Path | None = Field(None, description="mask image, non-zero = masked")
    output: Path | None = Field(None, description="pyFAI detector file (NeXus HDF5) written (default: <image stem>.detector.h5)")
    spline: Path | None = Field(None, description="Fit2D spline of the same field")
    corrected: Path | None = Field(None, description="the grid image corrected with the field (pyFAI Distortion)")
    report: Path | None = Field(None, description="JSON report (default: <image stem>.grid.json)")
    plot: Path | None = Field(None, description="PNG: dx and dy maps, residual vectors on the corrected image")

    @model_validator(mode="after")
    def _inputs(self):
        if self.pixel_size_um is not None and not all(p > 0 for p in self.pixel_size_um):
            raise ValueError(f"pixel_size_um must be positive, got {list(self.pixel_size_um)}")
        return self
