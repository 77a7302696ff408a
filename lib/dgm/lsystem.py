"""Procedural samplers: noise is latent variables.

A generative model is a sampler ``x = G(z)``: a *deterministic* program ``G`` fed
with *random* numbers ``z``. All the randomness lives in ``z`` (the latent
variables); once ``z`` is fixed, so is the sample. This module holds two such
programs, written by hand instead of learned.

**The random-turn line.** ``z = (z_1, ..., z_N) ~ Bernoulli(0.5)^N``. A pen starts at
the origin heading ``theta_0`` (up). For each ``i`` it first *turns* by ``-delta`` (right)
if ``z_i = 1`` and ``+delta`` (left) if ``z_i = 0``, then *steps* one unit forward:

    theta_i = theta_0 + delta * sum_{j <= i} (1 - 2 z_j),
    p_i     = p_{i-1} + step * (cos theta_i, sin theta_i),      p_0 = 0.

``G`` maps ``{0, 1}^N`` to paths ``(N + 1, 2)``; all zeros is a circle (36 left turns
of 10 degrees close it), all ones the mirror circle, alternating a zig-zag.

**Bracketed L-systems** (Prusinkiewicz & Lindenmayer, *The Algorithmic Beauty of
Plants*, ABOP). A string (the *axiom*) is rewritten ``n`` times; in each step *every*
symbol is replaced at once (parallel rewriting) by its rule's right-hand side, and
symbols without a rule are copied. The result is read by a *turtle*:

    F  draw one step forward       f  move one step forward without drawing
    +  turn left by delta          -  turn right by delta
    [  push (position, heading)    ]  pop (position, heading)

and every other symbol (``X``, ...) is ignored by the turtle.

**Stochastic L-systems** give a symbol several right-hand sides with probabilities
``p_1, ..., p_K``. Each time such a symbol is rewritten, a uniform ``u ~ U[0, 1)``
picks option ``k`` by the inverse CDF: the first ``k`` with ``u < p_1 + ... + p_k``.
These uniforms are the plant's latent vector ``z``, consumed **in order**: rewriting
step 1 first, then step 2, ...; within a step, left to right through the string.
``LSystem.latent_size(n)`` is the most uniforms ``n`` steps can need (the maximum
over all choices), ``LSystem.sample_latent(n, seed)`` draws that many, and
``LSystem.expand(n, z=u)`` is then a deterministic function of ``u``: the same ``u``
gives the same plant, and ``expand(n, seed=s)`` is exactly
``expand(n, z=sample_latent(n, seed=s))``. Unused trailing entries are ignored.
"""

from __future__ import annotations

import bisect
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from dgm.device import Seed, make_generator

__all__ = [
    "random_turn_path",
    "bernoulli_latent",
    "choose_rule",
    "LSystem",
    "turtle",
    "turtle_final_state",
    "PLANTS",
    "STOCHASTIC_PLANT",
    "BUSH",
    "plot_segments",
    "rasterize",
    "render_plants",
]



def _as_numpy(x, name: str) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected an array or tensor, got {type(x).__name__}") from err


# --------------------------------------------------------------------------- random-turn line
def bernoulli_latent(n: int, seed: Seed = None) -> np.ndarray:
    """``z ~ Bernoulli(0.5)^n`` as an int64 array ``(n,)`` of 0s and 1s."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    return torch.randint(0, 2, (n,), generator=make_generator(seed)).numpy()


def random_turn_path(
    z, step: float = 1.0, turn_degrees: float = 10.0, heading_degrees: float = 90.0
) -> np.ndarray:
    """The random-turn sampler ``G(z)``: points ``(N + 1, 2)`` float64, starting at the origin.

    ``z``: 1-D array or tensor of 0s and 1s (bools allowed), length ``N``. For each
    ``z_i`` the pen turns first (right by ``turn_degrees`` if ``z_i = 1``, left if
    ``z_i = 0``), then moves ``step`` forward. The initial heading is
    ``heading_degrees`` (90 = up), counter-clockwise from the x axis.
    """
    z = _as_numpy(z, "z")
    if z.ndim != 1:
        raise ValueError(f"z: expected a 1-D array of 0s and 1s, got shape {tuple(z.shape)}")
    if z.size and not np.isin(z, (0, 1)).all():
        raise ValueError(f"z: expected only 0s and 1s, got values {np.unique(z)[:5].tolist()}")
    signs = 1.0 - 2.0 * z.astype(np.float64)  # z = 0 -> +1 (left), z = 1 -> -1 (right)
    headings = np.deg2rad(heading_degrees + turn_degrees * np.cumsum(signs))
    steps = step * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)], axis=0)


# --------------------------------------------------------------------------- L-systems
def _inverse_cdf_index(cumulative: list[float], u: float) -> int:
    """The first ``k`` with ``u < cumulative[k]`` (the last index if rounding leaves none)."""
    return min(bisect.bisect_right(cumulative, u), len(cumulative) - 1)


def _check_options(options, name: str) -> tuple[tuple[str, ...], list[float]]:
    """Validate ``[(rhs, p), ...]``; return the right-hand sides and the cumulative probabilities."""
    if not isinstance(options, (list, tuple)) or not options:
        raise ValueError(f"{name}: expected a non-empty list of (right-hand side, probability) pairs, got {options!r}")
    for option in options:
        if not (isinstance(option, (list, tuple)) and len(option) == 2 and isinstance(option[0], str)):
            raise ValueError(f"{name}: expected (right-hand side: str, probability) pairs, got {option!r}")
        if not isinstance(option[1], numbers.Real) or not 0 <= option[1] <= 1:
            raise ValueError(f"{name}: expected probabilities in [0, 1], got {option[1]!r} for {option[0]!r}")
    total = math.fsum(p for _, p in options)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{name}: probabilities must sum to 1, got {total:.6g} for {options!r}")
    cumulative = np.cumsum([p for _, p in options]).tolist()
    return tuple(rhs for rhs, _ in options), cumulative


def choose_rule(options: list[tuple[str, float]], u: float) -> str:
    """Pick a right-hand side from ``[(rhs, p), ...]`` with the uniform ``u`` in [0, 1) by inverse CDF."""
    rhs, cumulative = _check_options(options, "options")
    if not 0 <= u < 1:
        raise ValueError(f"u: expected a uniform number in [0, 1), got {u!r}")
    return rhs[_inverse_cdf_index(cumulative, u)]


@dataclass(frozen=True)
class LSystem:
    """A bracketed L-system: ``axiom``, ``rules`` and the turtle's turning angle in degrees.

    ``rules`` maps a one-character symbol to a string (deterministic rule) or to a list
    of ``(right-hand side, probability)`` pairs summing to 1 (stochastic rule).
    """

    axiom: str
    rules: dict
    angle: float
    _table: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.axiom, str) or not self.axiom:
            raise ValueError(f"axiom: expected a non-empty string, got {self.axiom!r}")
        if not isinstance(self.rules, dict):
            raise TypeError(f"rules: expected a dict symbol -> str or [(str, p), ...], got {type(self.rules).__name__}")
        table = {}
        for symbol, rule in self.rules.items():
            if not isinstance(symbol, str) or len(symbol) != 1:
                raise ValueError(f"rules: expected one-character symbols as keys, got {symbol!r}")
            table[symbol] = rule if isinstance(rule, str) else _check_options(rule, f"rules[{symbol!r}]")
        if not isinstance(self.angle, numbers.Real):
            raise TypeError(f"angle: expected a number of degrees, got {type(self.angle).__name__}")
        object.__setattr__(self, "_table", table)

    @property
    def is_stochastic(self) -> bool:
        return any(not isinstance(rule, str) for rule in self._table.values())

    def latent_size(self, n: int) -> int:
        """The most uniforms ``expand(n, z=...)`` can consume (0 for a deterministic system).

        Dynamic programming: ``c_k(s)``, the most choices made while rewriting symbol
        ``s`` for ``k`` steps, is ``[s stochastic] + max over its options of the sum of
        c_{k-1}`` over the option's symbols (a deterministic rule has one option).
        """
        _check_depth(n)
        symbols = set(self.axiom) | set(self._table)
        for rule in self._table.values():
            symbols |= set("".join(rule[0]) if isinstance(rule, tuple) else rule)
        most = dict.fromkeys(symbols, 0)
        for _ in range(n):
            previous = most
            most = {}
            for s in symbols:
                rule = self._table.get(s)
                if rule is None:
                    most[s] = 0
                elif isinstance(rule, str):
                    most[s] = sum(previous[t] for t in rule)
                else:
                    most[s] = 1 + max(sum(previous[t] for t in rhs) for rhs in rule[0])
        return sum(most[s] for s in self.axiom)

    def sample_latent(self, n: int, seed: Seed = None) -> np.ndarray:
        """A latent vector for ``n`` steps: ``latent_size(n)`` uniforms in [0, 1), float64."""
        size = self.latent_size(n)
        return torch.rand(size, generator=make_generator(seed), dtype=torch.float64).numpy()

    def _rewrite(self, n: int, seed: Seed, z) -> tuple[str, list[int]]:
        """Expand ``n`` steps; return the string and the chosen option index of every stochastic rewrite."""
        _check_depth(n)
        if seed is not None and z is not None:
            raise ValueError("seed, z: give a seed or an explicit latent z, not both")
        uniforms = (self.sample_latent(n, seed) if z is None else _check_latent(z)).tolist()
        deterministic = str.maketrans({s: r for s, r in self._table.items() if isinstance(r, str)})
        string, choices = self.axiom, []
        for _ in range(n):
            if not self.is_stochastic:
                string = string.translate(deterministic)
                continue
            parts = []
            for symbol in string:
                rule = self._table.get(symbol)
                if rule is None or isinstance(rule, str):
                    parts.append(symbol if rule is None else rule)
                    continue
                if len(choices) == len(uniforms):
                    raise ValueError(
                        f"z: too short, this expansion needs more than {len(uniforms)} uniforms "
                        f"(latent_size({n}) = {self.latent_size(n)})"
                    )
                k = _inverse_cdf_index(rule[1], uniforms[len(choices)])
                choices.append(k)
                parts.append(rule[0][k])
            string = "".join(parts)
        return string, choices

    def expand(self, n: int, seed: Seed = None, z=None) -> str:
        """The string after ``n`` parallel rewriting steps.

        Stochastic rules draw their uniforms from ``seed`` (int, generator or None) or
        read them from the explicit latent ``z`` (1-D, values in [0, 1), in order; see
        the module docstring). A deterministic system ignores both.
        """
        return self._rewrite(n, seed, z)[0]

    def choices(self, n: int, seed: Seed = None, z=None) -> list[int]:
        """The discrete latent: the option index chosen at each stochastic rewrite, in order."""
        return self._rewrite(n, seed, z)[1]

    def segments(self, n: int, seed: Seed = None, z=None, step: float = 1.0) -> np.ndarray:
        """``turtle(self.expand(n, seed, z), self.angle, step)``: segments ``(M, 2, 2)``."""
        return turtle(self.expand(n, seed=seed, z=z), self.angle, step=step)


def _check_depth(n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected the number of rewriting steps as an int >= 0, got {n!r}")


def _check_latent(z) -> np.ndarray:
    z = _as_numpy(z, "z")
    if z.ndim != 1:
        raise ValueError(f"z: expected a 1-D array of uniforms in [0, 1), got shape {tuple(z.shape)}")
    z = z.astype(np.float64)
    if z.size and not ((z >= 0) & (z < 1)).all():
        raise ValueError(f"z: expected uniforms in [0, 1), got values in [{z.min():.3g}, {z.max():.3g}]")
    return z


# --------------------------------------------------------------------------- turtle
def _run_turtle(commands: str, angle: float, step: float, start, heading: float):
    if not isinstance(commands, str):
        raise TypeError(f"commands: expected a string, got {type(commands).__name__}")
    x, y = float(start[0]), float(start[1])
    stack, segments = [], []
    for position, symbol in enumerate(commands):
        if symbol == "F" or symbol == "f":
            radians = math.radians(heading)
            nx, ny = x + step * math.cos(radians), y + step * math.sin(radians)
            if symbol == "F":
                segments.append((x, y, nx, ny))
            x, y = nx, ny
        elif symbol == "+":
            heading += angle
        elif symbol == "-":
            heading -= angle
        elif symbol == "[":
            stack.append((x, y, heading))
        elif symbol == "]":
            if not stack:
                raise ValueError(f"commands: unbalanced brackets, ']' at position {position} has no matching '['")
            x, y, heading = stack.pop()
    if stack:
        raise ValueError(f"commands: unbalanced brackets, {len(stack)} '[' never closed")
    array = np.array(segments, dtype=np.float64).reshape(-1, 2, 2)
    return array, (x, y, heading)


def turtle(
    commands: str, angle: float, step: float = 1.0, start: tuple[float, float] = (0.0, 0.0), heading: float = 90.0
) -> np.ndarray:
    """Line segments ``(M, 2, 2)`` float64 (``[[x0, y0], [x1, y1]]`` per ``F``) drawn by the turtle.

    ``angle`` and ``heading`` in degrees (heading 90 = up; ``+`` turns counter-clockwise).
    Raises ``ValueError`` on unbalanced brackets.
    """
    return _run_turtle(commands, angle, step, start, heading)[0]


def turtle_final_state(
    commands: str, angle: float, step: float = 1.0, start: tuple[float, float] = (0.0, 0.0), heading: float = 90.0
) -> tuple[float, float, float]:
    """The turtle's ``(x, y, heading_degrees)`` after reading ``commands`` (same arguments as :func:`turtle`)."""
    return _run_turtle(commands, angle, step, start, heading)[1]


# --------------------------------------------------------------------------- presets
# name -> (system, number of rewriting steps). ABOP Fig. 1.24 a-f; the "fractal plant"
# (Fig. 1.24f with the turns mirrored and delta = 25, as on Wikipedia); the stochastic
# plant of ABOP Fig. 1.27; and the bush of the plant data set: each X picks one of the
# X-rules of Figs. 1.24d (and its mirror image), 1.24e and 1.24f, each with p = 1/4.
PLANTS: dict[str, tuple[LSystem, int]] = {
    "abop_1_24a": (LSystem("F", {"F": "F[+F]F[-F]F"}, 25.7), 5),
    "abop_1_24b": (LSystem("F", {"F": "F[+F]F[-F][F]"}, 20.0), 5),
    "abop_1_24c": (LSystem("F", {"F": "FF-[-F+F+F]+[+F-F-F]"}, 22.5), 4),
    "abop_1_24d": (LSystem("X", {"X": "F[+X]F[-X]+X", "F": "FF"}, 20.0), 7),
    "abop_1_24e": (LSystem("X", {"X": "F[+X][-X]FX", "F": "FF"}, 25.7), 7),
    "abop_1_24f": (LSystem("X", {"X": "F-[[X]+X]+F[+FX]-X", "F": "FF"}, 22.5), 5),
    "fractal_plant": (LSystem("X", {"X": "F+[[X]-X]-F[-FX]+X", "F": "FF"}, 25.0), 6),
    "abop_1_27": (
        LSystem("F", {"F": [("F[+F]F[-F]F", 1 / 3), ("F[+F]F", 1 / 3), ("F[-F]F", 1 / 3)]}, 25.7),
        5,
    ),
    "stochastic_bush": (
        LSystem(
            "X",
            {
                "X": [
                    ("F[+X]F[-X]+X", 0.25),
                    ("F[-X]F[+X]-X", 0.25),
                    ("F[+X][-X]FX", 0.25),
                    ("F-[[X]+X]+F[+FX]-X", 0.25),
                ],
                "F": "FF",
            },
            22.5,
        ),
        4,
    ),
}
STOCHASTIC_PLANT: LSystem = PLANTS["abop_1_27"][0]
BUSH: LSystem = PLANTS["stochastic_bush"][0]


# --------------------------------------------------------------------------- rendering
def _check_segments(segments) -> np.ndarray:
    segments = _as_numpy(segments, "segments").astype(np.float64)
    if segments.ndim != 3 or segments.shape[1:] != (2, 2):
        raise ValueError(f"segments: expected shape (M, 2, 2), got {tuple(segments.shape)}")
    return segments


def plot_segments(segments, ax=None, color: str = "darkgreen", linewidth: float = 0.8, title: str | None = None):
    """Draw segments ``(M, 2, 2)`` on ``ax`` (a new square figure if None), equal aspect, no axes; return ax."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    segments = _check_segments(segments)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.add_collection(LineCollection(segments, colors=color, linewidths=linewidth))
    if len(segments):
        ax.autoscale()
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def rasterize(segments, size: int, margin: int = 1) -> np.ndarray:
    """Draw segments ``(M, 2, 2)`` into a ``(size, size)`` float32 image in [0, 1] (lines 1, background 0).

    The drawing's bounding box is scaled uniformly (aspect kept) into the square
    minus ``margin`` pixels on each side and centred; y points up in the drawing,
    down in the image. Each segment is sampled every half pixel and the points are
    splatted bilinearly, so a line is about one pixel wide and anti-aliased.
    """
    segments = _check_segments(segments)
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size: expected an int >= 2, got {size!r}")
    if not isinstance(margin, int) or not 0 <= margin < size / 2 - 0.5:
        raise ValueError(f"margin: expected an int in [0, size/2 - 1/2), got {margin!r}")
    image = np.zeros(size * size, dtype=np.float64)
    if len(segments) == 0:
        return image.reshape(size, size).astype(np.float32)
    points = segments.reshape(-1, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = (high - low).max()
    span = size - 1 - 2 * margin
    scale = span / extent if extent > 0 else 0.0
    offset = margin + (span - scale * (high - low)) / 2  # centre the box
    pixels = (segments - low) * scale + offset  # (M, 2, 2) in pixel units, y up
    pixels[..., 1] = size - 1 - pixels[..., 1]
    spacing = 0.5
    lengths = np.linalg.norm(pixels[:, 1] - pixels[:, 0], axis=1)
    counts = np.ceil(lengths / spacing).astype(np.int64) + 1  # samples per segment, ends included
    which = np.repeat(np.arange(len(segments)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    t = (np.arange(counts.sum()) - first) / np.maximum(counts[which] - 1, 1)
    samples = pixels[which, 0] + t[:, None] * (pixels[which, 1] - pixels[which, 0])
    # bilinear splat; each sample carries `spacing` pixels of line length
    corner = np.floor(samples).astype(np.int64)
    frac = samples - corner
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        col, row = corner[:, 0] + dx, corner[:, 1] + dy
        weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        image += np.bincount(row[inside] * size + col[inside], spacing * weight[inside], minlength=size * size)
    return np.clip(image, 0.0, 1.0).reshape(size, size).astype(np.float32)


def render_plants(n: int, size: int = 32, seed: Seed = 0, depth: int = 4) -> torch.Tensor:
    """``n`` images ``(n, 1, size, size)`` float32 in [0, 1] of stochastic plants, white on black.

    Plant ``i`` is :data:`BUSH` expanded ``depth`` times with its own latent
    ``z_i = BUSH.sample_latent(depth)`` (85 uniforms at depth 4), the ``z_i`` drawn one
    after the other from one generator made from ``seed``: a seed repeats exactly,
    and different plants (and seeds) differ. Each plant is scaled to fill the square.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    if not isinstance(size, int) or size < 4:
        raise ValueError(f"size: expected an int >= 4, got {size!r}")
    _check_depth(depth)
    generator = make_generator(seed)
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        z = BUSH.sample_latent(depth, seed=generator)
        images[i, 0] = rasterize(BUSH.segments(depth, z=z), size)
    return torch.from_numpy(images)
