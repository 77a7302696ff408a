"""The five-dice "probabilistic plants": hand probabilities, exactly and by Monte Carlo.

The lecture decides a plant's shape by rolling five fair dice and reading the
*hand*, as in poker dice. A roll is an **ordered** outcome ``(d_1, ..., d_5)`` in
``{1, ..., 6}^5``: all ``6^5 = 7776`` of them are equally likely, so

    P(hand) = #(ordered outcomes that show the hand) / 6^5.

Counting the ordered outcomes of a hand = (choose the face values) x (choose
which dice show them) x (the faces of the remaining dice). For one pair:

    6 (face of the pair) * C(5, 2) (which two dice) * 5 * 4 * 3 (the other three,
    all different from the pair and from each other) = 3600.

The eight hands (:data:`HANDS`, weakest first) and their counts out of 7776:

    nothing 480, one pair 3600, two pairs 1800, three of a kind 1200,
    straight 240, full house 300, four of a kind 150, five of a kind 6.

They partition the 7776 outcomes, so the probabilities sum to exactly 1.
"Nothing" means five different faces that are not a straight (``1-5`` or ``2-6``):
the five different faces miss either the 1 or the 6 (a straight, ``2 * 5! = 240``)
or some face from 2 to 5 (``4 * 5! = 480``).

:func:`exact_probabilities` enumerates the 7776 outcomes; :func:`monte_carlo_probabilities`
estimates the same numbers from ``n`` seeded rolls, with standard error
``sqrt(p (1 - p) / n)``.
"""

from __future__ import annotations

import itertools
import numbers
from collections import Counter
from fractions import Fraction
from functools import lru_cache

import torch

from dgm.device import Seed, make_generator

__all__ = [
    "HANDS",
    "N_DICE",
    "N_FACES",
    "classify_hand",
    "exact_counts",
    "exact_probabilities",
    "roll",
    "monte_carlo_probabilities",
]

N_DICE = 5
N_FACES = 6

HANDS: tuple[str, ...] = (
    "nothing",
    "one pair",
    "two pairs",
    "three of a kind",
    "straight",
    "full house",
    "four of a kind",
    "five of a kind",
)

# How many dice show each face that appears, largest first -> hand (all but the straight).
_BY_MULTIPLICITIES = {
    (5,): "five of a kind",
    (4, 1): "four of a kind",
    (3, 2): "full house",
    (3, 1, 1): "three of a kind",
    (2, 2, 1): "two pairs",
    (2, 1, 1, 1): "one pair",
}
_STRAIGHTS = ({1, 2, 3, 4, 5}, {2, 3, 4, 5, 6})


def classify_hand(dice) -> str:
    """The hand (one of :data:`HANDS`) shown by five dice, e.g. ``[3, 1, 3, 6, 1] -> "two pairs"``.

    ``dice``: a sequence (list, tuple, array, tensor) of 5 integers in ``1..6``; the
    order does not matter.
    """
    try:
        faces = list(dice.tolist() if hasattr(dice, "tolist") else dice)
    except TypeError as err:
        raise TypeError(f"dice: expected a sequence of {N_DICE} ints, got {type(dice).__name__}") from err
    if len(faces) != N_DICE:
        raise ValueError(f"dice: expected {N_DICE} dice, got {len(faces)}: {faces!r}")
    for face in faces:
        if not isinstance(face, numbers.Integral) or isinstance(face, bool) or not 1 <= face <= N_FACES:
            raise ValueError(f"dice: expected ints in 1..{N_FACES}, got {faces!r}")
    multiplicities = tuple(sorted(Counter(faces).values(), reverse=True))
    if multiplicities in _BY_MULTIPLICITIES:
        return _BY_MULTIPLICITIES[multiplicities]
    return "straight" if set(faces) in _STRAIGHTS else "nothing"


@lru_cache(maxsize=1)
def _hand_of_every_outcome() -> tuple[int, ...]:
    """Hand index of each of the 6^5 ordered outcomes, in ``itertools.product`` order.

    Outcome ``(d_1, ..., d_5)`` sits at ``sum_i (d_i - 1) 6^(5 - i)`` (base-6 digits).
    """
    outcomes = itertools.product(range(1, N_FACES + 1), repeat=N_DICE)
    return tuple(HANDS.index(classify_hand(outcome)) for outcome in outcomes)


def exact_counts() -> dict[str, int]:
    """Number of ordered outcomes (out of 6^5 = 7776) showing each hand, in :data:`HANDS` order."""
    counts = Counter(_hand_of_every_outcome())
    return {hand: counts[index] for index, hand in enumerate(HANDS)}


def exact_probabilities() -> dict[str, Fraction]:
    """``P(hand)`` as exact fractions (count / 7776, reduced), in :data:`HANDS` order; they sum to 1."""
    total = N_FACES**N_DICE
    return {hand: Fraction(count, total) for hand, count in exact_counts().items()}


def roll(n: int, seed: Seed = None) -> torch.Tensor:
    """``n`` rolls of five fair dice: an int64 tensor ``(n, 5)`` with values in ``1..6``."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: expected a positive int (number of rolls), got {n!r}")
    return torch.randint(1, N_FACES + 1, (int(n), N_DICE), generator=make_generator(seed))


def monte_carlo_probabilities(n: int, seed: Seed = None) -> dict[str, float]:
    """Estimate ``P(hand)`` as the fraction of ``n`` seeded rolls showing it, in :data:`HANDS` order.

    Each roll is classified by looking up its outcome in the enumeration behind
    :func:`exact_probabilities` (the same :func:`classify_hand`), so this is fast.
    """
    dice = roll(n, seed)
    place_values = N_FACES ** torch.arange(N_DICE - 1, -1, -1)
    outcome = ((dice - 1) * place_values).sum(dim=1)
    hands = torch.tensor(_hand_of_every_outcome())[outcome]
    counts = torch.bincount(hands, minlength=len(HANDS))
    return {hand: counts[index].item() / n for index, hand in enumerate(HANDS)}
