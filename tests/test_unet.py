"""dgm.unet: the conditional U-Net's shapes, conditioning, independence, gradients, size, fit and errors."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.device import make_generator
from dgm.unet import UNet, sinusoidal_embedding


def tiny_unet(seed: int = 0, perturb: bool = True, **kwargs) -> UNet:
    """A small seeded UNet; with ``perturb`` its zero-initialised last conv gets random weights,
    so that the output (and every earlier gradient) is not identically zero."""
    torch.manual_seed(seed)
    model = UNet(**{"channels": (8, 16, 16), "num_classes": 10, "time_dim": 16, **kwargs})
    if perturb:
        with torch.no_grad():
            for p in model.head[-1].parameters():
                p.copy_(0.1 * torch.randn(p.shape, generator=make_generator(seed + 1)))
    return model


def noisy_batch(batch: int = 4, channels: int = 1, size: tuple[int, int] = (28, 28), seed: int = 0):
    """``(x, t, labels)``: images ``(batch, channels, *size)`` in [-1, 1], timesteps in [1, 1000), labels in [0, 10)."""
    g = make_generator(seed)
    x = 2 * torch.rand(batch, channels, *size, generator=g) - 1
    return x, torch.randint(1, 1000, (batch,), generator=g), torch.randint(0, 10, (batch,), generator=g)


# --------------------------------------------------------------------------- time embedding


def test_sinusoidal_embedding_is_sines_then_cosines_of_geometric_frequencies():
    emb = sinusoidal_embedding(torch.tensor([0, 1, 500]), 4)
    assert emb.shape == (3, 4) and emb.dtype == torch.float32
    # dim 4: two frequencies, 10000 ** (-0 / 2) = 1 and 10000 ** (-1 / 2) = 0.01.
    assert torch.equal(emb[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    expected = torch.tensor([math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)])
    torch.testing.assert_close(emb[1], expected)
    torch.testing.assert_close(emb[2], torch.tensor([math.sin(500), math.sin(5), math.cos(500), math.cos(5)]))
    wide = sinusoidal_embedding(torch.arange(1000), 64)
    assert wide.abs().max() <= 1 and len(wide.unique(dim=0)) == 1000, "every timestep gets its own features"
    for bad in (3, 0):
        with pytest.raises(ValueError, match="dim"):
            sinusoidal_embedding(torch.tensor([1]), bad)


# --------------------------------------------------------------------------- shapes and initialisation


@pytest.mark.parametrize(
    "kwargs, size",
    [
        ({}, (28, 28)),
        ({"in_channels": 3}, (28, 28)),
        ({"channels": (8, 16)}, (10, 6)),  # two levels: H and W divisible by 2
        ({"channels": (8,) * 4}, (16, 24)),  # four levels: divisible by 8
    ],
)
def test_output_has_the_input_shape_and_is_exactly_zero_at_initialisation(kwargs, size):
    model = tiny_unet(perturb=False, **kwargs)
    x, t, labels = noisy_batch(3, model.in_channels, size)
    out = model(x, t, labels)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, torch.zeros_like(x)), "the last conv starts at zero, so eps_hat = 0 before training"
    perturbed = tiny_unet(**kwargs)(x, t, labels)
    assert perturbed.shape == x.shape and (perturbed != 0).float().mean() > 0.99


def test_default_model_is_mnist_sized_and_zero_at_initialisation():
    model = UNet()
    assert model.channels == (16, 32, 64) and model.in_channels == 1 and model.null_label == 10
    x, t, labels = noisy_batch(2)
    assert torch.equal(model(x, t, labels), torch.zeros_like(x))


# --------------------------------------------------------------------------- conditioning


def test_output_depends_on_the_timestep_and_the_label():
    model = tiny_unet()
    x, t, labels = noisy_batch(4)
    out = model(x, t, labels)
    assert not torch.allclose(out, model(x, t + 100, labels), atol=1e-4), "eps_hat must depend on t"
    assert not torch.allclose(out, model(x, t, (labels + 1) % 10), atol=1e-4), "eps_hat must depend on the label"
    assert not torch.allclose(out, model(x, t, torch.full_like(labels, model.null_label)), atol=1e-4)


def test_no_labels_means_the_null_class_for_every_example():
    model = tiny_unet()
    x, t, _ = noisy_batch(4)
    assert model.null_label == 10 and model.class_embedding.num_embeddings == 11
    torch.testing.assert_close(model(x, t), model(x, t, torch.full((4,), model.null_label)), rtol=0, atol=0)


def test_integer_and_float_timesteps_give_the_same_output():
    model = tiny_unet()
    x, t, labels = noisy_batch(3)
    assert torch.equal(model(x, t, labels), model(x, t.float(), labels))
    assert torch.equal(model(x, t, labels), model(x, t.int(), labels.int()))


@pytest.mark.parametrize("num_classes", [0, None])
def test_an_unconditional_model_has_no_class_embedding_and_refuses_labels(num_classes):
    model = tiny_unet(num_classes=num_classes)
    assert model.num_classes == 0 and model.null_label is None and model.class_embedding is None
    x, t, labels = noisy_batch(2)
    assert model(x, t).shape == x.shape
    with pytest.raises(ValueError, match="labels: this model is unconditional"):
        model(x, t, labels)


# --------------------------------------------------------------------------- independence and gradients


def test_an_example_never_depends_on_the_rest_of_the_batch():
    model = tiny_unet().train()  # GroupNorm is per example in training mode too (BatchNorm would mix the batch)
    x, t, labels = noisy_batch(4)
    out = model(x, t, labels)
    other_x, other_t, other_labels = x.clone(), t.clone(), labels.clone()
    other_x[1] = -x[1]
    other_t[2] = 999 - t[2]
    other_labels[3] = (labels[3] + 5) % 10
    changed = model(other_x, other_t, other_labels)
    torch.testing.assert_close(changed[0], out[0], rtol=0, atol=1e-5)
    for i in (1, 2, 3):
        assert not torch.allclose(changed[i], out[i], atol=1e-4), f"example {i} changed, so its output should"
    # Alone in a batch of one it gets the same output (up to float rounding: the convolutions may sum in another order).
    torch.testing.assert_close(model(x[:1], t[:1], labels[:1])[0], out[0], rtol=0, atol=1e-5)


def test_gradients_reach_every_parameter():
    # At initialisation the zero last conv blocks every earlier gradient: d loss / d h = W_last^T (...) = 0.
    # With the last conv perturbed, every weight (every class row included, the null class too) gets a gradient.
    model = tiny_unet()
    x, t, _ = noisy_batch(11)
    labels = torch.arange(11)  # classes 0..9 and the null class 10
    g = make_generator(5)
    (model(x, t, labels) * torch.randn(x.shape, generator=g)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and (p.grad != 0).all(), f"{name} gets no (or a partly zero) gradient"


def test_only_the_last_conv_learns_at_the_first_step():
    model = tiny_unet(perturb=False)
    x, t, labels = noisy_batch(4)
    (model(x, t, labels) * x).sum().backward()
    last = {id(p) for p in model.head[-1].parameters()}
    for name, p in model.named_parameters():
        assert (p.grad.abs().sum() > 0) == (id(p) in last), name


# --------------------------------------------------------------------------- size


def test_parameter_count_of_a_tiny_model_matches_a_count_by_hand():
    model = UNet(channels=(8, 8, 8), num_classes=2, time_dim=16)
    conv3x3 = lambda c_in, c_out: 9 * c_in * c_out + c_out  # noqa: E731
    time_mlp = 2 * (16 * 16 + 16)  # Linear(16, 16), SiLU, Linear(16, 16)
    class_embedding = 3 * 16  # classes 0, 1 and the null class, 16 numbers each
    entries = conv3x3(1, 8) + 2 * conv3x3(8, 8)  # the 3x3 stem and two stride-2 convs
    down_block = 2 * 8 + conv3x3(8, 8) + (16 * 8 + 8) + 2 * 8 + conv3x3(8, 8)  # norm, conv, time bias, norm, conv
    up_block = 2 * 16 + conv3x3(16, 8) + (16 * 8 + 8) + 2 * 8 + conv3x3(8, 8) + (16 * 8 + 8)  # ... + 1x1 skip conv
    head = 2 * 8 + conv3x3(8, 1)
    by_hand = time_mlp + class_embedding + entries + 3 * down_block + 3 * up_block + head
    assert by_hand == 12_129
    assert sum(p.numel() for p in model.parameters()) == by_hand


def test_default_model_has_a_few_hundred_thousand_parameters():
    count = sum(p.numel() for p in UNet().parameters())
    assert 200_000 <= count <= 600_000, count


# --------------------------------------------------------------------------- learning


def test_a_tiny_model_overfits_one_batch_of_noisy_images():
    g = make_generator(0)
    x0 = torch.tanh(3 * torch.nn.functional.interpolate(torch.randn(8, 1, 7, 7, generator=g), size=28, mode="bilinear"))
    eps = torch.randn(8, 1, 28, 28, generator=g)
    t = torch.randint(0, 1000, (8,), generator=g)
    alpha_bar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    labels = torch.arange(8)
    model = tiny_unet(perturb=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(100):
        loss = (model(x_t, t, labels) - eps).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert 0.8 < losses[0] < 1.2, "eps_hat = 0 at the start, so the loss is E[eps^2] = 1"
    assert losses[-1] < 0.3 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in 100 steps"


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def model() -> UNet:
    return tiny_unet()


@pytest.mark.parametrize(
    "x_shape, t, labels, message",
    [
        ((2, 3, 28, 28), [1, 2], [0, 1], r"x: expected float images of shape \(B, 1, H, W\).*got .*\(2, 3, 28, 28\)"),
        ((2, 1, 30, 28), [1, 2], [0, 1], r"x: .*divisible by 4.*got .* shape \(2, 1, 30, 28\)"),
        ((1, 28, 28), [1], [0], r"x: expected"),
        ((2, 1, 28, 28), [1, 2, 3], [0, 1], r"t: expected 2 timesteps.*got a torch.int64 tensor of shape \(3,\)"),
        ((2, 1, 28, 28), [[1, 2]], [0, 1], r"t: expected .* got .* shape \(1, 2\)"),
        ((2, 1, 28, 28), [1, 2], [0, 11], r"labels: expected values in \[0, 10\] \(10 is the null class\), got .* 11"),
        ((2, 1, 28, 28), [1, 2], [-1, 3], r"labels: expected values in \[0, 10\].* -1"),
        ((2, 1, 28, 28), [1, 2], [0, 1, 2], r"labels: expected an int64 tensor of shape \(2,\), got .* shape \(3,\)"),
        ((2, 1, 28, 28), [1, 2], [0.0, 1.0], r"labels: expected an int64 tensor.*float32"),
    ],
)
def test_forward_rejects_bad_inputs_clearly(model, x_shape, t, labels, message):
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(x_shape), torch.tensor(t), torch.tensor(labels))


def test_forward_rejects_integer_images(model):
    with pytest.raises(ValueError, match="x: expected float images"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.int64), torch.tensor([1, 2]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": (16, 30, 64)}, r"channels: expected .* multiples of groups=8 .*\(16, 30, 64\)"),
        ({"channels": (12,)}, r"channels: .*groups=8"),
        ({"channels": (8, 16), "groups": 16}, r"channels: .*groups=16"),
        ({"channels": ()}, r"channels: expected one or more"),
        ({"groups": 0}, r"groups: expected a positive int"),
        ({"time_dim": 15}, r"time_dim: expected a positive even int, got 15"),
        ({"num_classes": -1}, r"num_classes: expected a non-negative int or None"),
        ({"in_channels": 0}, r"in_channels: expected a positive int"),
    ],
)
def test_constructor_rejects_bad_arguments_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)
