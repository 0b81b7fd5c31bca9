"""The import rules of geocal's layers, checked on the source with `ast` (nothing is imported).

Layers, highest first: ``main`` (with ``__main__`` and ``_generate``) → ``commands`` (with
``console``) → ``pipeline`` → ``config`` | ``io`` → ``core``. A module may import its own
layer and any layer below it, never one above; ``config`` and ``io`` are siblings and import
neither each other nor anything above. Below them, ``files`` (which input files geocal agrees
to open, and the size limits) serves both readers of files, ``config`` and ``io``; ``core``,
which opens no file, may not import it. ``errors`` and the package's ``__init__`` are the
floor: everyone imports them, they import nothing of the package.

Inside ``core``, each sub-package is a capability. ``geometry`` is the shared ground: it
imports nothing else of ``core``. Any other capability imports ``geometry`` and itself, plus a
capability ``<name>`` only when its ``__init__`` docstring names it as
``<package>.core.<name>`` (the paragraph that says why). ``core`` imports no terminal,
config, file-format or plotting library and calls no ``open()``.

Imports are read wherever they stand (inside functions too, where geocal defers heavy ones),
including ``importlib.import_module("...")`` with a literal name and relative imports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# first name under the package -> (layer, rank); "" is the package's own __init__
LAYERS = {"main": ("main", 4), "__main__": ("main", 4), "_generate": ("main", 4),
          "commands": ("commands", 3), "console": ("commands", 3), "pipeline": ("pipeline", 2),
          "config": ("config", 1), "io": ("io", 1), "core": ("core", 0),
          "files": ("files", 0.5), "errors": ("floor", -1), "": ("floor", -1)}
SHARED_GROUND = "geometry"
CORE_FORBIDDEN = ("typer", "click", "rich", "pydantic", "yaml", "fabio", "h5py", "matplotlib",
                  "msgpack", "rsciio", "filelock", "dask")


@dataclass(frozen=True)
class Violation:
    """One import (or call) that breaks a rule.

    Attributes
    ----------
    path : Path
        The importing file.
    line : int
        Line number of the import.
    importer, imported : str
        Dotted module names (``imported`` may be an external top-level package).
    rule : str
        Which rule, in words.
    """

    path: Path
    line: int
    importer: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.rule}"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]):
    """(line, dotted target) for every import in `tree`, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in known else target
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")):
            yield node.lineno, node.args[0].value


def _declared(init: Path, package: str) -> set[str]:
    """Capabilities named as ``<package>.core.<name>`` in a capability's `__init__` docstring."""
    if not init.exists():
        return set()
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    marker = f"{package}.core."
    found = set()
    for chunk in doc.split(marker)[1:]:
        name = ""
        for ch in chunk:
            if not (ch.isalnum() or ch == "_"):
                break
            name += ch
        if name:
            found.add(name)
    return found


def check_layering(root: Path) -> list[Violation]:
    """Every import in the package at `root` that breaks the layering rules.

    Parameters
    ----------
    root : Path
        The package folder (its name is the package name, e.g. ``.../geocal_cli``).

    Returns
    -------
    list of Violation
        Empty when the package keeps the rules.
    """
    package = root.name
    files = sorted(root.rglob("*.py"))
    known = {_module_name(root, f) for f in files}
    out = []
    for path in files:
        module = _module_name(root, path)
        parts = module.split(".")
        first = parts[1] if len(parts) > 1 else ""
        if first not in LAYERS:
            out.append(Violation(path, 0, module, "", f"'{first}' is in no layer"))
            continue
        layer, rank = LAYERS[first]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        capability = parts[2] if layer == "core" and len(parts) > 2 else None
        allowed_caps = {capability, SHARED_GROUND} | (
            _declared(root / "core" / capability / "__init__.py", package)
            if capability and capability != SHARED_GROUND else set())
        for line, target in _imports(tree, module, path.name == "__init__.py", known):
            tparts = target.split(".")
            if tparts[0] != package:
                if layer == "core" and tparts[0] in CORE_FORBIDDEN:
                    out.append(Violation(path, line, module, target,
                                         "core imports no terminal, config, file or plot library"))
                continue
            tlayer, trank = LAYERS.get(tparts[1] if len(tparts) > 1 else "", ("unknown", 99))
            if tlayer != layer and trank >= rank:
                out.append(Violation(path, line, module, target,
                                     f"{layer} may not import {tlayer} (layers go "
                                     "main → commands → pipeline → config|io → files → core)"))
            elif layer == "core" and tlayer == "core" and len(tparts) > 2 and capability:
                tcap = tparts[2]
                if capability == SHARED_GROUND and tcap != SHARED_GROUND:
                    out.append(Violation(path, line, module, target,
                                         f"core.{SHARED_GROUND} is the shared ground and imports "
                                         "no capability"))
                elif tcap not in allowed_caps:
                    out.append(Violation(path, line, module, target,
                                         f"core.{capability} does not declare core.{tcap} in its "
                                         "__init__ docstring"))
        if layer == "core":
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                    out.append(Violation(path, node.lineno, module, "open()",
                                         "core does no file I/O"))
    return out
