from pathlib import Path

import pytest
import yaml

from geocal_cli.config.base import dump_yaml, load_config
from geocal_cli.config.calib_ring import CalibRingConfig
from geocal_cli.config.convert_poni import ConvertPoniConfig
from geocal_cli.config.grid_distortion import GridDistortionConfig
from geocal_cli.config.batch import BatchConfig
from geocal_cli.config.q_check import QCheckConfig
from geocal_cli.config.recenter import RecenterConfig
from geocal_cli.config.simulate import SimulateConfig
from geocal_cli.errors import ConfigError

SAMPLES = Path(__file__).resolve().parents[2] / "sample_configs"
MODELS = {"calib-ring": (CalibRingConfig, {"image": "x.edf"}),
          "simulate": (SimulateConfig, {"output": "x.edf"}),
          "recenter": (RecenterConfig, {"image": "x.tif", "poni": "ref.poni"}),
          "convert-poni": (ConvertPoniConfig, {"input": "controls.imctrl"}),
          "q-check": (QCheckConfig, {"image": "x.tif", "poni": "ref.poni"}),
          "grid-distortion": (GridDistortionConfig, {"image": "grid.edf"}),
          "batch": (BatchConfig, {}),
          "joint": (BatchConfig, {})}


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_sample_configs_validate(path):
    model, required = MODELS[path.stem]
    cfg = load_config(model, path, required)
    assert yaml.safe_load(dump_yaml(cfg))


def test_precedence_defaults_yaml_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("calibrant: CeO2\nenergy_kev: 30\ndetector: Pilatus1M\nmax_rings: 10\n")
    cfg = load_config(CalibRingConfig, path, {"image": "a.tif", "max_rings": 5, "detector": None})
    assert cfg.max_rings == 5            # flag beats YAML
    assert cfg.detector == "Pilatus1M"   # unset flag leaves YAML
    assert cfg.fix == ("rot3", "wavelength")  # default


@pytest.mark.parametrize("overrides, message", [
    ({"energy_kev": -3}, "energy_kev = -3"),
    ({"energy_kev": 10, "wavelength_a": 1.0}, "only one of"),
    ({"energy_kev": 10, "fix": ("rot9",)}, "fix"),
    ({"energy_kev": 10, "bogus": 1}, "unknown key 'bogus'"),
    ({"energy_kev": 10, "max_rings": "many"}, "max_rings = 'many'"),
])
def test_errors_name_key_value_rule(overrides, message):
    base = {"image": "a.tif", "calibrant": "LaB6", "detector": "Pilatus1M"}
    with pytest.raises(ConfigError, match=message):
        load_config(CalibRingConfig, None, {**base, **overrides})


def test_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("calibrant: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(CalibRingConfig, path, {"image": "a"})
