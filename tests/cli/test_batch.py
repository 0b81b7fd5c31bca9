"""`geocal batch`: many inputs through one subcommand, resumable, crash-safe, locked."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyFAI
import pytest

from tests.cli.conftest import geocal
from tests.conftest import assert_valid_report, poni_ring_error

CALIB = ["-c", "LaB6", "--energy", "17", "-d", "Pilatus1M"]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Three LaB6 images in one folder, the first again (same name) in a second folder, a
    corrupt file and an image without rings."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    root = tmp_path_factory.mktemp("series")
    (root / "a").mkdir()
    for i, dist in enumerate((180.0, 200.0, 220.0)):
        simulate.run(SimulateConfig(output=root / "a" / f"frame{i}.edf", calibrant="LaB6",
                                    energy_kev=17.0, detector="Pilatus1M", distance_mm=dist,
                                    center_px=(480.0 + 5 * i, 520.0), seed=i))
    (root / "b").mkdir()
    shutil.copy(root / "a" / "frame0.edf", root / "b" / "frame0.edf")
    (root / "b" / "corrupt.edf").write_bytes(b"not an image at all")
    rng = np.random.default_rng(0)
    from geocal_cli.io.images import write_image

    write_image(root / "b" / "noise.edf", rng.poisson(40, (1043, 981)).astype(np.int32))
    return root


@pytest.fixture(scope="module")
def geometries(series, tmp_path_factory):
    """The series' three true geometries as PONI files: items for the rules of a batch
    (skip, redo, lock, resume), which do not depend on the subcommand and which
    convert-poni runs in milliseconds."""
    root = tmp_path_factory.mktemp("geometries")
    for i in range(3):
        shutil.copy(series / "a" / f"frame{i}.truth.poni", root / f"frame{i}.poni")
    return root


def _to_fit2d(inputs, out, *options) -> list:
    """A batch converting `inputs` to Fit2D geometries in `out`."""
    return ["batch", "convert-poni", inputs, "--to", "fit2d", "--out-dir", out, *options]


def _inputs(series):
    return [series / "a", series / "b"]


@pytest.fixture(scope="module")
def calibrated(series, tmp_path_factory):
    """One 2-worker calib-ring batch over both folders, shared by the tests that read its
    outputs: (out dir, exit code, stderr)."""
    from geocal_cli.main import run

    out = tmp_path_factory.mktemp("calibrated") / "out"
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exc:
        run([str(a) for a in ["batch", "calib-ring", *_inputs(series), *CALIB, "--out-dir", out,
                              "--jobs", "2"]])
    return out, exc.value.code, err.getvalue()


def _manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_a_series_with_bad_files_exits_7_and_writes_every_good_item(series, calibrated):
    out, code, err = calibrated
    assert code == 7, err
    records = {Path(r["input"]).relative_to(series).as_posix(): r for r in _manifest(out)}
    assert {k for k, r in records.items() if r["status"] == "ok"} == \
        {"a/frame0.edf", "a/frame1.edf", "a/frame2.edf", "b/frame0.edf"}
    assert records["b/corrupt.edf"]["exit_code"] == 4
    assert records["b/noise.edf"]["exit_code"] == 5
    # same name in two folders: two sets of outputs, in the inputs' relative folders
    for rel in ("a/frame0", "a/frame1", "a/frame2", "b/frame0"):
        assert (out / f"{rel}.poni").is_file() and (out / f"{rel}.calib.json").is_file()
    assert not (out / "b" / "corrupt.poni").exists() and not (out / "b" / "noise.poni").exists()
    # each result is the calibration of its own image
    for i in range(3):
        err_px = poni_ring_error(out / "a" / f"frame{i}.poni",
                                 series / "a" / f"frame{i}.truth.poni", "LaB6", (1043, 981))
        assert err_px < 0.05
    summary = assert_valid_report(out / "batch.json")
    assert summary["counts"] == {"ok": 4, "failed": 2, "skipped": 0}
    for rel in ("a/frame0", "b/frame0"):
        item = assert_valid_report(out / f"{rel}.calib.json")
        assert item["provenance"]["command_line"].startswith("geocal batch calib-ring ")
    assert "2 of 6 items failed" in err


@pytest.mark.parametrize("cores, workers", [({0, 1, 2}, [3]), ({5}, [])])
def test_the_default_workers_are_the_cores_the_process_may_run_on(geometries, tmp_path, capsys,
                                                                   monkeypatch, cores, workers):
    """Without --jobs a batch starts one worker per core of its CPU affinity (a SLURM
    allocation, taskset), not of the machine; on one core it runs in its own process."""
    from concurrent.futures import ThreadPoolExecutor

    from geocal_cli.core.rings import parallel
    from geocal_cli.pipeline import batch

    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: cores, raising=False)
    started = []

    def local_executor(jobs):
        started.append(jobs)
        return ThreadPoolExecutor(jobs)

    monkeypatch.setattr(batch, "local_executor", local_executor)
    out = tmp_path / "out"
    assert geocal(_to_fit2d(geometries, out), capsys)[0] == 0
    assert started == workers
    assert len(list(out.rglob("*.fit2d.yaml"))) == 3


def test_a_rerun_does_no_work_and_force_redoes_all(geometries, tmp_path, capsys):
    out = tmp_path / "out"
    args = _to_fit2d(geometries, out, "--jobs", "1")
    assert geocal(args, capsys)[0] == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.fit2d.yaml")}
    assert len(stamps) == 3
    code, _, err = geocal(args, capsys)
    assert code == 0 and err.count("skipped (done, unchanged)") == 3
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.fit2d.yaml")} == stamps
    assert [r["status"] for r in _manifest(out)][-3:] == ["skipped"] * 3
    code, _, err = geocal([*args, "--force"], capsys)
    assert code == 0 and "skipped" not in err
    assert [r["status"] for r in _manifest(out)][-3:] == ["ok"] * 3


def test_a_changed_input_output_or_config_is_redone(geometries, tmp_path, capsys):
    inputs = tmp_path / "in"
    shutil.copytree(geometries, inputs)
    out = tmp_path / "out"
    args = _to_fit2d(inputs, out, "--jobs", "1")
    assert geocal(args, capsys)[0] == 0
    (out / "frame1.fit2d.yaml").unlink()   # a lost output
    code, _, err = geocal(args, capsys)
    assert code == 0 and err.count("skipped") == 2 and "frame1.poni: ok" in err
    poni = inputs / "frame2.poni"           # an input rewritten in place
    text = poni.read_text()
    poni.write_text(text.replace("Distance: 0.22", "Distance: 0.23"))
    assert poni.read_text() != text
    code, _, err = geocal(args, capsys)
    assert code == 0 and err.count("skipped") == 2 and "frame2.poni: ok" in err
    code, _, err = geocal([*args, "--flip", "ud,lr"], capsys)      # another config
    assert code == 0 and "skipped" not in err


def test_a_torn_last_line_of_a_killed_run_is_ignored(geometries, tmp_path, capsys):
    out = tmp_path / "out"
    args = _to_fit2d(geometries, out, "--jobs", "1")
    assert geocal(args, capsys)[0] == 0
    with open(out / "manifest.jsonl", "a") as f:
        f.write('{"schema": "geocal.batch", "input": "/x", "sta')
    code, _, err = geocal(args, capsys)
    assert code == 0 and err.count("skipped") == 3


def test_a_locked_folder_exits_8_and_wait_waits(geometries, tmp_path, capsys):
    from filelock import FileLock

    out = tmp_path / "out"
    out.mkdir()
    args = _to_fit2d(geometries / "frame0.poni", out)
    with FileLock(str(out / ".geocal-batch.lock")):
        code, _, err = geocal(args, capsys)
        assert code == 8 and "locked by another geocal batch run" in err
        code, _, err = geocal([*args, "--wait", "0.5"], capsys)
        assert code == 8
    assert not (out / "manifest.jsonl").exists()
    assert geocal(args, capsys)[0] == 0


def test_dry_run_writes_nothing(geometries, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = geocal(_to_fit2d(geometries, out, "--dry-run"), capsys)
    assert code == 0 and "would run 3, skip 0" in stdout
    assert not out.exists()


@pytest.mark.parametrize("flag, instead", [(["-o", "x.poni"], "--out-dir"),
                                           (["--plot", "x.png"], "--plots")])
def test_per_item_output_options_are_refused(series, tmp_path, capsys, flag, instead):
    code, _, err = geocal(["batch", "calib-ring", series / "a", *CALIB, *flag,
                           "--out-dir", tmp_path / "out"], capsys)
    assert code == 3 and instead in err


def test_unknown_inputs_and_options_are_config_errors(series, tmp_path, capsys):
    code, _, err = geocal(["batch", "calib-ring", tmp_path / "nothing*.edf", *CALIB,
                           "--out-dir", tmp_path / "out"], capsys)
    assert code == 3 and "no such file" in err
    code, _, err = geocal(["batch", "calib-ring", series / "a", "--bogus", "--out-dir",
                           tmp_path / "out"], capsys)
    assert code == 3 and "--bogus" in err
    code, _, err = geocal(["batch", "simulate", series / "a", "--out-dir", tmp_path / "out"], capsys)
    assert code == 3 and "calib-ring" in err


def test_a_batch_config_file_and_an_input_list(geometries, tmp_path, capsys):
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# tonight\n{geometries / 'frame0.poni'}\n\n{geometries / 'frame2.poni'}\n")
    config = tmp_path / "batch.yaml"
    config.write_text(f"subcommand: convert-poni\ninputs: ['@{listing}']\nout_dir: {tmp_path / 'out'}\n"
                      "jobs: 1\noptions:\n  to: fit2d\n")
    code, _, err = geocal(["batch", "--config", config], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.fit2d.yaml")) == \
        ["frame0.fit2d.yaml", "frame2.fit2d.yaml"]


def test_the_sample_batch_config_validates_its_options():
    from geocal_cli.config.base import load_config, read_yaml
    from geocal_cli.config.batch import BatchConfig
    from geocal_cli.config.calib_ring import CalibRingConfig

    path = Path(__file__).resolve().parents[2] / "sample_configs" / "batch.yaml"
    cfg = load_config(BatchConfig, path, {})
    assert load_config(CalibRingConfig, read_yaml(path)["options"], {"image": "x.edf"})
    assert cfg.subcommand == "calib-ring"


def _records_so_far(out: Path) -> int:
    try:
        return (out / "manifest.jsonl").read_text().count("\n")
    except FileNotFoundError:
        return 0


def test_a_killed_run_leaves_whole_items_and_the_rerun_completes_the_rest(series, tmp_path):
    """SIGKILL of a 2-worker run at two moments (before any item is recorded, and after the
    first, with the second in flight): every output present parses, no item is partial, and
    the rerun does exactly the missing items."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        shutil.copy(series / "a" / f"frame{i % 3}.edf", images / f"f{i}.edf")
    for records in (0, 1):
        out = tmp_path / f"out{records}"
        args = [sys.executable, "-m", "geocal_cli", "batch", "calib-ring", str(images), *CALIB,
                "--out-dir", str(out), "--jobs", "2"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while _records_so_far(out) < records and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if records == 0:
            time.sleep(1.0)      # workers starting, items in flight, nothing recorded yet
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done = {Path(r["input"]).name for r in _manifest(out) if r["status"] == "ok"} \
            if (out / "manifest.jsonl").exists() else set()
        assert len(done) >= records
        for poni in out.glob("*.poni"):
            pyFAI.load(str(poni))
            assert (out / poni.name.replace(".poni", ".calib.json")).is_file()
        for report in out.glob("*.calib.json"):
            json.loads(report.read_text())
        rerun = subprocess.run(args, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stderr.count("skipped (done, unchanged)") == len(done)
        assert sorted(p.name for p in out.glob("*.poni")) == [f"f{i}.poni" for i in range(4)]
        assert not list(out.glob(".geocal-*.tmp"))


def _running_batch(series, tmp_path, n: int, prefix: str, records: int, stdout):
    """A 2-worker calib-ring batch of `n` copies of the series' frames, started in the
    background and awaited until `records` items are recorded: (process, out dir, argv)."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n):
        shutil.copy(series / "a" / f"frame{i % 3}.edf", images / f"{prefix}{i}.edf")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "geocal_cli", "batch", "calib-ring", str(images), *CALIB,
            "--out-dir", str(out), "--jobs", "2"]
    # A test run started in the background of a non-interactive shell ignores SIGINT, and
    # geocal keeps an ignored SIGINT ignored (as a background job should): this run is a
    # foreground one.
    proc = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while _records_so_far(out) < records and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, out, args


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_stop_signal_just_after_a_worker_took_an_item_still_records_it(series, tmp_path, capsys,
                                                                          monkeypatch):
    """A stop signal can land in the instant after a worker took the next item and before the
    batch noted it: that item still finishes, and its record is written with its outputs (a
    PONI without a record once slipped through on a loaded machine). The signal here is
    SIGTERM, which stops a run as Ctrl-C does (a test worker may ignore SIGINT)."""
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from geocal_cli.pipeline import batch

    class SignalledAtThirdItem(ThreadPoolExecutor):
        calls = 0

        def submit(self, *args, **kwargs):
            fut = super().submit(*args, **kwargs)
            type(self).calls += 1
            if type(self).calls == 3:
                signal.raise_signal(signal.SIGTERM)     # handled here, unless held back
            return fut

    monkeypatch.setattr(batch, "local_executor", lambda jobs: SignalledAtThirdItem(jobs))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        shutil.copy(series / "a" / f"frame{i % 3}.edf", images / f"h{i}.edf")
    out = tmp_path / "out"
    code, _, err = geocal(["batch", "calib-ring", images, *CALIB, "--out-dir", out, "--jobs", "2"],
                          capsys)
    assert code == 130, err
    # The third item was just taken; on a loaded machine the first may already be done,
    # so one or two are in flight, and the last two never start.
    assert re.search(r"finishing the [12] item\(s\) in flight, not starting 2\b", err), err
    records = _manifest(out)
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    assert len(list(out.glob("*.poni"))) == 3


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find workers")
def test_a_worker_killed_mid_run_fails_only_its_items_and_a_fresh_pool_goes_on(series, tmp_path):
    """SIGKILL of one worker (the out-of-memory killer's way): the items in flight are
    recorded as failed ("worker lost"), a fresh pool runs the rest, exit 7, and the rerun
    completes the lost items."""
    proc, out, args = _running_batch(series, tmp_path, 5, "f", 2, stdout=subprocess.PIPE)
    workers = [p for p in _children(proc.pid)
               if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
               and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 7, err
    records = _manifest(out)
    lost = [r for r in records if r["status"] == "failed"]
    assert lost and all("worker lost" in r["error"] for r in lost)
    assert len(records) == 5 and "internal error" not in err
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.glob("*.poni")) == [f"f{i}.poni" for i in range(5)]


def test_a_dask_cluster_gives_the_records_of_a_local_run(series, calibrated, tmp_path, capsys):
    """The same items on a real dask.distributed LocalCluster (two worker processes on
    127.0.0.1) give the same records as local processes, timings aside."""
    distributed = pytest.importorskip("distributed")
    local, code, _ = calibrated
    assert code == 7
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        code, _, err = geocal(["batch", "calib-ring", *_inputs(series), *CALIB, "--out-dir",
                               tmp_path / "dask", "--scheduler", cluster.scheduler_address], capsys)
    assert code == 7, err

    def records(out):
        return {Path(r["input"]).relative_to(series).as_posix():
                (r["status"], r["exit_code"], r["input_sha256"], r["config_sha256"],
                 sorted(Path(o["path"]).relative_to(out).as_posix() for o in r["outputs"]),
                 {k: round(v, 9) for k, v in (r.get("results") or {}).items() if v is not None})
                for r in _manifest(out)}
    assert records(tmp_path / "dask") == records(local)


def test_an_unreachable_scheduler_is_a_config_error(series, tmp_path, capsys):
    pytest.importorskip("distributed")
    code, _, err = geocal(["batch", "calib-ring", series / "a", *CALIB, "--out-dir", tmp_path / "o",
                           "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert code == 3 and "cannot reach the Dask scheduler" in err


@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    """A cron series of 12 images: the beam centre drifts 0.02 px per frame and jumps 3 px
    at frame 8."""
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    root = tmp_path_factory.mktemp("cron")
    for i in range(12):
        x = 250.0 + 0.02 * i + (3.0 if i >= 8 else 0.0)
        simulate.run(SimulateConfig(output=root / f"night_{i:02d}.edf", calibrant="CeO2",
                                    energy_kev=30.0, detector=None, pixel_size_um=(100.0, 100.0),
                                    shape=(512, 512), distance_mm=80.0, center_px=(x, 262.0),
                                    peak_counts=3000, seed=i))
    return root


def test_a_jump_in_a_drifting_series_is_flagged_there_and_nowhere_else(drifting, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = geocal(["batch", "calib-ring", *sorted(drifting.glob("*.edf")), "-c", "CeO2",
                           "--energy", "30", "--pixel-size", "100", "--out-dir", out, "--jobs", "2"],
                          capsys)
    assert code == 0, err
    summary = json.loads((out / "batch.json").read_text())
    jumps = summary["series"]["jumps"]
    assert [(j["parameter"], j["to"]) for j in jumps] == [("center_x_px", "night_08.edf")]
    assert jumps[0]["move"] == pytest.approx(3.02, abs=0.05)
    assert "jump: center_x_px +3.02 between night_07.edf and night_08.edf" in err
    assert (out / "batch.png").is_file()


def test_batch_html_is_self_contained_and_opens_in_headless_chromium(calibrated):
    out = calibrated[0]
    page = (out / "batch.html").read_text()
    assert "src='http" not in page and 'src="http' not in page and "href='http" not in page
    assert page.count("<tr class=") == 6 and "corrupt.edf: exit 4" in page
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--dump-dom",
                           (out / "batch.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<table id=\"items\">" in proc.stdout and proc.stdout.count("<tr class=") == 6
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console


def test_the_series_follows_the_headers_acquisition_time(series, tmp_path, capsys, figures):
    import fabio

    from geocal_cli.io.images import write_image

    folder = tmp_path / "timed"
    folder.mkdir()
    for i in range(3):   # names in one order, time stamps in the other
        data = fabio.open(str(series / "a" / f"frame{i}.edf")).data
        write_image(folder / f"frame{i}.edf", data, header={"date": f"2026-11-30 0{5 - i}:00:00"})
    out = tmp_path / "out"
    assert geocal(["batch", "calib-ring", folder, *CALIB, "--out-dir", out, "--jobs", "1"], capsys)[0] == 0
    s = json.loads((out / "batch.json").read_text())["series"]
    assert s["order"] == "acquisition time (image headers)"
    assert s["items"] == ["frame2.edf", "frame1.edf", "frame0.edf"]
    assert s["parameters"]["distance_mm"]["values"] == pytest.approx([220, 200, 180], abs=0.1)
    # batch.png: one panel per followed parameter, its unit in the label, items on x.
    (fig,) = figures
    assert len(fig.axes) == len(s["parameters"])
    for ax, (key, p) in zip(fig.axes, s["parameters"].items()):
        assert ax.get_ylabel().endswith(f"[{p['unit']}]")
    assert fig.axes[-1].get_xlabel() == "item (acquisition time (image headers))"


def test_two_overlapping_runs_never_write_together(series, tmp_path):
    """A second run on a folder a first run is writing exits 8 at once, or with --wait
    waits for it; the manifest stays valid JSONL."""
    out = tmp_path / "out"
    base = [sys.executable, "-m", "geocal_cli", "batch", "calib-ring", str(series / "a"), *CALIB,
            "--out-dir", str(out), "--jobs", "1"]
    first = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / ".geocal-batch.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)                              # the first run holds the lock
    second = subprocess.run(base, capture_output=True, text=True)
    assert second.returncode == 8 and "locked by another geocal batch run" in second.stderr
    waiting = subprocess.run([*base, "--wait", "300"], capture_output=True, text=True)
    assert first.wait() == 0
    assert waiting.returncode == 0 and waiting.stderr.count("skipped (done, unchanged)") == 3
    for line in (out / "manifest.jsonl").read_text().splitlines():
        assert json.loads(line)["schema"] == "geocal.batch"


def test_ctrl_c_lets_the_items_in_flight_finish_and_starts_no_other(series, tmp_path):
    # The two workers' first items start together and may end within the same poll: with
    # four items the fourth could start before the signal (a run on a loaded CI machine
    # recorded all four). Six leave two that no worker can have started.
    proc, out, args = _running_batch(series, tmp_path, 6, "g", 1, stdout=subprocess.DEVNULL)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "interrupted: finishing the" in err and err.strip().endswith("interrupted")
    records = _manifest(out)
    assert 1 <= len(records) <= 4 and all(r["status"] == "ok" for r in records)
    assert len(list(out.glob("*.poni"))) == len(records)        # every item started finished
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0
    assert rerun.stderr.count("skipped (done, unchanged)") == len(records)


def test_a_folder_of_geometries_converts_its_ponis_not_the_reports_beside_them(calibrated, tmp_path,
                                                                               capsys):
    out = tmp_path / "fit2d"
    code, _, err = geocal(["batch", "convert-poni", calibrated[0] / "a", "--to", "fit2d",
                           "--out-dir", out], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.fit2d.yaml")) == [f"frame{i}.fit2d.yaml" for i in range(3)]


def test_the_quiet_flag_after_the_subcommand_options(geometries, tmp_path, capsys):
    """`geocal batch convert-poni … -q`: the program's flag, not the subcommand's unknown
    option."""
    code, out, err = geocal(_to_fit2d(geometries / "frame0.poni", tmp_path / "out", "-q"), capsys)
    assert code == 0 and out == "" and err == ""
    assert (tmp_path / "out" / "frame0.fit2d.yaml").is_file()
