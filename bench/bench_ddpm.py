"""Class-conditional DDPM on MNIST: training recipes side by side at one budget, and few-step samplers.

- Samplers, on the shipped zoo model: DDIM-50 (the course's former default) against
  DPM-Solver++(2M) in 20, 15 and 10 steps, at guidance 2: class accuracy, FID and the time of
  100 guided samples.
- Recipes: each trained from scratch for ``BENCH_DDPM_SECONDS`` (default 600 s, ten CPU-minutes),
  then judged by the same sampler (DPM-Solver++(2M), 20 steps) at guidance 1.5 and 2: class
  accuracy and FID of 100 samples per digit, and the FID over its floor (train vs test digits at
  that sample size).

Needs the real MNIST (``DGM_DATA``). About 35 minutes on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from dgm import zoo
from dgm.recipes.ddpm import evaluate, fit_ddpm, sample_digits

SECONDS = float(os.environ.get("BENCH_DDPM_SECONDS", 600))
SCALES = (1.5, 2.0)

# (name, fit_ddpm arguments): DDPM's plain epsilon loss as the course trained it, and candidates.
RECIPES = [
    ("plain epsilon loss, batch 128 (the recipe before)", {"snr_gamma": None, "batch_size": 128}),
    ("min-SNR-5 weighting, batch 128", {"snr_gamma": 5.0, "batch_size": 128}),
    ("min-SNR-5 weighting, batch 64", {"snr_gamma": 5.0, "batch_size": 64}),
]
# (name, sample_digits arguments)
SAMPLERS = [
    ("DDIM-50", {"steps": 50, "order": 1}),
    ("DPM-Solver++(2M)-20", {"steps": 20, "order": 2}),
    ("DPM-Solver++(2M)-15", {"steps": 15, "order": 2}),
    ("DPM-Solver++(2M)-10", {"steps": 10, "order": 2}),
]


def judged(metrics: dict, scale: float) -> str:
    accuracy, fid, floor = (metrics[key] for key in (f"class_accuracy_scale_{scale:g}", f"fid_scale_{scale:g}", "fid_floor_train_vs_test"))
    return f"scale {scale:g}: {accuracy:.1%} / FID {fid:.1f} ({fid / floor:.2f}x floor)"


def sampler_rows() -> list[dict]:
    model = zoo.load("ddpm-mnist-cond")
    rows = []
    for name, arguments in SAMPLERS:
        start = time.perf_counter()
        sample_digits(model, torch.arange(10).repeat(10), 2.0, **arguments)
        hundred = time.perf_counter() - start
        metrics = evaluate(model, scales=(2.0,), **arguments)["metrics"]
        rows.append({
            "model": f"ddpm-mnist-cond (zoo), sampled with {name}",
            "params": sum(p.numel() for p in model.parameters()),
            "budget": "-",
            "steps/s": "-",
            "metrics": f"{judged(metrics, 2.0)}; 100 guided samples in {hundred:.1f} s",
        })
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def recipe_row(name: str, arguments: dict, seconds: float = SECONDS) -> dict:
    result = fit_ddpm(seconds, **arguments)
    metrics = evaluate(result.ema, scales=SCALES)["metrics"]
    row = {
        "model": f"UNet(16, 32, 64) from scratch: {name}",
        "params": sum(p.numel() for p in result.ema.parameters()),
        "budget": f"{seconds:g} s",
        "steps/s": f"{result.steps / result.seconds:.2f}",
        "metrics": "DPM-Solver++(2M)-20, class accuracy / FID (n=1000): "
        + "; ".join(judged(metrics, scale) for scale in SCALES),
    }
    print(row, file=sys.stderr, flush=True)
    return row


def run() -> list[dict]:
    return sampler_rows() + [recipe_row(name, arguments) for name, arguments in RECIPES]
