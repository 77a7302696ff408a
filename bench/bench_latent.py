"""Latent diffusion on MNIST: the zoo's ``ldm-dit-mnist``, its sampling cost, and objectives side by side.

- The zoo model (autoencoder + flow-matching DiT, trained in 15 CPU-minutes together): class
  accuracy and FID of guided samples for Euler in 5, 10 and 20 steps and Heun in 10 (20 velocity
  calls), at guidance 1.5, and the seconds for 100 guided samples.
- Objectives in the same latent space (the zoo's autoencoder), each DiT trained from scratch for
  ``BENCH_LATENT_SECONDS`` (default 300 s): flow matching with uniform times, flow matching with
  logit-normal times, and the epsilon objective of :mod:`dgm.diffusion` (sampled with
  DPM-Solver++(2M)); all judged at 20 steps, guidance 1.5 and 2.
- Pixels against latents at equal minutes: 07's pixel U-Net (the zoo's recipe, min-SNR-5) and the
  whole latent recipe (autoencoder + DiT), each trained from scratch for
  ``BENCH_LATENT_EQUAL_SECONDS`` (default 600 s), each judged by its own sampler of 20 network calls.

``BENCH_LATENT_ROWS`` picks row groups (comma-separated, default all): ``zoo`` (the card and the
solvers), ``objectives``, ``equal``. Needs the real MNIST (``DGM_DATA``). About 45 minutes on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from bench_ddpm import judged
from bench_ddpm import recipe_row as pixel_row

from dgm import zoo
from dgm.data import mnist
from dgm.metrics import evaluate_class_samples
from dgm.recipes import ldm
from dgm.recipes.ldm import encode, fit_denoiser, sample_digits, sample_latents

SECONDS = float(os.environ.get("BENCH_LATENT_SECONDS", 300))
EQUAL_SECONDS = float(os.environ.get("BENCH_LATENT_EQUAL_SECONDS", 600))
ROWS = os.environ.get("BENCH_LATENT_ROWS", "zoo,objectives,equal").split(",")
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
        z = sample_latents(result.ema, wanted, scale, 20, objective=objective, solver="euler")
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


def latent_recipe_row() -> dict:
    """The zoo's latent recipe (autoencoder, then DiT) trained from scratch in ``EQUAL_SECONDS``."""
    model, card = ldm.train(EQUAL_SECONDS)
    row = {
        "model": "latent recipe from scratch: autoencoder + DiT, flow matching",
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"{EQUAL_SECONDS:g} s (autoencoder {EQUAL_SECONDS * ldm.AUTOENCODER_SHARE:g} s)",
        "steps/s": f"{card['steps'] / (EQUAL_SECONDS * (1 - ldm.AUTOENCODER_SHARE)):.2f}",
        "metrics": f"{ldm.SOLVER.title()}-{ldm.SAMPLING_STEPS}, class accuracy / FID (n=1000): "
        + "; ".join(judged(card["metrics"], s) for s in SCALES),
    }
    print(row, file=sys.stderr, flush=True)
    return row


def zoo_rows(model) -> list[dict]:
    card = zoo.card("ldm-dit-mnist")
    metrics = card["metrics"]
    return [{
        "model": "ldm-dit-mnist (zoo card)",
        "params": card["parameters"],
        "budget": f"{card['train_seconds']:g} s (autoencoder + DiT)",
        "steps/s": "-",
        "metrics": "; ".join(judged(metrics, s) for s in (1.5, 2.0))
        + f"; reconstruction FID {metrics['fid_reconstructions']} (the same test digits, not reconstructed: "
        f"{metrics['fid_originals']})",
    }] + solver_rows(model)


def run() -> list[dict]:
    model = zoo.load("ldm-dit-mnist", device="cpu")
    rows = zoo_rows(model) if "zoo" in ROWS else []
    if "objectives" in ROWS:
        images, labels = mnist("train")
        latents = encode(model.autoencoder, images) * model.scale
        rows += [objective_row(model, latents, labels, name, arguments) for name, arguments in OBJECTIVES]
    if "equal" in ROWS:
        rows += [pixel_row("the zoo's recipe (min-SNR-5, batch 128)", {}, EQUAL_SECONDS), latent_recipe_row()]
    return rows
