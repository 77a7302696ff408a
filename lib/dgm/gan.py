"""Generative adversarial networks: the game, its losses, DCGAN, and the latent space.

**The game** (Goodfellow et al. 2014). A generator ``G`` turns noise ``z ~ p(z) = N(0, I)``
into samples ``G(z)``; a discriminator ``D(x) = sigmoid(l(x))`` gives the probability that
``x`` came from the data rather than from ``G``. They play

    min_G max_D  V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p(z)}[log(1 - D(G(z)))].

For a fixed ``G`` the best discriminator is ``D*(x) = p_data(x) / (p_data(x) + p_G(x))``, and
``V(D*, G) = 2 JS(p_data || p_G) - log 4``: the value is lowest, ``-log 4``, exactly when
``p_G = p_data``, where ``D* = 1/2`` everywhere. In practice the players take turns, one
gradient step each (:func:`gan_step`): ``D`` ascends ``V`` on a real batch and on fakes
detached from ``G``, then ``G`` descends its loss through the updated ``D``.

**Losses on logits.** Both networks' scores are logits ``l``, never probabilities, and every
loss is written with ``log D = logsigmoid(l)`` and ``log(1 - D) = logsigmoid(-l)``, which stay
finite when ``D`` is certain (computed naively in float32, ``log(1 - sigmoid(l))`` is already
``log 0 = -inf`` at ``l = 17``, because ``sigmoid(17)`` rounds to 1):

- :func:`discriminator_loss` ``= -[mean log D(x) + mean log(1 - D(G(z)))]``, i.e. ``-V``; with
  one-sided label smoothing (Salimans et al. 2016) the real target is ``real_label < 1``, which
  stops ``D`` from pushing real logits to infinity;
- :func:`generator_loss_minimax` ``= mean log(1 - D(G(z)))``, the game's own term;
- :func:`generator_loss_nonsaturating` ``= -mean log D(G(z))``, the one used in practice.

**Why the non-saturating loss.** Early on the fakes are easy to spot: ``D(G(z)) ~ 0``, so
``l << 0``. Per fake logit,

    d/dl  log(1 - sigmoid(l)) = -sigmoid(l)       -> 0    as l -> -inf   (minimax),
    d/dl -log sigmoid(l)      = -(1 - sigmoid(l))  -> -1   as l -> -inf   (non-saturating).

Both say "raise ``l``" and share the fixed point, but the minimax gradient vanishes exactly
when the generator is worst, while the non-saturating one is then largest: their ratio is
``(1 - D) / D``. Through ``G`` the chain rule multiplies both by the same ``dl/dtheta``.

**Mode collapse.** Nothing in the generator's step rewards variety: each fake is moved
towards wherever ``D`` is currently most fooled, so all of them may crowd onto one mode;
``D`` then learns that this mode is fake, and the crowd moves on. The classic test is a
mixture of Gaussians on a ring (:func:`ring_of_gaussians`, from :mod:`dgm.data`): :func:`count_modes` counts the
modes that receive a fair share of samples, and the fraction of "high quality" samples,
those within ``3 std`` of some mode (Metz et al. 2017; Srivastava et al. 2017).

**DCGAN** (Radford et al. 2016): strided (transposed) convolutions instead of pooling,
BatchNorm in both networks except the generator's output and the discriminator's input,
ReLU in ``G`` with ``tanh`` out, LeakyReLU(0.2) in ``D``, weights drawn from ``N(0, 0.02)``
(:func:`init_dcgan_weights`), Adam with ``lr = 2e-4`` and ``beta_1 = 0.5`` (:func:`train_gan`).
:class:`DCGenerator` and :class:`DCDiscriminator` are that recipe shrunk for MNIST on a CPU.

**Class-conditional GANs.** ``G(z, y)`` gets a learned embedding of the label ``y`` next to
``z``; ``D(x, y)`` is a projection discriminator (Miyato & Koyama 2018):
``l(x, y) = w^T phi(x) + b + embed(y)^T phi(x)``, see :class:`DCDiscriminator`.

**The latent space.** A trained ``G`` makes ``z`` a coordinate system for images:

- :func:`lerp` walks a straight line; :func:`slerp` a great circle. In ``D`` dimensions
  ``|z|`` concentrates near ``sqrt(D)``, but the midpoint of two independent draws has norm
  near ``sqrt(D / 2)``, a region ``G`` never saw in training; slerp keeps the norm (White 2016);
- :func:`attribute_vector`: the mean ``z`` of samples with an attribute minus the mean of
  samples without it; adding it to another ``z`` adds the attribute ("vector arithmetic");
- :func:`project` inverts ``G``: for an image ``x`` it searches ``argmin_z |G(z) - x|^2`` by
  gradient descent from several random starts, since ``G`` has no encoder.

Shapes and ranges: images are float tensors ``(B, 1, 28, 28)`` in [-1, 1] (map data in [0, 1]
with ``2 x - 1`` and back with :func:`dgm.viz.to_unit`); toy points are ``(B, d)``; latent
codes ``(B, latent_dim)``; labels int64 ``(B,)``; discriminator logits ``(B,)``. Every model
takes ``labels=None`` in ``forward``, and labels are required exactly when the model was built
with ``num_classes``, so that :func:`gan_step` treats all of them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from dgm.blocks import hidden_widths, mlp
from dgm.checks import class_labels, describe, positive_int, same_shape
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.train import Budget, train_steps

__all__ = [
    "MLPGenerator",
    "MLPDiscriminator",
    "DCGenerator",
    "DCDiscriminator",
    "init_dcgan_weights",
    "discriminator_loss",
    "generator_loss_minimax",
    "generator_loss_nonsaturating",
    "GENERATOR_LOSSES",
    "gan_step",
    "train_gan",
    "sample",
    "lerp",
    "slerp",
    "attribute_vector",
    "Projection",
    "project",
    "ModeCount",
    "count_modes",
]

IMAGE_SHAPE = (1, 28, 28)


def _check_batch(
    x: object, feature_shape: Sequence[int | str], name: str, what: str, batch: str = "B"
) -> torch.Tensor:
    """``x`` must be a non-empty float tensor ``(batch, *feature_shape)``; a str entry (``"D"``) matches any size."""
    expected = f"a float tensor of {what}, shape ({', '.join(map(str, (batch, *feature_shape)))})"
    if (
        not torch.is_tensor(x) or not x.is_floating_point() or x.ndim != 1 + len(feature_shape) or len(x) == 0
        or any(isinstance(want, int) and size != want for size, want in zip(x.shape[1:], feature_shape))
    ):
        raise ValueError(f"{name}: expected {expected}, got {describe(x)}")
    return x


def _check_num_classes(num_classes: object) -> int | None:
    return None if num_classes is None else positive_int(num_classes, "num_classes")


def _check_labels(labels: object, num_classes: int | None, batch: int) -> torch.Tensor | None:
    """``None`` for an unconditional model; else integer labels ``(batch,)`` in ``[0, num_classes)``."""
    if num_classes is None:
        if labels is not None:
            got = describe(labels)
            raise ValueError(f"labels: the model is unconditional (num_classes=None), expected None, got {got}")
        return None
    if labels is None:
        expected = f"an integer tensor of shape ({batch},) with classes in [0, {num_classes - 1}]"
        raise ValueError(f"labels: the model is conditional on {num_classes} classes, expected {expected}, got None")
    labels = class_labels(labels, batch, num_classes)
    return labels.long()


# --- the players ----------------------------------------------------------------------------


class MLPGenerator(nn.Module):
    """``G``: latent codes ``(B, latent_dim)`` -> points ``(B, out_dim)`` for the toy 1-D/2-D experiments.

    An MLP with ReLU hidden layers (``hidden``: one width or a sequence) and a linear,
    unbounded output (the toy data is not scaled to [-1, 1]). ``latent_dim = 2`` by default
    so that the map from the latent plane to the data plane can be drawn (push a grid of
    ``z`` through ``G``). Unconditional: ``forward(z, labels=None)`` only accepts ``None``.
    """

    def __init__(self, latent_dim: int = 2, hidden: int | Sequence[int] = (128, 128), out_dim: int = 2):
        super().__init__()
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        self.out_shape = (positive_int(out_dim, "out_dim"),)
        self.num_classes = None
        self.net = mlp([latent_dim, *hidden_widths(hidden), out_dim])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = _check_batch(z, (self.latent_dim,), "z", "latent codes")
        _check_labels(labels, self.num_classes, len(z))
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """``D``: points ``(B, in_dim)`` -> logits ``(B,)`` (``D(x) = sigmoid(logit)``), for the toy experiments.

    An MLP with LeakyReLU(0.2) hidden layers (``hidden``: one width or a sequence).
    Unconditional: ``forward(x, labels=None)`` only accepts ``None``.
    """

    def __init__(self, in_dim: int = 2, hidden: int | Sequence[int] = (128, 128)):
        super().__init__()
        self.in_shape = (positive_int(in_dim, "in_dim"),)
        self.num_classes = None
        self.net = mlp([in_dim, *hidden_widths(hidden), 1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = _check_batch(x, self.in_shape, "x", "points")
        _check_labels(labels, self.num_classes, len(x))
        return self.net(x).squeeze(1)


class DCGenerator(nn.Module):
    """A DCGAN generator for MNIST: ``z`` ``(B, latent_dim)`` -> images ``(B, 1, 28, 28)`` in [-1, 1].

    ``[z, embed(y)]`` -> linear to ``2 width`` channels of 7x7 -> BatchNorm, ReLU -> transposed
    conv (kernel 4, stride 2) to ``width`` channels of 14x14 -> BatchNorm, ReLU -> transposed
    conv to 1 channel of 28x28 -> ``tanh``. Layers followed by BatchNorm have no bias (the
    norm's shift replaces it).

    With ``num_classes``, ``forward(z, labels)`` needs int labels ``(B,)`` in ``[0, num_classes)``;
    each label's learned ``embed_dim``-vector is concatenated to ``z``. Without it, labels must be None.
    At the defaults (``latent_dim=64, width=64``) it has 533,889 parameters (634,401 with 10 classes).
    Call :func:`init_dcgan_weights` after building it for the paper's initialisation.
    """

    def __init__(self, latent_dim: int = 64, width: int = 64, num_classes: int | None = None, embed_dim: int = 16):
        super().__init__()
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        self.num_classes = _check_num_classes(num_classes)
        width = positive_int(width, "width")
        self.out_shape = IMAGE_SHAPE
        embed_dim = positive_int(embed_dim, "embed_dim")
        self.embed = None if num_classes is None else nn.Embedding(num_classes, embed_dim)
        in_dim = latent_dim + (0 if num_classes is None else embed_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, kernel_size=4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, kernel_size=4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = _check_batch(z, (self.latent_dim,), "z", "latent codes")
        labels = _check_labels(labels, self.num_classes, len(z))
        if labels is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z)


class DCDiscriminator(nn.Module):
    """A DCGAN discriminator for MNIST: images ``(B, 1, 28, 28)`` in [-1, 1] -> logits ``(B,)``.

    Features ``phi(x)``: conv (kernel 4, stride 2) to ``width`` channels of 14x14 -> LeakyReLU(0.2)
    (no BatchNorm on the input layer) -> conv to ``2 width`` channels of 7x7 -> BatchNorm ->
    LeakyReLU(0.2), flattened to ``F = 2 width * 49`` numbers. Logit ``w^T phi(x) + b``.

    With ``num_classes`` it is a **projection discriminator** (Miyato & Koyama 2018): the
    logit gains ``embed(y)^T phi(x)``, a learned ``F``-vector per class. The logit of the
    optimal ``D`` is ``log p_data(x, y) / p_G(x, y) = log p_data(x) / p_G(x) + log p_data(y | x) / p_G(y | x)``;
    if both conditionals are softmax classifiers on the shared features ``phi``, the second
    term is exactly an inner product of a class vector with ``phi(x)``, plus a term independent
    of ``y`` that ``w^T phi`` absorbs. So the label acts on the features that decide "real or
    fake", rather than entering as extra input channels to be mixed in from the first layer.
    ``forward(x, labels)`` then needs int labels ``(B,)``; without ``num_classes`` labels must be None.
    At the default ``width=64`` it has 138,689 parameters (201,409 with 10 classes).
    """

    def __init__(self, width: int = 64, num_classes: int | None = None):
        super().__init__()
        width = positive_int(width, "width")
        self.num_classes = _check_num_classes(num_classes)
        self.in_shape = IMAGE_SHAPE
        features = 2 * width * 7 * 7
        self.features = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=4, stride=2, padding=1),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, kernel_size=4, stride=2, padding=1, bias=False),  # 14 -> 7
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(features, 1)
        self.embed = None if num_classes is None else nn.Embedding(num_classes, features)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = _check_batch(x, IMAGE_SHAPE, "x", "images in [-1, 1]")
        labels = _check_labels(labels, self.num_classes, len(x))
        phi = self.features(x)
        logits = self.head(phi).squeeze(1)
        if labels is not None:
            logits = logits + (self.embed(labels) * phi).sum(1)
        return logits


def init_dcgan_weights(module: nn.Module, seed: Seed = 0) -> nn.Module:
    """The DCGAN initialisation, in place, for every submodule of ``module``; returns ``module``.

    Convolutions (transposed too), linear layers and embeddings (a linear layer applied to a
    one-hot label): weights ``~ N(0, 0.02^2)``. BatchNorm: scale ``~ N(1, 0.02^2)``. All biases 0.
    The draws come from ``seed`` on the CPU (a seed repeats exactly, on any device).
    """
    generator = make_generator(seed)

    def normal_(tensor: torch.Tensor, mean: float) -> None:
        tensor.copy_(mean + 0.02 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype))

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding)):
                normal_(layer.weight, 0.0)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
                normal_(layer.weight, 1.0)
            else:
                continue
            if getattr(layer, "bias", None) is not None:
                layer.bias.zero_()
    return module


# --- the losses -----------------------------------------------------------------------------


def _check_logits(name: str, logits: object) -> torch.Tensor:
    if not torch.is_tensor(logits) or not logits.is_floating_point() or logits.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty float tensor of logits, e.g. (B,), got {describe(logits)}")
    return logits


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """``-[mean log D(x) + mean log(1 - D(G(z)))]``, a scalar, from the logits of real and fake samples.

    Each mean runs over all elements (``(B,)`` logits, or e.g. a PatchGAN's ``(B, 1, H, W)``);
    the two batches may differ in size. ``real_label`` in (0, 1] is the target for real
    samples: below 1 it is one-sided label smoothing, ``-[real_label log D(x) + (1 - real_label)
    log(1 - D(x))]`` for the real term, minimal at ``D(x) = real_label``. At logits 0 the loss is ``2 log 2``.
    """
    real_logits, fake_logits = _check_logits("real_logits", real_logits), _check_logits("fake_logits", fake_logits)
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label: expected a target in (0, 1], got {real_label!r}")
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean log(1 - D(G(z)))`` (the generator minimises it): ``-log 2`` at logits 0, ``-> 0`` as ``D(G(z)) -> 0``."""
    return F.logsigmoid(-_check_logits("fake_logits", fake_logits)).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean log D(G(z))``: ``log 2`` at logits 0, growing like ``-logit`` as ``D(G(z)) -> 0``."""
    return -F.logsigmoid(_check_logits("fake_logits", fake_logits)).mean()


GENERATOR_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "nonsaturating": generator_loss_nonsaturating,
    "minimax": generator_loss_minimax,
}


# --- training -------------------------------------------------------------------------------


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    rng: Seed,
    labels: torch.Tensor | None = None,
    loss: str = "nonsaturating",
    real_label: float = 1.0,
) -> dict[str, float]:
    """One round of the game: a discriminator step, then a generator step.

    ``real``: a batch ``(B, ...)`` of data on the models' device (images in [-1, 1] for the DC
    models). ``rng``: where ``z ~ N(0, I)`` ``(B, latent_dim)`` is drawn from, on the CPU; pass
    one ``torch.Generator`` for a whole run (a seed would give the same ``z`` at every call).
    ``labels``: int ``(B,)``, the classes of ``real`` for conditional models (the fakes get the
    same classes), else None.

    1. ``D`` step: ``discriminator_loss(D(x), D(G(z)))`` with ``G(z)`` detached; ``opt_d`` steps.
    2. ``G`` step: ``GENERATOR_LOSSES[loss]`` of ``D(G(z))``, the same fakes through the
       updated ``D``; ``opt_g`` steps. (It leaves gradients in ``D``; the next ``D`` step clears them.)

    Returns floats: ``d_loss``, ``g_loss``, and ``d_real`` = mean ``D(x)``, ``d_fake`` = mean
    ``D(G(z))`` as the discriminator saw them in step 1, before its update.
    """
    if loss not in GENERATOR_LOSSES:
        raise ValueError(f"loss: expected one of {sorted(GENERATOR_LOSSES)}, got {loss!r}")
    if not torch.is_tensor(real) or real.ndim < 2 or len(real) == 0:
        raise ValueError(f"real: expected a non-empty batch (B, ...) of data, got {describe(real)}")
    z = torch.randn(len(real), generator.latent_dim, generator=make_generator(rng)).to(real.device)
    fake = generator(z, labels)

    real_logits, fake_logits = discriminator(real, labels), discriminator(fake.detach(), labels)
    d_loss = discriminator_loss(real_logits, fake_logits, real_label)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    g_loss = GENERATOR_LOSSES[loss](discriminator(fake, labels))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return {
        "d_loss": d_loss.item(),
        "g_loss": g_loss.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: Iterator[tuple[torch.Tensor, ...]],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    loss: str = "nonsaturating",
    real_label: float = 1.0,
    seed: Seed = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
    callback_at: Container[int] = (),
) -> list[dict[str, float]]:
    """Alternate :func:`gan_step` until ``steps`` or ``seconds`` runs out (at least one must be given).

    ``data`` yields tuples ``(x,)`` or ``(x, y)`` as :func:`dgm.train.batches` does (images in
    [-1, 1] for the DC models); ``y`` is used exactly when the generator is conditional. One
    Adam per player with ``lr`` and ``betas`` (DCGAN's), no learning-rate schedule; ``z`` is
    drawn from one generator seeded by ``seed``. ``callback(step, generator)`` runs, with
    ``G`` in eval mode, after each step number in ``callback_at`` (0: before training), e.g.
    ``{0, 100, 1000}`` or ``range(0, 10**9, 500)`` to watch samples as training goes; its time
    does not count against ``seconds``. Returns the history: one :func:`gan_step` dict per step.
    Both models are left in eval mode.
    """
    budget = Budget(steps, seconds, progress=progress)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    rng = make_generator(seed)

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        if generator.num_classes is not None and len(batch) < 2:
            raise ValueError("data: the generator is conditional, expected batches (x, y) with labels, got (x,)")
        labels = batch[1] if generator.num_classes is not None else None
        return gan_step(generator, discriminator, opt_g, opt_d, batch[0], rng, labels, loss, real_label)

    def watch(done: int) -> None:
        callback(done, generator)

    return train_steps(step, [generator, discriminator], data, budget, device=device,
                       callback=watch if callback else None, callback_at=callback_at)


@torch.no_grad()
def sample(generator: nn.Module, n: int, labels: torch.Tensor | None = None, seed: Seed = 0) -> torch.Tensor:
    """``n`` samples ``G(z)``, ``z ~ N(0, I)`` drawn from ``seed``, with ``G`` in eval mode; on the CPU.

    Shape ``(n, *out_shape)``: images ``(n, 1, 28, 28)`` in [-1, 1] for :class:`DCGenerator`,
    points ``(n, d)`` for :class:`MLPGenerator`. ``labels`` int ``(n,)`` for a conditional ``G``.
    """
    n = positive_int(n, "n")
    z = torch.randn(n, generator.latent_dim, generator=make_generator(seed))
    device = module_device(generator)
    with evaluating(generator):
        return generator(z.to(device), None if labels is None else labels.to(device)).cpu()


# --- the latent space -----------------------------------------------------------------------


def _interpolation_times(z0: object, z1: object, steps: object) -> torch.Tensor:
    """Check a pair of latent vectors ``(D,)`` and ``steps >= 2``; return ``t`` ``(steps, 1)`` from 0 to 1."""
    for name, z in (("z0", z0), ("z1", z1)):
        if not torch.is_tensor(z) or z.ndim != 1 or not z.is_floating_point():
            raise ValueError(f"{name}: expected a float latent vector of shape (D,), got {describe(z)}")
    same_shape(z1, "z1", z0, "z0")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps: expected an int >= 2 (both ends included), got {steps!r}")
    return torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device)[:, None]


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """``(1 - t) z0 + t z1`` for ``steps`` evenly spaced ``t`` in [0, 1]: ``(steps, D)`` from vectors ``(D,)``.

    The first row is ``z0`` and the last ``z1`` exactly.
    """
    t = _interpolation_times(z0, z1, steps)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Spherical interpolation: ``(sin((1 - t) W) z0 + sin(t W) z1) / sin W``, ``(steps, D)`` from ``(D,)``.

    ``W`` is the angle between ``z0`` and ``z1``, computed as ``2 atan2(|u - v|, |u + v|)`` for
    the unit vectors ``u, v`` (accurate also for nearly parallel vectors, unlike ``arccos``).
    Between vectors of equal norm the path is an arc of the sphere of that norm; the first
    row is ``z0`` and the last ``z1`` exactly. Where the arc is not defined, for a zero vector
    or (anti)parallel vectors (``sin W < 1e-6``), it returns :func:`lerp`.
    """
    t = _interpolation_times(z0, z1, steps)
    if z0.norm() == 0 or z1.norm() == 0:
        return lerp(z0, z1, steps)
    u, v = z0 / z0.norm(), z1 / z1.norm()
    angle = 2 * torch.atan2((u - v).norm(), (u + v).norm())
    sin = torch.sin(angle)
    if sin < 1e-6:
        return lerp(z0, z1, steps)
    return torch.sin((1 - t) * angle) / sin * z0 + torch.sin(t * angle) / sin * z1


def attribute_vector(z_with: torch.Tensor, z_without: torch.Tensor) -> torch.Tensor:
    """The mean of ``z_with`` ``(N, D)`` minus the mean of ``z_without`` ``(M, D)``: a direction ``(D,)``.

    ``z_with`` are codes whose images show an attribute (e.g. a thick stroke), ``z_without``
    codes whose images do not; ``z + attribute_vector(...)`` tends to add the attribute to ``G(z)``.
    """
    z_with = _check_batch(z_with, ("D",), "z_with", "latent codes", batch="N")
    z_without = _check_batch(z_without, z_with.shape[1:], "z_without", "latent codes like z_with", batch="N")
    return z_with.mean(0) - z_without.mean(0)


class Projection(NamedTuple):
    """What :func:`project` returns: the best codes, their images, and the per-image error."""

    z: torch.Tensor
    reconstruction: torch.Tensor
    loss: torch.Tensor


def project(
    generator: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 4,
    prior_weight: float = 0.0,
    seed: Seed = 0,
) -> Projection:
    """Invert ``G``: for each target ``x``, ``z`` minimising ``mean (G(z) - x)^2 + prior_weight |z|^2 / latent_dim``.

    ``images``: ``(B, *out_shape)``, e.g. ``(B, 1, 28, 28)`` in [-1, 1] for :class:`DCGenerator`;
    ``labels`` int ``(B,)`` for a conditional ``G``. ``restarts`` random starts ``z ~ N(0, I)``
    (drawn from ``seed``) per image are optimised together as one batch of ``restarts * B``
    codes by Adam (``steps``, ``lr``): each code's objective depends only on that code, and
    Adam's update is per coordinate, so the batch is ``restarts * B`` independent searches. ``G``
    is in eval mode (BatchNorm with running statistics, so the images do not interact) and
    its weights get no gradient. The prior term (``-log p(z)`` up to scale) keeps ``z`` from
    drifting to large norms that ``G`` never saw in training, at some cost in reconstruction.

    Returns a :class:`Projection`, on the CPU: ``z`` ``(B, latent_dim)``, the restart with the
    smallest reconstruction error per image; ``reconstruction`` ``G(z)`` ``(B, *out_shape)``; ``loss``
    ``(B,)``, its mean squared error per pixel (without the prior term).
    """
    images = _check_batch(images, generator.out_shape, "images", "targets shaped like the generator's output")
    _check_labels(labels, generator.num_classes, len(images))
    steps = positive_int(steps, "steps")
    restarts = positive_int(restarts, "restarts")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    if not prior_weight >= 0:
        raise ValueError(f"prior_weight: expected a non-negative weight, got {prior_weight!r}")
    device, count = module_device(generator), len(images)
    # row r * B + b is restart r of image b
    target = images.to(device).repeat(restarts, *[1] * len(generator.out_shape))
    labels = None if labels is None else labels.to(device).repeat(restarts)
    z = torch.randn(restarts * count, generator.latent_dim, generator=make_generator(seed)).to(device)
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)

    def error(reconstruction: torch.Tensor) -> torch.Tensor:
        return (reconstruction - target).flatten(1).pow(2).mean(1)

    with evaluating(generator):
        for _ in range(steps):
            objective = error(generator(z, labels)) + prior_weight * z.pow(2).mean(1)
            (z.grad,) = torch.autograd.grad(objective.sum(), z)
            optimizer.step()
        with torch.no_grad():
            reconstruction = generator(z, labels)
            errors = error(reconstruction).view(restarts, count)
    best = errors.argmin(0) * count + torch.arange(count, device=device)
    return Projection(z.detach()[best].cpu(), reconstruction[best].cpu(), errors.min(0).values.cpu())


# --- mode collapse on a ring of Gaussians ---------------------------------------------------


class ModeCount(NamedTuple):
    """What :func:`count_modes` returns.

    ``modes``: how many modes got at least the required share of the samples;
    ``high_quality``: the fraction of samples within ``radius`` of some centre;
    ``counts``: ``(K,)`` the number of samples within ``radius`` of each centre.
    """

    modes: int
    high_quality: float
    counts: torch.Tensor


def count_modes(
    samples: torch.Tensor,
    centers: torch.Tensor,
    std: float = 0.02,
    radius: float | None = None,
    min_share: float | None = None,
) -> ModeCount:
    """Mode coverage and sample quality of ``samples`` ``(N, d)`` against a mixture with ``centers`` ``(K, d)``.

    Each sample is assigned to its nearest centre, and counts for it if it lies within
    ``radius`` (default ``3 std``, ``std`` being the components' standard deviation); such
    samples are "high quality". A mode is covered if at least ``min_share`` of all samples
    count for it (default ``1 / (4 K)``, a quarter of what a perfect sampler gives each mode).
    For exact draws from a 2-D mixture of well-separated modes the high-quality fraction at the
    default radius is ``P(|N(0, I_2)| < 3) = 1 - exp(-9/2) = 0.989``.
    """
    centers = _check_batch(centers, ("d",), "centers", "mixture centres", batch="K")
    samples = _check_batch(samples, centers.shape[1:], "samples", "points like the centres", batch="N")
    if not std > 0:
        raise ValueError(f"std: expected a positive standard deviation, got {std!r}")
    radius = 3.0 * std if radius is None else radius
    min_share = 1.0 / (4 * len(centers)) if min_share is None else min_share
    if not radius > 0:
        raise ValueError(f"radius: expected a positive distance, got {radius!r}")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share: expected a fraction in (0, 1], got {min_share!r}")
    distance, nearest = torch.cdist(samples, centers.to(samples)).min(dim=1)
    close = distance <= radius
    counts = torch.bincount(nearest[close], minlength=len(centers))
    return ModeCount(
        modes=int((counts >= min_share * len(samples)).sum()),
        high_quality=close.float().mean().item(),
        counts=counts,
    )
