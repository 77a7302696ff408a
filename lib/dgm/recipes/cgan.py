"""Recipe of the zoo's ``cgan-mnist``: a class-conditional DCGAN of MNIST in [-1, 1]."""

from __future__ import annotations

import time

import torch
from torch import nn

from dgm.data import mnist
from dgm.device import Seed, make_generator
from dgm.gan import DCDiscriminator, DCGenerator, init_dcgan_weights, sample, train_gan
from dgm.metrics import class_accuracy, class_entropy, fid, fid_reference
from dgm.train import batches
from dgm.viz import to_unit

CONFIG = {"latent_dim": 64, "width": 64, "num_classes": 10}


def build() -> DCGenerator:
    """The generator of the zoo's ``cgan-mnist``: ``DCGenerator(**CONFIG)``, images in [-1, 1]."""
    return DCGenerator(**CONFIG)


def evaluate(generator: nn.Module, per_class: int = 100, seed: Seed = 0) -> dict[str, float]:
    """Card numbers for an MNIST generator, from ``10 * per_class`` samples (``per_class`` of each digit
    if ``G`` is conditional): class accuracy (conditional only), the entropy of the predicted-class
    histogram in nats (``ln 10 = 2.303`` when every digit is equally common), and classifier-FID
    against as many random test digits beside its train-vs-test floor."""
    n = 10 * per_class
    labels = torch.arange(10).repeat_interleave(per_class) if generator.num_classes else None
    images = to_unit(sample(generator, n, labels, seed))
    test_images, _ = mnist("test")
    real = test_images[torch.randperm(len(test_images), generator=make_generator(seed))[:n]]
    metrics = {"class_entropy": round(class_entropy(images), 4)}
    if labels is not None:
        metrics["class_accuracy"] = round(class_accuracy(images, labels), 4)
    metrics["fid"] = round(fid(images, real), 2)
    metrics["fid_floor_train_vs_test"] = round(fid_reference(n, seed=seed)["floor"], 2)
    return metrics


def train(
    seconds: float | None = None, steps: int = 4000, batch_size: int = 64, seed: int = 0
) -> tuple[DCGenerator, dict]:
    """Train the zoo's class-conditional DCGAN on MNIST for ``steps`` steps (or ``seconds``, when given); return ``G``
    and its card. A step budget makes the model the same on a busy machine and an idle one.

    :class:`DCGenerator` and the projection :class:`DCDiscriminator` with 10 classes, the DCGAN
    initialisation and optimiser (Adam 2e-4, beta_1 0.5), the non-saturating loss, batch 64.
    """
    images, labels = mnist("train")
    generator = init_dcgan_weights(build(), seed)
    discriminator = init_dcgan_weights(DCDiscriminator(CONFIG["width"], CONFIG["num_classes"]), seed + 1)
    start = time.perf_counter()
    history = train_gan(
        generator, discriminator, batches(images * 2 - 1, labels, batch_size=batch_size, seed=seed),
        steps=None if seconds else steps, seconds=seconds, seed=seed, progress=False,
    )
    elapsed = time.perf_counter() - start
    last = history[-200:]
    return generator.cpu(), {
        "data": "MNIST train (60,000) with labels, scaled to [-1, 1]",
        "architecture": f"DCGenerator({CONFIG}) against a projection DCDiscriminator(width "
        f"{CONFIG['width']}, 10 classes); the generator is shipped",
        "recipe": f"non-saturating loss, Adam 2e-4 (beta_1 0.5) for both, DCGAN initialisation, batch {batch_size}",
        "steps": len(history),
        "train_seconds": round(elapsed, 1),
        "evaluation": "1,000 samples, 100 per digit; the evaluation classifier; FID against 1,000 random test digits",
        "final_d_real_d_fake": [round(sum(h[k] for h in last) / len(last), 3) for k in ("d_real", "d_fake")],
        "metrics": evaluate(generator),
    }
