"""dgm.solvers: DPM-Solver++(2M) against DDIM on cases whose answer is known in closed form."""

from __future__ import annotations

import pytest
import torch

from dgm.device import make_generator
from dgm.diffusion import ddim_sample, ddim_step, linear_schedule
from dgm.solvers import dpm_solver_sample, half_log_snr, solver_timesteps

F64 = torch.float64
MEAN, STD = 0.3, 0.2  # Gaussian data, every pixel N(MEAN, STD^2)


def gaussian_eps(schedule):
    """The exact noise model of Gaussian data: ``E[eps | x_t] = sigma (x_t - alpha MEAN) / (alpha^2 STD^2 + sigma^2)``."""

    def eps_fn(x_t, t):
        alpha = schedule.sqrt_alpha_bars.double()[t].view(-1, 1, 1, 1)
        sigma = schedule.sqrt_one_minus_alpha_bars.double()[t].view(-1, 1, 1, 1)
        return sigma * (x_t - alpha * MEAN) / (alpha**2 * STD**2 + sigma**2)

    return eps_fn


def start(n=512, seed=0):
    return torch.randn(n, 1, 4, 4, generator=make_generator(seed), dtype=F64)


def test_half_log_snr_is_log_alpha_over_sigma_and_decreasing():
    schedule = linear_schedule(1000)
    lambdas = half_log_snr(schedule)
    assert lambdas.shape == (1000,) and lambdas.dtype == F64 and (lambdas.diff() < 0).all()
    alpha_bar = schedule.alpha_bars[400].double()
    assert lambdas[400].item() == pytest.approx(0.5 * torch.log(alpha_bar / (1 - alpha_bar)).item(), rel=1e-5)


def test_solver_steps_run_from_the_noise_to_the_data_evenly_in_lambda():
    schedule = linear_schedule(1000)
    steps = solver_timesteps(schedule, 20)
    assert len(steps) == 20 and steps[0] == 999 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
    lambdas = half_log_snr(schedule)
    grid = torch.linspace(lambdas[-1].item(), lambdas[0].item(), 20, dtype=F64)
    spacing = (grid[1] - grid[0]).item()
    assert (lambdas[steps] - grid).abs().max().item() < 0.5 * spacing
    assert len(solver_timesteps(linear_schedule(100), 500)) == 100, "never more steps than the chain has"


def test_first_order_is_ddim_over_the_same_steps():
    schedule, x_T = linear_schedule(1000), start(64)
    eps_fn = gaussian_eps(schedule)
    steps = solver_timesteps(schedule, 12)
    x = x_T
    for t, t_prev in zip(steps, [*steps[1:], -1]):
        x, _ = ddim_step(schedule, x, t, t_prev, eps_fn(x, torch.full((len(x),), t)))
    solved = dpm_solver_sample(eps_fn, schedule, tuple(x_T.shape), steps=12, order=1, x_T=x_T)
    assert torch.allclose(solved, x, atol=1e-6)


def test_twenty_second_order_steps_follow_the_ode_closer_than_fifty_ddim_steps():
    schedule, x_T = linear_schedule(1000), start()
    eps_fn = gaussian_eps(schedule)
    shape = tuple(x_T.shape)
    reference = ddim_sample(eps_fn, schedule, shape, steps=1000, x_T=x_T, clip=False)  # the ODE, finely solved
    solver = dpm_solver_sample(eps_fn, schedule, shape, steps=20, x_T=x_T, clip=False)
    ddim = ddim_sample(eps_fn, schedule, shape, steps=50, x_T=x_T, clip=False)
    solver_error, ddim_error = ((out - reference).abs().mean().item() for out in (solver, ddim))
    assert solver_error < ddim_error / 3, (solver_error, ddim_error)
    # the ODE carries N(0, I) to the data distribution: the samples have its mean and spread
    assert solver.mean().item() == pytest.approx(MEAN, abs=0.02)
    assert solver.std().item() == pytest.approx(STD, abs=0.02)


@pytest.mark.parametrize("order", [1, 2])
def test_an_exact_one_point_model_gives_the_point_back(order):
    schedule = linear_schedule(100)
    x_star = torch.tensor([[[[0.9, -0.5], [0.0, -1.0]]]], dtype=F64)

    def eps_fn(x_t, t):
        alpha = schedule.sqrt_alpha_bars.double()[t].view(-1, 1, 1, 1)
        return (x_t - alpha * x_star) / schedule.sqrt_one_minus_alpha_bars.double()[t].view(-1, 1, 1, 1)

    out = dpm_solver_sample(eps_fn, schedule, (3, 1, 2, 2), steps=7, order=order, generator=4, x_T=None)
    assert torch.allclose(out.double(), x_star.expand(3, -1, -1, -1), atol=1e-5)


def test_clip_keeps_guided_overshoot_in_the_data_range_and_frames_end_with_the_sample():
    schedule = linear_schedule(100)

    def overshooting(x_t, t):  # x0_hat far outside [-1, 1]
        return -3.0 * torch.ones_like(x_t)

    out, frames = dpm_solver_sample(overshooting, schedule, (2, 1, 3, 3), steps=6, generator=1, frames=3)
    assert out.min() >= -1 and out.max() <= 1
    assert len(frames) == 3 and torch.equal(frames[-1], out)


def test_bad_arguments_get_clear_errors():
    schedule = linear_schedule(100)
    with pytest.raises(ValueError, match=r"order: expected 1 \(DDIM\) or 2 \(DPM-Solver\+\+\(2M\)\), got 3"):
        dpm_solver_sample(gaussian_eps(schedule), schedule, (1, 1, 2, 2), order=3)
    with pytest.raises(ValueError, match="steps"):
        solver_timesteps(schedule, 0)
