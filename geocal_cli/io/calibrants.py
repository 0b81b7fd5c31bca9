"""Calibrant ring lists: pyFAI calibrant names, d-spacing files, or CIF structures via gemmi."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.errors import ConfigError, InputFileError


@dataclass(frozen=True)
class CalibrantRings:
    """The rings of a calibrant.

    Attributes
    ----------
    name : str
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    intensity : ndarray, shape (m,) or None
        Relative powder intensities (multiplicity × |F|²) when known (CIF input).
    source : str
        Where the list came from.
    """

    name: str
    d_spacing: np.ndarray
    intensity: np.ndarray | None
    source: str


def calibrant_names() -> list[str]:
    """Names of pyFAI's built-in calibrants, sorted."""
    from pyFAI.calibrant import CALIBRANT_FACTORY

    return sorted(CALIBRANT_FACTORY.keys(), key=str.lower)


def load_calibrant(spec: str, scattering: str = "xray", d_min_a: float = 0.3) -> CalibrantRings:
    """Resolve a calibrant given as a pyFAI name, a d-spacing file or a CIF.

    Parameters
    ----------
    spec : str
        pyFAI calibrant name (case-insensitive, e.g. "LaB6", "CeO2", "AgBh"), a path to a
        d-spacing file (pyFAI's .D format: one d in Å per line, `#` comments), or a path to a
        CIF (.cif) whose reflections gemmi computes.
    scattering : {"xray", "electron"}
        Scattering factors for CIF intensities (gemmi's X-ray or electron tables).
    d_min_a : float
        Smallest d-spacing generated from a CIF, Å.

    Returns
    -------
    CalibrantRings

    Raises
    ------
    ConfigError
        Unknown calibrant name.
    InputFileError
        Unreadable or empty d-spacing file or CIF.
    """
    from pyFAI.calibrant import CALIBRANT_FACTORY

    names = {n.lower(): n for n in CALIBRANT_FACTORY.keys()}
    path = Path(spec)
    if spec.lower() in names and not path.is_file():
        name = names[spec.lower()]
        cal = CALIBRANT_FACTORY(name)
        d = np.array(cal.dspacing, float) * 1e-10
        return CalibrantRings(name=name, d_spacing=np.sort(d)[::-1], intensity=None,
                              source=f"pyFAI calibrant {name}")
    if path.suffix.lower() == ".cif":
        return _from_cif(path, scattering, d_min_a)
    if path.is_file():
        return _from_dspacing_file(path)
    raise ConfigError(f"calibrant '{spec}': not a pyFAI calibrant name and no such file. "
                      f"Known names: {', '.join(calibrant_names())}; or give a d-spacing file "
                      "or a CIF")


def _from_dspacing_file(path: Path) -> CalibrantRings:
    try:
        rows = [ln.split("#")[0].split() for ln in path.read_text(errors="replace").splitlines()]
        d = np.array([float(r[0]) for r in rows if r], float)
    except (ValueError, OSError) as exc:
        raise InputFileError(f"{path}: not a d-spacing file (one d in Å per line): {exc}") from None
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise InputFileError(f"{path}: no positive d-spacing found")
    return CalibrantRings(name=path.stem, d_spacing=np.sort(d)[::-1] * 1e-10, intensity=None,
                          source=f"d-spacing file {path}")


def _from_cif(path: Path, scattering: str, d_min_a: float) -> CalibrantRings:
    import gemmi

    from geocal_cli.core.calibrant.structure import (powder_multiplicity, powder_rings,
                                           structure_factors)

    if not path.is_file():
        raise InputFileError(f"CIF not found: {path}")
    try:
        st = gemmi.read_small_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError on bad CIF
        raise InputFileError(f"{path}: not a readable CIF ({exc})") from None
    sg = st.spacegroup
    if sg is None or not st.sites or st.cell.a <= 0:
        raise InputFileError(f"{path}: the CIF lacks a cell, a space group or atom sites")
    st.setup_cell_images()
    hkl = np.asarray(gemmi.make_miller_array(st.cell, sg, d_min_a, 0.0, True))
    if hkl.size == 0:
        raise InputFileError(f"{path}: no reflection with d ≥ {d_min_a} Å")
    sites = st.get_all_unit_cell_sites()
    table = "c4322" if scattering == "electron" else "it92"
    coefs = np.array([getattr(s.element, table).get_coefs() for s in sites])
    fract = np.array([[s.fract.x, s.fract.y, s.fract.z] for s in sites])
    occ = np.array([s.occ for s in sites])
    u_iso = np.array([s.u_iso for s in sites])
    d = np.asarray(st.cell.calculate_d_array(hkl))
    f = structure_factors(hkl, d, fract, occ, u_iso, coefs)
    rots = np.array([op.rot for op in sg.operations()]) // gemmi.Op.DEN
    d_ring, i_ring = powder_rings(d, np.abs(f) ** 2 * powder_multiplicity(hkl, rots))
    return CalibrantRings(name=path.stem, d_spacing=d_ring * 1e-10, intensity=i_ring,
                          source=f"CIF {path} ({scattering} scattering factors, gemmi tables)")
