"""The notebooks that compare against MNIST say once that they are offline and skip those comparisons.

Each runs in fast mode with an empty data cache and downloads turned off (``DGM_OFFLINE=1``), so
``dgm.data.mnist(..., fallback=True)`` serves sklearn's digits.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from dgm.course.notebooks import execute_notebook, source_notebook

pytestmark = pytest.mark.pipeline


def outputs(nb) -> tuple[str, str]:
    """All stdout text and all stderr text of an executed notebook."""
    streams = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
    return ("".join(o["text"] for o in streams if o["name"] == "stdout"),
            "".join(o["text"] for o in streams if o["name"] == "stderr"))


@pytest.mark.parametrize("assignment, skipped", [
    ("03_autoregressive", ["the pretrained model, trained on MNIST, is not scored"]),
    ("07_ddpm", ["spread has no real digits to compare with", "(offline: FID skipped)"]),
])
def test_offline_notebook_warns_once_and_skips_mnist_comparisons(assignment, skipped, tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DGM_OFFLINE", "1")
    target = tmp_path / f"{assignment}.ipynb"
    execute_notebook(source_notebook(assignment), target, fast=True)
    stdout, stderr = outputs(nbformat.read(target, as_version=4))
    assert (stdout + stderr).count("MNIST IS NOT AVAILABLE") == 1, "the fallback is announced once, in one place"
    for line in skipped:
        assert line in stdout
    assert not re.search(r"FID\s+\d", stdout), "no FID against an MNIST floor offline"
