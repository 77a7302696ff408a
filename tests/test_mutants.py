"""Tests of the tests: every realistic wrong answer kept in tests/mutants/ fails its exercise's tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from dgm.course.mutants import HARD_CODED, AnswerRecorder, catch_rates, defined_functions, load_mutants, mutate, run_mutants
from dgm.course.notebooks import assignment_ids, source_notebook

MUTANT_FOLDER = Path(__file__).parent / "mutants"
MUTANT_FILES = sorted(MUTANT_FOLDER.glob("*.py"))


def solution_ids(assignment: str) -> list[str]:
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
            and c.cell_type == "code"]


@pytest.mark.parametrize("assignment", assignment_ids())
def test_every_exercise_has_at_least_four_wrong_answers(assignment):
    path = MUTANT_FOLDER / f"{assignment}.py"
    assert path.exists(), f"no realistic wrong answers for {assignment}: write {path}"
    mutants = load_mutants(path)
    assert set(mutants) == set(solution_ids(assignment)), "one entry per autograded solution cell"
    thin = [grade_id for grade_id, bugs in mutants.items() if len(bugs) < 4]
    assert not thin, f"fewer than four wrong answers for {thin}"


def test_mutate_replaces_exactly_one_snippet():
    assert mutate("a = 1\nb = 2\n", "b = 2", "b = 3") == "a = 1\nb = 3\n"
    with pytest.raises(ValueError, match="found 0 times"):
        mutate("a = 1\n", "b = 2", "b = 3")
    with pytest.raises(ValueError, match="found 2 times"):
        mutate("a = 1\na = 1\n", "a = 1", "a = 2")


def test_defined_functions_are_the_top_level_ones():
    source = "import math\n\ndef f(x):\n    def inner():\n        pass\n    return x\n\nclass C:\n    def m(self):\n        pass\n"
    assert defined_functions(source) == ["f"]


def test_a_hard_coded_function_replays_seen_inputs_and_copies_the_first_answer_otherwise():
    import torch

    recorder = AnswerRecorder(lambda x, scale=1.0: x * scale)
    first = recorder(torch.tensor([1.0, 2.0]))
    second = recorder(torch.tensor([3.0]), scale=2.0)
    hard_coded = recorder.hard_coded()
    assert torch.equal(hard_coded(torch.tensor([3.0]), scale=2.0), second)  # a new but equal tensor: replayed
    assert torch.equal(hard_coded(torch.tensor([5.0])), first)  # unseen: the first answer, whatever the input
    replay = hard_coded(torch.tensor([1.0, 2.0]))
    replay += 1
    assert torch.equal(hard_coded(torch.tensor([1.0, 2.0])), first), "each replay is a fresh copy"
    with pytest.raises(NotImplementedError, match="never call"):
        AnswerRecorder(len).hard_coded()([1])


@pytest.mark.pipeline
@pytest.mark.parametrize("path", MUTANT_FILES, ids=[p.stem for p in MUTANT_FILES])
def test_every_kept_wrong_answer_fails_the_exercise_tests(path):
    mutants = load_mutants(path)
    verdicts = run_mutants(path.stem, mutants)
    written = [v for v in verdicts if v.mutant != HARD_CODED]
    assert len(written) == sum(len(bugs) for bugs in mutants.values())
    print("\n" + catch_rates(verdicts))
    passing = [f"{v.exercise}: {v.mutant}" for v in verdicts if v.passed_all]
    assert not passing, f"wrong answers that pass every test of {path.stem}: {passing}"
