"""The package finds its shipped data (checkpoints, text corpus) both from a checkout (the editable
install `make venv` makes) and as an installed wheel, which carries that data inside ``dgm/``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from dgm import zoo
from dgm.data import SHIPPED, shipped
from conftest import ROOT

INSTALLED_CHECK = """
import pathlib, sys
import dgm, dgm.data, dgm.zoo
site = pathlib.Path(sys.argv[1]).resolve()
assert pathlib.Path(dgm.__file__).resolve().is_relative_to(site), dgm.__file__
assert dgm.zoo.checkpoint_dir().is_relative_to(site), dgm.zoo.checkpoint_dir()
model = dgm.zoo.load("mnist-classifier")  # verifies the checkpoint's SHA-256 against its card
stories = (dgm.data.shipped("corpus") / "once_upon_a_time.txt").read_text()
assert stories.startswith("Once upon a time"), stories[:40]
print("cache", dgm.data.data_dir())
"""


def test_checkout_finds_the_repository_data():
    assert shipped("checkpoints") == ROOT / "data" / "checkpoints" == zoo.checkpoint_dir()
    assert shipped("corpus") == ROOT / "data" / "corpus"


def test_shipped_names_the_choices():
    with pytest.raises(ValueError, match=r"name must be one of \('checkpoints', 'corpus'\), got 'cache'"):
        shipped("cache")


def test_pyproject_lists_every_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {
        ".".join(init.parent.relative_to(ROOT / "lib").parts) for init in (ROOT / "lib").rglob("__init__.py")
    }
    assert set(config["packages"]) == packages | {"dgm.shipped"}
    assert config["package-dir"]["dgm.shipped"] == "data"


def test_installed_wheel_loads_checkpoints_and_corpus(tmp_path):
    """Build the wheel from a copy of the project, install it into a plain folder, and import it
    from there, away from the checkout: it must verify and load a checkpoint and read the corpus."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in SHIPPED:
        shutil.copytree(ROOT / "data" / name, source / "data" / name)
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("dgm-*.whl")
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    assert sorted(p.name for p in (site / "dgm" / "shipped" / "checkpoints").glob("*.pt")) == sorted(
        p.name for p in shipped("checkpoints").glob("*.pt")
    )
    environment = {**os.environ, "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    environment.pop("DGM_DATA", None)
    run = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK, str(site)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    # without DGM_DATA an installed package caches downloads in the home folder, not in site-packages
    assert run.stdout.strip() == f"cache {tmp_path / '.cache' / 'dgm'}"
