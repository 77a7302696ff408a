"""Shared fixtures. Tests run on the CPU unless DGM_DEVICE says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """A data cache with no MNIST in it and downloads that fail at once (offline)."""
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path


def shared_mnist() -> Path | None:
    """The MNIST mirror if DGM_DATA points at one (as CI does), else None."""
    folder = Path(os.environ.get("DGM_DATA", "/nonexistent")) / "mnist"
    return folder if (folder / "t10k-images-idx3-ubyte.gz").exists() else None
