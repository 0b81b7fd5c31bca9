"""Configuration of `geocal convert-poni`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geocal_cli.config.base import BeamConfig, PixelUm, Side, Frame

Format = Literal["poni", "dioptas", "fit2d", "imaged11", "cdiutils", "dials", "gsas2"]


class ConvertPoniConfig(BeamConfig):
    """One geometry from one program's convention to another's; the radiation, when given,
    replaces the file's wavelength."""

    input: Path = Field(json_schema_extra={"argument": True}, description="geometry file to convert")
    to: Format = Field(description="format to write")
    source_format: Format | None = Field(None, alias="from", description="format of the input (default: detected from the file)")
    output: Path | None = Field(None, description="file written (default: <input stem> + the format's suffix)")
    image: Path | None = Field(None, description="image the geometry belongs to: its shape, and with a calibrant the flip check")
    frame: Frame | None = Field(None, description=(
        "a stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames"))
    calibrant: str | None = Field(None, description="calibrant whose rings rate the flips of the image (needs image)")
    pixel_size_um: tuple[PixelUm, PixelUm] | None = Field(
        None, description="pixel size (rows, columns), µm, for a file that does not state it (default: from the image's header)")
    shape: tuple[Side, Side] | None = Field(None, description="image shape (rows, cols) when neither the file nor an image gives it")
    flip: tuple[Literal["ud", "lr", "transpose"], ...] = Field((), description="flips of the image array to convert for, applied in order")
    orientation: Literal[1, 2, 3, 4] | None = Field(None, description="pyFAI detector orientation of the result (default: the input's, or its mirror after a flip)")
    panel: int | None = Field(None, ge=0, description="panel of a multi-panel DIALS detector")
    fix_units: bool = Field(False, description="read a DIALS wavelength written in metres as metres")
    report: Path | None = Field(None, description="JSON report (default: <output name>.convert.json)")

    @model_validator(mode="after")
    def _rules(self):
        if self.calibrant is not None and self.image is None:
            raise ValueError("calibrant rates the flips of an image: give --image too")
        if self.shape is not None and min(self.shape) < 1:
            raise ValueError(f"shape {list(self.shape)}: rows and columns must be positive")
        return self
