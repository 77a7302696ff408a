"""The library's map: every module is listed in its package's docstring, the core imports no model
module, no module reaches into another's private names, and zoo recipes live in dgm.recipes."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import dgm
from dgm import zoo

PACKAGES = ["dgm", "dgm.recipes", "dgm.course"]
CORE = ["device", "checks", "data", "blocks", "train", "metrics", "viz", "zoo"]
LIBRARY = Path(dgm.__file__).parent


def modules_of(package: str) -> list[str]:
    path = importlib.import_module(package).__path__
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(path) if info.name != "__main__"]


def dgm_imports(path: Path) -> list[tuple[str, str]]:
    """Every ``(module, name)`` a file imports from dgm, at any depth (``name`` is "" for ``import dgm.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dgm":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "dgm"]
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_listed_in_its_package_docstring(package):
    docstring = importlib.import_module(package).__doc__
    listed = set(re.findall(r":mod:`(dgm[\w.]*)`", docstring))
    missing = [name for name in modules_of(package) if name not in listed]
    assert not missing, f"{package}'s docstring does not list {missing}"


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_model_module(module):
    allowed = {f"dgm.{name}" for name in CORE} | {"dgm"}
    # ``from dgm import zoo`` imports dgm.zoo; ``from dgm.data import mnist`` and ``import dgm.data``, dgm.data
    imported = {f"dgm.{name}" if source == "dgm" else source for source, name in dgm_imports(LIBRARY / f"{module}.py")}
    assert imported <= allowed, f"dgm.{module} imports {sorted(imported - allowed)}"


@pytest.mark.parametrize("path", sorted(LIBRARY.rglob("*.py")), ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_module_imports_another_modules_private_names(path):
    private = [f"{source}.{name}" for source, name in dgm_imports(path) if name.startswith("_")]
    assert not private, f"{path.name} imports private names {private}"


def test_every_zoo_model_is_built_and_trained_by_a_recipe():
    for entry in zoo.MODELS.values():
        for target in (entry.build, entry.train):
            module, function = target.split(":")
            assert module.startswith("dgm.recipes."), f"{entry.name}: {target} is not a recipe"
            assert callable(getattr(importlib.import_module(module), function))
