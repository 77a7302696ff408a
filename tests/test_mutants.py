"""Tests of the tests: every realistic wrong answer kept in tests/mutants/ fails its exercise's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgm.course.mutants import catch_rates, load_mutants, mutate, run_mutants

MUTANT_FILES = sorted((Path(__file__).parent / "mutants").glob("*.py"))


def test_mutate_replaces_exactly_one_snippet():
    assert mutate("a = 1\nb = 2\n", "b = 2", "b = 3") == "a = 1\nb = 3\n"
    with pytest.raises(ValueError, match="found 0 times"):
        mutate("a = 1\n", "b = 2", "b = 3")
    with pytest.raises(ValueError, match="found 2 times"):
        mutate("a = 1\na = 1\n", "a = 1", "a = 2")


@pytest.mark.pipeline
@pytest.mark.parametrize("path", MUTANT_FILES, ids=[p.stem for p in MUTANT_FILES])
def test_every_kept_wrong_answer_fails_the_exercise_tests(path):
    mutants = load_mutants(path)
    assert all(len(bugs) >= 4 for bugs in mutants.values()), "at least four wrong answers per exercise"
    verdicts = run_mutants(path.stem, mutants)
    assert len(verdicts) == sum(len(bugs) for bugs in mutants.values())
    print("\n" + catch_rates(verdicts))
    passing = [f"{v.exercise}: {v.mutant}" for v in verdicts if v.passed_all]
    assert not passing, f"wrong answers that pass every test of {path.stem}: {passing}"
