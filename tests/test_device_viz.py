"""dgm.device and dgm.viz."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgm.device import get_device, make_generator, seed_everything
from dgm.viz import image_grid, to_unit


def test_dgm_device_env_wins(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_unavailable_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_device("cuda")
    with pytest.raises(ValueError, match="device: expected"):
        get_device("gpu-please")


def test_default_device_without_accelerators_is_cpu(monkeypatch):
    monkeypatch.delenv("DGM_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_seeding_repeats_exactly():
    seed_everything(7)
    a = (torch.randn(3), np.random.rand(3))
    seed_everything(7)
    b = (torch.randn(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert torch.equal(torch.rand(4, generator=make_generator(5)), torch.rand(4, generator=make_generator(5)))
    generator = make_generator(1)
    assert make_generator(generator) is generator
    with pytest.raises(TypeError, match="seed"):
        make_generator(1.5)


def test_image_grid_layout_and_padding():
    images = torch.zeros(5, 1, 4, 6)
    grid = image_grid(images, nrow=3, pad=1, pad_value=1.0)
    assert grid.shape == (2 * 5 - 1, 3 * 7 - 1)
    assert grid[0, 6] == 1.0 and grid[0, 0] == 0.0  # padding column vs image pixel
    assert (grid[5:, 14:] == 1.0).all(), "the empty sixth cell is padding"
    rgb = image_grid(torch.rand(2, 3, 4, 4), nrow=2)
    assert rgb.shape == (4, 9, 3)
    with pytest.raises(ValueError, match="images: expected shape"):
        image_grid(torch.zeros(2, 2, 4, 4))


def test_to_unit_maps_minus_one_one_to_zero_one():
    assert to_unit(torch.tensor([-1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.5, 1.0, 1.0]
