"""A small CLIP (Radford et al., 2021): images and captions embedded in one space by a contrastive loss.

Two encoders map a batch of ``N`` images and their ``N`` captions to unit vectors ``u_i`` and
``v_j``. Their cosine similarities, divided by a learned **temperature** ``tau``, form an ``N x N``
matrix of logits ``S_ij = u_i . v_j / tau`` whose diagonal holds the matching pairs. The symmetric
InfoNCE loss (:func:`clip_loss`) is the cross-entropy of reading each row (an image choosing its
caption among the batch's) and each column (a caption choosing its image) as a classification
whose right answer is the diagonal.

After training, **zero-shot classification** (:func:`zero_shot_classify`) asks in words: each class
is the mean embedding of a few prompts ("a 7", "the digit seven", ...), and an image belongs to the
class whose prompt embedding it is most similar to. **Retrieval** ranks a gallery by similarity;
:func:`recall_at_k` is the share of queries whose match is among the top ``k``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dgm.checks import describe

__all__ = ["ImageEncoder", "TextEncoder", "CLIP", "similarity_logits", "clip_loss", "class_embeddings",
           "digit_prompts", "embed_images", "embed_texts", "zero_shot_classify", "recall_at_k", "DIGIT_PROMPTS"]

DIGIT_PROMPTS = ("a {word}", "a {numeral}", "the digit {word}", "a handwritten {numeral}", "a picture of a {word}")
"""Prompt templates for zero-shot digit classification: ``word`` is "seven", ``numeral`` is "7"."""


class ImageEncoder(nn.Module):
    """Images ``(B, 1, 28, 28)`` in [0, 1] -> features ``(B, dim)``: three strided convolutions and a linear layer."""

    def __init__(self, dim: int = 64, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1), nn.GELU(),          # 14 x 14
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),  # 7 x 7
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GELU(),
            nn.Flatten(), nn.Linear(2 * width * 49, dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)


class TextEncoder(nn.Module):
    """Token ids ``(B, L)`` (0 pads) -> features ``(B, dim)``: word and position embeddings, a small
    transformer encoder, and the mean over the caption's real tokens."""

    def __init__(self, vocabulary: int, dim: int = 64, length: int = 16, depth: int = 2, heads: int = 4):
        super().__init__()
        self.words = nn.Embedding(vocabulary, dim, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] > len(self.positions):
            raise ValueError(f"tokens: expected (B, L) with L <= {len(self.positions)}, got {describe(tokens)}")
        padding = tokens == 0
        h = self.transformer(self.words(tokens) + self.positions[: tokens.shape[1]], src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).float()
        return self.norm((h * keep).sum(1) / keep.sum(1).clamp_min(1.0))


class CLIP(nn.Module):
    """The two encoders, a linear projection of each into a shared ``embed_dim``-space, and the
    temperature, learned as ``log(1 / tau)`` starting at ``tau = 0.07`` (the paper's start)."""

    def __init__(self, vocabulary: int, embed_dim: int = 64, width: int = 64, length: int = 16):
        super().__init__()
        self.image_encoder = ImageEncoder(width)
        self.text_encoder = TextEncoder(vocabulary, width, length)
        self.image_projection = nn.Linear(width, embed_dim, bias=False)
        self.text_projection = nn.Linear(width, embed_dim, bias=False)
        self.log_inverse_temperature = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def temperature(self) -> float:
        return 1 / self.log_inverse_temperature.detach().exp().clamp(max=100.0).item()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit vectors ``(B, embed_dim)`` for images ``(B, 1, 28, 28)`` in [0, 1]."""
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unit vectors ``(B, embed_dim)`` for token ids ``(B, L)``."""
        return F.normalize(self.text_projection(self.text_encoder(tokens)), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The ``(B, B)`` logits of every image against every caption."""
        return similarity_logits(self.encode_image(images), self.encode_text(tokens), self.log_inverse_temperature)


def similarity_logits(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                      log_inverse_temperature: torch.Tensor) -> torch.Tensor:
    """``S_ij = u_i . v_j / tau`` for unit vectors ``u`` ``(N, E)``, ``v`` ``(M, E)``; ``1 / tau`` is capped at 100."""
    return log_inverse_temperature.exp().clamp(max=100.0) * image_embeddings @ text_embeddings.T


def clip_loss(logits: torch.Tensor) -> torch.Tensor:
    """The symmetric InfoNCE loss of square logits ``(N, N)`` whose diagonal holds the matching pairs:
    the mean of the image-to-text and the text-to-image cross-entropies, in nats."""
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits: expected a square (N, N) matrix, got {describe(logits)}")
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


@torch.no_grad()
def class_embeddings(model: CLIP, tokenizer, prompts: list[list[str]]) -> torch.Tensor:
    """One unit vector per class ``(K, E)``: the normalized mean of the embeddings of its prompts."""
    device = next(model.parameters()).device
    rows = [model.encode_text(tokenizer.encode(texts).to(device)).mean(0) for texts in prompts]
    return F.normalize(torch.stack(rows), dim=-1)


def digit_prompts(templates: tuple[str, ...] = DIGIT_PROMPTS) -> list[list[str]]:
    """For each digit 0..9, the templates filled in with its word and numeral."""
    from dgm.captions import DIGIT_WORDS

    return [[t.format(word=word, numeral=numeral) for t in templates] for word, numeral in DIGIT_WORDS]


@torch.no_grad()
def embed_images(model: CLIP, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Unit image embeddings ``(N, E)`` of ``images`` ``(N, 1, 28, 28)`` in [0, 1], on the CPU, in batches."""
    device = next(model.parameters()).device
    return torch.cat([model.encode_image(chunk.to(device)).cpu() for chunk in images.split(batch_size)])


@torch.no_grad()
def embed_texts(model: CLIP, tokenizer, captions: list[str], batch_size: int = 1000) -> torch.Tensor:
    """Unit text embeddings ``(N, E)`` of ``captions`` (tokenized to the model's length), on the CPU, in batches."""
    device = next(model.parameters()).device
    tokens = tokenizer.encode(captions, length=len(model.text_encoder.positions))
    return torch.cat([model.encode_text(chunk.to(device)).cpu() for chunk in tokens.split(batch_size)])


def zero_shot_classify(model: CLIP, images: torch.Tensor, classes: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The class ``(N,)`` of each image: the row of ``classes`` ``(K, E)`` (unit vectors, e.g. from
    :func:`class_embeddings`) most similar to the image's embedding."""
    return (embed_images(model, images, batch_size) @ classes.cpu().T).argmax(1)


def recall_at_k(similarity: torch.Tensor, k: int, targets: torch.Tensor | None = None) -> float:
    """The share of queries (rows of ``similarity`` ``(Q, G)``) whose target gallery item is among the
    ``k`` most similar; ``targets`` ``(Q,)`` defaults to the diagonal (query ``i`` matches item ``i``).
    Ties count against the query (an item exactly as similar as the target ranks before it)."""
    if targets is None:
        targets = torch.arange(len(similarity))
    target_scores = similarity[torch.arange(len(similarity)), targets]
    better = (similarity >= target_scores[:, None]).sum(1) - 1  # items ranked at or above the target, itself excluded
    return (better < k).float().mean().item()
