"""Recipe of the zoo's ``text-dit-mnist``: text-to-image in the latent space of ``ldm-dit-mnist``.

A :class:`dgm.dit.DiT` with ``text_dim`` learns, by flow matching, the scaled latents of the MNIST
training digits given the text embedding of one of their captions (:mod:`dgm.captions`), made by
the frozen text encoder of the zoo's ``clip-mnist``. Each digit has :data:`CAPTIONS_PER_IMAGE`
training captions and each step picks one at random; a caption is dropped to the empty prompt (the
zero vector) with probability :data:`P_UNCOND`, so the same network is also the unconditional model
that classifier-free guidance needs. The autoencoder and the latent scale are ``ldm-dit-mnist``'s,
copied into the checkpoint, so the two latent models share one latent space.

The card asks it for the held-out captions of test digits (templates it never saw, some naming
thick *and* leaning left together, which no training caption does) and measures what it drew: the
digit by the evaluation classifier, thickness and slant by :mod:`dgm.captions`'s measurements.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from dgm import zoo
from dgm.captions import AttributeScale, Tokenizer, caption, captioned_mnist
from dgm.clip import CLIP, embed_texts
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.dit import DiT
from dgm.flow import flow_matching_loss
from dgm.latent import LatentAutoencoder, LatentGenerator
from dgm.metrics import class_accuracy
from dgm.recipes.ldm import AUTOENCODER_CONFIG, DIT_CONFIG, SAMPLING_STEPS, encode, sample_latents
from dgm.train import batches, fit

TEXT_DIM = 64  # clip-mnist's embedding size
TEXT_DIT_CONFIG = {**{k: v for k, v in DIT_CONFIG.items() if k != "num_classes"}, "text_dim": TEXT_DIM}
CAPTIONS_PER_IMAGE = 4
P_UNCOND = 0.1
EMPTY_PROMPT = 0  # the null condition is the zero vector (dgm.dit.DiT with text_dim)
SECONDS = 900.0
SCALES = (1.0, 2.0, 3.0)


def build() -> LatentGenerator:
    """An untrained ``text-dit-mnist``: the ldm autoencoder and a DiT conditioned on 64-d text embeddings."""
    return LatentGenerator(LatentAutoencoder(**AUTOENCODER_CONFIG), DiT(**TEXT_DIT_CONFIG))


def caption_embeddings(clip: CLIP, split: str = "train", copies: int = CAPTIONS_PER_IMAGE) -> torch.Tensor:
    """Text embeddings ``(N, copies, E)``: ``copies`` captions of every digit of ``split`` (seeds 0, 1, ...)."""
    tokenizer = Tokenizer()
    return torch.stack([embed_texts(clip, tokenizer, captioned_mnist(split, seed=k).captions) for k in range(copies)], 1)


def fit_text_denoiser(latents: torch.Tensor, texts: torch.Tensor, seconds: float, batch_size: int = 128,
                      lr: float = 1e-3, seed: int = 0):
    """Train a text :class:`DiT` on scaled ``latents`` ``(N, 4, 7, 7)`` and caption embeddings ``texts``
    ``(N, copies, E)`` for ``seconds``: flow matching (logit-normal t), one random caption per image and
    step, dropped with probability :data:`P_UNCOND`; Adam, 200 warm-up steps, cosine decay, grad clip 1,
    EMA 0.999. Returns :func:`dgm.train.fit`'s result."""
    torch.manual_seed(seed)
    generator = make_generator(seed + 1)

    def loss_fn(model, batch):
        z, captions = batch
        pick = torch.randint(captions.shape[1], (len(z),), generator=generator).to(z.device)
        text = captions[torch.arange(len(z), device=z.device), pick]
        return flow_matching_loss(model, z, text, generator, P_UNCOND, EMPTY_PROMPT)

    return fit(DiT(**TEXT_DIT_CONFIG), loss_fn, batches(latents, texts, batch_size=batch_size, seed=seed),
               seconds=seconds, lr=lr, warmup=200, ema_decay=0.999, grad_clip=1.0, progress=False)


@torch.no_grad()
def sample_prompts(model: LatentGenerator, clip: CLIP, prompts: Sequence[str], scale: float = 2.0,
                   steps: int = SAMPLING_STEPS, seed: Seed = 0) -> torch.Tensor:
    """One image ``(1, 28, 28)`` in [0, 1] per prompt: ``(N, 1, 28, 28)``, guided by ``scale`` (Heun, ``steps``)."""
    text = embed_texts(clip, Tokenizer(), list(prompts))
    z = sample_latents(model.denoiser, text, scale, steps, seed, null_label=EMPTY_PROMPT)
    with evaluating(model):
        return model.to_images(z.to(module_device(model))).cpu()


def agreement(images: torch.Tensor, labels: torch.Tensor, asked: torch.Tensor, scale: AttributeScale) -> dict[str, float]:
    """How often drawn digits have the attributes their prompts asked for.

    ``asked`` ``(N, 3)``: the levels the prompts name (held-out captions name every non-medium one,
    so a 1 means "not asked"). For thickness and slant, among the prompts that ask for it: the share
    of images measured in the asked third (``*_in_asked_third``) and not in the opposite one
    (``*_not_opposite``: a thick digit is not thin); and the share of prompts asking for thick and
    leaning left together (the combination no training caption names) that got both.
    """
    measured = scale(images, labels)
    result = {}
    for column, name in ((0, "thickness"), (1, "slant")):
        named = asked[:, column] != 1
        result[f"{name}_in_asked_third"] = (measured[named, column] == asked[named, column]).float().mean().item()
        result[f"{name}_not_opposite"] = (measured[named, column] != 2 - asked[named, column]).float().mean().item()
        result[f"{name}_prompts"] = int(named.sum())
    combination = (asked[:, 0] == 2) & (asked[:, 1] == 0)
    both = (measured[combination, 0] == 2) & (measured[combination, 1] == 0)
    result["thick_and_left_both"] = both.float().mean().item() if combination.any() else float("nan")
    result["thick_and_left_prompts"] = int(combination.sum())
    return result


def evaluate(model: LatentGenerator, clip: CLIP, prompts: int = 1000, scales: Sequence[float] = SCALES, seed: int = 0) -> dict:
    """The card's numbers: the held-out captions of the first ``prompts`` test digits, one image each at
    every guidance scale, read by the evaluation classifier (digit) and :func:`agreement` (attributes);
    and the digit accuracy for captions of the same digits from the training templates
    (``digit_accuracy_training_templates``), which tells the text encoder's part in the misses."""
    train, test = captioned_mnist("train"), captioned_mnist("test")
    thirds = AttributeScale.fit(train.images, train.labels)
    labels, asked = test.labels[:prompts], test.attributes[:prompts]
    rng = random.Random(seed)
    seen_templates = [caption(int(y), a.tolist(), rng) for y, a in zip(labels, asked)]
    metrics = {}
    for s in scales:
        images = sample_prompts(model, clip, test.captions[:prompts], s, seed=seed)
        metrics[f"digit_accuracy_scale_{s:g}"] = round(class_accuracy(images, labels), 4)
        familiar = sample_prompts(model, clip, seen_templates, s, seed=seed)
        metrics[f"digit_accuracy_training_templates_scale_{s:g}"] = round(class_accuracy(familiar, labels), 4)
        for key, value in agreement(images, labels, asked, thirds).items():
            if key.endswith("_prompts"):
                metrics[key] = value
            else:
                metrics[f"{key}_scale_{s:g}"] = round(value, 4)
    return {"evaluation": f"one image per held-out caption of the first {prompts} MNIST test digits at each guidance "
                          f"scale (Heun, {SAMPLING_STEPS} steps); attributes measured and binned as dgm.captions does; "
                          "digits also for training-template captions of the same test digits",
            "metrics": metrics}


def train(seconds: float | None = None) -> tuple[LatentGenerator, dict]:
    """Train ``text-dit-mnist`` for ``seconds`` (default 15 minutes) on the zoo autoencoder's latents."""
    seconds = SECONDS if seconds is None else seconds
    latent_model, clip = zoo.load("ldm-dit-mnist", device="cpu"), zoo.load("clip-mnist", device="cpu")
    train_set = captioned_mnist("train")
    latents = encode(latent_model.autoencoder, train_set.images) * latent_model.scale
    texts = caption_embeddings(clip)
    result = fit_text_denoiser(latents, texts, seconds)
    model = LatentGenerator(latent_model.autoencoder, result.ema.cpu(), float(latent_model.scale))
    return model, {
        "data": f"MNIST train (60,000), {CAPTIONS_PER_IMAGE} training captions each (dgm.captions), embedded by "
                "clip-mnist's text encoder (frozen); latents of ldm-dit-mnist's autoencoder (copied in)",
        "architecture": f"DiT({TEXT_DIT_CONFIG}) on 4x7x7 latents, conditioned by a linear map of the 64-d text "
                        "embedding; the zero vector (the empty prompt) has a learned embedding",
        "recipe": f"flow matching (logit-normal t), one random caption per image and step, p_uncond {P_UNCOND}, Adam "
                  f"0.001, 200 warm-up steps, cosine decay, grad clip 1, batch 128, EMA 0.999 (shipped), {seconds:.0f} s",
        "steps": result.steps,
        "train_seconds": round(seconds, 1),
        **evaluate(model, clip),
    }
