"""Autoregressive models: the chain rule, made into networks.

Any distribution over ``D`` variables factorizes by the chain rule,

    p(x) = prod_{i=1}^{D} p(x_i | x_1, ..., x_{i-1}),

so a model that predicts each variable from the ones before it is a complete
generative model: its log-likelihood is a sum of easy terms and it samples one
variable at a time (ancestral sampling).

**Text.** :class:`NGramModel` predicts the next character from the previous
``order - 1`` (counts with add-alpha smoothing: the maximum-likelihood fit of a
categorical per context, as in lecture 1).

**Images.** A PixelCNN orders the pixels of an ``H x W`` image in raster order
(row by row, left to right) and predicts ``p(x_i | x_<i)`` for all ``i`` at once
with *masked* convolutions that never look at pixel ``i`` or later:

- mask **A** (first layer) hides the centre pixel as well: output ``i`` may not see input ``i``;
- mask **B** (later layers) lets a feature at ``i`` see the feature at ``i``, which
  itself only saw pixels ``< i``.

Stacking raster-masked 3x3 convolutions leaves a **blind spot**: pixels up and to
the right that are earlier in raster order but never reach the output.
:class:`GatedPixelCNN` removes it with two stacks (van den Oord et al., 2016):
a *vertical* stack that sees every row above (full width), and a *horizontal*
stack that sees the current row to the left and receives the vertical stack,
with gated activations ``tanh(a) * sigmoid(b)``.

Images here are binary, ``(B, 1, H, W)`` with values in {0, 1}; each pixel is a
Bernoulli whose logit the network outputs. ``log_prob`` is in nats per image.
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn
from torch.nn import functional as F

from dgm.device import Seed, evaluating, make_generator, module_device

__all__ = [
    "MaskedConv2d",
    "PixelCNN",
    "GatedPixelCNN",
    "log_prob",
    "nll_loss",
    "sample",
    "dependency_map",
    "NGramModel",
    "evaluate_nll",
]


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded convolution whose kernel is multiplied by a causal mask.

    ``mask``: ``"A"`` excludes the centre tap, ``"B"`` includes it.
    ``stack``:
      - ``"raster"`` (k x k): rows above the centre, and the centre row left of the centre;
      - ``"vertical"`` (k x k): rows above the centre (and the centre row itself for ``"B"``);
      - ``"horizontal"`` (1 x k): the centre row, left of the centre (and the centre for ``"B"``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: str = "B", stack: str = "raster"):
        if mask not in ("A", "B"):
            raise ValueError(f"mask: expected 'A' or 'B', got {mask!r}")
        if stack not in ("raster", "vertical", "horizontal"):
            raise ValueError(f"stack: expected 'raster', 'vertical' or 'horizontal', got {stack!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive int, got {kernel_size!r}")
        shape = (1, kernel_size) if stack == "horizontal" else (kernel_size, kernel_size)
        super().__init__(in_channels, out_channels, shape, padding=(shape[0] // 2, shape[1] // 2))
        centre, inclusive = kernel_size // 2, int(mask == "B")
        kernel_mask = torch.zeros(shape)
        if stack == "raster":
            kernel_mask[:centre] = 1
            kernel_mask[centre, : centre + inclusive] = 1
        elif stack == "vertical":
            kernel_mask[: centre + inclusive] = 1
        else:
            kernel_mask[0, : centre + inclusive] = 1
        self.register_buffer("mask", kernel_mask[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _check_binary_images(x: torch.Tensor) -> None:
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x: expected binary images of shape (B, 1, H, W), got {getattr(x, 'shape', type(x))}")


class PixelCNN(nn.Module):
    """The plain PixelCNN: a 7x7 mask-A convolution, residual blocks with a 3x3 mask-B
    convolution between 1x1 convolutions, and a 1x1 head giving one logit per pixel.

    ``(B, 1, H, W)`` in {0, 1} -> logits ``(B, 1, H, W)``. Has a blind spot.
    """

    def __init__(self, channels: int = 64, blocks: int = 5, kernel_size: int = 3):
        super().__init__()
        half = channels // 2
        self.stem = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(), nn.Conv2d(channels, half, 1),
                nn.ReLU(), MaskedConv2d(half, half, kernel_size, "B"),
                nn.ReLU(), nn.Conv2d(half, channels, 1),
            )
            for _ in range(blocks)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_binary_images(x)
        h = self.stem((2 * x - 1).contiguous(memory_format=torch.channels_last))
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


class GatedLayer(nn.Module):
    """One gated layer: vertical and horizontal stacks, the vertical feeding the horizontal."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.vertical = MaskedConv2d(channels, 2 * channels, kernel_size, "B", "vertical")
        self.horizontal = MaskedConv2d(channels, 2 * channels, kernel_size, "B", "horizontal")
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def gate(features: torch.Tensor) -> torch.Tensor:
        a, b = features.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_features = self.vertical(v)
        # The vertical features at (i, j) saw only rows < i, so the horizontal stack may use them as they are.
        h_features = self.horizontal(h) + self.vertical_to_horizontal(v_features)
        return self.gate(v_features), h + self.horizontal_out(self.gate(h_features))


class GatedPixelCNN(nn.Module):
    """PixelCNN without a blind spot: gated vertical + horizontal stacks.

    ``(B, 1, H, W)`` in {0, 1} -> logits ``(B, 1, H, W)``. The first layer uses
    mask A in both stacks (vertical: rows strictly above; horizontal: pixels
    strictly to the left), so output ``i`` depends exactly on inputs ``< i``
    within the receptive field.
    """

    def __init__(self, channels: int = 32, layers: int = 6, kernel_size: int = 3, first_kernel: int = 7):
        super().__init__()
        self.vertical_in = MaskedConv2d(1, channels, first_kernel, "A", "vertical")
        self.horizontal_in = MaskedConv2d(1, channels, first_kernel, "A", "horizontal")
        self.layers = nn.ModuleList(GatedLayer(channels, kernel_size) for _ in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_binary_images(x)
        # (Unlike the plain PixelCNN, this one is slower in channels-last memory on a CPU: the gates split channels.)
        x = 2 * x - 1
        v = self.vertical_in(x)
        h = self.horizontal_in(x) + v
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)


def log_prob(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``log p(x)`` in nats per image ``(B,)`` for binary images ``(B, 1, H, W)``."""
    logits = model(x)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def nll_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean negative log-likelihood in nats per image: the training loss (for :func:`dgm.train.fit`)."""
    return -log_prob(model, batch[0]).mean()


@torch.no_grad()
def evaluate_nll(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> float:
    """Mean negative log-likelihood in nats per image of binary ``images`` ``(N, 1, H, W)``."""
    device = module_device(model)
    with evaluating(model):
        total = sum(-log_prob(model, images[i : i + batch_size].to(device)).sum().item()
                    for i in range(0, len(images), batch_size))
    return total / len(images)


@torch.no_grad()
def sample(
    model: nn.Module,
    n: int,
    shape: tuple[int, int, int] = (1, 28, 28),
    seed: Seed = 0,
    given: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
    frames: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Ancestral sampling in raster order: ``n`` binary images ``(n, *shape)`` in {0, 1}.

    Completion: pass ``given`` images ``(n, *shape)`` and a boolean ``known`` mask
    (``(*shape)`` or ``(n, *shape)``); known pixels are copied, the rest sampled
    from ``p(x_i | x_<i)``. With ``frames > 0`` also returns that many snapshots
    taken evenly along the way (for a filmstrip or an animation).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    device = module_device(model)
    generator = make_generator(seed)
    x = torch.zeros(n, *shape)
    keep = torch.zeros(n, *shape, dtype=torch.bool)
    if given is not None or known is not None:
        if given is None or known is None:
            raise ValueError("given and known: pass both (the image to complete and which pixels are known)")
        if tuple(given.shape) != (n, *shape):
            raise ValueError(f"given: expected shape {(n, *shape)}, got {tuple(given.shape)}")
        keep = known.to(torch.bool).expand(n, *shape).clone()
        x = torch.where(keep, given.float().cpu(), x)
    with evaluating(model):
        height, width = shape[1], shape[2]
        snapshots, every = [], max(1, (height * width) // frames) if frames else 0
        for index in range(height * width):
            row, col = divmod(index, width)
            if not keep[:, :, row, col].all():
                logits = model(x.to(device))[:, :, row, col].cpu()
                draw = torch.bernoulli(torch.sigmoid(logits), generator=generator)
                x[:, :, row, col] = torch.where(keep[:, :, row, col], x[:, :, row, col], draw)
            if every and (index + 1) % every == 0:
                snapshots.append(x.clone())
    return (x, snapshots) if frames else x


def dependency_map(model: nn.Module, row: int, col: int, shape: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Which input pixels the logit at ``(row, col)`` depends on: a boolean ``(H, W)`` map from
    the gradient of that output with respect to a random input (nonzero = depends)."""
    height, width = shape
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"row, col: expected a pixel inside {shape}, got ({row}, {col})")
    x = torch.rand(1, 1, height, width, generator=make_generator(0)).to(module_device(model))
    x.requires_grad_(True)
    model(x)[0, 0, row, col].backward()
    return (x.grad[0, 0].abs() > 0).cpu()


class NGramModel:
    """A character n-gram model: ``p(c_t | c_{t-n+1} .. c_{t-1})`` by counting, with add-alpha smoothing.

    ``order = 1`` ignores the context (a unigram), ``order = 2`` is a bigram, and so on.
    The text is padded on the left with ``order - 1`` start symbols (``"\\x02"``).
    """

    START = "\x02"

    def __init__(self, order: int = 3, alpha: float = 0.1):
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order: expected a positive int, got {order!r}")
        if alpha <= 0:
            raise ValueError(f"alpha: expected a positive smoothing count, got {alpha!r}")
        self.order, self.alpha = order, alpha
        self.vocabulary: list[str] = []
        self.counts: dict[str, Counter] = {}

    def fit(self, text: str) -> "NGramModel":
        """Count every (context, next character) pair of ``text``."""
        if not text:
            raise ValueError("text: expected a non-empty string")
        self.vocabulary = sorted(set(text))
        self.counts = {}
        padded, width = self.START * (self.order - 1) + text, self.order - 1
        for t, char in enumerate(text):
            self.counts.setdefault(padded[t : t + width], Counter())[char] += 1
        return self

    def _context(self, text: str) -> str:
        """The last ``order - 1`` characters of ``text``, padded with start symbols."""
        if self.order == 1:
            return ""
        return (self.START * (self.order - 1) + text)[-(self.order - 1) :]

    def probabilities(self, context: str) -> dict[str, float]:
        """``p(next | context)`` over the vocabulary (only the last ``order - 1`` characters matter)."""
        if not self.vocabulary:
            raise RuntimeError("NGramModel: call fit(text) first")
        counts = self.counts.get(self._context(context), Counter())
        total = sum(counts.values()) + self.alpha * len(self.vocabulary)
        return {c: (counts[c] + self.alpha) / total for c in self.vocabulary}

    def log_prob(self, text: str) -> float:
        """``log p(text) = sum_t log p(c_t | c_<t)`` in nats (characters outside the vocabulary are an error)."""
        unknown = set(text) - set(self.vocabulary)
        if unknown:
            raise ValueError(f"text: characters not in the training vocabulary: {sorted(unknown)}")
        return sum(math.log(self.probabilities(text[:t])[char]) for t, char in enumerate(text))

    def sample(self, length: int, prompt: str = "", seed: Seed = 0) -> str:
        """Continue ``prompt`` by ``length`` characters, each drawn from ``p(next | context)``."""
        generator = make_generator(seed)
        text = prompt
        for _ in range(length):
            probabilities = self.probabilities(text)
            weights = torch.tensor(list(probabilities.values()), dtype=torch.float64)
            text += self.vocabulary[torch.multinomial(weights, 1, generator=generator).item()]
        return text
