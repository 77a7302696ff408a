"""Where a model runs: choosing a device, finding a model's device and mode, and seeding.

Every model in the course runs on the CPU by default and on a GPU when there is
one, without a change to the code. The rule, in order:

1. ``DGM_DEVICE`` if it is set (``cpu``, ``cuda``, ``cuda:1``, ``mps``);
2. CUDA if available;
3. Apple's MPS if available;
4. the CPU.

Nothing else in the library hard-codes a device: functions take ``device=None``
and call :func:`get_device`, or follow the model they are given (:func:`module_device`).
Functions that use a model for inference run it under :func:`evaluating`, which puts it in
eval mode (dropout off, BatchNorm on its running statistics) and restores its mode afterwards.
Randomness comes in as a :data:`Seed` and becomes a generator with :func:`make_generator`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

__all__ = ["Seed", "get_device", "module_device", "evaluating", "seed_everything", "make_generator"]

Seed = int | torch.Generator | None
"""An int (repeatable), a ``torch.Generator`` to draw from, or ``None`` (fresh entropy)."""


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a ``torch.device``, or pick one by the rule above.

    Raises ``ValueError`` when ``DGM_DEVICE`` (or ``device``) names a device
    that this machine does not have, rather than failing later inside a model.
    """
    if device is None:
        device = os.environ.get("DGM_DEVICE") or None
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from err
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for (DGM_DEVICE or argument) but CUDA is not available")
    if chosen.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device: {device!r} was asked for (DGM_DEVICE or argument) but MPS is not available")
    return chosen


def module_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (of its buffers if it has none; the CPU if neither)."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode, then restore the mode it had (even on an error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators; return a seeded CPU generator.

    A seeded run on the CPU repeats exactly. (On a GPU some kernels are not
    deterministic; results then agree only statistically.)
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: Seed = None, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed; a generator passes through unchanged.

    ``None`` gives a generator seeded from fresh entropy (a non-repeatable run).
    """
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    elif isinstance(seed, int) and not isinstance(seed, bool):
        generator.manual_seed(seed)
    else:
        raise TypeError(f"seed: expected an int, a torch.Generator or None, got {type(seed).__name__}")
    return generator
