"""dgm.diffusion: schedules, the forward process and its posterior, the loss, guidance, DDPM and DDIM sampling."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from dgm.device import make_generator
from dgm.diffusion import (
    Schedule,
    add_noise,
    cosine_schedule,
    ddim_sample,
    ddim_sigma,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    eps_from_x0,
    epsilon_loss,
    guided,
    linear_schedule,
    posterior,
    predict_x0,
    q_sample,
)

F64 = torch.float64


def at(values: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """``values[t]`` in float64, shaped ``(B, 1, 1, 1)`` for a batch of steps (or a 0-d scalar for an int)."""
    picked = values.double()[t]
    return picked.view(-1, 1, 1, 1) if torch.is_tensor(t) else picked


def alpha_bar64(schedule: Schedule, t: int) -> float:
    """``alpha_bar`` after step ``t`` from the betas, in float64 (1 at ``t = -1``)."""
    return torch.prod(1 - schedule.betas.double()[: t + 1]).item()


def oracle(schedule: Schedule, x_star: torch.Tensor):
    """The exact noise model of the one-point data set ``{x_star}`` (``(1, C, H, W)``): the noise
    that takes ``x_star`` to ``x_t``, so ``predict_x0`` gives ``x_star`` back at every step."""

    def eps_fn(x_t, t):
        return (x_t - at(schedule.sqrt_alpha_bars, t) * x_star) / at(schedule.sqrt_one_minus_alpha_bars, t)

    return eps_fn


def recording(eps_fn, calls: list):
    """``eps_fn`` that also records every ``(x_t, t)`` it is called with."""

    def wrapped(x_t, t):
        calls.append((x_t.clone(), t.clone()))
        return eps_fn(x_t, t)

    return wrapped


def wiggly(x_t, t):
    """A fixed, nonlinear stand-in for a trained network (large enough that x0_hat leaves [-1, 1])."""
    return 0.5 * x_t + 0.3 * torch.sin(3 * x_t) + 0.01 * t.view(-1, 1, 1, 1)


def point_outside_the_box() -> torch.Tensor:
    """A data point ``(1, 1, 2, 3)`` partly outside [-1, 1] (so the clamp changes x0_hat)."""
    return torch.tensor([[[[1.5, -0.3, 0.9], [-2.0, 0.0, 1.2]]]], dtype=F64)


# --------------------------------------------------------------------------- schedules


def test_linear_schedule_ends_near_pure_noise():
    schedule = linear_schedule(1000)
    # prod_{t=1}^{1000} (1 - beta_t), betas linspace(1e-4, 0.02, 1000): 4.0358e-05 (float64: 4.03583e-05)
    assert 3.5e-5 < schedule.alpha_bars[-1].item() < 4.5e-5
    assert schedule.alpha_bars[-1].item() == pytest.approx(4.03583e-5, rel=1e-4)
    assert schedule.T == 1000 and schedule.final_signal == pytest.approx(math.sqrt(4.03583e-5), rel=1e-4)
    assert schedule.betas[0].item() == pytest.approx(1e-4) and schedule.betas[-1].item() == pytest.approx(0.02)


def test_rescaling_keeps_a_short_chain_noisy():
    rescaled, unscaled = linear_schedule(100), linear_schedule(100, rescale=False)
    assert torch.allclose(rescaled.betas, 10 * unscaled.betas)
    # rescaled: betas linspace(1e-3, 0.2, 100) leave alpha_bar_T = 2.0390e-05, as little as T = 1000 does
    assert rescaled.alpha_bars[-1].item() == pytest.approx(2.0390e-5, rel=1e-4) and rescaled.alpha_bars[-1] < 1e-3
    # unscaled: betas linspace(1e-4, 0.02, 100) leave alpha_bar_T = 0.363563, i.e. 60% of x_0's amplitude
    assert unscaled.alpha_bars[-1].item() == pytest.approx(0.363563, rel=1e-5)
    assert unscaled.final_signal == pytest.approx(0.60296, rel=1e-4)


def test_rescaling_refuses_a_chain_so_short_that_beta_reaches_1():
    assert linear_schedule(21).betas[-1].item() == pytest.approx(0.02 * 1000 / 21)  # 0.952: still a variance
    with pytest.raises(ValueError, match=r"rescaling by 1000 / T = 50.*got 0.005 and 1"):
        linear_schedule(20)  # beta_end 0.02 * 50 = 1: the step would keep no signal
    with pytest.raises(ValueError, match="larger T or rescale=False"):
        linear_schedule(10)  # beta_end 2 is no variance at all
    assert linear_schedule(10, rescale=False).T == 10


def test_cosine_schedule_decreases_follows_its_formula_and_clips():
    schedule = cosine_schedule(1000)
    alpha_bars, betas = schedule.alpha_bars, schedule.betas
    assert (alpha_bars[1:] < alpha_bars[:-1]).all(), "alpha_bar strictly decreases"
    assert (betas <= 0.999).all() and betas.max().item() == pytest.approx(0.999), "the last betas are clipped"
    assert 1 - 1e-4 < alpha_bars[0].item() < 1
    # where nothing is clipped, alpha_bar after step t is f(t + 1) / f(0) (0-based t)
    f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 10, 500, 900):
        assert alpha_bars[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-5)


@pytest.mark.parametrize("make", [linear_schedule, cosine_schedule], ids=["linear", "cosine"])
def test_posterior_variance_lies_between_zero_and_beta(make):
    schedule = make()
    variance, betas = schedule.posterior_variance, schedule.betas
    assert variance[0].item() == 0.0, "beta_tilde at the first step is 0: the data has no predecessor"
    assert (variance[1:] > 0).all() and (variance[1:] <= betas[1:]).all()
    assert schedule.posterior_mean_x0[0].item() == 1.0 and schedule.posterior_mean_xt[0].item() == 0.0


def test_schedule_is_a_module_of_float32_buffers():
    schedule = Schedule([0.1, 0.2, 0.5])
    state = schedule.state_dict()
    assert {"betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variance"} <= set(state)
    assert all(value.dtype == torch.float32 and value.shape == (3,) for value in state.values())
    assert torch.allclose(schedule.alpha_bars, torch.tensor([0.9, 0.72, 0.36]))
    assert torch.allclose(schedule.alpha_bars_prev, torch.tensor([1.0, 0.9, 0.72]))
    assert torch.allclose(schedule.posterior_variance, torch.tensor([0.0, 0.1 / 0.28 * 0.2, 0.28 / 0.64 * 0.5]))


# --------------------------------------------------------------------------- the forward process


def test_q_sample_has_the_closed_form_mean_and_variance():
    schedule, n = linear_schedule(1000), 100_000
    x0 = torch.full((n, 1, 1, 1), 0.7, dtype=F64)
    t = torch.full((n,), 300)
    x_t, noise = add_noise(schedule, x0, t, generator=0)
    assert torch.equal(x_t, q_sample(schedule, x0, t, noise))
    assert torch.equal(noise, add_noise(schedule, x0, t, make_generator(0))[1]), "a seed repeats exactly"
    alpha_bar = alpha_bar64(schedule, 300)
    mean, variance = math.sqrt(alpha_bar) * 0.7, 1 - alpha_bar
    # mean within 4 standard errors; the variance's standard error is ~ variance * sqrt(2 / n) = 0.45%
    assert abs(x_t.mean().item() - mean) < 4 * math.sqrt(variance / n)
    assert x_t.var().item() == pytest.approx(variance, rel=4 * math.sqrt(2 / n))


def test_closed_form_matches_iterating_the_one_step_chain():
    schedule, n, steps = linear_schedule(100), 100_000, 50
    x0 = torch.full((n, 1, 1, 1), 0.5, dtype=F64)
    g = make_generator(1)
    x = x0.clone()
    for t in range(steps):  # x after step t = sqrt(alpha_t) x before + sqrt(beta_t) z
        z = torch.randn(x.shape, generator=g, dtype=F64)
        x = at(schedule.alphas, t).sqrt() * x + at(schedule.betas, t).sqrt() * z
    closed, _ = add_noise(schedule, x0, torch.full((n,), steps - 1), generator=2)
    # two independent samples of the same Gaussian: means within 4 SE of the difference, variances within 2.5%
    variance = 1 - alpha_bar64(schedule, steps - 1)
    assert abs(x.mean() - closed.mean()).item() < 4 * math.sqrt(2 * variance / n)
    assert x.var().item() == pytest.approx(closed.var().item(), rel=0.025)
    assert closed.mean().item() == pytest.approx(0.5 * math.sqrt(alpha_bar64(schedule, steps - 1)), abs=0.01)


def test_predict_x0_and_eps_from_x0_are_inverses():
    schedule, g = linear_schedule(1000), make_generator(3)
    x0 = torch.rand(5, 2, 3, 3, generator=g, dtype=F64) * 2 - 1
    eps = torch.randn(5, 2, 3, 3, generator=g, dtype=F64)
    t = torch.tensor([0, 1, 250, 998, 999])
    x_t = q_sample(schedule, x0, t, eps)
    assert torch.allclose(predict_x0(schedule, x_t, t, eps), x0, atol=1e-9)
    assert torch.allclose(eps_from_x0(schedule, x_t, t, x0), eps, atol=1e-9)
    other = torch.randn(5, 2, 3, 3, generator=g, dtype=F64)
    assert torch.allclose(eps_from_x0(schedule, x_t, t, predict_x0(schedule, x_t, t, other)), other, atol=1e-9)


def test_posterior_is_bayes_rule_for_the_two_gaussians():
    schedule, g = linear_schedule(1000), make_generator(4)
    x0 = torch.rand(4, 1, 2, 2, generator=g, dtype=F64) * 2 - 1
    x_t = torch.randn(4, 1, 2, 2, generator=g, dtype=F64)
    t = torch.tensor([1, 10, 500, 999])
    mean, variance = posterior(schedule, x0, x_t, t)
    assert mean.shape == x0.shape and variance.shape == (4, 1, 1, 1)
    # By hand, in float64: prior q(x_{t-1} | x_0) = N(sqrt(ab_prev) x0, 1 - ab_prev) times the likelihood
    # q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t): precisions add, means weight by precision.
    for i, step in enumerate(t.tolist()):
        beta = schedule.betas.double()[step].item()
        prior_mean, prior_var = math.sqrt(alpha_bar64(schedule, step - 1)) * x0[i], 1 - alpha_bar64(schedule, step - 1)
        var = 1 / (1 / prior_var + (1 - beta) / beta)
        expected = var * (prior_mean / prior_var + math.sqrt(1 - beta) * x_t[i] / beta)
        assert variance[i].item() == pytest.approx(var, rel=1e-5)
        assert torch.allclose(mean[i], expected, rtol=1e-5, atol=1e-6)
    first_mean, first_variance = posterior(schedule, x0, x_t, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(first_mean, x0) and torch.equal(first_variance, torch.zeros(4, 1, 1, 1, dtype=F64))


# --------------------------------------------------------------------------- DDIM's pieces


def test_ddim_timesteps_are_evenly_spaced_and_descending():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    assert ddim_timesteps(10, 1) == [9]
    for steps in range(2, 31):
        timesteps = ddim_timesteps(30, steps)
        assert len(timesteps) == steps and timesteps[0] == 29 and timesteps[-1] == 0
        assert all(a > b for a, b in zip(timesteps, timesteps[1:]))


def test_ddim_sigma_with_eta_one_is_the_ddpm_posterior_variance():
    schedule = linear_schedule(100)
    for t in (1, 10, 50, 99):
        beta_tilde = schedule.posterior_variance[t].item()
        assert ddim_sigma(schedule, t, t - 1, 1.0) ** 2 == pytest.approx(beta_tilde, rel=1e-4)
        assert ddim_sigma(schedule, t, t - 1, 0.5) == pytest.approx(0.5 * ddim_sigma(schedule, t, t - 1, 1.0))
        assert ddim_sigma(schedule, t, t - 1, 0.0) == 0.0
    assert ddim_sigma(schedule, 0, -1, 1.0) == 0.0, "no noise on the step to the data"
    # a skipping step, by hand in float64
    ab, ab_prev = alpha_bar64(schedule, 80), alpha_bar64(schedule, 40)
    expected = 0.7 * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    assert ddim_sigma(schedule, 80, 40, 0.7) == pytest.approx(expected, rel=1e-5)


def test_ddim_step_matches_a_hand_written_update_with_the_clamp():
    # x0_hat = x* partly outside [-1, 1]; after the clamp the noise must be recomputed from the clamped x0_hat.
    schedule, g = linear_schedule(100), make_generator(5)
    x_star, t, t_prev, eta = point_outside_the_box(), 60, 30, 0.5
    x_t = torch.randn(x_star.shape, generator=g, dtype=F64)
    z = torch.randn(x_star.shape, generator=g, dtype=F64)
    eps = oracle(schedule, x_star)(x_t, torch.tensor([t]))
    x_prev, x0_hat = ddim_step(schedule, x_t, t, t_prev, eps, eta=eta, noise=z)
    ab, ab_prev = alpha_bar64(schedule, t), alpha_bar64(schedule, t_prev)
    clamped = x_star.clamp(-1, 1)
    eps_clamped = (x_t - math.sqrt(ab) * clamped) / math.sqrt(1 - ab)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    expected = math.sqrt(ab_prev) * clamped + math.sqrt(1 - ab_prev - sigma**2) * eps_clamped + sigma * z
    assert torch.allclose(x0_hat, clamped, atol=1e-9)
    assert torch.allclose(x_prev, expected, atol=1e-5)
    # without the clamp the same step keeps x* and its own noise
    unclamped, _ = ddim_step(schedule, x_t, t, t_prev, eps, eta=eta, noise=z, clip=False)
    expected = math.sqrt(ab_prev) * x_star + math.sqrt(1 - ab_prev - sigma**2) * eps + sigma * z
    assert torch.allclose(unclamped, expected, atol=1e-5)


def test_ddpm_step_takes_the_posterior_mean_of_the_clamped_prediction():
    schedule, g = linear_schedule(100), make_generator(6)
    x_star, t = point_outside_the_box(), 40
    x_t = torch.randn(x_star.shape, generator=g, dtype=F64)
    z = torch.randn(x_star.shape, generator=g, dtype=F64)
    eps = oracle(schedule, x_star)(x_t, torch.tensor([t]))
    x_prev, x0_hat = ddpm_step(schedule, x_t, t, eps, noise=z)
    beta, ab, ab_prev = schedule.betas.double()[t].item(), alpha_bar64(schedule, t), alpha_bar64(schedule, t - 1)
    mean = (math.sqrt(ab_prev) * beta * x_star.clamp(-1, 1) + math.sqrt(1 - beta) * (1 - ab_prev) * x_t) / (1 - ab)
    assert torch.allclose(x0_hat, x_star.clamp(-1, 1), atol=1e-9)
    assert torch.allclose(x_prev, mean + math.sqrt((1 - ab_prev) / (1 - ab) * beta) * z, atol=1e-5)
    mean_only, _ = ddpm_step(schedule, x_t, t, eps)
    assert torch.allclose(mean_only, mean, atol=1e-5)


# --------------------------------------------------------------------------- samplers


SAMPLERS = {
    "ddpm": lambda eps_fn, schedule, shape, **kw: ddpm_sample(eps_fn, schedule, shape, **kw),
    "ddim-eta0": lambda eps_fn, schedule, shape, **kw: ddim_sample(eps_fn, schedule, shape, steps=5, eta=0.0, **kw),
    "ddim-eta1": lambda eps_fn, schedule, shape, **kw: ddim_sample(eps_fn, schedule, shape, steps=5, eta=1.0, **kw),
    "ddim-1-step": lambda eps_fn, schedule, shape, **kw: ddim_sample(eps_fn, schedule, shape, steps=1, **kw),
}


@pytest.mark.parametrize("clip", [True, False], ids=["clip", "no-clip"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_return_the_data_point_of_an_exact_oracle(name, clip):
    schedule = linear_schedule(100)
    x_star = torch.tensor([[[[0.9, -0.5], [0.0, -1.0]], [[0.3, 1.0], [-0.7, 0.2]]]], dtype=F64)  # (1, 2, 2, 2)
    x_T = torch.randn(3, 2, 2, 2, generator=make_generator(7), dtype=F64)
    out = SAMPLERS[name](oracle(schedule, x_star), schedule, (3, 2, 2, 2), x_T=x_T, generator=8, clip=clip)
    assert out.dtype == F64 and torch.allclose(out, x_star.expand(3, -1, -1, -1), atol=1e-6)


def test_ddim_recomputes_the_noise_after_clamping():
    # The one-point oracle makes x0_hat = x* at every step. With x* partly outside [-1, 1] and clip=True,
    # x0_hat is clamped to c = clamp(x*); the eps recomputed from c is the same at every step, so the
    # deterministic chain visits exactly x_t = sqrt(ab_t) c + sqrt(1 - ab_t) eps_0 (the DDIM path of the
    # one-point data set {c}). Keeping the network's eps (which points at x*) leaves that path.
    schedule, x_star = linear_schedule(100), point_outside_the_box()
    clamped = x_star.clamp(-1, 1)
    x_T = torch.randn(2, *x_star.shape[1:], generator=make_generator(9), dtype=F64)
    calls = []
    out = ddim_sample(recording(oracle(schedule, x_star), calls), schedule, x_T.shape, steps=5, x_T=x_T)
    assert [t[0].item() for _, t in calls] == [99, 74, 50, 25, 0]
    eps_0 = (x_T - at(schedule.sqrt_alpha_bars, 99) * clamped) / at(schedule.sqrt_one_minus_alpha_bars, 99)
    for x_t, t in calls[1:]:
        step = t[0].item()
        expected = at(schedule.sqrt_alpha_bars, step) * clamped + at(schedule.sqrt_one_minus_alpha_bars, step) * eps_0
        assert torch.allclose(x_t, expected, atol=1e-6), f"x_t at step {step} is off the DDIM path of clamp(x*)"
    assert torch.allclose(out, clamped.expand_as(out), atol=1e-6)


def test_ddim_with_eta_one_over_every_step_is_ddpm():
    # sigma^2 = beta_tilde and the same noise draws: the two samplers take the same steps (clamping included).
    schedule = linear_schedule(20, beta_start=1e-3, beta_end=0.3, rescale=False)
    x_T = torch.randn(2, 1, 3, 3, generator=make_generator(10), dtype=F64)
    ddpm = ddpm_sample(wiggly, schedule, x_T.shape, generator=11, x_T=x_T)
    ddim = ddim_sample(wiggly, schedule, x_T.shape, steps=20, eta=1.0, generator=11, x_T=x_T)
    assert torch.allclose(ddpm, ddim, atol=1e-5)
    assert not torch.allclose(ddpm, ddim_sample(wiggly, schedule, x_T.shape, steps=20, eta=1.0, generator=12, x_T=x_T))


def test_ddim_with_eta_zero_is_deterministic_given_x_T():
    schedule = linear_schedule(50)
    x_T = torch.randn(2, 1, 4, 4, generator=make_generator(13))
    first = ddim_sample(wiggly, schedule, x_T.shape, steps=10, generator=0, x_T=x_T)
    assert torch.equal(first, ddim_sample(wiggly, schedule, x_T.shape, steps=10, generator=1, x_T=x_T))


@pytest.mark.parametrize(
    "sample",
    [
        lambda seed: ddpm_sample(wiggly, linear_schedule(30), (2, 1, 4, 4), generator=seed),
        lambda seed: ddim_sample(wiggly, linear_schedule(30), (2, 1, 4, 4), steps=10, eta=0.5, generator=seed),
        lambda seed: ddim_sample(wiggly, linear_schedule(30), (2, 1, 4, 4), steps=10, generator=seed),
    ],
    ids=["ddpm", "ddim-eta0.5", "ddim-eta0"],
)
def test_seeded_sampling_repeats_exactly(sample):
    out = sample(0)
    assert out.shape == (2, 1, 4, 4) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert -1 <= out.min() and out.max() <= 1, "clip=True keeps samples in [-1, 1]"
    assert torch.equal(out, sample(0)) and torch.equal(out, sample(make_generator(0)))
    assert not torch.equal(out, sample(1))


def test_samplers_call_eps_fn_with_int64_steps_in_order():
    schedule, calls = linear_schedule(20, rescale=False), []
    ddpm_sample(recording(wiggly, calls), schedule, (3, 1, 2, 2), generator=0)
    assert [t.tolist() for _, t in calls] == [[t] * 3 for t in range(19, -1, -1)]
    assert all(t.dtype == torch.int64 and x.shape == (3, 1, 2, 2) for x, t in calls)
    calls.clear()
    ddim_sample(recording(wiggly, calls), schedule, (3, 1, 2, 2), steps=4, generator=0)
    assert [t[0].item() for _, t in calls] == ddim_timesteps(20, 4) == [19, 13, 6, 0]


@pytest.mark.parametrize(
    "sampler, steps",
    [
        (lambda **kw: ddpm_sample(wiggly, linear_schedule(20, rescale=False), (2, 1, 3, 3), **kw), 20),
        (lambda **kw: ddim_sample(wiggly, linear_schedule(20, rescale=False), (2, 1, 3, 3), steps=5, eta=1.0, **kw), 5),
    ],
    ids=["ddpm", "ddim-eta1"],
)
def test_frames_are_x0_predictions_ending_with_the_sample(sampler, steps):
    out, snapshots = sampler(generator=0, frames=4)
    assert len(snapshots) == 4 and all(s.shape == (2, 1, 3, 3) for s in snapshots)
    assert torch.equal(out, sampler(generator=0)), "asking for frames does not change the sample"
    assert torch.allclose(snapshots[-1], out), "the last step's x0_hat is the sample"
    assert all(-1 <= s.min() and s.max() <= 1 for s in snapshots), "clamped predictions"
    _, every = sampler(generator=0, frames=steps)
    assert len(every) == steps and torch.equal(every[-1], snapshots[-1])


# --------------------------------------------------------------------------- training loss and guidance


class RecordingModel:
    """``model(x_t, t, labels)``: remembers its inputs; its output depends on ``x_t``, ``t`` and the labels."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t, labels):
        self.calls.append((x_t.clone(), t.clone(), None if labels is None else labels.clone()))
        shift = 0.0 if labels is None else labels.to(x_t.dtype).view(-1, 1, 1, 1)
        return 0.3 * x_t + 0.01 * t.to(x_t.dtype).view(-1, 1, 1, 1) + 0.1 * shift


def test_epsilon_loss_is_the_mse_against_the_noise_that_made_x_t():
    schedule, model = linear_schedule(10, rescale=False), RecordingModel()
    x0 = torch.rand(2000, 1, 2, 2, generator=make_generator(14)) * 2 - 1
    loss = epsilon_loss(model, schedule, x0, generator=15)
    (x_t, t, labels), = model.calls
    assert loss.ndim == 0 and labels is None and t.dtype == torch.int64
    noise = eps_from_x0(schedule, x_t, t, x0)
    assert loss.item() == pytest.approx(((model(x_t, t, None) - noise) ** 2).mean().item(), rel=1e-5)
    assert set(t.tolist()) == set(range(10)), "t ~ U{0, ..., T-1}: every step appears among 2000 draws"
    assert loss.item() == epsilon_loss(RecordingModel(), schedule, x0, generator=15).item(), "seeded"


def test_epsilon_loss_is_zero_for_the_oracle_on_one_point():
    schedule, x_star = linear_schedule(100), point_outside_the_box().clamp(-1, 1)
    exact = oracle(schedule, x_star)
    loss = epsilon_loss(lambda x_t, t, labels: exact(x_t, t), schedule, x_star.expand(64, -1, -1, -1), generator=16)
    assert loss.item() < 1e-20


def test_min_snr_weighting_weighs_each_image_by_min_snr_gamma_over_snr():
    schedule, model = linear_schedule(50), RecordingModel()
    x0 = torch.rand(500, 1, 2, 2, generator=make_generator(30)) * 2 - 1
    loss = epsilon_loss(model, schedule, x0, generator=31, snr_gamma=5.0)
    (x_t, t, _), = model.calls
    snr = at(schedule.alpha_bars, t) / (1 - at(schedule.alpha_bars, t))
    errors = ((model(x_t, t, None) - eps_from_x0(schedule, x_t, t, x0)) ** 2).double().mean(dim=(1, 2, 3))
    expected = (errors * snr.clamp(max=5.0).flatten() / snr.flatten()).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert (snr > 5).any() and (snr < 5).any(), "the draw covers steps on both sides of gamma"
    plain = epsilon_loss(RecordingModel(), schedule, x0, generator=31)
    above_every_snr = epsilon_loss(RecordingModel(), schedule, x0, generator=31, snr_gamma=snr.max().item() * 2)
    assert above_every_snr.item() == pytest.approx(plain.item(), rel=1e-6), "gamma above every SNR is the plain loss"
    assert loss.item() < plain.item(), "the weights are at most 1"
    with pytest.raises(ValueError, match="snr_gamma: expected a positive number or None, got 0"):
        epsilon_loss(model, schedule, x0, snr_gamma=0)


def test_epsilon_loss_drops_labels_with_probability_p_uncond():
    schedule, x0 = linear_schedule(10, rescale=False), torch.zeros(2000, 1, 2, 2)
    labels = torch.randint(0, 10, (2000,), generator=make_generator(17))
    for p_uncond, dropped in ((0.0, 0.0), (1.0, 1.0), (0.5, 0.5)):
        model = RecordingModel()
        epsilon_loss(model, schedule, x0, labels, generator=18, p_uncond=p_uncond, null_label=10)
        fed = model.calls[0][2]
        assert torch.equal(fed[fed != 10], labels[fed != 10]), "kept labels are unchanged"
        # 2000 Bernoulli(0.5) draws: standard error 1.1%
        assert (fed == 10).float().mean().item() == pytest.approx(dropped, abs=0.05)


def test_guidance_scale_one_is_exactly_the_conditional_model_in_one_call():
    model, g = RecordingModel(), make_generator(19)
    x_t, t, labels = torch.randn(3, 1, 2, 2, generator=g), torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3])
    out = guided(model, labels, scale=1.0)(x_t, t)
    assert len(model.calls) == 1 and len(model.calls[0][0]) == 3
    assert torch.equal(out, model(x_t, t, labels))
    assert torch.equal(guided(model, None)(x_t, t), model(x_t, t, None)), "labels=None: an unconditional model"


def test_guidance_mixes_conditional_and_unconditional_in_one_batched_call():
    model, g = RecordingModel(), make_generator(20)
    x_t, t, labels = torch.randn(3, 1, 2, 2, generator=g), torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3])
    null = torch.full((3,), 10)
    cond, uncond = model(x_t, t, labels), model(x_t, t, null)
    model.calls.clear()
    assert torch.equal(guided(model, labels, scale=0.0, null_label=10)(x_t, t), uncond)
    assert len(model.calls) == 1 and torch.equal(model.calls[0][2], null)
    model.calls.clear()
    out = guided(model, labels, scale=3.0, null_label=10)(x_t, t)
    assert len(model.calls) == 1 and len(model.calls[0][0]) == 6, "one call on the 2B batch"
    assert torch.allclose(out, uncond + 3.0 * (cond - uncond), atol=1e-6)


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors():
    schedule, x = linear_schedule(10, beta_start=1e-3, beta_end=0.1, rescale=False), torch.zeros(2, 1, 2, 2)
    t = torch.tensor([0, 9])
    with pytest.raises(ValueError, match=r"steps: expected an int step in \[1, 10\], got 0"):
        ddim_sample(wiggly, schedule, (2, 1, 2, 2), steps=0)
    with pytest.raises(ValueError, match=r"steps: expected an int step in \[1, 10\], got 11"):
        ddim_sample(wiggly, schedule, (2, 1, 2, 2), steps=11)
    with pytest.raises(ValueError, match=r"eta: expected a value in \[0, 1\]"):
        ddim_sample(wiggly, schedule, (2, 1, 2, 2), eta=-0.1)
    for sampler in (ddpm_sample, functools.partial(ddim_sample, steps=5)):
        with pytest.raises(ValueError, match=r"shape: expected \(B, C, H, W\)"):
            sampler(wiggly, schedule, (2, 4, 4))
        with pytest.raises(ValueError, match=r"x_T: expected a tensor of shape \(2, 1, 2, 2\)"):
            sampler(wiggly, schedule, (2, 1, 2, 2), x_T=torch.zeros(2, 1, 3, 3))
        with pytest.raises(ValueError, match="eps_fn: expected the shape of x_t"):
            sampler(lambda x_t, t: x_t[:, :1, :1], schedule, (2, 1, 2, 2))
        with pytest.raises(ValueError, match=r"frames: expected an int in \[0,"):
            sampler(wiggly, schedule, (2, 1, 2, 2), frames=11)
    for betas in ([0.0, 0.1], [0.1, 1.0], [-0.1], [1.5], [[0.1, 0.2]], []):
        with pytest.raises(ValueError, match="betas: expected"):
            Schedule(betas)
    with pytest.raises(ValueError, match=r"beta_start, beta_end: .*rescaling by 1000 / T = 100"):
        linear_schedule(10)
    with pytest.raises(ValueError, match="null_label"):
        epsilon_loss(RecordingModel(), schedule, x, torch.tensor([1, 2]), p_uncond=0.1)
    with pytest.raises(ValueError, match="null_label"):
        guided(RecordingModel(), torch.tensor([1, 2]), scale=2.0)
    with pytest.raises(ValueError, match=r"labels: expected an integer tensor of shape \(2,\)"):
        epsilon_loss(RecordingModel(), schedule, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"t: expected an integer tensor of shape \(2,\) .* steps in \[0, 9\]"):
        q_sample(schedule, x, torch.tensor([0, 10]), x)
    with pytest.raises(TypeError, match="t: expected"):
        q_sample(schedule, x, t.float(), x)
    with pytest.raises(ValueError, match=r"noise: expected the shape of x0 \(2, 1, 2, 2\)"):
        q_sample(schedule, x, t, torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match=r"x0: expected float images of shape \(B, C, H, W\) in \[-1, 1\]"):
        add_noise(schedule, torch.zeros(2, 4), t)
    with pytest.raises(ValueError, match=r"t_prev: expected an int step in \[-1, 4\]"):
        ddim_step(schedule, x, 5, 5, x)


# --- the zoo's sampler ----------------------------------------------------------------------


def test_sample_digits_gives_seeded_images_in_the_unit_range_for_every_label():
    from dgm.recipes.ddpm import build, sample_digits

    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        model.head[-1].weight.normal_(0, 0.1)  # an untrained but non-zero noise model
    labels = torch.tensor([0, 3, 9])
    schedule = linear_schedule(50)
    images = sample_digits(model, labels, scale=2.0, steps=3, seed=1, schedule=schedule, batch_size=2)
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, sample_digits(model, labels, scale=2.0, steps=3, seed=1, schedule=schedule, batch_size=2))
    assert not torch.allclose(images, sample_digits(model, labels, scale=2.0, steps=3, seed=2, schedule=schedule, batch_size=2))


# --- the shipped model ------------------------------------------------------------------------


def test_shipped_ddpm_draws_the_digits_it_is_asked_for():
    from dgm import zoo
    from dgm.recipes.ddpm import sample_digits
    from dgm.metrics import class_accuracy

    card = zoo.card("ddpm-mnist-cond")
    metrics = card["metrics"]
    # the targets, met together at one guidance scale: >= 98% class accuracy of guided samples
    # and a classifier-FID within 2x of the train-vs-test floor
    scales = [key.rsplit("_", 1)[1] for key in metrics if key.startswith("fid_scale_")]
    assert len(scales) >= 3, f"the card should report several guidance scales, has {scales}"
    meets = [
        s for s in scales
        if metrics[f"class_accuracy_scale_{s}"] >= 0.98 and metrics[f"fid_scale_{s}"] <= 2 * metrics["fid_floor_train_vs_test"]
    ]
    assert meets, f"no guidance scale meets both targets: {metrics}"
    model = zoo.load("ddpm-mnist-cond", device="cpu")
    wanted = torch.arange(10).repeat(3)
    samples = sample_digits(model, wanted, scale=2.0, steps=20, seed=0)
    # 30 samples (the card used 1,000 per scale): allow a few misses
    assert class_accuracy(samples, wanted) >= 0.9


def test_evaluate_ddpm_reports_accuracy_and_fid_at_every_scale_it_is_given():
    from dgm import zoo
    from dgm.recipes.ddpm import evaluate

    result = evaluate(zoo.load("ddpm-mnist-cond", device="cpu"), samples_per_class=3, scales=(1.0, 3.0))
    metrics = result["metrics"]
    assert set(metrics) == {
        "class_accuracy_scale_1", "fid_scale_1", "class_accuracy_scale_3", "fid_scale_3",
        "fid_floor_train_vs_test", "fid_ceiling_noise_vs_test",
    }
    assert metrics["class_accuracy_scale_3"] >= 0.9  # 30 strongly guided digits
    # (with 30 images FID is too noisy to rank the samples against the floor or the ceiling)
    assert 0 < metrics["fid_floor_train_vs_test"] < metrics["fid_ceiling_noise_vs_test"]
    assert 0 < metrics["fid_scale_3"] < metrics["fid_ceiling_noise_vs_test"]
    assert "3 guided DPM-Solver++(2M)-20 samples per digit" in result["evaluation"]
    assert len(result["seconds"]) == 2


@pytest.mark.parametrize("sampler", [ddpm_sample, functools.partial(ddim_sample, steps=2)])
def test_samplers_run_on_the_course_device_unless_told_otherwise(monkeypatch, sampler):
    from dgm import diffusion

    asked = []

    def course_device(device=None):
        asked.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(diffusion, "get_device", course_device)
    sampler(lambda x, t: torch.zeros_like(x), linear_schedule(100), (1, 1, 4, 4), generator=0)
    assert asked and set(asked) == {None}, "the default device comes from dgm.device's rule"
    asked.clear()
    sampler(lambda x, t: torch.zeros_like(x), linear_schedule(100), (1, 1, 4, 4), generator=0, x_T=torch.zeros(1, 1, 4, 4))
    assert not asked, "a given x_T sets the device"
