"""CLIP-guided editing (dgm.clip_edit) and the text-to-image recipe's attribute agreement."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dgm import clip_edit
from dgm.captions import AttributeScale


class FlatClip(torch.nn.Module):
    """A stand-in CLIP: the image embedding is the image's pixels, normalized."""

    def encode_image(self, images):
        return F.normalize(images.flatten(1), dim=-1)


def flat(w):
    return w.view(len(w), 1, 1, 2)


def test_one_step_follows_the_cosine_gradient_and_the_anchor():
    up = torch.tensor([[0.0, 1.0]])
    w = torch.tensor([[1.0, 0.0]])
    assert torch.allclose(clip_edit.edit_step(w, w, flat, FlatClip(), up, 0.1, 0.0), torch.tensor([[1.0, 0.1]]))
    pulled = clip_edit.edit_step(w, torch.tensor([[1.0, 0.5]]), flat, FlatClip(), up, 0.1, 1.0)
    assert torch.allclose(pulled, torch.tensor([[1.0, 0.2]])), "the anchor's gradient 2 (w - w0) adds its own pull"
    batch = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 1.0]])
    targets = F.normalize(torch.tensor([[0.0, 1.0], [1.0, -1.0], [1.0, 2.0]]), dim=-1)
    together = clip_edit.edit_step(batch, batch, flat, FlatClip(), targets, 0.3, 0.0)
    alone = torch.cat([clip_edit.edit_step(batch[i:i + 1], batch[i:i + 1], flat, FlatClip(), targets[i:i + 1], 0.3, 0.0)
                       for i in range(3)])
    assert torch.allclose(together, alone), "each image gets the step it gets alone"
    assert not together.requires_grad


def test_editing_raises_the_similarity_and_keeps_the_model_untouched():
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Tanh())
    before = [p.detach().clone() for p in generator.parameters()]
    text = F.normalize(torch.tensor([1.0, -1.0]), dim=0)
    result = clip_edit.edit(torch.randn(16, 4), lambda z: flat(generator(z)), FlatClip(), text, steps=30, lr=0.5)
    assert result.images.shape == (16, 1, 1, 2)
    assert (result.similarity_after > result.similarity_before).float().mean() > 0.9
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))
    with pytest.raises(ValueError, match="text"):
        clip_edit.clip_similarity(FlatClip(), torch.rand(3, 1, 1, 2), torch.rand(2, 2))


def test_pixel_variables_round_trip_and_stay_in_the_unit_interval():
    images = torch.rand(4, 1, 28, 28) * 0.98 + 0.01
    assert torch.allclose(clip_edit.pixel_render(clip_edit.to_pixel_variable(images)), images, atol=1e-5)
    assert clip_edit.pixel_render(torch.tensor([-50.0, 50.0])).min() >= 0
    generator = torch.nn.Linear(3, 2)
    render = clip_edit.latent_render(lambda z, y: torch.tanh(generator(z)) + 0 * y.view(-1, 1), torch.tensor([1, 2]))
    out = render(torch.randn(2, 3))
    assert ((out >= 0) & (out <= 1)).all(), "(G + 1) / 2 maps [-1, 1] to [0, 1]"


def test_agreement_counts_asked_attributes_in_their_third():
    from dgm.recipes.text2image import agreement

    images = torch.zeros(4, 1, 28, 28)
    labels = torch.zeros(4, dtype=torch.long)
    scale = AttributeScale(torch.zeros(10, 3, 2))

    class Fixed(AttributeScale):
        def __call__(self, images, labels):
            return torch.tensor([[2, 0, 1], [2, 1, 1], [0, 2, 1], [1, 1, 1]])

    asked = torch.tensor([[2, 0, 1], [2, 0, 1], [2, 1, 1], [1, 1, 1]])
    result = agreement(images, labels, asked, Fixed(scale.edges))
    assert result["thickness_prompts"] == 3 and result["thickness_in_asked_third"] == pytest.approx(2 / 3)
    assert result["thickness_not_opposite"] == pytest.approx(2 / 3), "asked thick, measured thin is the opposite"
    assert result["slant_prompts"] == 2 and result["slant_in_asked_third"] == pytest.approx(1 / 2)
    assert result["slant_not_opposite"] == pytest.approx(1.0), "asked left, measured upright is not the opposite"
    assert result["thick_and_left_prompts"] == 2 and result["thick_and_left_both"] == pytest.approx(1 / 2)
