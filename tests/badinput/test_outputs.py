"""Files are sacred: default names never collide, inputs and foreign files are never written
over, a failed or interrupted run leaves the folder byte-identical, a killed run's
temporaries are removed by the next run, and a Make chain with default names keeps every
step's file."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.badinput.corpus import snapshot
from tests.cli.test_cli import cli

SMALL = ["--pixel-size", "100", "--shape", "300,320", "--distance", "80", "--energy", "17",
         "-c", "LaB6", "--seed", "3"]
CALIB = ["-c", "LaB6", "--energy", "17", "--pixel-size", "100"]


@pytest.fixture(scope="module")
def ring_image(tmp_path_factory):
    """A small LaB6 image (300 × 320, 100 µm pixels) that calibrates in well under a second."""
    folder = tmp_path_factory.mktemp("ring")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert _geocal_inproc(["simulate", "lab6.edf", *SMALL]) == 0
    finally:
        os.chdir(cwd)
    return folder / "lab6.edf"


def _geocal_inproc(args) -> int:
    from geocal_cli.main import run

    try:
        run([str(a) for a in args])
    except SystemExit as exc:
        return exc.code
    return 0


#: The installed console script (what users run; `python -m` differs in how CPython reports
#: a Ctrl-C during start-up).
GEOCAL = str(Path(sys.executable).with_name("geocal"))


def _geocal(args, cwd, **kw):
    return subprocess.run([GEOCAL, *map(str, args)], cwd=cwd, capture_output=True, text=True, **kw)


def test_inputs_are_never_written_over(tmp_path, ring_image, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ring_image, "img.edf")
    shutil.copy(ring_image.with_name("lab6.truth.poni"), "in.poni")
    before = snapshot(tmp_path)
    for args in (["calib-ring", "img.edf", *CALIB, "-o", "img.edf"],
                 ["convert-poni", "in.poni", "--to", "fit2d", "--report", "in.poni"],
                 ["simulate", "img.edf", "--truth", "img.edf", "--energy", "17"],
                 ["simulate", "sim.edf", "--truth", "sim.edf", "--energy", "17"],
                 ["q-check", "img.edf", "--poni", "in.poni", "-c", "LaB6", "--report", "in.poni"],
                 ["recenter", "img.edf", "--poni", "in.poni", "-c", "LaB6", "-o", "in.poni"]):
        code, _, err = cli(args, capsys)
        assert code == 3 and "error:" in err, (args, err)
        assert snapshot(tmp_path) == before, args


def test_default_names_keep_the_whole_name(tmp_path, ring_image, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ["run.0001.edf", "run.0002.edf", "lab6_17.5keV.edf", ".hidden.edf"]
    for name in names:
        shutil.copy(ring_image, name)
        assert cli(["calib-ring", name, *CALIB], capsys)[0] == 0
    for stem in ("run.0001", "run.0002", "lab6_17.5keV", ".hidden"):
        assert (tmp_path / f"{stem}.poni").is_file() and (tmp_path / f"{stem}.calib.json").is_file()
    assert not (tmp_path / "run.poni").exists() and not (tmp_path / ".poni").exists()
    from geocal_cli.io.outputs import default_name

    assert default_name("a/lab6_17.5keV.cbf.gz", ".poni") == Path("lab6_17.5keV.poni")
    assert default_name("noext", ".poni") == Path("noext.poni")


def test_a_foreign_poni_beside_the_image_needs_overwrite(tmp_path, ring_image, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ring_image, "ceo2.edf")
    Path("ceo2.poni").write_text("# Dioptas\nDistance: 0.2\nPoni1: 0.1\nPoni2: 0.1\n")
    before = snapshot(tmp_path)
    code, _, err = cli(["calib-ring", "ceo2.edf", *CALIB], capsys)
    assert code == 3 and "--overwrite" in err and snapshot(tmp_path) == before
    assert cli(["calib-ring", "ceo2.edf", *CALIB, "--overwrite"], capsys)[0] == 0
    assert "written by geocal" in Path("ceo2.poni").read_text()
    # Its own output is then replaced without --overwrite, as Make expects.
    assert cli(["calib-ring", "ceo2.edf", *CALIB], capsys)[0] == 0


def test_a_make_chain_with_default_names_never_overwrites_an_earlier_step(tmp_path, ring_image, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ring_image, "ceo2.edf")
    steps = [["calib-ring", "ceo2.edf", *CALIB],
             ["q-check", "ceo2.edf", "--poni", "ceo2.poni", "-c", "LaB6"],
             ["recenter", "ceo2.edf", "--poni", "ceo2.poni", "-c", "LaB6"],
             ["convert-poni", "ceo2.recentered.poni", "--to", "poni"],
             ["convert-poni", "ceo2.recentered.poni", "--to", "fit2d"]]
    seen: dict[str, str] = {}
    for args in steps:
        code, _, err = cli(args, capsys)
        assert code == 0, (args, err)
        now = snapshot(tmp_path)
        for name, digest in seen.items():
            assert now[name] == digest, f"{args[0]} changed {name}"
        seen = now
    assert {"ceo2.poni", "ceo2.calib.json", "ceo2.qcheck.json", "ceo2.recentered.poni",
            "ceo2.recenter.json", "ceo2.recentered.converted.poni", "ceo2.recentered.fit2d.yaml",
            "ceo2.recentered.converted.convert.json", "ceo2.recentered.fit2d.convert.json"} <= set(seen)


RUNS = {
    "calib-ring": ["calib-ring", "img.edf", *CALIB, "--plot", "c.png"],
    "recenter": ["recenter", "img.edf", "--poni", "ref.poni", "-c", "LaB6", "--plot", "r.png"],
    "q-check": ["q-check", "img.edf", "--poni", "ref.poni", "-c", "LaB6", "--plot", "q.png"],
    "convert-poni": ["convert-poni", "ref.poni", "--to", "gsas2"],
    "simulate": ["simulate", "s.edf", *SMALL],
    "grid-distortion": ["grid-distortion", "grid.edf", "--pitch", "1", "--spline", "g.spline",
                        "--corrected", "g.corrected.edf", "--plot", "g.png"],
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, ring_image):
    """A folder where every subcommand of RUNS has run once (its outputs exist)."""
    folder = tmp_path_factory.mktemp("work")
    shutil.copy(ring_image, folder / "img.edf")
    shutil.copy(ring_image.with_name("lab6.truth.poni"), folder / "ref.poni")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert _geocal_inproc(["simulate", "grid.edf", "--grid", "1", "--pixel-size", "100",
                               "--shape", "256,256", "--radial", "2"]) == 0
        for args in RUNS.values():
            assert _geocal_inproc(args) == 0, args
    finally:
        os.chdir(cwd)
    return folder


@pytest.mark.parametrize("command", sorted(RUNS))
def test_a_failure_at_any_output_leaves_the_folder_as_it_was(command, workspace, tmp_path, capsys,
                                                              monkeypatch):
    """A full disk at the k-th output (after its temporary exists), for every k: exit 4 naming
    the output, every existing file byte-identical, no temporary left."""
    from geocal_cli.io import outputs

    folder = tmp_path / "w"
    shutil.copytree(workspace, folder)
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    real_stage = outputs.Outputs.stage
    k = 0
    while True:
        calls = []

        def failing_stage(self, target, k=k):
            staged = real_stage(self, target)
            calls.append(target)
            if len(calls) > k:
                staged.write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device", str(staged))
            return staged

        monkeypatch.setattr(outputs.Outputs, "stage", failing_stage)
        code, _, err = cli(RUNS[command], capsys)
        monkeypatch.setattr(outputs.Outputs, "stage", real_stage)
        if len(calls) <= k:           # every output was staged: no failure left to inject
            assert code == 0
            break
        assert code == 4 and "no space left" in err and str(calls[-1]) in err, (command, k, err)
        assert snapshot(folder) == before, (command, k)
        k += 1
    assert k >= 2, "each run writes at least two outputs"


def test_a_failed_rename_undoes_the_earlier_ones(workspace, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "w"
    shutil.copytree(workspace, folder)
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    real_replace = os.replace
    renames = []

    def replace(src, dst):
        if str(src).endswith(".tmp") or ".geocal-" in str(src):
            renames.append(dst)
            if len(renames) == 2:
                raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, _, err = cli(RUNS["calib-ring"], capsys)
    monkeypatch.setattr(os, "replace", real_replace)
    assert code == 4 and snapshot(folder) == before, err


def test_the_report_is_renamed_before_the_outputs_it_vouches_for(workspace, tmp_path, capsys,
                                                                  monkeypatch):
    """A SIGKILL between two renames cannot be blocked: the report goes first, so a PONI or a
    plot never stands without it (a killed batch left f0.poni without f0.calib.json)."""
    folder = tmp_path / "w"
    shutil.copytree(workspace, folder)
    monkeypatch.chdir(folder)
    real_replace = os.replace
    renames = []

    def replace(src, dst):
        if ".geocal-" in str(src):
            renames.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, _, err = cli(RUNS["calib-ring"], capsys)
    monkeypatch.setattr(os, "replace", real_replace)
    assert code == 0, err
    assert renames[0] == "img.calib.json" and {"img.poni", "c.png"} <= set(renames[1:]), renames


def test_sigint_and_sigterm_at_random_moments(workspace, tmp_path):
    """Each subcommand run twice, once stopped by SIGINT and once by SIGTERM at a random
    moment: exit 130 with 'interrupted' and the folder byte-identical, or (signal after the
    commit) exit 130 saying the outputs are complete, or exit 0; never a temporary."""
    folder = tmp_path / "w"
    shutil.copytree(workspace, folder)
    rng = np.random.default_rng(7)
    before = snapshot(folder)
    finished = 0
    runs = 2 * len(RUNS)
    for i in range(runs):
        command = sorted(RUNS)[i % len(RUNS)]
        proc = subprocess.Popen([GEOCAL, *RUNS[command]], cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGINT if i < len(RUNS) else signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
        now = snapshot(folder)
        assert not [n for n in now if ".geocal-" in n], err
        last = err.strip().splitlines()[-1]
        if proc.returncode == 0 or "outputs were written" in last:
            assert proc.returncode in (0, 130), err[-300:]
            finished += 1
            before = now
            continue
        assert proc.returncode == 130 and last == "interrupted", (command, err[-300:])
        assert now == before, command
    assert finished < runs


def test_sigkill_leaves_only_temporaries_the_next_run_removes(workspace, tmp_path):
    folder = tmp_path / "w"
    shutil.copytree(workspace, folder)
    leftover = folder / f".geocal-{2**22 + 12345}-dead.tmp"   # a pid no process has
    leftover.mkdir()
    (leftover / "c.png").write_bytes(b"half")
    proc = subprocess.Popen([GEOCAL, *RUNS["calib-ring"]], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    proc.kill()
    proc.wait()
    assert _geocal(RUNS["calib-ring"], folder).returncode == 0
    assert not [p for p in folder.iterdir() if ".geocal-" in p.name]


def test_non_utf8_file_names(tmp_path, ring_image):
    name = os.fsdecode(b"lab6_\xff.edf")
    shutil.copy(ring_image, tmp_path / name)
    res = _geocal(["calib-ring", name, *CALIB], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / os.fsdecode(b"lab6_\xff.poni")).is_file()
    report = (tmp_path / os.fsdecode(b"lab6_\xff.calib.json")).read_text(encoding="utf-8")
    assert "lab6_" in report
