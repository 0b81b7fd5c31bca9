"""Each image's position for a joint calibration (arm angle, stage position, energy, or a
calibrant name), from a CSV or YAML file, an image header key, or a sidecar text file.

Sources (the `--positions` value):

- `FILE.csv`: rows of (file name, value); a header row is skipped when its value is not a
  number; extra columns are ignored. A name matches an image by its full name or its stem.
- `FILE.yaml`: a mapping file name → value.
- `header:KEY`: the image header's KEY (fabio), e.g. `header:2Theta`.
- `sidecar:KEY`: `KEY = value` in a text file beside the image with the same stem and another
  suffix (the SSRL `.raw.pdi` files write `# Theta = 5.56; 2Theta = 11.12; …`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from geocal_cli.errors import ConfigError, InputFileError


def read_positions(spec: str, images: list[Path], numeric: bool = True) -> list:
    """The position of every image, in the order of `images`.

    Parameters
    ----------
    spec : str
        See the module docstring.
    images : list of Path
    numeric : bool
        Positions are numbers (False: names, e.g. the calibrants of a `calibrants` model).

    Returns
    -------
    list of float (or str when not `numeric`)

    Raises
    ------
    ConfigError
        An unknown source, an image without a position, or a value that is not a number.
    InputFileError
        The positions file cannot be read.
    """
    if spec.startswith("header:"):
        values = {p: _header(p, spec[7:]) for p in images}
    elif spec.startswith("sidecar:"):
        values = {p: _sidecar(p, spec[8:]) for p in images}
    else:
        table = _table(Path(spec))
        values = {p: table.get(p.name, table.get(p.stem)) for p in images}
    missing = [p.name for p, v in values.items() if v is None]
    if missing:
        raise ConfigError(f"--positions {spec} gives no position for {', '.join(missing[:5])}"
                          + (" …" if len(missing) > 5 else ""))
    if not numeric:
        return [str(values[p]).strip() for p in images]
    out = []
    for p in images:
        try:
            out.append(float(values[p]))
        except ValueError:
            raise ConfigError(f"--positions {spec}: the position of {p.name}, {values[p]!r}, "
                              "is not a number") from None
    return out


def _table(path: Path) -> dict:
    from geocal_cli.files import read_text

    text = read_text(path, "positions file", error=InputFileError)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of image name → position")
        return {str(k): v for k, v in data.items()}
    rows = [r for r in csv.reader(text.splitlines()) if len(r) >= 2 and not r[0].startswith("#")]
    return {r[0].strip(): r[1].strip() for r in rows}


def _header(image: Path, key: str):
    from geocal_cli.io.images import read_header

    header = read_header(image)
    return header.get(key)


def _sidecar(image: Path, key: str):
    pattern = re.compile(rf"(?:^|[;#\s]){re.escape(key)}\s*[=:]\s*([^;\s]+)")
    for side in sorted(image.parent.glob(image.stem + ".*")):
        if side == image or side.suffix.lower() in (".tif", ".tiff", ".edf", ".cbf", ".h5"):
            continue
        try:
            text = side.read_text(errors="replace")
        except OSError:
            continue
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None
