"""The notebook pipeline, end to end, for every assignment in solutions/.

The session fixture ``pipeline`` (tests/conftest.py) releases every assignment into a
throwaway course and autogrades, in fast mode, each solution and each blank release (with
feedback).
The tests then check: the solution runs without an error in any cell and earns
every autograded point; the blank earns none; the committed release equals a
fresh one and leaks nothing; feedback never shows hidden tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, hidden_lines_of, page_text
from dgm.course.notebooks import assignment_ids, source_notebook

IDS = assignment_ids(ROOT)
pytestmark = pytest.mark.pipeline


def test_there_are_assignments():
    assert IDS[:2] == ["01_density", "02_procedural"]


@pytest.mark.parametrize("assignment", IDS)
def test_solution_executes_without_errors(pipeline, assignment):
    executed = nbformat.read(pipeline.graded / "autograded" / "solution" / assignment / f"{assignment}.ipynb", 4)
    errors = [
        (index, output.get("ename"), output.get("evalue"))
        for index, cell in enumerate(executed.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == [], f"cells raised errors when the solution ran in fast mode: {errors}"


@pytest.mark.parametrize("assignment", IDS)
def test_solution_gets_full_autograded_points(pipeline, assignment):
    result = pipeline.results[("solution", assignment)]
    assert result.status == "graded", result.reason
    lost = {cell: points for cell, points in result.cells.items() if points[0] is not None and points[0] < points[1]}
    assert result.auto_max >= 5 and result.auto_score == result.auto_max, f"cells not at full marks: {lost}"
    assert result.manual_max > 0, "every assignment has at least one written (manually graded) question"


@pytest.mark.parametrize("assignment", IDS)
def test_blank_release_gets_zero(pipeline, assignment):
    result = pipeline.results[("blank", assignment)]
    assert result.status == "graded", result.reason
    scored = {cell: points for cell, points in result.cells.items() if points[0]}
    assert result.auto_score == 0, f"the blank notebook earned points in {scored}"


def canonical(path: Path) -> str:
    return json.dumps(json.loads(path.read_text()), sort_keys=True, indent=1)


@pytest.mark.parametrize("assignment", IDS)
def test_committed_release_equals_a_fresh_generation(pipeline, assignment):
    committed = ROOT / "notebooks" / assignment / f"{assignment}.ipynb"
    assert committed.exists(), f"{committed} is missing: run `make release`"
    fresh = pipeline.release / assignment / f"{assignment}.ipynb"
    assert canonical(committed) == canonical(fresh), f"{committed} is stale: run `make release` and commit it"


@pytest.mark.parametrize("assignment", IDS)
def test_release_leaks_no_solution_hidden_test_or_output(assignment):
    released = nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", 4)
    source = nbformat.read(source_notebook(assignment, ROOT), 4)
    text = "\n".join(cell.source for cell in released.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    assert all(not cell.get("outputs") for cell in released.cells if cell.cell_type == "code")
    hidden_lines = hidden_lines_of(source)
    assert hidden_lines and not any(line in text for line in hidden_lines)


@pytest.mark.parametrize("assignment", IDS)
def test_feedback_shows_no_hidden_tests(pipeline, assignment):
    hidden = hidden_lines_of(nbformat.read(source_notebook(assignment, ROOT), 4))
    for student in ("solution", "blank"):
        page = pipeline.graded / "feedback" / student / assignment / f"{assignment}.html"
        assert page.exists(), f"no feedback written for {student}"
        text = page_text(page)
        assert "HIDDEN TESTS" not in text
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"feedback for {student} shows hidden test lines: {leaked[:3]}"
