"""Other programs' conventions, checked against those programs' own code where it installs
from PyPI (ImageD11's transform, xrayutilities' Ang2Q.init_area, pyFAI's ImageD11 export) or
their published formula (GSAS-II's GetTthAzmDsp2, dxtbx's panel model), on tilted,
off-centre geometries with non-square pixels; and exact round trips."""

import numpy as np
import pytest

from geocal_cli.core.geometry.conventions import dials, gsas2, imaged11
from geocal_cli.core.geometry.conventions import xrayutilities as xu
from geocal_cli.core.geometry.frame import DetectorFrame, frame_of, make_geometry

SHAPE = (600, 400)
ROWS, COLS = np.meshgrid(np.linspace(0, SHAPE[0] - 1, 13), np.linspace(0, SHAPE[1] - 1, 11), indexing="ij")


def _same_frame(a: DetectorFrame, b: DetectorFrame, tol=1e-15):
    for u, v in ((a.origin, b.origin), (a.e1, b.e1), (a.e2, b.e2)):
        assert np.abs(u - v).max() < tol


IMAGED11 = dict(distance=0.2, y_center=210.3, z_center=350.7, y_size=172e-6, z_size=75e-6,
                tilt_x=0.02, tilt_y=-0.04, tilt_z=0.06)


@pytest.mark.parametrize("o", [(1, 0, 0, -1), (-1, 0, 0, 1), (1, 0, 0, 1), (-1, 0, 0, -1),
                               (0, 1, 1, 0), (0, -1, 1, 0)])
def test_imaged11_positions_match_imaged11_transform(o):
    transform = pytest.importorskip("ImageD11.transform")
    frame = imaged11.frame_from_par(**IMAGED11, o=o)
    pars = dict(IMAGED11, o11=o[0], o12=o[1], o21=o[2], o22=o[3])
    xyz = transform.compute_xyz_lab(np.array([ROWS.ravel(), COLS.ravel()]), **pars)
    mine = frame.positions(ROWS.ravel(), COLS.ravel())
    assert np.abs(mine - (imaged11.TO_PYFAI @ xyz).T).max() < 1e-15
    tth, _ = transform.compute_tth_eta(np.array([ROWS.ravel(), COLS.ravel()]), **pars)
    assert np.abs(np.degrees(frame.tth(ROWS.ravel(), COLS.ravel())) - tth).max() < 1e-9
    back = imaged11.par_from_frame(frame, o)
    assert max(abs(back[k] - v) for k, v in IMAGED11.items()) < 1e-12


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_imaged11_parameters_equal_pyfai_export(orientation):
    from pyFAI.detectors import Detector

    det = Detector(pixel1=75e-6, pixel2=172e-6, max_shape=SHAPE, orientation=orientation)
    g = make_geometry(det, 0.15, 0.02, 0.03, 0.05, -0.07, 0.1, 1e-10)
    ref = g.getImageD11(distance_unit="m")
    mine = imaged11.par_from_frame(frame_of(g), imaged11.ORIENTATION_FLIPS[orientation])
    for k in ("distance", "y_center", "z_center", "tilt_x", "tilt_y", "tilt_z", "y_size", "z_size"):
        assert mine[k] == pytest.approx(ref[k], rel=1e-12, abs=1e-12), k


def test_imaged11_refuses_a_mirroring_flip_matrix():
    frame = imaged11.frame_from_par(**IMAGED11, o=(1, 0, 0, -1))
    with pytest.raises(ValueError, match="mirrors"):
        imaged11.par_from_frame(frame, (1, 0, 0, 1))


XU = [dict(distance=0.83, cch1=250.3, cch2=300.7, pwidth1=55e-6, pwidth2=75e-6, tilt=3.0,
           tiltazimuth=40.0, detrot=1.5, dir1="z-", dir2="y+"),
      dict(distance=0.5, cch1=100.3, cch2=200.7, pwidth1=55e-6, pwidth2=55e-6, tilt=10.0,
           tiltazimuth=-100.0, detrot=-3.0, dir1="y+", dir2="z+")]


@pytest.mark.parametrize("par", XU, ids=["id01-like", "rotated"])
def test_xrayutilities_directions_match_ang2q_area(par):
    xrayutilities = pytest.importorskip("xrayutilities")
    qconv = xrayutilities.experiment.QConversion(["z-"], ["z-"], [1, 0, 0])
    qconv.init_area(par["dir1"], par["dir2"], par["cch1"], par["cch2"], 400, 500,
                    distance=par["distance"], pwidth1=par["pwidth1"], pwidth2=par["pwidth2"],
                    tilt=par["tilt"], tiltazimuth=par["tiltazimuth"], detrot=par["detrot"])
    qx, qy, qz = qconv.area(0.0, 0.0, wl=1.0)
    kf = np.stack([qx, qy, qz], -1) + [2 * np.pi, 0, 0]
    ref = (kf / np.linalg.norm(kf, axis=-1)[..., None]) @ xu.TO_PYFAI.T
    frame = xu.frame_from_params(**par)
    i1, i2 = np.meshgrid(np.arange(400), np.arange(500), indexing="ij")
    pos = frame.positions(i1, i2)
    assert np.abs(pos / np.linalg.norm(pos, axis=-1)[..., None] - ref).max() < 1e-12
    back = xu.params_from_frame(frame)
    assert all(back[k] == par[k] if isinstance(par[k], str) else abs(back[k] - par[k]) < 1e-9
               for k in par)


def _gsas2_tth_deg(x, y, data):
    """GSAS-II's GetTthAzmDsp2 2θ (DetDepth 0), transcribed in float64."""
    cent, tilt, phi = data["center"], data["tilt"], data["rotation"]
    dist = data["distance"] / np.cos(np.radians(tilt))
    dx, dy = x - cent[0], y - cent[1]
    vec = np.stack([dx, dy, np.zeros_like(dx)], -1) @ gsas2._make_mat(phi, 2)
    z = (vec @ gsas2._make_mat(tilt, 0))[..., 2]
    return np.degrees(np.arctan(np.sqrt(dx**2 + dy**2 - z**2) / (dist - z)))


@pytest.mark.parametrize("tilt, rotation", [(1.225, 91.65), (8.0, -30.0), (0.0, 0.0), (25.0, 200.0)])
def test_gsas2_tth_matches_gettthazmdsp2(tilt, rotation):
    data = dict(center=[17.3, 51.2], distance=180.0, tilt=tilt, rotation=rotation, pixelSize=[172.0, 75.0])
    frame = gsas2.frame_from_controls(data["center"], data["distance"], tilt, rotation, data["pixelSize"], 7.0)
    x = (COLS + 0.5) * data["pixelSize"][0] * 1e-3
    y = (ROWS + 0.5) * data["pixelSize"][1] * 1e-3
    assert np.abs(frame.tth(ROWS, COLS) - np.radians(_gsas2_tth_deg(x, y, data))).max() < 1e-9
    back = gsas2.controls_from_frame(frame)
    again = gsas2.frame_from_controls(back["center"], back["distance"], back["tilt"], back["rotation"],
                                      back["pixelSize"], back["azmthOff"])
    _same_frame(frame, again, 1e-14)
    if tilt:
        assert back["tilt"] == pytest.approx(tilt) and back["azmthOff"] == pytest.approx(7.0)


def test_gsas2_refuses_a_mirrored_frame():
    f = gsas2.frame_from_controls([17.3, 51.2], 180.0, 3.0, 20.0, [172.0, 75.0])
    mirrored = DetectorFrame(f.origin + 599 * f.e1, -f.e1, f.e2)
    with pytest.raises(ValueError, match="mirrored"):
        gsas2.controls_from_frame(mirrored)


def test_dials_panel_model_and_hierarchy():
    # A tilted panel in a two-level hierarchy whose groups are offset and turned.
    c, s = np.cos(0.3), np.sin(0.3)
    outer = {"origin": [2.4, -0.05, 0.0], "fast_axis": [c, s, 0.0], "slow_axis": [-s, c, 0.0]}
    inner = {"origin": [1.0, 2.0, -3.0], "fast_axis": [1.0, 0.0, 0.0], "slow_axis": [0.0, c, s]}
    local = {"origin": [-28.6, 28.7, -210.0], "fast_axis": [1.0, 0.0, 0.0], "slow_axis": [0.0, -1.0, 0.0]}
    glob = dials.global_panel([outer, inner], local)

    def compose(g, v, point):
        r = np.column_stack([g["fast_axis"], g["slow_axis"], np.cross(g["fast_axis"], g["slow_axis"])])
        return (np.asarray(g["origin"]) if point else 0) + r @ np.asarray(v, float)

    expected = compose(outer, compose(inner, local["origin"], True), True)
    assert np.abs(glob["origin"] - expected).max() < 1e-12
    pixel = (0.172, 0.075)
    frame = dials.frame_from_panel(glob["origin"], glob["fast_axis"], glob["slow_axis"], pixel)
    # dxtbx: centre of pixel (slow s, fast f) at origin + (f + ½) p_f fast + (s + ½) p_s slow.
    lab = (glob["origin"] + (COLS[..., None] + 0.5) * pixel[0] * glob["fast_axis"]
           + (ROWS[..., None] + 0.5) * pixel[1] * glob["slow_axis"])
    pyfai = lab @ dials.lab_basis().T * 1e-3
    assert np.abs(frame.positions(ROWS, COLS) - pyfai).max() < 1e-15
    back = dials.panel_from_frame(frame)
    for k in ("origin", "fast_axis", "slow_axis"):
        assert np.abs(back[k] - glob[k]).max() < 1e-12
    assert np.allclose(back["pixel_size"], pixel, rtol=0, atol=1e-15)


def test_dials_lab_basis_maps_the_beam_to_x3():
    b = dials.lab_basis([0.01, -0.02, 1.0])
    s0 = -np.array([0.01, -0.02, 1.0]) / np.linalg.norm([0.01, -0.02, 1.0])
    assert np.allclose(b @ s0, [0, 0, 1], atol=1e-15)
    assert np.allclose(b @ b.T, np.eye(3), atol=1e-15) and np.linalg.det(b) > 0
