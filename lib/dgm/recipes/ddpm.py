"""Recipe of the zoo's ``ddpm-mnist-cond``: a class-conditional DDPM of MNIST in [-1, 1], and guided
samples of its digits (DPM-Solver++(2M), :mod:`dgm.solvers`).

The schedule (:data:`dgm.diffusion.DDPM_T` steps, linear) and the null label
(:data:`dgm.diffusion.DDPM_NULL_LABEL`) are the course's conventions and live in
:mod:`dgm.diffusion`; this module holds the network's size, the training and the card.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dgm.data import mnist
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.diffusion import DDPM_NULL_LABEL, DDPM_T, Schedule, epsilon_loss, guided, linear_schedule
from dgm.metrics import evaluate_class_samples
from dgm.solvers import dpm_solver_sample
from dgm.train import FitResult, batches, fit
from dgm.unet import UNet

UNET_CONFIG = {"channels": (16, 32, 64), "num_classes": 10}
SAMPLING_STEPS = 20  # DPM-Solver++(2M) steps: as good as DDIM-50 (bench/bench_ddpm.py)
SNR_GAMMA = 5.0  # min-SNR-gamma loss weighting (bench/bench_ddpm.py compares it with DDPM's plain loss)
BATCH_SIZE = 128


def build() -> UNet:
    """The noise model of the zoo's ``ddpm-mnist-cond``: a class-conditional :class:`dgm.unet.UNet`
    for ``linear_schedule(DDPM_T)``, trained on MNIST scaled to [-1, 1]; label 10 is the null class."""
    return UNet(**UNET_CONFIG)


@torch.no_grad()
def sample_digits(
    model: nn.Module, labels: torch.Tensor, scale: float = 2.0, steps: int = SAMPLING_STEPS, seed: Seed = 0,
    schedule: Schedule | None = None, batch_size: int = 250, order: int = 2,
) -> torch.Tensor:
    """Guided samples of the given digit ``labels`` ``(N,)``: images ``(N, 1, 28, 28)`` in [0, 1] on the CPU.

    DPM-Solver++(2M) in ``steps`` steps; ``order=1`` is DDIM (``eta = 0``) over the same steps.
    """
    schedule = schedule if schedule is not None else linear_schedule(DDPM_T)
    device = module_device(model)
    schedule = schedule.to(device)
    generator = make_generator(seed)
    with evaluating(model):
        images = [
            dpm_solver_sample(
                guided(model, part.to(device), scale, DDPM_NULL_LABEL), schedule, (len(part), 1, 28, 28),
                steps=steps, order=order, generator=generator, device=device,
            ).cpu()
            for part in labels.split(batch_size)
        ]
    return (torch.cat(images) + 1) / 2


def evaluate(
    model: nn.Module, samples_per_class: int = 100, scales: Sequence[float] = (1.0, 1.25, 1.5, 1.75, 2.0, 3.0),
    seed: int = 0, steps: int = SAMPLING_STEPS, order: int = 2,
) -> dict:
    """The model card's numbers for a class-conditional DDPM of the zoo's kind.

    At each guidance scale, ``samples_per_class`` guided samples of every digit (:func:`sample_digits`
    with ``steps`` and ``order``): their class accuracy (evaluation classifier) and classifier-FID
    against as many random MNIST test digits, beside the FID's floor (train vs test digits) and
    ceiling (noise vs test) at that sample size. Returns ``{"evaluation": str, "metrics": dict,
    "seconds": list}`` (metrics keyed ``class_accuracy_scale_<s>``, ``fid_scale_<s>``,
    ``fid_floor_train_vs_test``, ``fid_ceiling_noise_vs_test``; seconds of sampling per scale).
    """
    metrics, seconds = evaluate_class_samples(
        lambda labels, scale: sample_digits(model, labels, scale, steps=steps, seed=seed, order=order),
        samples_per_class, scales, seed,
    )
    n = 10 * samples_per_class
    sampler = f"DPM-Solver++(2M)-{steps}" if order == 2 else f"DDIM-{steps}"
    evaluation = (
        f"{samples_per_class} guided {sampler} samples per digit at each guidance scale; FID (classifier features) "
        f"against {n} random test digits; sampling {n} images took {min(seconds):.0f}-{max(seconds):.0f} s "
        f"per scale (scale 1 needs no unconditional pass)"
    )
    return {"evaluation": evaluation, "metrics": metrics, "seconds": seconds}


def fit_ddpm(
    seconds: float, batch_size: int = BATCH_SIZE, lr: float = 2e-3, ema_decay: float = 0.999,
    p_uncond: float = 0.1, snr_gamma: float | None = SNR_GAMMA, seed: int = 0,
) -> FitResult:
    """Train :func:`build`'s network on MNIST for ``seconds``; the result's ``ema`` is the model to use.

    Epsilon loss (min-SNR-``snr_gamma`` weighted; ``None``: DDPM's plain loss) with labels dropped
    to the null class with probability ``p_uncond``; Adam, 200 warm-up steps, cosine decay,
    gradient clipping at 1, EMA of the weights.
    """
    torch.manual_seed(seed)
    images, labels = mnist("train")
    schedule = linear_schedule(DDPM_T)
    generator = make_generator(seed + 1)

    def loss_fn(model, batch):
        x, y = batch
        return epsilon_loss(
            model, schedule.to(x.device), x * 2 - 1, y, generator, p_uncond, DDPM_NULL_LABEL, snr_gamma=snr_gamma,
        )

    return fit(
        build(), loss_fn, batches(images, labels, batch_size=batch_size, seed=seed), seconds=seconds, lr=lr,
        warmup=200, ema_decay=ema_decay, grad_clip=1.0, progress=False,
    )


def train(seconds: float | None = None) -> tuple[UNet, dict]:
    """Train the zoo's class-conditional DDPM for ``seconds`` (default 1800) with :func:`fit_ddpm`'s
    defaults; return the EMA model and its card (the numbers from :func:`evaluate`)."""
    seconds = 1800.0 if seconds is None else seconds
    result = fit_ddpm(seconds)
    ema = result.ema
    return ema, {
        "data": "MNIST train (60,000) with labels, scaled to [-1, 1]",
        "architecture": f"UNet({UNET_CONFIG}), {sum(p.numel() for p in ema.parameters()):,} parameters; "
        f"linear schedule, T = {DDPM_T}; label {DDPM_NULL_LABEL} = null class",
        "recipe": f"epsilon loss with min-SNR-{SNR_GAMMA:g} weighting, p_uncond 0.1, Adam lr 0.002, 200 warm-up "
        f"steps, cosine decay, grad clip 1, batch {BATCH_SIZE}, EMA 0.999 (the EMA weights are shipped)",
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        **evaluate(ema),
    }
