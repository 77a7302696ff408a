"""Latent diffusion's pieces: the autoencoder (dgm.latent), the DiT (dgm.dit) and flow matching (dgm.flow).

Flow matching is checked on Gaussian data, where the velocity field is known in closed form: for
``x_0 ~ N(MEAN, STD^2)`` per pixel and ``x_t = (1 - t) x_0 + t eps``, with ``a = 1 - t``, ``b = t``,
``E[x_0 | x_t] = MEAN + a STD^2 (x_t - a MEAN) / (a^2 STD^2 + b^2)`` and
``E[eps | x_t] = b (x_t - a MEAN) / (a^2 STD^2 + b^2)``; the ODE maps a noise draw ``z`` to
``MEAN + STD z`` exactly.
"""

from __future__ import annotations

import pytest
import torch

from dgm.device import make_generator
from dgm.dit import AdaLNZeroBlock, DiT, modulate, patchify, unpatchify
from dgm.flow import euler_sample, flow_matching_loss, heun_sample, interpolate, sample_times, time_grid
from dgm.latent import LatentAutoencoder, LatentGenerator, autoencoder_loss, latent_scale

F64 = torch.float64
MEAN, STD = 0.3, 0.2


def gaussian_velocity(x, t):
    a, b = (1 - t).view(-1, 1, 1, 1), t.view(-1, 1, 1, 1)
    centred = x - a * MEAN
    spread = a**2 * STD**2 + b**2
    return b * centred / spread - (MEAN + a * STD**2 * centred / spread)


def noise(n=256, seed=0):
    return torch.randn(n, 1, 4, 4, generator=make_generator(seed), dtype=F64)


# --- dgm.flow -----------------------------------------------------------------------------------


def test_the_path_runs_from_data_at_0_to_noise_at_1_in_a_straight_line():
    x0, eps = torch.full((2, 1, 2, 2), 3.0), torch.full((2, 1, 2, 2), -1.0)
    assert torch.equal(interpolate(x0, eps, 0.0), x0) and torch.equal(interpolate(x0, eps, 1.0), eps)
    per_image = interpolate(x0, eps, torch.tensor([0.25, 0.5]))
    assert per_image[0].unique().item() == 2.0 and per_image[1].unique().item() == 1.0
    with pytest.raises(ValueError, match="noise"):
        interpolate(x0, eps[:1], 0.5)
    with pytest.raises(ValueError, match="t: expected"):
        interpolate(x0, eps, torch.tensor([0.1, 0.2, 0.3]))


def test_times_are_uniform_or_logit_normal_in_the_open_interval():
    uniform, logit = sample_times(20_000, "uniform", 0), sample_times(20_000, "logit_normal", 0)
    for t in (uniform, logit):
        assert t.shape == (20_000,) and t.min() > 0 and t.max() < 1
    assert uniform.mean().item() == pytest.approx(0.5, abs=0.01) and uniform.var().item() == pytest.approx(1 / 12, abs=0.005)
    middle = lambda t: ((t > 0.25) & (t < 0.75)).float().mean().item()  # noqa: E731
    assert middle(logit) > middle(uniform) + 0.1, "logit-normal puts more times in the middle"
    assert torch.equal(sample_times(5, "uniform", 3), sample_times(5, "uniform", 3))
    with pytest.raises(ValueError, match="kind"):
        sample_times(5, "cosine")


def test_the_loss_is_zero_for_the_true_velocity_of_a_one_point_data_set_and_positive_otherwise():
    point = torch.full((4096, 1, 2, 2), 0.7)

    class Oracle(torch.nn.Module):  # for one data point, eps - x0 = (x_t - x0) / t
        def forward(self, x, t, y):
            return (x - point) / t.view(-1, 1, 1, 1)

    assert flow_matching_loss(Oracle(), point, generator=0).item() == pytest.approx(0.0, abs=1e-8)

    class Zero(torch.nn.Module):
        def forward(self, x, t, y):
            return torch.zeros_like(x)

    # E|eps - x0|^2 = 1 + 0.49 per pixel
    assert flow_matching_loss(Zero(), point, generator=0).item() == pytest.approx(1.49, rel=0.05)


def test_labels_are_dropped_to_the_null_class_at_the_asked_rate():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, y):
            seen.append(y)
            return torch.zeros_like(x)

    labels = torch.zeros(4000, dtype=torch.long)
    flow_matching_loss(Spy(), torch.zeros(4000, 1, 1, 1), labels, 0, p_uncond=0.25, null_label=10)
    assert (seen[0] == 10).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert set(seen[0].tolist()) == {0, 10}
    with pytest.raises(ValueError, match="null_label"):
        flow_matching_loss(Spy(), torch.zeros(4, 1, 1, 1), labels[:4], 0, p_uncond=0.5)


def test_the_ode_with_the_exact_velocity_carries_noise_to_the_gaussian():
    z = noise()
    exact = MEAN + STD * z
    fine = euler_sample(gaussian_velocity, z, 2000)
    assert (fine - exact).abs().max().item() < 2e-3
    euler, heun = euler_sample(gaussian_velocity, z, 10), heun_sample(gaussian_velocity, z, 10)
    assert (heun - exact).abs().mean() < (euler - exact).abs().mean() / 3, "Heun is second order"
    assert heun.mean().item() == pytest.approx(MEAN, abs=0.02) and heun.std().item() == pytest.approx(STD, rel=0.1)


def test_the_path_holds_every_state_from_noise_to_data():
    path = []
    z = noise(4)
    out = euler_sample(gaussian_velocity, z, 5, path=path)
    assert len(path) == 6 and torch.equal(path[0], z) and torch.equal(path[-1], out)
    assert torch.allclose(time_grid(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)


# --- dgm.dit ------------------------------------------------------------------------------------


def test_patchify_and_unpatchify_are_inverse_and_tokens_are_patches_in_reading_order():
    x = torch.randn(2, 3, 8, 6)
    for patch in (1, 2):
        tokens = patchify(x, patch)
        assert tokens.shape == (2, (8 // patch) * (6 // patch), 3 * patch * patch)
        assert torch.equal(unpatchify(tokens, patch, 3, 8, 6), x)
    tokens = patchify(x, 2)
    assert torch.equal(tokens[:, 1], x[:, :, 0:2, 2:4].reshape(2, -1)), "token 1 is the second patch of the first row"
    assert torch.equal(tokens[:, 3], x[:, :, 2:4, 0:2].reshape(2, -1)), "token 3 starts the second row"
    with pytest.raises(ValueError, match="does not divide"):
        patchify(x, 4)
    with pytest.raises(ValueError, match="tokens"):
        unpatchify(tokens, 2, 3, 8, 8)


def test_modulate_scales_and_shifts_each_image_its_own_way():
    h = torch.ones(2, 5, 3)
    out = modulate(h, torch.tensor([[1.0, 0, 0], [0, 0, 0]]), torch.tensor([[0.0, 1, 0], [-1, 0, 0]]))
    assert torch.equal(out[0, :, 0], torch.full((5,), 2.0)) and torch.equal(out[0, :, 1], torch.full((5,), 2.0))
    assert torch.equal(out[1, :, 0], torch.zeros(5)) and torch.equal(out[1, :, 2], torch.ones(5))


def test_an_adaln_zero_block_is_the_identity_at_start_and_not_after_its_modulation_moves():
    torch.manual_seed(0)
    block = AdaLNZeroBlock(16, 4)
    x, c = torch.randn(3, 7, 16), torch.randn(3, 16)
    assert torch.equal(block(x, c), x)
    torch.nn.init.normal_(block.modulation[1].weight, std=0.1)
    assert not torch.allclose(block(x, c), x)


def test_an_untrained_dit_predicts_zero_and_learns_to_tell_classes_and_times_apart():
    torch.manual_seed(0)
    model = DiT(channels=2, size=4, patch=2, dim=32, depth=2, heads=4, num_classes=3)
    x, t = torch.randn(6, 2, 4, 4), torch.rand(6)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    assert torch.equal(model(x, t, y), torch.zeros_like(x))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    target = y.float().view(-1, 1, 1, 1).expand_as(x) + t.view(-1, 1, 1, 1)  # depends on the label and the time only
    for _ in range(300):
        optimizer.zero_grad()
        loss = ((model(x, t, y) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01
    assert model(x, t, None).shape == x.shape
    with pytest.raises(ValueError, match=r"x: expected \(B, 2, 4, 4\)"):
        model(torch.randn(1, 2, 5, 5), t[:1], y[:1])
    with pytest.raises(ValueError, match="heads"):
        DiT(dim=30, heads=4)


# --- dgm.latent ---------------------------------------------------------------------------------


def test_the_autoencoder_maps_digits_to_4x7x7_latents_and_back():
    torch.manual_seed(0)
    model = LatentAutoencoder()
    x = torch.rand(5, 1, 28, 28)
    mean, logvar = model.encode(x)
    assert mean.shape == logvar.shape == (5, 4, 7, 7)
    assert model.decode(mean).shape == (5, 1, 28, 28)
    out = model(x)
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.encode(x * 2 - 1)


def test_the_autoencoder_loss_is_reconstruction_plus_weighted_kl_and_training_lowers_it():
    torch.manual_seed(0)
    model = LatentAutoencoder(width=8)
    x = torch.zeros(4, 1, 28, 28)
    for i in range(4):  # four bars to remember
        x[i, 0, 3 + 6 * i : 7 + 6 * i, 4:24] = 1
    x = x.repeat(4, 1, 1, 1)
    no_kl = autoencoder_loss(model, x, kl_weight=0.0, generator=0)
    with_kl = autoencoder_loss(model, x, kl_weight=1.0, generator=0)
    assert with_kl > no_kl > 0
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = autoencoder_loss(model, x, generator=0).item()
    for step in range(150):
        optimizer.zero_grad()
        autoencoder_loss(model, x, generator=step).backward()
        optimizer.step()
    assert autoencoder_loss(model, x, generator=0).item() < 0.5 * first


def test_latent_scale_gives_unit_variance_and_the_generator_round_trips_its_scale():
    means = 3.0 * torch.randn(1000, 4, 7, 7)
    scale = latent_scale(means)
    assert (means * scale).std().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="two"):
        latent_scale(torch.zeros(1))
    torch.manual_seed(0)
    generator = LatentGenerator(LatentAutoencoder(width=8), DiT(), scale=0.5)
    x = torch.rand(2, 1, 28, 28)
    z = generator.to_latents(x)
    assert torch.allclose(z, generator.autoencoder.encode(x)[0] * 0.5)
    assert torch.allclose(generator.to_images(z), generator.autoencoder(x), atol=1e-6)
    restored = LatentGenerator(LatentAutoencoder(width=8), DiT())
    restored.load_state_dict(generator.state_dict())
    assert restored.scale.item() == 0.5


def test_latent_samplers_do_not_clip_latents_to_the_pixel_range():
    """Scaled latents spread past [-1, 1]; the epsilon sampler must not clamp them as it does images."""
    from dgm.recipes.ldm import sample_latents

    class NoNoise(torch.nn.Module):  # eps = 0: the sample is x_T / sqrt(alpha_bar_T), far outside [-1, 1]
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, y):
            return torch.zeros_like(x)

    labels = torch.arange(4)
    for objective in ("epsilon", "flow"):
        z = sample_latents(NoNoise(), labels, scale=1.0, steps=4, objective=objective)
        assert z.shape == (4, 4, 7, 7) and z.abs().max() > 1.5, objective


def test_text_vectors_are_dropped_whole_to_the_zero_vector():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, y):
            seen.append(y)
            return torch.zeros_like(x)

    text = torch.ones(4000, 3)
    flow_matching_loss(Spy(), torch.zeros(4000, 1, 1, 1), text, 0, p_uncond=0.25, null_label=0)
    dropped = (seen[0] == 0).all(1)
    assert dropped.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert ((seen[0] == 0).any(1) == dropped).all(), "a vector is kept or dropped whole"


def test_a_text_dit_gives_the_zero_vector_its_own_learned_embedding():
    torch.manual_seed(0)
    model = DiT(depth=1, dim=32, text_dim=8)
    assert not hasattr(model, "label_embedding")
    t = torch.rand(3)
    with torch.no_grad():
        model.null_text.add_(1.0)
        prompts = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
        empty = torch.zeros(3, 8)
        assert torch.equal(model.condition(t, None), model.condition(t, empty)), "None means the empty prompt for every image"
        mixed = model.condition(t, torch.stack([prompts[0], empty[1], prompts[2]]))
        assert torch.allclose(mixed[1], model.condition(t, empty)[1]) and torch.allclose(mixed[0], model.condition(t, prompts)[0])
        time_only = model.time_mlp(__import__("dgm.unet", fromlist=["x"]).sinusoidal_embedding(t * model.time_scale, 32))
        assert torch.allclose(model.condition(t, empty) - time_only, model.null_text.expand(3, -1), atol=1e-6)
    assert model(torch.randn(3, 4, 7, 7), t, prompts).shape == (3, 4, 7, 7)
    with pytest.raises(ValueError, match="text embeddings"):
        model(torch.randn(3, 4, 7, 7), t, torch.tensor([1, 2, 3]))


def test_guidance_mixes_a_text_prompt_with_the_zero_vector():
    from dgm.diffusion import guided

    def model(x, t, y):
        return torch.ones_like(x) * y.sum(1).view(-1, 1, 1, 1)

    text = torch.tensor([[1.0, 2.0], [0.5, 0.5]])
    eps = guided(model, text, 3.0, 0)(torch.zeros(2, 1, 2, 2), torch.zeros(2))
    assert torch.allclose(eps[:, 0, 0, 0], torch.tensor([9.0, 3.0])), "0 + 3 * (sum - 0)"
    with pytest.raises(ValueError, match="one per image"):
        guided(model, text, 3.0, 0)(torch.zeros(3, 1, 2, 2), torch.zeros(3))
