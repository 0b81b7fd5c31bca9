"""Valid seed files of every format geocal reads, written by geocal's own writers (or, for the
formats it only reads, from their published layouts), in a tmp folder. The fuzz and corpus
tests break them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (64, 80)

NACL_CIF = """data_NaCl
_cell_length_a 5.6402
_cell_length_b 5.6402
_cell_length_c 5.6402
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0 0 0 1
Cl1 Cl 0.5 0.5 0.5 1
"""

CONFIG = """image: img.edf
calibrant: LaB6
energy_kev: 17.0
detector: Pilatus1M
fix: [rot3, wavelength]
max_rings: 8
"""


def geometry():
    """A tilted, off-centre geometry on a 64 × 80 detector of 100 × 172 µm pixels."""
    from pyFAI.detectors import Detector

    from geocal_cli.core.geometry.frame import make_geometry

    det = Detector(pixel1=100e-6, pixel2=172e-6, max_shape=SHAPE)
    return make_geometry(det, 0.12, 0.003, 0.004, 0.05, -0.03, 0.0, 7e-11)


def reflection_table() -> bytes:
    """A two-row DIALS reflection table (msgpack, version 1)."""
    import msgpack

    xyz = np.array([[10.5, 20.5, 0.5], [30.5, 40.5, 0.5]])
    body = {"nrows": 2, "identifiers": {0: "a"},
            "data": {"xyzobs.px.value": ["vec3<double>", [2, xyz.tobytes()]],
                     "id": ["int", [2, np.array([0, 0], np.int32).tobytes()]]}}
    return msgpack.packb(["dials::af::reflection_table", 1, body], use_bin_type=True)


def write_seeds(folder: Path) -> dict[str, Path]:
    """Every seed, by reader name."""
    from geocal_cli.core.geometry.displacement import Field
    from geocal_cli.io.distortion import write_spline
    from geocal_cli.io.formats import FORMATS, Options, module
    from geocal_cli.io.images import write_image
    from geocal_cli.io.poni import write_poni

    folder.mkdir(parents=True, exist_ok=True)
    g = geometry()
    seeds = {}
    write_poni(folder / "g.poni", g)
    seeds["poni"] = folder / "g.poni"
    for fmt in ("fit2d", "imaged11", "cdiutils", "dials", "gsas2"):
        path = folder / ("g" + FORMATS[fmt][1])
        module(fmt).write(path, g, SHAPE, Options(shape=SHAPE))
        seeds[fmt] = path
    rng = np.random.default_rng(0)
    data = rng.poisson(50, SHAPE).astype(np.int32)
    for suffix in ("edf", "tif", "cbf"):
        write_image(folder / f"img.{suffix}", data)
        seeds[f"image_{suffix}"] = folder / f"img.{suffix}"
    write_image(folder / "mask.edf", (data > 60).astype(np.int8))
    seeds["mask"] = folder / "mask.edf"
    (folder / "cal.D").write_text("# d-spacings, Å\n4.1568\n2.9393\n2.4000  # (hkl) 2 1 1\n2.0784\n")
    seeds["dspacing"] = folder / "cal.D"
    (folder / "nacl.cif").write_text(NACL_CIF)
    seeds["cif"] = folder / "nacl.cif"
    yy, xx = np.mgrid[0:SHAPE[0] + 1, 0:SHAPE[1] + 1] / 50.0
    write_spline(folder / "d.spline", Field(dy=0.3 * xx * yy, dx=-0.2 * yy ** 2), (100e-6, 172e-6))
    seeds["spline"] = folder / "d.spline"
    (folder / "cfg.yaml").write_text(CONFIG)
    seeds["config"] = folder / "cfg.yaml"
    (folder / "t.refl").write_bytes(reflection_table())
    seeds["refl"] = folder / "t.refl"
    return seeds
