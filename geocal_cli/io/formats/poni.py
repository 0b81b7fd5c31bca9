"""pyFAI PONI files (any version in, 2.1 out)."""

from __future__ import annotations

from pathlib import Path

from geocal_cli.core.geometry.frame import PARAM_NAMES
from geocal_cli.io.formats import Loaded, Options
from geocal_cli.io.poni import read_poni, write_poni


def values_of(geometry) -> dict:
    """PONI parameters (m, rad), wavelength (m), detector name and orientation."""
    out = {n: float(getattr(geometry, n)) for n in PARAM_NAMES}
    out["wavelength"] = geometry.wavelength
    out["detector"] = type(geometry.detector).__name__
    out["orientation"] = int(geometry.detector.orientation or 3)
    return out


def read(path: Path, options: Options) -> Loaded:
    """A PONI file; the shape comes from its detector, else from `options`."""
    geometry = read_poni(path)
    shape = geometry.detector.max_shape or options.shape
    if shape is not None and geometry.detector.max_shape is None:
        geometry.detector.max_shape = tuple(shape)
    return Loaded(geometry, tuple(shape) if shape is not None else None, values_of(geometry))


def write(path: Path, geometry, shape, options: Options) -> dict:
    """PONI 2.1 with detector and orientation."""
    write_poni(path, geometry)
    return values_of(geometry)
