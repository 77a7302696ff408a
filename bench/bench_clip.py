"""Text and images (assignment 10): the zoo's ``clip-mnist``, ``text-dit-mnist``, and CLIP-guided editing of ``cgan-mnist``.

- ``zoo``: the shipped CLIP: zero-shot digit accuracy on MNIST test (each prompt alone and the
  five-prompt ensemble) beside a linear probe on its image embeddings and the supervised
  classifier's card; text-to-image recall on held-out captions.
- ``train``: the CLIP recipe retrained from scratch for ``BENCH_CLIP_SECONDS`` (default 600 s, the
  issue's 10 CPU-minutes) and measured the same way.
- ``text``: the shipped text-to-image DiT on the held-out captions of 1,000 test digits at guidance 3.
- ``edit``: 40 steps of :func:`dgm.clip_edit.edit_step` on 100 cGAN digits (10 per class) toward
  the other end of thickness or slant ("a thick 7" for a thin or medium 7, "a thin 7" for a thick
  one), through the latent z (lr 1) and on the pixels (lr 200): how often the measured attribute
  moved toward the prompt, reached the asked third, the digit kept its class, the realism check
  passed, and CLIP's similarity before and after.

``BENCH_CLIP_ROWS`` picks row groups (comma-separated, default all). Needs the real MNIST.
About 12 minutes on 2 cores (``train`` 10 of them; the rest 75 s).
"""

from __future__ import annotations

import os

import torch

from dgm import zoo
from dgm.captions import DIGIT_WORDS, AttributeScale, Tokenizer, captioned_mnist, measure
from dgm.clip import DIGIT_PROMPTS, class_embeddings, digit_prompts, embed_texts, zero_shot_classify
from dgm.clip_edit import edit, latent_render, pixel_render, to_pixel_variable
from dgm.device import make_generator
from dgm.metrics import digit_realism, predict
from dgm.recipes import clip as clip_recipe
from dgm.recipes import text2image

SECONDS = float(os.environ.get("BENCH_CLIP_SECONDS", 600))
ROWS = os.environ.get("BENCH_CLIP_ROWS", "zoo,train,text,edit").split(",")
EDIT_STEPS = 40
EDITS = [("latent z", 1.0), ("pixels", 200.0)]


def clip_row(name: str, model, steps: int, budget: str) -> dict:
    model.eval()
    test = captioned_mnist("test")
    tokenizer = Tokenizer()
    single = [(zero_shot_classify(model, test.images, class_embeddings(model, tokenizer, digit_prompts((t,))))
               == test.labels).float().mean().item() for t in DIGIT_PROMPTS]
    m = clip_recipe.evaluate(model)
    supervised = zoo.card("mnist-classifier")["metrics"]["test_accuracy"]
    return {
        "model": name, "params": sum(p.numel() for p in model.parameters()), "budget": budget, "steps/s": "-",
        "metrics": f"zero-shot {m['zero_shot_accuracy']:.2%} (five-prompt ensemble; one prompt alone "
                   f"{min(single):.2%}-{max(single):.2%}), linear probe {m['linear_probe_accuracy']:.2%}, supervised "
                   f"classifier {supervised:.2%} (its card); held-out captions, text -> image recall@1 "
                   f"{m['text_to_image_recall_at_1']:.1%}, recall@10 {m['text_to_image_recall_at_10']:.1%} exact, "
                   f"{m['text_to_image_recall_at_10_by_description']:.1%} by description; tau {m['temperature']:.4f} ({steps} steps)",
    }


def text_row() -> dict:
    model, clip = zoo.load("text-dit-mnist", device="cpu"), zoo.load("clip-mnist", device="cpu")
    m = text2image.evaluate(model, clip, scales=(3.0,))["metrics"]
    return {
        "model": "text-dit-mnist (zoo), guidance 3, Heun 10", "params": sum(p.numel() for p in model.denoiser.parameters()),
        "budget": "900 s", "steps/s": "-",
        "metrics": f"1,000 held-out captions: digit {m['digit_accuracy_scale_3']:.1%} (the same digits captioned with training "
                   f"templates {m['digit_accuracy_training_templates_scale_3']:.1%}); thickness in the asked third "
                   f"{m['thickness_in_asked_third_scale_3']:.1%}, not the opposite {m['thickness_not_opposite_scale_3']:.1%} "
                   f"({m['thickness_prompts']} asking); slant {m['slant_in_asked_third_scale_3']:.1%}, "
                   f"{m['slant_not_opposite_scale_3']:.1%} ({m['slant_prompts']}); thick and leaning left together "
                   f"{m['thick_and_left_both_scale_3']:.1%} ({m['thick_and_left_prompts']})",
    }


def edit_rows(trials: int = 100) -> list[dict]:
    clip, generator = zoo.load("clip-mnist", device="cpu").eval(), zoo.load("cgan-mnist", device="cpu").eval()
    for p in [*clip.parameters(), *generator.parameters()]:
        p.requires_grad_(False)
    train = captioned_mnist("train")
    thirds = AttributeScale.fit(train.images, train.labels)
    realism = digit_realism()
    labels = torch.arange(10).repeat(trials // 10)
    z0 = torch.randn(len(labels), generator.latent_dim, generator=make_generator(0))
    render = latent_render(generator, labels)
    with torch.no_grad():
        start = render(z0)
    levels = thirds(start, labels)
    rows = []
    for column, attribute, words in [(0, "thickness", ("thin", "thick")), (1, "slant", ("leaning left", "leaning right"))]:
        up = levels[:, column] <= 1  # ask for the high end unless the digit is already there
        asked = [words[1] if u else words[0] for u in up]
        prompts = [f"a {a} {DIGIT_WORDS[y][1]}" if column == 0 else f"a {DIGIT_WORDS[y][1]} {a}" for a, y in zip(asked, labels)]
        text = embed_texts(clip, Tokenizer(), prompts)
        before = measure(start)[:, column]
        for name, lr in EDITS:
            w0, make = (z0, render) if name == "latent z" else (to_pixel_variable(start), pixel_render)
            result = edit(w0, make, clip, text, EDIT_STEPS, lr, anchor=0.0)
            after = measure(result.images)[:, column]
            moved = torch.where(up, after > before, after < before).float().mean()
            reached = (thirds(result.images, labels)[:, column] == torch.where(up, 2, 0)).float().mean()
            kept = (predict(result.images) == labels).float().mean()
            rows.append({
                "model": f"CLIP-guided editing of cgan-mnist, {attribute}, {name}", "params": "-",
                "budget": f"{EDIT_STEPS} steps, lr {lr:g}", "steps/s": "-",
                "metrics": f"{trials} digits: moved toward the prompt {moved:.0%}, reached the asked third {reached:.0%}, "
                           f"class kept {kept:.0%}, realism check passed {realism(result.images).float().mean():.0%} "
                           f"(start {realism(start).float().mean():.0%}); CLIP similarity {result.similarity_before.mean():.3f} "
                           f"-> {result.similarity_after.mean():.3f}",
            })
    return rows


def run() -> list[dict]:
    rows = []
    if "zoo" in ROWS:
        card = zoo.card("clip-mnist")
        rows.append(clip_row("clip-mnist (zoo)", zoo.load("clip-mnist", device="cpu"), card["steps"], f"{card['train_seconds']:.0f} s"))
    if "train" in ROWS:
        model, report = clip_recipe.train(SECONDS)
        rows.append(clip_row("clip-mnist recipe, retrained", model.cpu(), report["steps"], f"{SECONDS:.0f} s"))
    if "text" in ROWS:
        rows.append(text_row())
    if "edit" in ROWS:
        rows += edit_rows()
    return rows
