"""`geocal batch`: one per-image subcommand over many inputs, resumable and crash-safe.

Every item is one `pipeline.<subcommand>.run` on a config the subcommand itself built
(`commands.<subcommand>.configure`), with its outputs named in the output folder as the
subcommand names them beside an input (`run.0001.edf` → `run.0001.poni`), under the input's
folder relative to the inputs' common folder (two `frame.edf` of different folders never
collide). Items run in worker processes (single-threaded BLAS each, reading their own images),
each committing its files atomically (`io.outputs`): an item's outputs appear together or not
at all.

The state lives in the output folder: `manifest.jsonl`, one appended and fsynced record per
item attempt (input path and SHA-256, config hash, geocal version, status, exit code, error,
outputs with SHA-256, duration, key results), `batch.json` (this run's summary) and a lock
file. A rerun skips an item whose last attempt is ok with the same input and config hashes and
whose outputs are present with their recorded hashes, so, like Make, a finished batch does no
work twice; failed items are retried; `force` redoes all. A torn last line (a killed run) is
ignored. Two runs on one folder never write together: the second waits up to `wait_s` for the
lock, then stops with `LockedError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from geocal_cli import __version__
from geocal_cli.errors import BatchPartialError, ConfigError, GeocalError, LockedError
from geocal_cli.pipeline.results import shorten

MANIFEST = "manifest.jsonl"
SUMMARY = "batch.json"
LOCK = ".geocal-batch.lock"
SCHEMA = "geocal.batch"
#: Per-item fields of a config, not part of what the config hash compares.
PER_ITEM = ("image", "input", "output", "report", "plot", "spline", "corrected", "overwrite")
#: Environment of the worker processes: one BLAS/OpenMP thread each (the workers are the
#: parallelism; nested threads only oversubscribe the cores).
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Item:
    """One input and the config that processes it.

    Attributes
    ----------
    input : Path
    name : str
        The input relative to the inputs' common folder (for messages and the manifest).
    config : GeocalModel
        The subcommand's config, outputs set in the output folder.
    outputs : tuple of Path
        Every file the item writes.
    """

    input: Path
    name: str
    config: object
    outputs: tuple


@dataclass
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    records : list of dict
        This run's manifest records, in input order.
    summary : dict
        The content of `batch.json`.
    summary_path : Path
    """

    records: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    summary_path: Path | None = None


def output_fields(subcommand: str, cfg) -> dict:
    """The files a subcommand writes for one config, by config field: the subcommand's own
    default names (bare file names, as they would be written beside the current folder)."""
    from geocal_cli.pipeline import calib_ring, convert_poni, grid_distortion, q_check, recenter

    if subcommand == "calib-ring":
        names = dict(zip(("output", "report"), calib_ring.default_outputs(cfg.image)))
    elif subcommand == "recenter":
        names = dict(zip(("output", "report"), recenter.default_outputs(cfg.image)))
    elif subcommand == "q-check":
        names = {"report": q_check.default_report(cfg)}
    elif subcommand == "grid-distortion":
        names = dict(zip(("output", "report"), grid_distortion.default_paths(cfg.image)))
    elif subcommand == "convert-poni":
        names = dict(zip(("output", "report"), convert_poni.default_outputs(cfg)))
    else:
        raise ConfigError(f"batch runs calib-ring, recenter, q-check, grid-distortion or "
                          f"convert-poni, not {subcommand!r}")
    return {k: Path(v.name) for k, v in names.items()}


def plan(subcommand: str, configs: list, inputs: list[Path], out_dir: Path,
         plot: bool) -> list[Item]:
    """Items with their outputs in `out_dir`.

    Parameters
    ----------
    subcommand : str
    configs : list of GeocalModel
        One per input, as the subcommand built it (outputs unset).
    inputs : list of Path
    out_dir : Path
    plot : bool
        Write each item's PNG (named after its report).

    Raises
    ------
    ConfigError
        Two inputs whose outputs would share a path (the same file given twice).
    """
    parents = [p.resolve().parent for p in inputs]
    base = Path(os.path.commonpath(parents)) if parents else Path(".")
    items, seen = [], {}
    for path, parent, cfg in zip(inputs, parents, configs):
        rel = parent.relative_to(base)
        names = output_fields(subcommand, cfg)
        if plot:
            names["plot"] = names["report"].with_suffix(".png")
        paths = {k: out_dir / rel / v for k, v in names.items()}
        for p in paths.values():
            if p in seen:
                raise ConfigError(f"{path} and {seen[p]} would both write {p}: give each input once")
            seen[p] = path
        items.append(Item(input=path, name=str(rel / path.name), config=cfg.model_copy(update=paths),
                          outputs=tuple(paths.values())))
    return items


def config_hash(subcommand: str, cfg) -> str:
    """SHA-256 of what decides an item's result besides its input: the subcommand and its
    config without the per-item paths (the content of files it names is in the inputs' hashes
    of the report, not here)."""
    plain = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in PER_ITEM}
    text = json.dumps({"subcommand": subcommand, "config": plain}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(path: Path) -> dict[str, dict]:
    """The last ok-or-failed record of each input (by resolved path) in a manifest; a line that
    does not parse (the torn end of a killed run) is skipped.

    Raises
    ------
    ConfigError
        The file is not a geocal batch manifest.
    """
    last: dict[str, dict] = {}
    if not path.exists():
        return last
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
                raise ConfigError(f"{path} is not a geocal batch manifest: choose another "
                                  "--out-dir (geocal does not append to files it did not write)")
            if rec.get("status") in ("ok", "failed"):
                last[rec["input"]] = rec
    return last


def is_current(record: dict | None, input_sha: str, cfg_sha: str) -> bool:
    """The record is ok, for this input content and config, and its outputs are intact."""
    from geocal_cli.io.outputs import sha256_of

    if not record or record.get("status") != "ok" or record.get("input_sha256") != input_sha \
            or record.get("config_sha256") != cfg_sha:
        return False
    for out in record.get("outputs", []):
        p = Path(out["path"])
        if not p.is_file() or sha256_of(p) != out["sha256"]:
            return False
    return True


def run_item(subcommand: str, cfg, command_line: list[str] | None = None) -> dict:
    """Run one item (in a worker process): status, exit code, error, outputs, key results.
    `command_line` is the batch's, for the item report's provenance (a worker's own argv
    is the pool's)."""
    from geocal_cli.io import reports
    from geocal_cli.io.outputs import sha256_of
    from geocal_cli.pipeline.results import written

    reports.command_line = command_line

    t0 = time.perf_counter()
    rec: dict = {}
    try:
        res = _pipeline(subcommand).run(cfg)
        report = res.report
        rec.update(status="ok", exit_code=0, error=None, results=key_results(subcommand, report))
        failed = getattr(res, "failed", None)
        if failed:
            rec.update(status="failed", exit_code=6, error="q-check failed: " + "; ".join(failed))
        rec["outputs"] = [{"path": str(p.resolve()), "sha256": sha256_of(p)}
                          for p in written(res) if p.is_file()]
    except GeocalError as exc:
        rec.update(status="failed", exit_code=int(exc.exit_code), error=str(exc), outputs=[])
    except Exception as exc:  # a bug in one item must not stop the others
        rec.update(status="failed", exit_code=1, outputs=[],
                   error=f"internal error: {exc.__class__.__name__}: {exc}")
    rec["duration_s"] = time.perf_counter() - t0
    return rec


def _pipeline(subcommand: str):
    import importlib

    return importlib.import_module("geocal_cli.pipeline." + subcommand.replace("-", "_"))


def key_results(subcommand: str, report: dict) -> dict:
    """The few numbers a series is followed by: beam centre, distance, tilt, residual (calib-ring,
    recenter), the verdict (q-check)."""
    r = report.get("results", {})
    if subcommand == "calib-ring":
        g = r["geometry"]
        s = report.get("uncertainties_1sigma", {})
        return {"center_x_px": g["beam_center_px"]["x"], "center_y_px": g["beam_center_px"]["y"],
                "center_x_sigma_px": s.get("beam_center_px", {}).get("x"),
                "center_y_sigma_px": s.get("beam_center_px", {}).get("y"),
                "distance_mm": g["fit2d"]["directDist_mm"], "tilt_deg": g["fit2d"]["tilt_deg"],
                "rms_px": report["residuals"]["rms_px"]}
    if subcommand == "q-check":
        return {"verdict": report.get("verdict", {}).get("status")}
    if subcommand == "recenter":
        s = report.get("uncertainties_1sigma", {}).get("center_px", {})
        return {"center_x_px": r["new_center"]["x_px"], "center_y_px": r["new_center"]["y_px"],
                "center_x_sigma_px": s.get("x"), "center_y_sigma_px": s.get("y"),
                "shift_px": r["shift"]["length_px"]}
    return {}


def _worker_init() -> None:
    import atexit
    import gc
    import signal

    # A worker leaves its objects to the operating system at exit, as the main process does:
    # the interpreter's closing collections cost 0.3 s per process and the pool's shutdown
    # waits for them.
    atexit.register(gc.freeze)
    # Ctrl-C reaches the whole process group: the parent decides, items in flight finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A pool ends its workers with SIGTERM: quietly (the geocal script's start-up handler,
    # imported with the script, would say "interrupted").
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    from geocal_cli.io.messages import library_log

    library_log(None)


def local_executor(jobs: int) -> Executor:
    """`jobs` worker processes (spawned: no state of the parent, BLAS single-threaded)."""
    import multiprocessing

    os.environ.update(WORKER_ENV)
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)


@contextmanager
def dask_executor(address: str | None = None, scheduler_file: Path | None = None):
    """A `concurrent.futures` executor on a dask.distributed cluster (Dask's own
    `Client.get_executor`), the client closed on exit.

    Raises
    ------
    ConfigError
        Dask is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("a Dask scheduler needs dask.distributed: pip install 'geocal[dask]'") from None
    where = address or f"the scheduler file {scheduler_file}"
    try:
        client = Client(address=address, scheduler_file=None if scheduler_file is None
                        else str(scheduler_file), timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {where}: {exc}") from None
    try:
        yield client.get_executor()
    finally:
        client.close()


def run(subcommand: str, items: list[Item], out_dir: Path, jobs: int = 1, force: bool = False,
        dry_run: bool = False, wait_s: float = 0.0, executor: Executor | None = None,
        progress=None, on_item=None) -> BatchResult:
    """Run the items not already done; append their records; write `batch.json`.

    Parameters
    ----------
    subcommand : str
    items : list of Item
    out_dir : Path
        Created when missing.
    jobs : int
        Worker processes (1: in this process).
    force : bool
        Redo items that are current.
    dry_run : bool
        Say what would run and what would be skipped; write nothing.
    wait_s : float
        Seconds to wait for another run's lock.
    executor : concurrent.futures.Executor, optional
        Where items run instead of local processes (a `dask.distributed` client's executor).
    progress : callable(str), optional
        One line per item.
    on_item : callable(dict), optional
        Called with each item's record as it is written (a progress bar's tick).

    Raises
    ------
    LockedError
        Another run holds the folder's lock for longer than `wait_s`.
    ConfigError
        The folder holds a manifest or summary geocal did not write.

    Failed items are records, not errors: see `failure_error`.
    """
    from geocal_cli.io.images import acquisition_time
    from geocal_cli.io.outputs import Outputs, sha256_of, write_text

    say = progress or (lambda msg: None)
    tick = on_item or (lambda record: None)
    if not dry_run:
        out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    with (contextlib.nullcontext() if dry_run else locked(out_dir, wait_s)):
        t0 = time.perf_counter()
        if not dry_run:
            Outputs.planned([], False, out_dir / SUMMARY, out_dir / "batch.png",
                            out_dir / "batch.html")
        last = read_manifest(manifest)
        todo, records = [], {}
        for it in items:
            in_sha = sha256_of(it.input) if it.input.is_file() else None
            cfg_sha = config_hash(subcommand, it.config)
            base = {"schema": SCHEMA, "input": str(it.input.resolve()), "input_sha256": in_sha,
                    "config_sha256": cfg_sha, "geocal_version": __version__,
                    "subcommand": subcommand,
                    "acquired": None if subcommand == "convert-poni" or not in_sha
                    else acquisition_time(it.input)}
            if not force and in_sha and is_current(last.get(base["input"]), in_sha, cfg_sha):
                done = last[base["input"]]
                skipped = {"status": "skipped", "exit_code": 0, "error": None,
                           "outputs": done["outputs"], "results": done.get("results", {}),
                           "duration_s": 0.0}
                if dry_run:
                    say(f"{it.name}: would skip (done, unchanged)")
                else:
                    tick(_record(records, manifest, it, base, skipped, say))
            else:
                todo.append((it, base))
                if dry_run:
                    say(f"{it.name}: would run → " + ", ".join(str(p) for p in it.outputs))
        if dry_run:
            return BatchResult(records=[], summary={"would_run": len(todo),
                                                    "would_skip": len(items) - len(todo)})
        for folder in {p.parent for it, _ in todo for p in it.outputs}:
            folder.mkdir(parents=True, exist_ok=True)
        _execute(subcommand, todo, records, manifest, jobs, executor, say, tick)
        ordered = [records[it.name] for it in items if it.name in records]
        names = [it.name for it in items if it.name in records]
        summary = _summary(subcommand, ordered, time.perf_counter() - t0)
        summary["series"] = series_of(names, ordered)
        for j in summary["series"]["jumps"]:
            say(f"jump: {j['parameter']} {j['move']:+.3g} between {j['from']} and {j['to']} "
                f"(accepted: ±{j['limit']:.2g})")
        write_text(out_dir / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
        _pictures(out_dir, summary)
    return BatchResult(records=ordered, summary=summary, summary_path=out_dir / SUMMARY)


@contextmanager
def locked(out_dir: Path, wait_s: float = 0.0):
    """Hold the output folder's lock: one writer at a time.

    Raises
    ------
    LockedError
        Another run holds it for longer than `wait_s` seconds.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(out_dir / LOCK))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise LockedError(f"{out_dir} is locked by another geocal batch run ({out_dir / LOCK}); "
                          "wait for it, or give --wait SECONDS") from None
    try:
        yield
    finally:
        lock.release()


def failure_error(result: BatchResult) -> BatchPartialError | None:
    """The error a batch with failed items ends with (exit 7), naming the first failures."""
    failed = [r for r in result.records if r["status"] == "failed"]
    if not failed:
        return None
    others = " (the others were written)" if len(failed) < len(result.records) else ""
    return BatchPartialError(
        f"{len(failed)} of {len(result.records)} items failed{others}; see "
        f"{result.summary_path}: "
        + "; ".join(f"{Path(r['input']).name}: {shorten(r['error'])}" for r in failed[:3])
        + (" …" if len(failed) > 3 else ""))


#: Fresh local worker pools a batch starts after workers died (killed, out of memory), before
#: it records the items left as not run.
MAX_POOL_RESTARTS = 3


def _execute(subcommand, todo, records, manifest, jobs, executor, say, tick) -> None:
    """Run the items, appending each record as it completes. Local workers get an item only
    when one is free (a pool queues what it is given, and a queued item can no longer be
    cancelled), so on Ctrl-C the items in flight finish and are recorded, none other starts,
    and the interrupt goes on. A cluster is given every item at once (it schedules them).

    A worker that dies breaks a local pool: the items in flight are recorded as failed
    ("worker lost"; a rerun retries them) and a fresh pool takes the rest, up to
    `MAX_POOL_RESTARTS` times."""
    from concurrent.futures.process import BrokenProcessPool

    from geocal_cli.io import reports

    own = None
    if executor is None and jobs > 1 and len(todo) > 1:
        executor = own = local_executor(min(jobs, len(todo)))
    if executor is None:
        for it, base in todo:
            tick(_record(records, manifest, it, base, run_item(subcommand, it.config, reports.command_line), say))
        return
    waiting = iter(todo)
    limit = min(jobs, len(todo)) if own is not None else len(todo)
    futures: dict = {}
    restarts = 0

    def hand_over(it, base):
        with held_signals():
            futures[executor.submit(run_item, subcommand, it.config, reports.command_line)] = (it, base)

    def submit(n):
        nonlocal executor, own, restarts
        for it, base in itertools.islice(waiting, n):
            try:
                hand_over(it, base)
            except BrokenProcessPool:
                if own is None or restarts >= MAX_POOL_RESTARTS:
                    tick(_record(records, manifest, it, base, _not_run(restarts), say))
                    continue
                own.shutdown(wait=False, cancel_futures=True)
                restarts += 1
                say(f"a worker process died: starting a fresh pool ({restarts} of "
                    f"{MAX_POOL_RESTARTS})")
                executor = own = local_executor(limit)
                hand_over(it, base)

    try:
        # `futures` holds every item a worker took and that is not yet recorded: the signals
        # that stop a run wait while an item is handed over or a finished one recorded.
        try:
            submit(limit)
            while futures:
                finished, _ = wait(set(futures), return_when=FIRST_COMPLETED)
                for fut in finished:
                    with held_signals():
                        tick(_record(records, manifest, *futures.pop(fut), _result(fut), say))
                submit(len(finished))
        except KeyboardInterrupt:
            left = sum(1 for _ in waiting)
            say(f"interrupted: finishing the {len(futures)} item(s) in flight, not starting {left}")
            for fut in list(futures):
                tick(_record(records, manifest, *futures.pop(fut), _result(fut), say))
            raise
    finally:
        if own is not None:
            own.shutdown(wait=True, cancel_futures=True)


#: The signals that stop a run (`main.run` maps each to Ctrl-C's outcome).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextmanager
def held_signals():
    """Hold back the signals that stop a run for the block and deliver them after it, so that
    bookkeeping that must not be cut in two (an item a worker took, and its note) is whole.

    Python runs signal handlers in the main thread between bytecodes, wherever the signal
    landed: the handlers are swapped for one that notes the signal, then restored, and each
    noted signal raised again. Elsewhere than in the main thread (no handlers there) the block
    runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, handler in previous.items():
        if handler not in (signal.SIG_IGN, None):
            signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        for sig in caught:
            signal.raise_signal(sig)


def _not_run(restarts: int) -> dict:
    return {"status": "failed", "exit_code": 1, "outputs": [], "duration_s": None,
            "error": f"not run: worker processes kept dying ({restarts} fresh pools); "
                     "out of memory? try fewer --jobs"}


def _result(fut) -> dict:
    try:
        return fut.result()
    except Exception as exc:  # the worker died (killed, out of memory)
        return {"status": "failed", "exit_code": 1, "outputs": [], "duration_s": None,
                "error": f"worker lost: {exc.__class__.__name__}: {exc}"}


def _record(records, manifest: Path, it: Item, base: dict, outcome: dict, say) -> dict:
    rec = {**base, **outcome, "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    line = json.dumps(rec, sort_keys=False, default=str) + "\n"
    # O_APPEND writes of one line land whole; fsync makes a record survive a crash.
    fd = os.open(manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    records[it.name] = rec
    if rec["status"] == "failed":
        say(f"{it.name}: failed (exit {rec['exit_code']}: {rec['error']})")
    elif rec["status"] == "skipped":
        say(f"{it.name}: skipped (done, unchanged)")
    else:
        say(f"{it.name}: {rec['status']} in {rec['duration_s']:.1f} s")
    return rec


#: Parameters followed along a series, with the key of their 1σ and their unit.
TRENDS = {"center_x_px": ("center_x_sigma_px", "px"), "center_y_px": ("center_y_sigma_px", "px"),
          "distance_mm": (None, "mm"), "tilt_deg": (None, "deg"), "rms_px": (None, "px")}


def series_of(names: list[str], records: list[dict]) -> dict:
    """Each followed parameter in acquisition order (the image headers' time stamps when every
    item has one, else input order), and its jumps (`core.series.jumps`).

    Returns
    -------
    dict
        order, items, acquired, parameters {name: {unit, values, sigma}}, jumps [{parameter,
        from, to, index, move, limit}].
    """
    import numpy as np

    from geocal_cli.core.series.jumps import find_jumps

    stamps = [r.get("acquired") for r in records]
    order = "input order"
    if records and all(stamps):
        rank = sorted(range(len(records)), key=lambda i: stamps[i])
        names, records, stamps = ([x[i] for i in rank] for x in (names, records, stamps))
        order = "acquisition time (image headers)"

    def column(key):
        return np.array([(r.get("results") or {}).get(key) if key else None for r in records],
                        dtype=float)

    params, jumps = {}, []
    for key, (sigma_key, unit) in TRENDS.items():
        values = column(key)
        if not np.isfinite(values).any():
            continue
        sigma = column(sigma_key)
        params[key] = {"unit": unit, "values": values.tolist(), "sigma": sigma.tolist()}
        if key == "rms_px":
            continue            # a residual has no position to jump from
        for j in find_jumps(values, sigma):
            prev = max(i for i in range(j.index) if np.isfinite(values[i]))
            jumps.append({"parameter": key, "from": names[prev], "to": names[j.index],
                          "index": j.index, "move": j.move, "limit": j.limit, "unit": unit})
    return {"order": order, "items": names, "acquired": stamps, "parameters": params,
            "jumps": jumps}


def _pictures(out_dir: Path, summary: dict) -> None:
    """batch.png (the trends, when there are any) and batch.html (everything, one file)."""
    from geocal_cli.io.batch_html import write_html
    from geocal_cli.io.plots import plot_series

    png = None
    if sum(1 for _ in summary["series"]["items"]) >= 2 and summary["series"]["parameters"]:
        png = out_dir / "batch.png"
        plot_series(png, summary["series"])
    write_html(out_dir / "batch.html", summary, out_dir, png)


def _summary(subcommand: str, records: list, seconds: float) -> dict:
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "failed", "skipped")}
    from geocal_cli.io.reports import provenance

    return {"schema": {"name": SCHEMA, "version": 1}, "geocal_version": __version__,
            "provenance": provenance(), "subcommand": subcommand, "items": len(records), "counts": counts,
            "duration_s": seconds,
            "failures": [{"input": r["input"], "exit_code": r["exit_code"], "error": r["error"]}
                         for r in records if r["status"] == "failed"],
            "records": records}
