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
from dgm.illusions import GaussianBands, anagram, factorized_eps, judge
from dgm.metrics import class_accuracy, evaluation_classifier
from dgm.views import make_view
from dgm.viz import to_unit

SEEDS = int(os.environ.get("BENCH_ILLUSIONS_SEEDS", 8))
SCALE, STEPS = 7.0, 50  # averaging two views halves each one's pull: guidance 7 is about 3.5 per view
HYBRID_SIGMA, HYBRID_SCALE = 2.0, 3.0  # a hybrid takes each band from one estimate: no averaging

# (view, (class upright, class under the view)), two pairs per view, chosen by a search at guidance 7,
# DDIM-25, on seeds that the benchmark does not use: all 90 ordered pairs on seeds 100-101, then the
# six best of each view on seeds 102-105, the best pair kept and the best one sharing no class with it
# (or the runner-up). Excluded beforehand: pairs that the view already relates, where plain samples
# of the first class (10 per digit, guidance 2) read as the second under the view at least 20% of
# the time (6/9 under a half turn, 1/1 upside down).
TASKS = [
    ("flip", (9, 6)), ("flip", (8, 4)),
    ("mirror", (9, 0)), ("mirror", (8, 3)),
    ("rot90", (9, 8)), ("rot90", (8, 9)),
    ("rot180", (9, 5)), ("rot180", (8, 4)),
    ("rot270", (9, 8)), ("rot270", (9, 6)),
    ("skew", (9, 5)), ("skew", (8, 4)),
    ("jigsaw", (9, 0)), ("jigsaw", (7, 6)),
    ("patch_permutation", (9, 0)), ("patch_permutation", (8, 6)),
    ("inner_circle", (9, 5)), ("inner_circle", (9, 3)),
    ("square_hinge", (8, 2)), ("square_hinge", (7, 5)),
    ("negate", (8, 5)), ("negate", (3, 9)),
]
# The views that are not orthogonal are judged on all pairs only: a search for their best pairs
# finds the pairs where one digit's plain sample already reads as the other under the view (at
# guidance 7, 8 -> 3 at half resolution and 8 -> 4 turned by 45 degrees) and measures nothing.
FAILURE_VIEWS = ["blur", "rescale", "rotate_bilinear"]
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
    for name in [*dict.fromkeys(view for view, _ in TASKS), *FAILURE_VIEWS]:
        pairs = [pair for view, pair in TASKS if view == name]
        every, _ = _anagrams(model, classifier, schedule, name, all_pairs)
        summary = f"all pairs: success {every['success'].float().mean():.0%}"
        if pairs:
            verdict, spent = _anagrams(model, classifier, schedule, name, torch.tensor(pairs).repeat_interleave(SEEDS, 0))
            seconds, count = seconds + spent, count + len(pairs) * SEEDS
            summary = (
                f"chosen pairs: success {verdict['success'].float().mean():.0%}, alignment "
                f"{verdict['alignment'].mean():.2f}, concealment {verdict['concealment'].mean():.2f}; " + summary
            )
        else:
            summary += f", alignment {every['alignment'].mean():.2f}, concealment {every['concealment'].mean():.2f}"
        kind = " (off the data)" if name in OFF_DATA else "" if make_view(name).orthogonal else " (not orthogonal)"
        if not kind:
            chosen.append(verdict["success"].float())
            unchosen.append(every["success"].float())
        rows.append({
            "model": f"anagram: identity + {name}{kind}",
            "params": "-",
            "budget": (f"{len(pairs)} chosen pairs x {SEEDS} seeds; " if pairs else "") + "all 90 pairs x 1 seed",
            "steps/s": "-",
            "metrics": summary,
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
        eps_fn = factorized_eps(model, bands, labels, HYBRID_SCALE)
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
        "budget": f"{len(HYBRIDS)} pairs x {SEEDS} seeds, guidance {HYBRID_SCALE:g}",
        "steps/s": f"{seconds:.2f} s/illusion",
        "metrics": f"high-frequency class read at full size {torch.cat(near).float().mean():.0%}; "
        f"low-frequency class read when blurred {torch.cat(far).float().mean():.0%} "
        f"(real test digits blurred the same way: {ceiling:.0%})",
    }
