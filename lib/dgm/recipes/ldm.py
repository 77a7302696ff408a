"""Recipe of the zoo's ``ldm-dit-mnist``: latent diffusion of MNIST digits with a small DiT trained
by flow matching, and guided samples of its digits.

Two stages, trained one after the other within one budget: the autoencoder
(:class:`dgm.latent.LatentAutoencoder`, 28x28 -> 4x7x7) for :data:`AUTOENCODER_SHARE` of it,
then the DiT (:class:`dgm.dit.DiT`, 49 tokens) on the scaled latents of the whole training set,
encoded once. :func:`fit_denoiser` also trains the same DiT with the epsilon objective of
:mod:`dgm.diffusion` in the same latent space, for the bench's comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dgm.data import mnist
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.diffusion import DDPM_T, epsilon_loss, guided, linear_schedule
from dgm.dit import DiT
from dgm.flow import euler_sample, flow_matching_loss, heun_sample
from dgm.latent import LatentAutoencoder, LatentGenerator, autoencoder_loss, latent_scale
from dgm.metrics import evaluate_class_samples, fid
from dgm.solvers import dpm_solver_sample
from dgm.train import FitResult, batches, fit

AUTOENCODER_CONFIG = {"latent_channels": 4, "width": 32}
DIT_CONFIG = {"channels": 4, "size": 7, "patch": 1, "dim": 64, "depth": 6, "heads": 4, "num_classes": 10}
NULL_LABEL = 10  # DIT_CONFIG's num_classes: the null class of classifier-free guidance
# The zoo model is sampled by Heun in 10 steps: 20 velocity calls like Euler-20, at a lower FID
# (bench/bench_latent.py).
SOLVER, SAMPLING_STEPS = "heun", 10
AUTOENCODER_SHARE = 1 / 3
P_UNCOND = 0.1
OBJECTIVES = ("flow", "epsilon")


def build() -> LatentGenerator:
    """The zoo's ``ldm-dit-mnist``: autoencoder + flow-matching DiT (velocity of the scaled latents)."""
    return LatentGenerator(LatentAutoencoder(**AUTOENCODER_CONFIG), DiT(**DIT_CONFIG))


def fit_autoencoder(
    seconds: float, batch_size: int = 128, lr: float = 2e-3, kl_weight: float = 1e-3, seed: int = 0,
) -> tuple[LatentAutoencoder, FitResult]:
    """Train a :class:`LatentAutoencoder` on MNIST train for ``seconds`` (Adam, 100 warm-up steps,
    cosine decay, grad clip 1); return it (in eval mode) and the fit's record."""
    torch.manual_seed(seed)
    images, _ = mnist("train")
    generator = make_generator(seed + 1)
    model = LatentAutoencoder(**AUTOENCODER_CONFIG)
    result = fit(
        model, lambda model, batch: autoencoder_loss(model, batch[0], kl_weight, generator),
        batches(images, batch_size=batch_size, seed=seed), seconds=seconds, lr=lr, warmup=100, grad_clip=1.0,
        progress=False,
    )
    return model.eval(), result


@torch.no_grad()
def encode(autoencoder: LatentAutoencoder, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The encoder's means ``(N, 4, 7, 7)`` of ``images`` ``(N, 1, 28, 28)`` in [0, 1], on the CPU."""
    device = module_device(autoencoder)
    with evaluating(autoencoder):
        return torch.cat([autoencoder.encode(part.to(device))[0].cpu() for part in images.split(batch_size)])


def fit_denoiser(
    latents: torch.Tensor, labels: torch.Tensor, seconds: float, objective: str = "flow", times: str = "logit_normal",
    batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
) -> FitResult:
    """Train a :class:`DiT` on scaled ``latents`` ``(N, 4, 7, 7)`` with their digit ``labels`` for ``seconds``.

    ``objective="flow"``: :func:`dgm.flow.flow_matching_loss` with ``times`` sampled uniform or
    logit-normal; ``"epsilon"``: :func:`dgm.diffusion.epsilon_loss` on ``linear_schedule(DDPM_T)``
    (the DiT then embeds integer steps). Labels dropped to the null class with probability
    :data:`P_UNCOND`; Adam, 200 warm-up steps, cosine decay, grad clip 1, EMA 0.999.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    torch.manual_seed(seed)
    generator = make_generator(seed + 1)
    schedule = linear_schedule(DDPM_T)
    model = DiT(**DIT_CONFIG, time_scale=1000.0 if objective == "flow" else 1.0)

    def loss_fn(model, batch):
        z, y = batch
        if objective == "flow":
            return flow_matching_loss(model, z, y, generator, P_UNCOND, NULL_LABEL, times)
        return epsilon_loss(model, schedule.to(z.device), z, y, generator, P_UNCOND, NULL_LABEL)

    return fit(
        model, loss_fn, batches(latents, labels, batch_size=batch_size, seed=seed), seconds=seconds, lr=lr,
        warmup=200, ema_decay=0.999, grad_clip=1.0, progress=False,
    )


@torch.no_grad()
def sample_latents(
    denoiser: torch.nn.Module, labels: torch.Tensor, scale: float = 1.5, steps: int = SAMPLING_STEPS, seed: Seed = 0,
    objective: str = "flow", solver: str = SOLVER, batch_size: int = 500, null_label: int = NULL_LABEL,
) -> torch.Tensor:
    """Guided scaled latents ``(N, 4, 7, 7)`` of the digit ``labels`` ``(N,)`` (or of the prompts whose
    text embeddings are ``labels`` ``(N, E)``, with ``null_label=0``), on the CPU.

    Flow: ``solver`` ``"euler"`` or ``"heun"`` over ``steps`` steps of the ODE from t = 1 to 0;
    epsilon: DPM-Solver++(2M) over ``steps`` steps.
    """
    device = module_device(denoiser)
    generator = make_generator(seed)
    shape = (DIT_CONFIG["channels"], DIT_CONFIG["size"], DIT_CONFIG["size"])
    parts = []
    with evaluating(denoiser):
        for part in labels.split(batch_size):
            velocity = guided(denoiser, part.to(device), scale, null_label)
            if objective == "epsilon":
                z = dpm_solver_sample(velocity, linear_schedule(DDPM_T).to(device), (len(part), *shape), steps=steps,
                                      generator=generator, device=device, clip=False)  # latents are not in [-1, 1]
            else:
                noise = torch.randn((len(part), *shape), generator=generator).to(device)
                z = (heun_sample if solver == "heun" else euler_sample)(velocity, noise, steps)
            parts.append(z.cpu())
    return torch.cat(parts)


def sample_digits(model: LatentGenerator, labels: torch.Tensor, scale: float = 1.5, steps: int = SAMPLING_STEPS,
                  seed: Seed = 0, solver: str = SOLVER) -> torch.Tensor:
    """Guided samples ``(N, 1, 28, 28)`` in [0, 1] of the digit ``labels`` from the zoo model (flow)."""
    z = sample_latents(model.denoiser, labels, scale, steps, seed, "flow", solver)
    with evaluating(model):
        return model.to_images(z.to(module_device(model))).cpu()


def evaluate(
    model: LatentGenerator, samples_per_class: int = 100, scales: Sequence[float] = (1.0, 1.5, 2.0, 3.0),
    seed: int = 0, steps: int = SAMPLING_STEPS, solver: str = SOLVER,
) -> dict:
    """The card's numbers (see :func:`dgm.metrics.evaluate_class_samples`) for guided samples of
    ``steps`` ``solver`` steps, plus the autoencoder's reconstruction FID (test digits through
    the autoencoder against other test digits: the best a latent model can reach) beside the FID
    of the same test digits not reconstructed (the yardstick: at 1,000 images FID itself varies
    by several points from one draw of digits to another)."""
    metrics, seconds = evaluate_class_samples(
        lambda labels, scale: sample_digits(model, labels, scale, steps, seed, solver), samples_per_class, scales, seed,
    )
    test, _ = mnist("test")
    n = 10 * samples_per_class
    order = torch.randperm(len(test), generator=make_generator(seed + 7))
    originals, others = test[order[:n]], test[order[n:2 * n]]
    with evaluating(model):
        device = module_device(model)
        reconstructed = model.to_images(model.to_latents(originals.to(device))).cpu()
    metrics["fid_reconstructions"] = round(fid(reconstructed, others), 2)
    metrics["fid_originals"] = round(fid(originals, others), 2)
    return {
        "evaluation": f"{samples_per_class} guided samples per digit ({solver}, {steps} steps) at each guidance scale; "
        f"FID (classifier features) against {n} random test digits; sampling {n} images took "
        f"{min(seconds):.1f}-{max(seconds):.1f} s per scale",
        "metrics": metrics,
        "seconds": seconds,
    }


def train(seconds: float | None = None) -> tuple[LatentGenerator, dict]:
    """Train the zoo's ``ldm-dit-mnist`` in ``seconds`` (default 900): the autoencoder for a third,
    then the flow-matching DiT on the encoded, scaled training set; return the model and its card."""
    seconds = 900.0 if seconds is None else seconds
    autoencoder, _ = fit_autoencoder(seconds * AUTOENCODER_SHARE)
    images, labels = mnist("train")
    means = encode(autoencoder, images)
    scale = latent_scale(means)
    denoiser = fit_denoiser(means * scale, labels, seconds * (1 - AUTOENCODER_SHARE))
    model = LatentGenerator(autoencoder.cpu(), denoiser.ema.cpu(), scale)
    return model, {
        "data": "MNIST train (60,000) with labels, in [0, 1]; latents 4x7x7, scaled to unit variance",
        "architecture": f"LatentAutoencoder({AUTOENCODER_CONFIG}) + DiT({DIT_CONFIG}), patch 1 = 49 tokens, "
        f"adaLN-Zero; label {NULL_LABEL} = null class; latent scale {scale:.4f}",
        "recipe": f"autoencoder: BCE + 0.001 KL, Adam 0.002, batch 128, {seconds * AUTOENCODER_SHARE:.0f} s; "
        f"DiT: flow matching (logit-normal t), p_uncond {P_UNCOND}, Adam 0.001, 200 warm-up steps, cosine decay, "
        f"grad clip 1, batch 128, EMA 0.999 (shipped), {seconds * (1 - AUTOENCODER_SHARE):.0f} s",
        "steps": denoiser.steps,
        "train_seconds": round(seconds, 1),
        **evaluate(model),
    }
