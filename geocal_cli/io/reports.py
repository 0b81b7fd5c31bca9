"""JSON reports: a common header (schema, version, provenance, config, inputs with SHA-256) and
atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from geocal_cli import __version__
from geocal_cli.io.outputs import sha256_of, write_text


def report_header(schema: str, config: dict, inputs: list[Path]) -> dict:
    """Start of every report.

    Parameters
    ----------
    schema : str
        Report name, e.g. "geocal.calib-ring".
    config : dict
        The effective configuration.
    inputs : list of Path
        Input files; each is listed with its size and SHA-256.
    """
    return {
        "schema": {"name": schema, "version": 1},
        "geocal_version": __version__,
        "provenance": provenance(),
        "config": config,
        "inputs": [{"path": str(p), "bytes": Path(p).stat().st_size, "sha256": sha256_of(p)}
                   for p in inputs if p is not None],
    }


#: The command line as geocal's entry point received it (None: take the process's argv).
command_line: list[str] | None = None
#: Packages whose versions decide a report's numbers.
PACKAGES = ("pyFAI", "fabio", "numpy", "scipy")


def provenance() -> dict:
    """When, by which command line and with which software a report was made.

    Returns
    -------
    dict
        created_utc (ISO 8601), command_line (shell-quoted: `command_line`, else the
        process's argv) and versions of geocal, Python and `PACKAGES`.
    """
    import platform
    import shlex
    import sys
    from datetime import datetime, timezone
    from importlib.metadata import PackageNotFoundError, version

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    argv = command_line or [Path(sys.argv[0]).name, *sys.argv[1:]]
    return {"created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command_line": shlex.join(argv),
            "versions": {"geocal": __version__, "python": platform.python_version(),
                         **{p: installed(p) for p in PACKAGES}}}


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        obj = str(obj)
    if isinstance(obj, str) and not obj.isascii():
        # File names that are not UTF-8 reach Python as surrogate escapes: write their bytes
        # as \xNN rather than fail after the other outputs.
        return obj.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return obj


def to_json(report: dict) -> str:
    """Serialise a report (numpy values converted, non-finite numbers as null)."""
    return json.dumps(_plain(report), indent=2, ensure_ascii=False) + "\n"


def write_report(path: Path, report: dict) -> None:
    """Write a report as JSON through the run's outputs; the files the run has staged so far
    (all but the report itself) are listed under "outputs" with their SHA-256."""
    from geocal_cli.io.outputs import active

    run = active()
    if run is not None:
        report["outputs"] = run.describe()
    write_text(Path(path), to_json(report))
