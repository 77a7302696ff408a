"""Gaussian maximum likelihood, and mixtures of Gaussians fit by EM.

The first generative model of the course is a density ``p_theta(x)`` fit to data
``x_1, ..., x_N`` in ``R^D`` by **maximum likelihood**, then sampled. For one
Gaussian ``theta = (mu, Sigma)`` and

    log N(x; mu, Sigma) = -1/2 [ D log(2 pi) + log det Sigma + (x - mu)^T Sigma^{-1} (x - mu) ].

Setting the gradient of the log-likelihood ``sum_n log N(x_n; mu, Sigma)`` to zero
gives the closed form (:func:`fit_mle`)

    mu_hat    = 1/N sum_n x_n,
    Sigma_hat = 1/N sum_n (x_n - mu_hat)(x_n - mu_hat)^T      (1/N, not 1/(N - 1)).

:func:`fit_gradient_ascent` reaches the same point by climbing the log-likelihood
with autograd, the way every later model in the course is trained. The covariance is
parameterized by its Cholesky factor ``Sigma = L L^T`` with ``L`` lower triangular
and ``diag(L) = exp(s)``, so every step stays symmetric positive definite.

Sampling (:func:`sample`) pushes ``eps ~ N(0, I)`` through ``x = mu + L eps``:
then ``Cov[x] = L I L^T = Sigma``.

**Mixtures.** ``p(x) = sum_k pi_k N(x; mu_k, Sigma_k)`` (:class:`GaussianMixture`)
is fit by expectation-maximization (:func:`fit_em`). The E-step computes
responsibilities ``r_nk = p(z_n = k | x_n)`` (:func:`responsibilities`); the M-step
(:func:`m_step`) refits each component to the points weighted by ``r_nk``. Each EM
iteration never decreases the log-likelihood. A small ``cov_floor * I`` added to
every covariance keeps a component from collapsing onto a single point (where the
likelihood is unbounded).

**Memorization.** :func:`memorizer_log_prob` is a kernel density with a tiny
bandwidth: all its mass sits on the training points. Its training log-likelihood is
enormous and its held-out log-likelihood terrible -- the reason models are compared
on held-out data.

All log densities are in nats. Arrays may be NumPy arrays or torch tensors; results
are torch tensors of the input's floating dtype (integers become the default dtype).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dgm.checks import positive_int
from dgm.device import Seed, make_generator

__all__ = [
    "fit_mle",
    "log_prob",
    "log_likelihood",
    "fit_gradient_ascent",
    "sample",
    "ellipse",
    "memorizer_log_prob",
    "GaussianMixture",
    "responsibilities",
    "m_step",
    "kmeans_plus_plus",
    "fit_em",
]



# --------------------------------------------------------------------------- input checks


def _as_tensor(x, name: str, ndim: int | None = None) -> torch.Tensor:
    """``x`` as a floating tensor (integers -> default dtype), with ``ndim`` checked."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not torch.is_tensor(x):
        raise TypeError(f"{name}: expected a torch tensor or NumPy array, got {type(x).__name__}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(x.shape)}")
    return x


def _as_data(x, name: str = "x") -> torch.Tensor:
    """Data ``(N, D)`` with ``N >= 1``."""
    x = _as_tensor(x, name, ndim=2)
    if x.shape[0] < 1:
        raise ValueError(f"{name}: expected at least one point (N >= 1), got shape {tuple(x.shape)}")
    return x


def _as_gaussian(mean, cov, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``mean (D,)`` and ``cov (D, D)`` agree; cast them to ``dtype``."""
    mean, cov = _as_tensor(mean, "mean", ndim=1), _as_tensor(cov, "cov", ndim=2)
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov: expected shape (D, D) = ({d}, {d}) to match mean, got {tuple(cov.shape)}")
    dtype = dtype or mean.dtype
    return mean.to(dtype), cov.to(dtype)


def _cholesky(cov: torch.Tensor, name: str = "cov") -> torch.Tensor:
    """Lower Cholesky factor ``L`` of ``cov`` (``..., D, D``), or a clear error if not SPD."""
    factor, info = torch.linalg.cholesky_ex(cov)
    if torch.any(info != 0):
        raise ValueError(f"{name}: expected a symmetric positive definite covariance, got one that is not")
    return factor


# --------------------------------------------------------------------------- one Gaussian


def fit_mle(x) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood Gaussian for data ``x`` ``(N, D)``: ``(mean (D,), cov (D, D))``.

    ``cov`` divides by ``N`` (the MLE), not ``N - 1``; with ``N = 1`` it is all zeros.
    """
    x = _as_data(x)
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / x.shape[0]


def _log_prob(x: torch.Tensor, mean: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, L L^T)`` for ``x (N, D)``, ``mean (D,)``, Cholesky factor ``L (D, D)``."""
    d = x.shape[1]
    # (x - mu)^T Sigma^{-1} (x - mu) = |z|^2 with L z = x - mu;  log det Sigma = 2 sum log diag L.
    z = torch.linalg.solve_triangular(factor, (x - mean).T, upper=False)
    mahalanobis = (z**2).sum(dim=0)
    log_det = 2 * torch.log(torch.diagonal(factor)).sum()
    return -0.5 * (d * math.log(2 * math.pi) + log_det + mahalanobis)


def log_prob(x, mean, cov) -> torch.Tensor:
    """Per-point log density ``log N(x_n; mean, cov)`` in nats, shape ``(N,)``.

    ``x (N, D)``, ``mean (D,)``, ``cov (D, D)`` symmetric positive definite.
    """
    x = _as_data(x)
    mean, cov = _as_gaussian(mean, cov, x.dtype)
    if x.shape[1] != mean.shape[0]:
        raise ValueError(f"x: expected points of dimension D = {mean.shape[0]} (from mean), got shape {tuple(x.shape)}")
    return _log_prob(x, mean, _cholesky(cov))


def log_likelihood(x, mean, cov) -> torch.Tensor:
    """Total log-likelihood ``sum_n log N(x_n; mean, cov)`` in nats (a 0-d tensor)."""
    return log_prob(x, mean, cov).sum()


def fit_gradient_ascent(
    x, steps: int = 500, lr: float = 0.05, seed: Seed = 0
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Fit a Gaussian by gradient ascent on the average log-likelihood (Adam, autograd).

    Parameters ``mu`` and ``Sigma = L L^T``, with ``L`` lower triangular and positive
    diagonal ``exp(s)``. The start is ``mu ~ N(0, I)`` (seeded), ``L = I``. Returns
    ``(mean (D,), cov (D, D), history)`` where ``history[t]`` is the average
    log-likelihood per point (nats) at step ``t`` (before that step's update).
    """
    x = _as_data(x)
    steps = positive_int(steps, "steps")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    d = x.shape[1]
    generator = make_generator(seed)
    mean = torch.randn(d, generator=generator, dtype=x.dtype).requires_grad_()
    off_diagonal = torch.zeros(d, d, dtype=x.dtype, requires_grad=True)
    log_diagonal = torch.zeros(d, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([mean, off_diagonal, log_diagonal], lr=lr)

    def factor() -> torch.Tensor:
        return torch.tril(off_diagonal, diagonal=-1) + torch.diag(torch.exp(log_diagonal))

    history = []
    for _ in range(steps):
        average = _log_prob(x, mean, factor()).mean()
        optimizer.zero_grad()
        (-average).backward()
        optimizer.step()
        history.append(average.item())
    with torch.no_grad():
        lower = factor()
        return mean.detach().clone(), lower @ lower.T, history


def sample(mean, cov, n: int, seed: Seed = None) -> torch.Tensor:
    """``n`` samples ``(n, D)`` from ``N(mean, cov)`` as ``mean + L eps`` with ``cov = L L^T``."""
    mean, cov = _as_gaussian(mean, cov)
    n = positive_int(n, "n")
    eps = torch.randn(n, mean.shape[0], generator=make_generator(seed), dtype=mean.dtype)
    return mean + eps @ _cholesky(cov).T


def ellipse(mean, cov, n_std: float = 2.0, n_points: int = 100) -> torch.Tensor:
    """Points ``(n_points, 2)`` on the ``n_std``-sigma contour of a 2-D Gaussian (for plots)."""
    mean, cov = _as_gaussian(mean, cov)
    if mean.shape[0] != 2:
        raise ValueError(f"mean: expected a 2-D Gaussian (shape (2,)), got shape {tuple(mean.shape)}")
    angle = torch.linspace(0, 2 * math.pi, n_points, dtype=mean.dtype)
    circle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return mean + n_std * circle @ _cholesky(cov).T


def memorizer_log_prob(x, train, bandwidth: float = 1e-2) -> torch.Tensor:
    """Log density ``(N,)`` of a kernel density estimate centred on the training points.

    ``p(x) = 1/M sum_m N(x; train_m, bandwidth^2 I)``: a mixture with one tiny
    Gaussian on each of the ``M`` training points, a model that has memorized them.
    """
    x = _as_data(x)
    train = _as_data(train, "train").to(x.dtype)
    if x.shape[1] != train.shape[1]:
        raise ValueError(f"x: expected points of dimension D = {train.shape[1]} (from train), got shape {tuple(x.shape)}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth: expected a positive float, got {bandwidth!r}")
    m, d = train.shape
    squared = ((x[:, None, :] - train[None, :, :]) ** 2).sum(dim=2)  # exact, unlike cdist's matmul trick
    return (
        torch.logsumexp(-squared / (2 * bandwidth**2), dim=1)
        - math.log(m)
        - 0.5 * d * math.log(2 * math.pi * bandwidth**2)
    )


# --------------------------------------------------------------------------- mixtures


def _component_log_probs(x: torch.Tensor, weights, means, covs) -> torch.Tensor:
    """``log pi_k + log N(x_n; mu_k, Sigma_k)``, shape ``(N, K)``."""
    factors = _cholesky(covs, "covs")
    per_component = [_log_prob(x, mean, factor) for mean, factor in zip(means, factors)]
    return torch.stack(per_component, dim=1) + torch.log(weights)


@dataclass
class GaussianMixture:
    """``p(x) = sum_k weights_k N(x; means_k, covs_k)``.

    ``weights (K,)`` positive and summing to 1, ``means (K, D)``, ``covs (K, D, D)``
    symmetric positive definite. All three share one floating dtype.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self) -> None:
        self.weights = _as_tensor(self.weights, "weights", ndim=1)
        self.means = _as_tensor(self.means, "means", ndim=2).to(self.weights.dtype)
        self.covs = _as_tensor(self.covs, "covs", ndim=3).to(self.weights.dtype)
        k, d = self.means.shape
        if self.weights.shape[0] != k:
            raise ValueError(f"weights: expected shape (K,) = ({k},) to match means, got {tuple(self.weights.shape)}")
        if self.covs.shape != (k, d, d):
            raise ValueError(f"covs: expected shape (K, D, D) = ({k}, {d}, {d}), got {tuple(self.covs.shape)}")
        if torch.any(self.weights <= 0) or not math.isclose(self.weights.sum().item(), 1.0, abs_tol=1e-5):
            raise ValueError(f"weights: expected positive numbers summing to 1, got {self.weights.tolist()}")
        _cholesky(self.covs, "covs")

    @property
    def k(self) -> int:
        """Number of components ``K``."""
        return self.means.shape[0]

    def log_prob(self, x) -> torch.Tensor:
        """Per-point log density ``(N,)`` in nats: ``logsumexp_k (log pi_k + log N(x; mu_k, Sigma_k))``."""
        x = self._check_points(x)
        return torch.logsumexp(_component_log_probs(x, self.weights, self.means, self.covs), dim=1)

    def sample(self, n: int, seed: Seed = None, return_labels: bool = False):
        """``n`` samples ``(n, D)``: pick ``k ~ Categorical(weights)``, then ``x = mu_k + L_k eps``.

        With ``return_labels=True`` also returns the components ``(n,)`` int64.
        """
        n = positive_int(n, "n")
        generator = make_generator(seed)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        factors = _cholesky(self.covs, "covs")[labels]
        x = self.means[labels] + torch.einsum("nij,nj->ni", factors, eps)
        return (x, labels) if return_labels else x

    @classmethod
    def fit_em(cls, x, k: int, steps: int = 100, seed: Seed = 0, cov_floor: float = 1e-6):
        """Same as :func:`fit_em`."""
        return fit_em(x, k, steps=steps, seed=seed, cov_floor=cov_floor)

    def _check_points(self, x) -> torch.Tensor:
        x = _as_data(x).to(self.means.dtype)
        if x.shape[1] != self.means.shape[1]:
            raise ValueError(f"x: expected points of dimension D = {self.means.shape[1]}, got shape {tuple(x.shape)}")
        return x


def responsibilities(x, weights, means, covs) -> torch.Tensor:
    """E-step: ``r_nk = pi_k N(x_n; mu_k, Sigma_k) / sum_j pi_j N(x_n; mu_j, Sigma_j)``, shape ``(N, K)``.

    Computed in log space (a softmax over ``k``), so far-away points do not underflow.
    """
    mixture = GaussianMixture(weights, means, covs)
    x = mixture._check_points(x)
    return torch.softmax(_component_log_probs(x, mixture.weights, mixture.means, mixture.covs), dim=1)


def m_step(x, resp, cov_floor: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """M-step: refit each component to the points weighted by ``resp (N, K)``.

    ``N_k = sum_n r_nk``, ``pi_k = N_k / N``, ``mu_k = sum_n r_nk x_n / N_k``,
    ``Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + cov_floor I``.
    Returns ``(weights (K,), means (K, D), covs (K, D, D))``.
    """
    x = _as_data(x)
    resp = _as_tensor(resp, "resp", ndim=2).to(x.dtype)
    if resp.shape[0] != x.shape[0]:
        raise ValueError(f"resp: expected shape (N, K) with N = {x.shape[0]}, got {tuple(resp.shape)}")
    counts = resp.sum(dim=0).clamp_min(torch.finfo(x.dtype).tiny)
    means = resp.T @ x / counts[:, None]
    centred = x[None] - means[:, None]  # (K, N, D)
    covs = torch.einsum("nk,kni,knj->kij", resp, centred, centred) / counts[:, None, None]
    covs = covs + cov_floor * torch.eye(x.shape[1], dtype=x.dtype)
    return counts / x.shape[0], means, covs


def kmeans_plus_plus(x, k: int, seed: Seed = 0) -> torch.Tensor:
    """``k`` distinct-ish starting centres ``(k, D)`` chosen among the points (k-means++).

    The first is a uniformly random point; each next one is a point drawn with
    probability proportional to its squared distance to the nearest centre so far.
    """
    x = _as_data(x)
    k = positive_int(k, "k")
    if k > x.shape[0]:
        raise ValueError(f"k: expected at most N = {x.shape[0]} components (one point each), got {k}")
    generator = make_generator(seed)
    chosen = [torch.randint(0, x.shape[0], (1,), generator=generator).item()]
    for _ in range(k - 1):
        squared = (torch.cdist(x, x[chosen]) ** 2).min(dim=1).values
        if squared.sum() <= 0:  # every point sits on a centre already: pick any
            squared = torch.ones_like(squared)
        chosen.append(torch.multinomial(squared, 1, generator=generator).item())
    return x[chosen].clone()


def fit_em(
    x, k: int, steps: int = 100, seed: Seed = 0, cov_floor: float = 1e-6
) -> tuple[GaussianMixture, list[float]]:
    """Fit a ``k``-component :class:`GaussianMixture` to ``x (N, D)`` by EM.

    Start: k-means++ means, every covariance the data's MLE covariance (plus the
    floor), equal weights. ``history[t]`` is the average log-likelihood per point
    (nats) after ``t`` EM iterations (``len(history) == steps + 1``); it never
    decreases (up to the tiny ``cov_floor`` and float64 rounding, ~1e-14 once
    converged). EM runs in float64 for that reason; the mixture comes back in
    ``x``'s dtype.
    """
    x = _as_data(x)
    dtype, x = x.dtype, x.double()
    steps = positive_int(steps, "steps", minimum=0)
    if not cov_floor > 0:
        raise ValueError(f"cov_floor: expected a positive float, got {cov_floor!r}")
    d = x.shape[1]
    means = kmeans_plus_plus(x, k, seed)
    covs = (fit_mle(x)[1] + cov_floor * torch.eye(d, dtype=x.dtype)).expand(k, d, d).clone()
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    log_joint = _component_log_probs(x, weights, means, covs)
    history = [torch.logsumexp(log_joint, dim=1).mean().item()]
    for _ in range(steps):
        weights, means, covs = m_step(x, torch.softmax(log_joint, dim=1), cov_floor)
        log_joint = _component_log_probs(x, weights, means, covs)
        history.append(torch.logsumexp(log_joint, dim=1).mean().item())
    return GaussianMixture(weights.to(dtype), means.to(dtype), covs.to(dtype)), history
