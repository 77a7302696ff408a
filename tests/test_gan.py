"""dgm.gan: the losses and their gradients, DCGAN shapes, the alternating step, latent-space tools, mode counting."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from dgm.data import ring_of_gaussians, toy_2d
from dgm.gan import (
    DCDiscriminator,
    DCGenerator,
    MLPDiscriminator,
    MLPGenerator,
    attribute_vector,
    count_modes,
    discriminator_loss,
    gan_step,
    generator_loss_minimax,
    generator_loss_nonsaturating,
    init_dcgan_weights,
    lerp,
    project,
    sample,
    slerp,
    train_gan,
)
from dgm.train import batches

LN2 = math.log(2.0)


def tiny_dcgan(num_classes: int | None = None, seed: int = 0) -> tuple[DCGenerator, DCDiscriminator]:
    torch.manual_seed(seed)
    generator = DCGenerator(latent_dim=8, width=8, num_classes=num_classes)
    return generator, DCDiscriminator(width=8, num_classes=num_classes)


def adam_pair(generator, discriminator, lr: float = 1e-3):
    return torch.optim.Adam(generator.parameters(), lr=lr), torch.optim.Adam(discriminator.parameters(), lr=lr)


def fake_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- losses ---------------------------------------------------------------------------------


def test_losses_at_zero_logits_where_d_is_one_half():
    zeros = torch.zeros(5)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * LN2)
    assert discriminator_loss(zeros, zeros, real_label=0.9).item() == pytest.approx(2 * LN2)
    assert generator_loss_nonsaturating(zeros).item() == pytest.approx(LN2)
    assert generator_loss_minimax(zeros).item() == pytest.approx(-LN2)


def test_losses_stay_finite_and_reach_their_limits_for_large_logits():
    big = torch.full((4,), 1000.0)
    assert discriminator_loss(big, -big).item() == pytest.approx(0.0, abs=1e-12)  # D right and sure
    assert discriminator_loss(-big, big).item() == pytest.approx(2000.0)  # D wrong and sure: finite
    assert generator_loss_nonsaturating(-big).item() == pytest.approx(1000.0)  # fakes spotted: a large loss
    assert generator_loss_minimax(-big).item() == pytest.approx(0.0, abs=1e-12)  # ... but minimax is flat at 0
    assert generator_loss_minimax(big).item() == pytest.approx(-1000.0)
    assert generator_loss_nonsaturating(big).item() == pytest.approx(0.0, abs=1e-12)


def test_losses_match_their_definitions_on_random_logits():
    real, fake = torch.randn(7, dtype=torch.float64), torch.randn(9, dtype=torch.float64)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert discriminator_loss(real, fake).item() == pytest.approx(expected.item())
    assert generator_loss_minimax(fake).item() == pytest.approx(torch.log(1 - d_fake).mean().item())
    assert generator_loss_nonsaturating(fake).item() == pytest.approx(-torch.log(d_fake).mean().item())


def test_one_sided_label_smoothing_moves_the_real_optimum_to_d_equal_real_label():
    fake = torch.zeros(3)
    at_optimum = torch.full((3,), math.log(9.0), requires_grad=True)  # sigmoid(ln 9) = 0.9
    discriminator_loss(at_optimum, fake, real_label=0.9).backward()
    assert at_optimum.grad.abs().max().item() < 1e-6
    unsmoothed = torch.full((3,), math.log(9.0), requires_grad=True)
    discriminator_loss(unsmoothed, fake).backward()
    assert unsmoothed.grad.allclose(torch.full((3,), -0.1 / 3))  # d/dl = (sigmoid(l) - 1) / B: keeps pushing


def test_nonsaturating_gradient_dominates_when_the_fakes_are_spotted():
    logits = torch.tensor([-8.0, -4.0, -2.0, -1.0], dtype=torch.float64)
    grads = {}
    for name, loss in (("minimax", generator_loss_minimax), ("nonsaturating", generator_loss_nonsaturating)):
        l = logits.clone().requires_grad_(True)
        loss(l).backward()
        grads[name] = l.grad
    d = torch.sigmoid(logits)
    assert torch.allclose(grads["minimax"], -d / 4)
    assert torch.allclose(grads["nonsaturating"], -(1 - d) / 4)
    assert (grads["nonsaturating"].abs() > grads["minimax"].abs()).all()  # D(G(z)) < 1/2 everywhere here
    assert torch.allclose(grads["nonsaturating"] / grads["minimax"], (1 - d) / d)
    assert grads["minimax"][0].abs().item() < 1e-3 < 0.2 < grads["nonsaturating"][0].abs().item()


def test_losses_reject_bad_input():
    with pytest.raises(ValueError, match="real_label"):
        discriminator_loss(torch.zeros(2), torch.zeros(2), real_label=0.0)
    with pytest.raises(ValueError, match="fake_logits"):
        generator_loss_nonsaturating(torch.zeros(0))
    with pytest.raises(ValueError, match="real_logits"):
        discriminator_loss([0.0], torch.zeros(2))


# --- the players ----------------------------------------------------------------------------


def test_dc_generator_makes_images_in_range_and_discriminator_gives_one_logit_each():
    generator, discriminator = tiny_dcgan()
    z = 50 * torch.randn(6, 8, generator=torch.Generator().manual_seed(0))  # large codes saturate tanh
    images = generator(z)
    assert images.shape == (6, 1, 28, 28)
    assert images.abs().max().item() <= 1.0
    assert images.abs().max().item() > 0.9
    assert discriminator(images).shape == (6,)


def test_default_dcgan_sizes_are_as_documented():
    def count(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    assert count(DCGenerator()) == 533_889
    assert count(DCDiscriminator()) == 138_689
    assert count(DCGenerator(num_classes=10)) == 634_401
    assert count(DCDiscriminator(num_classes=10)) == 201_409


def test_conditional_models_use_their_labels():
    generator, discriminator = tiny_dcgan(num_classes=10)
    generator.eval()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    threes, sevens = torch.full((4,), 3), torch.full((4,), 7)
    images = generator(z, threes)
    assert images.shape == (4, 1, 28, 28)
    assert not torch.allclose(images, generator(z, sevens))
    logits = discriminator(images, threes)
    assert logits.shape == (4,)
    assert not torch.allclose(logits, discriminator(images, sevens))


def test_models_reject_wrong_shapes_and_labels():
    generator, discriminator = tiny_dcgan()
    conditional, _ = tiny_dcgan(num_classes=10)
    images = fake_images(2)
    with pytest.raises(ValueError, match=r"z: expected .*\(B, 8\)"):
        generator(torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"x: expected .*\(B, 1, 28, 28\)"):
        discriminator(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match=r"x: expected .*\(B, 1, 28, 28\)"):
        discriminator(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="labels: the model is unconditional"):
        discriminator(images, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels: the model is conditional on 10 classes"):
        conditional(torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"labels: .*\[0, 9\].*got values from 0 to 10"):
        conditional(torch.zeros(2, 8), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r"labels: expected .*shape \(2,\)"):
        conditional(torch.zeros(2, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="labels"):
        conditional(torch.zeros(2, 8), torch.zeros(2))
    with pytest.raises(ValueError, match=r"x: expected .*points.*\(B, 2\)"):
        MLPDiscriminator()(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="hidden"):
        MLPGenerator(hidden=0)
    with pytest.raises(ValueError, match="width"):
        DCGenerator(width=0)


def test_init_dcgan_weights_follows_the_paper_and_repeats_with_a_seed():
    torch.manual_seed(0)
    generator = init_dcgan_weights(DCGenerator(), seed=3)
    linear, norm = generator.net[0].weight, generator.net[2]
    assert linear.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert linear.std().item() == pytest.approx(0.02, rel=0.02)
    assert norm.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert norm.weight.std().item() == pytest.approx(0.02, rel=0.3)
    assert all((module.bias == 0).all() for module in generator.modules() if getattr(module, "bias", None) is not None)
    again = init_dcgan_weights(DCGenerator(), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(generator.parameters(), again.parameters()))


# --- the alternating step -------------------------------------------------------------------


def test_discriminator_step_lowers_its_loss_on_the_batch_it_saw():
    generator, discriminator = tiny_dcgan()
    opt_g, opt_d = adam_pair(generator, discriminator)
    real = fake_images(16)
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))  # the z gan_step will draw
    with torch.no_grad():
        fakes = generator(z)
        before = discriminator_loss(discriminator(real), discriminator(fakes)).item()
    stats = gan_step(generator, discriminator, opt_g, opt_d, real, torch.Generator().manual_seed(0))
    assert stats["d_loss"] == pytest.approx(before, rel=1e-5)
    with torch.no_grad():
        after = discriminator_loss(discriminator(real), discriminator(fakes)).item()
    assert after < before
    assert 0 < stats["d_fake"] < 1 and 0 < stats["d_real"] < 1


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax"])
def test_generator_step_raises_d_of_g_of_z(loss):
    torch.manual_seed(0)
    generator, discriminator = MLPGenerator(), MLPDiscriminator()
    opt_g, opt_d = adam_pair(generator, discriminator, lr=1e-2)
    old_generator = copy.deepcopy(generator)
    real, _ = ring_of_gaussians(64, seed=0)
    gan_step(generator, discriminator, opt_g, opt_d, real, torch.Generator().manual_seed(1), loss=loss)
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert discriminator(generator(z)).mean() > discriminator(old_generator(z)).mean()


def test_seeded_gan_step_repeats_exactly_also_conditional():
    runs = []
    for _ in range(2):
        generator, discriminator = tiny_dcgan(num_classes=10, seed=4)
        opt_g, opt_d = adam_pair(generator, discriminator)
        rng = torch.Generator().manual_seed(5)
        labels = torch.arange(8) % 10
        history = [gan_step(generator, discriminator, opt_g, opt_d, fake_images(8), rng, labels) for _ in range(3)]
        runs.append((history, [p.detach().clone() for p in generator.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert set(runs[0][0][0]) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_gan_step_rejects_an_unknown_loss():
    generator, discriminator = tiny_dcgan()
    with pytest.raises(ValueError, match="loss: expected one of"):
        gan_step(generator, discriminator, *adam_pair(generator, discriminator), fake_images(2), 0, loss="wasserstein")


def test_a_short_2d_gan_run_pulls_samples_onto_the_ring():
    points, centers = ring_of_gaussians(4096, seed=0)
    torch.manual_seed(0)
    generator, discriminator = MLPGenerator(hidden=64), MLPDiscriminator(hidden=64)

    def mean_distance_to_ring() -> float:
        return torch.cdist(sample(generator, 1000, seed=1), centers).min(1).values.mean().item()

    before = mean_distance_to_ring()
    seen = []
    history = train_gan(
        generator, discriminator, batches(points, batch_size=128, seed=0), steps=300, lr=1e-3, progress=False,
        callback=lambda step, model: seen.append((step, model.training)), callback_at={0, 150, 300},
    )
    assert len(history) == 300
    assert seen == [(0, False), (150, False), (300, False)]
    assert mean_distance_to_ring() < 0.75 * before


def test_train_gan_needs_a_budget_and_labels_for_a_conditional_model():
    generator, discriminator = tiny_dcgan(num_classes=10)
    data = batches(fake_images(8), batch_size=4)
    with pytest.raises(ValueError, match="budget"):
        train_gan(generator, discriminator, data, progress=False)
    with pytest.raises(ValueError, match=r"expected batches \(x, y\)"):
        train_gan(generator, discriminator, data, steps=1, progress=False)


def test_sample_is_seeded_and_leaves_the_mode_alone():
    generator, _ = tiny_dcgan(num_classes=10)
    labels = torch.arange(5)
    first = sample(generator, 5, labels, seed=2)
    assert first.shape == (5, 1, 28, 28)
    assert torch.equal(first, sample(generator, 5, labels, seed=2))
    assert generator.training


# --- the latent space -----------------------------------------------------------------------


def test_lerp_ends_exactly_and_passes_through_the_mean():
    z0, z1 = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    path = lerp(z0, z1, steps=5)
    assert path.shape == (5, 16)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path[2], (z0 + z1) / 2)


def test_slerp_keeps_the_norm_and_spaces_the_angles_evenly():
    z0, z1 = torch.randn(2, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z1 = z1 * z0.norm() / z1.norm()
    path = slerp(z0, z1, steps=7)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(7))
    cosines = torch.nn.functional.cosine_similarity(path[:-1], path[1:])
    assert torch.allclose(cosines, cosines[0].expand(6))
    assert lerp(z0, z1, steps=3)[1].norm() < 0.8 * z0.norm()  # the straight line cuts inside the sphere


def test_slerp_known_midpoint_and_degenerate_pairs():
    x, y = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.allclose(slerp(x, y, steps=3)[1], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    for z1 in (2 * x, -x, torch.zeros(2)):  # parallel, antiparallel, zero: no unique arc, so the line
        path = slerp(x, z1, steps=4)
        assert torch.isfinite(path).all()
        assert torch.allclose(path, lerp(x, z1, steps=4))


def test_interpolation_rejects_bad_input():
    with pytest.raises(ValueError, match="steps"):
        slerp(torch.ones(3), torch.ones(3), steps=1)
    with pytest.raises(ValueError, match=r"z1: expected the shape of z0 \(3,\)"):
        lerp(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"z0: expected .*\(D,\)"):
        slerp(torch.ones(1, 3), torch.ones(1, 3))


def test_attribute_vector_is_the_difference_of_means():
    z_with = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    z_without = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    assert torch.allclose(attribute_vector(z_with, z_without), torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match=r"z_without: expected .*\(N, 2\)"):
        attribute_vector(z_with, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="z_with"):
        attribute_vector(torch.zeros(2), z_without)


def test_project_recovers_the_code_of_an_image_made_by_the_generator():
    generator, _ = tiny_dcgan(seed=1)
    with torch.no_grad():  # give BatchNorm realistic running statistics, then freeze them
        generator(torch.randn(64, 8, generator=torch.Generator().manual_seed(2)))
    generator.eval()
    z_true = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        targets = generator(z_true)
        typical_error = (targets - generator(z_true.roll(1, dims=0))).pow(2).flatten(1).mean(1)
    result = project(generator, targets, steps=200, lr=0.1, restarts=4, seed=0)
    assert result.z.shape == (3, 8) and result.reconstruction.shape == (3, 1, 28, 28) and result.loss.shape == (3,)
    assert (result.loss < 1e-4 * typical_error).all()
    assert torch.allclose(result.reconstruction, targets, atol=1e-3)
    assert not generator.training and all(p.grad is None for p in generator.parameters())
    with pytest.raises(ValueError, match=r"images: expected .*\(B, 1, 28, 28\)"):
        project(generator, torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="restarts"):
        project(generator, targets, restarts=0)


# --- mode counting --------------------------------------------------------------------------


def test_ring_of_gaussians_has_its_centres_on_the_circle_and_matches_toy_2d():
    points, centers = ring_of_gaussians(500, modes=8, radius=2.0, std=0.1, seed=3)
    assert points.shape == (500, 2) and centers.shape == (8, 2)
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose((centers[1:] - centers[:-1]).norm(dim=1), torch.full((7,), 4 * math.sin(math.pi / 8)))
    assert torch.allclose(points, toy_2d("ring", 500, seed=3), atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_count_modes_finds_exactly_the_modes_sampled(k):
    _, centers = ring_of_gaussians(1, modes=8)
    which = torch.arange(8000) % k
    samples = centers[which] + 0.02 * torch.randn(8000, 2, generator=torch.Generator().manual_seed(k))
    result = count_modes(samples, centers, std=0.02)
    assert result.modes == k
    assert result.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.006)  # P(|N(0, I_2)| < 3)
    assert result.counts[k:].sum() == 0


def test_count_modes_ignores_far_samples_and_thin_modes():
    _, centers = ring_of_gaussians(1, modes=4, radius=1.0)
    samples = torch.cat([centers[0].expand(60, 2), centers[1].expand(2, 2), torch.zeros(38, 2)])
    result = count_modes(samples, centers, std=0.02)  # mode 1 has 2% < 1 / (4 * 4) of the samples
    assert result.modes == 1
    assert result.high_quality == pytest.approx(0.62)
    assert result.counts.tolist() == [60, 2, 0, 0]
    assert count_modes(samples, centers, std=0.02, min_share=0.01).modes == 2
    with pytest.raises(ValueError, match=r"samples: expected .*\(N, 2\)"):
        count_modes(torch.zeros(5, 3), centers)


# --- the shipped model ------------------------------------------------------------------------


def test_shipped_cgan_draws_the_digits_it_is_asked_for():
    from dgm import zoo
    from dgm.gan import sample
    from dgm.metrics import class_accuracy
    from dgm.viz import to_unit

    metrics = zoo.card("cgan-mnist")["metrics"]
    assert metrics["class_accuracy"] >= 0.9, "the issue's target: >= 90% class accuracy of conditional samples"
    assert metrics["class_entropy"] >= 0.95 * math.log(10)
    generator = zoo.load("cgan-mnist", device="cpu")
    wanted = torch.arange(10).repeat(10)
    images = sample(generator, len(wanted), wanted, seed=5)
    assert images.shape == (100, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert class_accuracy(to_unit(images), wanted) >= 0.85  # 100 fresh samples: allow a few more misses
