"""The five-dice hands: exact enumeration, Monte Carlo, classification."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from dgm import dice

KNOWN_COUNTS = {
    "nothing": 480,
    "one pair": 3600,
    "two pairs": 1800,
    "three of a kind": 1200,
    "straight": 240,
    "full house": 300,
    "four of a kind": 150,
    "five of a kind": 6,
}


def test_hands_are_the_eight_known_ones():
    assert set(dice.HANDS) == set(KNOWN_COUNTS) and len(dice.HANDS) == 8


def test_exact_probabilities_are_fractions_equal_to_the_known_counts():
    probabilities = dice.exact_probabilities()
    assert list(probabilities) == list(dice.HANDS)
    for hand, probability in probabilities.items():
        assert isinstance(probability, Fraction)
        assert probability == Fraction(KNOWN_COUNTS[hand], 6**5), hand
    assert sum(probabilities.values()) == 1  # exactly, no rounding


def test_counts_agree_with_the_combinatorial_formulas():
    counts = dice.exact_counts()
    assert counts["one pair"] == 6 * math.comb(5, 2) * 5 * 4 * 3
    assert counts["two pairs"] == math.comb(6, 2) * 4 * math.factorial(5) // (2 * 2)
    assert counts["three of a kind"] == 6 * math.comb(5, 3) * 5 * 4
    assert counts["full house"] == 6 * 5 * math.comb(5, 3)
    assert counts["straight"] == 2 * math.factorial(5)
    assert counts["four of a kind"] == 6 * 5 * 5
    assert counts["five of a kind"] == 6
    assert counts["nothing"] == 6 * 5 * 4 * 3 * 2 - counts["straight"]


def test_monte_carlo_is_within_a_few_standard_errors():
    n = 200_000
    estimate = dice.monte_carlo_probabilities(n, seed=0)
    assert list(estimate) == list(dice.HANDS)
    assert math.isclose(sum(estimate.values()), 1.0)
    for hand, exact in dice.exact_probabilities().items():
        standard_error = math.sqrt(float(exact) * (1 - float(exact)) / n)
        assert abs(estimate[hand] - float(exact)) < 4 * standard_error, hand


def test_monte_carlo_and_rolls_repeat_with_a_seed():
    assert dice.monte_carlo_probabilities(1000, seed=3) == dice.monte_carlo_probabilities(1000, seed=3)
    rolls = dice.roll(500, seed=1)
    assert rolls.shape == (500, 5) and rolls.dtype == torch.int64
    assert rolls.min() >= 1 and rolls.max() <= 6
    assert torch.equal(rolls, dice.roll(500, seed=1))


def test_monte_carlo_classifies_each_roll_like_classify_hand():
    rolls = dice.roll(300, seed=2)
    expected = [dice.classify_hand(row) for row in rolls]
    estimate = dice.monte_carlo_probabilities(300, seed=2)
    for hand in dice.HANDS:
        assert estimate[hand] == expected.count(hand) / 300


@pytest.mark.parametrize(
    "roll, hand",
    [
        ([2, 2, 5, 1, 6], "one pair"),
        ([3, 1, 3, 6, 1], "two pairs"),
        ([4, 4, 2, 4, 6], "three of a kind"),
        ([5, 2, 5, 2, 5], "full house"),
        ([1, 2, 3, 4, 5], "straight"),
        ([6, 4, 2, 5, 3], "straight"),
        ([1, 2, 3, 4, 6], "nothing"),
        ([1, 3, 4, 5, 6], "nothing"),
        ([6, 6, 1, 6, 6], "four of a kind"),
        ([3, 3, 3, 3, 3], "five of a kind"),
    ],
)
def test_classify_hand_examples(roll, hand):
    assert dice.classify_hand(roll) == hand
    assert dice.classify_hand(tuple(reversed(roll))) == hand
    assert dice.classify_hand(np.array(roll)) == hand
    assert dice.classify_hand(torch.tensor(roll)) == hand


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ([1, 2, 3, 4], ValueError, "expected 5 dice, got 4"),
        ([1, 2, 3, 4, 5, 6], ValueError, "expected 5 dice, got 6"),
        ([0, 1, 2, 3, 4], ValueError, r"ints in 1\.\.6"),
        ([1, 2, 3, 4, 7], ValueError, r"ints in 1\.\.6"),
        ([1.0, 2, 3, 4, 5], ValueError, r"ints in 1\.\.6"),
        ([True, 2, 3, 4, 5], ValueError, r"ints in 1\.\.6"),
        (12345, TypeError, "dice: expected a sequence"),
    ],
)
def test_classify_hand_rejects_bad_dice(bad, error, message):
    with pytest.raises(error, match=message):
        dice.classify_hand(bad)


@pytest.mark.parametrize("n", [0, -5, 2.5, True])
def test_rolls_need_a_positive_int(n):
    with pytest.raises(ValueError, match="n: expected a positive int"):
        dice.monte_carlo_probabilities(n, seed=0)
