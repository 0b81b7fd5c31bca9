"""`geocal batch calib-ring … --joint MODEL --positions SRC`: one motion model over many
images that share a detector."""

from __future__ import annotations

import json

import numpy as np
import pyFAI
import pytest

from tests.cli.conftest import geocal
from tests.conftest import assert_valid_report, legend_texts, shared

DISTANCES = (150.0, 250.0, 350.0, 450.0, 600.0)


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """LaB6 at 17 keV on a Pilatus 1M moved along a tilted beam from 150 to 600 mm, the
    stage positions (mm from the first) in a CSV."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    root = tmp_path_factory.mktemp("stage")
    rows = []
    for i, dist in enumerate(DISTANCES):
        simulate.run(SimulateConfig(output=root / f"t{dist:.0f}.edf", calibrant="LaB6",
                                    energy_kev=17.0, detector="Pilatus1M", distance_mm=dist,
                                    center_px=(480.0, 500.0), tilt_deg=1.5,
                                    tilt_plan_rotation_deg=40.0, seed=i))
        rows.append(f"t{dist:.0f}.edf,{dist - DISTANCES[0]:g}")
    (root / "stage.csv").write_text("image,stage_mm\n" + "\n".join(rows) + "\n")
    return root


def test_a_distance_series_fixes_wavelength_and_distance(stage, tmp_path, capsys):
    """The energy given 0.3 % off: every image alone fits distance × λ; the series gives λ
    within 2·10⁻⁵ and each distance within 0.02 mm, the 600 mm image (one arc: refused
    alone) included, and pyFAI's Goniometer reads the model back as our PONIs."""
    out = tmp_path / "out"
    images = [stage / f"t{d:.0f}.edf" for d in DISTANCES]
    code, stdout, err = geocal(["batch", "calib-ring", *images, "-c", "LaB6", "--energy", "17.05",
                                "-d", "Pilatus1M", "--out-dir", out, "--joint", "translation",
                                "--positions", stage / "stage.csv"], capsys)
    assert code == 0, err
    assert "joint translation: 5 images (4 calibrated alone)" in stdout
    report = assert_valid_report(out / "joint.json")
    truth = [pyFAI.load(str(stage / f"t{d:.0f}.truth.poni")) for d in DISTANCES]
    assert report["shared"]["wavelength"]["value"] == pytest.approx(truth[0].wavelength, rel=2e-5)
    assert [i["calibrated_alone"] for i in report["images"]] == [True] * 4 + [False]
    gonio = pyFAI.goniometer.Goniometer.sload(str(out / "goniometer.json"))
    for d, t in zip(DISTANCES, truth):
        ours = pyFAI.load(str(out / "joint" / f"t{d:.0f}.poni"))
        assert ours.getFit2D()["directDist"] == pytest.approx(t.getFit2D()["directDist"], abs=0.02)
        theirs = gonio.get_ai(d - DISTANCES[0])
        for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
            assert getattr(theirs, key) == pytest.approx(getattr(ours, key), rel=1e-9, abs=1e-15)
    assert max(i["rms_px"] for i in report["images"]) < 0.1
    assert (out / "joint.png").stat().st_size > 10_000


def test_a_fixed_series_with_free_wavelength_exits_5_naming_the_pair(stage, tmp_path, capsys):
    images = [stage / "t600.edf", stage / "t450.edf"]
    code, _, err = geocal(["batch", "calib-ring", *images, "-c", "LaB6", "--energy", "17",
                           "-d", "Pilatus1M", "--out-dir", tmp_path / "out", "--joint", "fixed",
                           "--joint-free", "dist,poni1,poni2,rot1,rot2,wavelength"], capsys)
    assert code == 5
    assert "do not determine the wavelength" in err and "dist and wavelength move together" in err


@pytest.mark.parametrize("extra, message", [
    (["--joint", "arm-2theta"], "needs each image's position"),
    (["--joint", "translation", "--positions", "stage.csv", "--joint-free", "dist,tilt"],
     "has no parameter dist, tilt"),
    (["--joint", "spiral", "--positions", "stage.csv"], "not one of"),
    (["--positions", "stage.csv"], "give joint"),
])
def test_joint_config_errors_exit_3_before_any_work(stage, tmp_path, capsys, monkeypatch,
                                                     extra, message):
    monkeypatch.chdir(stage)
    out = tmp_path / "out"
    code, _, err = geocal(["batch", "calib-ring", "t150.edf", "t250.edf", "-c", "LaB6",
                           "--energy", "17", "-d", "Pilatus1M", "--out-dir", out, *extra], capsys)
    assert code == 3, err
    assert message in " ".join(err.split())


SSRL = ["-c", "LaB6", "--wavelength", "0.885601", "-d", "Pilatus300kw", "--joint", "arm-2theta",
        "--positions", "sidecar:2Theta"]


def _ring_residual_px(poni, image, d_spacing):
    """rms (px) of an image's own ring maxima about the rings a geometry predicts."""
    from geocal_cli.core.geometry.frame import frame_of, make_geometry
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.core.rings.rounds import RingState, sample_rings
    from geocal_cli.io.detectors import detector_mask
    from geocal_cli.io.images import read_image, valid_pixels

    data = read_image(image).data
    valid = valid_pixels(data, detector_mask(poni.detector, data.shape))
    values = {k: getattr(poni, k) for k in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3",
                                            "wavelength")}
    cp = sample_rings(prepare_image(data, valid), make_geometry(poni.detector, 0.1, 0, 0),
                      d_spacing, values, RingState.start(d_spacing.size, data.shape))
    frame = frame_of(poni)
    res = (frame.tth(cp.d1, cp.d2) - ring_tth(d_spacing[cp.ring], poni.wavelength)) \
        / frame.tth_gradient(cp.d1, cp.d2)
    return float(np.sqrt(np.mean(res ** 2)))


def test_the_sample_joint_config_calibrates_the_arm_scan_blind(tmp_path, capsys, monkeypatch,
                                                              figures):
    """sample_configs/joint.yaml as it stands, beside the SSRL frames and their sidecars:
    three frames of one partial ring each (none calibrates alone), whose arcs fix the arm's
    geometry, blind. Each frame's rings are described within 0.5 px rms and its geometry
    lies within 1 px rms (over its valid pixels) of pyFAI's GoniometerRefinement of the
    scan; what three arcs cannot separate is named; pyFAI reads the goniometer back."""
    import shutil
    from pathlib import Path

    from pyFAI.goniometer import Goniometer

    from geocal_cli.core.geometry.frame import frame_of, ring_shift_px
    from geocal_cli.io.detectors import detector_mask
    from geocal_cli.io.images import read_image, valid_pixels

    data = shared("xray", "lab6_pilatus300kw_ssrl72")
    for f in list(data.glob("scan2_00*.tif")) + list(data.glob("scan2_00*.raw.pdi")):
        (tmp_path / f.name).symlink_to(f)
    shutil.copy(Path(__file__).resolve().parents[2] / "sample_configs" / "joint.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    code, stdout, err = geocal(["batch", "--config", "joint.yaml"], capsys)
    assert code == 0, err
    assert "joint arm-2theta: 3 images (0 calibrated alone)" in stdout
    out = tmp_path / "arm"
    assert sorted(p.name for p in (out / "joint").glob("*.poni")) == [
        "scan2_0009.poni", "scan2_0023.poni", "scan2_0032.poni"]
    images = sorted(data.glob("scan2_00*.tif"))
    report = json.loads((out / "joint.json").read_text())
    assert report["start"]["from"] == "ring arcs of all images"
    assert [sorted(set(r)) for r in report["start"]["rings"]] == [[0], [2], [4]]
    assert any("poni1 and rot2_offset move together" in u for u in report["undetermined"])
    # joint.png: residuals per image and rms per ring, in pixels, one legend entry per ring.
    (fig,) = [f for f in figures if "joint calibration" in f._suptitle.get_text()]
    left, right = fig.axes
    assert left.get_ylabel() == "radial residual [px]" and right.get_ylabel() == "rms per ring [px]"
    assert [t.get_text() for t in left.get_xticklabels()] == [p.name for p in images]
    rings = sorted({r["ring"] for item in report["images"] for r in item["rings"]})
    assert legend_texts(right) == [f"ring {k}" for k in rings]
    reference = Goniometer.sload(str(data / "ROBL_v1_goniometer.json"))
    ours = Goniometer.sload(str(out / "goniometer.json"))
    for image, item in zip(images, report["images"]):
        assert item["rms_px"] < 0.5
        # Most of the residual is the grain spots' own scatter; what the model leaves ≤ 0.3 px.
        assert item["model_misfit_px"] <= 0.3
        assert item["rms_px"] ** 2 == pytest.approx(item["points_scatter_px"] ** 2
                                                    + item["model_misfit_px"] ** 2)
        poni = pyFAI.load(item["poni"])
        assert poni.rot2 == pytest.approx(ours.get_ai(item["position"]).rot2, abs=1e-12)
        frame = read_image(image).data
        valid = valid_pixels(frame, detector_mask(poni.detector, frame.shape))
        d1, d2 = (np.nonzero(valid[::3, ::3])[i] * 3.0 for i in (0, 1))
        moved = ring_shift_px(frame_of(poni), frame_of(reference.get_ai(item["position"])), d1, d2)
        assert np.sqrt(np.mean(moved ** 2)) < 1.0


#: CI leaves out the last frame (the arm extrapolated past both it saw); --runslow the others.
@pytest.mark.parametrize("left", [pytest.param(0, marks=pytest.mark.slow),
                                  pytest.param(1, marks=pytest.mark.slow), 2])
def test_the_ssrl_arm_predicts_a_frame_it_did_not_see(tmp_path, capsys, left):
    """Leave one out: the arm fitted blind on two frames predicts the third frame's ring
    within 1.5 px rms of that frame's own ring maxima."""
    from pyFAI.calibrant import get_calibrant
    from pyFAI.goniometer import Goniometer

    from geocal_cli.io.positions import read_positions

    data = shared("xray", "lab6_pilatus300kw_ssrl72")
    images = sorted(data.glob("scan2_00*.tif"))
    arm = read_positions("sidecar:2Theta", images)
    d_spacing = np.array(get_calibrant("LaB6").dspacing) * 1e-10
    out = tmp_path / f"without{left}"
    seen = [p for i, p in enumerate(images) if i != left]
    code, _, err = geocal(["batch", "calib-ring", *seen, *SSRL, "--out-dir", out], capsys)
    assert code == 0, err
    predicted = Goniometer.sload(str(out / "goniometer.json")).get_ai(arm[left])
    assert _ring_residual_px(predicted, images[left], d_spacing) < 1.5


def test_positions_are_read_from_sidecars_headers_csv_and_yaml(tmp_path):
    from geocal_cli.errors import ConfigError
    from geocal_cli.io.images import write_image
    from geocal_cli.io.positions import read_positions

    data = shared("xray", "lab6_pilatus300kw_ssrl72")
    frames = sorted(data.glob("scan2_00*.tif"))
    assert read_positions("sidecar:2Theta", frames) == [11.12, 20.64, 26.76]
    assert read_positions("sidecar:Theta", frames) == [5.56, 10.32, 13.38]
    a, b = tmp_path / "a.edf", tmp_path / "b.edf"
    write_image(a, np.zeros((4, 4), np.int32), {"arm": "12.5"})
    write_image(b, np.zeros((4, 4), np.int32), {"arm": "-3"})
    assert read_positions("header:arm", [a, b]) == [12.5, -3.0]
    (tmp_path / "p.yaml").write_text("a.edf: 1.5\nb: 2\n")
    assert read_positions(str(tmp_path / "p.yaml"), [a, b]) == [1.5, 2.0]
    (tmp_path / "p.csv").write_text("name,value\na.edf,AgBh\nb.edf,LaB6\n")
    assert read_positions(str(tmp_path / "p.csv"), [a, b], numeric=False) == ["AgBh", "LaB6"]
    with pytest.raises(ConfigError, match="is not a number"):
        read_positions(str(tmp_path / "p.csv"), [a, b])
    with pytest.raises(ConfigError, match="no position for b.edf"):
        read_positions("sidecar:nothing", [b])


def test_a_pyfai_goniometer_file_is_a_model_and_its_freedoms_are_checked(tmp_path, capsys):
    """The reference's own expressions (rot1, rot2 and rot3 each linear in the arm angle) as
    the model: all nine parameters free from three arcs is refused (exit 5: the rings are not
    pinned); with the five the arcs fix, the scan calibrates, the others kept at the file's
    values."""
    data = shared("xray", "lab6_pilatus300kw_ssrl72")
    images = sorted(data.glob("scan2_00*.tif"))
    model = ["-c", "LaB6", "--wavelength", "0.885601", "-d", "Pilatus300kw", "--joint",
             data / "ROBL_v1_goniometer.json", "--positions", "sidecar:2Theta"]
    code, _, err = geocal(["batch", "calib-ring", *images, *model, "--out-dir", tmp_path / "all"],
                          capsys)
    assert code == 5 and "do not pin the rings' positions" in err
    code, _, err = geocal(["batch", "calib-ring", *images, *model, "--out-dir", tmp_path / "five",
                           "--joint-free", "dist,poni1,poni2,rot1,rot2_offset"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "five" / "joint.json").read_text())
    assert report["shared"]["rot1_scale"] == {"value": pytest.approx(4.121099157889734e-05),
                                              "sigma": None, "fixed": True}
    assert max(i["rms_px"] for i in report["images"]) < 0.5


def test_the_pixel_scale_of_a_detector_file_off_by_half_a_percent(tmp_path, capsys):
    """173 µm pixels given as 172 µm: a distance series with the pixel scale freed reports
    173 µm, and the distance and λ stay right."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    rows = []
    for i, dist in enumerate(DISTANCES):
        simulate.run(SimulateConfig(output=tmp_path / f"p{dist:.0f}.edf", calibrant="LaB6",
                                    energy_kev=17.0, detector=None, pixel_size_um=(173.0, 173.0),
                                    shape=(1043, 981), distance_mm=dist, center_px=(480.0, 500.0),
                                    tilt_deg=1.5, tilt_plan_rotation_deg=40.0, seed=i))
        rows.append(f"p{dist:.0f}.edf,{dist - DISTANCES[0]:g}")
    (tmp_path / "stage.csv").write_text("\n".join(rows) + "\n")
    code, _, err = geocal(["batch", "calib-ring", *sorted(tmp_path.glob("p*.edf")), "-c", "LaB6",
                           "--energy", "17", "--pixel-size", "172", "--out-dir", tmp_path / "out",
                           "--joint", "translation", "--positions", tmp_path / "stage.csv",
                           "--joint-free", "direct_dist,center1,center2,rot1,rot2,wavelength,"
                           "pixel_scale"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "joint.json").read_text())
    assert report["detector"]["pixel_um"][0] == pytest.approx(173.0, rel=5e-4)
    assert report["shared"]["direct_dist"]["value"] == pytest.approx(0.150, abs=2e-5)
    truth = pyFAI.load(str(tmp_path / "p150.truth.poni"))
    assert report["shared"]["wavelength"]["value"] == pytest.approx(truth.wavelength, rel=5e-5)


def test_two_calibrants_at_one_geometry_from_the_command_line(tmp_path, capsys):
    """AgBh and LaB6 at one geometry, each image's calibrant named in the positions file
    (the -c given is overridden per image): one geometry from the rings of both."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    for i, cal in enumerate(("AgBh", "LaB6")):
        simulate.run(SimulateConfig(output=tmp_path / f"{cal}.edf", calibrant=cal, energy_kev=12.0,
                                    detector="Pilatus1M", distance_mm=350.0,
                                    center_px=(500.0, 480.0), tilt_deg=1.0,
                                    tilt_plan_rotation_deg=30.0, seed=i))
    (tmp_path / "cal.csv").write_text("AgBh.edf,AgBh\nLaB6.edf,LaB6\n")
    code, stdout, err = geocal(["batch", "calib-ring", tmp_path / "AgBh.edf", tmp_path / "LaB6.edf",
                                "-c", "LaB6", "--energy", "12", "-d", "Pilatus1M", "--out-dir",
                                tmp_path / "out", "--joint", "calibrants", "--positions",
                                tmp_path / "cal.csv"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "joint.json").read_text())
    rings = {i["image"].rsplit("/", 1)[-1]: len(i["rings"]) for i in report["images"]}
    assert rings["AgBh.edf"] > 5 and rings["LaB6.edf"] >= 1
    truth = pyFAI.load(str(tmp_path / "AgBh.truth.poni"))
    fit = pyFAI.load(str(tmp_path / "out" / "joint" / "LaB6.poni"))
    assert fit.dist == pytest.approx(truth.dist, abs=5e-6)
    assert fit.poni1 == pytest.approx(truth.poni1, abs=5e-6)
