"""Diffusion illusions with the zoo's class-conditional DDPM, judged by the evaluation classifier.

The headline is success over **all** 90 ordered digit pairs of every view of a fixed task set (no
pairs picked), with ``ALL_PAIRS_SEEDS`` seeds each; pairs chosen by a search are a second line.
Two judges: lenient (the classifier gives every view its intended class) and strict (every view's
intended class with probability at least 0.9). Alignment is the smallest intended-class
probability over the views, concealment the mean over views of the intended class's probability
among the illusion's classes (as in the visual anagrams paper, with our classifier for CLIP).
Also: three-view illusions (three views of one image, each read as its own digit) on a fixed set
of digit triples; hybrid images (low frequencies one digit, high frequencies another) judged at
full size (the high-frequency digit should win) and blurred (the low-frequency one should); and
the CPU time per illusion. Settings: ``BENCH_ILLUSIONS_SEEDS`` (default 8) for the chosen pairs.
"""

from __future__ import annotations

import os
import time

import torch

from dgm import zoo
from dgm.data import mnist
from dgm.device import make_generator
from dgm.diffusion import DDPM_T, ddim_sample, linear_schedule
from dgm.illusions import GaussianBands, anagram, factorized_eps, judge
from dgm.metrics import class_accuracy, evaluation_classifier
from dgm.views import make_view
from dgm.viz import to_unit

SEEDS = int(os.environ.get("BENCH_ILLUSIONS_SEEDS", 8))
ALL_PAIRS_SEEDS = 2
SCALE, STEPS = 7.0, 20  # DDIM steps; averaging two views halves each one's pull: guidance 7 is about 3.5 per view
THREE_VIEW_SCALE = 10.0  # three views, a third of the pull each
HYBRID_SIGMA, HYBRID_SCALE = 2.0, 3.0  # a hybrid takes each band from one estimate: no averaging

# (view, (class upright, class under the view)), two pairs per view, chosen (with the zoo model of
# 2026-11-23) by a search at guidance 7, DDIM-25, on seeds that the benchmark does not use: all 90 ordered pairs on seeds 100-101, then the
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
# Three views of one image; each is judged on the same 60 digit triples (three different digits, drawn once).
THREE_VIEWS = [("identity", "rot90", "rot270"), ("identity", "flip", "mirror"), ("identity", "rot180", "inner_circle")]
TRIPLES = [t for t in torch.randperm(1000, generator=make_generator(0)).tolist() if len(set(f"{t:03d}")) == 3][:60]


def _blur(images: torch.Tensor) -> torch.Tensor:
    """What a viewer far away sees: the low-pass band (the images are in [-1, 1])."""
    return GaussianBands((HYBRID_SIGMA,)).components(images)[0]


def _anagrams(model, classifier, schedule, names: tuple[str, ...], labels: torch.Tensor, seeds: int, scale: float) -> tuple[dict, float]:
    """Sample and judge ``seeds`` illusions with views ``names`` for each row of ``labels`` ``(B, V)``;
    also the sampling seconds."""
    views = [make_view(name) for name in names]
    labels = labels.repeat_interleave(seeds, 0)
    start = time.perf_counter()
    images = anagram(model, views, labels, schedule, scale=scale, steps=STEPS, seed=0)
    return judge(images, views, labels, classifier), time.perf_counter() - start


def _rates(verdict: dict) -> str:
    return f"{verdict['success'].float().mean():.0%} lenient, {verdict['strict_success'].float().mean():.0%} strict"


def run() -> list[dict]:
    model = zoo.load("ddpm-mnist-cond")
    classifier = evaluation_classifier()
    schedule = linear_schedule(DDPM_T)
    all_pairs = torch.tensor([(a, b) for a in range(10) for b in range(10) if a != b])
    rows, every_verdict, chosen_verdict, seconds, count = [], [], [], 0.0, 0
    for name in [*dict.fromkeys(view for view, _ in TASKS), *FAILURE_VIEWS]:
        every, spent = _anagrams(model, classifier, schedule, ("identity", name), all_pairs, ALL_PAIRS_SEEDS, SCALE)
        summary = (
            f"all pairs: {_rates(every)}, alignment {every['alignment'].mean():.2f}, "
            f"concealment {every['concealment'].mean():.2f}"
        )
        pairs = [pair for view, pair in TASKS if view == name]
        if pairs:
            verdict, _ = _anagrams(model, classifier, schedule, ("identity", name), torch.tensor(pairs), SEEDS, SCALE)
            summary += f"; chosen pairs: {_rates(verdict)}"
        kind = " (off the data)" if name in OFF_DATA else "" if make_view(name).orthogonal else " (not orthogonal)"
        if not kind:
            every_verdict.append(every)
            chosen_verdict += [verdict] if pairs else []
            seconds, count = seconds + spent, count + len(all_pairs) * ALL_PAIRS_SEEDS
        rows.append({
            "model": f"anagram: identity + {name}{kind}",
            "params": "-",
            "budget": f"all 90 pairs x {ALL_PAIRS_SEEDS} seeds" + (f"; {len(pairs)} chosen pairs x {SEEDS} seeds" if pairs else ""),
            "steps/s": "-",
            "metrics": summary,
        })

    def pooled(verdicts: list[dict], key: str) -> torch.Tensor:
        return torch.cat([v[key] for v in verdicts]).float()

    rows.append({
        "model": "anagrams, all orthogonal views (negate apart)",
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"guidance {SCALE:g}, DDIM-{STEPS}",
        "steps/s": f"{seconds / count:.2f} s/illusion",
        "metrics": f"all pairs: {pooled(every_verdict, 'success').mean():.1%} lenient, "
        f"{pooled(every_verdict, 'strict_success').mean():.1%} strict, of {len(pooled(every_verdict, 'success'))}; "
        f"chosen pairs: {pooled(chosen_verdict, 'success').mean():.1%} lenient, "
        f"{pooled(chosen_verdict, 'strict_success').mean():.1%} strict",
        "all_pairs_lenient": round(pooled(every_verdict, "success").mean().item(), 4),
        "all_pairs_strict": round(pooled(every_verdict, "strict_success").mean().item(), 4),
    })
    rows.append(_three_view_row(model, classifier, schedule))
    rows.append(_hybrid_row(model, classifier, schedule))
    return rows


def _three_view_row(model, classifier, schedule) -> dict:
    triples = torch.tensor([[int(digit) for digit in f"{t:03d}"] for t in TRIPLES])
    verdicts, per_set, start = [], [], time.perf_counter()
    for names in THREE_VIEWS:
        verdict, _ = _anagrams(model, classifier, schedule, names, triples, 1, THREE_VIEW_SCALE)
        verdicts.append(verdict)
        per_set.append(f"{' + '.join(names[1:])}: {_rates(verdict)}")
    lenient = torch.cat([v["success"] for v in verdicts]).float().mean().item()
    strict = torch.cat([v["strict_success"] for v in verdicts]).float().mean().item()
    return {
        "model": "three-view illusions: identity + two views, three digits",
        "params": "-",
        "budget": f"{len(TRIPLES)} digit triples x {len(THREE_VIEWS)} view sets, guidance {THREE_VIEW_SCALE:g}",
        "steps/s": f"{(time.perf_counter() - start) / (len(TRIPLES) * len(THREE_VIEWS)):.2f} s/illusion",
        "metrics": f"{lenient:.1%} lenient, {strict:.1%} strict; " + "; ".join(per_set),
        "three_view_lenient": round(lenient, 4),
        "three_view_strict": round(strict, 4),
    }


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
