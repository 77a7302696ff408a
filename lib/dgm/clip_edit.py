"""CLIP-guided editing: move an image toward a prompt by gradient steps on what makes the image.

Two pretrained models plugged together: a generator ``render(w)`` that turns a variable ``w`` into
images in [0, 1], and a CLIP (:mod:`dgm.clip`) that scores how well an image fits a text. Each step
of :func:`edit` lowers

    ``L(w) = - sum_i cos(u(render(w)_i), v_i) + anchor * sum_i |w_i - w0_i|^2``

(``u``: the image embedding, ``v_i``: the prompt's text embedding) by ``w <- w - lr * grad L``
(:func:`edit_step`). The anchor keeps each image near where it started; summing over the batch
(not averaging) gives every image the step it would get alone.

What ``w`` is decides what happens. With the latent ``z`` of a GAN (``render = G(z, y)``), every
step stays on the generator's manifold of digit-like images, and the prompt can only be met by a
change a digit can have: more ink, a slant. With the **pixels** themselves (:func:`pixel_render`),
nothing keeps the image a digit: CLIP's score climbs fastest along directions no digit takes, and
the edit becomes an adversarial example: a higher score than the latent edit reaches, specks and
broken strokes, and a measured attribute that moves far less (``bench/bench_clip.py``). The
realism check of :mod:`dgm.metrics` does not catch these: they stay near the digit they started from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dgm.checks import describe, positive_int

__all__ = ["clip_similarity", "edit_step", "edit", "Edit", "latent_render", "pixel_render", "to_pixel_variable"]

Render = Callable[[torch.Tensor], torch.Tensor]


def clip_similarity(clip: nn.Module, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(B,)`` of images ``(B, 1, 28, 28)`` in [0, 1] with unit text embeddings
    ``(B, E)`` (one prompt per image) or ``(E,)`` (one prompt for all); differentiable in ``images``."""
    if text.ndim == 1:
        text = text.expand(len(images), -1)
    if text.shape[0] != len(images):
        raise ValueError(f"text: expected (E,) or ({len(images)}, E) embeddings, got {describe(text)}")
    return (clip.encode_image(images) * text.to(images.device)).sum(-1)


def edit_step(w: torch.Tensor, w0: torch.Tensor, render: Render, clip: nn.Module, text: torch.Tensor,
              lr: float, anchor: float) -> torch.Tensor:
    """One gradient step on ``L(w)`` (module docstring) from ``w`` ``(B, ...)``; returns the new ``w``
    (detached, the shape of ``w``). ``w0``: where each image started."""
    w = w.detach().requires_grad_(True)
    loss = -clip_similarity(clip, render(w), text).sum() + anchor * ((w - w0) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, w)
    return (w - lr * grad).detach()


@dataclass
class Edit:
    """An edit's record: the final variable ``w`` and ``images`` ``(B, 1, 28, 28)`` in [0, 1], and the
    CLIP similarity of each image to its prompt before and after ``(B,)``."""

    w: torch.Tensor
    images: torch.Tensor
    similarity_before: torch.Tensor
    similarity_after: torch.Tensor


def edit(w0: torch.Tensor, render: Render, clip: nn.Module, text: torch.Tensor, steps: int = 40, lr: float = 0.05,
         anchor: float = 0.05) -> Edit:
    """``steps`` of :func:`edit_step` from ``w0``; the generator and CLIP are not changed (their
    parameters get no gradient and batch norms stay in eval mode: call ``.eval()`` on both first)."""
    positive_int(steps, "steps")
    w0 = w0.detach()
    with torch.no_grad():
        before = clip_similarity(clip, render(w0), text)
    w = w0
    for _ in range(steps):
        w = edit_step(w, w0, render, clip, text, lr, anchor)
    with torch.no_grad():
        images = render(w)
        return Edit(w, images, before, clip_similarity(clip, images, text))


def latent_render(generator: nn.Module, labels: torch.Tensor) -> Render:
    """``z`` ``(B, latent_dim)`` -> the class-conditional generator's images of ``labels`` ``(B,)`` in [0, 1]
    (its output in [-1, 1] mapped by ``(x + 1) / 2``)."""
    return lambda z: (generator(z, labels) + 1) / 2


def pixel_render(w: torch.Tensor) -> torch.Tensor:
    """The pixels themselves as the variable: ``sigmoid(w)`` keeps them in (0, 1) (``w`` are logits)."""
    return torch.sigmoid(w)


def to_pixel_variable(images: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The logits ``w`` with ``pixel_render(w) == images`` (clamped to ``[eps, 1 - eps]`` first)."""
    return torch.logit(images.clamp(eps, 1 - eps))
