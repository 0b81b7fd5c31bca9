"""What the command line shows: help text, global flags anywhere, --show-config alone, one
vocabulary for config keys and flags, the libraries' messages kept off stderr."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import geocal

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["calib-ring", "recenter", "convert-poni", "q-check", "grid-distortion", "batch",
               "simulate", "demo", "schema"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_shows_flags_without_values_arguments_by_name_and_exit_codes(sub, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = geocal([sub, "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out
    usage = next(ln for ln in out.splitlines() if "Usage:" in ln)
    assert "{" not in usage
    assert "Exit codes:" in out
    # Paragraphs are wrapped to the window, not at the docstring's line breaks: no line of
    # prose ends far short of the width while the next goes on with the same sentence.
    lines = [ln.strip() for ln in out.splitlines()]
    for first, second in zip(lines, lines[1:]):
        if first and second and not first.startswith(("│", "╭", "╰", "geocal", "Usage")) \
                and second[:1].islower() and not first.endswith((".", ":", ";")):
            assert len(first) > 60, (first, second)


def test_usage_names_the_argument(capsys):
    code, out, _ = geocal(["calib-ring", "--help"], capsys)
    assert re.search(r"Usage: geocal calib-ring \[OPTIONS\] \[IMAGE\]", out)


@pytest.mark.parametrize("flag", ["-q", "--quiet", "-v", "--verbose", "--traceback"])
def test_global_flags_after_the_subcommand(flag, tmp_path, capsys):
    code, out, err = geocal(["simulate", tmp_path / "s.npy", "--pixel-size", "100", "--shape", "64,64",
                             "--energy", "17", "--distance", "50", flag], capsys)
    assert code == 0
    assert (tmp_path / "s.npy").exists()
    if flag in ("-q", "--quiet"):
        assert out == "" and err == ""


def test_library_messages_only_with_verbose(tmp_path, capsys):
    image = tmp_path / "s.edf"
    assert geocal(["-q", "simulate", image, "--pixel-size", "100", "--shape", "128,128",
                   "--energy", "17", "--distance", "50"], capsys)[0] == 0
    poni = tmp_path / "s.truth.poni"
    args = ["q-check", image, "--poni", poni, "-c", "LaB6", "--report", tmp_path / "q.json"]
    code, _, err = geocal(args, capsys)
    assert "fabio" not in err
    code_v, _, err_v = geocal(args + ["-v"], capsys)
    assert code_v == code
    assert re.search(r"^fabio[.\w]*: DEBUG: ", err_v, re.M)


@pytest.mark.parametrize("sub, required", [("calib-ring", ["image", "calibrant"]),
                                           ("convert-poni", ["input", "to"]),
                                           ("recenter", ["image", "poni"])])
def test_show_config_without_arguments(sub, required, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("overwrite: true\n")
    code, out, _ = geocal([sub, "--show-config", "--config", config], capsys)
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown["overwrite"] is True
    note = next(ln for ln in out.splitlines() if ln.startswith("# not yet valid"))
    for key in required:
        assert f"'{key}' is required" in note


def test_missing_argument_names_argument_and_config_key(capsys):
    code, _, err = geocal(["calib-ring", "-c", "LaB6", "--energy", "17"], capsys)
    assert code == 3
    assert "'image' is required (the IMAGE argument, or 'image:' in --config)" in err


@pytest.mark.parametrize("sub, key, meant, flag", [
    ("calib-ring", "energy", "energy_kev", "--energy"),
    ("calib-ring", "pixel-size", "pixel_size_um", "--pixel-size"),
    ("calib-ring", "calibrnat", "calibrant", "--calibrant"),
    ("convert-poni", "source_format", "from", "--from"),
    ("batch", "wait", "wait_s", "--wait"),
    ("simulate", "spots", "spot_lattice", "--spots"),
])
def test_unknown_key_suggests_the_key_and_its_flag(sub, key, meant, flag, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"{key}: 1\n" + ("subcommand: q-check\ninputs: [x.tif]\nout_dir: o\n" if sub == "batch" else ""))
    code, _, err = geocal([sub, "--config", config, "--show-config"], capsys)
    assert code == 3
    assert f"unknown key '{key}': did you mean '{meant}' (flag {flag})?" in err


def test_convert_poni_config_key_is_the_flag_name(tmp_path, capsys):
    poni = tmp_path / "g.poni"
    poni.write_text("poni_version: 2.1\nDetector: Pilatus1M\nDetector_config: {}\nDistance: 0.2\n"
                    "Poni1: 0.09\nPoni2: 0.08\nRot1: 0\nRot2: 0\nRot3: 0\nWavelength: 1e-10\n")
    config = tmp_path / "c.yaml"
    config.write_text("from: dioptas\nto: poni\n")
    code, out, _ = geocal(["convert-poni", poni, "--config", config, "--show-config"], capsys)
    assert code == 0
    assert yaml.safe_load(out)["from"] == "dioptas"


def test_man_page_summaries_are_sentences():
    text = (ROOT / "man" / "geocal.1").read_text()
    summaries = re.findall(r"^\\fB[\w\\-]+\\fR\n(.+)\nSee ", text, re.M)
    assert len(summaries) == len(SUBCOMMANDS)
    assert all(s.endswith(".") for s in summaries), summaries


BASH = shutil.which("bash")


def _complete(*words: str) -> list[str]:
    script = (f"source {ROOT / 'completions' / 'geocal.bash'}\n"
              'COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _geocal\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run([BASH, "-c", script, "bash", *words], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_bash_completes_values():
    from pyFAI.detectors import detector_factory

    detectors = _complete("geocal", "calib-ring", "x.tif", "-d", "Pil")
    assert "Pilatus1M" in detectors and "Pilatus300kw" in detectors
    for name in detectors:
        detector_factory(name)
    assert _complete("geocal", "calib-ring", "x.tif", "--fix", "dist,ro") == ["dist,rot1", "dist,rot2", "dist,rot3"]
    assert "dist,wavelength" in _complete("geocal", "calib-ring", "x.tif", "--fix", "dist,")
    assert _complete("geocal", "convert-poni", "a.expt", "--to", "g") == ["gsas2"]
    assert sorted(_complete("geocal", "convert-poni", "a.expt", "--from", "di")) == ["dials", "dioptas"]
    assert _complete("geocal", "recenter", "a.tif", "--method", "f") == ["friedel"]
    assert _complete("geocal", "q-check", "a.tif", "--positions", "") == ["obs", "cal"]
    assert "CeO2" in _complete("geocal", "calib-ring", "x.tif", "-c", "Ce")
    assert "auto" in _complete("geocal", "calib-ring", "x.tif", "-c", "a")
    # Under batch: the run subcommand's values and batch's own.
    assert "Eiger2_4M" in _complete("geocal", "batch", "calib-ring", "x/", "-d", "Eiger2_4")
    assert "arm-2theta" in _complete("geocal", "batch", "calib-ring", "x/", "--joint", "")
    assert "--out-dir" in _complete("geocal", "batch", "calib-ring", "x/", "--out")
    assert {"header:", "sidecar:"} <= set(_complete("geocal", "batch", "calib-ring", "x/", "--positions", ""))


def test_man_option_prints_the_page(capsys):
    code, out, _ = geocal(["--man", "q-check"], capsys)
    assert code == 0
    assert out == (ROOT / "man" / "geocal-q-check.1").read_text()
    code, _, err = geocal(["--man", "q-chek"], capsys)
    assert code == 2 and "no manual page 'q-chek'" in err
