"""The diffusion transformer (DiT; Peebles and Xie, 2023) with adaLN-Zero blocks.

A DiT treats an image (here a latent, ``(B, C, H, W)``) as a sequence: :func:`patchify` cuts it
into ``(H / p) * (W / p)`` patches of ``p x p`` pixels, each flattened to one token of
``C * p * p`` numbers; a linear layer embeds each token, a learned position embedding says where
it came from, and transformer blocks let every token attend to every other. :func:`unpatchify`
puts the output tokens back in place. A 4x7x7 latent with ``p = 1`` is 49 tokens; 28x28 pixels
would be 784, and attention costs grow with the square of the count.

The time ``t`` and the class ``y`` (or, with ``text_dim``, a caption's text embedding) do not enter
as tokens. Their embeddings, summed to one vector ``c``, *modulate* every block (adaptive layer norm): a layer norm without its own scale and shift,
then ``h * (1 + scale(c)) + shift(c)`` (:func:`modulate`), and each residual branch is multiplied
by a ``gate(c)`` before it is added. The linear layer that makes shift, scale and gate from ``c``
starts at zero (**adaLN-Zero**): every gate is 0, so every block starts as the identity and the
network as a whole starts by predicting 0, which makes deep stacks train stably.
"""

from __future__ import annotations

import torch
from torch import nn

from dgm.checks import describe, positive_int
from dgm.unet import sinusoidal_embedding

__all__ = ["patchify", "unpatchify", "modulate", "AdaLNZeroBlock", "DiT"]


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images ``(B, C, H, W)`` -> tokens ``(B, (H / patch) * (W / patch), C * patch * patch)``.

    Patches are taken row by row (left to right, top to bottom); each token lists its patch's
    numbers channel by channel, each channel row by row. ``patch`` must divide ``H`` and ``W``.
    """
    positive_int(patch, "patch")
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"x: expected images (B, C, H, W), got {describe(x)}")
    b, c, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError(f"patch: {patch} does not divide the image size {h}x{w}")
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(tokens: torch.Tensor, patch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: tokens ``(B, N, channels * patch^2)`` -> ``(B, channels, height, width)``."""
    positive_int(patch, "patch")
    b = len(tokens)
    rows, cols = height // patch, width // patch
    if tokens.ndim != 3 or tokens.shape[1:] != (rows * cols, channels * patch * patch):
        raise ValueError(
            f"tokens: expected (B, {rows * cols}, {channels * patch * patch}) for {channels}x{height}x{width} "
            f"images in {patch}x{patch} patches, got {describe(tokens)}"
        )
    x = tokens.reshape(b, rows, cols, channels, patch, patch)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, channels, height, width)


def modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Adaptive layer norm's affine step: ``h * (1 + scale) + shift`` for tokens ``h`` ``(B, N, D)``
    and one ``shift``, ``scale`` ``(B, D)`` per image (the same for all its tokens)."""
    return h * (1 + scale[:, None]) + shift[:, None]


class AdaLNZeroBlock(nn.Module):
    """One DiT block: ``x + gate_1 * attention(modulate(norm(x)))``, then ``+ gate_2 * mlp(modulate(norm(.)))``.

    ``forward(x, c)``: tokens ``(B, N, dim)`` and the conditioning ``c`` ``(B, dim)`` -> ``(B, N, dim)``.
    ``self.modulation`` maps ``c`` to the six vectors shift, scale, gate (attention) and shift,
    scale, gate (MLP); it is zero at initialisation, so the block starts as the identity.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=1)
        h = modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.attention(h, h, h, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """A conditional diffusion transformer: ``model(x, t, y)`` -> a prediction shaped like ``x``.

    Arguments: ``channels``, ``size`` (the input is ``(B, channels, size, size)``), ``patch`` (its
    tokens are ``patch x patch`` patches), ``dim`` (token width), ``depth`` (blocks), ``heads``,
    ``num_classes`` (labels ``0 .. num_classes - 1``; ``num_classes`` is the null class of
    classifier-free guidance), ``time_scale``: the time enters the sinusoidal embedding as
    ``t * time_scale`` (1000 for flow matching's ``t`` in [0, 1]; 1 for integer DDPM steps).
    ``text_dim``: condition on text instead of classes. ``y`` is then a float ``(B, text_dim)`` of
    text embeddings (e.g. :meth:`dgm.clip.CLIP.encode_text`'s unit vectors), mapped to ``dim`` by a
    linear layer; a row of zeros is the empty prompt, which gets a learned null embedding of its own
    (classifier-free guidance's unconditional model; a unit vector is never zero).

    ``forward(x, t, y)``: ``x`` ``(B, channels, size, size)``, ``t`` ``(B,)``, ``y`` ``(B,)`` int64
    (``(B, text_dim)`` float with ``text_dim``) or None (all null) -> ``(B, channels, size, size)``. The output layer is zero at start (with
    adaLN-Zero), so an untrained DiT predicts 0 everywhere.
    """

    def __init__(
        self, channels: int = 4, size: int = 7, patch: int = 1, dim: int = 64, depth: int = 6, heads: int = 4,
        num_classes: int = 10, time_scale: float = 1000.0, text_dim: int | None = None,
    ):
        super().__init__()
        for name, value in (("channels", channels), ("size", size), ("patch", patch), ("dim", dim), ("depth", depth),
                            ("heads", heads), ("num_classes", num_classes)):
            positive_int(value, name)
        if size % patch or dim % heads:
            raise ValueError(f"patch must divide size ({patch}, {size}) and heads must divide dim ({heads}, {dim})")
        self.channels, self.size, self.patch = channels, size, patch
        self.num_classes, self.time_scale = num_classes, float(time_scale)
        tokens, token_numbers = (size // patch) ** 2, channels * patch * patch
        self.embed = nn.Linear(token_numbers, dim)
        self.position = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.time_dim = dim
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.text_dim = text_dim
        if text_dim is None:
            self.label_embedding = nn.Embedding(num_classes + 1, dim)
        else:
            positive_int(text_dim, "text_dim")
            self.text_projection = nn.Linear(text_dim, dim)
            self.null_text = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(dim, heads) for _ in range(depth))
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.out = nn.Linear(dim, token_numbers)
        for layer in (self.final_modulation[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def condition(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The conditioning vector ``c`` ``(B, dim)``: time embedding plus label (or text) embedding."""
        time = self.time_mlp(sinusoidal_embedding(t * self.time_scale, self.time_dim))
        if self.text_dim is not None:
            if y is None:
                y = torch.zeros(len(t), self.text_dim, device=t.device)
            if not torch.is_tensor(y) or y.shape != (len(t), self.text_dim) or not y.is_floating_point():
                raise ValueError(f"y: expected text embeddings, float ({len(t)}, {self.text_dim}), got {describe(y)}")
            empty = (y == 0).all(1, keepdim=True)
            return time + torch.where(empty, self.null_text, self.text_projection(y.to(time.dtype)))
        if y is None:
            y = torch.full((len(t),), self.num_classes, dtype=torch.long, device=t.device)
        return time + self.label_embedding(y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if not torch.is_tensor(x) or x.shape[1:] != (self.channels, self.size, self.size):
            raise ValueError(f"x: expected (B, {self.channels}, {self.size}, {self.size}), got {describe(x)}")
        c = self.condition(t.reshape(len(x)).to(x.dtype), y)
        h = self.embed(patchify(x, self.patch)) + self.position
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c).chunk(2, dim=1)
        tokens = self.out(modulate(self.final_norm(h), shift, scale))
        return unpatchify(tokens, self.patch, self.channels, self.size, self.size)
