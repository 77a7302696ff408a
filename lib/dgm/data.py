"""Data sets as tensors, offline first.

Every loader returns float32 tensors with a documented shape and range:

- images: ``(N, 1, H, W)`` in ``[0, 1]``; labels: ``(N,)`` int64;
- points: ``(N, 2)``.

Sources:

- :func:`digits` -- scikit-learn's 8x8 handwritten digits (1,797 images). They ship
  with scikit-learn, so they work on any machine: the embedded default.
- :func:`mnist` -- MNIST (28x28), read from the original IDX gzip files. The files
  are looked for in ``$DGM_DATA/mnist/`` (``DGM_DATA`` defaults to ``data/cache``
  in the repository, or ``~/.cache/dgm`` for an installed package); a missing file
  is downloaded into that folder when the machine has internet, every file is
  verified by SHA-256, and a download is written to a temporary name and renamed
  only once complete, so a partial file is never left behind. With neither the
  files nor internet, the error says exactly which files to put where.
  ``mnist(..., fallback=True)`` instead returns sklearn's digits resized to 28x28,
  after a loud warning, so an image notebook still runs end to end.
- :func:`toy_2d` -- small 2-D point clouds (ring, grid, moons, spiral, blobs).
- :func:`edges`, :func:`degrade`, :func:`unpaired_domains` -- image-to-image tasks made from
  digits (for :mod:`dgm.translation`): outlines, damaged copies, thin and thick digits.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from dgm.blocks import gaussian_kernel
from dgm.checks import non_negative, positive_int, unit_images
from dgm.device import Seed, make_generator

__all__ = [
    "edges",
    "degrade",
    "to_domain_b",
    "unpaired_domains",
    "data_dir",
    "shipped",
    "digits",
    "mnist",
    "fetch",
    "sha256_of",
    "read_idx",
    "binarize",
    "binarized_mnist",
    "TEST_BINARIZATION_SEED",
    "subset",
    "toy_2d",
    "ring_of_gaussians",
    "TOY_2D",
    "MissingDataError",
    "MNIST_FILES",
]

# name -> SHA-256 of the original gzip file (identical to the files torchvision downloads).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MNIST_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


SHIPPED = ("checkpoints", "corpus")


class MissingDataError(FileNotFoundError):
    """A data file is neither in the cache nor downloadable."""


def data_dir() -> Path:
    """The data cache: ``$DGM_DATA`` if set, else ``<repo>/data/cache`` or ``~/.cache/dgm``."""
    if os.environ.get("DGM_DATA"):
        return Path(os.environ["DGM_DATA"]).expanduser()
    repo_data = Path(__file__).resolve().parents[2] / "data"
    if (repo_data / "README.md").exists():
        return repo_data / "cache"
    return Path.home() / ".cache" / "dgm"


def shipped(name: str) -> Path:
    """A folder of data the course ships with the code: ``"checkpoints"`` or ``"corpus"``.

    An installed wheel carries them inside the package, as ``dgm/shipped/<name>`` (see
    ``pyproject.toml``); in a checkout (the editable install) they are ``<repo>/data/<name>``.
    """
    if name not in SHIPPED:
        raise ValueError(f"name must be one of {SHIPPED}, got {name!r}")
    inside = Path(__file__).resolve().parent / "shipped"
    return (inside if inside.is_dir() else Path(__file__).resolve().parents[2] / "data") / name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` to ``target`` atomically; raise ``ValueError`` on a checksum mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            while block := response.read(1 << 20):
                out.write(block)
        got = sha256_of(Path(tmp_name))
        if got != sha256:
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def fetch(name: str, folder: Path, sha256: str, mirrors: tuple[str, ...], download: bool = True) -> Path:
    """Return ``folder/name`` verified by SHA-256, downloading it from ``mirrors`` if missing.

    A present file with the wrong checksum is an error (it is never silently replaced).
    ``DGM_OFFLINE=1`` in the environment turns downloading off everywhere (to try the offline path).
    """
    download = download and os.environ.get("DGM_OFFLINE") != "1"
    path = folder / name
    if path.exists():
        got = sha256_of(path)
        if got != sha256:
            raise ValueError(
                f"{path} has the wrong checksum (sha256 {got}, expected {sha256}); "
                "the file is corrupt or not the original: delete it and try again"
            )
        return path
    errors = []
    if download:
        for mirror in mirrors:
            try:
                _download(mirror + name, path, sha256)
                return path
            except (urllib.error.URLError, OSError, ValueError) as err:
                errors.append(f"{mirror}{name}: {err}")
    raise MissingDataError(
        f"{name} is not in {folder} and could not be downloaded"
        + (f" ({'; '.join(errors)})" if errors else " (downloads disabled)")
        + f".\nPut the original file there, or point DGM_DATA at a folder whose mnist/ subfolder holds it. "
        f"Expected files in {folder}: {', '.join(MNIST_FILES)}."
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a NumPy array of its stored dtype and shape.

    IDX header: two zero bytes, a type code (0x08 = uint8, ...), the number of
    dimensions, then each dimension as a big-endian uint32, then the data.
    """
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(f"{path}: header promises {expected} bytes of data for shape {shape}, file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def digits(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits: images ``(1797, 1, size, size)`` in [0, 1], labels ``(1797,)``.

    ``size=8`` is the original resolution; any other size is bilinear resampling
    (``size=28`` gives MNIST-shaped images, the offline fallback for MNIST).
    """
    from sklearn.datasets import load_digits

    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size: expected an int >= 2, got {size!r}")
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        # Pad by one pixel first so the strokes do not touch the border, like MNIST's.
        images = torch.nn.functional.pad(images, (1, 1, 1, 1))
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        images = images.clamp(0.0, 1.0)
    return images, torch.tensor(bunch.target, dtype=torch.int64)


_FALLBACK_WARNED: list[bool] = []  # the fallback warns once per process, not once per split


def mnist_available(download: bool = True) -> bool:
    """Whether :func:`mnist` serves real MNIST here (fetching the files first when ``download``);
    notebooks skip the comparisons that need MNIST when it does not."""
    try:
        for split in _MNIST_SPLITS:
            _mnist_paths(split, download)
    except MissingDataError:
        return False
    return True


def _mnist_paths(split: str, download: bool) -> list:
    """The images and labels files of ``split`` (fetched when ``download``); :class:`MissingDataError` if absent."""
    return [fetch(name, data_dir() / "mnist", MNIST_FILES[name], MNIST_MIRRORS, download) for name in _MNIST_SPLITS[split]]


def mnist(
    split: str = "train", download: bool = True, fallback: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images ``(N, 1, 28, 28)`` float32 in [0, 1] and labels ``(N,)`` int64.

    ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000). With ``fallback=True``,
    a machine without the files or internet gets sklearn's digits at 28x28 instead
    (1,797 images; the same for both splits), with one warning per process.
    """
    if split not in _MNIST_SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    try:
        paths = _mnist_paths(split, download)
    except MissingDataError as err:
        if not fallback:
            raise
        if not _FALLBACK_WARNED:
            warnings.warn(
                "MNIST IS NOT AVAILABLE: every split is sklearn's 8x8 digits resized to 28x28 "
                "(1,797 images; models trained on MNIST and numbers measured on it do not apply). "
                f"Reason: {err}",
                stacklevel=2,
            )
            _FALLBACK_WARNED.append(True)
        return digits(size=28)
    images = torch.from_numpy(read_idx(paths[0]).copy()).unsqueeze(1).float() / 255.0
    labels = torch.from_numpy(read_idx(paths[1]).astype(np.int64))
    return images, labels


def binarize(images: torch.Tensor, seed: Seed = None) -> torch.Tensor:
    """Binarize images in [0, 1]: stochastically (x ~ Bernoulli(pixel)) with a seed, else at 0.5."""
    if not torch.is_tensor(images) or not images.is_floating_point():
        raise TypeError(f"images: expected a float tensor in [0, 1], got {type(images).__name__}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"images: expected values in [0, 1], got [{images.min():.3g}, {images.max():.3g}]")
    if seed is None:
        return (images > 0.5).to(images.dtype)
    generator = make_generator(seed)
    return torch.bernoulli(images.cpu(), generator=generator).to(images.device)


TEST_BINARIZATION_SEED = 1234
"""The seed of the one binarization of MNIST test that the course reports every likelihood on."""


def binarized_mnist(
    split: str = "train", seed: int = 0, fallback: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST binarized once, stochastically: ``x ~ Bernoulli(pixel)`` with ``seed``.

    Images ``(N, 1, 28, 28)`` float32 in {0, 1}, labels ``(N,)``. Training code
    usually binarizes afresh every batch instead ("dynamic binarization"); the
    course reports test likelihoods on ``binarized_mnist("test", seed=TEST_BINARIZATION_SEED)``.
    """
    images, labels = mnist(split, fallback=fallback)
    return binarize(images, seed=seed), labels


def subset(*tensors: torch.Tensor, n: int, seed: Seed = 0) -> tuple[torch.Tensor, ...]:
    """The same ``n`` random rows of each tensor (e.g. a small training set for fast mode)."""
    if not tensors:
        raise ValueError("subset: give at least one tensor")
    length = len(tensors[0])
    if any(len(t) != length for t in tensors):
        raise ValueError(f"subset: tensors have different lengths {[len(t) for t in tensors]}")
    if not isinstance(n, int) or not 1 <= n <= length:
        raise ValueError(f"n: expected an int in [1, {length}], got {n!r}")
    index = torch.randperm(length, generator=make_generator(seed))[:n]
    return tuple(t[index] for t in tensors)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: Seed = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points ``(n, 2)`` from an equal mixture of ``modes`` Gaussians ``N(c_k, std^2 I)``, and the centres.

    The centres ``c_k = radius (cos 2 pi k / modes, sin 2 pi k / modes)``, ``(modes, 2)``, are returned
    because counting which modes a model covers needs them (:func:`dgm.gan.count_modes`).
    ``toy_2d("ring")`` is this mixture with the defaults and ``std = 0.1``.
    """
    for name, value in (("n", n), ("modes", modes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    for name, value in (("radius", radius), ("std", std)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name}: expected a positive number, got {value!r}")
    generator = make_generator(seed)
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    centres = (radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)).float()
    which = torch.randint(0, modes, (n,), generator=generator)
    return centres[which] + std * torch.randn(n, 2, generator=generator), centres


def _ring(n: int, g: torch.Generator) -> torch.Tensor:
    return ring_of_gaussians(n, std=0.1, seed=g)[0]


def _grid(n: int, g: torch.Generator) -> torch.Tensor:
    axis = torch.linspace(-2, 2, 5)
    centres = torch.cartesian_prod(axis, axis)
    return centres[torch.randint(0, 25, (n,), generator=g)] + 0.05 * torch.randn(n, 2, generator=g)


def _moons(n: int, g: torch.Generator) -> torch.Tensor:
    upper = torch.rand(n, generator=g) < 0.5
    angle = torch.rand(n, generator=g) * math.pi
    x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    return torch.stack([x, y], 1) + 0.08 * torch.randn(n, 2, generator=g)


def _spiral(n: int, g: torch.Generator) -> torch.Tensor:
    r = torch.sqrt(torch.rand(n, generator=g)) * 3
    angle = r * 2.5
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) + 0.08 * torch.randn(n, 2, generator=g)


def _blobs(n: int, g: torch.Generator) -> torch.Tensor:
    centres = torch.tensor([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]])
    scales = torch.tensor([0.5, 0.35, 0.6])
    which = torch.randint(0, 3, (n,), generator=g)
    return centres[which] + scales[which, None] * torch.randn(n, 2, generator=g)


TOY_2D = {"ring": _ring, "grid": _grid, "moons": _moons, "spiral": _spiral, "blobs": _blobs}


def toy_2d(name: str, n: int, seed: Seed = 0) -> torch.Tensor:
    """``n`` points ``(n, 2)`` float32 from a named toy distribution.

    ``ring``: 8 Gaussians on a circle of radius 2 (a classic mode-collapse test);
    ``grid``: 25 Gaussians on a 5x5 grid; ``moons``: two interleaved half circles;
    ``spiral``: a noisy spiral; ``blobs``: 3 well-separated Gaussians of different sizes.
    """
    if name not in TOY_2D:
        raise ValueError(f"name: expected one of {sorted(TOY_2D)}, got {name!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    return TOY_2D[name](n, make_generator(seed)).float()


# --- image-to-image tasks made from digits (data in [0, 1]) --------------------------------------

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4


def _per_channel(images: torch.Tensor, operation: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply a one-channel ``(N, 1, H, W)`` operation to every channel of ``(N, C, H, W)`` images."""
    n, c, h, w = images.shape
    return operation(images.reshape(n * c, 1, h, w)).reshape(n, c, h, w)


def edges(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binary edge maps: ``1`` where the Sobel gradient magnitude of ``images`` exceeds ``threshold``.

    ``images`` ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in {0, 1}. The Sobel filters are
    normalised so that a step from 0 to 1 has magnitude 1; with ``threshold=0.5`` only the steep
    flanks of an MNIST stroke survive: a thin outline on both sides of it, with the ink inside
    gone. Deterministic.
    """
    unit_images(images, "images")
    non_negative(threshold, "threshold")
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].to(images)

    def magnitude(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernels, padding=1).square().sum(1, keepdim=True).sqrt()

    return (_per_channel(images, magnitude) > threshold).to(images.dtype)


def degrade(
    images: torch.Tensor, seed: Seed = 0, blur: float = 1.5, occlusion: int = 10, noise: float = 0.1
) -> torch.Tensor:
    """Damaged copies of ``images``: a Gaussian blur, additive noise, and a grey occluding square.

    ``images`` ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in [0, 1]. ``blur`` is the blur's standard
    deviation in pixels (0: none), ``noise`` the Gaussian noise's, and ``occlusion`` the side of a
    square of value 0.5 placed uniformly at random in each image (0: none). Seeded.
    """
    unit_images(images, "images")
    non_negative(blur, "blur")
    non_negative(noise, "noise")
    occlusion = positive_int(occlusion, "occlusion", minimum=0)
    n, _, height, width = images.shape
    if occlusion > min(height, width):
        raise ValueError(f"occlusion: expected a side of at most {min(height, width)} pixels, got {occlusion}")
    generator = make_generator(seed)
    out = images
    if blur:
        kernel = gaussian_kernel(blur).to(images)
        radius = len(kernel) // 2

        def blurred(x: torch.Tensor) -> torch.Tensor:
            x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
            return F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))

        out = _per_channel(out, blurred)
    out = out + noise * torch.randn(out.shape, generator=generator).to(out)
    if occlusion:
        top = torch.randint(height - occlusion + 1, (n, 1, 1), generator=generator).to(images.device)
        left = torch.randint(width - occlusion + 1, (n, 1, 1), generator=generator).to(images.device)
        rows = torch.arange(height, device=images.device)[None, :, None]
        cols = torch.arange(width, device=images.device)[None, None, :]
        inside = (rows >= top) & (rows < top + occlusion) & (cols >= left) & (cols < left + occlusion)
        out = torch.where(inside[:, None], torch.full_like(out, 0.5), out)
    return out.clamp(0, 1)


def to_domain_b(images: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Thick digits: a grey-level dilation, each pixel the maximum over its ``kernel x kernel`` neighbourhood.

    ``images`` ``(N, C, H, W)`` in [0, 1] -> the same shape and range, every pixel at least as bright
    as before; ``kernel`` is odd (3 thickens an MNIST stroke by about two pixels). Deterministic.
    """
    unit_images(images, "images")
    if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel: expected an odd positive int, got {kernel!r}")
    return F.max_pool2d(images, kernel, stride=1, padding=kernel // 2)


def unpaired_domains(images: torch.Tensor, seed: Seed = 0, kernel: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unpaired domains from disjoint random halves of ``images`` ``(N, C, H, W)`` in [0, 1].

    Returns ``(domain_a, domain_b)``, each ``(N // 2, C, H, W)`` in [0, 1]: ``domain_a`` holds one half
    as it is, ``domain_b`` the other half made thick by :func:`to_domain_b`. No image of ``A`` has its
    thick version in ``B``, so there are no pairs to learn from. Seeded.
    """
    unit_images(images, "images")
    if len(images) < 2:
        raise ValueError(f"images: expected at least 2 images to split, got {len(images)}")
    order = torch.randperm(len(images), generator=make_generator(seed)).to(images.device)
    half = len(images) // 2
    return images[order[:half]], to_domain_b(images[order[half : 2 * half]], kernel)
