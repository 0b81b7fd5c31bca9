"""PONI files, read and written with pyFAI's own `PoniFile` (version 2.1 on output)."""

from __future__ import annotations

from pathlib import Path

from geocal_cli.errors import InputFileError
from geocal_cli.files import MAX_TEXT_BYTES, checked_file
from geocal_cli.io.outputs import SIGNATURE, atomic_path


def read_poni(path: Path):
    """Read a PONI file (versions 1, 2, 2.1) into a pyFAI `Geometry`.

    Parameters
    ----------
    path : Path

    Returns
    -------
    pyFAI.geometry.Geometry
        With the file's detector (a bare pixel-size detector for version 1 files).

    Raises
    ------
    InputFileError
        Missing file, unparsable values, or no Distance/Poni1/Poni2.
    """
    from pyFAI.geometry import Geometry
    from pyFAI.io.ponifile import PoniFile

    path = Path(path)
    checked_file(path, "PONI file", MAX_TEXT_BYTES)
    try:
        pf = PoniFile(str(path))
    except Exception as exc:  # pyFAI raises ValueError, KeyError, JSON errors …
        raise InputFileError(f"{path}: malformed PONI file ({exc})") from None
    missing = [k for k, v in (("Distance", pf.dist), ("Poni1", pf.poni1), ("Poni2", pf.poni2))
               if v is None]
    if missing:
        raise InputFileError(f"{path}: malformed PONI file, missing {', '.join(missing)}")
    try:
        geometry = Geometry(dist=pf.dist, poni1=pf.poni1, poni2=pf.poni2, rot1=pf.rot1 or 0.0,
                            rot2=pf.rot2 or 0.0, rot3=pf.rot3 or 0.0, detector=pf.detector,
                            wavelength=pf.wavelength)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise InputFileError(f"{path}: malformed PONI file ({str(exc)[:200]})") from None
    check_geometry(geometry, path)
    return geometry


#: Physically meaningful ranges of a geometry's values, SI units (README, "Bounded work").
GEOMETRY_LIMITS = {"dist": (1e-6, 100.0), "pixel": (1e-7, 1e-2), "wavelength": (1e-13, 1e-7),
                   "poni": 100.0, "tilt_deg": 89.0}


def check_geometry(geometry, where) -> None:
    """Refuse a geometry no detector can have: non-finite values, a distance ≤ 1 µm or
    > 100 m, pixels outside 0.1 µm … 10 mm, a PONI more than 100 m from the detector origin,
    a wavelength outside 10⁻¹³ … 10⁻⁷ m, a tilt of 89° or more.

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
    where : Path or str
        The file it came from, for the message.

    Raises
    ------
    InputFileError
        Naming the value and the rule.
    """
    import math

    lim = GEOMETRY_LIMITS
    det = geometry.detector
    values = {"Distance": geometry.dist, "Poni1": geometry.poni1, "Poni2": geometry.poni2,
              "Rot1": geometry.rot1, "Rot2": geometry.rot2, "Rot3": geometry.rot3,
              "pixel1": det.pixel1, "pixel2": det.pixel2}
    if geometry.wavelength is not None:
        values["Wavelength"] = geometry.wavelength

    def bad(name, rule):
        return InputFileError(f"{where}: {name} = {values[name]!r:.40} {rule}")

    for name, v in values.items():
        if v is None or not math.isfinite(float(v)):
            raise InputFileError(f"{where}: {name} = {v!r:.40} is not a finite number")
    if not lim["dist"][0] < geometry.dist <= lim["dist"][1]:
        raise bad("Distance", "m: a sample–detector distance is between 1 µm and 100 m")
    for name in ("pixel1", "pixel2"):
        if not lim["pixel"][0] <= values[name] <= lim["pixel"][1]:
            raise bad(name, "m: a pixel is between 0.1 µm and 10 mm")
    for name in ("Poni1", "Poni2"):
        if abs(values[name]) > lim["poni"]:
            raise bad(name, "m: the PONI lies within 100 m of the detector origin")
    if "Wavelength" in values and not lim["wavelength"][0] <= values["Wavelength"] <= lim["wavelength"][1]:
        raise bad("Wavelength", "m: X-ray and electron wavelengths lie between 10⁻¹³ and 10⁻⁷ m")
    tilt = math.degrees(math.acos(max(-1.0, min(1.0, math.cos(geometry.rot1) * math.cos(geometry.rot2)))))
    if tilt >= lim["tilt_deg"]:
        raise InputFileError(f"{where}: Rot1 = {geometry.rot1:.4g}, Rot2 = {geometry.rot2:.4g} rad tilt "
                             f"the detector by {tilt:.1f}°: a detector that sees the sample is "
                             f"tilted by less than {lim['tilt_deg']:.0f}°")


def write_poni(path: Path, geometry) -> None:
    """Write a geometry as a PONI 2.1 file (detector and orientation included), atomically."""
    from pyFAI.io.ponifile import PoniFile

    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"# {SIGNATURE}\n")
            PoniFile(geometry).write(fh)
