"""Helpers shared by the subcommands: option parsing, config loading, result output."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli import console
from geocal_cli.errors import ConfigError

CONFIG_OPTION = typer.Option(None, "--config", help="YAML file with options (flags override it).",
                             rich_help_panel="Config")
SHOW_CONFIG_OPTION = typer.Option(False, "--show-config", help="Print the effective config as YAML and exit.",
                                  rich_help_panel="Config")
JSON_OPTION = typer.Option(False, "--json", help="Print the JSON report on stdout instead of the summary.")
ENERGY_OPTION = typer.Option(None, "--energy", help="Photon energy, keV.", rich_help_panel="Radiation (one of)")
WAVELENGTH_OPTION = typer.Option(None, "--wavelength", help="Wavelength, Å.", rich_help_panel="Radiation (one of)")
WAVELENGTH_DOUBLET_OPTION = typer.Option(
    None, "--wavelength", rich_help_panel="Radiation (one of)",
    help="Wavelength, Å; for a lab source's Kα doublet 'KA1,KA2' (Cu 1.54056,1.54439; Mo "
         "0.70930,0.71359): rings are modelled as the blend of both lines and the PONI carries Kα1.")
KALPHA2_RATIO_OPTION = typer.Option(None, "--kalpha2-ratio", rich_help_panel="Radiation (one of)",
                                    help="Intensity ratio I(Kα2)/I(Kα1) of a doublet [default: 0.5].")
VOLTAGE_OPTION = typer.Option(
    None, "--voltage", rich_help_panel="Radiation (one of)",
    help="Electron accelerating voltage, kV (relativistic λ; CIF intensities use electron scattering factors).")
OVERWRITE_OPTION = typer.Option(
    None, "--overwrite", rich_help_panel="Outputs", show_default=False,
    help="Replace existing files that geocal did not write (geocal's own outputs are always replaced; inputs never are).")
FRAME_OPTION = typer.Option(None, "--frame", help="A stack or 4D-STEM file: the frame to use (0-based), or 'sum' or 'mean' of all frames; a stack read without it is an error.")
PIXEL_SIZE_OPTION = typer.Option(None, "--pixel-size", rich_help_panel="Detector",
                                 help="Pixel size in µm, 'SIZE' or 'ROWS,COLS', instead of a detector name.")


def parse_floats(text: str | None, name: str, count: int = 2) -> tuple | None:
    """'172' → (172.0, 172.0); '75,172' → (75.0, 172.0); None stays None.

    Raises
    ------
    ConfigError
        Not one or `count` comma-separated numbers.
    """
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"{name} = {text!r}: expected a number or {count} comma-separated numbers") from None
    if len(vals) == 1:
        vals = vals * count
    if len(vals) != count:
        raise ConfigError(f"{name} = {text!r}: expected 1 or {count} values, got {len(vals)}")
    return vals


def parse_wavelength(text: str | None) -> dict:
    """'0.4066' → {'wavelength_a': 0.4066}; '0.70930,0.71359' → also {'kalpha2_a': 0.71359}.

    Raises
    ------
    ConfigError
        Not one or two comma-separated numbers.
    """
    if text is None:
        return {}
    try:
        vals = [float(v) for v in str(text).split(",")]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2):
        raise ConfigError(f"--wavelength = {text!r}: expected a wavelength in Å, or 'KA1,KA2' for a "
                          "lab source's doublet (e.g. 0.70930,0.71359)")
    return {"wavelength_a": vals[0], **({"kalpha2_a": vals[1]} if len(vals) == 2 else {})}


def parse_names(text: str | None) -> tuple | None:
    """'rot3,wavelength' → ('rot3', 'wavelength'); 'none' → (); None stays None."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return ()
    return tuple(v.strip() for v in text.split(",") if v.strip())


def load(model, config_file: Path | None, overrides: dict, show_config: bool):
    """Load the effective config; with --show-config print it as YAML and exit 0."""
    import yaml

    from geocal_cli.config.base import dump_yaml, load_config, merged_defaults

    if not show_config:
        return load_config(model, config_file, overrides)
    try:
        text = dump_yaml(load_config(model, config_file, overrides))
    except ConfigError as exc:
        # Without the arguments (`geocal calib-ring --show-config`): what is set so far.
        if not getattr(exc, "missing_only", False):
            raise
        text = yaml.safe_dump(merged_defaults(model, config_file, overrides), sort_keys=False,
                              allow_unicode=True) + f"# not yet valid: {str(exc).split(': ', 1)[1]}\n"
    console.out.print(text, markup=False, end="")
    raise typer.Exit(0)


def run_pipeline(run, cfg):
    """`run(cfg)` of a pipeline module with progress on stderr; when the config asks for a
    plot, matplotlib is imported by a helper process meanwhile (`io.render.ahead`)."""
    from geocal_cli.io.render import ahead

    with ahead(getattr(cfg, "plot", None) is not None):
        return run(cfg, progress=console.progress)


def print_report(report: dict) -> None:
    """The report as JSON on stdout (for --json)."""
    from geocal_cli.io.reports import to_json

    console.out.print(to_json(report), markup=False, end="")


def show_result(res, summary_table, json_out: bool) -> None:
    """After a command ran: the JSON report (--json) or the summary table, the warnings and
    the files written. `res` has `report`, `report_path`, `plot` (None when not written) and,
    for the commands that write other files, `poni` or a list `outputs`."""
    if json_out:
        print_report(res.report)
        return
    console.result(summary_table(res.report))
    for w in res.report["warnings"]:
        console.progress(f"warning: {w}")
    from geocal_cli.pipeline.results import written

    console.progress("wrote " + ", ".join(str(p) for p in written(res)))
