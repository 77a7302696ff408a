"""Representation learning and VAEs: PCA -> autoencoder -> denoising autoencoder -> VAE -> VQ-VAE.

**PCA.** Centre the data ``X`` (``N x D``) and take its SVD, ``X - mu = U S V^T``.
The rows of ``V^T`` are orthonormal directions sorted by the variance along them,
``lambda_i = S_i^2 / (N - 1)``. The code of ``x`` is ``c = V_k^T (x - mu)`` (its first
``k`` coordinates) and the reconstruction ``x_hat = mu + V_k c`` is the orthogonal
projection of ``x`` onto the best-fitting ``k``-dimensional plane; with all
components it is ``x`` itself.

**Autoencoder.** Replace the two linear maps by networks: an encoder ``z = f(x)``
and a decoder ``x_hat = g(z)``, trained to reconstruct. Pixels are in [0, 1], so
the decoder outputs one Bernoulli logit per pixel and the loss is the binary cross
entropy ``-log p(x | z)`` summed over pixels: nats per image.

**Denoising autoencoder.** The same network, fed a corrupted image
``x_tilde = clamp(x + sigma * eps, 0, 1)`` and asked for the clean ``x``: it learns to
map points near the data back onto it (a projection onto the data manifold).

**VAE.** A latent-variable model ``p(z) = N(0, I)``, ``p(x | z)`` given by the decoder,
with an encoder ``q(z | x) = N(mu(x), diag sigma^2(x))`` that approximates the posterior.
Every ``q`` gives a lower bound on the log-likelihood, the ELBO::

    log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z)).

The KL between two Gaussians is closed form; the expectation is estimated with one
sample drawn by the **reparameterization** ``z = mu + sigma * eps``, ``eps ~ N(0, I)``,
so that gradients flow to ``mu`` and ``sigma``. Averaging the weights
``w_j = p(x, z_j) / q(z_j | x)`` of ``k`` samples inside the log gives a tighter bound
(importance weighting, Burda et al. 2016) that grows with ``k`` towards ``log p(x)``.

**VQ-VAE quantizer.** A discrete bottleneck: each encoder vector ``z_e`` is replaced by its
nearest entry ``z_q`` of a learned codebook of ``K`` vectors. The argmin has no
gradient, so the decoder's gradient is copied straight through to ``z_e``; the codebook
is pulled towards the encoder outputs and the encoder is committed to its codes.

Images are ``(B, 1, 28, 28)`` floats in [0, 1] ({0, 1} for binarized data); the models
flatten them to 784-vectors inside. All log-likelihoods are in nats per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from dgm.blocks import hidden_widths, mlp
from dgm.checks import describe, same_shape
from dgm.device import Seed, evaluating, make_generator, module_device

__all__ = [
    "PCA",
    "Autoencoder",
    "reconstruction_loss",
    "corrupt",
    "denoising_loss",
    "reparameterize",
    "gaussian_kl",
    "VAE",
    "elbo",
    "vae_loss",
    "importance_weighted_log_likelihood",
    "evaluate_bound",
    "sample",
    "interpolate",
    "Quantized",
    "VectorQuantizer",
]

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28
LOG_2PI = math.log(2 * math.pi)


def _flatten_images(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, 28, 28)`` images -> ``(B, 784)`` vectors, or a ValueError."""
    if not torch.is_tensor(x) or x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"x: expected images of shape (B, 1, 28, 28) in [0, 1], got {describe(x)}")
    return x.flatten(1)


def _check_codes(z: torch.Tensor, latent_dim: int) -> torch.Tensor:
    if not torch.is_tensor(z) or z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z: expected latent codes of shape (B, {latent_dim}), got {describe(z)}")
    return z


def _log_normal(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(x; mu, diag exp(logvar))`` summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def _bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x)`` per image ``(B,)`` for pixels ``x`` in [0, 1] under Bernoulli(sigmoid(logits))."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


# --- PCA ------------------------------------------------------------------------------------


class PCA:
    """Principal component analysis by the SVD of the centred data.

    ``fit(x)`` with ``x`` of shape ``(N, D)`` (images ``(N, C, H, W)`` are flattened)
    sets:

    - ``mean`` ``(D,)``;
    - ``components`` ``(k_max, D)``, ``k_max = min(N, D)``: orthonormal rows sorted by
      decreasing variance (each with its largest-magnitude entry positive, so that
      the signs are reproducible);
    - ``explained_variance`` ``(k_max,)``: the variance of the data along each component
      (``S_i^2 / (N - 1)``), descending;
    - ``explained_variance_ratio`` ``(k_max,)``: the same as a fraction of the total variance.

    Codes and reconstructions: ``codes = pca.project(x, k)`` is ``(N, k)`` and
    ``pca.reconstruct(codes)`` is ``(N, D)`` (``k`` is read off the codes; reshape to
    images yourself). Computed in the dtype of ``x``: use float64 for exact checks.
    """

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.components: torch.Tensor | None = None
        self.explained_variance: torch.Tensor | None = None
        self.explained_variance_ratio: torch.Tensor | None = None

    @staticmethod
    def _rows(x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point() or x.ndim < 2:
            raise ValueError(f"x: expected a float tensor of shape (N, D) or images (N, C, H, W), got {describe(x)}")
        return x.flatten(1)

    def fit(self, x: torch.Tensor) -> "PCA":
        """Fit to ``x`` ``(N, D)`` (or images ``(N, C, H, W)``), ``N >= 2``; returns ``self``."""
        x = self._rows(x)
        if len(x) < 2:
            raise ValueError(f"x: expected at least 2 rows to estimate a variance, got {len(x)}")
        mean = x.mean(0)
        _, singular_values, components = torch.linalg.svd(x - mean, full_matrices=False)
        variance = singular_values**2 / (len(x) - 1)
        if variance.sum() == 0:
            raise ValueError("x: every row is the same; PCA needs data that varies")
        largest = components.gather(1, components.abs().argmax(1, keepdim=True))
        self.mean, self.components = mean, components * torch.sign(largest)
        self.explained_variance, self.explained_variance_ratio = variance, variance / variance.sum()
        return self

    def _check_fitted(self) -> torch.Tensor:
        if self.components is None:
            raise RuntimeError("PCA: call fit(x) first")
        return self.components

    def project(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Codes ``(N, k)``: the coordinates of ``x - mean`` along the first ``k`` components (all if None)."""
        components = self._check_fitted()
        x = self._rows(x)
        k = len(components) if k is None else k
        if not isinstance(k, int) or not 1 <= k <= len(components):
            raise ValueError(f"k: expected an int in [1, {len(components)}], got {k!r}")
        if x.shape[1] != components.shape[1]:
            raise ValueError(f"x: expected {components.shape[1]} features per row (as fitted), got {x.shape[1]}")
        return (x - self.mean) @ components[:k].T

    def reconstruct(self, codes: torch.Tensor) -> torch.Tensor:
        """``mean + codes @ components[:k]``: points ``(N, D)`` from codes ``(N, k)``."""
        components = self._check_fitted()
        if not torch.is_tensor(codes) or codes.ndim != 2 or not 1 <= codes.shape[1] <= len(components):
            raise ValueError(f"codes: expected shape (N, k) with 1 <= k <= {len(components)}, got {describe(codes)}")
        return self.mean + codes @ components[: codes.shape[1]]


# --- autoencoders ---------------------------------------------------------------------------


class Autoencoder(nn.Module):
    """An MLP autoencoder: ``784 -> hidden -> latent_dim -> hidden -> 784`` logits.

    ``hidden`` is one width or a sequence of widths (the decoder mirrors it).
    ``encode(x)``: images ``(B, 1, 28, 28)`` in [0, 1] -> codes ``(B, latent_dim)``;
    ``decode(z)`` -> Bernoulli logits ``(B, 1, 28, 28)`` (``sigmoid`` gives the image);
    ``forward(x) = decode(encode(x))``. Trained with :func:`reconstruction_loss`, it is an
    autoencoder; with :func:`denoising_loss`, a denoising autoencoder.
    """

    def __init__(self, latent_dim: int = 32, hidden: int | Sequence[int] = 512):
        super().__init__()
        widths = hidden_widths(hidden)
        self.latent_dim = latent_dim
        self.encoder = mlp([PIXELS, *widths, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(widths), PIXELS])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(_flatten_images(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(_check_codes(z, self.latent_dim)).view(-1, *IMAGE_SHAPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def reconstruction_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Binary cross entropy of ``model(x)`` (logits) against ``x = batch[0]``: summed over
    pixels, averaged over the batch (nats per image). A ``loss_fn`` for :func:`dgm.train.fit`."""
    x = batch[0]
    return -_bernoulli_log_likelihood(model(x), x).mean()


def corrupt(x: torch.Tensor, noise_std: float, seed: Seed = None) -> torch.Tensor:
    """``clamp(x + noise_std * eps, 0, 1)`` with ``eps ~ N(0, I)`` drawn from ``seed``; same shape as ``x``."""
    if noise_std < 0:
        raise ValueError(f"noise_std: expected a non-negative standard deviation, got {noise_std!r}")
    noise = torch.randn(x.shape, generator=make_generator(seed), dtype=x.dtype).to(x.device)
    return (x + noise_std * noise).clamp(0.0, 1.0)


def denoising_loss(
    model: nn.Module, batch: tuple[torch.Tensor, ...], noise_std: float = 0.5,
    generator: int | torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`reconstruction_loss` of the clean ``x = batch[0]`` from ``model(corrupt(x))`` (nats per image).

    For :func:`dgm.train.fit`, bind the noise and a seeded generator:
    ``functools.partial(denoising_loss, noise_std=0.5, generator=make_generator(0))``.
    """
    x = batch[0]
    return -_bernoulli_log_likelihood(model(corrupt(x, noise_std, generator)), x).mean()


# --- the VAE --------------------------------------------------------------------------------


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: int | torch.Generator | None = None
) -> torch.Tensor:
    """A sample ``z = mu + exp(logvar / 2) * eps`` of ``N(mu, diag exp(logvar))``, differentiable in both.

    ``eps ~ N(0, I)`` is drawn on the CPU from ``generator`` (a seed repeats exactly)
    and moved to ``mu``'s device. Any shape, as long as ``mu`` and ``logvar`` agree.
    """
    same_shape(logvar, "logvar", mu, "mu")
    eps = torch.randn(mu.shape, generator=make_generator(generator), dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` in nats, summed over the last (latent) dimension.

    ``0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)``: ``(B, L)`` -> ``(B,)``; zero iff ``mu = 0, logvar = 0``.
    """
    same_shape(logvar, "logvar", mu, "mu")
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(-1)


class VAE(nn.Module):
    """A VAE with MLP encoder and decoder: ``q(z | x) = N(mu, diag exp(logvar))``, ``p(z) = N(0, I)``.

    ``likelihood``:

    - ``"bernoulli"``: ``p(x | z) = prod_i Bernoulli(x_i; sigmoid(logit_i))`` for pixels in
      [0, 1] (a proper likelihood for {0, 1} data); ``decode`` returns the logits;
    - ``"gaussian"``: ``p(x | z) = N(x; m(z), std^2 I)`` with mean ``m = sigmoid(.)`` in
      [0, 1] and the fixed ``std``; ``decode`` returns the mean. Its log-likelihood is a
      density, not comparable with Bernoulli nats.

    ``encode(x)``: images ``(B, 1, 28, 28)`` in [0, 1] -> ``(mu, logvar)``, each ``(B, latent_dim)``;
    ``decode(z)``: ``(B, latent_dim)`` -> logits or mean ``(B, 1, 28, 28)``;
    ``mean(z)``: the mean image ``E[x | z]`` in [0, 1] for either likelihood;
    ``forward(x) = decode(mu(x))``, the reconstruction through the posterior mean.
    """

    def __init__(
        self, latent_dim: int = 32, hidden: int | Sequence[int] = 512,
        likelihood: str = "bernoulli", std: float = 0.1,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood: expected 'bernoulli' or 'gaussian', got {likelihood!r}")
        if std <= 0:
            raise ValueError(f"std: expected a positive standard deviation, got {std!r}")
        widths = hidden_widths(hidden)
        self.latent_dim, self.likelihood, self.std = latent_dim, likelihood, std
        self.encoder = mlp([PIXELS, *widths, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(widths), PIXELS])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(_flatten_images(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(_check_codes(z, self.latent_dim)).view(-1, *IMAGE_SHAPE)
        return out if self.likelihood == "bernoulli" else torch.sigmoid(out)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` in nats per image ``(B,)`` for images ``x`` and codes ``z`` ``(B, latent_dim)``."""
        pixels = _flatten_images(x)
        if len(z) != len(x):
            raise ValueError(f"z: expected {len(x)} codes, one per image, got {describe(z)}")
        out = self.decode(z)
        if self.likelihood == "bernoulli":
            return _bernoulli_log_likelihood(out, x)
        return _log_normal(pixels, out.flatten(1), torch.full_like(pixels, 2 * math.log(self.std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def elbo(model: VAE, x: torch.Tensor, generator: int | torch.Generator | None = None) -> torch.Tensor:
    """The ELBO in nats per image ``(B,)``: ``log p(x | z) - KL(q(z | x) || p(z))``, one ``z ~ q(z | x)``."""
    mu, logvar = model.encode(x)
    return model.log_likelihood(x, reparameterize(mu, logvar, generator)) - gaussian_kl(mu, logvar)


def vae_loss(
    model: VAE, batch: tuple[torch.Tensor, ...], generator: int | torch.Generator | None = None
) -> torch.Tensor:
    """``-elbo(x).mean()`` for ``x = batch[0]``: the negative ELBO in nats per image (for :func:`dgm.train.fit`)."""
    return -elbo(model, batch[0], generator).mean()


def importance_weighted_log_likelihood(
    model: VAE, x: torch.Tensor, k: int, generator: int | torch.Generator | None = None, chunk: int = 10_000,
) -> torch.Tensor:
    """The importance-weighted bound on ``log p(x)`` in nats per image ``(B,)``:

    ``log (1/k) sum_j p(x | z_j) p(z_j) / q(z_j | x)``, ``z_j ~ q(z | x)``, computed with a
    logsumexp. ``k = 1`` is an unbiased estimate of the ELBO; the bound grows with ``k``
    and tends to ``log p(x)``. The ``k x B`` samples are decoded at most ``chunk`` at a
    time, so the decoder's memory stays bounded whatever ``k``; ``chunk`` does not change
    the result. With the same ``generator``, ``k = 1`` uses the same ``z`` as :func:`elbo`.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int number of samples, got {k!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive int, got {chunk!r}")
    mu, logvar = model.encode(x)
    # All k samples at once, (k, B, L): small beside the decoder's (k, B, 784), and the same draws whatever chunk is.
    z = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape), generator)
    log_prior_over_q = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) - _log_normal(z, mu, logvar)
    log_px = torch.cat([
        model.log_likelihood(x.expand(len(part), *x.shape).flatten(0, 1), part.flatten(0, 1)).view(len(part), -1)
        for part in z.split(max(1, chunk // len(x)))
    ])
    return torch.logsumexp(log_px + log_prior_over_q, dim=0) - math.log(k)


@torch.no_grad()
def evaluate_bound(
    model: VAE, images: torch.Tensor, k: int | None = None, batch_size: int = 500, seed: int = 0
) -> float:
    """Mean upper bound on ``-log p(x)`` in nats per image of ``images`` ``(N, 1, 28, 28)``:
    the negative ELBO (``k=None``), or the negative importance-weighted bound with ``k`` samples."""
    device, generator = module_device(model), make_generator(seed)
    total = 0.0
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            bound = elbo(model, x, generator) if k is None else importance_weighted_log_likelihood(model, x, k, generator)
            total -= bound.sum().item()
    return total / len(images)


@torch.no_grad()
def sample(model: VAE, n: int, seed: Seed = 0) -> torch.Tensor:
    """``n`` images ``(n, 1, 28, 28)`` in [0, 1] from the prior: ``z ~ N(0, I)``, then the mean ``E[x | z]``.

    For the Bernoulli decoder these are the pixel probabilities (smooth grey images,
    not binary draws); ``torch.bernoulli`` of them gives binary samples. Returned on the CPU.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    z = torch.randn(n, model.latent_dim, generator=make_generator(seed))
    return model.mean(z.to(module_device(model))).cpu()


@torch.no_grad()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Decode ``(1 - t) mu(x_a) + t mu(x_b)`` for ``steps`` evenly spaced ``t`` in [0, 1].

    ``x_a``, ``x_b``: single images ``(1, 28, 28)`` in [0, 1]. Returns the mean images
    ``(steps, 1, 28, 28)`` in [0, 1] on the CPU, the first and last being the reconstructions.
    """
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: expected an int >= 2, got {steps!r}")
    for name, image in (("x_a", x_a), ("x_b", x_b)):
        if not torch.is_tensor(image) or tuple(image.shape) != IMAGE_SHAPE:
            raise ValueError(f"{name}: expected one image of shape (1, 28, 28) in [0, 1], got {describe(image)}")
    device = module_device(model)
    mu, _ = model.encode(torch.stack([x_a, x_b]).to(device))
    t = torch.linspace(0.0, 1.0, steps, device=device)[:, None]
    return model.mean((1 - t) * mu[0] + t * mu[1]).cpu()


# --- the VQ-VAE bottleneck ------------------------------------------------------------------


class Quantized(NamedTuple):
    """What :class:`VectorQuantizer` returns (see there)."""

    quantized: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization onto a codebook ``e`` of ``num_codes`` vectors of size ``code_dim``.

    ``forward(z_e)`` with ``z_e`` ``(B, D, H, W)`` (a grid of vectors, channels first) or
    ``(B, D)`` returns a :class:`Quantized`:

    - ``indices`` ``(B, H, W)`` (or ``(B,)``): ``argmin_k ||z_e - e_k||^2`` at each position;
    - ``quantized``: ``z_q = e[indices]`` in ``z_e``'s shape, written ``z_e + sg[z_q - z_e]``
      (``sg`` = stop-gradient) so the forward value is ``z_q`` and the gradient passes
      straight through to ``z_e``;
    - ``codebook_loss`` = mean ``(sg[z_e] - z_q)^2``: moves the codebook only;
    - ``commitment_loss`` = mean ``(z_e - sg[z_q])^2``: moves the encoder only.

    The caller weights them: ``loss = reconstruction + codebook_loss + beta * commitment_loss``
    (``beta = 0.25`` in van den Oord et al., 2017).
    """

    def __init__(self, num_codes: int, code_dim: int):
        super().__init__()
        self.code_dim = code_dim
        self.codebook = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)

    def forward(self, z_e: torch.Tensor) -> Quantized:
        if not torch.is_tensor(z_e) or z_e.ndim not in (2, 4) or z_e.shape[1] != self.code_dim:
            raise ValueError(
                f"z_e: expected shape (B, {self.code_dim}, H, W) or (B, {self.code_dim}), got {describe(z_e)}"
            )
        vectors = z_e.movedim(1, -1)  # (B, H, W, D) or (B, D)
        flat = vectors.reshape(-1, self.code_dim)
        codes = self.codebook.weight
        distances = (flat**2).sum(1, keepdim=True) - 2 * flat @ codes.T + (codes**2).sum(1)
        indices = distances.argmin(1).view(vectors.shape[:-1])
        z_q = self.codebook(indices).movedim(-1, 1)
        return Quantized(
            quantized=z_e + (z_q - z_e).detach(),
            indices=indices,
            codebook_loss=F.mse_loss(z_q, z_e.detach()),
            commitment_loss=F.mse_loss(z_e, z_q.detach()),
        )
