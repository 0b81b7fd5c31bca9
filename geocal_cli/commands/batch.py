"""`geocal batch`: one per-image subcommand over many inputs."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from geocal_cli import console
from geocal_cli.commands._common import CONFIG_OPTION, SHOW_CONFIG_OPTION, load
from geocal_cli.errors import ConfigError

EPILOG = """Examples:

  geocal batch calib-ring frames/*.edf -c LaB6 --energy 17 -d Pilatus1M --out-dir calib/ --jobs 2

  geocal batch recenter run42/ --poni calib/ref.poni -c CeO2 --wavelength 0.4066 --out-dir recentred/

  geocal batch q-check @night.txt --poni ref.poni -c CeO2 --energy 30 --out-dir checks/

  geocal batch --config nightly.yaml

  geocal batch calib-ring frames/ -c LaB6 --energy 17 -d Pilatus1M --out-dir calib/ --scheduler-file ~/scheduler.json

  geocal batch calib-ring scan2_*.tif -c LaB6 --wavelength 0.885601 -d Pilatus300kw --out-dir arm/ --joint arm-2theta --positions sidecar:2Theta

After the subcommand come its inputs (files, folders, glob patterns, @FILE with one path per
line) and its own options, as it takes them alone. Each item's outputs go to --out-dir under
the subcommand's default names (run.0001.edf → run.0001.poni, run.0001.calib.json), in the
input's folder relative to the inputs' common folder. OUT-DIR/manifest.jsonl holds one record
per item attempt; a rerun skips what is done and unchanged (--force redoes it).
With --joint, one motion model is then fitted over all the images (those refused alone
included): OUT-DIR/joint/*.poni, goniometer.json (pyFAI), joint.json and joint.png.

Exit codes: 0 every item ok or skipped (with --joint: the joint fit trusted), 3 bad config,
5 the joint fit not trusted, 7 some items failed (the others were written), 8 the output
folder is locked by another run, 130 interrupted (items in flight finish and are recorded)."""

#: The subcommand's parameter that names its one input.
INPUT_PARAM = {"calib-ring": "image", "recenter": "image", "q-check": "image",
               "grid-distortion": "image", "convert-poni": "input"}
#: Per-item output options a batch names itself, and what replaces each.
OWN_OUTPUTS = {"output": "--out-dir", "report": "--out-dir", "plot": "--plots",
               "spline": "--out-dir", "corrected": "--out-dir", "json_out": "the manifest",
               "show_config": "batch --show-config", "config": "batch --config (its options)"}


def command(
    ctx: typer.Context,
    out_dir: Path = typer.Option(None, "--out-dir", "-O", help="Folder of every item's outputs, manifest.jsonl and batch.json (created).", rich_help_panel="Batch"),
    jobs: int = typer.Option(None, "--jobs", "-j", help="Worker processes [default: the cores this process may run on].", rich_help_panel="Batch"),
    force: bool = typer.Option(None, "--force", help="Redo items already done with the same input and config.", rich_help_panel="Batch"),
    dry_run: bool = typer.Option(None, "--dry-run", help="Say what would run and what would be skipped; write nothing.", rich_help_panel="Batch"),
    wait: float = typer.Option(None, "--wait", help="Seconds to wait for another run's lock on --out-dir [default: 0: exit 8 at once].", rich_help_panel="Batch"),
    plots: bool = typer.Option(None, "--plots", help="Write each item's PNG beside its report.", rich_help_panel="Batch"),
    scheduler: str = typer.Option(None, "--scheduler", help="Run the items on a dask.distributed cluster: its scheduler's address, tcp://HOST:8786 (pip install 'geocal[dask]').", rich_help_panel="Cluster"),
    scheduler_file: Path = typer.Option(None, "--scheduler-file", help="…or the scheduler file it wrote (dask scheduler --scheduler-file FILE).", rich_help_panel="Cluster"),
    joint: str = typer.Option(None, "--joint", help="After a calib-ring batch, fit one motion model over all the images: fixed, calibrants, arm-2theta, translation, energy, or a pyFAI goniometer file of expressions.", rich_help_panel="Joint calibration"),
    positions: str = typer.Option(None, "--positions", help="Each image's position: a CSV (name,value) or YAML file, header:KEY, or sidecar:KEY (KEY = value in a text file beside the image); calibrant names for --joint calibrants.", rich_help_panel="Joint calibration"),
    joint_free: str = typer.Option(None, "--joint-free", help="The joint model's parameters to fit, comma-separated [default: the model's choice].", rich_help_panel="Joint calibration"),
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Run calib-ring, recenter, q-check, grid-distortion or convert-poni over many inputs:
    resumable, crash-safe, in parallel worker processes.

    Every item's outputs appear together or not at all; each attempt is appended to the
    manifest as it completes, so a killed run loses only the items in flight, and a rerun
    does exactly what is missing. Two runs on one --out-dir never write together.
    """
    from geocal_cli.config.batch import BatchConfig

    args = list(ctx.args)
    name = args.pop(0) if args and not args[0].startswith("-") else None
    preset = _preset(config)
    name = name or preset.get("subcommand")
    if name not in INPUT_PARAM:
        raise ConfigError(f"batch runs one of {', '.join(INPUT_PARAM)}"
                          + (f", not {name!r}" if name else ": name it after 'batch'"))
    values, positional = _parse(name, args)
    cfg = load(BatchConfig, config, dict(
        subcommand=name, inputs=positional or None, out_dir=out_dir, jobs=jobs, force=force,
        dry_run=dry_run, wait_s=wait, plots=plots, scheduler=scheduler,
        scheduler_file=scheduler_file, joint=joint, positions=positions,
        joint_free=None if joint_free is None else [n.strip() for n in joint_free.split(",")]),
        show_config)
    for key, instead in OWN_OUTPUTS.items():
        if values.get(key):
            raise ConfigError(f"batch names each item's outputs itself: drop "
                              f"{_flag(name, key)} (use {instead})")
    inputs = expand_inputs(cfg.inputs, geometry=name == "convert-poni")
    module = _module(name)
    per_item = {k: None for k in OWN_OUTPUTS} | {"config": cfg.options or None, "show_config": False}
    where = _positions(cfg, inputs)
    configs = [module.configure({**values, **per_item, INPUT_PARAM[name]: path,
                                 **({"calibrant": where[i]} if cfg.joint == "calibrants" else {})})
               for i, path in enumerate(inputs)]
    from geocal_cli.pipeline import batch

    items = batch.plan(name, configs, inputs, cfg.out_dir, cfg.plots)
    console.progress(f"batch {name}: {len(items)} input(s) → {cfg.out_dir}")
    import contextlib

    from geocal_cli.core.rings.parallel import usable_cores

    cluster = cfg.scheduler or cfg.scheduler_file
    with (batch.dask_executor(cfg.scheduler, cfg.scheduler_file) if cluster and not cfg.dry_run
          else contextlib.nullcontext()) as executor, \
            console.item_progress(len(items), f"batch {name}") as (say, tick):
        res = batch.run(name, items, cfg.out_dir, jobs=cfg.jobs or usable_cores(),
                        force=cfg.force, dry_run=cfg.dry_run, wait_s=cfg.wait_s,
                        executor=executor, progress=say, on_item=tick)
    if cfg.dry_run:
        console.result(f"would run {res.summary['would_run']}, skip {res.summary['would_skip']}")
        return
    c = res.summary["counts"]
    console.result(f"{c['ok']} ok, {c['failed']} failed, {c['skipped']} skipped in "
                   f"{res.summary['duration_s']:.1f} s; wrote {res.summary_path}")
    if cfg.joint:
        _joint(cfg, items, res, where)
        return
    error = batch.failure_error(res)
    if error is not None:
        raise error


def _positions(cfg, inputs: list[Path]) -> list:
    """Each input's position for a joint calibration (calibrant names for `calibrants`; the
    input's index where the model needs none), read before any work."""
    if not cfg.joint:
        return []
    if cfg.positions is None:
        return list(range(len(inputs)))
    from geocal_cli.io.positions import read_positions

    return read_positions(cfg.positions, inputs, numeric=cfg.joint != "calibrants")


def _joint(cfg, items, res, where) -> None:
    """The joint fit over a calib-ring batch's items: images that calibrated alone seed it."""
    from geocal_cli.pipeline import batch, joint

    done = {r["input"]: r["status"] in ("ok", "skipped") for r in res.records}
    seeds = [it.config.output if done.get(str(it.input.resolve())) else None for it in items]
    ponis = [cfg.out_dir / "joint" / it.config.output.relative_to(cfg.out_dir) for it in items]
    positions = list(range(len(items))) if cfg.joint == "calibrants" else where
    with batch.locked(cfg.out_dir, cfg.wait_s):
        out = joint.run(cfg.joint, positions, [it.config for it in items], seeds, ponis,
                        cfg.out_dir, tuple(cfg.joint_free or ()), say=console.progress)
    alone = sum(s is not None for s in seeds)
    rms = out.report["residuals"]["rms_px"]
    misfit = [i["model_misfit_px"] for i in out.report["images"] if i["model_misfit_px"] is not None]
    split = f" (model misfit ≤ {max(misfit):.3f} px per image)" if misfit else ""
    console.result(f"joint {cfg.joint}: {len(items)} images ({alone} calibrated alone), rms "
                   f"{rms:.3f} px{split}; wrote {out.report_path}, {out.goniometer}, "
                   f"{len(out.ponis)} PONIs in {cfg.out_dir / 'joint'}")


def _preset(config: Path | None) -> dict:
    """The batch config file's mapping (read once more by `load`, which checks it)."""
    if config is None:
        return {}
    from geocal_cli.config.base import read_yaml

    return read_yaml(Path(config))


def _module(name: str):
    """The subcommand's module in `geocal_cli.commands`."""
    return importlib.import_module("geocal_cli.commands." + name.replace("-", "_"))


def sub_command(name: str):
    """The subcommand's own click command, as typer builds it."""
    app = typer.Typer()
    app.command(name)(_module(name).command)
    return typer.main.get_command(app)


def _parse(name: str, args: list[str]) -> tuple[dict, list[str]]:
    """The inputs (the words before the first option) and the subcommand's option values
    (None where not given), parsed by the subcommand's own declaration."""
    n = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    inputs, options = args[:n], args[n:]
    cmd = sub_command(name)
    try:
        # The one positional the subcommand takes is an input: a stand-in keeps it parseable.
        ctx = cmd.make_context(f"geocal batch {name}", ["INPUT", *options])
    except Exception as exc:
        # typer carries its own click: its usage errors are known by their message method.
        if callable(getattr(exc, "format_message", None)):
            raise ConfigError(f"geocal batch {name}: {exc.format_message()} (the inputs come "
                              "right after the subcommand, its options after them)") from None
        raise
    values = dict(ctx.params)
    values.pop(INPUT_PARAM[name], None)
    return values, inputs


def _flag(name: str, key: str) -> str:
    param = next((p for p in sub_command(name).params if p.name == key), None)
    return "/".join(param.opts) if param is not None else key


#: Files a folder holds beside images that are not images (geocal's own outputs among them).
NOT_IMAGES = {".json", ".jsonl", ".poni", ".yaml", ".yml", ".txt", ".png", ".jpg", ".pdf", ".pdi",
              ".log", ".md", ".csv", ".spline", ".expt", ".refl", ".par", ".imctrl", ".lock"}
#: Geometry files, the inputs of convert-poni.
GEOMETRIES = {".poni", ".expt", ".par", ".imctrl", ".yaml", ".yml", ".json"}


#: geocal's own reports, JSON like some geometry files but never an input.
REPORTS = (".calib.json", ".recenter.json", ".qcheck.json", ".convert.json", ".grid.json",
           ".simulate.json", "batch.json")


def _readable_kind(path: Path, geometry: bool) -> bool:
    suffix = path.suffix.lower()
    if geometry:
        return suffix in GEOMETRIES and not path.name.lower().endswith(REPORTS)
    return suffix not in NOT_IMAGES


def expand_inputs(specs: list[str], geometry: bool = False) -> list[Path]:
    """Files from paths, folders, glob patterns and @FILE lists, each once, in order. A folder
    gives its files of the input kind, sorted: images, or geometry files when `geometry`
    (convert-poni); never hidden files.

    Raises
    ------
    ConfigError
        A spec matches nothing, or an @FILE cannot be read.
    """
    import glob

    from geocal_cli.files import read_text

    out: list[Path] = []
    for spec in specs:
        if spec.startswith("@"):
            listed = read_text(Path(spec[1:]), "input list", error=ConfigError)
            paths = [Path(line.strip()) for line in listed.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
        elif Path(spec).is_dir():
            paths = sorted(p for p in Path(spec).iterdir() if p.is_file()
                           and not p.name.startswith(".") and _readable_kind(p, geometry))
        elif Path(spec).exists():
            paths = [Path(spec)]
        else:
            paths = [Path(p) for p in sorted(glob.glob(spec))]
            if not paths:
                raise ConfigError(f"input {spec!r}: no such file, folder or matching pattern")
        out.extend(paths)
    unique = list(dict.fromkeys(out))
    if not unique:
        raise ConfigError("no input files: give files, folders, patterns or @FILE after the subcommand")
    return unique
