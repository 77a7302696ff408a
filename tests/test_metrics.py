"""dgm.metrics: likelihood units, Fréchet distance, class accuracy and entropy, the shipped classifier."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import shared_mnist
from dgm import metrics
from dgm.recipes import classifier as classifier_recipe


def test_bits_per_dim_known_value_and_round_trip():
    assert metrics.nats_to_bits_per_dim(88.0, 784) == pytest.approx(0.16194, abs=1e-5)
    assert metrics.bits_per_dim_to_nats(metrics.nats_to_bits_per_dim(81.3, 784), 784) == pytest.approx(81.3)
    assert metrics.nats_to_bits_per_dim(math.log(2), 1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dims"):
        metrics.nats_to_bits_per_dim(1.0, 0)


def gaussian_features(n, dims, mean=0.0, std=1.0, seed=0):
    return mean + std * torch.randn(n, dims, generator=torch.Generator().manual_seed(seed))


def test_frechet_distance_is_zero_on_itself_and_symmetric():
    a, b = gaussian_features(500, 4), gaussian_features(500, 4, mean=0.5, seed=1)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-6)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # N(0, I) vs N(m, s^2 I) in d dims: d m^2 + d (1 + s^2 - 2 s).
    a = gaussian_features(200_000, 2)
    b = gaussian_features(200_000, 2, mean=1.0, std=2.0, seed=1)
    assert metrics.frechet_distance(a, b) == pytest.approx(2 * 1.0 + 2 * (1 + 4 - 4), rel=0.02)


def test_frechet_distance_grows_with_noise():
    a = gaussian_features(2000, 8)
    distances = [metrics.frechet_distance(a, a + gaussian_features(2000, 8, std=s, seed=2)) for s in (0.1, 0.5, 1.0)]
    assert distances[0] < distances[1] < distances[2]


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same D"):
        metrics.frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))


class MeanBrightness(nn.Module):
    """A stand-in classifier: class = floor(10 * mean pixel), features = the mean pixel."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def features(self, x):
        return torch.cat([x.mean((1, 2, 3))[:, None], x.std((1, 2, 3))[:, None]], 1) * self.scale

    def forward(self, x):
        index = (x.mean((1, 2, 3)) * 10).long().clamp(0, 9)
        return nn.functional.one_hot(index, 10).float()


def images_of_classes(classes):
    return torch.stack([torch.full((1, 28, 28), (c + 0.5) / 10) for c in classes])


def test_class_accuracy_and_entropy_with_a_known_classifier():
    model = MeanBrightness()
    images = images_of_classes(list(range(10)) * 3)
    labels = torch.tensor(list(range(10)) * 3)
    assert metrics.class_accuracy(images, labels, model) == 1.0
    assert metrics.class_accuracy(images, (labels + 1) % 10, model) == 0.0
    assert metrics.class_entropy(images, model) == pytest.approx(math.log(10))
    assert metrics.class_entropy(images_of_classes([3] * 12), model) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="labels"):
        metrics.class_accuracy(images, labels[:-1], model)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    model = MeanBrightness()
    images = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.5
    noisy = [(images + s * torch.rand(images.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1) for s in (0.1, 0.4)]
    assert metrics.fid(images, images, model) == pytest.approx(0.0, abs=1e-9)
    assert metrics.fid(images, noisy[0], model) < metrics.fid(images, noisy[1], model)


def test_classifier_shapes_and_input_check():
    model = classifier_recipe.build()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert model.features(torch.rand(3, 1, 28, 28)).shape == (3, 128)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(3, 1, 8, 8))


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_shipped_classifier_reaches_99_percent_on_mnist_test():
    from dgm.data import mnist

    images, labels = mnist("test", download=False)
    assert metrics.class_accuracy(images, labels) >= 0.99


def test_realism_check_passes_the_quantile_of_held_out_digits_and_rejects_what_is_far():
    torch.manual_seed(0)
    model = classifier_recipe.build()  # untrained: the check's arithmetic does not need a good network
    generator = torch.Generator().manual_seed(0)
    reference, held_out = torch.rand(40, 1, 28, 28, generator=generator) * 0.2, torch.rand(200, 1, 28, 28, generator=generator) * 0.2
    check = metrics.RealismCheck(reference, held_out, model, quantile=0.9)
    assert check(held_out).float().mean().item() == pytest.approx(0.9, abs=0.01)
    assert check(reference).all(), "a reference image is at distance 0 from itself"
    assert check.distance(reference).max().item() < 0.05 * check.threshold  # zero up to cdist's rounding (about 1%)
    assert not check(torch.ones(5, 1, 28, 28)).any(), "white squares are far from dim noise"
    assert metrics.RealismCheck(reference, held_out, model, quantile=1.0)(held_out).all()
    with pytest.raises(ValueError, match=r"quantile: expected a number in \(0, 1\], got 0"):
        metrics.RealismCheck(reference, held_out, model, quantile=0)
    with pytest.raises(ValueError, match="at least one image each"):
        metrics.RealismCheck(reference[:0], held_out, model)


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_digit_realism_accepts_real_digits_and_rejects_fooling_images_the_classifier_is_sure_of():
    from dgm.data import mnist

    check = metrics.digit_realism()
    classifier = check.model.eval()
    test, _ = mnist("test", download=False)
    assert check(test[-1000:]).float().mean().item() >= 0.98  # digits the threshold never saw
    # Fooling images (Nguyen et al., 2015): noise pushed by the classifier's gradient until it reads the target.
    fooling = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    target = torch.arange(10).repeat(5)
    for _ in range(30):
        fooling.requires_grad_(True)
        grad, = torch.autograd.grad(nn.functional.cross_entropy(classifier(fooling), target), fooling)
        fooling = (fooling - 0.02 * grad.sign()).clamp(0, 1).detach()
    confidence = classifier(fooling).softmax(1).gather(1, target[:, None])
    assert confidence.min().item() > 0.9, "the classifier is fooled: it reads each noise image as its target"
    assert not check(fooling).any(), "the realism check is not"
