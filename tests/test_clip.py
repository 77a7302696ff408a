"""dgm.clip: the contrastive loss, temperature, zero-shot classification, recall@k, and a small model that learns."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from dgm import clip
from dgm.captions import Tokenizer
from dgm.data import digits
from dgm.train import batches, fit


def test_clip_loss_known_values_and_symmetry():
    n = 5
    assert clip.clip_loss(torch.zeros(n, n)).item() == pytest.approx(math.log(n)), "uniform logits: log N nats"
    assert clip.clip_loss(100 * torch.eye(n)).item() < 1e-30, "a confident diagonal costs nothing"
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    rows = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(math.exp(3) / (math.exp(1) + math.exp(3)))) / 2
    cols = -(math.log(math.exp(2) / (math.exp(2) + math.exp(1))) + math.log(math.exp(3) / (1 + math.exp(3)))) / 2
    assert clip.clip_loss(logits).item() == pytest.approx((rows + cols) / 2, rel=1e-6)
    random_logits = torch.randn(7, 7, generator=torch.Generator().manual_seed(0))
    assert clip.clip_loss(random_logits).item() == pytest.approx(clip.clip_loss(random_logits.T).item())
    with pytest.raises(ValueError, match="square"):
        clip.clip_loss(torch.zeros(3, 4))


def test_similarity_logits_divide_by_the_temperature_and_cap_it():
    u = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    logits = clip.similarity_logits(u, u, torch.tensor(math.log(1 / 0.5)))
    assert torch.allclose(logits.diagonal(), torch.full((4,), 2.0)), "cosine 1 over tau = 0.5"
    capped = clip.similarity_logits(u, u, torch.tensor(10.0))  # 1 / tau = e^10, capped at 100
    assert torch.allclose(capped.diagonal(), torch.full((4,), 100.0))


def test_recall_at_k_counts_ranks_and_ties():
    assert clip.recall_at_k(torch.eye(4), 1) == 1.0
    anti = 1 - torch.eye(4)  # every other item beats the target; with ties they count against it
    assert clip.recall_at_k(anti, 1) == 0.0 and clip.recall_at_k(anti, 3) == 0.0 and clip.recall_at_k(anti, 4) == 1.0
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.8, 0.2, 0.1], [0.0, 0.3, 0.4]])
    assert clip.recall_at_k(similarity, 1) == pytest.approx(2 / 3)  # query 1's target ranks 2nd
    assert clip.recall_at_k(similarity, 2) == 1.0
    assert clip.recall_at_k(similarity, 1, targets=torch.tensor([0, 0, 2])) == 1.0


class OneHotModel(torch.nn.Module):
    """Stands in for CLIP: an image's embedding is the one-hot vector of its brightest pixel's column."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode_image(self, images):
        return F.one_hot(images.flatten(1).argmax(1) % 28, 28).float()


def test_zero_shot_classify_picks_the_most_similar_class():
    images = torch.zeros(3, 1, 28, 28)
    for i, col in enumerate((5, 2, 9)):
        images[i, 0, 0, col] = 1.0
    classes = F.one_hot(torch.tensor([2, 5, 9]), 28).float()  # class 0 <-> column 2, 1 <-> 5, 2 <-> 9
    assert clip.zero_shot_classify(OneHotModel(), images, classes, batch_size=2).tolist() == [1, 0, 2]


def test_prompts_and_class_embeddings_are_unit_vectors():
    prompts = clip.digit_prompts()
    assert len(prompts) == 10 and prompts[7][:2] == ["a seven", "a 7"]
    model = clip.CLIP(len(Tokenizer()), embed_dim=16, width=32)
    classes = clip.class_embeddings(model, Tokenizer(), prompts)
    assert classes.shape == (10, 16) and torch.allclose(classes.norm(dim=1), torch.ones(10), atol=1e-5)


def test_text_embedding_ignores_padding_and_depends_on_words():
    torch.manual_seed(0)
    model = clip.CLIP(len(Tokenizer()), embed_dim=16, width=32).eval()
    tokenizer = Tokenizer()
    short, long = model.encode_text(tokenizer.encode("a thick 7", length=8)), model.encode_text(tokenizer.encode("a thick 7", length=16))
    assert torch.allclose(short, long, atol=1e-5), "padding must not change a caption's embedding"
    assert not torch.allclose(short, model.encode_text(tokenizer.encode("a thin 7", length=8)), atol=1e-3)
    images = torch.rand(3, 1, 28, 28)
    assert model(images, tokenizer.encode(["a 1", "a 2", "a 3"])).shape == (3, 3)
    assert model.temperature == pytest.approx(0.07)


def test_a_small_clip_learns_to_read_digits_zero_shot():
    images, labels = digits(size=28)
    tokenizer = Tokenizer()
    names = [prompts[0] for prompts in clip.digit_prompts()]  # "a zero", "a one", ...
    torch.manual_seed(0)
    model = clip.CLIP(len(tokenizer), embed_dim=32, width=32)
    tokens = tokenizer.encode(names)

    def loss_fn(model, batch):
        x, y = batch
        return clip.clip_loss(model(x, tokens[y]))

    result = fit(model, loss_fn, batches(images[:1500], labels[:1500], batch_size=64, seed=0), steps=150,
                 lr=2e-3, progress=False)
    assert sum(result.losses[-10:]) / 10 < 0.5 * sum(result.losses[:10]) / 10
    predicted = clip.zero_shot_classify(model, images[1500:], clip.class_embeddings(model, tokenizer, clip.digit_prompts()))
    accuracy = (predicted == labels[1500:]).float().mean().item()
    assert accuracy > 0.6, f"zero-shot accuracy on held-out digits {accuracy:.2f}"
