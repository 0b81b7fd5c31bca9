"""Geometry files of other programs: detection, reading into a pyFAI geometry, writing.

Each format module has `read(path, options) -> Loaded` and `write(path, geometry, shape,
options) -> dict` (the values written, for the report). Every reader goes through the
program's own pixel → laboratory map (`core.geometry.conventions`) to a `DetectorFrame`, so what it
returns is exact, whatever detector orientation it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocal_cli.errors import InputFileError
from geocal_cli.files import MAX_TEXT_BYTES, checked_file, parse_structured, quote, read_text

#: Format names, what they are, and their default file suffix.
FORMATS = {
    "poni": ("pyFAI PONI (read v1, v2, v2.1; written as v2.1)", ".poni"),
    "dioptas": ("PONI for the image as Dioptas shows it (flipped up-down)", ".dioptas.poni"),
    "fit2d": ("Fit2D terms as YAML or JSON (directDist, centerX/Y, tilt, tiltPlanRotation)", ".fit2d.yaml"),
    "imaged11": ("ImageD11 .par parameter file", ".par"),
    "cdiutils": ("cdiutils/xrayutilities det_calib_params as YAML", ".cdiutils.yaml"),
    "dials": ("DIALS/dxtbx experiment list (.expt JSON)", ".expt"),
    "gsas2": ("GSAS-II image controls (.imctrl)", ".imctrl"),
}


@dataclass
class Options:
    """What readers and writers may need besides the file.

    Attributes
    ----------
    shape : (rows, cols) or None
        Image shape when the file does not hold it.
    panel : int or None
        DIALS panel of a multi-panel detector.
    fix_units : bool
        Repair a DIALS wavelength written in metres instead of Å.
    pixel_size_um : (rows, cols) or None
        Pixel size when the file does not hold it (µm).
    """

    shape: tuple[int, int] | None = None
    pixel_size_um: tuple[float, float] | None = None
    panel: int | None = None
    fix_units: bool = False


@dataclass
class Loaded:
    """A geometry read from a file.

    Attributes
    ----------
    geometry : pyFAI.geometry.Geometry
        Pixel indices of the image as fabio reads it; detector with its shape when known.
    shape : (rows, cols) or None
    values : dict
        The file's own parameters, as read (for the report).
    notes : list of str
        What the reader noticed: fixed units, ignored keys, lost information.
    """

    geometry: object
    shape: tuple[int, int] | None
    values: dict
    notes: list[str] = field(default_factory=list)


def module(name: str):
    """The module handling a format name.

    Raises
    ------
    ValueError
        Unknown format.
    """
    import importlib

    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}: use one of {', '.join(FORMATS)}")
    return importlib.import_module(f"geocal_cli.io.formats.{name}")


def read_geometry(path: Path, fmt: str, options: Options) -> Loaded:
    """Read a geometry file of format `fmt`; every malformed input is an `InputFileError`.

    Raises
    ------
    InputFileError
        Missing, unreadable or malformed file (the readers' own checks, and any type, key,
        value, recursion or arithmetic error a hostile file provokes in them).
    ConfigError
        The file disagrees with the options (shape), or a format needs an option it lacks.
    """
    from geocal_cli.errors import GeocalError

    try:
        return module(fmt).read(path, options)
    except GeocalError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            OverflowError, ZeroDivisionError, MemoryError, np.linalg.LinAlgError) as exc:
        raise InputFileError(f"{path}: not a readable {fmt} file ({exc.__class__.__name__}: "
                             f"{str(exc)[:160]})") from None


def detect(path: Path) -> str:
    """The format of a geometry file, from its suffix and content.

    Raises
    ------
    InputFileError
        Missing file, or no format recognised (the message lists `--from` choices).
    """
    path = Path(path)
    checked_file(path, "geometry file", MAX_TEXT_BYTES)
    suffix = path.suffix.lower()
    by_suffix = {".poni": "poni", ".par": "imaged11", ".expt": "dials", ".imctrl": "gsas2"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    data = _mapping(path)
    if isinstance(data, dict):
        if "detector" in data and "beam" in data:
            return "dials"
        if "directDist" in data:
            return "fit2d"
        if "det_calib_params" in data or "cch1" in data:
            return "cdiutils"
        if "Distance" in data and "Poni1" in data:
            return "poni"
        if "distance" in data and "center" in data and "tilt" in data:
            return "gsas2"
        if "y_center" in data and "z_center" in data:
            return "imaged11"
    raise InputFileError(f"{path}: cannot tell its geometry format; give --from "
                         f"({', '.join(FORMATS)})")


def _mapping(path: Path):
    """The file as a JSON or YAML mapping, or `key:value` / `key value` lines, or None."""
    text = read_text(path, "geometry file")
    for json_only in (True, False):
        try:
            data = parse_structured(text, path, "geometry file", json_only=json_only)
        except InputFileError:
            continue
        if isinstance(data, dict):
            return data
    for sep in (":", None):
        try:
            return key_value_lines(path, "geometry", sep)
        except InputFileError:
            pass
    return None


def key_value_lines(path: Path, what: str, sep: str | None = None) -> dict[str, str]:
    """`key value` lines (sep None) or `key<sep>value` lines, '#' comments and blank lines
    skipped.

    Raises
    ------
    InputFileError
        Missing file, or a line that is not one key and one value.
    """
    path = Path(path)
    data = {}
    for line in read_text(path, f"{what} file").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split(sep, 1) if sep else text.split()
        if len(parts) != 2:
            raise InputFileError(f"{path}: line {text!r} is not 'key{sep or ' '}value' as in {what} files")
        data[parts[0].strip()] = parts[1].strip()
    return data


def load_mapping(path: Path, what: str) -> dict:
    """A JSON or YAML file that must hold a mapping.

    Raises
    ------
    InputFileError
        Missing, unreadable, or not a mapping.
    """
    path = Path(path)
    data = parse_structured(read_text(path, f"{what} file"), path, f"{what} file",
                            json_only=path.suffix.lower() == ".json")
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: not a {what} file (expected a mapping of keys to values)")
    return data


def number(data: dict, key: str, path: Path, what: str, default=None) -> float:
    """A finite number from a mapping.

    Raises
    ------
    InputFileError
        Missing key (without a default) or a value that is not a finite number.
    """
    if key not in data or data[key] is None:
        if default is not None:
            return default
        raise InputFileError(f"{path}: not a complete {what} file: missing key '{key}'")
    try:
        value = float(data[key])
    except (TypeError, ValueError):
        raise InputFileError(f"{path}: {key} = {quote(data[key])} is not a number") from None
    if not np.isfinite(value):
        raise InputFileError(f"{path}: {key} = {quote(data[key])} is not a finite number")
    return value


def numbers(data: dict, key: str, path: Path, what: str, count: int = 2) -> tuple:
    """A sequence of `count` finite numbers from a mapping (or its 'a, b' string form).

    Raises
    ------
    InputFileError
        Missing key, wrong length or non-numeric entries.
    """
    if key not in data:
        raise InputFileError(f"{path}: not a complete {what} file: missing key '{key}'")
    raw = data[key]
    if isinstance(raw, str):
        raw = [v for v in raw.strip("[]() ").replace(",", " ").split()]
    try:
        values = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        raise InputFileError(f"{path}: {key} = {quote(data[key])} is not a list of numbers") from None
    if len(values) != count or not all(np.isfinite(values)):
        raise InputFileError(f"{path}: {key} = {quote(data[key])}: expected {count} finite numbers")
    return values


def geometry_from_frame(frame, shape, wavelength, path: Path):
    """A pyFAI geometry for a frame read from `path`: pixel sizes from the frame, orientation 3
    or, for a mirrored frame, 2.

    Raises
    ------
    InputFileError
        The frame is not a flat detector (non-orthogonal axes, sample behind it), or a mirrored
        frame without a known image shape.
    """
    from pyFAI.detectors import Detector

    from geocal_cli.core.geometry.flips import reoriented
    from geocal_cli.core.geometry.frame import make_geometry

    # Orientation 3 at zero rotation has e1 × e2 along the beam, away from the sample.
    if shape is None and frame.origin @ np.cross(frame.e1, frame.e2) < 0:
        raise InputFileError(f"{path}: this geometry indexes the image mirrored (detector "
                             "orientation 2), which needs the image shape: give --shape ROWS,COLS or --image")
    p1, p2 = float(np.linalg.norm(frame.e1)), float(np.linalg.norm(frame.e2))
    base = make_geometry(Detector(pixel1=p1, pixel2=p2, max_shape=shape, orientation=3), 1.0, 0.0, 0.0,
                         wavelength=wavelength)
    from geocal_cli.io.poni import check_geometry

    try:
        geometry = reoriented(base, frame, shape, transposed=False)
    except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError) as exc:
        raise InputFileError(f"{path}: {str(exc)[:200]}") from None
    check_geometry(geometry, path)
    return geometry
