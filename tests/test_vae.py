"""dgm.vae: PCA, autoencoders, the VAE's KL, reparameterization and bounds, the VQ-VAE quantizer."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from conftest import shared_mnist
from dgm.device import make_generator
from dgm.train import fit
from dgm.vae import (
    PCA,
    VAE,
    Autoencoder,
    VectorQuantizer,
    corrupt,
    denoising_loss,
    elbo,
    evaluate_bound,
    gaussian_kl,
    importance_weighted_log_likelihood,
    interpolate,
    reconstruction_loss,
    reparameterize,
    sample,
    vae_loss,
)


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random binary 28x28 images ``(n, 1, 28, 28)`` in {0, 1}: sparse strokes, roughly like digits."""
    g = make_generator(seed)
    return torch.bernoulli(0.3 * torch.rand(n, 1, 28, 28, generator=g), generator=g)


def tiny_vae(latent_dim: int = 4, likelihood: str = "bernoulli", seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(latent_dim=latent_dim, hidden=32, likelihood=likelihood)


def constant_decoder_vae(mu: float, logvar: float, latent_dim: int = 2) -> tuple[VAE, torch.Tensor, torch.Tensor]:
    """A VAE whose decoder ignores z (so ``p(x) = p(x | z)`` for every z, known exactly) and whose
    encoder outputs the same ``q = N(mu, exp(logvar) I)`` for every image.

    Returns the model, 8 binary images and their exact ``log p(x)`` ``(8,)``."""
    model = tiny_vae(latent_dim)
    with torch.no_grad():
        model.decoder[0].weight.zero_()
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.copy_(torch.tensor([mu] * latent_dim + [logvar] * latent_dim))
    x = binary_images(8)
    logits = model.decode(torch.zeros(len(x), latent_dim))
    log_px = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    return model, x, log_px.detach()


# --------------------------------------------------------------------------- KL and reparameterization


def test_kl_of_the_prior_against_itself_is_zero_and_matches_hand_values():
    zeros = torch.zeros(3, 5)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(3))
    # one dim N(1, 1): 0.5 * 1^2; one dim N(0, 2): 0.5 * (2 - 1 - log 2)
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 + 0.5 * (1 - math.log(2)), abs=1e-6)


def test_closed_form_kl_matches_monte_carlo():
    g = make_generator(0)
    mu = torch.randn(2, 3, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(2, 3, generator=g, dtype=torch.float64)
    z = reparameterize(mu.expand(200_000, 2, 3), logvar.expand(200_000, 2, 3), generator=1)
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (200000, 2): KL = E_q[log q - log p]
    estimate, standard_error = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(log_ratio))
    # Within 4 standard errors of the Monte Carlo mean (about 0.005 nats here).
    assert ((estimate - gaussian_kl(mu, logvar)).abs() < 4 * standard_error).all()


def test_reparameterized_samples_have_the_right_moments_and_pass_gradients():
    n = 200_000
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25)], dtype=torch.float64, requires_grad=True)
    z = reparameterize(mu.expand(n, 2), logvar.expand(n, 2), generator=0)
    # mean within 4 standard errors (sigma / sqrt(n) <= 0.0023); variance within 2% (its SE is ~0.3%)
    assert torch.allclose(z.mean(0), mu.detach(), atol=4 / math.sqrt(n))
    assert torch.allclose(z.var(0), torch.tensor([1.0, 0.25], dtype=torch.float64), rtol=0.02)
    z.sum().backward()
    # dz/dmu = 1 and dz/dlogvar = 0.5 * sigma * eps = 0.5 * (z - mu) for every sample
    assert torch.equal(mu.grad, torch.full((2,), float(n), dtype=torch.float64))
    assert torch.allclose(logvar.grad, 0.5 * (z - mu).detach().sum(0))
    assert (logvar.grad.abs() > 0).all()


def test_seeded_reparameterize_repeats_exactly():
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(reparameterize(mu, logvar, 7), reparameterize(mu, logvar, make_generator(7)))
    assert not torch.equal(reparameterize(mu, logvar, 7), reparameterize(mu, logvar, 8))
    g = make_generator(7)
    assert not torch.equal(reparameterize(mu, logvar, g), reparameterize(mu, logvar, g)), "a generator advances"


def test_kl_and_reparameterize_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="logvar"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="logvar"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(3))


# --------------------------------------------------------------------------- the VAE and its bounds


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_likelihood_is_the_decoders_distribution(likelihood):
    model = tiny_vae(likelihood=likelihood)
    x = binary_images(5) if likelihood == "bernoulli" else torch.rand(5, 1, 28, 28, generator=make_generator(0))
    z = torch.randn(5, 4, generator=make_generator(1))
    out = model.decode(z)
    assert out.shape == (5, 1, 28, 28)
    if likelihood == "bernoulli":
        expected = Bernoulli(logits=out).log_prob(x).flatten(1).sum(1)
        assert torch.allclose(model.mean(z), torch.sigmoid(out))
    else:
        assert 0 <= out.min() and out.max() <= 1, "the Gaussian decoder's mean is in [0, 1]"
        expected = Normal(out, model.std).log_prob(x).flatten(1).sum(1)
        assert torch.equal(model.mean(z), out)
    assert torch.allclose(model.log_likelihood(x, z), expected, atol=1e-3)


def test_bounds_are_exact_when_q_is_the_prior_and_the_decoder_ignores_z():
    # q(z|x) = p(z) = N(0, I) and p(x|z) = p(x): every weight p(x, z) / q(z|x) equals p(x).
    model, x, log_px = constant_decoder_vae(mu=0.0, logvar=0.0)
    assert torch.allclose(elbo(model, x, generator=0), log_px, atol=1e-4)
    for k in (1, 10, 100):
        assert torch.allclose(importance_weighted_log_likelihood(model, x, k, generator=0), log_px, atol=1e-4)


def test_iw_bound_converges_to_log_px_while_the_elbo_misses_it_by_the_kl():
    # q = N(0.5, I) in 2 dims, decoder ignoring z: ELBO = log p(x) - KL = log p(x) - 0.25 exactly, and
    # IW_k = log p(x) + log mean_j p(z_j)/q(z_j). Var of p/q under q is e^{0.5} - 1 = 0.65, so for k = 1000
    # each image is within ~0.026 nats (1 SE) of log p(x); the mean of 8 images within 0.03 is ~3 SE.
    model, x, log_px = constant_decoder_vae(mu=0.5, logvar=0.0)
    assert torch.allclose(elbo(model, x, generator=0), log_px - 0.25, atol=1e-4)
    iw = importance_weighted_log_likelihood(model, x, 1000, generator=0)
    assert (iw - log_px).mean().abs() < 0.03
    assert ((iw - log_px).abs() < 0.15).all()


def sharp_tiny_vae() -> VAE:
    """A random tiny VAE whose decoder depends strongly on z, so that the bounds differ by nats."""
    model = tiny_vae()
    with torch.no_grad():
        model.decoder[0].weight.mul_(3.0)
    return model


@torch.no_grad()
def test_iw_bound_grows_with_k_and_stays_above_the_elbo():
    model, x = sharp_tiny_vae(), binary_images(64)
    seeds = range(5)
    mean_elbo = torch.stack([elbo(model, x, s) for s in seeds]).mean()
    mean_iw = {
        k: torch.stack([importance_weighted_log_likelihood(model, x, k, s) for s in seeds]).mean() for k in (1, 10, 100)
    }
    # Measured: ELBO ~ IW_1 ~ -587, IW_10 ~ -557, IW_100 ~ -551 nats (standard errors < 1.9 nats);
    # the theorem (Burda et al.) says E[IW_1] <= E[IW_10] <= E[IW_100] <= log p(x).
    assert mean_iw[1] + 10 < mean_iw[10]
    assert mean_iw[10] + 2 < mean_iw[100]
    assert mean_elbo + 10 < mean_iw[10]


@torch.no_grad()
def test_iw_with_one_sample_is_the_elbo_in_expectation():
    model, x = sharp_tiny_vae(), binary_images(64)
    mu, logvar = model.encode(x)
    differences = []
    for seed in range(50):
        # Same seed, same z: the two differ only by log p(z) - log q(z|x) + KL, whose mean under q is 0.
        z = reparameterize(mu, logvar, seed)
        gap = Normal(0.0, 1.0).log_prob(z).sum(1) - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
        difference = importance_weighted_log_likelihood(model, x, 1, seed) - elbo(model, x, seed)
        assert torch.allclose(difference, gap + gaussian_kl(mu, logvar), atol=1e-3)
        differences.append(difference)
    differences = torch.cat(differences)
    assert differences.mean().abs() < 4 * differences.std() / math.sqrt(len(differences))


@torch.no_grad()
def test_chunking_changes_memory_not_the_answer():
    model, x = tiny_vae(), binary_images(6)
    reference = importance_weighted_log_likelihood(model, x, 50, generator=3)
    for chunk in (1, 6 * 7, 10_000):  # one sample per pass, 7 per pass, all at once
        assert torch.allclose(importance_weighted_log_likelihood(model, x, 50, 3, chunk=chunk), reference)


@torch.no_grad()
def test_evaluate_bound_is_the_mean_negative_bound():
    model, x = tiny_vae(), binary_images(10)
    assert evaluate_bound(model, x, seed=4) == pytest.approx(-elbo(model, x, 4).mean().item(), rel=1e-6)
    assert evaluate_bound(model, x, k=20, seed=4) == pytest.approx(
        -importance_weighted_log_likelihood(model, x, 20, 4).mean().item(), rel=1e-6
    )


def test_sample_and_interpolate_decode_the_right_latents():
    model = tiny_vae()
    images = sample(model, 6, seed=2)
    assert images.shape == (6, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert torch.equal(images, sample(model, 6, seed=2))
    with torch.no_grad():
        assert torch.allclose(images, model.mean(torch.randn(6, 4, generator=make_generator(2))))
        x = binary_images(2)
        path = interpolate(model, x[0], x[1], steps=5)
        mu, _ = model.encode(x)
        assert path.shape == (5, 1, 28, 28)
        assert torch.allclose(path[0], model.mean(mu[:1])[0]) and torch.allclose(path[-1], model.mean(mu[1:])[0])
        assert torch.allclose(path[2], model.mean(mu.mean(0, keepdim=True))[0], atol=1e-6)


def test_vae_functions_reject_bad_input():
    model, x = tiny_vae(), binary_images(3)
    for bad in (torch.zeros(3, 784), torch.zeros(3, 3, 28, 28), torch.zeros(3, 1, 32, 32)):
        with pytest.raises(ValueError, match=r"x: expected images of shape \(B, 1, 28, 28\)"):
            model.encode(bad)
    with pytest.raises(ValueError, match=r"z: expected latent codes of shape \(B, 4\)"):
        model.decode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="z: expected 3 codes"):
        model.log_likelihood(x, torch.zeros(2, 4))
    for k in (0, -1, 2.0):
        with pytest.raises(ValueError, match="k: expected a positive int"):
            importance_weighted_log_likelihood(model, x, k)
    with pytest.raises(ValueError, match="chunk"):
        importance_weighted_log_likelihood(model, x, 10, chunk=0)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="std"):
        VAE(likelihood="gaussian", std=0.0)
    with pytest.raises(ValueError, match="hidden"):
        Autoencoder(hidden=[])
    with pytest.raises(ValueError, match="n: expected a positive int"):
        sample(model, 0)
    with pytest.raises(ValueError, match="steps"):
        interpolate(model, x[0], x[1], steps=1)
    with pytest.raises(ValueError, match="x_b"):
        interpolate(model, x[0], x[1:])


# --------------------------------------------------------------------------- training a tiny batch


@pytest.mark.parametrize(
    "make, loss_fn",
    [
        (lambda: Autoencoder(latent_dim=8, hidden=64), reconstruction_loss),
        (
            lambda: Autoencoder(latent_dim=8, hidden=64),
            functools.partial(denoising_loss, noise_std=0.3, generator=make_generator(0)),
        ),
        (lambda: VAE(latent_dim=8, hidden=64), functools.partial(vae_loss, generator=make_generator(0))),
    ],
    ids=["autoencoder", "denoising", "vae"],
)
def test_models_overfit_a_tiny_batch(make, loss_fn):
    # 16 images: at initialisation the loss is ~ 784 * log 2 = 543 nats; 150 steps of Adam must
    # take it below 30% of that (measured: 5, 60 and 116 nats; the VAE keeps a KL term and noise).
    torch.manual_seed(0)
    model, x = make(), binary_images(16)
    result = fit(model, loss_fn, itertools.repeat((x,)), steps=150, lr=3e-3, progress=False)
    assert result.losses[0] > 400
    assert sum(result.losses[-10:]) / 10 < 0.3 * result.losses[0]


@torch.no_grad()
def test_losses_are_bernoulli_nats_of_the_clean_image():
    torch.manual_seed(0)
    model, x = Autoencoder(latent_dim=3, hidden=16), binary_images(4)

    def nats(inputs):  # -log p(x | model(inputs)) per image, averaged over the batch
        return -Bernoulli(logits=model(inputs)).log_prob(x).flatten(1).sum(1).mean()

    assert torch.allclose(reconstruction_loss(model, (x,)), nats(x))
    # the denoising loss feeds the corrupted image but scores the clean one
    assert torch.allclose(denoising_loss(model, (x,), noise_std=0.4, generator=5), nats(corrupt(x, 0.4, seed=5)))
    assert not torch.allclose(denoising_loss(model, (x,), noise_std=0.4, generator=5), nats(x))
    assert torch.allclose(denoising_loss(model, (x,), noise_std=0.0), nats(x))


def test_autoencoder_shapes():
    model, x = Autoencoder(latent_dim=3, hidden=[16, 8]), binary_images(2)
    assert model.encode(x).shape == (2, 3) and model(x).shape == (2, 1, 28, 28)


def test_corrupt_adds_seeded_clamped_gaussian_noise():
    x = torch.full((4, 1, 28, 28), 0.5)
    noisy = corrupt(x, 0.1, seed=0)
    assert torch.equal(noisy, corrupt(x, 0.1, seed=0)) and not torch.equal(noisy, corrupt(x, 0.1, seed=1))
    # 0.5 +- 5 sigma stays inside [0, 1]: the noise is exactly Gaussian here (3136 draws; SE of the std ~1.3%)
    assert abs((noisy - x).mean()) < 4 * 0.1 / math.sqrt(x.numel())
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.06)
    wide = corrupt(x, 5.0, seed=0)
    assert wide.min() == 0 and wide.max() == 1, "large noise is clamped to [0, 1]"
    assert torch.equal(corrupt(x, 0.0, seed=0), x)
    with pytest.raises(ValueError, match="noise_std"):
        corrupt(x, -0.1)


# --------------------------------------------------------------------------- PCA


def test_full_rank_pca_reconstructs_exactly():
    x = torch.randn(50, 10, generator=make_generator(0), dtype=torch.float64) @ torch.randn(10, 10, dtype=torch.float64)
    pca = PCA().fit(x)
    assert pca.components.shape == (10, 10) and pca.mean.shape == (10,)
    assert torch.allclose(pca.reconstruct(pca.project(x)), x, atol=1e-10)
    assert torch.allclose(pca.reconstruct(pca.project(x, 10)), x, atol=1e-10)
    # fewer components: strictly worse, and the residual is orthogonal to the kept components
    residual = x - pca.reconstruct(pca.project(x, 3))
    assert residual.norm() > 1e-3
    assert torch.allclose(residual @ pca.components[:3].T, torch.zeros(50, 3, dtype=torch.float64), atol=1e-10)


def test_pca_components_are_orthonormal_and_variances_sorted_and_right():
    g = make_generator(1)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64) * torch.tensor([5.0, 3, 2, 1, 0.5, 0.1], dtype=torch.float64)
    x = x @ torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0] + 3.0
    pca = PCA().fit(x)
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(6, dtype=torch.float64), atol=1e-12)
    assert (pca.explained_variance[:-1] >= pca.explained_variance[1:]).all()
    codes = pca.project(x)
    assert torch.allclose(codes.var(0), pca.explained_variance, rtol=1e-10)
    assert torch.allclose(torch.cov(codes.T), torch.diag(pca.explained_variance), atol=1e-10), "codes are uncorrelated"
    assert pca.explained_variance_ratio.sum().item() == pytest.approx(1.0, abs=1e-12)
    # the signs are fixed, so the components do not depend on the SVD's arbitrary choice
    assert torch.allclose(PCA().fit(-x).components, pca.components, atol=1e-10)


def test_pca_of_a_plane_in_ten_dimensions():
    g = make_generator(2)
    basis = torch.randn(2, 10, generator=g, dtype=torch.float64)
    x = torch.randn(100, 2, generator=g, dtype=torch.float64) @ basis + torch.randn(10, generator=g, dtype=torch.float64)
    pca = PCA().fit(x.view(100, 1, 2, 5))  # images are flattened
    assert pca.explained_variance_ratio[:2].sum().item() == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(pca.reconstruct(pca.project(x, 2)), x, atol=1e-10)


def test_pca_rejects_bad_input():
    with pytest.raises(RuntimeError, match="fit"):
        PCA().project(torch.zeros(3, 4))
    pca = PCA().fit(torch.randn(20, 4, generator=make_generator(0)))
    for k in (0, 5):
        with pytest.raises(ValueError, match=r"k: expected an int in \[1, 4\]"):
            pca.project(torch.zeros(3, 4), k)
    with pytest.raises(ValueError, match="x: expected 4 features"):
        pca.project(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="codes"):
        pca.reconstruct(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="at least 2 rows"):
        PCA().fit(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="every row is the same"):
        PCA().fit(torch.ones(5, 4))


# --------------------------------------------------------------------------- VQ-VAE quantizer


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 3)], ids=["grid", "vectors"])
def test_quantizer_picks_the_nearest_code_and_returns_it(shape):
    torch.manual_seed(0)
    quantizer = VectorQuantizer(num_codes=6, code_dim=3)
    with torch.no_grad():
        quantizer.codebook.weight.normal_()
    z_e = torch.randn(shape)
    out = quantizer(z_e)
    vectors = z_e.movedim(1, -1).reshape(-1, 3)
    brute_force = torch.cdist(vectors, quantizer.codebook.weight).argmin(1)
    assert out.indices.shape == (shape[0], *shape[2:])
    assert torch.equal(out.indices.flatten(), brute_force)
    assert torch.allclose(out.quantized.movedim(1, -1).reshape(-1, 3), quantizer.codebook.weight[brute_force], atol=1e-6)
    nearest = (vectors - quantizer.codebook.weight[brute_force]).pow(2).mean()
    assert out.codebook_loss.item() == pytest.approx(nearest.item(), rel=1e-5)
    assert out.commitment_loss.item() == pytest.approx(nearest.item(), rel=1e-5)


def test_straight_through_gradient_is_the_identity():
    quantizer = VectorQuantizer(num_codes=4, code_dim=2)
    z_e = torch.randn(3, 2, 4, 4, requires_grad=True)
    quantizer(z_e).quantized.sum().backward()
    assert torch.equal(z_e.grad, torch.ones_like(z_e))
    assert quantizer.codebook.weight.grad is None, "the quantized output sends no gradient to the codebook"


def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_encoder():
    quantizer = VectorQuantizer(num_codes=4, code_dim=2)
    z_e = torch.randn(3, 2, 4, 4, requires_grad=True)
    out = quantizer(z_e)
    out.codebook_loss.backward(retain_graph=True)
    assert z_e.grad is None and quantizer.codebook.weight.grad.abs().sum() > 0
    quantizer.codebook.weight.grad = None
    out.commitment_loss.backward()
    assert z_e.grad.abs().sum() > 0 and quantizer.codebook.weight.grad is None


def test_quantizer_rejects_the_wrong_channel_count():
    quantizer = VectorQuantizer(num_codes=4, code_dim=2)
    for bad in (torch.zeros(3, 5, 4, 4), torch.zeros(3, 5), torch.zeros(3, 2, 4)):
        with pytest.raises(ValueError, match=r"z_e: expected shape \(B, 2, H, W\) or \(B, 2\)"):
            quantizer(bad)


# --- the shipped model ----------------------------------------------------------------------


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_shipped_vae_scores_what_its_card_says():
    from dgm import zoo
    from dgm.data import TEST_BINARIZATION_SEED, binarized_mnist

    card = zoo.card("vae-mnist")
    images, _ = binarized_mnist("test", seed=TEST_BINARIZATION_SEED)
    model = zoo.load("vae-mnist", device="cpu")
    negative_elbo = evaluate_bound(model, images[::20])
    iw_nll = evaluate_bound(model, images[::100], k=200)
    # every 20th of the card's 10,000 test digits: the mean moves by a nat or two at most.
    assert abs(negative_elbo - card["metrics"]["test_negative_elbo_nats"]) < 3.0, (negative_elbo, card["metrics"])
    assert card["metrics"]["test_negative_elbo_nats"] <= 95.0
    assert iw_nll < negative_elbo, "the importance-weighted bound is tighter than the ELBO"
