"""Few-step sampling: DPM-Solver++(2M), a second-order solver of the probability-flow ODE.

DDIM with ``eta = 0`` is deterministic: it follows an ordinary differential equation (ODE) whose
solution carries noise ``x_T`` to an image, and whose marginals are those of the diffusion. Write
``alpha_t = sqrt(alpha_bar_t)``, ``sigma_t = sqrt(1 - alpha_bar_t)`` and the half log
signal-to-noise ratio ``lambda_t = log(alpha_t / sigma_t)``, which grows as ``t`` falls to the data.
In ``lambda`` the ODE has an exact linear part, and only the network's data estimate ``x0_hat``
(:func:`dgm.diffusion.predict_x0`) must be approximated (Lu et al. 2022, DPM-Solver++):

    x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) D,        h = lambda_s - lambda_t > 0,

for a step from ``t`` to the earlier ``s``, with ``D`` the value of ``x0_hat`` over the step.

- **First order**, ``D = x0_hat(x_t)``: exactly the DDIM step (``eta = 0``), since
  ``alpha_s (1 - e^{-h}) = alpha_s - alpha_t sigma_s / sigma_t``.
- **Second order, multistep (2M)**: a straight line through the last two estimates, with no extra
  network call. With ``r = h_prev / h`` (the previous step's length over this one's),
  ``D = (1 + 1 / (2 r)) x0_hat_t - 1 / (2 r) x0_hat_prev``. Its error per step falls as ``h^3``
  rather than ``h^2``, so 15 to 20 steps do what DDIM needs 50 or more for.

**Where to step.** The steps are evenly spaced in ``lambda``, not in ``t``
(:func:`solver_timesteps`): then every ``h`` is the same, ``r = 1``, and no step extrapolates far.
With the linear schedule ``lambda`` changes fastest near the data, so a grid even in ``t`` ends
with one long step in ``lambda`` after short ones, and the line through the last two estimates
overshoots (on Gaussian data with the exact noise, 20 such steps erred ten times more than 20 even in
``lambda``).

The first step has no previous estimate and is first order; the last step returns ``x0_hat``
itself, as DDIM's does. Clamping ``x0_hat`` to [-1, 1] (``clip``) keeps guided sampling, whose
estimates can overshoot, inside the data range.

Shapes and conventions are those of :mod:`dgm.diffusion`: images ``(B, C, H, W)`` in [-1, 1],
0-based steps, ``eps_fn(x_t, t) -> eps`` (e.g. from :func:`dgm.diffusion.guided`).
"""

from __future__ import annotations

import math

import torch

from dgm.device import Seed, get_device
from dgm.checks import positive_int
from dgm.diffusion import EpsFn, Schedule, predict_x0, run_chain

__all__ = ["half_log_snr", "solver_timesteps", "dpm_solver_sample"]


def half_log_snr(schedule: Schedule) -> torch.Tensor:
    """``lambda_t = log(sqrt(alpha_bar_t) / sqrt(1 - alpha_bar_t))`` for every step: ``(T,)`` float64, decreasing."""
    return torch.log(schedule.sqrt_alpha_bars.double()) - torch.log(schedule.sqrt_one_minus_alpha_bars.double())


def solver_timesteps(schedule: Schedule, steps: int) -> list[int]:
    """``steps`` steps of ``schedule``, descending from ``T - 1`` to 0, evenly spaced in ``lambda``.

    Each is the step whose ``lambda`` is nearest to its point of an even grid from ``lambda_{T-1}``
    to ``lambda_0``; where two points fall on one step it is kept once (only for ``steps`` near ``T``).
    """
    steps = positive_int(steps, "steps")
    lambdas = half_log_snr(schedule)
    grid = torch.linspace(lambdas[-1].item(), lambdas[0].item(), steps, dtype=torch.float64)
    nearest = (lambdas[None, :] - grid[:, None]).abs().argmin(dim=1).tolist()
    return list(dict.fromkeys(nearest))


@torch.no_grad()
def dpm_solver_sample(
    eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, int, int, int], steps: int = 20, order: int = 2,
    generator: Seed = None, x_T: torch.Tensor | None = None, clip: bool = True, frames: int = 0,
    device: str | torch.device | None = None,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """DPM-Solver++ over the ``steps`` steps of :func:`solver_timesteps` (even in ``lambda``).

    ``order`` 2 is DPM-Solver++(2M); ``order`` 1 is DDIM with ``eta = 0`` over the same steps (the
    same images as :func:`dgm.diffusion.ddim_step` would give, up to rounding). Deterministic given ``x_T`` (default: drawn on the CPU from ``generator``). Arguments,
    devices, the returned images ``shape`` in [-1, 1] and ``frames`` (snapshots of ``x0_hat``) as for
    :func:`dgm.diffusion.ddim_sample`.
    """
    if order not in (1, 2):
        raise ValueError(f"order: expected 1 (DDIM) or 2 (DPM-Solver++(2M)), got {order!r}")
    timesteps = solver_timesteps(schedule, steps)
    device = x_T.device if torch.is_tensor(x_T) else get_device(device)
    schedule = schedule.to(device)
    lambdas = half_log_snr(schedule).tolist()
    previous: dict[str, object] = {}  # the last step's x0_hat and h

    def step(x, t, t_prev, eps, noise):
        x0 = predict_x0(schedule, x, torch.full((len(x),), t, device=x.device), eps)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if t_prev < 0:
            return x0, x0
        h = lambdas[t_prev] - lambdas[t]
        estimate = x0
        if order == 2 and previous:
            r = previous["h"] / h
            estimate = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous["x0"]
        previous.update(x0=x0, h=h)
        sigma_ratio = schedule.sqrt_one_minus_alpha_bars[t_prev].item() / schedule.sqrt_one_minus_alpha_bars[t].item()
        alpha_prev = schedule.sqrt_alpha_bars[t_prev].item()
        return sigma_ratio * x - alpha_prev * math.expm1(-h) * estimate, x0

    return run_chain(eps_fn, timesteps, step, False, shape, generator, x_T, device, frames)
