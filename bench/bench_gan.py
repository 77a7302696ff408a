"""GANs and image-to-image translation on MNIST, 2 CPU cores.

- DCGAN (unconditional) trained for ``BENCH_GAN_SECONDS`` (default 600): the entropy of the
  class histogram of 1,000 samples (goal >= 0.95 ln 10 = 2.19 nats: every digit present) and
  classifier-FID against its train-vs-test floor.
- The zoo's class-conditional DCGAN (``cgan-mnist``): class accuracy of 100 samples per digit.
- pix2pix on degraded -> clean digits (:func:`dgm.data.degrade`): the same U-Net trained
  for ``BENCH_PIX2PIX_STEPS`` steps with L1 alone and with L1 + cGAN. Measures on 1,000 test
  pairs: the classifier's accuracy on the outputs (is the digit recovered?), classifier-FID of
  the outputs against clean test digits (does the set of outputs look like digits? blur and
  half-filled holes move it away), and the share of grey pixels, in (0.25, 0.75), beside that
  of the clean digits (MNIST strokes are nearly binary; an L1 compromise between plausible
  strokes is grey).
- CycleGAN thin <-> thick digits on disjoint halves of MNIST, ``BENCH_CYCLEGAN_SECONDS``
  (default 300): the share of 1,000 test translations, each way, that the classifier reads as
  the source digit (goal >= 90%).
"""

from __future__ import annotations

import os
import time

import torch

from dgm import zoo
from dgm.data import mnist
from dgm.gan import DCDiscriminator, DCGenerator, init_dcgan_weights, train_gan
from dgm.recipes.cgan import evaluate as evaluate_generator
from dgm.metrics import class_accuracy, evaluation_classifier, fid, fid_reference
from dgm.train import batches
from dgm.translation import (
    PatchDiscriminator, UNetGenerator, degrade, to_domain_b, train_cyclegan, train_pix2pix, translate,
    unpaired_domains,
)

GAN_SECONDS = float(os.environ.get("BENCH_GAN_SECONDS", 600))
PIX2PIX_STEPS = int(os.environ.get("BENCH_PIX2PIX_STEPS", 1500))
CYCLEGAN_SECONDS = float(os.environ.get("BENCH_CYCLEGAN_SECONDS", 300))
N_EVAL = 1000


def _params(*models) -> int:
    return sum(p.numel() for m in models for p in m.parameters())


def dcgan_row(images: torch.Tensor) -> dict:
    generator, discriminator = init_dcgan_weights(DCGenerator(), 0), init_dcgan_weights(DCDiscriminator(), 1)
    start = time.perf_counter()
    history = train_gan(generator, discriminator, batches(images * 2 - 1, batch_size=64, seed=0), seconds=GAN_SECONDS)
    seconds = time.perf_counter() - start
    metrics = evaluate_generator(generator)
    return {
        "model": "DCGAN (unconditional), non-saturating loss",
        "params": _params(generator, discriminator),
        "budget": f"{GAN_SECONDS:g} s",
        "steps/s": f"{len(history) / seconds:.2f}",
        "metrics": f"class entropy {metrics['class_entropy']:.3f} nats (goal >= {0.95 * torch.log(torch.tensor(10.0)):.3f}); "
        f"FID {metrics['fid']:.1f}, floor {metrics['fid_floor_train_vs_test']:.1f} (n = 1000)",
    }


def cgan_row() -> dict:
    card = zoo.card("cgan-mnist")
    metrics = evaluate_generator(zoo.load("cgan-mnist"))
    return {
        "model": "cgan-mnist, shipped (zoo)",
        "params": card["parameters"],
        "budget": f"{card['train_seconds']:g} s ({card['steps']} steps)",
        "steps/s": f"{card['steps'] / card['train_seconds']:.2f}",
        "metrics": f"class accuracy {metrics['class_accuracy']:.1%} (goal >= 90%); class entropy "
        f"{metrics['class_entropy']:.3f}; FID {metrics['fid']:.1f}, floor {metrics['fid_floor_train_vs_test']:.1f}",
    }


def _grey_share(images: torch.Tensor) -> float:
    return ((images > 0.25) & (images < 0.75)).float().mean().item()


def pix2pix_rows(images: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor) -> list[dict]:
    sources, test_sources = degrade(images, seed=0), degrade(test_images[:N_EVAL], seed=1)
    clean, labels = test_images[:N_EVAL], test_labels[:N_EVAL]
    classifier = evaluation_classifier()
    reference = test_images[N_EVAL : 2 * N_EVAL]
    rows = []
    for gan in (False, True):
        torch.manual_seed(0)
        generator = UNetGenerator()
        discriminator = PatchDiscriminator(2, width=32, layers=2) if gan else None
        start = time.perf_counter()
        train_pix2pix(generator, discriminator, sources, images, steps=PIX2PIX_STEPS, gan=gan)
        seconds = time.perf_counter() - start
        outputs = translate(generator, test_sources)
        rows.append({
            "model": "pix2pix on degraded digits: " + ("L1 + cGAN (lambda 100, PatchGAN RF 34)" if gan else "L1 alone"),
            "params": _params(generator, *([discriminator] if gan else [])),
            "budget": f"{PIX2PIX_STEPS} steps, batch 64",
            "steps/s": f"{PIX2PIX_STEPS / seconds:.2f}",
            "metrics": f"class accuracy {class_accuracy(outputs, labels, classifier):.1%}; FID to clean digits "
            f"{fid(outputs, reference, classifier):.1f}; grey pixels {_grey_share(outputs):.1%} "
            f"(clean digits {_grey_share(clean):.1%}, inputs {class_accuracy(test_sources, labels, classifier):.1%} readable)",
        })
    rows[-1]["metrics"] += f"; FID floor {fid_reference(N_EVAL)['floor']:.1f}"
    return rows


def cyclegan_row(images: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor) -> dict:
    domain_a, domain_b = unpaired_domains(images, seed=0)
    torch.manual_seed(0)
    g_ab, g_ba = UNetGenerator(norm="instance", dropout=0.0), UNetGenerator(norm="instance", dropout=0.0)
    d_a, d_b = PatchDiscriminator(1, width=32, layers=2), PatchDiscriminator(1, width=32, layers=2)
    start = time.perf_counter()
    history = train_cyclegan(g_ab, g_ba, d_a, d_b, domain_a, domain_b, seconds=CYCLEGAN_SECONDS)
    seconds = time.perf_counter() - start
    thin, labels = test_images[:N_EVAL], test_labels[:N_EVAL]
    thick = to_domain_b(thin)
    classifier = evaluation_classifier()
    kept_ab = class_accuracy(translate(g_ab, thin), labels, classifier)
    kept_ba = class_accuracy(translate(g_ba, thick), labels, classifier)
    return {
        "model": "CycleGAN thin <-> thick digits (unpaired halves), LSGAN, cycle 10, identity 5",
        "params": _params(g_ab, g_ba, d_a, d_b),
        "budget": f"{CYCLEGAN_SECONDS:g} s",
        "steps/s": f"{len(history['total']) / seconds:.2f}",
        "metrics": f"class kept thin -> thick {kept_ab:.1%}, thick -> thin {kept_ba:.1%} (goal >= 90%); "
        f"the classifier reads the real thick test digits {class_accuracy(thick, labels, classifier):.1%}",
    }


def run() -> list[dict]:
    images, _ = mnist("train", download=False)
    test_images, test_labels = mnist("test", download=False)
    return [
        dcgan_row(images),
        cgan_row(),
        *pix2pix_rows(images, test_images, test_labels),
        cyclegan_row(images, test_images, test_labels),
    ]
