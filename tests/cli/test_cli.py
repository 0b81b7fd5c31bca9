"""The `geocal` command: exit codes and messages for good and bad input, outputs on success,
nothing written on failure, and subcommands chained through files by the installed command."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from geocal_cli.io.images import write_image
from geocal_cli.main import run


def cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        run([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def lab6_copy(lab6_pilatus, tmp_path, monkeypatch):
    sim, cfg = lab6_pilatus
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "lab6.edf"
    shutil.copy(sim.image, image)
    return image, cfg


def outputs(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".poni", ".json", ".png"))


def test_version_and_help(capsys):
    from geocal_cli import __version__

    code, out, _ = cli(["--version"], capsys)
    assert code == 0 and __version__ in out
    code, out, _ = cli(["calib-ring", "--help"], capsys)
    assert code == 0 and "--calibrant" in out and "Examples" in out


def test_calib_ring_writes_poni_report_and_plot(lab6_copy, capsys):
    import pyFAI

    image, cfg = lab6_copy
    code, out, err = cli(["calib-ring", image, "-c", "LaB6", "--energy", cfg.energy_kev,
                          "-d", "Pilatus1M", "--plot", "lab6.png"], capsys)
    assert code == 0, err
    assert "beam centre x" in out
    assert outputs(image.parent) == ["lab6.calib.json", "lab6.png", "lab6.poni"]
    report = json.loads((image.parent / "lab6.calib.json").read_text())
    assert report["schema"]["name"] == "geocal.calib-ring"
    assert report["inputs"][0]["sha256"]
    assert report["residuals"]["rms_px"] < 0.2
    bc = report["results"]["geometry"]["beam_center_px"]
    assert (bc["x"], bc["y"]) == pytest.approx(tuple(cfg.center_px), abs=0.05)
    assert pyFAI.load(str(image.parent / "lab6.poni")).dist == pytest.approx(
        report["results"]["geometry"]["poni"]["dist_m"])


def test_fixed_parameters_say_fixed_and_the_rot3_note_only_by_default(lab6_copy, capsys):
    image, cfg = lab6_copy
    args = ["calib-ring", image, "-c", "LaB6", "--energy", cfg.energy_kev, "-d", "Pilatus1M"]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert next(ln for ln in out.splitlines() if "wavelength" in ln).split("│")[3].strip() == "fixed"
    assert "rot3" not in err  # a note in the report, not a warning on every run
    notes = json.loads((image.parent / "lab6.calib.json").read_text())["notes"]
    assert any(n.startswith("rot3 fixed (the default") for n in notes)
    code, out, err = cli(args + ["--guess", "lab6.poni", "--fix", "dist,poni1,poni2,rot3,wavelength",
                                 "-o", "again.poni"], capsys)
    assert code == 0, err
    report = json.loads((image.parent / "lab6.calib.json").read_text())
    assert not any(n.startswith("rot3") for n in report["notes"])
    sigma = report["uncertainties_1sigma"]["fit2d"]["directDist_mm"]
    shown = next(ln for ln in out.splitlines() if "directDist" in ln).split("│")[3].strip()
    # dist fixed, tilts free: directDist = dist / cos(tilt) keeps a tiny 1σ, shown, not rounded to 0.
    assert shown == ("fixed" if sigma <= 1e-12 else f"{sigma:.1e}" if sigma < 5e-5 else f"{sigma:.4f}")


def test_rot3_moves_no_ring_so_freeing_it_is_refused_and_says_why(lab6_copy, capsys):
    """pyFAI turns the detector by rot3 about the beam after rot1 and rot2: every 2θ stays
    where it was, so the default note and the refusal when it is freed say that, not that
    the rings fix it poorly."""
    import pyFAI

    from geocal_cli.core.geometry.frame import frame_of

    image, cfg = lab6_copy
    args = ["calib-ring", image, "-c", "LaB6", "--energy", cfg.energy_kev, "-d", "Pilatus1M"]
    code, _, err = cli(args, capsys)
    assert code == 0, err
    notes = json.loads((image.parent / "lab6.calib.json").read_text())["notes"]
    assert any(n.startswith("rot3 fixed") and "moves χ but no 2θ" in n for n in notes)
    g = pyFAI.load(str(image.parent / "lab6.poni"))
    d1, d2 = np.meshgrid(np.arange(0, 1043, 50.0), np.arange(0, 981, 50.0))
    tth = frame_of(g).tth(d1, d2)
    g.rot1, g.rot2, g.rot3 = 0.2, -0.1, 0.0
    tilted = frame_of(g).tth(d1, d2)
    g.rot3 = 0.3
    assert np.abs(frame_of(g).tth(d1, d2) - tilted).max() < 1e-12
    assert np.abs(tilted - tth).max() > 1e-3
    code, _, err = cli(args + ["--fix", "wavelength", "-o", "free.poni"], capsys)
    assert code == 5 and "cannot fix the rot3" in err and "rot3 moves χ but no 2θ" in err
    assert not (image.parent / "free.poni").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_program_flags_go_before_or_after_the_subcommand(tmp_path, capsys, where):
    """`geocal -q simulate …` and `geocal simulate … -q` alike; a value that looks like a
    flag stays the value of its option."""
    flags = ["-q", "--traceback"]
    args = ["simulate", tmp_path / "x.edf", "-c", "LaB6", "--energy", "17", "--pixel-size",
            "100", "--shape", "200,200", "--distance", "60"]
    code, out, err = cli(flags + args if where == "before" else args + flags, capsys)
    assert code == 0 and out == "" and err == ""
    code, _, err = cli(["simulate", tmp_path / "y.edf", "--energy", "17", "--calibrant", "-q"],
                       capsys)
    assert code != 0 and not (tmp_path / "y.edf").exists()


def test_json_quiet_and_show_config(lab6_copy, capsys):
    image, cfg = lab6_copy
    code, out, err = cli(["-q", "calib-ring", image, "-c", "LaB6", "--energy", cfg.energy_kev,
                          "-d", "Pilatus1M", "--json"], capsys)
    assert code == 0 and err == ""
    assert json.loads(out)["results"]["calibrant"] == "LaB6"
    code, out, _ = cli(["calib-ring", image, "-c", "LaB6", "--energy", "17", "-d", "Pilatus1M",
                        "--show-config"], capsys)
    assert code == 0 and "energy_kev: 17.0" in out


def _corrupt(folder):
    p = folder / "corrupt.edf"
    p.write_bytes(b"{\nHeaderID = EH:000001:000000:000000 ;\n" + b"\x00" * 10)
    return p


def _write(folder, name, data):
    p = folder / name
    write_image(p, data)
    return p


def _malformed_poni(folder):
    p = folder / "bad.poni"
    p.write_text("this is not a geometry\n")
    return p


BAD = {
    "missing file": (lambda f, img: ["calib-ring", f / "nope.cbf", "-c", "LaB6", "--energy", 17, "-d", "Pilatus1M"], 4, "not found"),
    "corrupt image": (lambda f, img: ["calib-ring", _corrupt(f), "-c", "LaB6", "--energy", 17, "--pixel-size", 172], 4, "not a readable"),
    "1-D array": (lambda f, img: ["calib-ring", _write(f, "line.npy", np.arange(50)), "-c", "LaB6", "--energy", 17, "--pixel-size", 172], 4, ""),
    "empty array": (lambda f, img: ["calib-ring", _write(f, "empty.tif", np.zeros((0, 5), np.int32)), "-c", "LaB6", "--energy", 17, "--pixel-size", 172], 4, ""),
    "pure noise": (lambda f, img: ["calib-ring", _write(f, "noise.edf", np.random.default_rng(1).poisson(40, (400, 400)).astype(np.int32)), "-c", "LaB6", "--energy", 17, "--pixel-size", 100], 5, "no rings|assignment"),
    "wrong calibrant": (lambda f, img: ["calib-ring", img, "-c", "AgBh", "--energy", 17, "-d", "Pilatus1M"], 5, ""),
    # The energy the rings fix leads the message (drawn at 17 keV).
    "energy off by 20 %": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "--energy", 17 * 1.2, "-d", "Pilatus1M"], 5, r"^error: the rings fit LaB6 at λ = 0\.7[23]\d* ± [\d.]+ Å \(1[67]\.\d+ keV.*check the energy"),
    "all pixels masked": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "--energy", 17, "-d", "Pilatus1M", "--mask", _write(f, "mask.edf", np.ones((1043, 981), np.int32))], 4, "no valid pixel"),
    "NaN-filled image": (lambda f, img: ["calib-ring", _write(f, "nan.edf", np.full((300, 300), np.nan, np.float32)), "-c", "LaB6", "--energy", 17, "--pixel-size", 100], 4, "no valid pixel"),
    "malformed guess": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "--energy", 17, "-d", "Pilatus1M", "--guess", _malformed_poni(f)], 4, "malformed PONI"),
    "negative energy": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "--energy", -17, "-d", "Pilatus1M"], 3, "greater than or equal to 0.1"),
    "unknown detector": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "--energy", 17, "-d", "NoSuchDetector9000"], 3, "unknown to pyFAI"),
    "unknown calibrant": (lambda f, img: ["calib-ring", img, "-c", "Unobtainium", "--energy", 17, "-d", "Pilatus1M"], 3, "not a pyFAI calibrant"),
    "no radiation": (lambda f, img: ["calib-ring", img, "-c", "LaB6", "-d", "Pilatus1M"], 3, "--energy"),
    "unknown option": (lambda f, img: ["calib-ring", img, "--frobnicate"], 2, ""),
}


#: Run with --runslow only: a refusal's exit 5 without outputs is CI's "pure noise" case, and
#: wrong calibrants are refused in test_calibrate (simulated) and test_trust_real (real
#: images, no outputs); this one costs 24 s of CI.
SLOW_BAD = {"wrong calibrant"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_BAD else c
                                  for c in sorted(BAD)])
def test_bad_input_one_line_error_exit_code_no_output(case, lab6_copy, capsys):
    image, _ = lab6_copy
    make_args, code_expected, pattern = BAD[case]
    args = make_args(image.parent, image)
    before = outputs(image.parent)
    code, out, err = cli(args, capsys)
    assert code == code_expected, err
    assert "Traceback" not in err
    if code_expected != 2:
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1, err
        if pattern:
            import re
            assert re.search(pattern, lines[0]), lines[0]
    assert outputs(image.parent) == before
    assert not list(image.parent.glob(".*.tmp"))


def test_chained_cli_through_files(tmp_path):
    """simulate → calib-ring → compare with the truth, through the installed command."""
    from tests.conftest import poni_ring_error

    geocal = shutil.which("geocal")
    assert geocal, "the geocal command is not installed"
    run_ = lambda *a: subprocess.run([geocal, *map(str, a)], cwd=tmp_path, capture_output=True, text=True)
    r = run_("simulate", "ceo2.cbf", "-c", "CeO2", "--energy", "25", "--distance", "180",
             "--center", "431.2,577.9", "--tilt", "4", "--tilt-plan-rotation", "130",
             "--beamstop", "18", "--beamstop-arm", "10", "--seed", "11")
    assert r.returncode == 0, r.stderr
    r = run_("calib-ring", "ceo2.cbf", "-c", "CeO2", "--energy", "25", "-d", "Pilatus1M",
             "--report", "ceo2.json")
    assert r.returncode == 0, r.stderr
    assert poni_ring_error(tmp_path / "ceo2.poni", tmp_path / "ceo2.truth.poni", "CeO2",
                           (1043, 981)) < 0.02
    report = json.loads((tmp_path / "ceo2.json").read_text())
    assert report["results"]["geometry"]["fit2d"]["tilt_deg"] == pytest.approx(4.0, abs=0.02)


@pytest.fixture
def recenter_case(lab6_pilatus, tmp_path, monkeypatch):
    """The LaB6 image and its truth geometry with the beam centre moved by (+7.3, −4.1) px."""
    from geocal_cli.core.geometry.frame import frame_of, make_geometry, poni_for_beam_center
    from geocal_cli.io.poni import write_poni

    sim, _ = lab6_pilatus
    monkeypatch.chdir(tmp_path)
    g = sim.geometry
    b = frame_of(g).beam_center()
    p1, p2 = poni_for_beam_center(g, b[0] - 4.1, b[1] + 7.3)
    write_poni(tmp_path / "ref.poni", make_geometry(g.detector, g.dist, p1, p2, g.rot1, g.rot2,
                                                    g.rot3, g.wavelength))
    return sim, tmp_path / "ref.poni", b


def test_recenter_writes_moved_poni(recenter_case, tmp_path, capsys):
    import pyFAI

    from geocal_cli.core.geometry.frame import frame_of

    sim, ref, b = recenter_case
    code, out, err = cli(["recenter", sim.image, "--poni", ref, "-c", "LaB6", "--plot", "r.png"], capsys)
    assert code == 0, err
    assert outputs(tmp_path) == ["image.recenter.json", "image.recentered.poni", "r.png", "ref.poni"]
    new = pyFAI.load(str(tmp_path / "image.recentered.poni"))
    assert np.allclose(frame_of(new).beam_center(), b, atol=0.05)
    old = pyFAI.load(str(ref))
    assert (new.dist, new.rot1, new.rot2, new.wavelength) == (old.dist, old.rot1, old.rot2, old.wavelength)
    report = json.loads((tmp_path / "image.recenter.json").read_text())
    assert report["results"]["method"] == "ring"
    assert report["results"]["shift"]["x_px"] == pytest.approx(-7.3, abs=0.05)
    assert "new centre" in out


def test_recenter_friedel_on_a_simulated_spot_pattern(tmp_path, monkeypatch, capsys):
    """simulate --spots → EMD → recenter (auto: no calibrant, so Friedel pairs) on the truth moved."""
    import pyFAI

    from geocal_cli.core.geometry.frame import frame_of, make_geometry, poni_for_beam_center
    from geocal_cli.io.poni import write_poni

    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["simulate", "sad.tif", "--spots", "2.039,2.039,90", "--spot-rotation", "17",
                        "--voltage", "200", "--pixel-size", "55", "--shape", "1024,1024",
                        "--distance", "400", "--width", "2", "--center", "522.1,505.2",
                        "--axis-ratio", "1.03", "--ellipse-angle", "40", "--beamstop", "20",
                        "--beamstop-arm", "120", "--seed", "3"], capsys)
    assert code == 0, err
    g = pyFAI.load("sad.truth.poni")
    b = frame_of(g).beam_center()
    p1, p2 = poni_for_beam_center(g, b[0] - 6.5, b[1] + 8.2)
    write_poni(tmp_path / "ref.poni", make_geometry(g.detector, g.dist, p1, p2, g.rot1, g.rot2,
                                                    g.rot3, g.wavelength))
    # Through an EMD file, as a microscope would save it (rosettasciio reader).
    from rsciio.emd import file_writer

    from geocal_cli.io.images import read_image
    from tests.conftest import emd_signal

    file_writer(str(tmp_path / "sad.emd"), emd_signal(read_image(tmp_path / "sad.tif").data))
    code, out, err = cli(["recenter", "sad.emd", "--poni", "ref.poni", "--plot", "pairs.png"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "sad.recenter.json").read_text())
    assert report["results"]["method"] == "friedel"
    assert "friedel succeeded" in report["results"]["method_reason"]
    new = pyFAI.load("sad.recentered.poni")
    assert np.allclose(frame_of(new).beam_center(), b, atol=0.05)
    assert report["residuals"]["pairs"] > 40
    assert "pair asymmetry" in out and (tmp_path / "pairs.png").stat().st_size > 0


@pytest.mark.parametrize("args, code, message", [
    (["missing.tif", "--poni", "{ref}", "-c", "LaB6"], 4, "missing.tif"),
    (["{corrupt}", "--poni", "{ref}", "-c", "LaB6"], 4, "corrupt"),
    (["{small}", "--poni", "{ref}", "-c", "LaB6"], 4, "detector"),
    (["{flat}", "--poni", "{ref}", "-c", "LaB6", "--method", "ring"], 5, "no ring"),
    (["{image}", "--poni", "{ref}", "--method", "beam"], 5, "direct beam absent"),
    (["{image}", "--poni", "{ref}", "--method", "friedel"], 5, "no Friedel pairs"),
    (["{image}", "--poni", "{ref}"], 5, "friedel: no Friedel pairs"),
    (["{image}", "--poni", "{ref}", "-c", "LaB6", "--mask", "{allmask}"], 4, "no valid pixel"),
    (["{image}", "--poni", "{ref}", "--method", "ring"], 3, "calibrant"),
    (["{image}", "--poni", "{ref}", "-c", "LaB6", "--ring", "x"], 3, "--ring"),
])
def test_recenter_bad_input(recenter_case, tmp_path, capsys, args, code, message):
    sim, ref, _ = recenter_case
    shape = sim.data.shape
    (tmp_path / "corrupt.edf").write_bytes(b"not an image at all")
    write_image(tmp_path / "small.edf", np.ones((100, 100), np.int32))
    write_image(tmp_path / "flat.edf", np.random.default_rng(0).poisson(30, shape).astype(np.int32))
    write_image(tmp_path / "allmask.edf", np.ones(shape, np.int8))
    files = {"ref": ref, "image": sim.image, "corrupt": tmp_path / "corrupt.edf",
             "small": tmp_path / "small.edf", "flat": tmp_path / "flat.edf",
             "allmask": tmp_path / "allmask.edf"}
    before = outputs(tmp_path)
    got, _, err = cli(["recenter"] + [a.format(**files) for a in args], capsys)
    assert got == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last
    assert outputs(tmp_path) == before
