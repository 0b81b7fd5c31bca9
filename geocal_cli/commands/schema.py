"""`geocal schema`: the JSON Schema of a report."""

from __future__ import annotations

import typer

from geocal_cli import console
from geocal_cli.errors import ConfigError

EPILOG = """Examples:

  geocal schema calib-ring > calib-ring.schema.json

  geocal schema

Validate a report with any JSON Schema validator, e.g. in Python:
jsonschema.validate(json.load(open("x.calib.json")), json.loads(schema_text)).

Exit codes: 0 ok, 3 not a report geocal writes."""


def command(
    name: str = typer.Argument(None, show_default=False,
                               help="Report: calib-ring, recenter, q-check, convert-poni, grid-distortion, "
                                    "simulate, joint, batch or ellipse; none lists them."),
) -> None:
    """Print the JSON Schema (draft 2020-12) of a report geocal writes.

    The schema fixes what a program may rely on in the reports: the common header (schema name
    and version, provenance with the command line and the versions of geocal, pyFAI, fabio,
    numpy, scipy and Python, the config, every input and output with its SHA-256, warnings)
    and each command's key results with their units in the key names.
    """
    import json

    from geocal_cli.io.schemas import SCHEMAS

    if name is None:
        console.out.print("\n".join(SCHEMAS), markup=False)
        return
    if name.removeprefix("geocal.") not in SCHEMAS:
        raise ConfigError(f"no report named {name!r}: one of {', '.join(SCHEMAS)}")
    console.out.print(json.dumps(SCHEMAS[name.removeprefix("geocal.")], indent=2, ensure_ascii=False),
                      markup=False)
