"""Argument checks shared by the library modules: each raises a ValueError that names the
argument, says what was expected and describes what was given (:func:`describe`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["describe", "positive_int", "same_shape", "non_negative", "float_images", "unit_images", "diffusion_images", "class_labels"]


def describe(x: object) -> str:
    """What ``x`` is, for an error message: a tensor's or NumPy array's dtype and shape, else its type name."""
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a {x.dtype} NumPy array of shape {x.shape}"
    return "None" if x is None else type(x).__name__


def positive_int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an int: a Python or NumPy integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def non_negative(value: object, name: str) -> float:
    """``value``, a finite Python int or float (not a bool) ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


def same_shape(x: object, name: str, reference: torch.Tensor, reference_name: str) -> torch.Tensor:
    """``x``, a tensor of the same shape as the tensor ``reference`` (named ``reference_name``)."""
    if not torch.is_tensor(x) or x.shape != reference.shape:
        raise ValueError(f"{name}: expected the shape of {reference_name} {tuple(reference.shape)}, got {describe(x)}")
    return x


def float_images(x: object, name: str, channels: int | None = None, values: str = "") -> torch.Tensor:
    """``x``, a float tensor ``(B, C, H, W)``, ``C == channels`` if given; ``values`` names their range in messages."""
    if not torch.is_tensor(x) or not x.is_floating_point() or x.ndim != 4 or channels not in (None, x.shape[1]):
        shape = f"(B, {'C' if channels is None else channels}, H, W)"
        scale = f" in {values}" if values else ""
        raise ValueError(f"{name}: expected float images of shape {shape}{scale}, got {describe(x)}")
    return x


def unit_images(x: object, name: str) -> torch.Tensor:
    """``x``, float images ``(B, C, H, W)`` with every value in [0, 1] (data, not a model's [-1, 1])."""
    float_images(x, name, values="[0, 1]")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name}: expected data in [0, 1] (convert from [-1, 1] with (x + 1) / 2), "
            f"got values in [{x.min():.3g}, {x.max():.3g}]"
        )
    return x


def diffusion_images(x: object, name: str) -> torch.Tensor:
    """``x``, float images ``(B, C, H, W)`` on the diffusion models' scale [-1, 1] (the range is not checked)."""
    return float_images(x, name, values="[-1, 1]")


def class_labels(labels: object, batch: int | None = None, num_classes: int | None = None, name: str = "labels") -> torch.Tensor:
    """``labels``, an integer tensor ``(batch,)`` (any length if ``batch`` is None) of classes, each in
    ``[0, num_classes)`` when ``num_classes`` is given. A float, complex or bool tensor is a TypeError."""
    classes = "" if num_classes is None else f" with classes in [0, {num_classes - 1}]"
    expected = f"an integer tensor of shape ({'B' if batch is None else batch},), one label per example{classes}"
    if not torch.is_tensor(labels) or labels.ndim != 1 or (batch is not None and len(labels) != batch):
        raise ValueError(f"{name}: expected {expected}, got {describe(labels)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name}: expected {expected}, got dtype {labels.dtype}")
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: expected {expected}, got values from {labels.min().item()} to {labels.max().item()}")
    return labels
