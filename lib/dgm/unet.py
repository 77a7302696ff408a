"""A small time- and class-conditional U-Net for 28x28 diffusion, designed for CPU speed.

A diffusion model is trained to undo noise: given a noisy image
``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``, the timestep ``t`` and
(optionally) a class label ``y``, the network predicts the noise, ``eps_hat(x_t, t, y)``.
Its output has the shape of its input, so the network of choice is a **U-Net**: an
encoder that halves the resolution level by level, a decoder that doubles it back,
and skip connections that hand each decoder level the encoder's features at the same
resolution, so fine detail need not squeeze through the bottleneck::

    x (B, 1, 28, 28) -> 3x3 conv -> block(c0) ------------- concat -> block(c0) -> norm, SiLU, 3x3 conv -> eps_hat
                                      | stride-2 conv          ^ nearest x2
                           14x14:   block(c1) ------- concat -> block(c1)
                                      | stride-2 conv    ^ nearest x2
                             7x7:   block(c2) - concat -> block(c2)

with ``channels = (c0, c1, c2) = (16, 32, 64)`` by default (any number of levels works;
``H`` and ``W`` must be divisible by ``2 ** (levels - 1)``, i.e. by 4 for three levels).

**Residual block.** ``h = conv3x3(SiLU(GroupNorm(x)))``, plus a per-channel bias computed
from the conditioning embedding (this is how ``t`` and ``y`` reach every level), then
``h = conv3x3(SiLU(GroupNorm(h)))`` and the output ``skip(x) + h`` (``skip`` is the identity,
or a 1x1 conv when the channel count changes).

**GroupNorm, not BatchNorm.** GroupNorm normalises each example over groups of its own
channels, so the output for one image never depends on the others in the batch, and
the network behaves the same in training and evaluation, at any batch size (sampling
often runs on a handful of images).

**Conditioning.** The timestep becomes sinusoidal features (:func:`sinusoidal_embedding`,
the Transformer's position encoding), followed by a small MLP. A learned class embedding
with ``num_classes + 1`` rows is added to it; the last row, index ``num_classes``
(``model.null_label``), is the **null class** "no label". Training with a fraction of the
labels replaced by the null class (say 10%) teaches one network both ``eps(x_t, t, y)`` and
``eps(x_t, t)``, which is what classifier-free guidance combines at sampling time:
``eps_uncond + w (eps_cond - eps_uncond)``. ``labels=None`` means the null class for every
example. With ``num_classes=0`` (or ``None``) the model is unconditional and has no class
embedding.

**Zero output at initialisation.** The last convolution starts at zero, so the untrained
network predicts ``eps_hat = 0`` (the mean of the noise) and training starts from a loss
of about 1 per pixel rather than from random large outputs.

**Designed for a CPU.** Nearly all the time goes into the 3x3 convolutions at 28x28, so the
network keeps few channels there and does as little as possible at that resolution:

- one residual block per level and direction, no attention and no bottleneck block
  (the deepest level's two blocks, four 3x3 convolutions, already span its whole 7x7 map);
- the stride-2 convolution that enters a level also changes the channel count, so the
  encoder's blocks need no 1x1 projection;
- upsampling is nearest-neighbour with no convolution of its own: the decoder block's
  first 3x3 convolution, right after it, mixes the upsampled and the skip features.

The default model has 314,305 parameters; a training step (forward, backward and Adam) on
a batch of 128 took 0.43 s on one CPU thread (``OMP_NUM_THREADS=1``, torch 2.13).

Shapes: ``x`` ``(B, C, H, W)`` float images in [-1, 1] (the diffusion scale), ``t`` ``(B,)``,
``labels`` ``(B,)`` or None; the output is ``(B, C, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dgm.checks import describe

__all__ = ["sinusoidal_embedding", "ResidualBlock", "UNet"]


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of timesteps: ``(B,)`` -> ``(B, dim)`` float32, values in [-1, 1].

    Feature ``k < dim / 2`` is ``sin(t * f_k)`` and feature ``dim / 2 + k`` is ``cos(t * f_k)``,
    with frequencies ``f_k = max_period ** (-k / (dim / 2))`` from 1 down towards ``1 / max_period``:
    fast features tell nearby timesteps apart, slow ones say roughly where ``t`` is. ``t`` may be
    integer timesteps or real numbers; ``dim`` must be even.
    """
    if not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"dim: expected a positive even int, got {dim!r}")
    if not torch.is_tensor(t) or t.ndim != 1:
        raise ValueError(f"t: expected a 1-D tensor of timesteps (B,), got {describe(t)}")
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResidualBlock(nn.Module):
    """``skip(x) + conv(SiLU(GroupNorm(conv(SiLU(GroupNorm(x))) + bias(embedding))))``.

    ``forward(x, embedding)``: ``x`` ``(B, in_channels, H, W)`` and the conditioning
    ``embedding`` ``(B, embedding_dim)`` (already passed through a SiLU) ->
    ``(B, out_channels, H, W)``. The embedding enters as one bias per output channel,
    added after the first convolution. ``groups`` must divide both channel counts.
    """

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.embedding(embedding)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """The noise predictor ``eps_hat(x_t, t, y)``: a U-Net with one :class:`ResidualBlock` per level and direction.

    Arguments:

    - ``channels``: the width of each resolution level, from the full resolution down; each
      level halves ``H`` and ``W`` (default ``(16, 32, 64)``: 28x28, 14x14, 7x7). Every entry
      must be a positive multiple of ``groups``.
    - ``num_classes``: the number of classes of a class-conditional model (labels ``0 ..
      num_classes - 1``, plus ``num_classes`` for the null class); ``0`` or ``None`` makes
      the model unconditional.
    - ``in_channels``: the image's channels (1 for MNIST, 3 for colour).
    - ``time_dim``: the width of the conditioning embedding (even).
    - ``groups``: the number of GroupNorm groups in every normalisation layer.

    ``forward(x, t, labels=None)``:

    - ``x``: noisy images ``(B, in_channels, H, W)``, floats on the [-1, 1] scale of the data
      plus noise, ``H`` and ``W`` divisible by ``2 ** (len(channels) - 1)``;
    - ``t``: ``(B,)`` timesteps, int64 in ``[0, T)``, or floats on the same scale (say ``s * T`` for
      a continuous time ``s`` in [0, 1]); integers and the equal floats give the same output, since
      the network sees ``t`` only through :func:`sinusoidal_embedding`;
    - ``labels``: int64 (or int32) ``(B,)`` in ``[0, num_classes]``, the last value being ``null_label``;
      None means ``null_label`` for every example (and is the only choice for an unconditional model).

    Returns ``eps_hat`` of the shape of ``x`` (exactly zero before training).
    """

    def __init__(
        self, channels: Sequence[int] = (16, 32, 64), num_classes: int | None = 10, in_channels: int = 1,
        time_dim: int = 64, groups: int = 8,
    ):
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups: expected a positive int, got {groups!r}")
        channels = tuple(channels)
        if not channels or any(not isinstance(c, int) or c < 1 or c % groups for c in channels):
            raise ValueError(
                f"channels: expected one or more positive multiples of groups={groups} "
                f"(GroupNorm splits every layer's channels into that many groups), got {channels!r}"
            )
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
            raise ValueError(f"num_classes: expected a non-negative int or None (unconditional), got {num_classes!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels: expected a positive int, got {in_channels!r}")
        if not isinstance(time_dim, int) or time_dim < 2 or time_dim % 2:
            raise ValueError(f"time_dim: expected a positive even int, got {time_dim!r}")
        self.channels, self.in_channels, self.time_dim = channels, in_channels, time_dim
        self.num_classes = num_classes or 0
        self.null_label: int | None = self.num_classes if self.num_classes else None

        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.class_embedding = nn.Embedding(self.num_classes + 1, time_dim) if self.num_classes else None
        # Each level is entered by a 3x3 conv: from the image at stride 1, then from the level above at stride 2.
        self.entries = nn.ModuleList(
            nn.Conv2d(c_in, c, 3, stride=1 if level == 0 else 2, padding=1)
            for level, (c_in, c) in enumerate(zip((in_channels, *channels[:-1]), channels))
        )
        self.down_blocks = nn.ModuleList(ResidualBlock(c, c, time_dim, groups) for c in channels)
        # The decoder block of a level sees the level below (upsampled; the deepest sees itself) and the skip.
        below = (*channels[1:], channels[-1])
        self.up_blocks = nn.ModuleList(ResidualBlock(b + c, c, time_dim, groups) for b, c in zip(below, channels))
        self.head = nn.Sequential(
            nn.GroupNorm(groups, channels[0]), nn.SiLU(), nn.Conv2d(channels[0], in_channels, 3, padding=1)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> None:
        factor = 2 ** (len(self.channels) - 1)
        if (
            not torch.is_tensor(x) or not x.is_floating_point() or x.ndim != 4 or x.shape[1] != self.in_channels
            or x.shape[2] % factor or x.shape[3] % factor
        ):
            raise ValueError(
                f"x: expected float images of shape (B, {self.in_channels}, H, W) with H and W divisible by "
                f"{factor} ({len(self.channels)} resolution levels), got {describe(x)}"
            )
        batch = x.shape[0]
        if not torch.is_tensor(t) or t.ndim != 1 or len(t) != batch or t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"t: expected {batch} timesteps, an int64 or float tensor ({batch},), got {describe(t)}")
        if labels is None:
            return
        if not self.num_classes:
            raise ValueError("labels: this model is unconditional (num_classes=0); pass labels=None")
        if not torch.is_tensor(labels) or labels.dtype not in (torch.int64, torch.int32) or labels.shape != (batch,):
            raise ValueError(f"labels: expected an int64 tensor of shape ({batch},), got {describe(labels)}")
        if batch and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(
                f"labels: expected values in [0, {self.num_classes}] ({self.num_classes} is the null class), "
                f"got values from {labels.min().item()} to {labels.max().item()}"
            )

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(x, t, labels)
        embedding = self.time_mlp(sinusoidal_embedding(t, self.time_dim).to(x.dtype))
        if self.class_embedding is not None:
            if labels is None:
                labels = torch.full((len(x),), self.null_label, dtype=torch.int64, device=x.device)
            embedding = embedding + self.class_embedding(labels)
        embedding = F.silu(embedding)

        h, skips = x, []
        for entry, block in zip(self.entries, self.down_blocks):
            h = block(entry(h), embedding)
            skips.append(h)
        for level in reversed(range(len(self.channels))):
            if level < len(self.channels) - 1:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = self.up_blocks[level](torch.cat([h, skips[level]], dim=1), embedding)
        return self.head(h)
