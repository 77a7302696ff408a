"""One small training loop for every model in the course.

The loop is the lecture's pseudo-code and nothing more::

    for step in range(budget):
        batch = next(batches)
        loss = loss_fn(model, batch)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

plus what a real run needs: a budget in steps and/or seconds (whichever ends
first), a cosine learning-rate decay over that budget, a tqdm progress bar, a
loss history, an optional exponential moving average (EMA) of the weights, and
checkpoints written atomically so that an interrupted run resumes where it
stopped. Seeded: the same seed, data and step budget repeat exactly on a CPU.

The loop itself is :func:`train_steps`: a :class:`Budget` of steps, each one
``step(batch)`` on a batch moved to the device, with the history, the progress
bar, the non-finite check and callbacks that do not count as training time.
:func:`fit` hands it the step above; models with their own update rule hand it
theirs: the GAN game (:func:`dgm.gan.train_gan`), pix2pix and CycleGAN
(:func:`dgm.translation.train_pix2pix`, :func:`dgm.translation.train_cyclegan`).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections import deque
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dgm.data import binarize
from dgm.device import Seed, evaluating, get_device, make_generator

__all__ = ["batches", "binarized_batches", "Budget", "train_steps", "to_device", "fit", "FitResult", "LearningCurve", "save_checkpoint", "load_checkpoint"]


def batches(
    *tensors: torch.Tensor, batch_size: int, seed: Seed = 0
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled minibatches of equally long tensors (a fresh permutation each epoch)."""
    if not tensors:
        raise ValueError("batches: give at least one tensor")
    length = len(tensors[0])
    if any(len(t) != length for t in tensors):
        raise ValueError(f"batches: tensors have different lengths {[len(t) for t in tensors]}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= length:
        raise ValueError(f"batch_size: expected an int in [1, {length}], got {batch_size!r}")
    generator = make_generator(seed)
    while True:
        order = torch.randperm(length, generator=generator)
        for start in range(0, length - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield tuple(t[index] for t in tensors)


def binarized_batches(
    images: torch.Tensor, batch_size: int, seed: Seed = 0
) -> Iterator[tuple[torch.Tensor]]:
    """Endless batches ``(x,)`` of ``images`` in [0, 1] binarized afresh every time, ``x ~ Bernoulli(pixel)``
    ("dynamic binarization"); the draws are seeded and made on the CPU."""
    generator = make_generator(seed)
    for (x,) in batches(images, batch_size=batch_size, seed=generator):
        yield (binarize(x, seed=generator),)


@dataclass
class FitResult:
    """What :func:`fit` returns: steps taken, seconds spent, loss per step, and the EMA model if any."""

    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    ema: nn.Module | None = None


class LearningCurve:
    """A :func:`fit` callback that records a test metric against *training* time.

    Each call measures ``measure(model)`` and appends ``(seconds, step, value)``,
    where ``seconds`` counts training only: the time spent inside earlier calls is
    left out, as :func:`fit` leaves it out of its budget. The clock starts when the
    curve is made, so make it just before calling :func:`fit`. ``name`` labels the
    printed progress line (e.g. ``"test NLL (first 1000) [nats]"``).
    """

    def __init__(self, measure: Callable[[nn.Module], float], name: str):
        self.measure, self.name = measure, name
        self.points: list[tuple[float, int, float]] = []
        self._training_seconds, self._resumed = 0.0, time.perf_counter()

    def __call__(self, step: int, model: nn.Module) -> None:
        self._training_seconds += time.perf_counter() - self._resumed
        value = float(self.measure(model))
        self.points.append((round(self._training_seconds, 1), step, round(value, 2)))
        print(f"step {step}: {self._training_seconds:.0f} s of training, {self.name} {value:.2f}", flush=True)
        self._resumed = time.perf_counter()

    def first_time_below(self, threshold: float) -> float | None:
        """Training seconds at the first point whose value is ``<= threshold`` (None if never)."""
        return next((seconds for seconds, _, value in self.points if value <= threshold), None)


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """``torch.save(state)`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors only; no code is unpickled)."""
    return torch.load(path, map_location=map_location, weights_only=True)


class Budget:
    """A training budget: iterate over it for the step numbers ``0, 1, 2, ...`` until ``steps`` or
    ``seconds`` runs out, whichever comes first (at least one must be given), with a tqdm bar.

    ``log(name=value, ...)`` after a step shows the running means of the last 20 values on the bar;
    time spent inside ``with budget.paused():`` (drawing samples for a figure, an evaluation) does
    not count against ``seconds``. A resumed run passes what it had done, ``done_steps`` and
    ``done_seconds``, and continues from there. ``fraction_done()`` (in [0, 1]) drives a schedule.
    """

    def __init__(
        self, steps: int | None = None, seconds: float | None = None, *, progress: bool = True,
        done_steps: int = 0, done_seconds: float = 0.0,
    ):
        if steps is None and seconds is None:
            raise ValueError("give a budget, steps=... and/or seconds=...")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps: expected a positive int, got {steps!r}")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0):
            raise ValueError(f"seconds: expected a positive number, got {seconds!r}")
        self.steps, self.seconds, self.progress = steps, seconds, progress
        self.done = done_steps
        self._done_seconds = done_seconds
        self._origin: float | None = None  # the clock reading at which `elapsed` was 0
        self._recent: dict[str, deque[float]] = {}

    @property
    def elapsed(self) -> float:
        """Seconds of training so far (paused time left out)."""
        return self._done_seconds if self._origin is None else time.perf_counter() - self._origin

    def fraction_done(self) -> float:
        return max(self.done / self.steps if self.steps else 0.0, self.elapsed / self.seconds if self.seconds else 0.0)

    def __iter__(self) -> Iterator[int]:
        from tqdm.auto import tqdm

        self._origin = time.perf_counter() - self._done_seconds
        with tqdm(total=self.steps, disable=not self.progress, unit="step", dynamic_ncols=True, mininterval=1.0) as bar:
            bar.update(self.done)
            while self.fraction_done() < 1.0:
                yield self.done
                self.done += 1
                bar.update(1)
                if self.done % 20 == 0 and self._recent:
                    bar.set_postfix({k: f"{sum(v) / len(v):.4g}" for k, v in self._recent.items()}, refresh=False)
        self._done_seconds = self.elapsed
        self._origin = None

    def log(self, **values: float) -> None:
        """Record this step's numbers (losses) for the bar's running means."""
        for name, value in values.items():
            self._recent.setdefault(name, deque(maxlen=20)).append(float(value))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside does not count against ``seconds``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._origin is not None:
                self._origin += time.perf_counter() - start


def to_device(batch, device: torch.device):
    """A batch (a tensor, or tuples of them, nested) with every tensor moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    return tuple(to_device(part, device) for part in batch)


def train_steps(
    step: Callable[[tuple], dict[str, float]],
    models: Sequence[nn.Module],
    data: Iterator[tuple],
    budget: Budget,
    *,
    device: str | torch.device | None = None,
    callback: Callable[[int], None] | None = None,
    callback_at: Container[int] = (),
) -> list[dict[str, float]]:
    """The course's training loop: ``step(batch)`` for every step of ``budget``; returns the history.

    ``step`` takes one batch of ``data`` (moved to ``device``, default :func:`dgm.device.get_device`),
    makes its optimizer steps and returns its numbers (``{"loss": ...}``, or a GAN's ``d_loss``,
    ``g_loss``, ...); the history holds one such dict per step, and the progress bar their running
    means. The ``models`` are moved to ``device`` and trained in train mode, and left in eval mode.
    A non-finite number stops training with a ``FloatingPointError`` that names the step.
    ``callback(n)`` runs when ``n`` steps are done for every ``n`` in ``callback_at`` (0: before the
    first step; a resumed budget counts from its ``done_steps``), with every model in eval mode and
    the budget paused: watching samples or measuring a test loss costs no training time.
    Every loop of the course is this one: :func:`fit` (one model, one loss), the GAN game
    (:func:`dgm.gan.train_gan`), pix2pix and CycleGAN (:mod:`dgm.translation`).
    """
    device = get_device(device)
    for model in models:
        model.to(device).train()
    history: list[dict[str, float]] = []

    def maybe_callback(done: int) -> None:
        if callback is not None and done in callback_at:
            with budget.paused(), ExitStack() as modes:
                for model in models:
                    modes.enter_context(evaluating(model))
                callback(done)

    maybe_callback(budget.done)
    for index in budget:
        stats = step(to_device(next(data), device))
        if not all(math.isfinite(value) for value in stats.values()):
            raise FloatingPointError(f"a loss became non-finite at step {index}: {stats}")
        history.append(stats)
        budget.log(**stats)
        maybe_callback(index + 1)
    for model in models:
        model.eval()
    return history


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    data: Iterator[tuple[torch.Tensor, ...]],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    lr: float = 1e-3,
    warmup: int = 0,
    decay: bool = True,
    ema_decay: float | None = None,
    grad_clip: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: str | torch.device | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    progress: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
    callback_every: int = 0,
) -> FitResult:
    """Train ``model`` on ``data`` until ``steps`` or ``seconds`` runs out (at least one must be given).

    ``loss_fn(model, batch)`` returns a scalar loss; batches are moved to the
    model's device. Adam with ``lr``, a linear warm-up over ``warmup`` steps and,
    with ``decay``, cosine decay to 0 over the budget (the fraction of steps or
    of seconds used, whichever is larger). With ``checkpoint``, the model,
    optimizer, EMA and history are saved every ``checkpoint_every`` seconds and
    at the end, and a run that finds the file resumes from it.
    With ``ema_decay`` an exponential moving average of the weights is kept, with the
    decay warmed up as ``min(ema_decay, (1 + n) / (10 + n))`` after ``n`` steps, so that
    the average is not dominated by the initial weights early in a run.
    ``callback(step, model)`` runs every ``callback_every`` steps (e.g. to evaluate
    or log samples; it gets the EMA model when there is one); its time does not
    count against the ``seconds`` budget. The loop is :func:`train_steps`.
    """
    budget = Budget(steps, seconds, progress=progress)  # checks the budget before any work
    device = get_device(device)
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if ema_decay else None
    result = FitResult(steps=0, seconds=0.0, ema=ema)
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        result.steps, result.seconds, result.losses = int(state["step"]), float(state["seconds"]), state["losses"]
        budget = Budget(steps, seconds, progress=progress, done_steps=result.steps, done_seconds=result.seconds)

    def save() -> None:
        if checkpoint is not None:
            extra = {"ema": ema.state_dict()} if ema is not None else {}
            save_checkpoint(
                checkpoint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                step=result.steps, seconds=result.seconds, losses=result.losses, **extra,
            )

    last_save = time.perf_counter()

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        nonlocal last_save
        scale = min(1.0, (result.steps + 1) / warmup) if warmup else 1.0
        if decay:
            scale *= 0.5 * (1.0 + math.cos(math.pi * budget.fraction_done()))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            save()
            raise FloatingPointError(f"fit: the loss became {loss.item()} at step {result.steps}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if ema is not None:
            # warm-up: early on, average over the steps taken so far rather than over 1 / (1 - ema_decay)
            decay_now = min(ema_decay, (1 + result.steps) / (10 + result.steps))
            with torch.no_grad():
                for averaged, current in zip(ema.parameters(), model.parameters()):
                    averaged.lerp_(current, 1.0 - decay_now)
                for averaged, current in zip(ema.buffers(), model.buffers()):
                    averaged.copy_(current)
        result.steps += 1
        result.seconds = budget.elapsed
        result.losses.append(loss.item())
        if time.perf_counter() - last_save > checkpoint_every:
            save()
            last_save = time.perf_counter()
        return {"loss": result.losses[-1]}

    def watch(done: int) -> None:
        callback(done, ema if ema is not None else model)

    train_steps(step, [model], data, budget, device=device, callback=watch if callback else None,
                callback_at=range(callback_every, 2**62, callback_every) if callback_every else ())
    save()
    return result
