"""Flow matching (rectified flow): a straight path from data to noise, and the ODE that walks it back.

The lecture's notation. A data point ``x_0`` and a noise draw ``eps ~ N(0, I)`` are joined by the
straight line

    x_t = (1 - t) * x_0 + t * eps,        t in [0, 1],

so ``x_0`` is data at ``t = 0`` and pure noise at ``t = 1``. Along it the velocity is constant,
``d x_t / d t = eps - x_0``. A network ``v_theta(x_t, t, y)`` regresses that velocity
(:func:`flow_matching_loss`); what it learns is the average velocity of all lines through
``x_t``, ``E[eps - x_0 | x_t]``, whose ODE ``dx/dt = v(x, t)`` carries ``N(0, I)`` at ``t = 1`` to
the data at ``t = 0``. Sampling solves it backwards from noise: :func:`euler_sample` (one
velocity per step) or :func:`heun_sample` (two, second order).

DDIM is the same idea in other coordinates: its deterministic update is an Euler step of the
probability-flow ODE written in ``x / sqrt(alpha_bar)`` against ``sqrt(1 / alpha_bar - 1)``; flow
matching picks the straight path, whose ODE has less curvature to follow in few steps.

Times ``t`` for training are drawn uniform or logit-normal (:func:`sample_times`): the
logit-normal puts more of them in the middle, where the velocity is hardest to predict.
Guidance mixes a conditional and an unconditional velocity, ``v_u + s * (v_c - v_u)``: that
is :func:`dgm.diffusion.guided` unchanged (it mixes any two predictions of one network), so
``euler_sample(guided(model, labels, s, null_label), noise, steps)`` samples with guidance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dgm.checks import describe, positive_int
from dgm.device import Seed, make_generator

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, ...), t (B,)) -> v (B, ...)
TIME_SAMPLERS = ("uniform", "logit_normal")


def _times_like(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """``t`` as a ``(B, 1, ..., 1)`` tensor that broadcasts against ``x`` ``(B, ...)``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(len(x))
    if t.shape != (len(x),):
        raise ValueError(f"t: expected a number or a tensor of shape ({len(x)},), got {describe(t)}")
    return t.view(-1, *([1] * (x.ndim - 1)))


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The point ``x_t = (1 - t) * x0 + t * noise`` of the straight path; ``t`` a number or ``(B,)`` in [0, 1]."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise: expected the shape of x0 {tuple(x0.shape)}, got {describe(noise)}")
    t = _times_like(t, x0)
    return (1 - t) * x0 + t * noise


def sample_times(n: int, kind: str = "logit_normal", generator: Seed = None, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``n`` training times in (0, 1), float32 on the CPU: ``"uniform"``, or ``"logit_normal"``
    (``sigmoid(N(mean, std^2))``, denser in the middle; Esser et al., 2024)."""
    positive_int(n, "n")
    generator = make_generator(generator)
    if kind == "uniform":
        return torch.rand(n, generator=generator)
    if kind == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(n, generator=generator))
    raise ValueError(f"kind: expected one of {TIME_SAMPLERS}, got {kind!r}")


def flow_matching_loss(
    model: nn.Module, x0: torch.Tensor, labels: torch.Tensor | None = None, generator: Seed = None,
    p_uncond: float = 0.0, null_label: int | None = None, times: str = "logit_normal",
) -> torch.Tensor:
    """The flow-matching loss of a batch ``x0`` ``(B, ...)``: ``mean |v_theta(x_t, t, y) - (eps - x0)|^2``.

    ``t`` from :func:`sample_times` (``times``), ``eps ~ N(0, I)``, both from ``generator`` (on the
    CPU, then moved). With ``labels`` ``(B,)`` (or condition vectors ``(B, E)``, e.g. text
    embeddings), each is replaced by ``null_label`` (a vector full of it) with probability
    ``p_uncond`` (classifier-free guidance trains the unconditional model in the same network).
    ``model(x_t, t, y)`` gets ``t`` as floats in (0, 1). Returns a scalar.
    """
    generator = make_generator(generator)
    t = sample_times(len(x0), times, generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    if labels is not None and p_uncond > 0:
        if null_label is None:
            raise ValueError("null_label: needed when p_uncond > 0")
        drop = torch.rand(len(labels), generator=generator).to(labels.device) < p_uncond
        drop = drop.reshape(-1, *[1] * (labels.ndim - 1))  # condition vectors (B, E) are dropped whole
        labels = torch.where(drop, torch.full_like(labels, null_label), labels)
    prediction = model(interpolate(x0, noise, t), t, labels)
    return ((prediction - (noise - x0)) ** 2).mean()


def time_grid(steps: int) -> torch.Tensor:
    """``steps + 1`` times from 1 (noise) down to 0 (data), evenly spaced."""
    positive_int(steps, "steps")
    return torch.linspace(1.0, 0.0, steps + 1)


def euler_sample(velocity: VelocityFn, noise: torch.Tensor, steps: int, path: list | None = None) -> torch.Tensor:
    """Solve ``dx/dt = velocity(x, t)`` from ``x_1 = noise`` at ``t = 1`` to ``t = 0`` in ``steps`` Euler
    steps: ``x_{t'} = x_t + (t' - t) * v(x_t, t)``. Returns ``x_0`` (the shape of ``noise``); with
    ``path`` (a list), appends every state ``x_1, ..., x_0`` to it (for a figure or an animation)."""
    return _solve(velocity, noise, steps, path, heun=False)


def heun_sample(velocity: VelocityFn, noise: torch.Tensor, steps: int, path: list | None = None) -> torch.Tensor:
    """As :func:`euler_sample`, with Heun's second-order steps: the velocity at the Euler guess for
    ``t'`` is averaged with the one at ``t``, and the step is taken again with the average (two
    velocity calls per step; the velocity is finite at ``t = 0``, so the last step is Heun's too)."""
    return _solve(velocity, noise, steps, path, heun=True)


@torch.no_grad()
def _solve(velocity: VelocityFn, noise: torch.Tensor, steps: int, path: list | None, heun: bool) -> torch.Tensor:
    grid = time_grid(steps).to(noise.device)
    x = noise
    if path is not None:
        path.append(x.cpu())
    for t, t_next in zip(grid[:-1], grid[1:]):
        v = velocity(x, t.expand(len(x)))
        guess = x + (t_next - t) * v
        if heun:
            v = (v + velocity(guess, t_next.expand(len(x)))) / 2
            guess = x + (t_next - t) * v
        x = guess
        if path is not None:
            path.append(x.cpu())
    return x
