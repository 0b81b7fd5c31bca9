"""Configuration of `geocal q-check`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geocal_cli.config.base import BeamConfig, Frame


class QCheckConfig(BeamConfig):
    """q consistency of a geometry: a powder image with its PONI and calibrant, or indexed
    DIALS experiments with their reflections. The radiation defaults to the PONI's."""

    image: Path | None = Field(None, description="powder image of a calibrant (powder mode)")
    frame: Frame | None = Field(None, description=(
        "a stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames"))
    poni: Path | None = Field(None, description="geometry checked (PONI, for the image as geocal reads it)")
    calibrant: str | None = Field(None, description="pyFAI calibrant name, d-spacing file or CIF (powder mode)")
    mask: Path | None = Field(None, description="mask image, non-zero = masked (powder mode)")
    expt: Path | None = Field(None, description="indexed DIALS experiment list, .expt (stills mode)")
    refl: Path | None = Field(None, description="its DIALS reflection table, .refl msgpack (stills mode)")
    positions: Literal["obs", "cal"] = Field(
        "obs", description="reflection positions checked: observed (xyzobs.mm.value) or DIALS' predicted (xyzcal.mm)")
    fix_units: bool = Field(False, description="read a DIALS wavelength written in metres as Å")
    max_median_microstrain: float = Field(
        500.0, gt=0, description="powder: fail (exit 6) when the median geometric |Δd/d| exceeds this, µε")
    max_mean_dq: float | None = Field(
        None, gt=0, description="stills: fail (exit 6) when the mean |Δq| exceeds this, Å⁻¹ (|s| = 1/λ)")
    fail_on_systematic: bool = Field(
        True, description="fail (exit 6) when the residuals show a systematic geometry error")
    report: Path | None = Field(None, description="JSON report (default: <input stem>.qcheck.json)")
    plot: Path | None = Field(None, description="PNG: Δq/q heatmap on the detector, Δq against χ and radius")

    @model_validator(mode="after")
    def _mode(self):
        powder = [k for k in ("image", "poni", "calibrant") if getattr(self, k) is not None]
        stills = [k for k in ("expt", "refl") if getattr(self, k) is not None]
        if powder and stills:
            raise ValueError(f"give either a powder image (image, poni, calibrant) or DIALS files "
                             f"(expt, refl), not both (got {', '.join(powder + stills)})")
        if stills and len(stills) < 2:
            raise ValueError("stills mode needs both expt and refl")
        if not stills and len(powder) < 3:
            missing = [k for k in ("image", "poni", "calibrant") if k not in powder]
            raise ValueError(f"powder mode needs image, poni and calibrant (missing: {', '.join(missing)}); "
                             "or give expt and refl for DIALS stills")
        return self

    @property
    def mode(self) -> str:
        """'powder' or 'stills'."""
        return "stills" if self.expt is not None else "powder"
