"""Pictures for the notebooks: image grids and sample strips.

Images follow the library's convention: float tensors (or arrays) shaped
``(B, C, H, W)`` with values in ``[0, 1]`` (use :func:`to_unit` first for models
that work in ``[-1, 1]``). ``C`` is 1 (grayscale) or 3 (RGB).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_unit", "image_grid", "show_images"]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map images from [-1, 1] (GAN / diffusion convention) to [0, 1], clamping outliers."""
    return ((images + 1) / 2).clamp(0, 1)


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``(B, C, H, W)`` images in [0, 1] into one array, ``nrow`` images per row.

    Returns ``(rows*(H+pad)-pad, nrow*(W+pad)-pad)`` for grayscale or the same with
    a trailing 3 for RGB; unused cells of the last row are ``pad_value``.
    """
    array = images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    if array.ndim == 3:  # (B, H, W): grayscale without a channel axis
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"images: expected shape (B, 1 or 3, H, W), got {tuple(array.shape)}")
    if not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow: expected a positive int, got {nrow!r}")
    count, channels, height, width = array.shape
    ncol = min(nrow, max(count, 1))
    rows = max(1, -(-count // ncol))
    grid = np.full((channels, rows * (height + pad) - pad, ncol * (width + pad) - pad), pad_value, dtype=np.float32)
    for index in range(count):
        r, c = divmod(index, ncol)
        top, left = r * (height + pad), c * (width + pad)
        grid[:, top : top + height, left : left + width] = array[index]
    return grid[0] if channels == 1 else grid.transpose(1, 2, 0)


def show_images(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    title: str | None = None,
    ax=None,
    scale: float = 0.6,
):
    """Show ``(B, C, H, W)`` images in [0, 1] as a grid on ``ax`` (a new figure if None); return the axes."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, nrow=nrow)
    if ax is None:
        height, width = grid.shape[:2]
        size = max(height, width)
        _, ax = plt.subplots(figsize=(max(2.0, scale * 10 * width / size), max(2.0, scale * 10 * height / size)))
    ax.imshow(np.clip(grid, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
