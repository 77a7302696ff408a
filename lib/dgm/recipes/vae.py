"""Recipe of the zoo's ``vae-mnist``: an MLP VAE with Bernoulli pixels, of dynamically binarized MNIST."""

from __future__ import annotations

from functools import partial

import torch

from dgm.data import TEST_BINARIZATION_SEED
from dgm.device import make_generator
from dgm.recipes.binarized import fit_binarized_mnist
from dgm.vae import VAE, evaluate_bound, vae_loss

CONFIG = {"latent_dim": 32, "hidden": [512, 512], "likelihood": "bernoulli"}


def build() -> VAE:
    """The architecture of the zoo model ``vae-mnist``: :data:`CONFIG`."""
    return VAE(**CONFIG)


def train(
    seconds: float | None = None, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
    eval_every: int = 500, eval_images: int = 1000,
) -> tuple[VAE, dict]:
    """Train on dynamically binarized MNIST train for ``seconds`` (default 900); report test bounds.

    Every ``eval_every`` steps the negative ELBO of ``eval_images`` test images (evenly spread)
    is recorded (evaluation time is excluded from the budget), giving the time to reach
    100 and 95 nats. At the end: the negative ELBO of all 10,000 test images and the
    importance-weighted NLL (``k = 1000``) of every 10th test digit (1,000).
    """
    seconds = 900.0 if seconds is None else seconds
    torch.manual_seed(seed)
    model = build()
    result, curve, test_images = fit_binarized_mnist(
        model, partial(vae_loss, generator=make_generator(seed + 1)), evaluate_bound, "test -ELBO [nats]",
        seconds=seconds, batch_size=batch_size, lr=lr, eval_every=eval_every, eval_images=eval_images, seed=seed,
    )
    negative_elbo = evaluate_bound(model, test_images)
    iw_nll = evaluate_bound(model, test_images[::10], k=1000)
    report = {
        "data": "MNIST train (60,000), binarized afresh every batch (x ~ Bernoulli(pixel)); "
        f"test: MNIST test (10,000) binarized once with seed {TEST_BINARIZATION_SEED}",
        "architecture": f"VAE({CONFIG}), MLP encoder and decoder, {sum(p.numel() for p in model.parameters()):,} parameters",
        "recipe": f"Adam lr {lr}, 200 warm-up steps, cosine decay over the budget, batch {batch_size}, "
        "one z sample per image (ELBO with closed-form KL)",
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "images_per_second": round(result.steps * batch_size / result.seconds, 1),
        "evaluation": "curve: negative ELBO of test digits spread over the test set; test_negative_elbo_nats: all "
        "10,000 test images; test_iw_nll_nats_k1000: importance-weighted NLL, k = 1000, every 10th test image (1,000)",
        "curve_seconds_step_nelbo": curve.points,
        "metrics": {
            "test_negative_elbo_nats": round(negative_elbo, 2),
            "test_iw_nll_nats_k1000": round(iw_nll, 2),
            "seconds_to_100_nats": curve.first_time_below(100.0),
            "seconds_to_95_nats": curve.first_time_below(95.0),
        },
    }
    return model, report
