"""The recipe shared by the zoo's likelihood models of binarized MNIST (PixelCNN and VAE)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dgm.data import TEST_BINARIZATION_SEED, binarized_mnist, mnist
from dgm.train import FitResult, LearningCurve, binarized_batches, fit


def fit_binarized_mnist(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    measure: Callable[[nn.Module, torch.Tensor], float],
    metric: str,
    *,
    seconds: float,
    batch_size: int,
    lr: float,
    eval_every: int = 500,
    eval_images: int = 1000,
    seed: int = 0,
) -> tuple[FitResult, LearningCurve, torch.Tensor]:
    """Train ``model`` with :func:`dgm.train.fit` for ``seconds`` on MNIST train binarized afresh
    every batch (Adam, 200 warm-up steps, cosine decay).

    Every ``eval_every`` steps the curve records ``measure(model, images)`` on ``eval_images`` test
    digits spread over the test set (its first digits are easier than its last ones), labelled
    ``metric``. The test set is MNIST test binarized once with
    :data:`dgm.data.TEST_BINARIZATION_SEED`. Needs the real MNIST.
    Returns the fit result, the curve, and the binarized test images ``(10000, 1, 28, 28)``.
    """
    train_images, _ = mnist("train")
    test_images, _ = binarized_mnist("test", seed=TEST_BINARIZATION_SEED)
    every = len(test_images) // eval_images
    curve = LearningCurve(lambda current: measure(current, test_images[::every]), f"{metric}, every {every}th test digit")
    result = fit(
        model, loss_fn, binarized_batches(train_images, batch_size=batch_size, seed=seed), seconds=seconds, lr=lr,
        warmup=200, callback=curve, callback_every=eval_every, progress=False,
    )
    return result, curve, test_images
