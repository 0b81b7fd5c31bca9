"""Shared configuration machinery: frozen models, YAML + flag precedence, readable errors.

Precedence: model defaults < `--config FILE.yaml` < flags the user set (a flag left at None
did not override anything).

One vocabulary: a config key is its flag's long name with underscores, followed by the unit
where the value has one (`--energy` → `energy_kev`, `--pixel-size` → `pixel_size_um`,
`--wait` → `wait_s`); a `--no-X` flag sets the key `X` to false; an argument's key is its
name (`IMAGE` → `image`). A field that cannot follow the rule says so in
`json_schema_extra`: {"flag": "--spots"}, {"flag": None} (config only), {"argument": True}
or {"argument": "INPUT..."}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from geocal_cli.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# Physically meaningful ranges: a value outside is a typo or a unit mistake, refused with the
# rule named (README, "Bounded work").
#: Pixel size, µm (0.1 µm … 10 mm).
PixelUm = Annotated[float, Field(ge=0.1, le=10_000)]
#: A pyFAI detector name or detector file: not empty.
DetectorName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: Image side, pixels (2 … 65536).
Side = Annotated[int, Field(ge=2, le=65_536)]
#: A frame of a stack (0-based) or its reduction.
Frame = Annotated[int, Field(ge=0)] | Literal["sum", "mean"]


class GeocalModel(BaseModel):
    """Base of every subcommand's config: frozen, unknown keys and non-finite numbers rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    overwrite: bool = Field(False, description="replace existing files that geocal did not write")


class BeamConfig(GeocalModel):
    """Radiation: exactly one of photon energy, wavelength or electron voltage."""

    energy_kev: float | None = Field(None, ge=0.1, le=1000.0, description="photon energy, keV")
    wavelength_a: float | None = Field(None, ge=0.01, le=100.0, description="wavelength, Å")
    voltage_kv: float | None = Field(None, ge=1.0, le=3000.0, description="electron accelerating voltage, kV")

    @model_validator(mode="after")
    def _one_beam(self):
        given = [k for k in ("energy_kev", "wavelength_a", "voltage_kv") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of energy_kev, wavelength_a, voltage_kv (got {', '.join(given)})")
        return self

    def wavelength_m(self) -> float:
        """Wavelength in metres from whichever of energy, wavelength or voltage was given.

        Raises
        ------
        ConfigError
            If none was given.
        """
        from geocal_cli.core.geometry.units import wavelength_from_energy, wavelength_from_voltage

        if self.energy_kev is not None:
            return wavelength_from_energy(self.energy_kev)
        if self.wavelength_a is not None:
            return self.wavelength_a * 1e-10
        if self.voltage_kv is not None:
            return wavelength_from_voltage(self.voltage_kv)
        raise ConfigError("no radiation given: set --energy (keV), --wavelength (Å) or --voltage (kV)")

    @property
    def scattering(self) -> str:
        """'electron' when a voltage is given, else 'xray'."""
        return "electron" if self.voltage_kv is not None else "xray"


#: Largest λ(Kα2)/λ(Kα1) accepted: Ag Kα is 1.0077, W Kα 1.0099; above this the second line
#: is another source, not a doublet.
MAX_DOUBLET_RATIO = 1.03


class DoubletBeamConfig(BeamConfig):
    """Radiation that may be a lab source's Kα1/Kα2 doublet (the wavelength is then Kα1's)."""

    kalpha2_a: float | None = Field(None, ge=0.01, le=100.0, json_schema_extra={"flag": "--wavelength KA1,KA2"}, description=(
        "Kα2 wavelength of a lab source, Å, with wavelength_a its Kα1 (--wavelength KA1,KA2); "
        "rings are modelled as the two lines' blend and the PONI carries Kα1"))
    kalpha2_ratio: float = Field(0.5, gt=0, lt=1, description="intensity ratio I(Kα2)/I(Kα1) of the doublet")

    @model_validator(mode="after")
    def _doublet(self):
        if self.kalpha2_a is None:
            return self
        if self.wavelength_a is None:
            raise ValueError("a Kα2 wavelength (kalpha2_a) needs the Kα1 wavelength as wavelength_a "
                             "(--wavelength KA1,KA2)")
        ratio = self.kalpha2_a / self.wavelength_a
        if not 1 < ratio <= MAX_DOUBLET_RATIO:
            raise ValueError(f"--wavelength {self.wavelength_a},{self.kalpha2_a} (wavelength_a, "
                             f"kalpha2_a): a Kα2 line lies above Kα1 by at most "
                             f"{100 * (MAX_DOUBLET_RATIO - 1):.0f} % (Cu 1.54056,1.54439; "
                             "Mo 0.70930,0.71359)")
        return self

    def doublet(self):
        """The Kα2 line as `core.rings.doublet.Doublet`, or None for one wavelength."""
        from geocal_cli.core.rings.doublet import Doublet

        if self.kalpha2_a is None:
            return None
        return Doublet(self.kalpha2_a / self.wavelength_a, self.kalpha2_ratio)


def load_config(model: type[M], config_file: Path | dict | None, overrides: dict[str, Any]) -> M:
    """Build a config from defaults, an optional YAML file and the flags the user set.

    Parameters
    ----------
    model : type of GeocalModel
    config_file : Path, dict or None
        A YAML file, or its mapping already read (a batch config's `options`).
    overrides : dict
        Flag values; None means "not set".

    Raises
    ------
    ConfigError
        Unreadable YAML, or values that break a rule (the message names key, value, rule).
    """
    data: dict[str, Any] = {}
    if isinstance(config_file, dict):
        data.update(config_file)
        config_file = "options"
    elif config_file is not None:
        data.update(read_yaml(Path(config_file)))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = ConfigError(_describe(exc, config_file, model))
        error.missing_only = all(e["type"] == "missing" for e in exc.errors())
        raise error from None


def read_yaml(path: Path) -> dict:
    """A config file's mapping.

    Raises
    ------
    ConfigError
        Not a regular UTF-8 text file of at most `MAX_TEXT_BYTES`, not YAML, YAML with aliases
        (a few hundred bytes of aliases expand to gigabytes), too deeply nested, or not a
        mapping (see `geocal_cli.files.parse_structured`).
    """
    from geocal_cli.files import parse_structured, read_text

    loaded = parse_structured(read_text(path, "config file", error=ConfigError), path,
                              "config file", error=ConfigError)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return loaded


#: Unit suffixes of config keys (see the module docstring).
UNITS = ("_kev", "_kv", "_a", "_um", "_mm", "_m", "_deg", "_px", "_s")


def _extra(model: type[BaseModel], key: str) -> dict:
    field = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
    extra = field.json_schema_extra if field is not None else None
    return extra if isinstance(extra, dict) else {}


def flag_of(model: type[BaseModel], key: str) -> str | None:
    """The command-line flag of a config key, by the rule of the module docstring.

    Parameters
    ----------
    model : type of GeocalModel
    key : str
        A field name or alias of `model`.

    Returns
    -------
    str or None
        e.g. "--energy" for "energy_kev"; None for an argument or a key without a flag.
    """
    extra = _extra(model, key)
    if extra.get("argument") or "flag" in extra:
        return extra.get("flag")
    stem = next((key[: -len(u)] for u in UNITS if key.endswith(u)), key)
    return "--" + stem.replace("_", "-")


def given_as(model: type[BaseModel], key: str) -> str:
    """How a user gives a config key on the command line: "flag --energy", "the IMAGE
    argument", or "config only"."""
    argument = _extra(model, key).get("argument")
    if argument:
        return f"the {argument if isinstance(argument, str) else key.upper()} argument"
    flag = flag_of(model, key)
    return f"flag {flag}" if flag else "config only"


def suggest_key(model: type[BaseModel], key: str) -> str | None:
    """The valid config key a user most likely meant by `key`: the key of a flag spelled as
    a key (`energy`, `from`, `pixel-size`), else the closest key in spelling.

    Parameters
    ----------
    model : type of GeocalModel
    key : str

    Returns
    -------
    str or None
    """
    import difflib

    keys = [f.alias or n for n, f in model.model_fields.items()]
    renamed = [f.alias for n, f in model.model_fields.items() if f.alias and n == key]
    if renamed:
        return renamed[0]
    wanted = "--" + str(key).lstrip("-").replace("_", "-")
    by_flag = [k for k in keys if flag_of(model, k) == wanted]
    if by_flag:
        return by_flag[0]
    close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
    return close[0] if close else None


def _describe(exc: ValidationError, config_file, model: type[BaseModel]) -> str:
    from geocal_cli.files import quote

    where = f" (config {config_file})" if config_file else ""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not key:
            parts.append(msg)
        elif err["type"] == "extra_forbidden":
            best = suggest_key(model, key)
            parts.append(f"unknown key '{key}'" + (f": did you mean '{best}' ({given_as(model, best)})?"
                                                   if best else ""))
        elif err["type"] == "missing":
            parts.append(f"'{key}' is required ({given_as(model, key)}, or '{key}:' in --config)")
        elif "input" in err and not isinstance(err["input"], dict):
            parts.append(f"{key} = {quote(err['input'])}: {msg}")
        else:
            parts.append(f"{key}: {msg}")
    return "invalid config" + where + ": " + "; ".join(parts)


def merged_defaults(model: type[M], config_file: Path | None, overrides: dict[str, Any]) -> dict:
    """What `--show-config` prints when required values are still missing: the defaults, the
    config file and the flags merged, unvalidated, in the model's key order (JSON-ready).

    Parameters
    ----------
    model : type of GeocalModel
    config_file : Path or None
    overrides : dict

    Returns
    -------
    dict
    """
    import json

    data = {(f.alias or n): f.get_default(call_default_factory=True)
            for n, f in model.model_fields.items() if not f.is_required()}
    if config_file is not None:
        data.update(read_yaml(Path(config_file)))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return json.loads(json.dumps({k: v for k, v in data.items() if v is not None}, default=str))


def dump_yaml(cfg: BaseModel) -> str:
    """The effective config as YAML (paths as strings, None entries dropped)."""
    return yaml.safe_dump(to_plain(cfg), sort_keys=False, allow_unicode=True)


def to_plain(cfg: BaseModel) -> dict:
    """JSON/YAML-ready dict of a config (paths as strings, tuples as lists, no None)."""
    return {k: v for k, v in cfg.model_dump(mode="json", by_alias=True).items() if v is not None}
