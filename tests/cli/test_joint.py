"""`geocal batch calib-ring … --joint MODEL --positions SRC`: one motion model over many
images that share a detector."""

from __future__ import annotations

import json

import numpy as np
import pyFAI
import pytest

from geocal_cli.main import run
from tests.conftest import shared

DISTANCES = (150.0, 250.0, 350.0, 450.0, 600.0)


def geocal(args, capsys):
    with pytest.raises(SystemExit) as exc:
        run([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


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
    report = json.loads((out / "joint.json").read_text())
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
    assert "do not determine wavelength" in err and "dist and wavelength move together" in err


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


def test_the_ssrl_arm_scan_of_single_arcs_is_refused_not_guessed(tmp_path, capsys):
    """Three frames of one partial ring each: none calibrates alone, and the joint fit needs
    one that does, so it says so (exit 5) instead of answering."""
    data = shared("xray", "lab6_pilatus300kw_ssrl72")
    images = sorted(data.glob("scan2_00*.tif"))
    code, _, err = geocal(["batch", "calib-ring", *images, "-c", "LaB6", "--wavelength",
                           "0.885601", "-d", "Pilatus300kw", "--out-dir", tmp_path / "out",
                           "--joint", "arm-2theta", "--positions", "sidecar:2Theta"], capsys)
    assert code == 5
    assert "no image could be calibrated alone" in err
    assert not (tmp_path / "out" / "goniometer.json").exists()


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
