"""The package keeps its layering, and the checker catches each kind of bad import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.layering import check_layering

PACKAGE = Path(__file__).resolve().parent.parent / "geocal_cli"
CAPABILITIES = ("geometry", "rings", "center", "grid", "q", "simulate", "calibrant", "series", "joint",
                "electron")


def test_geocal_keeps_its_layering():
    violations = check_layering(PACKAGE)
    assert not violations, "\n".join(map(str, violations))


def test_core_is_one_subpackage_per_capability():
    core = PACKAGE / "core"
    top_modules = [p.name for p in core.glob("*.py") if p.name != "__init__.py"]
    assert len(top_modules) <= 4, top_modules
    for name in CAPABILITIES:
        init = core / name / "__init__.py"
        assert init.exists(), f"core/{name}/ is missing"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) > 30, f"core/{name}/__init__.py needs its paragraph"
    subpackages = {p.parent.name for p in core.glob("*/__init__.py")}
    assert subpackages == set(CAPABILITIES), subpackages


# A small package laid out like geocal, whose imports all keep the rules.
CLEAN = {
    "__init__.py": '__version__ = "0"\n',
    "errors.py": "class GeoError(Exception):\n    pass\n",
    "console.py": "import rich\n",
    "main.py": "from pkg import __version__, console\nfrom pkg.commands import calib\n",
    "commands/__init__.py": "",
    "commands/calib.py": "from pkg import console\nfrom pkg.pipeline import calib\n"
                         "from pkg.io.reports import to_json\n",
    "pipeline/__init__.py": "",
    "pipeline/calib.py": "from pkg.config.calib import Config\nfrom pkg.io import images\n"
                         "from pkg.core.rings.fit import fit\nfrom pkg.errors import GeoError\n",
    "config/__init__.py": "",
    "config/calib.py": "import pydantic\nfrom pkg.core.geometry.units import kev\n",
    "io/__init__.py": "",
    "io/images.py": "import fabio\nfrom pkg.core.geometry import frame\n",
    "io/reports.py": "import json\nfrom . import images\n",
    "core/__init__.py": '"""Pure numerics."""\n',
    "core/geometry/__init__.py": '"""Shared ground."""\n',
    "core/geometry/frame.py": "import numpy as np\n",
    "core/geometry/units.py": "from .frame import np\n",
    "core/rings/__init__.py": '"""Rings."""\n',
    "core/rings/fit.py": "from pkg.core.geometry.frame import np\nfrom pkg.errors import GeoError\n"
                         "from . import helpers\n\ndef fit():\n    import scipy.optimize\n",
    "core/rings/helpers.py": "",
    "core/center/__init__.py": '"""Centre. It reuses pkg.core.rings for its control points."""\n',
    "core/center/ring.py": "from pkg.core.rings.fit import fit\nfrom ..geometry import frame\n",
    "core/q/__init__.py": '"""q checks."""\n',
    "core/q/powder.py": "from pkg.core.geometry.units import np\n",
}

BAD = {
    "core imports io": ("core/rings/fit.py", "from pkg.io import images\n", "core may not import io"),
    "core imports config, relative": ("core/q/powder.py", "from ...config.calib import Config\n",
                                      "core may not import config"),
    "core imports pipeline, by name": ("core/q/powder.py",
                                       "import importlib\nimportlib.import_module('pkg.pipeline.calib')\n",
                                       "core may not import pipeline"),
    "io imports pipeline": ("io/images.py", "from pkg.pipeline import calib\n",
                            "io may not import pipeline"),
    "io imports commands, deferred": ("io/reports.py", "def f():\n    from pkg.commands import calib\n",
                                      "io may not import commands"),
    "config imports io": ("config/calib.py", "from pkg.io import images\n", "config may not import io"),
    "pipeline imports commands": ("pipeline/calib.py", "import pkg.commands.calib\n",
                                  "pipeline may not import commands"),
    "commands imports main": ("commands/calib.py", "from pkg import main\n",
                              "commands may not import main"),
    "undeclared capability": ("core/q/powder.py", "from pkg.core.center.ring import fit\n",
                              "core.q does not declare core.center"),
    "geometry imports a capability": ("core/geometry/units.py", "from pkg.core.rings import fit\n",
                                      "core.geometry is the shared ground"),
    "core imports yaml": ("core/geometry/frame.py", "import yaml\n", "core imports no"),
    "core imports h5py, deferred": ("core/rings/fit.py", "def g():\n    import h5py\n", "core imports no"),
    "core opens a file": ("core/rings/helpers.py", "def read(p):\n    return open(p).read()\n",
                          "core does no file I/O"),
}


def _write_tree(root: Path, extra: tuple[str, str] | None = None) -> Path:
    pkg = root / "pkg"
    for name, text in CLEAN.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if extra:
        name, text = extra
        with open(pkg / name, "a") as fh:
            fh.write(text)
    return pkg


def test_clean_synthetic_tree_passes(tmp_path):
    assert check_layering(_write_tree(tmp_path)) == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_import_is_caught(tmp_path, case):
    name, text, rule = BAD[case]
    violations = check_layering(_write_tree(tmp_path, (name, text)))
    assert len(violations) == 1, violations
    assert rule in str(violations[0])
    assert violations[0].path == tmp_path / "pkg" / name
