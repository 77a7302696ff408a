"""Diffusion illusions with the zoo's class-conditional DDPM, judged by the evaluation classifier.

A fixed set of (view, digit pair) tasks, each sampled with ``SEEDS`` seeds. An illusion succeeds
when the classifier gives every view its intended class; alignment is the smallest intended-class
probability over the views, concealment the mean over views of the intended class's probability
among the pair's two classes (as in the visual anagrams paper, with our classifier for CLIP).
Also: hybrid images (low frequencies one digit, high frequencies another) judged at full size
(the high-frequency digit should win) and blurred (the low-frequency one should), and the CPU
time per illusion. Settings: ``BENCH_ILLUSIONS_SEEDS`` (default 8).
"""

from __future__ import annotations

import os
import time

import torch

from dgm import zoo
from dgm.data import mnist
from dgm.diffusion import DDPM_T, ddim_sample, linear_schedule
from dgm.illusions import GaussianBands, anagram, factorized_eps, judge, make_view
from dgm.metrics import class_accuracy, evaluation_classifier
from dgm.viz import to_unit

SEEDS = int(os.environ.get("BENCH_ILLUSIONS_SEEDS", 8))
SCALE, STEPS = 3.0, 50
HYBRID_SIGMA = 2.0

# (view, (class upright, class under the view)), two pairs per view. Chosen by a search over all 90
# ordered pairs (2 seeds each, seeds 100.., guidance 3, DDIM-25) among the pairs that the view does
# not relate already: pairs where a plain sample of the first class reads as the second under the
# view at least 20% of the time (6/9 under a half turn, 1/1 upside down) were excluded. The
# benchmark's seeds (0..SEEDS-1) are not the search's, so the winners' luck does not carry over.
# The failure views got the same search; it found nothing (0-1% over all pairs).
TASKS = [
    ("flip", (9, 7)), ("flip", (8, 5)),
    ("mirror", (9, 6)), ("mirror", (8, 7)),
    ("rot90", (6, 2)), ("rot90", (3, 7)),
    ("rot180", (9, 2)), ("rot180", (3, 6)),
    ("rot270", (9, 5)), ("rot270", (2, 7)),
    ("skew", (9, 7)), ("skew", (8, 2)),
    ("jigsaw", (5, 8)), ("jigsaw", (4, 0)),
    ("patch_permutation", (7, 3)), ("patch_permutation", (6, 0)),
    ("inner_circle", (6, 0)), ("inner_circle", (2, 3)),
    ("square_hinge", (8, 5)), ("square_hinge", (7, 5)),
    ("negate", (8, 5)), ("negate", (3, 9)),
    ("blur", (3, 7)), ("rescale", (8, 3)), ("rotate_bilinear", (8, 4)),
]
# Negation is orthogonal, but MNIST has no white backgrounds: the negated view is off the data for
# the model and the classifier alike. It is reported on its own, outside the orthogonal average.
OFF_DATA = {"negate"}
HYBRIDS = [(0, 1), (7, 3), (8, 4), (6, 2)]  # (low-frequency class, high-frequency class)


def _blur(images: torch.Tensor) -> torch.Tensor:
    """What a viewer far away sees: the low-pass band (the images are in [-1, 1])."""
    return GaussianBands((HYBRID_SIGMA,)).components(images)[0]


def _anagrams(model, classifier, schedule, name: str, labels: torch.Tensor) -> tuple[dict, float]:
    """Sample and judge anagrams (identity, ``name``) for ``labels`` ``(B, 2)``; also the sampling seconds."""
    views = [make_view("identity"), make_view(name)]
    start = time.perf_counter()
    images = anagram(model, views, labels, schedule, scale=SCALE, steps=STEPS, seed=0)
    return judge(images, views, labels, classifier), time.perf_counter() - start


def run() -> list[dict]:
    model = zoo.load("ddpm-mnist-cond")
    classifier = evaluation_classifier()
    schedule = linear_schedule(DDPM_T)
    all_pairs = torch.tensor([(a, b) for a in range(10) for b in range(10) if a != b])
    rows, chosen, unchosen, seconds, count = [], [], [], 0.0, 0
    for name in dict.fromkeys(view for view, _ in TASKS):
        pairs = [pair for view, pair in TASKS if view == name]
        verdict, spent = _anagrams(model, classifier, schedule, name, torch.tensor(pairs).repeat_interleave(SEEDS, 0))
        every, _ = _anagrams(model, classifier, schedule, name, all_pairs)
        seconds, count = seconds + spent, count + len(pairs) * SEEDS
        kind = " (off the data)" if name in OFF_DATA else "" if make_view(name).orthogonal else " (not orthogonal)"
        if not kind:
            chosen.append(verdict["success"].float())
            unchosen.append(every["success"].float())
        rows.append({
            "model": f"anagram: identity + {name}{kind}",
            "params": "-",
            "budget": f"{len(pairs)} chosen pairs x {SEEDS} seeds; all 90 pairs x 1 seed",
            "steps/s": "-",
            "metrics": f"chosen pairs: success {verdict['success'].float().mean():.0%}, alignment "
            f"{verdict['alignment'].mean():.2f}, concealment {verdict['concealment'].mean():.2f}; "
            f"all pairs: success {every['success'].float().mean():.0%}",
        })
    rows.append({
        "model": "anagrams, all orthogonal views (negate apart)",
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"guidance {SCALE:g}, DDIM-{STEPS}",
        "steps/s": f"{seconds / count:.2f} s/illusion",
        "metrics": f"chosen pairs: success {torch.cat(chosen).mean():.1%} of {len(torch.cat(chosen))}; "
        f"all pairs: {torch.cat(unchosen).mean():.1%} of {len(torch.cat(unchosen))}",
    })
    rows.append(_hybrid_row(model, classifier, schedule))
    return rows


def _hybrid_row(model, classifier, schedule) -> dict:
    bands = GaussianBands((HYBRID_SIGMA,))
    near, far, start = [], [], time.perf_counter()
    for low, high in HYBRIDS:
        labels = torch.tensor([[low, high]]).repeat(SEEDS, 1)
        eps_fn = factorized_eps(model, bands, labels, SCALE)
        images = ddim_sample(eps_fn, schedule, (SEEDS, 1, 28, 28), steps=STEPS, generator=0)
        identity = [make_view("identity")]
        near.append(judge(images, identity, labels[:, 1:], classifier)["success"])
        far.append(judge(_blur(images), identity, labels[:, :1], classifier)["success"])
    seconds = (time.perf_counter() - start) / (len(HYBRIDS) * SEEDS)
    test_images, test_labels = mnist("test", download=False)
    ceiling = class_accuracy(to_unit(_blur(test_images[::10] * 2 - 1)), test_labels[::10], classifier)
    return {
        "model": f"hybrid images (Gaussian bands, sigma {HYBRID_SIGMA:g})",
        "params": "-",
        "budget": f"{len(HYBRIDS)} pairs x {SEEDS} seeds",
        "steps/s": f"{seconds:.2f} s/illusion",
        "metrics": f"high-frequency class read at full size {torch.cat(near).float().mean():.0%}; "
        f"low-frequency class read when blurred {torch.cat(far).float().mean():.0%} "
        f"(real test digits blurred the same way: {ceiling:.0%})",
    }
