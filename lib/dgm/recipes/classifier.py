"""Recipe of the zoo's ``mnist-classifier``: the evaluation classifier of :mod:`dgm.metrics`."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dgm.data import mnist
from dgm.device import make_generator
from dgm.metrics import DigitClassifier, class_accuracy
from dgm.train import batches, fit


def build() -> DigitClassifier:
    """An untrained evaluation classifier (the zoo loads the trained weights into it)."""
    return DigitClassifier().to(memory_format=torch.channels_last)


def random_shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Translate a batch ``(B, 1, 28, 28)`` by up to ``pixels`` in x and y (zero fill): cheap augmentation."""
    padded = F.pad(images, (pixels,) * 4)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def train(seconds: float | None = None, epochs: int = 6, seed: int = 0) -> tuple[DigitClassifier, dict]:
    """Train the evaluation classifier on MNIST train; report test accuracy. Needs the real MNIST."""
    torch.manual_seed(seed)
    images, labels = mnist("train")
    test_images, test_labels = mnist("test")
    model = build()
    generator = make_generator(seed + 1)
    batch_size = 128
    steps = epochs * (len(images) // batch_size)

    def loss_fn(model, batch):
        x, y = batch
        return F.cross_entropy(model(random_shift(x, generator)), y)

    result = fit(
        model, loss_fn, batches(images, labels, batch_size=batch_size, seed=seed),
        steps=steps, seconds=seconds, lr=2e-3, warmup=100,
    )
    accuracy = class_accuracy(test_images, test_labels, model)
    report = {
        "data": "MNIST train (60,000), random shifts of up to 2 pixels; evaluated on MNIST test (10,000)",
        "recipe": f"Adam lr 2e-3, 100 warm-up steps, cosine decay, batch {batch_size}, {epochs} epochs max",
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "metrics": {"test_accuracy": round(accuracy, 4)},
    }
    return model, report
