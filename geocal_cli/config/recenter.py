"""Configuration of `geocal recenter`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geocal_cli.config.base import BeamConfig, Frame


class RecenterConfig(BeamConfig):
    """A new beam centre for an existing geometry; the radiation defaults to the PONI's."""

    image: Path = Field(json_schema_extra={"argument": True}, description="image showing rings, a single-crystal spot pattern or the direct beam")
    frame: Frame | None = Field(None, description=(
        "a stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames"))
    poni: Path = Field(description="reference geometry (PONI) whose distance, tilts and wavelength are kept")
    method: Literal["auto", "ring", "friedel", "beam"] = Field(
        "auto", description="what to centre on: rings, Friedel pairs of spots, the direct beam, or auto (tried in that order)")
    calibrant: str | None = Field(None, description="pyFAI calibrant name, d-spacing file or CIF (ring method)")
    ring: tuple[int, ...] | None = Field(None, description="use only these calibrant rings (1-based)")
    mask: Path | None = Field(None, description="mask image, non-zero = masked")
    max_shift_px: float = Field(100.0, gt=0, description="largest beam move searched, pixels")
    ellipticity: Literal["auto", "fit", "none"] = Field(
        "auto", description="elliptical ring distortion (TEM projector lens): fitted when significant, always, or never")
    saturation: float | None = Field(None, gt=0, description="counts at which pixels saturate (beam method)")
    output: Path | None = Field(None, description="PONI written (default: <image stem>.recentered.poni)")
    report: Path | None = Field(None, description="JSON report (default: <image stem>.recenter.json)")
    plot: Path | None = Field(None, description="PNG with old and new centre and the fitted ring points or spot pairs")

    @model_validator(mode="after")
    def _rings(self):
        if self.method == "ring" and self.calibrant is None:
            raise ValueError("method ring needs a calibrant (--calibrant) for the rings' 2θ")
        if self.ring is not None:
            if self.calibrant is None:
                raise ValueError("ring selects calibrant rings: give --calibrant too")
            if not all(k >= 1 for k in self.ring):
                raise ValueError(f"ring numbers start at 1, got {list(self.ring)}")
        return self
