"""PONI files, read and written with pyFAI's own `PoniFile` (version 2.1 on output)."""

from __future__ import annotations

from pathlib import Path

from geocal_cli.errors import InputFileError
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
    if not path.is_file():
        raise InputFileError(f"PONI file not found: {path}")
    try:
        pf = PoniFile(str(path))
    except Exception as exc:  # pyFAI raises ValueError, KeyError, JSON errors …
        raise InputFileError(f"{path}: malformed PONI file ({exc})") from None
    missing = [k for k, v in (("Distance", pf.dist), ("Poni1", pf.poni1), ("Poni2", pf.poni2))
               if v is None]
    if missing:
        raise InputFileError(f"{path}: malformed PONI file, missing {', '.join(missing)}")
    geometry = Geometry(dist=pf.dist, poni1=pf.poni1, poni2=pf.poni2, rot1=pf.rot1 or 0.0,
                        rot2=pf.rot2 or 0.0, rot3=pf.rot3 or 0.0, detector=pf.detector,
                        wavelength=pf.wavelength)
    return geometry


def write_poni(path: Path, geometry) -> None:
    """Write a geometry as a PONI 2.1 file (detector and orientation included), atomically."""
    from pyFAI.io.ponifile import PoniFile

    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"# {SIGNATURE}\n")
            PoniFile(geometry).write(fh)
