"""The shared building blocks: MLPs and the Gaussian kernel behind every blur."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dgm.blocks import gaussian_kernel, hidden_widths, mlp


def test_mlp_has_the_widths_and_an_activation_between_layers_but_not_after_the_last():
    net = mlp([3, 8, 5, 2], lambda: nn.LeakyReLU(0.2))
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 5), (5, 2)]
    assert [type(m).__name__ for m in net] == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"]
    assert isinstance(mlp([4, 4, 1])[1], nn.ReLU), "ReLU by default"
    assert net(torch.randn(7, 3)).shape == (7, 2)


def test_hidden_widths_accepts_an_int_or_a_sequence_and_rejects_the_rest():
    assert hidden_widths(16) == (16,) and hidden_widths([8, 4]) == (8, 4)
    for bad in [0, [], [8, 0], [8, 2.5], True]:
        with pytest.raises(ValueError, match="hidden"):
            hidden_widths(bad)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5, 3.2])
def test_gaussian_kernel_is_a_normalised_symmetric_gaussian(sigma):
    kernel = gaussian_kernel(sigma, torch.float64)
    radius = max(1, math.ceil(3 * sigma))
    assert kernel.shape == (2 * radius + 1,) and kernel.dtype == torch.float64
    assert torch.isclose(kernel.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.equal(kernel, kernel.flip(0)) and kernel.argmax() == radius
    assert torch.isclose(kernel[radius + 1] / kernel[radius], torch.tensor(math.exp(-0.5 / sigma**2), dtype=torch.float64))
    variance = (kernel * torch.arange(-radius, radius + 1) ** 2).sum()
    assert abs(variance.item() - sigma**2) < 0.04 * sigma**2 + 0.05, "its variance is about sigma^2 (truncated at 3 sigma)"


def test_gaussian_kernel_rejects_a_non_positive_sigma():
    for bad in [0, -1.0, True, "1"]:
        with pytest.raises(ValueError, match="sigma"):
            gaussian_kernel(bad)
