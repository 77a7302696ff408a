"""Class-conditional DDPM on MNIST: the shipped model's guided samples, time to 95% class accuracy
from scratch for the course's recipe and a CS180-style one in the same run, and sampling speed.

Budget: ``BENCH_DDPM_SECONDS`` (default 1800 s) of training for each recipe, plus evaluations
(every ``BENCH_DDPM_EVAL_EVERY`` steps, 20 guided samples per digit at scale 2, DDIM-50; their time is
not counted) and a few minutes for the shipped model. Needs the real MNIST (``DGM_DATA``).
"""

from __future__ import annotations

import os
import time

import torch

from dgm import zoo
from dgm.data import mnist
from dgm.device import make_generator
from dgm.diffusion import DDPM_NULL_LABEL, epsilon_loss, linear_schedule
from dgm.recipes.ddpm import build as build_ddpm, evaluate as evaluate_ddpm, sample_digits
from dgm.metrics import class_accuracy
from dgm.train import LearningCurve, batches, fit
from dgm.unet import UNet

SECONDS = float(os.environ.get("BENCH_DDPM_SECONDS", 1800))
EVAL_EVERY = int(os.environ.get("BENCH_DDPM_EVAL_EVERY", 500))
PER_CLASS = 20

# (name, build, T, lr): the course's recipe, and a CS180-style one (U-Net width D = 64, T = 300 with
# DDPM's beta range kept, Adam 1e-3, no EMA), both at batch 128 with 10% of the labels dropped.
RECIPES = [
    ("course: UNet(16, 32, 64), T = 1000, lr 2e-3, EMA", build_ddpm, 1000, 2e-3, 0.999),
    ("CS180-style: UNet(64, 128, 128), T = 300, lr 1e-3", lambda: UNet((64, 128, 128), num_classes=10), 300, 1e-3, None),
]


def time_to_accuracy(name, build, T, lr, ema_decay, images, labels) -> dict:
    """Train one recipe for SECONDS; every EVAL_EVERY steps measure the class error of guided samples."""
    torch.manual_seed(0)
    model = build()
    schedule = linear_schedule(T, rescale=False)
    generator = make_generator(1)
    wanted = torch.arange(10).repeat_interleave(PER_CLASS)

    def loss_fn(model, batch):
        x, y = batch
        return epsilon_loss(model, schedule.to(x.device), x * 2 - 1, y, generator, 0.1, DDPM_NULL_LABEL)

    def class_error(current):
        return 1.0 - class_accuracy(sample_digits(current, wanted, 2.0, schedule=schedule), wanted)

    curve = LearningCurve(class_error, "class error of guided samples")
    result = fit(
        model, loss_fn, batches(images, labels, batch_size=128, seed=0), seconds=SECONDS, lr=lr, warmup=200,
        ema_decay=ema_decay, grad_clip=1.0, callback=curve, callback_every=EVAL_EVERY, progress=False,
    )
    reached = curve.first_time_below(0.05)
    return {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"{SECONDS:g} s",
        "steps/s": f"{result.steps / result.seconds:.2f}",
        "metrics": (
            f"95% class accuracy (scale 2) after {reached} s; last: {1 - curve.points[-1][2]:.0%} at {curve.points[-1][0]} s"
            if curve.points else "no evaluation within the budget"
        ),
    }


def shipped_row() -> dict:
    model = zoo.load("ddpm-mnist-cond")
    start = time.perf_counter()
    sample_digits(model, torch.arange(10).repeat(10), 2.0)
    sampling = time.perf_counter() - start
    metrics = evaluate_ddpm(model, samples_per_class=100)["metrics"]
    scales = sorted({float(key.rsplit("_", 1)[1]) for key in metrics if key.startswith("fid_scale_")})
    return {
        "model": "ddpm-mnist-cond, shipped (zoo)",
        "params": sum(p.numel() for p in model.parameters()),
        "budget": "-",
        "steps/s": "-",
        "metrics": "guidance scale: class accuracy / FID (n=1000) "
        + ", ".join(f"{s:g}: {metrics[f'class_accuracy_scale_{s:g}']:.1%} / {metrics[f'fid_scale_{s:g}']:.1f}" for s in scales)
        + f"; FID floor {metrics['fid_floor_train_vs_test']:.1f}, ceiling {metrics['fid_ceiling_noise_vs_test']:.0f}; "
        f"100 guided (scale 2) DDIM-50 samples in {sampling:.1f} s",
    }


def run() -> list[dict]:
    images, labels = mnist("train", download=False)
    shipped = [shipped_row()] if "ddpm-mnist-cond" in zoo.MODELS else []  # (until the zoo ships it)
    return shipped + [time_to_accuracy(*recipe, images, labels) for recipe in RECIPES]
