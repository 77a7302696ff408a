"""Diffusion illusions and editing with a class-conditional noise model.

**Why anagrams work** (Geng et al., *Visual Anagrams*, 2024). A noise model estimates the noise
in ``x_t``. Let ``A`` be an orthogonal matrix acting on images (a "view": a flip, a rotation,
any permutation of the pixels, a sign flip). If ``x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps``
then ``A x_t = sqrt(alpha_bar) A x_0 + sqrt(1 - alpha_bar) A eps``, and ``A eps`` is again standard
normal noise *because* ``A`` is orthogonal (covariance ``A A^T = I``). So ``A x_t`` is an honest
noisy image of the data ``A x_0``, the model's estimate of its noise is meaningful, and
``A^T eps(A x_t)`` is an estimate of the noise of ``x_t`` itself. Averaging those estimates over
views, each asked for its own class, denoises towards an image that reads as class ``y_v``
under every view ``v``. A transform that is not orthogonal (a blur, a rescaling, a rotation
by an odd angle with interpolation) turns the noise into something the model never saw:
correlated, or with the wrong variance, and the trick fails.

**Factorized diffusion** (Geng et al., 2024). Split an image into linear components that sum
to it, ``x = f_1(x) + ... + f_K(x)`` (low and high frequencies, say), and build the noise
estimate from different conditions per component, ``eps = sum_k f_k(eps_k)``: a hybrid image
reads as one digit up close (high frequencies) and another from afar (low frequencies).

**Editing.** SDEdit (Meng et al., 2022) noises an input to an intermediate step and denoises
it: the result keeps the input's coarse layout and is a sample of the model. RePaint
(Lugmayr et al., 2022) inpaints: at every step the known region is replaced by a noised copy
of the input, and the chain goes back and forth (resampling jumps) so that the generated
region harmonizes with the known one.

Images are ``(B, C, H, W)`` on the diffusion model's scale [-1, 1]; the views (:mod:`dgm.views`)
act on any such batch. Noise estimates are ``eps_fn(x_t, t)`` callables as in :mod:`dgm.diffusion`, so every
construction here plugs into :func:`dgm.diffusion.ddim_sample`, :func:`~dgm.diffusion.ddpm_sample` and
:func:`dgm.solvers.dpm_solver_sample`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dgm.blocks import gaussian_kernel
from dgm.checks import class_labels, describe, diffusion_images
from dgm.device import Seed, evaluating, make_generator, module_device
from dgm.diffusion import (
    DDPM_NULL_LABEL,
    EpsFn,
    Schedule,
    add_noise,
    ddim_sample,
    ddpm_step,
    guided,
    on_steps,
    q_sample,
    respace,
)
from dgm.metrics import RealismCheck, evaluation_classifier
from dgm.views import View

__all__ = [
    "multiview_eps",
    "anagram",
    "GaussianBands",
    "MotionBlurBands",
    "factorized_eps",
    "composed_eps",
    "sdedit",
    "repaint_schedule",
    "inpaint",
    "TRIVIAL",
    "view_baseline",
    "judge",
]

Model = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


# --- illusions -----------------------------------------------------------------------------------


def _class_grid(labels: object, columns: int | None, what: str) -> torch.Tensor:
    """``labels`` must be an integer tensor ``(B, columns)`` (any ``columns >= 1`` if None): a class per image and per ``what``."""
    if not torch.is_tensor(labels) or labels.ndim != 2 or labels.shape[1] != (columns or labels.shape[1]) or not labels.shape[1]:
        raise ValueError(
            f"labels: expected an integer tensor (B, {columns or 'K'}), one class per image and per {what}, "
            f"got {describe(labels)}"
        )
    class_labels(labels[:, 0])
    return labels


def multiview_eps(
    model: Model, views: Sequence[View], labels: torch.Tensor, scale: float = 2.0, null_label: int = DDPM_NULL_LABEL,
) -> EpsFn:
    """The visual-anagram noise estimate: ``mean_v inverse_v(eps_v(view_v(x_t)))``.

    ``eps_v`` is the guided estimate (:func:`dgm.diffusion.guided`, ``scale``) for class ``labels[:, v]``;
    ``labels`` is ``(B, V)``, one class per image and per view. All views go through the model in
    one batch. With a single identity view this is exactly ``guided(model, labels[:, 0], ...)``.
    """
    views = list(views)
    if not views or not all(isinstance(v, View) for v in views):
        raise ValueError(f"views: expected a non-empty list of View objects, got {views!r}")
    labels = _class_grid(labels, len(views), "view")
    flat_labels = labels.T.reshape(-1)  # view-major, to match the concatenated views
    eps_all = guided(model, flat_labels, scale, null_label)

    def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        parts = eps_all(torch.cat([v.view(x_t) for v in views]), t.repeat(len(views))).chunk(len(views))
        return torch.stack([v.inverse(part) for v, part in zip(views, parts)]).mean(0)

    return eps_fn


def anagram(
    model: Model, views: Sequence[View], labels: torch.Tensor, schedule: Schedule, scale: float = 2.0,
    steps: int = 20, seed: Seed = 0, eta: float = 0.0, frames: int = 0,
    null_label: int = DDPM_NULL_LABEL, image_shape: tuple[int, int, int] = (1, 28, 28),
):
    """Sample visual anagrams with DDIM: images ``(B, *image_shape)`` in [-1, 1] that read as ``labels[b, v]``
    under view ``v``. ``labels``: ``(B, V)``, any number ``V`` of views. With ``frames`` also the ``x0_hat``
    snapshots (see ``ddim_sample``).

    DDIM, not DPM-Solver++(2M): on all 90 digit pairs (guidance 7, ``bench/bench_illusions.py``'s model)
    DDIM in 20 steps made as many anagrams as in 50 (flip 69% / 68%, quarter turn 74% / 74%, jigsaw
    58% / 52%) and more than the solver in 20 (53%, 71%, 44%).
    """
    device = module_device(model)
    labels = _class_grid(labels, len(views), "view").to(device)
    eps_fn = multiview_eps(model, views, labels, scale, null_label)
    return ddim_sample(
        eps_fn, schedule.to(device), (len(labels), *image_shape), steps=steps, eta=eta,
        generator=seed, frames=frames, device=device,
    )


# --- factorized diffusion ----------------------------------------------------------------------


def _blur(x: torch.Tensor, kernel_h: torch.Tensor, kernel_w: torch.Tensor) -> torch.Tensor:
    """Separable filtering with reflect padding, per channel (a linear map)."""
    channels = x.shape[1]
    kh, kw = kernel_h.to(x), kernel_w.to(x)
    x = F.pad(x, (len(kw) // 2, len(kw) // 2, len(kh) // 2, len(kh) // 2), mode="reflect")
    x = F.conv2d(x, kh.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(x, kw.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


class GaussianBands:
    """Split an image into frequency bands with Gaussian blurs of increasing ``sigmas``:
    ``[blur_{s_last}(x), ..., blur_{s_1}(x) - blur_{s_2}(x), x - blur_{s_1}(x)]``, lowest first.

    One sigma gives the two bands of a hybrid image (low-pass, high-pass); two give three bands.
    The bands are linear in ``x`` and sum to ``x``.
    """

    def __init__(self, sigmas: Sequence[float] = (2.0,)):
        sigmas = list(sigmas)
        if not sigmas or any(s <= 0 for s in sigmas) or sigmas != sorted(sigmas):
            raise ValueError(f"sigmas: expected increasing positive blur widths, got {sigmas!r}")
        self.sigmas = sigmas

    def __len__(self) -> int:
        return len(self.sigmas) + 1

    def components(self, x: torch.Tensor) -> list[torch.Tensor]:
        diffusion_images(x, "x")
        kernels = [gaussian_kernel(sigma, torch.float64) for sigma in self.sigmas]
        blurred = [x] + [_blur(x, kernel, kernel) for kernel in kernels]
        bands = [blurred[k] - blurred[k + 1] for k in range(len(self.sigmas))] + [blurred[-1]]
        return bands[::-1]


class MotionBlurBands:
    """Two components for strokes: a horizontal motion blur over ``length`` pixels (what survives a
    sideways smear) and the residual ``x - blur(x)`` (the vertical edges the smear wipes out)."""

    def __init__(self, length: int = 9):
        if length < 2 or length % 2 == 0:
            raise ValueError(f"length: expected an odd blur length >= 3, got {length!r}")
        self.length = length

    def __len__(self) -> int:
        return 2

    def components(self, x: torch.Tensor) -> list[torch.Tensor]:
        diffusion_images(x, "x")
        box = torch.full((self.length,), 1.0 / self.length, dtype=torch.float64)
        smeared = _blur(x, torch.ones(1, dtype=torch.float64), box)
        return [smeared, x - smeared]


def factorized_eps(
    model: Model, decomposition, labels: torch.Tensor, scale: float | Sequence[float] = 2.0,
    null_label: int = DDPM_NULL_LABEL,
) -> EpsFn:
    """``sum_k f_k(eps_k)``: component ``k`` of the noise estimate (``decomposition.components``) taken from
    the guided estimate for class ``labels[:, k]``. ``labels``: ``(B, K)`` with ``K = len(decomposition)``;
    ``scale``: one guidance scale for every component, or ``K`` of them (a hybrid's coarse digit may
    need a stronger pull than its fine one)."""
    count = len(decomposition)
    labels = _class_grid(labels, count, "component")
    scales = [float(s) for s in scale] if isinstance(scale, Sequence) else [float(scale)] * count
    if len(scales) != count:
        raise ValueError(f"scale: expected one guidance scale or {count} (one per component), got {len(scales)}")
    if len(set(scales)) == 1:  # one batched call of the network for every component
        eps_all = guided(model, labels.T.reshape(-1), scales[0], null_label)

        def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            parts = eps_all(x_t.repeat(count, 1, 1, 1), t.repeat(count)).chunk(count)
            return sum(decomposition.components(part)[k] for k, part in enumerate(parts))

        return eps_fn
    estimates = [guided(model, labels[:, k], s, null_label) for k, s in enumerate(scales)]
    return lambda x_t, t: sum(decomposition.components(e(x_t, t))[k] for k, e in enumerate(estimates))


def composed_eps(
    model: Model, labels: torch.Tensor, scale: float = 2.0, null_label: int = DDPM_NULL_LABEL
) -> EpsFn:
    """A product of experts (Liu et al., *Composable Diffusion*, 2022): ``eps_null + scale * sum_k (eps_k - eps_null)``,
    which samples from about ``p(x) prod_k p(y_k | x)^scale``. ``labels``: ``(B, K)``, the classes to combine."""
    labels = _class_grid(labels, None, "expert")
    count = labels.shape[1]

    def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        null = torch.full((len(x_t),), null_label, dtype=labels.dtype, device=x_t.device)
        classes = torch.cat([labels.T.reshape(-1).to(x_t.device), null])
        everything = model(x_t.repeat(count + 1, 1, 1, 1), t.repeat(count + 1), classes).chunk(count + 1)
        eps_null = everything[-1]
        return eps_null + scale * sum(e - eps_null for e in everything[:-1])

    return eps_fn


# --- editing -----------------------------------------------------------------------------------


def sdedit(
    eps_fn: EpsFn, schedule: Schedule, x0: torch.Tensor, t0: int, steps: int = 50,
    generator: int | torch.Generator | None = None, eta: float = 0.0,
) -> torch.Tensor:
    """SDEdit: noise ``x0`` ``(B, C, H, W)`` in [-1, 1] by ``t0`` steps (``t0`` in ``[0, T]``), then denoise with DDIM.

    ``t0 = 0`` returns ``x0`` unchanged; ``t0 = T`` keeps only ``sqrt(alpha_bar_T) ~ 0.006`` of it and is
    (nearly) plain sampling. The DDIM walk takes ``min(steps, t0)`` steps from step ``t0 - 1`` down.
    """
    diffusion_images(x0, "x0")
    if not isinstance(t0, int) or not 0 <= t0 <= schedule.T:
        raise ValueError(f"t0: expected an int number of noising steps in [0, {schedule.T}], got {t0!r}")
    if t0 == 0:
        return x0.clone()
    generator = make_generator(generator)
    x_t, _ = add_noise(schedule, x0, torch.full((len(x0),), t0 - 1, dtype=torch.long, device=x0.device), generator)
    return ddim_sample(
        eps_fn, schedule, tuple(x0.shape), steps=min(steps, t0), eta=eta, generator=generator, x_T=x_t,
        device=x0.device, start=t0,
    )


def repaint_schedule(T: int, jump_length: int = 10, resamplings: int = 10) -> list[int]:
    """RePaint's walk over steps: down one step at a time from ``T - 1`` to ``-1`` (the data), but at every
    ``jump_length``-th step (below ``T - jump_length``) go back up ``jump_length`` steps, ``resamplings - 1`` times.

    Consecutive entries differ by 1: a decrease is a denoising step, an increase a noising one. With
    ``T = 250``, jumps of 10 and 10 resamplings the walk has 4,571 entries (the paper's setting).
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T: expected a positive int, got {T!r}")
    if not isinstance(jump_length, int) or jump_length < 1 or not isinstance(resamplings, int) or resamplings < 1:
        raise ValueError(f"jump_length, resamplings: expected positive ints, got {jump_length!r}, {resamplings!r}")
    jumps_left = {j: resamplings - 1 for j in range(0, T - jump_length, jump_length)}
    t, walk = T, []
    while t >= 1:
        t -= 1
        walk.append(t)
        if jumps_left.get(t, 0) > 0:
            jumps_left[t] -= 1
            for _ in range(jump_length):
                t += 1
                walk.append(t)
    return walk + [-1]


@torch.no_grad()
def inpaint(
    eps_fn: EpsFn, schedule: Schedule, x0: torch.Tensor, known: torch.Tensor, steps: int = 100,
    jump_length: int = 10, resamplings: int = 5, generator: int | torch.Generator | None = None,
) -> torch.Tensor:
    """RePaint inpainting: fill the pixels of ``x0`` ``(B, C, H, W)`` in [-1, 1] where ``known`` is 0.

    ``known``: a mask broadcastable to ``x0``, 1 where ``x0`` is kept. The chain is ``schedule``
    respaced to ``steps`` steps (:func:`dgm.diffusion.respace`) and walked by :func:`repaint_schedule`:
    a step down is an ancestral step for the unknown pixels, with the known ones replaced by
    ``x0`` noised to the same step; a step up adds one step of forward noise.
    """
    diffusion_images(x0, "x0")
    if not torch.is_tensor(known) or known.dim() != 4:
        raise ValueError(f"known: expected a 4-d mask broadcastable to {tuple(x0.shape)}, got {known!r}")
    known = known.to(x0).expand_as(x0)
    short, original = respace(schedule, steps)
    short = short.to(x0.device)
    short_eps = on_steps(eps_fn, original)
    generator = make_generator(generator)

    def draw() -> torch.Tensor:
        return torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)

    walk = repaint_schedule(steps, jump_length, resamplings)
    x = draw()
    for t, t_next in zip(walk[:-1], walk[1:]):
        if t_next < t:  # denoise: the model for the unknown pixels, the data noised to t_next for the known ones
            steps_now = torch.full((len(x),), t, dtype=torch.long, device=x.device)
            x_prev, _ = ddpm_step(short, x, t, short_eps(x, steps_now), draw() if t_next >= 0 else None)
            if t_next >= 0:
                known_prev = q_sample(short, x0, torch.full_like(steps_now, t_next), draw())
            else:
                known_prev = x0
            x = known * known_prev + (1 - known) * x_prev
        else:  # noise one step forward: q(x_{t+1} | x_t)
            beta = short.betas[t_next].item()
            x = math.sqrt(1 - beta) * x + math.sqrt(beta) * draw()
    return x


# --- judging -----------------------------------------------------------------------------------


TRIVIAL = 0.1  # a pair whose baseline (below) exceeds this needs no illusion: it is left out of fair rates


@torch.no_grad()
def view_baseline(images: torch.Tensor, labels: torch.Tensor, view: View, classifier: nn.Module | None = None) -> torch.Tensor:
    """What an anagram must beat: ``(C, C)`` for a classifier of ``C`` classes, row ``a``, column
    ``b``, the share of plain samples of class ``a`` that the classifier reads as ``b`` under ``view``.

    ``images``: ordinary class-conditional samples ``(B, 1, 28, 28)`` in [-1, 1] of the classes
    ``labels`` ``(B,)``, every class at least once. A pair ``(a, b)`` with a high rate needs no
    illusion (a 6 turned by 180 degrees is a 9): pairs above :data:`TRIVIAL` prove nothing.
    """
    diffusion_images(images, "images")
    classifier = classifier if classifier is not None else evaluation_classifier()
    with evaluating(classifier):
        logits = classifier(((view.view(images).clamp(-1, 1) + 1) / 2).to(module_device(classifier))).cpu()
    classes = logits.shape[1]
    labels = class_labels(labels, len(images), classes)
    missing = sorted(set(range(classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"labels: expected samples of every class 0..{classes - 1}, none of {missing}")
    counts = torch.zeros(classes, classes).index_put_((labels, logits.argmax(1)), torch.ones(len(labels)), accumulate=True)
    return counts / counts.sum(1, keepdim=True)


@torch.no_grad()
def judge(
    images: torch.Tensor, views: Sequence[View], labels: torch.Tensor, classifier: nn.Module | None = None,
    confidence: float = 0.9, realism: RealismCheck | None = None,
) -> dict:
    """Judge illusions ``(B, 1, 28, 28)`` in [-1, 1] with the evaluation classifier, view by view.

    ``labels``: ``(B, V)``, the class intended under each view. Returns a dict of tensors:
    ``probabilities`` ``(B, V, 10)``; ``classified`` ``(B,)`` bool, every view classified as intended;
    ``realistic`` ``(B, V)`` bool, each view passes ``realism`` (all True without one: a classifier
    alone can be fooled by speckle, see :class:`dgm.metrics.RealismCheck`); ``success`` ``(B,)`` bool,
    every view classified as intended *and* realistic (the lenient judge); ``strict_success`` ``(B,)``
    bool, besides, every view's intended class has probability at least ``confidence`` (the strict
    judge: no view may be a toss-up);
    ``alignment`` ``(B,)``, the smallest intended-class probability over the views;
    ``concealment`` ``(B,)``, the mean over views of ``p(intended) / sum_{u} p(labels[b, u])``, the
    probability of the intended class among the illusion's classes only (1 when every view shows
    its own class and no trace of the others).
    """
    views = list(views)
    labels = _class_grid(labels, len(views), "view")
    diffusion_images(images, "images")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a probability in (0, 1), got {confidence!r}")
    classifier = classifier if classifier is not None else evaluation_classifier()
    device = module_device(classifier)
    seen = [(v.view(images).clamp(-1, 1) + 1) / 2 for v in views]  # each view, in [0, 1]
    with evaluating(classifier):
        probabilities = torch.stack([classifier(x.to(device)).softmax(1).cpu() for x in seen], 1)
    realistic = torch.stack([realism(x) for x in seen], 1) if realism is not None else torch.ones(labels.shape, dtype=torch.bool)
    intended = probabilities.gather(2, labels.unsqueeze(2)).squeeze(2)  # (B, V)
    among = probabilities.gather(2, labels.unsqueeze(1).expand(-1, len(views), -1)).sum(2)  # (B, V)
    classified = (probabilities.argmax(2) == labels).all(1)
    return {
        "probabilities": probabilities,
        "classified": classified,
        "realistic": realistic,
        "success": classified & realistic.all(1),
        "strict_success": (intended >= confidence).all(1) & realistic.all(1),
        "alignment": intended.min(1).values,
        "concealment": (intended / among).mean(1),
    }
