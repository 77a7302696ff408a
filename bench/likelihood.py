"""The shared row of the likelihood benchmarks (PixelCNN, VAE): train within a budget, time 100 samples."""

from __future__ import annotations

import time
from collections.abc import Callable


def likelihood_row(train: Callable, sample: Callable, seconds: float, metrics: Callable[[dict], str]) -> dict:
    """Run ``train(seconds=seconds) -> (model, report)``, time ``sample(model, 100, seed=0)``, and
    describe the result as one table row; ``metrics(report["metrics"])`` writes the quality part."""
    model, report = train(seconds=seconds)
    start = time.perf_counter()
    sample(model, 100, seed=0)
    sampling = time.perf_counter() - start
    return {
        "model": report["architecture"],
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"{seconds:g} s",
        "steps/s": f"{report['steps'] / report['train_seconds']:.2f}",
        "metrics": f"{metrics(report['metrics'])}; {report['images_per_second']} train images/s; "
        f"100 samples in {sampling:.2f} s",
    }
