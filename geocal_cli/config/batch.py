"""Configuration of `geocal batch`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from geocal_cli.config.base import GeocalModel

Subcommand = Literal["calib-ring", "recenter", "q-check", "grid-distortion", "convert-poni"]


class BatchConfig(GeocalModel):
    """One per-image subcommand over many inputs."""

    subcommand: Subcommand = Field(json_schema_extra={"argument": True}, description="the subcommand run on every input")
    inputs: list[str] = Field(min_length=1, json_schema_extra={"argument": "INPUT..."}, description=(
        "files, folders (every file in them), glob patterns, or @FILE (a text file of paths, "
        "one per line)"))
    out_dir: Path = Field(description="folder of every item's outputs, manifest.jsonl and batch.json")
    jobs: int | None = Field(None, ge=1, le=1024, description="worker processes (default: the cores)")
    force: bool = Field(False, description="redo items already done with the same input and config")
    dry_run: bool = Field(False, description="say what would run and what would be skipped; write nothing")
    wait_s: float = Field(0.0, ge=0, le=7 * 86400, description="seconds to wait for another run's lock")
    plots: bool = Field(False, description="write each item's PNG beside its report")
    scheduler: str | None = Field(None, min_length=1, description=(
        "address of a dask.distributed scheduler (tcp://host:8786) to run the items on"))
    scheduler_file: Path | None = Field(None, description="a dask scheduler file (dask scheduler --scheduler-file)")
    joint: str | None = Field(None, min_length=1, description=(
        "after a calib-ring batch, fit one motion model over all the images: fixed, "
        "calibrants, arm-2theta, translation, energy, or a pyFAI goniometer file of expressions"))
    positions: str | None = Field(None, min_length=1, description=(
        "each image's position for joint: a CSV (name,value) or YAML file, header:KEY, or "
        "sidecar:KEY (KEY = value in a text file beside the image); calibrant names for "
        "the calibrants model"))
    joint_free: list[str] | None = Field(None, min_length=1, description=(
        "the joint model's parameters to fit (default: the model's own choice)"))
    options: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"flag": None}, description=(
        "the subcommand's config keys, as in its own --config file (flags after the "
        "subcommand override them)"))

    @model_validator(mode="after")
    def _one_scheduler(self):
        if self.scheduler and self.scheduler_file:
            raise ValueError("give scheduler or scheduler_file, not both")
        return self

    @model_validator(mode="after")
    def _joint_needs(self):
        if self.joint is None:
            if self.positions or self.joint_free:
                raise ValueError("positions and joint_free belong to a joint calibration: give joint")
            return self
        if self.subcommand != "calib-ring":
            raise ValueError(f"joint calibrates a calib-ring batch, not {self.subcommand}")
        if self.positions is None and self.joint != "fixed":
            raise ValueError(f"the joint model {self.joint} needs each image's position: give positions")
        return self
