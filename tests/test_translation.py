"""dgm.translation: receptive fields, the networks' shapes and skips, the pix2pix and CycleGAN losses,
the image pool, the MNIST tasks, and the training helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from dgm.data import degrade, edges, to_domain_b, unpaired_domains
from dgm.device import make_generator
from dgm.translation import (
    ImagePool,
    PatchDiscriminator,
    UNetGenerator,
    cycle_loss,
    cyclegan_generator_loss,
    empirical_receptive_field,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    output_size,
    patchgan_specs,
    pix2pix_discriminator_loss,
    pix2pix_generator_loss,
    receptive_field,
    train_cyclegan,
    train_pix2pix,
    translate,
)


def images(batch: int = 4, channels: int = 1, size: tuple[int, int] = (28, 28), seed: int = 0) -> torch.Tensor:
    """Random images ``(batch, channels, *size)`` in [-1, 1]."""
    return 2 * torch.rand(batch, channels, *size, generator=make_generator(seed)) - 1


def strokes(batch: int = 6, seed: int = 0) -> torch.Tensor:
    """Digit-like data in [0, 1]: each image a bar of random position, length and thickness."""
    g = make_generator(seed)
    x = torch.zeros(batch, 1, 28, 28)
    for i in range(batch):
        top, left = torch.randint(3, 10, (2,), generator=g).tolist()
        length, thickness = int(torch.randint(8, 16, (), generator=g)), int(torch.randint(2, 5, (), generator=g))
        x[i, 0, top : top + length, left : left + thickness] = 1.0
    return x


# --------------------------------------------------------------------------- receptive fields and map sizes


def test_receptive_field_matches_the_pix2pix_paper_and_simple_cases():
    # The paper's 16x16, 70x70 and 286x286 PatchGANs.
    assert [receptive_field(patchgan_specs(n)) for n in (1, 3, 5)] == [16, 70, 286]
    assert patchgan_specs(3) == [(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]
    assert receptive_field([(3, 1), (3, 1)]) == 5  # two 3x3 convolutions see 5x5
    assert receptive_field([(2, 2)] * 3) == 8  # non-overlapping 2x2 blocks tile an 8x8 square
    assert receptive_field([(1, 1)]) == 1
    with pytest.raises(ValueError, match="specs"):
        receptive_field([])
    with pytest.raises(ValueError, match="specs"):
        receptive_field([(4, 0)])


def test_output_size_gives_30x30_on_256_and_agrees_with_the_module():
    assert output_size(256, patchgan_specs(3)) == 30
    assert output_size(256, patchgan_specs(3), padding=0) == 24  # 256 -> 127 -> 62 -> 30 -> 27 -> 24
    # The real 70x70 PatchGAN (narrow, so that it is quick) on a 256x256 pair.
    discriminator = PatchDiscriminator(in_channels=2, width=8, layers=3).eval()
    with torch.no_grad():
        assert discriminator(images(1, 2, (256, 256))).shape == (1, 1, 30, 30)
        for layers, size in [(1, 28), (2, 28), (3, 28), (2, 64), (1, 40)]:
            model = PatchDiscriminator(in_channels=3, width=4, layers=layers).eval()
            side = output_size(size, patchgan_specs(layers))
            assert model(images(2, 3, (size, size))).shape == (2, 1, side, side)
            assert model.receptive_field == receptive_field(patchgan_specs(layers))
    # MNIST sizes documented in the module: 12x12 / 5x5 / 1x1 maps.
    assert [output_size(28, patchgan_specs(n)) for n in (1, 2, 3)] == [12, 5, 1]
    with pytest.raises(ValueError, match="too small"):
        output_size(8, patchgan_specs(3))


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_the_measured_receptive_field_equals_the_computed_one(layers, norm):
    discriminator = PatchDiscriminator(in_channels=2, width=4, layers=layers, norm=norm)
    expected = receptive_field(discriminator.specs)
    assert empirical_receptive_field(discriminator, in_channels=2, size=128) == (expected, expected)
    assert discriminator.training, "the measurement works on a copy and leaves the model alone"


def test_the_measured_receptive_field_refuses_an_input_it_does_not_fit_in():
    with pytest.raises(ValueError, match="reaches the border"):
        empirical_receptive_field(PatchDiscriminator(1, width=4, layers=3), in_channels=1, size=64)


def test_patch_discriminator_rejects_bad_inputs():
    discriminator = PatchDiscriminator(in_channels=2, width=4, layers=2)
    with pytest.raises(ValueError, match=r"x: expected float images of shape \(B, 2, H, W\)"):
        discriminator(images(1, 1))
    with pytest.raises(ValueError, match="too small"):
        discriminator(images(1, 2, (8, 8)))
    with pytest.raises(ValueError, match="layers"):
        PatchDiscriminator(2, layers=0)
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(2, norm="group")


# --------------------------------------------------------------------------- the U-Net generator


@pytest.mark.parametrize(
    "kwargs, shape",
    [({}, (3, 1, 28, 28)), ({"in_channels": 3, "out_channels": 2, "depth": 3, "width": 8}, (2, 3, 32, 48))],
)
def test_unet_output_has_the_input_size_and_stays_in_range(kwargs, shape):
    torch.manual_seed(0)
    model = UNetGenerator(**kwargs)
    x = 50 * images(shape[0], shape[1], shape[2:])  # far outside [-1, 1]: tanh still bounds the output
    out = model(x)
    assert out.shape == (shape[0], kwargs.get("out_channels", 1), *shape[2:])
    assert out.abs().max() <= 1


def test_unet_default_size_and_dropout_noise():
    torch.manual_seed(0)
    model = UNetGenerator()
    assert sum(p.numel() for p in model.parameters()) == 67_233  # the number in the docstring
    x = images(4)
    assert not torch.equal(model(x), model(x)), "training mode: dropout makes two passes differ"
    model.eval()
    assert torch.equal(model(x), model(x)), "evaluation mode is deterministic"


def test_unet_rejects_sizes_it_cannot_halve_and_wrong_channels():
    model = UNetGenerator(depth=2)
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* depth = 4"):
        model(images(1, 1, (30, 28)))
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* depth = 8"):
        UNetGenerator(depth=3)(images(1, 1, (28, 28)))
    with pytest.raises(ValueError, match=r"x: expected float images of shape \(B, 1, H, W\)"):
        model(images(1, 3))
    with pytest.raises(ValueError, match="dropout"):
        UNetGenerator(dropout=1.0)


@pytest.mark.parametrize("skips", [True, False])
def test_skip_connections_carry_the_input_past_a_dead_bottleneck(skips):
    # Zero the innermost encoder convolution: nothing passes the bottleneck. The U-Net's output still
    # depends on the input through its skips; the plain encoder-decoder's output no longer does.
    torch.manual_seed(0)
    model = UNetGenerator(skips=skips).eval()
    with torch.no_grad():
        for p in model.down[-1].parameters():
            p.zero_()
    x = images(1).requires_grad_(True)
    model(x)[0, 0, 14, 14].backward()
    gradient = x.grad[0, 0]
    if skips:
        assert gradient.abs().sum() > 0
        touched = gradient.abs().sum(1).nonzero().flatten()
        assert 10 <= touched.min() and touched.max() <= 17, "through the skip the path is short and local"
    else:
        assert torch.count_nonzero(gradient) == 0


# --------------------------------------------------------------------------- pix2pix losses


def test_pix2pix_generator_loss_parts():
    g = make_generator(1)
    logits = torch.randn(3, 1, 5, 5, generator=g)
    fake, target = images(3, seed=2), images(3, seed=3)
    plain = pix2pix_generator_loss(logits, fake, target, l1_weight=0.0)
    torch.testing.assert_close(plain.total, plain.gan)
    torch.testing.assert_close(plain.gan, -F.logsigmoid(logits).mean())  # non-saturating: -log D(x, G(x))
    torch.testing.assert_close(plain.l1, (fake - target).abs().mean())
    for weight in (1.0, 100.0, 250.0):
        loss = pix2pix_generator_loss(logits, fake, target, l1_weight=weight)
        torch.testing.assert_close(loss.total - loss.gan, weight * plain.l1)
    assert pix2pix_generator_loss(logits, target, target).l1 == 0
    undecided = pix2pix_generator_loss(torch.zeros(3, 1, 5, 5), target, target)
    torch.testing.assert_close(undecided.total, torch.tensor(math.log(2)))  # D(x, G(x)) = 1/2 everywhere


def test_pix2pix_discriminator_loss_known_values():
    undecided = torch.zeros(2, 1, 4, 4)
    torch.testing.assert_close(pix2pix_discriminator_loss(undecided, undecided), torch.tensor(math.log(2)))
    confident = torch.full((2, 1, 4, 4), 30.0)
    assert pix2pix_discriminator_loss(confident, -confident) < 1e-10
    torch.testing.assert_close(pix2pix_discriminator_loss(-confident, confident), torch.tensor(30.0))


def test_losses_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"fake: expected the shape of target \(2, 1, 28, 28\)"):
        pix2pix_generator_loss(torch.zeros(2, 1, 5, 5), images(2, size=(24, 24)), images(2))
    with pytest.raises(ValueError, match="l1_weight"):
        pix2pix_generator_loss(torch.zeros(2, 1, 5, 5), images(2), images(2), l1_weight=-1.0)
    with pytest.raises(ValueError, match="fake_logits"):
        pix2pix_discriminator_loss(torch.zeros(2, 1, 5, 5), torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="x_back"):
        cycle_loss(images(2), images(3))


# --------------------------------------------------------------------------- CycleGAN losses


def test_cycle_loss_is_zero_exactly_for_inverse_maps_and_positive_otherwise():
    x = images(4, 3)
    for forward, backward in [(torch.neg, torch.neg), (lambda t: t.flip(-1), lambda t: t.flip(-1))]:
        assert cycle_loss(x, backward(forward(x))) == 0
    assert cycle_loss(x, torch.neg(x.flip(-1))) > 0  # negation, then a flip: not the inverse
    torch.testing.assert_close(cycle_loss(x, 0.5 * x), 0.5 * x.abs().mean())
    torch.testing.assert_close(identity_loss(x, torch.neg(x)), 2 * x.abs().mean())


def test_lsgan_losses_known_values():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert lsgan_discriminator_loss(ones, zeros) == 0  # perfect D
    torch.testing.assert_close(lsgan_discriminator_loss(zeros, zeros), torch.tensor(0.5))
    torch.testing.assert_close(lsgan_discriminator_loss(zeros, ones), torch.tensor(1.0))
    assert lsgan_generator_loss(ones) == 0
    torch.testing.assert_close(lsgan_generator_loss(torch.full((4,), 3.0)), torch.tensor(4.0))


def test_cyclegan_generator_loss_combines_its_parts_with_the_paper_weights():
    a, b = images(2, seed=1), images(2, seed=2)
    fooled = lambda t: torch.ones(len(t), 1, 4, 4)  # noqa: E731 - a discriminator that calls everything real
    loss = cyclegan_generator_loss(torch.neg, torch.neg, fooled, fooled, a, b)
    assert loss.adversarial == 0 and loss.cycle == 0
    torch.testing.assert_close(loss.identity, 2 * b.abs().mean() + 2 * a.abs().mean())  # |-b - b| + |-a - a|
    torch.testing.assert_close(loss.total, 5.0 * loss.identity)  # lambda_identity = 0.5 * lambda_cycle = 5
    assert torch.equal(loss.fake_b, -a) and torch.equal(loss.fake_a, -b)

    undecided = lambda t: torch.zeros(len(t), 1, 4, 4)  # noqa: E731
    halve = lambda t: 0.5 * t  # noqa: E731
    loss = cyclegan_generator_loss(halve, halve, undecided, undecided, a, b, lambda_cycle=2.0, lambda_identity=0.0)
    torch.testing.assert_close(loss.adversarial, torch.tensor(2.0))  # (0 - 1)^2 for each direction
    torch.testing.assert_close(loss.cycle, 0.75 * (a.abs().mean() + b.abs().mean()))
    assert loss.identity == 0
    torch.testing.assert_close(loss.total, loss.adversarial + 2.0 * loss.cycle)


# --------------------------------------------------------------------------- image pool


def test_image_pool_fills_with_the_current_batch_then_mixes_in_history():
    pool = ImagePool(size=5, seed=0)
    first = images(3, seed=1)
    assert torch.equal(pool.query(first), first) and len(pool) == 3
    second = images(2, seed=2)
    assert torch.equal(pool.query(second), second) and len(pool) == 5, "not yet full: store and return the new"
    seen = torch.cat([first, second])
    later = images(40, seed=3)
    out = pool.query(later)
    assert out.shape == later.shape and len(pool) == 5
    from_batch = (out == later).flatten(1).all(1)
    earlier = torch.cat([seen, later])
    assert all((earlier == image).flatten(1).all(1).any() for image in out), "every output was given to the pool"
    assert 5 < from_batch.sum() < 35, "about half the outputs are old images"


def test_image_pool_is_seeded_and_size_zero_passes_through():
    def run(seed: int) -> torch.Tensor:
        pool = ImagePool(size=4, seed=seed)
        return torch.cat([pool.query(images(3, seed=k)) for k in range(6)])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    batch = images(3)
    assert torch.equal(ImagePool(size=0).query(batch), batch)
    with pytest.raises(ValueError, match="size"):
        ImagePool(size=-1)


# --------------------------------------------------------------------------- MNIST tasks


def test_edges_outline_a_square_and_are_deterministic():
    square = torch.zeros(1, 1, 28, 28)
    square[..., 8:20, 8:20] = 1.0
    outline = edges(square)
    assert outline.shape == square.shape and set(outline.unique().tolist()) == {0.0, 1.0}
    assert outline[..., 11:17, 11:17].sum() == 0, "flat inside"
    assert outline[..., :5, :].sum() == 0, "flat outside"
    assert outline[0, 0, 14, 7] == 1 and outline[0, 0, 14, 8] == 1, "both sides of the step"
    assert edges(torch.zeros(2, 1, 28, 28)).sum() == 0
    x = strokes()
    assert torch.equal(edges(x), edges(x))
    with pytest.raises(ValueError, match=r"images: expected data in \[0, 1\]"):
        edges(2 * x - 1)


def test_degrade_is_seeded_damaged_and_in_range():
    x = strokes()
    damaged = degrade(x, seed=0)
    assert damaged.shape == x.shape and damaged.min() >= 0 and damaged.max() <= 1
    assert torch.equal(damaged, degrade(x, seed=0))
    assert not torch.equal(damaged, degrade(x, seed=1))
    occluder = (damaged == 0.5).flatten(1).sum(1)
    assert (occluder >= 100).all(), "each image carries a 10x10 grey square"
    assert torch.equal(degrade(x, blur=0, occlusion=0, noise=0), x)
    with pytest.raises(ValueError, match="occlusion"):
        degrade(x, occlusion=29)


def test_to_domain_b_thickens_deterministically():
    dot = torch.zeros(1, 1, 28, 28)
    dot[0, 0, 10, 10] = 0.8
    thick = to_domain_b(dot)
    assert thick.shape == dot.shape and thick.sum() == pytest.approx(9 * 0.8)
    assert (thick[0, 0, 9:12, 9:12] == 0.8).all()
    x = strokes()
    assert torch.equal(to_domain_b(x), to_domain_b(x))
    assert (to_domain_b(x) >= x).all() and to_domain_b(x).max() <= 1
    assert to_domain_b(x).sum() > x.sum()
    with pytest.raises(ValueError, match="kernel"):
        to_domain_b(x, kernel=2)


def test_unpaired_domains_come_from_disjoint_halves():
    # Constant images: each value names its source, and dilation leaves a constant image unchanged.
    x = torch.linspace(0, 1, 10)[:, None, None, None].expand(10, 1, 28, 28).contiguous()
    a, b = unpaired_domains(x, seed=0)
    assert a.shape == b.shape == (5, 1, 28, 28)
    ids_a, ids_b = set(a[:, 0, 0, 0].tolist()), set(b[:, 0, 0, 0].tolist())
    assert len(ids_a) == len(ids_b) == 5 and not ids_a & ids_b
    assert torch.equal(unpaired_domains(x, seed=0)[1], b)


# --------------------------------------------------------------------------- training


def test_a_seeded_discriminator_step_lowers_its_loss():
    for loss_fn in (pix2pix_discriminator_loss, lsgan_discriminator_loss):
        torch.manual_seed(0)
        discriminator = PatchDiscriminator(in_channels=2, width=8, layers=2)
        optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
        real, fake = images(8, 2, seed=1), images(8, 2, seed=2)

        def loss() -> torch.Tensor:
            return loss_fn(discriminator(real), discriminator(fake))

        before = loss()
        optimizer.zero_grad()
        before.backward()
        optimizer.step()
        assert loss() < before.detach()


def small_pix2pix(seed: int = 0) -> tuple[UNetGenerator, PatchDiscriminator]:
    torch.manual_seed(seed)
    return UNetGenerator(width=8), PatchDiscriminator(in_channels=2, width=8, layers=1)


def test_train_pix2pix_histories_and_repeatability():
    targets = strokes(16)
    sources = edges(targets)
    runs = [
        train_pix2pix(*small_pix2pix(), sources, targets, steps=3, batch_size=8, device="cpu", progress=False)
        for _ in range(2)
    ]
    assert set(runs[0]) == {"l1", "gan", "d"} and all(len(v) == 3 for v in runs[0].values())
    assert runs[0] == runs[1], "seeded: the same run twice gives the same losses"
    generator, _ = small_pix2pix()
    baseline = train_pix2pix(generator, None, sources, targets, steps=3, batch_size=8, gan=False, progress=False)
    assert list(baseline) == ["l1"] and len(baseline["l1"]) == 3 and not generator.training
    out = translate(generator, sources)
    assert out.shape == targets.shape and out.min() >= 0 and out.max() <= 1


def test_train_pix2pix_rejects_bad_data_and_budgets():
    generator, discriminator = small_pix2pix()
    x = strokes(8)
    with pytest.raises(ValueError, match=r"sources: expected data in \[0, 1\]"):
        train_pix2pix(generator, discriminator, 2 * x - 1, x, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"targets: expected one target per source, of its size, \(8, C, 28, 28\)"):
        train_pix2pix(generator, discriminator, x, x[:4], steps=1, progress=False)
    with pytest.raises(ValueError, match="targets: expected one target per source"):
        train_pix2pix(generator, discriminator, x, x[..., :24, :24], steps=1, progress=False)
    with pytest.raises(ValueError, match="budget"):
        train_pix2pix(generator, discriminator, x, x, progress=False)
    with pytest.raises(ValueError, match="discriminator"):
        train_pix2pix(generator, None, x, x, steps=1, progress=False)


def test_train_cyclegan_histories_and_repeatability():
    domain_a, domain_b = unpaired_domains(strokes(16), seed=0)

    def run() -> dict[str, list[float]]:
        torch.manual_seed(0)
        models = [UNetGenerator(width=8, norm="instance", dropout=0.0) for _ in range(2)]
        models += [PatchDiscriminator(1, width=8, layers=1, norm="instance") for _ in range(2)]
        budget = {"steps": 2, "batch_size": 4, "pool_size": 3, "device": "cpu", "progress": False}
        return train_cyclegan(*models, domain_a, domain_b, **budget)

    history = run()
    assert set(history) == {"total", "adversarial", "cycle", "identity", "d_a", "d_b"}
    assert all(len(v) == 2 for v in history.values())
    for step in range(2):
        expected = history["adversarial"][step] + 10 * history["cycle"][step] + 5 * history["identity"][step]
        assert history["total"][step] == pytest.approx(expected, rel=1e-5)
    assert history == run()
