"""Gaussian MLE (closed form and gradient ascent), sampling, memorizer, mixtures by EM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from dgm import gaussian
from dgm.data import toy_2d
from dgm.gaussian import GaussianMixture


def correlated_data(n: int = 300, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.5, -0.3, 0.2]], dtype=dtype)
    return torch.randn(n, 3, generator=generator, dtype=dtype) @ mixing + torch.tensor([1.0, -2.0, 3.0], dtype=dtype)


# --------------------------------------------------------------------------- one Gaussian


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mle_is_the_mean_and_biased_covariance(seed):
    data = np.random.default_rng(seed).normal(size=(50, 4)) * [1, 2, 3, 4]
    mean, cov = gaussian.fit_mle(data)
    assert mean.shape == (4,) and cov.shape == (4, 4) and mean.dtype == torch.float64
    np.testing.assert_allclose(mean.numpy(), data.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(data, rowvar=False, bias=True), atol=1e-12)


def test_mle_of_one_point_has_zero_covariance_and_ints_become_floats():
    mean, cov = gaussian.fit_mle(torch.tensor([[1, 2]]))
    assert mean.is_floating_point() and torch.equal(mean, torch.tensor([1.0, 2.0]))
    assert torch.equal(cov, torch.zeros(2, 2))


def test_mle_maximizes_the_likelihood():
    x = correlated_data()
    mean, cov = gaussian.fit_mle(x)
    best = gaussian.log_likelihood(x, mean, cov)
    for scale in (0.9, 1.1):
        assert gaussian.log_likelihood(x, mean, cov * scale) < best
    assert gaussian.log_likelihood(x, mean + 0.05, cov) < best


def test_log_prob_matches_torch_distributions():
    x = correlated_data(40, seed=1)
    mean, cov = gaussian.fit_mle(correlated_data(200, seed=2))
    expected = MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)
    ours = gaussian.log_prob(x, mean, cov)
    assert ours.shape == (40,)
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(gaussian.log_likelihood(x, mean, cov), expected.sum())


def test_log_prob_of_a_standard_normal_at_zero():
    value = gaussian.log_prob(np.zeros((1, 2)), np.zeros(2), np.eye(2))
    assert math.isclose(value.item(), -math.log(2 * math.pi))


def test_gradient_ascent_converges_to_the_closed_form():
    x = correlated_data()
    mean, cov = gaussian.fit_mle(x)
    fitted_mean, fitted_cov, history = gaussian.fit_gradient_ascent(x, steps=600, lr=0.05, seed=0)
    assert len(history) == 600
    torch.testing.assert_close(fitted_mean, mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(fitted_cov, cov, atol=1e-4, rtol=0)
    assert history[-1] > history[0]
    assert math.isclose(history[-1], gaussian.log_likelihood(x, mean, cov).item() / len(x), abs_tol=1e-6)


def test_gradient_ascent_repeats_with_a_seed():
    x = correlated_data(50)
    first, second = gaussian.fit_gradient_ascent(x, 20, 0.1, seed=5), gaussian.fit_gradient_ascent(x, 20, 0.1, seed=5)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]) and first[2] == second[2]


def test_samples_have_the_right_mean_and_covariance():
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    n = 40_000
    samples = gaussian.sample(mean, cov, n, seed=0)
    assert samples.shape == (n, 2) and samples.dtype == torch.float64
    sample_mean, sample_cov = gaussian.fit_mle(samples)
    standard_error = torch.sqrt(torch.diagonal(cov) / n)
    assert torch.all((sample_mean - mean).abs() < 4 * standard_error)
    # Var of a sample covariance entry is (S_ij^2 + S_ii S_jj) / n.
    cov_error = torch.sqrt((cov**2 + torch.outer(torch.diagonal(cov), torch.diagonal(cov))) / n)
    assert torch.all((sample_cov - cov).abs() < 4 * cov_error)


def test_seeded_sample_repeats_exactly():
    mean, cov = gaussian.fit_mle(correlated_data())
    assert torch.equal(gaussian.sample(mean, cov, 10, seed=7), gaussian.sample(mean, cov, 10, seed=7))
    assert not torch.equal(gaussian.sample(mean, cov, 10, seed=7), gaussian.sample(mean, cov, 10, seed=8))


def test_ellipse_lies_on_the_contour():
    mean, cov = torch.tensor([1.0, 2.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    points = gaussian.ellipse(mean, cov, n_std=2.0, n_points=50)
    centred = points - mean
    mahalanobis = (centred @ torch.linalg.inv(cov) * centred).sum(dim=1)
    torch.testing.assert_close(mahalanobis, torch.full((50,), 4.0))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: gaussian.fit_mle(torch.zeros(0, 2)), ValueError, r"x: expected at least one point"),
        (lambda: gaussian.fit_mle(torch.zeros(5)), ValueError, r"x: expected a 2-D array, got shape \(5,\)"),
        (lambda: gaussian.fit_mle([[1.0, 2.0]]), TypeError, "x: expected a torch tensor or NumPy array, got list"),
        (lambda: gaussian.log_prob(torch.zeros(3, 2), torch.zeros(3), torch.eye(3)), ValueError, "D = 3"),
        (lambda: gaussian.log_prob(torch.zeros(3, 2), torch.zeros(2), torch.eye(3)), ValueError, r"cov: expected shape \(D, D\) = \(2, 2\)"),
        (lambda: gaussian.log_prob(torch.zeros(3, 2), torch.zeros(2), -torch.eye(2)), ValueError, "symmetric positive definite"),
        (lambda: gaussian.sample(torch.zeros(2), torch.eye(2), 0), ValueError, "n: expected an int >= 1"),
        (lambda: gaussian.fit_gradient_ascent(torch.zeros(3, 2), 0, 0.1), ValueError, "steps: expected an int >= 1"),
        (lambda: gaussian.fit_gradient_ascent(torch.zeros(3, 2), 5, -1.0), ValueError, "lr: expected a positive"),
        (lambda: gaussian.memorizer_log_prob(torch.zeros(3, 2), torch.zeros(4, 2), 0.0), ValueError, "bandwidth"),
        (lambda: gaussian.ellipse(torch.zeros(3), torch.eye(3)), ValueError, "mean: expected a 2-D Gaussian"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------- memorizer


def test_memorizer_is_a_density_that_loves_its_training_set():
    train, test = toy_2d("blobs", 200, seed=0), toy_2d("blobs", 200, seed=1)
    train_ll = gaussian.memorizer_log_prob(train, train, bandwidth=0.01).mean()
    test_ll = gaussian.memorizer_log_prob(test, train, bandwidth=0.01).mean()
    gaussian_ll = gaussian.log_prob(test, *gaussian.fit_mle(train)).mean()
    assert train_ll > 0 > gaussian_ll > test_ll
    # Each training point gets at least the mass of its own kernel: 1/M * N(0; 0, h^2 I).
    floor = -math.log(200) - math.log(2 * math.pi * 0.01**2)
    assert torch.all(gaussian.memorizer_log_prob(train, train, bandwidth=0.01) >= floor - 1e-4)
    # One training point, bandwidth h: the density is exactly N(x; x_1, h^2 I).
    one = torch.tensor([[0.5, -1.0]])
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(gaussian.memorizer_log_prob(x, one, 0.3), gaussian.log_prob(x, one[0], 0.09 * torch.eye(2)))


# --------------------------------------------------------------------------- mixtures


def blob_mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([0.2, 0.3, 0.5]),
        torch.tensor([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]]),
        torch.stack([0.25 * torch.eye(2), torch.tensor([[0.2, 0.1], [0.1, 0.3]]), 0.36 * torch.eye(2)]),
    )


def test_mixture_log_prob_is_the_log_of_the_weighted_sum():
    mixture = blob_mixture()
    x = toy_2d("blobs", 30, seed=3)
    expected = sum(
        weight * torch.exp(MultivariateNormal(mean, cov).log_prob(x))
        for weight, mean, cov in zip(mixture.weights, mixture.means, mixture.covs)
    )
    torch.testing.assert_close(mixture.log_prob(x), torch.log(expected))


def test_mixture_samples_follow_the_weights_and_repeat():
    mixture = blob_mixture()
    x, labels = mixture.sample(20_000, seed=0, return_labels=True)
    assert x.shape == (20_000, 2)
    frequencies = torch.bincount(labels, minlength=3) / 20_000
    assert torch.all((frequencies - mixture.weights).abs() < 4 * torch.sqrt(mixture.weights * (1 - mixture.weights) / 20_000))
    mean, cov = gaussian.fit_mle(x[labels == 1])
    torch.testing.assert_close(mean, mixture.means[1], atol=0.03, rtol=0)
    torch.testing.assert_close(cov, mixture.covs[1], atol=0.03, rtol=0)
    assert torch.equal(mixture.sample(50, seed=4), mixture.sample(50, seed=4))


def test_responsibilities_are_posteriors_that_sum_to_one():
    mixture = blob_mixture()
    x = torch.tensor([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0], [0.0, 0.0], [100.0, 100.0]])
    resp = gaussian.responsibilities(x, mixture.weights, mixture.means, mixture.covs)
    assert resp.shape == (5, 3) and torch.all(torch.isfinite(resp))
    torch.testing.assert_close(resp.sum(dim=1), torch.ones(5))
    assert torch.equal(resp[:3].argmax(dim=1), torch.tensor([0, 1, 2]))
    joint = torch.stack(
        [w * torch.exp(MultivariateNormal(m, c).log_prob(x[:4])) for w, m, c in zip(mixture.weights, mixture.means, mixture.covs)],
        dim=1,
    )
    torch.testing.assert_close(resp[:4], joint / joint.sum(dim=1, keepdim=True))


def test_m_step_with_hard_assignments_fits_each_group():
    x = correlated_data(60)
    resp = torch.zeros(60, 2, dtype=torch.float64)
    resp[:20, 0] = 1
    resp[20:, 1] = 1
    weights, means, covs = gaussian.m_step(x, resp, cov_floor=1e-6)
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    for k, group in enumerate((x[:20], x[20:])):
        mean, cov = gaussian.fit_mle(group)
        torch.testing.assert_close(means[k], mean)
        torch.testing.assert_close(covs[k], cov + 1e-6 * torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize("seed", range(5))
def test_em_log_likelihood_never_decreases(seed):
    x = toy_2d("blobs", 400, seed=seed)
    for k in (2, 3, 5):
        _, history = gaussian.fit_em(x, k, steps=60, seed=seed)
        assert len(history) == 61
        # Monotone up to float64 rounding once EM has converged (differences ~1e-14).
        assert np.all(np.diff(history) >= -1e-10), f"k={k}: EM decreased the log-likelihood"


def test_em_on_three_blobs_beats_one_gaussian_on_held_out_data():
    train, test = toy_2d("blobs", 600, seed=0), toy_2d("blobs", 600, seed=1)
    mixture, history = GaussianMixture.fit_em(train, 3, steps=100, seed=0)
    assert mixture.means.dtype == torch.float32
    mixture_ll = mixture.log_prob(test).mean().item()
    single_ll = gaussian.log_prob(test, *gaussian.fit_mle(train)).mean().item()
    assert mixture_ll > single_ll + 0.5
    assert math.isclose(history[-1], mixture.log_prob(train).mean().item(), abs_tol=1e-4)
    found = mixture.means[torch.argsort(mixture.means[:, 0])]
    torch.testing.assert_close(found, torch.tensor([[-2.0, -1.0], [0.0, 2.0], [2.0, -1.0]]), atol=0.15, rtol=0)


def test_em_repeats_with_a_seed_and_components_do_not_collapse():
    x = toy_2d("blobs", 200, seed=0)
    first, _ = gaussian.fit_em(x, 3, steps=10, seed=1)
    second, _ = gaussian.fit_em(x, 3, steps=10, seed=1)
    assert torch.equal(first.means, second.means)
    # More components than distinct points: the floor keeps every covariance SPD.
    duplicated = torch.tensor([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    mixture, history = gaussian.fit_em(duplicated, 3, steps=20, seed=0, cov_floor=1e-3)
    assert torch.all(torch.linalg.eigvalsh(mixture.covs) >= 1e-3 * 0.99)
    assert all(math.isfinite(value) for value in history)


def test_kmeans_plus_plus_picks_distinct_data_points():
    x = toy_2d("blobs", 300, seed=0)
    centres = gaussian.kmeans_plus_plus(x, 3, seed=0)
    assert centres.shape == (3, 2)
    assert all(torch.any(torch.all(x == centre, dim=1)) for centre in centres)
    assert torch.pdist(centres).min() > 1.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gaussian.fit_em(torch.zeros(4, 2), 5), "k: expected at most N = 4"),
        (lambda: gaussian.fit_em(torch.zeros(4, 2), 0), "k: expected an int >= 1"),
        (lambda: gaussian.fit_em(torch.zeros(4, 2), 2, steps=-1), "steps: expected an int >= 0"),
        (lambda: gaussian.fit_em(torch.zeros(4, 2), 2, cov_floor=0.0), "cov_floor"),
        (lambda: GaussianMixture(torch.tensor([0.5, 0.6]), torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2)), "weights: expected positive numbers summing to 1"),
        (lambda: GaussianMixture(torch.tensor([1.0]), torch.zeros(2, 2), torch.eye(2)[None]), r"weights: expected shape \(K,\) = \(2,\)"),
        (lambda: GaussianMixture(torch.tensor([0.5, 0.5]), torch.zeros(2, 2), torch.eye(3).expand(2, 3, 3)), r"covs: expected shape \(K, D, D\)"),
        (lambda: blob_mixture().log_prob(torch.zeros(4, 3)), "x: expected points of dimension D = 2"),
        (lambda: gaussian.m_step(torch.zeros(4, 2), torch.ones(3, 2)), r"resp: expected shape \(N, K\) with N = 4"),
    ],
)
def test_mixture_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
