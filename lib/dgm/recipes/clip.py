"""Recipe of the zoo's ``clip-mnist``: a small CLIP trained on captioned MNIST (:mod:`dgm.captions`)."""

from __future__ import annotations

import torch

from dgm.captions import Tokenizer, captioned_mnist, insert_unknown
from dgm.clip import (CLIP, class_embeddings, clip_loss, digit_prompts, embed_images, embed_texts, recall_at_k,
                      zero_shot_classify)
from dgm.device import make_generator
from dgm.train import batches, fit

CONFIG = {"embed_dim": 64, "width": 64, "length": 16}
BATCH_SIZE = 256
SECONDS = 600.0  # the budget: 10 CPU-minutes


def build() -> CLIP:
    """An untrained CLIP over the captions' vocabulary (the zoo loads the trained weights into it)."""
    return CLIP(len(Tokenizer()), **CONFIG)


def linear_probe_accuracy(model: CLIP, train_images, train_labels, test_images, test_labels) -> float:
    """Test accuracy of a logistic regression on the frozen image embeddings (the usual check of a representation)."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=2000).fit(embed_images(model, train_images).numpy(), train_labels.numpy())
    return float(probe.score(embed_images(model, test_images).numpy(), test_labels.numpy()))


def evaluate(model: CLIP, gallery: int = 1000) -> dict:
    """Zero-shot digit accuracy on MNIST test (prompt ensemble), a linear probe, and text-to-image recall on the
    held-out captions of the first ``gallery`` test digits: exact (the captioned image itself) and by
    description (any image with the caption's digit and attributes counts)."""
    model.eval()
    train, test = captioned_mnist("train"), captioned_mnist("test")
    classes = class_embeddings(model, Tokenizer(), digit_prompts())
    zero_shot = (zero_shot_classify(model, test.images, classes) == test.labels).float().mean().item()
    probe = linear_probe_accuracy(model, train.images[:10000], train.labels[:10000], test.images, test.labels)
    similarity = embed_texts(model, Tokenizer(), test.captions[:gallery]) @ embed_images(model, test.images[:gallery]).T
    described = torch.cat([test.labels[:gallery, None], test.attributes[:gallery]], 1)
    same = (described[:, None, :] == described[None, :, :]).all(-1)  # (queries, gallery): images the caption fits
    top10 = similarity.topk(10, dim=1).indices
    by_description = same.gather(1, top10).any(1).float().mean().item()
    return {
        "zero_shot_accuracy": round(zero_shot, 4),
        "linear_probe_accuracy": round(probe, 4),
        "text_to_image_recall_at_1": round(recall_at_k(similarity, 1), 4),
        "text_to_image_recall_at_10": round(recall_at_k(similarity, 10), 4),
        "text_to_image_recall_at_10_by_description": round(by_description, 4),
        "temperature": round(model.temperature, 4),
    }


def train(seconds: float | None = None, seed: int = 0) -> tuple[CLIP, dict]:
    """Train on the 60,000 training digits with their training captions for ``seconds`` (default 10 minutes)."""
    torch.manual_seed(seed)
    data = captioned_mnist("train", seed=seed)
    tokens = Tokenizer().encode(data.captions, length=CONFIG["length"])
    model = build()

    generator = make_generator(seed + 1)

    def loss_fn(model, batch):
        images, captions = batch
        return clip_loss(model(images, insert_unknown(captions, generator)))

    result = fit(model, loss_fn, batches(data.images, tokens, batch_size=BATCH_SIZE, seed=seed),
                 seconds=seconds or SECONDS, lr=1e-3, warmup=100)
    report = {
        "data": "MNIST train (60,000) with one training caption each (dgm.captions); evaluated on MNIST test "
                "with the held-out captions",
        "architecture": f"CLIP({CONFIG}): 3-conv image encoder, 2-layer transformer text encoder, learned temperature",
        "recipe": f"symmetric InfoNCE, Adam lr 1e-3, 100 warm-up steps, cosine decay, batch {BATCH_SIZE}; half the "
                  "captions get 1-3 unknown words inserted at random places (dgm.captions.insert_unknown)",
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "metrics": evaluate(model),
    }
    return model, report
