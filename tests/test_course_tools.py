"""dgm.course helpers: hidden-test stripping and the feedback preprocessor (no nbgrader run)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_output

from dgm.course.feedback import HIDDEN_FAILURE, HideHiddenTests, error_line
from dgm.course.notebooks import hidden_test_span, strip_hidden_tests

TEST_CELL = "\n".join(
    [
        "assert f(2) == 4, 'f(2) should be 4'",  # line 1 (visible)
        "### BEGIN HIDDEN TESTS",  # line 2
        "assert f(5) == 10, 'SECRET'",  # line 3 (hidden)
        "### END HIDDEN TESTS",  # line 4
    ]
)


def graded_cell(outputs):
    meta = {"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 1}}
    return new_code_cell(TEST_CELL, metadata=meta, outputs=outputs)


def error(line: int, message: str):
    trace = ["\x1b[0;31m---\x1b[0m", f"Cell \x1b[0;32mIn[7], line {line}\x1b[0m", f"AssertionError: {message}"]
    return new_output("error", ename="AssertionError", evalue=message, traceback=trace)


def test_hidden_span_and_strip():
    assert hidden_test_span(TEST_CELL) == (2, 4)
    assert strip_hidden_tests(TEST_CELL) == "assert f(2) == 4, 'f(2) should be 4'"
    assert hidden_test_span("x = 1") is None and strip_hidden_tests("x = 1") == "x = 1"


def test_error_line_reads_ipython_tracebacks():
    assert error_line(error(3, "boom")) == 3
    assert error_line({"traceback": ["no frame here"]}) is None


def run(cell):
    return HideHiddenTests().preprocess_cell(cell, {}, 0)[0]


def test_feedback_replaces_a_hidden_failure_and_its_traceback():
    cell = run(graded_cell([error(3, "SECRET"), new_output("stream", name="stdout", text="SECRET print")]))
    assert "SECRET" not in str(cell)
    assert "BEGIN HIDDEN" not in cell.source
    assert cell.outputs[0]["text"] == HIDDEN_FAILURE


def test_feedback_keeps_a_visible_failure_without_context_lines():
    cell = run(graded_cell([error(1, "f(2) should be 4")]))
    assert cell.outputs[0]["output_type"] == "error"
    assert cell.outputs[0]["traceback"] == ["AssertionError: f(2) should be 4"]
    assert "SECRET" not in str(cell)


def test_feedback_treats_an_unplaceable_error_as_hidden():
    cell = run(graded_cell([new_output("error", ename="E", evalue="SECRET", traceback=["?"])]))
    assert "SECRET" not in str(cell)


def test_feedback_leaves_answer_cells_alone():
    meta = {"nbgrader": {"grade": False, "solution": True, "grade_id": "f"}}
    cell = new_code_cell("### BEGIN HIDDEN TESTS\nnot really", metadata=meta)
    assert run(cell).source == cell.source
