"""The conda environment and the pip package name the same dependencies."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import ROOT

CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(split(r) for r in requirements)


def conda_requirements() -> dict[str, str]:
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    found = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, str):
            name, version = split(entry)
            if name not in NOT_PACKAGES:
                found[CONDA_TO_PIP.get(name, name)] = version
    return found


def test_environment_yml_and_pyproject_name_the_same_packages():
    pip, conda = pip_requirements(), conda_requirements()
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject.toml: {sorted(set(pip) - set(conda))}; only in environment.yml: {sorted(set(conda) - set(pip))}"
    )


def test_environment_yml_and_pyproject_agree_on_versions():
    pip, conda = pip_requirements(), conda_requirements()
    assert {n: pip[n] for n in pip} == {n: conda[n] for n in pip}


def test_environment_yml_pins_python_311():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in spec["dependencies"]
