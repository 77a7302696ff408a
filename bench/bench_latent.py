"""Latent diffusion on MNIST: the zoo's ``ldm-dit-mnist``, its sampling cost, and objectives side by side.

- The zoo model (autoencoder + flow-matching DiT, trained in 15 CPU-minutes together): class
  accuracy and FID of guided samples for Euler in 5, 10 and 20 steps and Heun in 10 (20 velocity
  calls), at guidance 1.5, and the seconds for 100 guided samples.
- Objectives in the same latent space (the zoo's autoencoder), each DiT trained from scratch for
  ``BENCH_LATENT_SECONDS`` (default 300 s): flow matching with uniform times, flow matching with
  logit-normal times, and the epsilon objective of :mod:`dgm.diffusion` (sampled with
  DPM-Solver++(2M)); all judged at 20 steps, guidance 1.5 and 2.

Needs the real MNIST (``DGM_DATA``). About 20 minutes on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from bench_ddpm import judged

from dgm import zoo
from dgm.data import mnist
from dgm.metrics import evaluate_class_samples
from dgm.recipes.ldm import encode, fit_denoiser, sample_digits, sample_latents

SECONDS = float(os.environ.get("BENCH_LATENT_SECONDS", 300))
SCALES = (1.5, 2.0)
SOLVERS = [("Euler", 5), ("Euler", 10), ("Euler", 20), ("Heun", 10)]
OBJECTIVES = [
    ("flow matching, uniform t", {"objective": "flow", "times": "uniform"}),
    ("flow matching, logit-normal t", {"objective": "flow", "times": "logit_normal"}),
    ("epsilon prediction (linear schedule, T = 1000)", {"objective": "epsilon"}),
]


def solver_rows(model) -> list[dict]:
    rows = []
    for solver, steps in SOLVERS:
        start = time.perf_counter()
        sample_digits(model, torch.arange(10).repeat(10), 1.5, steps, solver=solver.lower())
        hundred = time.perf_counter() - start
        metrics, _ = evaluate_class_samples(
            lambda labels, scale: sample_digits(model, labels, scale, steps, solver=solver.lower()), 100, (1.5,))
        rows.append({
            "model": f"ldm-dit-mnist (zoo), {solver} {steps} steps ({steps * (2 if solver == 'Heun' else 1)} velocity calls)",
            "params": sum(p.numel() for p in model.parameters()),
            "budget": "-",
            "steps/s": "-",
            "metrics": f"{judged(metrics, 1.5)}; 100 guided samples in {hundred:.2f} s (goal <= 3 s at <= 20 steps)",
        })
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def objective_row(model, latents: torch.Tensor, labels: torch.Tensor, name: str, arguments: dict) -> dict:
    result = fit_denoiser(latents, labels, SECONDS, **arguments)
    objective = arguments["objective"]

    def sample(wanted: torch.Tensor, scale: float) -> torch.Tensor:
        z = sample_latents(result.ema, wanted, scale, 20, objective=objective)
        return model.to_images(z)

    metrics, _ = evaluate_class_samples(sample, 100, SCALES)
    sampler = "Euler-20" if objective == "flow" else "DPM-Solver++(2M)-20"
    row = {
        "model": f"DiT on the zoo autoencoder's latents: {name}",
        "params": sum(p.numel() for p in result.ema.parameters()),
        "budget": f"{SECONDS:g} s",
        "steps/s": f"{result.steps / result.seconds:.2f}",
        "metrics": f"{sampler}, class accuracy / FID (n=1000): " + "; ".join(judged(metrics, s) for s in SCALES),
    }
    print(row, file=sys.stderr, flush=True)
    return row


def run() -> list[dict]:
    model = zoo.load("ldm-dit-mnist", device="cpu")
    card = zoo.card("ldm-dit-mnist")
    rows = [{
        "model": "ldm-dit-mnist (zoo card)",
        "params": card["parameters"],
        "budget": f"{card['train_seconds']:g} s (autoencoder + DiT)",
        "steps/s": "-",
        "metrics": "; ".join(judged(card["metrics"], s) for s in (1.5, 2.0))
        + f"; reconstruction FID {card['metrics']['fid_reconstructions']}",
    }]
    rows += solver_rows(model)
    images, labels = mnist("train")
    latents = encode(model.autoencoder, images) * model.scale
    return rows + [objective_row(model, latents, labels, name, arguments) for name, arguments in OBJECTIVES]
