"""Image-to-image translation: pix2pix (paired data) and CycleGAN (unpaired data).

The task is to learn a map ``G: X -> Y`` between two kinds of image: edge maps to photos,
damaged images to clean ones, thin digits to thick ones. The output is an image of the
same size as the input, and usually several outputs are plausible for one input.

**Paired data: pix2pix** (Isola et al. 2017). Given pairs ``(x, y)``, the obvious loss is a
regression, ``L_L1(G) = E |y - G(x)|_1``. Its minimiser is the per-pixel median of ``p(y | x)``:
where the input leaves the output ambiguous (what was under the occluder? where exactly was
the blurred stroke?) it settles on a compromise between the plausible answers: smeared
strokes, and pixels that are ink in fewer than half the plausible answers left blank.
pix2pix adds a *conditional* GAN: a discriminator ``D`` sees the input together with an output,
concatenated along the channels, and tells real pairs ``(x, y)`` from generated ones ``(x, G(x))``::

    L_cGAN(G, D) = E log D(x, y) + E log(1 - D(x, G(x))),
    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),        lambda = 100.

In practice ``G`` minimises the non-saturating ``-log D(x, G(x))`` (binary cross-entropy on
``D``'s logits with target "real") plus ``lambda`` times the L1 term, and ``D``'s loss is halved
to slow it down relative to ``G`` (:func:`pix2pix_generator_loss`, :func:`pix2pix_discriminator_loss`).
The only noise in pix2pix's generator is **dropout**, in its innermost decoder layers; the paper
keeps it on at test time too (call ``generator.train()`` to sample that way).

**U-Net generator** (:class:`UNetGenerator`). An encoder halves the resolution ``depth`` times
with 4x4 stride-2 convolutions (LeakyReLU 0.2 before, normalisation after), a decoder doubles it
back with 4x4 stride-2 transposed convolutions (ReLU before, normalisation after), and a **skip
connection** hands each decoder level the encoder's features of the same size, so that the
position of every edge need not squeeze through the bottleneck. For MNIST, ``depth = 2``::

    x (B, 1, 28, 28) -> conv -> h1 (32, 14x14) --------------------------> concat -> ReLU, up, tanh -> (B, 1, 28, 28)
                                  | LReLU, conv                               ^
                                  v                                           |
                                 h2 (64, 7x7) -> ReLU, up, norm, dropout -> (32, 14x14)

**PatchGAN discriminator** (:class:`PatchDiscriminator`). A fully convolutional ``D`` whose output
is a map of logits, one per patch of the input; the loss averages over the map. It judges
local texture and sharpness (the L1 term already takes care of the low frequencies) and
works at any image size. Each logit sees a square of input pixels, its **receptive field**.
For convolutions ``(k_1, s_1), ..., (k_L, s_L)``, walk back from one output pixel: a field of
``r`` pixels after layer ``l`` covers ``s_l r + (k_l - s_l)`` pixels before it, so starting from
``r = 1`` (:func:`receptive_field`), or forwards, ``r = 1 + sum_l (k_l - 1) prod_{m < l} s_m``.
pix2pix's discriminator with ``n`` stride-2 layers is kernel 4 with strides ``2 (n times), 1, 1``
(:func:`patchgan_specs`): ``n = 1, 3, 5`` give the paper's 16x16, 70x70 and 286x286 PatchGANs.
With padding ``p`` each layer maps a size ``n`` to ``floor((n + 2p - k) / s) + 1``
(:func:`output_size`): a 256x256 input gives the 70x70 PatchGAN a 30x30 map
(256 -> 128 -> 64 -> 32 -> 31 -> 30). On 28x28 MNIST:

    =======  ==================  ===========  =====================================
    layers   receptive field     output map   what each logit judges
    =======  ==================  ===========  =====================================
    1        16                  12x12        a patch: about half a digit
    2        34                  5x5          nearly the whole digit (with padding)
    3        70                  1x1          the whole image: an "ImageGAN"
    =======  ==================  ===========  =====================================

:func:`empirical_receptive_field` measures the same number from a network: back-propagate one
interior logit to the input and measure the span of the pixels with a non-zero gradient.

**Unpaired data: CycleGAN** (Zhu et al. 2017). With only two collections, ``A`` and ``B``, and
no pairs, train two generators ``G: A -> B`` and ``F: B -> A`` (``g_ab``, ``g_ba``) and two
discriminators ``D_B`` (is this a real ``B``?) and ``D_A``. Adversarial losses alone make ``G(a)``
look like *some* ``B`` image, not a translation of ``a``; **cycle consistency** asks that
translating there and back returns the input, and an **identity** term asks a generator to
leave an image of its target domain alone::

    L_cyc = E |F(G(a)) - a|_1 + E |G(F(b)) - b|_1,        L_idt = E |G(b) - b|_1 + E |F(a) - a|_1,
    L_G   = L_LSGAN(G, D_B) + L_LSGAN(F, D_A) + lambda_cyc L_cyc + lambda_idt L_idt,

with ``lambda_cyc = 10`` and ``lambda_idt = 0.5 lambda_cyc``. CycleGAN uses the least-squares GAN:
the generator minimises ``(D(G(a)) - 1)^2`` and the discriminator
``0.5 [(D(b) - 1)^2 + D(G(a))^2]`` (:func:`lsgan_generator_loss`, :func:`lsgan_discriminator_loss`).
``D`` is trained on a history of 50 generated images, not only the latest
(:class:`ImagePool`), which damps oscillations between ``G`` and ``D``.

**Tasks on MNIST, with no extra data** (made in :mod:`dgm.data`; images ``(N, 1, 28, 28)`` in
[0, 1] in and out):

- :func:`~dgm.data.edges`: thin binary Sobel outlines of a digit, the analogue of pix2pix's
  edges -> photo. The outline pins the stroke down, so this is the easy paired task: L1
  alone already gives clean digits.
- :func:`~dgm.data.degrade`: blur, noise and a grey occluding square. Degraded -> clean is ambiguous:
  the generator must invent what the occluder hid. Trained with L1 alone it leaves the hidden
  part of a stroke faint or missing and the rest smeared (the per-pixel median); the cGAN
  term rewards committing to one sharp, plausible stroke.
- :func:`~dgm.data.to_domain_b`: thick digits (a 3x3 morphological dilation), for the unpaired task
  thin <-> thick on disjoint halves of MNIST (:func:`~dgm.data.unpaired_domains`). The change is local, as
  CycleGAN needs, and the evaluation classifier (:mod:`dgm.metrics`, trained on ordinary
  digits) can tell whether ``F(b)`` is still the digit that ``b`` was: the class must survive.

**Scales.** Data and the data functions use [0, 1]; models and losses use [-1, 1] (the
generators end in tanh). Only the boundary converts: :func:`train_pix2pix` and
:func:`train_cyclegan` take [0, 1] data, and :func:`translate` maps [0, 1] to [0, 1].
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from dgm.checks import describe, float_images, non_negative, positive_int, same_shape, unit_images
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.gan import discriminator_loss, generator_loss_nonsaturating
from dgm.train import Budget, batches, train_steps

__all__ = [
    "UNetGenerator",
    "PatchDiscriminator",
    "patchgan_specs",
    "receptive_field",
    "output_size",
    "empirical_receptive_field",
    "Pix2PixLoss",
    "pix2pix_generator_loss",
    "pix2pix_discriminator_loss",
    "lsgan_generator_loss",
    "lsgan_discriminator_loss",
    "cycle_loss",
    "identity_loss",
    "CycleGANLoss",
    "cyclegan_generator_loss",
    "ImagePool",
    "translate",
    "train_pix2pix",
    "train_cyclegan",
]

Spec = tuple[int, int]
ImageMap = Callable[[torch.Tensor], torch.Tensor]
NORMS = ("batch", "instance")


# --- scales ---------------------------------------------------------------------------------


def _to_model(x: torch.Tensor) -> torch.Tensor:
    """Data in [0, 1] -> the models' scale [-1, 1]."""
    return 2 * x - 1


def _to_data(x: torch.Tensor) -> torch.Tensor:
    """The models' scale [-1, 1] -> data in [0, 1]."""
    return ((x + 1) / 2).clamp(0, 1)


# --- networks ---------------------------------------------------------------------------------


def _norm(norm: str, channels: int) -> nn.Module:
    """BatchNorm, or pix2pix/CycleGAN's InstanceNorm (no affine parameters, no running statistics)."""
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels)


def _check_norm(norm: object) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")


def _widths(width: int, count: int) -> list[int]:
    """pix2pix's channel progression: ``width`` doubling per level, capped at ``8 * width`` (64 ... 512)."""
    return [width * 2 ** min(level, 3) for level in range(count)]


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: ``(B, in_channels, H, W)`` in [-1, 1] -> ``(B, out_channels, H, W)`` in [-1, 1].

    Arguments:

    - ``width``: channels of the first encoder level; each deeper level doubles them (at most
      ``8 * width``), so level ``l`` (``H / 2^l`` pixels high) has ``width * 2^min(l - 1, 3)``.
    - ``depth``: the number of halvings; ``H`` and ``W`` must be divisible by ``2 ** depth``
      (``depth = 2`` for 28x28: 28 -> 14 -> 7; ``depth = 3`` for 32x32 or 64x64).
    - ``norm``: ``"batch"`` (pix2pix) or ``"instance"`` (CycleGAN; the output for one image then
      never depends on the rest of the batch).
    - ``dropout``: the dropout rate of the innermost decoder layers (the three innermost, never
      the output layer; pix2pix's noise, 0.5). 0 switches it off, as CycleGAN does.
    - ``skips``: False removes the skip connections, giving the plain encoder-decoder that the
      pix2pix paper compares the U-Net with.

    Encoder level ``l`` computes ``h_l = norm(conv4x4/2(LeakyReLU(h_{l-1})))``, with ``h_0 = x``, no
    LeakyReLU before the first convolution and no normalisation after the first and the innermost
    (as in pix2pix). The decoder climbs back: ``u_{depth-1} = norm(convT4x4/2(ReLU(h_depth)))``, then
    ``u_{l-1} = norm(convT4x4/2(ReLU([u_l, h_l])))``, where ``[., .]`` concatenates the channels (the
    skip), and the output ``u_0`` ends in tanh instead of a normalisation.
    Convolutions followed by a normalisation have no bias (the normalisation's shift replaces it).

    The default (1 -> 1 channels, ``width=32``, ``depth=2``) has 67,233 parameters.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, width: int = 32, depth: int = 2, norm: str = "batch",
        dropout: float = 0.5, skips: bool = True,
    ):
        super().__init__()
        in_channels = positive_int(in_channels, "in_channels")
        out_channels = positive_int(out_channels, "out_channels")
        width = positive_int(width, "width")
        depth = positive_int(depth, "depth")
        _check_norm(norm)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
        self.in_channels, self.out_channels, self.depth, self.skips = in_channels, out_channels, depth, bool(skips)
        widths = _widths(width, depth)
        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(zip((in_channels, *widths[:-1]), widths)):
            normalised = 0 < level < depth - 1
            layers = [nn.LeakyReLU(0.2)] if level else []
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not normalised))
            self.down.append(nn.Sequential(*layers, *([_norm(norm, c_out)] if normalised else [])))
        self.up = nn.ModuleList()
        for level, c in enumerate(widths):
            c_in = c if level == depth - 1 or not self.skips else 2 * c
            if level == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            noise = [nn.Dropout(dropout)] if dropout and level >= depth - 3 else []
            c_out = widths[level - 1]
            upsample = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
            self.up.append(nn.Sequential(nn.ReLU(), upsample, _norm(norm, c_out), *noise))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        float_images(x, "x", self.in_channels)
        factor = 2**self.depth
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(
                f"x: expected H and W divisible by 2 ** depth = {factor} (depth={self.depth} halvings), "
                f"got {tuple(x.shape[2:])}"
            )
        features = []
        for down in self.down:
            x = down(x)
            features.append(x)
        for level in reversed(range(self.depth)):
            if level < self.depth - 1 and self.skips:
                x = torch.cat([x, features[level]], dim=1)
            x = self.up[level](x)
        return x


def patchgan_specs(layers: int = 3) -> list[Spec]:
    """pix2pix's PatchGAN convolutions as (kernel, stride) pairs: ``(4, 2)`` ``layers`` times, then ``(4, 1)`` twice."""
    layers = positive_int(layers, "layers")
    return [(4, 2)] * layers + [(4, 1), (4, 1)]


def _check_specs(specs: object) -> list[Spec]:
    specs = list(specs) if isinstance(specs, Sequence) else specs
    if (
        not isinstance(specs, list) or not specs
        or any(not isinstance(spec, Sequence) or len(spec) != 2 for spec in specs)
        or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for spec in specs for v in spec)
    ):
        raise ValueError(f"specs: expected a non-empty list of (kernel, stride) pairs of positive ints, got {specs!r}")
    return [tuple(spec) for spec in specs]


def receptive_field(specs: Sequence[Spec]) -> int:
    """The receptive field, in input pixels, of one output of convolutions ``[(kernel, stride), ...]``.

    Walks back from one output pixel: ``r <- stride * r + (kernel - stride)``. Padding does not
    change it. ``receptive_field(patchgan_specs(3)) == 70``.
    """
    field = 1
    for kernel, stride in reversed(_check_specs(specs)):
        field = stride * field + (kernel - stride)
    return field


def output_size(size: int, specs: Sequence[Spec], padding: int = 1) -> int:
    """The side of the output map of convolutions ``specs`` on a ``size``-pixel side, with ``padding`` per layer.

    Each layer maps ``n`` to ``floor((n + 2 padding - kernel) / stride) + 1``;
    ``output_size(256, patchgan_specs(3)) == 30``. Raises ValueError when the map vanishes.
    """
    size = positive_int(size, "size")
    padding = positive_int(padding, "padding", minimum=0)
    current = size
    for layer, (kernel, stride) in enumerate(_check_specs(specs)):
        current = (current + 2 * padding - kernel) // stride + 1
        if current < 1:
            raise ValueError(f"size: {size} pixels is too small for these convolutions (none left after layer {layer})")
    return current


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: images ``(B, in_channels, H, W)`` in [-1, 1] -> logits ``(B, 1, h, w)``, one per patch.

    The convolutions are :func:`patchgan_specs` ``(layers)`` (kernel 4, strides 2 x ``layers``, 1, 1,
    padding 1), with ``width * 2^min(i, 3)`` channels after convolution ``i`` and one logit channel at
    the end; LeakyReLU 0.2 between them and a normalisation after all but the first and the last.
    The map side is :func:`output_size` ``(H, self.specs)`` and each logit sees a square of
    ``self.receptive_field`` pixels: ``layers=3`` is the 70x70 PatchGAN (a 30x30 map on 256x256);
    on 28x28, ``layers=1`` judges 16-pixel patches on a 12x12 map and ``layers=2`` 34-pixel ones on
    a 5x5 map (see the table in the module docstring).

    For a conditional (pix2pix) discriminator ``in_channels`` is the sum of the source's and the
    target's channels; it is fed ``torch.cat([source, image], dim=1)``. At the defaults with
    ``in_channels=2`` it has 2,764,609 parameters; ``PatchDiscriminator(2, width=32, layers=2)``,
    a good size for MNIST, has 167,329.
    """

    def __init__(self, in_channels: int, width: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        in_channels = positive_int(in_channels, "in_channels")
        width = positive_int(width, "width")
        _check_norm(norm)
        self.in_channels, self.specs = in_channels, patchgan_specs(layers)
        self.receptive_field = receptive_field(self.specs)
        channels = [in_channels, *_widths(width, layers + 1), 1]
        last = len(self.specs) - 1
        modules: list[nn.Module] = []
        for i, (kernel, stride) in enumerate(self.specs):
            normalised = 0 < i < last
            modules.append(nn.Conv2d(channels[i], channels[i + 1], kernel, stride, padding=1, bias=not normalised))
            modules += [_norm(norm, channels[i + 1])] if normalised else []
            modules += [nn.LeakyReLU(0.2)] if i < last else []
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        float_images(x, "x", self.in_channels)
        try:
            for side in x.shape[2:]:
                output_size(side, self.specs)
        except ValueError as err:
            shape = tuple(x.shape[2:])
            raise ValueError(f"x: images of {shape} pixels are too small for {len(self.specs)} convolutions") from err
        return self.net(x)


def _without_instance_norm(module: nn.Module) -> None:
    """Replace every InstanceNorm in ``module`` by the identity (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            setattr(module, name, nn.Identity())
        else:
            _without_instance_norm(child)


def empirical_receptive_field(model: nn.Module, in_channels: int, size: int = 128, seed: Seed = 0) -> tuple[int, int]:
    """The receptive field of a convolutional ``model``, measured: ``(rows, cols)`` in input pixels.

    Feeds one random ``(1, in_channels, size, size)`` image to a copy of ``model`` in evaluation mode,
    back-propagates the sum over channels of the centre output pixel, and returns the height and
    width of the box of input pixels whose gradient is not zero. In evaluation mode BatchNorm acts
    pixel by pixel; InstanceNorm's statistics would spread every output over the whole image, so
    the copy goes without it (the receptive field is a property of the convolutions). Raises
    ValueError when the field reaches the border of the input: pick a larger ``size``.
    """
    in_channels = positive_int(in_channels, "in_channels")
    size = positive_int(size, "size")
    probe = copy.deepcopy(model).eval()
    _without_instance_norm(probe)
    device = module_device(probe)
    x = torch.randn(1, in_channels, size, size, generator=make_generator(seed)).to(device).requires_grad_(True)
    out = probe(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    touched = x.grad[0].abs().sum(0) != 0
    rows, cols = touched.any(1).nonzero().flatten(), touched.any(0).nonzero().flatten()
    if rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1:
        raise ValueError(f"size: the centre output's field reaches the border of a {size}x{size} input; try larger")
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


# --- losses (on [-1, 1] images and on discriminator logits) -------------------------------------


def _mean_absolute_error(reference: torch.Tensor, estimate: torch.Tensor, names: tuple[str, str]) -> torch.Tensor:
    float_images(reference, names[0])
    same_shape(estimate, names[1], reference, names[0])
    return (reference - estimate).abs().mean()


class Pix2PixLoss(NamedTuple):
    """The generator's loss and its parts: ``total = gan + l1_weight * l1`` (scalars)."""

    total: torch.Tensor
    gan: torch.Tensor
    l1: torch.Tensor


def pix2pix_generator_loss(
    fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor, l1_weight: float = 100.0
) -> Pix2PixLoss:
    """pix2pix's generator loss: the non-saturating conditional GAN term plus ``l1_weight`` times L1.

    ``fake_logits``: ``D(x, G(x))``, the discriminator's logits for the generated pairs, any shape
    (a PatchGAN's ``(B, 1, h, w)``); ``gan = mean(-log sigmoid(fake_logits))``, the cross-entropy
    with target "real" (:func:`dgm.gan.generator_loss_nonsaturating`). ``fake`` ``G(x)`` and
    ``target`` ``y``: images ``(B, C, H, W)`` in [-1, 1]; ``l1 = mean |y - G(x)|``.
    """
    non_negative(l1_weight, "l1_weight")
    l1 = _mean_absolute_error(target, fake, ("target", "fake"))
    gan = generator_loss_nonsaturating(fake_logits)
    return Pix2PixLoss(gan + l1_weight * l1, gan, l1)


def _check_logit_pair(real_logits: object, fake_logits: object) -> None:
    if not torch.is_tensor(real_logits) or not real_logits.is_floating_point():
        raise ValueError(f"real_logits: expected a float tensor of logits, got {describe(real_logits)}")
    same_shape(fake_logits, "fake_logits", real_logits, "real_logits")


def pix2pix_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``0.5 [BCE(D(x, y), real) + BCE(D(x, G(x)), fake)]``, means over all logits: half of
    :func:`dgm.gan.discriminator_loss`, as in pix2pix.

    ``real_logits`` and ``fake_logits``: the discriminator's logits for real and generated pairs, of
    the same shape. ``log 2`` when ``D`` outputs 0 everywhere (it cannot tell).
    """
    _check_logit_pair(real_logits, fake_logits)
    return 0.5 * discriminator_loss(real_logits, fake_logits)


def lsgan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The least-squares GAN generator loss ``mean (D(G(a)) - 1)^2`` on the discriminator's raw outputs."""
    if not torch.is_tensor(fake_logits) or not fake_logits.is_floating_point():
        raise ValueError(f"fake_logits: expected a float tensor of D's outputs, got {describe(fake_logits)}")
    return (fake_logits - 1).square().mean()


def lsgan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The least-squares GAN discriminator loss ``0.5 [mean (D(b) - 1)^2 + mean D(G(a))^2]`` (0 for a perfect D)."""
    _check_logit_pair(real_logits, fake_logits)
    return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())


def cycle_loss(x: torch.Tensor, x_back: torch.Tensor) -> torch.Tensor:
    """Cycle consistency ``mean |x - F(G(x))|``: ``x_back`` is ``x`` translated there and back (same shape)."""
    return _mean_absolute_error(x, x_back, ("x", "x_back"))


def identity_loss(y: torch.Tensor, g_of_y: torch.Tensor) -> torch.Tensor:
    """The identity term ``mean |G(y) - y|``: a generator given an image of its target domain should leave it alone."""
    return _mean_absolute_error(y, g_of_y, ("y", "g_of_y"))


class CycleGANLoss(NamedTuple):
    """The generators' loss, its parts, and the translations for the discriminators' step.

    ``total = adversarial + lambda_cycle * cycle + lambda_identity * identity``; each part sums the two
    directions. ``fake_b = G(a)`` and ``fake_a = F(b)`` are ``[-1, 1]`` images attached to the graph.
    """

    total: torch.Tensor
    adversarial: torch.Tensor
    cycle: torch.Tensor
    identity: torch.Tensor
    fake_b: torch.Tensor
    fake_a: torch.Tensor


def cyclegan_generator_loss(
    g_ab: ImageMap, g_ba: ImageMap, d_a: ImageMap, d_b: ImageMap, real_a: torch.Tensor, real_b: torch.Tensor,
    lambda_cycle: float = 10.0, lambda_identity: float | None = None,
) -> CycleGANLoss:
    """CycleGAN's generator objective on a batch of each domain (images ``(B, C, H, W)`` in [-1, 1]).

    ``g_ab`` is ``G: A -> B``, ``g_ba`` is ``F: B -> A``; ``d_a`` and ``d_b`` return logit maps.
    ``adversarial = LSGAN(D_B(G(a))) + LSGAN(D_A(F(b)))``, ``cycle = |F(G(a)) - a| + |G(F(b)) - b|``,
    ``identity = |G(b) - b| + |F(a) - a|`` (the identity term needs both domains to have the same
    channels). ``lambda_identity=None`` means the paper's ``0.5 * lambda_cycle``; 0 skips the two
    identity passes.
    """
    float_images(real_a, "real_a")
    float_images(real_b, "real_b")
    non_negative(lambda_cycle, "lambda_cycle")
    lambda_identity = 0.5 * lambda_cycle if lambda_identity is None else lambda_identity
    non_negative(lambda_identity, "lambda_identity")
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    adversarial = lsgan_generator_loss(d_b(fake_b)) + lsgan_generator_loss(d_a(fake_a))
    cycle = cycle_loss(real_a, g_ba(fake_b)) + cycle_loss(real_b, g_ab(fake_a))
    if lambda_identity:
        identity = identity_loss(real_b, g_ab(real_b)) + identity_loss(real_a, g_ba(real_a))
    else:
        identity = torch.zeros((), device=real_a.device)
    total = adversarial + lambda_cycle * cycle + lambda_identity * identity
    return CycleGANLoss(total, adversarial, cycle, identity, fake_b, fake_a)


class ImagePool:
    """A history of up to ``size`` generated images for the discriminator (CycleGAN; Shrivastava et al. 2017).

    :meth:`query` takes a batch and returns a batch of the same shape, image by image: while the
    pool holds fewer than ``size`` images, the new image is stored and returned; once it is full,
    with probability 1/2 a random stored image is returned and the new one takes its place, else
    the new image is returned and the pool is unchanged. ``size=0`` returns every batch as it is.
    Seeded: the same ``seed`` and batches give the same outputs. Images are stored and returned
    detached from the graph.
    """

    def __init__(self, size: int = 50, seed: Seed = None):
        size = positive_int(size, "size", minimum=0)
        self.size, self.generator = size, make_generator(seed)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, ...)`` generated images -> ``(B, ...)`` images, each new or from the history."""
        if not torch.is_tensor(images) or images.ndim < 2:
            raise ValueError(f"images: expected a batch of images (B, C, H, W), got {describe(images)}")
        if self.images and images.shape[1:] != self.images[0].shape:
            stored, given = tuple(self.images[0].shape), tuple(images.shape[1:])
            raise ValueError(f"images: expected images of shape {stored}, like those stored, got {given}")
        if self.size == 0:
            return images.detach()
        returned = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                returned.append(self.images[index])
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.stack(returned)


# --- training and use (data in [0, 1]) ------------------------------------------------------------


@torch.no_grad()
def translate(generator: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Run ``generator`` on data: ``images`` ``(N, C, H, W)`` in [0, 1] -> outputs in [0, 1], on the CPU.

    Evaluation mode (no dropout, BatchNorm's running statistics); the mode is restored afterwards.
    """
    unit_images(images, "images")
    batch_size = positive_int(batch_size, "batch_size")
    device = module_device(generator)
    with evaluating(generator):
        outputs = [
            _to_data(generator(_to_model(images[i : i + batch_size].to(device)))).cpu()
            for i in range(0, len(images), batch_size)
        ]
    return torch.cat(outputs)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _conditional(discriminator: nn.Module, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """pix2pix's discriminator sees the source and an image side by side: ``D(cat([x, y], channels))``."""
    return discriminator(torch.cat([source, image], dim=1))


def train_pix2pix(
    generator: nn.Module, discriminator: nn.Module | None, sources: torch.Tensor, targets: torch.Tensor, *,
    steps: int | None = None, seconds: float | None = None, batch_size: int = 64, l1_weight: float = 100.0,
    lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), gan: bool = True, seed: int = 0,
    device: str | torch.device | None = None, progress: bool = True,
) -> dict[str, list[float]]:
    """Train pix2pix on pairs ``(sources[i], targets[i])`` (``(N, C, H, W)`` in [0, 1]) until ``steps`` or ``seconds``.

    Each step draws a batch, takes one Adam step on the discriminator with
    :func:`pix2pix_discriminator_loss` (on ``cat([x, y])`` and ``cat([x, G(x)])``), then one on the
    generator with :func:`pix2pix_generator_loss`. With ``gan=False`` the generator minimises the
    L1 loss alone (the baseline; ``discriminator`` is unused and may be None). Both models are
    left in evaluation mode. Seeded: the same seed, data and step budget repeat exactly on a CPU.

    Returns the per-step history: ``{"l1": [...]}``, plus ``"gan"`` (the generator's cGAN term) and
    ``"d"`` (the discriminator's loss) when ``gan`` is true.
    """
    unit_images(sources, "sources")
    unit_images(targets, "targets")
    if len(targets) != len(sources) or targets.shape[2:] != sources.shape[2:]:
        expected = f"({len(sources)}, C, {sources.shape[2]}, {sources.shape[3]})"
        raise ValueError(f"targets: expected one target per source, of its size, {expected}, got {describe(targets)}")
    non_negative(l1_weight, "l1_weight")
    if gan and discriminator is None:
        raise ValueError("discriminator: expected a module when gan=True, got None")
    budget = Budget(steps, seconds, progress=progress)
    torch.manual_seed(seed)  # dropout draws from the global generator
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas) if gan else None

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        source, target = (_to_model(t) for t in batch)
        fake = generator(source)
        if not gan:
            l1 = _mean_absolute_error(target, fake, ("target", "fake"))
            _update(g_optimizer, l1)
            return {"l1": l1.item()}
        d_loss = pix2pix_discriminator_loss(
            _conditional(discriminator, source, target), _conditional(discriminator, source, fake.detach())
        )
        _update(d_optimizer, d_loss)
        loss = pix2pix_generator_loss(_conditional(discriminator, source, fake), fake, target, l1_weight)
        _update(g_optimizer, loss.total)
        return {"l1": loss.l1.item(), "gan": loss.gan.item(), "d": d_loss.item()}

    models = [generator] + ([discriminator] if gan else [])
    data = batches(sources, targets, batch_size=batch_size, seed=seed)
    return _by_name(train_steps(step, models, data, budget, device=device), ["l1", "gan", "d"] if gan else ["l1"])


def train_cyclegan(
    g_ab: nn.Module, g_ba: nn.Module, d_a: nn.Module, d_b: nn.Module, domain_a: torch.Tensor, domain_b: torch.Tensor, *,
    steps: int | None = None, seconds: float | None = None, batch_size: int = 32, lambda_cycle: float = 10.0,
    lambda_identity: float | None = None, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
    pool_size: int = 50, seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
) -> dict[str, list[float]]:
    """Train CycleGAN on unpaired collections ``domain_a`` and ``domain_b`` (``(N, C, H, W)`` in [0, 1]).

    Each step draws a batch from each domain (independently), takes one Adam step on both generators
    with :func:`cyclegan_generator_loss`, then one on both discriminators with
    :func:`lsgan_discriminator_loss`, the fakes drawn through an :class:`ImagePool` of ``pool_size``
    per domain. Constant learning rate (the paper also decays it linearly over a second half of
    training). The models are left in evaluation mode. Seeded.

    Returns the per-step history: ``"total"``, ``"adversarial"``, ``"cycle"``, ``"identity"`` (the
    generators' loss and its parts, see :class:`CycleGANLoss`), ``"d_a"`` and ``"d_b"``.
    """
    unit_images(domain_a, "domain_a")
    unit_images(domain_b, "domain_b")
    budget = Budget(steps, seconds, progress=progress)
    torch.manual_seed(seed)
    generators, discriminators = (g_ab, g_ba), (d_a, d_b)
    g_optimizer = torch.optim.Adam(itertools.chain(*(m.parameters() for m in generators)), lr=lr, betas=betas)
    d_optimizer = torch.optim.Adam(itertools.chain(*(m.parameters() for m in discriminators)), lr=lr, betas=betas)
    generator = make_generator(seed)
    pool_a, pool_b = ImagePool(pool_size, generator), ImagePool(pool_size, generator)
    stream_a = batches(domain_a, batch_size=batch_size, seed=generator)
    stream_b = batches(domain_b, batch_size=batch_size, seed=generator)
    names = ("total", "adversarial", "cycle", "identity", "d_a", "d_b")

    def step(batch: tuple[tuple[torch.Tensor], tuple[torch.Tensor]]) -> dict[str, float]:
        (real_a,), (real_b,) = batch
        real_a, real_b = _to_model(real_a), _to_model(real_b)
        loss = cyclegan_generator_loss(g_ab, g_ba, d_a, d_b, real_a, real_b, lambda_cycle, lambda_identity)
        _update(g_optimizer, loss.total)
        d_loss_a = lsgan_discriminator_loss(d_a(real_a), d_a(pool_a.query(loss.fake_a)))
        d_loss_b = lsgan_discriminator_loss(d_b(real_b), d_b(pool_b.query(loss.fake_b)))
        _update(d_optimizer, d_loss_a + d_loss_b)
        return {name: value.item() for name, value in zip(names, (*loss[:4], d_loss_a, d_loss_b))}

    history = train_steps(step, [*generators, *discriminators], zip(stream_a, stream_b), budget, device=device)
    return _by_name(history, names)


def _by_name(history: list[dict[str, float]], names: Sequence[str]) -> dict[str, list[float]]:
    """A per-step history as one list per number: ``{name: [value at step 0, 1, ...]}``."""
    return {name: [stats[name] for stats in history] for name in names}
