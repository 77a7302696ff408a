"""dgm.autoregressive: masks read off their gradients, the blind spot, likelihood, sampling, n-grams."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from conftest import shared_mnist

from dgm.autoregressive import (
    GatedPixelCNN,
    MaskedConv2d,
    NGramModel,
    PixelCNN,
    dependency_map,
    log_prob,
    nll_loss,
    sample,
)


def earlier(row: int, col: int, shape: tuple[int, int]) -> torch.Tensor:
    """Boolean (H, W): True at the pixels strictly before (row, col) in raster order."""
    return torch.arange(shape[0] * shape[1]).reshape(shape) < row * shape[1] + col


def footprint(row: int, col: int, shape: tuple[int, int], offsets) -> torch.Tensor:
    """Boolean (H, W): True at (row + dr, col + dc) for every offset that lands inside the image."""
    grid = torch.zeros(shape, dtype=torch.bool)
    for dr, dc in offsets:
        if 0 <= row + dr < shape[0] and 0 <= col + dc < shape[1]:
            grid[row + dr, col + dc] = True
    return grid


def layer_offsets(k: int, mask: str, stack: str) -> list[tuple[int, int]]:
    """The taps one MaskedConv2d may read, as (row, col) offsets from the output pixel (written out by hand)."""
    c, centre = k // 2, [(0, 0)] if mask == "B" else []
    if stack == "raster":
        return [(dr, dc) for dr in range(-c, 0) for dc in range(-c, c + 1)] + [(0, dc) for dc in range(-c, 0)] + centre
    if stack == "vertical":
        rows = range(-c, 1) if mask == "B" else range(-c, 0)
        return [(dr, dc) for dr in rows for dc in range(-c, c + 1)]
    return [(0, dc) for dc in range(-c, 0)] + centre


def input_gradient(module: nn.Module, row: int, col: int, shape: tuple[int, int], channels: int) -> torch.Tensor:
    """|d out[:, row, col] / d x| summed over channels: (H, W), for a random input with ``channels`` channels."""
    x = torch.rand(1, channels, *shape, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    module(x)[0, :, row, col].sum().backward()
    return x.grad[0].abs().sum(0)


# --------------------------------------------------------------------------- masked convolutions


@pytest.mark.parametrize("mask, stack", list(itertools.product("AB", ["raster", "vertical", "horizontal"])))
@pytest.mark.parametrize("k", [3, 5])
def test_masked_conv_reads_exactly_its_taps(mask, stack, k):
    torch.manual_seed(0)
    layer = MaskedConv2d(2, 3, k, mask, stack)
    shape = (7, 7)
    for row, col in [(0, 0), (3, 3), (2, 6), (6, 1), (6, 6)]:
        depends = input_gradient(layer, row, col, shape, channels=2) > 0
        assert torch.equal(depends, footprint(row, col, shape, layer_offsets(k, mask, stack))), (mask, stack, row, col)
        assert depends[row, col] == (mask == "B"), "mask A hides pixel i itself, mask B shows it"
        if stack == "vertical":
            # The vertical stack never looks below its own row (mask A: not at its own row either);
            # it may see its row's right half because its input rows hold only information from above.
            assert not depends[row + 1 :].any() and (mask == "B" or not depends[row].any())
        else:
            # Raster-causal: nothing after i in raster order.
            later = ~earlier(row, col, shape)
            later[row, col] = False
            assert not depends[later].any()


def test_masked_weights_get_no_gradient_so_training_keeps_the_mask():
    layer = MaskedConv2d(1, 4, 5, "A")
    layer(torch.rand(2, 1, 6, 6)).sum().backward()
    assert torch.equal(layer.weight.grad * (1 - layer.mask), torch.zeros_like(layer.weight))
    assert not layer.mask.requires_grad and "mask" in dict(layer.named_buffers())
    assert layer.mask.sum().item() == 12  # 2 full rows of 5 above the centre, 2 taps left of it


def test_masked_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mask"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="stack"):
        MaskedConv2d(1, 1, 3, "A", "diagonal")
    for bad in (4, 0, 3.0):
        with pytest.raises(ValueError, match="kernel_size"):
            MaskedConv2d(1, 1, bad)


# --------------------------------------------------------------------------- PixelCNN and the blind spot


@pytest.mark.parametrize("model_class", [PixelCNN, GatedPixelCNN])
def test_output_never_depends_on_the_current_or_later_pixels(model_class):
    torch.manual_seed(0)
    model = model_class(channels=8, kernel_size=3, **({"blocks": 2} if model_class is PixelCNN else {"layers": 2}))
    shape = (8, 8)
    for row, col in itertools.product(range(8), range(8)):
        depends = dependency_map(model, row, col, shape)
        assert depends.shape == shape and depends.dtype == torch.bool
        assert not depends[~earlier(row, col, shape)].any(), f"pixel ({row}, {col}) sees itself or the future"
    assert dependency_map(model, 0, 0, shape).sum() == 0  # the first pixel is unconditional


def test_plain_pixelcnn_has_a_blind_spot_up_and_to_the_right():
    torch.manual_seed(0)
    model = PixelCNN(channels=8, blocks=3)
    row, col, shape = 8, 4, (12, 12)
    depends = dependency_map(model, row, col, shape)
    # A raster-masked 3x3 layer moves at most one column right per row it moves up, so the
    # right edge of the receptive field is a staircase: +3 one row up, +5 three rows up.
    assert depends[row - 3, col + 5] and depends[row - 1, col + 3]
    # ... and (row - 1, col + 4), closer than (row - 3, col + 5) and earlier in raster order, is never seen.
    assert not depends[row - 1, col + 4] and not depends[row - 2, col + 5]
    assert earlier(row, col, shape)[row - 1, col + 4]


def test_gated_pixelcnn_sees_every_earlier_pixel_in_its_receptive_field():
    torch.manual_seed(0)
    layers, row, col, shape = 3, 8, 4, (12, 12)
    gated = GatedPixelCNN(channels=8, layers=layers, kernel_size=3, first_kernel=7)
    depends = dependency_map(gated, row, col, shape)
    reach = 3 + layers  # 7x7 first layer (3 each way), then one more row and column per gated layer
    above = [(dr, dc) for dr in range(-reach, 0) for dc in range(-reach, reach + 1)]
    left = [(0, dc) for dc in range(-reach, 0)]
    assert torch.equal(depends, footprint(row, col, shape, above + left))
    plain = dependency_map(PixelCNN(channels=8, blocks=layers), row, col, shape)
    blind = plain.logical_not() & depends
    assert blind[row - 1, col + 4] and blind[row - 2, col + 5], "the gated model sees the plain model's blind spot"
    assert not (plain & ~depends).any()


# --------------------------------------------------------------------------- likelihood


def test_log_prob_is_the_bernoulli_log_likelihood_summed_over_pixels():
    torch.manual_seed(0)
    model = PixelCNN(channels=8, blocks=1)
    x = torch.bernoulli(torch.full((3, 1, 6, 6), 0.4), generator=torch.Generator().manual_seed(2))
    p = torch.sigmoid(model(x).double())
    by_hand = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    got = log_prob(model, x)
    assert got.shape == (3,) and (got <= 0).all()
    torch.testing.assert_close(got.double(), by_hand, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(nll_loss(model, (x,)), -got.mean())


def test_log_prob_rejects_images_that_are_not_b_1_h_w():
    with pytest.raises(ValueError, match="x"):
        log_prob(PixelCNN(channels=8, blocks=1), torch.zeros(2, 3, 6, 6))


# --------------------------------------------------------------------------- sampling


class RasterRule(nn.Module):
    """A hand-made 'model' whose logit at pixel i is a fixed function of the previous pixel in raster order."""

    def __init__(self, first: float, after_zero: float, after_one: float):
        super().__init__()
        self.first = nn.Parameter(torch.tensor(first))  # sample() finds the device from the parameters
        self.after_zero, self.after_one = after_zero, after_one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        previous = torch.cat([torch.zeros_like(flat[:, :1]), flat[:, :-1]], 1)
        logits = torch.where(previous > 0.5, self.after_one, self.after_zero)
        logits[:, 0] = self.first
        return logits.reshape(x.shape)


def tiny_model() -> PixelCNN:
    torch.manual_seed(0)
    return PixelCNN(channels=8, blocks=1)


def test_samples_are_binary_and_a_seed_repeats_exactly():
    model = tiny_model()
    first = sample(model, 4, (1, 4, 4), seed=3)
    assert first.shape == (4, 1, 4, 4) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, sample(model, 4, (1, 4, 4), seed=3))
    assert not torch.equal(first, sample(model, 4, (1, 4, 4), seed=4))


@pytest.mark.parametrize("value, expected", [(30.0, 1.0), (-30.0, 0.0)])
def test_sampling_follows_a_constant_model(value, expected):
    images = sample(RasterRule(value, value, value), 3, (1, 5, 5), seed=0)
    assert torch.equal(images, torch.full((3, 1, 5, 5), expected))


def test_sampling_re_evaluates_the_model_after_every_pixel():
    # p(x_i = 1) = 1 exactly when x_{i-1} = 0: raster order must give 1, 0, 1, 0, ...
    images = sample(RasterRule(30.0, 30.0, -30.0), 2, (1, 3, 5), seed=0)
    expected = (torch.arange(15) % 2 == 0).float().reshape(1, 1, 3, 5).expand(2, 1, 3, 5)
    assert torch.equal(images, expected)


def test_completion_keeps_every_known_pixel():
    model = tiny_model()
    generator = torch.Generator().manual_seed(5)
    given = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5), generator=generator)
    shared = torch.rand(1, 4, 4, generator=generator) < 0.5
    per_image = torch.rand(3, 1, 4, 4, generator=generator) < 0.5
    for known in (shared, per_image):
        completed = sample(model, 3, (1, 4, 4), seed=0, given=given, known=known)
        keep = known.expand(3, 1, 4, 4)
        assert torch.equal(completed[keep], given[keep])
    top = torch.zeros(1, 4, 4, dtype=torch.bool)
    top[:, :2] = True
    rule = sample(RasterRule(-30.0, 30.0, 30.0), 3, (1, 4, 4), seed=0, given=given, known=top)
    assert torch.equal(rule[:, :, :2], given[:, :, :2]) and rule[:, :, 2:].eq(1).all()
    with pytest.raises(ValueError, match="given"):
        sample(model, 3, (1, 4, 4), given=given)
    with pytest.raises(ValueError, match="given"):
        sample(model, 2, (1, 4, 4), given=given, known=top)


def test_frames_are_snapshots_along_the_way():
    model = tiny_model()
    final, frames = sample(model, 2, (1, 4, 4), seed=1, frames=4)
    assert len(frames) == 4 and all(f.shape == (2, 1, 4, 4) for f in frames)
    assert torch.equal(frames[-1], final) and torch.equal(final, sample(model, 2, (1, 4, 4), seed=1))
    for index, frame in enumerate(frames):  # snapshot k is taken after 4 (k + 1) of the 16 pixels
        done = 4 * (index + 1)
        assert torch.equal(frame.flatten(1)[:, :done], final.flatten(1)[:, :done])
        assert frame.flatten(1)[:, done:].eq(0).all()
    with pytest.raises(ValueError, match="n"):
        sample(model, 0, (1, 4, 4))


# --------------------------------------------------------------------------- n-gram text model

TEXT = "once upon a time a cat sat on a mat. once upon a time a rat ate a hat."


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_ngram_probabilities_sum_to_one_for_any_context(order):
    model = NGramModel(order, alpha=0.5).fit(TEXT)
    for context in ("", "o", "once upon", "zzzz", "a m", TEXT):
        probabilities = model.probabilities(context)
        assert list(probabilities) == sorted(set(TEXT))
        assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-12)
        assert all(p > 0 for p in probabilities.values())


def test_unigram_with_tiny_alpha_is_the_character_frequencies():
    model = NGramModel(1, alpha=1e-9).fit("abracadabra")
    expected = {"a": 5 / 11, "b": 2 / 11, "c": 1 / 11, "d": 1 / 11, "r": 2 / 11}
    for char, p in model.probabilities("whatever context").items():
        assert math.isclose(p, expected[char], rel_tol=1e-6)


def test_bigram_counts_what_follows_the_previous_character():
    model = NGramModel(2, alpha=1e-9).fit("abac")
    assert math.isclose(model.probabilities("a")["b"], 0.5, rel_tol=1e-6)
    assert math.isclose(model.probabilities("xa")["c"], 0.5, rel_tol=1e-6)
    assert math.isclose(model.probabilities("")["a"], 1.0, rel_tol=1e-6)  # the text starts with "a"
    smoothed = NGramModel(2, alpha=1.0).fit("abac").probabilities("b")  # "b" is followed once by "a"
    assert math.isclose(smoothed["a"], 2 / 4) and math.isclose(smoothed["c"], 1 / 4)


def test_ngram_log_prob_is_the_chain_rule():
    model = NGramModel(3, alpha=0.1).fit(TEXT)
    story = "a cat ate a rat."
    steps = [math.log(model.probabilities(story[:t])[char]) for t, char in enumerate(story)]
    assert math.isclose(model.log_prob(story), sum(steps), rel_tol=1e-12)
    assert model.log_prob(story) < 0 and model.log_prob("") == 0


def test_ngram_samples_repeat_with_a_seed():
    model = NGramModel(3, alpha=0.1).fit(TEXT)
    text = model.sample(60, prompt="once", seed=7)
    assert len(text) == 64 and text.startswith("once") and set(text) <= set(TEXT)
    assert text == model.sample(60, prompt="once", seed=7) != model.sample(60, prompt="once", seed=8)


def test_ngram_rejects_bad_input():
    model = NGramModel(2).fit(TEXT)
    with pytest.raises(ValueError, match="text"):
        model.log_prob("a zebra")
    for order in (0, -1, 2.0):
        with pytest.raises(ValueError, match="order"):
            NGramModel(order)
    for alpha in (0, -0.5):
        with pytest.raises(ValueError, match="alpha"):
            NGramModel(2, alpha)
    with pytest.raises(ValueError, match="text"):
        NGramModel(2).fit("")
    with pytest.raises(RuntimeError, match="fit"):
        NGramModel(2).probabilities("a")


# --------------------------------------------------------------------------- the shipped model


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_shipped_pixelcnn_scores_what_its_card_says():
    from dgm import zoo
    from dgm.autoregressive import evaluate_nll
    from dgm.data import TEST_BINARIZATION_SEED, binarized_mnist

    card = zoo.card("pixelcnn-mnist")
    images, _ = binarized_mnist("test", seed=TEST_BINARIZATION_SEED)
    nll = evaluate_nll(zoo.load("pixelcnn-mnist", device="cpu"), images[::20])
    # every 20th of the card's 10,000 test digits: the mean moves by a nat or two at most.
    assert abs(nll - card["metrics"]["test_nll_nats"]) < 3.0, (nll, card["metrics"])
    assert card["metrics"]["test_nll_nats"] <= 88.0  # the target for 30 minutes on 2 cores
