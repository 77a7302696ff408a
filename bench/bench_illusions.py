"""Diffusion illusions with the zoo's class-conditional DDPM, judged fairly.

**The fair judge.** An illusion succeeds when the evaluation classifier reads every view as
intended *and* every view passes the realism check (:func:`dgm.metrics.digit_realism`: a
classifier alone can be fooled by speckle). A pair proves something only if plain samples do not
already do the trick: for every view, ``PLAIN_PER_CLASS`` plain samples per digit (guidance
``PLAIN_SCALE``) are put through the view (:func:`dgm.illusions.view_baseline`), and a pair
``(a, b)`` whose plain ``a`` reads as ``b`` more than 10% of the time is trivial and left out of
the fair rates (its share is reported). The classifier-alone rate over all pairs stands beside them.

Rows: every view on **all** 90 ordered digit pairs with ``ALL_PAIRS_SEEDS`` seeds each (no pairs
picked), and the pairs a search chose as a second line (``BENCH_ILLUSIONS_SEEDS``, default 8,
seeds each); the pooled orthogonal views; three-view illusions on fixed digit triples; hybrid
images on all pairs (full size read as the high-frequency digit, seen small as the low-frequency
one), the tuned setting beside the old one; SDEdit from real digits toward another class across
``t0`` (distance to the input, accuracy toward the asked class); and the CPU time per illusion.
"""

from __future__ import annotations

import os
import time

import torch

from dgm import zoo
from dgm.data import mnist
from dgm.device import make_generator
from dgm.diffusion import DDPM_NULL_LABEL, DDPM_T, ddim_sample, guided, linear_schedule
from dgm.illusions import TRIVIAL, GaussianBands, anagram, factorized_eps, judge, sdedit, view_baseline
from dgm.metrics import digit_realism, evaluation_classifier, predict
from dgm.views import make_view

SEEDS = int(os.environ.get("BENCH_ILLUSIONS_SEEDS", 8))
ALL_PAIRS_SEEDS = 2
SCALE, STEPS = 7.0, 20  # DDIM steps; averaging two views halves each one's pull: guidance 7 is about 3.5 per view
THREE_VIEW_SCALE = 10.0  # three views, a third of the pull each
PLAIN_PER_CLASS, PLAIN_SCALE = 20, 3.0  # the plain samples behind every baseline
# Hybrids: (sigma of the band split, guidance of the low band, of the high band). Tuned on all pairs
# (2 seeds, judged by the classifier alone) over sigma 1-2.5 and guidance 2-12 per band: a wider
# split or weaker low band and the small view loses the low digit; a narrower one and the full view
# loses the high digit. The old setting (one guidance for both bands) is kept beside it.
HYBRIDS = {"tuned": (2.0, 8.0, 5.0), "old (sigma 2, guidance 3 on both bands)": (2.0, 3.0, 3.0)}
DISTANT = make_view("rescale", size=10, mode="bilinear")  # a hybrid seen small: 10 x 10 pixels, scaled back up
SDEDIT_T0 = (0, 200, 400, 500, 600, 700, 800, 1000)

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
# Three views of one image; each is judged on the same 60 digit triples (three different digits, drawn once).
THREE_VIEWS = [("identity", "rot90", "rot270"), ("identity", "flip", "mirror"), ("identity", "rot180", "inner_circle")]
TRIPLES = [t for t in torch.randperm(1000, generator=make_generator(0)).tolist() if len(set(f"{t:03d}")) == 3][:60]


ALL_PAIRS = torch.tensor([(a, b) for a in range(10) for b in range(10) if a != b])


def plain_samples(model, schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """``PLAIN_PER_CLASS`` plain guided samples of every digit ``(N, 1, 28, 28)`` in [-1, 1], and their labels."""
    labels = torch.arange(10).repeat(PLAIN_PER_CLASS)
    return ddim_sample(guided(model, labels, PLAIN_SCALE, DDPM_NULL_LABEL), schedule, (len(labels), 1, 28, 28), steps=STEPS, generator=1), labels


def fair_rates(verdict: dict, trivial: torch.Tensor) -> str:
    """Lenient and strict success over the illusions of non-trivial pairs, with a standard error."""
    keep = ~trivial
    rate = verdict["success"][keep].float().mean().item()
    error = (rate * (1 - rate) / max(int(keep.sum()), 1)) ** 0.5
    return f"{rate:.0%} +- {error:.0%} lenient, {verdict['strict_success'][keep].float().mean():.0%} strict"


def _anagrams(model, classifier, realism, schedule, names, labels, seeds, scale) -> tuple[dict, float]:
    """Sample and judge ``seeds`` illusions with views ``names`` for each row of ``labels`` ``(B, V)``;
    also the sampling seconds."""
    views = [make_view(name) for name in names]
    labels = labels.repeat_interleave(seeds, 0)
    start = time.perf_counter()
    images = anagram(model, views, labels, schedule, scale=scale, steps=STEPS, seed=0)
    return judge(images, views, labels, classifier, realism=realism), time.perf_counter() - start


def run() -> list[dict]:
    model = zoo.load("ddpm-mnist-cond")
    classifier, realism = evaluation_classifier(), digit_realism()
    schedule = linear_schedule(DDPM_T)
    plain, plain_labels = plain_samples(model, schedule)
    rows, fair, chosen_fair, seconds, count = [], [], [], 0.0, 0
    for name in [*dict.fromkeys(view for view, _ in TASKS), *FAILURE_VIEWS]:
        baseline = view_baseline(plain, plain_labels, make_view(name), classifier)
        trivial = baseline[ALL_PAIRS[:, 0], ALL_PAIRS[:, 1]] > TRIVIAL  # (90,)
        every, spent = _anagrams(model, classifier, realism, schedule, ("identity", name), ALL_PAIRS, ALL_PAIRS_SEEDS, SCALE)
        trivial_each = trivial.repeat_interleave(ALL_PAIRS_SEEDS)
        summary = (
            f"all pairs, classifier alone: {every['classified'].float().mean():.0%}; fair (realistic, "
            f"{int((~trivial).sum())} non-trivial pairs): {fair_rates(every, trivial_each)}; "
            f"trivial pairs {trivial.float().mean():.0%}"
        )
        pairs = [pair for view, pair in TASKS if view == name]
        if pairs:
            verdict, _ = _anagrams(model, classifier, realism, schedule, ("identity", name), torch.tensor(pairs), SEEDS, SCALE)
            chosen_trivial = torch.tensor([bool(baseline[a, b] > TRIVIAL) for a, b in pairs]).repeat_interleave(SEEDS)
            summary += f"; chosen pairs: {fair_rates(verdict, chosen_trivial)}"
        kind = " (off the data)" if name in OFF_DATA else "" if make_view(name).orthogonal else " (not orthogonal)"
        if not kind:
            fair.append((every, trivial_each))
            chosen_fair += [(verdict, chosen_trivial)] if pairs else []
            seconds, count = seconds + spent, count + len(ALL_PAIRS) * ALL_PAIRS_SEEDS
        rows.append({
            "model": f"anagram: identity + {name}{kind}",
            "params": "-",
            "budget": f"all 90 pairs x {ALL_PAIRS_SEEDS} seeds" + (f"; {len(pairs)} chosen pairs x {SEEDS} seeds" if pairs else ""),
            "steps/s": "-",
            "metrics": summary,
            "classifier_alone": round(every["classified"].float().mean().item(), 4),
            "fair_lenient": round(every["success"][~trivial_each].float().mean().item(), 4),
            "trivial_pairs": round(trivial.float().mean().item(), 4),
        })

    def pooled(verdicts: list[tuple[dict, torch.Tensor]]) -> tuple[dict, torch.Tensor]:
        return ({key: torch.cat([v[key] for v, _ in verdicts]) for key in ("success", "strict_success", "classified")},
                torch.cat([t for _, t in verdicts]))

    every, trivial = pooled(fair)
    rows.append({
        "model": "anagrams, all orthogonal views (negate apart)",
        "params": sum(p.numel() for p in model.parameters()),
        "budget": f"guidance {SCALE:g}, DDIM-{STEPS}",
        "steps/s": f"{seconds / count:.2f} s/illusion",
        "metrics": f"all pairs, classifier alone: {every['classified'].float().mean():.1%}; fair, "
        f"{int((~trivial).sum())} illusions of non-trivial pairs: {fair_rates(every, trivial)}; trivial "
        f"{trivial.float().mean():.1%}; chosen pairs, fair: {fair_rates(*pooled(chosen_fair))}",
        "fair_lenient": round(every["success"][~trivial].float().mean().item(), 4),
        "fair_strict": round(every["strict_success"][~trivial].float().mean().item(), 4),
    })
    rows.append(_three_view_row(model, classifier, realism, schedule))
    rows += [_hybrid_row(model, classifier, realism, schedule, plain, plain_labels, name, setting) for name, setting in HYBRIDS.items()]
    rows.append(_sdedit_row(model, classifier, schedule))
    return rows


def _three_view_row(model, classifier, realism, schedule) -> dict:
    triples = torch.tensor([[int(digit) for digit in f"{t:03d}"] for t in TRIPLES])
    verdicts, per_set, start = [], [], time.perf_counter()
    for names in THREE_VIEWS:
        verdict, _ = _anagrams(model, classifier, realism, schedule, names, triples, 1, THREE_VIEW_SCALE)
        verdicts.append(verdict)
        per_set.append(f"{' + '.join(names[1:])}: {verdict['success'].float().mean():.0%}")
    lenient = torch.cat([v["success"] for v in verdicts]).float().mean().item()
    strict = torch.cat([v["strict_success"] for v in verdicts]).float().mean().item()
    return {
        "model": "three-view illusions: identity + two views, three digits",
        "params": "-",
        "budget": f"{len(TRIPLES)} digit triples x {len(THREE_VIEWS)} view sets, guidance {THREE_VIEW_SCALE:g}",
        "steps/s": f"{(time.perf_counter() - start) / (len(TRIPLES) * len(THREE_VIEWS)):.2f} s/illusion",
        "metrics": f"realistic and as intended: {lenient:.1%} lenient, {strict:.1%} strict; " + "; ".join(per_set),
        "three_view_lenient": round(lenient, 4),
        "three_view_strict": round(strict, 4),
    }


def _hybrid_row(model, classifier, realism, schedule, plain, plain_labels, name, setting) -> dict:
    """Hybrids of all 90 (low, high) pairs: full size read as ``high``, seen small (:data:`DISTANT`) as ``low``."""
    sigma, low_scale, high_scale = setting
    labels = ALL_PAIRS.repeat_interleave(ALL_PAIRS_SEEDS, 0)
    start = time.perf_counter()
    eps_fn = factorized_eps(model, GaussianBands((sigma,)), labels, (low_scale, high_scale))
    images = ddim_sample(eps_fn, schedule, (len(labels), 1, 28, 28), steps=STEPS, generator=0)
    seconds = (time.perf_counter() - start) / len(labels)
    verdict = judge(images, [make_view("identity"), DISTANT], labels.flip(1), classifier, realism=realism)
    # trivial: a plain sample of the high digit, seen small, already reads as the low one
    baseline = view_baseline(plain, plain_labels, DISTANT, classifier)
    trivial = (baseline[labels[:, 1], labels[:, 0]] > TRIVIAL)
    near = (verdict["probabilities"][:, 0].argmax(1) == labels[:, 1]).float().mean()
    far = (verdict["probabilities"][:, 1].argmax(1) == labels[:, 0]).float().mean()
    return {
        "model": f"hybrid images, {name}: sigma {sigma:g}, guidance {low_scale:g} low / {high_scale:g} high",
        "params": "-",
        "budget": f"all 90 (low, high) pairs x {ALL_PAIRS_SEEDS} seeds; seen small at {DISTANT.size} x {DISTANT.size}",
        "steps/s": f"{seconds:.2f} s/illusion",
        "metrics": f"high digit read at full size {near:.0%}, low digit read small {far:.0%}, both "
        f"(classifier alone) {verdict['classified'].float().mean():.0%}; fair ({int((~trivial).sum() // ALL_PAIRS_SEEDS)} "
        f"non-trivial pairs): {fair_rates(verdict, trivial)}",
        "fair_lenient": round(verdict["success"][~trivial].float().mean().item(), 4),
    }


def _sdedit_row(model, classifier, schedule) -> dict:
    """SDEdit of 100 test digits (10 per class) toward another class, every input its own noise."""
    test_images, test_labels = mnist("test", download=False)
    inputs = torch.cat([test_images[test_labels == c][:10] for c in range(10)]) * 2 - 1
    source = torch.arange(10).repeat_interleave(10)
    asked = (source + 1 + torch.arange(100) % 9) % 10  # every other class, in turn
    eps_fn = guided(model, asked, PLAIN_SCALE, DDPM_NULL_LABEL)
    curve = []
    for t0 in SDEDIT_T0:
        edited = sdedit(eps_fn, schedule, inputs, t0, steps=STEPS, generator=t0)
        read = predict((edited.clamp(-1, 1) + 1) / 2, classifier)
        distance = ((edited - inputs).abs().mean() / 2).item()  # mean absolute pixel change on [0, 1]
        curve.append(f"t0 {t0}: change {distance:.2f}, asked {(read == asked).float().mean():.0%}, "
                     f"input's class {(read == source).float().mean():.0%}")
    return {
        "model": "SDEdit: test digits toward another class",
        "params": "-",
        "budget": f"100 inputs, guidance {PLAIN_SCALE:g}, DDIM up to {STEPS} steps",
        "steps/s": "-",
        "metrics": "; ".join(curve),
    }
