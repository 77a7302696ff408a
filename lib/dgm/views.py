"""Views: orthogonal transforms of images, the building blocks of diffusion illusions.

A view ``v`` acts on a batch ``(B, C, H, W)`` by ``view`` and is undone by ``inverse``. Most are
permutations of the pixels (flips, rotations by right angles, a skew, jigsaw patches, an inner
circle, a square hinge); :class:`Negate` flips the sign. Those are orthogonal, ``A^T A = I``,
which is what :mod:`dgm.illusions` needs: ``A eps`` is again standard normal noise. A few views
that are **not** orthogonal (:class:`Blur`, :class:`Rescale`, :class:`BilinearRotate`) are here to
show what goes wrong without that property. :data:`VIEWS` and :func:`make_view` name them all;
:func:`view_matrix`, :func:`is_orthogonal`, :func:`is_permutation` and :func:`noise_statistics`
check a view the way the lecture does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

from dgm.blocks import gaussian_kernel
from dgm.checks import diffusion_images
from dgm.device import make_generator

__all__ = [
    "View",
    "PermutationView",
    "Identity",
    "Flip",
    "Mirror",
    "Rotate",
    "Skew",
    "PatchPermutation",
    "Jigsaw",
    "InnerCircle",
    "SquareHinge",
    "Negate",
    "Blur",
    "Rescale",
    "BilinearRotate",
    "VIEWS",
    "make_view",
    "view_matrix",
    "is_orthogonal",
    "is_permutation",
    "noise_statistics",
]


# --- views -------------------------------------------------------------------------------------


class View:
    """A transform of images ``(B, C, H, W)`` with its inverse: ``inverse(view(x)) == x``.

    ``orthogonal`` says whether the transform is an orthogonal linear map (so it keeps
    i.i.d. Gaussian noise i.i.d. Gaussian); the failure views set it to False.
    """

    name = "view"
    orthogonal = True

    def view(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _square(x: torch.Tensor, name: str) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name}: expected square images (H == W), got {tuple(x.shape)}")


class PermutationView(View):
    """A view that moves pixels: ``view(x)[..., i] = x[..., perm[i]]`` over the flattened ``H * W``.

    Subclasses define :meth:`rearrange`, which moves the entries of an ``(H, W)`` grid; the
    permutation is read off by rearranging the grid of pixel indices, cached per size.
    """

    def __init__(self):
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def rearrange(self, grid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def permutation(self, height: int, width: int) -> torch.Tensor:
        """The index map ``perm`` ``(H * W,)``: output pixel ``i`` is input pixel ``perm[i]``."""
        if (height, width) not in self._cache:
            perm = self.rearrange(torch.arange(height * width).view(height, width)).reshape(-1)
            if not torch.equal(perm.sort().values, torch.arange(height * width)):
                raise ValueError(f"{self!r}: rearrange() did not produce a permutation for {height}x{width} images")
            self._cache[(height, width)] = (perm, torch.argsort(perm))
        return self._cache[(height, width)][0]

    def _move(self, x: torch.Tensor, inverse: bool) -> torch.Tensor:
        diffusion_images(x, "x")
        self.permutation(*x.shape[-2:])
        index = self._cache[tuple(x.shape[-2:])][1 if inverse else 0].to(x.device)
        return x.flatten(-2)[..., index].view_as(x)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return self._move(x, inverse=False)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return self._move(x, inverse=True)


class Identity(PermutationView):
    """The image as it is."""

    name = "identity"

    def rearrange(self, grid):
        return grid


class Flip(PermutationView):
    """Upside down: rows in reverse order (a reflection, not a rotation)."""

    name = "flip"

    def rearrange(self, grid):
        return grid.flip(0)


class Mirror(PermutationView):
    """Left-right mirror image: columns in reverse order."""

    name = "mirror"

    def rearrange(self, grid):
        return grid.flip(1)


class Rotate(PermutationView):
    """An exact rotation by ``quarter_turns * 90`` degrees counter-clockwise (square images)."""

    def __init__(self, quarter_turns: int = 1):
        super().__init__()
        if quarter_turns not in (1, 2, 3):
            raise ValueError(f"quarter_turns: expected 1, 2 or 3 (90, 180, 270 degrees), got {quarter_turns!r}")
        self.quarter_turns = quarter_turns
        self.name = f"rot{90 * quarter_turns}"

    def rearrange(self, grid):
        _square(grid, self.name)
        return torch.rot90(grid, self.quarter_turns, dims=(0, 1))

    def __repr__(self):
        return f"Rotate({self.quarter_turns})"


class Skew(PermutationView):
    """Column ``j`` shifted down circularly by ``round(factor * (j - W / 2))`` pixels (a shear that wraps)."""

    name = "skew"

    def __init__(self, factor: float = 0.5):
        super().__init__()
        self.factor = factor

    def rearrange(self, grid):
        height, width = grid.shape
        shifts = [round(self.factor * (j - width / 2)) for j in range(width)]
        return torch.stack([grid[:, j].roll(shifts[j]) for j in range(width)], 1)

    def __repr__(self):
        return f"Skew({self.factor})"


def _tiles(grid: torch.Tensor, size: int, name: str) -> torch.Tensor:
    """An ``(H, W)`` grid as ``(rows, cols, size, size)`` tiles."""
    height, width = grid.shape
    if height % size or width % size:
        raise ValueError(f"{name}: the image ({height}x{width}) must split into {size}x{size} tiles")
    return grid.view(height // size, size, width // size, size).permute(0, 2, 1, 3)


def _untile(tiles: torch.Tensor) -> torch.Tensor:
    rows, cols, size, _ = tiles.shape
    return tiles.permute(0, 2, 1, 3).reshape(rows * size, cols * size)


class PatchPermutation(PermutationView):
    """The image cut into ``patch x patch`` tiles, shuffled by a seeded permutation."""

    name = "patch_permutation"

    def __init__(self, patch: int = 7, seed: int = 0):
        super().__init__()
        self.patch, self.seed = patch, seed

    def _order(self, count: int) -> torch.Tensor:
        return torch.randperm(count, generator=make_generator(self.seed))

    def rearrange(self, grid):
        tiles = _tiles(grid, self.patch, self.name)
        rows, cols = tiles.shape[:2]
        return _untile(tiles.reshape(rows * cols, self.patch, self.patch)[self._order(rows * cols)].view_as(tiles))

    def __repr__(self):
        return f"{type(self).__name__}(patch={self.patch}, seed={self.seed})"


class Jigsaw(PatchPermutation):
    """Square pieces shuffled *and* each turned by a seeded multiple of 90 degrees, like a puzzle."""

    name = "jigsaw"

    def rearrange(self, grid):
        tiles = _tiles(grid, self.patch, self.name)
        rows, cols = tiles.shape[:2]
        generator = make_generator(self.seed)
        order = torch.randperm(rows * cols, generator=generator)
        turns = torch.randint(0, 4, (rows * cols,), generator=generator)
        pieces = tiles.reshape(rows * cols, self.patch, self.patch)[order]
        turned = torch.stack([torch.rot90(piece, int(k), dims=(0, 1)) for piece, k in zip(pieces, turns)])
        return _untile(turned.view_as(tiles))


class InnerCircle(PermutationView):
    """The disc of radius ``radius * H / 2`` around the centre turned by 180 degrees; the ring stays.

    The centre of an even-sized image lies between pixels, so the turn maps the disc onto itself
    exactly, and doing it twice is the identity (an involution).
    """

    name = "inner_circle"

    def __init__(self, radius: float = 0.6):
        super().__init__()
        self.radius = radius

    def rearrange(self, grid):
        _square(grid, self.name)
        size = grid.shape[0]
        centre = (size - 1) / 2
        i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        inside = (i - centre) ** 2 + (j - centre) ** 2 <= (self.radius * size / 2) ** 2
        return torch.where(inside, grid.flip(0, 1), grid)

    def __repr__(self):
        return f"InnerCircle({self.radius})"


class SquareHinge(PermutationView):
    """Four square pieces (the quadrants), each turned a quarter about its own centre, the
    pieces on one diagonal clockwise and the others counter-clockwise, like hinged squares swinging."""

    name = "square_hinge"

    def rearrange(self, grid):
        _square(grid, self.name)
        if grid.shape[0] % 2:
            raise ValueError(f"{self.name}: expected an even image size, got {grid.shape[0]}")
        tiles = _tiles(grid, grid.shape[0] // 2, self.name).clone()
        for r in range(2):
            for c in range(2):
                tiles[r, c] = torch.rot90(tiles[r, c], 1 if r == c else -1, dims=(0, 1))
        return _untile(tiles)


class Negate(View):
    """The negative ``-x`` (on [-1, 1], black and white swap): orthogonal, but not a permutation."""

    name = "negate"

    def view(self, x):
        return -diffusion_images(x, "x")

    def inverse(self, x):
        return -diffusion_images(x, "x")


# --- views that are not orthogonal: they show why orthogonality matters -----------------------


class Blur(View):
    """A circular Gaussian blur, undone by division in the Fourier domain: invertible, not orthogonal
    (it shrinks the noise's variance and correlates neighbouring pixels)."""

    name = "blur"
    orthogonal = False

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma

    def _transfer(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        kernel = gaussian_kernel(self.sigma, torch.float64)
        row = torch.zeros(height, dtype=torch.float64)
        col = torch.zeros(width, dtype=torch.float64)
        for k, value in enumerate(kernel):
            offset = k - len(kernel) // 2
            row[offset % height] += value
            col[offset % width] += value
        return (torch.fft.fft(row)[:, None] * torch.fft.fft(col)[None, :]).to(x.device)

    def _filter(self, x: torch.Tensor, invert: bool) -> torch.Tensor:
        diffusion_images(x, "x")
        transfer = self._transfer(x)
        spectrum = torch.fft.fft2(x.double())
        spectrum = spectrum / transfer if invert else spectrum * transfer
        return torch.fft.ifft2(spectrum).real.to(x.dtype)

    def view(self, x):
        return self._filter(x, invert=False)

    def inverse(self, x):
        return self._filter(x, invert=True)

    def __repr__(self):
        return f"Blur({self.sigma})"


class Rescale(View):
    """Down to ``size`` x ``size`` pixels (area averages) and back up (``mode`` ``"nearest"``: each
    average repeated; ``"bilinear"``: smooth, what a viewer far away sees of a hybrid image). A
    projection, so not even invertible; the default is half resolution for a 28 x 28 image."""

    name = "rescale"
    orthogonal = False

    def __init__(self, size: int = 14, mode: str = "nearest"):
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"mode: expected 'nearest' or 'bilinear', got {mode!r}")
        self.size, self.mode = size, mode

    def view(self, x):
        x = diffusion_images(x, "x")
        small = F.interpolate(x, size=self.size, mode="area")
        return F.interpolate(small, size=x.shape[-2:], mode=self.mode, **({"align_corners": False} if self.mode == "bilinear" else {}))

    def inverse(self, x):
        return self.view(x)

    def __repr__(self):
        return f"Rescale({self.size}, {self.mode!r})"


class BilinearRotate(View):
    """A rotation by ``degrees`` with bilinear interpolation and zero padding; the inverse turns back.
    Interpolation averages neighbours and the corners fall off: not orthogonal."""

    name = "rotate_bilinear"
    orthogonal = False

    def __init__(self, degrees: float = 45.0):
        self.degrees = degrees

    def _turn(self, x: torch.Tensor, degrees: float) -> torch.Tensor:
        diffusion_images(x, "x")
        angle = math.radians(degrees)
        matrix = torch.tensor(
            [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]], dtype=x.dtype
        )
        grid = F.affine_grid(matrix.expand(len(x), 2, 3).to(x.device), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def view(self, x):
        return self._turn(x, self.degrees)

    def inverse(self, x):
        return self._turn(x, -self.degrees)

    def __repr__(self):
        return f"BilinearRotate({self.degrees})"


VIEWS: dict[str, Callable[..., View]] = {
    "identity": Identity,
    "flip": Flip,
    "mirror": Mirror,
    "rot90": lambda: Rotate(1),
    "rot180": lambda: Rotate(2),
    "rot270": lambda: Rotate(3),
    "negate": Negate,
    "skew": Skew,
    "patch_permutation": PatchPermutation,
    "jigsaw": Jigsaw,
    "inner_circle": InnerCircle,
    "square_hinge": SquareHinge,
    "blur": Blur,
    "rescale": Rescale,
    "rotate_bilinear": BilinearRotate,
}
"""Every view by name; ``blur``, ``rescale`` and ``rotate_bilinear`` are the failure views."""


def make_view(name: str, **options) -> View:
    """The view called ``name`` (a key of :data:`VIEWS`), built with ``options`` (e.g. ``seed=3``)."""
    if name not in VIEWS:
        raise ValueError(f"view: expected one of {', '.join(VIEWS)}, got {name!r}")
    return VIEWS[name](**options)


# --- checking views ----------------------------------------------------------------------------


def view_matrix(view: View, shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """The matrix ``A`` ``(D, D)``, ``D = C * H * W``, of a linear view: ``view(x).flatten() = A @ x.flatten()``.

    Built column by column from the view of every basis image (float64).
    """
    size = math.prod(shape)
    basis = torch.eye(size, dtype=torch.float64).view(size, *shape)
    return view.view(basis).reshape(size, size).T


def is_orthogonal(view: View, shape: tuple[int, int, int] = (1, 28, 28), atol: float = 1e-6) -> bool:
    """Whether the view's matrix ``A`` satisfies ``A A^T = I`` (so it maps N(0, I) to N(0, I))."""
    matrix = view_matrix(view, shape)
    return bool(torch.allclose(matrix @ matrix.T, torch.eye(len(matrix), dtype=torch.float64), atol=atol))


def is_permutation(view: View, shape: tuple[int, int, int] = (1, 28, 28)) -> bool:
    """Whether the view only moves pixels: its matrix has a single 1 in every row and column, else 0."""
    matrix = view_matrix(view, shape)
    ones = matrix == 1
    return bool(((matrix == 0) | ones).all() and (ones.sum(0) == 1).all() and (ones.sum(1) == 1).all())


def noise_statistics(view: View, n: int = 2000, shape: tuple[int, int, int] = (1, 28, 28), seed: int = 0) -> dict:
    """Mean, variance and horizontal neighbour correlation of ``view(z)`` over ``n`` draws of ``z ~ N(0, I)``.

    For an orthogonal view they are 0, 1 and 0, up to sampling error of about ``1 / sqrt(n * D)``.
    """
    z = torch.randn(n, *shape, generator=make_generator(seed), dtype=torch.float64)
    seen = view.view(z)
    left, right = seen[..., :-1].reshape(-1), seen[..., 1:].reshape(-1)
    correlation = ((left - left.mean()) * (right - right.mean())).mean() / (left.std() * right.std())
    return {"mean": seen.mean().item(), "variance": seen.var().item(), "neighbour_correlation": correlation.item()}
