"""Small building blocks that several models share.

- :func:`mlp` and :func:`hidden_widths`: the fully connected networks of the VAEs and the toy GANs;
- :func:`gaussian_kernel`: the 1-D Gaussian behind every blur in the course (degraded digits for
  pix2pix, the blur view and the frequency bands of the illusions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


def hidden_widths(hidden: int | Sequence[int]) -> tuple[int, ...]:
    """``hidden`` as a tuple of layer widths: one int (one hidden layer) or a sequence of positive ints."""
    widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"hidden: expected a positive int or a sequence of them, got {hidden!r}")
    return widths


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation()`` between
    consecutive ones and none after the last (the output is a raw score, mean or logit)."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(width_in, width_out), activation()]
    return nn.Sequential(*layers[:-1])


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian ``exp(-k^2 / (2 sigma^2))``, ``k = -r..r`` with ``r = max(1, ceil(3 sigma))``.

    Shape ``(2r + 1,)``, sums to 1. Apply it along rows and then columns for a 2-D blur.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not sigma > 0:
        raise ValueError(f"sigma: expected a positive number of pixels, got {sigma!r}")
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()
