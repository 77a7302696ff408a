"""The notebooks that compare against MNIST say once that they are offline and skip those comparisons.

Each runs in fast mode with an empty data cache and downloads turned off (``DGM_OFFLINE=1``), so
``dgm.data.mnist(..., fallback=True)`` serves sklearn's digits. (Numbers quoted from a model card
stay: they are labelled as the card's.)
"""

from __future__ import annotations

import re

import nbformat
import pytest

from dgm.course.notebooks import execute_notebook, source_notebook

pytestmark = pytest.mark.pipeline

MEASURED_FID = r"FID\s+\d[^\n]*floor, real train digits|steps: accuracy[^\n]*FID"  # FIDs measured against test digits
CASES = {
    "03_autoregressive": ["the pretrained model, trained on MNIST, is not scored"],
    "04_gans": ["(offline: FID skipped, it needs MNIST test digits)"],
    "06_vae": ["the pretrained VAE, trained on MNIST, is not scored"],
    "07_ddpm": ["spread has no real digits to compare with", "(offline: FID skipped)"],
    "09_latent": ["so FID is skipped and only the class accuracy is shown"],
}


def outputs(nb) -> str:
    """All stdout and stderr text of an executed notebook."""
    return "".join(o["text"] for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.parametrize("assignment", CASES)
def test_offline_notebook_warns_once_and_skips_mnist_comparisons(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DGM_OFFLINE", "1")
    target = tmp_path / f"{assignment}.ipynb"
    execute_notebook(source_notebook(assignment), target, fast=True)
    text = outputs(nbformat.read(target, as_version=4))
    assert text.count("MNIST IS NOT AVAILABLE") == 1, "the fallback is announced once, in one place"
    for line in CASES[assignment]:
        assert line in text
    assert not re.search(MEASURED_FID, text), "no FID measured against an MNIST floor offline"
