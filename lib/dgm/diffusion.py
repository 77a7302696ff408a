"""Diffusion models: the forward process, its closed form, and samplers.

**Forward process** (DDPM, Ho et al. 2020). Fix a variance schedule ``beta_1, ..., beta_T``
in (0, 1) and destroy the data ``x_0`` a little at every step:

    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I),        alpha_t = 1 - beta_t.

Gaussians compose, so any step has a closed form, one draw instead of ``t``:

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),  alpha_bar_t = prod_{s <= t} alpha_s,
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,        eps ~ N(0, I).

A schedule should end near pure noise: ``sqrt(alpha_bar_T)``, the weight of ``x_0`` left in
``x_T`` (:attr:`Schedule.final_signal`), should be close to 0. The linear schedule
(``beta`` from 1e-4 to 0.02, T = 1000) leaves 0.006; shortened to T = 100 with the same
range it leaves 0.6, so :func:`linear_schedule` rescales both ends by ``1000 / T``
(Nichol & Dhariwal 2021). Their cosine schedule destroys information more evenly.

**The posterior.** Given ``x_0``, the step backwards is Gaussian too:

    q(x_{t-1} | x_t, x_0) = N(mu_tilde_t, beta_tilde_t I),
    mu_tilde_t   = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
                 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t,
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.

**Training** (epsilon prediction). A network ``eps_theta(x_t, t)`` learns to tell the noise
in ``x_t``: minimize ``E_{t, x_0, eps} |eps - eps_theta(x_t, t)|^2`` with ``t`` uniform
(:func:`epsilon_loss`). A noise estimate is a data estimate,
``x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)`` (:func:`predict_x0`).

**Ancestral sampling** (:func:`ddpm_sample`). Start at ``x_T ~ N(0, I)`` and step back with
the posterior, ``x_0`` replaced by ``x0_hat`` clamped to [-1, 1]:
``x_{t-1} = mu_tilde_t(x0_hat, x_t) + sqrt(beta_tilde_t) z``. Writing the mean with
``x0_hat`` (rather than the equivalent ``(x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t)``)
is what lets the clamp act.

**DDIM** (Song et al. 2021). Non-Markovian processes with the same marginals ``q(x_t | x_0)``,
hence the same trained network, sampled over a subsequence of steps ``t > t'``:

    x_{t'} = sqrt(alpha_bar_{t'}) x0_hat + sqrt(1 - alpha_bar_{t'} - sigma^2) eps + sigma z,
    sigma  = eta sqrt((1 - alpha_bar_{t'}) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_{t'}).

``eta = 0`` is deterministic; ``eta = 1`` over every step is DDPM (``sigma^2 = beta_tilde_t``).
When ``x0_hat`` is clamped, ``eps`` is recomputed from it,
``eps = (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t)``, so that the pair still
explains ``x_t``; otherwise the step would mix a clamped image with noise that points
at the unclamped one.

**Classifier-free guidance** (Ho & Salimans 2022). Train one network both with labels and
without, replacing each label by a null label with probability ``p_uncond``; sample with
``eps = eps(x, null) + w (eps(x, y) - eps(x, null))`` (:func:`guided`): ``w = 1`` is the
conditional model, ``w = 0`` the unconditional one, ``w > 1`` trades variety for fidelity.

**Indexing: 0-based.** The papers count steps ``1..T`` with ``x_0`` the data. Here a step
``t`` is an integer in ``{0, ..., T-1}`` and stands for the paper's step ``t + 1``:
``betas[t]`` is ``beta_{t+1}``, ``alpha_bars[t]`` is ``alpha_bar_{t+1}`` (so ``alpha_bars[-1]`` is
``alpha_bar_T``), ``alpha_bars_prev[t]`` is ``alpha_bar_t`` (1 at ``t = 0``), and
``q_sample(schedule, x0, t, noise)`` is the paper's ``x_{t+1}``. "``x_t``" below means the
image after step ``t``; ``t = 0`` is the first noising step, and the last sampling step
(``t = 0``) returns the estimate of the data itself.

Images are float tensors ``(B, C, H, W)`` with values in [-1, 1]; steps are int64 tensors
``(B,)``. A noise model is any callable ``model(x_t, t, labels) -> eps`` of the shape of
``x_t``; samplers take ``eps_fn(x_t, t) -> eps`` (``labels`` bound, e.g. by :func:`guided`),
so that later code can wrap it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dgm.checks import class_labels, describe, diffusion_images, positive_int, same_shape
from dgm.device import Seed, get_device, make_generator

__all__ = [
    "Schedule",
    "linear_schedule",
    "cosine_schedule",
    "q_sample",
    "add_noise",
    "posterior",
    "predict_x0",
    "eps_from_x0",
    "epsilon_loss",
    "guided",
    "ddim_timesteps",
    "ddim_sigma",
    "respace",
    "on_steps",
    "ddpm_step",
    "ddim_step",
    "ddpm_sample",
    "ddim_sample",
    "run_chain",
    "DDPM_T",
    "DDPM_NULL_LABEL",
]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the schedule ---------------------------------------------------------------------------


class Schedule(nn.Module):
    """A variance schedule ``beta_1..beta_T`` and the coefficients the formulas need.

    Every buffer is ``(T,)``, computed in float64 and stored as float32, indexed by the
    0-based step ``t`` (the paper's ``t + 1``); ``schedule.to(device)`` moves them all:

    - ``betas``: ``beta`` in (0, 1); ``alphas``: ``1 - beta``;
    - ``alpha_bars``: the cumulative product of ``alphas`` (``alpha_bars[-1]`` is ``alpha_bar_T``);
      ``alpha_bars_prev``: the one before (1 at ``t = 0``: nothing noised yet);
    - ``sqrt_alpha_bars``, ``sqrt_one_minus_alpha_bars``: the weights of ``x_0`` and ``eps`` in
      ``q(x_t | x_0)`` (stored, not recomputed, so that ``1 - alpha_bar`` keeps its precision
      when ``alpha_bar`` is near 1);
    - ``posterior_variance``: ``beta_tilde = (1 - alpha_bars_prev) / (1 - alpha_bars) * betas``,
      in ``(0, beta]`` for ``t >= 1`` and exactly 0 at ``t = 0`` (the last sampling step adds no noise);
    - ``posterior_mean_x0``, ``posterior_mean_xt``: the weights of ``x_0`` and ``x_t`` in the
      posterior mean (1 and 0 at ``t = 0``: the mean is ``x_0`` itself).

    ``betas``: a 1-D tensor or sequence of ``T >= 1`` values, each in (0, 1).
    """

    def __init__(self, betas: torch.Tensor | Sequence[float]):
        super().__init__()
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.ndim != 1 or len(betas) == 0:
            raise ValueError(
                f"betas: expected a 1-D sequence of T >= 1 values in (0, 1), got shape {tuple(betas.shape)}"
            )
        if not ((betas > 0) & (betas < 1)).all():
            raise ValueError(
                "betas: expected every value in (0, 1), "
                f"got values from {betas.min().item():g} to {betas.max().item():g}"
            )
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        one_minus_alpha_bars = 1.0 - alpha_bars
        buffers = {
            "betas": betas,
            "alphas": alphas,
            "alpha_bars": alpha_bars,
            "alpha_bars_prev": alpha_bars_prev,
            "sqrt_alpha_bars": alpha_bars.sqrt(),
            "sqrt_one_minus_alpha_bars": one_minus_alpha_bars.sqrt(),
            "posterior_variance": (1.0 - alpha_bars_prev) / one_minus_alpha_bars * betas,
            "posterior_mean_x0": alpha_bars_prev.sqrt() * betas / one_minus_alpha_bars,
            "posterior_mean_xt": alphas.sqrt() * (1.0 - alpha_bars_prev) / one_minus_alpha_bars,
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float())

    @property
    def T(self) -> int:
        """The number of steps."""
        return len(self.betas)

    @property
    def final_signal(self) -> float:
        """``sqrt(alpha_bar_T)``: the weight of ``x_0`` left in ``x_T`` (0 would be pure noise)."""
        return self.sqrt_alpha_bars[-1].item()

    def extra_repr(self) -> str:
        return f"T={self.T}, final_signal={self.final_signal:.3g}"


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, rescale: bool = True) -> Schedule:
    """DDPM's schedule: ``T`` betas evenly spaced from ``beta_start`` to ``beta_end``.

    With ``rescale`` both ends are multiplied by ``1000 / T`` (Nichol & Dhariwal 2021), so a
    chain shorter than 1000 steps still ends near pure noise; ``rescale=False`` keeps the
    range as given (and shows how much signal a short chain leaves: :attr:`Schedule.final_signal`).
    """
    T = positive_int(T, "T")
    scale = 1000.0 / T if rescale else 1.0
    start, end = beta_start * scale, beta_end * scale
    if not (0 < start < 1 and 0 < end < 1):
        raise ValueError(
            f"beta_start, beta_end: expected both in (0, 1) after rescaling by 1000 / T = {scale:g}, "
            f"got {start:g} and {end:g} (use a larger T or rescale=False)"
        )
    return Schedule(torch.linspace(start, end, T, dtype=torch.float64))


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal's cosine schedule: ``alpha_bar(t) = f(t) / f(0)`` with
    ``f(t) = cos^2((t / T + s) / (1 + s) * pi / 2)``, i.e. ``beta_t = 1 - f(t) / f(t - 1)``
    (paper's ``t = 1..T``), each clipped at ``max_beta`` (the last ones would reach 1).
    The offset ``s`` keeps the first betas from being vanishingly small.
    """
    T = positive_int(T, "T")
    if s < 0:
        raise ValueError(f"s: expected a non-negative offset, got {s!r}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta: expected a value in (0, 1), got {max_beta!r}")
    times = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((times + s) / (1 + s) * math.pi / 2) ** 2
    return Schedule((1.0 - f[1:] / f[:-1]).clamp(max=max_beta))


# --- the forward process and its posterior --------------------------------------------------


def _check_steps(t: object, schedule: Schedule, batch: int) -> torch.Tensor:
    """``t`` must be an integer tensor ``(batch,)`` of 0-based steps in ``[0, T - 1]``."""
    expected = f"an integer tensor of shape ({batch},) with 0-based steps in [0, {schedule.T - 1}]"
    if not torch.is_tensor(t) or t.shape != (batch,):
        raise ValueError(f"t: expected {expected}, got {describe(t)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t: expected {expected}, got dtype {t.dtype}")
    if batch and (t.min() < 0 or t.max() >= schedule.T):
        raise ValueError(f"t: expected {expected}, got values from {t.min().item()} to {t.max().item()}")
    return t


def _at(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values[t]`` as ``(B, 1, 1, 1)`` in the dtype and on the device of ``x``."""
    return values[t.to(values.device)].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``: a draw of ``q(x_t | x_0)``.

    ``x0`` images ``(B, C, H, W)`` in [-1, 1], ``t`` int64 ``(B,)`` in ``[0, T - 1]`` (one step
    per image), ``noise`` of the shape of ``x0`` (standard normal for a sample). Same shape out.
    """
    diffusion_images(x0, "x0")
    _check_steps(t, schedule, len(x0))
    same_shape(noise, "noise", x0, "x0")
    return _at(schedule.sqrt_alpha_bars, t, x0) * x0 + _at(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise


def add_noise(
    schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, generator: Seed = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_t, noise)``: :func:`q_sample` with ``noise ~ N(0, I)`` drawn on the CPU from ``generator``
    (a seed repeats exactly) and moved to ``x0``'s device."""
    diffusion_images(x0, "x0")
    noise = torch.randn(x0.shape, generator=make_generator(generator), dtype=x0.dtype).to(x0.device)
    return q_sample(schedule, x0, t, noise), noise


def posterior(
    schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, variance)`` of ``q(x_{t-1} | x_t, x_0)``, the image one step before ``x_t``.

    ``mean = posterior_mean_x0[t] * x0 + posterior_mean_xt[t] * x_t`` has the shape of ``x0``;
    ``variance = beta_tilde_t`` is ``(B, 1, 1, 1)`` (0 at ``t = 0``, where the "previous image" is
    the data and the mean is ``x0``). ``x0``, ``x_t``: ``(B, C, H, W)``; ``t``: int64 ``(B,)``.
    """
    diffusion_images(x0, "x0")
    same_shape(x_t, "x_t", x0, "x0")
    _check_steps(t, schedule, len(x0))
    mean = _at(schedule.posterior_mean_x0, t, x0) * x0 + _at(schedule.posterior_mean_xt, t, x0) * x_t
    return mean, _at(schedule.posterior_variance, t, x0)


def predict_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The data estimate ``x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)`` (not clamped).

    Inverse of :func:`eps_from_x0`. ``x_t``, ``eps``: ``(B, C, H, W)``; ``t``: int64 ``(B,)``.
    """
    diffusion_images(x_t, "x_t")
    same_shape(eps, "eps", x_t, "x_t")
    _check_steps(t, schedule, len(x_t))
    return (x_t - _at(schedule.sqrt_one_minus_alpha_bars, t, x_t) * eps) / _at(schedule.sqrt_alpha_bars, t, x_t)


def eps_from_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """The noise that takes ``x0`` to ``x_t``: ``(x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)``.

    Inverse of :func:`predict_x0`. ``x_t``, ``x0``: ``(B, C, H, W)``; ``t``: int64 ``(B,)``.
    """
    diffusion_images(x_t, "x_t")
    same_shape(x0, "x0", x_t, "x_t")
    _check_steps(t, schedule, len(x_t))
    return (x_t - _at(schedule.sqrt_alpha_bars, t, x_t) * x0) / _at(schedule.sqrt_one_minus_alpha_bars, t, x_t)


# --- training and guidance ------------------------------------------------------------------


def _check_eps(eps: object, x_t: torch.Tensor, name: str) -> torch.Tensor:
    """A noise model's output must have the shape of its input ``x_t`` (no silent broadcasting)."""
    return same_shape(eps, name, x_t, "x_t")


def epsilon_loss(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    schedule: Schedule,
    x0: torch.Tensor,
    labels: torch.Tensor | None = None,
    generator: Seed = None,
    p_uncond: float = 0.0,
    null_label: int | None = None,
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """The DDPM training loss: ``mean |eps - model(x_t, t, labels)|^2`` over images and pixels (a scalar).

    ``t ~ U{0, ..., T-1}`` per image and ``eps ~ N(0, I)`` are drawn on the CPU from
    ``generator`` (in that order), then moved to ``x0``'s device; ``x_t = q_sample(x0, t, eps)``.
    ``x0``: images ``(B, C, H, W)`` in [-1, 1]; ``labels``: int64 ``(B,)`` or None (an
    unconditional model, called as ``model(x_t, t, None)``). With ``p_uncond > 0`` each label
    is replaced by ``null_label`` with that probability (classifier-free guidance training).

    ``snr_gamma`` (min-SNR-gamma weighting, Hang et al. 2023): each image's squared error is weighted
    by ``min(SNR_t, gamma) / SNR_t`` with ``SNR_t = alpha_bar_t / (1 - alpha_bar_t)``. Steps of little
    noise (``SNR_t > gamma``), whose noise is easy to tell and matters little to samples, weigh less,
    so training spends its effort where the images take shape; ``None`` weighs every step 1.
    """
    diffusion_images(x0, "x0")
    if snr_gamma is not None and not snr_gamma > 0:
        raise ValueError(f"snr_gamma: expected a positive number or None, got {snr_gamma!r}")
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond: expected a probability in [0, 1], got {p_uncond!r}")
    if labels is not None:
        labels = class_labels(labels, len(x0)).to(x0.device)
    if p_uncond > 0 and (labels is None or not _is_int(null_label)):
        raise ValueError(
            f"null_label: p_uncond = {p_uncond} drops labels, so it needs labels and an int null_label "
            "(the class index the model reserves for 'no label'), "
            f"got labels={describe(labels)}, null_label={null_label!r}"
        )
    generator = make_generator(generator)
    t = torch.randint(0, schedule.T, (len(x0),), generator=generator).to(x0.device)
    x_t, noise = add_noise(schedule, x0, t, generator)
    if p_uncond > 0:
        drop = (torch.rand(len(x0), generator=generator) < p_uncond).to(x0.device)
        labels = torch.where(drop, torch.full_like(labels, null_label), labels)
    eps = _check_eps(model(x_t, t, labels), x_t, "model")
    if snr_gamma is None:
        return F.mse_loss(eps, noise)
    alpha_bar = schedule.alpha_bars[t]
    snr = alpha_bar / (1.0 - alpha_bar)
    per_image = (eps - noise).pow(2).flatten(1).mean(1)
    return (per_image * snr.clamp(max=snr_gamma) / snr).mean()


def guided(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    labels: torch.Tensor | None,
    scale: float = 1.0,
    null_label: int | None = None,
) -> EpsFn:
    """Classifier-free guidance: an ``eps_fn(x_t, t)`` for the samplers.

    ``eps_fn`` returns ``eps_uncond + scale * (eps_cond - eps_uncond)``, where ``eps_cond =
    model(x_t, t, labels)`` and ``eps_uncond = model(x_t, t, null labels)``, both from one batched
    call of ``2 B`` images. ``scale == 1`` calls only the conditional model (exactly its output),
    ``scale == 0`` only the unconditional one. ``labels``: int64 ``(B,)``, one per image of
    ``x_t``, or float condition vectors ``(B, E)`` (a text DiT's prompt embeddings; the null is
    then a vector full of ``null_label``, 0 for :class:`dgm.dit.DiT`); ``labels=None`` means an
    unconditional model: ``eps_fn = model(x_t, t, None)``.
    """
    if labels is None:
        return lambda x_t, t: _check_eps(model(x_t, t, None), x_t, "model")
    vectors = torch.is_tensor(labels) and labels.is_floating_point() and labels.ndim == 2
    labels = labels if vectors else class_labels(labels)
    scale = float(scale)
    if scale != 1.0 and not _is_int(null_label):
        raise ValueError(
            f"null_label: guidance with scale {scale:g} needs the model's int null label, got {null_label!r}"
        )

    def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if len(labels) != len(x_t):
            raise ValueError(f"labels: expected one per image of x_t ({len(x_t)}), got {describe(labels)}")
        cond = labels.to(x_t.device)
        if scale == 1.0:
            return _check_eps(model(x_t, t, cond), x_t, "model")
        uncond = torch.full_like(cond, null_label)
        if scale == 0.0:
            return _check_eps(model(x_t, t, uncond), x_t, "model")
        doubled = torch.cat([x_t, x_t])
        both = _check_eps(model(doubled, torch.cat([t, t]), torch.cat([cond, uncond])), doubled, "model")
        eps_cond, eps_uncond = both.chunk(2)
        return eps_uncond + scale * (eps_cond - eps_uncond)

    return eps_fn


# --- one step back --------------------------------------------------------------------------


def _check_step(name: str, value: object, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name}: expected an int step in [{low}, {high}], got {value!r}")
    return value


def _check_eta(eta: float) -> None:
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta: expected a value in [0, 1] (0: deterministic DDIM, 1: DDPM's variance), got {eta!r}")


def _alpha_bar(schedule: Schedule, t: int) -> tuple[float, float]:
    """``(alpha_bar, 1 - alpha_bar)`` after step ``t``; ``(1, 0)`` at ``t = -1`` (the data)."""
    if t < 0:
        return 1.0, 0.0
    return schedule.alpha_bars[t].item(), schedule.sqrt_one_minus_alpha_bars[t].item() ** 2


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The ``steps`` DDIM steps, descending and evenly spaced: ``torch.linspace(T - 1, 0, steps).round()``.

    They start at ``T - 1`` (where ``x_T`` lives) and, for ``steps >= 2``, end at 0; ``steps = T``
    is every step, ``steps = 1`` the single step ``T - 1`` straight to the data estimate.
    """
    T = positive_int(T, "T")
    _check_step("steps", steps, 1, T)
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()


def ddim_sigma(schedule: Schedule, t: int, t_prev: int, eta: float) -> float:
    """DDIM's noise scale from step ``t`` to the earlier step ``t_prev`` (``-1``: to the data):

    ``eta * sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * sqrt(1 - alpha_bar_t / alpha_bar_prev)``;
    with ``eta = 1`` and ``t_prev = t - 1`` its square is ``posterior_variance[t]``.
    """
    _check_eta(eta)
    _check_step("t", t, 0, schedule.T - 1)
    _check_step("t_prev", t_prev, -1, t - 1)
    alpha_bar, one_minus = _alpha_bar(schedule, t)
    alpha_bar_prev, one_minus_prev = _alpha_bar(schedule, t_prev)
    return eta * math.sqrt(one_minus_prev / one_minus * (1.0 - alpha_bar / alpha_bar_prev))


def respace(schedule: Schedule, steps: int) -> tuple[Schedule, torch.Tensor]:
    """A chain of ``steps`` steps through evenly spaced steps of ``schedule`` (Nichol & Dhariwal's respacing).

    Returns ``(short, original)``: ``original`` (``steps``,) int64, ascending, the steps of ``schedule`` that
    are kept (:func:`ddim_timesteps` reversed); ``short`` has ``short.alpha_bars[i] = schedule.alpha_bars[original[i]]``
    and ``betas[i] = 1 - alpha_bars[i] / alpha_bars[i - 1]``, so its marginals ``q(x_t | x_0)`` are those of the
    long chain. A noise model trained on ``schedule`` serves ``short`` through :func:`on_steps`.
    """
    original = torch.tensor(ddim_timesteps(schedule.T, steps)[::-1], dtype=torch.long)
    alpha_bars = schedule.alpha_bars.double()[original]
    previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
    return Schedule(1.0 - alpha_bars / previous), original


def on_steps(eps_fn: EpsFn, original: torch.Tensor) -> EpsFn:
    """``eps_fn`` of a long chain, called on a respaced one: step ``t`` of the short chain is ``original[t]``."""

    def short_eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return eps_fn(x_t, original.to(t.device)[t])

    return short_eps_fn


def _same_step(t: int, x: torch.Tensor) -> torch.Tensor:
    """The int64 steps ``(B,)`` of a batch ``x`` that is all at step ``t``, on ``x``'s device."""
    return torch.full((len(x),), t, dtype=torch.long, device=x.device)


def _check_noise(noise: torch.Tensor | None, x_t: torch.Tensor) -> None:
    if noise is not None:
        same_shape(noise, "noise", x_t, "x_t")


def ddpm_step(
    schedule: Schedule, x_t: torch.Tensor, t: int, eps: torch.Tensor,
    noise: torch.Tensor | None = None, clip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ancestral step back from ``x_t`` (every image at step ``t``, an int in ``[0, T - 1]``).

    ``x0_hat = predict_x0(x_t, eps)``, clamped to [-1, 1] when ``clip``, then
    ``x_{t-1} = posterior mean(x0_hat, x_t) + sqrt(beta_tilde_t) * noise`` (``noise=None``: the mean).
    Returns ``(x_{t-1}, x0_hat)``, both of the shape of ``x_t`` ``(B, C, H, W)``.
    """
    diffusion_images(x_t, "x_t")
    _check_step("t", t, 0, schedule.T - 1)
    _check_noise(noise, x_t)
    steps = _same_step(t, x_t)
    x0 = predict_x0(schedule, x_t, steps, eps)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
    mean, variance = posterior(schedule, x0, x_t, steps)  # the mean from the (clamped) x0_hat, not from eps
    return (mean if noise is None else mean + variance.sqrt() * noise), x0


def ddim_step(
    schedule: Schedule, x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor,
    eta: float = 0.0, noise: torch.Tensor | None = None, clip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step from step ``t`` to the earlier ``t_prev`` (``-1``: to the data estimate).

    ``x0_hat = predict_x0(x_t, eps)``; when ``clip`` it is clamped to [-1, 1] and ``eps`` is
    recomputed from it (``eps_from_x0``). Then ``x_prev = sqrt(alpha_bar_prev) x0_hat +
    sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma * noise`` with ``sigma = ddim_sigma(t, t_prev, eta)``
    (``noise=None``: no noise term). Returns ``(x_prev, x0_hat)``, each ``(B, C, H, W)``.
    """
    diffusion_images(x_t, "x_t")
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    _check_noise(noise, x_t)
    steps = _same_step(t, x_t)
    x0 = predict_x0(schedule, x_t, steps, eps)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
        eps = eps_from_x0(schedule, x_t, steps, x0)  # the noise that, with the clamped x0_hat, gives x_t
    alpha_bar_prev, one_minus_prev = _alpha_bar(schedule, t_prev)
    # With eta = 1 the square root's argument is >= 0 exactly but may round to a hair below it.
    x_prev = math.sqrt(alpha_bar_prev) * x0 + math.sqrt(max(one_minus_prev - sigma**2, 0.0)) * eps
    return (x_prev if noise is None else x_prev + sigma * noise), x0


# --- samplers -------------------------------------------------------------------------------


def _check_shape(shape: object) -> tuple[int, int, int, int]:
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 4 or not all(
        _is_int(n) and n > 0 for n in shape
    ):
        raise ValueError(f"shape: expected (B, C, H, W), four positive ints, got {shape!r}")
    return tuple(shape)


def _chain_device(x_T: object, device: str | torch.device | None) -> torch.device:
    """Where a sampler runs: on ``x_T``'s device when it is given, else on ``device`` (default: the course's rule)."""
    return x_T.device if torch.is_tensor(x_T) else get_device(device)


def run_chain(
    eps_fn: EpsFn, timesteps: list[int], step: Callable[..., tuple[torch.Tensor, torch.Tensor]], stochastic: bool,
    shape: tuple[int, ...], generator: Seed, x_T: torch.Tensor | None, device: torch.device, frames: int,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Walk ``timesteps`` (descending) from ``x_T`` with ``step(x, t, t_prev, eps, noise) -> (x_prev, x0_hat)``;
    the loop every sampler shares (``t_prev`` is ``-1`` at the last step: to the data).

    ``eps_fn``, ``shape``, ``generator``, ``x_T``, ``frames`` as for :func:`ddpm_sample`. Noise for a step is drawn (on the CPU, from ``generator``) only when ``stochastic`` and the
    step is not the last. Frames are the ``x0_hat`` of ``frames`` evenly spread steps, the last included.
    """
    shape = _check_shape(shape)
    if not _is_int(frames) or not 0 <= frames <= len(timesteps):
        raise ValueError(f"frames: expected an int in [0, {len(timesteps)}] (at most one per step), got {frames!r}")
    generator = make_generator(generator)
    if x_T is None:
        x = torch.randn(shape, generator=generator).to(device)
    else:
        if not torch.is_tensor(x_T) or tuple(x_T.shape) != shape:
            raise ValueError(f"x_T: expected a tensor of shape {shape} (the shape argument), got {describe(x_T)}")
        x = diffusion_images(x_T, "x_T")
    marks = {(k + 1) * len(timesteps) // frames - 1 for k in range(frames)}
    snapshots = []
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        eps = _check_eps(eps_fn(x, _same_step(t, x)), x, "eps_fn")
        noise = None
        if stochastic and t_prev >= 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x, x0 = step(x, t, t_prev, eps, noise)
        if i in marks:
            snapshots.append(x0.cpu())
    return (x, snapshots) if frames else x


@torch.no_grad()
def ddpm_sample(
    eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, int, int, int], generator: Seed = None,
    x_T: torch.Tensor | None = None, clip: bool = True, frames: int = 0, device: str | torch.device | None = None,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Ancestral DDPM sampling: ``x_T ~ N(0, I)``, then :func:`ddpm_step` for ``t = T-1, ..., 0``.

    ``eps_fn(x_t, t)`` gets ``x_t`` ``(B, C, H, W)`` and ``t`` int64 ``(B,)`` on ``x``'s device.
    ``x_T`` (default: drawn on the CPU from ``generator``, moved to ``device``) sets the start,
    its device and dtype. ``device`` defaults to :func:`dgm.device.get_device` (a GPU when there is
    one); the schedule is moved to the sampling device. No noise is added at the last step. Returns images of ``shape`` in
    [-1, 1] when ``clip``; with ``frames > 0`` also a list of ``frames`` snapshots of the
    prediction ``x0_hat`` (CPU, each of ``shape``) at evenly spread steps, the last one included.
    """

    device = _chain_device(x_T, device)
    schedule = schedule.to(device)

    def step(x, t, t_prev, eps, noise):
        return ddpm_step(schedule, x, t, eps, noise, clip)

    timesteps = list(range(schedule.T - 1, -1, -1))
    return run_chain(eps_fn, timesteps, step, True, shape, generator, x_T, device, frames)


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, int, int, int], steps: int = 50, eta: float = 0.0,
    generator: Seed = None, x_T: torch.Tensor | None = None, clip: bool = True, frames: int = 0,
    device: str | torch.device | None = None, start: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """DDIM sampling over ``steps`` evenly spaced steps (:func:`ddim_timesteps`), with :func:`ddim_step`.

    ``eta`` in [0, 1]: 0 is deterministic given ``x_T`` (no noise is drawn), 1 with ``steps = T``
    is DDPM. The last step goes to the data estimate. Arguments, devices, the returned images
    and ``frames`` (snapshots of ``x0_hat``) as for :func:`ddpm_sample`. ``start`` (default ``T``)
    is how many noising steps ``x_T`` has had: sampling walks from step ``start - 1`` down, in
    ``steps <= start`` steps (SDEdit starts part-way, from a noised image).
    """
    _check_eta(eta)
    start = schedule.T if start is None else _check_step("start", start, 1, schedule.T)
    timesteps = ddim_timesteps(start, steps)
    device = _chain_device(x_T, device)
    schedule = schedule.to(device)

    def step(x, t, t_prev, eps, noise):
        return ddim_step(schedule, x, t, t_prev, eps, eta, noise, clip)

    return run_chain(eps_fn, timesteps, step, eta > 0, shape, generator, x_T, device, frames)


# --- the course's DDPM conventions -----------------------------------------------------------

DDPM_T = 1000  # the linear schedule of DDPM, beta from 1e-4 to 0.02
DDPM_NULL_LABEL = 10  # the label that means "no label" (classifier-free guidance)
