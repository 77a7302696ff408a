"""The evaluation classifier: training speed from scratch, the shipped model's accuracy, FID's floor and ceiling.

Budget: ``BENCH_CLASSIFIER_SECONDS`` (default 150 s) of training, plus about a minute of evaluation.
Needs the real MNIST (``DGM_DATA``); refuses to run on the fallback.
"""

from __future__ import annotations

import os

from dgm import metrics
from dgm.data import mnist
from dgm.recipes import classifier as classifier_recipe

SECONDS = float(os.environ.get("BENCH_CLASSIFIER_SECONDS", 150))


def run() -> list[dict]:
    images, labels = mnist("test", download=False)
    fresh, report = classifier_recipe.train(seconds=SECONDS)
    shipped = metrics.evaluation_classifier()
    reference = metrics.fid_reference(2000, shipped)
    params = sum(p.numel() for p in shipped.parameters())
    return [
        {
            "model": "digit classifier, trained here",
            "params": params,
            "budget": f"{SECONDS:g} s",
            "steps/s": f"{report['steps'] / report['train_seconds']:.1f}",
            "metrics": f"test accuracy {report['metrics']['test_accuracy']:.4f} after {report['steps']} steps",
        },
        {
            "model": "digit classifier, shipped (zoo)",
            "params": params,
            "budget": "-",
            "steps/s": "-",
            "metrics": f"test accuracy {metrics.class_accuracy(images, labels, shipped):.4f}; "
            f"FID floor (train vs test, n=2000) {reference['floor']:.2f}, ceiling (noise vs test) {reference['ceiling']:.1f}",
        },
    ]
