"""Choosing a device and seeding random number generators.

Every model in the course runs on the CPU by default and on a GPU when there is
one, without a change to the code. The rule, in order:

1. ``DGM_DEVICE`` if it is set (``cpu``, ``cuda``, ``cuda:1``, ``mps``);
2. CUDA if available;
3. Apple's MPS if available;
4. the CPU.

Nothing else in the library hard-codes a device: functions take ``device=None``
and call :func:`get_device`.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "make_generator"]


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


def make_generator(seed: int | torch.Generator | None = None, device: str | torch.device = "cpu") -> torch.Generator:
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
