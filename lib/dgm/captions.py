"""Captions for MNIST digits, made from the label and three measured attributes (assignment 10's data).

Each image gets three attributes, measured on its ink (pixels in [0, 1]) and binned in thirds:

- **thickness**: the total ink, relative to the digit's own class (a 1 has less ink than an 8 drawn
  with the same pen), thin / medium / thick;
- **slant**: the shear of the ink's second moments, ``-mu_rc / mu_rr`` (how many columns the strokes
  move right per row up), left / upright / right;
- **width**: the spread of the ink across columns, ``sqrt(mu_cc)``, relative to the class,
  narrow / medium / wide.

The thirds are fixed on MNIST's training set (:class:`AttributeScale`), so a test digit is "thick"
when it has more ink than two thirds of the training digits of its class.

A caption names the digit (as a word or a numeral) and some of its non-medium attributes, through
templates and synonyms: "a thick 7 leaning right", "the digit two, narrow". Training captions and
held-out captions differ in two ways, so that held-out recall measures generalisation:

- the held-out captions use templates the training captions never use (:data:`HELD_OUT_TEMPLATES`);
- training captions never name the combination :data:`HELD_OUT_COMBINATION` (thick *and* leaning
  left): an image that has both is captioned with one of the two. Held-out captions name every
  attribute an image has, so some of them ask for the unseen combination.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from dgm.checks import describe

__all__ = [
    "ATTRIBUTES", "LEVELS", "HELD_OUT_COMBINATION", "TRAIN_TEMPLATES", "HELD_OUT_TEMPLATES", "DIGIT_WORDS",
    "measure", "AttributeScale", "caption", "Captioned", "captioned_mnist", "Tokenizer", "insert_unknown",
]

ATTRIBUTES = ("thickness", "slant", "width")
LEVELS = {"thickness": ("thin", "medium", "thick"), "slant": ("left", "upright", "right"), "width": ("narrow", "medium", "wide")}
HELD_OUT_COMBINATION = {"thickness": 2, "slant": 0}  # thick and leaning left: never named together in training
DIGIT_WORDS = (("zero", "0"), ("one", "1"), ("two", "2"), ("three", "3"), ("four", "4"),
               ("five", "5"), ("six", "6"), ("seven", "7"), ("eight", "8"), ("nine", "9"))
SYNONYMS = {
    ("thickness", 0): ("thin", "light", "fine"),
    ("thickness", 2): ("thick", "bold", "heavy"),
    ("width", 0): ("narrow", "slim"),
    ("width", 2): ("wide", "broad"),
    ("slant", 0): ("leaning left", "slanted to the left", "tilted left"),
    ("slant", 2): ("leaning right", "slanted to the right", "tilted right"),
}
TRAIN_TEMPLATES = (
    "a {adjectives} {digit} {slant}",
    "the digit {digit} {slant} , {adjectives}",
    "a handwritten {adjectives} {digit} {slant}",
    "{adjectives} {digit} {slant}",
)
HELD_OUT_TEMPLATES = (
    "a picture of a {adjectives} {digit} {slant}",
    "someone wrote a {adjectives} {digit} {slant}",
)


def measure(images: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
    """Raw attributes of images ``(N, 1, H, W)`` in [0, 1]: ``(N, 3)`` float, columns ink (the sum of the
    pixels), slant (``-mu_rc / mu_rr``, positive leaning right) and width (``sqrt(mu_cc)``, in pixels).
    Computed in float64, ``batch_size`` images at a time."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images: expected (N, 1, H, W) in [0, 1], got {describe(images)}")
    return torch.cat([_ink_moments(chunk[:, 0].double()) for chunk in images.split(batch_size)]).float()


def _ink_moments(ink: torch.Tensor) -> torch.Tensor:
    """:func:`measure` for ink ``(N, H, W)`` float64."""
    mass = ink.sum((1, 2)).clamp_min(1e-8)
    rows = torch.arange(ink.shape[1], dtype=torch.float64).view(1, -1, 1)
    cols = torch.arange(ink.shape[2], dtype=torch.float64).view(1, 1, -1)
    row_mean = (ink * rows).sum((1, 2)) / mass
    col_mean = (ink * cols).sum((1, 2)) / mass
    dr, dc = rows - row_mean.view(-1, 1, 1), cols - col_mean.view(-1, 1, 1)
    mu_rr = (ink * dr * dr).sum((1, 2)) / mass
    mu_rc = (ink * dr * dc).sum((1, 2)) / mass
    mu_cc = (ink * dc * dc).sum((1, 2)) / mass
    # rows grow downwards: a stroke leaning right moves left as the row grows, so mu_rc < 0
    slant = -mu_rc / mu_rr.clamp_min(1e-8)
    return torch.stack([mass, slant, mu_cc.sqrt()], 1)


@dataclass
class AttributeScale:
    """Where the thirds of each attribute lie: per class for ink and width, over all digits for slant.

    ``edges`` is ``(10, 3, 2)``: for class ``c`` and attribute ``a`` the 1/3 and 2/3 quantiles.
    """

    edges: torch.Tensor

    @classmethod
    def fit(cls, images: torch.Tensor, labels: torch.Tensor) -> "AttributeScale":
        raw = measure(images)
        quantiles = torch.tensor([1 / 3, 2 / 3])
        slant_edges = torch.quantile(raw[:, 1], quantiles)
        edges = torch.zeros(10, 3, 2)
        for c in range(10):
            mine = raw[labels == c]
            if len(mine) == 0:
                raise ValueError(f"labels: no image of class {c} to fit the thirds on")
            edges[c, 0] = torch.quantile(mine[:, 0], quantiles)
            edges[c, 1] = slant_edges
            edges[c, 2] = torch.quantile(mine[:, 2], quantiles)
        return cls(edges)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Attributes ``(N, 3)`` int64 in {0, 1, 2} (the third each measurement falls in)."""
        raw = measure(images)
        edges = self.edges[labels]  # (N, 3, 2)
        return (raw.unsqueeze(-1) > edges).sum(-1)


def caption(label: int, attributes: torch.Tensor | tuple[int, int, int], rng: random.Random, held_out: bool = False) -> str:
    """One caption of a digit ``label`` with ``attributes`` (thickness, slant, width levels).

    Training captions (``held_out=False``) name each non-medium attribute with probability 0.8 (at
    least one when there is one), never both halves of :data:`HELD_OUT_COMBINATION`, and use
    :data:`TRAIN_TEMPLATES`; held-out captions name every non-medium attribute and use
    :data:`HELD_OUT_TEMPLATES`. ``rng`` makes the choices (synonyms, templates, which to name).
    """
    levels = dict(zip(ATTRIBUTES, (int(a) for a in attributes)))
    present = [name for name in ATTRIBUTES if levels[name] != 1]
    if held_out:
        named = present
    else:
        named = [name for name in present if rng.random() < 0.8] or present[:1]
        if all(levels[name] == level for name, level in HELD_OUT_COMBINATION.items()):
            keep = rng.choice(list(HELD_OUT_COMBINATION))
            named = [name for name in named if name not in HELD_OUT_COMBINATION or name == keep]
    words = {name: rng.choice(SYNONYMS[(name, levels[name])]) for name in named}
    adjectives = " , ".join(words[name] for name in ("thickness", "width") if name in words)
    template = rng.choice(HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES)
    text = template.format(adjectives=adjectives, digit=rng.choice(DIGIT_WORDS[int(label)]), slant=words.get("slant", ""))
    words_out = text.split()
    while words_out and words_out[-1] == ",":
        words_out.pop()
    return " ".join(words_out)


@dataclass
class Captioned:
    """Images ``(N, 1, 28, 28)`` in [0, 1], labels ``(N,)``, attributes ``(N, 3)`` and one caption each."""

    images: torch.Tensor
    labels: torch.Tensor
    attributes: torch.Tensor
    captions: list[str]


def captioned_mnist(split: str = "train", seed: int = 0, fallback: bool = False) -> Captioned:
    """MNIST with captions: ``"train"`` captions with the training templates, ``"test"`` with the held-out
    ones (see the module docstring). The thirds are always fixed on the training split."""
    from dgm.data import mnist

    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    train_images, train_labels = mnist("train", fallback=fallback)
    scale = AttributeScale.fit(train_images, train_labels)
    images, labels = (train_images, train_labels) if split == "train" else mnist("test", fallback=fallback)
    attributes = scale(images, labels)
    rng = random.Random(seed)
    captions = [caption(int(y), a.tolist(), rng, held_out=split == "test") for y, a in zip(labels, attributes)]
    return Captioned(images, labels, attributes, captions)


class Tokenizer:
    """Words to integer ids, over the vocabulary of the training captions.

    Id 0 pads, 1 ends a caption, 2 stands for a word outside the vocabulary: the words only the
    held-out templates use ("someone", "wrote", "picture", "of") are unknown, as any word a model
    never saw in training is (:func:`insert_unknown` teaches a text encoder to read around them).
    :meth:`encode` gives ``(N, length)`` int64: the words' ids, then the end id, then padding
    (longer captions are cut, keeping the end id).
    """

    PAD, END, UNKNOWN = 0, 1, 2

    def __init__(self, words: list[str] | None = None):
        if words is None:
            pieces = [*TRAIN_TEMPLATES, *(w for pair in DIGIT_WORDS for w in pair),
                      *(w for synonyms in SYNONYMS.values() for w in synonyms)]
            words = sorted({word for piece in pieces for word in piece.split() if not word.startswith("{")})
        self.words = ["<pad>", "<end>", "<unknown>", *words]
        self.ids = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, captions: list[str] | str, length: int = 16) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        tokens = torch.full((len(captions), length), self.PAD, dtype=torch.int64)
        for row, text in enumerate(captions):
            ids = [self.ids.get(word, self.UNKNOWN) for word in text.lower().split()][: length - 1] + [self.END]
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """The captions back (unknown words as ``<unknown>``), up to each end id."""
        texts = []
        for row in tokens.tolist():
            words = []
            for i in row:
                if i in (self.END, self.PAD):
                    break
                words.append(self.words[i])
            texts.append(" ".join(words))
        return texts


def insert_unknown(tokens: torch.Tensor, generator: torch.Generator, p: float = 0.5, most: int = 3) -> torch.Tensor:
    """Training augmentation: each caption of ``tokens`` ``(N, L)`` (from :meth:`Tokenizer.encode`) gets,
    with probability ``p``, 1 to ``most`` unknown ids inserted at random places among its words; the
    words keep their order, the end id stays last and a caption that grows past ``L`` loses its last
    words. Draws come from ``generator`` (on the CPU). Returns a new ``(N, L)`` tensor."""
    out = tokens.clone()
    length = tokens.shape[1]
    for row, ids in enumerate(tokens.cpu().tolist()):
        if torch.rand((), generator=generator).item() >= p:
            continue
        words = ids[: ids.index(Tokenizer.END)] if Tokenizer.END in ids else [i for i in ids if i != Tokenizer.PAD]
        for _ in range(int(torch.randint(1, most + 1, (), generator=generator))):
            words.insert(int(torch.randint(0, len(words) + 1, (), generator=generator)), Tokenizer.UNKNOWN)
        ids = words[: length - 1] + [Tokenizer.END]
        out[row] = torch.tensor(ids + [Tokenizer.PAD] * (length - len(ids)), device=tokens.device)
    return out
