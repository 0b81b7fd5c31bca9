"""DIALS files read without DIALS: reflection tables and indexed experiment models."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest

from geocal_cli.core.q.prediction import rotation_about
from geocal_cli.errors import InputFileError
from geocal_cli.io.dials_models import read_experiments
from geocal_cli.io.dials_refl import read_reflections
from tests.conftest import shared


def _table(path, columns, identifiers=None):
    data = {name: [typ, [len(arr), np.ascontiguousarray(arr, dtype=dt).tobytes()]]
            for name, (typ, dt, arr) in columns.items()}
    n = len(next(iter(columns.values()))[2])
    body = {"identifiers": identifiers or {}, "nrows": n, "data": data}
    path.write_bytes(msgpack.packb(["dials::af::reflection_table", 1, body], use_bin_type=True))
    return path


def test_columns_decode_by_type(tmp_path):
    h = np.array([[1, -2, 3], [0, 4, -5]], np.int32)
    xyz = np.array([[1.5, 2.5, 0.1], [3.0, 4.0, 0.2]])
    path = _table(tmp_path / "t.refl", {
        "miller_index": ("cctbx::miller::index<>", "<i4", h), "xyzobs.mm.value": ("vec3<double>", "<f8", xyz),
        "id": ("int", "<i4", np.array([0, 1], np.int32)), "panel": ("std::size_t", "<u8", np.array([0, 3], np.uint64)),
        "entering": ("bool", "?", np.array([True, False]))}, {0: "a", 1: "b"})
    t = read_reflections(path)
    assert t.nrows == 2 and t.identifiers == {0: "a", 1: "b"}
    assert np.array_equal(t.columns["miller_index"], h) and np.array_equal(t.columns["xyzobs.mm.value"], xyz)
    assert t.columns["panel"].tolist() == [0, 3] and t.columns["entering"].tolist() == [True, False]


def test_truncated_column_is_refused(tmp_path):
    path = _table(tmp_path / "t.refl", {"id": ("int", "<i4", np.array([0, 1], np.int32))})
    doc = msgpack.unpackb(path.read_bytes())
    doc[2]["data"]["id"][1][1] = doc[2]["data"]["id"][1][1][:5]
    path.write_bytes(msgpack.packb(doc, use_bin_type=True))
    with pytest.raises(InputFileError, match="holds 5 bytes"):
        read_reflections(path)


def test_cunir_table_and_models():
    t = read_reflections(shared("dials", "cunir_ssx", "indexed.refl"))
    assert t.nrows == 360 and len(t.identifiers) == 5
    assert t.columns["xyzcal.mm"].shape == (360, 3) and "shoebox" not in t.columns
    ex = read_experiments(shared("dials", "cunir_ssx", "indexed.expt"))
    assert ex.crystals.A.shape == (5, 3, 3) and not ex.rotation.any()
    assert ex.panel_offset.tolist() == [0] * 5 and ex.n_panels.tolist() == [1] * 5
    assert np.allclose(np.linalg.norm(ex.crystals.s0, axis=1), 1 / 1.37611)


def test_multi_axis_goniometer_composes_as_dxtbx(tmp_path):
    data = json.loads(shared("dials", "cunir_ssx", "indexed.expt").read_text())
    axes = [[1.0, 0, 0], [0.0, 0.643, 0.766], [1.0, 0, 0]]
    angles = [10.0, 30.0, 0.0]
    data["goniometer"] = [{"axes": axes, "angles": angles, "names": ["phi", "kappa", "omega"], "scan_axis": 2}]
    data["scan"] = [{"image_range": [1, 100]}]
    for e in data["experiment"]:
        e["goniometer"], e["scan"] = 0, 0
    path = tmp_path / "gonio.expt"
    path.write_text(json.dumps(data))
    ex = read_experiments(path)
    r = [rotation_about(np.array(a), np.radians(t)) for a, t in zip(axes, angles)]
    assert np.allclose(ex.crystals.fixed[0], r[1] @ r[0])
    assert np.allclose(ex.crystals.setting[0], np.eye(3))
    assert np.allclose(ex.crystals.axis[0], [1, 0, 0]) and ex.rotation.all()
