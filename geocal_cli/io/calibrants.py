"""Calibrant ring lists: pyFAI calibrant names, d-spacing files, or CIF structures via gemmi."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.files import MAX_D_SPACINGS, MAX_REFLECTIONS, MAX_TEXT_BYTES, checked_file


@dataclass(frozen=True)
class CalibrantRings:
    """The rings of a calibrant.

    Attributes
    ----------
    name : str
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    intensity : ndarray, shape (m,) or None
        Relative powder intensities (multiplicity × |F|²) of every ring (CIF input).
    table_mf2 : ndarray, shape (m,) or None
        Multiplicity × |F|² inferred from the Cu Kα1 intensities a pyFAI calibrant file
        tabulates for its first rings (`TABLE_WAVELENGTH_A`), NaN for the rings it leaves
        blank; None when it gives none.
    source : str
        Where the list came from.
    """

    name: str
    d_spacing: np.ndarray
    intensity: np.ndarray | None
    source: str
    table_mf2: np.ndarray | None = None

    def mf2(self) -> np.ndarray | None:
        """Multiplicity × |F|² per ring as far as known (NaN where not), or None."""
        return self.intensity if self.intensity is not None else self.table_mf2


def calibrant_names() -> list[str]:
    """Names of pyFAI's built-in calibrants, sorted."""
    from pyFAI.calibrant import CALIBRANT_FACTORY

    return sorted(CALIBRANT_FACTORY.keys(), key=str.lower)


#: pyFAI calibrants that are not real materials and never explain a user's rings.
NOT_CANDIDATES = ("mock",)
#: The standard reference materials in common use, in the order that wins a tie of ring
#: positions no intensity decides (AgBh and C14H30O are both pure orders of one period).
STANDARDS = ("LaB6", "CeO2", "Si", "AgBh", "alpha_Al2O3", "Cr2O3", "Au", "Ni", "Al", "Pt",
             "NaCl", "ZnO", "TiO2", "quartz")


def candidate_calibrants() -> dict:
    """Every pyFAI calibrant as name → (d-spacings in m, decreasing; multiplicity × |F|² or
    None): the candidates a calibration's rings are ranked against (`core.rings.audit`),
    the common standards (`STANDARDS`) first.

    Returns
    -------
    dict[str, tuple[ndarray, ndarray or None]]
    """
    names = calibrant_names()
    out = {}
    for name in [n for n in STANDARDS if n in names] + [n for n in names if n not in STANDARDS]:
        if name not in NOT_CANDIDATES:
            rings = load_calibrant(name)
            out[name] = (rings.d_spacing, rings.mf2())
    return out


def calibrant_file(spec: str | None) -> Path | None:
    """The file a calibrant spec names (a d-spacing file or CIF), or None for a pyFAI name."""
    return Path(spec) if spec is not None and Path(spec).is_file() else None


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
        # Reflections of one d-spacing are one ring (vanadinite's file lists 21 hk0/kh0
        # pairs apart): counted twice, the assignment charged every right distance for the
        # twin no observed ring could claim.
        d = np.unique(np.array(cal.dspacing, float))[::-1]
        return CalibrantRings(name=name, d_spacing=d * 1e-10, intensity=None,
                              source=f"pyFAI calibrant {name}", table_mf2=_table_mf2(cal, d))
    if path.suffix.lower() == ".cif":
        return _from_cif(path, scattering, d_min_a)
    if path.is_file():
        return _from_dspacing_file(path)
    raise ConfigError(f"calibrant '{spec}': not a pyFAI calibrant name and no such file. "
                      f"Known names: {', '.join(calibrant_names())}; or give a d-spacing file "
                      "or a CIF")


#: Wavelength of the intensities tabulated in pyFAI's calibrant files (Cu Kα1), Å.
TABLE_WAVELENGTH_A = 1.5406


def _table_mf2(cal, d_a: np.ndarray) -> np.ndarray | None:
    """Multiplicity × |F|² on the d-spacings `d_a` (Å) from a pyFAI calibrant file's
    `d # (h k l) mult intensity` lines: the tabulated powder intensity at Cu Kα1 divided by
    the Lorentz-polarisation factor (1 + cos² 2θ) / (sin² θ cos θ) it carries, summed over
    the lines of one d-spacing (one ring). NaN where the file gives no intensity, None when
    it gives none at all or cannot be read."""
    try:
        text = Path(cal._get_abs_path(cal.filename)).read_text(errors="replace")
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    pairs = []
    for line in text.splitlines():
        value, _, comment = line.partition("#")
        fields = comment.replace("(", " ").replace(")", " ").split()
        try:
            d = float(value)
            pairs.append((d, float(fields[4]) if len(fields) >= 5 else np.nan))
        except (ValueError, IndexError):
            continue
    if not pairs or all(np.isnan(i) for _, i in pairs):
        return None
    d_file, i_file = np.array(pairs).T
    d_file, line = np.unique(d_file, return_inverse=True)
    given = np.bincount(line, ~np.isnan(i_file), d_file.size) > 0
    i_file = np.where(given, np.bincount(line, np.nan_to_num(i_file), d_file.size), np.nan)
    k = np.argmin(np.abs(d_file[None, :] - d_a[:, None]), axis=1)
    close = np.abs(d_file[k] / d_a - 1) < 1e-5
    with np.errstate(invalid="ignore"):
        theta = np.arcsin(TABLE_WAVELENGTH_A / (2 * d_a))
        lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    return np.where(close, i_file[k], np.nan) / lp


def _from_dspacing_file(path: Path) -> CalibrantRings:
    checked_file(path, "d-spacing file", MAX_TEXT_BYTES)
    try:
        rows = [ln.split("#")[0].split() for ln in path.read_text(errors="replace").splitlines()]
        rows = [r for r in rows if r]
        if len(rows) > MAX_D_SPACINGS:
            raise InputFileError(f"{path}: {len(rows):,} d-spacings; a calibrant file lists at most "
                                 f"{MAX_D_SPACINGS:,}")
        d = np.array([float(r[0]) for r in rows], float)
    except (ValueError, OSError) as exc:
        raise InputFileError(f"{path}: not a d-spacing file (one d in Å per line): "
                             f"{str(exc)[:120]}") from None
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise InputFileError(f"{path}: no positive d-spacing found")
    return CalibrantRings(name=path.stem, d_spacing=np.sort(d)[::-1] * 1e-10, intensity=None,
                          source=f"d-spacing file {path}")


def _from_cif(path: Path, scattering: str, d_min_a: float) -> CalibrantRings:
    import gemmi

    from geocal_cli.core.calibrant.structure import (powder_multiplicity, powder_rings,
                                           structure_factors)

    checked_file(path, "CIF", MAX_TEXT_BYTES)
    try:
        st = gemmi.read_small_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError on bad CIF
        raise InputFileError(f"{path}: not a readable CIF ({exc})") from None
    sg = st.spacegroup
    if sg is None or not st.sites or st.cell.a <= 0:
        raise InputFileError(f"{path}: the CIF lacks a cell, a space group or atom sites")
    # Bound the work before gemmi enumerates: unique reflections ≈ (4π/3) V / d³ / |G|.
    expected = 4.19 * st.cell.volume / d_min_a ** 3 / max(len(sg.operations()), 1)
    if not np.isfinite(expected) or expected > MAX_REFLECTIONS:
        raise InputFileError(f"{path}: a cell of {st.cell.volume:.3g} Å³ has ~{expected:.2g} reflections "
                             f"to d = {d_min_a} Å (limit {MAX_REFLECTIONS:,}): not a calibrant; give "
                             "its d-spacings in a file instead")
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
    intensity = np.abs(f) ** 2 * powder_multiplicity(hkl, rots)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(intensity)) and intensity.max() > 0):
        raise InputFileError(f"{path}: the structure gives no finite, non-zero reflection "
                             "intensity (check the cell, occupancies and displacement parameters)")
    d_ring, i_ring = powder_rings(d, intensity)
    return CalibrantRings(name=path.stem, d_spacing=d_ring * 1e-10, intensity=i_ring,
                          source=f"CIF {path} ({scattering} scattering factors, gemmi tables)")
