"""Tests for dgm.lsystem: known counts, closed forms, invariants and error messages."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from dgm.lsystem import (
    BUSH,
    PLANTS,
    STOCHASTIC_PLANT,
    LSystem,
    bernoulli_latent,
    choose_rule,
    plot_segments,
    random_turn_path,
    rasterize,
    render_plants,
    turtle,
    turtle_final_state,
)


# --------------------------------------------------------------------------- random-turn line
def test_random_turn_path_shape_start_and_unit_steps():
    z = bernoulli_latent(50, seed=0)
    path = random_turn_path(z)
    assert path.shape == (51, 2)
    np.testing.assert_array_equal(path[0], [0.0, 0.0])
    np.testing.assert_allclose(np.linalg.norm(np.diff(path, axis=0), axis=1), 1.0)


def test_random_turn_path_turns_before_stepping():
    # z_1 = 0: turn left 10 degrees from "up" (90) to 100, then step.
    np.testing.assert_allclose(random_turn_path([0])[1], [math.cos(math.radians(100)), math.sin(math.radians(100))])
    np.testing.assert_allclose(random_turn_path([1])[1], [math.cos(math.radians(80)), math.sin(math.radians(80))])


def test_all_zeros_is_a_closed_left_turning_circle():
    path = random_turn_path(np.zeros(36, dtype=int))
    np.testing.assert_allclose(path[-1], [0.0, 0.0], atol=1e-12)  # 36 x 10 degrees = a full turn
    # a regular 36-gon of side 1: every vertex at R = 1 / (2 sin 5deg) from the centre,
    # and the centre is to the left of the start (heading up, turning left).
    centre = path[:-1].mean(axis=0)
    np.testing.assert_allclose(np.linalg.norm(path[:-1] - centre, axis=1), 1 / (2 * math.sin(math.radians(5))))
    assert centre[0] < 0


def test_all_ones_mirrors_all_zeros_and_alternating_zigzags():
    left, right = random_turn_path(np.zeros(20)), random_turn_path(np.ones(20))
    np.testing.assert_allclose(right, left * [-1, 1], atol=1e-12)
    zigzag = random_turn_path(np.tile([0, 1], 10))  # headings 100, 90, 100, 90, ...
    expected_end = 10 * np.array([math.cos(math.radians(100)) + 0.0, math.sin(math.radians(100)) + 1.0])
    np.testing.assert_allclose(zigzag[-1], expected_end, atol=1e-12)


def test_random_turn_path_accepts_bool_and_tensor():
    z = np.array([1, 0, 0, 1, 1])
    expected = random_turn_path(z)
    np.testing.assert_allclose(random_turn_path(z.astype(bool)), expected)
    np.testing.assert_allclose(random_turn_path(torch.tensor(z)), expected)
    assert random_turn_path([]).shape == (1, 2)


def test_random_turn_path_rejects_bad_z():
    with pytest.raises(ValueError, match="z: expected a 1-D"):
        random_turn_path(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="z: expected only 0s and 1s"):
        random_turn_path([0, 1, 2])


def test_bernoulli_latent_is_seeded_binary():
    z = bernoulli_latent(1000, seed=3)
    assert set(np.unique(z)) == {0, 1} and z.shape == (1000,)
    np.testing.assert_array_equal(z, bernoulli_latent(1000, seed=3))
    assert abs(z.mean() - 0.5) < 0.06
    with pytest.raises(ValueError, match="n: expected an int >= 0"):
        bernoulli_latent(-1)


# --------------------------------------------------------------------------- deterministic L-systems
def test_abop_1_24a_has_5_to_the_5_segments():
    system, n = PLANTS["abop_1_24a"]
    assert system.expand(n).count("F") == 5**5 == 3125
    assert len(system.segments(n)) == 3125


def test_fractal_plant_counts():
    system, n = PLANTS["fractal_plant"]
    string = system.expand(n)
    assert string.count("F") == 6048
    assert string.count("X") == 4**6 == 4096


@pytest.mark.parametrize(
    "name, count",
    [("abop_1_24b", 5**5), ("abop_1_24c", 8**4), ("abop_1_24d", 4118), ("abop_1_24e", 4118)],
)
def test_other_preset_counts(name, count):
    # d and e: X -> 2 F's and 3 X's, F -> FF, so f_{k+1} = 2 f_k + 2 * 3^k.
    system, n = PLANTS[name]
    assert system.expand(n).count("F") == count


def test_small_expansions_by_hand():
    system = LSystem("X", {"X": "F[+X]F[-X]+X", "F": "FF"}, 20.0)
    assert system.expand(0) == "X"
    assert system.expand(1) == "F[+X]F[-X]+X"
    assert system.expand(2) == "FF[+F[+X]F[-X]+X]FF[-F[+X]F[-X]+X]+F[+X]F[-X]+X"


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_preset_brackets_balance(name):
    system, n = PLANTS[name]
    depth = np.cumsum([{"[": 1, "]": -1}.get(c, 0) for c in system.expand(n, seed=0)])
    assert depth.min() >= 0 and depth[-1] == 0


# --------------------------------------------------------------------------- turtle
def test_turtle_draws_moves_and_turns():
    segments = turtle("F+FfF", 90.0)
    expected = [[[0, 0], [0, 1]], [[0, 1], [-1, 1]], [[-2, 1], [-3, 1]]]
    np.testing.assert_allclose(segments, expected, atol=1e-12)
    np.testing.assert_allclose(turtle_final_state("F-F", 90.0), (1.0, 1.0, 0.0), atol=1e-12)
    assert turtle("XYZ+-", 30.0).shape == (0, 2, 2)  # other symbols are ignored


def _random_balanced(rng: random.Random, length: int) -> str:
    out, open_count = [], 0
    for _ in range(length):
        choice = rng.choice("Ff+-X[]")
        if choice == "]" and open_count == 0:
            choice = "F"
        open_count += {"[": 1, "]": -1}.get(choice, 0)
        out.append(choice)
    return "".join(out) + "]" * open_count


def test_turtle_state_restored_after_brackets():
    rng = random.Random(0)
    for _ in range(200):
        prefix, block = _random_balanced(rng, rng.randint(0, 30)), _random_balanced(rng, rng.randint(0, 30))
        angle = rng.uniform(1, 90)
        assert turtle_final_state(prefix + "[" + block + "]", angle) == turtle_final_state(prefix, angle)


def test_turtle_rejects_unbalanced_brackets():
    with pytest.raises(ValueError, match=r"unbalanced brackets, '\]' at position 1"):
        turtle("F]]", 25.0)
    with pytest.raises(ValueError, match=r"unbalanced brackets, 2 '\[' never closed"):
        turtle("[F[F", 25.0)
    with pytest.raises(TypeError, match="commands: expected a string"):
        turtle(["F"], 25.0)


# --------------------------------------------------------------------------- stochastic L-systems
def test_choose_rule_inverse_cdf():
    options = [("a", 0.2), ("b", 0.3), ("c", 0.5)]
    picks = [choose_rule(options, u) for u in (0.0, 0.1999, 0.2, 0.4999, 0.5, 0.9999)]
    assert picks == ["a", "a", "b", "b", "c", "c"]
    with pytest.raises(ValueError, match=r"u: expected a uniform number in \[0, 1\)"):
        choose_rule(options, 1.0)
    with pytest.raises(ValueError, match="probabilities must sum to 1"):
        choose_rule([("a", 0.5), ("b", 0.4)], 0.1)


def test_stochastic_frequencies_converge():
    system = LSystem("A" * 20000, {"A": [("B", 0.2), ("C", 0.3), ("D", 0.5)]}, 10.0)
    string = system.expand(1, seed=0)
    freqs = [string.count(c) / len(string) for c in "BCD"]
    np.testing.assert_allclose(freqs, [0.2, 0.3, 0.5], atol=0.015)
    counts = np.bincount(STOCHASTIC_PLANT.choices(5, seed=1), minlength=3)
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.08)


def test_latent_size():
    assert STOCHASTIC_PLANT.latent_size(5) == 1 + 5 + 25 + 125 + 625
    assert BUSH.latent_size(4) == 1 + 4 + 16 + 64  # at most 4 X's per X
    assert PLANTS["fractal_plant"][0].latent_size(6) == 0
    assert STOCHASTIC_PLANT.latent_size(0) == 0


def test_seeded_expansion_repeats_and_seeds_differ():
    assert STOCHASTIC_PLANT.expand(5, seed=7) == STOCHASTIC_PLANT.expand(5, seed=7)
    assert STOCHASTIC_PLANT.expand(5, seed=7) != STOCHASTIC_PLANT.expand(5, seed=8)
    generator = torch.Generator().manual_seed(7)
    assert STOCHASTIC_PLANT.expand(5, seed=generator) == STOCHASTIC_PLANT.expand(5, seed=7)


def test_explicit_latent_reproduces_seeded_expansion():
    for seed in range(5):
        z = STOCHASTIC_PLANT.sample_latent(5, seed=seed)
        assert z.shape == (781,) and z.min() >= 0 and z.max() < 1
        assert STOCHASTIC_PLANT.expand(5, z=z) == STOCHASTIC_PLANT.expand(5, seed=seed)
        assert STOCHASTIC_PLANT.expand(5, z=torch.from_numpy(z)) == STOCHASTIC_PLANT.expand(5, seed=seed)


def test_latent_is_consumed_in_order():
    # step 1 rewrites the axiom's F with z[0]; step 2 rewrites its F's left to right.
    z = np.array([0.9, 0.1, 0.5, 0.9])  # option 3 (F[-F]F), then options 1, 2, 3
    assert STOCHASTIC_PLANT.choices(2, z=z) == [2, 0, 1, 2]
    assert STOCHASTIC_PLANT.expand(2, z=z) == "F[+F]F[-F]F[-F[+F]F]F[-F]F"
    assert [choose_rule(STOCHASTIC_PLANT.rules["F"], u) for u in z] == ["F[-F]F", "F[+F]F[-F]F", "F[+F]F", "F[-F]F"]


def test_stochastic_errors():
    with pytest.raises(ValueError, match="z: too short"):
        STOCHASTIC_PLANT.expand(3, z=np.full(5, 0.1))
    with pytest.raises(ValueError, match=r"z: expected uniforms in \[0, 1\)"):
        STOCHASTIC_PLANT.expand(2, z=np.array([0.5, 1.5, 0.1, 0.1]))
    with pytest.raises(ValueError, match="z: expected a 1-D"):
        STOCHASTIC_PLANT.expand(2, z=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="give a seed or an explicit latent z, not both"):
        STOCHASTIC_PLANT.expand(2, seed=0, z=np.zeros(4))
    with pytest.raises(ValueError, match=r"rules\['F'\]: probabilities must sum to 1, got 0.9"):
        LSystem("F", {"F": [("F", 0.5), ("FF", 0.4)]}, 10.0)
    with pytest.raises(ValueError, match="rules: expected one-character symbols"):
        LSystem("F", {"FF": "F"}, 10.0)
    with pytest.raises(ValueError, match="axiom: expected a non-empty string"):
        LSystem("", {}, 10.0)
    with pytest.raises(ValueError, match="n: expected the number of rewriting steps"):
        STOCHASTIC_PLANT.expand(-1)


# --------------------------------------------------------------------------- rendering
def test_rasterize_horizontal_segment_known_pixels():
    image = rasterize(np.array([[[0.0, 0.0], [1.0, 0.0]]]), 9, margin=1)
    # x in [0, 1] maps to columns 1..7; the flat drawing is centred on row 4. Half
    # a pixel of line lies in each end pixel, a quarter pixel spills from its neighbour.
    expected = np.zeros((9, 9), dtype=np.float32)
    expected[4, 1:8] = [0.75, 1, 1, 1, 1, 1, 0.75]
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_rasterize_shape_range_and_errors():
    system, n = PLANTS["abop_1_24d"]
    image = rasterize(system.segments(n), 48)
    assert image.shape == (48, 48) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0 and 0.02 < image.mean() < 0.5
    assert not image[0].any() and not image[:, 0].any()  # the margin stays empty
    assert not rasterize(np.zeros((0, 2, 2)), 8).any()
    with pytest.raises(ValueError, match=r"segments: expected shape \(M, 2, 2\)"):
        rasterize(np.zeros((3, 4)), 8)
    with pytest.raises(ValueError, match="size: expected an int >= 2"):
        rasterize(np.zeros((1, 2, 2)), 1)


def test_plot_segments_draws_every_segment():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segments = turtle("F[+F]F[-F]F", 25.7)
    ax = plot_segments(segments, title="a")
    assert len(ax.collections) == 1 and len(ax.collections[0].get_segments()) == 5
    plt.close(ax.figure)


def test_render_plants_deterministic_and_varied():
    images = render_plants(12, size=32, seed=0)
    assert images.shape == (12, 1, 32, 32) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, render_plants(12, size=32, seed=0))
    assert not torch.equal(images, render_plants(12, size=32, seed=1))
    flat = images.flatten(1)
    assert torch.cdist(flat, flat).add(torch.eye(12) * 1e9).min() > 0  # every plant differs
    assert render_plants(0).shape == (0, 1, 32, 32)
    with pytest.raises(ValueError, match="n: expected an int >= 0"):
        render_plants(-3)
