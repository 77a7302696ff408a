"""Latent diffusion's first stage: an autoencoder whose latents a diffusion model learns instead of pixels.

Latent diffusion (Rombach et al., 2022) splits the work in two. An autoencoder learns once to
compress an image to a small latent and back — it carries the fine detail, the strokes' exact
edges; a diffusion model then learns the distribution of the latents, which is smaller, so
every step is cheaper and its capacity goes to what the image shows, not to its pixels.

:class:`LatentAutoencoder` maps a 28x28 digit in [0, 1] to a ``4 x 7 x 7`` latent (196 numbers
for 784 pixels). Its encoder gives a Gaussian ``q(z | x) = N(mean, diag exp(logvar))`` and
training adds a small KL term towards ``N(0, I)`` (:func:`autoencoder_loss`): not a VAE's full
weight, only enough to keep the latent space smooth and its scale in check. The latents a
diffusion model sees are the encoder's means times :func:`latent_scale`, which makes their
standard deviation 1, the scale the noise schedules assume. :class:`LatentGenerator` holds the
autoencoder, the scale and the latent model together, as the zoo ships them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dgm.checks import positive_int, unit_images
from dgm.vae import gaussian_kl, reparameterize

__all__ = ["LatentAutoencoder", "autoencoder_loss", "latent_scale", "LatentGenerator"]


class LatentAutoencoder(nn.Module):
    """A convolutional autoencoder: ``(B, 1, 28, 28)`` in [0, 1] <-> latents ``(B, latent_channels, 7, 7)``.

    ``encode(x) -> (mean, logvar)``, each ``(B, latent_channels, 7, 7)``; ``decode(z)`` -> pixel
    logits ``(B, 1, 28, 28)`` (``torch.sigmoid`` of them is the image in [0, 1]). Two stride-2
    convolutions halve the size twice (28 -> 14 -> 7); the decoder mirrors them.
    """

    def __init__(self, latent_channels: int = 4, width: int = 32):
        super().__init__()
        positive_int(latent_channels, "latent_channels")
        positive_int(width, "width")
        self.latent_channels = latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(unit_images(x, "x") * 2 - 1).chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in [0, 1] of ``x`` from the encoder's means."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))


def autoencoder_loss(model: LatentAutoencoder, x: torch.Tensor, kl_weight: float = 1e-3, generator=None) -> torch.Tensor:
    """Per image, the binary cross-entropy of ``x`` under the decoded sample ``z ~ q(z | x)``
    (summed over pixels) plus ``kl_weight`` times ``KL(q(z | x) || N(0, I))`` (summed over the
    latent); averaged over the batch. ``x``: ``(B, 1, 28, 28)`` in [0, 1]."""
    mean, logvar = model.encode(x)
    z = reparameterize(mean, logvar, generator)
    reconstruction = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="none").flatten(1).sum(1)
    kl = gaussian_kl(mean.flatten(1), logvar.flatten(1))
    return (reconstruction + kl_weight * kl).mean()


def latent_scale(means: torch.Tensor) -> float:
    """``1 / std`` of the encoder's means ``(N, C, h, w)`` over a data set (all numbers pooled): the
    factor that gives the diffusion model latents of unit variance."""
    if means.numel() < 2:
        raise ValueError("means: need at least two numbers to measure a spread")
    return float(1.0 / means.std())


class LatentGenerator(nn.Module):
    """An autoencoder, its latent scale and a model of the scaled latents, saved and loaded as one.

    ``to_latents(x)``: images ``(B, 1, 28, 28)`` in [0, 1] -> scaled latents (the encoder's means
    times ``scale``); ``to_images(z)``: scaled latents -> images in [0, 1]. ``denoiser`` is the
    latent model (a :class:`dgm.dit.DiT`), called as ``denoiser(z_t, t, y)``.
    """

    def __init__(self, autoencoder: LatentAutoencoder, denoiser: nn.Module, scale: float = 1.0):
        super().__init__()
        self.autoencoder, self.denoiser = autoencoder, denoiser
        self.register_buffer("scale", torch.tensor(float(scale)))

    @torch.no_grad()
    def to_latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(x)[0] * self.scale

    @torch.no_grad()
    def to_images(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.autoencoder.decode(z / self.scale))
